import { describe, expect, it } from "vitest";
import * as pulumi from "@pulumi/pulumi";
import { loadConfig } from "./config";
import { configuredRun, holdsSecret, one, readStackConfig, runProgram } from "./harness";

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
