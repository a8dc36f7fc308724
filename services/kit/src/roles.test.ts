import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPostgres, type Sql } from "./db.js";
import { defaultMigrationsDir, readMigrations } from "./migrate.js";
import { DATABASE_ROLE_NAMES, DATABASE_ROLES, GRANTS, prepareDatabase, scramVerifier } from "./roles.js";
import { memoryLogger, startTestPostgres, type TestPostgres } from "./testing/index.js";

/**
 * The roles the migration command makes, logged in as each (with the password it set): what each may do is
 * what its service's code does (the services' own app tests run as these roles too), and nothing more.
 */
let pg: TestPostgres;
let blog: Sql;
let auth: Sql;
let user: Sql;
let backup: Sql;

/** The SQLSTATE a statement fails with (undefined: it ran). */
async function refused(run: () => Promise<unknown>): Promise<string | undefined> {
  try {
    await run();
    return undefined;
  } catch (err) {
    return (err as { code?: string }).code ?? (err as Error).message;
  }
}
const DENIED = "42501"; // insufficient_privilege

beforeAll(async () => {
  pg = await startTestPostgres();
  blog = pg.as("blog_service", { max: 2 });
  auth = pg.as("auth_service", { max: 2 });
  user = pg.as("user_service", { max: 2 });
  backup = pg.as("titanium_backup", { max: 2 });
  await pg.sql`insert into users (username, email, password_hash) values ('alice', 'a@example.com', '$argon2id$secret')`;
  await pg.sql`insert into refresh_tokens (token_hash, family_id, user_id, username, expires_at)
    values ('\\x01', gen_random_uuid(), 1, 'alice', now() + interval '1 day')`;
}, 120_000);
afterAll(() => pg?.stop());

describe("database roles", () => {
  it("log in as themselves, none a superuser, none able to create databases or roles, none owning anything", async () => {
    for (const sql of [blog, auth, user, backup]) {
      const [me] = await sql<{ me: string; su: boolean; createdb: boolean; createrole: boolean; owns: number }[]>`
        select current_user as me, r.rolsuper as su, r.rolcreatedb as createdb, r.rolcreaterole as createrole,
               (select count(*)::int from pg_class c where c.relowner = r.oid) as owns
        from pg_roles r where r.rolname = current_user`;
      expect(DATABASE_ROLE_NAMES).toContain(me!.me);
      expect(me).toMatchObject({ su: false, createdb: false, createrole: false, owns: 0 });
      // Member of no role (pg_read_server_files, pg_execute_server_program…).
      expect(await sql`select roleid::regrole::text from pg_auth_members m join pg_roles r on r.oid = m.member where r.rolname = current_user`).toEqual([]);
    }
  });

  it("blog_service cannot read password hashes nor refresh tokens, create a table, or run a program", async () => {
    expect(await refused(() => blog`select password_hash from users`)).toBe(DENIED);
    expect(await refused(() => blog`select username from users`)).toBe(DENIED);
    expect(await refused(() => blog`select * from refresh_tokens`)).toBe(DENIED);
    expect(await refused(() => blog`update users set password_hash = 'x'`)).toBe(DENIED);
    expect(await refused(() => blog`create table loot (x text)`)).toBe(DENIED);
    expect(await refused(() => blog`create temporary table loot (x text)`)).toBe(DENIED);
    expect(await refused(() => blog`create schema loot`)).toBe(DENIED);
    expect(await refused(() => blog.unsafe(`copy (select 1) to program 'id'`))).toBe(DENIED);
    expect(await refused(() => blog.unsafe(`copy posts from '/etc/passwd'`))).toBe(DENIED);
    expect(await refused(() => blog`select pg_read_file('/etc/passwd')`)).toBe(DENIED);
    expect(await refused(() => blog`drop table posts`)).toBe(DENIED);
    expect(await refused(() => blog`update categories set seeded = false`)).toBe(DENIED);
    expect(await refused(() => blog`insert into posts (id, title, content, author, category_id) values (999, 't', 'c', 'a', 1)`)).toBe(DENIED);
    expect(await refused(() => blog`update posts set author = 'mallory'`)).toBe(DENIED);
    expect(await refused(() => blog`select * from schema_migrations`)).toBe(DENIED);
  });

  it("blog_service runs what its repository runs: posts, categories made and held, row locks, advisory locks", async () => {
    await blog.begin(async (tx) => {
      const [c] = await tx<{ id: number }[]>`insert into categories (name, slug, color) values ('Roles', 'roles', '#000000') on conflict do nothing returning id`;
      await tx`select id from categories where lower(name) = 'roles' order by seeded desc, id limit 1 for key share`;
      await tx`select pg_advisory_xact_lock(1, hashtext('roles'))`;
      const [p] = await tx<{ id: number }[]>`insert into posts (title, content, author, category_id) values ('t', 'c', 'alice', ${c!.id}) returning id`;
      await tx`select category_id from posts where id = ${p!.id} and author = 'alice' for update`;
      await tx`update posts set title = 'u', content = 'v', category_id = 1, updated_at = now() where id = ${p!.id}`;
      await tx`select p.*, c.name from posts p join categories c on c.id = p.category_id where p.id = ${p!.id}`;
      await tx`delete from posts where id = ${p!.id} and author = 'alice' returning id`;
      const empty = await tx<{ id: number }[]>`select c.id from categories c where not c.seeded and not exists (select 1 from posts p where p.category_id = c.id) for update skip locked`;
      await tx`delete from categories c where c.id in ${tx(empty.map((r) => r.id))}`;
    });
  });

  it("auth_service keeps refresh tokens and nothing else; user_service keeps users and revokes sessions, never reading token hashes", async () => {
    expect(await refused(() => auth`select * from users`)).toBe(DENIED);
    expect(await refused(() => auth`select password_hash from users`)).toBe(DENIED);
    expect(await refused(() => auth`select email from users`)).toBe(DENIED);
    // A login's session only while the password it checked is the account's (tokens.ts issue): the version, never the hash.
    await auth`select password_version from users where id = 1`;
    expect(await refused(() => auth`select * from posts`)).toBe(DENIED);
    await auth.begin(async (tx) => {
      await tx`insert into refresh_tokens (token_hash, family_id, user_id, username, expires_at, session_expires_at) values ('\\x02', gen_random_uuid(), 1, 'alice', now(), now())`;
      await tx`select id, family_id, user_id from refresh_tokens where token_hash = '\\x02' for update`;
      await tx`update refresh_tokens set rotated_at = now() where token_hash = '\\x02'`;
      await tx`update refresh_tokens set revoked_at = now() where token_hash = '\\x02' and revoked_at is null`;
      await tx`delete from refresh_tokens where expires_at < now() + interval '1 day' and token_hash = '\\x02' returning id`;
    });
    expect(await refused(() => auth`update refresh_tokens set user_id = 2`)).toBe(DENIED);

    await user.begin(async (tx) => {
      const [u] = await tx<{ id: number }[]>`insert into users (username, email, password_hash) values ('bob', 'b@example.com', 'h') on conflict ((lower(username))) do nothing returning id, username, email`;
      await tx`select * from users where id = ${u!.id}`;
      await tx`update users set email = 'c@example.com', password_hash = 'h2', password_version = password_version + 1 where id = ${u!.id} and password_hash = 'h' returning id, username, email, created_at`;
      await tx`select pg_advisory_xact_lock(7146, ${u!.id}::int)`;
      await tx`update refresh_tokens set revoked_at = now() where user_id = ${u!.id} and revoked_at is null`;
    });
    expect(await refused(() => user`select token_hash from refresh_tokens`)).toBe(DENIED);
    expect(await refused(() => user`update users set username = 'eve'`)).toBe(DENIED);
    expect(await refused(() => user`delete from users`)).toBe(DENIED);
    expect(await refused(() => user`select * from posts`)).toBe(DENIED);
  });

  it("the backup role reads every table and sequence (as pg_dump does), a table made later too, and writes nothing", async () => {
    await backup.begin(async (tx) => {
      const tables = await tx<{ t: string }[]>`select tablename as t from pg_tables where schemaname = 'public'`;
      expect(tables.map((r) => r.t).sort()).toEqual(["categories", "posts", "refresh_tokens", "schema_migrations", "users"]);
      for (const { t } of tables) {
        await tx.unsafe(`lock table "${t}" in access share mode`);
        await tx.unsafe(`select * from "${t}" limit 1`);
      }
      for (const { s } of await tx<{ s: string }[]>`select sequencename as s from pg_sequences where schemaname = 'public'`) await tx.unsafe(`select last_value from "${s}"`);
    });
    await pg.sql`create table later (x int)`;
    try {
      expect(await backup`select * from later`).toEqual([]);
      expect(await refused(() => blog`select * from later`)).toBe(DENIED);
    } finally {
      await pg.sql`drop table later`;
    }
    expect(await refused(() => backup`delete from users`)).toBe(DENIED);
    expect(await refused(() => backup`update posts set title = 'x'`)).toBe(DENIED);
    expect(await refused(() => backup`create table loot (x text)`)).toBe(DENIED);
    expect(await refused(() => backup.unsafe(`copy (select 1) to program 'id'`))).toBe(DENIED);
  });

  it("every run sets the passwords (a rotated one works at once, the old one no more) and re-grants, logging no password", async () => {
    const { logger, lines } = memoryLogger("migrate");
    const rotated = "rotated-Secret-0123456789";
    // A grant made by hand (or dropped from GRANTS since) does not outlive the next run.
    await pg.sql`grant select on users to blog_service`;
    await pg.sql`grant update (author) on posts to blog_service`;
    await prepareDatabase(pg.sql, readMigrations(defaultMigrationsDir()), { passwords: { blog_service: rotated }, logger });
    const u = new URL(pg.urlAs("blog_service"));
    u.password = rotated;
    const fresh = createPostgres({ url: u.href, max: 1 });
    try {
      expect(await fresh`select count(*)::int as n from posts`).toEqual([{ n: 0 }]);
    } finally {
      await fresh.end({ timeout: 1 });
    }
    const old = createPostgres({ url: pg.urlAs("blog_service"), max: 1 });
    try {
      expect(await refused(() => old`select 1`)).toBe("28P01"); // invalid_password
    } finally {
      await old.end({ timeout: 1 });
    }
    expect(JSON.stringify(lines())).not.toContain(rotated);
    expect(await refused(() => blog`select password_hash from users`)).toBe(DENIED);
    expect(await refused(() => blog`update posts set author = 'mallory'`)).toBe(DENIED);
    // Roles without a password in this run keep theirs.
    expect(await auth`select 1 as one`).toEqual([{ one: 1 }]);
    // Back to the helper's passwords for the other tests' pools.
    await prepareDatabase(pg.sql, readMigrations(defaultMigrationsDir()), { passwords: { blog_service: decodeURIComponent(new URL(pg.urlAs("blog_service")).password) } });
    expect(await blog`select 1 as one`).toEqual([{ one: 1 }]);
  });

  it("stores a SCRAM verifier, never the password, and covers each service's grants", async () => {
    const [row] = await pg.sql<{ pw: string }[]>`select rolpassword as pw from pg_authid where rolname = 'blog_service'`;
    expect(row!.pw).toMatch(/^SCRAM-SHA-256\$4096:/);
    expect(scramVerifier("x", Buffer.alloc(16))).toBe(scramVerifier("x", Buffer.alloc(16)));
    expect(Object.keys(GRANTS).sort()).toEqual(["auth_service", "blog_service", "user_service"]);
    expect(Object.keys(DATABASE_ROLES)).not.toContain("api-gateway"); // no database
  });
});

describe("the database runbook", () => {
  it("names every table and column list each role is granted (docs/runbooks/database.md, Roles)", async () => {
    const { readFileSync } = await import("node:fs");
    const runbook = readFileSync(new URL("../../../docs/runbooks/database.md", import.meta.url), "utf8").replace(/`/g, "");
    const missing = Object.entries(GRANTS).flatMap(([role, grants]) => {
      const row = runbook.split("\n").find((line) => line.startsWith(`| ${role} |`));
      if (!row) return [`${role}: no row`];
      return grants.flatMap((grant) => {
        const [, columns, object] = /(\([^)]*\))? on (?:sequence )?(\S+)$/.exec(grant) ?? [];
        const table = object?.replace(/_id_seq$/, "");
        return [columns, table].filter((part): part is string => !!part && !row.includes(part)).map((part) => `${role}: ${grant} (${part})`);
      });
    });
    expect(missing).toEqual([]);
  });
});
