import { getConnInfo } from "@hono/node-server/conninfo";
import {
  BLOG_CACHE_GENERATION_KEY,
  ClientClosedRequest,
  UpstreamPool,
  HttpError,
  JwtVerifier,
  MAX_HEADER_BYTES,
  SAFE_METHODS,
  SERVICE_BODY_LIMIT_BYTES,
  SERVICE_MAX_HEADER_BYTES,
  Lifecycle,
  Metrics,
  accessRecorder,
  bearerToken,
  createServiceApp,
  nodeRequest,
  nodeResponse,
  pingRedis,
  requestBodyLimit,
  requestHeader,
  routeMiss,
  type AppEnv,
  type Logger,
  type Redis,
  type RequestShortcut,
} from "@titanium/kit";
import type { Context, MiddlewareHandler } from "hono";
import type { ContentfulStatusCode, StatusCode } from "hono/utils/http-status";
import type { BlockList } from "node:net";
import { BodyBudget } from "./body-budget.js";
import { admissionOf, cachedReads, type Admission } from "./cached-reads.js";
import { clientAddress, normalizeIp, rateLimitSubjectOf } from "./client-address.js";
import { ClientSlots } from "./client-slots.js";
import { DEFAULT_BODY_BUDGET_BYTES, DEFAULT_MAX_IN_FLIGHT_PER_CLIENT } from "./config.js";
import { UpstreamError, forward, foreignFailure, type ForeignFailure } from "./proxy.js";
import { RateLimiter, type RateRule } from "./rate-limit.js";
import PUBLIC_API from "./public-openapi.json" with { type: "json" };
import { ResponseCache, SURROGATE_CONTROL } from "./response-cache.js";
import {
  GLOBAL_LIMIT,
  LOGIN_BODY_MAX_BYTES,
  accountKey,
  cacheKeyOf,
  carriesCurrentPassword,
  loginAccount,
  matchRoute,
  querySuffix,
  requestPath,
  type RouteMatch,
  type Upstream,
} from "./routes.js";

/** C0 controls and DEL, in a decoded path. */
// oxlint-disable-next-line no-control-regex -- the point
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f]/;
/** How much longer the forwarded request target may be than the one sent: half the services' extra header room. */
const TARGET_GROWTH_MAX_BYTES = (SERVICE_MAX_HEADER_BYTES - MAX_HEADER_BYTES) / 2;
/** Characters the URL parser may percent-encode in a path or query (anything else goes up as it came). */
const ENCODED_ON_THE_WAY = /[^A-Za-z0-9\-._~!$&()*+,;=:@/?%]/;
/** A target's length as the URL parser writes it (only for one with ENCODED_ON_THE_WAY characters: a URL object costs). */
const forwardedLength = (target: string): number => {
  const url = new URL(target, "http://upstream");
  return url.pathname.length + url.search.length;
};

/**
 * The gateway's own answer for an upstream 5xx outside the services' envelope (foreignFailure): 504 and 502
 * as for its own upstream failures; 503 with Retry-After when sending the request again is safe (a read, or
 * one Envoy never sent), else without it and saying so, as the services do for a write their database lost
 * midway (the request may have reached a service that applied it before its connection was cut).
 */
function foreignFailureError(failure: ForeignFailure, method: string): HttpError {
  if (failure.status === 504) return new HttpError(504, "Upstream timed out");
  if (failure.status === 502) return new HttpError(502, "Upstream unavailable");
  if (failure.neverSent || SAFE_METHODS.has(method)) return new HttpError(503, "Upstream unavailable, retry shortly", {}, { "Retry-After": "1" });
  return new HttpError(503, "the upstream failed during the request; it may or may not have been applied, check before retrying");
}

/** A request's hold on the body budget: set once its body's size is reserved. */
interface HeldBody {
  release?: () => void;
}

/**
 * What to set aside for a request's body before reading it, at most `max`: its `Content-Length`; `max` for a
 * body of unknown length (chunked), which the limit cuts there; nothing for no body, or for one the limit
 * refuses unread (a `Content-Length` above `max`).
 */
function bodyReservation(c: Context<AppEnv>, max: number): number {
  if (requestHeader(c, "transfer-encoding") !== undefined) return max;
  const declared = requestHeader(c, "content-length");
  if (declared !== undefined) {
    const n = Number(declared);
    return !Number.isSafeInteger(n) || n < 0 ? max : n > max ? 0 : n;
  }
  // Neither: no body in HTTP/1.1. A request made in process (app.request in tests) says by its own body.
  return nodeRequest(c.env) || c.req.raw.body === null ? 0 : max;
}

export interface GatewayDeps {
  /** Each upstream's URL, or its instances' URLs (picked round-robin, see UpstreamPool). */
  upstreams: Record<Upstream, string | readonly string[]>;
  /** Verifies access tokens locally to key rate limits by user (invalid tokens fall back to the address). */
  verifier: JwtVerifier;
  /** Distributed rate limits; absent or down → in-process limits. */
  redis?: Redis;
  /** Proxies whose X-Forwarded-For is believed. */
  trustedProxies: BlockList;
  logger: Logger;
  metrics?: Metrics;
  lifecycle?: Lifecycle;
  allowedOrigins?: readonly string[];
  upstreamTimeoutMs?: number;
  /** Largest request body forwarded (413 beyond it); default and most the services' own (SERVICE_BODY_LIMIT_BYTES). */
  bodyLimitBytes?: number;
  /** Request-body bytes held at once, all requests together (503 beyond it); default DEFAULT_BODY_BUDGET_BYTES. */
  bodyBudgetBytes?: number;
  /** The budget itself, instead of one of `bodyBudgetBytes` (tests watch what it holds). */
  bodyBudget?: BodyBudget;
  rateLimitScale?: number;
  /** Micro-cache of anonymous blog reads; default 1000 entries, 5 s (response-cache.ts). */
  responseCache?: { maxEntries: number; maxAgeMs: number; maxTotalBytes?: number };
  /** Requests handled at once before shedding with 503 (unbounded when absent). */
  maxInFlight?: number;
  /** Requests of one client (its rate-limit address) handled at once before 429; default DEFAULT_MAX_IN_FLIGHT_PER_CLIENT. */
  maxInFlightPerClient?: number;
  /** Tests without a socket (app.request) pass the peer address here. */
  peerAddress?: (req: Request) => string | undefined;
}


/**
 * The gateway: its Hono app, and the shortcut that answers micro-cache hits before the app (cached-reads.ts);
 * `startServer({ fetch: app.fetch, shortcut })`. Both share one limiter, one cache and one lifecycle.
 */
export function createGateway(deps: GatewayDeps): { app: ReturnType<typeof createServiceApp>; shortcut: RequestShortcut } {
  const metrics = deps.metrics ?? new Metrics("api-gateway");
  const lifecycle = deps.lifecycle ?? new Lifecycle();
  const pools = Object.fromEntries(
    Object.entries(deps.upstreams).map(([k, v]) => [k, new UpstreamPool(typeof v === "string" ? [v] : v)]),
  ) as Record<Upstream, UpstreamPool>;
  const limiter = new RateLimiter(deps.redis, { scale: deps.rateLimitScale ?? 1, logger: deps.logger });
  // A per-client limit too: scaled with the others (load tests send everything from one address).
  const slots = new ClientSlots(Math.ceil((deps.maxInFlightPerClient ?? DEFAULT_MAX_IN_FLIGHT_PER_CLIENT) * (deps.rateLimitScale ?? 1)));
  const responses = new ResponseCache(deps.redis, { generationKey: BLOG_CACHE_GENERATION_KEY, ...(deps.responseCache ?? { maxEntries: 1000, maxAgeMs: 5000 }) });
  // Anonymous cacheable reads learn the blog's generation from the limiter's own Redis command.
  const admit = async (match: RouteMatch, subject: string, cacheKey: string | undefined, also: { rule: RateRule; subject: string }[] = []): Promise<Admission> => {
    const epoch = cacheKey ? responses.epochForRead() : undefined;
    const rules = match.limit ? [GLOBAL_LIMIT, match.limit] : [GLOBAL_LIMIT];
    const decision = await limiter.take(rules, subject, also, epoch === undefined ? undefined : responses.generationKey);
    if (epoch === undefined) return { decision, ticket: undefined };
    // Read with the admission; a limiter that fell back to process memory read nothing (Redis failed).
    if (decision.read !== undefined) return { decision, ticket: responses.ticket(epoch, decision.read) };
    if (decision.store === "local") responses.drop();
    return { decision, ticket: undefined };
  };
  const bodyLimitBytes = deps.bodyLimitBytes ?? SERVICE_BODY_LIMIT_BYTES;
  const budget = deps.bodyBudget ?? new BodyBudget(deps.bodyBudgetBytes ?? DEFAULT_BODY_BUDGET_BYTES);
  const limitOf = (max: number) => ({ max, check: requestBodyLimit(max) });
  const bodyLimit = limitOf(bodyLimitBytes);
  const loginBodyLimit = limitOf(Math.min(LOGIN_BODY_MAX_BYTES, bodyLimitBytes));
  /**
   * The request's body, read within `limit` (413 beyond it: a `Content-Length` above it unread, a chunked
   * body cut there), once its size is set aside in the budget (503 when it does not fit, nothing read). The
   * reservation is given back once, when the request ends: when the handler is done (`held.release`,
   * whatever it answered or threw), or when the connection closes first (a client gone mid-body).
   */
  const readBody = async (c: Context<AppEnv>, held: HeldBody, limit: { max: number; check: MiddlewareHandler }): Promise<Uint8Array> => {
    const bytes = bodyReservation(c, limit.max);
    if (bytes > 0) {
      const release = budget.reserve(bytes);
      // The body stays unread, so the connection cannot carry another request: it closes, as after a 413.
      if (!release) throw new HttpError(503, "server busy: too many request bodies in flight, retry shortly", {}, { "Retry-After": "1", Connection: "close" });
      held.release = release;
      nodeResponse(c.env)?.once("close", release);
    }
    let body = new Uint8Array(0);
    await limit.check(c, async () => {
      body = new Uint8Array(await c.req.arrayBuffer());
    });
    return body;
  };
  const app = createServiceApp({
    service: "api-gateway",
    logger: deps.logger,
    metrics,
    allowedOrigins: deps.allowedOrigins ?? [],
    // Applied below, where a body is read: after its memory is set aside in the budget.
    bodyLimitInRoutes: true,
    ...(deps.maxInFlight !== undefined && { maxInFlight: deps.maxInFlight }),
    lifecycle,
    // Bodies go up as they came (a missing Content-Type too): the service behind decides how to read them.
    untypedBodyAsJson: false,
    // The original gateway: 200 with an empty body.
    health: (c) => c.body(null, 200),
    readiness: { redis: { required: false, check: () => pingRedis(deps.redis) } },
    // The public API: the services' documents under the paths this gateway routes (public-openapi.ts).
    openapi: { ...PUBLIC_API.info, document: PUBLIC_API },
  });
  // Also under /api/, the prefix the public ingress sends to the gateway.
  app.get("/api/openapi.json", (c) => c.json(PUBLIC_API));

  app.get("/stats", (c) => c.json({ "api-gateway": { service_status: "online", info: "Proxying API requests" } }));

  app.all("*", async (c) => {
    // A read carries no body: nothing to hold or give back.
    if (c.req.method === "GET" || c.req.method === "HEAD") return proxy(c, undefined);
    const held: HeldBody = {};
    try {
      return await proxy(c, held);
    } finally {
      held.release?.();
    }
  });

  /** The public routes: `held` takes the body's reservation, for a request that may carry one. */
  const proxy = async (c: Context<AppEnv>, held: HeldBody | undefined) => {
    // Routed and forwarded by the path as the client sent it, still percent-encoded (the adapter's URL has
    // dot segments resolved): Hono's `c.req.path` is decoded, and a decoded path put back into a URL is not
    // the same path (the URL parser drops trailing spaces and controls, and tabs and newlines anywhere, so
    // `/blog/api/posts/1%00` became `/blog/api/posts/1`). The service behind decodes it as Hono did here.
    const rawUrl = c.req.url;
    const path = requestPath(rawUrl);
    // No resource name has a control character; a service reading one leniently (`Number("2\t")` is 2)
    // would act on another resource, so such a path is refused before any service sees it.
    if (CONTROL_CHARACTER.test(c.req.path)) throw new HttpError(400, "the path contains a control character");
    const match = matchRoute(c.req.method, path);
    // Not a public route: the gateway's own paths may still answer another method (405), else 404.
    if (!match) throw routeMiss(app, c.req.method, c.req.path);
    c.set("route", match.route);

    const peer = normalizeIp(deps.peerAddress?.(c.req.raw) ?? getConnInfo(c).remote.address ?? "0.0.0.0");
    const forwardedFor = requestHeader(c, "x-forwarded-for");
    const client = clientAddress(peer, forwardedFor, deps.trustedProxies);
    const clientSubject = rateLimitSubjectOf(client);
    // Before anything waits on the client (its body) or on Redis: one client's requests hold at most their
    // share of the gateway's places. A body left unread means the connection cannot carry another request.
    const slot = slots.take(clientSubject);
    if (!slot) throw new HttpError(429, "too many requests in flight from this client, retry shortly", {}, { "Retry-After": "1", ...(held && { Connection: "close" }) });
    try {
      return await admitted(c, held, { match, rawUrl, peer, client, clientSubject });
    } finally {
      slot();
    }
  };

  /** The rest of `proxy`, once the request has its client's place. */
  const admitted = async (
    c: Context<AppEnv>,
    held: HeldBody | undefined,
    { match, rawUrl, peer, client, clientSubject }: { match: RouteMatch; rawUrl: string; peer: string; client: string; clientSubject: string },
  ) => {
    // Rate-limit subject: the authenticated user, else (and always for the routes that make sessions or
    // accounts) the client address from a trusted hop; an IPv6 client by its /64 (rateLimitSubjectOf).
    const token = bearerToken(requestHeader(c, "authorization"));
    const verified = token && !match.limit?.byClient ? await deps.verifier.verify(token) : undefined;
    const subject = verified?.ok ? `u:${verified.user.id}` : clientSubject;
    // Login is also limited per account, for this client and for all of them: its body is read before any
    // limit is taken, so within the login's own small limit (a name and a password), not the general one.
    const limits = match.accountLimits;
    let body = held && limits && c.req.method === "POST" ? await readBody(c, held, loginBodyLimit) : undefined;
    const account = limits && body ? loginAccount(body) : undefined;
    const also =
      account && limits
        ? [
            { rule: limits.perClient, subject: `acct:${account}:${clientSubject}` },
            { rule: limits.overall, subject: `acct:${account}` },
          ]
        : [];
    // The query and scheme by string: a URL object per request is measurable in the gateway's CPU.
    const search = querySuffix(rawUrl);
    // The target goes up percent-encoded (quotes, brackets, spaces: up to three times the bytes sent), by the
    // adapter's URL already or by proxy.ts' URL parser; the services take only SERVICE_MAX_HEADER_BYTES −
    // MAX_HEADER_BYTES more than the gateway, for the headers added on the way, and refuse beyond with a bare
    // 431 of their own.
    const target = match.path + search;
    const sent = nodeRequest(c.env)?.url ?? target;
    const forwarded = ENCODED_ON_THE_WAY.test(target) ? forwardedLength(target) : target.length;
    if (forwarded - sent.length > TARGET_GROWTH_MAX_BYTES)
      throw new HttpError(414, "URI Too Long: the request target is too long once percent-encoded");
    const cacheKey = !token && responses.enabled ? cacheKeyOf(match, search) : undefined;
    // A cached read the shortcut handed on (stale or refused) was admitted there already: not charged twice.
    const { decision, ticket } = admissionOf(nodeRequest(c.env)) ?? (await admit(match, subject, cacheKey, also));
    if (!decision.allowed) {
      const seconds = Math.max(1, Math.ceil(decision.retryAfterMs / 1000));
      throw new HttpError(429, "Too Many Requests", {}, { "Retry-After": String(seconds) });
    }

    const hit = cacheKey && ticket ? responses.get(cacheKey, ticket) : undefined;
    if (hit) return c.body(hit.body as Uint8Array<ArrayBuffer>, 200, { ...hit.headers, "x-cache": "HIT" });

    // Any other body is read once admitted.
    if (held) body ??= await readBody(c, held, bodyLimit);
    // Checking the current password (PATCH /users/me) is a guess as good as a login: the same account cells
    // are charged, keyed by the token's account (the user-service checks it for that account only).
    const checks = match.currentPasswordLimits;
    const owner = checks && verified?.ok && body && carriesCurrentPassword(body) ? accountKey(verified.user.username) : undefined;
    if (checks && owner) {
      const guess = await limiter.take([], clientSubject, [
        { rule: checks.perClient, subject: `acct:${owner}:${clientSubject}` },
        { rule: checks.overall, subject: `acct:${owner}` },
      ]);
      if (!guess.allowed) {
        const seconds = Math.max(1, Math.ceil(guess.retryAfterMs / 1000));
        throw new HttpError(429, "Too Many Requests", {}, { "Retry-After": String(seconds) });
      }
    }

    // The chain we believe: the client, then the peer if it was a proxy of ours.
    const chain = client === peer ? client : `${client}, ${peer}`;
    try {
      const res = await forward({
        pool: pools[match.upstream],
        path: match.path + search,
        method: c.req.method,
        // The Node request's own headers when there is one (reading c.req.raw would build a full Request).
        headers: nodeRequest(c.env)?.headers ?? c.req.raw.headers,
        body,
        clientChain: chain,
        proto: rawUrl.startsWith("https:") ? "https" : "http",
        host: requestHeader(c, "host"),
        requestId: c.get("requestId"),
        timeoutMs: deps.upstreamTimeoutMs ?? 10_000,
        downstream: nodeResponse(c.env),
      });
      // A 5xx a service did not write (its sidecar's own reply when every replica is unready, say): the
      // gateway's envelope instead, so every error a client gets is one envelope with its request id.
      const foreign = foreignFailure(res, c.req.method);
      if (foreign) {
        // A streamed (large) body is not read: its connection is dropped instead.
        if (res.body instanceof ReadableStream) void res.body.cancel().catch(() => undefined);
        deps.logger.warn({ upstream: match.upstream, status: res.status, said: foreign.said, request_id: c.get("requestId") }, "upstream answered an error outside the envelope");
        throw foreignFailureError(foreign, c.req.method);
      }
      // Through c.body, so the headers the gateway prepared (security, CORS, request id) are merged in.
      if (cacheKey && ticket && res.body instanceof Uint8Array) responses.set(cacheKey, ticket, res.status, { headers: res.headers, body: res.body });
      // The offer is for the gateway only; the upstream's Vary (Accept-Encoding) joins the gateway's (Origin).
      const { [SURROGATE_CONTROL]: _offer, vary, ...headers } = res.headers;
      if (vary) c.header("Vary", String(vary), { append: true });
      if (res.body === null) return c.body(null, res.status as StatusCode, headers);
      return c.body(res.body as Uint8Array<ArrayBuffer> | ReadableStream, res.status as ContentfulStatusCode, headers);
    } catch (err) {
      if (!(err instanceof UpstreamError)) throw err;
      if (err.kind === "abandoned") throw new ClientClosedRequest();
      deps.logger.warn({ upstream: match.upstream, err: err.message, request_id: c.get("requestId") }, "upstream failed");
      throw new HttpError(err.kind === "timeout" ? 504 : 502, err.kind === "timeout" ? "Upstream timed out" : "Upstream unavailable");
    }
  };

  const shortcut = cachedReads({
    responses,
    admit,
    trustedProxies: deps.trustedProxies,
    allowedOrigins: deps.allowedOrigins ?? [],
    lifecycle,
    record: accessRecorder(deps.logger, metrics),
    logger: deps.logger,
  });
  return { app, shortcut };
}
