/**
 * A hung upstream (accepts, never answers), a slow one (answers after 5 s) and a dripping one (sends
 * its headers at once, then a byte every 200 ms for 5 s) behind the gateway: every request to them ends
 * with a 504 envelope within UPSTREAM_TIMEOUT_MS (+ slack), and the rest of the platform is unaffected.
 */
import { createServer as createHttpServer, type Server } from "node:http";
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from "node:net";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, isEnvelope, rssMb, startTestPlatform, type TestPlatform } from "./harness.mjs";
import { byStatus, percentile } from "./load.mjs";
import { recordScenario, renderReliability, unmet, type ScenarioResult } from "./report.mjs";

const TIMEOUT_MS = 1_000;
// Measured from the test process while 80 requests wait, on a shared 2-core machine: generous, yet far
// below the 5 s the slow and dripping upstreams would take.
const SLACK_MS = 1_000;
const SLOW_MS = 5_000;
let platform: TestPlatform;
let hung: TcpServer;
let slow: Server;
const hungSockets = new Set<Socket>();

const listen = (s: TcpServer | Server) => new Promise<number>((r) => s.listen(0, "127.0.0.1", () => r((s.address() as AddressInfo).port)));

beforeAll(async () => {
  hung = createTcpServer((sock) => {
    hungSockets.add(sock); // read nothing, answer nothing
    sock.once("close", () => hungSockets.delete(sock));
  });
  slow = createHttpServer((req, res) => {
    req.resume();
    if (req.url?.includes("drip")) {
      res.writeHead(200, { "content-type": "application/json" }); // chunked: no length
      const tick = setInterval(() => res.write(" "), 200);
      const t = setTimeout(() => res.end("{}"), SLOW_MS);
      res.once("close", () => (clearInterval(tick), clearTimeout(t)));
      return;
    }
    const t = setTimeout(() => res.end("{}"), SLOW_MS);
    res.once("close", () => clearTimeout(t));
  });
  const [hungPort, slowPort] = [await listen(hung), await listen(slow)];
  platform = await startTestPlatform({
    env: {
      "api-gateway": {
        BLOG_SERVICE_URL: `http://127.0.0.1:${hungPort}`,
        USER_SERVICE_URL: `http://127.0.0.1:${slowPort}`,
        UPSTREAM_TIMEOUT_MS: String(TIMEOUT_MS),
        RATE_LIMIT_SCALE: "1000",
      },
    },
  });
});
afterAll(async () => {
  await platform?.dispose();
  for (const s of hungSockets) s.destroy();
  hung?.close();
  slow?.closeAllConnections();
  slow?.close();
  renderReliability();
});

describe("slow or hung upstream", () => {
  it("answers 504 within the timeout for every request and stays healthy", async () => {
    const base = platform.url;
    const pid = platform.services["api-gateway"].process?.pid;
    const rssBefore = rssMb(pid);
    const timed = async (path: string) => {
      const started = performance.now();
      const r = await call(base, "GET", path, { timeoutMs: 10_000 });
      return { ms: performance.now() - started, status: r.status, envelope: isEnvelope(r.json, r.status) };
    };
    const results: { ms: number; status: number; envelope: boolean }[] = [];
    const others: number[] = [];
    const othersMs: number[] = [];
    for (let round = 0; round < 3; round++) {
      const victims = Promise.all([
        ...Array.from({ length: 40 }, () => timed("/api/posts")),
        ...Array.from({ length: 40 }, (_, i) => timed(i % 2 ? `/api/users/someone${i}` : `/api/users/drip${i}`)),
      ]);
      // While those wait: the rest of the platform answers at once.
      const started = performance.now();
      const healthy = await Promise.all([
        call(base, "GET", "/readyz"),
        call(base, "GET", "/api/auth/health"),
        call(base, "GET", "/.well-known/jwks.json"),
        call(platform.services["blog-service"].url, "GET", "/readyz"),
      ]);
      othersMs.push(performance.now() - started);
      others.push(...healthy.map((h) => h.status));
      results.push(...(await victims));
    }
    const after = await call(base, "GET", "/readyz");
    const slowest = Math.max(...results.map((r) => r.ms));
    const result: ScenarioResult = {
      id: "slow-upstream",
      title: "Slow and hung upstreams",
      suite: "npm run test:resilience",
      injected: `The gateway's blog upstream accepts connections and never answers; its user upstream answers after ${SLOW_MS / 1000} s, or (half the requests) sends its headers at once and then a byte every 200 ms for ${SLOW_MS / 1000} s; UPSTREAM_TIMEOUT_MS=${TIMEOUT_MS}; 3 rounds of 40 + 40 concurrent requests to them, with readiness, auth health and JWKS requested meanwhile`,
      measured: {
        "requests sent": results.length + others.length + 1,
        "answers from the slow/hung routes": JSON.stringify(byStatus(results.map((r) => ({ ...r, at: 0, label: "" })))),
        "answers in the error envelope": `${results.filter((r) => r.envelope).length} / ${results.length}`,
        "p50 / p99 / slowest answer (ms)": `${percentile(results.map((r) => r.ms), 50)} / ${percentile(results.map((r) => r.ms), 99)} / ${Math.round(slowest)}`,
        "other routes meanwhile": others.join(", "),
        "other routes meanwhile, slowest round (ms)": Math.round(Math.max(...othersMs)),
        "gateway RSS before / after (MB)": `${rssBefore} / ${rssMb(pid)}`,
      },
      criteria: [
        { text: "every request to a slow or hung upstream is answered 504 in the envelope", met: results.every((r) => r.status === 504 && r.envelope) },
        { text: `no request waits longer than UPSTREAM_TIMEOUT_MS + ${SLACK_MS} ms (${TIMEOUT_MS + SLACK_MS} ms)`, met: slowest <= TIMEOUT_MS + SLACK_MS },
        { text: "readiness, auth and JWKS answer 200 meanwhile, each round within 1 s, and /readyz after", met: others.every((s) => s === 200) && Math.max(...othersMs) < 1_000 && after.status === 200 },
      ],
    };
    recordScenario(result);
    expect(unmet(result)).toEqual([]);
  });
});
