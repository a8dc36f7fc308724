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
import { API_SECURITY_HEADERS, SERVICE_MAX_HEADER_BYTES } from "./security.js";

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
    // In flight until the test releases it (SIGUSR2), once it has seen the listener closed.
    const inflight = fetch(`${base}/slow`).finally(() => (finished = true));
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
    expect(f.child.exitCode).toBeNull(); // still waiting for the request, within the grace
    f.child.kill("SIGUSR2");
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

describe("requests Node's server answers by itself (no Host, an unknown Expect, CONNECT)", () => {
  /** Raw bytes in; the raw answer out once the server has closed the connection (or what came within 3 s). */
  const rawExchange = (port: number, bytes: string) =>
    new Promise<string>((resolve, reject) => {
      const sock = connect(port, "127.0.0.1");
      let out = "";
      const timer = setTimeout(() => {
        sock.destroy();
        resolve(`${out}[connection left open]`);
      }, 3000);
      sock.on("data", (d) => (out += d.toString()));
      sock.on("end", () => {
        clearTimeout(timer);
        resolve(out);
      });
      sock.on("error", reject);
      sock.write(bytes);
    });

  /** The final answer of a raw exchange (after any `100 Continue`), its header names in lower case. */
  function parseAnswer(raw: string) {
    const final = raw.replace(/^HTTP\/1\.1 100 Continue\r\n\r\n/, "");
    const [head, ...rest] = final.split("\r\n\r\n");
    const [statusLine, ...lines] = head!.split("\r\n");
    const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(":")).toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]));
    return { statusLine, status: Number(statusLine!.split(" ")[1]), headers, body: rest.join("\r\n\r\n") };
  }

  /** The error envelope with the request id of its header, and every API security header. */
  function expectEnvelope(answer: ReturnType<typeof parseAnswer>, status: number, error: string, message: RegExp) {
    expect(answer.status, answer.statusLine).toBe(status);
    const body = JSON.parse(answer.body) as Record<string, unknown>;
    expect(body).toEqual({ error, message: expect.stringMatching(message), status_code: status, request_id: expect.any(String) });
    expect(answer.headers["x-request-id"]).toBe(body.request_id);
    expect(answer.headers["content-type"]).toBe("application/json");
    for (const [name, value] of Object.entries(API_SECURITY_HEADERS)) expect(answer.headers[name], name).toBe(value);
    expect(answer.headers.connection).toBe("close");
  }

  async function withServer(run: (port: number, seen: string[]) => Promise<void>) {
    const seen: string[] = [];
    const app = new Hono()
      .get("/blog/api/posts/1", (c) => c.json({ id: 1 }))
      .post("/echo", async (c) => c.text(await c.req.text()))
      .all("*", (c) => c.text("app", 404));
    const running = await startServer({
      fetch: (req) => {
        seen.push(`${req.method} ${req.url}`);
        return app.fetch(req);
      },
      // A shortcut in front (the gateway's) must not answer a request without Host either.
      shortcut: (req, res, next) => (req.url === "/short" ? void res.writeHead(200).end("short") : next()),
      port: 0,
      host: "127.0.0.1",
      logger: memoryLogger().logger,
      lifecycle: new Lifecycle(),
      graceMs: 100,
    });
    try {
      await run(running.port, seen);
      // The server still serves.
      expect((await fetch(`http://127.0.0.1:${running.port}/blog/api/posts/1`)).status).toBe(200);
    } finally {
      await running.shutdown();
    }
  }

  it("refuses an HTTP/1.1 request without Host with a 400 envelope naming Host, before the shortcut and the app", async () => {
    await withServer(async (port, seen) => {
      for (const bytes of [
        "GET /blog/api/posts/1 HTTP/1.1\r\n\r\n",
        "GET /short HTTP/1.1\r\n\r\n",
        "HEAD /blog/api/posts/1 HTTP/1.1\r\n\r\n",
        "GET http://example.com/blog/api/posts/1 HTTP/1.1\r\n\r\n",
        "POST /echo HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi",
      ]) {
        const answer = parseAnswer(await rawExchange(port, bytes));
        if (bytes.startsWith("HEAD")) {
          expect(answer.status).toBe(400);
          expect(answer.body).toBe("");
          continue;
        }
        expectEnvelope(answer, 400, "BadRequest", /Host/);
      }
      expect(seen).toEqual([]);
      // A well-formed request id of the caller's is kept, as the app keeps it.
      const withId = parseAnswer(await rawExchange(port, "GET /blog/api/posts/1 HTTP/1.1\r\nX-Request-Id: abc-123\r\n\r\n"));
      expect(withId.headers["x-request-id"]).toBe("abc-123");
      expect(JSON.parse(withId.body)).toMatchObject({ request_id: "abc-123" });
      // HTTP/1.0 needs no Host: still the app's (and the shortcut's) to answer.
      expect(parseAnswer(await rawExchange(port, "GET /short HTTP/1.0\r\n\r\n")).body).toBe("short");
      expect(parseAnswer(await rawExchange(port, "GET /blog/api/posts/1 HTTP/1.0\r\n\r\n")).status).toBe(200);
    });
  });

  it("answers an Expect other than 100-continue with a 417 envelope; 100-continue still gets 100 Continue and the app", async () => {
    await withServer(async (port, seen) => {
      expectEnvelope(parseAnswer(await rawExchange(port, "GET /blog/api/posts/1 HTTP/1.1\r\nHost: x\r\nExpect: foo\r\n\r\n")), 417, "ExpectationFailed", /Expect/);
      expectEnvelope(
        parseAnswer(await rawExchange(port, "POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\nContent-Length: 2\r\n\r\nhi")),
        417,
        "ExpectationFailed",
        /Expect/,
      );
      expect(seen).toEqual([]);
      // Without Host, the missing Host is what is refused (Node's order), an unknown Expect or not.
      expectEnvelope(parseAnswer(await rawExchange(port, "GET /blog/api/posts/1 HTTP/1.1\r\nExpect: foo\r\n\r\n")), 400, "BadRequest", /Host/);
      const noHostContinue = await rawExchange(port, "POST /echo HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
      expect(noHostContinue).not.toContain("100 Continue");
      expectEnvelope(parseAnswer(noHostContinue), 400, "BadRequest", /Host/);
      expect(seen).toEqual([]);
      // 100-continue: the interim answer first, then the body reaches the app.
      const answer = await new Promise<string>((resolve, reject) => {
        const sock = connect(port, "127.0.0.1");
        let out = "";
        sock.on("data", (d) => {
          out += d.toString();
          if (out === "HTTP/1.1 100 Continue\r\n\r\n") sock.write("hello");
        });
        sock.on("end", () => resolve(out));
        sock.on("error", reject);
        sock.write("POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
      });
      expect(answer.startsWith("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n")).toBe(true);
      expect(parseAnswer(answer).body).toBe("hello");
      expect(seen).toEqual(["POST http://x/echo"]);
    });
  });

  it("answers CONNECT with a 405 envelope and Allow, then closes the connection", async () => {
    await withServer(async (port, seen) => {
      for (const target of ["evil.com:443", "127.0.0.1:22"]) {
        const raw = await rawExchange(port, `CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\nX-Request-Id: tunnel-1\r\n\r\n`);
        const answer = parseAnswer(raw);
        expectEnvelope(answer, 405, "MethodNotAllowed", /CONNECT/);
        expect(answer.headers.allow).toBe("GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS");
        expect(answer.headers["x-request-id"]).toBe("tunnel-1");
        // One answer, no tunnel: nothing after the envelope.
        expect(raw.match(/HTTP\/1\.1 \d{3}/g)).toEqual(["HTTP/1.1 405"]);
      }
      // Bytes sent behind the CONNECT (a TLS hello) are dropped, and a reset on the socket is no crash.
      const reset = connect(port, "127.0.0.1");
      await new Promise<void>((resolve) => reset.once("connect", resolve));
      reset.write("CONNECT evil.com:443 HTTP/1.1\r\nHost: evil.com:443\r\n\r\n\u0016\u0003\u0001garbage");
      reset.resetAndDestroy();
      expect(seen).toEqual([]);
    });
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
