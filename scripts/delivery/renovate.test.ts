/**
 * Renovate keeps npm, the GitHub Actions and the Helm charts current. Its custom regex manager
 * must find every chart version pinned in stacks/config.ts, with the repository and version the
 * schema actually defaults to, and must know each chart's name in its repository.
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../stacks/config";
import { readStackConfig } from "../../stacks/harness";
import { REPO_ROOT } from "./workflows";

interface RenovateConfig {
  extends: string[];
  customManagers: { customType: string; managerFilePatterns: string[]; matchStrings: string[]; datasourceTemplate: string }[];
  packageRules: { matchManagers?: string[]; matchDepNames?: string[]; overridePackageName?: string; enabled?: boolean }[];
}

const renovate = JSON.parse(readFileSync(path.join(REPO_ROOT, ".github/renovate.json"), "utf8")) as RenovateConfig;
const configSource = readFileSync(path.join(REPO_ROOT, "stacks/config.ts"), "utf8");
/** The schema's chart defaults: a stack config without a charts key. */
const { "titanium:charts": _ignored, ...withoutCharts } = readStackConfig("dev");
const chartDefaults = loadConfig("dev", withoutCharts).charts;

/** Renovate patterns are "/regex/" or globs; ours are regexes. */
function fileRegex(pattern: string): RegExp {
  const m = /^\/(.*)\/$/.exec(pattern);
  if (!m) throw new Error(`expected a /regex/ file pattern, got ${pattern}`);
  return new RegExp(m[1]!);
}

describe("Renovate", () => {
  const helm = renovate.customManagers.filter((m) => m.datasourceTemplate === "helm");

  it("has one helm regex manager that reads stacks/config.ts", () => {
    expect(helm).toHaveLength(1);
    expect(helm[0]!.customType).toBe("regex");
    expect(helm[0]!.managerFilePatterns.some((p) => fileRegex(p).test("stacks/config.ts"))).toBe(true);
    expect(helm[0]!.managerFilePatterns.some((p) => fileRegex(p).test("stacks/config.test.ts"))).toBe(false);
  });

  it("matches every chart version in stacks/config.ts, with the schema's repository and version", () => {
    const found = helm[0]!.matchStrings.flatMap((s) =>
      [...configSource.matchAll(new RegExp(s, "g"))].map((m) => ({
        key: m.groups!.depName!,
        repository: m.groups!.registryUrl!,
        version: m.groups!.currentValue!,
      })),
    );
    const callSites = [...configSource.matchAll(/\bchart\(\s*"/g)].length;
    expect(callSites).toBe(Object.keys(chartDefaults).length);
    expect(found).toHaveLength(callSites);
    expect(Object.fromEntries(found.map((f) => [f.key, { repository: f.repository, version: f.version }]))).toEqual(chartDefaults);
  });

  it("knows each chart's name in its repository (one rule per key, names as in shared/charts)", () => {
    const names = new Map<string, string>();
    for (const rule of renovate.packageRules.filter((r) => r.overridePackageName)) {
      for (const dep of rule.matchDepNames ?? []) {
        expect(names.has(dep), dep).toBe(false);
        names.set(dep, rule.overridePackageName!);
      }
    }
    expect([...names.keys()].sort()).toEqual(Object.keys(chartDefaults).sort());
    const knownCharts = readdirSync(path.resolve(REPO_ROOT, "../shared/charts"));
    for (const chart of names.values()) expect(knownCharts).toContain(chart);
  });

  it("keeps actions pinned by digest and Node on the .nvmrc major", () => {
    expect(renovate.extends).toContain("helpers:pinGitHubActionDigests");
    const nodeRule = renovate.packageRules.find((r) => r.matchDepNames?.includes("node"));
    expect(nodeRule?.enabled).toBe(false);
  });
});
