/**
 * PostgreSQL restarts during a steady write load through the gateway: every acknowledged write survives,
 * readiness reports the outage, and the services recover by themselves once the database is back.
 */
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, newUser, rssMb, startTestPlatform, type TestPlatform } from "./harness.mjs";
import { byStatus, sleep, startLoad, timeUntil } from "./load.mjs";
import { recordScenario, renderReliability, unmet, type ScenarioResult } from "./report.mjs";

const OUTAGE_MS = 3_000;
const RECOVERY_BOUND_MS = 5_000;
let platform: TestPlatform;

beforeAll(async () => {
  platform = await startTestPlatform({ env: { "api-gateway": { RATE_LIMIT_SCALE: "1000" } } });
});
afterAll(async () => {
  await platform?.dispose();
  renderReliability();
});

describe("PostgreSQL restart under write load", () => {
  it("keeps every acknowledged write, reports not ready while down, and recovers within seconds", async () => {
    const users = await Promise.all(["pgw1", "pgw2", "pgw3", "pgw4"].map((u) => newUser(platform.url, u)));
    const acknowledged: number[] = [];
    const load = startLoad({
      concurrency: 8,
      hardTimeoutMs: 60_000,
      pauseMs: 20,
      next: (w, n) => ({
        label: "create",
        send: () =>
          call(platform.url, "POST", "/api/posts", {
            token: users[w % users.length]!.token,
            body: { title: `w${w} n${n}`, content: `written by worker ${w}, #${n}`, category_name: "Resilience" },
            timeoutMs: 15_000,
          }),
      }),
      onReply: (_l, r) => {
        if (r.status === 201) acknowledged.push((r.json as { id: number }).id);
      },
    });

    // Readiness of every service with data, polled throughout.
    const backends = [platform.services["user-service"], platform.services["auth-service"], platform.services["blog-service"]];
    const readiness: { at: number; name: string; status: number }[] = [];
    let polling = true;
    const poller = (async () => {
      while (polling) {
        await Promise.all(
          backends.map(async (s) => readiness.push({ at: Date.now(), name: s.name, status: (await call(s.url, "GET", "/readyz", { timeoutMs: 2000 })).status })),
        );
        await sleep(100);
      }
    })();

    await sleep(1500);
    const rssBefore = rssMb(platform.services["blog-service"].process?.pid);
    const downAt = Date.now();
    await platform.postgres.stop();
    await sleep(OUTAGE_MS);
    await platform.postgres.start();
    const upAt = Date.now();
    const firstWriteMs = await timeUntil(async () => load.outcomes.some((o) => o.at >= upAt && o.status === 201), 20_000);
    const readyMs: Record<string, number> = {};
    for (const s of backends) readyMs[s.name] = await timeUntil(async () => readiness.some((r) => r.name === s.name && r.at >= upAt && r.status === 200), 20_000);
    await sleep(1500);
    await load.stop();
    polling = false;
    await poller;

    // Every acknowledged id is in the database.
    const sql = postgres(platform.postgres.url, { max: 1, onnotice: () => {} });
    const rows = await sql<{ id: number }[]>`select id from posts where id = any(${acknowledged})`;
    await sql.end();
    const present = new Set(rows.map((r) => r.id));
    const missing = acknowledged.filter((id) => !present.has(id));

    const duringOutage = load.outcomes.filter((o) => o.at >= downAt && o.at < upAt);
    const outageStatuses = byStatus(duringOutage);
    const notReadyWhileDown = backends.every((s) => readiness.some((r) => r.name === s.name && r.at > downAt + 200 && r.at < upAt && r.status === 503));
    const hung = load.outcomes.filter((o) => o.status === 0).length;
    const maxReadyMs = Math.max(...Object.values(readyMs));
    const result: ScenarioResult = {
      id: "postgres-restart",
      title: "PostgreSQL restart during a write load",
      suite: "npm run test:resilience",
      injected: `PostgreSQL stopped (fast shutdown) for ${OUTAGE_MS / 1000} s and started again on the same port and data, while 8 workers created posts through the gateway (4 users, 20 ms pause)`,
      measured: {
        "requests sent": load.outcomes.length,
        "acknowledged writes (201)": acknowledged.length,
        "acknowledged writes checked in the database": acknowledged.length,
        "acknowledged writes missing": missing.length,
        "answers while PostgreSQL was down": JSON.stringify(outageStatuses),
        "answers overall": JSON.stringify(byStatus(load.outcomes)),
        "requests that got no answer (timeout, connection error)": hung,
        "PG ready → first 201 write (ms)": firstWriteMs,
        "PG ready → /readyz 200 (ms)": JSON.stringify(readyMs),
        "blog-service RSS before / after (MB)": `${rssBefore} / ${rssMb(platform.services["blog-service"].process?.pid)}`,
      },
      criteria: [
        { text: "every acknowledged (201) write is in the database afterwards", met: acknowledged.length > 0 && missing.length === 0 },
        { text: "/readyz answers 503 on user-, auth- and blog-service while PostgreSQL is down", met: notReadyWhileDown },
        { text: `first acknowledged write within ${RECOVERY_BOUND_MS / 1000} s of PostgreSQL being ready`, met: firstWriteMs <= RECOVERY_BOUND_MS },
        { text: `/readyz back to 200 on every service within ${RECOVERY_BOUND_MS / 1000} s`, met: maxReadyMs <= RECOVERY_BOUND_MS },
        { text: "writes refused during the outage are 503 (retryable), never 500", met: !Object.keys(outageStatuses).some((s) => s === "500") },
        { text: "every request got an answer (none hung or lost its connection)", met: hung === 0 },
      ],
    };
    recordScenario(result);
    expect(unmet(result)).toEqual([]);
  });
});
