/**
 * The chart-workload table the pack runs with: for each platform Helm chart, the values paths that
 * hold its workloads' `resources`. The platform layer owns it (`components/platform/chart-workloads.ts`,
 * the same table its components place resources with); this module is the single place it is
 * wired into the pack. A chart missing from it is reported by `k8s-resource-limits`.
 */
import type { ChartWorkloadTable } from "./rules/resource-limits";
import { chartSwitchesOff as platformSwitchesOff, chartWorkloads as platformChartWorkloads } from "../components/platform/chart-workloads";

export const chartWorkloads: ChartWorkloadTable = platformChartWorkloads;
/** Values switches that must stay `false`: workloads the table leaves out because they are off. */
export const chartSwitchesOff: ChartWorkloadTable = platformSwitchesOff;
