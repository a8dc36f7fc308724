import { createServer as createHttpServer } from "node:http";
import { connect, type AddressInfo, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Lifecycle, SERVICE_BODY_LIMIT_BYTES, startServer, type RunningServer } from "@titanium/kit";
import { memoryLogger } from "@titanium/kit/testing";
import type { GatewayDeps } from "./app.js";
import { BodyBudget } from "./body-budget.js";
import { trustedProxies } from "./config.js";
import { LOGIN_BODY_MAX_BYTES, LOGIN_USERNAME_MAX, PASSWORD_MAX, RATE_LIMITS, matchRoute } from "./routes.js";
import { startGatewayTestBed, type GatewayTestBed } from "./test-bed.js";

// The gateway's request bodies: the services' limit, the login's own small one (read before any rate limit),
// the budget of body bytes held at once, and the password check of PATCH /users/me charged as a login.

let bed: GatewayTestBed;
let upstream: ReturnType<typeof createHttpServer>;
let upstreamUrl: string;
/** Bytes of each request body the upstream received, in order. */
const forwarded: number[] = [];

beforeAll(async () => {
  upstream = createHttpServer((req, res) => {
    let bytes = 0;
    req.on("data", (d: Buffer) => (bytes += d.length));
    req.on("end", () => {
      forwarded.push(bytes);
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ bytes }));
    });
  });
  await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", () => r()));
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  bed = await startGatewayTestBed();
});
afterAll(async () => {
  upstream?.close();
  await bed?.stop();
});

let ipCounter = 0;
const freshPeer = () => `198.51.100.${++ipCounter}`;
const gateway = (overrides: Partial<GatewayDeps> = {}, peer = freshPeer()) => bed.gateway(upstreamUrl, { peerAddress: () => peer, ...overrides });

/** The gateway on a real socket (the peer read from it), and what it is built with. */
async function serve(overrides: Partial<GatewayDeps> = {}): Promise<RunningServer> {
  const gw = bed.gateway(upstreamUrl, { peerAddress: () => undefined, ...overrides });
  return startServer({ fetch: gw.fetch, port: 0, host: "127.0.0.1", logger: memoryLogger().logger, lifecycle: new Lifecycle(), graceMs: 100 });
}

interface RawAnswer {
  /** 0: nothing came within the wait. */
  status: number;
  head: string;
  body: string;
  /** Milliseconds from the request's head to the answer. */
  ms: number;
}

/**
 * A request written by hand on its own connection: `head` (request line and headers, without the blank line),
 * then `body`, and then nothing more (a stalled upload) unless `finish` says so. Resolves with the answer once
 * its headers and (sized) body came, or with status 0 after `waitMs`. The socket stays open: `socket.destroy()` aborts.
 */
function rawRequest(port: number, head: string, body: string | Buffer, waitMs = 3000): { socket: Socket; answer: Promise<RawAnswer> } {
  const socket = connect(port, "127.0.0.1");
  const started = Date.now();
  const answer = new Promise<RawAnswer>((resolve) => {
    let data = "";
    const done = (status: number) => {
      clearTimeout(timer);
      const [h = "", b = ""] = data.split("\r\n\r\n", 2);
      resolve({ status, head: h, body: b, ms: Date.now() - started });
    };
    const timer = setTimeout(() => done(0), waitMs);
    socket.on("data", (d: Buffer) => {
      data += d.toString("latin1");
      const end = data.indexOf("\r\n\r\n");
      if (end < 0) return;
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(data.slice(0, end))?.[1] ?? 0);
      if (data.length - end - 4 >= length) done(Number(data.slice(9, 12)));
    });
    socket.on("error", () => undefined);
    socket.on("close", () => done(data ? Number(data.slice(9, 12)) : 0));
  });
  socket.write(`${head}\r\nHost: gateway.test\r\n\r\n`);
  socket.write(body);
  return { socket, answer };
}

const waitFor = async (ok: () => boolean) => {
  for (let i = 0; i < 300 && !ok(); i++) await new Promise((r) => setTimeout(r, 10));
  return ok();
};

describe("the body limit", () => {
  it("is the services' own by default: a body they would refuse is refused at the gateway (413, the envelope)", async () => {
    const gw = gateway({ rateLimitScale: 100 });
    const over = await gw.request("/api/posts", { method: "POST", body: "x".repeat(SERVICE_BODY_LIMIT_BYTES + 1), headers: { "content-type": "application/json" } });
    expect(over.status).toBe(413);
    expect(await over.json()).toMatchObject({ status_code: 413, message: `request body larger than ${SERVICE_BODY_LIMIT_BYTES} bytes` });
    const at = await gw.request("/api/posts", { method: "POST", body: "x".repeat(SERVICE_BODY_LIMIT_BYTES), headers: { "content-type": "application/json" } });
    expect(await at.json()).toEqual({ bytes: SERVICE_BODY_LIMIT_BYTES });
  });
});

describe("login bodies (read before any rate limit is taken)", () => {
  let running: RunningServer;
  const budget = new BodyBudget(16 * 1024 * 1024);
  beforeAll(async () => {
    running = await serve({ bodyBudget: budget, rateLimitScale: 100 });
  });
  afterAll(() => running?.shutdown());

  it("takes the largest valid login, every character escaped", async () => {
    const escaped = (n: number) => "\\u00e9".repeat(n);
    const body = `{"username": "${escaped(LOGIN_USERNAME_MAX)}", "password": "${escaped(PASSWORD_MAX)}"}`;
    expect(body.length).toBeLessThanOrEqual(LOGIN_BODY_MAX_BYTES);
    expect(JSON.parse(body)).toEqual({ username: "é".repeat(LOGIN_USERNAME_MAX), password: "é".repeat(PASSWORD_MAX) });
    const res = await fetch(`http://127.0.0.1:${running.port}/api/login`, { method: "POST", body, headers: { "content-type": "application/json" } });
    expect(await res.json()).toEqual({ bytes: body.length });
    expect(await bed.redis.exists(`rl:login_account:acct:${"é".repeat(LOGIN_USERNAME_MAX)}`)).toBe(1);
  });

  it("refuses a login whose Content-Length is over its limit at once (413), without waiting for the body or holding any of it", async () => {
    for (const length of [LOGIN_BODY_MAX_BYTES + 1, 200_000, 1024 * 1024]) {
      const { socket, answer } = rawRequest(running.port, `POST /api/auth/login HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: ${length}`, '{"username":"victim","password":"');
      const res = await answer;
      expect(res.status, String(length)).toBe(413);
      expect(res.ms).toBeLessThan(2000);
      expect(res.head).toMatch(/\r\nconnection: close/i);
      expect(JSON.parse(res.body)).toMatchObject({ status_code: 413, message: `request body larger than ${LOGIN_BODY_MAX_BYTES} bytes` });
      // Nothing set aside for it, and the connection is the server's to close (not held for the request timeout).
      expect(budget.heldBytes).toBe(0);
      expect(await waitFor(() => socket.destroyed || socket.readableEnded)).toBe(true);
      socket.destroy();
    }
  });

  it("cuts a chunked login body at its limit (413) without waiting for its end, and in process too", async () => {
    const chunk = "x".repeat(1000);
    const chunks = Array.from({ length: 5 }, () => `${chunk.length.toString(16)}\r\n${chunk}\r\n`).join("");
    const { socket, answer } = rawRequest(running.port, "POST /api/login HTTP/1.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked", chunks);
    const res = await answer;
    socket.destroy();
    expect(res.status).toBe(413);
    expect(JSON.parse(res.body)).toMatchObject({ status_code: 413 });
    expect(await waitFor(() => budget.heldBytes === 0)).toBe(true);
    const inProcess = await gateway().request("/api/login", { method: "POST", body: `{"username":"a","password":"${"x".repeat(LOGIN_BODY_MAX_BYTES)}"}`, headers: { "content-type": "application/json" } });
    expect(inProcess.status).toBe(413);
  });
});

describe("the body budget (bytes of request bodies held at once)", () => {
  const size = 64 * 1024;
  const budget = new BodyBudget(3 * size);
  let running: RunningServer;
  beforeAll(async () => {
    running = await serve({ bodyBudget: budget, rateLimitScale: 100 });
  });
  afterAll(() => running?.shutdown());
  const post = (body: string) => fetch(`http://127.0.0.1:${running.port}/api/posts`, { method: "POST", body, headers: { "content-type": "application/json" } });

  it("sheds a body that does not fit with 503 before reading it, frees what a client gone mid-body held, and leaves reads alone", async () => {
    // Three uploads that stall after their first KiB hold the whole budget.
    const stalled = Array.from({ length: 3 }, () =>
      rawRequest(running.port, `POST /api/posts HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: ${size}`, "x".repeat(1024), 10_000),
    );
    expect(await waitFor(() => budget.heldBytes === 3 * size)).toBe(true);
    const shed = await post("{}");
    expect(shed.status).toBe(503);
    expect(shed.headers.get("retry-after")).toBe("1");
    expect(await shed.json()).toMatchObject({ error: "ServiceUnavailable", status_code: 503 });
    // A chunked upload would reserve the whole limit: shed as well, unread.
    const chunked = rawRequest(running.port, "POST /api/posts HTTP/1.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked", "2\r\n{}\r\n");
    expect((await chunked.answer).status).toBe(503);
    chunked.socket.destroy();
    // Reads carry no body and are not held back.
    expect((await fetch(`http://127.0.0.1:${running.port}/api/posts`)).status).toBe(200);

    // The clients give up mid-body: each reservation is given back, once.
    for (const s of stalled) s.socket.destroy();
    expect(await waitFor(() => budget.heldBytes === 0)).toBe(true);
    await new Promise((r) => setTimeout(r, 100));
    expect(budget.heldBytes).toBe(0);
    const ok = await post(JSON.stringify({ title: "t", content: "c".repeat(size - 100) }));
    expect(ok.status).toBe(200);
    expect(budget.heldBytes).toBe(0);
    for (const s of stalled) expect((await s.answer).status).toBe(0); // never answered: they left first
  });

  it("gives a finished request's reservation back, whatever it was answered", async () => {
    const full = "y".repeat(3 * size);
    for (const body of ["{}", "x".repeat(size), full]) {
      expect((await post(body).then(async (r) => ({ status: r.status, body: (await r.json()) as unknown }))).body).toEqual({ bytes: body.length });
      expect(budget.heldBytes).toBe(0);
    }
    // The whole budget in one body fits; a 413 (over the limit) holds nothing either.
    const over = rawRequest(running.port, `POST /api/posts HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: ${SERVICE_BODY_LIMIT_BYTES + 1}`, "x");
    expect((await over.answer).status).toBe(413);
    over.socket.destroy();
    expect(budget.heldBytes).toBe(0);
  });
});

describe("the request target, as forwarded", () => {
  let running: RunningServer;
  beforeAll(async () => {
    running = await serve({ rateLimitScale: 100 });
  });
  afterAll(() => running?.shutdown());

  it("is refused at the gateway (414, the envelope, its request id) when percent-encoding would grow it past what a service takes", async () => {
    // 7000 quotes go up as 21 000 bytes of %27 or %22 (encoded by proxy.ts' URL parser, or by the adapter's
    // URL already): the service's 20 KiB header limit would answer a bare 431.
    for (const quote of ["'", '"', "<"]) {
      const quotes = rawRequest(running.port, `GET /api/posts?q=${quote.repeat(7000)} HTTP/1.1`, "");
      const answer = await quotes.answer;
      quotes.socket.destroy();
      expect(answer.status, quote).toBe(414);
      const body = JSON.parse(answer.body) as { request_id: string; status_code: number; message: string };
      expect(body).toMatchObject({ status_code: 414, message: "URI Too Long: the request target is too long once percent-encoded" });
      expect(answer.head).toContain(`\r\nx-request-id: ${body.request_id}\r\n`);
    }
    // A long target that goes up as it came is forwarded.
    const plain = rawRequest(running.port, `GET /api/posts?q=${"a".repeat(7000)} HTTP/1.1`, "");
    expect((await plain.answer).status).toBe(200);
    plain.socket.destroy();
  });
});

describe("requests in flight per client (a request holds its place while its body uploads)", () => {
  let running: RunningServer;
  beforeAll(async () => {
    running = await serve({ maxInFlight: 8, maxInFlightPerClient: 3, trustedProxies: trustedProxies([{ address: "127.0.0.1", prefix: 32, family: "ipv4" }]) });
  });
  afterAll(() => running?.shutdown());
  /** A request from `client` (the trusted hop 127.0.0.1 says so). */
  const read = (client: string) => fetch(`http://127.0.0.1:${running.port}/api/posts`, { headers: { "x-forwarded-for": client } });

  it("keeps one client trickling login bodies to its share: its next requests get 429, everyone else is served", async () => {
    // More stalled uploads than the whole gateway holds (8): unbounded, they took every place and the
    // gateway shed everyone with 503 until its 30 s request timeout.
    const stalled = Array.from({ length: 10 }, () =>
      rawRequest(running.port, "POST /api/login HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\nX-Forwarded-For: 203.0.113.7", '{"username":', 1500),
    );
    const answers = await Promise.all(stalled.map((s) => s.answer));
    expect(answers.map((a) => a.status).sort()).toEqual([0, 0, 0, 429, 429, 429, 429, 429, 429, 429]);
    const refused = answers.find((a) => a.status === 429)!;
    expect(refused.head).toMatch(/\r\nretry-after: 1\r\n/i);
    // Its body is left unread: the connection cannot carry another request.
    expect(refused.head).toMatch(/\r\nconnection: close\r\n/i);
    expect(JSON.parse(refused.body)).toMatchObject({ error: "TooManyRequests", status_code: 429, message: "too many requests in flight from this client, retry shortly" });

    expect((await read("203.0.113.8")).status).toBe(200);
    const same = await read("203.0.113.7");
    expect(same.status).toBe(429);
    // Its places come back when its requests end (here: the client gives up).
    for (const s of stalled) s.socket.destroy();
    await expect.poll(async () => (await read("203.0.113.7")).status, { timeout: 3000 }).toBe(200);
  });
});

describe("PATCH /api/users/me with current_password (a password check): charged as a login on the token's account", () => {
  const patch = (gw: ReturnType<typeof gateway>, token: string, body: object) =>
    gw.request("/api/users/me", { method: "PATCH", body: JSON.stringify(body), headers: { authorization: `Bearer ${token}`, "content-type": "application/json" } });

  it("shares the account's login cells: tries beyond the per-account-and-client budget get 429, other changes do not count", async () => {
    const peer = freshPeer();
    const gw = gateway({}, peer);
    const token = await bed.tokens.sign({ id: 7001, username: "Patcher" });
    // Five wrong logins from this client on the account: the most its login limit allows in a minute.
    for (let i = 0; i < RATE_LIMITS.login.limit; i++)
      expect((await gw.request("/api/login", { method: "POST", body: JSON.stringify({ username: "patcher", password: "guess" }), headers: { "content-type": "application/json" } })).status).toBe(200);
    // The account-and-client cell (10) has 5 tries left; the profile's own limit (10/min) would allow 10.
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) statuses.push((await patch(gw, token, { password: "N3w!passw0rd", current_password: `guess${i}` })).status);
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429]);
    const refused = await patch(gw, token, { password: "N3w!passw0rd", current_password: "guess" });
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(await refused.json()).toMatchObject({ error: "TooManyRequests", status_code: 429 });
    expect(await bed.redis.exists(`rl:login_account_client:acct:patcher:ip:${peer}`)).toBe(1);
    // An email change (no password check) is not refused for it.
    expect((await patch(gw, token, { email: "p@example.com" })).status).toBe(200);
  });

  it("is the caller's own profile, by the path the user-service routes", () => {
    for (const path of ["/api/users/me", "/api/users/%6De"]) expect(matchRoute("PATCH", path)?.currentPasswordLimits, path).toBeDefined();
    for (const [method, path] of [["PATCH", "/api/users/alice"], ["GET", "/api/users/me"], ["PATCH", "/api/users/me/x"]] as const)
      expect(matchRoute(method, path)?.currentPasswordLimits, `${method} ${path}`).toBeUndefined();
  });

  it("leaves a PATCH without current_password, and one whose token is not valid, to the profile's own limit", async () => {
    const gw = gateway();
    const token = await bed.tokens.sign({ id: 7002, username: "quiet" });
    for (let i = 0; i < RATE_LIMITS.userUpdate.limit; i++) expect((await patch(gw, token, { email: `q${i}@example.com` })).status).toBe(200);
    expect(await bed.redis.exists("rl:login_account:acct:quiet")).toBe(0);
    expect((await patch(gateway(), "not-a-token", { password: "N3w!passw0rd", current_password: "x" })).status).toBe(200);
  });
});
