import { JwtVerifier, Lifecycle, Metrics, connectPostgres, connectRedis, createLogger, exitOnSignals, listenPort, loadEnvOrExit, startServer } from "@titanium/kit";
import { createApp } from "./app.js";
import { envSchema } from "./config.js";
import { hashPool } from "./passwords.js";

const env = loadEnvOrExit("user-service", envSchema);
const logger = createLogger("user-service", env.LOG_LEVEL);
hashPool.configure({ size: env.PASSWORD_HASH_CONCURRENCY, nice: env.PASSWORD_HASH_NICE });
const sql = connectPostgres(env, logger);
const redis = connectRedis(env, logger);
const lifecycle = new Lifecycle();
const app = createApp({
  sql,
  redis,
  verifier: new JwtVerifier({ jwksUrl: env.AUTH_JWKS_URL, issuer: env.JWT_ISSUER, audience: env.JWT_AUDIENCE }),
  logger,
  metrics: new Metrics("user-service"),
  lifecycle,
  allowedOrigins: env.ALLOWED_ORIGINS,
});
const running = await startServer({
  fetch: app.fetch,
  port: listenPort("user-service", env.PORT),
  host: env.HOST,
  logger,
  lifecycle,
  graceMs: env.SHUTDOWN_GRACE_MS,
  delayMs: env.SHUTDOWN_DELAY_MS,
  closers: [() => sql.end({ timeout: 5 }), async () => redis?.disconnect(), () => hashPool.close()],
});
logger.info({ port: running.port }, "listening");
exitOnSignals(running, logger);
