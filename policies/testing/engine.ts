/**
 * Runs policies over resources the way the SDK's analyzer server does for `pulumi preview`
 * (`@pulumi/policy` server.js, `analyze` and `analyzeStack`), without the gRPC server:
 *
 * - each policy runs at its resolved level; `disabled` skips it, `remediate` counts as mandatory;
 * - `reportViolation` records a finding at that level, against the resource (or the URN a stack
 *   policy names);
 * - a policy that reads an unknown value through the SDK's proxy yields the SDK's advisory
 *   "can't run policy ... during preview" finding;
 * - `notApplicable` is recorded, not a finding.
 */
import type { EnforcementLevel, Severity } from "@pulumi/policy";
import { isStackPolicy, type TitaniumPolicy } from "../lib/policy";
import packageJson from "../package.json";
import { PACK_NAME } from "../policies";
import { isUnknownValueError } from "../lib/sdk";
import { NotApplicableError, resourceArgs, stackArgs, type PolicySubject } from "./fixtures";
import { resolvePolicyConfig, type PolicyPackConfigFile } from "./policy-config";

export interface PolicyFinding {
  policy: string;
  level: Exclude<EnforcementLevel, "disabled" | "remediate">;
  severity: Severity;
  /** `unknown`: the policy could not run because a value it read is unknown (preview). */
  kind: "violation" | "unknown";
  message: string;
  /** The resource judged (resource policies) or named (stack policies); absent for the stack as a whole. */
  urn?: string;
  type?: string;
  name?: string;
}

export interface PolicyRun {
  findings: PolicyFinding[];
  notApplicable: { policy: string; reason?: string; urn?: string }[];
  /** The level each policy ran at. */
  levels: Record<string, EnforcementLevel>;
}

export const PACK = { name: PACK_NAME, version: packageJson.version };

export async function runPolicies(
  policies: readonly TitaniumPolicy[],
  subjects: readonly PolicySubject[],
  configFile: PolicyPackConfigFile = {},
): Promise<PolicyRun> {
  const config = resolvePolicyConfig(policies, configFile);
  const byUrn = new Map(subjects.map((s) => [s.urn, s]));
  const run: PolicyRun = { findings: [], notApplicable: [], levels: {} };

  for (const policy of policies) {
    const { level: configured, props } = config.get(policy.name)!;
    run.levels[policy.name] = configured;
    if (configured === "disabled") continue;
    const level = configured === "remediate" ? "mandatory" : configured;
    const finding = (message: string, urn: string | undefined, kind: PolicyFinding["kind"] = "violation"): PolicyFinding => {
      const subject = urn ? byUrn.get(urn) : undefined;
      return {
        policy: policy.name,
        level: kind === "unknown" ? "advisory" : level,
        severity: policy.severity,
        kind,
        message,
        ...(urn ? { urn } : {}),
        ...(subject ? { type: subject.type, name: subject.name } : {}),
      };
    };
    const cantRun = (err: Error) => `can't run policy '${policy.name}' from policy pack '${PACK.name}@v${PACK.version}' during preview: ${err.message}`;

    if (isStackPolicy(policy)) {
      try {
        await policy.validateStack(stackArgs(subjects, props), (message, urn) => void run.findings.push(finding(message, urn)));
      } catch (err) {
        if (isUnknownValueError(err)) run.findings.push(finding(cantRun(err), undefined, "unknown"));
        else if (err instanceof NotApplicableError) run.notApplicable.push({ policy: policy.name, reason: err.reason });
        else throw new Error(`policy ${policy.name} failed on the stack: ${(err as Error).stack ?? String(err)}`);
      }
      continue;
    }
    for (const subject of subjects) {
      try {
        // The urn argument is ignored for resource policies: the finding is the resource's.
        await policy.validateResource(resourceArgs(subject, props), (message) => void run.findings.push(finding(message, subject.urn)));
      } catch (err) {
        if (isUnknownValueError(err)) run.findings.push(finding(cantRun(err), subject.urn, "unknown"));
        else if (err instanceof NotApplicableError) run.notApplicable.push({ policy: policy.name, reason: err.reason, urn: subject.urn });
        else throw new Error(`policy ${policy.name} failed on ${subject.urn}: ${(err as Error).stack ?? String(err)}`);
      }
    }
  }
  return run;
}

