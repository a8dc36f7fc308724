/**
 * The "Policies" section of the offline plan (`npm run plan -- --stack <s>`): every resource and
 * stack policy over the resources the whole program registered, with the stack's policy config
 * (`policies/config.<stack>.json`), one line per result and a summary. A mandatory violation makes
 * the section blocking, so the plan exits non-zero.
 */
import path from "node:path";
import type { ProgramRun } from "../stacks/harness";
import type { PlanSection } from "../stacks/plan";
import type { TitaniumPolicy } from "./lib/policy";
import { isStackPolicy } from "./lib/policy";
import { HELM_RELEASE_TYPES, isKubernetesComponent } from "./lib/k8s";
import { policies as packPolicies } from "./policies";
import { PACK, runPolicies, type PolicyFinding } from "./testing/engine";
import { fromRecorded } from "./testing/fixtures";
import { loadStackPolicyConfig, type PolicyPackConfigFile } from "./testing/policy-config";

export const SECTION_TITLE = "Policies";

const LEVEL_LABEL = { mandatory: "MANDATORY", advisory: "advisory " } as const;

function renderFinding(f: PolicyFinding): string {
  const where = f.type ? `${f.type}::${f.name}` : "(stack)";
  return `${LEVEL_LABEL[f.level]}  ${f.policy}  ${where}  ${f.message.replace(/\n/g, " ")}`;
}

export async function policiesSection(
  run: ProgramRun,
  policies: readonly TitaniumPolicy[] = packPolicies,
  config: { file?: string; config: PolicyPackConfigFile } = loadStackPolicyConfig(run.stack),
): Promise<PlanSection> {
  const result = await runPolicies(policies, fromRecorded(run.resources), config.config);
  const order = new Map(policies.map((p, i) => [p.name, i]));
  const findings = [...result.findings].sort(
    (a, b) => (a.level === b.level ? 0 : a.level === "mandatory" ? -1 : 1) || order.get(a.policy)! - order.get(b.policy)! || (a.urn ?? "").localeCompare(b.urn ?? ""),
  );
  // Kubernetes components whose objects the provider renders (helm.v4 Chart, yaml/v2 ConfigGroup, kustomize...):
  // a real preview judges those objects one by one, but under the harness's mocks they are never registered,
  // so no policy has seen them. Each is a blocking line, never a silent pass.
  const unrendered = run.resources.filter((r) => isKubernetesComponent(r.type) && !HELM_RELEASE_TYPES.includes(r.type) && !run.resources.some((c) => c.parent === r.urn));
  const mandatory = findings.filter((f) => f.level === "mandatory").length + unrendered.length;
  const unknown = findings.filter((f) => f.kind === "unknown").length;
  const advisory = findings.length - mandatory - unknown;
  const disabled = Object.entries(result.levels).filter(([, l]) => l === "disabled").map(([p]) => p);
  const stackPolicies = policies.filter(isStackPolicy).length;
  const configName = config.file ? path.relative(path.resolve(__dirname, ".."), config.file) : "none (policy defaults)";

  const lines = [
    `Pack ${PACK.name}@${PACK.version}, config ${configName}: ${policies.length} policies (${policies.length - stackPolicies} resource, ${stackPolicies} stack) over ${run.resources.length} resources`,
    ...findings.map(renderFinding),
    ...unrendered.map(
      (r) =>
        `${LEVEL_LABEL.mandatory}  (offline plan)  ${r.type}::${r.name}  its objects are rendered by the Kubernetes provider in a real preview and are not in the offline plan, so no policy judged them: register them as resources of their own (or use helm.v3.Release, judged by its values)`,
    ),
  ];
  if (result.notApplicable.some((n) => !n.urn)) {
    lines.push(`Not applicable: ${result.notApplicable.filter((n) => !n.urn).map((n) => `${n.policy} (${n.reason ?? "no reason"})`).join("; ")}`);
  }
  if (disabled.length > 0) lines.push(`Disabled for this stack: ${disabled.join(", ")}`);
  lines.push(
    `Summary: ${mandatory} mandatory violation(s), ${advisory} advisory, ${unknown} not checkable in preview${mandatory > 0 ? ": BLOCKING" : ": no mandatory violation"}`,
  );
  return {
    title: SECTION_TITLE,
    lines,
    blocking: mandatory > 0,
    data: { pack: `${PACK.name}@${PACK.version}`, levels: result.levels, findings, summary: { mandatory, advisory, unknown } },
  };
}
