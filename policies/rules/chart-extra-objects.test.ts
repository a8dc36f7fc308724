import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { chartDefaultsDir } from "../../components/platform/chart-defaults";
import { helmRelease } from "../testing/builders";
import { check, messages } from "../testing/check";
import { recorded, unknown } from "../testing/fixtures";
import { put } from "../testing/mutate";
import { CHART_OBJECT_KEYS, noChartExtraObjects } from "./chart-extra-objects";

type Obj = Record<string, unknown>;

const permissive = { apiVersion: "security.istio.io/v1", kind: "PeerAuthentication", metadata: { name: "default", namespace: "argocd" }, spec: { mtls: { mode: "PERMISSIVE" } } };
const plaintext = { apiVersion: "networking.istio.io/v1", kind: "DestinationRule", metadata: { name: "loki" }, spec: { host: "loki.logging.svc.cluster.local", trafficPolicy: { tls: { mode: "DISABLE" } } } };
const allowAll = { apiVersion: "security.istio.io/v1", kind: "AuthorizationPolicy", metadata: { name: "allow-all" }, spec: { rules: [{}] } };
const openNetwork = { apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata: { name: "allow-all" }, spec: { podSelector: {}, ingress: [{}], policyTypes: ["Ingress"] } };
const allowAllYaml = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: allow-all\nspec:\n  rules:\n  - {}\n";

const release = (chart: string, values: Obj) => helmRelease(chart, chart, values, "monitoring");
const verbatim = (chart: string, at: string, what: string) =>
  `chart "${chart}" renders the objects in its values ${at} verbatim (${what}), which no policy judges: register them as Pulumi resources instead`;

describe("k8s-no-chart-extra-objects", () => {
  it("passes releases that carry no objects: the key absent, null, an empty list or map, or a string of empty YAML", async () => {
    for (const empty of [undefined, null, [], {}, "", "  ", "[]", "{}", "null", "~", [null, ""], { a: null }]) {
      const values: Obj = { replicas: 1, ...(empty === undefined ? {} : { extraObjects: empty, grafana: { extraObjects: empty }, extraManifests: empty }) };
      expect((await check(noChartExtraObjects, release("kube-prometheus-stack", values))).findings, JSON.stringify(empty)).toEqual([]);
    }
  });

  it("refuses the objects the reviewer found passing: PERMISSIVE mTLS, TLS DISABLE, allow-all AuthorizationPolicy and NetworkPolicy", async () => {
    expect(messages(await check(noChartExtraObjects, release("argo-cd", { extraObjects: [permissive] })))).toEqual([
      verbatim("argo-cd", "extraObjects", 'PeerAuthentication "default"'),
    ]);
    // Loki takes a map (its keys ignored, its values rendered).
    expect(messages(await check(noChartExtraObjects, release("loki", { extraObjects: { rule: plaintext } })))).toEqual([
      verbatim("loki", "extraObjects", 'DestinationRule "loki"'),
    ]);
    expect(messages(await check(noChartExtraObjects, release("external-secrets", { extraObjects: [openNetwork, allowAll] })))).toEqual([
      verbatim("external-secrets", "extraObjects", 'NetworkPolicy "allow-all", AuthorizationPolicy "allow-all"'),
    ]);
    expect(messages(await check(noChartExtraObjects, release("kube-prometheus-stack", { extraManifests: [permissive] })))).toEqual([
      verbatim("kube-prometheus-stack", "extraManifests", 'PeerAuthentication "default"'),
    ]);
  });

  it("refuses YAML string forms: an item that is a YAML string (tpl'd by the chart), and the whole value as one string (Loki)", async () => {
    expect(messages(await check(noChartExtraObjects, release("alloy", { extraObjects: [allowAllYaml] })))).toEqual([
      verbatim("alloy", "extraObjects", "a YAML string"),
    ]);
    expect(messages(await check(noChartExtraObjects, release("loki", { extraObjects: `- ${allowAllYaml.replace(/\n(?=.)/g, "\n  ")}` })))).toEqual([
      verbatim("loki", "extraObjects", "a YAML string"),
    ]);
  });

  it("refuses a subchart's key under the subchart's values: grafana, kube-state-metrics and the node exporter inside kube-prometheus-stack", async () => {
    const values = {
      grafana: { adminUser: "admin", extraObjects: [allowAll] },
      "kube-state-metrics": { extraManifests: { np: openNetwork } },
      "prometheus-node-exporter": { extraManifests: [allowAllYaml] },
    };
    expect(messages(await check(noChartExtraObjects, release("kube-prometheus-stack", values)))).toEqual([
      verbatim("kube-prometheus-stack", "grafana.extraObjects", 'AuthorizationPolicy "allow-all"'),
      verbatim("kube-prometheus-stack", "kube-state-metrics.extraManifests", 'NetworkPolicy "allow-all"'),
      verbatim("kube-prometheus-stack", "prometheus-node-exporter.extraManifests", "a YAML string"),
    ]);
  });

  it("reports a refused list once, not again for a field of that name inside its objects", async () => {
    const nested = { kind: "ConfigMap", metadata: { name: "x" }, data: {}, extraObjects: [permissive] };
    expect(messages(await check(noChartExtraObjects, release("argo-cd", { extraObjects: [nested] })))).toEqual([verbatim("argo-cd", "extraObjects", 'ConfigMap "x"')]);
  });

  it("leaves other resource types alone: a v4 Chart component and client-side charts register their objects as resources", async () => {
    const v4 = recorded("kubernetes:helm.sh/v4:Chart", "argo", { values: { extraObjects: [permissive] } }, { custom: false });
    expect((await check(noChartExtraObjects, v4)).findings).toEqual([]);
  });

  it("refuses a release that renders from more than its values (valueYamlFiles, postrender)", async () => {
    const r = release("argo-cd", {});
    r.inputs.valueYamlFiles = [{ path: "./argo-values.yaml" }];
    expect(messages(await check(noChartExtraObjects, r))).toEqual([
      'chart "argo-cd" sets valueYamlFiles, which change what it renders beyond its values, so this policy cannot judge it: pass every value in `values` and use no post-renderer',
    ]);
  });

  it("reports the key unknown in preview, and takes an unknown member as an object", async () => {
    const hidden = release("loki", { extraObjects: [] });
    put(hidden, "values.extraObjects", unknown);
    expect((await check(noChartExtraObjects, hidden)).findings).toEqual([expect.objectContaining({ kind: "unknown", level: "advisory" })]);
    const strict = await check(noChartExtraObjects, hidden, { config: { unknownValues: "violation" } });
    expect(strict.findings.map((f) => [f.kind, f.level])).toEqual([["violation", "mandatory"]]);
    expect(strict.findings[0]!.message).toContain(".values.extraObjects can't be known during preview");
    expect(messages(await check(noChartExtraObjects, release("loki", { extraObjects: [unknown] })))).toEqual([
      verbatim("loki", "extraObjects", "a value unknown in preview"),
    ]);
  });
});

describe("k8s-no-chart-extra-objects against the pinned charts' own values (components/platform/chart-defaults)", () => {
  /** Every key, at any depth, of each pinned chart's default values, with its dotted path. */
  const keysOf = (tree: unknown, at = ""): string[] =>
    tree && typeof tree === "object" && !Array.isArray(tree)
      ? Object.entries(tree as Obj).flatMap(([k, v]) => [at ? `${at}.${k}` : k, ...keysOf(v, at ? `${at}.${k}` : k)])
      : [];
  const ROOT = chartDefaultsDir("", "");
  const charts = readdirSync(ROOT).filter((c) => !c.endsWith(".md"));
  /** A chart's default values (the one pinned version in its folder). */
  const defaultValues = (chart: string): Obj => {
    const [version, ...more] = readdirSync(path.join(ROOT, chart));
    expect(more, `one pinned version of ${chart}`).toEqual([]);
    return parse(readFileSync(path.join(chartDefaultsDir(chart, version!), "values.yaml"), "utf8")) as Obj;
  };
  const defaults = charts.map((chart) => ({ chart, keys: keysOf(defaultValues(chart)) }));

  it("the policy's keys are where the charts read objects to render verbatim, and no chart has another such key", () => {
    const found = defaults.flatMap(({ chart, keys }) => keys.filter((k) => /^extra\w*(Objects|Manifests|Resources|Deploy)$/.test(k.split(".").at(-1)!)).map((k) => `${chart}: ${k}`));
    expect(found.sort()).toEqual([
      "alloy: extraObjects",
      "argo-cd: extraObjects",
      "external-secrets: extraObjects",
      "grafana: extraObjects",
      "kube-prometheus-stack: extraManifests",
      "loki: extraObjects",
    ]);
    for (const entry of found) expect(CHART_OBJECT_KEYS).toContain(entry.split(/[.: ]+/).at(-1));
  });

  it.each([
    ["alloy", "extraObjects"],
    ["argo-cd", "extraObjects"],
    ["external-secrets", "extraObjects"],
    ["loki", "extraObjects"],
    ["kube-prometheus-stack", "extraManifests"],
    // The grafana chart is kube-prometheus-stack's subchart: its values sit under `grafana`.
    ["kube-prometheus-stack", "grafana.extraObjects"],
  ])("refuses %s's %s on top of the chart's default values", async (chart, at) => {
    const r = release(chart, defaultValues(chart));
    expect((await check(noChartExtraObjects, r)).findings, "the chart's defaults carry no objects").toEqual([]);
    put(r, `values.${at}`, [permissive]);
    expect(messages(await check(noChartExtraObjects, r))).toEqual([verbatim(chart, at, 'PeerAuthentication "default"')]);
  });
});
