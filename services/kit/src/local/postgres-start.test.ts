import { spawn, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { freePort } from "./ports.js";
import { initialiseCluster, reportingSpawnErrors, startLocalPostgres } from "./postgres.js";

// What a first start stopped halfway leaves behind, and the superuser password on its way to initdb.
const root = mkdtempSync(join(tmpdir(), "titanium-pg-start-"));
chmodSync(root, 0o755); // PostgreSQL runs as its own user when the tests run as root
afterAll(() => rmSync(root, { recursive: true, force: true }));
const newDataDir = () => {
  const dir = mkdtempSync(join(root, "data-"));
  chmodSync(dir, 0o755);
  return dir;
};
/** A pid no process has now. */
const deadPid = () => spawnSync(process.execPath, ["-e", ""]).pid!;

describe("a local PostgreSQL's first start, cut short", () => {
  it("starts over a copy of the template a Ctrl-C cut short: the unfinished copies go, the cluster is made afresh", async () => {
    const dataDir = newDataDir();
    // Copied in place by an earlier version (PostgreSQL refuses it: no PG_VERSION), the template nested in it by the start after.
    mkdirSync(join(dataDir, "cluster/base/1"), { recursive: true });
    mkdirSync(join(dataDir, "cluster/cluster/global"), { recursive: true });
    writeFileSync(join(dataDir, "cluster/cluster/PG_VERSION"), "18\n");
    writeFileSync(join(dataDir, "superuser-password"), "of-the-cut-copy");
    // Copied beside its place by this one, the run gone.
    const leftover = `cluster.tmp-${deadPid()}`;
    mkdirSync(join(dataDir, leftover, "base"), { recursive: true });
    const lines: string[] = [];
    const pg = await startLocalPostgres({ dataDir, port: await freePort(), onLog: (l) => lines.push(l) });
    try {
      expect(lines).toContain(`removing ${join(dataDir, "cluster")}: the unfinished copy of a new cluster (no PG_VERSION, never started)`);
      expect(readdirSync(dataDir).sort()).toEqual(["cluster", "superuser-password"]);
      expect(existsSync(join(dataDir, "cluster/PG_VERSION"))).toBe(true);
      expect(readFileSync(join(dataDir, "superuser-password"), "utf8")).not.toBe("of-the-cut-copy");
    } finally {
      await pg.stop();
    }
  }, 60_000);

  it("refuses a cluster folder without PG_VERSION that PostgreSQL has run, or that holds anything else, and leaves it as it is", async () => {
    for (const file of ["postmaster.opts", "notes.txt"]) {
      const dataDir = newDataDir();
      mkdirSync(join(dataDir, "cluster/base"), { recursive: true });
      writeFileSync(join(dataDir, "cluster", file), "x");
      await expect(startLocalPostgres({ dataDir, port: await freePort() })).rejects.toThrow(
        `${join(dataDir, "cluster")} is not a PostgreSQL cluster (no PG_VERSION): move it away, or remove ${dataDir} to start afresh (with any data in it)`,
      );
      expect(readdirSync(join(dataDir, "cluster")).sort()).toEqual(["base", file]);
    }
  });
});

describe("the superuser password at initdb", () => {
  it("is never in a file of the shared temporary folder, and its own file goes once initdb is done", async () => {
    const dir = mkdtempSync(join(root, "init-"));
    // The library writes initdb's password file in os.tmpdir(): here, watched while initdb runs.
    const shared = mkdtempSync(join(root, "tmp-"));
    chmodSync(shared, 0o755);
    const seen = new Map<string, string>();
    const watch = setInterval(() => {
      for (const name of readdirSync(shared))
        try {
          seen.set(name, `${seen.get(name) ?? ""}${readFileSync(join(shared, name), "utf8")}`);
        } catch {
          // gone meanwhile
        }
    }, 2);
    const before = process.env.TMPDIR;
    process.env.TMPDIR = shared;
    const password = "a-password-that-must-not-leak";
    try {
      await initialiseCluster(dir, password, () => {});
    } finally {
      clearInterval(watch);
      if (before === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = before;
    }
    expect([...seen.keys()].some((n) => n.startsWith("pg-password-")), "the library's file seen").toBe(true);
    for (const [name, content] of seen) expect(content, name).not.toContain(password);
    expect(readdirSync(dir)).toEqual(["cluster"]);
    expect(existsSync(join(dir, "cluster/PG_VERSION"))).toBe(true);
  }, 60_000);
});

describe("PostgreSQL that cannot be run", () => {
  it("is a failed start saying why, not an uncaught exception (the library listens for no spawn error)", async () => {
    const program = join(mkdtempSync(join(root, "bin-")), "initdb");
    writeFileSync(program, "#!/bin/sh\n", { mode: 0o644 }); // not executable, for root too
    // As the library starts it: no 'error' listener, rejecting with nothing once it is closed.
    const run = () =>
      new Promise<void>((_, reject) => {
        spawn(program, []).on("close", () => reject());
      });
    await expect(reportingSpawnErrors(run)).rejects.toThrow(`PostgreSQL could not start: spawn ${program} EACCES`);
  });

  it.runIf(process.getuid?.() === 0)("run by root, refuses a data folder the postgres user cannot reach, naming the folder that blocks and the ways out", async () => {
    const home = mkdtempSync(join(root, "home-")); // 0700, as /root
    const dataDir = join(home, "repo/.local/postgres");
    const lines: string[] = [];
    await expect(startLocalPostgres({ dataDir, port: await freePort(), onLog: (l) => lines.push(l) })).rejects.toThrow(
      `PostgreSQL cannot run here: as root it runs as the "postgres" user, which cannot pass through ${home} (mode 0700) to reach the data folder (${dataDir}). ` +
        `Let it through (chmod o+x ${home}), or put the data elsewhere (npm start: TITANIUM_DATA_DIR), or run this as a normal user, not root.`,
    );
    expect(lines).toEqual([]);
    expect(readdirSync(dataDir)).toEqual([]);
  });
});
