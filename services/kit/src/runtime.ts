import { z } from "zod";
import { ConfigError, SERVICE_PORTS, loadEnv, postgresUrl, redisUrl, withPostgres, type PostgresSettings, type RedisSettings, type ServiceName } from "./config.js";
import { createPostgres, waitForPostgres, type Sql } from "./db.js";
import { createLogger, type Logger } from "./logger.js";
import { defaultMigrationsDir, readMigrations } from "./migrate.js";
import { DATABASE_ROLE_NAMES, ROLE_PASSWORD_ENV, prepareDatabase, rolePasswordsFrom } from "./roles.js";
import { createRedis, type Redis, type RedisOptions } from "./redis.js";
import { flushThenExit } from "./server.js";

/** Parse the environment or exit 1 with one JSON line naming every bad variable (no stack trace). */
export function loadEnvOrExit<S extends z.ZodType>(service: ServiceName, schema: S): z.output<S> {
  try {
    return loadEnv(schema);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    // process.stdout writes synchronously to files and pipes on Linux, so the line is out before exit.
    createLogger(service, "info", process.stdout).fatal({ issues: err.issues }, err.message);
    process.exit(1);
  }
}

export const listenPort = (service: ServiceName, port: number | undefined) => port ?? SERVICE_PORTS[service];

export function connectPostgres(env: PostgresSettings, logger: Logger): Sql {
  return createPostgres({ url: postgresUrl(env), max: env.PG_POOL_MAX, logger });
}

/** Redis when configured; otherwise a loud warning and `undefined` (caches off, in-process rate limits). */
export function connectRedis(env: RedisSettings, logger: Logger, scripts?: RedisOptions["scripts"]): Redis | undefined {
  const url = redisUrl(env);
  if (!url) {
    logger.warn("REDIS_URL/REDIS_HOST not set: running without Redis (no cache, in-process rate limits only)");
    return undefined;
  }
  return createRedis({ url, logger, ...(scripts && { scripts }) });
}

/** Each service role's password (and the backup role's), which the migration command sets: see `roles.ts`. */
const rolePasswordEnv = Object.fromEntries(DATABASE_ROLE_NAMES.map((r) => [ROLE_PASSWORD_ENV[r], z.string().optional()])) as Record<string, z.ZodOptional<z.ZodString>>;

/**
 * What the migration command reads (`MIGRATIONS_DIR` only to override where the SQL files are). It connects as
 * the owner (`PGUSER`); the roles' passwords (`*_PGPASSWORD`) are set on every run.
 */
export const migrationEnvSchema = withPostgres({
  ...rolePasswordEnv,
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  MIGRATIONS_DIR: z.string().optional(),
  /** How long to wait for PostgreSQL to accept connections before giving up (it may start after the Job). */
  MIGRATION_WAIT_SECONDS: z.coerce.number().int().min(0).max(3600).default(120),
});

/**
 * The one-shot migration command (a Kubernetes Job), as the owner: create the services' and the backup's roles and
 * set their passwords, apply pending migrations, apply the grants; exit 0, or exit 1.
 */
export async function runMigrationsCli(service: ServiceName): Promise<void> {
  const env = loadEnvOrExit(service, migrationEnvSchema);
  const logger = createLogger(service, env.LOG_LEVEL);
  let sql: Sql | undefined;
  try {
    sql = createPostgres({ url: postgresUrl(env), max: 1, logger, statementTimeoutMs: 0 });
    await waitForPostgres(sql, { waitMs: env.MIGRATION_WAIT_SECONDS * 1000, logger });
    const result = await prepareDatabase(sql, readMigrations(defaultMigrationsDir()), { passwords: rolePasswordsFrom(env as unknown as Record<string, string | undefined>), logger });
    logger.info(result, "migrations complete");
    await sql.end({ timeout: 5 });
    await flushThenExit(logger, 0);
  } catch (err) {
    logger.fatal({ err: (err as Error).message }, "migrations failed");
    await sql?.end({ timeout: 1 });
    await flushThenExit(logger, 1);
  }
}
