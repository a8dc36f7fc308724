/**
 * The reports the offline plan prints after the resource tree. Each layer contributes its own
 * (policy results, monthly cost, capacity) by adding a function here; a section marked
 * `blocking` makes `npm run plan` exit non-zero.
 */
import { costSection } from "../components/gcp/cost-estimate";
import type { ProgramRun } from "./harness";
import type { PlanSection } from "./plan";

type SectionBuilder = (run: ProgramRun) => PlanSection | Promise<PlanSection>;

const builders: SectionBuilder[] = [costSection];

export async function planSections(run: ProgramRun): Promise<PlanSection[]> {
  return Promise.all(builders.map((b) => b(run)));
}
