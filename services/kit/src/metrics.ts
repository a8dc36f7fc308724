import { Counter, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { HTTP_DURATION_BUCKETS, HTTP_LABELS, METRICS } from "./metric-names.js";

/**
 * One registry per service instance (not prom-client's global one, so tests can build several apps in one
 * process): RED metrics with the real status code, process metrics, and the business counters.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly httpRequests: Counter<(typeof HTTP_LABELS)[number]>;
  readonly httpDuration: Histogram<"service" | "method" | "route">;
  readonly signups: Counter<"service">;
  readonly logins: Counter<"service" | "result">;
  readonly postsCreated: Counter<"service">;

  constructor(readonly service: string, opts: { processMetrics?: boolean } = {}) {
    const registers = [this.registry];
    this.httpRequests = new Counter({
      name: METRICS.httpRequests,
      help: "HTTP requests by service, method, route pattern and status code",
      labelNames: HTTP_LABELS,
      registers,
    });
    this.httpDuration = new Histogram({
      name: METRICS.httpDuration,
      help: "HTTP request duration in seconds by service, method and route pattern",
      labelNames: ["service", "method", "route"],
      buckets: [...HTTP_DURATION_BUCKETS],
      registers,
    });
    this.signups = new Counter({ name: METRICS.signups, help: "Accounts created", labelNames: ["service"], registers });
    this.logins = new Counter({
      name: METRICS.logins,
      help: "Login attempts by result (ok, failed)",
      labelNames: ["service", "result"],
      registers,
    });
    this.postsCreated = new Counter({
      name: METRICS.postsCreated,
      help: "Blog posts created",
      labelNames: ["service"],
      registers,
    });
    if (opts.processMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }

  observeRequest(method: string, route: string, status: number, seconds: number): void {
    this.httpRequests.inc({ service: this.service, method, route, status: String(status) });
    this.httpDuration.observe({ service: this.service, method, route }, seconds);
  }
}
