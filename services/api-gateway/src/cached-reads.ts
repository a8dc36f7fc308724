import {
  RECEIVED_AT,
  REQUEST_ID_HEADER,
  corsHeaderSet,
  headerValue,
  requestIdFrom,
  securityHeaderSet,
  type AnsweredRequest,
  type Lifecycle,
  type Logger,
  type RequestShortcut,
} from "@titanium/kit";
import type { IncomingMessage } from "node:http";
import type { BlockList } from "node:net";
import { clientAddress, normalizeIp, rateLimitSubjectOf } from "./client-address.js";
import type { RateDecision } from "./rate-limit.js";
import type { CachedResponse, CacheTicket, ResponseCache } from "./response-cache.js";
import { cacheKeyOf, isPlainPath, matchRoute, querySuffix, type RouteMatch } from "./routes.js";

/** What the gateway learned in its one Redis round trip for a request: the rate-limit decision, the cache generation. */
export interface Admission {
  decision: RateDecision;
  ticket: CacheTicket | undefined;
}

const ADMISSION = Symbol("titanium.gateway.admission");

/** The admission the shortcut already obtained for a request it handed to the app (so nothing is charged twice). */
export function admissionOf(incoming: IncomingMessage | undefined): Admission | undefined {
  return (incoming as (IncomingMessage & { [ADMISSION]?: Admission }) | undefined)?.[ADMISSION];
}

/**
 * Queries the Node adapter's URL parsing leaves byte for byte as they came (nothing the WHATWG query
 * encoder rewrites); with a plain path (`isPlainPath`), the shortcut's cache key is then the one the app
 * computes. Anything else goes through the app.
 */
const PLAIN_QUERY = /^[A-Za-z0-9_\-~.!$&()*+,;=:@/?%]*$/;
/**
 * A Host the adapter accepts as it is: lower-case name characters and a valid port (whether its own quick
 * test or its URL parsing takes it). Any other may be refused with a 400, so it goes through the app.
 */
function plainHost(host: string | undefined): boolean {
  const m = host === undefined ? null : /^[a-z0-9._-]+(?::(\d{1,5}))?$/.exec(host);
  return m !== null && (m[1] === undefined || Number(m[1]) <= 65_535);
}

/**
 * The part of a replay's header block that is the same for every request, flattened once per entry
 * (`writeHead` takes `[name, value, ...]`): security headers, the stored answer's own, `x-cache`, the length.
 * Per request only the request id, CORS and `Connection: close` are added (the stored headers have none of
 * them: the proxy drops its upstream's). A few µs of CPU and garbage per hit, the hottest path.
 */
const replays = new WeakMap<CachedResponse, { security: object; flat: string[] }>();
function replayHeaders(hit: CachedResponse, security: Readonly<Record<string, string>>): string[] {
  const known = replays.get(hit);
  if (known?.security === security) return known.flat;
  const merged: Record<string, string | string[]> = { ...security, ...hit.headers, "x-cache": "HIT", "content-length": String(hit.body.byteLength) };
  const flat = Object.entries(merged).flatMap(([k, v]) => (Array.isArray(v) ? v.flatMap((one) => [k, one]) : [k, v]));
  replays.set(hit, { security, flat });
  return flat;
}

export interface CachedReadsOptions {
  responses: ResponseCache;
  /** The limiter and the generation in one round trip, as the app asks them. */
  admit: (match: RouteMatch, subject: string, cacheKey: string | undefined) => Promise<Admission>;
  trustedProxies: BlockList;
  allowedOrigins: readonly string[];
  lifecycle: Lifecycle;
  record: (r: AnsweredRequest) => void;
  logger: Logger;
}

/**
 * The gateway's hottest path, answered on Node's own request and response: an anonymous GET whose answer
 * the micro-cache holds. Building Hono's Request, Headers and Response objects for it cost more CPU than
 * everything else the gateway does (docs/benchmarks.md), so this path writes the stored answer directly,
 * with what the app would add: the same rate limit (charged once: a request handed on carries its
 * admission), request id, security and CORS headers, `x-cache: HIT`, `Connection: close` while draining,
 * the RED metrics and the access line. Everything else, a miss, a stale entry and a refusal included, is
 * handed to the app, which answers it (the 429 envelope, the upstream fetch and the store).
 */
export function cachedReads(opts: CachedReadsOptions): RequestShortcut {
  const allowed = new Set(opts.allowedOrigins);
  return (req, res, next) => {
    const url = req.url ?? "";
    if (req.method !== "GET" || req.headers.authorization !== undefined || !opts.responses.enabled) return next();
    if (!plainHost(req.headers.host)) return next();
    const search = querySuffix(url);
    const path = url.slice(0, url.length - search.length);
    if (!path.startsWith("/") || !isPlainPath(path) || !PLAIN_QUERY.test(search)) return next();
    const match = matchRoute("GET", path);
    const key = match && cacheKeyOf(match, search);
    if (!match || !key || !opts.responses.has(key)) return next();

    const started = performance.now();
    const peer = normalizeIp(req.socket.remoteAddress ?? "0.0.0.0");
    const client = clientAddress(peer, headerValue(req.headers, "x-forwarded-for"), opts.trustedProxies);
    let handedOn = false;
    const handOn = () => {
      handedOn = true;
      next();
    };
    // The app's clock and access line start when the request arrived here, not when it is handed on.
    (req as IncomingMessage & { [RECEIVED_AT]?: number })[RECEIVED_AT] = started;
    const serve = async () => {
      const admission = await opts.admit(match, rateLimitSubjectOf(client), key);
      // Kept on the request from here on: whatever happens next, the app never charges it again.
      (req as IncomingMessage & { [ADMISSION]?: Admission })[ADMISSION] = admission;
      const hit = admission.decision.allowed && admission.ticket ? opts.responses.get(key, admission.ticket) : undefined;
      if (!hit) return handOn();
      const requestId = requestIdFrom(headerValue(req.headers, REQUEST_ID_HEADER));
      const headers = [REQUEST_ID_HEADER, requestId];
      for (const [k, v] of Object.entries(corsHeaderSet(headerValue(req.headers, "origin"), allowed))) headers.push(k, v);
      if (opts.lifecycle.draining) headers.push("connection", "close");
      res.writeHead(200, headers.concat(replayHeaders(hit, securityHeaderSet(path)))).end(hit.body);
      opts.record({ requestId, method: "GET", route: match.route, status: 200, started });
    };
    serve().catch((err: unknown) => {
      opts.logger.error({ err }, "cached read failed");
      // Before an answer, the app can still give one; after it, or if handing on failed, the connection goes.
      if (!handedOn && !res.headersSent) return handOn();
      res.destroy();
    });
  };
}
