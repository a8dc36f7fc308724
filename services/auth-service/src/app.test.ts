import { createHash, generateKeyPairSync } from "node:crypto";
import { serve } from "@hono/node-server";
import { Hono } from "hono";
import { SignJWT, UnsecuredJWT, base64url, decodeProtectedHeader, decodeJwt, exportJWK, generateKeyPair } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JwtVerifier, Lifecycle, Metrics, endUserSessions, loadEnv, startServer, type RunningServer } from "@titanium/kit";
import { freePort } from "@titanium/kit/local";
import { contractChecked, type ContractReport, memoryLogger, startTestPostgres, testTokens, type TestPostgres } from "@titanium/kit/testing";
import { createApp as createUserApp } from "../../user-service/src/app.js";
import { hashPool } from "../../user-service/src/passwords.js";
import { createApp } from "./app.js";
import { envSchema } from "./config.js";
import { loadSigningKeys, SigningKeyNotConfigured, type SigningKeys } from "./keys.js";

const pemPair = () =>
  generateKeyPairSync("ec", {
    namedCurve: "P-256",
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
    publicKeyEncoding: { type: "spki", format: "pem" },
  });
const settings = { issuer: "auth-service", audience: "titanium", accessTtlSeconds: 900, refreshTtlSeconds: 3600, sessionMaxSeconds: 7200 };
const PW = "Str0ng!pass";

let pg: TestPostgres;
let db: TestPostgres["sql"];
let userServer: RunningServer;
let keyA: ReturnType<typeof pemPair>;
let keys: SigningKeys;
let app: ReturnType<typeof createApp>;
let contract: ContractReport;
let metrics: Metrics;
let userApp: ReturnType<typeof createUserApp>;
let signUserToken: Awaited<ReturnType<typeof testTokens>>["sign"];
const log = memoryLogger("auth-service");

beforeAll(async () => {
  // The user-service hashes in this process: at normal priority (a pod's nice 19 starves behind the other
  // test worker on a loaded machine, and the logins here would outlast their timeouts).
  hashPool.configure({ size: 1, nice: 0 });
  pg = await startTestPostgres();
  // Each service's own role, as in production: what the apps do must be within their grants (kit roles.ts).
  db = pg.as("auth_service");
  const { verifier, sign: signForUsers } = await testTokens();
  signUserToken = signForUsers;
  userApp = createUserApp({ sql: pg.as("user_service"), verifier, logger: memoryLogger().logger, metrics: new Metrics("user-service", { processMetrics: false }) });
  userServer = await startServer({ fetch: userApp.fetch, port: 0, host: "127.0.0.1", logger: memoryLogger().logger, lifecycle: new Lifecycle(), graceMs: 100 });
  for (const username of ["alice", "bob", "carol"])
    await userApp.request("/users", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username, email: `${username}@example.com`, password: PW }) });
  keyA = pemPair();
  keys = await loadSigningKeys(keyA.privateKey);
  metrics = new Metrics("auth-service", { processMetrics: false });
  // A login is one Argon2id check (~0.2 s, seconds on a loaded machine): the 3 s default is the pods' figure.
  ({ app, report: contract } = contractChecked(createApp({ sql: db, keys, tokens: settings, userServiceUrl: `http://127.0.0.1:${userServer.port}`, logger: log.logger, metrics, upstreamTimeoutMs: 30_000 })));
});
afterAll(async () => {
  await userServer?.shutdown();
  await pg?.stop();
});

const post = (path: string, body: unknown) =>
  app.request(path, { method: "POST", body: JSON.stringify(body), headers: { "content-type": "application/json" } });
type Tokens = { status: string; token: string; refresh_token: string; expires_in: number; token_type: string };
const login = async (username = "alice", password = PW) => (await (await post("/login", { username, password })).json()) as Tokens;
/** The original's `{status: "failed", message}` in the one error envelope (request id included). */
const failedBody = (message: string) => ({ status: "failed", error: "Unauthorized", message, status_code: 401, request_id: expect.any(String) });
const verify = (token: string) => app.request("/verify", { headers: { authorization: `Bearer ${token}` } });

describe("login", () => {
  it("answers the original {status, token} plus refresh_token, expires_in, token_type; ES256 with a derived kid", async () => {
    const res = await post("/login", { username: "alice", password: PW });
    expect(res.status).toBe(200);
    const body = (await res.json()) as Tokens;
    expect(body).toMatchObject({ status: "success", expires_in: 900, token_type: "Bearer" });
    expect(body.refresh_token.length).toBeGreaterThanOrEqual(40);
    const header = decodeProtectedHeader(body.token);
    expect(header.alg).toBe("ES256");
    expect(header.kid).toBe(keys.kid);
    const claims = decodeJwt(body.token);
    expect(claims).toMatchObject({ sub: expect.any(String), username: "alice", user_id: expect.any(Number), iss: "auth-service", aud: "titanium" });
    expect(claims.exp! - claims.iat!).toBe(900);
    expect(typeof claims.jti).toBe("string");
    const jwks = (await (await app.request("/.well-known/jwks.json")).json()) as { keys: { kid: string; d?: string }[] };
    expect(jwks.keys.map((k) => k.kid)).toEqual([keys.kid]);
    expect(jwks.keys[0]!.d).toBeUndefined();
    expect(JSON.stringify(log.lines())).not.toContain(PW);
    expect(JSON.stringify(log.lines())).not.toContain(body.refresh_token);
  });

  it("answers 401 {status: failed} for a wrong password or an unknown user, and counts both results", async () => {
    for (const [u, p] of [["alice", "Wrong!pass1"], ["nobody", PW]]) {
      const res = await post("/login", { username: u, password: p });
      expect(res.status).toBe(401);
      expect(await res.json()).toEqual(failedBody("Invalid username or password"));
    }
    const text = await metrics.registry.getSingleMetricAsString("titanium_logins_total");
    expect(text).toMatch(/result="ok"} [1-9]/);
    expect(text).toMatch(/result="failed"} [2-9]/);
  });

  it("logs in by the username's ASCII case only: ALİCE is not alice (the gateway's per-account limit keys it apart)", async () => {
    expect((await post("/login", { username: "ALICE", password: PW })).status).toBe(200);
    for (const spelling of ["ALİCE", "alİce"]) {
      const res = await post("/login", { username: spelling, password: PW });
      expect(res.status, spelling).toBe(401);
      expect(await res.json()).toEqual(failedBody("Invalid username or password"));
    }
  });

  it("validates the body (422 naming the field) and answers 503 when the user-service is unreachable", async () => {
    const bad = await post("/login", { username: "", password: PW });
    expect(bad.status).toBe(422);
    expect(await bad.json()).toMatchObject({ field: "username" });
    const downMetrics = new Metrics("auth-service", { processMetrics: false });
    const down = createApp({ sql: db, keys, tokens: settings, userServiceUrl: `http://127.0.0.1:${await freePort()}`, logger: log.logger, metrics: downMetrics });
    const res = await down.request("/login", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username: "alice", password: PW }) });
    expect(res.status).toBe(503);
    // Counted apart from failed logins: an outage is not a burst of wrong passwords.
    const counted = await downMetrics.registry.getSingleMetricAsString("titanium_logins_total");
    expect(counted).toMatch(/result="unavailable"} 1\b/);
    expect(counted).not.toMatch(/result="failed"}/);
    // A user-service answering 200 with something that is not JSON: its fault (503), not the client's body (422).
    const garbled = serve({ port: 0, hostname: "127.0.0.1", fetch: new Hono().post("/internal/verify-credentials", (c) => c.text("<html>proxy error</html>")).fetch });
    try {
      const port = await new Promise<number>((r) => garbled.once("listening", () => r((garbled.address() as { port: number }).port)));
      const confused = createApp({ sql: db, keys, tokens: settings, userServiceUrl: `http://127.0.0.1:${port}`, logger: log.logger, metrics: new Metrics("auth-service", { processMetrics: false }) });
      const answer = await confused.request("/login", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username: "alice", password: PW }) });
      expect(answer.status).toBe(503);
      expect(await answer.json()).toMatchObject({ message: "login is temporarily unavailable" });
    } finally {
      garbled.close();
    }
  });

  it("gives up its credential check as soon as its own client goes away (the user-service then drops the hash)", async () => {
    // A user-service that never answers, and notes when the auth-service hangs up on it.
    let hungUp: (ms: number) => void;
    const hangUp = new Promise<number>((r) => (hungUp = r));
    let asked = 0;
    const silent = serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch: new Hono().post("/internal/verify-credentials", (c) => {
        asked = Date.now();
        return new Promise<Response>((resolve) => c.req.raw.signal.addEventListener("abort", () => (hungUp(Date.now() - asked), resolve(new Response(null)))));
      }).fetch,
    });
    try {
      const port = await new Promise<number>((r) => silent.once("listening", () => r((silent.address() as { port: number }).port)));
      const slowUsers = createApp({ sql: db, keys, tokens: settings, userServiceUrl: `http://127.0.0.1:${port}`, logger: log.logger, metrics: new Metrics("auth-service", { processMetrics: false }), upstreamTimeoutMs: 30_000 });
      const gone = new AbortController();
      const login = slowUsers.request(
        new Request("http://auth-service/login", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username: "alice", password: PW }), signal: gone.signal }),
      );
      while (!asked) await new Promise((r) => setTimeout(r, 10));
      gone.abort();
      // Within moments, not at the 30 s timeout; the answer nobody reads is a 499 for logs and metrics.
      expect(await hangUp).toBeLessThan(5000);
      expect((await login).status).toBe(499);
    } finally {
      silent.close();
    }
  });

  it("moves to the next user-service instance when one refuses the connection (a restart)", async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    const live = `http://127.0.0.1:${userServer.port}`;
    const pooled = createApp({ sql: db, keys, tokens: settings, userServiceUrl: [dead, live], logger: log.logger, metrics: new Metrics("auth-service", { processMetrics: false }) });
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await pooled.request("/login", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username: "alice", password: PW }) });
      statuses.push(res.status);
    }
    expect(statuses).toEqual([200, 200, 200, 200]);
  });
});

describe("verify: refusals", () => {
  it("accepts a valid token and returns its claims under data", async () => {
    const { token } = await login();
    const res = await verify(token);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: "success", data: { username: "alice", iss: "auth-service" } });
  });

  it("answers 400 in the envelope without a Bearer header", async () => {
    const res = await app.request("/verify");
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: "BadRequest", status_code: 400 });
  });

  it("refuses alg none, a wrong key, HS256 with the public key, wrong issuer, wrong audience, and expiry", async () => {
    const claims = { username: "alice", user_id: 1 };
    const none = new UnsecuredJWT(claims).setSubject("1").setIssuer("auth-service").setAudience("titanium").setExpirationTime("5m").encode();
    const other = await generateKeyPair("ES256");
    const sign = (key: Parameters<SignJWT["sign"]>[0], alg: string, mutate: (j: SignJWT) => SignJWT = (j) => j) =>
      mutate(new SignJWT(claims).setProtectedHeader({ alg, kid: keys.kid }).setSubject("1").setIssuer("auth-service").setAudience("titanium").setIssuedAt().setExpirationTime("5m")).sign(key);
    const jwk = await exportJWK(keys.privateKey);
    const hsSecret = new TextEncoder().encode(JSON.stringify({ kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y }));
    const cases: [string, string][] = [
      ["alg none", none],
      ["wrong key", await sign(other.privateKey, "ES256")],
      ["HS256 confusion", await sign(hsSecret, "HS256")],
      ["wrong issuer", await sign(keys.privateKey, "ES256", (j) => j.setIssuer("evil"))],
      ["wrong audience", await sign(keys.privateKey, "ES256", (j) => j.setAudience("other"))],
      // A properly signed ES256 token whose payload was changed afterwards (the signature kept).
      ["tampered payload", await sign(keys.privateKey, "ES256").then((t) => { const [h, p, sig] = t.split("."); return `${h}.${base64url.encode(JSON.stringify({ ...JSON.parse(new TextDecoder().decode(base64url.decode(p!))), sub: "2", username: "mallory" }))}.${sig}`; })],
    ];
    // The untampered token of the same recipe is accepted: the refusals above are the changes' doing.
    expect((await verify(await sign(keys.privateKey, "ES256"))).status).toBe(200);
    for (const [name, token] of cases) {
      const res = await verify(token);
      expect(res.status, name).toBe(401);
      expect(await res.json(), name).toEqual(failedBody("Invalid token"));
    }
    const expired = await sign(keys.privateKey, "ES256", (j) => j.setIssuedAt(Math.floor(Date.now() / 1000) - 3600).setExpirationTime(Math.floor(Date.now() / 1000) - 60));
    const res = await verify(expired);
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual(failedBody("Token has expired"));
  });
});

describe("refresh tokens", () => {
  it("rotate on use; reusing a spent token revokes the whole family", async () => {
    const first = await login("bob");
    const r1 = await post("/auth/refresh", { refresh_token: first.refresh_token });
    expect(r1.status).toBe(200);
    const second = (await r1.json()) as Tokens;
    expect(second.refresh_token).not.toBe(first.refresh_token);
    expect(decodeJwt(second.token).username).toBe("bob");
    // The thief (or a replay) presents the spent token: refused, and the live one dies with it.
    const reuse = await post("/auth/refresh", { refresh_token: first.refresh_token });
    expect(reuse.status).toBe(401);
    expect(await reuse.json()).toMatchObject({ message: expect.stringMatching(/reuse/) });
    expect((await post("/auth/refresh", { refresh_token: second.refresh_token })).status).toBe(401);
  });

  it("end at the session's deadline however often they are refreshed (a stolen token kept rotating dies too)", async () => {
    const short = createApp({ sql: db, keys, tokens: { ...settings, sessionMaxSeconds: 3 }, userServiceUrl: `http://127.0.0.1:${userServer.port}`, logger: log.logger, metrics, upstreamTimeoutMs: 30_000 });
    const refresh = (token: string) => short.request("/auth/refresh", { method: "POST", body: JSON.stringify({ refresh_token: token }), headers: { "content-type": "application/json" } });
    const started = Date.now();
    const loginRes = await short.request("/login", { method: "POST", body: JSON.stringify({ username: "alice", password: PW }), headers: { "content-type": "application/json" } });
    let token = ((await loginRes.json()) as Tokens).refresh_token;
    const deadlineOf = async (t: string) =>
      (await pg.sql<{ expires_at: Date; session_expires_at: Date }[]>`select expires_at, session_expires_at from refresh_tokens where token_hash = ${createHash("sha256").update(t).digest()}`)[0]!;
    const { session_expires_at: deadline } = await deadlineOf(token);
    expect(deadline.getTime() - started).toBeGreaterThan(2_000);
    expect(deadline.getTime() - started).toBeLessThanOrEqual(3_000 + 1_000);
    // An older auth-service (before migration 0006, during a rolling update) rotates once: its row
    // gets the column's default deadline, 30 days out, which must not become the session's.
    const hashOf = (t: string) => createHash("sha256").update(t).digest();
    const byOldReplica = "rotated-by-an-older-replica";
    await pg.sql`update refresh_tokens set rotated_at = now() where token_hash = ${hashOf(token)}`;
    await pg.sql`insert into refresh_tokens (token_hash, family_id, user_id, username, expires_at)
      select ${hashOf(byOldReplica)}, family_id, user_id, username, now() + interval '1 hour' from refresh_tokens where token_hash = ${hashOf(token)}`;
    expect((await deadlineOf(byOldReplica)).session_expires_at.getTime() - Date.now()).toBeGreaterThan(29 * 86_400_000);
    token = byOldReplica;
    // Each rotation keeps the family's deadline and never gives a token past it (the TTL alone is an hour).
    for (let i = 0; i < 2; i++) {
      const r = await refresh(token);
      expect(r.status).toBe(200);
      token = ((await r.json()) as Tokens).refresh_token;
      const row = await deadlineOf(token);
      expect(row.session_expires_at).toEqual(deadline);
      expect(row.expires_at.getTime()).toBeLessThanOrEqual(deadline.getTime());
    }
    await new Promise((r) => setTimeout(r, Math.max(0, deadline.getTime() - Date.now()) + 100));
    expect((await refresh(token)).status).toBe(401);
  });

  /** Until `n` transactions of this database wait on a lock (bounded): the races below are set up by it. */
  const waiting = async (n: number) => {
    for (let i = 0; i < 200; i++) {
      const [{ w }] = (await pg.sql`select count(*)::int as w from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`) as unknown as [{ w: number }];
      if (w >= n) return;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`fewer than ${n} transactions waiting on a lock`);
  };

  it("a password change ends a session whose refresh is rotating at that very moment", async () => {
    const s = await login("bob");
    const [{ id }] = (await pg.sql`select id from users where username = 'bob'`) as unknown as [{ id: number }];
    // Hold bob's token rows so that the refresh stops mid-transaction, then start the password change's
    // revocation behind it (the user-service's endUserSessions), then let both go: the refresh first.
    const blocker = await pg.sql.reserve();
    try {
      await blocker`begin`;
      await blocker`select id from refresh_tokens where user_id = ${id} and revoked_at is null for update`;
      const refreshing = post("/auth/refresh", { refresh_token: s.refresh_token });
      await waiting(1);
      const ending = pg.sql.begin((tx) => endUserSessions(tx, id));
      await waiting(2);
      await blocker`commit`;
      const refreshed = await refreshing;
      await ending;
      expect(refreshed.status).toBe(200);
      // Its new token was made before the sessions ended: it must not outlive the password change.
      const next = (await refreshed.json()) as Tokens;
      expect((await post("/auth/refresh", { refresh_token: next.refresh_token })).status).toBe(401);
    } finally {
      blocker.release();
    }
  });

  it("a login whose credential check passed with the old password does not survive a password change committed meanwhile", async () => {
    // A user-service in front of the real one: it answers the login's credential check (old password: 200),
    // but only after the account's owner changed the password (the real PATCH /users/me, which ends every
    // session). The login's session must not outlive that change: it was proved with a password the account
    // no longer has (an attacker holding the old password kept a 30-day session this way).
    const [{ id }] = (await pg.sql`select id from users where username = 'carol'`) as unknown as [{ id: number }];
    const ownerToken = await signUserToken({ id, username: "carol" });
    const front = serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch: new Hono().post("/internal/verify-credentials", async (c) => {
        const checked = await userApp.request("/internal/verify-credentials", { method: "POST", headers: { "content-type": "application/json" }, body: await c.req.text() });
        const changed = await userApp.request("/users/me", {
          method: "PATCH",
          headers: { "content-type": "application/json", authorization: `Bearer ${ownerToken}` },
          body: JSON.stringify({ password: "N3w!password", current_password: PW }),
        });
        expect(changed.status).toBe(200);
        return new Response(checked.body, { status: checked.status, headers: checked.headers });
      }).fetch,
    });
    try {
      const port = await new Promise<number>((resolve) => front.once("listening", () => resolve((front.address() as { port: number }).port)));
      const racing = createApp({ sql: db, keys, tokens: settings, userServiceUrl: `http://127.0.0.1:${port}`, logger: log.logger, metrics, upstreamTimeoutMs: 30_000 });
      const res = await racing.request("/login", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username: "carol", password: PW }) });
      const body = (await res.json()) as Partial<Tokens>;
      if (res.status === 200) expect((await post("/auth/refresh", { refresh_token: body.refresh_token })).status).toBe(401);
      expect(res.status).toBe(401);
      expect(body).toEqual(failedBody("Invalid username or password"));
      const [{ live }] = (await pg.sql`select count(*)::int as live from refresh_tokens where user_id = ${id} and revoked_at is null`) as unknown as [{ live: number }];
      expect(live).toBe(0);
      // The new password logs in as usual.
      expect((await login("carol", "N3w!password")).status).toBe("success");
    } finally {
      front.close();
    }
  });

  it("still logs in through a user-service that answers no password version (an older one during a rolling update)", async () => {
    const [{ id }] = (await pg.sql`select id from users where username = 'alice'`) as unknown as [{ id: number }];
    const older = serve({ port: 0, hostname: "127.0.0.1", fetch: new Hono().post("/internal/verify-credentials", (c) => c.json({ id, username: "alice", email: "alice@example.com" })).fetch });
    try {
      const port = await new Promise<number>((resolve) => older.once("listening", () => resolve((older.address() as { port: number }).port)));
      const app2 = createApp({ sql: db, keys, tokens: settings, userServiceUrl: `http://127.0.0.1:${port}`, logger: log.logger, metrics });
      const res = await app2.request("/login", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username: "alice", password: PW }) });
      expect(res.status).toBe(200);
      const body = (await res.json()) as Tokens;
      expect((await post("/auth/refresh", { refresh_token: body.refresh_token })).status).toBe(200);
    } finally {
      older.close();
    }
  });

  it("a logout ends a session whose refresh is rotating at that very moment (the new token dies too)", async () => {
    const s = await login("bob");
    const hash = createHash("sha256").update(s.refresh_token).digest();
    // Hold the token's row so that the refresh stops mid-transaction, start the logout behind it, then let
    // both go: the refresh commits its successor first, and the logout must revoke that one too (the web
    // UI refreshes quietly, so a logout racing a refresh is an ordinary click, not a contrived case).
    const blocker = await pg.sql.reserve();
    try {
      await blocker`begin`;
      await blocker`select id from refresh_tokens where token_hash = ${hash} for update`;
      const refreshing = post("/auth/refresh", { refresh_token: s.refresh_token });
      await waiting(1);
      const loggingOut = post("/auth/logout", { refresh_token: s.refresh_token });
      await waiting(2);
      await blocker`commit`;
      const refreshed = await refreshing;
      expect((await loggingOut).status).toBe(200);
      expect(refreshed.status).toBe(200);
      const next = (await refreshed.json()) as Tokens;
      expect((await post("/auth/refresh", { refresh_token: next.refresh_token })).status).toBe(401);
      const [{ live }] = (await pg.sql`select count(*)::int as live from refresh_tokens where family_id = (select family_id from refresh_tokens where token_hash = ${hash}) and revoked_at is null`) as unknown as [{ live: number }];
      expect(live).toBe(0);
    } finally {
      blocker.release();
    }
  });

  it("a spent token presented after its own expiry is still reuse: the family it was copied from is revoked", async () => {
    const first = await login("bob");
    const r1 = await post("/auth/refresh", { refresh_token: first.refresh_token });
    expect(r1.status).toBe(200);
    const second = (await r1.json()) as Tokens;
    // The spent token's own lifetime is over (each rotation restarts the clock: its successor lives on).
    await pg.sql`update refresh_tokens set expires_at = now() - interval '1 second' where token_hash = ${createHash("sha256").update(first.refresh_token).digest()}`;
    const reuse = await post("/auth/refresh", { refresh_token: first.refresh_token });
    expect(reuse.status).toBe(401);
    expect(await reuse.json()).toMatchObject({ message: expect.stringMatching(/reuse/) });
    expect((await post("/auth/refresh", { refresh_token: second.refresh_token })).status).toBe(401);
  });

  it("the purge keeps a spent token while its family lives: replayed after the purge it is still reuse and revokes the family", async () => {
    const hashOf = (t: string) => createHash("sha256").update(t).digest();
    const first = await login("bob");
    const r1 = await post("/auth/refresh", { refresh_token: first.refresh_token });
    expect(r1.status).toBe(200);
    const second = (await r1.json()) as Tokens;
    // The spent token's own lifetime ended two days ago; its successor (the family's live token) lives on.
    await pg.sql`update refresh_tokens set expires_at = now() - interval '2 days' where token_hash = ${hashOf(first.refresh_token)}`;
    // A session that ended two days ago (every token of its family long expired) is what the purge is for.
    const ended = await login("bob");
    const [{ family }] = (await pg.sql`select family_id as family from refresh_tokens where token_hash = ${hashOf(ended.refresh_token)}`) as unknown as [{ family: string }];
    await pg.sql`update refresh_tokens set expires_at = now() - interval '2 days' where family_id = ${family}`;
    expect(await app.tokenService.purgeExpired()).toBeGreaterThanOrEqual(1);
    const [{ left }] = (await pg.sql`select count(*)::int as left from refresh_tokens where family_id = ${family}`) as unknown as [{ left: number }];
    expect(left).toBe(0);
    const reuse = await post("/auth/refresh", { refresh_token: first.refresh_token });
    expect(reuse.status).toBe(401);
    expect(await reuse.json()).toMatchObject({ message: expect.stringMatching(/reuse/) });
    const [{ live }] = (await pg.sql`select count(*)::int as live from refresh_tokens where token_hash = ${hashOf(second.refresh_token)} and revoked_at is null`) as unknown as [{ live: number }];
    expect(live).toBe(0);
    expect((await post("/auth/refresh", { refresh_token: second.refresh_token })).status).toBe(401);
  });

  it("logout revokes; unknown and expired tokens are refused", async () => {
    const s = await login("bob");
    expect((await (await app.request("/stats")).json()) as object).toMatchObject({ auth: { service_status: "online", active_session_count: expect.any(Number) } });
    const out = await post("/auth/logout", { refresh_token: s.refresh_token });
    expect(out.status).toBe(200);
    expect((await post("/auth/refresh", { refresh_token: s.refresh_token })).status).toBe(401);
    expect((await post("/auth/refresh", { refresh_token: "made-up" })).status).toBe(401);
    const s2 = await login("bob");
    await pg.sql`update refresh_tokens set expires_at = now() - interval '1 second' where revoked_at is null and rotated_at is null`;
    expect((await post("/auth/refresh", { refresh_token: s2.refresh_token })).status).toBe(401);
    // Only digests are stored: no row holds the token (as sent, or its decoded random bytes), one its SHA-256.
    const rows = async (value: Buffer) => (await pg.sql<{ n: number }[]>`select count(*)::int as n from refresh_tokens where token_hash = ${value}`)[0]!.n;
    expect(await rows(Buffer.from(s2.refresh_token))).toBe(0);
    expect(await rows(Buffer.from(s2.refresh_token, "base64url"))).toBe(0);
    expect(await rows(createHash("sha256").update(s2.refresh_token).digest())).toBe(1);
  });
});

describe("signing-key rotation", () => {
  it("publishes the previous key so its tokens stay valid, and remote verifiers pick up the new kid", async () => {
    const oldToken = (await login()).token;
    const keyB = pemPair();
    const rotated = await loadSigningKeys(keyB.privateKey, [keyB.publicKey, keyA.publicKey]);
    expect(rotated.kid).not.toBe(keys.kid);
    expect(rotated.jwks.keys.map((k) => k.kid)).toEqual([rotated.kid, keys.kid]);
    const appB = createApp({ sql: db, keys: rotated, tokens: settings, userServiceUrl: `http://127.0.0.1:${userServer.port}`, logger: log.logger, metrics: new Metrics("auth-service", { processMetrics: false }) });
    expect((await appB.request("/verify", { headers: { authorization: `Bearer ${oldToken}` } })).status).toBe(200);
    const newRes = await appB.request("/login", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username: "alice", password: PW }) });
    const newToken = ((await newRes.json()) as Tokens).token;
    expect(decodeProtectedHeader(newToken).kid).toBe(rotated.kid);

    // Step 1 of the runbook published B beside A before B signs: a verifier that cached that set
    // accepts B's tokens without refetching. Without step 1, an unknown kid makes it refetch.
    const prepublished = await loadSigningKeys(keyA.privateKey, [keyA.publicKey, keyB.publicKey]);
    let served = prepublished.jwks;
    const jwksApp = new Hono().get("/jwks", (c) => c.json(served));
    const port = await freePort();
    const server = serve({ fetch: jwksApp.fetch, port, hostname: "127.0.0.1" });
    try {
      const cached = new JwtVerifier({ jwksUrl: `http://127.0.0.1:${port}/jwks`, issuer: "auth-service", audience: "titanium" });
      expect((await cached.verify(oldToken)).ok).toBe(true);
      served = { keys: [] }; // not refetched: B is already known
      expect((await cached.verify(newToken)).ok).toBe(true);

      served = keys.jwks;
      const remote = new JwtVerifier({ jwksUrl: `http://127.0.0.1:${port}/jwks`, issuer: "auth-service", audience: "titanium", jwksCooldownMs: 0 });
      expect((await remote.verify(oldToken)).ok).toBe(true);
      expect((await remote.verify(newToken)).ok).toBe(false);
      served = rotated.jwks;
      expect((await remote.verify(newToken)).ok).toBe(true);
      expect((await remote.verify(oldToken)).ok).toBe(true);
    } finally {
      server.close();
    }
  });
});

describe("a signing key the configuration no longer lists", () => {
  it("stops the service instead of signing with it; one the list still holds (not yet synced) signs on, publishing every listed key", async () => {
    const leaked = pemPair();
    const next = pemPair();
    // After a leak, config lists only the new key, but the Secret may still hold the leaked one.
    await expect(loadSigningKeys(leaked.privateKey, [next.publicKey])).rejects.toThrow(SigningKeyNotConfigured);
    await expect(loadSigningKeys(leaked.privateKey, [next.publicKey])).rejects.toThrow(/JWT_PRIVATE_KEY \(kid [\w-]+\) is not one of JWT_PUBLIC_KEYS/);
    // An ordinary rotation: the list is [next, previous]; a pod still holding the previous key signs with it
    // and publishes next too, so tokens from pods that hold next verify here.
    const stale = await loadSigningKeys(leaked.privateKey, [next.publicKey, leaked.publicKey]);
    const fresh = await loadSigningKeys(next.privateKey, [next.publicKey, leaked.publicKey]);
    expect(new Set(stale.jwks.keys.map((k) => k.kid))).toEqual(new Set(fresh.jwks.keys.map((k) => k.kid)));
    expect(stale.jwks.keys).toHaveLength(2);
    // Without a list (the local platform), the key alone is published.
    expect((await loadSigningKeys(next.privateKey)).jwks.keys).toHaveLength(1);
  });
});

describe("configuration", () => {
  it("requires an ECDSA P-256 PKCS#8 key, accepts escaped newlines, and names the variable otherwise", async () => {
    const base = { DATABASE_URL: "postgres://x@h/titanium" };
    const escaped = keyA.privateKey.replace(/\n/g, "\\n");
    expect(loadEnv(envSchema, { ...base, JWT_PRIVATE_KEY: escaped }).JWT_PRIVATE_KEY).toContain("BEGIN PRIVATE KEY");
    const rsa = generateKeyPairSync("rsa", { modulusLength: 2048, privateKeyEncoding: { type: "pkcs8", format: "pem" }, publicKeyEncoding: { type: "spki", format: "pem" } });
    expect(() => loadEnv(envSchema, { ...base })).toThrow(/JWT_PRIVATE_KEY/);
    expect(() => loadEnv(envSchema, { ...base, JWT_PRIVATE_KEY: rsa.privateKey })).toThrow(/JWT_PRIVATE_KEY/);
    expect(() => loadEnv(envSchema, { ...base, JWT_PRIVATE_KEY: keyA.privateKey, JWT_PUBLIC_KEYS: rsa.publicKey })).toThrow(/JWT_PUBLIC_KEYS/);
    const env = loadEnv(envSchema, { ...base, JWT_PRIVATE_KEY: keyA.privateKey, JWT_PUBLIC_KEYS: pemPair().publicKey + "\n" + pemPair().publicKey });
    expect(env.JWT_PUBLIC_KEYS).toHaveLength(2);
    expect(env.ACCESS_TOKEN_TTL_SECONDS).toBe(900);
    // Text that is no public key block stops the service instead of publishing fewer keys than meant.
    const good = pemPair().publicKey;
    for (const bad of ["garbage", good.replace("BEGIN PUBLIC KEY", "BEGIN PUBLC KEY"), good.replace(/PUBLIC KEY/g, "RSA PUBLIC KEY"), `${good}\nleftover`]) {
      expect(() => loadEnv(envSchema, { ...base, JWT_PRIVATE_KEY: keyA.privateKey, JWT_PUBLIC_KEYS: bad }), bad.slice(0, 40)).toThrow(/JWT_PUBLIC_KEYS: expected only PEM public key blocks/);
    }
  });
});

describe("the OpenAPI contract", () => {
  it("every JSON answer these tests received matches the schema /openapi.json documents for its status", () => {
    expect(contract.violations).toEqual([]);
    expect(contract.checked).toBeGreaterThan(20);
  });
});
