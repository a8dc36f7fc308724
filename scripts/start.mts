/**
 * `npm start`: the whole platform on 127.0.0.1 (gateway on http://127.0.0.1:8080, `PORT` overrides),
 * data under .local/ (git-ignored, kept across starts; `TITANIUM_DATA_DIR` overrides), the services on the
 * original's ports (8001, 8002, 8005; `TITANIUM_SERVICE_PORTS=any` takes free ones, to run a second
 * platform beside a first). SIGTERM, SIGINT or SIGHUP stops everything in order, also during start-up
 * (`npm start` execs this, so a signal to npm reaches it); a terminal's Ctrl-C also reaches the children. A
 * second signal, or a stop taking over 30 s, kills everything at once (exit 1). A service, Redis or PostgreSQL
 * exiting by itself once the platform is up stops the platform too: exit 1, with its last lines.
 */
import { join, resolve } from "node:path";
import { ROOT, DEFAULT_GATEWAY_PORT, PortInUse, startPlatform, type Platform } from "./platform.mjs";

const COLORS: Record<string, string> = {
  "api-gateway": "\x1b[36m",
  "auth-service": "\x1b[35m",
  "user-service": "\x1b[33m",
  "blog-service": "\x1b[32m",
  postgres: "\x1b[34m",
  redis: "\x1b[31m",
  migrate: "\x1b[90m",
  platform: "\x1b[1m",
};
const tty = process.stdout.isTTY;
const width = Math.max(...Object.keys(COLORS).map((k) => k.length));
/** Every line tagged with its source (a process's output arrives in chunks of several lines). */
const log = (source: string, text: string) => {
  const tag = source.padEnd(width);
  for (const line of text.replace(/\n+$/, "").split("\n")) console.log(tty ? `${COLORS[source] ?? ""}${tag}\x1b[0m | ${line}` : `${tag} | ${line}`);
};

const portSetting = process.env.PORT;
const port = !portSetting ? DEFAULT_GATEWAY_PORT : /^\d+$/.test(portSetting) ? Number(portSetting) : Number.NaN;
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`PORT: expected a port number, got "${process.env.PORT}"`);
  process.exit(2);
}

const servicePortsSetting = process.env.TITANIUM_SERVICE_PORTS;
if (servicePortsSetting !== undefined && servicePortsSetting !== "any" && servicePortsSetting !== "original") {
  console.error(`TITANIUM_SERVICE_PORTS: expected "any" or "original", got "${servicePortsSetting}"`);
  process.exit(2);
}
const servicePorts = servicePortsSetting === "any" ? { "user-service": 0, "auth-service": 0, "blog-service": 0 } : undefined;
// Relative to where `npm start` was typed (npm runs this from the project root and says where in INIT_CWD).
const dataDir = process.env.TITANIUM_DATA_DIR ? resolve(process.env.INIT_CWD ?? process.cwd(), process.env.TITANIUM_DATA_DIR) : join(ROOT, ".local");

const STOP_TIMEOUT_MS = 30_000;
const startup = new AbortController();
let platform: Platform | undefined;
let stopping = false;

/** Stops everything in order, then exits with `code`; a second call (a second Ctrl-C) kills everything. */
const shutdown = async (reason: string, code: number) => {
  if (stopping) {
    log("platform", `${reason} while stopping: killing everything now`);
    platform?.kill();
    process.exit(1);
  }
  stopping = true;
  if (!platform) {
    log("platform", `${reason} during start-up: stopping what has started`);
    startup.abort();
    return; // the start-up's failure path exits
  }
  log("platform", `${reason}: stopping (gateway, services, Redis, PostgreSQL)`);
  setTimeout(() => {
    log("platform", `not stopped after ${STOP_TIMEOUT_MS / 1000} s: killing everything`);
    platform?.kill();
    process.exit(1);
  }, STOP_TIMEOUT_MS).unref();
  await platform.stop();
  log("platform", "stopped");
  process.exit(code);
};
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(signal, () => void shutdown(signal, 0));

/**
 * A component exiting by itself: the platform stops (a half-running platform answers some requests and not
 * others). A terminal's Ctrl-C reaches every process at once: give its SIGINT the time to be seen here first.
 */
const onExit = (source: string, how: string, lastLines: string[]) =>
  void setTimeout(() => {
    if (stopping) return;
    log("platform", `${source} exited unexpectedly (${how}); its last lines:`);
    for (const line of lastLines) log("platform", `  ${line}`);
    void shutdown(`${source} exited`, 1);
  }, 500);

try {
  platform = await startPlatform({ dataDir, gatewayPort: port, servicePorts, redis: "auto", log, onExit, signal: startup.signal });
} catch (err) {
  if (startup.signal.aborted) {
    log("platform", "stopped");
    process.exit(0);
  }
  log("platform", `failed to start: ${err instanceof Error ? err.message : String(err)}`);
  if (err instanceof PortInUse)
    log(
      "platform",
      err.source === "api-gateway"
        ? "Is the platform already running? PORT=<port> npm start puts the gateway elsewhere."
        : "Is the platform already running? TITANIUM_SERVICE_PORTS=any puts the services on free ports (with TITANIUM_DATA_DIR for a second platform's data).",
    );
  process.exit(1);
}
if (stopping) {
  // A signal came while the last service was becoming ready.
  stopping = false;
  await shutdown("signal", 0);
}
log("platform", `Titanium is up: ${platform.url}  (blog: ${platform.url}/blog/, API: ${platform.url}/api/..., Ctrl-C stops)`);
