/**
 * Titanium's alerting rules, as PrometheusRule groups. Every expression reads the metrics the
 * services emit (names in `services/kit/src/metric-names.ts`; `observability-as-code.test.mts` parses each
 * expression and checks it against that file) or the cluster's own (kube-state-metrics, cAdvisor).
 * Each alert links its runbook section in `docs/runbooks/alerts.md`.
 */
import { BACKUP } from "../apps/topology";
import { NAMESPACES } from "./names";

export interface AlertRule {
  alert: string;
  expr: string;
  for: string;
  labels: { severity: "critical" | "warning" | "info" };
  annotations: { summary: string; description: string; runbook_url: string };
}

/** Latency objective: this share of requests completes within {@link LATENCY_SLO_SECONDS}. */
export const LATENCY_SLO_TARGET = 0.99;
/** Must be one of the kit's histogram buckets, so the SLO reads an exact bucket. */
export const LATENCY_SLO_SECONDS = 0.5;

const RUNBOOK = "https://github.com/titanium-platform/titanium/blob/main/docs/runbooks/alerts.md";
const ns = NAMESPACES.app;
const app = `namespace="${ns}"`;
const backup = `${app},cronjob="${BACKUP}"`;
/**
 * The kit's probe and scrape routes (its SERVICE_PATHS but the OpenAPI document; a test holds them equal): the kubelet's and
 * Prometheus' own requests, which neither users' errors nor their latency include. Without this, an idle
 * service's answers were mostly probes (diluting a real error ratio), and a readiness 503 counted as a user error.
 */
export const NOT_USER_ROUTES = ["/healthz", "/readyz", "/health", "/metrics"] as const;
/**
 * {@link NOT_USER_ROUTES} as the text of a PromQL regex string (Prometheus anchors it: exactly these routes, each
 * escaped), for `route!~"…"` (users' requests) or `route=~"…"` (probes and scrapes). The rules below and the
 * Grafana dashboards (their `@NOT_USER_ROUTES@`, filled in at load: monitoring.ts) read this one value.
 */
export const NOT_USER_ROUTES_REGEX = NOT_USER_ROUTES.map((route) => route.replace(/[.*+?^${}()|[\]\\]/g, "\\\\$&")).join("|");
const users = `${app},route!~"${NOT_USER_ROUTES_REGEX}"`;

/**
 * A classic histogram bucket's `le` as Prometheus 3 stores it: every sample's `le` is normalised to a
 * float on ingestion (Go's shortest `g` form, ".0" added to a whole number), so `le="1"` matches nothing
 * once the bucket is stored as `le="1.0"` (Prometheus 3.0 migration guide). Only the range Go writes
 * without an exponent (1e-4 up to 1e6) is accepted.
 */
export function bucketLabel(seconds: number): string {
  if (!(seconds >= 1e-4 && seconds < 1e6)) throw new Error(`bucketLabel: ${seconds} is outside the plain-decimal range`);
  const text = String(seconds);
  return text.includes(".") ? text : `${text}.0`;
}

/** Share of a service's requests slower than the objective over `window` (`le` is an exact bucket). */
const slowRatio = (window: string) =>
  `(1 - (sum by (service) (rate(http_request_duration_seconds_bucket{${users},le="${bucketLabel(LATENCY_SLO_SECONDS)}"}[${window}]))` +
  ` / sum by (service) (rate(http_request_duration_seconds_count{${users}}[${window}]))))`;

const budget = 1 - LATENCY_SLO_TARGET;
/** A burn rate's threshold on the slow-request ratio, without binary float noise (0.144, not 0.1440000000000001). */
const burnThreshold = (rate: number): number => Number((rate * budget).toPrecision(12));

/** Restarts a kube-state-metrics restart counter recorded within `window`, exact (no extrapolation). */
const restartsIn = (metric: string, window: string) => `max_over_time(${metric}{${app}}[${window}]) - min_over_time(${metric}{${app}}[${window}])`;

function rule(alert: string, expr: string, forDuration: string, severity: AlertRule["labels"]["severity"], summary: string, description: string): AlertRule {
  return {
    alert,
    expr,
    for: forDuration,
    labels: { severity },
    annotations: { summary, description, runbook_url: `${RUNBOOK}#${alert.toLowerCase()}` },
  };
}

export const ALERT_GROUPS: { name: string; interval: string; rules: AlertRule[] }[] = [
  {
    name: "titanium.services",
    interval: "30s",
    rules: [
      rule(
        "TitaniumHighErrorRatio",
        `sum by (service) (rate(http_requests_total{${users},status=~"5.."}[5m])) / sum by (service) (rate(http_requests_total{${users}}[5m])) > 0.05`,
        "5m",
        "critical",
        "{{ $labels.service }}: more than 5% of requests fail with 5xx",
        "{{ $labels.service }} answered {{ $value | humanizePercentage }} of its requests with a server error over 5 minutes.",
      ),
      // Multi-window burn rates (Google SRE workbook): fast burn pages, slow burn warns.
      rule(
        "TitaniumLatencySLOFastBurn",
        `${slowRatio("1h")} > ${burnThreshold(14.4)} and ${slowRatio("5m")} > ${burnThreshold(14.4)}`,
        "2m",
        "critical",
        `{{ $labels.service }}: burning the ${LATENCY_SLO_SECONDS}s latency budget 14x too fast`,
        `More than ${(14.4 * budget * 100).toFixed(1)}% of {{ $labels.service }}'s requests took longer than ${LATENCY_SLO_SECONDS}s over the last hour (objective: ${LATENCY_SLO_TARGET * 100}%).`,
      ),
      rule(
        "TitaniumLatencySLOSlowBurn",
        `${slowRatio("6h")} > ${burnThreshold(6)} and ${slowRatio("30m")} > ${burnThreshold(6)}`,
        "15m",
        "warning",
        `{{ $labels.service }}: burning the ${LATENCY_SLO_SECONDS}s latency budget 6x too fast`,
        `More than ${(6 * budget * 100).toFixed(1)}% of {{ $labels.service }}'s requests took longer than ${LATENCY_SLO_SECONDS}s over 6 hours.`,
      ),
      rule(
        "TitaniumTargetDown",
        `up{${app}} == 0`,
        "2m",
        "critical",
        "{{ $labels.pod }} cannot be scraped",
        "Prometheus has failed to scrape {{ $labels.pod }} ({{ $labels.namespace }}) for 2 minutes: the pod or its sidecar is down.",
      ),
      rule(
        "TitaniumRateLimitHits",
        `sum by (service) (rate(http_requests_total{${app},status="429"}[5m])) > 1`,
        "10m",
        "warning",
        "{{ $labels.service }} is rejecting requests with 429",
        "{{ $labels.service }} has answered more than one request per second with 429 Too Many Requests for 10 minutes.",
      ),
    ],
  },
  {
    name: "titanium.pods",
    interval: "1m",
    rules: [
      rule(
        "TitaniumPodRestarting",
        // The istio-proxy runs as a native sidecar (an init container that keeps running): its series are kube_pod_init_container_*.
        // Restarts in the window counted exactly (the counter only grows while the pod lives): increase() extrapolates to
        // the window's edges, so two restarts read as 2.0x and "more than twice" would fire after two.
        `${restartsIn("kube_pod_container_status_restarts_total", "15m")} > 2 or ${restartsIn("kube_pod_init_container_status_restarts_total", "15m")} > 2`,
        // A pending state, as every rule has: one evaluation that matches is never enough.
        "5m",
        "warning",
        "{{ $labels.pod }}/{{ $labels.container }} restarted more than twice in 15 minutes",
        "Container {{ $labels.container }} of {{ $labels.pod }} is restarting repeatedly (crash loop or OOM kill).",
      ),
      rule(
        "TitaniumMemoryNearLimit",
        `max by (namespace, pod, container) (container_memory_working_set_bytes{${app},container!=""}) / max by (namespace, pod, container) (kube_pod_container_resource_limits{${app},resource="memory"} or kube_pod_init_container_resource_limits{${app},resource="memory"}) > 0.9`,
        "10m",
        "warning",
        "{{ $labels.pod }}/{{ $labels.container }} uses more than 90% of its memory limit",
        "{{ $labels.container }} in {{ $labels.pod }} has used {{ $value | humanizePercentage }} of its memory limit for 10 minutes; it will be OOM-killed next.",
      ),
    ],
  },
  {
    name: "titanium.data",
    interval: "5m",
    rules: [
      rule(
        "TitaniumBackupStale",
        // No successful backup (or none since the CronJob was created) for one and a half schedule periods (the
        // time between its last and next scheduled runs, read from kube-state-metrics, so any schedule works)
        // plus an hour: a failing, suspended or never-started CronJob alike. KubeJobFailed fires only while a
        // failed Job exists, and the bucket's age rule keeps deleting old dumps meanwhile.
        // The period: from the last scheduled run to the next; for a CronJob never scheduled yet (kube-state-metrics
        // has no last schedule time then, and the comparison would have nothing to compare with), from its creation.
        `time() - max by (namespace, cronjob) (kube_cronjob_status_last_successful_time{${backup}} or kube_cronjob_created{${backup}}) > 1.5 * max by (namespace, cronjob) ((kube_cronjob_next_schedule_time{${backup}} - kube_cronjob_status_last_schedule_time{${backup}}) or (kube_cronjob_next_schedule_time{${backup}} - kube_cronjob_created{${backup}})) + 3600`,
        "30m",
        "critical",
        "No successful PostgreSQL backup for longer than its schedule allows",
        "The {{ $labels.cronjob }} CronJob last completed a backup {{ $value | humanizeDuration }} ago (or was created that long ago and never has); old dumps keep expiring from the bucket.",
      ),
    ],
  },
];
