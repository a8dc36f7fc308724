/**
 * PostgreSQL restarts during a steady write load through the gateway: every acknowledged write survives,
 * readiness reports the outage, and the services recover by themselves once the database is back.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, newUser, rssMb, startTestPlatform, type TestPlatform } from "./harness.mjs";
import { byStatus, sleep, startLoad, timeUntil } from "./load.mjs";
import { recordScenario, renderReliability, unmet, type ScenarioResult } from "./report.mjs";

const OUTAGE_MS = 3_000;
const RECOVERY_BOUND_MS = 5_000;
/** At least one write must have been acknowledged this close before the stop (the load really was writing). */
const LAST_ACK_WINDOW_MS = 300;
let platform: TestPlatform;

beforeAll(async () => {
  platform = await startTestPlatform({ env: { "api-gateway": { RATE_LIMIT_SCALE: "1000" } } });
});
afterAll(async () => {
  await platform?.dispose();
  renderReliability();
});

/**
 * The postmaster's pid (first line of `postmaster.pid` in the cluster directory, where
 * services/kit/src/local/postgres.ts puts it) and its children's: a crash kills them all at once.
 */
function crashPostgres(): { postmaster: number; children: number[] } {
  const clusterDir = join(platform.dataDir, "postgres", "cluster");
  const postmaster = Number(readFileSync(join(clusterDir, "postmaster.pid"), "utf8").split("\n")[0]);
  if (!Number.isInteger(postmaster) || postmaster <= 1) throw new Error(`no postmaster pid in ${clusterDir}/postmaster.pid`);
  let children: number[] = [];
  try {
    children = execFileSync("ps", ["-o", "pid=", "--ppid", String(postmaster)], { encoding: "utf8" }).split("\n").map((l) => Number(l.trim())).filter((n) => n > 0);
  } catch {
    // ps exits 1 when there are none.
  }
  for (const pid of [postmaster, ...children]) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // Gone already (a child exits with its postmaster).
    }
  }
  return { postmaster, children };
}

/** Waits (bounded) until none of `pids` exists any more. */
async function gone(pids: number[], timeoutMs = 10_000): Promise<boolean> {
  return !Number.isNaN(
    await timeUntil(async () => pids.every((pid) => {
      try {
        process.kill(pid, 0);
        return false;
      } catch {
        return true;
      }
    }), timeoutMs, 20),
  );
}

type Mode = "fast shutdown" | "SIGKILL";
const LOAD = "while 8 workers created posts through the gateway (4 users, 20 ms pause)";
const SCENARIOS: Record<Mode, Pick<ScenarioResult, "id" | "title" | "injected">> = {
  "fast shutdown": {
    id: "postgres-restart",
    title: "PostgreSQL restart during a write load",
    injected: `PostgreSQL stopped (fast shutdown) for ${OUTAGE_MS / 1000} s and started again on the same port and data, ${LOAD}`,
  },
  SIGKILL: {
    id: "postgres-crash",
    title: "PostgreSQL crash (SIGKILL) during a write load",
    injected: `the PostgreSQL postmaster and all its children killed with SIGKILL (no shutdown, no checkpoint: crash recovery from the WAL on start; the cluster runs with fsync on), down for ${OUTAGE_MS / 1000} s and started again on the same port and data, ${LOAD}`,
  },
};

describe("PostgreSQL restart under write load", () => {
  it("keeps every acknowledged write, reports not ready while down, and recovers within seconds", async () => {
    await scenario("fast shutdown", ["pgw1", "pgw2", "pgw3", "pgw4"]);
  });
  it("crash (SIGKILL of the postmaster and its children): keeps every acknowledged write and recovers within seconds", async () => {
    await scenario("SIGKILL", ["pgk1", "pgk2", "pgk3", "pgk4"]);
  });
});

async function scenario(mode: Mode, usernames: string[]): Promise<void> {
  {
    const users = await Promise.all(usernames.map((u) => newUser(platform.url, u)));
    const acknowledged: number[] = [];
    /** When each 201 arrived (ms since epoch). */
    const ackedAt: number[] = [];
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
        if (r.status === 201) {
          acknowledged.push((r.json as { id: number }).id);
          ackedAt.push(Date.now());
        }
      },
    });

    // Readiness of every service with data, polled throughout.
    const backends = [platform.services["user-service"], platform.services["auth-service"], platform.services["blog-service"]];
    // Each sample: when the probe was sent (`at`) and when its answer came (`end`).
    const readiness: { at: number; end: number; name: string; status: number }[] = [];
    let polling = true;
    const poller = (async () => {
      while (polling) {
        await Promise.all(
          backends.map(async (s) => {
            const at = Date.now();
            const { status } = await call(s.url, "GET", "/readyz", { timeoutMs: 2000 });
            readiness.push({ at, end: Date.now(), name: s.name, status });
          }),
        );
        await sleep(100);
      }
    })();

    await sleep(1500);
    const rssBefore = rssMb(platform.services["blog-service"].process?.pid);
    const downAt = Date.now();
    let killed = "";
    if (mode === "fast shutdown") await platform.postgres.stop();
    else {
      const { postmaster, children } = crashPostgres();
      killed = `the postmaster and its ${children.length} children`;
      if (!(await gone([postmaster, ...children]))) throw new Error(`PostgreSQL (postmaster ${postmaster}) still running 10 s after SIGKILL`);
    }
    // Fully down from here (the fast shutdown itself takes a moment, while queries may still succeed).
    const stoppedAt = Date.now();
    // Writes acknowledged just before the stop: the load was writing when PostgreSQL went away.
    const ackedJustBefore = ackedAt.filter((t) => t >= downAt - LAST_ACK_WINDOW_MS && t <= downAt).length;
    await sleep(OUTAGE_MS);
    await platform.postgres.start();
    const upAt = Date.now();
    // Wait (bounded) until a write succeeded and every service is ready again; the times themselves are
    // read off the samples afterwards, each from the moment PostgreSQL was back.
    await timeUntil(
      async () =>
        load.outcomes.some((o) => o.at >= upAt && o.status === 201) &&
        backends.every((s) => readiness.some((r) => r.name === s.name && r.end >= upAt && r.status === 200)),
      20_000,
    );
    const sinceUp = (ats: number[]) => (ats.length ? Math.min(...ats) - upAt : Number.POSITIVE_INFINITY);
    // A write counts from when it was sent, and only if it was sent after PostgreSQL was back.
    const firstWrite = load.outcomes.filter((o) => o.at >= upAt && o.status === 201);
    const firstWriteMs = firstWrite.length ? Math.min(...firstWrite.map((o) => o.at + o.ms)) - upAt : Number.POSITIVE_INFINITY;
    const readyMs: Record<string, number> = {};
    for (const s of backends) readyMs[s.name] = sinceUp(readiness.filter((r) => r.name === s.name && r.end >= upAt && r.status === 200).map((r) => r.end));
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
    // Not ready for the whole outage: 503s seen, and no 200 once the services could have noticed (500 ms).
    const notReadyWhileDown = backends.every((s) => {
      // Probes sent once PostgreSQL had been gone 500 ms and answered before it was back.
      const during = readiness.filter((r) => r.name === s.name && r.at > stoppedAt + 500 && r.end < upAt);
      return during.some((r) => r.status === 503) && during.every((r) => r.status !== 200);
    });
    const unexpected = load.outcomes.filter((o) => o.status !== 201 && o.status !== 503);
    const readyWhileDown = readiness.filter((r) => r.at > stoppedAt + 500 && r.end < upAt && r.status === 200).map((r) => `${r.name} +${r.at - stoppedAt} ms`);
    const hung = load.outcomes.filter((o) => o.status === 0).length;
    const maxReadyMs = Math.max(...Object.values(readyMs));
    const crash = mode === "SIGKILL";
    const result: ScenarioResult = {
      ...SCENARIOS[mode],
      suite: "npm run test:resilience",
      measured: {
        ...(crash && { "processes killed (SIGKILL)": killed }),
        "requests sent": load.outcomes.length,
        "acknowledged writes (201)": acknowledged.length,
        [`acknowledged writes in the last ${LAST_ACK_WINDOW_MS} ms before the ${crash ? "kill" : "stop"}`]: ackedJustBefore,
        "acknowledged writes checked in the database": acknowledged.length,
        "acknowledged writes missing": missing.length,
        "answers while PostgreSQL was down": JSON.stringify(outageStatuses),
        "answers overall": JSON.stringify(byStatus(load.outcomes)),
        "requests that got no answer (timeout, connection error)": hung,
        "PG ready → first 201 write (ms)": firstWriteMs,
        "PG ready → /readyz 200 (ms)": JSON.stringify(readyMs),
        "/readyz 200 while PostgreSQL was down (from 500 ms after it stopped)": readyWhileDown.length ? readyWhileDown.join(", ") : "none",
        "blog-service RSS before / after (MB)": `${rssBefore} / ${rssMb(platform.services["blog-service"].process?.pid)}`,
      },
      criteria: [
        { text: `writes were being acknowledged when PostgreSQL went away: at least one 201 in the last ${LAST_ACK_WINDOW_MS} ms before the ${crash ? "kill" : "stop"}`, met: ackedJustBefore > 0 },
        { text: "every acknowledged (201) write is in the database afterwards", met: acknowledged.length > 0 && missing.length === 0 },
        { text: "/readyz answers 503 on user-, auth- and blog-service while PostgreSQL is down, and never 200 until it is back", met: notReadyWhileDown },
        { text: `first acknowledged write within ${RECOVERY_BOUND_MS / 1000} s of PostgreSQL being ready`, met: firstWriteMs <= RECOVERY_BOUND_MS },
        { text: `/readyz back to 200 on every service within ${RECOVERY_BOUND_MS / 1000} s`, met: maxReadyMs <= RECOVERY_BOUND_MS },
        { text: "every write was either acknowledged (201) or refused with 503, before, during and after the outage (never 500/502/504)", met: unexpected.length === 0 },
        { text: "every request got an answer (none hung or lost its connection)", met: hung === 0 },
      ],
    };
    recordScenario(result);
    expect(unmet(result)).toEqual([]);
  }
}
