import { chartName, containersOf, describeContainer, getPath, HELM_RELEASE_TYPES, objectName, podTemplate, type Obj } from "../lib/k8s";
import { resourcePolicy, type TitaniumResourcePolicy } from "../lib/policy";
import { containerSpecsAt, reportOpaqueRelease, walkValues } from "../lib/values";

/**
 * For each platform chart, the values paths that hold a workload's `resources` block, e.g.
 * `{ istiod: ["resources", "global.proxy.resources"] }`. The platform layer owns the real table
 * (`components/platform/chart-workloads.ts`); the pack receives it by injection.
 */
export type ChartWorkloadTable = Readonly<Record<string, readonly string[]>>;

const QUANTITIES = ["requests.cpu", "requests.memory", "limits.cpu", "limits.memory"] as const;

/** A Kubernetes quantity ("500m", "1.5", "256Mi", "1e3"): its number and suffix. */
const QUANTITY = /^\+?(\d+\.?\d*|\.\d+)([eE][+-]?\d+|[KMGTPE]i|[numkMGTPE])?$/;
const SUFFIXES: Readonly<Record<string, number>> = {
  "": 1, n: 1e-9, u: 1e-6, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
};
/** The value of a Kubernetes quantity (cores, bytes), to compare two of them; undefined for anything else. */
export function quantityValue(v: unknown): number | undefined {
  if (typeof v === "number") return v;
  if (typeof v !== "string") return undefined;
  const m = QUANTITY.exec(v.trim());
  if (!m) return undefined;
  const suffix = m[2] ?? "";
  return /^[eE]/.test(suffix) ? Number(m[1]! + suffix) : Number(m[1]) * SUFFIXES[suffix]!;
}
/** A real quantity, not zero: a zero limit is no limit at all. */
export const isQuantity = (v: unknown): boolean => (quantityValue(v) ?? 0) > 0;

/** Which of the four quantities a `resources` block lacks. */
export function missingQuantities(resources: unknown): string[] {
  return QUANTITIES.filter((q) => !isQuantity(getPath(resources, q)));
}

/**
 * The injected istio-proxy's resources, as pod annotations set them: requests, then limits. Once a pod sets
 * any of them, Istio's injection template builds the proxy's whole `resources` block from these four alone
 * (istio#35905): istiod's `global.proxy.resources` no longer apply, so a limit left out is no limit.
 */
const PROXY_RESOURCES = [
  ["sidecar.istio.io/proxyCPU", "sidecar.istio.io/proxyCPULimit"],
  ["sidecar.istio.io/proxyMemory", "sidecar.istio.io/proxyMemoryLimit"],
] as const;
const PROXY_KEYS: readonly string[] = PROXY_RESOURCES.flat();

/**
 * What is wrong with the proxy resources a map of pod annotations sets (none when it sets none: istiod's
 * `global.proxy.resources` size the proxy, judged through the chart table): each of the four must be a
 * non-zero quantity once any is set, and no request may exceed its limit (the API refuses the pod).
 */
export function proxyResourceProblems(annotations: Obj): string[] {
  if (!PROXY_KEYS.some((k) => Object.hasOwn(annotations, k))) return [];
  const missing = PROXY_KEYS.filter((k) => !isQuantity(annotations[k]));
  const out: string[] = [];
  if (missing.length > 0) {
    out.push(`sets sidecar.istio.io/proxy* resources without ${missing.join(", ")} (a non-zero quantity): with any of them set, Istio sizes the injected istio-proxy from these annotations alone, so it runs without that request or limit`);
  }
  for (const [request, limit] of PROXY_RESOURCES) {
    const r = quantityValue(annotations[request]);
    const l = quantityValue(annotations[limit]);
    if (r !== undefined && l !== undefined && l > 0 && r > l) out.push(`asks ${request} ${String(annotations[request])} above its ${limit} ${String(annotations[limit])}`);
  }
  return out;
}

/**
 * CPU and memory requests and limits on every container and init container of every pod-bearing
 * kind, and on every workload of every Helm chart (through the chart-workload table; the workloads it
 * leaves out must stay switched off, `chartSwitchesOff`).
 */
export function resourceLimitsPolicy(chartWorkloads: ChartWorkloadTable, chartSwitchesOff: ChartWorkloadTable = {}): TitaniumResourcePolicy {
  return resourcePolicy(
    {
      name: "k8s-resource-limits",
      description:
        "Every container and init container (Deployment, StatefulSet, DaemonSet, Job, CronJob, ReplicaSet, Pod) and every workload of every Helm chart sets CPU and memory requests and limits.",
      severity: "high",
      enforcementLevel: "mandatory",
      remediationSteps:
        "Set `resources.requests.{cpu,memory}` and `resources.limits.{cpu,memory}` on the container (application sizes come from `titanium:services` / `titanium:data`). For a Helm chart, set them in the values at each path listed for the chart in `components/platform/chart-workloads.ts`, and list any new chart there.",
      configSchema: { properties: {} },
    },
    (args, judge, report) => {
      const props = args.props as Obj;
      if (HELM_RELEASE_TYPES.includes(args.type)) {
        judge.check(() => reportOpaqueRelease(props, chartName(props) ?? "(none)", report));
        // Container specs written out in the values (`extraContainers`, `initContainers`...): the chart
        // renders them as they are, at paths no table lists, so each must carry its own resources.
        judge.check(() => {
          walkValues(props.values, ({ path, value }) => {
            judge.check(() => {
              for (const { path: at, container: c } of containerSpecsAt(path, value)) {
                const missing = missingQuantities(c.resources);
                if (missing.length > 0) report(`chart "${chartName(props) ?? "(none)"}" values ${at} (container "${c.name}") lacks resources.${missing.join(", resources.")}`);
              }
            });
          });
        });
        // Pod annotations in the values (`podAnnotations`, a component's own): the same proxy resources as a pod's.
        judge.check(() => {
          const judgeMap = (map: unknown, path: string) =>
            judge.check(() => {
              if (!map || typeof map !== "object" || Array.isArray(map)) return;
              for (const problem of proxyResourceProblems(map as Obj)) report(`chart "${chartName(props) ?? "(none)"}" values ${path || "(top level)"} ${problem}`);
            });
          judgeMap(props.values, "");
          walkValues(props.values, ({ path, value, unknown }) => {
            if (!unknown) judgeMap(value, path);
          });
        });
        judge.check(() => {
          const chart = chartName(props);
          const paths = chart === undefined ? undefined : chartWorkloads[chart];
          if (!paths) {
            report(
              `Helm chart "${chart ?? "(none)"}" is not in the chart-workload table, so its workloads' resources cannot be checked; known charts: ${Object.keys(chartWorkloads).sort().join(", ") || "none"}`,
            );
            return;
          }
          const values = (props.values ?? {}) as Obj;
          for (const path of paths) {
            judge.check(() => {
              const missing = missingQuantities(getPath(values, path));
              if (missing.length > 0) report(`chart "${chart}" values ${path} lacks ${missing.join(", ")}`);
            });
          }
          // Workloads the table leaves out because they are off: a switch turned on (or left to the
          // chart's default) runs pods whose resources nothing sets.
          for (const path of (chart === undefined ? undefined : chartSwitchesOff[chart]) ?? []) {
            judge.check(() => {
              if (getPath(values, path) !== false) report(`chart "${chart}" values ${path} is not false: it runs a workload whose resources the chart-workload table does not list`);
            });
          }
        });
        return;
      }
      judge.check(() => {
        const tpl = podTemplate(args.type, props);
        if (!tpl) return;
        const containers = containersOf(tpl.spec).filter((c) => c.list !== "ephemeralContainers");
        if (containers.length === 0) report(`${objectName(props, args.name)} has no containers`);
        judge.check(() => {
          for (const problem of proxyResourceProblems((tpl.metadata.annotations ?? {}) as Obj)) report(`${objectName(props, args.name)} ${problem}`);
        });
        for (const ref of containers) {
          judge.check(() => {
            const missing = missingQuantities(ref.container.resources);
            if (missing.length > 0) report(`${objectName(props, args.name)} ${describeContainer(ref)} lacks resources.${missing.join(", resources.")}`);
          });
        }
      });
    },
  );
}
