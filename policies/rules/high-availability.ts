import type { PolicyResource } from "@pulumi/policy";
import { globMatch, matchWorkload, metadataOf, namespaceOf, objectName, podTemplate, workloadMatcherListSchema, type Obj, type WorkloadMatcher } from "../lib/k8s";
import { stackPolicy, type BaseConfig } from "../lib/policy";
import { applicationNamespacesSchema } from "./sidecar-injection";

interface Config extends BaseConfig {
  applicationNamespaces: string[];
  minReplicas: number;
  exempt: WorkloadMatcher[];
}

/**
 * Deployments in the application namespace that are not replicated services: the synthetic load
 * generator, and Redis, a single-instance cache without replication (a second replica would be a
 * second, empty cache; the services degrade without it and it restarts in seconds).
 */
export const DEFAULT_HA_EXEMPT: WorkloadMatcher[] = [
  { names: ["load-generator", "*-load-generator"], components: ["load-generator"], reason: "synthetic traffic: one instance, harmless to lose" },
  { names: ["redis"], components: ["cache"], reason: "single-instance cache without replication: a second replica would be a second, empty cache" },
];

const DEPLOYMENT = "kubernetes:apps/v1:Deployment";
const PDB = /^kubernetes:policy\/v1(beta1)?:PodDisruptionBudget$/;
const PDB_V1 = "kubernetes:policy/v1:PodDisruptionBudget";
const HPA = /^kubernetes:autoscaling\/v(1|2|2beta2):HorizontalPodAutoscaler$/;

/** Where an object lands: its `metadata.namespace`, else its Kubernetes provider's `namespace`, as the provider places it. */
const placedIn = (r: PolicyResource): string => namespaceOf(r.props as Obj, r.provider);

/**
 * Whether a PodDisruptionBudget's label selector selects a pod's labels, as the disruption controller
 * reads it: every `matchLabels` pair and every `matchExpressions` requirement (`In`, `NotIn`, `Exists`,
 * `DoesNotExist`). An empty selector selects every pod of the namespace in policy/v1 and none in
 * policy/v1beta1; no selector selects none.
 */
export function selects(selector: unknown, labels: Record<string, unknown>, emptySelectsAll: boolean): boolean {
  if (selector === undefined || selector === null) return false;
  const sel = selector as Obj;
  const match = Object.entries((sel.matchLabels ?? {}) as Record<string, unknown>);
  const expressions = Array.isArray(sel.matchExpressions) ? (sel.matchExpressions as Obj[]) : [];
  if (match.length === 0 && expressions.length === 0) return emptySelectsAll;
  const has = (key: string) => Object.hasOwn(labels, key);
  const requirement = (e: Obj): boolean => {
    const key = String(e.key);
    const values = Array.isArray(e.values) ? (e.values as unknown[]) : [];
    switch (e.operator) {
      case "In":
        return has(key) && values.includes(labels[key]);
      case "NotIn":
        return !has(key) || !values.includes(labels[key]);
      case "Exists":
        return has(key);
      case "DoesNotExist":
        return !has(key);
      default:
        // An operator the API does not know is refused there; it selects nothing here.
        return false;
    }
  };
  return match.every(([k, v]) => labels[k] === v) && expressions.every(requirement);
}

/**
 * How many of `replicas` pods a PodDisruptionBudget lets an eviction take, as the disruption
 * controller computes it: `maxUnavailable` (a count, or a percentage of the replicas rounded up), or
 * the replicas minus `minAvailable` (a count, or a percentage rounded up); all of them when it sets
 * neither. A string that is not a percentage is invalid (the API refuses it): a message instead.
 */
export function allowedDisruptions(spec: Obj, replicas: number): number | string {
  const scaled = (v: unknown, field: string): number | string => {
    if (typeof v === "number" && Number.isInteger(v) && v >= 0) return v;
    const pct = typeof v === "string" ? /^(\d+)%$/.exec(v) : null;
    if (pct) return Math.ceil((Number(pct[1]) * replicas) / 100);
    return `${field} ${JSON.stringify(v)} is neither a count nor a percentage`;
  };
  if (spec.maxUnavailable !== undefined) {
    const max = scaled(spec.maxUnavailable, "maxUnavailable");
    return typeof max === "number" ? Math.max(0, Math.min(max, replicas)) : max;
  }
  if (spec.minAvailable !== undefined) {
    const min = scaled(spec.minAvailable, "minAvailable");
    return typeof min === "number" ? Math.max(0, replicas - min) : min;
  }
  return replicas;
}

/**
 * Application Deployments survive a node drain: two replicas at least, and exactly one
 * PodDisruptionBudget selecting their pods that lets a drain evict at least one of them (at the
 * fewest replicas the HPA may leave) and keeps at least one running. (A budget of 0 blocks every
 * drain; two budgets over the same pods make the eviction API refuse every eviction.)
 */
export const highAvailability = stackPolicy<Config>(
  {
    name: "k8s-app-high-availability",
    description:
      "Every application Deployment runs at least two replicas (its own replicas or its HPA's minReplicas) and is covered by exactly one PodDisruptionBudget that, at that many replicas, allows at least one disruption and keeps at least one pod (minAvailable/maxUnavailable as counts or percentages).",
    severity: "medium",
    enforcementLevel: "advisory",
    remediationSteps:
      "Set `titanium:services.<name>.replicas` (and minReplicas) to 2 or more and turn on `titanium:features.autoscaling`, which creates the HPA and a PodDisruptionBudget (maxUnavailable 1) selecting the service's pods. A budget must let a drain evict a pod: not `maxUnavailable: 0`, nor `minAvailable` equal to the replicas.",
    configSchema: {
      properties: {
        applicationNamespaces: applicationNamespacesSchema,
        minReplicas: { type: "integer", minimum: 1, default: 2, description: "The fewest replicas an application Deployment may run." },
        exempt: { ...workloadMatcherListSchema, default: DEFAULT_HA_EXEMPT, description: "Deployments exempt, with the reason." },
      },
    },
  },
  (args, judge, report, config) => {
    const byType = (test: (t: string) => boolean) => args.resources.filter((r) => test(r.type));
    const pdbs = byType((t) => PDB.test(t));
    const hpas = byType((t) => HPA.test(t));
    const isApp = (ns: string) => config.applicationNamespaces.some((g) => globMatch(g, ns));
    for (const d of byType((t) => t === DEPLOYMENT)) {
      judge.check(() => {
        const props = d.props as Obj;
        const ns = placedIn(d);
        const name = metadataOf(props).name;
        if (!isApp(ns) || matchWorkload(config.exempt, props, podTemplate(d.type, props))) return;
        const label = objectName(props, d.name);
        const hpa = hpas.find((h) => targets(h, d, name, ns));
        const hpaMin = hpa ? (((hpa.props as Obj).spec as Obj | undefined)?.minReplicas as number | undefined) ?? 1 : undefined;
        const replicas = ((props.spec as Obj | undefined)?.replicas as number | undefined) ?? 1;
        const effective = hpaMin ?? replicas;
        if (effective < config.minReplicas) {
          report(`${label} runs ${effective} replica(s)${hpa ? " (HPA minReplicas)" : ""}; application Deployments need at least ${config.minReplicas}`, d.urn);
        }
        const podLabels = podTemplate(d.type, props)!.metadata.labels as Record<string, unknown> | undefined;
        const covering = pdbs.filter(
          (p) => placedIn(p) === ns && selects(((p.props as Obj).spec as Obj | undefined)?.selector, podLabels ?? {}, p.type === PDB_V1),
        );
        if (covering.length === 0) report(`${label} has no PodDisruptionBudget selecting its pods`, d.urn);
        if (covering.length > 1) {
          const names = covering.map((p) => objectName(p.props as Obj, p.name)).join(", ");
          report(`${label} is selected by ${covering.length} PodDisruptionBudgets (${names}): the eviction API refuses to evict a pod with more than one, so every drain blocks`, d.urn);
        }
        // A budget is judged at the replicas the policy asks for (too few replicas are reported above).
        if (covering.length !== 1 || effective < config.minReplicas) return;
        const pdb = covering[0]!;
        const allowed = allowedDisruptions(((pdb.props as Obj).spec ?? {}) as Obj, effective);
        const pdbName = `PodDisruptionBudget ${objectName(pdb.props as Obj, pdb.name)}`;
        const at = `at ${effective} replica(s)${hpa ? " (HPA minReplicas)" : ""}`;
        if (typeof allowed === "string") report(`${label}: ${pdbName} ${allowed}`, d.urn);
        else if (allowed < 1) report(`${label}: ${pdbName} allows 0 disruptions ${at}, so a node drain never finishes; it must let at least one pod go`, d.urn);
        else if (allowed >= effective) report(`${label}: ${pdbName} allows ${allowed} disruption(s) ${at}, so a drain may evict every pod; it must keep at least one`, d.urn);
      }, d.urn);
    }
  },
);

/** An HPA scales a Deployment when its scaleTargetRef names it, or (auto-named Deployment) depends on it. */
function targets(hpa: PolicyResource, deployment: PolicyResource, name: unknown, ns: string): boolean {
  const props = hpa.props as Obj;
  if (placedIn(hpa) !== ns) return false;
  const ref = ((props.spec as Obj | undefined)?.scaleTargetRef ?? {}) as Obj;
  if (ref.kind !== "Deployment") return false;
  if (typeof name === "string") return ref.name === name;
  return hpa.dependencies.some((dep) => dep.urn === deployment.urn);
}
