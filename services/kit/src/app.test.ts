import { Agent, request } from "node:http";
import { describe, expect, it } from "vitest";
import { createRoute, z } from "@hono/zod-openapi";
import { canonicalJsonType, createServiceApp, Lifecycle } from "./app.js";
import { HttpError, parseOrThrow } from "./errors.js";
import { Metrics } from "./metrics.js";
import { METRICS } from "./metric-names.js";
import { memoryLogger } from "./testing/index.js";
import { startServer } from "./server.js";

function build(opts: { redisDown?: boolean; dbDown?: boolean } = {}) {
  const { logger, lines } = memoryLogger("user-service");
  const metrics = new Metrics("user-service", { processMetrics: false });
  const lifecycle = new Lifecycle();
  const app = createServiceApp({
    service: "user-service",
    logger,
    metrics,
    allowedOrigins: ["https://ok.example"],
    bodyLimitBytes: 1024,
    lifecycle,
    health: (c) => c.json({ status: "healthy" }),
    readiness: {
      postgres: { required: true, check: async () => { if (opts.dbDown) throw new Error("down"); } },
      redis: { required: false, check: async () => { if (opts.redisDown) throw new Error("down"); } },
    },
    openapi: { title: "test", version: "1" },
  });
  app.openapi(
    createRoute({
      method: "post",
      path: "/things/{id}",
      request: {
        params: z.object({ id: z.coerce.number().int() }),
        body: { required: true, content: { "application/json": { schema: z.object({ name: z.string().min(3), password: z.string() }) } } },
      },
      responses: { 201: { description: "created", content: { "application/json": { schema: z.object({ id: z.number() }) } } } },
    }),
    (c) => {
      const { id } = c.req.valid("param");
      logger.info({ body: c.req.valid("json") }, "got");
      return c.json({ id }, 201);
    },
  );
  app.get("/limited", () => {
    throw new HttpError(429, "slow down", {}, { "Retry-After": "3" });
  });
  // A server-side parse failure on a read (a corrupt cached value): the server's fault, not a body's.
  app.get("/corrupt", () => {
    throw new SyntaxError("Unexpected token in JSON");
  });
  app.get("/boom", () => {
    throw new Error("secret internals");
  });
  return { app, metrics, lifecycle, lines };
}

const json = (body: unknown) => ({ method: "POST", body: JSON.stringify(body), headers: { "content-type": "application/json" } });

describe("service app skeleton", () => {
  it("validates with zod and answers 422 in the envelope naming the field", async () => {
    const { app } = build();
    const ok = await app.request("/things/7", json({ name: "abcd", password: "x" }));
    expect(ok.status).toBe(201);
    expect(await ok.json()).toEqual({ id: 7 });
    const bad = await app.request("/things/7", json({ name: "ab", password: "x" }));
    expect(bad.status).toBe(422);
    const body = (await bad.json()) as { message: string };
    expect(body).toMatchObject({ error: "ValidationError", status_code: 422, field: "name" });
    expect(body.message).toMatch(/^name: /);
  });

  it("answers malformed JSON, unknown routes, thrown HttpErrors and crashes in the envelope", async () => {
    const { app } = build();
    const malformed = await app.request("/things/1", { method: "POST", body: "{", headers: { "content-type": "application/json" } });
    expect(malformed.status).toBe(422);
    expect(await malformed.json()).toMatchObject({ error: "ValidationError", status_code: 422, field: "body" });
    const missing = await app.request("/nope");
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ error: "NotFound", status_code: 404 });
    const limited = await app.request("/limited");
    expect(limited.status).toBe(429);
    expect(limited.headers.get("retry-after")).toBe("3");
    expect(await limited.json()).toMatchObject({ error: "TooManyRequests", message: "slow down", status_code: 429 });
    const boom = await app.request("/boom");
    expect(boom.status).toBe(500);
    const b = await boom.json();
    expect(b).toMatchObject({ error: "InternalServerError", status_code: 500 });
    expect(JSON.stringify(b)).not.toContain("secret internals");
    // A SyntaxError on a request without a body blames no body: 500, not 422 naming `body`.
    const corrupt = await app.request("/corrupt");
    expect(corrupt.status).toBe(500);
    expect(await corrupt.json()).toMatchObject({ error: "InternalServerError", status_code: 500 });
  });

  it("adds FastAPI's `detail` list ({type, loc, msg}) to every 422, so a client of the original reads it where it did", async () => {
    const { app } = build();
    app.get("/paged", (c) => c.json(parseOrThrow(z.object({ limit: z.coerce.number().int().max(100) }), c.req.query(), "query")));
    app.post("/emptied", () => {
      throw new HttpError(422, "title: empty once markup is removed", { field: "title" });
    });
    const detailOf = async (res: Response) => {
      expect(res.status).toBe(422);
      const body = (await res.json()) as { detail?: unknown; field?: string };
      expect(body).toMatchObject({ error: "ValidationError", status_code: 422 });
      return body.detail;
    };
    // The body's fields, each rule broken, a missing one typed "missing", in the words of `details` (the input
    // itself is never echoed).
    const fields = await app.request("/things/7", json({ name: "ab" }));
    const { details } = (await fields.clone().json()) as { details: { message: string }[] };
    expect(await detailOf(fields)).toEqual([
      { type: "string_too_short", loc: ["body", "name"], msg: details[0]!.message },
      { type: "missing", loc: ["body", "password"], msg: details[1]!.message },
    ]);
    expect(await detailOf(await app.request("/things/x", json({ name: "abcd", password: "x" })))).toEqual([
      { type: expect.any(String), loc: ["path", "id"], msg: expect.any(String) },
    ]);
    expect(await detailOf(await app.request("/things/1", { method: "POST", body: "{", headers: { "content-type": "application/json" } }))).toEqual([
      { type: "json_invalid", loc: ["body"], msg: "JSON decode error" },
    ]);
    expect(await detailOf(await app.request("/things/1", json([])))).toEqual([{ type: expect.any(String), loc: ["body"], msg: expect.any(String) }]);
    expect(await detailOf(await app.request("/paged?limit=500"))).toEqual([{ type: "less_than_equal", loc: ["query", "limit"], msg: expect.any(String) }]);
    expect(await detailOf(await app.request("/emptied", { method: "POST" }))).toEqual([
      { type: "value_error", loc: ["body", "title"], msg: "title: empty once markup is removed" },
    ]);
    const secret = await app.request("/things/7", json({ name: "ab", password: 5 }));
    expect(JSON.stringify(await secret.json())).not.toContain('"input"');
  });

  it("answers every body problem 422 naming `body`, as the original (FastAPI): malformed, empty, not an object", async () => {
    const { app } = build();
    const send = (body: string, headers: Record<string, string> = { "content-type": "application/json" }) => app.request("/things/1", { method: "POST", body, headers });
    // With FastAPI's own `detail` type for each (checked against FastAPI 0.142 / pydantic 2.13).
    for (const [what, res, type] of [
      ["malformed", await send('{"name": "abcd",'), "json_invalid"],
      ["blank", await send("  "), "json_invalid"],
      ["empty", await send(""), "missing"],
      ["a JSON string", await send('"abcd"'), "model_attributes_type"],
      ["null", await send("null"), "missing"],
      ["an array", await send("[]"), "model_attributes_type"],
      ["a number", await send("1"), "model_attributes_type"],
      ["JSON with a parameter", await send("{", { "content-type": "application/json; charset=utf-8" }), "json_invalid"],
    ] as const) {
      expect(res.status, what).toBe(422);
      const body = (await res.json()) as Record<string, unknown>;
      expect(body, what).toMatchObject({ error: "ValidationError", status_code: 422, field: "body", request_id: expect.any(String) });
      expect(body.message, what).toMatch(/^body: /);
      expect(body.details, what).toEqual([expect.objectContaining({ field: "body" })]);
      expect(body.detail, what).toEqual([expect.objectContaining({ type, loc: ["body"] })]);
    }
    // A handler parsing a body itself: the same answer.
    const { app: own } = build();
    own.post("/raw", async (c) => c.json(await c.req.json()));
    const raw = await own.request("/raw", { method: "POST", body: "{", headers: { "content-type": "application/json" } });
    expect(raw.status).toBe(422);
    expect(await raw.json()).toMatchObject({ field: "body" });
  });

  it("reads a body sent without Content-Type as JSON (as the original); another type is a 415 in the envelope saying what to send", async () => {
    const { app } = build();
    // A byte body: fetch's Request adds no Content-Type for it (a string body would get text/plain).
    const bytes = (v: string) => new TextEncoder().encode(v);
    const untyped = await app.request("/things/5", { method: "POST", body: bytes(JSON.stringify({ name: "abcd", password: "x" })) });
    expect(untyped.status).toBe(201);
    expect(await untyped.json()).toEqual({ id: 5 });
    const untypedBad = await app.request("/things/5", { method: "POST", body: bytes("{nope") });
    expect(untypedBad.status).toBe(422);
    expect(await untypedBad.json()).toMatchObject({ field: "body" });
    // No body and no type: the route's fields are missing, named.
    const nothing = await app.request("/things/5", { method: "POST" });
    expect(nothing.status).toBe(422);
    expect(await nothing.json()).toMatchObject({ error: "ValidationError", field: "name" });
    const text = await app.request("/things/5", { method: "POST", body: JSON.stringify({ name: "abcd", password: "x" }), headers: { "content-type": "text/plain" } });
    expect(text.status).toBe(415);
    const refused = (await text.json()) as { message: string };
    expect(refused).toMatchObject({ error: "UnsupportedMediaType", status_code: 415 });
    expect(refused.message).toContain("Content-Type: application/json");
    // A JSON type in any form HTTP allows (whitespace around `;` and `=`, an empty parameter, upper case),
    // which the original read: accepted, as is every usual form.
    for (const type of ["application/json ; charset=utf-8", "application/json;charset = UTF-8", "application/json;", "APPLICATION/JSON", "application/json; charset=utf-8", "application/merge-patch+json"]) {
      const typed = await app.request("/things/5", { method: "POST", body: JSON.stringify({ name: "abcd", password: "x" }), headers: { "content-type": type } });
      expect(typed.status, type).toBe(201);
    }
    expect(canonicalJsonType("application/json ; charset = utf-8 ;")).toBe("application/json; charset=utf-8");
    expect(canonicalJsonType("application/jsonx; charset=utf-8")).toBeUndefined();
    expect(canonicalJsonType("text/plain")).toBeUndefined();

    // The same on a real socket (the Node adapter's own request object), a chunked body included.
    const running = await startServer({ fetch: app.fetch, port: 0, host: "127.0.0.1", logger: memoryLogger().logger, lifecycle: new Lifecycle(), graceMs: 100 });
    const send = (body: string, headers: Record<string, string | number>, method = "POST") =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request({ host: "127.0.0.1", port: running.port, path: "/things/9", method, headers }, (res) => {
          let text = "";
          res.on("data", (d: Buffer) => (text += d.toString()));
          res.on("end", () => resolve({ status: res.statusCode!, body: text }));
        });
        req.on("error", reject);
        req.end(body);
      });
    try {
      const body = JSON.stringify({ name: "abcd", password: "x" });
      expect(await send(body, { "content-length": Buffer.byteLength(body) })).toEqual({ status: 201, body: '{"id":9}' });
      expect(await send(body, { "transfer-encoding": "chunked" })).toEqual({ status: 201, body: '{"id":9}' });
      const bad = await send("{", { "content-length": 1 });
      expect(bad.status).toBe(422);
      expect(JSON.parse(bad.body)).toMatchObject({ field: "body" });
      // No body (length 0): the route's missing fields are named, as under app.request.
      const empty = await send("", { "content-length": 0 });
      expect(empty.status).toBe(422);
      expect(JSON.parse(empty.body)).toMatchObject({ field: "name" });
      // A method no route takes, with an untyped body: the 405 it gets without one (fetch's Request cannot
      // be built for TRACE: rewriting it as JSON threw, a 500).
      for (const method of ["TRACE", "PROPFIND"]) {
        const other = await send(body, { "content-length": Buffer.byteLength(body) }, method);
        expect(other.status, method).toBe(405);
        expect(JSON.parse(other.body), method).toMatchObject({ error: "MethodNotAllowed", status_code: 405 });
      }
    } finally {
      await running.shutdown();
    }
  });

  it("answers a known path asked with another method 405 with Allow and the envelope; an unknown path stays 404", async () => {
    const { app } = build();
    app.on(["PATCH", "DELETE"], "/things/:id", (c) => c.body(null, 204));
    // Middleware for every method (auth on a path, say) is no route: alone it makes no 405.
    app.use("/guarded/*", async (_c, next) => next());
    // A handler of the asked method that finds nothing answers 404 itself, whatever other methods the path has.
    app.get("/files/*", (c) => c.notFound());
    app.post("/files/upload", (c) => c.body(null, 201));
    for (const [method, path, allow] of [
      ["GET", "/things/1", "POST, PATCH, DELETE"],
      ["PUT", "/things/1", "POST, PATCH, DELETE"],
      ["HEAD", "/things/1", "POST, PATCH, DELETE"],
      ["POST", "/healthz", "GET, HEAD"],
      ["DELETE", "/openapi.json", "GET, HEAD"],
      ["BREW", "/health", "GET, HEAD"],
    ] as const) {
      const res = await app.request(path, { method });
      expect(res.status, `${method} ${path}`).toBe(405);
      expect(res.headers.get("allow"), `${method} ${path}`).toBe(allow);
      expect(res.headers.get("x-frame-options")).toBe("DENY");
      if (method !== "HEAD") expect(await res.json()).toMatchObject({ error: "MethodNotAllowed", message: "Method Not Allowed", status_code: 405, request_id: expect.any(String) });
    }
    for (const [method, path] of [["GET", "/nope"], ["POST", "/things"], ["POST", "/things/1/more"]] as const) {
      const res = await app.request(path, { method });
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(res.headers.get("allow")).toBeNull();
    }
    expect((await app.request("/guarded/x", { method: "POST" })).status).toBe(404);
    expect((await app.request("/files/upload")).status).toBe(404);
    expect((await app.request("/files/other", { method: "POST" })).headers.get("allow")).toBe("GET, HEAD");
  });

  it("answers every OPTIONS 204, with or without Origin or a preflight method, on any path; CORS headers only for allowed origins", async () => {
    const { app } = build();
    for (const path of ["/things/1", "/healthz", "/nope", "/"]) {
      for (const headers of [{}, { origin: "https://evil.example" }, { "access-control-request-method": "POST" }] as Record<string, string>[]) {
        const res = await app.request(path, { method: "OPTIONS", headers });
        expect(res.status, `${path} ${JSON.stringify(headers)}`).toBe(204);
        expect(await res.text()).toBe("");
        expect(res.headers.get("access-control-allow-origin")).toBeNull();
        expect(res.headers.get("access-control-allow-methods")).toBeNull();
      }
      const ok = await app.request(path, { method: "OPTIONS", headers: { origin: "https://ok.example" } });
      expect(ok.status).toBe(204);
      expect(ok.headers.get("access-control-allow-origin")).toBe("https://ok.example");
      expect(ok.headers.get("access-control-allow-methods")).toContain("PATCH");
    }
  });

  it("sets the security headers and the CORS allow-list", async () => {
    const { app } = build();
    const res = await app.request("/healthz", { headers: { origin: "https://ok.example" } });
    // The original's headers, literally (seed-system section 1.2), plus the strict CSP and no-store of an API answer.
    expect(Object.fromEntries([...res.headers].filter(([k]) => !k.startsWith("access-control-") && !["vary", "content-type", "x-request-id", "content-length"].includes(k)))).toEqual({
      "strict-transport-security": "max-age=31536000; includeSubDomains",
      "x-frame-options": "DENY",
      "x-content-type-options": "nosniff",
      "x-xss-protection": "1; mode=block",
      "referrer-policy": "strict-origin-when-cross-origin",
      "permissions-policy": "geolocation=(), microphone=(), camera=()",
      "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
      "cache-control": "no-store",
    });
    expect(res.headers.get("access-control-allow-origin")).toBe("https://ok.example");
    expect(res.headers.get("access-control-allow-credentials")).toBe("true");
    const evil = await app.request("/healthz", { headers: { origin: "https://evil.example" } });
    expect(evil.headers.get("access-control-allow-origin")).toBeNull();
    const preflight = await app.request("/things/1", { method: "OPTIONS", headers: { origin: "https://ok.example", "access-control-request-method": "POST" } });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get("access-control-allow-methods")).toBe("GET,POST,PUT,PATCH,DELETE,OPTIONS");
    expect(preflight.headers.get("access-control-allow-headers")).toBe("Content-Type,Authorization,X-Requested-With,X-Request-Id");
    expect(preflight.headers.get("access-control-max-age")).toBe("86400");
    const evilPreflight = await app.request("/things/1", { method: "OPTIONS", headers: { origin: "https://evil.example", "access-control-request-method": "POST" } });
    expect(evilPreflight.status).toBe(204);
    expect(evilPreflight.headers.get("access-control-allow-origin")).toBeNull();
    // Headers prepared before the handler survive an error answer too.
    const missing = await app.request("/nope", { headers: { origin: "https://ok.example" } });
    expect(missing.headers.get("access-control-allow-origin")).toBe("https://ok.example");
    expect(missing.headers.get("x-frame-options")).toBe("DENY");
  });

  it("refuses bodies over the limit with 413", async () => {
    const { app } = build();
    const res = await app.request("/things/1", json({ name: "x".repeat(2000), password: "p" }));
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ error: "PayloadTooLarge" });
  });

  it("closes the connection after a 413 (the unread body would break the next request of a keep-alive client)", async () => {
    const { app } = build();
    const running = await startServer({ fetch: app.fetch, port: 0, host: "127.0.0.1", logger: memoryLogger().logger, lifecycle: new Lifecycle(), graceMs: 100 });
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const send = (body: string) =>
      new Promise<{ status: number; connection: string | undefined }>((resolve, reject) => {
        const req = request({ host: "127.0.0.1", port: running.port, path: "/things/1", method: "POST", agent, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) } }, (res) => {
          res.resume();
          res.on("end", () => resolve({ status: res.statusCode!, connection: res.headers.connection }));
        });
        req.on("error", reject);
        req.end(body);
      });
    try {
      for (let i = 0; i < 5; i++) {
        const big = await send(JSON.stringify({ name: "x".repeat(200_000), password: "p" }));
        expect(big).toEqual({ status: 413, connection: "close" });
        // The same agent, one socket: a reused dead connection would reject with ECONNRESET here.
        // A valid request: a desynchronised connection would answer it with anything but the handler's status.
        expect((await send(JSON.stringify({ name: "okay", password: "p" }))).status).toBe(201);
      }
    } finally {
      agent.destroy();
      await running.shutdown();
    }
  });

  it("counts requests by route pattern and real status code, and logs one line per request without secrets", async () => {
    const { app, metrics, lines } = build();
    await app.request("/things/1", json({ name: "abcd", password: "hunter2-secret" }));
    await app.request("/limited");
    await app.request("/nope/123");
    const text = await metrics.registry.metrics();
    expect(text).toContain(`${METRICS.httpRequests}{service="user-service",method="POST",route="/things/:id",status="201"} 1`);
    expect(text).toContain(`${METRICS.httpRequests}{service="user-service",method="GET",route="/limited",status="429"} 1`);
    expect(text).toContain(`route="unmatched",status="404"`);
    // Buckets from 5 ms to 10 s (issue 3), then +Inf.
    const buckets = [...text.matchAll(new RegExp(`${METRICS.httpDuration}_bucket\\{le="([^"]+)",service="user-service",method="POST",route="/things/:id"\\}`, "g"))].map((m) => m[1]);
    expect(buckets[0]).toBe("0.005");
    expect(buckets.at(-2)).toBe("10");
    expect(buckets.at(-1)).toBe("+Inf");
    const log = lines();
    const req = log.find((l) => l.msg === "request" && l.route === "/things/:id");
    expect(req).toMatchObject({ method: "POST", status: 201, service: "user-service" });
    expect(typeof req?.request_id).toBe("string");
    expect(typeof req?.duration_ms).toBe("number");
    expect(JSON.stringify(log)).not.toContain("hunter2-secret");
  });

  it("logs a succeeding probe or scrape at debug level, a failing one at info", async () => {
    const { app, lines } = build();
    await app.request("/healthz");
    await app.request("/readyz");
    const probes = lines().filter((l) => l.msg === "request" && (l.route === "/healthz" || l.route === "/readyz"));
    expect(probes.map((l) => [l.route, l.status, l.level])).toEqual([
      ["/healthz", 200, "debug"],
      ["/readyz", 200, "debug"],
    ]);
    const failing = build({ dbDown: true });
    await failing.app.request("/readyz");
    expect(failing.lines().find((l) => l.msg === "request" && l.route === "/readyz")).toMatchObject({ status: 503, level: "info" });
  });

  it("serves the process metrics beside its own (resident memory, CPU, event-loop lag)", async () => {
    const metrics = new Metrics("auth-service");
    const text = await metrics.registry.metrics();
    // Unlabelled: Prometheus adds the pod's labels when it scrapes them.
    for (const name of ["process_resident_memory_bytes", "process_cpu_seconds_total", "nodejs_eventloop_lag_seconds"]) expect(text, name).toMatch(new RegExp(`^${name} \\d`, "m"));
  });

  it("redacts credentials wherever a log line carries them (the logger's own paths, one level deep)", () => {
    const { logger, lines } = memoryLogger();
    logger.info({ headers: { authorization: "Bearer eyJ-access", cookie: "sid=1" }, token: "tok-1", refresh_token: "rt-1", body: { password: "pw-1", current_password: "pw-2" } }, "x");
    const [line] = lines();
    const text = JSON.stringify(line);
    for (const secret of ["eyJ-access", "sid=1", "tok-1", "rt-1", "pw-1", "pw-2"]) expect(text, secret).not.toContain(secret);
    expect(line).toMatchObject({ headers: { authorization: "[redacted]" }, token: "[redacted]", body: { password: "[redacted]" } });
  });

  it("propagates a well-formed request id and replaces a malformed one", async () => {
    const { app } = build();
    const res = await app.request("/healthz", { headers: { "x-request-id": "abc-123" } });
    expect(res.headers.get("x-request-id")).toBe("abc-123");
    const bad = await app.request("/healthz", { headers: { "x-request-id": "no spaces allowed\u0001" } });
    expect(bad.headers.get("x-request-id")).not.toContain("spaces");
  });

  it("reports readiness: a required dependency down is 503, Redis down is degraded but ready, draining is 503", async () => {
    expect((await build().app.request("/readyz")).status).toBe(200);
    const degraded = await build({ redisDown: true }).app.request("/readyz");
    expect(degraded.status).toBe(200);
    expect(await degraded.json()).toEqual({ status: "ready", checks: { postgres: "ok", redis: "degraded" } });
    expect((await build({ dbDown: true }).app.request("/readyz")).status).toBe(503);
    const { app, lifecycle } = build();
    lifecycle.draining = true;
    expect((await app.request("/readyz")).status).toBe(503);
    expect((await app.request("/healthz")).status).toBe(200);
  });

  it("serves the original /health, Prometheus text and an OpenAPI document generated from the schemas", async () => {
    const { app } = build();
    expect(await (await app.request("/health")).json()).toEqual({ status: "healthy" });
    const metrics = await app.request("/metrics");
    expect(metrics.headers.get("content-type")).toContain("text/plain");
    // Not for callers from outside the mesh (Envoy's mark) or through the gateway.
    expect((await app.request("/metrics", { headers: { "x-envoy-external-address": "203.0.113.1" } })).status).toBe(404);
    expect((await app.request("/metrics", { headers: { "x-titanium-via": "api-gateway" } })).status).toBe(404);
    const doc = await (await app.request("/openapi.json")).json();
    expect(doc).toMatchObject({
      openapi: "3.0.3",
      paths: {
        "/things/{id}": {
          post: { requestBody: { content: { "application/json": { schema: { properties: { name: { minLength: 3 } } } } } } },
        },
      },
    });
  });
});

describe("in-flight limit", () => {
  it("sheds requests beyond maxInFlight with 503, Retry-After and the envelope, never the probes, and admits again once they finish", async () => {
    const { logger } = memoryLogger("api-gateway");
    const app = createServiceApp({
      service: "api-gateway",
      logger,
      metrics: new Metrics("api-gateway", { processMetrics: false }),
      allowedOrigins: [],
      maxInFlight: 2,
      health: (c) => c.body(null, 200),
      openapi: { title: "t", version: "1" },
    });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    app.get("/wait", async (c) => {
      await gate;
      return c.json({ ok: true });
    });
    const held = [app.request("/wait"), app.request("/wait")];
    await new Promise((r) => setTimeout(r, 10));
    const shed = await app.request("/wait");
    expect(shed.status).toBe(503);
    expect(shed.headers.get("retry-after")).toBe("1");
    expect(await shed.json()).toMatchObject({ error: "ServiceUnavailable", status_code: 503 });
    expect((await app.request("/readyz")).status).toBe(200);
    expect((await app.request("/healthz")).status).toBe(200);
    release();
    expect((await Promise.all(held)).map((r) => r.status)).toEqual([200, 200]);
    expect((await app.request("/wait")).status).toBe(200);
  });
});

describe("dependency outage", () => {
  it("answers 503 with Retry-After (not 500) when the database connection fails", async () => {
    const { app } = build();
    app.get("/db", () => {
      throw Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" });
    });
    app.get("/bug", () => {
      throw new Error("a defect");
    });
    const down = await app.request("/db");
    expect(down.status).toBe(503);
    expect(down.headers.get("retry-after")).toBe("1");
    expect((await app.request("/bug")).status).toBe(500);
  });

  it("does not invite a retry of a write whose connection died after it was sent (it may have committed)", async () => {
    const { app } = build();
    const fail = (code: string) => () => {
      throw Object.assign(new Error(code), { code });
    };
    app.post("/reset", fail("CONNECTION_CLOSED"));
    app.post("/refused", fail("ECONNREFUSED"));
    // PostgreSQL refusing the connection while it starts or stops (cannot_connect_now): nothing was sent.
    app.post("/starting", fail("57P03"));
    app.get("/reset", fail("CONNECTION_CLOSED"));
    const write = await app.request("/reset", { method: "POST" });
    expect([write.status, write.headers.get("retry-after")]).toEqual([503, null]);
    expect(((await write.json()) as { message: string }).message).toMatch(/may or may not have been applied/);
    // Never sent, or only a read: retrying is safe and the answer says when.
    expect((await app.request("/refused", { method: "POST" })).headers.get("retry-after")).toBe("1");
    expect((await app.request("/starting", { method: "POST" })).headers.get("retry-after")).toBe("1");
    expect((await app.request("/reset")).headers.get("retry-after")).toBe("1");
  });
});
