/**
 * The committed reliability report is what its scenario records say (docs/reliability.md is generated
 * by `npm run reliability:report`, not by `npm test`): one record per scenario the suites run, none with
 * an unmet criterion, and the Markdown rendered from exactly those records.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "../platform.mjs";
import { reliabilityMarkdown, scenarioSource, storedScenarios } from "./report.mjs";

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

  it("holds records of the scenarios as they are now (run `npm run reliability:report` after changing one)", () => {
    const current = (file: string) => (existsSync(join(ROOT, file)) ? scenarioSource(join(ROOT, file)).sha256 : "gone");
    const stale = stored.filter((s) => !s.scenario || s.scenario.sha256 !== current(s.scenario.file));
    expect(stale.map((s) => `${s.id}: recorded from ${s.scenario?.file ?? "an unknown file"} as it was before its last change`)).toEqual([]);
  });

  it("is rendered from those records (run `npm run reliability:report` after changing a scenario)", () => {
    expect(readFileSync(join(ROOT, "docs/reliability.md"), "utf8")).toBe(reliabilityMarkdown(stored));
  });
});
