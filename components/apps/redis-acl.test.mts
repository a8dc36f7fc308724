/**
 * Redis least privilege, end to end: the Redis pod's config init container's own script writes the config (the
 * users' lines exactly the kit's `redisAclLines`, which `npm start` uses), a real redis-server reads it, and each
 * service's own code runs against it as that service's user: the gateway's rate limiter (with the micro-cache's
 * read of the blog's generation), the blog's and the user-service's generation caches. Nothing they do is
 * refused (the ACL log stays empty); another service's keys and every dangerous command are.
 */
import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { Redis as IORedis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RATE_LIMIT_SCRIPTS, RateLimiter } from "../../services/api-gateway/src/rate-limit.js";
import { CACHE_GENERATION_KEY as BLOG_GENERATION_KEY, CACHE_PREFIX as BLOG_PREFIX } from "../../services/blog-service/src/app.js";
import { BLOG_CACHE_GENERATION_KEY } from "../../services/kit/src/contract.js";
import { freePort, waitForPort } from "../../services/kit/src/local/ports.js";
import { createRedis, GenerationCache, pingRedis, type Redis } from "../../services/kit/src/redis.js";
import { REDIS_ACL, REDIS_CLIENTS, REDIS_DEFAULT_USER_LINE, REDIS_PASSWORD_ENV, redisAclLines, redisPasswordHash, redisUrlAs, type RedisClientName } from "../../services/kit/src/redis-acl.js";
import { PROFILE_GENERATION_KEY, PROFILE_PREFIX } from "../../services/user-service/src/app.js";
import { redisConfigCommand, redisStartCommand } from "./redis.js";
import { REDIS_DEFAULT_USER, REDIS_USERS } from "./topology.js";

const run = promisify(execFile);
const PASSWORDS = Object.fromEntries(REDIS_CLIENTS.map((c) => [c, randomBytes(24).toString("base64url")])) as Record<RedisClientName, string>;
/** The test's own administrator, added after the init container's lines (the cluster has none). */
const ADMIN = { user: "test-admin", password: randomBytes(12).toString("hex") };

describe("Redis users: the cluster's ACL, and the kit's", () => {
  it("the topology's users, Secret keys and rules are the kit's", () => {
    expect(Object.keys(REDIS_USERS).sort()).toEqual([...REDIS_CLIENTS].sort());
    for (const c of REDIS_CLIENTS) {
      const cluster = REDIS_USERS[c as keyof typeof REDIS_USERS];
      expect(cluster.user).toBe(REDIS_ACL[c].user);
      expect(cluster.passwordKey).toBe(REDIS_PASSWORD_ENV[c]);
      expect(cluster.rules).toBe(REDIS_ACL[c].rules);
    }
    expect(REDIS_DEFAULT_USER).toBe(REDIS_DEFAULT_USER_LINE);
  });

  it("no user may run a dangerous command category, nor any channel", () => {
    for (const c of REDIS_CLIENTS) {
      const rules = REDIS_ACL[c].rules.split(" ");
      expect(rules.slice(0, 2)).toEqual(["resetchannels", "-@all"]);
      // Only single commands added back, never a category, a subcommand wildcard or all keys.
      expect(rules.filter((r) => r.startsWith("+")).every((r) => /^\+[a-z]+$/.test(r))).toBe(true);
      expect(rules.some((r) => ["~*", "allkeys", "allcommands", "allchannels", "&*", "nopass", "+@all"].includes(r))).toBe(false);
      for (const bad of ["flushall", "flushdb", "config", "keys", "scan", "debug", "module", "acl", "shutdown", "script", "client", "eval_ro", "select", "monitor", "save", "del", "unlink", "rename"])
        expect(rules, `${c}: +${bad}`).not.toContain(`+${bad}`);
    }
  });
});

describe("Redis users against a real redis-server configured by the init container's script", () => {
  let dir: string;
  let port: number;
  let server: ReturnType<typeof spawn>;
  let written: string;
  const clients: IORedis[] = [];
  let admin: IORedis;
  const urlAs = (c: RedisClientName) => redisUrlAs(`redis://127.0.0.1:${port}`, c, PASSWORDS[c]);
  /** A service's client as its server makes it (kit `createRedis`, with its scripts), ready. */
  const serviceClient = async (c: RedisClientName, scripts?: Parameters<typeof createRedis>[0]["scripts"]): Promise<Redis> => {
    const client = createRedis({ url: urlAs(c), ...(scripts && { scripts }) });
    clients.push(client);
    await new Promise<void>((resolve, reject) => {
      client.once("ready", () => resolve());
      client.once("error", reject);
    });
    return client;
  };
  /** A plain connection as `c` that reports errors as values. */
  const raw = async (c: RedisClientName) => {
    const client = new IORedis(urlAs(c), { maxRetriesPerRequest: 0, disableClientInfo: true, lazyConnect: true });
    clients.push(client);
    await client.connect();
    return client;
  };
  const refusal = (p: Promise<unknown>) => p.then(() => "allowed", (err: Error) => err.message);

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), "titanium-redis-acl-"));
    port = await freePort();
    const conf = path.join(dir, "redis.conf");
    const [sh, flag, script] = redisConfigCommand(16, port, dir, conf) as [string, string, string];
    await run(sh, [flag, script], { env: { PATH: process.env.PATH, ...Object.fromEntries(REDIS_CLIENTS.map((c) => [REDIS_PASSWORD_ENV[c], PASSWORDS[c]])) } });
    written = readFileSync(conf, "utf8");
    appendFileSync(conf, `user ${ADMIN.user} on >${ADMIN.password} ~* &* +@all\n`);
    const [bin, ...args] = redisStartCommand(conf) as [string, ...string[]];
    server = spawn(bin, args, { stdio: "ignore" });
    await waitForPort(port);
    admin = new IORedis({ port, username: ADMIN.user, password: ADMIN.password, maxRetriesPerRequest: 1 });
    clients.push(admin);
    await admin.acl("LOG", "RESET");
  });
  afterAll(async () => {
    for (const c of clients) c.disconnect();
    server?.kill("SIGTERM");
    rmSync(dir, { recursive: true, force: true });
  });

  it("the init container writes exactly the kit's user lines (what npm start's Redis gets), hashes only", async () => {
    const users = written.split("\n").filter((l) => l.startsWith("user "));
    expect(users).toEqual(redisAclLines(PASSWORDS));
    for (const password of Object.values(PASSWORDS)) expect(written).not.toContain(password);
    // What Redis holds: the hashes, and the default user off.
    const list = (await admin.acl("LIST")) as string[];
    for (const c of REDIS_CLIENTS) expect(list.find((l) => l.startsWith(`user ${REDIS_ACL[c].user} `))).toContain(`#${redisPasswordHash(PASSWORDS[c])}`);
    expect(list.find((l) => l.startsWith("user default "))).toMatch(/^user default off /);
    for (const password of Object.values(PASSWORDS)) expect(list.join("\n")).not.toContain(password);
  });

  it("api-gateway: the rate limiter through Redis, reading the blog's generation with its admission", async () => {
    const gateway = await serviceClient("api-gateway", RATE_LIMIT_SCRIPTS);
    const limiter = new RateLimiter(gateway);
    const rule = { name: "acl_test", limit: 2, periodSeconds: 60 };
    // No generation yet: read as null, the admission through Redis.
    expect(await limiter.take([rule], "ip:198.51.100.7", [], BLOG_CACHE_GENERATION_KEY)).toEqual({ allowed: true, retryAfterMs: 0, store: "redis", read: null });
    // The blog writes (its own user), the gateway reads the new generation in the same command.
    const blog = await serviceClient("blog-service");
    await new GenerationCache(blog, undefined, { generationKey: BLOG_GENERATION_KEY, prefix: BLOG_PREFIX }).invalidate();
    const generation = await admin.get(BLOG_CACHE_GENERATION_KEY);
    expect(generation).toMatch(/^\d+$/);
    const second = await limiter.take([rule], "ip:198.51.100.7", [{ rule: { name: "acl_test_account", limit: 5, periodSeconds: 60 }, subject: "acct:x" }], BLOG_CACHE_GENERATION_KEY);
    expect(second).toEqual({ allowed: true, retryAfterMs: 0, store: "redis", read: generation });
    // The limit holds, in Redis (not the in-process fallback).
    const third = await limiter.take([rule], "ip:198.51.100.7");
    expect(third).toMatchObject({ allowed: false, store: "redis" });
    expect(await admin.exists("rl:acl_test:ip:198.51.100.7", "rl:acl_test_account:acct:x")).toBe(2);
    await pingRedis(gateway);
  });

  it("blog-service and user-service: their generation caches read, write and invalidate", async () => {
    for (const [c, generationKey, prefix] of [
      ["blog-service", BLOG_GENERATION_KEY, BLOG_PREFIX],
      ["user-service", PROFILE_GENERATION_KEY, PROFILE_PREFIX],
    ] as const) {
      const client = await serviceClient(c);
      const cache = new GenerationCache(client, undefined, { generationKey, prefix });
      // A fresh process owes an invalidation: the first use pays it (EXISTS, INCR or TIME + SET, in Lua).
      const miss = await cache.read("k");
      expect(cache.owed, c).toBe(0);
      expect(miss.raw).toBeUndefined();
      await cache.write("k", miss.generation, `"${c}"`, 60);
      expect(await cache.read("k"), c).toEqual({ generation: miss.generation, raw: `"${c}"` });
      await cache.invalidate();
      expect(cache.owed, c).toBe(0);
      const after = await cache.read("k");
      expect(after.generation, c).not.toBe(miss.generation);
      expect(after.raw).toBeUndefined();
      await pingRedis(client);
    }
  });

  it("nothing the services' code sent was refused (the ACL log is empty), connection handshakes included", async () => {
    expect(await admin.acl("LOG")).toEqual([]);
  });

  it("each service is refused the other services' keys, even inside a script", async () => {
    const gateway = await raw("api-gateway");
    const blog = await raw("blog-service");
    const user = await raw("user-service");
    // A command's own refusal, or a script's (Redis reports a refused redis.call as the script's error).
    const noperm = /^NOPERM|^ERR The user executing the script can't (access at least one of the keys|run this command)/;
    // The gateway reads the blog's generation and nothing else of the blog's; it never writes it.
    expect(await refusal(gateway.get(BLOG_CACHE_GENERATION_KEY))).toBe("allowed");
    expect(await refusal(gateway.set(BLOG_CACHE_GENERATION_KEY, "1"))).toMatch(noperm);
    expect(await refusal(gateway.eval("return redis.call('SET', ARGV[1], '1')", 0, BLOG_CACHE_GENERATION_KEY))).toMatch(noperm);
    // A script's declared KEYS count as written: why the limiter passes the generation as an argument.
    expect(await refusal(gateway.eval("return redis.call('GET', KEYS[1])", 1, BLOG_CACHE_GENERATION_KEY))).toMatch(noperm);
    expect(await refusal(gateway.get(`${BLOG_PREFIX}1:post:1`))).toMatch(noperm);
    expect(await refusal(gateway.get(PROFILE_GENERATION_KEY))).toMatch(noperm);
    expect(await refusal(gateway.set("other", "1"))).toMatch(noperm);
    // The blog and the user-service: their own prefix only.
    for (const key of ["rl:global:ip:1", PROFILE_GENERATION_KEY, `${PROFILE_PREFIX}1:alice`, "other"]) expect(await refusal(blog.get(key)), key).toMatch(noperm);
    for (const key of ["rl:global:ip:1", BLOG_CACHE_GENERATION_KEY, `${BLOG_PREFIX}1:post:1`, "other"]) expect(await refusal(user.get(key)), key).toMatch(noperm);
    expect(await refusal(user.eval("return redis.call('INCR', KEYS[1])", 1, BLOG_CACHE_GENERATION_KEY))).toMatch(noperm);
    expect(await refusal(blog.eval("return redis.call('DEL', ARGV[1])", 0, PROFILE_GENERATION_KEY))).toMatch(noperm);
  });

  it.each(["api-gateway", "user-service", "blog-service", "probe"] as const)("%s may run no dangerous command", async (c) => {
    const client = await raw(c);
    const dangerous: [string, ...string[]][] = [
      ["flushall"],
      ["flushdb"],
      ["config", "get", "*"],
      ["config", "set", "maxmemory", "1"],
      ["keys", "*"],
      ["scan", "0"],
      ["debug", "sleep", "0"],
      ["module", "list"],
      ["acl", "list"],
      ["acl", "setuser", c, "+@all"],
      ["script", "flush"],
      ["client", "list"],
      ["client", "kill", "type", "normal"],
      ["monitor"],
      ["select", "1"],
      ["del", c === "api-gateway" ? "rl:x" : "blog:gen"],
      ["publish", "channel", "x"],
      ["save"],
      ["shutdown", "nosave"],
    ];
    // DEBUG and MODULE are also off for every connection (enable-debug-command, enable-module-command: no).
    for (const [cmd, ...args] of dangerous) expect(await refusal(client.call(cmd, ...args)), `${c}: ${cmd} ${args.join(" ")}`).toMatch(/NOPERM|(DEBUG|MODULE) command not allowed/);
    expect(await admin.ping()).toBe("PONG");
  });

  it("the default user is off: a connection that does not log in can run nothing", async () => {
    const anonymous = new IORedis({ port, maxRetriesPerRequest: 0, lazyConnect: true, enableReadyCheck: false, disableClientInfo: true });
    clients.push(anonymous);
    await anonymous.connect();
    expect(await refusal(anonymous.ping())).toMatch(/NOAUTH/);
    expect(await refusal(anonymous.call("auth", "default", "anything"))).toMatch(/WRONGPASS|disabled/);
    // A service's password is its own user's only.
    expect(await refusal(anonymous.call("auth", REDIS_ACL["api-gateway"].user, PASSWORDS["blog-service"]))).toMatch(/WRONGPASS/);
  });
});
