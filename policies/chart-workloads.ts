/**
 * The chart-workload table the pack runs with: for each platform Helm chart, the values paths that
 * hold its workloads' `resources`. The platform layer owns the real table
 * (`components/platform/chart-workloads.ts`); this module is the single place it is wired into the
 * pack (re-export it here when that layer lands). Until then no chart is known, so any Helm
 * release the program registers is reported by `k8s-resource-limits`: unknown chart = violation.
 */
import type { ChartWorkloadTable } from "./rules/resource-limits";

export const chartWorkloads: ChartWorkloadTable = {};
