/**
 * Redis stops during a read and write load and comes back with its old data: reads keep succeeding from
 * PostgreSQL, rate limits fall back to in-process ones, and no cache serves what changed meanwhile.
 */
import { Redis } from "ioredis";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, newUser, rssMb, startTestPlatform, type TestPlatform } from "./harness.mjs";
import { byStatus, sleep, startLoad, timeUntil } from "./load.mjs";
import { BLOG_CACHE_GENERATION_KEY as CACHE_GENERATION_KEY } from "../../services/kit/src/contract.js";
import { recordScenario, renderReliability, unmet, type ScenarioResult } from "./report.mjs";

const OUTAGE_MS = 4_000;
/** Each reader's pause between reads: at most 5 reads/s each (load.mts sends the next after the answer and the pause). */
const READ_PAUSE_MS = 200;
const READERS = 3;
/**
 * Reads answered while Redis was down, at least this share of what 3 readers pacing at 5/s could send in that
 * time: a read that waited for Redis (or a timeout) holds its reader, so blocking reads make the count collapse.
 * Not 1: each read's own latency and the timer add to the 200 ms pause.
 */
const READ_RATE_SHARE = 0.7;
/**
 * Any read sent while Redis was down answers within this. With Redis gone, a command fails at once (no
 * offline queue) or at the latest after the kit's 500 ms command timeout (services/kit/src/redis.ts), after
 * which the connection is dropped and later commands fail at once; a read makes its Redis calls one after
 * another (the gateway's limiter, then the service's cache), so it pays at most one such timeout. Taking
 * 1 s or more means it waited on Redis beyond that: blocked until Redis answered or came back.
 */
const READ_BOUND_MS = 1_000;
/** The original per-client login limit (services/api-gateway/src/routes.ts RATE_LIMITS.login: 5/min, burst 5). */
const LOGIN_LIMIT = 5;
const LOGIN_ATTEMPTS = 7;
/** From Redis being ready again to every service's /readyz reporting it ok (the client's backoff is capped at 3 s). */
const RECONNECT_BOUND_MS = 10_000;
let platform: TestPlatform;

beforeAll(async () => {
  // The original limits (scale 1): the fallback must still refuse with 429 on a low limit.
  // The gateway's micro-cache keeps entries a minute here (5 s by default), so its entries from before the
  // outage are still alive afterwards: served unless something retires them (the gateway drops them when
  // its Redis connection closes, and the blog's owed generation bump retires them too; the drop alone is
  // covered by response-cache.test.ts, since the bump usually lands before this test's checks).
  platform = await startTestPlatform({ env: { "api-gateway": { RESPONSE_CACHE_MAX_AGE_MS: "60000" } } });
});
afterAll(async () => {
  await platform?.dispose();
  renderReliability();
});

/** Reads Redis directly (the test's own connection, closed after), to see what the services stored. */
async function inRedis<T>(read: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = new Redis(platform.redis!.url, { lazyConnect: true, maxRetriesPerRequest: 0 });
  await redis.connect();
  try {
    return await read(redis);
  } finally {
    redis.disconnect();
  }
}

const READS = ["/api/posts", "post", "/api/categories", "/api/users/me"] as const;

describe("Redis down during load", () => {
  it("serves reads from PostgreSQL, limits in-process, and serves nothing stale after Redis returns with its old data", async () => {
    const base = platform.url;
    const [r1, r2, r3, writer] = await Promise.all(["rd1", "rd2", "rd3", "rdw"].map((u) => newUser(base, u)));
    const readers = [r1!, r2!, r3!];
    const p1 = await call(base, "POST", "/api/posts", { token: r1!.token, body: { title: "Before the outage", content: "original text", category_name: "General" } });
    expect(p1.status).toBe(201);
    const p1Id = (p1.json as { id: number }).id;
    // Warm every cache the checks read.
    for (let i = 0; i < 2; i++)
      for (const path of ["/api/posts", `/api/posts/${p1Id}`, "/api/categories"]) await call(base, "GET", path);
    await call(base, "GET", "/api/users/me", { token: r1!.token });
    const genBefore = (await inRedis((r) => r.get(CACHE_GENERATION_KEY))) ?? "0";
    const staleKey = `blog:${genBefore}:post:${p1Id}`;
    const warmed = await inRedis(async (r) => (await r.get(staleKey)) !== null && (await r.keys("user:*:rd1")).length === 1);

    let writesPaused = false;
    /** The writer's acknowledged (201) posts: the title it sent, when it was sent and answered. */
    const acked: { id: number; title: string; sentAt: number; answeredAt: number }[] = [];
    const write = async (title: string) => {
      const sentAt = Date.now();
      const r = await call(base, "POST", "/api/posts", { token: writer!.token, body: { title, content: "steady writes", category_name: "Load" } });
      const id = (r.json as { id?: unknown } | undefined)?.id;
      if (r.status === 201) acked.push({ id: typeof id === "number" ? id : Number.NaN, title, sentAt, answeredAt: Date.now() });
      return r;
    };
    const load = startLoad({
      concurrency: 4,
      hardTimeoutMs: 60_000,
      next: (w, n) => {
        // The writer pauses while the gateway's micro-cache is warmed just before the outage (a write would
        // move the generation and retire what was just stored); its writes resume during the outage.
        if (w === 3 && writesPaused) return { label: "write paused", send: () => call(base, "GET", "/api/auth/health") };
        if (w === 3) return { label: "write", send: () => write(`load ${n}`) };
        const what = READS[n % READS.length]!;
        const path = what === "post" ? `/api/posts/${p1Id}` : what;
        // Reader 0 is anonymous (the gateway's micro-cache path) except for its own profile.
        const token = w === 0 && what !== "/api/users/me" ? undefined : readers[w]!.token;
        return { label: `read ${what}`, send: () => call(base, "GET", path, { ...(token && { token }) }) };
      },
      // Readers 5 req/s each: under the original per-user read limits (the writer meets its create limit).
      pauseMs: READ_PAUSE_MS,
    });
    const gatewayPid = platform.services["api-gateway"].process?.pid;
    const rssBefore = rssMb(gatewayPid);
    await sleep(1500);

    // The gateway's micro-cache holds the anonymous reads from just before the outage.
    writesPaused = true;
    await sleep(400); // a write already on its way lands first
    const microCached = [];
    for (const path of ["/api/posts?limit=50", `/api/posts/${p1Id}`, "/api/categories"]) {
      await call(base, "GET", path);
      microCached.push((await call(base, "GET", path)).headers.get("x-cache") === "HIT");
    }
    // The blog's cache generation when Redis stops (writes paused, so no bump races this read).
    const genAtStop = await inRedis((r) => r.get(CACHE_GENERATION_KEY));
    const downAt = Date.now();
    await platform.redis!.stop();
    writesPaused = false;
    await sleep(500);
    const patched = await call(base, "PATCH", `/api/posts/${p1Id}`, { token: r1!.token, body: { title: "Changed during the outage" } });
    const email = await call(base, "PATCH", "/api/users/me", { token: r1!.token, body: { email: "rd1-new@example.com" } });
    const p2 = await call(base, "POST", "/api/posts", { token: r1!.token, body: { title: "Written during the outage", content: "new", category_name: "Outage" } });
    const readDuring = await call(base, "GET", `/api/posts/${p1Id}`);
    const logins = [];
    for (let i = 0; i < LOGIN_ATTEMPTS; i++) logins.push((await call(base, "POST", "/api/login", { body: { username: "nobody-here", password: "wrong-password-1" } })).status);
    await sleep(OUTAGE_MS - 500);

    // No write from here on: a generation bump after Redis returns can only be the invalidation owed for the
    // outage's writes (rename, email, create), not a new write's.
    writesPaused = true;
    await sleep(400);
    await platform.redis!.start();
    const upAt = Date.now();
    const staleSurvived = (await inRedis((r) => r.get(staleKey)))?.includes("Before the outage") ?? false;
    const redisOk = async (url: string) => ((await call(url, "GET", "/readyz")).json as { checks?: Record<string, string> } | undefined)?.checks?.redis === "ok";
    const reconnectMs = await timeUntil(
      async () => (await redisOk(platform.services["blog-service"].url)) && (await redisOk(platform.services["user-service"].url)),
      15_000,
    );

    // The cache is in use again, under a generation newer than the one the outage's writes could not bump:
    // an authenticated read of the renamed post (past the gateway's micro-cache) pays the owed bump if the
    // reconnect has not yet, and files the post under the generation it read. Without this, a cache that
    // stayed bypassed (every read from PostgreSQL) would pass the freshness checks below trivially.
    const viaBlog = await call(base, "GET", `/api/posts/${p1Id}`, { token: r1!.token });
    const { genAfter, entryAfter } = await inRedis(async (r) => {
      const gen = await r.get(CACHE_GENERATION_KEY);
      return { genAfter: gen, entryAfter: gen === null ? null : await r.get(`blog:${gen}:post:${p1Id}`) };
    });
    const genNewer = genAtStop !== null && genAfter !== null && /^\d+$/.test(genAtStop) && /^\d+$/.test(genAfter) && BigInt(genAfter) > BigInt(genAtStop);
    const cachedAgain = viaBlog.status === 200 && (entryAfter?.includes("Changed during the outage") ?? false);

    // Fresh after Redis returned (each read twice: the second may come from the repopulated cache).
    const p2Id = (p2.json as { id: number } | undefined)?.id;
    const fresh: Record<string, boolean> = {};
    for (let i = 0; i < 2; i++) {
      const list = await call(base, "GET", "/api/posts?limit=50");
      const items = (list.json as { id: number; title: string }[] | undefined) ?? [];
      const post = await call(base, "GET", `/api/posts/${p1Id}`);
      const cats = (await call(base, "GET", "/api/categories")).json as { name: string; post_count: number }[] | undefined;
      const me = (await call(base, "GET", "/api/users/me", { token: r1!.token })).json as { email?: string } | undefined;
      fresh[`list has the post written during the outage (${i + 1})`] = items.some((p) => p.id === p2Id);
      fresh[`list shows the changed title (${i + 1})`] = items.some((p) => p.id === p1Id && p.title === "Changed during the outage");
      fresh[`post shows the changed title (${i + 1})`] = (post.json as { title?: string } | undefined)?.title === "Changed during the outage";
      fresh[`category counts include the outage post (${i + 1})`] = cats?.some((c) => c.name === "Outage" && c.post_count === 1) ?? false;
      fresh[`profile shows the changed email (${i + 1})`] = me?.email === "rd1-new@example.com";
    }
    await sleep(1000);
    await load.stop();

    // What was acknowledged during the outage is in PostgreSQL: the writer's posts (id, title, author), the
    // post created, the rename and the email change.
    const sql = postgres(platform.postgres.url, { max: 1, onnotice: () => {} });
    const ackedIds = acked.map((a) => a.id).filter(Number.isInteger);
    const rows = await sql<{ id: number; title: string; author: string }[]>`select id, title, author from posts where id = any(${ackedIds})`;
    const p1Row = await sql<{ title: string }[]>`select title from posts where id = ${p1Id}`;
    const p2Row = p2Id === undefined ? [] : await sql<{ title: string; author: string }[]>`select title, author from posts where id = ${p2Id}`;
    const rd1Row = await sql<{ email: string }[]>`select email from users where lower(username) = 'rd1'`;
    await sql.end();
    const inDb = new Map(rows.map((r) => [r.id, r]));
    const ackedDuring = acked.filter((a) => a.sentAt >= downAt && a.answeredAt < upAt);
    const notStored = (list: typeof acked) => list.filter((a) => inDb.get(a.id)?.title !== a.title || inDb.get(a.id)?.author !== "rdw");
    const missingDuring = notStored(ackedDuring);
    const missingOverall = notStored(acked);
    const outageWritesStored =
      p1Row[0]?.title === "Changed during the outage" && p2Row[0]?.title === "Written during the outage" && p2Row[0]?.author === "rd1" && rd1Row[0]?.email === "rd1-new@example.com";

    const reads = load.outcomes.filter((o) => o.label.startsWith("read"));
    // Reads sent while Redis was down, and those of them answered before it was back: a read that waited for
    // Redis to return is sent during the outage but not answered in it.
    const readsSentDuring = reads.filter((o) => o.at >= downAt && o.at < upAt);
    const readsDuring = readsSentDuring.filter((o) => o.at + o.ms < upAt);
    const outageSeconds = (upAt - downAt) / 1000;
    const readsExpected = Math.floor(READ_RATE_SHARE * READERS * (1000 / READ_PAUSE_MS) * outageSeconds);
    const slowReads = readsSentDuring.filter((o) => o.ms >= READ_BOUND_MS);
    const maxReadMs = readsSentDuring.length ? Math.round(Math.max(...readsSentDuring.map((o) => o.ms))) : Number.NaN;
    const readFailures = reads.filter((o) => o.status < 200 || o.status >= 300);
    const expectedLogins = Array.from({ length: LOGIN_ATTEMPTS }, (_, i) => (i < LOGIN_LIMIT ? 401 : 429));
    const stale = Object.entries(fresh).filter(([, ok]) => !ok).map(([k]) => k);
    const result: ScenarioResult = {
      id: "redis-down",
      title: "Redis down during a read and write load, back with its old data",
      suite: "npm run test:resilience",
      injected: `Redis stopped for ${OUTAGE_MS / 1000} s (SIGTERM; its append-only file kept) while 3 readers (list, post, categories, profile; 5 req/s each) and a writer (a post every 200 ms, so its create limit of 10/min answers 429 beyond) ran through the gateway at the original rate limits; during the outage a post was renamed, a profile's email changed and a post was created in a new category; Redis then restarted with the entries cached before`,
      measured: {
        "requests sent": load.outcomes.length,
        "reads sent overall": reads.length,
        "Redis down → back (s)": outageSeconds.toFixed(2),
        "reads sent while Redis was down / of them answered before it was back": `${readsSentDuring.length} / ${readsDuring.length}`,
        [`reads answered while Redis was down, needed (${READ_RATE_SHARE} × ${READERS} readers × ${1000 / READ_PAUSE_MS}/s × outage)`]: readsExpected,
        "slowest read sent while Redis was down (ms)": maxReadMs,
        "reads failed (non-2xx)": readFailures.length,
        "answers overall": JSON.stringify(byStatus(load.outcomes)),
        "writes during the outage (rename, email, create)": `${patched.status}, ${email.status}, ${p2.status}`,
        "writer's acknowledged posts (201) overall / while Redis was down": `${acked.length} / ${ackedDuring.length}`,
        "of them missing in PostgreSQL (id, title, author) overall / while Redis was down": `${missingOverall.length} / ${missingDuring.length}`,
        "rename, created post and email change found in PostgreSQL": outageWritesStored ? "yes" : `no (title ${p1Row[0]?.title}, created ${JSON.stringify(p2Row[0])}, email ${rd1Row[0]?.email})`,
        "login attempts while Redis was down (per-client limit 5/min)": logins.join(", "),
        "stale entries present in Redis after it returned": staleSurvived ? "yes (old generation)" : "no",
        "Redis ready → services report it ok (ms)": Number.isNaN(reconnectMs) ? "not within 15 s" : reconnectMs,
        "blog cache generation when Redis stopped → after it returned": `${genAtStop} → ${genAfter}`,
        "post cached again under the new generation": cachedAgain ? "yes (renamed title)" : entryAfter === null ? "no entry" : "entry without the new title",
        "stale answers after Redis returned": stale.length ? stale.join("; ") : "none",
        "gateway RSS before / after (MB)": `${rssBefore} / ${rssMb(gatewayPid)}`,
      },
      criteria: [
        { text: "the caches were warm before the outage, the blog's in Redis and the gateway's micro-cache (so stale entries could be served)", met: warmed && microCached.every(Boolean) },
        { text: "no read failed (no 5xx, no 429, no lost connection) before, during or after the outage", met: reads.length > 0 && readFailures.length === 0 },
        {
          text: `reads kept being answered while Redis was down: at least ${READ_RATE_SHARE} × ${READERS} readers × ${1000 / READ_PAUSE_MS}/s × the outage's length answered before Redis was back, and every read sent during it answered within ${READ_BOUND_MS} ms (past the kit's 500 ms Redis command timeout means it waited on Redis)`,
          met: readsDuring.length >= readsExpected && readsExpected > 0 && readsSentDuring.length > 0 && slowReads.length === 0,
        },
        { text: "writes during the outage succeed (200, 200, 201) and a read during it is fresh", met: patched.status === 200 && email.status === 200 && p2.status === 201 && (readDuring.json as { title?: string } | undefined)?.title === "Changed during the outage" },
        {
          text: "every write acknowledged while Redis was down is in PostgreSQL afterwards: the writer's posts (201s sent and answered during the outage, at least one; id, title, author), the created post, the rename and the email change; and every other 201 of the writer too",
          met: ackedDuring.length > 0 && missingDuring.length === 0 && missingOverall.length === 0 && outageWritesStored,
        },
        {
          text: `the login limit falls back to in-process counters at the original limit while Redis is down: ${LOGIN_ATTEMPTS} bad logins answer ${LOGIN_LIMIT} × 401 then 429 (${expectedLogins.join(", ")})`,
          met: JSON.stringify(logins) === JSON.stringify(expectedLogins),
        },
        { text: "Redis came back holding the pre-outage entries", met: staleSurvived },
        { text: `the blog- and user-service report Redis ok within ${RECONNECT_BOUND_MS / 1000} s of it being ready`, met: Number.isFinite(reconnectMs) && reconnectMs <= RECONNECT_BOUND_MS },
        { text: `the blog's cache generation (${CACHE_GENERATION_KEY}) moved past the one at the outage (the invalidation owed for its writes was paid), and the cache is used again: a read files the renamed post under the new generation`, met: genNewer && cachedAgain },
        { text: "after Redis returned, lists, the post, category counts and the profile are fresh", met: stale.length === 0 },
      ],
    };
    recordScenario(result, import.meta.url);
    expect(unmet(result)).toEqual([]);
  });
});
