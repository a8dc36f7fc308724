/**
 * `npm start`: the whole platform on 127.0.0.1 (gateway on http://127.0.0.1:8080, `PORT` overrides),
 * data under .local/ (git-ignored, kept across starts; `TITANIUM_DATA_DIR` overrides), the services on the
 * original's ports (8001, 8002, 8005; `TITANIUM_SERVICE_PORTS=any` takes free ones, to run a second
 * platform beside a first). SIGTERM or SIGINT stops everything in order
 * (`npm start` execs this, so a signal to npm reaches it); a terminal's Ctrl-C also reaches the children.
 */
import { join } from "node:path";
import { ROOT, DEFAULT_GATEWAY_PORT, startPlatform } from "./platform.mjs";

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

const port = process.env.PORT ? Number(process.env.PORT) : DEFAULT_GATEWAY_PORT;
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
const dataDir = process.env.TITANIUM_DATA_DIR || join(ROOT, ".local");

let stopping = false;
try {
  const platform = await startPlatform({ dataDir, gatewayPort: port, servicePorts, redis: "auto", log });
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log("platform", `${signal}: stopping (gateway, services, Redis, PostgreSQL)`);
    await platform.stop();
    log("platform", "stopped");
    process.exit(0);
  };
  process.on("SIGINT", () => void shutdown("SIGINT"));
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  for (const svc of Object.values(platform.services))
    svc.process?.once("exit", (code) => {
      if (!stopping) log("platform", `${svc.name} exited unexpectedly (code ${code}); the rest keeps running`);
    });
  log("platform", `Titanium is up: ${platform.url}  (blog: ${platform.url}/blog/, API: ${platform.url}/api/..., Ctrl-C stops)`);
} catch (err) {
  log("platform", `failed to start: ${(err as Error).message}`);
  process.exit(1);
}
