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

/** A Kubernetes quantity ("500m", "1.5", "256Mi", "1e3"), not zero: a zero limit is no limit at all. */
const QUANTITY = /^\+?(\d+\.?\d*|\.\d+)([eE][+-]?\d+|[KMGTPE]i|[numkMGTPE])?$/;
export const isQuantity = (v: unknown): boolean => {
  if (typeof v === "number") return v > 0;
  if (typeof v !== "string") return false;
  const m = QUANTITY.exec(v.trim());
  return m !== null && Number(m[1]) > 0;
};

/** Which of the four quantities a `resources` block lacks. */
export function missingQuantities(resources: unknown): string[] {
  return QUANTITIES.filter((q) => !isQuantity(getPath(resources, q)));
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
