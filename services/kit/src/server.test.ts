import { spawn } from "node:child_process";
import { type IncomingHttpHeaders, request } from "node:http";
import { connect } from "node:net";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { Hono } from "hono";
import { Lifecycle, RECEIVED_AT, createServiceApp } from "./app.js";
import { Metrics } from "./metrics.js";
import { memoryLogger } from "./testing/index.js";
import { startServer } from "./server.js";
import { SERVICE_MAX_HEADER_BYTES } from "./security.js";

const fixture = fileURLToPath(new URL("./testing/slow-server.ts", import.meta.url));

function startFixture(env: Record<string, string>) {
  const child = spawn(process.execPath, ["--import", "tsx", fixture], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const lines: string[] = [];
  const port = new Promise<number>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on("line", (l) => {
      lines.push(l);
      const m = /"listening":(\d+)/.exec(l);
      if (m) resolve(Number(m[1]));
    });
    child.once("exit", (code) => reject(new Error(`fixture exited ${code}`)));
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, port, exited, lines };
}

/** A GET on a connection of its own that asks to be kept alive (so a `Connection: close` is the server's). */
function getOnNewConnection(port: number, path: string) {
  return new Promise<{ status: number; headers: IncomingHttpHeaders; body: string }>((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, agent: false, headers: { connection: "keep-alive" } }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => {
        req.destroy();
        resolve({ status: res.statusCode!, headers: res.headers, body });
      });
    });
    req.on("error", reject);
    req.end();
  });
}

/** True when nothing accepts a TCP connection on the port any more. */
const refusesConnections = (port: number) =>
  new Promise<boolean>((resolve) => {
    const sock = connect(port, "127.0.0.1");
    sock.once("connect", () => {
      sock.destroy();
      resolve(false);
    });
    sock.once("error", (err: NodeJS.ErrnoException) => resolve(err.code === "ECONNREFUSED"));
  });

describe("graceful shutdown (real process, real SIGTERM)", () => {
  it("finishes the request in flight, turns readiness off, refuses new connections, runs closers, exits 0", async () => {
    // The drain delay keeps the listener open for a while after SIGTERM: readiness can be read while draining.
    const f = startFixture({ SHUTDOWN_GRACE_MS: "5000", SHUTDOWN_DELAY_MS: "1500" });
    const port = await f.port;
    const base = `http://127.0.0.1:${port}`;
    const before = await getOnNewConnection(port, "/readyz");
    expect(before.status).toBe(200);
    expect(before.headers.connection).toBe("keep-alive");
    let finished = false;
    const inflight = fetch(`${base}/slow?ms=4000`).finally(() => (finished = true));
    // SIGTERM once the request is in the handler (a fixed wait raced a busy machine: SIGTERM before the
    // request arrived closes the idle connection, and the fetch fails).
    await expect.poll(() => f.lines.some((l) => l.includes('"slowStarted":true')), { timeout: 10_000 }).toBe(true);
    f.child.kill("SIGTERM");
    await expect.poll(() => f.lines.some((l) => l.includes('"msg":"draining"')), { timeout: 10_000 }).toBe(true);
    // While the request is in flight: not ready, and the connection is not kept for another request…
    const draining = await getOnNewConnection(port, "/readyz");
    expect(draining.status).toBe(503);
    expect(JSON.parse(draining.body)).toMatchObject({ status: "draining" });
    expect(draining.headers.connection).toBe("close");
    // …then, after the delay, the listener is closed: a new connection is refused, the request still runs.
    await expect.poll(() => refusesConnections(port), { timeout: 10_000, interval: 50 }).toBe(true);
    expect(finished).toBe(false);
    const res = await inflight;
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ done: true });
    expect(await f.exited).toBe(0);
    await expect(fetch(`${base}/healthz`)).rejects.toThrow();
    const log = f.lines.join("\n");
    expect(log).toContain('"msg":"draining"');
    expect(log).toContain('"msg":"closer ran"');
  });

  it("cuts a request that outlives the grace and still exits 0", async () => {
    const f = startFixture({ SHUTDOWN_GRACE_MS: "200" });
    const port = await f.port;
    const inflight = fetch(`http://127.0.0.1:${port}/slow?ms=5000`).then(
      (r) => r.status,
      () => "cut",
    );
    await expect.poll(() => f.lines.some((l) => l.includes('"slowStarted":true')), { timeout: 10_000 }).toBe(true);
    const started = Date.now();
    f.child.kill("SIGTERM");
    expect(await f.exited).toBe(0);
    // Cut at the 200 ms grace, not after the request's 5 s (the bound leaves room for a busy machine).
    expect(Date.now() - started).toBeLessThan(4000);
    expect(await inflight).toBe("cut");
  });

  it("drains on SIGHUP too (a closed terminal under npm start): the request in flight is answered, exit 0", async () => {
    const f = startFixture({ SHUTDOWN_GRACE_MS: "5000" });
    const port = await f.port;
    const inflight = fetch(`http://127.0.0.1:${port}/slow?ms=300`).then((r) => r.status);
    await expect.poll(() => f.lines.some((l) => l.includes('"slowStarted":true')), { timeout: 10_000 }).toBe(true);
    f.child.kill("SIGHUP");
    expect(await f.exited).toBe(0);
    expect(await inflight).toBe(200);
    expect(f.lines.some((l) => l.includes('"msg":"stopped"'))).toBe(true);
  });
});

describe("requests Node's parser refuses", () => {
  /** Raw bytes in, the raw answer out (status line, headers, body). */
  const rawExchange = (port: number, bytes: string) =>
    new Promise<string>((resolve, reject) => {
      const sock = connect(port, "127.0.0.1");
      let out = "";
      sock.on("data", (d) => (out += d.toString()));
      sock.on("end", () => resolve(out));
      sock.on("error", reject);
      sock.write(bytes);
    });

  it("answer in the error envelope: 431 for oversized headers, 400 for an unknown method, a broken request line, a bad Host or path", async () => {
    const app = new Hono().get("/", (c) => c.text("ok"));
    const running = await startServer({ fetch: app.fetch, port: 0, host: "127.0.0.1", logger: memoryLogger().logger, lifecycle: new Lifecycle(), graceMs: 100 });
    try {
      const cases: [string, number][] = [
        [`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(SERVICE_MAX_HEADER_BYTES)}\r\n\r\n`, 431],
        ["FOO / HTTP/1.1\r\nHost: x\r\n\r\n", 400],
        ["GET /\u0000 HTTP/1.1\r\n\r\n", 400],
        ["\u00ff\u00fe garbage\r\n\r\n", 400],
        // Parsed by Node but refused by the adapter (no valid Request can be built from them).
        ["GET / HTTP/1.1\r\nHost: [::1]:99999\r\n\r\n", 400],
        ["GET /a\\..\\b HTTP/1.1\r\nHost: x\r\n\r\n", 400],
      ];
      for (const [bytes, status] of cases) {
        const answer = await rawExchange(running.port, bytes.includes("HTTP/1.1\r\nHost:") ? bytes.replace("HTTP/1.1\r\n", "HTTP/1.1\r\nConnection: close\r\n") : bytes);
        expect(answer.split("\r\n")[0], bytes.slice(0, 20)).toBe(`HTTP/1.1 ${status} ${status === 431 ? "Request Header Fields Too Large" : "Bad Request"}`);
        const body = JSON.parse(answer.slice(answer.indexOf("\r\n\r\n") + 4)) as Record<string, unknown>;
        expect(body).toMatchObject({ status_code: status, error: status === 431 ? "RequestHeaderFieldsTooLarge" : "BadRequest", request_id: expect.any(String) });
        expect(answer).toMatch(/\r\nX-Content-Type-Options: nosniff\r\n/i);
      }
      // The server is still fine.
      expect((await fetch(`http://127.0.0.1:${running.port}/`)).status).toBe(200);
    } finally {
      await running.shutdown();
    }
  });

  it("never writes an error answer into a response already under way (a broken request pipelined behind a streamed one)", async () => {
    const app = new Hono().get("/slow", () => {
      const encoder = new TextEncoder();
      const body = new ReadableStream<Uint8Array>({
        async start(controller) {
          controller.enqueue(encoder.encode("part1-"));
          await new Promise((r) => setTimeout(r, 300));
          controller.enqueue(encoder.encode("part2"));
          controller.close();
        },
      });
      return new Response(body, { headers: { "content-type": "text/plain" } });
    });
    const running = await startServer({ fetch: app.fetch, port: 0, host: "127.0.0.1", logger: memoryLogger().logger, lifecycle: new Lifecycle(), graceMs: 100 });
    try {
      const answer = await new Promise<string>((resolve) => {
        const sock = connect(running.port, "127.0.0.1");
        let out = "";
        sock.on("data", (d) => (out += d.toString()));
        sock.on("close", () => resolve(out));
        sock.on("error", () => resolve(out));
        sock.write("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n\u00ff\u00fe garbage\r\n\r\n");
      });
      expect(answer.startsWith("HTTP/1.1 200 OK")).toBe(true);
      // No second status line inside the first answer's body: the broken request ends the connection instead.
      expect(answer.match(/HTTP\/1\.1 \d{3}/g)).toEqual(["HTTP/1.1 200"]);
    } finally {
      await running.shutdown();
    }
  });
});

describe("a shortcut in front of the app", () => {
  it("answers what it takes, hands the rest on, and the app times a handed-on request from its arrival", async () => {
    const log = memoryLogger("test");
    const app = createServiceApp({
      service: "api-gateway",
      logger: log.logger,
      metrics: new Metrics("api-gateway", { processMetrics: false }),
      allowedOrigins: [],
      health: (c) => c.body(null, 200),
      openapi: { title: "t", version: "1" },
    });
    app.get("/late", (c) => c.json({ ok: true }));
    const running = await startServer({
      fetch: app.fetch,
      shortcut: (req, res, next) => {
        if (req.url === "/short") return void res.writeHead(200, { "content-type": "text/plain" }).end("short");
        // Work before handing on (here: 300 ms "spent" already) counts in the app's duration.
        (req as typeof req & { [RECEIVED_AT]?: number })[RECEIVED_AT] = performance.now() - 300;
        next();
        next(); // a second hand-on is ignored: the app answers once
      },
      port: 0,
      host: "127.0.0.1",
      logger: log.logger,
      lifecycle: new Lifecycle(),
      graceMs: 100,
    });
    try {
      const base = `http://127.0.0.1:${running.port}`;
      expect(await (await fetch(`${base}/short`)).text()).toBe("short");
      expect(await (await fetch(`${base}/late`)).json()).toEqual({ ok: true });
      const access = log.lines().filter((l) => l.msg === "request");
      expect(access.map((l) => l.route)).toEqual(["/late"]);
      expect(access[0]!.duration_ms).toBeGreaterThanOrEqual(300);
    } finally {
      await running.shutdown();
    }
  });
});
