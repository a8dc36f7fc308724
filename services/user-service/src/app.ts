import {
  GATEWAY_VIA_HEADER,
  HttpError,
  GenerationCache,
  Lifecycle,
  cacheEntryKey,
  Metrics,
  bearer,
  bearerToken,
  createRoute,
  createServiceApp,
  errors,
  foldUsername,
  json,
  endUserSessions,
  pingPostgres,
  pgText,
  pingRedis,
  requireUser,
  z,
  type AppEnv,
  type JwtVerifier,
  type Logger,
  type Redis,
  type Sql,
} from "@titanium/kit";
import type { MiddlewareHandler } from "hono";
import { burnVerify, hashPassword, needsRehash, verifyPassword } from "./passwords.js";
import { CredentialsBody, CredentialsOut, MeOut, PatchMeBody, PublicProfile, SignupBody, USERNAME_MAX, UserOut } from "./schemas.js";

export interface UserServiceDeps {
  sql: Sql;
  /** Profile cache; absent or down means every read goes to PostgreSQL. */
  redis?: Redis;
  /** Verifies access tokens locally (cached JWKS). */
  verifier: JwtVerifier;
  logger: Logger;
  metrics?: Metrics;
  lifecycle?: Lifecycle;
  allowedOrigins?: readonly string[];
}

/** Profile cache lifetime, as the original. */
export const PROFILE_TTL_SECONDS = 300;
/** Profiles are cached under a generation; bumping it is how an invalidation missed while Redis was down is paid. */
export const PROFILE_GENERATION_KEY = "user:gen";
/** Where the cache files a profile (`user:<generation>:<username>`): the user-service's Redis user may use `user:*` only. */
export const PROFILE_PREFIX = "user:";
/** Where the cache files a profile (for tests that look into Redis). */
export const profileKey = (username: string, generation: string) => cacheEntryKey(PROFILE_PREFIX, generation, foldUsername(username));

interface UserRow {
  id: number;
  username: string;
  email: string;
  password_hash: string;
  password_version: number;
  created_at: Date;
}
interface Profile {
  id: number;
  username: string;
  email: string;
  created_at: string;
}
const toProfile = (r: Pick<UserRow, "id" | "username" | "email" | "created_at">): Profile => ({
  id: r.id,
  username: r.username,
  email: r.email,
  created_at: r.created_at.toISOString(),
});

/** Service-to-service only: refused when the request came through the gateway (it marks what it forwards). */
const internalOnly: MiddlewareHandler<AppEnv> = async (c, next) => {
  if (c.req.header(GATEWAY_VIA_HEADER) !== undefined || c.req.header("x-forwarded-for") !== undefined)
    throw new HttpError(403, "internal endpoint");
  await next();
};

export function createApp(deps: UserServiceDeps) {
  const metrics = deps.metrics ?? new Metrics("user-service");
  const cache = new GenerationCache(deps.redis, deps.logger, { generationKey: PROFILE_GENERATION_KEY, prefix: PROFILE_PREFIX });
  const cacheStats = { hits: 0, misses: 0 };
  const { sql } = deps;

  const app = createServiceApp({
    service: "user-service",
    logger: deps.logger,
    metrics,
    allowedOrigins: deps.allowedOrigins ?? [],
    lifecycle: deps.lifecycle ?? new Lifecycle(),
    health: (c) => c.json({ status: "healthy" }),
    readiness: {
      postgres: { required: true, check: () => pingPostgres(sql) },
      redis: { required: false, check: () => pingRedis(deps.redis) },
    },
    openapi: { title: "Titanium user-service", version: "1.0.0", description: "Accounts and profiles." },
  });
  app.openAPIRegistry.registerComponent("securitySchemes", "bearerAuth", { type: "http", scheme: "bearer", bearerFormat: "JWT" });

  async function loadProfile(username: string): Promise<Profile | undefined> {
    const key = foldUsername(username);
    const { generation, raw } = await cache.read(key);
    if (raw !== undefined) {
      cacheStats.hits++;
      return JSON.parse(raw) as Profile;
    }
    cacheStats.misses++;
    // The kit's one rule (foldUsername: ASCII case only) on the name asked for. Stored usernames are ASCII
    // (the signup rule), so `lower(username)` is that same fold on the stored side (and uses the unique
    // index); a name with any other character matches no row.
    const [row] = await sql<UserRow[]>`select id, username, email, created_at from users where lower(username) = ${key}`;
    if (!row) return undefined;
    const profile = toProfile(row);
    await cache.write(key, generation, JSON.stringify(profile), PROFILE_TTL_SECONDS);
    return profile;
  }

  app.openapi(
    createRoute({
      method: "post",
      path: "/users",
      summary: "Sign up (public: POST /api/users and /api/register)",
      request: { body: { ...json(SignupBody), required: true } },
      responses: { 201: json(UserOut, "created"), ...errors(400, 422) },
    }),
    async (c) => {
      const { username, email, password } = c.req.valid("json");
      const passwordHash = await hashPassword(password, c.req.raw.signal);
      const [row] = await sql<UserRow[]>`
        insert into users (username, email, password_hash) values (${username}, ${email}, ${passwordHash})
        on conflict ((lower(username))) do nothing
        returning id, username, email`;
      if (!row) throw new HttpError(400, "Username already exists", { field: "username" });
      metrics.signups.inc({ service: "user-service" });
      return c.json({ id: row.id, username: row.username, email: row.email }, 201);
    },
  );

  const auth = requireUser(deps.verifier);
  app.use("/users/me", auth);

  app.openapi(
    createRoute({
      method: "get",
      path: "/users/me",
      summary: "The caller's own account",
      security: bearer,
      responses: { 200: json(MeOut, "the caller"), ...errors(401, 404) },
    }),
    async (c) => {
      const caller = c.get("user");
      // Read by name (the profile cache's key), answered only if it is the token's account, as PATCH finds it by id.
      const profile = await loadProfile(caller.username);
      if (!profile || profile.id !== caller.id) throw new HttpError(404, "User not found");
      return c.json(profile, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "patch",
      path: "/users/me",
      summary: "Change the caller's email, or password (with the current one)",
      security: bearer,
      request: { body: { ...json(PatchMeBody), required: true } },
      responses: { 200: json(MeOut, "updated"), ...errors(401, 403, 404, 409, 422) },
    }),
    async (c) => {
      const body = c.req.valid("json");
      const me = c.get("user");
      const [row] = await sql<UserRow[]>`select * from users where id = ${me.id}`;
      if (!row) throw new HttpError(404, "User not found");
      let newHash: string | undefined;
      if (body.password !== undefined) {
        if (!(await verifyPassword(row.password_hash, body.current_password ?? "", c.req.raw.signal)))
          throw new HttpError(403, "Current password is incorrect", { field: "current_password" });
        newHash = await hashPassword(body.password, c.req.raw.signal);
      }
      const [updated] = await sql.begin(async (tx) => {

        // Only the fields this request changes are written, so a PATCH that read the row before another
        // one committed does not write the other's old values back (an email change racing a password
        // change, which spends its time hashing between read and write, reverted the one that committed
        // first). A new password replaces only the hash the current one was checked against.
        const rows = await tx<UserRow[]>`
          update users set email = coalesce(${body.email ?? null}, email), password_hash = coalesce(${newHash ?? null}, password_hash)
            ${newHash ? tx`, password_version = password_version + 1` : tx``}
          where id = ${me.id} ${newHash ? tx`and password_hash = ${row.password_hash}` : tx``}
          returning id, username, email, created_at`;
        if (rows.length === 0) {
          if (newHash) throw new HttpError(409, "The password was changed meanwhile; try again", { field: "current_password" });
          throw new HttpError(404, "User not found");
        }
        // A new password ends every session, a refresh rotating one right now included; its new
        // password_version stops a login whose check passed with the old password (auth-service tokens.ts).
        if (newHash) await endUserSessions(tx, me.id);
        return rows;
      });
      // Bump, not delete: a reader that loaded the old row before the commit stores it under the generation
      // it read first, which this retires; a deleted key could be written back stale by that reader.
      await cache.invalidate();
      return c.json(toProfile(updated!), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/users/{username}",
      summary: "Public profile (the email only for its owner)",
      // Any length, as the original: a name longer than signup allows is simply not found.
      request: { params: z.object({ username: pgText().min(1) }) },
      responses: { 200: json(PublicProfile, "profile"), ...errors(404) },
    }),
    async (c) => {
      const { username } = c.req.valid("param");
      const profile = [...username].length > USERNAME_MAX ? undefined : await loadProfile(username);
      if (!profile) throw new HttpError(404, "User not found");
      const { email, ...pub } = profile;
      const token = bearerToken(c.req.header("authorization"));
      const self = token ? await deps.verifier.verify(token) : undefined;
      return c.json(self?.ok && self.user.id === profile.id ? { ...pub, email } : pub, 200);
    },
  );

  app.use("/internal/*", internalOnly);
  app.openapi(
    createRoute({
      method: "post",
      path: "/internal/verify-credentials",
      summary: "Credential check for the auth-service's login (never routed by the gateway)",
      request: { body: { ...json(CredentialsBody), required: true } },
      responses: { 200: json(CredentialsOut, "valid"), ...errors(401, 403, 422) },
    }),
    async (c) => {
      const { username, password } = c.req.valid("json");
      // Matched as every lookup is (loadProfile): ASCII case only. A name with another character (`ALİCE`)
      // matches no account, and takes the unknown-user path below (same answer, same hashing time).
      const [row] = await sql<UserRow[]>`select * from users where lower(username) = ${foldUsername(username)}`;
      if (!row) {
        await burnVerify(password, c.req.raw.signal);
        throw new HttpError(401, "Invalid credentials");
      }
      if (!(await verifyPassword(row.password_hash, password, c.req.raw.signal))) throw new HttpError(401, "Invalid credentials");
      if (needsRehash(row.password_hash)) {
        const rehashed = await hashPassword(password, c.req.raw.signal);
        // Only over the hash just checked: a password changed meanwhile is not put back to this one.
        await sql`update users set password_hash = ${rehashed} where id = ${row.id} and password_hash = ${row.password_hash}`;
      }
      // The password version this check passed against: the auth-service opens a session only while it is current.
      return c.json({ id: row.id, username: row.username, email: row.email, password_version: row.password_version }, 200);
    },
  );

  app.get("/stats", async (c) => {
    const db = await pingPostgres(sql).then(
      () => "healthy",
      () => "unhealthy",
    );
    const redisUp = await pingRedis(deps.redis).then(
      () => "healthy",
      () => "unhealthy",
    );
    const lookups = cacheStats.hits + cacheStats.misses;
    return c.json({
      user_service: {
        service_status: db === "healthy" ? "online" : "degraded",
        database: { status: db },
        cache: { status: redisUp, hit_ratio: lookups ? cacheStats.hits / lookups : 0 },
      },
    });
  });

  return app;
}
