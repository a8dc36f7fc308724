import postgres from "postgres";
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

/** A PostgreSQL pool with timeouts. postgres.js reconnects lazily: a lost connection is replaced on next use. */
export function createPostgres(opts: PostgresOptions): Sql {
  return postgres(opts.url, {
    max: opts.max ?? 10,
    connect_timeout: opts.connectTimeoutSeconds ?? 5,
    idle_timeout: 60,
    max_lifetime: 60 * 30,
    connection: { statement_timeout: opts.statementTimeoutMs ?? 10_000, application_name: "titanium" },
    onnotice: (n) => opts.logger?.debug({ notice: n.message }, "postgres notice"),
    transform: { undefined: null },
  });
}

/** Readiness: one round trip. */
export async function pingPostgres(sql: Sql): Promise<void> {
  await sql`select 1`;
}
