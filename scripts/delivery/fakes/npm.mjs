#!/usr/bin/env node
// A stand-in for the `npm run --silent plan` / `plan:diff` calls of offline-plans.sh. A plan writes
// a small snapshot naming the checkout it ran in; FAKE_NPM_BLOCK (stacks) exits 1 after writing
// it (a blocking finding), FAKE_NPM_CRASH (stacks) exits 1 without one (the program failed).
// FAKE_NPM_DIFF_CRASH (stacks): plan:diff prints half a diff, then crashes (a snapshot format it cannot read).
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";

const args = process.argv.slice(2);
const list = (name) => (process.env[name] ?? "").split(",").filter(Boolean);
const where = path.basename(process.cwd());
if (args[2] === "plan") {
  const stack = args[args.indexOf("--stack") + 1];
  const json = args[args.indexOf("--json") + 1];
  if (list("FAKE_NPM_CRASH").includes(stack)) {
    console.error(`The program failed: TypeError: boom in ${where}`);
    process.exit(1);
  }
  const blocked = list("FAKE_NPM_BLOCK").includes(stack);
  writeFileSync(
    json,
    JSON.stringify({
      stack,
      resources: [{ urn: `urn:${where}`, type: "t", name: where, protect: false, inputs: {} }],
      outputs: {},
      sections: [{ title: "Policies", lines: [blocked ? `mandatory violation in ${stack}` : `all policies pass in ${stack}`] }],
    }),
  );
  process.exit(blocked ? 1 : 0);
}
if (args[2] === "plan:diff") {
  const [base, head] = args.slice(4).map((f) => JSON.parse(readFileSync(f, "utf8")));
  if (list("FAKE_NPM_DIFF_CRASH").includes(head.stack)) {
    console.log(`### Offline plan diff: stack \`${head.stack}\`\n\nhalf a`);
    console.error(`TypeError: Cannot read properties of undefined (reading 'resources') in ${where}`);
    process.exit(1);
  }
  console.log(`### Offline plan diff: stack \`${head.stack}\`\n\n${base.resources.length} → ${head.resources.length} resources`);
  process.exit(0);
}
process.exit(2);
