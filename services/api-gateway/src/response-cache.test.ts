import { createServer, type Server } from "node:http";
import { gunzipSync, gzipSync } from "node:zlib";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BLOG_CACHE_GENERATION_KEY, createRedis, type Redis } from "@titanium/kit";
import { ResponseCache } from "./response-cache.js";
import { startGatewayTestBed, type GatewayTestBed } from "./test-bed.js";

// The gateway's micro-cache against a real Redis and a real upstream that counts what reaches it.
let upstream: Server;
let base: string;
let hits = 0;
let offer: string | undefined = "max-age=60";
let bed: GatewayTestBed;
let redis: Redis;

beforeAll(async () => {
  upstream = createServer((req, res) => {
    hits++;
    if (req.url?.includes("gz=1")) {
      // The blog's precompressed assets: encoded when asked, with Vary (its CORS Origin included).
      const gz = /\bgzip\b/.test(String(req.headers["accept-encoding"]));
      res.setHeader("vary", "Origin, Accept-Encoding");
      if (offer) res.setHeader("surrogate-control", offer);
      if (gz) res.setHeader("content-encoding", "gzip");
      res.end(gz ? gzipSync(JSON.stringify({ n: hits })) : JSON.stringify({ n: hits }));
      return;
    }
    res.setHeader("content-type", "application/json");
    res.setHeader("x-total-count", "7");
    res.setHeader("cache-control", "no-store");
    if (offer) res.setHeader("surrogate-control", offer);
    res.end(JSON.stringify({ n: hits, url: req.url }));
  });
  await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", () => r()));
  base = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  bed = await startGatewayTestBed();
  redis = bed.redis;
});
afterAll(async () => {
  upstream?.close();
  await bed?.stop();
});

/** A generation read the way the gateway's admission reads it: the epoch first, then the value. */
async function readTicket(cache: ResponseCache, client: Redis) {
  const epoch = cache.epochForRead();
  if (epoch === undefined) throw new Error("cache not readable");
  return cache.ticket(epoch, await client.get(BLOG_CACHE_GENERATION_KEY));
}

const gateway = (maxAgeMs = 5000) => bed.gateway(base, { peerAddress: () => "198.51.100.200", rateLimitScale: 1000, responseCache: { maxEntries: 100, maxAgeMs } });
const get = async (gw: ReturnType<typeof gateway>, path: string, headers: Record<string, string> = {}) => {
  const res = await gw.request(path, { headers });
  return { status: res.status, cache: res.headers.get("x-cache"), total: res.headers.get("x-total-count"), body: (await res.json()) as { n: number } };
};

describe("gateway micro-cache (anonymous blog reads, filed under the blog's generation)", () => {
  it("answers a repeated anonymous list read without the upstream, headers and body intact, until a write bumps the generation", async () => {
    const gw = gateway();
    await redis.set(BLOG_CACHE_GENERATION_KEY, "41");
    const first = await get(gw, "/api/posts?limit=5");
    const second = await get(gw, "/api/posts?limit=5");
    expect(first.cache).toBeNull();
    expect(second).toMatchObject({ status: 200, cache: "HIT", total: "7", body: first.body });
    // Clients see the upstream's no-store, never the offer meant for the gateway.
    const raw = await gw.request("/api/posts?limit=5");
    expect([raw.headers.get("cache-control"), raw.headers.get("surrogate-control")]).toEqual(["no-store", null]);
    // Another query is another entry; the blog's own path shares the entry of its alias.
    expect((await get(gw, "/api/posts?limit=6")).body.n).not.toBe(first.body.n);
    expect((await get(gw, "/blog/api/posts?limit=5")).body).toEqual(first.body);
    // A write (the blog bumps its generation before it answers) makes the next read go through.
    await redis.incr(BLOG_CACHE_GENERATION_KEY);
    const after = await get(gw, "/api/posts?limit=5");
    expect(after.cache).toBeNull();
    expect(after.body.n).toBeGreaterThan(first.body.n);
  });

  it("never serves authenticated requests, writes, uncacheable routes, or answers the upstream marks private", async () => {
    const gw = gateway();
    const token = await bed.tokens.sign({ id: 5, username: "erin" });
    const auth = { authorization: `Bearer ${token}` };
    await get(gw, "/api/posts/3");
    expect((await get(gw, "/api/posts/3", auth)).cache).toBeNull();
    const before = hits;
    await gw.request("/api/users/erin");
    await gw.request("/api/users/erin");
    expect(hits - before).toBe(2);
    // An answer the upstream did not offer (no Surrogate-Control) is not kept.
    offer = undefined;
    try {
      await get(gw, "/api/categories?x=1");
      expect((await get(gw, "/api/categories?x=1")).cache).toBeNull();
    } finally {
      offer = "max-age=60";
    }
  });

  it("passes compression through (Accept-Encoding up, Content-Encoding and Vary back) and keeps no encoded answer", async () => {
    const gw = gateway();
    const res = await gw.request("/api/posts?gz=1", { headers: { "accept-encoding": "gzip, br" } });
    expect([res.status, res.headers.get("content-encoding"), res.headers.get("vary")]).toEqual([200, "gzip", "Origin, Accept-Encoding"]);
    const first = JSON.parse(gunzipSync(Buffer.from(await res.arrayBuffer())).toString()) as { n: number };
    const again = await gw.request("/api/posts?gz=1", { headers: { "accept-encoding": "gzip, br" } });
    expect(again.headers.get("x-cache")).toBeNull();
    expect((JSON.parse(gunzipSync(Buffer.from(await again.arrayBuffer())).toString()) as { n: number }).n).toBeGreaterThan(first.n);
    // A client that asks for nothing gets identity, never someone else's gzip.
    const plain = await gw.request("/api/posts?gz=1");
    expect([plain.headers.get("content-encoding"), typeof ((await plain.json()) as { n: number }).n]).toEqual([null, "number"]);
  });

  it("bounds staleness by age even if a bump were lost, and bypasses itself when Redis is not ready", async () => {
    // One second of life: long enough for the HIT to come back on a busy machine, short enough to wait out.
    const gw = gateway(1000);
    await get(gw, "/api/posts?limit=9");
    expect((await get(gw, "/api/posts?limit=9")).cache).toBe("HIT");
    await new Promise((r) => setTimeout(r, 1100));
    expect((await get(gw, "/api/posts?limit=9")).cache).toBeNull();

    const down = createRedis({ url: "redis://127.0.0.1:1" });
    const cache = new ResponseCache(down, { generationKey: BLOG_CACHE_GENERATION_KEY, maxEntries: 10, maxAgeMs: 1000 });
    expect(cache.epochForRead()).toBeUndefined();
    down.disconnect();
  });

  it("drops every entry when the admission's Redis command fails (the generation could not be read with it)", async () => {
    const gw = bed.gateway(base, { peerAddress: () => "198.51.100.201", rateLimitScale: 1000, responseCache: { maxEntries: 100, maxAgeMs: 60_000 } });
    await get(gw, "/api/posts?limit=11");
    expect((await get(gw, "/api/posts?limit=11")).cache).toBe("HIT");
    // A rate-limit cell that is not a number makes the limiter's script fail: the limiter falls back to
    // process memory, and the micro-cache, which cannot know the generation, serves nothing and forgets all.
    await redis.set("rl:global:ip:198.51.100.201", "not-a-number");
    expect((await get(gw, "/api/posts?limit=11")).cache).toBeNull();
    await redis.del("rl:global:ip:198.51.100.201");
    const after = await get(gw, "/api/posts?limit=11");
    expect(after.cache).toBeNull();
    expect((await get(gw, "/api/posts?limit=11")).cache).toBe("HIT");
  });

  it("keeps at most maxEntries and maxTotalBytes, drops everything when Redis closes, and stores nothing read before that", async () => {
    const own = createRedis({ url: bed.redisUrl });
    await new Promise((r) => own.once("ready", r));
    const cache = new ResponseCache(own, { generationKey: BLOG_CACHE_GENERATION_KEY, maxEntries: 2, maxAgeMs: 60_000, maxTotalBytes: 1000 });
    const headers = { "content-type": "application/json", date: "Mon, 01 Jan 2024 00:00:00 GMT", "surrogate-control": "max-age=9" };
    const res = { headers, body: Buffer.from("[]") };
    const t = await readTicket(cache, own);
    for (const k of ["a", "b", "c"]) cache.set(k, t, 200, res);
    expect([cache.get("a", t), cache.get("b", t) !== undefined, cache.get("c", t)?.headers]).toEqual([undefined, true, { "content-type": "application/json" }]);
    cache.set("d", t, 404, res);
    expect(cache.get("d", t)).toBeUndefined();
    // Junk query strings cannot pile up bodies past the byte budget (bodies live outside V8's heap).
    cache.set("big1", t, 200, { headers, body: Buffer.alloc(600) });
    cache.set("big2", t, 200, { headers, body: Buffer.alloc(600) });
    expect([cache.get("big1", t), cache.get("big2", t) !== undefined, cache.totalBytes <= 1000]).toEqual([undefined, true, true]);
    // A generation read before the connection dropped may predate a write whose bump is still owed.
    const before = await readTicket(cache, own);
    own.disconnect();
    await new Promise((r) => setTimeout(r, 20));
    expect([cache.size, cache.totalBytes]).toEqual([0, 0]);
    cache.set("late", before, 200, res);
    expect(cache.get("late", before)).toBeUndefined();
  });
});
