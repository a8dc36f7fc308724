import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer, connect, type Socket } from "node:net";
import { createPostgres, pingPostgres, waitForPostgres } from "./db.js";
import { defaultMigrationsDir, migrate, readMigrations } from "./migrate.js";
import { GenerationCache, createRedis, pingRedis } from "./redis.js";
import { startTestPostgres, startTestRedis, type TestPostgres, type TestRedis } from "./testing/index.js";
import { ensureDatabase, freePort, startLocalPostgres } from "./local/index.js";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

let pg: TestPostgres;
let redis: TestRedis;
beforeAll(async () => {
  [pg, redis] = await Promise.all([startTestPostgres({ migrate: false }), startTestRedis()]);
});
afterAll(async () => {
  await Promise.all([pg?.stop(), redis?.stop()]);
});

describe("migrations against a real PostgreSQL", () => {
  it("apply once when several replicas run them at the same time, and seed the categories", async () => {
    const migrations = readMigrations(defaultMigrationsDir());
    const pools = [0, 1, 2, 3].map(() => createPostgres({ url: pg.url, max: 1 }));
    try {
      const results = await Promise.all(pools.map((sql) => migrate(sql, migrations)));
      const applied = results.flatMap((r) => r.applied).sort();
      expect(applied).toEqual(migrations.map((m) => m.version));
      expect(results.every((r) => r.current === migrations.length)).toBe(true);
      const rows = await pg.sql`select version from schema_migrations order by version`;
      expect(rows.map((r) => r.version)).toEqual(migrations.map((m) => m.version));
      const cats = await pg.sql`select id, name, slug, seeded from categories order by id`;
      expect(cats.map((c) => c.slug)).toEqual(["tech-stack", "troubleshooting", "test"]);
      expect(cats.every((c) => c.seeded)).toBe(true);
      // A second run is a no-op.
      expect((await migrate(pg.sql, migrations)).applied).toEqual([]);
    } finally {
      await Promise.all(pools.map((p) => p.end()));
    }
  });

  it("widens post titles to text on a database that already has posts, and search still finds them (0004)", async () => {
    const upgrade = new URL(pg.url);
    upgrade.pathname = `/${upgrade.pathname.slice(1)}_upgrade`;
    await ensureDatabase(pg.url, upgrade.pathname.slice(1));
    const sql = createPostgres({ url: upgrade.href, max: 1 });
    try {
      const migrations = readMigrations(defaultMigrationsDir());
      const widen = migrations.find((m) => m.name === "unbounded_post_titles")!;
      await migrate(sql, migrations.filter((m) => m.version < widen.version));
      await sql`insert into posts (title, content, author, category_id) values ('kept title', 'kept body', 'alice', 1)`;
      expect((await migrate(sql, migrations)).applied).toEqual(migrations.filter((m) => m.version >= widen.version).map((m) => m.version));
      const [col] = await sql`select data_type from information_schema.columns where table_name = 'posts' and column_name = 'title'`;
      expect(col?.data_type).toBe("text");
      // A 120-character title of `&` and `>` as the cleaner stores it: 540 characters.
      const escaped = "&amp;&gt;".repeat(60);
      await sql`insert into posts (title, content, author, category_id) values (${escaped}, 'new body', 'alice', 1)`;
      const found = (q: string) => sql`select title from posts where search @@ websearch_to_tsquery('simple', ${q}) order by id`;
      expect((await found("kept")).map((r) => r.title)).toEqual(["kept title"]);
      expect((await found("new")).map((r) => r.title)).toEqual([escaped]);
      expect(await sql`select 1 from pg_indexes where indexname = 'idx_posts_search'`).toHaveLength(1);
    } finally {
      await sql.end({ timeout: 1 });
    }
  });

  it("refuses an applied migration whose file changed", async () => {
    const migrations = readMigrations(defaultMigrationsDir()).map((m) =>
      m.version === 1 ? { ...m, checksum: "different" } : m,
    );
    await expect(migrate(pg.sql, migrations)).rejects.toThrow(/changed after it was applied/);
  });

  it("rolls back a failing migration and records nothing", async () => {
    const migrations = readMigrations(defaultMigrationsDir());
    const broken = [...migrations, { version: migrations.length + 1, name: "broken", sql: "create table x (id int); select 1/0;", checksum: "c" }];
    await expect(migrate(pg.sql, broken)).rejects.toThrow(/broken failed/);
    expect(await pg.sql`select 1 from information_schema.tables where table_name = 'x'`).toHaveLength(0);
    expect(await pg.sql`select 1 from schema_migrations where name = 'broken'`).toHaveLength(0);
  });

  it("the migration command waits for a PostgreSQL that is still starting, but not for a wrong database", async () => {
    // A PostgreSQL that is not there yet: its port starts accepting (forwarding to the real one) 500 ms later.
    const real = new URL(pg.url);
    const sockets = new Set<Socket>();
    const late = createServer((client) => {
      const upstream = connect(Number(real.port), real.hostname);
      for (const s of [client, upstream]) sockets.add(s.on("error", () => [client, upstream].forEach((x) => x.destroy())));
      client.pipe(upstream).pipe(client);
    });
    const via = new URL(pg.url);
    via.port = String(await freePort());
    const opening = new Promise<void>((r) => setTimeout(() => late.listen(Number(via.port), "127.0.0.1", r), 500));
    const sql = createPostgres({ url: via.href, max: 1 });
    try {
      const waited = Date.now();
      const attempts = await waitForPostgres(sql, { waitMs: 10_000 });
      await opening;
      expect(attempts).toBeGreaterThan(1);
      expect(Date.now() - waited).toBeGreaterThanOrEqual(450);
      expect(await sql`select 1 as one`).toEqual([{ one: 1 }]);
      // Not transient: an unknown database fails at once instead of waiting out the budget.
      const wrong = new URL(pg.url);
      wrong.pathname = "/no_such_database";
      const lost = createPostgres({ url: wrong.href, max: 1 });
      const started = Date.now();
      await expect(waitForPostgres(lost, { waitMs: 10_000 })).rejects.toThrow(/no_such_database/);
      expect(Date.now() - started).toBeLessThan(2000);
      await lost.end({ timeout: 0 });
      // Nothing listening at all: it gives up when its budget is spent.
      const nowhere = createPostgres({ url: `postgres://u:p@127.0.0.1:${await freePort()}/x`, max: 1, connectTimeoutSeconds: 1 });
      await expect(waitForPostgres(nowhere, { waitMs: 300 })).rejects.toThrow();
      await nowhere.end({ timeout: 0 });
    } finally {
      await sql.end({ timeout: 1 });
      for (const s of sockets) s.destroy();
      late.close();
    }
  });

  it("starts each new local cluster as its own copy of one template, and a persistent one restarts with its data", async () => {
    const dirs = [mkdtempSync(join(tmpdir(), "titanium-pg-copy-")), mkdtempSync(join(tmpdir(), "titanium-pg-copy-"))];
    const [a, b] = await Promise.all(dirs.map(async (dataDir) => startLocalPostgres({ dataDir, port: await freePort(), persistent: true })));
    const [sa, sb] = [createPostgres({ url: a!.url, max: 1 }), createPostgres({ url: b!.url, max: 1 })];
    try {
      // Durable: `npm start`'s cluster must not lose acknowledged writes to an OS crash.
      expect(await sa`show fsync`).toEqual([{ fsync: "on" }]);
      await sa`create table only_in_a (x int)`;
      await sa`insert into only_in_a values (1)`;
      expect(await sb`select to_regclass('only_in_a') as t`).toEqual([{ t: null }]);
      await sa.end({ timeout: 1 });
      await a!.stop();
      // Started again from its folder: the same cluster, its password from the file beside it.
      const again = await startLocalPostgres({ dataDir: dirs[0]!, port: await freePort(), persistent: true });
      const sql = createPostgres({ url: again.url, max: 1 });
      expect(await sql`select x from only_in_a`).toEqual([{ x: 1 }]);
      await sql.end({ timeout: 1 });
      await again.stop();
    } finally {
      await sb.end({ timeout: 1 });
      await b!.stop();
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    }
  });

  it("runs a throw-away (non-persistent) cluster with fsync off, for speed", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "titanium-pg-scratch-"));
    const scratch = await startLocalPostgres({ dataDir, port: await freePort() });
    const sql = createPostgres({ url: scratch.url, max: 1 });
    try {
      expect(await sql`show fsync`).toEqual([{ fsync: "off" }]);
    } finally {
      await sql.end({ timeout: 1 });
      await scratch.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it("stops a local cluster whose server has already exited (a terminal's Ctrl-C reaches it first)", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "titanium-pg-gone-"));
    const local = await startLocalPostgres({ dataDir, port: await freePort(), persistent: true });
    try {
      // The postmaster's pid is the first line of postmaster.pid; SIGINT is PostgreSQL's fast shutdown.
      const pid = Number(readFileSync(join(dataDir, "cluster", "postmaster.pid"), "utf8").split("\n")[0]);
      process.kill(pid, "SIGINT");
      while (existsSync(join(dataDir, "cluster", "postmaster.pid"))) await new Promise((r) => setTimeout(r, 50));
      await new Promise((r) => setTimeout(r, 100));
      // It used to wait for an exit event that had already happened, for ever.
      const stopped = await Promise.race([local.stop().then(() => "stopped"), new Promise((r) => setTimeout(() => r("hung"), 3000))]);
      expect(stopped).toBe("stopped");
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it("pings, and a pool on a dead port fails within its connect timeout", async () => {
    await pingPostgres(pg.sql);
    const dead = createPostgres({ url: `postgres://u:p@127.0.0.1:${await freePort()}/x`, connectTimeoutSeconds: 1 });
    const started = Date.now();
    await expect(pingPostgres(dead)).rejects.toThrow();
    expect(Date.now() - started).toBeLessThan(3000);
    await dead.end({ timeout: 0 });
  });
});

/** A TCP server that accepts connections and never answers (a hung database or cache). */
async function silentServer(): Promise<{ port: number; close: () => void }> {
  const sockets: Socket[] = [];
  const server = createServer((s) => void sockets.push(s));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { port: (server.address() as { port: number }).port, close: () => (sockets.forEach((s) => s.destroy()), server.close()) };
}

describe("timeouts against a dependency that hangs", () => {
  it("a statement runs at most the statement timeout (PostgreSQL cancels it)", async () => {
    const sql = createPostgres({ url: pg.url, statementTimeoutMs: 200 });
    try {
      const started = Date.now();
      await expect(sql`select pg_sleep(3)`).rejects.toThrow(/statement timeout/);
      expect(Date.now() - started).toBeLessThan(2000);
      expect((await sql`select 1 as one`)[0]).toEqual({ one: 1 }); // the connection stays usable
    } finally {
      await sql.end({ timeout: 1 });
    }
  });

  it("a PostgreSQL that accepts but never answers fails the query within the connect timeout", async () => {
    const silent = await silentServer();
    // A fraction of a second is a timeout like any other (the pool takes seconds as a number): nothing to wait out in full.
    const sql = createPostgres({ url: `postgres://u:p@127.0.0.1:${silent.port}/x`, connectTimeoutSeconds: 0.3 });
    try {
      const started = Date.now();
      await expect(sql`select 1`).rejects.toThrow(/CONNECT_TIMEOUT/);
      expect(Date.now() - started).toBeLessThan(3000);
    } finally {
      await sql.end({ timeout: 0 });
      silent.close();
    }
  });

  it("a Redis that stops answering fails one command within the command timeout, then the rest at once until it answers again", async () => {
    const client = createRedis({ url: redis.url, commandTimeoutMs: 300 });
    const admin = createRedis({ url: redis.url });
    try {
      const ready = (c: typeof client) => (c.status === "ready" ? Promise.resolve() : new Promise<void>((resolve) => c.once("ready", () => resolve())));
      await Promise.all([ready(client), ready(admin)]);
      // The server holds every client's commands for 1.5 s: connected, ready, and silent (past the 300 ms
      // timeout and the first reconnects' ready checks; 1.1 s would save a reconnect, ~1 s, but leave the
      // commands that must fail at once well under a second on a busy machine).
      await admin.call("CLIENT", "PAUSE", "1500", "ALL");
      const started = Date.now();
      // The next "ready" is the reconnect's (the status can still read "ready" for a moment after the drop).
      const reconnected = new Promise<void>((resolve) => client.once("ready", () => resolve()));
      await expect(client.get("x")).rejects.toThrow(/timed out/);
      expect(Date.now() - started).toBeLessThan(1000);
      // One timeout is enough: the client drops the hung connection, and until Redis answers a ready
      // check again every command fails at once instead of waiting out its own timeout.
      for (let i = 0; i < 3; i++) {
        const at = Date.now();
        await expect(client.get("x")).rejects.toThrow();
        // Well under the 300 ms command timeout: not waited out (a busy machine gets the margin).
        expect(Date.now() - at).toBeLessThan(200);
      }
      await Promise.race([reconnected, new Promise((_, reject) => setTimeout(() => reject(new Error("no reconnect within 8 s")), 8_000))]);
      expect(await client.ping()).toBe("PONG");
    } finally {
      client.disconnect();
      admin.disconnect();
    }
  });
});

describe("Redis cache", () => {
  it("defines its Lua commands with the client, so a fresh process can use them in the same tick as other commands", async () => {
    const client = createRedis({ url: redis.url });
    // Defined on first use instead, a command missing from an auto-pipeline already being filled made ioredis
    // misalign the batch and throw out of its callback (redis/ioredis#1931): a restarted user-service died.
    const lua = client as unknown as Record<string, unknown>;
    expect(typeof lua.titaniumGenGet).toBe("function");
    await new Promise((r) => client.once("ready", r));
    const cache = new GenerationCache(client, undefined, { generationKey: "tick:gen", prefix: "tick:" });
    const [set, read, get] = await Promise.all([client.set("tick:a", "1"), cache.read("k"), client.get("tick:a")]);
    expect([set, typeof read.generation, get]).toEqual(["OK", "string", "1"]);
    client.disconnect();
  });

  it("stores under the generation read first, retires a whole namespace with one bump, and degrades to misses when Redis is gone", async () => {
    const client = createRedis({ url: redis.url });
    await new Promise((r) => client.once("ready", r));
    const cache = new GenerationCache(client, undefined, { generationKey: "st:gen", prefix: "st:" });
    await pingRedis(client);
    const { generation, raw } = await cache.read("k");
    expect(raw).toBeUndefined();
    await cache.write("k", generation, '{"a":1}', 30);
    expect(await cache.read("k")).toEqual({ generation, raw: '{"a":1}' });
    expect(await client.ttl(`st:${generation}:k`)).toBeGreaterThan(25);
    // A writer invalidates while a reader is loading: the reader's copy lands under the retired generation.
    await cache.invalidate();
    await cache.write("k", generation, '{"a":"stale"}', 30);
    const after = await cache.read("k");
    expect([after.raw, after.generation === generation]).toEqual([undefined, false]);
    client.disconnect();
    // Disconnected: reads miss and writes are no-ops instead of errors.
    await cache.write("k2", after.generation, "1", 10);
    expect((await cache.read("k2")).raw).toBeUndefined();
    await expect(pingRedis(client)).rejects.toThrow();
  });

  it("owes an invalidation it could not deliver, bypasses the cache meanwhile, and pays it before using the cache again", async () => {
    const client = createRedis({ url: redis.url });
    const cache = new GenerationCache(client, undefined, { generationKey: "ns:gen", prefix: "ns:" });
    await new Promise((r) => client.once("ready", r));
    // A fresh process owes first (a crashed predecessor may not have invalidated): the first use pays it.
    const { generation } = await cache.read("k");
    expect(cache.owed).toBe(0);
    await cache.write("k", generation, "old", 60);
    expect((await cache.read("k")).raw).toBe("old");

    client.disconnect();
    await cache.invalidate(); // the write's invalidation cannot be delivered
    expect(cache.owed).toBeGreaterThan(0);
    await expect.poll(() => client.status).toBe("end");
    await client.connect();
    // Redis is back with its old data: the stale entry is there, but the cache pays before it reads.
    expect(await client.get(`ns:${generation}:k`)).toBe("old");
    expect((await cache.read("k")).raw).toBeUndefined();
    expect(cache.owed).toBe(0);
    expect(Number(await client.get("ns:gen"))).toBeGreaterThan(Number(generation));
    client.disconnect();
  });

  it("never uses a generation number again after Redis loses the key, so no entry from before a write is served", async () => {
    const client = createRedis({ url: redis.url });
    await new Promise((r) => client.once("ready", r));
    const cache = new GenerationCache(client, undefined, { generationKey: "ev:gen", prefix: "ev:" });
    const first = await cache.read("k");
    await cache.write("k", first.generation, "before the write", 600);
    await cache.invalidate(); // a write
    const second = await cache.read("k");
    expect(second.raw).toBeUndefined();
    await cache.write("k", second.generation, "after the write", 600);
    const earlier = [first.generation, second.generation];
    // Redis loses the generation key (evicted, or restarted without persistence); the entries are still there.
    await client.del("ev:gen");
    const lost = await cache.read("k");
    expect(lost.raw).toBeUndefined();
    // Writes after that: each read goes to the source, never to an entry filed under an earlier run's number
    // (INCR from nothing used to count 1, 2, … again, and served "before the write" at 1).
    let last = BigInt(lost.generation);
    for (let i = 0; i < 3; i++) {
      await cache.invalidate();
      const after = await cache.read("k");
      expect(after.raw).toBeUndefined();
      expect(earlier).not.toContain(after.generation);
      expect(BigInt(after.generation)).toBeGreaterThan(last);
      last = BigInt(after.generation);
    }
    // A key lost before a write is set afresh by the write too, to Redis's clock in microseconds: above every
    // earlier number (one per bump, and each bump above took a round trip, far more than a microsecond).
    await client.del("ev:gen");
    await cache.invalidate();
    const fresh = await client.get("ev:gen");
    expect(fresh).toMatch(/^\d+$/);
    expect(BigInt(fresh!)).toBeGreaterThan(last);
    expect(Math.abs(Number(fresh) / 1000 - Date.now())).toBeLessThan(60_000);
    client.disconnect();
  });

  it("fails fast when Redis is unreachable", async () => {
    const client = createRedis({ url: `redis://127.0.0.1:${await freePort()}` });
    const started = Date.now();
    await expect(client.get("x")).rejects.toThrow();
    expect(Date.now() - started).toBeLessThan(1000);
    client.disconnect();
  });
});
