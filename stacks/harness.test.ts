import { describe, expect, it } from "vitest";
import { one, runProgram } from "./harness";

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
});
