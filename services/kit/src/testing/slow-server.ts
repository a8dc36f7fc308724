// Test fixture: a kit server with a slow route, run as a child process so a test can send it a real SIGTERM.
import { createServiceApp, Lifecycle } from "../app.js";
import { createLogger } from "../logger.js";
import { Metrics } from "../metrics.js";
import { exitOnSignals, startServer } from "../server.js";

const logger = createLogger("api-gateway", "info");
const lifecycle = new Lifecycle();
const app = createServiceApp({
  service: "api-gateway",
  logger,
  metrics: new Metrics("api-gateway", { processMetrics: false }),
  allowedOrigins: [],
  lifecycle,
  health: (c) => c.body(null, 200),
  openapi: { title: "fixture", version: "0" },
});
// Answers after `ms`, or without it once the test sends SIGUSR2: a request the test ends when it has seen
// what it waits for, instead of one long enough for the slowest machine.
app.get("/slow", async (c) => {
  const ms = c.req.query("ms");
  const done = new Promise((r) => (ms === undefined ? process.once("SIGUSR2", r) : setTimeout(r, Number(ms))));
  console.log(JSON.stringify({ slowStarted: true })); // the test sends SIGTERM once a request is in flight
  await done;
  return c.json({ done: true });
});
const running = await startServer({
  fetch: app.fetch,
  port: Number(process.env.PORT ?? 0),
  host: "127.0.0.1",
  logger,
  lifecycle,
  graceMs: Number(process.env.SHUTDOWN_GRACE_MS ?? 5000),
  delayMs: Number(process.env.SHUTDOWN_DELAY_MS ?? 0),
  closers: [async () => logger.info("closer ran")],
});
exitOnSignals(running, logger);
console.log(JSON.stringify({ listening: running.port }));
