/**
 * The chart-workload table the pack runs with: for each platform Helm chart, the values paths that
 * hold its workloads' `resources`. The platform layer owns it (`components/platform/chart-workloads.ts`,
 * the same table its components place resources with); this module is the single place it is
 * wired into the pack, with the init containers below added. A chart missing from it is reported
 * by `k8s-resource-limits`.
 */
import type { ChartWorkloadTable } from "./rules/resource-limits";
import { chartWorkloads as platformChartWorkloads } from "../components/platform/chart-workloads";

/**
 * Init containers the charts start with empty `resources` by default, which the platform's table
 * (long-running workloads, sized from `titanium:charts`) does not list; the platform components
 * size them (checked against the pinned charts' values in shared/charts):
 *
 * - kube-prometheus-stack 88.5.3 → grafana 12.11.1: `init-chown-data`, run when persistence is on
 *   (`grafana.initChownData.resources`, `components/platform/monitoring.ts`);
 * - argo-cd 10.1.1: the repo-server's `copyutil` (`repoServer.copyutil.resources`,
 *   `components/platform/argocd.ts`).
 */
export const INIT_CONTAINER_PATHS: ChartWorkloadTable = {
  "kube-prometheus-stack": ["grafana.initChownData.resources"],
  "argo-cd": ["repoServer.copyutil.resources"],
};

/**
 * The platform's table with {@link INIT_CONTAINER_PATHS} added to the charts they belong to (only to
 * charts the table lists: a chart it drops stays "not in the table", never half-checked).
 */
export function withInitContainers(table: ChartWorkloadTable, extra: ChartWorkloadTable = INIT_CONTAINER_PATHS): ChartWorkloadTable {
  const out: Record<string, readonly string[]> = { ...table };
  for (const [chart, paths] of Object.entries(extra)) {
    const own = out[chart];
    if (own) out[chart] = [...new Set([...own, ...paths])];
  }
  return out;
}

export const chartWorkloads: ChartWorkloadTable = withInitContainers(platformChartWorkloads);
