import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import * as pulumi from "@pulumi/pulumi";
import { loadConfig } from "./config";
import { configuredRun, holdsSecret, ofType, one, ProgramError, readStackConfig, REPO_ROOT, runProgram, UNKNOWN } from "./harness";

describe("whole-program harness", () => {
  it("runs the dev stack and records the explicit GCP provider with labels", async () => {
    const run = await runProgram({ stack: "dev" });
    const provider = one(run, "pulumi:providers:gcp", "gcp");
    expect(provider.inputs.project).toBe("titanium-dev-4821");
    expect(run.outputs.environment).toBe("dev");
  });
  it("runs prod in the same process with its own config", async () => {
    const run = await runProgram({ stack: "prod" });
    expect(run.outputs.environment).toBe("prod");
    expect(one(run, "pulumi:providers:gcp", "gcp").inputs.project).toBe("titanium-prod-4821");
  });
  it("exports the image set the update deploys as the plain output `images`, which previews and drift checks set again", async () => {
    // .github/scripts/deployed-images.sh reads it from `pulumi stack output --json`, where a secret would be masked.
    const run = await configuredRun("dev");
    expect(run.outputs.images).toEqual(loadConfig("dev", readStackConfig("dev")).images);
    expect(run.outputs.images).toMatchObject({ registry: expect.any(String), tag: expect.any(String), digests: {} });
    expect(run.secretOutputs).not.toContain("images");
  });
});

describe("a failed run", () => {
  it("refuses a bad config with the ConfigError alone: no stack traces are taken while the program runs", async () => {
    // Pulumi's SDK captures one per resource and promise: most of a run's time, which the suite's ~150 runs felt.
    const failed = await runProgram({ stack: "dev", config: { "gcp:zone": "europe-west1-b" } }).catch((err: unknown) => err);
    expect(failed).toBeInstanceOf(ProgramError);
    const cause = (failed as ProgramError).cause as Error;
    expect(cause.name).toBe("ConfigError");
    expect(cause.stack).toBe(`ConfigError: ${cause.message}`);
  });

  it("runs a program that fails for another reason again with stack traces, so its error says where it came from", async () => {
    const limit = Error.stackTraceLimit;
    const failed = await runProgram({ stack: "dev", entry: "./testing/failing-program.ts" }).catch((err: unknown) => err);
    expect(failed).toBeInstanceOf(ProgramError);
    const { cause, resources } = failed as ProgramError;
    expect(cause).toBeInstanceOf(TypeError);
    expect((cause as Error).message).toBe("a component's defect");
    expect((cause as Error).stack).toMatch(/\n +at componentWithADefect \(.*stacks\/testing\/failing-program\.ts(\?run=\d+)?:\d+:\d+\)/);
    expect(resources.map((r) => r.name)).toContain("registered-before-the-defect");
    expect(Error.stackTraceLimit, "the limit is back as it was for the code after a run").toBe(limit);
  });

  it.each([
    ["feeds a resource that others and an export depend on (what depends on it never registers)", { "test:defect": "apply" }],
    ["is an export's (the Stack awaits its exports)", { "test:defect": "export" }],
  ])("fails a run whose Output's apply throws, with that error and where it came from, when the apply %s", async (_case, config) => {
    const listeners = process.rawListeners("unhandledRejection");
    const failed = await runProgram({ stack: "dev", entry: "./testing/failing-program.ts", config }).catch((err: unknown) => err);
    expect(failed).toBeInstanceOf(ProgramError);
    const { cause, resources } = failed as ProgramError;
    expect(cause).toBeInstanceOf(RangeError);
    expect((cause as Error).message).toContain("an apply's defect on registered-before-the-defect");
    expect((cause as Error).stack).toMatch(/\n +at nameFrom \(.*stacks\/testing\/failing-program\.ts(\?run=\d+)?:\d+:\d+\)/);
    expect(resources.map((r) => r.name)).toEqual(["registered-before-the-defect"]);
    expect(process.rawListeners("unhandledRejection"), "the process's listeners are back").toEqual(listeners);
  }, 20_000);

  it("outside Vitest (npm run plan) runs once, with stack traces, and throws the program's own error", () => {
    const env = { ...process.env, VITEST: "" }; // as npm run plan runs it
    const script = `require("./stacks/harness").runProgram({ stack: "dev", entry: "./testing/failing-program.ts" }).then(() => process.exit(0), (e) => { console.log(e.cause.stack); process.exit(3); })`;
    const r = spawnSync(process.execPath, ["--import", "tsx", "-e", script], { cwd: REPO_ROOT, env, encoding: "utf8", timeout: 60_000 });
    expect(r.status, r.stderr).toBe(3);
    expect(r.stdout).toContain("TypeError: a component's defect");
    expect(r.stdout).toMatch(/\n +at componentWithADefect \(.*stacks\/testing\/failing-program\.ts:\d+:\d+\)/);
  }, 90_000);
});

describe("a first preview", () => {
  it("has no id yet for what it would create, as the engine answers, so a field built from one reads unknown", async () => {
    const run = await configuredRun("dev", { preview: true });
    // secretId: this.secret.id, backendService: service.id, network: this.network.id
    for (const grant of ofType(run, "gcp:secretmanager/secretIamMember:SecretIamMember")) expect(grant.inputs.secretId, grant.name).toBe(UNKNOWN);
    for (const rule of ofType(run, "gcp:compute/forwardingRule:ForwardingRule")) expect(rule.inputs.backendService, rule.name).toBe(UNKNOWN);
    expect(ofType(run, "gcp:compute/subnetwork:Subnetwork")[0]!.inputs.network).toBe(UNKNOWN);
    // An update's resources have their ids from the state.
    const update = await configuredRun("dev");
    expect(ofType(update, "gcp:compute/subnetwork:Subnetwork")[0]!.inputs.network).not.toBe(UNKNOWN);
  });
});

describe("secrets in what the plan prints", () => {
  const secret = (value: unknown) => ({ [pulumi.runtime.specialSigKey]: pulumi.runtime.specialSecretSig, value });
  it("masks an input key whose value holds a secret anywhere inside it, not only at its top", () => {
    expect(holdsSecret(secret("x"))).toBe(true);
    expect(holdsSecret({ data: { user: "admin", password: secret("hunter2") } })).toBe(true);
    expect(holdsSecret([{ value: "a" }, { value: secret("b") }])).toBe(true);
    expect(holdsSecret({ data: { user: "admin" }, list: ["a", 1, null] })).toBe(false);
  });
  it("treats an exported object holding a secret Output as secret, as the CLI shows it", async () => {
    expect(await pulumi.isSecret(pulumi.output({ user: "admin", password: pulumi.secret("hunter2") }))).toBe(true);
    expect(await pulumi.isSecret(pulumi.output({ user: "admin" }))).toBe(false);
  });
});
