import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { createHmac, randomBytes } from "node:crypto";
import { createLogger, type Logger } from "../logger.js";
import { createPostgres, type Sql } from "../db.js";
import { defaultMigrationsDir, readMigrations } from "../migrate.js";
import { DATABASE_ROLE_NAMES, type DatabaseRole, databaseUrlAs, prepareDatabase } from "../roles.js";
import { ensureDatabase, freePort, startLocalPostgres, startLocalRedis } from "../local/index.js";

/**
 * Shared test support: a real PostgreSQL and a real Redis per test file (started by the test itself), or
 * the ones `DATABASE_URL` / `REDIS_URL` point at (each file then gets its own fresh database, a logical
 * one in Redis's case).
 */
export interface TestPostgres {
  /** As the owner (a superuser): what the migrations run as. */
  url: string;
  /** A pool on `url` (closed by `stop`). */
  sql: Sql;
  /** The URL of a service's (or the backup's) own role, as it logs in in production (after `migrate`). */
  urlAs: (role: DatabaseRole) => string;
  /** A pool logged in as that role, with the kit's settings (closed by `stop`): what a service's code gets. */
  as: (role: DatabaseRole, opts?: { max?: number }) => Sql;
  stop: () => Promise<void>;
}

/**
 * The roles' passwords in a test cluster: derived from the owner's, so test files sharing one server
 * (`DATABASE_URL`) set the same ones and never lock each other out.
 */
function testRolePasswords(ownerUrl: string): Record<DatabaseRole, string> {
  const key = decodeURIComponent(new URL(ownerUrl).password) || "titanium-test";
  return Object.fromEntries(DATABASE_ROLE_NAMES.map((r) => [r, createHmac("sha256", key).update(r).digest("base64url")])) as Record<DatabaseRole, string>;
}

export async function startTestPostgres(opts: { migrate?: boolean } = {}): Promise<TestPostgres> {
  const database = `t_${randomBytes(6).toString("hex")}`;
  let url: string;
  let stopServer = async () => {};
  if (process.env.DATABASE_URL) {
    const admin = new URL(process.env.DATABASE_URL);
    await ensureDatabase(admin.toString(), database);
    admin.pathname = `/${database}`;
    url = admin.toString();
  } else {
    const dir = mkdtempSync(join(tmpdir(), "titanium-pg-"));
    chmodSync(dir, 0o755); // PostgreSQL runs as its own user when the tests run as root
    const pg = await startLocalPostgres({ dataDir: dir, port: await freePort(), database });
    url = pg.url;
    stopServer = async () => {
      await pg.stop();
      rmSync(dir, { recursive: true, force: true });
    };
  }
  const sql = createPostgres({ url, max: 5 });
  const passwords = testRolePasswords(url);
  // The migration command's own steps: roles, migrations, grants.
  if (opts.migrate !== false) await prepareDatabase(sql, readMigrations(defaultMigrationsDir()), { passwords });
  const urlAs = (role: DatabaseRole) => databaseUrlAs(url, role, passwords[role]);
  const pools: Sql[] = [];
  return {
    url,
    sql,
    urlAs,
    as: (role, o = {}) => {
      const pool = createPostgres({ url: urlAs(role), max: o.max ?? 5 });
      pools.push(pool);
      return pool;
    },
    stop: async () => {
      await Promise.all([sql, ...pools].map((p) => p.end({ timeout: 1 })));
      await stopServer();
    },
  };
}

export interface TestRedis {
  url: string;
  stop: () => Promise<void>;
}

/** Logical databases a shared Redis lends to test files (0 keeps the counter; Redis has 16 by default). */
const TEST_REDIS_DATABASES = 15;

/**
 * With `REDIS_URL`, a logical database of that server of its own, emptied first: test files running side
 * by side, or a second run, would otherwise share rate-limit buckets, cache generations and keys.
 */
async function lendRedisDatabase(url: string): Promise<TestRedis> {
  const { Redis } = await import("ioredis");
  const lent = new URL(url);
  lent.pathname = "/0";
  const client = new Redis(lent.toString(), { maxRetriesPerRequest: 1 });
  try {
    const db = ((await client.incr("titanium:test:next-db")) % TEST_REDIS_DATABASES) + 1;
    await client.select(db);
    await client.flushdb();
    lent.pathname = `/${db}`;
  } finally {
    await client.quit();
  }
  return { url: lent.toString(), stop: async () => {} };
}

export async function startTestRedis(): Promise<TestRedis> {
  if (process.env.REDIS_URL) return lendRedisDatabase(process.env.REDIS_URL);
  const dir = mkdtempSync(join(tmpdir(), "titanium-redis-"));
  const redis = await startLocalRedis({ port: await freePort(), dir });
  return {
    url: redis.url,
    stop: async () => {
      await redis.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A logger that keeps its lines in memory (tests assert on what is, and is not, logged). */
export function memoryLogger(service = "test"): { logger: Logger; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  const logger = createLogger(service, "debug", sink);
  return {
    logger,
    lines: () =>
      chunks
        .join("")
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

/** An ES256 key, a signer for test tokens and a verifier that trusts it (as the services do via JWKS). */
export async function testTokens(opts: { issuer?: string; audience?: string } = {}) {
  const { SignJWT, calculateJwkThumbprint, createLocalJWKSet, exportJWK, generateKeyPair } = await import("jose");
  const { JwtVerifier } = await import("../jwt.js");
  const { DEFAULT_JWT_AUDIENCE, DEFAULT_JWT_ISSUER } = await import("../config.js");
  const issuer = opts.issuer ?? DEFAULT_JWT_ISSUER;
  const audience = opts.audience ?? DEFAULT_JWT_AUDIENCE;
  const { privateKey, publicKey } = await generateKeyPair("ES256");
  const jwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(jwk);
  const jwks = { keys: [{ ...jwk, kid, alg: "ES256", use: "sig" }] };
  const verifier = new JwtVerifier({ keys: createLocalJWKSet(jwks), issuer, audience });
  const sign = (user: { id: number; username: string }, ttlSeconds = 300, claims: Record<string, unknown> = {}) =>
    new SignJWT({ username: user.username, user_id: user.id, ...claims })
      .setProtectedHeader({ alg: "ES256", kid })
      .setSubject(String(user.id))
      .setIssuer(issuer)
      .setAudience(audience)
      .setIssuedAt()
      .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds)
      .sign(privateKey);
  return { sign, verifier, jwks, issuer, audience };
}
export { contractChecked, type ContractReport } from "./contract.js";
