/**
 * PostgreSQL restarts during a steady write load through the gateway: every acknowledged write survives
 * (its id holds the title it was written with), writes meeting the outage are refused at once (503 in the
 * envelope, never queued until the database returns), readiness reports the outage, and the services
 * recover by themselves once the database is back.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { processAlive } from "../../services/kit/src/local/index.js";
import { call, isEnvelope, newUser, rssMb, startTestPlatform, type TestPlatform } from "./harness.mjs";
import { byStatus, percentile, sleep, startLoad, timeUntil } from "./load.mjs";
import { recordScenario, renderReliability, unmet, type ScenarioResult } from "./report.mjs";

const OUTAGE_MS = 3_000;
const RECOVERY_BOUND_MS = 5_000;
/**
 * How fast a write meeting the outage must be refused. With the database down nothing is there to wait
 * for: a connect is refused at once (services/kit/src/errors.ts: 503) and a connection tries again after
 * at most 0.5 s (`reconnectBackoff`, services/kit/src/db.ts), so a write waits at most that long for the
 * attempt that fails it (measured: p50 ~300 ms, slowest ~600 ms); the 1.5 s the readiness ping allows
 * (`pingPostgres`) leaves room for a busy machine. A service that held writes until PostgreSQL returned
 * would answer those sent early in the 3 s outage no sooner than its start.
 */
const FAIL_FAST_MS = 1_500;
/** From this long after PostgreSQL is fully down, every service has seen its connections fail: nothing can reach it. */
const NOTICED_MS = 500;
/**
 * Every write, before, during and after the outage, is answered within this. Nothing in the write path
 * may wait longer than the backoff above here: the 5 s connect_timeout only matters for a host that
 * swallows packets (not a local PostgreSQL that is down or starting, which refuses or answers 57P03 at
 * once), and the 10 s statement_timeout and the gateway's 10 s UPSTREAM_TIMEOUT_MS are for stuck queries.
 * A normal write here takes tens of ms; 2.5 s leaves room for a machine shared with other test runs.
 */
const WRITE_LATENCY_BOUND_MS = 2_500;
/** At least one write must have been acknowledged this close before the stop (the load really was writing). */
const LAST_ACK_WINDOW_MS = 300;
let platform: TestPlatform;
const USERS = { "fast shutdown": ["pgw1", "pgw2", "pgw3", "pgw4"], SIGKILL: ["pgk1", "pgk2", "pgk3", "pgk4"] };
/** Every scenario's users, signed up before any outage (the second scenario's sign-ups are not its subject). */
const tokens = new Map<string, string>();

beforeAll(async () => {
  platform = await startTestPlatform({ env: { "api-gateway": { RATE_LIMIT_SCALE: "1000" } } });
  for (const u of Object.values(USERS).flat()) tokens.set(u, (await newUser(platform.url, u)).token);
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
    await timeUntil(async () => pids.every((pid) => !processAlive({ pid })), timeoutMs, 20),
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
    await scenario("fast shutdown", USERS["fast shutdown"]);
  });
  it("crash (SIGKILL of the postmaster and its children): keeps every acknowledged write and recovers within seconds", async () => {
    await scenario("SIGKILL", USERS.SIGKILL);
  });
});

async function scenario(mode: Mode, usernames: string[]): Promise<void> {
  {
    const users = usernames.map((u) => ({ token: tokens.get(u)! }));
    /** Each acknowledged write: the id it was given and the (run-unique) title it was written with. */
    const acknowledged: { id: number; title: string }[] = [];
    /** When each 201 arrived (ms since epoch). */
    const ackedAt: number[] = [];
    /** Every write: when it was sent and answered, and what came back. */
    const writes: { at: number; end: number; status: number; envelope: boolean; retryAfter: string | null }[] = [];
    const load = startLoad({
      concurrency: 8,
      hardTimeoutMs: 60_000,
      pauseMs: 20,
      next: (w, n) => ({
        label: "create",
        send: async () => {
          // Unique in the database (both scenarios write to it): a reused id shows as another title.
          const title = `${usernames[0]} w${w} n${n}`;
          const at = Date.now();
          const r = await call(platform.url, "POST", "/api/posts", {
            token: users[w % users.length]!.token,
            body: { title, content: `written by worker ${w}, #${n}`, category_name: "Resilience" },
            timeoutMs: 15_000,
          });
          const end = Date.now();
          writes.push({ at, end, status: r.status, envelope: isEnvelope(r.json, r.status), retryAfter: r.headers.get("retry-after") });
          if (r.status === 201) {
            acknowledged.push({ id: (r.json as { id: number }).id, title });
            ackedAt.push(end);
          }
          return r;
        },
      }),
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
    // From here on the database may be back (it accepts connections before start() has seen it ready).
    const startAt = Date.now();
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

    // Every acknowledged write is in the database: its id, holding the title it was written with (a
    // sequence value handed out again after a crash would show another title under an acknowledged id).
    const ids = acknowledged.map((a) => a.id);
    const sql = postgres(platform.postgres.url, { max: 1, onnotice: () => {} });
    const rows = await sql<{ id: number; title: string }[]>`select id, title from posts where id = any(${ids})`;
    await sql.end();
    const stored = new Map(rows.map((r) => [r.id, r.title]));
    const missing = acknowledged.filter((a) => stored.get(a.id) !== a.title);
    const duplicateIds = ids.length - new Set(ids).size;

    // Writes sent while PostgreSQL was fully down, early enough to be refused before it could be back.
    const refusable = writes.filter((w) => w.at >= stoppedAt && w.at <= startAt - FAIL_FAST_MS);
    const refusedInTime = refusable.filter((w) => w.end < startAt && w.end - w.at <= FAIL_FAST_MS && w.status === 503 && w.envelope);
    // Any write answered while it was down: a 503 in the envelope (nothing else can be true then); once
    // the services have noticed, one that was never sent, so with Retry-After (services/README.md: "a
    // request that needs PostgreSQL while it is unreachable gets 503 with Retry-After: 1"). Before that a
    // write can meet a connection that dies under it, answered without Retry-After as it may have
    // committed (services/kit/src/app.ts).
    const answeredWhileDown = writes.filter((w) => w.at >= stoppedAt && w.end < startAt);
    const badWhileDown = answeredWhileDown.filter((w) => !(w.status === 503 && w.envelope && (w.retryAfter !== null || w.at < stoppedAt + NOTICED_MS)));
    const slowestWrite = writes.length ? Math.max(...writes.map((w) => w.end - w.at)) : Number.POSITIVE_INFINITY;
    const tooSlow = writes.filter((w) => w.end - w.at > WRITE_LATENCY_BOUND_MS).length;
    const refusalMs = refusable.map((w) => w.end - w.at);
    // Every refusal, whenever it came, in the envelope (Retry-After only when the write was never sent).
    const bare503 = writes.filter((w) => w.status === 503 && !w.envelope).length;
    const maybeApplied = writes.filter((w) => w.status === 503 && w.retryAfter === null).length;
    const refusedAfterUp = writes.filter((w) => w.status === 503 && w.at >= upAt).length;

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
        "acknowledged writes checked in the database (id and title)": acknowledged.length,
        "acknowledged writes missing (no row with that id and title)": missing.length,
        "acknowledged ids given twice": duplicateIds,
        "answers while PostgreSQL was down": JSON.stringify(outageStatuses),
        [`writes sent while it was fully down, ≥ ${FAIL_FAST_MS} ms before its start: refused 503 (envelope) within ${FAIL_FAST_MS} ms, before the start / sent`]: `${refusedInTime.length} / ${refusable.length}`,
        "those writes' answer time p50 / slowest (ms)": `${percentile(refusalMs, 50)} / ${refusalMs.length ? Math.max(...refusalMs) : "-"}`,
        [`writes answered while it was down: all / not 503 in the envelope (with Retry-After from ${NOTICED_MS} ms after it was down)`]: `${answeredWhileDown.length} / ${badWhileDown.length}`,
        "503s without Retry-After (a write whose connection failed under it: it may have been applied)": maybeApplied,
        "PostgreSQL start → ready (ms)": upAt - startAt,
        "writes sent once it was ready and still refused 503": refusedAfterUp,
        "slowest write (ms)": slowestWrite,
        [`writes slower than ${WRITE_LATENCY_BOUND_MS} ms`]: tooSlow,
        "answers overall": JSON.stringify(byStatus(load.outcomes)),
        "requests that got no answer (timeout, connection error)": hung,
        "PG ready → first 201 write (ms)": firstWriteMs,
        "PG ready → /readyz 200 (ms)": JSON.stringify(readyMs),
        "/readyz 200 while PostgreSQL was down (from 500 ms after it stopped)": readyWhileDown.length ? readyWhileDown.join(", ") : "none",
        "blog-service RSS before / after (MB)": `${rssBefore} / ${rssMb(platform.services["blog-service"].process?.pid)}`,
      },
      criteria: [
        { text: `writes were being acknowledged when PostgreSQL went away: at least one 201 in the last ${LAST_ACK_WINDOW_MS} ms before the ${crash ? "kill" : "stop"}`, met: ackedJustBefore > 0 },
        { text: "every acknowledged (201) write is in the database afterwards: a row with its id and the title it was written with", met: acknowledged.length > 0 && missing.length === 0 },
        { text: "no id was acknowledged twice", met: acknowledged.length > 0 && duplicateIds === 0 },
        {
          text: `writes meet the outage with a fast refusal, not a wait for the database: every write sent while PostgreSQL was down, ≥ ${FAIL_FAST_MS} ms before it was started again (at least 8), was answered 503 in the error envelope within ${FAIL_FAST_MS} ms, before the start; every answer while it was down was a 503 in the envelope, with Retry-After from ${NOTICED_MS} ms after it was down`,
          met: refusable.length >= 8 && refusedInTime.length === refusable.length && badWhileDown.length === 0,
        },
        { text: `every write answered within ${WRITE_LATENCY_BOUND_MS} ms, before, during and after the outage`, met: writes.length > 0 && tooSlow === 0 },
        { text: "/readyz answers 503 on user-, auth- and blog-service while PostgreSQL is down, and never 200 until it is back", met: notReadyWhileDown },
        { text: `first acknowledged write within ${RECOVERY_BOUND_MS / 1000} s of PostgreSQL being ready`, met: firstWriteMs <= RECOVERY_BOUND_MS },
        { text: `/readyz back to 200 on every service within ${RECOVERY_BOUND_MS / 1000} s`, met: maxReadyMs <= RECOVERY_BOUND_MS },
        { text: "every write was either acknowledged (201) or refused with 503 in the error envelope, before, during and after the outage (never 500/502/504)", met: unexpected.length === 0 && bare503 === 0 },
        { text: "every request got an answer (none hung or lost its connection)", met: hung === 0 },
      ],
    };
    recordScenario(result, import.meta.url);
    expect(unmet(result)).toEqual([]);
  }
}
