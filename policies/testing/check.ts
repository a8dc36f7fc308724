/** Test helpers: run one policy (or all) over fixtures and read the findings. */
import type { EnforcementLevel } from "@pulumi/policy";
import type { RecordedResource } from "../../stacks/harness";
import type { TitaniumPolicy } from "../lib/policy";
import { runPolicies, type PolicyFinding, type PolicyRun } from "./engine";
import { fromRecorded } from "./fixtures";

export interface CheckOptions {
  /** Policy settings (`getConfig()`), on top of the schema defaults. */
  config?: Record<string, unknown>;
  level?: EnforcementLevel;
}

/** Runs one policy over resources (all of them form the stack for stack policies). */
export async function check(policy: TitaniumPolicy, resources: RecordedResource | RecordedResource[], o: CheckOptions = {}): Promise<PolicyRun> {
  const list = Array.isArray(resources) ? resources : [resources];
  return runPolicies([policy], fromRecorded(list), { [policy.name]: { enforcementLevel: o.level ?? policy.enforcementLevel, ...o.config } });
}

/** Just the messages of a run's findings. */
export const messages = (run: PolicyRun): string[] => run.findings.map((f: PolicyFinding) => f.message);
