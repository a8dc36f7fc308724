/**
 * The reports the offline plan prints after the resource tree. Each layer contributes its own
 * (policy results, monthly cost, capacity) by adding a function here; a section marked
 * `blocking` makes `npm run plan` exit non-zero.
 */
import { trafficGraphSection } from "../components/apps/traffic-graph";
import type { ProgramRun } from "./harness";
import type { PlanSection } from "./plan";

type SectionBuilder = (run: ProgramRun) => PlanSection | Promise<PlanSection>;

const builders: SectionBuilder[] = [
  // Application layer: who may talk to whom, derived from the NetworkPolicies and AuthorizationPolicies.
  trafficGraphSection,
];

export async function planSections(run: ProgramRun): Promise<PlanSection[]> {
  return Promise.all(builders.map((b) => b(run)));
}
