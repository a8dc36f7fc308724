import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { freePort } from "../services/kit/src/local/index.js";
import { Redis } from "ioredis";
import postgres from "postgres";
import { PortInUse, startPlatform, testPlatformEnv, type Platform } from "./platform.mjs";

// The local platform end to end: real PostgreSQL, real Redis, the four services built for production,
// everything through the gateway, then a restart on the same data directory.
const dataDir = mkdtempSync(join(tmpdir(), "titanium-platform-"));
chmodSync(dataDir, 0o755); // PostgreSQL runs as its own user when the tests run as root
const lines: string[] = [];
let platform: Platform | undefined;
const start = (more: Partial<Parameters<typeof startPlatform>[0]> = {}) =>
  startPlatform({
    dataDir,
    gatewayPort: 0,
    servicePorts: { "user-service": 0, "auth-service": 0, "blog-service": 0 },
    env: testPlatformEnv(),
    log: (source, line) => lines.push(`${source} | ${line}`),
    ...more,
  });

afterAll(async () => {
  await platform?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

const PW = "Str0ng!pass";
async function call(method: string, path: string, body?: unknown, token?: string) {
  const res = await fetch(`${platform!.url}${path}`, {
    method,
    headers: { "content-type": "application/json", ...(token && { authorization: `Bearer ${token}` }) },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? (JSON.parse(text) as Record<string, unknown>) : undefined };
}

describe("local platform (npm start's engine)", () => {
  it("serves the original API through the gateway, with tokens verified locally, and keeps data across restarts", async () => {
    platform = await start();
    expect(platform.redis).toBeDefined();
    expect((await call("POST", "/api/register", { username: "carol", email: "c@example.com", password: PW })).status).toBe(201);
    const login = await call("POST", "/api/login", { username: "carol", password: PW });
    expect(login.status).toBe(200);
    const token = login.body!.token as string;
    const created = await call("POST", "/blog/api/posts", { title: "Persisted", content: "body", category_name: "Test" }, token);
    expect(created.status).toBe(201);
    const list = await call("GET", "/api/posts");
    expect(list.headers.get("x-total-count")).toBe("1");
    // The gateway's micro-cache answers the repeat, and a write through the platform retires it at once.
    expect((await call("GET", "/api/posts")).headers.get("x-cache")).toBe("HIT");
    expect((await call("POST", "/api/posts", { title: "Second", content: "body", category_name: "Test" }, token)).status).toBe(201);
    const fresh = await call("GET", "/api/posts");
    expect([fresh.headers.get("x-cache"), fresh.headers.get("x-total-count"), fresh.headers.get("surrogate-control")]).toEqual([null, "2", null]);
    expect(list.headers.get("vary")).toBe("Origin");
    const refreshed = await call("POST", "/api/auth/refresh", { refresh_token: login.body!.refresh_token });
    expect(refreshed.status).toBe(200);
    expect((await call("GET", "/api/users/me", undefined, refreshed.body!.token as string)).body).toMatchObject({ username: "carol" });
    expect((await call("POST", "/internal/verify-credentials", { username: "carol", password: PW })).status).toBe(404);
    // The auth-service down: tokens already issued keep working (every service verifies them itself with
    // the keys it has), only what needs the auth-service (a login) is refused, and it comes back.
    await platform.services["auth-service"].stop();
    const live = refreshed.body!.token as string;
    expect((await call("POST", "/blog/api/posts", { title: "While auth is down", content: "body", category_name: "Test" }, live)).status).toBe(201);
    expect((await call("GET", "/api/users/me", undefined, live)).status).toBe(200);
    // Refused at once (502, the connection refused), not after the upstream timeout (504).
    expect((await call("POST", "/api/login", { username: "carol", password: PW })).status).toBe(502);
    await platform.services["auth-service"].start();
    expect((await call("POST", "/api/login", { username: "carol", password: PW })).status).toBe(200);
    // The services batch their log writes and flush every 250 ms: wait for the line rather than race it.
    await expect.poll(() => lines.some((l) => l.startsWith("api-gateway | ") && l.includes('"route":"/api/login"')), { timeout: 10_000 }).toBe(true);
    // No password, access token or refresh token in any service's log.
    const logged = lines.join("\n");
    for (const secret of [PW, token, live, login.body!.refresh_token as string, refreshed.body!.refresh_token as string]) expect(logged).not.toContain(secret);
    // Each service is connected as its own database role (kit roles.ts), none as the superuser; the roles'
    // passwords are kept beside the cluster's, readable by their owner only, and never logged.
    const rolesFile = join(dataDir, "postgres", "role-passwords.json");
    expect(statSync(rolesFile).mode & 0o777).toBe(0o600);
    const rolePasswords = JSON.parse(readFileSync(rolesFile, "utf8")) as Record<string, string>;
    expect(Object.keys(rolePasswords).sort()).toEqual(["auth_service", "blog_service", "titanium_backup", "user_service"]);
    for (const secret of Object.values(rolePasswords)) expect(logged).not.toContain(secret);
    const owner = postgres(platform.postgres.url, { max: 1 });
    try {
      const clients = await owner<{ usename: string }[]>`select distinct usename from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()`;
      expect(clients.map((c) => c.usename).sort()).toEqual(["auth_service", "blog_service", "user_service"]);
    } finally {
      await owner.end({ timeout: 1 });
    }
    // Each service that uses Redis is connected as its own ACL user (kit redis-acl.ts), the default user off;
    // the users' passwords are kept readable by their owner only, never logged, and Redis holds their hashes.
    const redisFile = join(dataDir, "redis", "users.json");
    expect(statSync(redisFile).mode & 0o777).toBe(0o600);
    expect(statSync(join(dataDir, "redis", "redis.conf")).mode & 0o777).toBe(0o600);
    const redisPasswords = JSON.parse(readFileSync(redisFile, "utf8")) as Record<string, string>;
    expect(Object.keys(redisPasswords).sort()).toEqual(["admin", "api-gateway", "blog-service", "probe", "user-service"]);
    for (const secret of Object.values(redisPasswords)) expect(logged).not.toContain(secret);
    const admin = new Redis(platform.redis!.url, { maxRetriesPerRequest: 1 });
    try {
      const users = String(await admin.client("LIST")).split("\n").map((l) => /\buser=(\S+)/.exec(l)?.[1]).filter((u) => u && u !== "admin");
      expect([...new Set(users)].sort()).toEqual(["api-gateway", "blog-service", "user-service"]);
      const acl = ((await admin.acl("LIST")) as string[]).join("\n");
      expect(acl).toMatch(/^user default off /m);
      for (const secret of Object.values(redisPasswords)) expect(acl).not.toContain(secret);
    } finally {
      admin.disconnect();
    }

    // Second start on the same data, on a machine without Redis: it still starts, says loudly what is
    // degraded, and serves everything from PostgreSQL with in-process rate limits. (The services are built.)
    await platform.stop();
    lines.length = 0;
    const exits: string[] = [];
    platform = await start({ redisCommand: join(dataDir, "no-such-redis-server"), build: false, onExit: (source, how, last) => exits.push(`${source} ${how} ${last.length}`) });
    expect(platform.redis).toBeUndefined();
    expect(lines.join("\n")).toMatch(/redis-server is not installed: starting WITHOUT Redis/);
    const again = await call("GET", "/api/posts");
    expect((again.body as unknown as { title: string }[]).map((p) => p.title)).toEqual(["While auth is down", "Second", "Persisted"]);
    expect((await call("POST", "/api/login", { username: "carol", password: PW })).status).toBe(200);
    expect((await call("GET", "/readyz")).status).toBe(200);

    // A service crashing once the platform is up is reported with its last lines (npm start then stops all).
    expect(exits).toEqual([]);
    platform.services["blog-service"].process!.kill("SIGKILL");
    await expect.poll(() => exits, { timeout: 5000 }).toEqual([expect.stringMatching(/^blog-service signal SIGKILL [1-9]/)]);
    await platform.stop();
    expect(exits).toHaveLength(1); // stops through the platform are no surprise
    platform = undefined;
  }, 120_000);

  it("refuses a service port something else holds (even one answering /readyz) before starting anything", async () => {
    const port = await freePort();
    // Another platform's service on that port would pass the readiness probe in place of the one that failed to bind.
    const other = createServer((_req, res) => res.end("ok"));
    await new Promise<void>((r) => other.listen(port, "127.0.0.1", r));
    const seen: string[] = [];
    try {
      const err = await startPlatform({ dataDir: `${dataDir}-ports`, gatewayPort: 0, servicePorts: { "user-service": 0, "auth-service": 0, "blog-service": port }, build: false, log: (s) => seen.push(s) }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PortInUse);
      expect((err as Error).message).toBe(`port ${port} (blog-service) is already in use on 127.0.0.1`);
      expect(seen).not.toContain("postgres");
    } finally {
      await new Promise((r) => other.close(r));
      rmSync(`${dataDir}-ports`, { recursive: true, force: true });
    }
  });

  it("says what to do with a data folder from another PostgreSQL major version", async () => {
    const versionFile = join(dataDir, "postgres/cluster/PG_VERSION");
    const version = readFileSync(versionFile, "utf8");
    writeFileSync(versionFile, "9.6\n");
    try {
      const err = await startPlatform({ dataDir, redis: false, gatewayPort: 0, servicePorts: { "user-service": 0, "auth-service": 0, "blog-service": 0 }, build: false, log: () => {} }).catch((e: unknown) => e);
      expect((err as Error).message).toMatch(/PostgreSQL did not start[\s\S]*incompatible with server[\s\S]*another PostgreSQL major version/);
    } finally {
      writeFileSync(versionFile, version);
    }
  }, 60_000);
});
