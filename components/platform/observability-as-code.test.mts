/**
 * Dashboards and alert rules are code: each query must be valid PromQL (parsed with Prometheus'
 * own grammar) and read only metrics the services really emit, with the labels they really carry
 * (from `services/kit/src/metric-names.ts`), or the cluster's standard metrics. The dashboards are checked
 * as Grafana gets them (monitoring.ts fills in the probe routes): users' request panels leave out exactly the
 * routes the rules leave out (`NOT_USER_ROUTES`), ratios show no value rather than NaN, rates span four scrapes.
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { parser } from "@prometheus-io/lezer-promql";
import { describe, expect, it } from "vitest";
import { HTTP_DURATION_BUCKETS, HTTP_LABELS, METRICS } from "../../services/kit/src/metric-names.js";
import { SERVICE_PATHS } from "../../services/kit/src/contract.js";
import { parse } from "yaml";
import { loadConfig } from "../../stacks/config.js";
import { configuredRun, ofType, readStackConfig } from "../../stacks/harness.js";
import { chartDefaultsDir } from "./chart-defaults.js";
import { CHART_ALERTS_OFF, CHART_RULE_GROUPS_OFF, loadDashboards, NOT_USER_ROUTES_PLACEHOLDER, renderDashboard, SCRAPE_INTERVAL } from "./monitoring.js";
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
  "kube_cronjob_created",
  "kube_cronjob_next_schedule_time",
  "kube_cronjob_status_last_schedule_time",
  "kube_cronjob_status_last_successful_time",
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

/** The dashboards as Grafana gets them (placeholders filled in: monitoring.ts), and as their files hold them. */
const dashboards = loadDashboards().map((d) => ({ file: d.file, json: JSON.parse(d.json) as Obj }));
const sources = readdirSync(DIR)
  .filter((f) => f.endsWith(".json"))
  .map((f) => ({ file: f, json: JSON.parse(readFileSync(path.join(DIR, f), "utf8")) as Obj }));

/** The request series: every selector on them is either users' traffic or, in a panel about them, probes and scrapes. */
const HTTP_SERIES = new Set<string>([METRICS.httpRequests, ...["_bucket", "_sum", "_count"].map((s) => `${METRICS.httpDuration}${s}`)]);

/** The routes a PromQL route regex (as written in a double-quoted string) matches, among every route the kit names and a few user ones. */
function routesMatched(promqlString: string): string[] {
  const re = new RegExp(`^(?:${promqlString.replace(/\\\\/g, "\\")})$`);
  const candidates = [...Object.values(SERVICE_PATHS), "unmatched", "/api/users/:id", "/api/auth/login", "/blog/api/posts", "/healthz/deep", "/metricsx", "/"];
  return candidates.filter((r) => re.test(r)).sort();
}

/** The codes (100-599, as the kit writes them: "503") a status matcher selects. */
function codesMatched(op: string, value: string): string[] {
  const codes = Array.from({ length: 500 }, (_, i) => String(100 + i));
  const re = new RegExp(`^(?:${value})$`);
  const hit = (c: string) => (op === "=" || op === "!=" ? c === value : re.test(c));
  return codes.filter((c) => (op.startsWith("!") ? !hit(c) : hit(c)));
}

/** Each division in a query: its numerator and denominator, as written. */
function divisions(expr: string): { num: string; den: string }[] {
  const q = expr.replace(/\$__rate_interval|\$__interval|\$__range/g, "5m");
  const found: { num: string; den: string }[] = [];
  parser.parse(q).iterate({
    enter(ref) {
      const n = ref.node;
      if (n.name !== "BinaryExpr" || !n.getChild("Div")) return;
      found.push({ num: q.slice(n.firstChild!.from, n.firstChild!.to), den: q.slice(n.lastChild!.from, n.lastChild!.to) });
    },
  });
  return found;
}

/** A Prometheus duration ("30s", "5m", "1h") in seconds. */
function seconds(d: string): number {
  const m = /^(\d+)(s|m|h|d)$/.exec(d);
  if (!m) throw new Error(`not a simple duration: ${d}`);
  return Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[m[2] as "s" | "m" | "h" | "d"];
}

function panels(d: Obj): Obj[] {
  return (d.panels as Obj[]).flatMap((p) => [p, ...((p.panels as Obj[] | undefined) ?? [])]);
}
const promTargets = (p: Obj) => ((p.targets as Obj[] | undefined) ?? []).filter((t) => (t.datasource as Obj | undefined)?.type !== "loki");
/** Every Prometheus query of a dashboard's panels, with its panel. */
const queries = (d: Obj) => panels(d).flatMap((p) => promTargets(p).map((t) => ({ panel: p, title: String(p.title), expr: String(t.expr) })));

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

  it.each(dashboards)("$file counts users' requests only: every request panel leaves out exactly NOT_USER_ROUTES, but one titled as probes", ({ json }) => {
    // The kit counts the kubelet's probes and Prometheus' scrapes like any request: an idle service would show
    // steady traffic and an excellent p99, and a readiness 503 an error. The rules leave them out the same way.
    let checked = 0;
    for (const { title, expr } of queries(json)) {
      for (const s of selectors(expr).filter((x) => HTTP_SERIES.has(x.metric))) {
        const route = s.matchers.filter((m) => m.label === "route");
        expect(route.length, `${title}: ${expr}`).toBe(1);
        const { op, value } = route[0]!;
        expect(["!~", "=~"], `${title}: ${expr}`).toContain(op);
        // The matcher's routes are NOT_USER_ROUTES exactly, read as Prometheus reads the regex (anchored).
        expect(routesMatched(value), `${title}: ${expr}`).toEqual([...NOT_USER_ROUTES].sort());
        if (op === "=~") expect(title, "a panel that counts probes and scrapes says so").toMatch(/probes/i);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(0);
  });

  it("the golden signals' traffic, errors, error ratio and latency percentiles are users' only; probes show apart on the service dashboard", () => {
    const userPanels = (file: string) =>
      queries(dashboards.find((d) => d.file === file)!.json)
        .filter((q) => q.expr.includes(`route!~"`))
        .map((q) => q.title);
    expect(userPanels("golden-signals.json")).toEqual(
      expect.arrayContaining(["Latency p50", "Latency p95", "Latency p99", "Traffic (user requests/s)", "Errors by status (requests/s)", "Error ratio (5xx)"]),
    );
    expect(userPanels("service.json")).toEqual(expect.arrayContaining(["Requests/s by route", "Latency p95 by route", "Errors/s by route and status", "Average latency"]));
    const probes = queries(dashboards.find((d) => d.file === "service.json")!.json).filter((q) => q.expr.includes(`route=~"`));
    expect(probes.map((q) => q.title)).toEqual(["Probes and scrapes (requests/s, not user traffic)"]);
    // A failing readiness probe must stay visible somewhere: by route and status.
    expect(probes[0]!.expr).toContain("sum by (route, status)");
  });

  it.each(sources)("$file holds the probe routes only as the placeholder filled in at load (one list: NOT_USER_ROUTES)", ({ json }) => {
    const routeMatchers = queries(json).flatMap((q) => [...q.expr.matchAll(/route\s*(?:=~|!~|=|!=)\s*"([^"]*)"/g)].map((m) => ({ title: q.title, value: m[1]! })));
    expect(routeMatchers.length).toBeGreaterThan(0);
    for (const m of routeMatchers) expect(m.value, m.title).toBe(NOT_USER_ROUTES_PLACEHOLDER);
    const text = JSON.stringify(json);
    for (const r of NOT_USER_ROUTES) expect(text, `${r} written into the JSON`).not.toMatch(new RegExp(`route[^,}]*${r}`));
  });

  it("the loader fills the placeholder in (JSON escaping kept) and refuses one it does not know", () => {
    const rendered = JSON.parse(renderDashboard(JSON.stringify({ expr: `x{route!~"${NOT_USER_ROUTES_PLACEHOLDER}"} / y{route=~"${NOT_USER_ROUTES_PLACEHOLDER}"}` }))) as { expr: string };
    const values = [...rendered.expr.matchAll(/route[!=]~"([^"]*)"/g)].map((m) => m[1]!);
    expect(values).toHaveLength(2);
    for (const v of values) expect(routesMatched(v)).toEqual([...NOT_USER_ROUTES].sort());
    expect(() => renderDashboard(JSON.stringify({ expr: 'x{route!~"@NOT_USER_ROUTE@"}' }), "typo.json")).toThrow(/typo.json: unknown placeholder @NOT_USER_ROUTE@/);
  });

  it.each(dashboards)("$file rates over at least four scrapes (Grafana's rate interval, sized from the scrape interval, or a long literal)", ({ json }) => {
    for (const { title, expr } of queries(json)) {
      for (const [, range] of expr.matchAll(/\[([^\]]+)\]/g)) {
        if (range === "$__rate_interval") continue;
        // $__interval follows the panel's width and can be one scrape long: a rate over it has gaps.
        expect(range, `${title}: ${expr}`).not.toMatch(/^\$/);
        expect(seconds(range!), `${title}: ${expr}`).toBeGreaterThanOrEqual(4 * seconds(SCRAPE_INTERVAL));
      }
    }
  });

  it.each(dashboards)("$file guards each ratio of request series: no value rather than NaN while there is no user traffic", ({ json }) => {
    for (const { title, expr } of queries(json)) {
      for (const { den } of divisions(expr)) {
        if (!selectors(den).some((s) => HTTP_SERIES.has(s.metric))) continue;
        expect(den, `${title}: ${expr}`).toMatch(/^\(.* > 0\)$/);
      }
    }
  });

  it("the error ratio reads 0 for a service without 5xx (the kit creates a status series on its first request), not nothing", () => {
    const golden = dashboards.find((d) => d.file === "golden-signals.json")!.json;
    const ratio = queries(golden).filter((q) => q.title === "Error ratio (5xx)");
    expect(ratio).toHaveLength(1);
    const [{ num, den }] = divisions(ratio[0]!.expr) as [{ num: string; den: string }];
    const m = /^\((.+) or (.+) \* 0\)$/.exec(num);
    expect(m, num).not.toBeNull();
    // The fallback is the denominator itself: every service with users' traffic has a value.
    expect(`(${m![2]} > 0)`).toBe(den);
    const status = selectors(m![1]!).flatMap((s) => s.matchers.filter((x) => x.label === "status"));
    expect(status).toHaveLength(1);
    expect(codesMatched(status[0]!.op, status[0]!.value)).toEqual(Array.from({ length: 100 }, (_, i) => String(500 + i)));
  });

  it("every status matcher, in dashboards and rules, selects real codes as the kit writes them", () => {
    const exprs = [...dashboards.flatMap((d) => queries(d.json).map((q) => q.expr)), ...ALERT_GROUPS.flatMap((g) => g.rules.map((r) => r.expr))];
    let checked = 0;
    for (const expr of exprs) {
      for (const m of selectors(expr).flatMap((s) => s.matchers.filter((x) => x.label === "status"))) {
        expect(codesMatched(m.op, m.value).length, `${m.label}${m.op}"${m.value}" in ${expr}`).toBeGreaterThan(0);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(0);
    // A class regex covers its whole class: 4xx and 5xx errors are 400-599.
    expect(codesMatched("=~", "4..|5..")).toEqual(Array.from({ length: 200 }, (_, i) => String(400 + i)));
  });
});

describe("the dashboards and scrapes the program provisions", () => {
  it("hands Grafana the dashboards with the probe routes filled in, and scrapes every target at SCRAPE_INTERVAL", async () => {
    const run = await configuredRun("dev");
    const maps = ofType(run, "kubernetes:core/v1:ConfigMap").filter((c) => (c.inputs.metadata as Obj).labels && ((c.inputs.metadata as Obj).labels as Obj).grafana_dashboard === "1");
    const data = Object.assign({}, ...maps.map((c) => c.inputs.data as Record<string, string>)) as Record<string, string>;
    expect(Object.keys(data).sort()).toEqual(loadDashboards().map((d) => d.file));
    for (const d of loadDashboards()) {
      expect(data[d.file], d.file).toBe(d.json);
      expect(data[d.file], d.file).not.toContain(NOT_USER_ROUTES_PLACEHOLDER);
    }
    // Grafana's data source takes its timeInterval from Prometheus' scrape interval: $__rate_interval spans four scrapes
    // only while no target is scraped less often.
    const kps = ofType(run, "kubernetes:helm.sh/v3:Release").find((r) => r.inputs.chart === "kube-prometheus-stack")!;
    expect((((kps.inputs.values as Obj).prometheus as Obj).prometheusSpec as Obj).scrapeInterval).toBe(SCRAPE_INTERVAL);
    const monitors = [...ofType(run, "kubernetes:monitoring.coreos.com/v1:PodMonitor"), ...ofType(run, "kubernetes:monitoring.coreos.com/v1:ServiceMonitor")];
    expect(monitors.length).toBeGreaterThan(0);
    for (const m of monitors) {
      const spec = m.inputs.spec as { podMetricsEndpoints?: Obj[]; endpoints?: Obj[] };
      for (const e of [...(spec.podMetricsEndpoints ?? []), ...(spec.endpoints ?? [])]) expect(e.interval ?? SCRAPE_INTERVAL, m.name).toBe(SCRAPE_INTERVAL);
    }
  });
});

/** The quantiles and histograms the chart's `kubeSchedulerRecording` group records. */
const SCHEDULER_RECORDED = ["scheduler_e2e_scheduling_duration_seconds_bucket", "scheduler_scheduling_algorithm_duration_seconds_bucket", "scheduler_binding_duration_seconds_bucket"];

/**
 * The chart's rule groups about K3s' controller manager, scheduler and kube-proxy (kube-prometheus-stack's
 * rules-1.14/kubernetes-system-{controller-manager,scheduler,kube-proxy}.yaml and kube-scheduler.rules.yaml):
 * the values key that enables each, and its queries with the job as the templates write it (`$JOB`:
 * the component's `jobNameOverride`, else its default name).
 */
const CHART_CONTROL_PLANE_RULES: Record<string, { component: string; defaultJob: string; exprs: string[] }> = {
  kubeControllerManager: { component: "kubeControllerManager", defaultJob: "kube-controller-manager", exprs: ['absent(up{job="$JOB"} == 1)'] },
  kubeSchedulerAlerting: { component: "kubeScheduler", defaultJob: "kube-scheduler", exprs: ['absent(up{job="$JOB"} == 1)'] },
  kubeSchedulerRecording: {
    component: "kubeScheduler",
    defaultJob: "kube-scheduler",
    exprs: ["0.99", "0.9", "0.5"].flatMap((q) => SCHEDULER_RECORDED.map((m) => `histogram_quantile(${q}, sum(rate(${m}{job="$JOB"}[5m])) without(instance, pod))`)),
  },
  kubeProxy: { component: "kubeProxy", defaultJob: "kube-proxy", exprs: ['absent(up{job="$JOB"} == 1)'] },
};

describe.each(["dev", "prod"])("the chart's control-plane rules (%s)", (stack) => {
  it.each(Object.keys(CHART_CONTROL_PLANE_RULES))("%s is on, and reads the job its targets carry and series they keep", async (group) => {
    const { component, defaultJob, exprs } = CHART_CONTROL_PLANE_RULES[group]!;
    const run = await configuredRun(stack);
    const kps = ofType(run, "kubernetes:helm.sh/v3:Release").find((r) => r.inputs.chart === "kube-prometheus-stack")!;
    const values = kps.inputs.values as Obj;
    // On: not turned off by the values, on in the pinned chart's defaults, and its component enabled (the templates check both).
    expect(CHART_RULE_GROUPS_OFF as readonly string[]).not.toContain(group);
    expect(((values.defaultRules as Obj).rules as Obj)[group]).toBeUndefined();
    const version = loadConfig(stack, readStackConfig(stack)).charts.kubePrometheusStack.version;
    const chart = parse(readFileSync(path.join(chartDefaultsDir("kube-prometheus-stack", version), "values.yaml"), "utf8")) as { defaultRules: { rules: Record<string, boolean> } };
    expect(chart.defaultRules.rules[group]).toBe(true);
    const target = values[component] as Obj;
    expect(target.enabled).toBe(true);
    // The job the rules select, as the chart renders it, is the one the scrape writes onto every target.
    const ruleJob = String(target.jobNameOverride || defaultJob);
    const monitor = target.serviceMonitor as Obj;
    const jobRelabels = ((monitor.relabelings as Obj[] | undefined) ?? []).filter((r) => r.targetLabel === "job");
    expect(jobRelabels).toEqual([{ action: "replace", targetLabel: "job", replacement: ruleJob }]);
    const keep = ((monitor.metricRelabelings as Obj[]) ?? []).find((r) => r.action === "keep")!;
    const kept = new RegExp(`^(?:${String(keep.regex)})$`);
    for (const expr of exprs.map((e) => e.replaceAll("$JOB", ruleJob))) {
      const read = selectors(expr);
      expect(read.length, expr).toBeGreaterThan(0);
      for (const sel of read) {
        expect(sel.matchers, expr).toEqual([{ label: "job", op: "=", value: ruleJob }]);
        // `up` is Prometheus' own (no metric relabeling touches it); every other series must survive the keep.
        if (sel.metric !== "up") expect(sel.metric, expr).toMatch(kept);
      }
    }
  });
});

describe("PrometheusRules", () => {
  const rules = ALERT_GROUPS.flatMap((g) => g.rules);

  it("cover error ratio, latency SLO burn, target down, restarts, memory near limit and rate-limit hits", () => {
    expect(rules.map((r) => r.alert).sort()).toEqual(
      ["TitaniumHighErrorRatio", "TitaniumLatencySLOFastBurn", "TitaniumLatencySLOSlowBurn", "TitaniumTargetDown", "TitaniumPodRestarting", "TitaniumMemoryNearLimit", "TitaniumRateLimitHits", "TitaniumBackupStale"].sort(),
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
    const values = parse(readFileSync(path.join(chartDefaultsDir("kube-prometheus-stack", version), "values.yaml"), "utf8")) as { defaultRules: { rules: Record<string, boolean> } };
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
