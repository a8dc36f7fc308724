import { execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { appendFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { redisConfigCommand, redisPingCommand, redisStartCommand } from "./redis";
import { REDIS_USERS } from "./topology";

const run = promisify(execFile);
// Quotes, a backslash, a space and a dollar: everything the config syntax or the shell could trip on.
const PASSWORDS: Record<string, string> = {
  REDIS_PASSWORD: 'p a"ss\\wo$rd',
  API_GATEWAY_REDIS_PASSWORD: "gateway 'pass' $HOME",
  USER_SERVICE_REDIS_PASSWORD: "user-service-password",
  BLOG_SERVICE_REDIS_PASSWORD: "blog\\service`password`",
};
const PROBE = PASSWORDS.REDIS_PASSWORD!;
/** An administrator the test adds to the config the init container wrote (the cluster's Redis has none). */
const ADMIN = { user: "test-admin", password: "test-admin-password" };

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Runs the init container's script (with `shell`) in a fresh folder; the config's path, or the failure. */
async function writeConfig(port: number, dir: string, env: Record<string, string>, shell = "sh") {
  const conf = path.join(dir, "redis.conf");
  const [, flag, script] = redisConfigCommand(32, port, dir, conf) as [string, string, string];
  const [bin, ...pre] = shell.split(" ") as [string, ...string[]];
  const { PATH } = process.env;
  const result = await run(bin, [...pre, flag, script], { env: { PATH, ...env } }).then(
    () => ({ ok: true as const, stderr: "" }),
    (err: { stderr: string }) => ({ ok: false as const, stderr: err.stderr }),
  );
  return { conf, ...result };
}

/** Runs the init container's command and then the server's, as the pod does, and the probe against them. */
describe("Redis config init container, start command and probe (real redis-server)", () => {
  let port: number;
  let dir: string;
  let conf: string;
  let child: ReturnType<typeof spawn>;
  const cli = (args: string[], auth?: { user?: string; password: string }) =>
    run("redis-cli", ["-p", String(port), ...(auth?.user ? ["--user", auth.user] : []), ...args], {
      env: { ...process.env, ...(auth ? { REDISCLI_AUTH: auth.password } : {}) },
    }).then(
      (r) => r.stdout.trim(),
      (err: { stdout: string; stderr: string }) => `${err.stdout}${err.stderr}`.trim(),
    );
  const admin = (args: string[]) => cli(args, ADMIN);
  const probe = (auth?: string) => {
    const [sh, flag, script] = redisPingCommand(port) as [string, string, string];
    return run(sh, [flag, script], { env: { ...process.env, ...(auth !== undefined ? { REDISCLI_AUTH: auth } : {}) } }).then(() => true, () => false);
  };

  beforeAll(async () => {
    port = await freePort();
    dir = mkdtempSync(path.join(tmpdir(), "titanium-redis-"));
    const written = await writeConfig(port, dir, PASSWORDS);
    expect(written).toMatchObject({ ok: true });
    conf = written.conf;
    appendFileSync(conf, `user ${ADMIN.user} on >${ADMIN.password} ~* &* +@all\n`);
    const [bin, ...args] = redisStartCommand(conf) as [string, ...string[]];
    child = spawn(bin, args, { stdio: "ignore" });
    for (let i = 0; i < 100 && !(await probe(PROBE)); i++) await new Promise((r) => setTimeout(r, 20));
  });
  afterAll(() => {
    child.kill("SIGTERM");
    rmSync(dir, { recursive: true, force: true });
  });

  it("writes the config readable by its owner only, each password as its SHA-256 alone", () => {
    expect(statSync(conf).mode & 0o777).toBe(0o600);
    const text = readFileSync(conf, "utf8");
    for (const [key, password] of Object.entries(PASSWORDS)) {
      expect(text, key).not.toContain(password);
      expect(text).toContain(`#${createHash("sha256").update(password).digest("hex")} `);
    }
    expect(text).toContain("user default reset off resetchannels -@all\n");
    expect(readdirSync(dir).filter((f) => f.endsWith(".tmp"))).toEqual([]);
  });

  it("turns the default user off: without a login nothing runs; the probe passes only as `probe` with its password", async () => {
    expect(await cli(["ping"])).toContain("NOAUTH");
    // The probes' password is `probe`'s only: as the default user it logs in to nothing.
    expect(await cli(["ping"], { password: PROBE })).toMatch(/NOAUTH|WRONGPASS/);
    expect(await cli(["ping"], { user: REDIS_USERS.probe.user, password: PROBE })).toBe("PONG");
    expect(await probe(PROBE)).toBe(true);
    expect(await probe(PASSWORDS.API_GATEWAY_REDIS_PASSWORD!)).toBe(false);
    expect(await probe("wrong")).toBe(false);
    expect(await probe()).toBe(false);
    // The probes' user may PING and nothing else.
    for (const cmd of [["get", "blog:gen"], ["info"], ["config", "get", "maxmemory"], ["flushall"]]) {
      expect(await cli(cmd, { user: REDIS_USERS.probe.user, password: PROBE }), cmd.join(" ")).toContain("NOPERM");
    }
  });

  it("fails, writing no config, when a password is missing or empty", async () => {
    const own = mkdtempSync(path.join(tmpdir(), "titanium-redis-conf-"));
    try {
      const { BLOG_SERVICE_REDIS_PASSWORD: _, ...missing } = PASSWORDS;
      const a = await writeConfig(port, own, missing);
      expect(a).toMatchObject({ ok: false });
      expect(a.stderr).toContain("BLOG_SERVICE_REDIS_PASSWORD is empty or unset");
      const b = await writeConfig(port, own, { ...PASSWORDS, REDIS_PASSWORD: "" });
      expect(b).toMatchObject({ ok: false });
      expect(existsSync(a.conf)).toBe(false);
    } finally {
      rmSync(own, { recursive: true, force: true });
    }
  });

  it("bounds memory with LRU eviction of the keys that expire, and keeps nothing on disk", async () => {
    expect(await admin(["config", "get", "maxmemory"])).toBe(`maxmemory\n${32 * 1024 * 1024}`);
    expect(await admin(["config", "get", "maxmemory-policy"])).toBe("maxmemory-policy\nvolatile-lru");
    expect(await admin(["config", "get", "save"])).toBe("save");
  });

  it("when full, evicts cache entries (with a TTL) but never a cache's generation counter (INCR, no TTL)", async () => {
    // Written first and never touched again: the least recently used key of all.
    await admin(["incr", "test:generation"]);
    // About 100 MiB of entries with a TTL, as the caches write them, into 32 MiB: hundreds of evictions.
    const fill = "local i = redis.call('INCR', KEYS[1]) redis.call('SET', 'test:entry:' .. i, string.rep('x', 102400), 'EX', 600)";
    await admin(["-r", "1000", "eval", fill, "1", "test:filled"]);
    const evicted = Number(/evicted_keys:(\d+)/.exec(await admin(["info", "stats"]))![1]);
    expect(evicted).toBeGreaterThan(500);
    expect(await admin(["get", "test:generation"])).toBe("1");
    expect(await admin(["get", "test:filled"])).toBe("1000");
    await admin(["flushall"]);
  });

  it("never shows a password in any process's arguments", () => {
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
    for (const password of Object.values(PASSWORDS)) expect(cmdlines.filter((c) => c.includes(password))).toEqual([]);
  });

  // The image's shell is BusyBox ash (redis:*-alpine), with BusyBox's sha256sum and cut.
  it("writes the same config under BusyBox sh", async () => {
    const own = mkdtempSync(path.join(tmpdir(), "titanium-redis-busybox-"));
    try {
      const mine = await writeConfig(port, own, PASSWORDS, "busybox sh");
      expect(mine).toMatchObject({ ok: true });
      const text = (f: string) => readFileSync(f, "utf8").replace(own, "DIR").replace(dir, "DIR");
      expect(text(mine.conf)).toBe(text(conf).replace(/user test-admin .*\n/, ""));
    } finally {
      rmSync(own, { recursive: true, force: true });
    }
  });

  // The kubelet signals the container's PID 1: redis-server itself (no shell in front of it).
  it("starts redis-server itself, which shuts down on SIGTERM", async () => {
    const own = await freePort();
    const ownDir = mkdtempSync(path.join(tmpdir(), "titanium-redis-term-"));
    const written = await writeConfig(own, ownDir, PASSWORDS);
    const [bin, ...args] = redisStartCommand(written.conf) as [string, ...string[]];
    expect(bin).toBe("redis-server");
    const p = spawn(bin, args, { stdio: "ignore" });
    try {
      const exited = new Promise<number | null>((resolve) => p.on("exit", (code) => resolve(code)));
      const ready = () =>
        run("redis-cli", ["-p", String(own), "--user", REDIS_USERS.probe.user, "ping"], { env: { ...process.env, REDISCLI_AUTH: PROBE } }).then((r) => r.stdout.trim() === "PONG", () => false);
      for (let i = 0; i < 100 && !(await ready()); i++) await new Promise((r) => setTimeout(r, 20));
      expect(await ready()).toBe(true);
      p.kill("SIGTERM");
      const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r("still running"), 5000))]);
      expect(code).toBe(0);
    } finally {
      p.kill("SIGKILL");
      rmSync(ownDir, { recursive: true, force: true });
    }
  });
});
