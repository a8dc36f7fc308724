/**
 * The Prometheus metric names every Titanium service emits: one place, read by the kit's metrics
 * module, the Grafana dashboards and the PrometheusRules (and by the tests that keep them in step).
 */
export const METRICS = {
  /** Counter `{service, method, route, status}`: status is the real code ("429"), not a class. */
  httpRequests: "http_requests_total",
  /** Histogram `{service, method, route}` with buckets from 5 ms to 10 s. */
  httpDuration: "http_request_duration_seconds",
  /** Counter `{service}`: accounts created. */
  signups: "titanium_signups_total",
  /** Counter `{service, result}` with result "ok" or "failed". */
  logins: "titanium_logins_total",
  /** Counter `{service}`: blog posts created. */
  postsCreated: "titanium_posts_created_total",
} as const;

/** Labels on the HTTP metrics, in the order the kit sets them. */
export const HTTP_LABELS = ["service", "method", "route", "status"] as const;

/** Histogram buckets in seconds: 5 ms to 10 s. */
export const HTTP_DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 10] as const;
