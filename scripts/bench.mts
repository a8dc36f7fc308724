/**
 * `npm run bench`: drives the local platform through the gateway and compares with a bare Hono endpoint
 * measured in the same run. Prints req/s, p50/p99, errors and each service's RSS (see docs/benchmarks.md).
 * Needs `wrk` (Debian package). BENCH_DURATION (seconds, default 10) sets each run's length.
 */
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { Agent, request } from "node:http";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { SERVICE_NAMES } from "../services/kit/src/config.js";
import { ROOT, cpuSeconds, rssMb, startPlatform, type Platform } from "./platform.mjs";

const DURATION = Number(process.env.BENCH_DURATION ?? 10);
/** Node flags added after `nodeFlags()` for every service (a later V8 flag wins), to compare settings. */
const EXTRA_NODE_ARGS = (process.env.BENCH_NODE_ARGS ?? "").split(/\s+/).filter(Boolean);
/** Seconds of load on each read path before it is measured (discarded). */
const WARM_UP = 3;
const PW = "Bench!pass1";

interface Result {
  name: string;
  connections: number | string;
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  requests: number;
}

const toMs = (v: string) => {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(v.trim());
  if (!m) return NaN;
  const n = Number(m[1]);
  return m[2] === "us" ? n / 1000 : m[2] === "ms" ? n : m[2] === "s" ? n * 1000 : n * 60_000;
};

/** One wrk run (1 thread), parsed. */
function wrk(name: string, url: string, connections: number, lua?: string, seconds = DURATION): Promise<Result> {
  const args = ["-t1", `-c${connections}`, `-d${seconds}s`, "--latency", "--timeout", "5s"];
  let scriptFile: string | undefined;
  if (lua) {
    scriptFile = join(tmpdir(), `titanium-bench-${process.pid}-${name.replace(/\W+/g, "-")}.lua`);
    writeFileSync(scriptFile, lua);
    args.push("-s", scriptFile);
  }
  return new Promise((resolve, reject) => {
    const child = spawn("wrk", [...args, url], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.once("error", reject);
    child.once("exit", () => {
      if (scriptFile) rmSync(scriptFile, { force: true });
      const pct = (p: string) => toMs(new RegExp(`^\\s+${p}%\\s+(\\S+)`, "m").exec(out)?.[1] ?? "");
      const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
      const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
      const sockErrors = sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0;
      resolve({
        name,
        connections,
        rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN),
        p50: pct("50"),
        p99: pct("99"),
        errors: non2xx + sockErrors,
        requests: Number(/(\d+) requests in/.exec(out)?.[1] ?? 0),
      });
    });
  });
}

/**
 * A fixed-rate probe (open model: latency counts from the scheduled send time, so queueing shows).
 * Used to see what a flat-out login storm does to the list's latency.
 */
async function probe(name: string, url: string, ratePerSecond: number): Promise<Result> {
  const agent = new Agent({ keepAlive: true, maxSockets: 32 });
  const latencies: number[] = [];
  let errors = 0;
  const start = performance.now();
  const total = ratePerSecond * DURATION;
  const pending: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const scheduled = start + (i * 1000) / ratePerSecond;
    const wait = scheduled - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    pending.push(
      new Promise<void>((resolve) => {
        const req = request(url, { agent }, (res) => {
          res.resume();
          res.on("end", () => {
            if (res.statusCode !== 200) errors++;
            latencies.push(performance.now() - scheduled);
            resolve();
          });
        });
        req.on("error", () => {
          errors++;
          resolve();
        });
        req.end();
      }),
    );
  }
  await Promise.all(pending);
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
  return { name, connections: `${ratePerSecond}/s`, rps: latencies.length / DURATION, p50: at(0.5), p99: at(0.99), errors, requests: latencies.length };
}

/** Waits until the processes used no CPU for 250 ms (at most 5 s): the work the load left queued is done. */
async function settled(pids: (number | undefined)[]): Promise<void> {
  const total = () => pids.reduce<number>((sum, pid) => sum + (pid ? cpuSeconds(pid) : 0), 0);
  let before = total();
  for (const deadline = Date.now() + 5000; Date.now() < deadline; ) {
    await new Promise((r) => setTimeout(r, 250));
    const now = total();
    // Clock ticks are 10 ms; timers (metrics, log flushes) cost less than two of them per 250 ms.
    if (now - before < 0.02) return;
    before = now;
  }
}

async function post(base: string, path: string, body: unknown, token?: string): Promise<Record<string, unknown>> {
  const res = await fetch(`${base}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token && { authorization: `Bearer ${token}` }) },
    body: JSON.stringify(body),
  });
  if (res.status >= 300) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as Record<string, unknown>;
}

if (spawnSync("wrk", ["--version"]).error) {
  console.error("npm run bench needs wrk (Debian/Ubuntu: apt-get install wrk)");
  process.exit(2);
}

const dataDir = mkdtempSync(join(tmpdir(), "titanium-bench-"));
chmodSync(dataDir, 0o755);
let platform: Platform | undefined;
const baseline = spawn(process.execPath, [join(ROOT, "scripts/bench-baseline.mjs")], { stdio: ["ignore", "pipe", "inherit"] });
try {
  const baselinePort = await new Promise<number>((resolve) =>
    createInterface({ input: baseline.stdout! }).on("line", (l) => {
      const m = /"listening":(\d+)/.exec(l);
      if (m) resolve(Number(m[1]));
    }),
  );
  console.error("starting the platform (fresh data directory)...");
  platform = await startPlatform({
    dataDir,
    gatewayPort: 0,
    servicePorts: { "user-service": 0, "auth-service": 0, "blog-service": 0 },
    // The limiter still runs its Redis script on every request; the limits are only raised so one load
    // generator on 127.0.0.1 is not throttled as one client.
    // The pods' nice 19 for the hashing threads (the local platform's default is 10): the isolation
    // check measures what the cluster runs.
    env: { "api-gateway": { RATE_LIMIT_SCALE: "100000" }, "user-service": { PASSWORD_HASH_NICE: "19" } },
    // Redis as the cluster runs it: no append-only file (its fsyncs would compete with PostgreSQL's
    // on this one disk, a contention the pods, with PostgreSQL on its own Persistent Disk, do not have).
    redisPersist: false,
    // Service logs go to files (as on a node), not through this process.
    logDir: join(dataDir, "logs"),
    log: () => {},
    nodeArgs: Object.fromEntries(SERVICE_NAMES.map((name) => [name, EXTRA_NODE_ARGS])),
  });
  const gw = platform.url;
  await post(gw, "/api/register", { username: "bench", email: "bench@example.com", password: PW });
  const { token } = (await post(gw, "/api/login", { username: "bench", password: PW })) as { token: string };
  for (let i = 1; i <= 30; i++)
    await post(gw, "/blog/api/posts", { title: `Post ${i}`, content: `Benchmark post ${i}. ${"lorem ipsum ".repeat(40)}`, category_name: i % 2 ? "Test" : "Troubleshooting" }, token);
  await fetch(`${gw}/blog/api/posts`); // warm the list cache

  const loginLua = `wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = '${JSON.stringify({ username: "bench", password: PW })}'\n`;
  const createLua = `wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.headers["Authorization"] = "Bearer ${token}"\nwrk.body = '${JSON.stringify({ title: "Load", content: "created by wrk", category_name: "Test" })}'\n`;
  const results: Result[] = [];
  const run = async (r: Promise<Result>) => {
    const res = await r;
    results.push(res);
    console.error(`${res.name}: ${res.rps.toFixed(0)} req/s, p50 ${res.p50.toFixed(2)} ms, p99 ${res.p99.toFixed(2)} ms, errors ${res.errors}`);
    return res;
  };
  // The read paths and the baseline are warmed first (results dropped): a process's first seconds under
  // load are V8 compiling its hot path (the gateway's p99 about doubles then), not what a running pod shows.
  for (const url of [`http://127.0.0.1:${baselinePort}/`, `${gw}/blog/api/posts`, `${gw}/blog/api/posts/7`]) await wrk("warm-up", url, 50, undefined, WARM_UP);
  const loadAtStart = loadavg()[0]!;
  const baseCpu0 = cpuSeconds(baseline.pid);
  const base = await run(wrk("baseline: bare Hono GET /", `http://127.0.0.1:${baselinePort}/`, 50));
  const baseCpu = cpuSeconds(baseline.pid) - baseCpu0;
  // CPU per request of each process on the cached-list path: robust to other load on the machine.
  const hops = { "api-gateway": platform.services["api-gateway"].process?.pid, "blog-service": platform.services["blog-service"].process?.pid, redis: platform.redis?.pid() };
  const cpuBefore = Object.fromEntries(Object.entries(hops).map(([k, pid]) => [k, cpuSeconds(pid)]));
  const list = await run(wrk("cached posts list via gateway", `${gw}/blog/api/posts`, 50));
  const cpuPerRequest = Object.fromEntries(Object.entries(hops).map(([k, pid]) => [k, ((cpuSeconds(pid) - cpuBefore[k]!) * 1e6) / list.requests]));
  await run(wrk("single post via gateway", `${gw}/blog/api/posts/7`, 50));
  await run(wrk("authenticated create via gateway", `${gw}/blog/api/posts`, 50, createLua));
  await fetch(`${gw}/blog/api/posts`);
  await run(wrk("login via gateway (Argon2id)", `${gw}/api/login`, 16, loginLua));
  // Idle means idle: the logins the last run left queued are hashed first (each 19 MiB of Argon2id).
  await settled(Object.values(platform.services).map((s) => s.process?.pid));
  const idle = await run(probe("list probe, idle", `${gw}/blog/api/posts`, 200));
  const [loaded] = await Promise.all([run(probe("list probe, logins flat out", `${gw}/blog/api/posts`, 200)), run(wrk("login flat out (during probe)", `${gw}/api/login`, 16, loginLua))]);
  // RSS twice: the instant the load stops (a login still queued is hashing its 19 MiB then), and once the
  // services have finished what they had accepted; the target is judged on the second.
  const pids = Object.values(platform.services).map((s) => [s.name, s.process?.pid] as const);
  const rssAtStop = Object.fromEntries(pids.map(([name, pid]) => [name, rssMb(pid)]));
  await settled(pids.map(([, pid]) => pid));
  const rss = Object.fromEntries(pids.map(([name, pid]) => [name, rssMb(pid)]));

  const f = (n: number, d = 2) => (Number.isFinite(n) ? n.toFixed(d) : "n/a");
  console.log(`\n## Run ${new Date().toISOString()}\n`);
  console.log(`Machine: ${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}${EXTRA_NODE_ARGS.length ? ` (extra flags: ${EXTRA_NODE_ARGS.join(" ")})` : ""}, load average at start ${loadAtStart.toFixed(2)}; wrk -t1 -d${DURATION}s; everything on 127.0.0.1.\n`);
  console.log("| scenario | connections | req/s | p50 ms | p99 ms | errors |");
  console.log("|---|---|---|---|---|---|");
  for (const r of results) console.log(`| ${r.name} | ${r.connections} | ${f(r.rps, 0)} | ${f(r.p50)} | ${f(r.p99)} | ${r.errors} |`);
  console.log(`\n| cached list: CPU per request | µs |\n|---|---|`);
  for (const [name, us] of Object.entries(cpuPerRequest)) console.log(`| ${name} | ${f(us, 0)} |`);
  console.log(`| (baseline, whole process) | ${f((1e6 * baseCpu) / base.requests, 0)} |`);
  console.log(`\n| service | RSS when the load stops (MB) | RSS once idle (MB) |\n|---|---|---|`);
  for (const [name, mb] of Object.entries(rss)) console.log(`| ${name} | ${f(rssAtStop[name]!, 1)} | ${f(mb, 1)} |`);
  const checks = [
    [`cached list ≥ 15% of baseline req/s`, list.rps / base.rps >= 0.15, `${((100 * list.rps) / base.rps).toFixed(1)}%`],
    [`cached list p99 < 25 ms at 50 connections`, list.p99 < 25, `${f(list.p99)} ms`],
    [`cached list without errors`, list.errors === 0, `${list.errors}`],
    [`list p99 under logins ≤ 2 × idle`, loaded.p99 <= 2 * idle.p99, `${f(idle.p99)} → ${f(loaded.p99)} ms`],
    [`every service < 96 MB RSS once idle after the run`, Object.values(rss).every((mb) => mb < 96), Object.values(rss).map((mb) => f(mb, 1)).join(" / ")],
  ] as const;
  console.log(`\n| target | met | measured |\n|---|---|---|`);
  for (const [what, ok, measured] of checks) console.log(`| ${what} | ${ok ? "yes" : "**no**"} | ${measured} |`);
} finally {
  await platform?.stop();
  baseline.kill("SIGTERM");
  rmSync(dataDir, { recursive: true, force: true });
}
