import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, startLocalRedis, type LocalRedis } from "../local/index.js";
import { startTestRedis } from "./index.js";

// REDIS_URL pointing at a shared server: each test file borrows a logical database of its own, emptied.
describe("startTestRedis with REDIS_URL", () => {
  let server: LocalRedis;
  const dir = mkdtempSync(join(tmpdir(), "titanium-shared-redis-"));
  const saved = process.env.REDIS_URL;
  beforeAll(async () => {
    server = await startLocalRedis({ port: await freePort(), dir });
    process.env.REDIS_URL = server.url;
  });
  afterAll(async () => {
    if (saved === undefined) delete process.env.REDIS_URL;
    else process.env.REDIS_URL = saved;
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("lends each caller its own emptied database of that server", async () => {
    const [a, b] = [await startTestRedis(), await startTestRedis()];
    expect(new URL(a.url).host).toBe(new URL(server.url).host);
    expect(a.url).not.toBe(b.url);
    const [ra, rb] = [new Redis(a.url), new Redis(b.url)];
    try {
      await ra.set("rl:ip:198.51.100.1", "7");
      expect(await rb.get("rl:ip:198.51.100.1")).toBeNull();
      // A later borrower of the same database (a second run) finds it empty.
      const again = await startTestRedis();
      const db = (u: string) => new URL(u).pathname;
      let lent = again;
      while (db(lent.url) !== db(a.url)) lent = await startTestRedis();
      const rc = new Redis(lent.url);
      expect(await rc.dbsize()).toBe(0);
      await rc.quit();
    } finally {
      await Promise.all([ra.quit(), rb.quit()]);
    }
  });
});
