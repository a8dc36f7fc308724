import { Lifecycle, Metrics, connectPostgres, createLogger, exitOnSignals, flushThenExit, listenPort, loadEnvOrExit, startServer, urlList } from "@titanium/kit";
import { createApp } from "./app.js";
import { envSchema } from "./config.js";
import { loadSigningKeys, SigningKeyNotConfigured } from "./keys.js";

const env = loadEnvOrExit("auth-service", envSchema);
const logger = createLogger("auth-service", env.LOG_LEVEL);
const keys = await loadSigningKeys(env.JWT_PRIVATE_KEY, env.JWT_PUBLIC_KEYS).catch(async (err: unknown) => {
  if (!(err instanceof SigningKeyNotConfigured)) throw err;
  // Exit (the kubelet restarts the container, which reads the Secret again) rather than sign with it.
  logger.fatal({ kid: err.kid, configured: err.configured }, err.message);
  return flushThenExit(logger, 1);
});
const sql = connectPostgres(env, logger);
const lifecycle = new Lifecycle();
const app = createApp({
  sql,
  keys,
  tokens: {
    issuer: env.JWT_ISSUER,
    audience: env.JWT_AUDIENCE,
    accessTtlSeconds: env.ACCESS_TOKEN_TTL_SECONDS,
    refreshTtlSeconds: env.REFRESH_TOKEN_TTL_SECONDS,
    sessionMaxSeconds: env.REFRESH_SESSION_MAX_SECONDS,
  },
  userServiceUrl: urlList(env.USER_SERVICE_URL),
  upstreamTimeoutMs: env.UPSTREAM_TIMEOUT_MS,
  logger,
  metrics: new Metrics("auth-service"),
  lifecycle,
  allowedOrigins: env.ALLOWED_ORIGINS,
});
// Hourly housekeeping of the refresh tokens of sessions whose every token expired over a day ago (any replica may do it; the delete is idempotent).
const purge = setInterval(() => {
  app.tokenService.purgeExpired().catch((err: unknown) => logger.warn({ err: (err as Error).message }, "purge failed"));
}, 3_600_000);
purge.unref();
const running = await startServer({
  fetch: app.fetch,
  port: listenPort("auth-service", env.PORT),
  host: env.HOST,
  logger,
  lifecycle,
  graceMs: env.SHUTDOWN_GRACE_MS,
  delayMs: env.SHUTDOWN_DELAY_MS,
  closers: [() => sql.end({ timeout: 5 })],
});
logger.info({ port: running.port, kid: keys.kid, published_keys: keys.jwks.keys.length }, "listening");
exitOnSignals(running, logger);
