/**
 * Renovate keeps npm, the GitHub Actions and the Helm charts current. Its custom regex manager
 * must find every chart version pinned in stacks/config.ts, with the repository and version the
 * schema actually defaults to, and must know each chart's name in its repository.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { CHARTS } from "../../components/platform/chart-workloads";
import { SERVICE_NAMES } from "../../stacks/config";
import { loadConfig } from "../../stacks/config";
import { readStackConfig } from "../../stacks/harness";
import { type Dockerfile, finalStage, parseDockerfile, parseImageRef, readDockerfile } from "./dockerfile";
import { NODE_MAJOR, REPO_ROOT } from "./workflows";

interface RenovateConfig {
  extends: string[];
  customManagers: { customType: string; managerFilePatterns: string[]; matchStrings: string[]; datasourceTemplate: string }[];
  packageRules: {
    matchManagers?: string[];
    matchDepNames?: string[];
    matchUpdateTypes?: string[];
    overridePackageName?: string;
    registryUrls?: string[];
    enabled?: boolean;
    pinDigests?: boolean;
    groupName?: string;
    allowedVersions?: string;
  }[];
  enabledManagers?: string[];
  lockFileMaintenance?: { enabled?: boolean };
}

/** Renovate's glob for `matchDepNames` ("**" crosses "/", "*" does not). */
const renovateGlob = (glob: string) =>
  new RegExp(`^${glob.split("**").map((part) => part.split("*").map((p) => p.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join("[^/]*")).join(".*")}$`);

const renovate = JSON.parse(readFileSync(path.join(REPO_ROOT, ".github/renovate.json"), "utf8")) as RenovateConfig;

/** The Node.js major a base image runs: `node:<major>…` by its tag, `gcr.io/distroless/nodejs<major>-…` by its name. */
function nodeMajorOf(image: string): string | undefined {
  const ref = parseImageRef(image);
  if (ref.name === "node" || ref.name === "docker.io/library/node") return /^(\d+)(?:[.-]|$)/.exec(ref.tag ?? "")?.[1];
  return /^gcr\.io\/distroless\/nodejs(\d+)-/.exec(ref.name)?.[1];
}

/**
 * What keeps a Dockerfile off the .nvmrc major: every FROM must be a Node image whose major is
 * .nvmrc's, the build stages `node`, the runtime (final) stage distroless `nodejs<major>`.
 */
function nodeMajorProblems(d: Dockerfile, major: string): string[] {
  const problems: string[] = [];
  for (const stage of d.stages) {
    const found = nodeMajorOf(stage.image);
    if (found === undefined) problems.push(`${stage.image}: not a Node base image this test can read a major from`);
    else if (found !== major) problems.push(`${stage.image}: Node ${found}, .nvmrc says ${major}`);
  }
  if (!d.stages.some((s) => parseImageRef(s.image).name === "node")) problems.push("no node build stage");
  if (!/^gcr\.io\/distroless\/nodejs\d+-/.test(parseImageRef(finalStage(d).image).name)) problems.push("the runtime stage is not distroless nodejs<major>");
  return problems;
}
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

  /** What a packageRule sets for a dependency (later rules win, as in Renovate). */
  function ruleValue<K extends "overridePackageName" | "registryUrls">(dep: string, key: K) {
    const rules = renovate.packageRules.filter((r) => r[key] !== undefined && r.matchDepNames?.includes(dep));
    return rules.at(-1)?.[key];
  }

  it("matches every chart version in stacks/config.ts, with the schema's repository and version", () => {
    const found = helm[0]!.matchStrings.flatMap((s) =>
      [...configSource.matchAll(new RegExp(s, "g"))].map((m) => ({
        key: m.groups!.depName!,
        // A repository named by a constant comes from a packageRule's registryUrls.
        repository: m.groups!.registryUrl ?? ruleValue(m.groups!.depName!, "registryUrls")?.[0],
        version: m.groups!.currentValue!,
      })),
    );
    const callSites = [...configSource.matchAll(/\bchart\(\s*["A-Z]/g)].length;
    expect(callSites).toBe(Object.keys(chartDefaults).length);
    expect(found).toHaveLength(callSites);
    expect(Object.fromEntries(found.map((f) => [f.key, { repository: f.repository, version: f.version }]))).toEqual(
      Object.fromEntries(Object.entries(chartDefaults).map(([k, v]) => [k, { repository: v.repository, version: v.version }])),
    );
  });

  it("keeps the image defaults of stacks/config.ts current: one docker regex manager finds each, the load generator's among them", () => {
    const docker = renovate.customManagers.filter((m) => m.datasourceTemplate === "docker");
    expect(docker).toHaveLength(1);
    expect(docker[0]!.managerFilePatterns.some((p) => fileRegex(p).test("stacks/config.ts"))).toBe(true);
    const found = docker[0]!.matchStrings.flatMap((s) => [...configSource.matchAll(new RegExp(s, "g"))].map((m) => `${m.groups!.depName}:${m.groups!.currentValue}`));
    expect(found).toHaveLength([...configSource.matchAll(/\bimageRef\.default\(/g)].length);
    expect(found).toContain(loadConfig("dev", readStackConfig("dev")).features.loadGenerator.image);
    // PostgreSQL's image is among them; its majors need a dump and restore, so Renovate never proposes one.
    expect(found.some((f) => f.startsWith("postgres:"))).toBe(true);
    expect(renovate.packageRules.find((r) => r.matchDepNames?.includes("postgres"))).toMatchObject({ matchUpdateTypes: ["major"], enabled: false });
    // The PD CSI driver's images move together by hand (upgrades runbook): no rule may propose one alone,
    // and that rule leaves every other image to Renovate.
    const neverUpdated = (depName: string) =>
      renovate.packageRules.some((r) => r.enabled === false && !r.matchUpdateTypes && (r.matchDepNames ?? []).some((g) => renovateGlob(g).test(depName)));
    const pdCsiImages = Object.values(loadConfig("dev", readStackConfig("dev")).storage.pdCsiDriver.images).map((i) => parseImageRef(i).name);
    expect(pdCsiImages).toHaveLength(5);
    for (const image of pdCsiImages) expect(neverUpdated(image), image).toBe(true);
    const others = found.map((f) => f.slice(0, f.lastIndexOf(":"))).filter((n) => !pdCsiImages.includes(n));
    expect(others.length).toBeGreaterThan(0);
    for (const image of others) expect(neverUpdated(image), image).toBe(false);
  });

  it("knows each chart's name in its repository: the chart the platform layer installs", () => {
    const names = new Map<string, string>();
    for (const rule of renovate.packageRules.filter((r) => r.overridePackageName)) {
      for (const dep of rule.matchDepNames ?? []) {
        expect(names.has(dep), dep).toBe(false);
        names.set(dep, rule.overridePackageName!);
      }
    }
    expect([...names.keys()].sort()).toEqual(Object.keys(chartDefaults).sort());
    for (const [key, chart] of names) expect(chart, key).toBe(CHARTS[key as keyof typeof CHARTS].chart);
  });

  it("keeps the npm dependencies current: the npm manager on, no rule turning npm packages off, the lock file refreshed", () => {
    expect(renovate.extends).toContain("config:recommended");
    if (renovate.enabledManagers) expect(renovate.enabledManagers).toContain("npm");
    // Only `node` (the runtime, moved by hand with .nvmrc) may be switched off; never npm updates as a whole.
    const off = renovate.packageRules.filter((r) => r.enabled === false);
    for (const rule of off) {
      expect(rule.matchManagers ?? [], JSON.stringify(rule)).not.toContain("npm");
      expect(rule.matchDepNames, JSON.stringify(rule)).toBeDefined();
    }
    expect(renovate.lockFileMaintenance?.enabled).toBe(true);
  });

  it("keeps typescript (the API the Pulumi CLI's ts-node loads) below 7, and the type checks on TypeScript 7 by its own name", () => {
    const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")) as { devDependencies: Record<string, string>; scripts: Record<string, string> };
    expect(pkg.devDependencies.typescript).toMatch(/^[~^]?[56]\./);
    expect(pkg.devDependencies["@typescript/native"]).toMatch(/^npm:typescript@[~^]?7\./);
    const rule = renovate.packageRules.find((r) => r.matchDepNames?.includes("typescript"));
    expect(rule?.allowedVersions).toBe("<7");
    const checks = Object.entries(pkg.scripts).filter(([name]) => name.startsWith("typecheck:"));
    expect(checks.length).toBeGreaterThan(0);
    for (const [name, command] of checks) expect(command, name).toMatch(/^node node_modules\/@typescript\/native\/bin\/tsc /);
  });

  it("keeps actions pinned by digest and Node on the .nvmrc major", () => {
    expect(renovate.extends).toContain("helpers:pinGitHubActionDigests");
    const nodeRule = renovate.packageRules.find((r) => r.matchDepNames?.includes("node"));
    expect(nodeRule?.enabled).toBe(false);
    // The load generator's image runs Node too: the same major, whichever stack.
    for (const stack of ["dev", "prod"]) {
      const image = loadConfig(stack, readStackConfig(stack)).features.loadGenerator.image;
      expect(nodeMajorOf(image), `${stack}: features.loadGenerator.image ${image}`).toBe(NODE_MAJOR);
    }
  });

  it("keeps the service images' base images pinned by digest, grouped, and on the .nvmrc major of node", () => {
    // The Dockerfile manager is on (config:recommended) unless enabledManagers leaves it out.
    expect(renovate.enabledManagers === undefined || renovate.enabledManagers.includes("dockerfile")).toBe(true);
    const rule = renovate.packageRules.find((r) => r.matchManagers?.includes("dockerfile"));
    expect(rule).toMatchObject({ pinDigests: true, groupName: expect.any(String) });
    // Renovate can only move a digest it can tie to a tag: every FROM names both.
    const bases = new Set<string>();
    for (const svc of SERVICE_NAMES) {
      for (const stage of readDockerfile(svc).stages) {
        const ref = parseImageRef(stage.image);
        expect(ref.tag && ref.digest, `${svc}: ${stage.image}`).toBeTruthy();
        bases.add(ref.name);
      }
    }
    // The node image's major follows .nvmrc (the rule that disables node majors applies to it).
    expect(bases).toContain("node");
    // Each Dockerfile's Node, build stages (node:<major>-…) and runtime (distroless nodejs<major>), is .nvmrc's major.
    expect(NODE_MAJOR).toMatch(/^\d+$/);
    for (const svc of SERVICE_NAMES) expect(nodeMajorProblems(readDockerfile(svc), NODE_MAJOR), svc).toEqual([]);
    // The check is live: a Dockerfile moved to another major, in either kind of stage, is refused.
    const other = String(Number(NODE_MAJOR) + 2);
    const { text, file } = readDockerfile(SERVICE_NAMES[0]);
    const mutations = {
      "node build stages": text.replaceAll(`node:${NODE_MAJOR}-`, `node:${other}-`),
      "distroless runtime": text.replaceAll(`distroless/nodejs${NODE_MAJOR}-`, `distroless/nodejs${other}-`),
    };
    for (const [what, mutated] of Object.entries(mutations)) {
      expect(mutated, what).not.toBe(text);
      expect(nodeMajorProblems(parseDockerfile(mutated, file), NODE_MAJOR).join("\n"), what).toContain(`Node ${other}, .nvmrc says ${NODE_MAJOR}`);
    }
  });
});
