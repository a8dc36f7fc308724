import postgres from "postgres";
import { isDependencyOutage } from "./errors.js";
import type { Logger } from "./logger.js";

export type Sql = postgres.Sql;

export interface PostgresOptions {
  /** Connection URL (see `postgresUrl`). */
  url: string;
  /** Pool size per replica. */
  max?: number;
  /** Seconds to wait for a connection before failing the query. */
  connectTimeoutSeconds?: number;
  /** Server-side statement timeout in milliseconds (a stuck query cannot hold a connection forever). */
  statementTimeoutMs?: number;
  logger?: Logger;
}

/**
 * Pause before a connection tries again after failing, in seconds: short and capped, so that once the
 * database is back the service is within about half a second of using it. (postgres.js's own backoff grows
 * to 20 s: after a 3 s restart, writes waited several seconds and some outlived the gateway's timeout.)
 */
export const reconnectBackoff = (retries: number) => Math.min(0.025 * 2 ** retries, 0.5) * (0.5 + Math.random() / 2);

/**
 * How long PostgreSQL lets one statement run. Below the api-gateway's upstream timeout (10 s,
 * components/apps/service-env.ts GATEWAY_UPSTREAM_TIMEOUT_MS; service-env.test.mts holds the two apart), so a
 * statement that runs too long ends as the service's own 503 (57014) before the gateway gives up with a 504.
 */
export const DEFAULT_STATEMENT_TIMEOUT_MS = 8_000;

/** A PostgreSQL pool with timeouts. postgres.js reconnects lazily: a lost connection is replaced on next use. */
export function createPostgres(opts: PostgresOptions): Sql {
  return postgres(opts.url, {
    max: opts.max ?? 10,
    connect_timeout: opts.connectTimeoutSeconds ?? 5,
    idle_timeout: 60,
    max_lifetime: 60 * 30,
    backoff: reconnectBackoff,
    connection: { statement_timeout: opts.statementTimeoutMs ?? DEFAULT_STATEMENT_TIMEOUT_MS, application_name: "titanium" },
    onnotice: (n) => opts.logger?.debug({ notice: n.message }, "postgres notice"),
    transform: { undefined: null },
  });
}

/** Readiness: one round trip, answered within `timeoutMs` either way (a probe must not hang while the database is away). */
export async function pingPostgres(sql: Sql, timeoutMs = 1_500): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const query = sql`select 1`;
  try {
    await Promise.race([
      query,
      new Promise((_, reject) => (timer = setTimeout(() => reject(Object.assign(new Error(`postgres did not answer within ${timeoutMs} ms`), { code: "PING_TIMEOUT" })), timeoutMs))),
    ]);
  } finally {
    clearTimeout(timer);
    query.catch(() => {}); // settled later or never: nobody waits for it
  }
}

/**
 * Wait until PostgreSQL answers, for a one-shot command that may start before the database (a Job beside
 * a StatefulSet, a local start right after a restart). Outages (`isDependencyOutage`) are retried with a
 * capped pause until `waitMs`; anything else (bad password, unknown database) fails at once.
 */
export async function waitForPostgres(sql: Sql, opts: { waitMs: number; logger?: Logger }): Promise<number> {
  const deadline = Date.now() + opts.waitMs;
  for (let attempt = 1; ; attempt++) {
    try {
      await pingPostgres(sql, 5_000);
      return attempt;
    } catch (err) {
      if (!isDependencyOutage(err) || Date.now() >= deadline) throw err;
      opts.logger?.warn({ attempt, err: (err as Error).message }, "waiting for PostgreSQL");
      await new Promise((r) => setTimeout(r, Math.min(100 * attempt, 1_000, Math.max(0, deadline - Date.now()))));
    }
  }
}

/** First half of the two-key advisory lock that serialises one user's session changes (the second is the user id). */
const USER_SESSIONS_LOCK_CLASS = 7_146;

/**
 * Serialises, for the rest of the transaction, everything that creates or ends one user's sessions: the
 * auth-service's refresh rotation and the user-service's password change. Without it a refresh that had
 * locked its token when a password change began inserted its successor after the change's revoking
 * UPDATE had taken its snapshot, so that one session outlived the new password.
 */
export async function lockUserSessions(tx: postgres.TransactionSql, userId: number): Promise<void> {
  await tx`select pg_advisory_xact_lock(${USER_SESSIONS_LOCK_CLASS}::int, ${userId}::int)`;
}

/**
 * Ends every session of one user (a password change): revokes their refresh tokens under
 * {@link lockUserSessions}, so a refresh that is rotating one right now either finishes first (and its
 * new token is revoked here too) or starts after (and finds its token revoked).
 */
export async function endUserSessions(tx: postgres.TransactionSql, userId: number): Promise<void> {
  await lockUserSessions(tx, userId);
  await tx`update refresh_tokens set revoked_at = now() where user_id = ${userId} and revoked_at is null`;
}
