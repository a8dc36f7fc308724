import { createServer as createHttpServer, request, type IncomingMessage } from "node:http";
import { createServer as createTcpServer, type Server as TcpServer } from "node:net";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HttpError, Lifecycle, MAX_HEADER_BYTES, Metrics, createRedis, createServiceApp, startServer, type Redis, type RunningServer } from "@titanium/kit";
import { freePort } from "@titanium/kit/local";
import { memoryLogger } from "@titanium/kit/testing";
import type { GatewayDeps } from "./app.js";
import { clientAddress } from "./client-address.js";
import { trustedProxies } from "./config.js";
import { GLOBAL_LIMIT, RATE_LIMITS, loginAccount, matchRoute } from "./routes.js";
import { LocalLimiter, RateLimiter } from "./rate-limit.js";
import { startGatewayTestBed, type GatewayTestBed } from "./test-bed.js";

/** A real upstream that echoes what it received; `/slow` sleeps; flaky mode resets the first connection. */
type Echo = { method: string | undefined; url: string | undefined; headers: IncomingMessage["headers"]; body: string };
let upstreamPort: number;
let flakyPort: number;
let flakyConnections = 0;
/** Every request target the echo upstream received, in order. */
const received: string[] = [];
const flakySockets = new Set<import("node:net").Socket>();
let upstream: ReturnType<typeof createHttpServer>;
let flaky: TcpServer;
let bed: GatewayTestBed;
let redis: Redis;
let tokens: GatewayTestBed["tokens"];

beforeAll(async () => {
  upstream = createHttpServer((req, res) => {
    received.push(req.url ?? "");
    let body = "";
    req.on("data", (d: Buffer) => (body += d.toString()));
    req.on("end", () => {
      const reply = () => {
        res.setHeader("content-type", "application/json");
        res.setHeader("x-upstream", "yes");
        res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body } satisfies Echo));
      };
      if (req.url?.startsWith("/blog/api/posts/slow")) setTimeout(reply, 1500);
      else reply();
    });
  });
  await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", () => r()));
  upstreamPort = (upstream.address() as AddressInfo).port;
  flaky = createTcpServer((sock) => {
    flakySockets.add(sock);
    sock.once("close", () => flakySockets.delete(sock));
    if (flakyConnections++ === 0) return sock.destroy();
    upstream.emit("connection", sock);
  });
  await new Promise<void>((r) => flaky.listen(0, "127.0.0.1", () => r()));
  flakyPort = (flaky.address() as AddressInfo).port;
  bed = await startGatewayTestBed();
  ({ redis, tokens } = bed);
});
afterAll(async () => {
  upstream?.close();
  flaky?.close();
  await bed?.stop();
});

function gateway(overrides: Partial<GatewayDeps> = {}, peer = "203.0.113.9") {
  return bed.gateway(`http://127.0.0.1:${upstreamPort}`, { upstreamTimeoutMs: 1000, peerAddress: () => peer, ...overrides });
}
const echo = async (res: Response) => (await res.json()) as Echo;
/** A service app built on the kit, as the real ones are, with no routes of its own yet. */
const stubService = (service: "auth-service" | "user-service") =>
  createServiceApp({
    service,
    logger: memoryLogger().logger,
    metrics: new Metrics(service, { processMetrics: false }),
    allowedOrigins: [],
    health: (c) => c.json({ status: "ok" }),
    openapi: { title: "stub", version: "1" },
  });
let ipCounter = 0;
const freshPeer = () => `198.51.100.${++ipCounter}`;

describe("routing (the original's public paths, defects fixed)", () => {
  it.each([
    ["POST", "/api/login", "/login"],
    ["POST", "/api/register", "/users"],
    ["POST", "/api/users", "/users"],
    ["GET", "/api/users/alice", "/users/alice"],
    ["PATCH", "/api/users/me", "/users/me"],
    ["GET", "/api/users/health", "/health"],
    ["GET", "/api/auth/health", "/health"],
    ["GET", "/api/auth/verify", "/verify"],
    ["POST", "/api/auth/refresh", "/auth/refresh"],
    ["POST", "/api/auth/logout", "/auth/logout"],
    ["GET", "/.well-known/jwks.json", "/.well-known/jwks.json"],
    ["GET", "/blog/api/posts?offset=5&limit=2", "/blog/api/posts?offset=5&limit=2"],
    ["GET", "/api/posts/3", "/blog/api/posts/3"],
    ["GET", "/api/categories", "/blog/api/categories"],
    ["GET", "/blog/", "/blog/"],
    ["GET", "/", "/"],
  ])("%s %s → %s", async (method, path, upstreamPath) => {
    const res = await gateway({}, freshPeer()).request(path, { method, ...(method !== "GET" && { body: "{}", headers: { "content-type": "application/json" } }) });
    expect(res.status).toBe(200);
    const e = await echo(res);
    expect(e.method).toBe(method);
    expect(e.url).toBe(upstreamPath);
  });

  it("never forwards internal routes or unknown paths", async () => {
    const gw = gateway({}, freshPeer());
    for (const p of ["/internal/verify-credentials", "/api/internal/verify-credentials", "/api/nothing", "/metricsx"]) {
      const res = await gw.request(p, { method: "POST" });
      expect(res.status, p).toBe(404);
      expect(await res.json()).toMatchObject({ error: "NotFound", status_code: 404 });
    }
    expect(matchRoute("POST", "/api/users/../internal/verify-credentials")).toBeUndefined();
    // The original exposed /api/users/verify-credentials; it now maps to a user profile path, not the check.
    expect(matchRoute("POST", "/api/users/verify-credentials")?.path).toBe("/users/verify-credentials");
  });

  it("limits a route by the path the service routes: an encoded spelling or a HEAD gets the same limit", () => {
    // The blog-service decodes `/blog/api/post%73` to `/blog/api/posts`: the same handler, so the same limit.
    expect(matchRoute("POST", "/blog/api/post%73")?.limit).toBe(RATE_LIMITS.postCreate);
    expect(matchRoute("POST", "/blog/api/%70osts")?.limit).toBe(RATE_LIMITS.postCreate);
    expect(matchRoute("PATCH", "/blog/api/post%73/12")?.limit).toBe(RATE_LIMITS.postUpdate);
    expect(matchRoute("DELETE", "/api/posts/%31%32")?.limit).toBe(RATE_LIMITS.postDelete);
    expect(matchRoute("GET", "/blog/api/post%73")).toMatchObject({ limit: RATE_LIMITS.postsList, cacheable: true });
    // Forwarded as sent all the same.
    expect(matchRoute("POST", "/blog/api/post%73")?.path).toBe("/blog/api/post%73");
    // HEAD runs the GET handler: the GET limit, not none.
    expect(matchRoute("HEAD", "/blog/api/posts")?.limit).toBe(RATE_LIMITS.postsList);
    expect(matchRoute("HEAD", "/api/users/alice")?.limit).toBe(RATE_LIMITS.userGet);
    expect(matchRoute("HEAD", "/blog/api/posts")?.cacheable).toBeUndefined();
  });

  it("limits the blog's API by the path the blog routes even when another public route carries it (/blog/%61pi/posts is /blog/api/posts)", async () => {
    // The pages route (`/blog/*`) forwards any path under /blog as sent; `/blog/%61pi/posts` decodes to
    // `/blog/api/posts`, so it takes that route's limit (the blog-service refuses the spelling itself too).
    expect(matchRoute("POST", "/blog/%61pi/posts")?.limit).toBe(RATE_LIMITS.postCreate);
    expect(matchRoute("PATCH", "/blog/%61pi/posts/12")?.limit).toBe(RATE_LIMITS.postUpdate);
    expect(matchRoute("DELETE", "/blog/ap%69/posts/12")?.limit).toBe(RATE_LIMITS.postDelete);
    expect(matchRoute("GET", "/blog/%61pi/posts")?.limit).toBe(RATE_LIMITS.postsList);
    expect(matchRoute("GET", "/blog/%61pi/posts/7")?.limit).toBe(RATE_LIMITS.postGet);
    // Pages keep no limit of their own.
    expect(matchRoute("GET", "/blog/posts/7")?.limit).toBeUndefined();
    // And through the gateway: one budget, whichever spelling is used (10 creates a minute per client).
    const gw = gateway({}, freshPeer());
    const create = (path: string) => gw.request(path, { method: "POST", body: "{}", headers: { "content-type": "application/json" } });
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await create("/blog/api/posts")).status);
    for (let i = 0; i < 6; i++) statuses.push((await create("/blog/%61pi/posts")).status);
    expect(statuses).toEqual([...Array<number>(10).fill(200), 429]);
  });

  it("forwards the path exactly as the client sent it (never a rewritten one), and refuses control characters", async () => {
    const gw = gateway({ rateLimitScale: 100 }, freshPeer());
    const running = await startServer({ fetch: gw.fetch, port: 0, host: "127.0.0.1", logger: memoryLogger().logger, lifecycle: new Lifecycle(), graceMs: 100 });
    // Raw request targets on a real socket (the Node adapter's URL), and through app.request (a web Request).
    const raw = (method: string, target: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request({ host: "127.0.0.1", port: running.port, method, path: target }, (res) => {
          let body = "";
          res.on("data", (d: Buffer) => (body += d.toString()));
          res.on("end", () => resolve({ status: res.statusCode!, body }));
        });
        req.on("error", reject);
        req.end();
      });
    const viaApp = async (method: string, target: string) => {
      const res = await gw.request(target, { method });
      return { status: res.status, body: await res.text() };
    };
    try {
      for (const send of [raw, viaApp]) {
        for (const [method, target, upstreamTarget] of [
          // The URL parser drops trailing spaces: these reached /users/alice_1 and post 2.
          ["GET", "/api/users/alice_1%20", "/users/alice_1%20"],
          ["GET", "/blog/api/posts/2%20", "/blog/api/posts/2%20"],
          ["DELETE", "/api/posts/1%20%20", "/blog/api/posts/1%20%20"],
          ["GET", "/api/users/%20alice", "/users/%20alice"],
          ["GET", "/api/users/caf%C3%A9", "/users/caf%C3%A9"],
          ["GET", "/api/users/a%2Fb", "/users/a%2Fb"],
          ["GET", "/api/users/100%25", "/users/100%25"],
          ["GET", "/api/users/a%5Cb", "/users/a%5Cb"],
          ["GET", "/blog/api/posts/1%3Fx=1", "/blog/api/posts/1%3Fx=1"],
          ["GET", "/api/users/x%20?q=%20a", "/users/x%20?q=%20a"],
          ["GET", "/blog/api/posts/7", "/blog/api/posts/7"],
        ] as const) {
          const what = `${send === raw ? "socket" : "app"} ${method} ${target}`;
          received.length = 0;
          const res = await send(method, target);
          expect(res.status, what).toBe(200);
          expect(received, what).toEqual([upstreamTarget]);
          expect((JSON.parse(res.body) as Echo).url, what).toBe(upstreamTarget);
        }
        // A control character (C0 or DEL) anywhere in the path: 400, and no service sees the request. The URL
        // parser dropped trailing ones (`1%00` deleted post 1) and tabs and newlines anywhere.
        for (const [method, target] of [
          ["DELETE", "/blog/api/posts/1%00"],
          ["GET", "/blog/api/posts/2%01"],
          ["GET", "/api/users/ali%09ce_1"],
          ["GET", "/api/users/alice_1%0A"],
          ["PATCH", "/api/posts/3%0D"],
          ["GET", "/api/users/alice%7F"],
          ["GET", "/blog/api/posts/%1F2"],
        ] as const) {
          const what = `${send === raw ? "socket" : "app"} ${method} ${target}`;
          received.length = 0;
          const res = await send(method, target);
          expect(res.status, what).toBe(400);
          expect(JSON.parse(res.body), what).toMatchObject({ error: "BadRequest", status_code: 400, message: "the path contains a control character" });
          expect(received, what).toEqual([]);
        }
      }
    } finally {
      await running.shutdown();
    }
  });

  it("answers OPTIONS 204 itself, with or without Origin, and 405 with Allow for its own paths asked with another method", async () => {
    const gw = gateway({}, freshPeer());
    for (const path of ["/api/login", "/blog/api/posts/1", "/api/users/alice", "/nothing", "/health"]) {
      received.length = 0;
      const res = await gw.request(path, { method: "OPTIONS" });
      expect(res.status, path).toBe(204);
      expect(await res.text()).toBe("");
      expect(received, path).toEqual([]);
    }
    for (const path of ["/health", "/healthz", "/stats", "/openapi.json"]) {
      const res = await gw.request(path, { method: "POST" });
      expect(res.status, path).toBe(405);
      expect(res.headers.get("allow"), path).toBe("GET, HEAD");
      expect(await res.json()).toMatchObject({ error: "MethodNotAllowed", status_code: 405 });
    }
    expect((await gw.request("/nothing", { method: "POST" })).status).toBe(404);
  });

  it("serves the public API's OpenAPI document itself, at /openapi.json and at /api/openapi.json (the ingress's prefix)", async () => {
    const gw = gateway({}, freshPeer());
    for (const path of ["/openapi.json", "/api/openapi.json"]) {
      const res = await gw.request(path);
      expect(res.status, path).toBe(200);
      const doc = (await res.json()) as { info: { title: string }; paths: Record<string, unknown> };
      expect(doc.info.title).toBe("Titanium public API");
      expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(["/api/login", "/api/register", "/api/posts", "/api/users/{username}"]));
    }
  });

  it("passes a service's 405 and Allow through for a public route asked with the wrong method", async () => {
    // Services built on the kit, as the real ones: POST-only login and logout, a post with GET, PATCH and DELETE.
    const service = stubService("auth-service");
    service.post("/login", (c) => c.json({ status: "success" }));
    service.post("/auth/logout", (c) => c.json({ status: "success" }));
    service.on(["GET", "PATCH", "DELETE"], "/blog/api/posts/:id", (c) => c.json({ id: c.req.param("id") }));
    const running = await startServer({ fetch: service.fetch, port: 0, host: "127.0.0.1", logger: memoryLogger().logger, lifecycle: new Lifecycle(), graceMs: 100 });
    try {
      const gw = gateway({ upstreams: { auth: `http://127.0.0.1:${running.port}`, user: `http://127.0.0.1:${running.port}`, blog: `http://127.0.0.1:${running.port}` } }, freshPeer());
      for (const [method, path, allow] of [
        ["GET", "/api/login", "POST"],
        ["GET", "/api/auth/logout", "POST"],
        ["PUT", "/blog/api/posts/2", "GET, HEAD, PATCH, DELETE"],
        ["POST", "/api/posts/2", "GET, HEAD, PATCH, DELETE"],
      ] as const) {
        const res = await gw.request(path, { method });
        expect(res.status, `${method} ${path}`).toBe(405);
        expect(res.headers.get("allow"), `${method} ${path}`).toBe(allow);
        expect(await res.json()).toMatchObject({ error: "MethodNotAllowed", status_code: 405 });
      }
      expect((await gw.request("/blog/api/posts/2/comments")).status).toBe(404);
      expect((await gw.request("/api/login", { method: "POST", body: "{}", headers: { "content-type": "application/json" } })).status).toBe(200);
    } finally {
      await running.shutdown();
    }
  });

  it("forwards a body without Content-Type as it came (the service behind decides how to read it)", async () => {
    const res = await gateway({}, freshPeer()).request("/api/register", { method: "POST", body: new TextEncoder().encode('{"username":"x"}') });
    expect(res.status).toBe(200);
    const e = await echo(res);
    expect(e.body).toBe('{"username":"x"}');
    expect(e.headers["content-type"]).toBeUndefined();
  });

  it("propagates the request id, marks the request as from the gateway, sets X-Forwarded-*", async () => {
    const res = await gateway({}, "203.0.113.7").request("/blog/api/posts", {
      headers: { "x-request-id": "req-42", "x-forwarded-for": "6.6.6.6", "x-titanium-via": "spoofed", host: "titanium.example" },
    });
    expect(res.headers.get("x-request-id")).toBe("req-42");
    expect(res.headers.get("x-upstream")).toBe("yes");
    const e = await echo(res);
    expect(e.headers["x-request-id"]).toBe("req-42");
    expect(e.headers["x-titanium-via"]).toBe("api-gateway");
    expect(e.headers["x-forwarded-for"]).toBe("203.0.113.7");
    expect(e.headers["x-forwarded-host"]).toBe("titanium.example");
    expect(e.headers.host).toBe(`127.0.0.1:${upstreamPort}`);
  });

  it("keeps the original /health (200, empty), /stats, and security headers on proxied answers", async () => {
    const gw = gateway();
    const health = await gw.request("/health");
    expect(health.status).toBe(200);
    expect(await health.text()).toBe("");
    expect(await (await gw.request("/stats")).json()).toEqual({ "api-gateway": { service_status: "online", info: "Proxying API requests" } });
    const api = await gw.request("/blog/api/posts");
    expect(api.headers.get("x-frame-options")).toBe("DENY");
    expect(api.headers.get("cache-control")).toBe("no-store");
  });
});

describe("upstream failures", () => {
  it("retries a safe request after a connection reset, but never a POST", async () => {
    const gw = gateway({ upstreams: { auth: `http://127.0.0.1:${flakyPort}`, user: `http://127.0.0.1:${flakyPort}`, blog: `http://127.0.0.1:${flakyPort}` } }, freshPeer());
    flakyConnections = 0;
    const get = await gw.request("/blog/api/posts");
    expect(get.status).toBe(200);
    expect(flakyConnections).toBe(2);
    // Drop the pooled keep-alive connection so the POST needs a new one, which is reset.
    for (const s of flakySockets) s.destroy();
    await new Promise((r) => setTimeout(r, 50));
    flakyConnections = 0;
    const postRes = await gw.request("/api/login", { method: "POST", body: "{}", headers: { "content-type": "application/json" } });
    expect(postRes.status).toBe(502);
    expect(flakyConnections).toBe(1);
  });

  it("answers 502 when the upstream is down and 504 when it is too slow", async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    const down = await gateway({ upstreams: { auth: dead, user: dead, blog: dead } }, freshPeer()).request("/blog/api/posts");
    expect(down.status).toBe(502);
    expect(await down.json()).toMatchObject({ error: "BadGateway" });
    const slow = await gateway({}, freshPeer()).request("/blog/api/posts/slow");
    expect(slow.status).toBe(504);
  });
});

describe("an upstream's 5xx outside the services' envelope (the sidecar's own replies)", () => {
  /** What the gateway's sidecar answers itself, as Envoy writes it: plain text, `server: envoy`. */
  const ENVOY_REPLIES: Record<string, [number, string]> = {
    // Every replica unready (PostgreSQL down): Kubernetes removed all the endpoints.
    "/blog/api/posts": [503, "no healthy upstream"],
    "/blog/api/categories": [504, "upstream request timeout"],
    "/users": [503, "upstream connect error or disconnect/reset before headers. reset reason: connection failure"],
    "/login": [503, "upstream connect error or disconnect/reset before headers. reset reason: connection termination"],
    "/users/alice": [500, "<html><body>Internal Server Error</body></html>"],
  };
  let envoy: ReturnType<typeof createHttpServer>;
  let envoyUrl: string;
  beforeAll(async () => {
    envoy = createHttpServer((req, res) => {
      req.resume();
      req.on("end", () => {
        const [status, text] = ENVOY_REPLIES[req.url ?? ""] ?? [503, "no healthy upstream"];
        res.writeHead(status, { "content-type": req.url === "/users/alice" ? "text/html" : "text/plain", "content-length": Buffer.byteLength(text), server: "envoy" });
        res.end(text);
      });
    });
    await new Promise<void>((r) => envoy.listen(0, "127.0.0.1", () => r()));
    envoyUrl = `http://127.0.0.1:${(envoy.address() as AddressInfo).port}`;
  });
  afterAll(() => {
    envoy?.closeAllConnections();
    envoy?.close();
  });

  it("answers its own envelope with the request id and Retry-After for Envoy's `503 no healthy upstream`, never Envoy's plain text, and logs it", async () => {
    const log = memoryLogger("api-gateway");
    const gw = gateway({ upstreams: { auth: envoyUrl, user: envoyUrl, blog: envoyUrl }, logger: log.logger }, freshPeer());
    const res = await gw.request("/blog/api/posts", { headers: { "x-request-id": "req-envoy-1" } });
    expect(res.status).toBe(503);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(res.headers.get("retry-after")).toBe("1");
    expect(res.headers.get("x-request-id")).toBe("req-envoy-1");
    expect(res.headers.get("server")).toBeNull();
    expect(await res.json()).toEqual({ error: "ServiceUnavailable", message: "Upstream unavailable, retry shortly", status_code: 503, request_id: "req-envoy-1" });
    const line = log.lines().find((l) => l.msg === "upstream answered an error outside the envelope");
    expect(line).toMatchObject({ upstream: "blog", status: 503, said: "no healthy upstream", request_id: "req-envoy-1" });
  });

  it("keeps the status class of Envoy's other replies: 504 for its timeout, 502 for anything else, Retry-After only where sending again is safe", async () => {
    const gw = gateway({ upstreams: { auth: envoyUrl, user: envoyUrl, blog: envoyUrl } }, freshPeer());
    const json = { "content-type": "application/json" };
    const cases = [
      { path: "/blog/api/categories", init: {}, status: 504, error: "GatewayTimeout", retryAfter: null },
      { path: "/api/users/alice", init: {}, status: 502, error: "BadGateway", retryAfter: null },
      // Envoy could not connect: the signup never reached the user-service, so it may be sent again.
      { path: "/api/register", init: { method: "POST", body: "{}", headers: json }, status: 503, error: "ServiceUnavailable", retryAfter: "1" },
      // Cut after it was sent: the login may have been handled, so no Retry-After, and the message says so.
      { path: "/api/login", init: { method: "POST", body: "{}", headers: json }, status: 503, error: "ServiceUnavailable", retryAfter: null },
      // A read is always safe to repeat, whatever Envoy says; a HEAD's answer has no body to judge.
      { path: "/api/posts", init: { method: "HEAD" }, status: 503, error: undefined, retryAfter: "1" },
    ];
    for (const [i, { path, init, status, error, retryAfter }] of cases.entries()) {
      const id = `req-envoy-case-${i}`;
      const res = await gw.request(path, { ...init, headers: { ...(init as { headers?: Record<string, string> }).headers, "x-request-id": id } });
      expect(res.status, path).toBe(status);
      expect(res.headers.get("retry-after"), path).toBe(retryAfter);
      expect(res.headers.get("x-request-id"), path).toBe(id);
      expect(res.headers.get("content-type"), path).toMatch(/^application\/json/);
      if (error) expect(await res.json(), path).toMatchObject({ error, status_code: status, request_id: id });
    }
    const login = await gw.request("/api/login", { method: "POST", body: "{}", headers: json });
    expect(((await login.json()) as { message: string }).message).toMatch(/may or may not have been applied/);
  });

  it("passes a service's own 5xx envelope through unchanged: its message, its Retry-After, its request id", async () => {
    const service = stubService("user-service");
    service.get("/users/:name", () => {
      throw new HttpError(503, "a dependency is unavailable, retry shortly", {}, { "Retry-After": "7" });
    });
    service.post("/users", () => {
      throw new HttpError(500, "internal error");
    });
    const running = await startServer({ fetch: service.fetch, port: 0, host: "127.0.0.1", logger: memoryLogger().logger, lifecycle: new Lifecycle(), graceMs: 100 });
    try {
      const url = `http://127.0.0.1:${running.port}`;
      const log = memoryLogger("api-gateway");
      const gw = gateway({ upstreams: { auth: url, user: url, blog: url }, logger: log.logger }, freshPeer());
      const res = await gw.request("/api/users/alice", { headers: { "x-request-id": "req-svc-1" } });
      expect(res.status).toBe(503);
      expect(res.headers.get("retry-after")).toBe("7");
      expect(await res.json()).toEqual({ error: "ServiceUnavailable", message: "a dependency is unavailable, retry shortly", status_code: 503, request_id: "req-svc-1" });
      const head = await gw.request("/api/users/alice", { method: "HEAD" });
      expect(head.status).toBe(503);
      expect(head.headers.get("retry-after")).toBe("7");
      const post = await gw.request("/api/register", { method: "POST", body: "{}", headers: { "content-type": "application/json", "x-request-id": "req-svc-2" } });
      expect(post.status).toBe(500);
      expect(await post.json()).toEqual({ error: "InternalServerError", message: "internal error", status_code: 500, request_id: "req-svc-2" });
      expect(log.lines().filter((l) => l.msg === "upstream answered an error outside the envelope")).toEqual([]);
    } finally {
      await running.shutdown();
    }
  });
});

describe("rate limits", () => {
  it("are the original's, per route (seed-system section 1), and its global 20 per second with a burst of 50", () => {
    const perMinute = Object.fromEntries(Object.entries(RATE_LIMITS).filter(([, r]) => r.periodSeconds === 60).map(([k, r]) => [k, r.limit]));
    expect(perMinute).toEqual({ login: 5, verify: 30, refresh: 30, logout: 30, signup: 10, userGet: 120, userUpdate: 10, postsList: 600, postGet: 300, postCreate: 10, postUpdate: 30, postDelete: 10 });
    expect(GLOBAL_LIMIT).toMatchObject({ limit: 20, periodSeconds: 1, burst: 50 });
    // Login, signup and refresh are keyed by the client address whatever token comes along.
    expect(Object.entries(RATE_LIMITS).filter(([, r]) => "byClient" in r && r.byClient).map(([k]) => k).sort()).toEqual(["login", "refresh", "signup"]);
  });

  it("applies the original per-route limit (login 5/min) with 429, Retry-After and the envelope", async () => {
    const gw = gateway({}, freshPeer());
    const statuses: number[] = [];
    let last: Response | undefined;
    for (let i = 0; i < 7; i++) {
      last = await gw.request("/api/login", { method: "POST", body: "{}", headers: { "content-type": "application/json" } });
      statuses.push(last.status);
    }
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429]);
    expect(Number(last!.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(Number(last!.headers.get("retry-after"))).toBeLessThanOrEqual(12);
    expect(await last!.json()).toMatchObject({ error: "TooManyRequests", status_code: 429 });
  });

  it("keys by authenticated user: two users behind one address have separate budgets", async () => {
    const peer = freshPeer();
    const gw = gateway({}, peer);
    const send = (token: string) => gw.request("/blog/api/posts", { method: "POST", body: "{}", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" } });
    const u1 = await tokens.sign({ id: 101, username: "u1" });
    const u2 = await tokens.sign({ id: 102, username: "u2" });
    for (let i = 0; i < RATE_LIMITS.postCreate.limit; i++) expect((await send(u1)).status).toBe(200);
    expect((await send(u1)).status).toBe(429);
    expect((await send(u2)).status).toBe(200);
  });

  it("keys login, signup and refresh by the client address even with a valid token: tokens of several accounts buy no extra tries", async () => {
    const tokensOf = await Promise.all([201, 202, 203].map((id) => tokens.sign({ id, username: `t${id}` })));
    for (const [path, rule] of [
      ["/api/login", RATE_LIMITS.login],
      ["/api/register", RATE_LIMITS.signup],
      ["/api/auth/refresh", RATE_LIMITS.refresh],
    ] as const) {
      const gw = gateway({}, freshPeer());
      const statuses: number[] = [];
      for (let i = 0; i <= rule.limit; i++) {
        const token = tokensOf[i % tokensOf.length]!;
        statuses.push((await gw.request(path, { method: "POST", body: "{}", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" } })).status);
      }
      expect(statuses.at(-1), path).toBe(429);
      expect(statuses.slice(0, -1).every((s) => s !== 429), path).toBe(true);
    }
  });

  it("ignores X-Forwarded-For from an untrusted peer, and believes only trusted hops", async () => {
    const gw = gateway({}, "192.0.2.50");
    for (let i = 0; i < 5; i++)
      await gw.request("/api/login", { method: "POST", body: "{}", headers: { "content-type": "application/json", "x-forwarded-for": `10.9.9.${i}` } });
    const spoofed = await gw.request("/api/login", { method: "POST", body: "{}", headers: { "content-type": "application/json", "x-forwarded-for": "10.9.9.99" } });
    expect(spoofed.status).toBe(429);

    const trusted = trustedProxies([{ address: "10.0.0.0", prefix: 8, family: "ipv4" }, { address: "127.0.0.1", prefix: 32, family: "ipv4" }]);
    expect(clientAddress("127.0.0.1", "6.6.6.6, 198.51.100.77, 10.1.2.3", trusted)).toBe("198.51.100.77");
    expect(clientAddress("192.0.2.1", "198.51.100.77", trusted)).toBe("192.0.2.1");
    expect(clientAddress("::ffff:127.0.0.1", undefined, trusted)).toBe("127.0.0.1");
    expect(clientAddress("127.0.0.1", "not-an-ip, 10.1.1.1", trusted)).toBe("10.1.1.1");
  });

  it("limits login per account too: many clients on one account are throttled, whatever the case, spacing or login route", async () => {
    const login = (username: unknown, peer = freshPeer(), path = "/api/auth/login") =>
      gateway({}, peer).request(path, { method: "POST", body: JSON.stringify({ username, password: "guess" }), headers: { "content-type": "application/json" } });
    const limit = RATE_LIMITS.loginAccount.limit;
    const spellings = ["victim", "VICTIM", " Victim ", "victim\t"];
    const statuses: number[] = [];
    // Both login routes (the original's two) draw on the one account budget.
    for (let i = 0; i < limit + 2; i++) statuses.push((await login(spellings[i % spellings.length], freshPeer(), i % 2 ? "/api/login" : "/api/auth/login")).status);
    expect(statuses).toEqual([...Array<number>(limit).fill(200), 429, 429]);
    const refused = await login("victim");
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    const body = (await refused.json()) as Record<string, unknown>;
    // The same answer an unknown account gets once throttled: nothing says whether "victim" exists.
    expect({ ...body, request_id: undefined }).toEqual({ error: "TooManyRequests", message: "Too Many Requests", status_code: 429, request_id: undefined });
    expect(await redis.exists("rl:login_account:acct:victim")).toBe(1);
    // Other accounts, and bodies without a string username (refused upstream without a password check), are not charged to it.
    expect((await login("bystander")).status).toBe(200);
    expect((await login(42)).status).toBe(200);
  });

  it("keeps one client's failed logins its own: ten clients' failures do not lock the owner out, and a client held back on one account is not held back for another", async () => {
    const login = (username: string, peer: string) =>
      gateway({}, peer).request("/api/login", { method: "POST", body: JSON.stringify({ username, password: "guess" }), headers: { "content-type": "application/json" } });
    // What used to lock the account for everyone: ten attempts, from ten clients.
    for (let i = 0; i < 10; i++) expect((await login("owner_1", freshPeer())).status).toBe(200);
    expect((await login("owner_1", freshPeer())).status).toBe(200);
    // One client that has spent its tries on an account (as if over 15 minutes: its cell set to the end of
    // the window) is refused there, while another client, and the same client on another account, are not.
    const attacker = freshPeer();
    expect((await login("owner_2", attacker)).status).toBe(200);
    const cell = `rl:login_account_client:acct:owner_2:ip:${attacker}`;
    expect(await redis.exists(cell)).toBe(1);
    const { time } = { time: await redis.time() };
    await redis.set(cell, String(Number(time[0]) * 1000 + 900_000), "PX", 900_000);
    const held = await login("owner_2", attacker);
    expect(held.status).toBe(429);
    expect(Number(held.headers.get("retry-after"))).toBeGreaterThan(60); // its next try frees in 90 s
    expect((await login("owner_2", freshPeer())).status).toBe(200);
    expect((await login("someone_else", attacker)).status).toBe(200);
  });

  it("keys the per-account login limit by the user-service's own rule (the kit's foldUsername: ASCII case only)", async () => {
    const key = (username: string) => loginAccount(new TextEncoder().encode(JSON.stringify({ username, password: "guess" })));
    for (const spelling of ["alice_1", "ALICE_1", " Alice_1\t"]) expect(key(spelling), spelling).toBe("alice_1");
    // "ALİCE_1" logged in as alice_1 (PostgreSQL's lower() makes "İ" an "i") while JavaScript's toLowerCase()
    // keyed it apart ("i" + U+0307): the limit doubled per "i". Now it is no account's spelling on either side.
    expect(key("ALİCE_1")).toBe("alİce_1");
    expect(key("ALİCE_1")).not.toBe("ali\u0307ce_1");
    expect([key("\u212AATE"), key(" MİXED ")]).toEqual(["\u212Aate", "mİxed"]); // Kelvin sign and İ kept: no account's spelling
    await gateway({}, freshPeer()).request("/api/login", { method: "POST", body: JSON.stringify({ username: "ALİCE_1", password: "x" }), headers: { "content-type": "application/json" } });
    expect(await redis.exists("rl:login_account:acct:alİce_1")).toBe(1);
  });

  it("shares limits across gateway replicas through Redis", async () => {
    const peer = freshPeer();
    const a = gateway({}, peer);
    const b = gateway({}, peer);
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++)
      statuses.push((await (i % 2 ? a : b).request("/api/login", { method: "POST", body: "{}", headers: { "content-type": "application/json" } })).status);
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
    expect(await redis.exists(`rl:login:ip:${peer}`)).toBe(1);
  });

  it("keys an IPv6 client by its /64: another address in it is refused once the first spent the budget, another /64 is not, and upstream still sees the full address", async () => {
    const login = (peer: string, headers: Record<string, string> = {}, overrides: Partial<GatewayDeps> = {}) =>
      gateway(overrides, peer).request("/api/login", { method: "POST", body: JSON.stringify({ username: "v6_owner", password: "guess" }), headers: { "content-type": "application/json", ...headers } });
    const first = "2001:db8:64:1::a";
    for (let i = 0; i < RATE_LIMITS.login.limit; i++) {
      const res = await login(first);
      expect(res.status).toBe(200);
      expect((await echo(res)).headers["x-forwarded-for"]).toBe(first);
    }
    // Another address of the same /64, however it is written: the same budget, spent.
    for (const sibling of ["2001:db8:64:1:ffff:ffff:ffff:ffff", "2001:DB8:64:1:0:0:0:B", "2001:db8:64:1::1.2.3.4"])
      expect((await login(sibling)).status, sibling).toBe(429);
    const elsewhere = await login("2001:db8:64:2::a");
    expect(elsewhere.status).toBe(200);
    expect((await echo(elsewhere)).headers["x-forwarded-for"]).toBe("2001:db8:64:2::a");
    // Every per-client cell is the /64's; none is an address's.
    expect(await redis.exists("rl:login:ip:2001:db8:64:1::/64", "rl:login_account_client:acct:v6_owner:ip:2001:db8:64:1::/64")).toBe(2);
    expect(await redis.keys("rl:*2001:db8:64:1::a*")).toEqual([]);

    // From behind a trusted proxy: keyed by the /64 of the address X-Forwarded-For names, forwarded in full.
    const viaProxy = { trustedProxies: trustedProxies([{ address: "10.0.0.0", prefix: 8, family: "ipv4" }]) };
    const proxied = await login("10.0.0.5", { "x-forwarded-for": "2001:db8:64:3::a" }, viaProxy);
    expect(proxied.status).toBe(200);
    expect((await echo(proxied)).headers["x-forwarded-for"]).toBe("2001:db8:64:3::a, 10.0.0.5");
    expect((await login("10.0.0.5", { "x-forwarded-for": "2001:db8:64:1::c" }, viaProxy)).status).toBe(429);
  });

  it("keys the micro-cache's shortcut by the same /64: a hit charges the /64, and a sibling address is refused there too", async () => {
    const upstreamOffering = createHttpServer((req, res) => {
      res.setHeader("content-type", "application/json");
      res.setHeader("surrogate-control", "max-age=60");
      res.end(JSON.stringify({ forwardedFor: req.headers["x-forwarded-for"] }));
    });
    await new Promise<void>((r) => upstreamOffering.listen(0, "127.0.0.1", () => r()));
    // One request per /64 per 50 s (the global rule scaled down to a burst of 1): no second request slips in
    // on a slow machine.
    const { app, shortcut } = bed.gatewayParts(`http://127.0.0.1:${(upstreamOffering.address() as AddressInfo).port}`, {
      trustedProxies: trustedProxies([{ address: "127.0.0.1", prefix: 32, family: "ipv4" }]),
      rateLimitScale: 0.001,
    });
    const running = await startServer({ fetch: app.fetch, shortcut, port: 0, host: "127.0.0.1", logger: memoryLogger().logger, lifecycle: new Lifecycle(), graceMs: 100 });
    const read = (client: string) => fetch(`http://127.0.0.1:${running.port}/api/categories`, { headers: { "x-forwarded-for": client } });
    try {
      const miss = await read("2001:db8:65:1::a"); // through the app, stored
      expect([miss.status, miss.headers.get("x-cache")]).toEqual([200, null]);
      expect(await miss.json()).toEqual({ forwardedFor: "2001:db8:65:1::a, 127.0.0.1" });
      const hit = await read("2001:db8:65:2::a"); // the shortcut, another /64
      expect([hit.status, hit.headers.get("x-cache")]).toEqual([200, "HIT"]);
      await hit.arrayBuffer();
      const sibling = await read("2001:db8:65:1::b"); // the shortcut again, the first /64: its budget is spent
      expect(sibling.status).toBe(429);
      await sibling.arrayBuffer();
      expect(await redis.exists(`rl:${GLOBAL_LIMIT.name}:ip:2001:db8:65:1::/64`, `rl:${GLOBAL_LIMIT.name}:ip:2001:db8:65:2::/64`)).toBe(2);
      expect(await redis.keys("rl:*2001:db8:65:*::[ab]")).toEqual([]);
    } finally {
      await running.shutdown();
      upstreamOffering.close();
    }
  });

  it("falls back to in-process limits when Redis is unavailable", async () => {
    const dead = createRedis({ url: `redis://127.0.0.1:${await freePort()}` });
    try {
      const gw = gateway({ redis: dead }, freshPeer());
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++)
        statuses.push((await gw.request("/api/login", { method: "POST", body: "{}", headers: { "content-type": "application/json" } })).status);
      expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
    } finally {
      dead.disconnect();
    }
  });

  it("reads one more key in the admission's own Redis command (the micro-cache's generation), never for a refusal", async () => {
    const limiter = new RateLimiter(redis);
    const rule = { name: "read_along", limit: 1, periodSeconds: 60 };
    const subject = `ip:${freshPeer()}`;
    await redis.set("titanium:test:read-along", "gen-7");
    expect(await limiter.take([rule], subject, [], "titanium:test:read-along")).toEqual({ allowed: true, retryAfterMs: 0, store: "redis", read: "gen-7" });
    const refused = await limiter.take([rule], subject, [], "titanium:test:read-along");
    expect([refused.allowed, refused.read]).toEqual([false, undefined]);
    // An unset key reads as null; without `read` the answer carries no value at all.
    expect((await limiter.take([rule], `ip:${freshPeer()}`, [], "titanium:test:unset")).read).toBeNull();
    expect(await limiter.take([rule], `ip:${freshPeer()}`)).toEqual({ allowed: true, retryAfterMs: 0, store: "redis" });
  });

  it("GCRA: burst then steady rate; a denied request charges nothing", () => {
    const l = new LocalLimiter();
    const cell = { key: "k", intervalMs: 100, burst: 3 };
    const t0 = 1_000_000;
    expect([0, 0, 0, 0].map(() => l.take([cell], t0).allowed)).toEqual([true, true, true, false]);
    expect(l.take([cell], t0 + 99).allowed).toBe(false);
    expect(l.take([cell], t0 + 100).allowed).toBe(true);
    const other = { key: "k2", intervalMs: 1000, burst: 1 };
    expect(l.take([other], t0).allowed).toBe(true);
    expect(l.take([other, { key: "k3", intervalMs: 1, burst: 100 }], t0).allowed).toBe(false);
    expect(l.take([{ key: "k3", intervalMs: 1000, burst: 1 }], t0).allowed).toBe(true);
  });
});

describe("limits on a real socket", () => {
  let running: RunningServer;
  beforeAll(async () => {
    const gw = gateway({ peerAddress: () => undefined, bodyLimitBytes: 2048 });
    running = await startServer({ fetch: gw.fetch, port: 0, host: "127.0.0.1", logger: memoryLogger().logger, lifecycle: new Lifecycle(), graceMs: 100 });
  });
  afterAll(() => running?.shutdown());

  it("admits no header block a service behind it would refuse: the services leave room for what forwarding adds", async () => {
    const service = stubService("user-service");
    service.get("/users/:username", (c) => c.json({ username: c.req.param("username") }));
    const start = (fetch: (r: Request) => Response | Promise<Response>, maxHeaderBytes?: number) =>
      startServer({ fetch, port: 0, host: "127.0.0.1", logger: memoryLogger().logger, lifecycle: new Lifecycle(), graceMs: 100, maxHeaderBytes });
    const behind = await start(service.fetch); // a service's default
    const tight = await start(service.fetch, MAX_HEADER_BYTES); // what every server had before
    try {
      const via = async (port: number) => {
        const gw = gateway({ upstreams: { auth: "http://127.0.0.1:1", user: `http://127.0.0.1:${port}`, blog: "http://127.0.0.1:1" } }, freshPeer());
        const edge = await start(gw.fetch, MAX_HEADER_BYTES);
        try {
          // Just under the clients' limit (with fetch's own headers): the gateway admits it and adds its own on the way.
          const res = await fetch(`http://127.0.0.1:${edge.port}/api/users/alice`, { headers: { "x-request-id": "hdr-near-limit", "x-big": "y".repeat(MAX_HEADER_BYTES - 225) } });
          return { status: res.status, requestId: res.headers.get("x-request-id") };
        } finally {
          await edge.shutdown();
        }
      };
      expect(await via(behind.port)).toEqual({ status: 200, requestId: "hdr-near-limit" });
      // Without the room the service refuses what the gateway admitted: the defect this prevents.
      expect((await via(tight.port)).status).toBe(431);
    } finally {
      await behind.shutdown();
      await tight.shutdown();
    }
  });

  it("refuses large bodies (413) and large headers (431), and reads the peer address from the socket", async () => {
    const base = `http://127.0.0.1:${running.port}`;
    const big = await fetch(`${base}/blog/api/posts`, { method: "POST", body: "x".repeat(5000), headers: { "content-type": "application/json" } });
    expect(big.status).toBe(413);
    const headers = await fetch(`${base}/blog/api/posts`, { headers: { "x-big": "y".repeat(20_000) } });
    expect(headers.status).toBe(431);
    const ok = await fetch(`${base}/blog/api/posts`);
    expect((await echo(ok)).headers["x-forwarded-for"]).toBe("127.0.0.1");
  });
});

describe("a client that gives up", () => {
  it("cuts the upstream request at once and frees its in-flight slot for the next client", async () => {
    const received: number[] = [];
    const closed: number[] = [];
    const hung = createHttpServer((req) => {
      received.push(Date.now());
      req.resume();
      req.socket.once("close", () => closed.push(Date.now()));
    });
    await new Promise<void>((r) => hung.listen(0, "127.0.0.1", () => r()));
    const url = `http://127.0.0.1:${(hung.address() as AddressInfo).port}`;
    const metrics = new Metrics("api-gateway", { processMetrics: false });
    const gw = gateway({ upstreams: { auth: url, user: url, blog: url }, peerAddress: () => undefined, maxInFlight: 1, upstreamTimeoutMs: 10_000, metrics });
    const running = await startServer({ fetch: gw.fetch, port: 0, host: "127.0.0.1", logger: memoryLogger().logger, lifecycle: new Lifecycle(), graceMs: 100 });
    const waitFor = async (ok: () => boolean) => {
      for (let i = 0; i < 500 && !ok(); i++) await new Promise((r) => setTimeout(r, 10));
      return ok();
    };
    try {
      const base = `http://127.0.0.1:${running.port}`;
      const first = new AbortController();
      const gaveUp = fetch(`${base}/blog/api/posts`, { signal: first.signal }).catch((e: Error) => e.name);
      expect(await waitFor(() => received.length === 1)).toBe(true);
      const abortedAt = Date.now();
      first.abort();
      expect(await gaveUp).toBe("AbortError");
      // The upstream sees its request cut well before the gateway's own 10 s timeout.
      expect(await waitFor(() => closed.length === 1)).toBe(true);
      expect(closed[0]! - abortedAt).toBeLessThan(3000);
      // The only slot is free again: the next request reaches the upstream instead of a 503.
      const second = new AbortController();
      const next = fetch(`${base}/blog/api/posts`, { signal: second.signal }).then((r) => r.status, (e: Error) => e.name);
      expect(await waitFor(() => received.length === 2)).toBe(true);
      second.abort();
      expect(await next).toBe("AbortError");
      expect(await metrics.registry.metrics()).toMatch(/http_requests_total\{[^}]*status="499"[^}]*\} 1/);
    } finally {
      await running.shutdown();
      hung.closeAllConnections();
      hung.close();
    }
  });
});
