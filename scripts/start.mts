/**
 * `npm start`: the whole platform on 127.0.0.1 (gateway on http://127.0.0.1:8080, `PORT` overrides),
 * data under .local/ (git-ignored, kept across starts; `TITANIUM_DATA_DIR` overrides), the services on the
 * original's ports (8001, 8002, 8005; `TITANIUM_SERVICE_PORTS=any` takes free ones, to run a second
 * platform beside a first); `SHUTDOWN_GRACE_MS` sets the services' drain after SIGTERM (5000 here, at most
 * 10000; services/README.md). SIGTERM, SIGINT or SIGHUP (the terminal closed: its output is gone, and lost
 * quietly) stops everything in order, also during start-up (npm passes a signal on to this); a terminal's
 * Ctrl-C also reaches the children. A process that outlives its grace after SIGTERM (a service: its drain
 * + 6 s, less where the stop's 30 s would not leave Redis and PostgreSQL 5 s for a clean shutdown) is killed and
 * the ordered stop goes on. A second SIGINT or SIGTERM (a second Ctrl-C) kills everything at once (exit 1),
 * and so does a stop taking over 30 s; copies of the first signal that npm (and tsx) pass on (they arrive
 * within milliseconds) are not a second one, and a SIGHUP during a stop does not hurry it. A service, Redis or
 * PostgreSQL exiting by itself once the platform is up stops the platform too: exit 1, with its last lines.
 */
import { join, resolve } from "node:path";
import { SERVICE_NAMES } from "../services/kit/src/config.js";
import { ROOT, DATA_STOP_MS, DEFAULT_GATEWAY_PORT, PortClash, PortInUse, formatLines, startPlatform, upMessage, type Platform } from "./platform.mjs";

const tty = process.stdout.isTTY;
// A closed terminal (EIO) or a closed pipe (EPIPE) fails every write from then on: without a listener that is
// an uncaught error, and the runner would die halfway through its stop, leaving the rest running.
for (const stream of [process.stdout, process.stderr]) stream.on("error", () => {});
/** Resolved by the gateway's "listening" line: the platform is said to be up after it, not above it. */
let gatewayListening = () => {};
const listening = new Promise<void>((resolve) => (gatewayListening = resolve));
const log = (source: string, text: string) => {
  for (const line of formatLines(source, text, tty)) console.log(line);
  if (source === "api-gateway" && text.includes('"msg":"listening"')) gatewayListening();
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
// The services' own setting, passed on to each: how long in-flight requests get after SIGTERM.
const graceSetting = process.env.SHUTDOWN_GRACE_MS;
/**
 * A stop that takes longer kills everything (exit 1). It is also the platform's deadline for the stop
 * (`Platform.stop`), which kills a hung process early enough to leave Redis and PostgreSQL their DATA_STOP_MS.
 */
const STOP_TIMEOUT_MS = 30_000;
// At most 10 s: a gateway and then services that drain as asked (10 s + 1 s of log flush each) and Redis and
// PostgreSQL's DATA_STOP_MS fit in STOP_TIMEOUT_MS, so only a hung process is cut short.
const MAX_GRACE_MS = 10_000;
if (2 * (MAX_GRACE_MS + 1000) + DATA_STOP_MS > STOP_TIMEOUT_MS) throw new Error("MAX_GRACE_MS: two drains and DATA_STOP_MS exceed STOP_TIMEOUT_MS");
if (graceSetting && !(/^\d+$/.test(graceSetting) && Number(graceSetting) <= MAX_GRACE_MS)) {
  console.error(`SHUTDOWN_GRACE_MS: expected milliseconds from 0 to ${MAX_GRACE_MS} (a stop ends within ${STOP_TIMEOUT_MS / 1000} s), got "${graceSetting}"`);
  process.exit(2);
}
const env = graceSetting ? Object.fromEntries(SERVICE_NAMES.map((name) => [name, { SHUTDOWN_GRACE_MS: graceSetting }])) : undefined;
const servicePorts = servicePortsSetting === "any" ? { "user-service": 0, "auth-service": 0, "blog-service": 0 } : undefined;
// Relative to where `npm start` was typed (npm runs this from the project root and says where in INIT_CWD).
const dataDir = process.env.TITANIUM_DATA_DIR ? resolve(process.env.INIT_CWD ?? process.cwd(), process.env.TITANIUM_DATA_DIR) : join(ROOT, ".local");

/**
 * One Ctrl-C in a terminal reaches this process several times: from the terminal, passed on by npm, and again by
 * tsx's command line if that runs this (it relays what its child has not reported within 30 ms). A repeat this
 * soon after the first is one of those copies; a person's second Ctrl-C comes later.
 */
const SAME_SIGNAL_MS = 1000;
const startup = new AbortController();
const killSwitch = new AbortController();
let platform: Platform | undefined;
/** When the stop began (a signal, or a component exiting by itself). */
let stoppingSince: number | undefined;

/** SIGKILL to everything started so far (also during start-up), then exit 1. */
const killNow = (why: string): never => {
  log("platform", `${why}: killing everything now`);
  if (platform) platform.kill();
  else killSwitch.abort();
  process.exit(1);
};

/** Stops everything in order, then exits with `code`. */
const shutdown = async (reason: string, code: number) => {
  if (stoppingSince !== undefined) return;
  stoppingSince = Date.now();
  setTimeout(() => killNow(`not stopped after ${STOP_TIMEOUT_MS / 1000} s`), STOP_TIMEOUT_MS).unref();
  if (!platform) {
    log("platform", `${reason} during start-up: stopping what has started`);
    startup.abort();
    return; // the start-up's failure path exits
  }
  log("platform", `${reason}: stopping (gateway, services, Redis, PostgreSQL)`);
  await platform.stop(stoppingSince + STOP_TIMEOUT_MS);
  log("platform", "stopped");
  process.exit(code);
};
const onSignal = (signal: NodeJS.Signals) => {
  if (stoppingSince === undefined) return void shutdown(signal, 0);
  if (signal === "SIGHUP") return log("platform", "SIGHUP while stopping (the terminal closed?): the stop goes on");
  if (Date.now() - stoppingSince < SAME_SIGNAL_MS) return; // the first signal again, passed on by npm or tsx
  killNow(`${signal} while stopping`);
};
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(signal, onSignal);

/**
 * A component exiting by itself: the platform stops (a half-running platform answers some requests and not
 * others). A terminal's Ctrl-C reaches every process at once: give its SIGINT the time to be seen here first.
 */
const onExit = (source: string, how: string, lastLines: string[]) =>
  void setTimeout(() => {
    if (stoppingSince !== undefined) return;
    log("platform", `${source} exited unexpectedly (${how}); its last lines:`);
    for (const line of lastLines) log("platform", `  ${line}`);
    void shutdown(`${source} exited`, 1);
  }, 500);

try {
  platform = await startPlatform({ dataDir, gatewayPort: port, servicePorts, env, redis: "auto", log, onExit, signal: startup.signal, kill: killSwitch.signal });
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
  if (err instanceof PortClash) log("platform", "PORT=<port> npm start puts the gateway elsewhere; TITANIUM_SERVICE_PORTS=any puts the services on free ports.");
  process.exit(1);
}
if (stoppingSince !== undefined) {
  // A signal came while the last service was becoming ready: the start-up did not see it.
  log("platform", "stopping (gateway, services, Redis, PostgreSQL)");
  await platform.stop(stoppingSince + STOP_TIMEOUT_MS);
  log("platform", "stopped");
  process.exit(0);
}
// The services flush their log lines every 250 ms: the gateway's may come a little after it is ready.
await Promise.race([listening, new Promise((r) => setTimeout(r, 2000))]);
if (stoppingSince === undefined) log("platform", upMessage(platform));
