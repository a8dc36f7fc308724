import { describe, expect, it } from "vitest";
import { loadConfig } from "./config";
import { configuredRun, one, readStackConfig, runProgram } from "./harness";

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
