import { OpenAPIHono } from "@hono/zod-openapi";
import type { Context, Hono, MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import { matchedRoutes } from "hono/route";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { ServiceName } from "./config.js";
import { SAFE_METHODS, SERVICE_PATHS } from "./contract.js";
import { ClientClosedRequest, HttpError, errorResponse, isDependencyOutage, validationError } from "./errors.js";
import type { Logger } from "./logger.js";
import type { Metrics } from "./metrics.js";
import { GATEWAY_VIA_HEADER, REQUEST_ID_HEADER, headerValue, nodeRequest, requestHeader, requestIdFrom } from "./request-id.js";
import { corsAllowList, securityHeaders } from "./security.js";

/** Per-request values every service can read with `c.get(...)`. */
export type AppEnv = {
  Variables: {
    requestId: string;
    /** Set by a handler to override the route label of the metrics and the log line. */
    route: string;
    /** The authenticated caller, when a route verified an access token. */
    user: AuthUser;
  };
};

export interface AuthUser {
  id: number;
  username: string;
  claims: Record<string, unknown>;
}

/** A readiness check: `required` failures make `/readyz` answer 503; optional ones only report "degraded". */
export interface ReadinessCheck {
  required: boolean;
  check: () => Promise<void>;
}

/** Shared between a server and its app: once draining, readiness is false and connections are not kept alive. */
export class Lifecycle {
  draining = false;
}

export interface ServiceAppOptions {
  /** Service name: label on metrics and logs. */
  service: ServiceName;
  logger: Logger;
  metrics: Metrics;
  /** CORS allow-list. */
  allowedOrigins: readonly string[];
  /** Largest request body accepted (413 beyond it); default {@link SERVICE_BODY_LIMIT_BYTES}. */
  bodyLimitBytes?: number;
  /**
   * The app applies {@link requestBodyLimit} itself, where it reads a body, instead of before every route
   * (`bodyLimitBytes` is then unused): the gateway, which sets a body's memory aside before anything reads
   * it (the limit reads a body without `Content-Length` itself) and gives its login routes a lower limit.
   */
  bodyLimitInRoutes?: boolean;
  /**
   * Requests handled at once; beyond it, 503 with Retry-After (the envelope) instead of queueing until
   * memory runs out. Probes and metrics are never shed. Unbounded when absent.
   */
  maxInFlight?: number;
  /** The original `/health` body. */
  health: (c: Context<AppEnv>) => Response | Promise<Response>;
  /** Dependencies checked by `/readyz`. */
  readiness?: Record<string, ReadinessCheck>;
  lifecycle?: Lifecycle;
  /** OpenAPI `info`; `document` replaces the generated one (the gateway serves the public API's). */
  openapi: { title: string; version: string; description?: string; document?: object };
  /**
   * Read a request body sent without `Content-Type` as JSON, as the original (FastAPI) did: default true.
   * The gateway turns it off: it forwards bodies as they came, and the service behind it decides.
   */
  untypedBodyAsJson?: boolean;
}

/** Every service's skeleton: request id, JSON access log, RED metrics, security headers, CORS, body limit,
 *  error envelope, `/healthz`, `/readyz`, `/health`, `/metrics`, `/openapi.json`. Add routes to the result. */
export function createServiceApp(opts: ServiceAppOptions): OpenAPIHono<AppEnv> {
  const lifecycle = opts.lifecycle ?? new Lifecycle();
  const app = new OpenAPIHono<AppEnv>({
    // A request that does not match its zod schema: 422 in the envelope, naming the field.
    defaultHook: (result, c) => {
      if (!result.success) return validationError(c, result.error, result.target);
    },
  });

  const record = accessRecorder(opts.logger, opts.metrics);
  app.use("*", async (c, next) => {
    const started = receivedAt(c.env) ?? performance.now();
    const requestId = requestIdFrom(requestHeader(c, REQUEST_ID_HEADER));
    c.set("requestId", requestId);
    c.header(REQUEST_ID_HEADER, requestId);
    await next();
    if (lifecycle.draining) c.res.headers.set("Connection", "close");
    record({ requestId, method: c.req.method, route: routeLabel(c), status: c.res.status, started });
  });
  app.use("*", securityHeaders());
  app.use("*", corsAllowList(opts.allowedOrigins));
  if (opts.maxInFlight !== undefined) {
    const max = opts.maxInFlight;
    const exempt = new Set<string>([SERVICE_PATHS.live, SERVICE_PATHS.ready, SERVICE_PATHS.metrics]);
    let inFlight = 0;
    app.use("*", async (c, next) => {
      if (exempt.has(c.req.path)) return next();
      if (inFlight >= max) {
        c.header("Retry-After", "1");
        return errorResponse(c, 503, "server busy: too many requests in flight, retry shortly");
      }
      inFlight++;
      try {
        await next();
      } finally {
        inFlight--;
      }
    });
  }
  if (!opts.bodyLimitInRoutes) app.use("*", requestBodyLimit(opts.bodyLimitBytes ?? SERVICE_BODY_LIMIT_BYTES));
  if (opts.untypedBodyAsJson ?? true) app.use("*", untypedBodyAsJson);

  app.onError(async (err, c) => {
    // The client went away first: whatever failed for it (work dropped, an aborted upstream call) is
    // answered 499 for the logs and metrics, never as the server's error. One rule for every service.
    if (c.req.raw.signal.aborted && !(err instanceof HttpError)) err = new ClientClosedRequest();
    if (err instanceof HttpError) {
      for (const [k, v] of Object.entries(err.headers)) c.header(k, v);
      return errorResponse(c, err.status, err.message, err.extra);
    }
    // A JSON body that does not parse (an empty one included) is a validation error of the body, as the
    // original's 422 (FastAPI's json_invalid): Hono's validator throws a 400 for it, a handler reading the
    // body a SyntaxError. A request without a body has none to blame: a SyntaxError there is the server's.
    if ((err instanceof HTTPException && err.status === 400 && err.message === MALFORMED_JSON) || (err instanceof SyntaxError && !SAFE_METHODS.has(c.req.method))) {
      // No body at all is FastAPI's `missing` body; anything else that does not parse its `json_invalid`. The
      // text is Hono's cached copy (its JSON parse read it); unreadable means a handler took the stream itself.
      const empty = (await c.req.text().catch(() => undefined)) === "";
      return errorResponse(c, 422, empty ? "body: required" : "body: not valid JSON", {
        field: "body",
        details: [{ field: "body", message: empty ? "required" : "not valid JSON" }],
        detail: [empty ? { type: "missing", loc: ["body"], msg: "Field required" } : { type: "json_invalid", loc: ["body"], msg: "JSON decode error" }],
      });
    }
    // zod-openapi's media-type gate: a body of another declared type (a missing one is read as JSON above).
    if (err instanceof HTTPException && err.status === 415)
      return errorResponse(c, 415, "the body must be JSON: send it with Content-Type: application/json (or without a Content-Type)");
    if (err instanceof HTTPException) {
      const status = err.status as ContentfulStatusCode;
      return errorResponse(c, status, err.message || "request failed");
    }
    if (isDependencyOutage(err)) {
      // The database is unreachable (restarting, failing over): a 503, not a defect. A write whose
      // connection died after it was sent may have committed: no Retry-After then, and it says so.
      opts.logger.warn({ err: (err as Error).message, request_id: c.get("requestId") }, "dependency unavailable");
      if (SAFE_METHODS.has(c.req.method) || neverSent(err)) {
        c.header("Retry-After", "1");
        return errorResponse(c, 503, "a dependency is unavailable, retry shortly");
      }
      return errorResponse(c, 503, "a dependency failed during the request; it may or may not have been applied, check before retrying");
    }
    opts.logger.error({ err, request_id: c.get("requestId") }, "unhandled error");
    return errorResponse(c, 500, "internal error");
  });
  // No route took the request: 405 with `Allow` when the path has routes under other methods (as the
  // original's FastAPI), else 404.
  app.notFound((c) => {
    const miss = routeMiss(app, c.req.method, c.req.path);
    for (const [k, v] of Object.entries(miss.headers)) c.header(k, v);
    return errorResponse(c, miss.status, miss.message);
  });

  app.get("/healthz", (c) => c.json({ status: "alive" }));
  app.get("/readyz", async (c) => {
    if (lifecycle.draining) return c.json({ status: "draining", checks: {} }, 503);
    const checks: Record<string, string> = {};
    let ready = true;
    await Promise.all(
      Object.entries(opts.readiness ?? {}).map(async ([name, rc]) => {
        try {
          await rc.check();
          checks[name] = "ok";
        } catch {
          checks[name] = rc.required ? "failed" : "degraded";
          if (rc.required) ready = false;
        }
      }),
    );
    return c.json({ status: ready ? "ready" : "not ready", checks }, ready ? 200 : 503);
  });
  app.get("/health", (c) => opts.health(c));
  // Operational endpoints are for in-cluster callers (Prometheus via the sidecar, operators): a request
  // that came from outside through the Istio ingress (Envoy marks it) or through the gateway is refused.
  const fromOutside = (c: Context<AppEnv>) =>
    requestHeader(c, "x-envoy-external-address") !== undefined || requestHeader(c, GATEWAY_VIA_HEADER) !== undefined;
  app.use("/metrics", async (c, next) => (fromOutside(c) ? errorResponse(c, 404, "Not Found") : next()));
  app.use("/stats", async (c, next) => (fromOutside(c) ? errorResponse(c, 404, "Not Found") : next()));
  app.get("/metrics", async (c) => {
    c.header("Content-Type", opts.metrics.registry.contentType);
    return c.body(await opts.metrics.registry.metrics());
  });
  const { document, ...info } = opts.openapi;
  if (document) app.get("/openapi.json", (c) => c.json(document));
  else app.doc("/openapi.json", { openapi: "3.0.3", info });
  return app;
}

/** The largest request body a service accepts (413 beyond it), and the gateway's default: it forwards nothing a service would refuse. */
export const SERVICE_BODY_LIMIT_BYTES = 256 * 1024;

/**
 * The request body limit (Hono's bodyLimit): a `Content-Length` above `maxBytes` is refused before any of the
 * body is read; a body without one (chunked) is read here, up to `maxBytes`, and refused beyond. 413 in the
 * envelope. Every app applies it before its routes, unless it applies it itself (`bodyLimitInRoutes`).
 */
export function requestBodyLimit(maxBytes: number): MiddlewareHandler {
  const limit = bodyLimit({
    maxSize: maxBytes,
    onError: () => {
      // The rest of the body is never read: the connection cannot carry another request (a keep-alive
      // client such as the gateway would otherwise reuse it and meet a reset), so say it closes.
      throw new HttpError(413, `request body larger than ${maxBytes} bytes`, {}, { Connection: "close" });
    },
  });
  // GET and HEAD carry no body; skipping them also avoids building a full Request object per read.
  return (c, next) => (c.req.method === "GET" || c.req.method === "HEAD" ? next() : limit(c, next));
}

/** What Hono's validator throws (as a 400) for a JSON body that does not parse. */
const MALFORMED_JSON = "Malformed JSON in request body";

/** Methods whose routes take a body. */
const BODY_METHODS = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/**
 * A body without `Content-Type` is read as JSON, as the original (FastAPI) read it, instead of zod-openapi's
 * 415: the request is given the type, and the route's validation does the rest (a body that is not JSON is
 * then a 422 naming `body`). Only when there is a body: without one, a route needing one answers 422
 * naming its missing fields. A body of another declared type stays a 415 (it never worked with the original:
 * FastAPI answered it 422). No CSRF opening: no route trusts a cookie, and a cross-site page can send such a
 * body without a preflight only without an `Authorization` header.
 */
const untypedBodyAsJson: MiddlewareHandler = async (c, next) => {
  const method = c.req.method;
  // Only the methods a route reads a body with: any other (TRACE with a body) is left to the router's 405,
  // and fetch's Request refuses to be built for TRACE at all (that throw was a 500).
  if (!BODY_METHODS.has(method)) return next();
  const declared = requestHeader(c, "content-type");
  if (declared) {
    // A JSON type in a form HTTP allows but the OpenAPI validator's pattern does not (`application/json ;
    // charset=utf-8`, `charset = utf-8`, a trailing `;`): the original read it, so it is written the strict way.
    const canonical = OPENAPI_JSON_TYPE.test(declared) ? undefined : canonicalJsonType(declared);
    if (canonical !== undefined) retypeBody(c, canonical);
    return next();
  }
  // Whether a body came: from Node's headers when there are (reading `raw.body` builds the whole Request).
  const incoming = nodeRequest(c.env);
  const raw = c.req.raw;
  const hasBody = incoming
    ? Number(headerValue(incoming.headers, "content-length") ?? 0) > 0 || incoming.headers["transfer-encoding"] !== undefined
    : raw.body !== null;
  if (!hasBody) return next();
  retypeBody(c, "application/json");
  return next();
};

/** The pattern @hono/zod-openapi reads a JSON body's `Content-Type` with (anything else is its 415). */
const OPENAPI_JSON_TYPE = /^application\/([a-z-.]+\+)?json(;\s*[a-zA-Z0-9-]+=([^;]+))*$/i;

/** The request again with another `Content-Type`, as hono/body-limit replaces it: same URL, method, body stream (the limited one) and signal. */
function retypeBody(c: Context, contentType: string): void {
  const raw = c.req.raw;
  const headers = new Headers(raw.headers);
  headers.set("content-type", contentType);
  c.req.raw = new Request(raw.url, { method: raw.method, headers, body: raw.body, signal: raw.signal, duplex: "half" } as RequestInit);
}

/**
 * A JSON media type (`application/json`, `application/*+json`, any case) with its parameters written without
 * optional whitespace or empty parameters (`application/json; charset=utf-8`); undefined for any other type.
 */
export function canonicalJsonType(contentType: string): string | undefined {
  const [essence = "", ...rest] = contentType.split(";").map((part) => part.trim());
  if (!/^application\/([\w.-]+\+)?json$/i.test(essence)) return undefined;
  const params = rest.filter((p) => p !== "").map((p) => p.split("=").map((side) => side.trim()).join("="));
  return [essence, ...params].join("; ");
}

/** Methods a route is registered for (HEAD follows GET; OPTIONS is always answered, by the CORS middleware). */
export const ROUTE_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"] as const;

/**
 * The methods `path` has routes for in `app` while `method` has none: the `Allow` of a 405 (`HEAD` added
 * after `GET`). Empty when the path has no route at all, or has one for `method` (its handler then found
 * nothing itself: a 404). Middleware and catch-alls for every method (`app.use`, `app.all`) are no method's route.
 */
// oxlint-disable-next-line typescript/no-explicit-any -- any app's routes: only the router is read
function allowedMethods(app: Hono<any, any, any>, method: string, path: string): string[] {
  const has = (m: string) => app.router.match(m, path)[0].some(([[, route]]) => route.method === m);
  if (has(method === "HEAD" ? "GET" : method)) return [];
  return ROUTE_METHODS.filter(has).flatMap((m) => (m === "GET" ? ["GET", "HEAD"] : [m]));
}

/** The error for a request no route took: 405 with `Allow` when the path has routes under other methods, else 404. */
// oxlint-disable-next-line typescript/no-explicit-any -- as allowedMethods
export function routeMiss(app: Hono<any, any, any>, method: string, path: string): HttpError {
  const allow = allowedMethods(app, method, path);
  if (allow.length === 0) return new HttpError(404, "Not Found");
  return new HttpError(405, "Method Not Allowed", {}, { Allow: allow.join(", ") });
}

/**
 * Set on Node's request (`performance.now()`) by a `RequestShortcut` that worked on a request before
 * handing it to the app, so the app's duration (metrics, access line) counts from its arrival.
 */
export const RECEIVED_AT = Symbol("titanium.receivedAt");
const receivedAt = (env: unknown): number | undefined => (nodeRequest(env) as { [RECEIVED_AT]?: number } | undefined)?.[RECEIVED_AT];

/** One answered request, as the access log and the RED metrics see it. */
export interface AnsweredRequest {
  requestId: string;
  method: string;
  /** The route pattern (never the raw path). */
  route: string;
  status: number;
  /** `performance.now()` when the request arrived. */
  started: number;
}

/**
 * The RED metrics and the access line of an answered request (probes and scrapes that succeed log at debug
 * level: a kubelet probing every few seconds would drown the info stream; a failing one is news). Used by
 * every service app, and by answers made outside Hono (the gateway's cached reads), so both look the same.
 */
export function accessRecorder(logger: Logger, metrics: Metrics): (r: AnsweredRequest) => void {
  // The access line has fixed fields (the route pattern, never the URL or a header), so it skips the
  // redaction every other line goes through: a few percent of the CPU per request.
  const accessLog = logger.child({}, { redact: [] });
  return ({ requestId, method, route, status, started }) => {
    const seconds = (performance.now() - started) / 1000;
    metrics.observeRequest(method, route, status, seconds);
    const line = { request_id: requestId, method, route, status, duration_ms: Math.round(seconds * 10_000) / 10 };
    const routine = status < 400 && (route === SERVICE_PATHS.metrics || route === SERVICE_PATHS.live || route === SERVICE_PATHS.ready);
    if (routine) accessLog.debug(line, "request");
    else accessLog.info(line, "request");
  };
}

/**
 * Failures that happen before a query leaves the process, or before PostgreSQL accepts the connection
 * (57P03 cannot_connect_now: starting up, shutting down, in recovery): the database cannot have applied it.
 */
const NEVER_SENT_CODES = new Set(["ECONNREFUSED", "CONNECT_TIMEOUT", "CONNECTION_ENDED", "57P03"]);
const neverSent = (err: unknown): boolean => NEVER_SENT_CODES.has(String((err as { code?: unknown } | null)?.code));

/** The route pattern for metrics and logs: never the raw path (unbounded label values). */
function routeLabel(c: Context<AppEnv>): string {
  const override = c.get("route");
  if (override) return override;
  // The handler that answered is the last one dispatched; middleware (method ALL) means nothing matched.
  const answered = matchedRoutes(c)[c.req.routeIndex];
  return answered && answered.method !== "ALL" ? answered.path : "unmatched";
}
