import { readFileSync } from "node:fs";
import path from "node:path";
import { expect, it } from "vitest";
import { isStackPolicy } from "./lib/policy";
import { policies } from "./policies";
import { loadStackPolicyConfig, resolvePolicyConfig } from "./testing/policy-config";

/** The README's policy table: `| \`name\` (stack) | what | why | dev | prod | fix |`. */
function readmeRows(): { name: string; stack: boolean; dev: string; prod: string }[] {
  const text = readFileSync(path.join(__dirname, "README.md"), "utf8");
  return text
    .split("\n")
    .filter((l) => /^\| `[a-z0-9-]+`/.test(l))
    .map((l) => {
      const cells = l.split(" | ");
      return {
        name: /`([a-z0-9-]+)`/.exec(cells[0]!)![1]!,
        stack: cells[0]!.includes("(stack)"),
        dev: cells[3]!.split(" ")[0]!,
        prod: cells[4]!.split(" ")[0]!,
      };
    });
}

it("the README's policy table tells the truth: every policy, kind and level per stack", () => {
  const dev = resolvePolicyConfig(policies, loadStackPolicyConfig("dev").config);
  const prod = resolvePolicyConfig(policies, loadStackPolicyConfig("prod").config);
  expect(readmeRows()).toEqual(
    policies.map((p) => ({ name: p.name, stack: isStackPolicy(p), dev: dev.get(p.name)!.level, prod: prod.get(p.name)!.level })),
  );
});
