/**
 * Overload: far more concurrent clients than the platform can serve. The gateway sheds the excess with
 * 503 + Retry-After (MAX_IN_FLIGHT) instead of queueing it, memory stays bounded, and it recovers by itself
 * within seconds once the backlog it had admitted is served.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, newUser, rssMb, startTestPlatform, type TestPlatform } from "./harness.mjs";
import { byStatus, percentile, sleep, startLoad } from "./load.mjs";
import { recordScenario, renderReliability, unmet, type ScenarioResult } from "./report.mjs";

const CONCURRENCY = 800;
const DURATION_MS = 8_000;
const MAX_IN_FLIGHT = 256; // the gateway's default (services/api-gateway/src/config.ts)
const RSS_BOUND_MB = 250;
const P99_BOUND_MS = 5_000;
/** After the load stops, 20 consecutive authenticated reads must all succeed, starting within this time. */
const RECOVERY_BOUND_MS = 5_000;
const RECOVERY_STREAK = 20;
let platform: TestPlatform;

/** wrk script: alternate a cached read and a post create (PostgreSQL-bound), count answers per status, check every 503's shape, print one JSON line. */
const WRK_SCRIPT = `
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) statuses = {}; well_formed = 0; n = 0 end
function request()
  n = n + 1
  if n % 2 == 0 then return wrk.format("GET", "/api/posts/SEED_ID") end
  return wrk.format("POST", "/api/posts", { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer TOKEN" },
    '{"title":"overload","content":"a write under overload","category_name":"Load"}')
end
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status == 503 then
    local ra = headers["Retry-After"] or headers["retry-after"]
    if ra == "1" and body:find('"status_code":503', 1, true) and body:find('"request_id"', 1, true) then well_formed = well_formed + 1 end
  end
end
function done(summary, latency, requests)
  local agg, wf = {}, 0
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("statuses")) do agg[tostring(k)] = (agg[tostring(k)] or 0) + v end
    wf = wf + t:get("well_formed")
  end
  local parts = {}
  for k, v in pairs(agg) do table.insert(parts, string.format('"%s":%d', k, v)) end
  local e = summary.errors
  io.write(string.format('RESULT {"requests":%d,"statuses":{%s},"shed_well_formed":%d,"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d},"p50_ms":%.1f,"p99_ms":%.1f}\\n',
    summary.requests, table.concat(parts, ","), wf, e.connect, e.read, e.write, e.timeout, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
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

describe("overload", () => {
  it("sheds beyond capacity with 503 + Retry-After, keeps memory bounded, and recovers within seconds", async () => {
    const base = platform.url;
    const { token } = await newUser(base, "ovl1");
    const seed = await call(base, "POST", "/api/posts", { token, body: { title: "overload", content: "seed", category_name: "Load" } });
    const seedId = (seed.json as { id: number }).id;
    const pids = { gateway: platform.services["api-gateway"].process?.pid, blog: platform.services["blog-service"].process?.pid };
    const before = { gateway: rssMb(pids.gateway), blog: rssMb(pids.blog) };
    const peak = { ...before };
    const sampler = setInterval(() => {
      peak.gateway = Math.max(peak.gateway, rssMb(pids.gateway));
      peak.blog = Math.max(peak.blog, rssMb(pids.blog));
    }, 100);

    // The load generator is wrk (C): an in-process one would need most of a core itself. wrk counts the
    // answers per status and checks each 503 for the envelope and Retry-After.
    const dir = mkdtempSync(join(tmpdir(), "titanium-overload-"));
    const script = join(dir, "overload.lua");
    writeFileSync(script, WRK_SCRIPT.replace("SEED_ID", String(seedId)).replace("TOKEN", token));
    const wrk = spawn("wrk", ["-t2", `-c${CONCURRENCY}`, `-d${DURATION_MS / 1000}s`, "--timeout", "30s", "--latency", "-s", script, base], { stdio: ["ignore", "pipe", "pipe"] });
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
    const wrkCode = await wrkDone;
    // The load stopped when wrk exited: read now, before the probe is stopped (stop() waits for the probe's
    // request in flight, which may sit behind the whole admitted backlog: up to its 30 s timeout).
    const loadStopped = Date.now();
    await probe.stop();
    const probeStoppedMs = Date.now() - loadStopped;
    clearInterval(sampler);
    rmSync(dir, { recursive: true, force: true });
    const summaryLine = /^RESULT (.*)$/m.exec(wrkOut)?.[1];
    if (!summaryLine) throw new Error(`wrk (exit ${wrkCode}) gave no result:\n${wrkOut}`);
    const w = JSON.parse(summaryLine) as { requests: number; statuses: Record<string, number>; shed_well_formed: number; errors: { connect: number; read: number; write: number; timeout: number }; p50_ms: number; p99_ms: number };
    const shed = w.statuses["503"] ?? 0;
    const wrkErrors = w.errors.connect + w.errors.read + w.errors.write + w.errors.timeout;

    // Then: normal requests succeed again, all the way to PostgreSQL (authenticated, so never the gateway's
    // micro-cache), and the blog-service itself is ready. wrk stops without waiting for the answers it still
    // owes, so the gateway and the blog-service first finish that backlog (requests already admitted): the
    // recovery time is read from the moment the load stopped (wrk exited, read above) to the first of 20
    // consecutive 200s, so the time the backlog takes to drain counts against the bound.
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
    const recoveryMs = streak >= RECOVERY_STREAK ? recoveredAt - loadStopped : NaN;
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

    const admitted = probe.outcomes.filter((o) => o.status === 200);
    const otherStatuses = Object.entries(w.statuses).filter(([k]) => k !== "200" && k !== "201" && k !== "503");
    const probeFailures = probe.outcomes.filter((o) => o.status !== 200 && o.status !== 503);
    const seconds = DURATION_MS / 1000;
    const result: ScenarioResult = {
      id: "overload",
      title: "Overload far beyond capacity",
      suite: "npm run test:resilience",
      injected: `wrk with ${CONCURRENCY} connections (no pause) alternating a cached read and an authenticated post create (bound by PostgreSQL) through the gateway for ${seconds} s, plus a probe client sending one request at a time; MAX_IN_FLIGHT=${MAX_IN_FLIGHT} (default), rate limits scaled out of the way`,
      measured: {
        "requests sent (wrk + probe)": `${w.requests} + ${probe.outcomes.length}`,
        "wrk answers": JSON.stringify(w.statuses),
        "admitted (200 + 201) per second": Math.round(((w.statuses["200"] ?? 0) + (w.statuses["201"] ?? 0)) / seconds),
        "shed (503) / with envelope and Retry-After": `${shed} / ${w.shed_well_formed}`,
        "wrk connection errors and timeouts": JSON.stringify(w.errors),
        "wrk p50 / p99 latency, all answers (ms)": `${w.p50_ms} / ${w.p99_ms}`,
        "probe client answers": JSON.stringify(byStatus(probe.outcomes)),
        "probe client p50 / p99 latency of admitted requests (ms)": `${percentile(admitted.map((o) => o.ms), 50)} / ${percentile(admitted.map((o) => o.ms), 99)}`,
        "gateway RSS before / peak / after (MB)": `${before.gateway} / ${peak.gateway} / ${after.gateway}`,
        "blog-service RSS before / peak / after (MB)": `${before.blog} / ${peak.blog} / ${after.blog}`,
        "wrk exited → the probe's last request answered (ms)": probeStoppedMs,
        "recovery: from wrk exiting to the first of 20 consecutive 200s (ms)": Number.isNaN(recoveryMs) ? "not recovered" : recoveryMs,
        "recovery: answers other than 200 on the way": recoveryMisses.length ? recoveryMisses.join("; ") : "none",
      },
      criteria: [
        { text: "load beyond capacity is shed with 503, each in the envelope with Retry-After", met: shed > 0 && w.shed_well_formed === shed },
        { text: "nothing else fails: only 200/201 and 503 answers, no connection error or timeout (wrk and the probe)", met: otherStatuses.length === 0 && wrkErrors === 0 && probeFailures.length === 0 },
        { text: `p99 of the probe client's admitted requests under ${P99_BOUND_MS} ms`, met: admitted.length > 0 && percentile(admitted.map((o) => o.ms), 99) < P99_BOUND_MS },
        { text: `gateway and blog-service peak RSS under ${RSS_BOUND_MB} MB`, met: peak.gateway < RSS_BOUND_MB && peak.blog < RSS_BOUND_MB },
        {
          text: `recovers by itself: within ${RECOVERY_BOUND_MS / 1000} s of the load stopping, ${RECOVERY_STREAK} consecutive authenticated reads (past the micro-cache, to PostgreSQL) all answer 200; the blog-service's /readyz answers 200; both processes alive`,
          met: recovered && ready.status === 200 && !Number.isNaN(after.gateway) && !Number.isNaN(after.blog),
        },
      ],
    };
    recordScenario(result);
    expect(unmet(result)).toEqual([]);
  });
});
