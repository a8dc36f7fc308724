import { createHash } from "node:crypto";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Logger } from "./logger.js";
import type { Sql } from "./db.js";

/** Arbitrary constant: the advisory lock every migrating replica takes, so only one applies at a time. */
export const MIGRATION_LOCK_KEY = 7_146_531_001;
const FILE = /^(\d{4})_([a-z0-9_]+)\.sql$/;

export interface Migration {
  version: number;
  name: string;
  sql: string;
  checksum: string;
}

/**
 * Where the SQL files are: `MIGRATIONS_DIR`, else `services/kit/migrations` from the sources, else
 * `migrations/` beside a bundled entry (the build copies them to `dist/migrations`).
 */
export function defaultMigrationsDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.MIGRATIONS_DIR) return env.MIGRATIONS_DIR;
  const candidates = ["../migrations", "./migrations"].map((p) => fileURLToPath(new URL(p, import.meta.url)));
  const found = candidates.find((d) => existsSync(d));
  if (!found) throw new Error(`migrations not found (looked in ${candidates.join(", ")}); set MIGRATIONS_DIR`);
  return found;
}

/** The versioned SQL files `NNNN_name.sql`, in order; refuses gaps and duplicates. */
export function readMigrations(dir: string): Migration[] {
  const migrations = readdirSync(dir)
    .filter((f) => f.endsWith(".sql"))
    .map((f) => {
      const m = FILE.exec(f);
      if (!m) throw new Error(`migration file name ${f} does not match NNNN_name.sql`);
      const sql = readFileSync(join(dir, f), "utf8");
      return {
        version: Number(m[1]),
        name: m[2]!,
        sql,
        checksum: createHash("sha256").update(sql).digest("hex"),
      };
    })
    .sort((a, b) => a.version - b.version);
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migration versions must be 1..n without gaps; found ${m.version} at ${i + 1}`);
  });
  return migrations;
}

export interface MigrateResult {
  applied: number[];
  current: number;
}

/**
 * Apply pending migrations, each in its own transaction, under a session advisory lock so replicas
 * starting together apply each file once. An applied file whose content changed is an error.
 */
export async function migrate(sql: Sql, migrations: Migration[], logger?: Logger): Promise<MigrateResult> {
  const conn = await sql.reserve();
  try {
    await conn`select pg_advisory_lock(${MIGRATION_LOCK_KEY})`;
    try {
      await conn`create table if not exists schema_migrations (
        version integer primary key,
        name text not null,
        checksum text not null,
        applied_at timestamptz not null default now()
      )`;
      const done = new Map<number, string>(
        (await conn<{ version: number; checksum: string }[]>`select version, checksum from schema_migrations`).map(
          (r) => [r.version, r.checksum],
        ),
      );
      const applied: number[] = [];
      for (const m of migrations) {
        const prior = done.get(m.version);
        if (prior !== undefined) {
          if (prior !== m.checksum) throw new Error(`migration ${m.version}_${m.name} changed after it was applied`);
          continue;
        }
        await conn.unsafe("begin");
        try {
          await conn.unsafe(m.sql);
          await conn`insert into schema_migrations (version, name, checksum) values (${m.version}, ${m.name}, ${m.checksum})`;
          await conn.unsafe("commit");
        } catch (err) {
          await conn.unsafe("rollback");
          throw new Error(`migration ${m.version}_${m.name} failed: ${(err as Error).message}`);
        }
        applied.push(m.version);
        logger?.info({ version: m.version, name: m.name }, "migration applied");
      }
      return { applied, current: migrations.length ? migrations[migrations.length - 1]!.version : 0 };
    } finally {
      await conn`select pg_advisory_unlock(${MIGRATION_LOCK_KEY})`;
    }
  } finally {
    conn.release();
  }
}
