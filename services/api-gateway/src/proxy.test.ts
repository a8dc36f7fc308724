import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, describe, expect, it } from "vitest";
import { freePort } from "@titanium/kit/local";
import { UpstreamPool } from "@titanium/kit";
import { UpstreamError, foreignFailure, forward, type UpstreamResponse } from "./proxy.js";

/** Real upstream instances on free ports; each answers with its name and counts what it received. */
const servers: Server[] = [];
async function instance(name: string, handle?: (req: IncomingMessage, res: ServerResponse) => void) {
  const seen: string[] = [];
  const server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    req.resume();
    req.on("end", () => {
      if (handle) return handle(req, res);
      if (req.url === "/readyz") return res.end("{}");
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ name }));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  servers.push(server);
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, server };
}
afterAll(() => {
  for (const s of servers) {
    s.closeAllConnections();
    s.close();
  }
});

const send = (pool: UpstreamPool, method: string, path = "/x", timeoutMs = 2000) =>
  forward({ pool, path, method, headers: {}, body: method === "GET" ? undefined : new TextEncoder().encode("{}"), clientChain: "127.0.0.1", proto: "http", host: undefined, requestId: "t", timeoutMs });
const nameOf = (r: UpstreamResponse) => (JSON.parse(Buffer.from(r.body as Uint8Array).toString()) as { name: string }).name;

describe("upstream instances", () => {
  it("passes on no header a Connection header names, in either direction (hop-by-hop, RFC 9110 7.6.1), nor a client's Envoy control headers", async () => {
    let received: IncomingMessage["headers"] = {};
    const up = await instance("hop", (req, res) => {
      received = req.headers;
      res.setHeader("connection", "keep-alive, x-upstream-secret");
      res.setHeader("x-upstream-secret", "s");
      res.setHeader("x-kept", "k");
      res.end("{}");
    });
    const pool = new UpstreamPool([up.url], { probe: false });
    const res = await forward({
      pool,
      path: "/x",
      method: "GET",
      headers: { connection: "keep-alive, X-Hop-Secret", "x-hop-secret": "leaked", "x-other": "o", "x-envoy-retry-on": "5xx", "x-envoy-upstream-rq-timeout-ms": "600000" },
      body: undefined,
      clientChain: "127.0.0.1",
      proto: "http",
      host: undefined,
      requestId: "t",
      timeoutMs: 2000,
    });
    expect(received["x-hop-secret"]).toBeUndefined();
    expect(received["x-other"]).toBe("o");
    // A client's Envoy control headers never reach the gateway's sidecar (a retried POST, a stretched timeout).
    expect(Object.keys(received).filter((k) => k.startsWith("x-envoy-"))).toEqual([]);
    expect(res.headers["x-upstream-secret"]).toBeUndefined();
    expect(res.headers["x-kept"]).toBe("k");
  });

  it("alternates between instances (round-robin)", async () => {
    const [a, b] = await Promise.all([instance("a"), instance("b")]);
    const pool = new UpstreamPool([a.url, b.url], { probe: false });
    const names = [];
    for (let i = 0; i < 4; i++) names.push(nameOf(await send(pool, "GET")));
    expect(names.sort()).toEqual(["a", "a", "b", "b"]);
  });

  it("sends a POST to another instance when one refuses the connection, and skips the refusing one afterwards", async () => {
    const live = await instance("live");
    const dead = `http://127.0.0.1:${await freePort()}`;
    const pool = new UpstreamPool([dead, live.url], { probe: false });
    for (let i = 0; i < 4; i++) expect(nameOf(await send(pool, "POST"))).toBe("live");
    expect(live.seen.filter((s) => s.startsWith("POST"))).toHaveLength(4);
    expect(pool.instances[0]!.ejectedUntil).toBeGreaterThan(Date.now());
  });

  it("never sends a POST twice after a reset, but retries a GET elsewhere", async () => {
    const reset = await instance("reset", (req) => req.socket.destroy());
    const ok = await instance("ok");
    const pool = new UpstreamPool([reset.url, ok.url], { probe: false });
    await expect(send(pool, "POST")).rejects.toBeInstanceOf(UpstreamError);
    expect(reset.seen).toEqual(["POST /x"]);
    expect(ok.seen).toEqual([]);
    reset.seen.length = 0;
    pool.instances[0]!.ejectedUntil = 0;
    // The pool's turn is now on `ok`; make it `reset` again so the GET meets the reset first.
    expect(nameOf(await send(pool, "GET"))).toBe("ok");
    const get = await send(pool, "GET");
    expect(nameOf(get)).toBe("ok");
    expect(reset.seen).toEqual(["GET /x"]);
  });

  it("stops picking an instance that answers Connection: close (draining) until its readiness probe says ready", async () => {
    let draining = true;
    const drainer = await instance("drainer", (req, res) => {
      if (req.url === "/readyz") {
        res.statusCode = draining ? 503 : 200;
        return res.end();
      }
      if (draining) res.setHeader("connection", "close");
      res.end(JSON.stringify({ name: "drainer" }));
    });
    const other = await instance("other");
    const pool = new UpstreamPool([drainer.url, other.url]);
    try {
      const first = await send(pool, "GET");
      expect(nameOf(first)).toBe("drainer");
      for (let i = 0; i < 6; i++) expect(nameOf(await send(pool, "GET"))).toBe("other");
      draining = false;
      // A probe round sees it ready (every 500 ms; polled, so a stalled probe on a busy machine only waits).
      await expect.poll(() => pool.instances[0]!.ejectedUntil, { timeout: 10_000 }).toBe(0);
      const names = new Set<string>();
      for (let i = 0; i < 4; i++) names.add(nameOf(await send(pool, "GET")));
      expect(names).toEqual(new Set(["drainer", "other"]));
    } finally {
      pool.stop();
    }
  });

  it("answers with a timeout, in time, when an upstream sends its headers and then drips or stalls (never a late or cut 200)", async () => {
    const upstreams = {
      // No content-length (chunked): one byte every 100 ms, for far longer than the timeout.
      dripping: await instance("dripping", (_req, res) => {
        res.writeHead(200, { "content-type": "text/plain" });
        const tick = setInterval(() => (res.writableEnded ? clearInterval(tick) : res.write("x")), 100);
        res.once("close", () => clearInterval(tick));
      }),
      silent: await instance("silent", (_req, res) => {
        res.writeHead(200, { "content-type": "text/plain" });
        res.write("partial");
      }),
      // Sized, but the body never completes.
      sized: await instance("sized", (_req, res) => {
        res.writeHead(200, { "content-type": "application/json", "content-length": "100" });
        res.write("{");
      }),
    };
    for (const [name, up] of Object.entries(upstreams)) {
      const started = Date.now();
      const err = await send(new UpstreamPool([up.url], { probe: false }), "GET", "/x", 400).catch((e: unknown) => e);
      expect(err, name).toBeInstanceOf(UpstreamError);
      expect((err as UpstreamError).kind, name).toBe("timeout");
      expect(Date.now() - started, name).toBeLessThan(2_000);
    }
  });

  it("streams an unsized answer larger than the fast path whole, and cuts one that goes silent midway", async () => {
    const big = Buffer.alloc(3 * 1024 * 1024, "a");
    const whole = await instance("whole", (_req, res) => {
      res.writeHead(200, { "content-type": "text/plain" }); // no content-length
      res.end(big);
    });
    const res = await send(new UpstreamPool([whole.url], { probe: false }), "GET", "/x", 2_000);
    expect(res.body).toBeInstanceOf(ReadableStream);
    expect(Buffer.from(await new Response(res.body as ReadableStream<Uint8Array>).arrayBuffer()).equals(big)).toBe(true);

    const staller = await instance("staller", (_req, res) => {
      res.writeHead(200, { "content-type": "text/plain" });
      res.write(big); // past the fast path, then silence
    });
    const started = Date.now();
    const streamed = await send(new UpstreamPool([staller.url], { probe: false }), "GET", "/x", 500);
    const reader = (streamed.body as ReadableStream<Uint8Array>).getReader();
    await expect(
      (async () => {
        for (;;) if ((await reader.read()).done) return;
      })(),
    ).rejects.toThrow();
    expect(Date.now() - started).toBeLessThan(3_000);
  });
});

describe("which upstream 5xx the gateway answers itself (foreignFailure)", () => {
  const json = { "content-type": "application/json" };
  const answer = (status: number, headers: Record<string, string>, body: Uint8Array | ReadableStream<Uint8Array> | null): UpstreamResponse => ({ status, headers, body });
  const bytes = (v: unknown) => new TextEncoder().encode(typeof v === "string" ? v : JSON.stringify(v));

  it("lets the services' own envelope and every non-5xx through; judges anything else by status, type and shape, never reading a streamed body", () => {
    const envelope = { error: "ServiceUnavailable", message: "a dependency is unavailable, retry shortly", status_code: 503, request_id: "r" };
    expect(foreignFailure(answer(503, { "content-type": "application/json; charset=UTF-8" }, bytes(envelope)), "GET")).toBeUndefined();
    expect(foreignFailure(answer(503, json, null), "HEAD")).toBeUndefined();
    expect(foreignFailure(answer(404, { "content-type": "text/plain" }, bytes("no route")), "GET")).toBeUndefined();
    expect(foreignFailure(answer(503, { "content-type": "text/plain" }, bytes("no healthy upstream")), "GET")).toEqual({ status: 503, neverSent: true, said: "no healthy upstream" });
    // JSON, but not the envelope (another shape, another status in it, no body, not JSON at all).
    expect(foreignFailure(answer(503, json, bytes({ oops: true })), "GET")?.status).toBe(503);
    expect(foreignFailure(answer(503, json, bytes({ ...envelope, status_code: 500 })), "GET")?.status).toBe(503);
    expect(foreignFailure(answer(500, json, null), "POST")?.status).toBe(502);
    expect(foreignFailure(answer(502, json, bytes("<html>")), "GET")?.status).toBe(502);
    expect(foreignFailure(answer(504, { "content-type": "text/plain" }, bytes("upstream request timeout")), "GET")).toMatchObject({ status: 504, neverSent: false });
    // A streamed (large) body is not an envelope and is not read to find out.
    let pulled = 0;
    const stream = new ReadableStream<Uint8Array>({ pull: () => void pulled++ }, { highWaterMark: 0 });
    expect(foreignFailure(answer(503, json, stream), "GET")).toMatchObject({ status: 503, said: "" });
    expect(pulled).toBe(0);
    // An envelope-sized limit: a huge JSON body is not parsed.
    expect(foreignFailure(answer(503, json, bytes({ ...envelope, message: "x".repeat(20_000) })), "GET")?.status).toBe(503);
  });

  it("knows Envoy's replies for a request it never sent (no endpoint, no connection, its pool full) from one cut after it was sent", () => {
    const text = { "content-type": "text/plain" };
    const neverSent = (said: string) => foreignFailure(answer(503, text, bytes(said)), "POST")!.neverSent;
    expect(neverSent("no healthy upstream")).toBe(true);
    expect(neverSent("upstream connect error or disconnect/reset before headers. reset reason: connection failure")).toBe(true);
    expect(neverSent("upstream connect error or disconnect/reset before headers. retried and the latest reset reason: remote connection failure, transport failure reason: delayed connect error: 111")).toBe(true);
    expect(neverSent("upstream connect error or disconnect/reset before headers. reset reason: overflow")).toBe(true);
    expect(neverSent("upstream connect error or disconnect/reset before headers. reset reason: connection termination")).toBe(false);
    expect(neverSent("upstream connect error or disconnect/reset before headers. reset reason: remote reset")).toBe(false);
  });
});
