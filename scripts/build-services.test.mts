import { existsSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { buildAll, SERVICES } from "./build-services.mjs";
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
});
