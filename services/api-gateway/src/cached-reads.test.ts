import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BLOG_CACHE_GENERATION_KEY, Lifecycle, Metrics, startServer, type RunningServer } from "@titanium/kit";
import { memoryLogger } from "@titanium/kit/testing";
import type { GatewayDeps } from "./app.js";
import { GLOBAL_LIMIT, RATE_LIMITS } from "./routes.js";
import { startGatewayTestBed, type GatewayTestBed } from "./test-bed.js";

// The shortcut in front of the gateway's app (cached-reads.ts), through real sockets: what it answers must
// be what the app would have answered, and what it hands on must be charged once.
let upstream: Server;
let base: string;
let hits = 0;
let bed: GatewayTestBed;
const servers: RunningServer[] = [];

beforeAll(async () => {
  upstream = createServer((req, res) => {
    hits++;
    res.setHeader("content-type", "application/json");
    res.setHeader("x-total-count", "3");
    res.setHeader("cache-control", "no-store");
    res.setHeader("content-security-policy", "default-src 'none'; frame-ancestors 'none'");
    res.setHeader("surrogate-control", "max-age=60");
    res.end(JSON.stringify({ n: hits, url: req.url }));
  });
  await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", () => r()));
  base = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  bed = await startGatewayTestBed();
});
afterAll(async () => {
  await Promise.all(servers.map((s) => s.shutdown()));
  upstream?.close();
  await bed?.stop();
});

interface Served {
  url: string;
  /** Requests the Hono app saw. */
  appCalls: () => number;
  lifecycle: Lifecycle;
  metrics: Metrics;
  logLines: () => Record<string, unknown>[];
}

/** A gateway on a real port, with the shortcut in front (as server.ts runs it) or the app alone. */
async function serve(withShortcut: boolean, overrides: Partial<GatewayDeps> = {}): Promise<Served> {
  const lifecycle = new Lifecycle();
  const metrics = new Metrics("api-gateway", { processMetrics: false });
  const log = memoryLogger("api-gateway");
  const { app, shortcut } = bed.gatewayParts(base, {
    lifecycle,
    metrics,
    logger: log.logger,
    allowedOrigins: ["https://blog.example"],
    rateLimitScale: 1000,
    ...overrides,
  });
  let calls = 0;
  const running = await startServer({
    fetch: (req, env) => {
      calls++;
      return app.fetch(req, env);
    },
    ...(withShortcut && { shortcut }),
    port: 0,
    host: "127.0.0.1",
    logger: log.logger,
    lifecycle,
    graceMs: 100,
  });
  servers.push(running);
  return { url: `http://127.0.0.1:${running.port}`, appCalls: () => calls, lifecycle, metrics, logLines: log.lines };
}

/** Status, body and headers, minus the ones that differ on every answer. */
async function answer(url: string, headers: Record<string, string> = {}) {
  const res = await fetch(url, { headers });
  const h = Object.fromEntries([...res.headers].filter(([k]) => k !== "date" && k !== "x-request-id" && k !== "keep-alive"));
  return { status: res.status, body: await res.text(), headers: h, requestId: res.headers.get("x-request-id") };
}

describe("cached reads answered before the app (the gateway's hottest path)", () => {
  it("answers a hit exactly as the app would (status, body, every header, CORS), without reaching the app", async () => {
    await bed.redis.set(BLOG_CACHE_GENERATION_KEY, "100");
    const fast = await serve(true);
    const slow = await serve(false);
    for (const origin of [{}, { origin: "https://blog.example" }, { origin: "https://evil.example" }] as Record<string, string>[]) {
      const path = `/blog/api/posts?limit=4&o=${Object.values(origin).length}`;
      // The first read of each fills its own cache through the app; the second is a hit.
      const [fastFirst, slowFirst] = [await answer(fast.url + path, origin), await answer(slow.url + path, origin)];
      const calls = fast.appCalls();
      const [viaShortcut, viaApp] = [await answer(fast.url + path, origin), await answer(slow.url + path, origin)];
      expect(fast.appCalls()).toBe(calls);
      expect(viaShortcut.headers["x-cache"]).toBe("HIT");
      expect(viaShortcut.headers).toEqual(viaApp.headers);
      expect([viaShortcut.status, viaShortcut.body, viaApp.status, viaApp.body]).toEqual([200, fastFirst.body, 200, slowFirst.body]);
    }
    // The caller's well-formed request id is kept, as the app keeps it; a fresh one otherwise.
    expect((await answer(`${fast.url}/blog/api/posts?limit=4&o=0`, { "x-request-id": "trace-42" })).requestId).toBe("trace-42");
    expect((await answer(`${fast.url}/blog/api/posts?limit=4&o=0`)).requestId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("records the RED metrics and the access line of every hit, and says Connection: close while draining", async () => {
    const fast = await serve(true);
    await fetch(`${fast.url}/api/posts/9`);
    const hit = await fetch(`${fast.url}/api/posts/9`);
    expect(hit.headers.get("x-cache")).toBe("HIT");
    const metrics = await fast.metrics.registry.getSingleMetricAsString("http_requests_total");
    expect(metrics).toContain('route="/api/posts",status="200"} 2');
    const access = fast.logLines().filter((l) => l.msg === "request");
    expect(access.map((l) => [l.route, l.status, l.method])).toEqual([
      ["/api/posts", 200, "GET"],
      ["/api/posts", 200, "GET"],
    ]);
    expect(access[1]!.request_id).toBe(hit.headers.get("x-request-id"));
    fast.lifecycle.draining = true;
    const draining = await fetch(`${fast.url}/api/posts/9`);
    expect([draining.headers.get("x-cache"), draining.headers.get("connection")]).toEqual(["HIT", "close"]);
  });

  it("charges the rate limit once per request, hit or handed on, and leaves refusals to the app's 429 envelope", async () => {
    const fast = await serve(true, { rateLimitScale: 1 });
    await bed.redis.set(BLOG_CACHE_GENERATION_KEY, "200");
    const key = (rule: string) => `rl:${rule}:ip:127.0.0.1`;
    const tat = async (rule: string) => Number(await bed.redis.get(key(rule)));
    const steps = async (label: string, request: () => Promise<Response>) => {
      const [g0, l0] = [await tat(GLOBAL_LIMIT.name), await tat(RATE_LIMITS.postsList.name)];
      const res = await request();
      await res.arrayBuffer();
      return { label, cache: res.headers.get("x-cache"), global: (await tat(GLOBAL_LIMIT.name)) - g0, list: (await tat(RATE_LIMITS.postsList.name)) - l0 };
    };
    // Each charge moves a rule's theoretical arrival time (TAT) by exactly one interval while the TAT is
    // ahead of the clock: both start well inside their bursts, seconds ahead, so a slow machine cannot
    // let them fall behind during the test.
    const globalMs = (GLOBAL_LIMIT.periodSeconds * 1000) / GLOBAL_LIMIT.limit;
    const listMs = (RATE_LIMITS.postsList.periodSeconds * 1000) / RATE_LIMITS.postsList.limit;
    const [sec, micro] = await bed.redis.time();
    const now = Number(sec) * 1000 + Math.floor(Number(micro) / 1000);
    await bed.redis.set(key(GLOBAL_LIMIT.name), String(now + (GLOBAL_LIMIT.burst! - 10) * globalMs), "PX", 60_000);
    await bed.redis.set(key(RATE_LIMITS.postsList.name), String(now + 30_000), "PX", 120_000);
    await fetch(`${fast.url}/blog/api/posts?page=2`).then((r) => r.arrayBuffer());
    const hit = await steps("hit", () => fetch(`${fast.url}/blog/api/posts?page=2`));
    await bed.redis.incr(BLOG_CACHE_GENERATION_KEY); // a write: the stored entry is stale, the shortcut hands on
    const stale = await steps("stale", () => fetch(`${fast.url}/blog/api/posts?page=2`));
    expect(hit).toEqual({ label: "hit", cache: "HIT", global: globalMs, list: listMs });
    expect(stale).toEqual({ label: "stale", cache: null, global: globalMs, list: listMs });

    // A client over its limit gets the app's 429 in the envelope even when the answer is cached.
    const tight = await serve(true, { rateLimitScale: 0.02 });
    await fetch(`${tight.url}/api/categories`);
    let refused: Response | undefined;
    for (let i = 0; i < 5 && !refused; i++) {
      const res = await fetch(`${tight.url}/api/categories`);
      if (res.status === 429) refused = res;
      else await res.arrayBuffer();
    }
    expect(refused?.headers.get("retry-after")).toMatch(/^\d+$/);
    expect(await refused?.json()).toMatchObject({ status_code: 429, error: "TooManyRequests" });
  });

  it("leaves to the app what it would read differently: escapes, dot segments, odd queries, odd hosts, credentials, other methods", async () => {
    const fast = await serve(true);
    // Sent byte for byte (fetch would normalise them first).
    const raw = (path: string, headers: Record<string, string> = {}) =>
      new Promise<[number | undefined, string | undefined]>((resolve, reject) =>
        request(fast.url + "/", { path, headers }, (res) => {
          res.resume();
          res.on("end", () => resolve([res.statusCode, res.headers["x-cache"] as string | undefined]));
        })
          .on("error", reject)
          .end(),
      );
    const paths = ["/blog/api/posts?q=a'b", "/blog/api/posts?q=\"x\"", "/blog/api/./posts", "/blog/api/posts/%37"];
    for (const p of paths) await raw(p);
    const token = await bed.tokens.sign({ id: 8, username: "hana" });
    const before = fast.appCalls();
    const again = [];
    for (const p of paths) again.push(await raw(p));
    // Still served from the micro-cache, but by the app: the same entries, read the app's way.
    expect(again).toEqual(paths.map(() => [200, "HIT"]));
    await fetch(`${fast.url}/blog/api/posts?page=3`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.arrayBuffer());
    await fetch(`${fast.url}/blog/api/posts?page=3`, { method: "HEAD" });
    expect(fast.appCalls() - before).toBe(paths.length + 2);
    // A Host the adapter would not take as it is: the adapter's answer (its 400 in the envelope), not a hit.
    await raw("/blog/api/posts?page=3");
    expect(await raw("/blog/api/posts?page=3")).toEqual([200, "HIT"]);
    expect(await raw("/blog/api/posts?page=3", { host: "bad host" })).toEqual([400, undefined]);
    expect(await raw("/blog/api/posts?page=3", { host: "localhost:70000" })).toEqual([400, undefined]);
    // Any valid port is the shortcut's (the adapter's own quick test stops at 59999; its parsing takes the rest).
    const highPort = fast.appCalls();
    expect(await raw("/blog/api/posts?page=3", { host: "localhost:60999" })).toEqual([200, "HIT"]);
    expect(fast.appCalls()).toBe(highPort);
    // What the app's URL parsing leaves as it is (escapes in the query) is the shortcut's again.
    await raw("/blog/api/posts?q=%22x%22");
    const plain = fast.appCalls();
    expect(await raw("/blog/api/posts?q=%22x%22")).toEqual([200, "HIT"]);
    expect(fast.appCalls()).toBe(plain);
  });
});
