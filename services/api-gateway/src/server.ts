import { JwtVerifier, Lifecycle, Metrics, connectRedis, createLogger, exitOnSignals, listenPort, loadEnvOrExit, MAX_HEADER_BYTES, startServer, urlList } from "@titanium/kit";
import { createGateway } from "./app.js";
import { envSchema, trustedProxies } from "./config.js";
import { RATE_LIMIT_SCRIPTS } from "./rate-limit.js";

const env = loadEnvOrExit("api-gateway", envSchema);
const logger = createLogger("api-gateway", env.LOG_LEVEL);
const redis = connectRedis(env, logger, RATE_LIMIT_SCRIPTS);
const lifecycle = new Lifecycle();
const { app, shortcut } = createGateway({
  upstreams: { auth: urlList(env.AUTH_SERVICE_URL), user: urlList(env.USER_SERVICE_URL), blog: urlList(env.BLOG_SERVICE_URL) },
  verifier: new JwtVerifier({ jwksUrl: env.AUTH_JWKS_URL, issuer: env.JWT_ISSUER, audience: env.JWT_AUDIENCE }),
  redis,
  trustedProxies: trustedProxies(env.TRUSTED_PROXY_CIDRS),
  logger,
  metrics: new Metrics("api-gateway"),
  lifecycle,
  allowedOrigins: env.ALLOWED_ORIGINS,
  upstreamTimeoutMs: env.UPSTREAM_TIMEOUT_MS,
  bodyLimitBytes: env.BODY_LIMIT_BYTES,
  bodyBudgetBytes: env.BODY_BUDGET_BYTES,
  rateLimitScale: env.RATE_LIMIT_SCALE,
  responseCache: { maxEntries: env.RESPONSE_CACHE_MAX_ENTRIES, maxAgeMs: env.RESPONSE_CACHE_MAX_AGE_MS, maxTotalBytes: env.RESPONSE_CACHE_MAX_BYTES },
  maxInFlight: env.MAX_IN_FLIGHT,
  maxInFlightPerClient: env.MAX_IN_FLIGHT_PER_CLIENT,
});
const running = await startServer({
  fetch: app.fetch,
  shortcut,
  port: listenPort("api-gateway", env.PORT),
  host: env.HOST,
  logger,
  lifecycle,
  graceMs: env.SHUTDOWN_GRACE_MS,
  delayMs: env.SHUTDOWN_DELAY_MS,
  closers: [async () => redis?.disconnect()],
  // The clients' limit; the services behind accept more, for the headers forwarding adds.
  maxHeaderBytes: MAX_HEADER_BYTES,
});
logger.info({ port: running.port, trusted_proxies: env.TRUSTED_PROXY_CIDRS.length }, "listening");
exitOnSignals(running, logger);
