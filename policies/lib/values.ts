/** Walking Helm values (plain JSON trees) for findings that do not depend on the chart's layout. */
import { isUnknownValueError, type UnknownValueErrorLike } from "./sdk";

export interface ValueHit {
  /** Dotted path of the key, e.g. `server.image.tag`. */
  path: string;
  key: string;
  value: unknown;
  /** Set when the value is unknown during preview (`value` is then undefined). */
  unknown?: UnknownValueErrorLike;
}

/**
 * Every key/value pair of a values tree, depth first, arrays included (`list[0].x`). An unknown
 * leaf (an Output somewhere in the values, during preview) is visited with `unknown` set instead
 * of stopping the walk, so a policy decides whether that key matters to it.
 */
export function walkValues(root: unknown, visit: (hit: ValueHit) => void, path = ""): void {
  if (root === null || typeof root !== "object") return;
  const entries: [string, string][] = Array.isArray(root)
    ? root.map((_, i) => [String(i), `${path}[${i}]`])
    : Object.keys(root).map((k) => [k, path ? `${path}.${k}` : k]);
  for (const [key, p] of entries) {
    let value: unknown;
    try {
      value = (root as Record<string, unknown>)[key];
    } catch (err) {
      if (!isUnknownValueError(err)) throw err;
      visit({ path: p, key, value: undefined, unknown: err });
      continue;
    }
    if (!Array.isArray(root)) visit({ path: p, key, value });
    walkValues(value, visit, p);
  }
}
