/**
 * Overload: far more concurrent clients than the platform can serve. The gateway sheds the excess with
 * 503 + Retry-After (MAX_IN_FLIGHT) instead of queueing it, every request gets an answer within seconds,
 * memory grows by a bounded amount, every acknowledged write is stored, and it recovers by itself within
 * seconds once the backlog it had admitted is served.
 */
import { spawn } from "node:child_process";
import { Agent, request } from "node:http";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, newUser, rssMb, startTestPlatform, type TestPlatform } from "./harness.mjs";
import { byStatus, percentile, sleep, startLoad } from "./load.mjs";
import { recordScenario, renderReliability, unmet, type ScenarioResult } from "./report.mjs";

/**
 * wrk's connections: twice the gateway's MAX_IN_FLIGHT, and below its listen backlog (Node's default, 511):
 * 800 connections opened at once overflowed the accept queue, and a connection whose SYN was dropped waits
 * for the kernel's retransmit (1 s, then 3 s...), which wrk counts as a timeout of the platform.
 */
const CONCURRENCY = 500;
const DURATION_MS = 25_000;
/**
 * The gateway answers an admitted request within its upstream timeout (UPSTREAM_TIMEOUT_MS, 10 s by default:
 * 504 after) and a shed one at once: a request without an answer past that was left hanging. wrk counts an
 * answer slower than this, and (every 2 s) a request still waiting longer, as a timeout: well below the
 * run's length, so a hang during the run is seen while wrk runs.
 */
const WRK_TIMEOUT_S = 10;
/** An open-loop client meanwhile: a request every 1000/OPEN_RATE ms whatever the answers, each awaited. */
const OPEN_RATE = 40;
/** Its connections, opened before the load starts (as a proxy's pool is), and reused. */
const OPEN_CONNECTIONS = 64;
/** Every open-loop request (those still pending when wrk stops included) is answered within this. */
const ANSWER_BOUND_MS = WRK_TIMEOUT_S * 1000 + 2_000;
/**
 * wrk's timeouts allowed, as a share of its admitted answers (200 + 201; the fast 503s would dilute it). Not
 * 0: every run on the shared 2-vCPU machine had some (1.2-1.7 % of admitted answers), while none with the
 * in-flight bound lifted: with shedding on, some connections wait past 10 s (`ss` showed hundreds queued
 * unaccepted on the gateway's listen socket during the load). A hung upstream the gateway did not bound
 * gave 20 %. The open-loop client's requests, on connections opened before the load, must all be answered.
 */
const WRK_TIMEOUT_SHARE = 0.05;
const MAX_IN_FLIGHT = 256; // the gateway's default (services/api-gateway/src/config.ts)
/**
 * Growth of RSS from before the load to its peak (not an absolute size: that depends on the build and the
 * machine). Measured over eight runs: 6-44 MB (the gateway), 13-24 MB (the blog-service); the bound keeps
 * the gateway's peak (about 100 MB idle) under its 192Mi limit in the cluster with room to spare. RSS stays
 * near the peak after the load (V8 and malloc keep what they grew), so the peak is what is bounded.
 */
const RSS_GROWTH_BOUND_MB = 64;
const P99_BOUND_MS = 5_000;
/** After the load stops, 20 consecutive authenticated reads must all succeed, starting within this time. */
const RECOVERY_BOUND_MS = 5_000;
const RECOVERY_STREAK = 20;
let platform: TestPlatform;

/**
 * wrk script: alternate a cached read and a post create (PostgreSQL-bound), count requests sent and answers
 * per status, check every 503's shape, keep the id of every 201 (checked in PostgreSQL after), print one JSON line.
 */
const WRK_SCRIPT = `
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) statuses = {}; well_formed = 0; n = 0; answered = 0; ids = {}; no_id = 0 end
function request()
  n = n + 1
  if n % 2 == 0 then return wrk.format("GET", "/api/posts/SEED_ID") end
  return wrk.format("POST", "/api/posts", { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer TOKEN" },
    '{"title":"overload","content":"a write under overload","category_name":"Load"}')
end
function response(status, headers, body)
  answered = answered + 1
  statuses[status] = (statuses[status] or 0) + 1
  if status == 201 then
    local id = body:match('^{"id":(%d+)')
    if id then table.insert(ids, id) else no_id = no_id + 1 end
  end
  if status == 503 then
    local ra = headers["Retry-After"] or headers["retry-after"]
    if ra == "1" and body:find('"status_code":503', 1, true) and body:find('"request_id"', 1, true) then well_formed = well_formed + 1 end
  end
end
function done(summary, latency, requests)
  local agg, wf, sent, got, all_ids, no_ids = {}, 0, 0, 0, {}, 0
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("statuses")) do agg[tostring(k)] = (agg[tostring(k)] or 0) + v end
    wf = wf + t:get("well_formed")
    sent = sent + t:get("n")
    got = got + t:get("answered")
    no_ids = no_ids + t:get("no_id")
    for _, id in ipairs(t:get("ids")) do table.insert(all_ids, id) end
  end
  local parts = {}
  for k, v in pairs(agg) do table.insert(parts, string.format('"%s":%d', k, v)) end
  local e = summary.errors
  io.write(string.format('RESULT {"requests":%d,"sent":%d,"answered":%d,"statuses":{%s},"shed_well_formed":%d,"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d},"p50_ms":%.1f,"p99_ms":%.1f,"max_ms":%.1f,"created_without_id":%d,"created":[%s]}\\n',
    summary.requests, sent, got, table.concat(parts, ","), wf, e.connect, e.read, e.write, e.timeout, latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000, no_ids, table.concat(all_ids, ",")))
end
`;

beforeAll(async () => {
  // The rate limits scaled out of the way: here the in-flight bound is what sheds.
  platform = await startTestPlatform({ env: { "api-gateway": { RATE_LIMIT_SCALE: "100000" } } });
});
afterAll(async () => {
  await platform?.dispose();
  renderReliability();
});

/** One open-loop request: sent on schedule whatever came before; its answer (or its absence) is kept. */
interface OpenOutcome {
  ms: number;
  status: number;
  create: boolean;
  id?: number;
}

describe("overload", () => {
  it("sheds beyond capacity with 503 + Retry-After, answers every request, keeps memory growth bounded, keeps every acknowledged write, and recovers within seconds", async () => {
    const base = platform.url;
    const { token } = await newUser(base, "ovl1");
    const seed = await call(base, "POST", "/api/posts", { token, body: { title: "overload", content: "seed", category_name: "Load" } });
    const seedId = (seed.json as { id: number }).id;
    const sql = postgres(platform.postgres.url, { max: 1, onnotice: () => {} });
    const countPosts = async () => Number((await sql<{ n: string }[]>`select count(*) as n from posts where author = 'ovl1'`)[0]!.n);
    const postsBefore = await countPosts();
    const pids = { gateway: platform.services["api-gateway"].process?.pid, blog: platform.services["blog-service"].process?.pid };
    const before = { gateway: rssMb(pids.gateway), blog: rssMb(pids.blog) };
    const peak = { ...before };
    const sampler = setInterval(() => {
      peak.gateway = Math.max(peak.gateway, rssMb(pids.gateway));
      peak.blog = Math.max(peak.blog, rssMb(pids.blog));
    }, 100);

    // The open-loop client's pool of kept-alive connections, opened now (as a proxy in front holds its
    // connections): a request beyond the pool waits in it, and that wait counts in its latency.
    const openAgent = new Agent({ keepAlive: true, maxSockets: OPEN_CONNECTIONS, maxFreeSockets: OPEN_CONNECTIONS });
    await Promise.all(
      Array.from({ length: OPEN_CONNECTIONS }, () => new Promise<void>((resolve) => request(`${base}/api/posts/${seedId}`, { agent: openAgent }, (res) => res.resume().on("end", resolve)).on("error", () => resolve()).end())),
    );
    const openWarm = Object.values(openAgent.freeSockets).reduce((n, l) => n + (l?.length ?? 0), 0);
    // The load generator is wrk (C): an in-process one would need most of a core itself. wrk counts the
    // answers per status, checks each 503 for the envelope and Retry-After, and keeps each 201's id.
    const dir = mkdtempSync(join(tmpdir(), "titanium-overload-"));
    const script = join(dir, "overload.lua");
    writeFileSync(script, WRK_SCRIPT.replace("SEED_ID", String(seedId)).replace("TOKEN", token));
    const wrk = spawn("wrk", ["-t2", `-c${CONCURRENCY}`, `-d${DURATION_MS / 1000}s`, "--timeout", `${WRK_TIMEOUT_S}s`, "--latency", "-s", script, base], { stdio: ["ignore", "pipe", "pipe"] });
    let wrkOut = "";
    wrk.stdout.on("data", (b: Buffer) => (wrkOut += b.toString()));
    wrk.stderr.on("data", (b: Buffer) => (wrkOut += b.toString()));
    const wrkDone = new Promise<number | null>((r) => wrk.once("exit", r));
    // A well-behaved client meanwhile: one request at a time, its admitted answers' latency is what users see.
    const probe = startLoad({
      concurrency: 1,
      hardTimeoutMs: DURATION_MS + 30_000,
      pauseMs: 20,
      next: (_w, n) => ({ label: "probe", send: () => call(base, "GET", n % 2 ? "/api/posts" : `/api/posts/${seedId}`, { timeoutMs: 30_000 }) }),
    });
    // And an open-loop client: requests on a fixed schedule whatever the answers (so a backlog the platform
    // let grow would grow with it), every one awaited to the end, those still pending when wrk stops included.
    const open: Promise<OpenOutcome>[] = [];
    const openStarted = Date.now();
    const openSend = async (n: number): Promise<OpenOutcome> => {
      const create = n % 2 === 0;
      const started = performance.now();
      const body = create ? JSON.stringify({ title: "overload", content: "an open-loop write under overload", category_name: "Load" }) : "";
      // The client gives up only well past the bound: an answer later than the bound is measured, not cut.
      const { status, text } = await new Promise<{ status: number; text: string }>((resolve) => {
        const req = request(
          `${base}${create ? "/api/posts" : `/api/posts/${seedId}`}`,
          { method: create ? "POST" : "GET", agent: openAgent, timeout: 30_000, headers: create ? { authorization: `Bearer ${token}`, "content-type": "application/json", "content-length": Buffer.byteLength(body) } : {} },
          (res) => {
            let t = "";
            res.setEncoding("utf8");
            res.on("data", (c: string) => (t += c));
            res.on("end", () => resolve({ status: res.statusCode ?? 0, text: t }));
            res.on("error", (err) => resolve({ status: 0, text: String(err) }));
          },
        );
        req.on("timeout", () => req.destroy(new Error("timeout")));
        req.on("error", (err) => resolve({ status: 0, text: String(err) }));
        req.end(body);
      });
      const id = create && status === 201 ? (JSON.parse(text) as { id?: unknown }).id : undefined;
      return { ms: performance.now() - started, status, create, ...(typeof id === "number" && { id }) };
    };
    for (let n = 0; Date.now() - openStarted < DURATION_MS; n++) {
      open.push(openSend(n));
      await sleep(Math.max(0, openStarted + ((n + 1) * 1000) / OPEN_RATE - Date.now()));
    }
    const wrkCode = await wrkDone;
    // The load stopped when wrk exited: read now, before the probe is stopped (stop() waits for the probe's
    // request in flight, which may sit behind the whole admitted backlog: up to its 30 s timeout).
    const loadStopped = Date.now();
    const probeStopped = probe.stop().then(() => Date.now() - loadStopped);
    const openDone = Promise.all(open);
    rmSync(dir, { recursive: true, force: true });
    // Then: normal requests succeed again, all the way to PostgreSQL (authenticated, so never the gateway's
    // micro-cache), and the blog-service itself is ready. wrk stops without waiting for the answers it still
    // owes, so the gateway and the blog-service first finish that backlog (requests already admitted): the
    // recovery time is read from the moment the load stopped (wrk exited) to the first of 20 consecutive
    // 200s, so the time the backlog takes to drain counts against the bound. It starts at once, while the
    // open-loop client's last requests and the probe's are still being answered.
    const measureRecovery = async () => {
      const recoveryMisses: string[] = [];
      let streak = 0;
      let recoveredAt = NaN;
      for (let i = 0; streak < RECOVERY_STREAK && Date.now() - loadStopped < RECOVERY_BOUND_MS * 2; i++) {
        const sentAt = Date.now();
        const r = await call(base, "GET", i % 2 ? "/api/posts" : `/api/posts/${seedId}`, { token, timeoutMs: RECOVERY_BOUND_MS });
        const status = r.headers.get("x-cache") === "HIT" ? "cache HIT" : r.status;
        if (status === 200) {
          if (streak++ === 0) recoveredAt = sentAt;
        } else {
          streak = 0;
          recoveryMisses.push(`${status} after ${sentAt - loadStopped} ms`);
          await sleep(100);
        }
      }
      return { recoveryMs: streak >= RECOVERY_STREAK ? recoveredAt - loadStopped : NaN, recoveryMisses };
    };
    const recovery = measureRecovery();
    const openOutcomes = await openDone;
    openAgent.destroy();
    const probeStoppedMs = await probeStopped;
    const { recoveryMs, recoveryMisses } = await recovery;
    clearInterval(sampler);
    const summaryLine = /^RESULT (.*)$/m.exec(wrkOut)?.[1];
    if (!summaryLine) throw new Error(`wrk (exit ${wrkCode}) gave no result:\n${wrkOut}`);
    const w = JSON.parse(summaryLine) as {
      requests: number;
      sent: number;
      answered: number;
      statuses: Record<string, number>;
      shed_well_formed: number;
      errors: { connect: number; read: number; write: number; timeout: number };
      p50_ms: number;
      p99_ms: number;
      max_ms: number;
      created_without_id: number;
      created: number[];
    };
    const shed = w.statuses["503"] ?? 0;
    /** Requests wrk had sent and not seen answered when it stopped (at most one per connection). */
    const wrkPending = w.sent - w.answered;

    // A NaN (never 20 in a row) or a late streak fails the criterion below.
    const recovered = Number.isFinite(recoveryMs) && recoveryMs <= RECOVERY_BOUND_MS;
    let ready = await call(platform.services["blog-service"].url, "GET", "/readyz");
    for (let i = 0; ready.status !== 200 && i < 20; i++) {
      recoveryMisses.push(`/readyz ${ready.status}`);
      await sleep(250);
      ready = await call(platform.services["blog-service"].url, "GET", "/readyz");
    }
    await sleep(2000);
    const after = { gateway: rssMb(pids.gateway), blog: rssMb(pids.blog) };

    // Every acknowledged create (wrk's and the open-loop client's 201s) is in PostgreSQL, as written; and no
    // more posts appeared than were acknowledged, but for requests whose answer nobody waited for (wrk's
    // pending ones): a shed (503) write must not have been done.
    const openCreated = openOutcomes.flatMap((o) => (o.id === undefined ? [] : [o.id]));
    const ackedIds = [...w.created, ...openCreated];
    const openCreatedWithoutId = openOutcomes.filter((o) => o.create && o.status === 201 && o.id === undefined).length;
    const stored = await sql<{ id: number }[]>`select id from posts where id = any(${ackedIds}) and author = 'ovl1' and title = 'overload'`;
    const postsAfter = await countPosts();
    await sql.end();
    const storedIds = new Set(stored.map((r) => r.id));
    const missing = ackedIds.filter((id) => !storedIds.has(id));
    const acked201 = (w.statuses["201"] ?? 0) + openOutcomes.filter((o) => o.create && o.status === 201).length;
    const createdRows = postsAfter - postsBefore;
    const unacknowledgedRows = createdRows - acked201;

    const admitted = probe.outcomes.filter((o) => o.status === 200);
    const otherStatuses = Object.entries(w.statuses).filter(([k]) => k !== "200" && k !== "201" && k !== "503");
    const probeFailures = probe.outcomes.filter((o) => o.status !== 200 && o.status !== 503);
    const openFailures = openOutcomes.filter((o) => o.status !== (o.create ? 201 : 200) && o.status !== 503);
    const openLate = openOutcomes.filter((o) => o.ms >= ANSWER_BOUND_MS);
    const openMaxMs = Math.round(Math.max(...openOutcomes.map((o) => o.ms)));
    const seconds = DURATION_MS / 1000;
    const growth = { gateway: Math.round((peak.gateway - before.gateway) * 10) / 10, blog: Math.round((peak.blog - before.blog) * 10) / 10 };
    const result: ScenarioResult = {
      id: "overload",
      title: "Overload far beyond capacity",
      suite: "npm run test:resilience",
      injected: `wrk with ${CONCURRENCY} connections (no pause, a ${WRK_TIMEOUT_S} s timeout) alternating a cached read and an authenticated post create (bound by PostgreSQL) through the gateway for ${seconds} s, plus an open-loop client (${OPEN_RATE} requests/s on a fixed schedule, the same mix, every request awaited) and a probe client sending one request at a time; MAX_IN_FLIGHT=${MAX_IN_FLIGHT} (default), rate limits scaled out of the way`,
      measured: {
        "requests sent (wrk + open loop + probe)": `${w.sent} + ${openOutcomes.length} + ${probe.outcomes.length}`,
        "wrk answers": JSON.stringify(w.statuses),
        "admitted (200 + 201) per second": Math.round(((w.statuses["200"] ?? 0) + (w.statuses["201"] ?? 0)) / seconds),
        "shed (503) / with envelope and Retry-After": `${shed} / ${w.shed_well_formed}`,
        [`wrk connection errors and timeouts (answer or wait over ${WRK_TIMEOUT_S} s)`]: JSON.stringify(w.errors),
        "wrk p50 / p99 / max latency, answers within the timeout (ms)": `${w.p50_ms} / ${w.p99_ms} / ${w.max_ms}`,
        "wrk requests still unanswered when it stopped (its connections closed)": wrkPending,
        "open-loop client connections opened before the load": openWarm,
        "open-loop client answers": JSON.stringify(byStatus(openOutcomes.map((o) => ({ ...o, at: 0, label: "" })))),
        "open-loop client p50 / p99 / max latency, all answers (ms)": `${percentile(openOutcomes.map((o) => o.ms), 50)} / ${percentile(openOutcomes.map((o) => o.ms), 99)} / ${openMaxMs}`,
        "probe client answers": JSON.stringify(byStatus(probe.outcomes)),
        "probe client p50 / p99 latency of admitted requests (ms)": `${percentile(admitted.map((o) => o.ms), 50)} / ${percentile(admitted.map((o) => o.ms), 99)}`,
        "gateway RSS before / peak / after (MB), growth to peak": `${before.gateway} / ${peak.gateway} / ${after.gateway}, +${growth.gateway}`,
        "blog-service RSS before / peak / after (MB), growth to peak": `${before.blog} / ${peak.blog} / ${after.blog}, +${growth.blog}`,
        "acknowledged creates (201: wrk + open loop) / checked in PostgreSQL / missing": `${w.statuses["201"] ?? 0} + ${openCreated.length} / ${ackedIds.length} / ${missing.length}`,
        "201s without a post id": w.created_without_id + openCreatedWithoutId,
        "posts created in PostgreSQL / beyond the acknowledged ones": `${createdRows} / ${unacknowledgedRows}`,
        "wrk exited → the probe's last request answered (ms)": probeStoppedMs,
        "recovery: from wrk exiting to the first of 20 consecutive 200s (ms)": Number.isNaN(recoveryMs) ? "not recovered" : recoveryMs,
        "recovery: answers other than 200 on the way": recoveryMisses.length ? recoveryMisses.join("; ") : "none",
      },
      criteria: [
        { text: "load beyond capacity is shed with 503, each in the envelope with Retry-After", met: shed > 0 && w.shed_well_formed === shed },
        {
          text: "nothing else fails: only 200/201 and 503 answers, no connection error (wrk, the open-loop client and the probe)",
          met: otherStatuses.length === 0 && w.errors.connect + w.errors.read + w.errors.write === 0 && probeFailures.length === 0 && openFailures.length === 0,
        },
        {
          text: `no request hangs: every open-loop request, those still pending when the load stopped included, is answered within ${ANSWER_BOUND_MS / 1000} s (the gateway's ${WRK_TIMEOUT_S} s upstream timeout and 2 s), and wrk's timeouts (an answer slower than ${WRK_TIMEOUT_S} s or a request waiting longer, checked every 2 s while it runs) stay under ${WRK_TIMEOUT_SHARE * 100} % of its admitted (200 + 201) answers`,
          met: openOutcomes.length > 0 && openLate.length === 0 && openOutcomes.every((o) => o.status !== 0) && w.errors.timeout <= WRK_TIMEOUT_SHARE * ((w.statuses["200"] ?? 0) + (w.statuses["201"] ?? 0)),
        },
        { text: `p99 of the probe client's admitted requests under ${P99_BOUND_MS} ms`, met: admitted.length > 0 && percentile(admitted.map((o) => o.ms), 99) < P99_BOUND_MS },
        {
          text: `memory growth bounded: gateway and blog-service RSS grow less than ${RSS_GROWTH_BOUND_MB} MB from before the load to its peak`,
          met: Number.isFinite(growth.gateway) && Number.isFinite(growth.blog) && growth.gateway < RSS_GROWTH_BOUND_MB && growth.blog < RSS_GROWTH_BOUND_MB,
        },
        {
          text: "every acknowledged create (201, wrk's and the open-loop client's, each with its id) is in PostgreSQL with its author and title, and no more posts were created than acknowledged beyond wrk's requests left unanswered when it stopped (a shed write was not done)",
          met: acked201 > 0 && ackedIds.length === acked201 && missing.length === 0 && unacknowledgedRows >= 0 && unacknowledgedRows <= wrkPending,
        },
        {
          text: `recovers by itself: within ${RECOVERY_BOUND_MS / 1000} s of the load stopping, ${RECOVERY_STREAK} consecutive authenticated reads (past the micro-cache, to PostgreSQL) all answer 200; the blog-service's /readyz answers 200; both processes alive`,
          met: recovered && ready.status === 200 && !Number.isNaN(after.gateway) && !Number.isNaN(after.blog),
        },
      ],
    };
    recordScenario(result, import.meta.url);
    expect(unmet(result)).toEqual([]);
  });
});
