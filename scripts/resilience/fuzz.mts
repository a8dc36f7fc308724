/**
 * The fuzzer's generator and raw sender. Cases are built from a seeded PRNG (mulberry32), so a failing
 * seed reproduces the same requests (`FUZZ_SEED=<n> npx vitest run scripts/resilience/fuzz.test.mts`).
 * Requests go out through `node:http` with the path exactly as written: `fetch` would resolve `..` and
 * `%2e%2e` before sending, and path traversal is one of the things tried.
 */
import { request } from "node:http";
import { GATEWAY_ROUTES } from "../../services/api-gateway/src/routes.js";
import { PASSWORD } from "./harness.mjs";

export type Target = "gateway" | "user-service" | "auth-service" | "blog-service";

export interface FuzzCase {
  target: Target;
  method: string;
  /** Raw request target (path and query), sent as is. */
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
  /** What was done, for the report and a failure message. */
  kind: string;
  /** A static-file traversal attempt: a 2xx must be a file of the web root. */
  traversal?: boolean;
  /**
   * SQL metacharacters somewhere in it (body field, query or path parameter): its answer must be quick, or a
   * time-based injection (`pg_sleep`) ran.
   */
  sql?: boolean;
}

export interface FuzzContext {
  /** A valid access token (protected routes get past authentication to validation). */
  token: string;
  refreshToken: string;
  postId: number;
  username: string;
}

/** mulberry32: small, fast, good enough to vary inputs, and the same sequence for the same seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An endpoint and a body it would accept, from which mutations start. */
interface Endpoint {
  method: string;
  path: string;
  body?: Record<string, unknown>;
  auth?: boolean;
}

/** The fuzz user's real password: some login cases succeed, the rest are variations of it. */
const PW = PASSWORD;

/** The public routes (every entry of GATEWAY_ROUTES has at least one), as a client would call them. */
function gatewayEndpoints(ctx: FuzzContext): Endpoint[] {
  const creds = { username: ctx.username, password: PW };
  const signup = { username: "fuzz_new", email: "fuzz_new@example.com", password: PW };
  const post = { title: "Fuzz", content: "Fuzz content", category_name: "Fuzz" };
  const blog = (base: string): Endpoint[] => [
    { method: "GET", path: `${base}/posts?offset=0&limit=5` },
    { method: "GET", path: `${base}/posts/${ctx.postId}` },
    { method: "POST", path: `${base}/posts`, body: post, auth: true },
    { method: "PATCH", path: `${base}/posts/${ctx.postId}`, body: { title: "Fuzzed" }, auth: true },
    { method: "DELETE", path: `${base}/posts/999999`, auth: true },
    { method: "GET", path: `${base}/categories` },
  ];
  return [
    { method: "POST", path: "/api/login", body: creds },
    { method: "POST", path: "/api/auth/login", body: creds },
    { method: "POST", path: "/api/auth/refresh", body: { refresh_token: "not-a-token" } },
    { method: "POST", path: "/api/auth/logout", body: { refresh_token: "not-a-token" } },
    { method: "GET", path: "/api/auth/verify", auth: true },
    { method: "GET", path: "/api/auth/health" },
    { method: "GET", path: "/.well-known/jwks.json" },
    { method: "POST", path: "/api/register", body: signup },
    { method: "GET", path: "/api/users/health" },
    { method: "POST", path: "/api/users", body: signup },
    { method: "GET", path: "/api/users/me", auth: true },
    { method: "PATCH", path: "/api/users/me", body: { email: `${ctx.username}@example.com` }, auth: true },
    { method: "GET", path: `/api/users/${ctx.username}` },
    ...blog("/api").filter((e) => !e.path.startsWith("/api/categories")),
    { method: "GET", path: "/api/categories" },
    ...blog("/blog/api"),
    { method: "GET", path: "/blog/" },
    { method: "GET", path: "/blog/posts/1" },
    { method: "GET", path: "/" },
  ];
}

/** Each service's own routes, called directly (defence in depth: as if the gateway were bypassed). */
function serviceEndpoints(target: Exclude<Target, "gateway">, ctx: FuzzContext): Endpoint[] {
  const ops: Endpoint[] = ["/healthz", "/readyz", "/health", "/stats", "/metrics", "/openapi.json"].map((path) => ({ method: "GET", path }));
  if (target === "user-service")
    return [
      ...ops,
      { method: "POST", path: "/users", body: { username: "fuzz_direct", email: "fuzz_direct@example.com", password: PW } },
      { method: "GET", path: "/users/me", auth: true },
      { method: "PATCH", path: "/users/me", body: { email: `${ctx.username}@example.com` }, auth: true },
      { method: "GET", path: `/users/${ctx.username}` },
      { method: "POST", path: "/internal/verify-credentials", body: { username: ctx.username, password: PW } },
    ];
  if (target === "auth-service")
    return [
      ...ops,
      { method: "POST", path: "/login", body: { username: ctx.username, password: PW } },
      { method: "POST", path: "/auth/refresh", body: { refresh_token: "not-a-token" } },
      { method: "POST", path: "/auth/logout", body: { refresh_token: "not-a-token" } },
      { method: "GET", path: "/verify", auth: true },
      { method: "GET", path: "/.well-known/jwks.json" },
    ];
  return [
    ...ops,
    { method: "GET", path: "/blog/api/posts?limit=3" },
    { method: "GET", path: `/blog/api/posts/${ctx.postId}` },
    { method: "POST", path: "/blog/api/posts", body: { title: "D", content: "Direct", category_name: "Fuzz" }, auth: true },
    { method: "PATCH", path: `/blog/api/posts/${ctx.postId}`, body: { content: "Direct" }, auth: true },
    { method: "GET", path: "/blog/api/categories" },
    { method: "GET", path: "/blog/" },
  ];
}

/**
 * The time-based ones sleep 5 s if they ever reach PostgreSQL as SQL: in a condition (`OR pg_sleep(5)`), a
 * concatenation or a sub-select as well as a stacked statement (which the extended protocol would refuse).
 */
export const SQL_PAYLOADS = [
  "' OR 1=1 --", '"; DROP TABLE posts; --', "%", "_", "\\", "\u0000", "'; SELECT pg_sleep(5); --", "1' AND '1'='1", "admin'--", "$$; --",
  "' OR pg_sleep(5) IS NULL --", "'||pg_sleep(5)||'", "1 AND (SELECT 1 FROM pg_sleep(5)) IS NULL", "') OR (SELECT pg_sleep(5)) IS NULL --",
];
const UNICODE = ["😀💥", "\u202eRTL", "\u200b\u200d", "한국어 텍스트", "\ud800", "\udfff", "e\u0301", "\uffff", "𝕏".repeat(50)];
const WRONG_TYPES: unknown[] = [0, -1, 1e308, 3.14, true, false, null, [], {}, [1, "a"], { $ne: null }, JSON.parse('{"__proto__":{"admin":true}}')];
const METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "TRACE", "PROPFIND", "FOO", "get"];
const QUERIES = [
  "?offset=-1", "?limit=0", "?limit=101", "?limit=abc", "?limit=1e3", "?offset=99999999999999999999", "?offset=1.5",
  "?q=%25", "?q=_", "?q=%ZZ", "?q=%C3%28", "?q=%00", "?q=" + "a".repeat(5000), "?a[]=1&a[]=2", "?__proto__[x]=1",
  "?page=-1&per_page=100000", "?q=%26%7C%21%3A*()%3C-%3E",
  "?limit=1&limit=2", "?&&&==", "?" + "x=1&".repeat(2000), "?q=%F0%9F%98%80", "?q=%ED%A0%80",
];
/** Query strings carrying SQL (time-based ones included): marked `sql`, their answers are timed. */
const SQL_QUERIES = [
  "?category=%27%20OR%201%3D1--", "?author=%22%3B%20DROP%20TABLE%20posts%3B--",
  ...["q", "author", "category", "offset", "limit"].flatMap((param) => [
    `?${param}=${encodeURIComponent("' OR pg_sleep(5) IS NULL --")}`,
    `?${param}=${encodeURIComponent("'||pg_sleep(5)||'")}`,
    `?${param}=${encodeURIComponent("1;SELECT pg_sleep(5)")}`,
  ]),
];
const ID_SEGMENTS = ["0", "-1", "1.5", "1e3", "%00", "%ZZ", "99999999999999999999", "..%2F..%2Fetc%2Fpasswd", "%F0%9F%98%80", "NaN", "0x10", " 1"];
const SQL_ID_SEGMENTS = ["%27%20OR%201%3D1--", "1;DROP", "1%20OR%20pg_sleep(5)%20IS%20NULL", "1%3BSELECT%20pg_sleep(5)", "1%27%7C%7Cpg_sleep(5)%7C%7C%27"];
/** Traversal attempts on the web UI's static files (and a few on the API prefixes). */
export const TRAVERSALS = [
  "/blog/assets/../../etc/passwd", "/blog/assets/../manifest.json", "/blog/assets/%2e%2e/%2e%2e/etc/passwd", "/blog/assets/%2E%2E%2F%2E%2E%2Fpackage.json",
  "/blog/assets/..%2f..%2f..%2fpackage.json", "/blog/assets/x%00.js", "/blog/assets/%00", "/blog/..%2f..%2fpackage.json", "/blog/%2e%2e/%2e%2e/etc/passwd",
  "/blog/assets/....//....//etc/passwd", "/blog/assets/..\\..\\package.json", "/blog/assets/%252e%252e/%252e%252e/etc/passwd", "/blog/assets/..%c0%af..%c0%afetc/passwd",
  "/blog/assets/manifest.json", "/blog/assets/../index.html", "/blog//etc/passwd", "/blog/assets//etc/passwd", "/blog/assets/%2fetc%2fpasswd",
  "/blog/../services/kit/package.json", "/blog/api/../../etc/passwd", "/api/users/..%2f..%2finternal%2fverify-credentials", "/api/posts/%2e%2e/%2e%2e/internal/verify-credentials",
  "/blog/assets/.%2e/.%2e/jwt-private-key.pem", "/blog/assets/app.js%00.png", "/blog/assets/%e0%80%ae%e0%80%ae/etc/passwd",
];

const nested = (depth: number, open: string, close: string) => open.repeat(depth) + close.repeat(depth);

/** The payloads that sleep 5 s if they run as SQL. */
export const SLEEP_PAYLOADS = SQL_PAYLOADS.filter((s) => s.includes("pg_sleep"));

/**
 * Not left to chance: every time-based payload in every body field of every endpoint (gateway and direct),
 * in every filter of the post lists (`q`, `author`, `category`, `offset`, `limit`), and as a post id or
 * username in the path. All marked `sql`: each answer is timed.
 */
function sleepSweep(ctx: FuzzContext): FuzzCase[] {
  const out: FuzzCase[] = [];
  const targets: [Target, Endpoint[]][] = [
    ["gateway", gatewayEndpoints(ctx)],
    ...(["user-service", "auth-service", "blog-service"] as const).map((t): [Target, Endpoint[]] => [t, serviceEndpoints(t, ctx)]),
  ];
  for (const [target, endpoints] of targets) {
    for (const e of endpoints) {
      const headers: Record<string, string> = { "content-type": "application/json", ...(e.auth && { authorization: `Bearer ${ctx.token}` }) };
      const pathname = e.path.split("?")[0]!;
      const one = (path: string, body: Record<string, unknown> | undefined, kind: string) =>
        out.push({ target, method: e.method, path, headers, ...(body && { body: Buffer.from(JSON.stringify(body)) }), kind, sql: true });
      for (const s of SLEEP_PAYLOADS) {
        for (const field of Object.keys(e.body ?? {})) one(e.path, { ...e.body, [field]: s }, `time-based SQL in ${field}`);
        if (e.method === "GET" && pathname.endsWith("/posts"))
          for (const param of ["q", "author", "category", "offset", "limit"]) one(`${pathname}?${param}=${encodeURIComponent(s)}`, undefined, `time-based SQL in ?${param}`);
        if (/\/posts\/\d+$/.test(pathname)) one(pathname.replace(/\d+$/, encodeURIComponent(`1${s}`)), e.body, "time-based SQL in the post id");
        if (pathname.endsWith(`/users/${ctx.username}`)) one(pathname.replace(/[^/]+$/, encodeURIComponent(s)), undefined, "time-based SQL in the username");
      }
    }
  }
  return out;
}

/** Body mutations: each returns the raw body bytes and a label. */
function mutateBody(rand: () => number, base: Record<string, unknown> | undefined): { body: Buffer; kind: string; contentType?: string; sql?: boolean } {
  const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const obj = { ...(base ?? { field: "x" }) };
  const field = pick(Object.keys(obj));
  const r = rand();
  const json = (v: unknown) => Buffer.from(JSON.stringify(v));
  if (r < 0.16) return { body: json({ ...obj, [field]: pick(WRONG_TYPES) }), kind: `wrong type in ${field}` };
  if (r < 0.26) return { body: json({ ...obj, [field]: "A".repeat(pick([1_000, 30_000, 120_000, 300_000])) }), kind: `huge string in ${field}` };
  if (r < 0.42) return { body: json({ ...obj, [field]: pick(SQL_PAYLOADS) + (rand() < 0.5 ? "Aa1!" : "") }), kind: `SQL metacharacters in ${field}`, sql: true };
  if (r < 0.52) return { body: json({ ...obj, [field]: pick(UNICODE) }), kind: `unicode in ${field}` };
  if (r < 0.58) {
    const { [field]: _drop, ...rest } = obj;
    return { body: json({ ...rest, __proto__x: 1, constructor: { prototype: { polluted: true } }, extra: "x".repeat(100) }), kind: `missing ${field}, extra keys` };
  }
  if (r < 0.64) {
    const depth = pick([100, 1_000, 20_000]);
    const raw = JSON.stringify({ ...obj, [field]: "__NEST__" }).replace('"__NEST__"', nested(depth, rand() < 0.5 ? "[" : '{"a":', rand() < 0.5 ? "]" : "}").replace(/\{"a":\]/g, "[]"));
    return { body: Buffer.from(raw), kind: `nested ${depth} deep in ${field}` };
  }
  if (r < 0.7) return { body: Buffer.from(nested(pick([1_000, 50_000]), "[", "]")), kind: "deeply nested array body" };
  if (r < 0.78) {
    // Invalid UTF-8 inside a JSON string, and bytes that are not JSON at all.
    const bad = pick([[0xff, 0xfe], [0xc3, 0x28], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xc0, 0xaf]]);
    const text = JSON.stringify({ ...obj, [field]: "__BAD__" });
    const [a, b] = text.split("__BAD__");
    return { body: Buffer.concat([Buffer.from(a!), Buffer.from(bad), Buffer.from(b!)]), kind: `invalid UTF-8 in ${field}` };
  }
  if (r < 0.9) {
    const raw = pick(["", "{", "}", "{]", '{"a":}', "[1,]", '{"a":1,}', "nul", "null", "true", "[]", '"str"', "1e999", '{"a":1}{"b":2}', "\ufeff{}", "{'a':1}", "NaN", '{"__proto__":{"x":1}}']);
    return { body: Buffer.from(raw), kind: `malformed JSON ${JSON.stringify(raw).slice(0, 20)}` };
  }
  if (r < 0.95) return { body: json(obj), kind: "odd content type", contentType: pick(["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/json; charset=utf-16", "application/xml", "", "application/json\u0001"]) };
  return { body: json(obj), kind: "unchanged body" };
}

export interface GenerateOptions {
  seed: number;
  gatewayCases: number;
  directCasesPerService: number;
  /** Bodies above the gateway's limit (each ~1.5 MiB): kept few, they cost time. */
  oversizedBodies?: number;
  /** Add `sleepSweep`'s cases (default true). */
  sleepSweep?: boolean;
}

/** The fuzz run: deterministic for a seed. */
export function generateCases(ctx: FuzzContext, o: GenerateOptions): FuzzCase[] {
  const rand = prng(o.seed);
  const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const cases: FuzzCase[] = [];
  const one = (target: Target, endpoints: Endpoint[]): FuzzCase => {
    const e = pick(endpoints);
    const headers: Record<string, string> = {};
    if (e.auth && rand() < 0.85) headers.authorization = `Bearer ${ctx.token}`;
    let method = e.method;
    let path = e.path;
    let body: Buffer | undefined;
    let sql = false;
    const kinds: string[] = [];
    const r = rand();
    if (r < 0.1) {
      method = pick(METHODS);
      kinds.push(`method ${method}`);
    } else if (r < 0.22) {
      sql = rand() < 0.3;
      path = path.split("?")[0]! + pick(sql ? SQL_QUERIES : QUERIES);
      kinds.push(`query ${path.slice(path.indexOf("?"), path.indexOf("?") + 30)}`);
    } else if (r < 0.3 && /\/(\d+|[a-z_]+)$/.test(path.split("?")[0]!) && !path.endsWith("/me")) {
      sql = rand() < 0.3;
      path = path.split("?")[0]!.replace(/[^/]+$/, pick(sql ? SQL_ID_SEGMENTS : ID_SEGMENTS));
      kinds.push(`path parameter ${path.slice(path.lastIndexOf("/"))}`);
    } else if (r < 0.36) {
      const h = pick(["huge-header", "bad-auth", "long-auth", "xff", "request-id", "many-headers", "host", "origin", "encoding"]);
      kinds.push(`header ${h}`);
      if (h === "huge-header") headers["x-fuzz"] = "h".repeat(pick([8_000, 20_000]));
      if (h === "bad-auth") headers.authorization = pick(["Bearer", "Bearer ", "Basic YWRtaW46YWRtaW4=", "Bearer a.b.c", "Bearer eyJhbGciOiJub25lIn0.e30.", "bearer  x y", "Bearer \u00ff\u00fe"]);
      if (h === "long-auth") headers.authorization = `Bearer ${"x".repeat(pick([2_000, 12_000]))}`;
      if (h === "xff") headers["x-forwarded-for"] = pick(["1.2.3.4", "not-an-ip", "::1, 10.0.0.1, evil", "1.1.1.1,".repeat(300), ""]);
      if (h === "request-id") headers["x-request-id"] = pick(["", "x".repeat(4_000), "<script>", "../../", "\u00e9"]);
      if (h === "many-headers") for (let i = 0; i < 150; i++) headers[`x-f${i}`] = String(i);
      if (h === "host") headers.host = pick(["evil.example", "", "a".repeat(300), "[::1]:99999"]);
      if (h === "origin") headers.origin = pick(["https://evil.example", "null", "http://127.0.0.1:1"]);
      if (h === "encoding") headers["accept-encoding"] = pick(["br;q=abc", "*;q=0", "gzip".repeat(500)]);
    }
    const bodyMethod = method !== "GET" && method !== "HEAD" && method.toUpperCase() !== "GET";
    if (bodyMethod && (e.body || rand() < 0.3)) {
      const m = mutateBody(rand, e.body);
      body = m.body;
      sql ||= !!m.sql;
      kinds.push(m.kind);
      headers["content-type"] = m.contentType ?? "application/json";
      if (m.contentType === "") delete headers["content-type"];
    }
    return { target, method, path, headers, ...(body && { body }), ...(sql && { sql }), kind: kinds.join("; ") || "plain" };
  };

  const gw = gatewayEndpoints(ctx);
  for (let i = 0; i < o.gatewayCases; i++) cases.push(one("gateway", gw));
  for (const t of ["user-service", "auth-service", "blog-service"] as const) {
    const eps = serviceEndpoints(t, ctx);
    for (let i = 0; i < o.directCasesPerService; i++) cases.push(one(t, eps));
  }
  for (const path of TRAVERSALS) {
    cases.push({ target: "gateway", method: "GET", path, headers: {}, kind: "path traversal", traversal: true });
    cases.push({ target: "blog-service", method: "GET", path, headers: {}, kind: "path traversal (direct)", traversal: true });
  }
  if (o.sleepSweep ?? true) cases.push(...sleepSweep(ctx));
  for (let i = 0; i < (o.oversizedBodies ?? 4); i++) {
    const body = Buffer.from(JSON.stringify({ title: "x".repeat(1_500_000), content: "c", category_name: "c" }));
    cases.push({ target: "gateway", method: "POST", path: "/api/posts", headers: { "content-type": "application/json", authorization: `Bearer ${ctx.token}` }, body, kind: "body over the gateway limit" });
  }
  // Shuffle (Fisher-Yates, same PRNG) so the expensive cases are spread over the run.
  for (let i = cases.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [cases[i], cases[j]] = [cases[j]!, cases[i]!];
  }
  return cases;
}

/** The public route a gateway path falls under (for coverage), by the gateway's own table. */
export function gatewayRouteOf(path: string): string | undefined {
  const pathname = path.split("?")[0]!;
  return GATEWAY_ROUTES.find((r) => r.map(pathname) !== undefined)?.route;
}

export interface RawReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  /** Network error, when status is 0. */
  error?: string;
  /** From sending the request to the end of the answer (or the error). */
  ms: number;
}

/** Sends one case exactly as built; resolves (never rejects) with status 0 on a network error or timeout. */
export function sendRaw(port: number, c: FuzzCase, timeoutMs = 15_000): Promise<RawReply> {
  return new Promise((resolve) => {
    let done = false;
    const started = performance.now();
    const finish = (r: Omit<RawReply, "ms">) => {
      if (!done) {
        done = true;
        resolve({ ...r, ms: Math.round(performance.now() - started) });
      }
    };
    const headers: Record<string, string> = { connection: "close", ...c.headers };
    if (c.body) headers["content-length"] = String(c.body.length);
    let req: ReturnType<typeof request>;
    try {
      req = request({ host: "127.0.0.1", port, method: c.method, path: c.path, headers, timeout: timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (d: Buffer) => chunks.push(d));
        res.on("end", () => finish({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on("error", (err) => finish({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), error: err.message }));
      });
    } catch (err) {
      // The client itself refuses some inputs (e.g. a header value it cannot send): nothing reached the server.
      finish({ status: -1, headers: {}, body: Buffer.alloc(0), error: (err as Error).message });
      return;
    }
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", (err) => finish({ status: 0, headers: {}, body: Buffer.alloc(0), error: err.message }));
    if (c.body) req.write(c.body);
    req.end();
  });
}
