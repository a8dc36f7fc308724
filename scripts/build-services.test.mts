import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type postgresType from "postgres";
import { describe, expect, it } from "vitest";
import { startTestPostgres } from "../services/kit/src/testing/index.js";
import { buildAll, bundlePostgresDriver, SERVICES } from "./build-services.mjs";
import { ROOT } from "./platform.mjs";

// Other test files start services from these same dist/ folders while this one builds them.
const dist = (svc: string) => join(ROOT, "services", svc, "dist");

describe("building the services", () => {
  it("never leaves an entry point missing while builds run side by side, and rewrites nothing unchanged", async () => {
    await buildAll();
    const entries = SERVICES.flatMap((s) => [join(dist(s), "server.js"), ...(s === "api-gateway" ? [] : [join(dist(s), "migrate.js"), join(dist(s), "migrations/0001_initial_schema.sql")])]);
    const before = new Map(entries.map((f) => [f, statSync(f).mtimeMs]));
    const missing = new Set<string>();
    let polls = 0;
    let building = true;
    const poll = (async () => {
      while (building) {
        polls++;
        for (const f of entries) if (!existsSync(f) || statSync(f).size === 0) missing.add(f);
        await new Promise((r) => setImmediate(r));
      }
    })();
    await Promise.all([buildAll(), buildAll(), buildAll()]);
    building = false;
    await poll;
    expect(polls).toBeGreaterThan(3);
    expect([...missing]).toEqual([]);
    expect(entries.filter((f) => statSync(f).mtimeMs !== before.get(f))).toEqual([]);
  });

  it("removes what an earlier build left behind, but not another build's temporary file", async () => {
    const stale = join(dist("blog-service"), "stale-entry-from-an-old-build.js");
    const partial = join(dist("blog-service"), "server.js.0123456789ab.partial");
    writeFileSync(stale, "old");
    writeFileSync(partial, "being written");
    try {
      await buildAll(["blog-service"]);
      expect(existsSync(stale)).toBe(false);
      expect(existsSync(partial)).toBe(true);
    } finally {
      for (const f of [stale, partial]) rmSync(f, { force: true });
    }
  });

  it("bundles a PostgreSQL driver that does not fail the first query after a terminated connection with that connection's error", async () => {
    const dir = mkdtempSync(join(tmpdir(), "titanium-pg-driver-"));
    const pg = await startTestPostgres({ migrate: false });
    try {
      const file = await bundlePostgresDriver(join(dir, "postgres.mjs"));
      const postgres = ((await import(pathToFileURL(file).href)) as { default: typeof postgresType }).default;
      const sql = postgres(pg.url, { max: 1, onnotice: () => {} });
      try {
        const [first] = await sql<{ pid: number }[]>`select pg_backend_pid() as pid`;
        const pid = first!.pid;
        // A query in flight when its backend is terminated: PostgreSQL sends the error, then closes.
        const sleeping = sql`select pg_sleep(30)`.then(() => "finished", (err: Error) => err.message);
        for (let i = 0; i < 100; i++) {
          const [row] = await pg.sql<{ n: number }[]>`select count(*)::int as n from pg_stat_activity where pid = ${pid} and query like '%pg_sleep%'`;
          if (row!.n === 1) break;
          await new Promise((r) => setTimeout(r, 20));
        }
        await pg.sql`select pg_terminate_backend(${pid})`;
        expect(await sleeping).not.toBe("finished");
        // The next query goes over a new connection and is answered, not refused with the old error.
        const [answer] = await sql<{ ok: number }[]>`select 1 as ok`;
        expect(answer?.ok).toBe(1);
      } finally {
        await sql.end({ timeout: 1 });
      }
    } finally {
      await pg.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
