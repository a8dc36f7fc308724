import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { processStartTime } from "../services/kit/src/local/index.js";
import { AlreadyRunning, PortClash, PortInUse, formatLines, startPlatform, upMessage } from "./platform.mjs";

// What `npm start` relies on that needs no PostgreSQL: the per-data-directory lock (and the clean-up of what a
// runner killed with SIGKILL left running), and how its output is tagged. Stand-ins for the leftovers are tiny
// node processes; a port held here stops each start right after the lock, before anything is started.
const root = mkdtempSync(join(tmpdir(), "titanium-platform-runner-"));
const started = new Set<ChildProcess>();
let held: Server | undefined;
afterEach(async () => {
  for (const child of started) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  started.clear();
  await new Promise((r) => (held ? held.close(r) : r(undefined)));
  held = undefined;
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Runs until killed; "ignore-term" ignores SIGTERM; answers "ping" with "pong" (alive and never signalled). */
function sleeper(...args: string[]) {
  const child = spawn(
    process.execPath,
    [
      "-e",
      `if (process.argv[1] === "ignore-term") process.on("SIGTERM", () => {});
       process.stdin.on("data", (d) => String(d).includes("ping") && console.log("pong"));
       console.log("ready");
       setInterval(() => {}, 1 << 30);`,
      ...args,
    ],
    { stdio: ["pipe", "pipe", "inherit"] },
  );
  started.add(child);
  const lines = createInterface({ input: child.stdout });
  const line = (text: string) =>
    new Promise<void>((resolve, reject) => {
      lines.on("line", (l) => l === text && resolve());
      child.once("exit", (code, signal) => reject(new Error(`exited (${code ?? signal}) before "${text}"`)));
    });
  const exit = new Promise<NodeJS.Signals | number | null>((r) => child.once("exit", (code, signal) => r(signal ?? code)));
  return {
    child,
    ready: () => line("ready"),
    id: () => ({ pid: child.pid!, start: processStartTime(child.pid!) }),
    exit,
    /** Resolves if it still runs and was never signalled (a SIGTERM's default action would have ended it). */
    untouched: async () => {
      const pong = line("pong");
      child.stdin.write("ping\n");
      await pong;
    },
  };
}

async function holdPort(): Promise<number> {
  held = createServer();
  await new Promise<void>((r) => held!.listen(0, "127.0.0.1", r));
  return (held.address() as { port: number }).port;
}

/** A start on `dataDir` that stops at the held port (after the lock): its error and its lines. */
async function startStoppingAtPort(dataDir: string) {
  const port = await holdPort();
  const lines: string[] = [];
  const err = await startPlatform({
    dataDir,
    leftoverGraceMs: 1500, // a leftover that ignores SIGTERM is killed after it (10 s by default)
    gatewayPort: 0,
    servicePorts: { "user-service": port, "auth-service": 0, "blog-service": 0 },
    redis: false,
    build: false,
    log: (source, line) => lines.push(`${source} | ${line}`),
  }).then(
    () => new Error("started"),
    (e: unknown) => e,
  );
  return { err, lines, port };
}

const lockFile = (dir: string) => join(dir, "platform.lock");
const newDataDir = () => mkdtempSync(join(root, "data-"));

describe("the data directory's lock (one platform per data directory)", () => {
  it("refuses a start while the lock's owner runs, and touches neither the lock nor what it names", async () => {
    const dataDir = newDataDir();
    const owner = sleeper();
    const child = sleeper();
    await Promise.all([owner.ready(), child.ready()]);
    const lock = JSON.stringify({ pid: owner.child.pid, start: processStartTime(owner.child.pid!), url: "http://127.0.0.1:1", children: { redis: child.id() } });
    writeFileSync(lockFile(dataDir), lock);
    const { err } = await startStoppingAtPort(dataDir);
    expect(err).toBeInstanceOf(AlreadyRunning);
    expect((err as Error).message).toBe(`another platform (pid ${owner.child.pid}, http://127.0.0.1:1) is already running on ${dataDir}: stop it first, or give this one a data directory of its own`);
    expect(readFileSync(lockFile(dataDir), "utf8")).toBe(lock);
    await owner.untouched();
    await child.untouched();
  });

  it("after a runner killed with SIGKILL: stops what it left running (SIGKILL for one that ignores SIGTERM), leaves alone a pid now another process's, and takes the lock", async () => {
    const dataDir = newDataDir();
    // The runner, gone (its pid and start time as it wrote them).
    const runner = sleeper();
    await runner.ready();
    const runnerId = runner.id();
    runner.child.kill("SIGKILL");
    await runner.exit;
    const polite = sleeper();
    const stubborn = sleeper("ignore-term");
    const unrelated = sleeper(); // has the pid of a leftover that is gone: another start time
    await Promise.all([polite.ready(), stubborn.ready(), unrelated.ready()]);
    const children = {
      "user-service": polite.id(),
      redis: stubborn.id(),
      "blog-service": { pid: unrelated.child.pid!, start: processStartTime(unrelated.child.pid!)! - 1 },
    };
    writeFileSync(lockFile(dataDir), JSON.stringify({ ...runnerId, url: "http://127.0.0.1:1", children }));

    const { err, lines, port } = await startStoppingAtPort(dataDir);
    expect(err).toBeInstanceOf(PortInUse);
    expect((err as Error).message).toBe(`port ${port} (user-service) is already in use on 127.0.0.1`);
    expect(lines).toContain(`platform | the run before (pid ${runnerId.pid}) did not stop; stopping what it left running: user-service (pid ${polite.child.pid}), redis (pid ${stubborn.child.pid})`);
    expect(await polite.exit).toBe("SIGTERM");
    expect(await stubborn.exit).toBe("SIGKILL");
    await unrelated.untouched();
    // The lock was taken, then given back by the start that failed.
    expect(existsSync(lockFile(dataDir))).toBe(false);
  }, 30_000);

  it.each([
    ["whose owner's pid is now another process's (another start time)", "reused"],
    ["that is half written", "garbage"],
  ])("takes over a lock %s", async (_, kind) => {
    const dataDir = newDataDir();
    const other = sleeper();
    await other.ready();
    writeFileSync(lockFile(dataDir), kind === "reused" ? JSON.stringify({ pid: other.child.pid, start: processStartTime(other.child.pid!)! - 1, children: {} }) : '{"pid": 1');
    const { err } = await startStoppingAtPort(dataDir);
    expect(err).toBeInstanceOf(PortInUse);
    expect(existsSync(lockFile(dataDir))).toBe(false);
    await other.untouched();
  });
});

describe("what a start refuses before starting anything", () => {
  const startOn = (dataDir: string, ports: { gateway: number; user: number }) => {
    const lines: string[] = [];
    const result = startPlatform({
      dataDir,
      gatewayPort: ports.gateway,
      servicePorts: { "user-service": ports.user, "auth-service": 0, "blog-service": 0 },
      redis: "auto", // its users' passwords read too; it would never start (a start gone that far has failed the test)
      redisCommand: join(dataDir, "no-such-redis-server"),
      build: false,
      log: (source, line) => lines.push(`${source} | ${line}`),
    }).then(
      () => new Error("started"),
      (e: unknown) => e,
    );
    return { result, lines };
  };

  it("one port given to two components, naming both (the second would find it taken only once everything else runs)", async () => {
    const dataDir = newDataDir();
    // A free port: neither taken nor checked before.
    const port = await holdPort();
    await new Promise((r) => held!.close(r));
    held = undefined;
    const { result, lines } = startOn(dataDir, { gateway: port, user: port });
    const err = await result;
    expect(err).toBeInstanceOf(PortClash);
    expect((err as Error).message).toBe(`port ${port} is asked for twice: for user-service and for api-gateway`);
    expect(lines).toEqual([]);
    expect(existsSync(lockFile(dataDir))).toBe(false);
  });

  it.each([
    ["postgres/role-passwords.json", '{"user_service": "half-writ', /is not a JSON object of passwords \(.*JSON.*\): delete it to have new ones made/],
    ["postgres/role-passwords.json", '["not", "an", "object"]', /is not a JSON object of passwords: delete it to have new ones made/],
    ["redis/users.json", "", /is not a JSON object of passwords \(.*JSON.*\): delete it/],
    ["jwt-private-key.pem", "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49Aw\n", /is not a private key \(.*\): delete it to have a new one made/],
  ])("a %s that cannot be read (%j), naming the file, and gives the data directory back", async (file, content, message) => {
    const dataDir = newDataDir();
    mkdirSync(join(dataDir, file, ".."), { recursive: true });
    writeFileSync(join(dataDir, file), content);
    const { result, lines } = startOn(dataDir, { gateway: 0, user: 0 });
    const err = (await result) as Error;
    expect(err.message.startsWith(join(dataDir, file))).toBe(true);
    expect(err.message).toMatch(message);
    expect(lines).toEqual([]);
    expect(existsSync(lockFile(dataDir))).toBe(false);
  });
});

describe("npm start's output", () => {
  it("tags every line with its source, padded to the longest source's name (coloured on a terminal), each line of a message of several lines once", () => {
    expect(formatLines("redis", "Ready to accept connections", false)).toEqual(["redis        | Ready to accept connections"]);
    expect(formatLines("blog-service", '{"msg":"listening"}', false)).toEqual(['blog-service | {"msg":"listening"}']);
    expect(formatLines("platform", "failed to start: x exited:\nline 1\n\nline 3\n\n", false)).toEqual([
      "platform     | failed to start: x exited:",
      "platform     | line 1",
      "platform     | ",
      "platform     | line 3",
    ]);
    expect(formatLines("api-gateway", "", false)).toEqual(["api-gateway  | "]);
    expect(formatLines("api-gateway", "up", true)).toEqual(["\x1b[36mapi-gateway \x1b[0m | up"]);
    // A second instance's name (user-service#2) keeps its line, tagged and uncoloured.
    expect(formatLines("user-service#2", "up", true)).toEqual(["user-service#2\x1b[0m | up"]);
  });

  it("says in its last line that the platform is up, and without Redis that it is degraded (the banner has scrolled away)", () => {
    const url = "http://127.0.0.1:8080";
    const full = upMessage({ url, redis: { url: "redis://x", pid: () => 1, stop: async () => {}, start: async () => {} } });
    expect(full).toBe(`Titanium is up: ${url}  (blog: ${url}/blog/, API: ${url}/api/..., Ctrl-C stops)`);
    expect(upMessage({ url, redis: undefined })).toBe(`${full}  DEGRADED: no Redis (no caches, rate limits per gateway process): install redis-server`);
  });
});
