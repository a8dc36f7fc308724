/** Editing recorded resources in tests: one field at a time, by path. */
import type { RecordedResource } from "../../stacks/harness";
import { splitPath } from "../lib/k8s";

/**
 * Sets (or, with `undefined`, deletes) the input at a path such as
 * `spec.template.spec.containers[0].image` or `metadata.labels."istio-injection"`. A missing
 * intermediate step throws, naming the path and the resource, so a test cannot edit nothing.
 */
export function put(r: RecordedResource, path: string, value: unknown): void {
  const steps = splitPath(path);
  const last = steps.pop();
  if (last === undefined) throw new Error("empty path");
  let node: unknown = r.inputs;
  for (const step of steps) {
    const next = (node as Record<string | number, unknown>)[step];
    if (next === null || typeof next !== "object") throw new Error(`path ${path} not found in ${r.type} ${r.name}`);
    node = next;
  }
  if (value === undefined) delete (node as Record<string | number, unknown>)[last];
  else (node as Record<string | number, unknown>)[last] = value;
}
