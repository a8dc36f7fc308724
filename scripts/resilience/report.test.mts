/**
 * The committed reliability report is what its scenario records say (docs/reliability.md is generated
 * by `npm run reliability:report`, not by `npm test`): one record per scenario the suites run, none with
 * an unmet criterion, and the Markdown rendered from exactly those records.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "../platform.mjs";
import { reliabilityMarkdown, storedScenarios } from "./report.mjs";

describe("docs/reliability.md", () => {
  const stored = storedScenarios();

  it("holds one record per scenario the suites run, every criterion met", () => {
    const here = join(ROOT, "scripts/resilience");
    const declared = readdirSync(here)
      .filter((f) => /\.(test|faults)\.mts$/.test(f))
      .flatMap((f) => [...readFileSync(join(here, f), "utf8").matchAll(/\bid: "([a-z0-9-]+)",\s*\n\s*title:/g)].map((m) => m[1]!));
    expect(declared.length).toBeGreaterThanOrEqual(9);
    expect(stored.map((s) => s.id).sort()).toEqual([...declared].sort());
    for (const s of stored) expect(s.criteria.filter((c) => !c.met).map((c) => `${s.id}: ${c.text}`)).toEqual([]);
  });

  it("is rendered from those records (run `npm run reliability:report` after changing a scenario)", () => {
    expect(readFileSync(join(ROOT, "docs/reliability.md"), "utf8")).toBe(reliabilityMarkdown(stored));
  });
});
