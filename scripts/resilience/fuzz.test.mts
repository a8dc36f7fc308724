/**
 * Fuzzing the running platform: thousands of generated requests (seeded; the seed is printed and recorded)
 * through the gateway to every public route and straight to each service, then the same requests again. Pass:
 * no 5xx, no crash, readiness 200 after, every route's requests reaching its service, RSS settling (the
 * second pass keeps next to nothing), every 4xx in the error envelope (but the documented exceptions), and no
 * file outside the web root ever served.
 */
import { createHash } from "node:crypto";
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GATEWAY_ROUTES, type Upstream } from "../../services/api-gateway/src/routes.js";
import { ROOT } from "../platform.mjs";
import { generateCases, gatewayRouteOf, sendRaw, type FuzzCase, type FuzzContext, type RawReply, type Target } from "./fuzz.mjs";
import { call, isEnvelope, newUser, requestsByRoute, rssMb, startTestPlatform, type TestPlatform } from "./harness.mjs";
import { recordScenario, renderReliability, unmet } from "./report.mjs";

const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : Math.floor(Math.random() * 2 ** 31);
/** Each pass (the same cases twice): over 2 000 generated requests, and the sleep sweep's, so over 4 000 in all. */
const GATEWAY_CASES = 1_600;
const DIRECT_CASES_PER_SERVICE = 200;
const CONCURRENCY = 8;
/** RSS may grow by at most this much over the first pass after the warm-up (per service): measured 6-10 MB, heaps settling. */
const RSS_GROWTH_BOUND_MB = 24;
/**
 * Over the second pass of the same requests the heaps have settled: growth then is what the requests keep.
 * The report prints, per service, the leak per request this bound catches.
 */
const SECOND_PASS_GROWTH_MB = 8;
/**
 * Requests of each public route that must be answered by the service behind it, or from the gateway's
 * cache of its answers, rather than refused by the gateway itself.
 */
const MIN_REACHED = 10;
const WARM_UP = 300;
const SERVICES = ["api-gateway", "user-service", "auth-service", "blog-service"] as const;
type Service = (typeof SERVICES)[number];
const UPSTREAM_SERVICE = { auth: "auth-service", user: "user-service", blog: "blog-service" } as const satisfies Record<Upstream, Service>;

/**
 * A request carrying SQL must be answered within this: the time-based payloads sleep 5 s (`pg_sleep(5)`) if
 * they ever run as SQL, 3 s at the least would be added. Measured: well under 1 s (a login's Argon2id is the
 * slowest part), 8 at a time on 2 vCPUs. A slow one is re-sent alone once, so a burst of load from a busy
 * machine cannot pose as an injection, while a sleep that ran sleeps again.
 */
const SQL_LATENCY_BOUND_MS = 2_500;
/** Any other request: generous (1.5 MB bodies, 50 000-deep JSON, Argon2id, 8 at a time), far below the client's 15 s timeout. */
const LATENCY_BOUND_MS = 8_000;

let p: TestPlatform;
let ctx: FuzzContext;

beforeAll(async () => {
  // Limits scaled up: this file is about input, not throttling (abuse.test.mts runs the production limits).
  p = await startTestPlatform({ env: { "api-gateway": { RATE_LIMIT_SCALE: "1000" } } });
  const u = await newUser(p.url, "fuzzer");
  const post = await call(p.url, "POST", "/api/posts", { token: u.token, body: { title: "Fuzz target", content: "Body", category_name: "Fuzz" } });
  if (post.status !== 201) throw new Error(`post: ${post.status} ${post.text}`);
  ctx = { token: u.token, refreshToken: u.refresh, postId: (post.json as { id: number }).id, username: "fuzzer" };
}, 120_000);
afterAll(async () => {
  await p?.dispose();
  renderReliability();
});

/** Digests of every file the web UI may serve (and its compressed variants). */
function webRootDigests(): Set<string> {
  const out = new Set<string>();
  const walk = (dir: string) => {
    for (const f of readdirSync(dir)) {
      const full = join(dir, f);
      if (statSync(full).isDirectory()) walk(full);
      else out.add(createHash("sha256").update(readFileSync(full)).digest("hex"));
    }
  };
  walk(join(ROOT, "services/blog-web/dist"));
  return out;
}


/** True when a 4xx body is what the platform promises: the envelope, or one of the documented exceptions. */
function expectedErrorShape(c: FuzzCase, r: RawReply): boolean {
  let json: unknown;
  try {
    json = JSON.parse(r.body.toString("utf8"));
  } catch {
    json = undefined;
  }
  if (isEnvelope(json, r.status)) return true;
  // The path as the server resolves it (dot segments and `%2e%2e` collapse before routing).
  const path = new URL(c.path.split("?")[0]!, "http://platform").pathname;
  // An unknown page of the web UI: the app's HTML with 404, for the browser (services/README.md).
  const page = path.startsWith("/blog/") && !path.startsWith("/blog/api/") && !path.startsWith("/blog/assets/");
  return r.status === 404 && page && String(r.headers["content-type"]).startsWith("text/html");
}

async function runAll(cases: FuzzCase[], port: (t: Target) => number): Promise<RawReply[]> {
  const replies: RawReply[] = new Array<RawReply>(cases.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < cases.length) {
        const i = next++;
        replies[i] = await sendRaw(port(cases[i]!.target), cases[i]!);
      }
    }),
  );
  return replies;
}

const rssOfAll = (): Record<Service, number> => Object.fromEntries(SERVICES.map((s) => [s, rssMb(p.services[s].process?.pid)])) as Record<Service, number>;

/** Requests a service has answered on its own routes ("unmatched", its 404s for unknown paths, left out). */
async function answeredBy(service: Service): Promise<number> {
  const counts = await requestsByRoute(p.services[service].url);
  if (!counts) throw new Error(`${service}: /metrics unreadable`);
  return [...counts].reduce((n, [route, k]) => (route === "unmatched" ? n : n + k), 0);
}
const answeredByAll = async () => Object.fromEntries(await Promise.all(SERVICES.map(async (s) => [s, await answeredBy(s)] as const))) as Record<Service, number>;

describe("fuzzing every route", () => {
  it(`survives ${GATEWAY_CASES + 3 * DIRECT_CASES_PER_SERVICE}+ generated requests, twice (seed printed)`, async () => {
    console.log(`fuzz seed ${SEED} (reproduce: FUZZ_SEED=${SEED} npx vitest run scripts/resilience/fuzz.test.mts)`);
    const cases = generateCases(ctx, { seed: SEED, gatewayCases: GATEWAY_CASES, directCasesPerService: DIRECT_CASES_PER_SERVICE });
    const ports: Record<Target, number> = {
      gateway: Number(new URL(p.url).port),
      "user-service": p.services["user-service"].port,
      "auth-service": p.services["auth-service"].port,
      "blog-service": p.services["blog-service"].port,
    };
    const started = Date.now();
    const warm = await runAll(cases.slice(0, WARM_UP), (t) => ports[t]);
    const rssBefore = await rssOfAll();
    // The gateway's cases one public route at a time, the service behind it read before and after: what it
    // answered in between came through that route, so a route refused wholesale by some early layer of the
    // gateway (a limit, the verifier, the body reader) shows as a route whose service was never reached.
    const rest = cases.flatMap((c, i) => (i >= WARM_UP ? [i] : []));
    const direct = rest.filter((i) => cases[i]!.target !== "gateway");
    const replies = [...warm];
    const reach: { route: string; reached: number }[] = [];
    for (const g of GATEWAY_ROUTES) {
      const mine = rest.filter((i) => cases[i]!.target === "gateway" && gatewayRouteOf(cases[i]!.path) === g.route);
      const service = UPSTREAM_SERVICE[g.upstream];
      const before = await answeredBy(service);
      const got = await runAll(mine.map((i) => cases[i]!), (t) => ports[t]);
      mine.forEach((i, k) => (replies[i] = got[k]!));
      // A micro-cache hit is the service's own earlier answer (the categories are mostly read that way).
      const hits = got.filter((r) => r.headers["x-cache"] === "HIT").length;
      reach.push({ route: g.route, reached: (await answeredBy(service)) - before + hits });
    }
    const unrouted = rest.filter((i) => cases[i]!.target === "gateway" && !gatewayRouteOf(cases[i]!.path));
    const unroutedReplies = await runAll(unrouted.map((i) => cases[i]!), (t) => ports[t]);
    unrouted.forEach((i, k) => (replies[i] = unroutedReplies[k]!));
    const directReplies = await runAll(direct.map((i) => cases[i]!), (t) => ports[t]);
    direct.forEach((i, k) => (replies[i] = directReplies[k]!));
    // The same requests once more: the first pass settles the heaps (JIT, caches, pools), so what the second
    // adds is what the requests keep.
    const rssSettled = await rssOfAll();
    const handledBefore = await answeredByAll();
    const secondPass = await runAll(cases.slice(WARM_UP), (t) => ports[t]);
    const handledAfter = await answeredByAll();
    const handledSecond = Object.fromEntries(SERVICES.map((s) => [s, handledAfter[s] - handledBefore[s]])) as Record<Service, number>;
    const rssAfter = await rssOfAll();
    const seconds = (Date.now() - started) / 1000;
    // Slow SQL answers, re-sent one at a time: a pg_sleep that ran sleeps again. A read gets an extra,
    // unknown query parameter, so no cache (the gateway's, the service's) answers it from the first time.
    const slowSql = cases.flatMap((c, i) => (c.sql && replies[i]!.ms >= SQL_LATENCY_BOUND_MS ? [i] : []));
    const resent: { what: string; first: number; again: number }[] = [];
    for (const [n, i] of slowSql.slice(0, 20).entries()) {
      const c = cases[i]!;
      const read = c.method === "GET" || c.method === "HEAD";
      const again = await sendRaw(ports[c.target], read ? { ...c, path: `${c.path}${c.path.includes("?") ? "&" : "?"}resent=${Date.now()}${n}` } : c);
      resent.push({ what: `${c.target} ${c.method} ${c.path.slice(0, 80)} [${c.kind}]`, first: replies[i]!.ms, again: again.ms });
    }
    const sqlTooSlow = slowSql.length > 20 ? resent.map((r) => `${r.what}: ${r.first} ms`) : resent.filter((r) => r.again >= SQL_LATENCY_BOUND_MS).map((r) => `${r.what}: ${r.first} ms, alone ${r.again} ms`);
    const tooSlow = cases.flatMap((c, i) => (!c.sql && replies[i]!.ms >= LATENCY_BOUND_MS ? [`${c.target} ${c.method} ${c.path.slice(0, 80)} [${c.kind}]: ${replies[i]!.ms} ms`] : []));
    const sqlCases = cases.flatMap((c, i) => (c.sql ? [{ c, ms: replies[i]!.ms }] : []));
    const sleepCases = sqlCases.filter(({ c }) => c.path.includes("pg_sleep") || !!c.body?.includes("pg_sleep"));
    const percentile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))] ?? 0;
    const allMs = replies.map((r) => r.ms);
    const sqlMs = sqlCases.map((x) => x.ms);

    const web = webRootDigests();
    const serverErrors: string[] = [];
    const noAnswer: string[] = [];
    const envelopeMisses: string[] = [];
    const leaks: string[] = [];
    let c4xx = 0;
    let c2xx = 0;
    let clientRefused = 0;
    const byStatus: Record<number, number> = {};
    const answered = [...cases.map((c, i) => ({ c, r: replies[i]! })), ...cases.slice(WARM_UP).map((c, k) => ({ c, r: secondPass[k]! }))];
    answered.forEach(({ c, r }) => {
      const what = `${c.target} ${c.method} ${c.path.slice(0, 80)} [${c.kind}] → ${r.status} ${r.error ?? r.body.toString("utf8").slice(0, 120)}`;
      byStatus[r.status] = (byStatus[r.status] ?? 0) + 1;
      if (r.status === -1) clientRefused++;
      else if (r.status === 0) noAnswer.push(what);
      else if (r.status >= 500) serverErrors.push(what);
      else if (r.status >= 400) {
        c4xx++;
        if (c.method !== "HEAD" && !expectedErrorShape(c, r)) envelopeMisses.push(what);
      } else if (r.status >= 200 && r.status < 300) c2xx++;
      const text = r.body.toString("latin1");
      if (/root:x:0:0|PRIVATE KEY|"workspaces"/.test(text)) leaks.push(what);
      if (c.traversal && r.status >= 200 && r.status < 300 && c.method !== "HEAD" && !web.has(createHash("sha256").update(r.body).digest("hex"))) leaks.push(what);
    });

    const perRoute = Object.fromEntries(GATEWAY_ROUTES.map((r) => [r.route, 0]));
    for (const c of cases) if (c.target === "gateway") {
      const route = gatewayRouteOf(c.path);
      if (route) perRoute[route]!++;
    }
    const uncovered = Object.entries(perRoute).filter(([, n]) => n < 10).map(([r]) => r);
    const unreached = reach.filter((r) => r.reached < MIN_REACHED).map((r) => `${r.route}: ${r.reached} of ${perRoute[r.route]}`);
    const alive = SERVICES.filter((s) => p.services[s].process?.exitCode === null && p.services[s].process?.signalCode === null);
    const ready = await Promise.all(SERVICES.map(async (s) => (await call(p.services[s].url, "GET", "/readyz")).status));
    const growth = SERVICES.map((s) => rssSettled[s]! - rssBefore[s]!);
    const kept = SERVICES.map((s) => rssAfter[s]! - rssSettled[s]!);
    const traversals = cases.filter((c) => c.traversal).length;

    const result = {
      id: "fuzz",
      title: "Fuzzer: generated bad input to every route",
      suite: "npm test" as const,
      injected:
        `${cases.length} requests from seed ${SEED} (mulberry32; FUZZ_SEED reproduces them), ${CONCURRENCY} at a time, then all but the warm-up's again: ${GATEWAY_CASES} through the gateway spread over all ${GATEWAY_ROUTES.length} public routes, ` +
        `${DIRECT_CASES_PER_SERVICE} straight to each of the three services' own routes (internal credential check included), ${traversals} path-traversal attempts on the web UI's static files ` +
        "(`..`, `%2e%2e`, double encoding, overlong UTF-8, `%00`), plus malformed and deeply nested JSON (to 50 000 levels), wrong types, huge strings (to 300 KB), invalid UTF-8, " +
        "SQL metacharacters and odd Unicode in fields, every time-based payload (pg_sleep(5) in a condition, a concatenation, a sub-select, a stacked statement) in every body field of every endpoint, every post-list filter and as a post id or username, unexpected and unknown methods, oversized bodies (1.5 MB) and headers (20 KB), odd query strings and path parameters, forged or garbage auth, XFF, Host and request-id headers.",
      measured: {
        seed: SEED,
        "requests (both passes)": answered.length,
        "duration s": Math.round(seconds * 10) / 10,
        "2xx": c2xx,
        "4xx": c4xx,
        "5xx": serverErrors.length,
        "no answer (status 0)": noAnswer.length,
        "refused by the test client before sending": clientRefused,
        "4xx envelope misses": envelopeMisses.length,
        "files served from outside the web root": leaks.length,
        "statuses seen": Object.entries(byStatus).map(([s, n]) => `${s}×${n}`).join(", "),
        "requests carrying SQL / with a pg_sleep payload": `${sqlCases.length} / ${sleepCases.length}`,
        "ms, requests carrying SQL: median / p99 / max": `${percentile(sqlMs, 0.5)} / ${percentile(sqlMs, 0.99)} / ${Math.max(0, ...sqlMs)}`,
        "ms, all requests: median / p99 / max": `${percentile(allMs, 0.5)} / ${percentile(allMs, 0.99)} / ${Math.max(0, ...allMs)}`,
        [`requests carrying SQL over ${SQL_LATENCY_BOUND_MS} ms: re-sent alone (ms then → alone)`]: resent.length ? resent.map((r) => `${r.first} → ${r.again}`).join(", ") : "none",
        "least-covered public route (requests)": Object.entries(perRoute).sort((a, b) => a[1] - b[1]).slice(0, 1).map(([r, n]) => `${r} (${n})`).join(""),
        [`requests through the gateway answered by the service behind (its own counters, or the gateway's cache of its answers; per route, at least ${MIN_REACHED} each)`]: reach.map((r) => `${r.route} ${r.reached}/${perRoute[r.route]}`).join(", "),
        ...Object.fromEntries(
          SERVICES.map((s) => [
            `RSS ${s} MB (after ${WARM_UP} warm-up → after the first pass → after the second)`,
            `${rssBefore[s]} → ${rssSettled[s]} → ${rssAfter[s]}; second pass: ${handledSecond[s]} requests, so a leak of ${Math.ceil((SECOND_PASS_GROWTH_MB * 1024) / Math.max(1, handledSecond[s]!))} KB a request breaks the bound`,
          ]),
        ),
      },
      criteria: [
        { text: "no 5xx", met: serverErrors.length === 0 },
        { text: "every request answered (no connection reset or timeout)", met: noAnswer.length === 0 },
        { text: "every 4xx carries the error envelope (login and `/verify` 401s too: the original's `{status:\"failed\"}` plus the envelope's fields), except web-UI page 404s (HTML)", met: envelopeMisses.length === 0 },
        { text: "no file outside the web root served; no passwd, key or package.json content in any answer", met: leaks.length === 0 },
        { text: "all four processes alive and /readyz 200 after the run", met: alive.length === 4 && ready.every((s) => s === 200) },
        { text: `RSS of each service grows by less than ${RSS_GROWTH_BOUND_MB} MB over the first pass (heaps settling)`, met: growth.every((g) => Number.isFinite(g) && g < RSS_GROWTH_BOUND_MB) },
        { text: `RSS of each service grows by less than ${SECOND_PASS_GROWTH_MB} MB over the second pass of the same requests (what requests keep)`, met: kept.every((g) => Number.isFinite(g) && g < SECOND_PASS_GROWTH_MB) },
        {
          text: `every request carrying SQL (pg_sleep(5) payloads among them) answered in less than ${SQL_LATENCY_BOUND_MS} ms (one slower is re-sent alone once, and must be then): a time-based injection that ran would take 5 s`,
          met: sqlTooSlow.length === 0 && sleepCases.length >= 200,
        },
        { text: `every other request answered in less than ${LATENCY_BOUND_MS} ms`, met: tooSlow.length === 0 },
        { text: "every public route of routes.ts got at least 10 requests", met: uncovered.length === 0 },
        {
          text: `the requests got past the gateway: for every public route, at least ${MIN_REACHED} were answered by the service behind it (the service's own http_requests_total, read before and after that route's cases ran alone) or from the gateway's cache of its answers`,
          met: unreached.length === 0,
        },
        { text: "at least 4000 requests reached the platform over the two passes, and at most 2% were ones the test client could not send", met: answered.length - clientRefused >= 4000 && clientRefused <= answered.length * 0.02 },
      ],
    };
    recordScenario(result, import.meta.url);
    // What the platform logged about its failures, to read beside the failing requests.
    const logged = p.lines.filter((l) => /"level":(50|"error")|upstream failed|unhandled/.test(l)).slice(0, 10);
    if (serverErrors.length || noAnswer.length) console.log(logged.join("\n"));
    expect(serverErrors.slice(0, 10), "5xx").toEqual([]);
    expect(noAnswer.slice(0, 10), "no answer").toEqual([]);
    expect(envelopeMisses.slice(0, 10), "envelope").toEqual([]);
    expect(leaks, "leaks").toEqual([]);
    expect(sqlTooSlow.slice(0, 10), "SQL answered slowly (time-based injection?)").toEqual([]);
    expect(tooSlow.slice(0, 10), "slow answers").toEqual([]);
    expect(uncovered, "coverage").toEqual([]);
    expect(unreached, "routes whose requests never reached their service").toEqual([]);
    expect(unmet(result)).toEqual([]);
  }, 240_000);
});
