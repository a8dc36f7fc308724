/**
 * The pack as its own package: what its modules load at run time is what its package.json declares
 * (with their dependencies), so `policies/` installed on its own runs the same pack. It reads names
 * from the other layers (chart workloads, the PD CSI driver's name, K3s' CNI directories), never
 * the cloud providers or the config schema's libraries.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { expect, it } from "vitest";
import { REPO_ROOT } from "../stacks/harness";

/** A package and everything it depends on, as installed (hoisted) in the repository's node_modules. */
function closure(roots: string[]): Set<string> {
  const seen = new Set<string>();
  const queue = [...roots];
  while (queue.length > 0) {
    const name = queue.pop()!;
    if (seen.has(name)) continue;
    seen.add(name);
    let manifest: { dependencies?: Record<string, string>; optionalDependencies?: Record<string, string> };
    try {
      manifest = JSON.parse(readFileSync(path.join(REPO_ROOT, "node_modules", name, "package.json"), "utf8")) as typeof manifest;
    } catch {
      continue;
    }
    queue.push(...Object.keys({ ...manifest.dependencies, ...manifest.optionalDependencies }));
  }
  return seen;
}

it("loads only what policies/package.json declares, and what that depends on", () => {
  const script = [
    `require(${JSON.stringify(path.join(REPO_ROOT, "policies/policies.ts"))});`,
    "const names = Object.keys(require.cache).map((m) => /node_modules\\/((?:@[^/]+\\/)?[^/]+)/.exec(m)?.[1]).filter(Boolean);",
    "console.log(JSON.stringify([...new Set(names)].sort()));",
  ].join("\n");
  const run = spawnSync(process.execPath, ["--import", "tsx", "-e", script], { cwd: REPO_ROOT, encoding: "utf8", env: { ...process.env, VITEST: "" } });
  expect(run.status, run.stderr).toBe(0);
  const loaded = JSON.parse(run.stdout.trim().split("\n").at(-1)!) as string[];
  const manifest = JSON.parse(readFileSync(path.join(REPO_ROOT, "policies/package.json"), "utf8")) as { dependencies: Record<string, string> };
  // This test's TypeScript loader; the CLI loads the pack with the SDK's ts-node instead.
  const allowed = new Set([...closure(Object.keys(manifest.dependencies)), "tsx", "esbuild"]);
  expect(loaded).toContain("@pulumi/policy");
  expect(loaded.filter((name) => !allowed.has(name))).toEqual([]);
});
