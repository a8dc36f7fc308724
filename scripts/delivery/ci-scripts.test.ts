/**
 * The CI scripts under .github/scripts, run for real against stand-ins for the outside world:
 * a temporary git repository, a fake GitHub CLI (fakes/gh.sh, answered by one fakes/gh-server.mjs),
 * a fake registry, a fake IAP tunnel that really listens, local HTTP and HTTPS servers for the smoke
 * test (certificates made with the openssl CLI), recorded CLI calls.
 */
import { spawn, type SpawnSyncReturns, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HEALTH_PATHS } from "../../components/apps/ingress";
import { SERVICE_NAMES } from "../../stacks/config";
import { configuredRun, type ProgramRun, readStackConfig, runProgram } from "../../stacks/harness";
import { stackNames } from "../../stacks/plan";
import { REPO_ROOT } from "./workflows";

const SCRIPTS = path.join(REPO_ROOT, ".github/scripts");
const FAKES = path.join(__dirname, "fakes");
const tmp = mkdtempSync(path.join(tmpdir(), "titanium-ci-scripts-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/**
 * The fake GitHub CLI: a bash stand-in asking one long-lived fakes/gh-server.mjs, started here for the
 * whole file (a node start-up per gh call cost 40 ms of CPU, 120 times). It lives in its own process: the
 * scripts run under spawnSync, which blocks this one. It exits when its stdin (this process) goes away.
 */
const GH = path.join(FAKES, "gh.sh");
const ghServer: Record<string, string> = {};
const ghServerProcess = spawn(process.execPath, [path.join(FAKES, "gh-server.mjs")], { stdio: ["pipe", "pipe", "inherit"] });
afterAll(() => void ghServerProcess.kill());
beforeAll(async () => {
  ghServer.FAKE_GH_PORT = await new Promise<string>((resolve, reject) => {
    let out = "";
    ghServerProcess.once("error", reject);
    ghServerProcess.once("exit", (code) => reject(new Error(`gh-server.mjs exited (${code})`)));
    ghServerProcess.stdout.on("data", (d: Buffer) => (out += d.toString()).includes("\n") && resolve(out.trim()));
  });
});

function script(name: string, args: string[], env: Record<string, string> = {}, cwd = REPO_ROOT): SpawnSyncReturns<string> {
  const r = spawnSync(path.join(SCRIPTS, name), args, { cwd, encoding: "utf8", env: { ...process.env, ...ghServer, ...env }, timeout: 60_000 });
  if (r.error) throw r.error;
  return r;
}

/** Like {@link script} but leaves the event loop running (for servers living in this process). */
function scriptAsync(name: string, args: string[], env: Record<string, string> = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(path.join(SCRIPTS, name), args, { cwd: REPO_ROOT, env: { ...process.env, ...ghServer, ...env } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (status) => resolve({ status, stdout, stderr }));
  });
}

function git(cwd: string, ...args: string[]): string {
  const r = spawnSync("git", args, { cwd, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`git ${args.join(" ")}: ${r.stderr}`);
  return r.stdout.trim();
}

/** A new git repository with one commit per entry (files written, then committed). */
function repoWith(commits: Record<string, string>[]): { dir: string; shas: string[] } {
  const dir = mkdtempSync(path.join(tmp, "repo-"));
  git(dir, "init", "-q", "-b", "main");
  git(dir, "config", "user.email", "ci@example.com");
  git(dir, "config", "user.name", "ci");
  const shas = commits.map((files, i) => {
    for (const [file, content] of Object.entries(files)) {
      mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
      writeFileSync(path.join(dir, file), content);
    }
    git(dir, "add", "-A");
    git(dir, "commit", "-q", "-m", `commit ${i}`);
    return git(dir, "rev-parse", "HEAD");
  });
  return { dir, shas };
}

const digest = (n: number) => `sha256:${n.toString(16).padStart(64, "0")}`;

describe("the fake CLIs", () => {
  it("record each call's arguments as JSON, whatever characters they hold (control characters escaped)", () => {
    const dir = mkdtempSync(path.join(tmp, "recorder-"));
    const log = path.join(dir, "calls.log");
    const args = ['quote " backslash \\ slash /', "lines\nand\r\ttabs", "escape \u001b[31m bell \u0007 nul-free \u0001 del \u007f", "é 한국어 😀", ""];
    for (const locale of ["C.UTF-8", "C"]) {
      const r = spawnSync(path.join(FAKES, "recorder.sh"), args, { encoding: "utf8", env: { ...process.env, LC_ALL: locale, FAKE_LOG: log } });
      expect(r.status, r.stderr).toBe(0);
    }
    const lines = readFileSync(log, "utf8").trim().split("\n");
    expect(lines).toHaveLength(2);
    for (const line of lines) expect(JSON.parse(line)).toEqual(args);
  });
});

describe("stack and image facts", () => {
  it("ci-settings.sh reads the stack file, the SDK version and the repository", () => {
    const r = script("ci-settings.sh", ["prod"], { GITHUB_REPOSITORY: "Acme/Titanium" });
    expect(r.status, r.stderr).toBe(0);
    const settings = Object.fromEntries(r.stdout.trim().split("\n").map((l) => l.split(/=(.*)/).slice(0, 2)));
    const stackFile = readFileSync(path.join(REPO_ROOT, "Pulumi.prod.yaml"), "utf8");
    const project = /gcp:project:\s*(\S+)/.exec(stackFile)![1];
    expect(settings).toMatchObject({
      project,
      secrets_provider: /^secretsprovider:\s*(\S+)/m.exec(stackFile)?.[1] ?? "",
      preview_service_account: `pulumi-preview@${project}.iam.gserviceaccount.com`,
      deploy_service_account: `pulumi-deploy@${project}.iam.gserviceaccount.com`,
      registry: "ghcr.io/acme/titanium",
    });
    const backends = { dev: "gs://titanium-dev-4821-pulumi-state", prod: "gs://titanium-prod-4821-pulumi-state" };
    // A pipeline (a backend set) needs the KMS provider the bootstrap writes into the stack file: the
    // scripts over copies of the stack file without it (refused, naming the step) and with it.
    const withStackFile = (text: string) => {
      const copy = mkdtempSync(path.join(tmp, "stack-file-"));
      mkdirSync(path.join(copy, ".github"), { recursive: true });
      symlinkSync(SCRIPTS, path.join(copy, ".github/scripts"));
      symlinkSync(path.join(REPO_ROOT, "package.json"), path.join(copy, "package.json"));
      writeFileSync(path.join(copy, "Pulumi.prod.yaml"), text);
      return spawnSync(path.join(copy, ".github/scripts/ci-settings.sh"), ["prod"], { encoding: "utf8", env: { ...process.env, PULUMI_BACKEND_URLS: JSON.stringify(backends) } });
    };
    const bare = stackFile.replace(/^(secretsprovider|encryptedkey):.*\n/gm, "");
    const unbootstrapped = withStackFile(bare);
    expect(unbootstrapped.status).toBe(1);
    expect(unbootstrapped.stderr).toContain("Pulumi.prod.yaml has no gcpkms:// secretsprovider (got ''): bootstrap the stack (docs/runbooks/bootstrap.md, step 4");
    const kms = `gcpkms://projects/${project}/locations/us-central1/keyRings/pulumi/cryptoKeys/stack-prod`;
    const withBackend = withStackFile(`secretsprovider: ${kms}\nencryptedkey: CiQA\n${bare}`);
    expect(withBackend.status, withBackend.stderr).toBe(0);
    expect(withBackend.stdout).toContain(`secrets_provider=${kms}\n`);
    expect(withBackend.stdout).toContain(`backend_url=${backends.prod}\n`);
    const noBucket = script("ci-settings.sh", ["prod"], { PULUMI_BACKEND_URLS: JSON.stringify({ dev: backends.dev }) });
    expect(noBucket.status).toBe(1);
    expect(noBucket.stderr).toContain("PULUMI_BACKEND_URLS has no gs://<bucket> for stack prod");
    expect(script("ci-settings.sh", ["prod"], { PULUMI_BACKEND_URLS: "gs://one-bucket" }).stderr).toContain("not a JSON object");
    const missing = script("ci-settings.sh", ["staging"]);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain(`no stack file Pulumi.staging.yaml (stacks: ${JSON.stringify(stackNames())})`);
  });

  it("image-tag.sh names a commit main-<sha7> and refuses anything else", () => {
    expect(script("image-tag.sh", ["a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"]).stdout.trim()).toBe("main-a1b2c3d");
    const bad = script("image-tag.sh", ["HEAD"]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain("expected a commit sha");
  });
});

describe("deploy-order.sh: a stack never goes back to an older commit", () => {
  // c0 - c1 - c2 - c3 on main; d branches off c1 (a history main never had).
  const { dir, shas } = repoWith([{ a: "0" }, { a: "1" }, { a: "2" }, { a: "3" }]);
  git(dir, "checkout", "-q", "-b", "other", shas[1]!);
  writeFileSync(path.join(dir, "a"), "d");
  git(dir, "commit", "-qam", "d");
  const other = git(dir, "rev-parse", "HEAD");
  git(dir, "checkout", "-q", "main");
  const log = path.join(tmp, "deploy-order.log");
  const update = (message: string) => ({ version: 1, kind: "update", startTime: "2026-12-06T10:00:00Z", message, environment: {}, config: {}, result: "succeeded" });
  const order = (commit: string, history: object[]) =>
    script("deploy-order.sh", ["prod", commit], { PULUMI: path.join(FAKES, "recorder.sh"), FAKE_LOG: log, FAKE_OUTPUT: JSON.stringify(history) }, dir);

  it("deploys a first time, the same commit again (an image rollback) and any descendant of the last deploy", () => {
    expect(order(shas[3]!, []).stdout.trim()).toBe("deploy=true");
    expect(order(shas[2]!, [update(`Deploy ${shas[2]}`)]).stdout.trim()).toBe("deploy=true");
    // The newest update whose message names a commit counts: a refresh and a hand-run `up` are passed over.
    const history = [{ ...update("drift check"), kind: "refresh" }, update("hotfix from a laptop"), update(`Deploy ${shas[1]}`), update(`Deploy ${shas[3]}`)];
    expect(order(shas[3]!, history).stdout.trim()).toBe("deploy=true");
    expect(readFileSync(log, "utf8").trim().split("\n").at(-1)).toBe(JSON.stringify(["stack", "history", "--stack", "prod", "--json", "--page-size", "50"]));
  });

  it("skips an ancestor of what the stack runs (an older run approved late)", () => {
    const r = order(shas[1]!, [update(`Deploy ${shas[3]}`), update(`Deploy ${shas[2]}`)]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe("deploy=false");
    expect(r.stderr).toContain(`prod already runs ${shas[3]}, which is newer than ${shas[1]}`);
  });

  it("fails on a last deploy this clone lacks or on another history, and on a commit that does not exist", () => {
    const unknown = order(shas[3]!, [update(`Deploy ${"e".repeat(40)}`)]);
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toContain("which this clone does not have");
    const diverged = order(shas[3]!, [update(`Deploy ${other}`)]);
    expect(diverged.status).toBe(1);
    expect(diverged.stderr).toContain("are on different histories");
    expect(order("f".repeat(40), []).status).not.toBe(0);
  });
});

describe("resolving and setting the images a deploy uses", () => {
  const registry = "ghcr.io/acme/titanium";
  const services = SERVICE_NAMES.join(" ");
  const { dir, shas } = repoWith([{ a: "1" }, { a: "2" }, { a: "3" }, { a: "4" }]);
  const tag = (sha: string) => `main-${sha.slice(0, 7)}`;
  // Commit 0: a complete set. Commit 2: a set that lost one service (a failed push). Commits 1, 3: no images.
  const images: Record<string, string> = {};
  SERVICE_NAMES.forEach((s, i) => (images[`${registry}/${s}:${tag(shas[0]!)}`] = digest(i + 1)));
  SERVICE_NAMES.slice(1).forEach((s, i) => (images[`${registry}/${s}:${tag(shas[2]!)}`] = digest(i + 10)));
  const registryFile = path.join(tmp, "registry.json");
  writeFileSync(registryFile, JSON.stringify(images));
  const env = { DIGEST_OF: path.join(FAKES, "registry.sh"), FAKE_REGISTRY: registryFile };

  it("walks main back to the newest tag every service has", () => {
    const r = script("resolve-images.sh", ["--registry", registry, "--services", services, "--from", shas[3]!], env, dir);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      registry,
      tag: tag(shas[0]!),
      digests: Object.fromEntries(SERVICE_NAMES.map((s, i) => [s, digest(i + 1)])),
    });
  });

  it("takes an explicit tag (rollback) only when the set is complete", () => {
    const ok = script("resolve-images.sh", ["--registry", registry, "--services", services, "--tag", tag(shas[0]!)], env, dir);
    expect(JSON.parse(ok.stdout).tag).toBe(tag(shas[0]!));
    const partial = script("resolve-images.sh", ["--registry", registry, "--services", services, "--tag", tag(shas[2]!)], env, dir);
    expect(partial.status).toBe(1);
    expect(partial.stderr).toContain(`not every service (${services}) has an image ${registry}/<service>:${tag(shas[2]!)}`);
  });

  it("fails clearly when no complete set exists within the depth (3: the caller may wait for a build)", () => {
    const r = script("resolve-images.sh", ["--registry", registry, "--services", services, "--from", shas[3]!, "--depth", "2"], env, dir);
    expect(r.status).toBe(3);
    expect(r.stderr).toContain("no complete image set");
  });

  it("fails (1, not 3) when the registry cannot be asked: an outage is never taken for a missing image", () => {
    const r = script("resolve-images.sh", ["--registry", registry, "--services", services, "--from", shas[3]!], { ...env, FAKE_REGISTRY_DOWN: "1" }, dir);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("the registry could not be asked about");
  });

  it("takes only a set built from the commit's own image inputs: not an older one while the new is building, the old one again after a revert", () => {
    const repo = repoWith([{ "services/kit/src/a.ts": "1" }, { "docs/a.md": "1" }, { "services/kit/src/a.ts": "2" }, { "stacks/index.ts": "// infra" }, { "services/kit/src/a.ts": "1" }]);
    const file = path.join(tmp, "registry-pending.json");
    const setOf = (sha: string, skip: string[] = []) =>
      Object.fromEntries(SERVICE_NAMES.filter((s) => !skip.includes(s)).map((s, i) => [`${registry}/${s}:${tag(sha)}`, digest(i + 20)]));
    const resolveFrom = (commit: string, held: Record<string, string>) => {
      writeFileSync(file, JSON.stringify(held));
      return script("resolve-images.sh", ["--registry", registry, "--services", services, "--from", commit], { ...env, FAKE_REGISTRY: file }, repo.dir);
    };
    // Commit 2 changed the kit: without its images (still building) or with half of them, commit 0's set is not taken.
    for (const held of [setOf(repo.shas[0]!), { ...setOf(repo.shas[0]!), ...setOf(repo.shas[2]!, [SERVICE_NAMES[0]!]) }]) {
      const r = resolveFrom(repo.shas[3]!, held);
      expect(r.status, r.stderr).toBe(3);
      expect(r.stderr).toContain(`no complete image set (${services}) in ${registry} built from the image inputs of ${repo.shas[3]}`);
    }
    const both = { ...setOf(repo.shas[0]!), ...setOf(repo.shas[2]!) };
    const pushed = resolveFrom(repo.shas[3]!, both);
    expect(pushed.status, pushed.stderr).toBe(0);
    expect(JSON.parse(pushed.stdout).tag).toBe(tag(repo.shas[2]!));
    // A docs commit has commit 0's inputs; commit 4 reverts the kit to them (pushed with no build): commit 0's set.
    expect(JSON.parse(resolveFrom(repo.shas[1]!, both).stdout).tag).toBe(tag(repo.shas[0]!));
    expect(JSON.parse(resolveFrom(repo.shas[4]!, both).stdout).tag).toBe(tag(repo.shas[0]!));
  });

  it("takes no older set for a commit that only moves .nvmrc: a Node.js security release builds (and checks) new images", () => {
    const repo = repoWith([{ "services/kit/src/a.ts": "1", ".nvmrc": "24.1.0\n" }, { ".nvmrc": "24.2.0\n" }]);
    const file = path.join(tmp, "registry-nvmrc.json");
    writeFileSync(file, JSON.stringify(Object.fromEntries(SERVICE_NAMES.map((s, i) => [`${registry}/${s}:${tag(repo.shas[0]!)}`, digest(i + 30)]))));
    const run = (commit: string) => script("resolve-images.sh", ["--registry", registry, "--services", services, "--from", commit], { ...env, FAKE_REGISTRY: file }, repo.dir);
    expect(run(repo.shas[0]!).status).toBe(0);
    const moved = run(repo.shas[1]!);
    expect(moved.status, moved.stderr).toBe(3);
    expect(moved.stderr).toContain(`built from the image inputs of ${repo.shas[1]}`);
  });

  it("set-images.sh sets the tag and one digest per service in the stack config", () => {
    const log = path.join(tmp, "pulumi-set.log");
    const file = path.join(tmp, "images.json");
    writeFileSync(file, JSON.stringify({ registry, tag: "main-abc1234", digests: { "api-gateway": digest(1), "blog-service": digest(2) } }));
    const r = script("set-images.sh", ["dev", file], { PULUMI: path.join(FAKES, "recorder.sh"), FAKE_LOG: log });
    expect(r.status, r.stderr).toBe(0);
    const calls = readFileSync(log, "utf8").trim().split("\n").map((l) => JSON.parse(l) as string[]);
    expect(calls).toEqual([
      ["config", "set", "--stack", "dev", "--path", "titanium:images.tag", "main-abc1234"],
      ["config", "set", "--stack", "dev", "--path", "titanium:images.digests.api-gateway", digest(1)],
      ["config", "set", "--stack", "dev", "--path", "titanium:images.digests.blog-service", digest(2)],
    ]);
    writeFileSync(file, JSON.stringify({ registry, tag: "latest", digests: { "api-gateway": digest(1) } }));
    expect(script("set-images.sh", ["dev", file], { PULUMI: path.join(FAKES, "recorder.sh") }).stderr).toContain("not an immutable image tag");
    writeFileSync(file, JSON.stringify({ registry, tag: "main-abc1234", digests: { "api-gateway": "sha256:short" } }));
    expect(script("set-images.sh", ["dev", file], { PULUMI: path.join(FAKES, "recorder.sh") }).stderr).toContain("bad entry");
  });

  describe("deployed-images.sh: previews and drift checks use the image set the stack last deployed", () => {
    const recorder = path.join(FAKES, "recorder.sh");
    /** Runs deployed-images.sh on these stack outputs; returns the result and the pulumi calls it made. */
    const deployed = (outputs: unknown, raw?: string) => {
      const dir = mkdtempSync(path.join(tmp, "deployed-"));
      const file = path.join(dir, "stack-outputs-dev.json");
      writeFileSync(file, raw ?? JSON.stringify(outputs));
      const log = path.join(dir, "pulumi.log");
      const r = script("deployed-images.sh", ["dev", file], { PULUMI: recorder, FAKE_LOG: log });
      const calls = existsSync(log) ? readFileSync(log, "utf8").trim().split("\n").map((l) => JSON.parse(l) as string[]) : [];
      return { ...r, calls };
    };

    it("sets the tag and digests the stack output `images` records, through set-images.sh", () => {
      const images = { registry, tag: "main-abc1234", digests: { "api-gateway": digest(1), "blog-service": digest(2) } };
      const r = deployed({ ingressUrl: "https://203.0.113.10", images });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toContain("stack dev last deployed main-abc1234 (2 digests)");
      expect(r.calls).toEqual([
        ["config", "set", "--stack", "dev", "--path", "titanium:images.tag", "main-abc1234"],
        ["config", "set", "--stack", "dev", "--path", "titanium:images.digests.api-gateway", digest(1)],
        ["config", "set", "--stack", "dev", "--path", "titanium:images.digests.blog-service", digest(2)],
      ]);
    });

    it("changes nothing, with a notice, for a stack the pipeline never deployed or an older state", () => {
      for (const outputs of [{}, { ingressUrl: "https://203.0.113.10" }, { images: null }, { images: { registry, tag: "main-0000000", digests: {} } }]) {
        const r = deployed(outputs);
        expect(r.status, `${JSON.stringify(outputs)}: ${r.stderr}`).toBe(0);
        expect(r.stdout).toContain("::notice::deployed-images: stack dev has no deployed image set");
        expect(r.calls, JSON.stringify(outputs)).toEqual([]);
      }
    });

    it("fails on outputs that are not JSON or an `images` of the wrong shape", () => {
      const notJson = deployed(undefined, "error: no stack selected");
      expect(notJson.status).not.toBe(0);
      expect(notJson.stderr).toContain("is not a JSON object of stack outputs");
      for (const images of ["[secret]", { registry, digests: { "api-gateway": digest(1) } }, { registry, tag: "main-abc1234", digests: [digest(1)] }]) {
        const r = deployed({ images });
        expect(r.status, JSON.stringify(images)).not.toBe(0);
        expect(r.stderr).toContain("is not {registry, tag, digests}");
        expect(r.calls).toEqual([]);
      }
      const badDigest = deployed({ images: { registry, tag: "main-abc1234", digests: { "api-gateway": "sha256:short" } } });
      expect(badDigest.status).not.toBe(0);
      expect(badDigest.stderr).toContain("bad entry");
    });

    it("round trip with the real program: the set a deploy records renders the same images again; the stack file alone does not", async () => {
      /** Every service image reference in the resources a run registered, by resource. */
      const imagesOf = (run: ProgramRun, registry: string) => {
        const pattern = new RegExp(`${registry.replace(/[.]/g, "\\.")}/(?:${SERVICE_NAMES.join("|")})(?:@sha256:[0-9a-f]{64}|:[\\w.-]+)`, "g");
        return Object.fromEntries(
          run.resources.flatMap((r) => {
            const found = [...new Set(JSON.stringify(r.inputs).match(pattern) ?? [])].sort();
            return found.length > 0 ? [[`${r.type} ${r.name}`, found]] : [];
          }),
        );
      };
      // What a pipeline deploy runs: set-images.sh put a full digest set into the config.
      const set = { tag: "main-abc1234", digests: Object.fromEntries(SERVICE_NAMES.map((s, i) => [s, digest(i + 1)])) };
      const deploy = await runProgram({ stack: "dev", config: { images: set } });
      expect(deploy.secretOutputs).not.toContain("images");
      const recorded = deploy.outputs.images as { registry: string; tag: string; digests: Record<string, string> };
      expect(recorded).toEqual({ registry: expect.any(String), ...set });

      // A later preview: the committed stack file, then what deployed-images.sh sets from the recorded output.
      const r = deployed({ images: recorded });
      expect(r.status, r.stderr).toBe(0);
      const config = JSON.parse(readStackConfig("dev")["titanium:images"] ?? "{}") as Record<string, unknown>;
      for (const call of r.calls) {
        const keys = call[call.indexOf("--path") + 1]!.replace(/^titanium:images\./, "").split(".");
        let at = config;
        for (const key of keys.slice(0, -1)) at = (at[key] ??= {}) as Record<string, unknown>;
        at[keys.at(-1)!] = call.at(-1);
      }
      // The preview's images config is the deploy's (the program renders a config the same way every time, so
      // its images are the deployed ones).
      expect(config).toEqual(set);
      const deployedImages = imagesOf(deploy, recorded.registry);
      expect(Object.keys(deployedImages).length).toBeGreaterThanOrEqual(SERVICE_NAMES.length);
      expect(Object.values(deployedImages).flat().every((ref) => ref.includes("@sha256:"))).toBe(true);
      // Without it (the defect): the committed stack file renders a tag where the cluster runs digests.
      const committed = imagesOf(await configuredRun("dev"), recorded.registry);
      expect(Object.keys(committed)).toEqual(Object.keys(deployedImages));
      for (const [resource, refs] of Object.entries(committed)) expect(refs, resource).not.toEqual(deployedImages[resource]);
    });
  });

  it("release-images.sh refuses a stack whose configured registry is not this repository's", () => {
    const file = path.join(tmp, "dev-images.json");
    const defaults = "ghcr.io/titanium-platform/titanium";
    writeFileSync(file, JSON.stringify({ registry: defaults, tag: "main-abc1234", digests: Object.fromEntries(SERVICE_NAMES.map((s, i) => [s, digest(i)])) }));
    const ok = script("release-images.sh", ["prod", "--reuse", file], { GITHUB_REPOSITORY: "titanium-platform/Titanium" });
    expect(ok.status, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout).registry).toBe(defaults);
    const other = script("release-images.sh", ["prod", "--reuse", file], { GITHUB_REPOSITORY: "acme/fork" });
    expect(other.status).toBe(1);
    expect(other.stderr).toContain("set titanium:images.registry to ghcr.io/acme/fork in Pulumi.prod.yaml");
  });

  it("image-set-missing.sh says whether a complete set exists for a commit's image inputs, and never takes an outage for a missing set", () => {
    const { dir, shas } = repoWith([{ a: "1" }, { b: "2" }]);
    const registry = "ghcr.io/titanium-platform/titanium";
    const file = path.join(tmp, "registry-missing.json");
    const missing = (held: Record<string, string>, extra: Record<string, string> = {}) => {
      writeFileSync(file, JSON.stringify(held));
      return script("image-set-missing.sh", [shas[1]!], { GITHUB_REPOSITORY: "titanium-platform/Titanium", DIGEST_OF: path.join(FAKES, "registry.sh"), FAKE_REGISTRY: file, ...extra }, dir);
    };
    const setOf = (sha: string, services: readonly string[] = SERVICE_NAMES) => Object.fromEntries(services.map((s, i) => [`${registry}/${s}:main-${sha.slice(0, 7)}`, digest(i + 1)]));
    // The first commit's set serves the second (same image inputs).
    expect(missing(setOf(shas[0]!)).stdout.trim()).toBe("missing=false");
    // Nothing pushed, or a half-pushed set (one service failed): missing, so the run builds it.
    expect(missing({}).stdout.trim()).toBe("missing=true");
    expect(missing(setOf(shas[0]!, SERVICE_NAMES.slice(1))).stdout.trim()).toBe("missing=true");
    const down = missing(setOf(shas[0]!), { FAKE_REGISTRY_DOWN: "1" });
    expect(down.status).toBe(1);
    expect(down.stdout).toBe("");
  }, 90_000); // four runs of release-images.sh, each starting tsx for the stack's config facts

  it("record-digests.sh collects the per-service digests into one file and a summary table", () => {
    const dir = path.join(tmp, "digests");
    mkdirSync(dir);
    writeFileSync(path.join(dir, "api-gateway"), `${digest(7)}\n`);
    writeFileSync(path.join(dir, "auth-service"), digest(8));
    const out = path.join(tmp, "image-digests.json");
    const r = script("record-digests.sh", [dir, registry, "main-abc1234", out]);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(readFileSync(out, "utf8"))).toEqual({ registry, tag: "main-abc1234", digests: { "api-gateway": digest(7), "auth-service": digest(8) } });
    expect(r.stdout).toContain(`| api-gateway | \`${registry}/api-gateway:main-abc1234\` | \`${digest(7)}\` |`);
    writeFileSync(path.join(dir, "user-service"), "oops");
    expect(script("record-digests.sh", [dir, registry, "main-abc1234", out]).status).toBe(1);
  });
});

describe("verify-images.sh: only images this repository's Images workflow built on main, from the tag's commit, as that service, are deployed", () => {
  const registry = "ghcr.io/acme/titanium";
  const repository = "Acme/Titanium";
  const workflow = `${repository}/.github/workflows/images.yml`;
  // main's history: the set's tag names the last commit; a branch commit off the first one.
  const { dir: checkout, shas } = repoWith([{ "a.txt": "1" }, { "a.txt": "2" }, { "a.txt": "3" }]);
  const [older, , commit] = shas as [string, string, string];
  const tag = `main-${commit.slice(0, 7)}`;
  const ours = { repo: repository, workflow: `${workflow}@refs/heads/main`, ref: "refs/heads/main", commit, runner: "github-hosted" };
  const set = { registry, tag, digests: Object.fromEntries(SERVICE_NAMES.map((s, i) => [s, digest(i + 40)])) };
  /** Our attestation of `service`'s digest: the subject name images.yml gives (<registry>/<service>). */
  const oursFor = (service: string) => ({ ...ours, name: `${registry}/${service}` });
  const allOurs = Object.fromEntries(SERVICE_NAMES.map((s) => [set.digests[s]!, oursFor(s)]));
  /** Runs verify-images.sh in `cwd` on `images` against these attestations (by digest); returns the result and the gh calls. */
  const verify = (attestations: Record<string, object | undefined>, extra: Record<string, string> = {}, images: unknown = set, cwd = checkout, args?: string[]) => {
    const dir = mkdtempSync(path.join(tmp, "verify-"));
    writeFileSync(path.join(dir, "attestations.json"), JSON.stringify(attestations));
    writeFileSync(path.join(dir, "images.json"), JSON.stringify(images));
    const log = path.join(dir, "gh.log");
    const r = script(
      "verify-images.sh",
      args ?? [path.join(dir, "images.json")],
      { GH, FAKE_ATTESTATIONS: path.join(dir, "attestations.json"), FAKE_LOG: log, GITHUB_REPOSITORY: repository, ...extra },
      cwd,
    );
    const calls = existsSync(log) ? readFileSync(log, "utf8").trim().split("\n").map((l) => JSON.parse(l) as string[]) : [];
    return { ...r, calls };
  };

  it("passes when every service's digest has our build provenance, asking gh with exactly the policy: this repository, images.yml, main, the tag's commit, hosted runners", () => {
    const r = verify(allOurs);
    expect(r.status, r.stderr).toBe(0);
    expect(r.calls).toEqual(
      SERVICE_NAMES.map((s, i) => [
        "attestation", "verify", `oci://${registry}/${s}@${digest(i + 40)}`,
        "--repo", repository, "--signer-workflow", workflow, "--source-ref", "refs/heads/main",
        "--source-digest", commit, "--deny-self-hosted-runners", "--format", "json",
      ]),
    );
    for (const s of SERVICE_NAMES) expect(r.stdout).toContain(`verify-images: ${s} ${set.digests[s]}: built and attested as ${registry}/${s} by ${workflow} on refs/heads/main from ${commit}`);
  });

  it("fails naming every service whose digest is not ours: no attestation, another workflow, another branch, a self-hosted runner", () => {
    const [first, second, third, fourth] = SERVICE_NAMES;
    const attestations = {
      ...allOurs,
      [set.digests[first!]!]: undefined, // pushed under our tag by someone else: never attested
      [set.digests[second!]!]: { ...oursFor(second!), workflow: `${repository}/.github/workflows/pull-request.yml@refs/heads/main` },
      [set.digests[third!]!]: { ...oursFor(third!), workflow: `${workflow}@refs/heads/feature`, ref: "refs/heads/feature" },
      [set.digests[fourth!]!]: { ...oursFor(fourth!), runner: "self-hosted" },
    };
    const r = verify(attestations);
    expect(r.status).toBe(1);
    // Every service is still checked, so the message names all of them at once.
    expect(r.calls).toHaveLength(SERVICE_NAMES.length);
    expect(r.stderr).toContain(`verify-images: ${first}: ${registry}/${first}@${set.digests[first!]} has no valid build provenance attestation from ${workflow} on refs/heads/main for commit ${commit}`);
    expect(r.stderr).toContain(`No attestations found for subject ${set.digests[first!]}`);
    expect(r.stderr).toContain("✗ Sigstore verification failed");
    expect(r.stderr).toContain("expected SourceRepositoryRef to be refs/heads/main, got refs/heads/feature");
    expect(r.stderr).toContain(`verify-images: not deployed: ${first} ${second} ${third} ${fourth} of ${tag}`);
    expect(r.stderr).toContain('"An image without a valid attestation"');
    // One foreign image among verified ones is enough.
    const one = verify({ ...allOurs, [set.digests[second!]!]: { ...oursFor(second!), repo: "someone/fork", workflow: "someone/fork/.github/workflows/images.yml@refs/heads/main" } });
    expect(one.status).toBe(1);
    expect(one.stderr).toContain(`verify-images: not deployed: ${second} of ${tag}`);
  });

  it("refuses an older commit's attested digest of the same service under the tag (a moved tag: an image with a known CVE)", () => {
    const [first] = SERVICE_NAMES;
    // Built and attested by our workflow on main, as that service, but from an older commit.
    const r = verify({ ...allOurs, [set.digests[first!]!]: { ...oursFor(first!), commit: older } });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("✗ Policy verification failed");
    expect(r.stderr).toContain(`expected SourceRepositoryDigest to be ${commit}, got ${older}`);
    expect(r.stderr).toContain(`verify-images: not deployed: ${first} of ${tag}`);
  });

  it("refuses another service's attested digest under this service's tag (same commit, same workflow)", () => {
    const [first, second] = SERVICE_NAMES;
    // The first service's tag moved to the second service's image: attested by us, for this commit, as the second.
    const swapped = { ...set, digests: { ...set.digests, [first!]: set.digests[second!]! } };
    const r = verify(allOurs, {}, swapped);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`verify-images: ${first}: ${registry}/${first}@${set.digests[second!]} is attested by ${workflow} on refs/heads/main from ${commit} as ${registry}/${second}, not as ${registry}/${first}`);
    expect(r.stderr).toContain(`verify-images: not deployed: ${first} of ${tag}`);
    expect(r.stdout).toContain(`verify-images: ${second} ${set.digests[second!]}: built and attested`);
  });

  it("takes the full SHA of the tag's commit from the checkout's first-parent history; a commit not there, or a malformed tag, is no verdict (2)", () => {
    const olderTag = { ...set, tag: `main-${older.slice(0, 7)}` };
    // The older commit, named by its own tag, is checked against its own full SHA.
    const olderSet = verify(Object.fromEntries(SERVICE_NAMES.map((s) => [set.digests[s]!, { ...oursFor(s), commit: older }])), {}, olderTag);
    expect(olderSet.status, olderSet.stderr).toBe(0);
    expect(olderSet.calls[0]).toContain(older);
    // images.yml's checkout: the commit it builds, alone (depth 1), and its own tag.
    const shallow = path.join(tmp, "verify-shallow");
    git(tmp, "clone", "-q", "--depth", "1", "--branch", "main", `file://${checkout}`, shallow);
    const own = verify(allOurs, {}, set, shallow);
    expect(own.status, own.stderr).toBe(0);
    expect(own.calls[0]).toContain(commit);
    // There, an older tag's commit is not in the history: no verdict, and gh is not asked.
    const notThere = verify(allOurs, {}, olderTag, shallow);
    expect(notThere.status).toBe(2);
    expect(notThere.stderr).toContain(`0 commits on the first-parent history of HEAD (${commit.slice(0, 7)}) match main-${older.slice(0, 7)}`);
    expect(notThere.stderr).toContain("fetch-depth: 0");
    expect(notThere.calls).toEqual([]);
    for (const t of ["latest", "main-ABC1234", `main-${commit}`]) {
      const r = verify(allOurs, {}, { ...set, tag: t });
      expect(r.status, t).toBe(2);
      expect(r.stderr).toContain("not main-<sha7>");
      expect(r.calls).toEqual([]);
    }
    const noRepo = verify(allOurs, {}, set, mkdtempSync(path.join(tmp, "not-a-repo-")));
    expect(noRepo.status).toBe(2);
    expect(noRepo.stderr).toContain("cannot read the checkout's git history");
  });

  it("fails (2, no verdict) with a clear message when gh is missing, has no credentials or may not read attestations, or the registry refuses", () => {
    const missing = verify(allOurs, { GH: path.join(tmp, "no-such-gh") });
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain("the GitHub CLI");
    expect(missing.stderr).toContain("is not installed");
    const noAuth = verify(allOurs, { FAKE_GH_NO_AUTH: "1" });
    expect(noAuth.status).toBe(2);
    expect(noAuth.stderr).toContain("verify-images: gh could not read the attestations of");
    expect(noAuth.stderr).toContain("GH_TOKEN: ${{ github.token }} and the job permission attestations: read");
    expect(noAuth.calls).toHaveLength(1); // stops at the first: every other call would fail alike
    const forbidden = verify(allOurs, { FAKE_GH_FORBIDDEN: "1" });
    expect(forbidden.status).toBe(2);
    expect(forbidden.stderr).toContain("HTTP 403");
    expect(forbidden.stderr).toContain("attestations: read");
    const registryDenied = verify(allOurs, { FAKE_GH_REGISTRY_DENIED: "1" });
    expect(registryDenied.status).toBe(2);
    expect(registryDenied.stderr).toContain(`verify-images: gh could not read ${registry}/${SERVICE_NAMES[0]}@${set.digests[SERVICE_NAMES[0]!]} from the registry`);
    expect(registryDenied.stderr).toContain("packages: read");
  });

  it("fails (2, no verdict) on any other gh failure: the API failing (5xx) or rate-limited (429), the network, the Sigstore trust root, no JSON results", () => {
    for (const [failure, message] of [
      ["http-502", "HTTP 502: Bad Gateway"],
      ["http-429", "HTTP 429: API rate limit exceeded"],
      ["network", "connect: connection timed out"],
      ["trust-root", "error creating Sigstore verifier"],
      ["no-json", "printed no verification results"],
    ] as const) {
      const r = verify(allOurs, { FAKE_GH_FAIL: failure });
      expect(r.status, `${failure}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toContain(message);
      expect(r.stderr, failure).not.toContain("not deployed:");
      expect(r.stderr, failure).not.toContain("has no valid build provenance attestation");
      if (failure !== "no-json") expect(r.stderr).toContain(`verify-images: could not check ${SERVICE_NAMES[0]} ${set.digests[SERVICE_NAMES[0]!]}`);
      expect(r.calls, failure).toHaveLength(1);
    }
  });

  it("exits 2 (usage) without its argument or GITHUB_REPOSITORY", () => {
    const noArgument = verify(allOurs, {}, set, checkout, []);
    expect(noArgument.status).toBe(2);
    expect(noArgument.stderr).toContain("usage: verify-images.sh <images.json>");
    const noRepository = verify(allOurs, { GITHUB_REPOSITORY: "" });
    expect(noRepository.status).toBe(2);
    expect(noRepository.stderr).toContain("GITHUB_REPOSITORY is required");
    expect(noRepository.calls).toEqual([]);
  });

  it("refuses a file that is not an image set, or a malformed entry, before asking gh", () => {
    for (const images of [{ registry, tag, digests: {} }, { tag, digests: set.digests }, [set]]) {
      const r = verify(allOurs, {}, images);
      expect(r.status, JSON.stringify(images)).toBe(2);
      expect(r.stderr).toContain("is not {registry, tag, digests} with at least one digest");
      expect(r.calls).toEqual([]);
    }
    const bad = verify(allOurs, {}, { ...set, digests: { "api-gateway": "sha256:short" } });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain("bad entry 'api-gateway'");
    expect(bad.calls).toEqual([]);
  });
});

describe("image-node-version.sh: the Node.js an image runs is .nvmrc's major, at .nvmrc's release or newer (Trivy cannot see it)", () => {
  const nvmrc = readFileSync(path.join(REPO_ROOT, ".nvmrc"), "utf8").trim();
  const [major, minor, patch] = nvmrc.replace(/^v/, "").split(".").map(Number) as [number, number, number];
  const image = "ghcr.io/acme/titanium/user-service:main-0123456";
  const tarball = path.join(tmp, "scan-linux-arm64.tar");
  writeFileSync(tarball, `${image}\n`);
  const check = (nodeVersion: string, extra: Record<string, string> = {}, nvmrcFile = path.join(REPO_ROOT, ".nvmrc")) => {
    const log = path.join(tmp, `docker-${Math.random().toString(36).slice(2)}.log`);
    const r = script("image-node-version.sh", [nvmrcFile, "linux/arm64", tarball], {
      DOCKER: path.join(FAKES, "docker.sh"),
      FAKE_LOG: log,
      FAKE_NODE_VERSION: nodeVersion,
      ...extra,
    });
    const calls = existsSync(log) ? readFileSync(log, "utf8").trim().split("\n").map((l) => JSON.parse(l) as string[]) : [];
    return { ...r, calls };
  };

  it("runs the loaded image's own node, for the tarball's platform, without network", () => {
    const r = check(`v${nvmrc.replace(/^v/, "")}\n`);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(`runs Node.js v${major}.${minor}.${patch}`);
    expect(r.calls).toEqual([
      ["load", "-i", tarball],
      ["run", "--rm", "--network", "none", "--platform", "linux/arm64", "--entrypoint", "/nodejs/bin/node", image, "--version"],
    ]);
    expect(check(`v${major}.${minor}.${patch + 1}`).status).toBe(0);
    expect(check(`v${major}.${minor + 1}.0`).status).toBe(0);
  });

  it("fails on an older release of the major (a stale base digest) and on another major", () => {
    if (patch > 0) {
      const older = check(`v${major}.${minor}.${patch - 1}`);
      expect(older.status).toBe(1);
      expect(older.stderr).toContain(`older than .nvmrc's ${nvmrc}`);
    }
    if (minor > 0) expect(check(`v${major}.${minor - 1}.${patch + 5}`).status).toBe(1);
    const next = check(`v${major + 1}.0.0`);
    expect(next.status).toBe(1);
    expect(next.stderr).toContain("another major");
    expect(check(`v${major - 1}.${minor + 10}.0`).status).toBe(1);
  });

  it("compares numerically and reads .nvmrc as written (a v prefix, a trailing newline)", () => {
    const file = path.join(tmp, "nvmrc-v");
    writeFileSync(file, "v24.9.10\n");
    expect(check("v24.10.0", {}, file).status).toBe(0); // 10 > 9, though "1" < "9"
    expect(check("v24.9.9", {}, file).status).toBe(1); // 9 < 10, though "9" > "1"
    expect(check("v24.9.10", {}, file).status).toBe(0);
  });

  it("exits 2, never passing, when the check cannot be made", () => {
    const noNode = check("", { FAKE_DOCKER_RUN_FAIL: "1" });
    expect(noNode.status).toBe(2);
    expect(noNode.stderr).toContain("could not run /nodejs/bin/node --version");
    expect(check("").status).toBe(2); // printed nothing
    expect(check("Welcome to Node.js").status).toBe(2);
    const bad = path.join(tmp, "nvmrc-lts");
    writeFileSync(bad, "lts/*\n");
    expect(check("v24.22.3", {}, bad).status).toBe(2);
  });
});

describe("reaching the cluster and the public endpoint", () => {
  function freePort(): Promise<number> {
    return new Promise((resolve) => {
      const s = createServer().listen(0, "127.0.0.1", () => {
        const port = (s.address() as { port: number }).port;
        s.close(() => resolve(port));
      });
    });
  }

  function canConnect(port: number): Promise<boolean> {
    return new Promise((resolve) => {
      const socket = connect(port, "127.0.0.1");
      socket.once("connect", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
    });
  }

  it("api-tunnel.sh opens the first reachable IAP tunnel, maps the API name to 127.0.0.1 alone, and on close puts the hosts file back", async () => {
    const port = await freePort();
    const state = mkdtempSync(path.join(tmp, "tunnel-"));
    const hosts = path.join(state, "hosts");
    // An operator's line for the public API address (bootstrap runbook) would win over an appended one.
    const before =
      "127.0.0.1 localhost\n# 203.0.113.9 k3s-api.titanium.internal (a comment stays)\n203.0.113.9 k3s-api.titanium.internal\n" +
      "10.0.0.2 other k3s-api.titanium.internal.example\n10.0.0.5 db k3s-api.titanium.internal # lab\n";
    writeFileSync(hosts, before);
    const outputs = path.join(state, "outputs.json");
    writeFileSync(
      outputs,
      JSON.stringify({
        pipelineAccess: {
          method: "iap-tunnel",
          project: "titanium-dev-4821",
          apiDnsName: "k3s-api.titanium.internal",
          port,
          tunnelTargets: [
            { instance: "dev-k3s-server-0", zone: "us-central1-a" },
            { instance: "dev-k3s-server-1", zone: "us-central1-b" },
          ],
        },
      }),
    );
    const log = path.join(state, "gcloud.log");
    const env = { GCLOUD: path.join(FAKES, "gcloud.sh"), HOSTS_FILE: hosts, TUNNEL_STATE_DIR: state, FAKE_LOG: log, FAKE_GCLOUD_DEAD: "dev-k3s-server-0" };
    const r = script("api-tunnel.sh", ["open", outputs], env);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(`https://k3s-api.titanium.internal:${port} reaches dev-k3s-server-1 through IAP`);
    // Only the name leaves an entry (its other names stay); a comment, and a longer name, are not it.
    const kept = "127.0.0.1 localhost\n# 203.0.113.9 k3s-api.titanium.internal (a comment stays)\n10.0.0.2 other k3s-api.titanium.internal.example\n10.0.0.5 db # lab\n";
    expect(readFileSync(hosts, "utf8")).toBe(`${kept}127.0.0.1 k3s-api.titanium.internal\n`);
    const calls = readFileSync(log, "utf8").trim().split("\n").map((l) => JSON.parse(l) as string[]);
    expect(calls[1]).toEqual([
      "compute", "start-iap-tunnel", "dev-k3s-server-1", String(port), `--local-host-port=localhost:${port}`,
      "--zone=us-central1-b", "--project=titanium-dev-4821",
    ]);
    const pid = Number(readFileSync(path.join(state, "iap-tunnel.pid"), "utf8"));
    expect(() => process.kill(pid, 0)).not.toThrow();
    // A second open finds the port taken rather than stacking tunnels.
    expect(script("api-tunnel.sh", ["open", outputs], env).stderr).toContain("already listens");
    expect(await canConnect(port)).toBe(true);
    expect(script("api-tunnel.sh", ["close"], env).status).toBe(0);
    await expect.poll(() => canConnect(port), { timeout: 5000 }).toBe(false);
    expect(existsSync(path.join(state, "iap-tunnel.pid"))).toBe(false);
    // The file is as the operator left it: the tunnel's entry gone, theirs back.
    expect(readFileSync(hosts, "utf8")).toBe(before);
  });

  it("api-tunnel.sh and smoke.sh read the outputs the program really exports (pipelineAccess, ingressUrl)", async () => {
    const outputs = (await configuredRun("dev")).outputs as {
      pipelineAccess: { project: string; port: number; apiDnsName: string; tunnelTargets: { instance: string; zone: string }[] };
      ingressUrl: string;
    };
    expect(outputs.ingressUrl).toMatch(/^https:\/\//);
    // The real output, on a free local port instead of 6443.
    const port = await freePort();
    const state = mkdtempSync(path.join(tmp, "tunnel-real-"));
    const file = path.join(state, "outputs.json");
    writeFileSync(file, JSON.stringify({ ...outputs, pipelineAccess: { ...outputs.pipelineAccess, port } }));
    writeFileSync(path.join(state, "hosts"), "");
    const log = path.join(state, "gcloud.log");
    const env = { GCLOUD: path.join(FAKES, "gcloud.sh"), HOSTS_FILE: path.join(state, "hosts"), TUNNEL_STATE_DIR: state, FAKE_LOG: log };
    const r = script("api-tunnel.sh", ["open", file], env);
    expect(r.status, r.stderr).toBe(0);
    const target = outputs.pipelineAccess.tunnelTargets[0]!;
    expect(JSON.parse(readFileSync(log, "utf8").trim())).toEqual([
      "compute", "start-iap-tunnel", target.instance, String(port), `--local-host-port=localhost:${port}`,
      `--zone=${target.zone}`, `--project=${outputs.pipelineAccess.project}`,
    ]);
    expect(readFileSync(path.join(state, "hosts"), "utf8")).toBe(`127.0.0.1 ${outputs.pipelineAccess.apiDnsName}\n`);
    expect(script("api-tunnel.sh", ["close"], env).status).toBe(0);
  });

  it("api-tunnel.sh fails a deploy of a never-deployed stack but lets a preview continue", () => {
    const outputs = path.join(tmp, "no-outputs.json");
    writeFileSync(outputs, "{}");
    const env = { GCLOUD: path.join(FAKES, "gcloud.sh"), TUNNEL_STATE_DIR: tmp };
    const deploy = script("api-tunnel.sh", ["open", outputs], env);
    expect(deploy.status).toBe(1);
    expect(deploy.stderr).toContain("no pipelineAccess output for an IAP tunnel yet");
    const preview = script("api-tunnel.sh", ["open", outputs, "--optional"], env);
    expect(preview.status).toBe(0);
    expect(preview.stdout).toContain("::warning::");
  });

  describe("servers-running.sh: a stopped K3s server is named, with the command that starts it, before any tunnel", () => {
    const project = "titanium-dev-4821";
    const outputsWith = (targets: { instance: string; zone: string }[], name = "servers") => {
      const file = path.join(tmp, `${name}-${Math.random()}.json`);
      writeFileSync(file, JSON.stringify({ pipelineAccess: { method: "iap-tunnel", project, port: 6443, apiDnsName: "k3s-api.titanium.internal", tunnelTargets: targets } }));
      return file;
    };
    const one = [{ instance: "titanium-dev-server-0", zone: "us-east5-a" }];
    const three = [0, 1, 2].map((i) => ({ instance: `titanium-prod-server-${i}`, zone: `us-central1-${"abc"[i]}` }));
    const run = (outputs: string, statuses: string) => {
      const log = path.join(tmp, `servers-gcloud-${Math.random()}.jsonl`);
      const r = script("servers-running.sh", [outputs], { GCLOUD: path.join(FAKES, "gcloud.sh"), FAKE_LOG: log, FAKE_GCLOUD_STATUS: statuses });
      const calls = existsSync(log) ? readFileSync(log, "utf8").trim().split("\n").map((l) => JSON.parse(l) as string[]) : [];
      return { ...r, calls };
    };
    const start = (t: { instance: string; zone: string }) => `\`gcloud compute instances start ${t.instance} --zone ${t.zone} --project ${project}\``;

    it("goes on when every target runs, asking Compute Engine for each one's status by instance, zone and project", () => {
      const r = run(outputsWith(three), "");
      expect(r.status, r.stdout + r.stderr).toBe(0);
      expect(r.calls).toEqual(three.map((t) => ["compute", "instances", "describe", t.instance, "--zone", t.zone, "--project", project, "--format=value(status)"]));
      expect(r.stdout).toContain("titanium-prod-server-2 (us-central1-c): RUNNING");
      expect(r.stdout).not.toMatch(/::(error|warning)/);
    });

    it("stops (3) when no target runs, naming each server, its status and the exact command that starts it", () => {
      const r = run(outputsWith(one), "titanium-dev-server-0=TERMINATED");
      expect(r.status, r.stdout + r.stderr).toBe(3);
      expect(r.stdout).toContain(`::error title=K3s server not running::titanium-dev-server-0 (us-east5-a) is TERMINATED, so the K3s API cannot be reached through it: start it with ${start(one[0]!)}`);
      expect(r.stdout).toContain('docs/runbooks/deploy.md, "A stopped K3s server"');
      // Never started from here, whatever the status.
      expect(r.calls.every((c) => c[2] === "describe")).toBe(true);
      // Every target is named, each with the command its status needs (a suspended VM is resumed, not started).
      const all = run(outputsWith(three), "titanium-prod-server-0=TERMINATED,titanium-prod-server-1=SUSPENDED,titanium-prod-server-2=STAGING");
      expect(all.status).toBe(3);
      expect(all.stdout.match(/^::error /gm)).toHaveLength(3);
      expect(all.stdout).toContain(start(three[0]!));
      expect(all.stdout).toContain(`resume it with \`gcloud compute instances resume titanium-prod-server-1 --zone us-central1-b --project ${project}\``);
      expect(all.stdout).toMatch(/titanium-prod-server-2 \(us-central1-c\) is STAGING[^\n]*wait until it is RUNNING/);
    });

    it("goes on, with a warning and the start command, when another target still runs (the tunnel takes that one)", () => {
      const r = run(outputsWith(three), "titanium-prod-server-0=TERMINATED");
      expect(r.status, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toContain(`::warning title=K3s server not running::titanium-prod-server-0 (us-central1-a) is TERMINATED`);
      expect(r.stdout).toContain(start(three[0]!));
      expect(r.stdout).not.toContain("::error");
    });

    it("never takes a status it could not read for a stopped server: a warning with gcloud's reason, and the tunnel decides", () => {
      const denied = run(outputsWith(one), "titanium-dev-server-0=DENIED");
      expect(denied.status, denied.stdout + denied.stderr).toBe(0);
      expect(denied.stdout).toContain("::warning title=K3s server status unknown::could not read the status of titanium-dev-server-0 (us-east5-a)");
      expect(denied.stdout).toContain("Required 'compute.instances.get' permission");
      expect(denied.stdout).not.toContain("::error");
      expect(denied.stdout).not.toContain("instances start");
      // One target not found, the other stopped: the unknown one may be running, so no verdict either.
      const mixed = run(outputsWith(three.slice(0, 2)), "titanium-prod-server-0=MISSING,titanium-prod-server-1=TERMINATED");
      expect(mixed.status).toBe(0);
      expect(mixed.stdout).toContain("was not found");
      expect(mixed.stdout).toContain(`::warning title=K3s server not running::titanium-prod-server-1`);
    });

    it("leaves a never-deployed stack to api-tunnel.sh and refuses a malformed output", () => {
      const none = path.join(tmp, "servers-none.json");
      writeFileSync(none, "{}");
      const r = run(none, "");
      expect(r.status).toBe(0);
      expect(r.stdout).toContain("nothing to check");
      expect(r.calls).toEqual([]);
      const bad = run(outputsWith([{ instance: "x; gcloud compute instances delete y", zone: "us-east5-a" }]), "");
      expect(bad.status).toBe(1);
      expect(bad.stderr).toContain("bad tunnel target");
      expect(bad.calls).toEqual([]);
      const notJson = path.join(tmp, "servers-not-json.json");
      writeFileSync(notJson, "not json");
      expect(run(notJson, "").status).toBe(1);
    });

    it("reads the pipelineAccess output the program really exports", async () => {
      const outputs = (await configuredRun("dev")).outputs as { pipelineAccess: { project: string; tunnelTargets: { instance: string; zone: string }[] } };
      const file = path.join(tmp, "servers-real.json");
      writeFileSync(file, JSON.stringify(outputs));
      const target = outputs.pipelineAccess.tunnelTargets[0]!;
      const r = run(file, `${target.instance}=TERMINATED`);
      expect(r.status, r.stdout + r.stderr).toBe(3);
      expect(r.stdout).toContain(`gcloud compute instances start ${target.instance} --zone ${target.zone} --project ${outputs.pipelineAccess.project}`);
    });
  });

  describe("smoke.sh", () => {
    let server: Server;
    let base = "";
    let posts: unknown = [];
    let healthStatus = 200;
    // The public health routes other than the site's (the user- and auth-service through the api-gateway), by path.
    const routeStatus: Record<string, number> = {};
    const answer = (req: IncomingMessage, res: ServerResponse) => {
      if (req.url === "/health") {
        res.writeHead(healthStatus).end();
      } else if (req.url && HEALTH_PATHS.includes(req.url)) {
        res.writeHead(routeStatus[req.url] ?? 200).end();
      } else if (req.url === "/blog/api/posts") {
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(posts));
      } else res.writeHead(404).end();
    };
    beforeAll(async () => {
      server = createServer(answer);
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
      base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    });
    afterAll(() => new Promise<void>((r) => server.close(() => r())));
    const env = { SMOKE_ATTEMPTS: "2", SMOKE_INTERVAL: "0" };

    it("passes when /health answers and /blog/api/posts lists posts", async () => {
      posts = [{ id: 1, title: "hello" }];
      healthStatus = 200;
      const r = await scriptAsync("smoke.sh", [`${base}/`], env);
      expect(r.status, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toMatch(/answers \/health .*and \/blog\/api\/posts \(attempt 1\)/);
    });

    it("fails, saying why, when the API answers something else or health fails", async () => {
      posts = { error: "db down" };
      healthStatus = 503;
      const r = await scriptAsync("smoke.sh", [base], env);
      expect(r.status).toBe(1);
      expect(r.stdout).toContain("attempt 2/2: /health: HTTP 503; /blog/api/posts: expected a JSON array");
    });

    it("checks every public health route the ingress defines: a broken route to the auth- or user-service fails it", async () => {
      posts = [{ id: 1, title: "hello" }];
      healthStatus = 200;
      const text = readFileSync(path.join(SCRIPTS, "smoke.sh"), "utf8");
      const listed = /^health_paths=\(([^)]*)\)$/m.exec(text)?.[1]?.split(/\s+/).filter(Boolean);
      expect(listed?.sort()).toEqual([...HEALTH_PATHS].sort());
      expect(HEALTH_PATHS.length).toBeGreaterThan(1);
      for (const route of HEALTH_PATHS.filter((p) => p !== "/health")) {
        for (const p of HEALTH_PATHS) delete routeStatus[p];
        routeStatus[route] = 503;
        const r = await scriptAsync("smoke.sh", [base], env);
        expect(r.status, `${route}: ${r.stdout}`).toBe(1);
        expect(r.stdout).toContain(`${route}: HTTP 503`);
      }
      for (const p of HEALTH_PATHS) delete routeStatus[p];
      const ok = await scriptAsync("smoke.sh", [base], env);
      expect(ok.status, ok.stdout + ok.stderr).toBe(0);
      for (const route of HEALTH_PATHS) expect(ok.stdout).toContain(route);
    });

    it("reads the endpoint from the stack outputs", async () => {
      posts = [];
      healthStatus = 200;
      const outputs = path.join(tmp, "stack-outputs.json");
      writeFileSync(outputs, JSON.stringify({ ingressUrl: base }));
      expect((await scriptAsync("smoke.sh", ["--stack-outputs", outputs], env)).status).toBe(0);
      writeFileSync(outputs, "{}");
      expect((await scriptAsync("smoke.sh", ["--stack-outputs", outputs], env)).stderr).toContain("no ingressUrl output");
    });

    describe("over HTTPS to an IP address, trusting the stack's generated certificate", () => {
      const certs = mkdtempSync(path.join(tmp, "certs-"));
      /**
       * A self-signed certificate shaped like the one the program generates without a hostname
       * (components/platform/istio.ts: ECDSA P-256, CN "titanium", O "Titanium", server auth, not a CA),
       * with the subjectAltName given, if any.
       */
      const selfSigned = (name: string, subjectAltName?: string) => {
        const r = spawnSync(
          "openssl",
          [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
            "-keyout", path.join(certs, `${name}.key`), "-out", path.join(certs, `${name}.pem`),
            "-subj", "/O=Titanium/CN=titanium",
            "-addext", "basicConstraints=critical,CA:FALSE",
            "-addext", "keyUsage=critical,digitalSignature,keyEncipherment",
            "-addext", "extendedKeyUsage=serverAuth",
            ...(subjectAltName ? ["-addext", `subjectAltName=${subjectAltName}`] : []),
          ],
          { encoding: "utf8" },
        );
        if (r.error) throw r.error;
        expect(r.status, r.stderr).toBe(0);
        return { key: readFileSync(path.join(certs, `${name}.key`), "utf8"), cert: readFileSync(path.join(certs, `${name}.pem`), "utf8") };
      };
      /** smoke.sh --stack-outputs against an HTTPS server on 127.0.0.1 with this certificate. */
      const smokeOverHttps = async (pair: { key: string; cert: string }, trusted: string | undefined) => {
        const https = createHttpsServer(pair, answer);
        await new Promise<void>((r) => https.listen(0, "127.0.0.1", () => r()));
        try {
          const outputs = path.join(certs, `outputs-${Math.random()}.json`);
          const ingressUrl = `https://127.0.0.1:${(https.address() as { port: number }).port}`;
          writeFileSync(outputs, JSON.stringify({ ingressUrl, ...(trusted ? { ingressCaCertificate: trusted } : {}) }));
          return await scriptAsync("smoke.sh", ["--stack-outputs", outputs], { ...env, SMOKE_ATTEMPTS: "1" });
        } finally {
          await new Promise<void>((r) => https.close(() => r()));
        }
      };
      beforeAll(() => {
        posts = [{ id: 1, title: "hello" }];
        healthStatus = 200;
      });

      it("passes when the certificate carries the public IP as an IP SAN", async () => {
        const withIp = selfSigned("with-ip", "IP:127.0.0.1");
        const r = await smokeOverHttps(withIp, withIp.cert);
        expect(r.status, r.stdout + r.stderr).toBe(0);
        expect(r.stdout).toMatch(/smoke: https:\/\/127\.0\.0\.1:\d+ answers \/health [^\n]*and \/blog\/api\/posts/);
      });

      it("fails naming the reason when the certificate has no IP SAN (what it had before), or is not trusted", async () => {
        const withoutIp = selfSigned("without-ip");
        const r = await smokeOverHttps(withoutIp, withoutIp.cert);
        expect(r.status).toBe(1);
        // curl checks the address against the IP SANs (the CN is no match for an IP address).
        expect(r.stdout).toContain("certificate subject name 'titanium' does not match target host name '127.0.0.1'");
        // The trust comes from the stack output: without it the same server is refused for another reason.
        const withIp = selfSigned("untrusted", "IP:127.0.0.1");
        const untrusted = await smokeOverHttps(withIp, undefined);
        expect(untrusted.status).toBe(1);
        expect(untrusted.stdout).toContain("SSL certificate problem");
      });
    });
  });
});

describe("the offline-plan comment", () => {
  const bin = path.join(tmp, "bin");
  mkdirSync(bin);
  symlinkSync(path.join(FAKES, "npm.sh"), path.join(bin, "npm"));
  const pathEnv = `${bin}:${process.env.PATH}`;

  /** A base checkout that only knows the dev stack (prod is new in the PR). */
  function baseCheckout(): string {
    const dir = mkdtempSync(path.join(tmp, "base-"));
    writeFileSync(path.join(dir, "Pulumi.dev.yaml"), "config: {}\n");
    return dir;
  }

  it("plans every stack in head and base, diffs them, and marks a blocked stack", () => {
    const out = path.join(tmp, "plans-blocked");
    const r = script("offline-plans.sh", [REPO_ROOT, baseCheckout(), out], { PATH: pathEnv, FAKE_NPM_BLOCK: "prod" });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe("blocking=true");
    for (const stack of stackNames()) {
      expect(readFileSync(path.join(out, `head-${stack}.json`), "utf8")).toContain(`"stack":"${stack}"`);
      expect(readFileSync(path.join(out, `diff-${stack}.md`), "utf8")).toContain(`Offline plan diff: stack \`${stack}\``);
    }
    expect(readFileSync(path.join(out, "diff-dev.md"), "utf8")).toContain("1 → 1 resources");
    expect(readFileSync(path.join(out, "diff-prod.md"), "utf8")).toContain("0 → 1 resources");

    const comment = script("plan-comment.sh", [out, "0123456789abcdef", "fedcba9876543210"]);
    expect(comment.status, comment.stderr).toBe(0);
    const body = comment.stdout;
    expect(body.split("\n")[0]).toBe(script("comment-marker.sh", []).stdout.trim());
    // What was planned: the PR head merged into that base commit, compared with the base alone.
    expect(body).toContain("this pull request's head 0123456 merged into the base branch at fedcba9");
    expect(body).toContain("compared with fedcba9 alone");
    expect(body).toContain("### ✅ `dev`: no blocking findings");
    expect(body).toContain("### ❌ `prod`: blocking findings");
    expect(body).toContain("mandatory violation in prod");
    expect(body).toContain("_The base (fedcba9) has no usable plan for `prod`");
    expect(body).not.toContain("has no usable plan for `dev`");
    // Without the base it was compared with, the comment could not say what it shows.
    const noBase = script("plan-comment.sh", [out, "0123456789abcdef"]);
    expect(noBase.status).not.toBe(0);
    expect(noBase.stderr).toContain("<base sha>");
    expect(script("plan-comment.sh", [out, "0123456789abcdef", "main"]).stderr).toContain("'main' is not a commit sha");
  });

  it("plan-base.sh compares with the base tip GitHub merged the PR into, not the older pull_request.base.sha", () => {
    // main: c0 → c1 (another PR merged after this one was opened); the PR branches from c0.
    const { dir, shas } = repoWith([{ "a.txt": "0" }, { "a.txt": "1" }]);
    const [c0, c1] = shas as [string, string];
    git(dir, "checkout", "-q", "-b", "feature", c0);
    writeFileSync(path.join(dir, "b.txt"), "pr");
    git(dir, "add", "-A");
    git(dir, "commit", "-q", "-m", "the PR");
    const prHead = git(dir, "rev-parse", "HEAD");
    // refs/pull/<n>/merge as GitHub builds it: the PR head merged into the base branch's tip.
    git(dir, "checkout", "-q", "--detach", c1);
    git(dir, "merge", "-q", "--no-ff", "-m", "Merge into c1", prHead);
    const r = script("plan-base.sh", [prHead], {}, dir);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(c1); // pull_request.base.sha would still be c0 here
    expect(r.stdout.trim()).not.toBe(c0);
    // Anything but that merge is refused: another PR head, a plain checkout of the head.
    const foreign = script("plan-base.sh", [c0], {}, dir);
    expect(foreign.status).toBe(1);
    expect(foreign.stderr).toContain("is not GitHub's merge of the pull request head");
    git(dir, "checkout", "-q", prHead);
    expect(script("plan-base.sh", [prHead], {}, dir).status).toBe(1);
  });

  it("reports a crashed plan with its log; only a clean run is not blocking", () => {
    const out = path.join(tmp, "plans-crashed");
    const r = script("offline-plans.sh", [REPO_ROOT, baseCheckout(), out], { PATH: pathEnv, FAKE_NPM_CRASH: "dev" });
    expect(r.stdout.trim()).toBe("blocking=true");
    const body = script("plan-comment.sh", [out, "abcdef0", "1234567"]).stdout;
    expect(body).toContain("### ❌ `dev`: the plan failed");
    expect(body).toContain("TypeError: boom in");
    expect(body).toContain("### ✅ `prod`");

    const clean = path.join(tmp, "plans-clean");
    expect(script("offline-plans.sh", [REPO_ROOT, baseCheckout(), clean], { PATH: pathEnv }).stdout.trim()).toBe("blocking=false");
  });

  it("a crashed plan:diff costs only that diff: every stack is planned, the verdict stands, the comment says so", () => {
    const out = path.join(tmp, "plans-diff-crashed");
    const r = script("offline-plans.sh", [REPO_ROOT, baseCheckout(), out], { PATH: pathEnv, FAKE_NPM_DIFF_CRASH: "dev", FAKE_NPM_BLOCK: "prod" });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe("blocking=true"); // prod's violation, planned after dev's diff crashed
    expect(r.stderr).toContain("dev plan:diff exit 1");
    const devDiff = readFileSync(path.join(out, "diff-dev.md"), "utf8");
    expect(devDiff).toContain("The diff against the base failed");
    expect(devDiff).toContain("diff-dev.log");
    expect(devDiff).not.toContain("half a"); // not a truncated diff passed off as the diff
    expect(readFileSync(path.join(out, "diff-dev.log"), "utf8")).toContain("reading 'resources'");
    expect(readFileSync(path.join(out, "diff-prod.md"), "utf8")).toContain("0 → 1 resources");
    const body = script("plan-comment.sh", [out, "abcdef0", "1234567"]).stdout;
    expect(body).toContain("### ✅ `dev`: no blocking findings");
    expect(body).toContain("The diff against the base failed");
    expect(body).toContain("reading 'resources'");
    expect(body).toContain("### ❌ `prod`: blocking findings");
    expect(body).toContain("mandatory violation in prod");

    // A diff failure alone does not block: the policy verdict is the plans'.
    const alone = path.join(tmp, "plans-diff-crashed-alone");
    expect(script("offline-plans.sh", [REPO_ROOT, baseCheckout(), alone], { PATH: pathEnv, FAKE_NPM_DIFF_CRASH: "dev,prod" }).stdout.trim()).toBe("blocking=false");
  });

  describe("upsert-comment.sh", () => {
    const repo = "acme/titanium";
    const headSha = "f".repeat(40);
    const stateFile = path.join(tmp, "gh-comments.json");
    const env = { GH, FAKE_GH_STATE: stateFile };
    const marker = "<!-- titanium:offline-plan -->";
    const bodyFile = (text: string) => {
      const f = path.join(tmp, `body-${Math.random()}.md`);
      writeFileSync(f, text);
      return f;
    };
    const state = () => JSON.parse(readFileSync(stateFile, "utf8")) as {
      comments: { id: number; issue: number; body: string; user: { login: string } }[];
      calls: { method: string }[];
    };

    it("creates the comment once, then updates it in place, leaving other comments alone", () => {
      writeFileSync(
        stateFile,
        JSON.stringify({
          pulls: { 7: { head: { sha: headSha } } },
          comments: [
            { id: 1, issue: 7, body: `${marker}\nby a human quoting the marker`, user: { login: "alice" } },
            { id: 2, issue: 7, body: "unrelated bot comment", user: { login: "github-actions[bot]" } },
          ],
        }),
      );
      expect(script("upsert-comment.sh", [repo, "7", headSha, bodyFile(`${marker}\nfirst`)], env).stdout).toContain("commented on PR #7");
      expect(script("upsert-comment.sh", [repo, "7", headSha, bodyFile(`${marker}\nsecond`)], env).stdout).toMatch(/updated comment \d+ on PR #7/);
      const comments = state().comments;
      expect(comments.map((c) => c.body)).toEqual([`${marker}\nby a human quoting the marker`, "unrelated bot comment", `${marker}\nsecond`]);
    });

    it("refuses a stale or foreign artifact, a bad PR number and a body without the marker", () => {
      writeFileSync(stateFile, JSON.stringify({ pulls: { 7: { head: { sha: headSha } } } }));
      const stale = script("upsert-comment.sh", [repo, "7", "a".repeat(40), bodyFile(`${marker}\nx`)], env);
      expect(stale.status).toBe(1);
      expect(stale.stderr).toContain("not commenting");
      expect(script("upsert-comment.sh", [repo, "7; rm -rf /", headSha, bodyFile(`${marker}\nx`)], env).stderr).toContain("is not a pull request number");
      expect(script("upsert-comment.sh", [repo, "7", headSha, bodyFile("no marker")], env).stderr).toContain("does not start with the marker");
      expect(state().calls.filter((c) => c.method !== "GET")).toEqual([]);
    });

    it("neutralises mentions and issue references: the artifact is the PR's output, posted as the repository's bot", () => {
      // A fork's code writes the comment (its plan, its plan-comment.sh): as the bot it must not ping people or
      // teams, nor leave "mentioned this" cross-references on other issues and repositories.
      writeFileSync(stateFile, JSON.stringify({ pulls: { 9: { head: { sha: headSha } } } }));
      const text = `${marker}\n## ✅ ok\ncc @octocat @acme/platform, fixes #12 and acme/other#3 (GH-4)\n\`\`\`\nnpm @pulumi/gcp\n\`\`\``;
      const r = script("upsert-comment.sh", [repo, "9", headSha, bodyFile(text)], env);
      expect(r.status, r.stderr).toBe(0);
      const body = state().comments[0]!.body;
      expect(body.split("\n")[0]).toBe(marker);
      expect(body).not.toMatch(/@[A-Za-z0-9]/);
      expect(body).not.toMatch(/#\d/);
      expect(body).not.toMatch(/GH-\d/i);
      // Only invisible characters were added: the text reads the same.
      expect(body.replace(/\u200b/g, "")).toBe(text);
    });

    it("truncates a huge body to whole characters and closes what it cut open, so the note is not swallowed by a code block", () => {
      writeFileSync(stateFile, JSON.stringify({ pulls: { 10: { head: { sha: headSha } } } }));
      // "planxxxx": the cut at 60000 bytes lands inside a multi-byte character.
      const text = `${marker}\n<details><summary>planxxxx</summary>\n\n\`\`\`\n${"é ✅ x\n".repeat(20_000)}\`\`\`\n</details>\n`;
      expect(script("upsert-comment.sh", [repo, "10", headSha, bodyFile(text)], env).status).toBe(0);
      const body = state().comments[0]!.body;
      expect(body.length).toBeLessThan(65_536);
      expect(body).not.toContain("\ufffd");
      const [before, note] = body.split(/\n\n… \(truncated/);
      expect(note, body.slice(-300)).toBeDefined();
      expect(before!.match(/^```/gm)!.length % 2, "fences balanced before the note").toBe(0);
      expect(before!.match(/<details>/g)!.length).toBe(before!.match(/<\/details>/g)?.length ?? 0);
    });

    it("pull-request-of.sh finds a fork's pull request from the event (head owner, branch, commit), not from the artifact", () => {
      const other = "e".repeat(40);
      writeFileSync(
        stateFile,
        JSON.stringify({
          pulls: {
            4: { head: { sha: headSha, label: "someone:feature" }, state: "closed" },
            5: { head: { sha: headSha, label: "mallory:feature" } },
            6: { head: { sha: other, label: "someone:feature" } },
            7: { head: { sha: headSha, label: "someone:feature" } },
          },
        }),
      );
      const of = (owner: string, sha: string) => script("pull-request-of.sh", [repo, owner, "feature", sha], env);
      expect(of("someone", headSha).stdout.trim()).toBe("7");
      expect(of("someone", other).stdout.trim()).toBe("6");
      // Pushed again since (a newer run comments), or nobody's: nothing, and no failure.
      const none = of("someone", "a".repeat(40));
      expect(none.status, none.stderr).toBe(0);
      expect(none.stdout).toBe("");
      expect(of("nobody", headSha).stdout).toBe("");
    });

    it("a run that left no plan replaces the previous push's plan with a note, never leaves it looking current", () => {
      writeFileSync(stateFile, JSON.stringify({ pulls: { 11: { head: { sha: headSha } } } }));
      expect(script("upsert-comment.sh", [repo, "11", headSha, bodyFile(`${marker}\n### ✅ \`dev\`: no blocking findings`)], env).status).toBe(0);
      const missing = script("plan-comment-missing.sh", [headSha, "https://github.com/acme/titanium/actions/runs/5"]);
      expect(missing.status, missing.stderr).toBe(0);
      expect(script("upsert-comment.sh", [repo, "11", headSha, bodyFile(missing.stdout)], env).status).toBe(0);
      const comments = state().comments.filter((c) => c.issue === 11);
      expect(comments).toHaveLength(1);
      expect(comments[0]!.body).toContain(`No offline plan for ${headSha.slice(0, 7)}`);
      expect(comments[0]!.body).toContain("https://github.com/acme/titanium/actions/runs/5");
      expect(comments[0]!.body).not.toContain("no blocking findings");
      expect(script("plan-comment-missing.sh", ["main", "x"]).status).not.toBe(0);
    });

    it("truncates a body GitHub would refuse", () => {
      writeFileSync(stateFile, JSON.stringify({ pulls: { 8: { head: { sha: headSha } } } }));
      expect(script("upsert-comment.sh", [repo, "8", headSha, bodyFile(`${marker}\n${"x".repeat(100_000)}`)], env).status).toBe(0);
      const body = state().comments[0]!.body;
      expect(body.length).toBeLessThan(65_536);
      expect(body).toContain("(truncated");
    });
  });
});

describe("drift", () => {
  it("drift-check.sh tells clean, drift and a failed check apart", () => {
    const out = path.join(tmp, "drift-results");
    const calls = path.join(tmp, "drift-calls.jsonl");
    const check = (exit: string, output: string) => {
      const r = script("drift-check.sh", ["dev", out], { PULUMI: path.join(FAKES, "recorder.sh"), FAKE_EXIT: exit, FAKE_OUTPUT: output, FAKE_LOG: calls });
      expect(r.status, r.stderr).toBe(0);
      return JSON.parse(readFileSync(path.join(out, "drift-dev.json"), "utf8")) as { result: string; log: string };
    };
    expect(check("0", "Resources: 42 unchanged").result).toBe("clean");
    const drift = check("255", "~ gcp:compute:Firewall admin update [diff: ~sourceRanges]\nerror: no changes were expected but changes were proposed");
    expect(drift.result).toBe("drift");
    expect(drift.log).toContain("sourceRanges");
    expect(check("255", "error: failed to decrypt: permission denied on KMS key").result).toBe("error");
    // The preview judges the stack with the pack and the stack's own policy levels, from files that exist.
    const args = JSON.parse(readFileSync(calls, "utf8").trim().split("\n")[0]!) as string[];
    const flag = (name: string) => args[args.indexOf(name) + 1]!;
    expect(path.relative(REPO_ROOT, flag("--policy-pack"))).toBe("policies");
    expect(path.relative(REPO_ROOT, flag("--policy-pack-config"))).toBe("policies/config.dev.json");
    expect(existsSync(flag("--policy-pack-config"))).toBe(true);
  });

  it("drift-check.sh reports busy, not drift, while a deploy holds the stack's lock (before or during the preview)", () => {
    const out = path.join(tmp, "drift-busy");
    const counter = path.join(tmp, "drift-busy-calls");
    const driftOutput = "error: no changes were expected but changes were proposed";
    const check = (env: Record<string, string>, name: string) => {
      rmSync(counter, { force: true });
      const pulumiLog = path.join(tmp, `drift-busy-${name}.jsonl`);
      const r = script("drift-check.sh", ["prod", out], {
        PULUMI: path.join(FAKES, "recorder.sh"),
        FAKE_LOG: pulumiLog,
        GCLOUD: path.join(FAKES, "gcloud.sh"),
        FAKE_GCLOUD_CALLS: counter,
        PULUMI_BACKEND_URL: "gs://titanium-state-prod/",
        ...env,
      });
      expect(r.status, r.stderr).toBe(0);
      const result = JSON.parse(readFileSync(path.join(out, "drift-prod.json"), "utf8")) as { result: string; log: string };
      // Both stand-ins append their arguments to FAKE_LOG.
      const calls = existsSync(pulumiLog) ? readFileSync(pulumiLog, "utf8").trim().split("\n").map((l) => JSON.parse(l) as string[]) : [];
      return { result, previewed: calls.some((c) => c[0] === "preview"), listed: calls.filter((c) => c[0] === "storage").map((c) => c.slice(0, 3).join(" ")) };
    };
    const lock = { FAKE_GCLOUD_OBJECTS: "8c1f0a2e-1b7d-4a0e-9f55-2f1d7c3b9a10.json" };
    // Locked from the start: no preview at all.
    const before = check({ ...lock, FAKE_EXIT: "0", FAKE_OUTPUT: "" }, "before");
    expect(before.result.result).toBe("busy");
    expect(before.previewed).toBe(false);
    expect(before.result.log).toContain("gs://titanium-state-prod/.pulumi/locks/organization/titanium/prod/");
    // A deploy started during the preview: its differences are not drift.
    expect(check({ ...lock, FAKE_GCLOUD_OBJECTS_FROM: "2", FAKE_EXIT: "255", FAKE_OUTPUT: driftOutput }, "during").result.result).toBe("busy");
    // No lock: drift is drift; the lock was looked for before and after, where the GCS backend keeps it.
    const none = check({ FAKE_EXIT: "255", FAKE_OUTPUT: driftOutput }, "none");
    expect(none.result.result).toBe("drift");
    expect(none.previewed).toBe(true);
    expect(none.listed).toEqual(Array(2).fill("storage ls gs://titanium-state-prod/.pulumi/locks/organization/titanium/prod/"));
    // Without a backend URL no lock is looked for: a lock the stand-in would list is never asked about.
    const unset = check({ ...lock, PULUMI_BACKEND_URL: "", FAKE_EXIT: "255", FAKE_OUTPUT: driftOutput }, "unset");
    expect(unset.result.result).toBe("drift");
    expect(unset.listed).toEqual([]);
  });

  it("drift-check.sh --servers, before the tunnel: records \"stopped\" with the start command when no K3s server runs, and compares nothing", () => {
    const out = path.join(tmp, "drift-servers");
    const outputs = path.join(tmp, "drift-servers-outputs.json");
    writeFileSync(
      outputs,
      JSON.stringify({ pipelineAccess: { method: "iap-tunnel", project: "titanium-dev-4821", port: 6443, apiDnsName: "k3s-api.dev.titanium.example.org", tunnelTargets: [{ instance: "titanium-dev-server-0", zone: "us-east5-a" }] } }),
    );
    const servers = (status: string, file = outputs) => {
      rmSync(out, { recursive: true, force: true });
      const pulumiLog = path.join(tmp, `drift-servers-pulumi-${Math.random()}.jsonl`);
      const r = script("drift-check.sh", ["dev", out, "--servers", file], {
        PULUMI: path.join(FAKES, "recorder.sh"),
        GCLOUD: path.join(FAKES, "gcloud.sh"),
        FAKE_LOG: pulumiLog,
        FAKE_GCLOUD_STATUS: `titanium-dev-server-0=${status}`,
      });
      const resultFile = path.join(out, "drift-dev.json");
      const result = existsSync(resultFile) ? (JSON.parse(readFileSync(resultFile, "utf8")) as { stack: string; result: string; log: string }) : undefined;
      const calls = existsSync(pulumiLog) ? readFileSync(pulumiLog, "utf8").trim().split("\n").map((l) => JSON.parse(l) as string[]) : [];
      return { ...r, result, calls };
    };

    // Stopped: the step's output says so (stdout is $GITHUB_OUTPUT: the key alone), the result is written.
    const stopped = servers("TERMINATED");
    expect(stopped.status, stopped.stderr).toBe(0);
    expect(stopped.stdout).toBe("running=false\n");
    expect(stopped.result).toMatchObject({ stack: "dev", result: "stopped" });
    expect(stopped.result!.log).toContain("titanium-dev-server-0 (us-east5-a) is TERMINATED");
    expect(stopped.result!.log).toContain("`gcloud compute instances start titanium-dev-server-0 --zone us-east5-a --project titanium-dev-4821`");
    expect(stopped.result!.log).toContain("the comparison resumes the first night after it is started");
    // The job log keeps the annotation; the issue gets the sentence.
    expect(stopped.stderr).toContain("::error title=K3s server not running::titanium-dev-server-0");
    expect(stopped.result!.log).not.toContain("::error");
    // No preview (and no lock lookup, no describe of anything else): only the status was asked for.
    expect(stopped.calls.map((c) => c.slice(0, 3).join(" "))).toEqual(["compute instances describe"]);

    // Running: go on to the tunnel and the preview, which writes the night's result.
    const running = servers("RUNNING");
    expect(running.status, running.stderr).toBe(0);
    expect(running.stdout).toBe("running=true\n");
    expect(running.result).toBeUndefined();
    // A status that could not be read is no verdict: go on (the tunnel then works or fails as before).
    const denied = servers("DENIED");
    expect(denied.stdout).toBe("running=true\n");
    expect(denied.stderr).toContain("::warning title=K3s server status unknown::");
    expect(denied.result).toBeUndefined();
    // A broken check fails the step (the workflow records a failed setup), with nothing on the output.
    const broken = path.join(tmp, "drift-servers-broken.json");
    writeFileSync(broken, "not json");
    const failed = servers("RUNNING", broken);
    expect(failed.status).not.toBe(0);
    expect(failed.stdout).toBe("");
    expect(failed.result).toBeUndefined();
    expect(script("drift-check.sh", ["dev", out, "--servers"]).status).toBe(2);
  });

  it("drift-issue.sh keeps ONE labelled issue: opens, updates, then closes it, never touching a person's issue with the label", () => {
    const stateFile = path.join(tmp, "gh-drift.json");
    // A person's issue about drift, labelled by hand: older than any report, so a label-only lookup would pick it.
    const persons = { number: 6, title: "Why did prod drift last week?", state: "open", body: "my notes", labels: [{ name: "drift" }], user: { login: "alice" } };
    writeFileSync(stateFile, JSON.stringify({ issues: [{ number: 5, title: "other", state: "open", labels: [{ name: "bug" }] }, persons] }));
    const results = path.join(tmp, "drift-issue");
    mkdirSync(results);
    const write = (stack: string, result: string) =>
      writeFileSync(path.join(results, `drift-${stack}.json`), JSON.stringify({ stack, result, log: `preview log of ${stack}` }));
    const env = { GH, FAKE_GH_STATE: stateFile, GITHUB_REPOSITORY: "acme/titanium", GITHUB_RUN_ID: "99" };
    const stacks = JSON.stringify(["dev", "prod"]);
    const state = () => JSON.parse(readFileSync(stateFile, "utf8")) as {
      issues: { number: number; state: string; body: string; labels: { name: string }[] }[];
      comments: { issue: number; body: string }[];
      labels: string[];
    };
    const drifts = () => state().issues.filter((i) => i.number !== persons.number && i.labels.some((l) => l.name === "drift"));

    write("dev", "drift");
    write("prod", "clean");
    expect(script("drift-issue.sh", [results, stacks], env).stdout).toContain("opened an issue labelled drift");
    expect(drifts()).toHaveLength(1);
    expect(drifts()[0]!.body).toMatch(/^<!-- titanium:drift-report -->\n/);
    expect(drifts()[0]!.body).toContain("| `dev` | drift: the cloud differs from the program |");
    expect(drifts()[0]!.body).toContain("preview log of dev");
    expect(drifts()[0]!.body).not.toContain("preview log of prod");
    expect(drifts()[0]!.body).toContain("https://github.com/acme/titanium/actions/runs/99");
    expect(state().labels).toEqual(["drift"]);

    write("prod", "error");
    expect(script("drift-issue.sh", [results, stacks], env).stdout).toContain(`updated issue #${drifts()[0]!.number}`);
    expect(drifts()).toHaveLength(1);
    expect(drifts()[0]!.body).toContain("| `prod` | the check failed |");
    expect(state().comments.at(-1)!.body).toContain("Still drifting: dev, prod");

    write("dev", "clean");
    write("prod", "clean");
    expect(script("drift-issue.sh", [results, stacks], env).stdout).toContain("closed issue");
    expect(drifts()[0]!.state).toBe("closed");
    expect(state().issues.find((i) => i.number === 5)!.state).toBe("open");
    expect(state().issues.find((i) => i.number === persons.number)).toEqual(persons);
    expect(state().comments.filter((c) => c.issue === persons.number)).toEqual([]);
    expect(script("drift-issue.sh", [results, stacks], env).stdout).toContain("no drift");
    expect(drifts()).toHaveLength(1);

    // A stack a deploy was changing is neither drift nor clean: no issue opened, none closed.
    write("prod", "busy");
    expect(script("drift-issue.sh", [results, stacks], env).stdout).toContain("not compared (a deploy was running): prod");
    expect(drifts().filter((i) => i.state === "open")).toHaveLength(0);
    write("dev", "drift");
    expect(script("drift-issue.sh", [results, stacks], env).stdout).toContain("opened an issue labelled drift");
    const reopened = drifts().find((i) => i.state === "open")!;
    expect(reopened.body).toContain("| `prod` | not compared: a deploy was running |");
    write("dev", "clean");
    expect(script("drift-issue.sh", [results, stacks], env).stdout).toContain(`issue #${reopened.number} stays open`);
    expect(drifts().find((i) => i.number === reopened.number)!.state).toBe("open");
  });

  it("drift-issue.sh: a stack whose K3s server is stopped opens or keeps the issue with the start command, never closes it, and is not called drifting", () => {
    const stateFile = path.join(tmp, "gh-drift-stopped.json");
    writeFileSync(stateFile, JSON.stringify({}));
    const results = path.join(tmp, "drift-stopped");
    mkdirSync(results);
    const startCommand = "gcloud compute instances start titanium-dev-server-0 --zone us-east5-a --project titanium-dev-4821";
    const write = (stack: string, result: string, log = `preview log of ${stack}`) => writeFileSync(path.join(results, `drift-${stack}.json`), JSON.stringify({ stack, result, log }));
    const env = { GH, FAKE_GH_STATE: stateFile, GITHUB_REPOSITORY: "acme/titanium", GITHUB_RUN_ID: "103" };
    const stacks = JSON.stringify(["dev", "prod"]);
    const state = () => JSON.parse(readFileSync(stateFile, "utf8")) as {
      issues: { number: number; state: string; body: string }[];
      comments: { issue: number; body: string }[];
    };
    const stoppedLog = `titanium-dev-server-0 (us-east5-a) is TERMINATED, so the K3s API cannot be reached through it: start it with \`${startCommand}\`\n\nNo preview tonight.`;

    // No issue open, prod clean, dev's server stopped: the issue opens and says what to do.
    write("dev", "stopped", stoppedLog);
    write("prod", "clean");
    const opened = script("drift-issue.sh", [results, stacks], env);
    expect(opened.status, opened.stderr).toBe(0);
    expect(opened.stdout).toContain("opened an issue labelled drift");
    const issue = state().issues[0]!;
    expect(issue.body).toContain("| `dev` | not compared: no K3s server running (start it: see below) |");
    expect(issue.body).toContain(startCommand);
    expect(issue.body).toContain('section "A stopped K3s server"');
    expect(issue.body).not.toContain("unknown result");

    // Still stopped the next night: updated, not closed, and the comment does not call it drift.
    expect(script("drift-issue.sh", [results, stacks], env).stdout).toContain(`updated issue #${issue.number}`);
    expect(state().issues[0]!.state).toBe("open");
    const note = state().comments.at(-1)!.body;
    expect(note).toContain("Not compared, no K3s server running: dev.");
    expect(note).not.toContain("Still drifting");
    // Beside real drift, each is named for what it is.
    write("prod", "drift");
    script("drift-issue.sh", [results, stacks], env);
    expect(state().comments.at(-1)!.body).toMatch(/^Still drifting: prod\. Not compared, no K3s server running: dev\. /);

    // Started and compared clean: the issue closes.
    write("dev", "clean");
    write("prod", "clean");
    expect(script("drift-issue.sh", [results, stacks], env).stdout).toContain(`closed issue #${issue.number}`);
  });

  it("drift-issue.sh keeps the issue under GitHub's 65536-character limit, whatever the previews printed", () => {
    // A drifted ConfigMap (a Grafana dashboard) or Helm values print lines of tens of kilobytes: the tail of
    // each log (where the summary and the error are) goes in, the rest is in the run's artifacts.
    const stateFile = path.join(tmp, "gh-drift-huge.json");
    writeFileSync(stateFile, JSON.stringify({}));
    const results = path.join(tmp, "drift-huge");
    mkdirSync(results);
    for (const stack of ["dev", "prod"]) {
      const log = `${"~ kubernetes:core/v1:ConfigMap dashboards [diff: ~data]\n".repeat(3)}${"é".repeat(120_000)}\nerror: no changes were expected but changes were proposed (${stack})\n`;
      writeFileSync(path.join(results, `drift-${stack}.json`), JSON.stringify({ stack, result: "drift", log }));
    }
    const env = { GH, FAKE_GH_STATE: stateFile, GITHUB_REPOSITORY: "acme/titanium", GITHUB_RUN_ID: "102" };
    const r = script("drift-issue.sh", [results, JSON.stringify(["dev", "prod"])], env);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain("opened an issue labelled drift");
    const body = (JSON.parse(readFileSync(stateFile, "utf8")) as { issues: { body: string }[] }).issues[0]!.body;
    expect([...body].length).toBeLessThanOrEqual(65_536);
    for (const stack of ["dev", "prod"]) expect(body).toContain(`changes were proposed (${stack})`);
    expect(body).toContain("| `prod` | drift: the cloud differs from the program |");
  });

  it("drift-issue.sh finds its open report by author and marker, not by the label: a report a person unlabelled is updated, never joined by a second", () => {
    const stateFile = path.join(tmp, "gh-drift-unlabelled.json");
    const bot = "github-actions[bot]";
    // Last night's report, whose drift label someone took off while triaging; a person's labelled issue beside it.
    const report = { number: 11, title: "Drift: the cloud differs from the Pulumi program", state: "open", body: "<!-- titanium:drift-report -->\nold", labels: [], user: { login: bot } };
    const persons = { number: 12, title: "drift?", state: "open", body: "<!-- titanium:drift-report -->\nquoted", labels: [{ name: "drift" }], user: { login: "alice" } };
    writeFileSync(stateFile, JSON.stringify({ issues: [report, persons], labels: ["drift"] }));
    const results = path.join(tmp, "drift-unlabelled");
    mkdirSync(results);
    writeFileSync(path.join(results, "drift-dev.json"), JSON.stringify({ stack: "dev", result: "drift", log: "" }));
    const env = { GH, FAKE_GH_STATE: stateFile, GITHUB_REPOSITORY: "acme/titanium", GITHUB_RUN_ID: "101" };
    const state = () => JSON.parse(readFileSync(stateFile, "utf8")) as { issues: { number: number; state: string; body: string; labels: { name: string }[]; user: { login: string } }[] };

    const r = script("drift-issue.sh", [results, JSON.stringify(["dev"])], env);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain("updated issue #11");
    expect(state().issues.filter((i) => i.user.login === bot && i.state === "open")).toHaveLength(1);
    const updated = state().issues.find((i) => i.number === 11)!;
    expect(updated.body).toContain("| `dev` | drift");
    expect(updated.labels.map((l) => l.name)).toEqual(["drift"]);
    expect(state().issues.find((i) => i.number === 12)).toEqual(persons);

    // Clean again: that same report is closed, the person's issue stays.
    writeFileSync(path.join(results, "drift-dev.json"), JSON.stringify({ stack: "dev", result: "clean", log: "" }));
    expect(script("drift-issue.sh", [results, JSON.stringify(["dev"])], env).stdout).toContain("closed issue #11");
    expect(state().issues.find((i) => i.number === 12)!.state).toBe("open");
  });

  it("drift-issue.sh counts an expected stack without a result as not checked: a crashed check never closes the issue", () => {
    const stateFile = path.join(tmp, "gh-drift-unchecked.json");
    // An open drift issue from an earlier night.
    writeFileSync(
      stateFile,
      JSON.stringify({ issues: [{ number: 7, title: "Drift", state: "open", body: "<!-- titanium:drift-report -->\nold", labels: [{ name: "drift" }], user: { login: "github-actions[bot]" } }] }),
    );
    const results = path.join(tmp, "drift-unchecked");
    mkdirSync(results);
    // dev's check ran and is clean; prod's job crashed (checkout, setup-node or npm ci) and left no result.
    writeFileSync(path.join(results, "drift-dev.json"), JSON.stringify({ stack: "dev", result: "clean", log: "" }));
    const env = { GH, FAKE_GH_STATE: stateFile, GITHUB_REPOSITORY: "acme/titanium", GITHUB_RUN_ID: "100" };
    const state = () => JSON.parse(readFileSync(stateFile, "utf8")) as {
      issues: { number: number; state: string; body: string }[];
      comments: { issue: number; body: string }[];
    };

    const r = script("drift-issue.sh", [results, JSON.stringify(["dev", "prod"])], env);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).not.toContain("closed issue");
    expect(r.stdout).toContain("updated issue #7");
    expect(r.stderr).toContain("not checked (no result): prod");
    const issue = state().issues.find((i) => i.number === 7)!;
    expect(issue.state).toBe("open");
    expect(issue.body).toContain("| `prod` | not checked: no result (the check job did not finish) |");
    expect(issue.body).toContain("| `dev` | clean |");
    expect(state().comments.at(-1)!.body).toContain("Not checked: prod. ([run]");
    expect(state().comments.at(-1)!.body).not.toContain("Still drifting");

    // With no issue open, the same results open one; with no result at all, every stack is unchecked.
    writeFileSync(stateFile, JSON.stringify({}));
    expect(script("drift-issue.sh", [results, JSON.stringify(["dev", "prod"])], env).stdout).toContain("opened an issue labelled drift");
    const empty = path.join(tmp, "drift-none");
    mkdirSync(empty);
    writeFileSync(
      stateFile,
      // Opened before the report carried its marker: found by the bot's title.
      JSON.stringify({ issues: [{ number: 8, title: "Drift: the cloud differs from the Pulumi program", state: "open", body: "old", labels: [{ name: "drift" }], user: { login: "github-actions[bot]" } }] }),
    );
    expect(script("drift-issue.sh", [empty, JSON.stringify(["dev", "prod"])], env).stdout).toContain("updated issue #8");
    expect(state().issues[0]!.body).toMatch(/`dev` \| not checked[\s\S]*`prod` \| not checked/);
    // The expected list is required: without it the script cannot tell a missing stack.
    expect(script("drift-issue.sh", [results], env).status).not.toBe(0);
    expect(script("drift-issue.sh", [results, "[]"], env).status).not.toBe(0);
  });
});

describe("script hygiene", () => {
  it("every CI script is executable and strict", () => {
    const texts = spawnSync("bash", ["-c", `for f in "${SCRIPTS}"/*.sh; do [[ -x "$f" ]] || echo "not executable: $f"; grep -q '^set -euo pipefail$' "$f" || echo "not strict: $f"; done`], {
      encoding: "utf8",
    });
    expect(texts.stdout).toBe("");
  });
});
