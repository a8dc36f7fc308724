import { JwtVerifier, Lifecycle, Metrics, connectPostgres, connectRedis, createLogger, exitOnSignals, listenPort, loadEnvOrExit, startServer } from "@titanium/kit";
import { createApp } from "./app.js";
import { envSchema } from "./config.js";

const env = loadEnvOrExit("blog-service", envSchema);
const logger = createLogger("blog-service", env.LOG_LEVEL);
const sql = connectPostgres(env, logger);
const redis = connectRedis(env, logger);
const lifecycle = new Lifecycle();
const app = createApp({
  sql,
  redis,
  verifier: new JwtVerifier({ jwksUrl: env.AUTH_JWKS_URL, issuer: env.JWT_ISSUER, audience: env.JWT_AUDIENCE }),
  logger,
  metrics: new Metrics("blog-service"),
  lifecycle,
  allowedOrigins: env.ALLOWED_ORIGINS,
  web: { root: env.WEB_ROOT },
});
const running = await startServer({
  fetch: app.fetch,
  port: listenPort("blog-service", env.PORT),
  host: env.HOST,
  logger,
  lifecycle,
  graceMs: env.SHUTDOWN_GRACE_MS,
  delayMs: env.SHUTDOWN_DELAY_MS,
  closers: [() => sql.end({ timeout: 5 }), async () => redis?.disconnect()],
});
logger.info({ port: running.port }, "listening");
exitOnSignals(running, logger);
