import type { PolicyResource } from "@pulumi/policy";
import { globMatch, matchWorkload, metadataOf, objectName, podTemplate, workloadMatcherListSchema, type Obj, type WorkloadMatcher } from "../lib/k8s";
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
const HPA = /^kubernetes:autoscaling\/v(1|2|2beta2):HorizontalPodAutoscaler$/;

const namespaceOf = (props: Obj): string => {
  const ns = metadataOf(props).namespace;
  return typeof ns === "string" ? ns : "default";
};

/** Whether a label selector's matchLabels all appear in a pod's labels. */
function selects(selector: unknown, labels: Record<string, unknown>): boolean {
  const match = ((selector ?? {}) as Obj).matchLabels as Record<string, unknown> | undefined;
  if (!match || Object.keys(match).length === 0) return false;
  return Object.entries(match).every(([k, v]) => labels[k] === v);
}

/** Application Deployments survive a node drain: two replicas at least and a PodDisruptionBudget. */
export const highAvailability = stackPolicy<Config>(
  {
    name: "k8s-app-high-availability",
    description:
      "Every application Deployment runs at least two replicas (its own replicas or its HPA's minReplicas) and is covered by a PodDisruptionBudget.",
    severity: "medium",
    enforcementLevel: "advisory",
    remediationSteps:
      "Set `titanium:services.<name>.replicas` (and minReplicas) to 2 or more and turn on `titanium:features.autoscaling`, which creates the HPA and a PodDisruptionBudget (maxUnavailable 1) selecting the service's pods.",
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
        const ns = namespaceOf(props);
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
        const covered = pdbs.some((p) => namespaceOf(p.props as Obj) === ns && selects(((p.props as Obj).spec as Obj | undefined)?.selector, podLabels ?? {}));
        if (!covered) report(`${label} has no PodDisruptionBudget selecting its pods`, d.urn);
      }, d.urn);
    }
  },
);

/** An HPA scales a Deployment when its scaleTargetRef names it, or (auto-named Deployment) depends on it. */
function targets(hpa: PolicyResource, deployment: PolicyResource, name: unknown, ns: string): boolean {
  const props = hpa.props as Obj;
  if (namespaceOf(props) !== ns) return false;
  const ref = ((props.spec as Obj | undefined)?.scaleTargetRef ?? {}) as Obj;
  if (ref.kind !== "Deployment") return false;
  if (typeof name === "string") return ref.name === name;
  return hpa.dependencies.some((dep) => dep.urn === deployment.urn);
}
