/**
 * Dashboards and alert rules are code: each query must be valid PromQL (parsed with Prometheus'
 * own grammar) and read only metrics the services really emit, with the labels they really carry
 * (from `services/kit/src/metric-names.ts`), or the cluster's standard metrics.
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { parser } from "@prometheus-io/lezer-promql";
import { describe, expect, it } from "vitest";
import { HTTP_DURATION_BUCKETS, HTTP_LABELS, METRICS } from "../../services/kit/src/metric-names.js";
import { SERVICE_PATHS } from "../../services/kit/src/contract.js";
import { parse } from "yaml";
import { loadConfig } from "../../stacks/config.js";
import { readStackConfig } from "../../stacks/harness.js";
import { CHART_ALERTS_OFF, CHART_RULE_GROUPS_OFF } from "./monitoring.js";
import { ALERT_GROUPS, bucketLabel, LATENCY_SLO_SECONDS, NOT_USER_ROUTES } from "./rules.js";

type Obj = Record<string, unknown>;
const DIR = path.join(import.meta.dirname, "dashboards");

/** Series names the services expose: counters as named, the histogram as its three series. */
const APP_SERIES = new Set<string>([
  METRICS.httpRequests,
  METRICS.signups,
  METRICS.logins,
  METRICS.postsCreated,
  ...["_bucket", "_sum", "_count"].map((s) => `${METRICS.httpDuration}${s}`),
]);
/** Cluster metrics (kube-state-metrics, cAdvisor via the kubelet, Prometheus itself). */
const CLUSTER_SERIES = new Set([
  "up",
  "kube_pod_container_resource_limits",
  "kube_pod_container_status_restarts_total",
  "kube_pod_init_container_resource_limits",
  "kube_pod_init_container_status_restarts_total",
  "container_memory_working_set_bytes",
  "container_cpu_usage_seconds_total",
]);
/** Labels any series gets from its target, plus the metric-specific ones the kit documents. */
const TARGET_LABELS = ["namespace", "pod", "container", "job", "instance", "app"];
const APP_LABELS = new Set<string>([...HTTP_LABELS, "le", "result", ...TARGET_LABELS]);

interface Selector {
  metric: string;
  matchers: { label: string; op: string; value: string }[];
}

/** Parses PromQL (Grafana's $__ variables replaced) and returns its selectors; throws on a syntax error. */
function selectors(expr: string): Selector[] {
  const q = expr.replace(/\$__rate_interval|\$__interval|\$__range/g, "5m");
  const tree = parser.parse(q);
  const found: Selector[] = [];
  let error: string | undefined;
  tree.iterate({
    enter(node) {
      if (node.type.isError) error ??= `syntax error at ${node.from} in: ${q}`;
      if (node.name !== "VectorSelector") return;
      const text = q.slice(node.from, node.to);
      const metric = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(text)?.[0] ?? "";
      const matchers = [...text.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"([^"]*)"/g)].map((m) => ({ label: m[1]!, op: m[2]!, value: m[3]! }));
      found.push({ metric, matchers });
    },
  });
  if (error) throw new Error(error);
  return found;
}

/** Checks one query; returns problems (empty when fine). */
function problems(expr: string): string[] {
  const out: string[] = [];
  for (const s of selectors(expr)) {
    if (APP_SERIES.has(s.metric)) {
      for (const m of s.matchers) {
        if (!APP_LABELS.has(m.label)) out.push(`${s.metric} has no label "${m.label}"`);
        // status is the real code ("429"), never a class ("4xx").
        if (m.label === "status" && /x/i.test(m.value)) out.push(`status "${m.value}" is a class; the kit records codes`);
        if (m.label === "le" && !HTTP_DURATION_BUCKETS.map(bucketLabel).includes(m.value)) out.push(`le="${m.value}" is not a bucket`);
      }
    } else if (!CLUSTER_SERIES.has(s.metric)) {
      out.push(`unknown metric "${s.metric}"`);
    }
  }
  return out;
}

const dashboards = readdirSync(DIR)
  .filter((f) => f.endsWith(".json"))
  .map((f) => ({ file: f, json: JSON.parse(readFileSync(path.join(DIR, f), "utf8")) as Obj }));

function panels(d: Obj): Obj[] {
  return (d.panels as Obj[]).flatMap((p) => [p, ...((p.panels as Obj[] | undefined) ?? [])]);
}
const promTargets = (p: Obj) => ((p.targets as Obj[] | undefined) ?? []).filter((t) => (t.datasource as Obj | undefined)?.type !== "loki");

describe("the query checker", () => {
  it("rejects invented metrics, unknown labels, status classes, missing buckets and bad syntax", () => {
    expect(problems('rate(http_requests_total{status=~"5xx"}[5m])')).toEqual(['status "5xx" is a class; the kit records codes']);
    expect(problems("rate(http_request_total[5m])")).toEqual(['unknown metric "http_request_total"']);
    expect(problems('http_requests_total{code="500"}')).toEqual(['http_requests_total has no label "code"']);
    expect(problems('http_request_duration_seconds_bucket{le="0.3"}')).toEqual(['le="0.3" is not a bucket']);
    // Prometheus 3 stores a classic histogram's le as a float ("1.0"): a matcher on le="1" never matches.
    expect(problems('http_request_duration_seconds_bucket{le="1"}')).toEqual(['le="1" is not a bucket']);
    expect(problems('http_request_duration_seconds_bucket{le="1.0"}')).toEqual([]);
    expect(problems('http_request_duration_seconds_bucket{le="0.5"}')).toEqual([]);
    expect(() => problems("sum(rate(http_requests_total[5m])")).toThrow(/syntax error/);
  });
});

describe("Grafana dashboards", () => {
  it("are the golden-signals and per-service dashboards, with unique uids", () => {
    expect(dashboards.map((d) => d.file).sort()).toEqual(["golden-signals.json", "service.json"]);
    expect(new Set(dashboards.map((d) => d.json.uid)).size).toBe(dashboards.length);
  });

  it.each(dashboards)("$file is valid Grafana dashboard JSON", ({ json }) => {
    expect(json).toMatchObject({ uid: expect.stringMatching(/^[a-z0-9-]{1,40}$/), title: expect.any(String), schemaVersion: expect.any(Number) });
    expect(json.id).toBeUndefined(); // provisioned dashboards must not carry a database id
    const ids = panels(json).map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of panels(json)) {
      expect(p.gridPos, String(p.title)).toMatchObject({ x: expect.any(Number), y: expect.any(Number), w: expect.any(Number), h: expect.any(Number) });
      if (p.type !== "row") expect((p.targets as Obj[]).length, String(p.title)).toBeGreaterThan(0);
    }
    const vars = ((json.templating as Obj).list as Obj[]).map((v) => v.name);
    expect(vars).toEqual(expect.arrayContaining(["datasource", "service"]));
  });

  it.each(dashboards)("$file queries only metrics and labels the services emit", ({ json }) => {
    for (const p of panels(json)) for (const t of promTargets(p)) expect(problems(String(t.expr)), `${String(p.title)}: ${String(t.expr)}`).toEqual([]);
  });

  it.each(dashboards)("$file counts the native sidecar's restarts beside the app container's", ({ json }) => {
    // The istio-proxy runs as an init container that keeps running: its restarts are kube_pod_init_container_*.
    for (const p of panels(json)) {
      for (const t of promTargets(p)) {
        const read = new Set(selectors(String(t.expr)).map((s) => s.metric));
        if (read.has("kube_pod_container_status_restarts_total")) expect(read, String(p.title)).toContain("kube_pod_init_container_status_restarts_total");
      }
    }
  });

  it("golden signals: p50/p95/p99 latency, traffic, errors by status, saturation", () => {
    const golden = dashboards.find((d) => d.file === "golden-signals.json")!.json;
    const exprs = panels(golden).flatMap((p) => promTargets(p).map((t) => String(t.expr)));
    for (const q of ["0.5", "0.95", "0.99"]) {
      expect(exprs.some((e) => e.startsWith(`histogram_quantile(${q},`) && e.includes(`${METRICS.httpDuration}_bucket`))).toBe(true);
    }
    expect(exprs.some((e) => e.includes(`sum by (service, status)`) && e.includes(METRICS.httpRequests))).toBe(true);
    expect(exprs.some((e) => e.includes("container_memory_working_set_bytes") && e.includes('resource="memory"'))).toBe(true);
    expect(exprs.some((e) => e.includes("container_cpu_usage_seconds_total") && e.includes('resource="cpu"'))).toBe(true);
  });
});

describe("PrometheusRules", () => {
  const rules = ALERT_GROUPS.flatMap((g) => g.rules);

  it("cover error ratio, latency SLO burn, target down, restarts, memory near limit and rate-limit hits", () => {
    expect(rules.map((r) => r.alert).sort()).toEqual(
      ["TitaniumHighErrorRatio", "TitaniumLatencySLOFastBurn", "TitaniumLatencySLOSlowBurn", "TitaniumTargetDown", "TitaniumPodRestarting", "TitaniumMemoryNearLimit", "TitaniumRateLimitHits"].sort(),
    );
  });

  it.each(rules)("$alert is valid PromQL over real metrics, with severity and runbook", (r) => {
    expect(problems(r.expr)).toEqual([]);
    expect(r.annotations.runbook_url).toContain(`alerts.md#${r.alert.toLowerCase()}`);
    expect(r.for).toMatch(/^\d+[smh]$/);
  });

  it("judges users' requests only: the error ratio and the latency SLO leave the kit's probe and scrape routes out", () => {
    // Every kit path but the OpenAPI document, which users read.
    expect([...NOT_USER_ROUTES].sort()).toEqual([SERVICE_PATHS.live, SERVICE_PATHS.ready, SERVICE_PATHS.legacyHealth, SERVICE_PATHS.metrics].sort());
    for (const alert of ["TitaniumHighErrorRatio", "TitaniumLatencySLOFastBurn", "TitaniumLatencySLOSlowBurn"]) {
      const expr = rules.find((r) => r.alert === alert)!.expr;
      const selectors = [...expr.matchAll(/http_request[a-z_]*\{([^}]*)\}/g)].map((m) => m[1]!);
      expect(selectors.length, alert).toBeGreaterThan(0);
      for (const sel of selectors) expect(sel, alert).toContain(`route!~"${NOT_USER_ROUTES.join("|")}"`);
    }
  });

  it("writes burn-rate thresholds as the workbook's numbers, without binary float noise", () => {
    const thresholds = rules.filter((r) => r.alert.startsWith("TitaniumLatencySLO")).flatMap((r) => [...r.expr.matchAll(/> ([0-9.e-]+)/g)].map((m) => m[1]!));
    expect(thresholds.length).toBe(4);
    for (const t of thresholds) expect(t.replace(/^0\./, "").length, t).toBeLessThanOrEqual(6);
  });

  it("reads the latency objective from an exact histogram bucket and 429s as a code", () => {
    expect(HTTP_DURATION_BUCKETS).toContain(LATENCY_SLO_SECONDS);
    expect([0.005, 0.5, 1, 2.5, 10].map(bucketLabel)).toEqual(["0.005", "0.5", "1.0", "2.5", "10.0"]);
    expect(rules.find((r) => r.alert === "TitaniumRateLimitHits")!.expr).toContain('status="429"');
  });

  it("per-container rules see the sidecars too: a native sidecar's series are the init-container ones", () => {
    expect(readFileSync(path.join(import.meta.dirname, "../apps/mesh.ts"), "utf8")).toContain('"sidecar.istio.io/nativeSidecar": "true"');
    for (const r of rules) {
      const read = new Set(selectors(r.expr).map((s) => s.metric));
      for (const m of read) {
        const init = m.replace(/^kube_pod_container_/, "kube_pod_init_container_");
        if (init !== m) expect(read, `${r.alert} reads ${m} but not ${init}`).toContain(init);
      }
    }
  });

  it("the runbook lists every default rule group of the pinned chart, kept or not as the values say", () => {
    const version = loadConfig("prod", readStackConfig("prod")).charts.kubePrometheusStack.version;
    const values = parse(readFileSync(path.join(import.meta.dirname, `../../../shared/charts/kube-prometheus-stack/${version}/values.yaml`), "utf8")) as { defaultRules: { rules: Record<string, boolean> } };
    const runbook = readFileSync(path.join(import.meta.dirname, "../../docs/runbooks/alerts.md"), "utf8");
    const table = runbook.slice(runbook.indexOf("## The chart's own alerts"));
    const rows = [...table.matchAll(/^\| (.+) \| (yes|no)[:|]/gm)].flatMap((m) => [...m[1]!.matchAll(/`(\w+)`/g)].map((g) => [g[1]!, m[2]!] as const));
    expect(rows.map(([g]) => g).sort()).toEqual(Object.keys(values.defaultRules.rules).sort());
    expect(rows.filter(([, kept]) => kept === "no").map(([g]) => g).sort()).toEqual([...CHART_RULE_GROUPS_OFF].sort());
    // And each single alert turned off in a kept group, by name.
    for (const alert of CHART_ALERTS_OFF) expect(table, alert).toContain(alert);
  });

  it.each(rules)("$alert waits a non-zero `for` before firing (one evaluation is never enough)", (r) => {
    // `for: 0m` is no `for` at all: the alert fires on the first evaluation that matches, with no pending state.
    expect(r.for).toMatch(/^[1-9]\d*[smh]$/);
  });

  it("counts restarts exactly: no increase() of a restart counter against a whole number", () => {
    // increase() extrapolates to the window's edges (up to ~7% over 15 minutes at a 30 s scrape), so two
    // restarts read as 2.0x and `increase(...) > 2` fires on "more than twice" after exactly two.
    for (const r of rules) {
      expect(r.expr, r.alert).not.toMatch(/increase\(kube_pod_(init_)?container_status_restarts_total/);
    }
    const restarting = rules.find((r) => r.alert === "TitaniumPodRestarting")!.expr;
    for (const family of ["kube_pod_container_status_restarts_total", "kube_pod_init_container_status_restarts_total"]) {
      expect(restarting).toContain(`max_over_time(${family}{namespace="titanium"}[15m]) - min_over_time(${family}{namespace="titanium"}[15m]) > 2`);
    }
  });

  it("each alert has a runbook section", () => {
    const runbook = readFileSync(path.join(import.meta.dirname, "../../docs/runbooks/alerts.md"), "utf8");
    for (const r of rules) expect(runbook, r.alert).toMatch(new RegExp(`^## ${r.alert}$`, "m"));
  });
});
