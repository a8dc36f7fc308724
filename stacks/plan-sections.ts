/**
 * The reports the offline plan prints after the resource tree. Each layer contributes its own
 * (policy results, monthly cost, capacity) by adding a function here; a section marked
 * `blocking` makes `npm run plan` exit non-zero.
 */
import { policiesSection } from "../policies/report";
import type { ProgramRun } from "./harness";
import type { PlanSection } from "./plan";

type SectionBuilder = (run: ProgramRun) => PlanSection | Promise<PlanSection>;

const builders: SectionBuilder[] = [
  // ── Policies ── every CrossGuard policy over the stack's resources (policies/report.ts)
  policiesSection,
];

export async function planSections(run: ProgramRun): Promise<PlanSection[]> {
  return Promise.all(builders.map((b) => b(run)));
}
