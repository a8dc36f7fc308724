/**
 * PostgreSQL roles: least privilege per workload. The owner (the database's superuser, `PGUSER` of the
 * migrations) owns the schema and is used by the migration command only. Each service logs in as a role of its
 * own (no superuser, no CREATEDB/CREATEROLE, owning nothing) granted exactly what its SQL does, and the backup
 * as a read-only role. The migration command creates the roles, sets their passwords (every run: a rotated
 * secret takes effect at the next deploy), applies the migrations, then the grants below (every run: a table a
 * later migration makes is covered, and a privilege taken out of this table is revoked).
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes } from "node:crypto";
import type { Sql } from "./db.js";
import type { Logger } from "./logger.js";
import { MIGRATION_LOCK_KEY, migrate, type MigrateResult, type Migration } from "./migrate.js";

/** The login role of each database client but the owner (`components/apps/service-env.ts` holds the same names). */
export const DATABASE_ROLES = {
  "auth-service": "auth_service",
  "user-service": "user_service",
  "blog-service": "blog_service",
  backup: "titanium_backup",
} as const;
export type DatabaseClient = keyof typeof DATABASE_ROLES;
export type DatabaseRole = (typeof DATABASE_ROLES)[DatabaseClient];
export const DATABASE_ROLE_NAMES = Object.values(DATABASE_ROLES) as DatabaseRole[];

/**
 * The variable that carries each role's password to the migration command (and the key of the cluster's app
 * Secret that holds it). The services read their own as `PGPASSWORD`.
 */
export const ROLE_PASSWORD_ENV: Record<DatabaseRole, string> = {
  auth_service: "AUTH_SERVICE_PGPASSWORD",
  user_service: "USER_SERVICE_PGPASSWORD",
  blog_service: "BLOG_SERVICE_PGPASSWORD",
  titanium_backup: "BACKUP_PGPASSWORD",
};

/**
 * What each service's code runs (grep its `src` for the statements): table privileges, column privileges
 * `table(col, ...)`, and `USAGE` on the sequences of the serial ids it inserts. Row locks (`FOR UPDATE`,
 * `FOR KEY SHARE`) need `UPDATE` on at least one column of the table; advisory locks need nothing.
 */
export const GRANTS: Record<Exclude<DatabaseRole, "titanium_backup">, string[]> = {
  // tokens.ts: issue (insert, after checking the account's password version), rotate (select … for update, mark rotated or revoke the family), logout, purge.
  auth_service: [
    "select, insert, delete on refresh_tokens",
    "update (rotated_at, revoked_at) on refresh_tokens",
    "usage on sequence refresh_tokens_id_seq",
    // issue: a login's session only if the password it checked is still the account's (never the hash).
    "select (id, password_version) on users",
  ],
  // app.ts: sign-up, profiles, credential checks (the hash), email/password change and rehash;
  // kit db.ts endUserSessions: a new password revokes the user's refresh tokens.
  user_service: [
    "select on users",
    "insert (username, email, password_hash) on users",
    "update (email, password_hash, password_version) on users",
    "usage on sequence users_id_seq",
    "select (user_id, revoked_at) on refresh_tokens",
    "update (revoked_at) on refresh_tokens",
  ],
  // repo.ts: posts and their categories (get-or-create, held FOR KEY SHARE; empty ones removed FOR UPDATE).
  // Nothing on users or refresh_tokens: a post's author is the token's username.
  blog_service: [
    "select, delete on posts",
    "insert (title, content, author, category_id) on posts",
    "update (title, content, category_id, updated_at) on posts",
    "usage on sequence posts_id_seq",
    "select, delete on categories",
    "insert (name, slug, color) on categories",
    // For the row locks only (no statement updates a category): the least useful column.
    "update (color) on categories",
    "usage on sequence categories_id_seq",
  ],
};

const ident = (name: string) => `"${name.replace(/"/g, '""')}"`;

/**
 * A SCRAM-SHA-256 verifier of `password`, as PostgreSQL stores it (`SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`):
 * what `ALTER ROLE … PASSWORD` is given, so the password itself never reaches the server, its logs or an error.
 * (psql's `\password` does the same.) The passwords here are ASCII, which SASLprep leaves as they are.
 */
export function scramVerifier(password: string, salt = randomBytes(16), iterations = 4096): string {
  const salted = pbkdf2Sync(password.normalize("NFKC"), salt, iterations, 32, "sha256");
  const clientKey = createHmac("sha256", salted).update("Client Key").digest();
  const storedKey = createHash("sha256").update(clientKey).digest();
  const serverKey = createHmac("sha256", salted).update("Server Key").digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString("base64")}$${storedKey.toString("base64")}:${serverKey.toString("base64")}`;
}

/** Errors of two runs creating or altering one role at once (roles are cluster-wide: test databases share them). */
const RACE_CODES = new Set(["23505", "42710", "XX000", "40001"]);

async function withRetry<T>(run: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run();
    } catch (err) {
      if (attempt >= 5 || !RACE_CODES.has((err as { code?: string }).code ?? "")) throw err;
      await new Promise((r) => setTimeout(r, 20 * attempt));
    }
  }
}

/**
 * Creates each role if missing (NOLOGIN until it has a password), and for each role with a password: LOGIN,
 * that password (as a SCRAM verifier) and no special attribute. A role without a password here keeps the one it has.
 * The backup role becomes a member of nothing: what it reads is granted in {@link applyGrants}.
 */
export async function ensureRoles(sql: Sql, passwords: Partial<Record<DatabaseRole, string>>, logger?: Logger): Promise<void> {
  const attributes = "nosuperuser nocreatedb nocreaterole noreplication nobypassrls inherit";
  for (const role of DATABASE_ROLE_NAMES) {
    await withRetry(async () => {
      const [exists] = await sql`select 1 as x from pg_roles where rolname = ${role}`;
      if (!exists) await sql.unsafe(`create role ${ident(role)} with nologin ${attributes}`);
    });
    const password = passwords[role];
    if (password) {
      await withRetry(() => sql.unsafe(`alter role ${ident(role)} with login ${attributes} password '${scramVerifier(password)}'`));
    } else {
      await withRetry(() => sql.unsafe(`alter role ${ident(role)} with ${attributes}`));
      logger?.warn({ role, variable: ROLE_PASSWORD_ENV[role] }, "no password given for a database role: its password is left as it was");
    }
  }
}

/**
 * The grants of {@link GRANTS} and the backup's read access, in one transaction: every privilege of the roles in
 * the schema is revoked first, so the result is exactly the table above whatever was granted before. Run after
 * the migrations (the tables must exist). `owner` is the role that creates tables (the current user by default):
 * tables it creates later are readable by the backup at once (default privileges).
 */
export async function applyGrants(sql: Sql, owner?: string): Promise<void> {
  const roles = DATABASE_ROLE_NAMES.map(ident).join(", ");
  const backup = ident(DATABASE_ROLES.backup);
  await sql.begin(async (tx) => {
    // Never beside a migration of another run (a session lock of the same key waits for this and conversely).
    await tx`select pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`;
    const [{ db, me }] = (await tx`select current_database() as db, current_user as me`) as unknown as [{ db: string; me: string }];
    const creator = ident(owner ?? me);
    await tx.unsafe(`revoke all on all tables in schema public from ${roles}`);
    await tx.unsafe(`revoke all on all sequences in schema public from ${roles}`);
    // No role but the owner creates anything: not in public (PUBLIC's CREATE there is gone since PostgreSQL 15;
    // revoked for an older cluster's), not a schema, not a temporary table.
    await tx.unsafe(`revoke create on schema public from public`);
    await tx.unsafe(`revoke create, temporary on database ${ident(db)} from public, ${roles}`);
    await tx.unsafe(`grant connect on database ${ident(db)} to ${roles}`);
    await tx.unsafe(`grant usage on schema public to ${roles}`);
    for (const [role, grants] of Object.entries(GRANTS)) for (const g of grants) await tx.unsafe(`grant ${g} to ${ident(role)}`);
    // The backup (pg_dump) reads every table and sequence of the schema, now and those made later.
    await tx.unsafe(`grant select on all tables in schema public to ${backup}`);
    await tx.unsafe(`grant select on all sequences in schema public to ${backup}`);
    await tx.unsafe(`alter default privileges for role ${creator} in schema public grant select on tables to ${backup}`);
    await tx.unsafe(`alter default privileges for role ${creator} in schema public grant select on sequences to ${backup}`);
    // Nothing for the services by default: a new table is theirs only once GRANTS says so.
  });
}

/**
 * What the migration command does, as the owner: roles (with the passwords given), pending migrations, grants.
 * The grants take the migrations' advisory lock, so two runs never interleave them with a migration.
 */
export async function prepareDatabase(
  sql: Sql,
  migrations: Migration[],
  opts: { passwords: Partial<Record<DatabaseRole, string>>; logger?: Logger },
): Promise<MigrateResult> {
  await ensureRoles(sql, opts.passwords, opts.logger);
  const result = await migrate(sql, migrations, opts.logger);
  await applyGrants(sql);
  opts.logger?.info({ roles: DATABASE_ROLE_NAMES }, "database roles and grants applied");
  return result;
}

/** A connection URL of the server at `ownerUrl` (host, port, database) logged in as `role`. */
export function databaseUrlAs(ownerUrl: string, role: DatabaseRole, password: string): string {
  const u = new URL(ownerUrl);
  u.username = encodeURIComponent(role);
  u.password = encodeURIComponent(password);
  return u.toString();
}

/** The passwords `ROLE_PASSWORD_ENV` names, from an environment (unset or empty ones left out). */
export function rolePasswordsFrom(env: Record<string, string | undefined>): Partial<Record<DatabaseRole, string>> {
  const out: Partial<Record<DatabaseRole, string>> = {};
  for (const role of DATABASE_ROLE_NAMES) {
    const value = env[ROLE_PASSWORD_ENV[role]];
    if (value) out[role] = value;
  }
  return out;
}
