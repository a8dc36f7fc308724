/**
 * The reports the offline plan prints after the resource tree. Each layer contributes its own
 * (policy results, monthly cost, capacity) by adding a function here; a section marked
 * `blocking` makes `npm run plan` exit non-zero.
 */
import { trafficGraphSection } from "../components/apps/traffic-graph";
import { costSection } from "../components/gcp/cost-estimate";
import { capacityReport, renderCapacity } from "../components/platform/capacity";
import { policiesSection } from "../policies/report";
import { loadConfig } from "./config";
import { type ProgramRun, readStackConfig } from "./harness";
import type { PlanSection } from "./plan";

type SectionBuilder = (run: ProgramRun) => PlanSection | Promise<PlanSection>;

const builders: SectionBuilder[] = [
  // ── Policies ── every CrossGuard policy over the stack's resources (policies/report.ts)
  policiesSection,
  // Cloud layer: estimated monthly cost from the dated price table.
  costSection,
  // Platform layer: the requests of everything scheduled vs the nodes' allocatable, with headroom.
  (run) => {
    const report = capacityReport(run, loadConfig(run.stack, readStackConfig(run.stack)));
    return { title: "Capacity", lines: renderCapacity(report), blocking: !report.fits, data: { fits: report.fits, requested: report.requested, budget: report.budget } };
  },
  // Application layer: who may talk to whom, derived from the NetworkPolicies and AuthorizationPolicies.
  trafficGraphSection,
];

export async function planSections(run: ProgramRun): Promise<PlanSection[]> {
  return Promise.all(builders.map((b) => b(run)));
}
