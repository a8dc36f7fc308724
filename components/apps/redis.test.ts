import { execFile, spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { redisPingCommand, redisStartCommand } from "./redis";

const run = promisify(execFile);
// Quotes, a backslash, a space and a dollar: everything the config syntax or the shell could trip on.
const PASSWORD = 'p a"ss\\wo$rd';

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Runs the container's own command and probe against a real redis-server. */
describe("Redis start command and probe (real redis-server)", () => {
  let port: number;
  let dir: string;
  let child: ReturnType<typeof spawn>;
  const cli = (args: string[], auth?: string) =>
    run("redis-cli", ["-p", String(port), ...args], { env: { ...process.env, ...(auth !== undefined ? { REDISCLI_AUTH: auth } : {}) } }).then((r) => r.stdout.trim());
  const probe = (auth?: string) => {
    const [sh, flag, script] = redisPingCommand(port) as [string, string, string];
    return run(sh, [flag, script], { env: { ...process.env, ...(auth !== undefined ? { REDISCLI_AUTH: auth } : {}) } }).then(() => true, () => false);
  };

  beforeAll(async () => {
    port = await freePort();
    dir = mkdtempSync(path.join(tmpdir(), "titanium-redis-"));
    const [sh, flag, script] = redisStartCommand(32, port, dir) as [string, string, string];
    child = spawn(sh, [flag, script], { env: { ...process.env, REDIS_PASSWORD: PASSWORD }, stdio: "ignore" });
    for (let i = 0; i < 100 && !(await probe(PASSWORD)); i++) await new Promise((r) => setTimeout(r, 20));
  });
  afterAll(() => {
    child.kill("SIGTERM");
    rmSync(dir, { recursive: true, force: true });
  });

  it("requires the password from the environment, and the probe passes only with it", async () => {
    expect(await cli(["ping"])).toContain("NOAUTH");
    expect(await cli(["ping"], PASSWORD)).toBe("PONG");
    expect(await probe(PASSWORD)).toBe(true);
    expect(await probe("wrong")).toBe(false);
    expect(await probe()).toBe(false);
  });

  it("bounds memory with LRU eviction of the keys that expire, and keeps nothing on disk", async () => {
    expect(await cli(["config", "get", "maxmemory"], PASSWORD)).toBe(`maxmemory\n${32 * 1024 * 1024}`);
    expect(await cli(["config", "get", "maxmemory-policy"], PASSWORD)).toBe("maxmemory-policy\nvolatile-lru");
    expect(await cli(["config", "get", "save"], PASSWORD)).toBe("save");
  });

  it("when full, evicts cache entries (with a TTL) but never a cache's generation counter (INCR, no TTL)", async () => {
    // Written first and never touched again: the least recently used key of all.
    await cli(["incr", "test:generation"], PASSWORD);
    // About 100 MiB of entries with a TTL, as the caches write them, into 32 MiB: hundreds of evictions.
    const fill = "local i = redis.call('INCR', KEYS[1]) redis.call('SET', 'test:entry:' .. i, string.rep('x', 102400), 'EX', 600)";
    await cli(["-r", "1000", "eval", fill, "1", "test:filled"], PASSWORD);
    const evicted = Number(/evicted_keys:(\d+)/.exec(await cli(["info", "stats"], PASSWORD))![1]);
    expect(evicted).toBeGreaterThan(500);
    expect(await cli(["get", "test:generation"], PASSWORD)).toBe("1");
    expect(await cli(["get", "test:filled"], PASSWORD)).toBe("1000");
    await cli(["flushall"], PASSWORD);
  });

  it("never shows the password in any process's arguments", () => {
    const cmdlines = readdirSync("/proc")
      .filter((p) => /^\d+$/.test(p))
      .map((p) => {
        try {
          return readFileSync(`/proc/${p}/cmdline`, "utf8");
        } catch {
          return "";
        }
      });
    expect(cmdlines.some((c) => c.includes("redis-server"))).toBe(true);
    expect(cmdlines.filter((c) => c.includes(PASSWORD))).toEqual([]);
  });

  // The image's shell is BusyBox ash (redis:*-alpine); the kubelet signals the container's PID 1.
  it.each([["sh"], ["busybox sh"]])("%s: execs redis-server itself (the container's PID 1), which shuts down on SIGTERM", async (shell) => {
    const own = await freePort();
    const ownDir = mkdtempSync(path.join(tmpdir(), "titanium-redis-term-"));
    const [, flag, script] = redisStartCommand(32, own, ownDir) as [string, string, string];
    const [bin, ...pre] = shell.split(" ") as [string, ...string[]];
    const p = spawn(bin, [...pre, flag, script], { env: { ...process.env, REDIS_PASSWORD: PASSWORD }, stdio: "ignore" });
    try {
      const exited = new Promise<number | null>((resolve) => p.on("exit", (code) => resolve(code)));
      const ready = () => run("redis-cli", ["-p", String(own), "ping"], { env: { ...process.env, REDISCLI_AUTH: PASSWORD } }).then((r) => r.stdout.trim() === "PONG", () => false);
      for (let i = 0; i < 100 && !(await ready()); i++) await new Promise((r) => setTimeout(r, 20));
      // The process the shell was started as is now redis-server (no shell left in front of it).
      expect(readFileSync(`/proc/${p.pid}/comm`, "utf8").trim()).toBe("redis-server");
      p.kill("SIGTERM");
      const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r("still running"), 5000))]);
      expect(code).toBe(0);
    } finally {
      p.kill("SIGKILL");
      rmSync(ownDir, { recursive: true, force: true });
    }
  });
});
