import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Metrics, createRedis, type Redis } from "@titanium/kit";
import { contractChecked, type ContractReport, memoryLogger, startTestPostgres, startTestRedis, testTokens, type TestPostgres, type TestRedis } from "@titanium/kit/testing";
import { PROFILE_GENERATION_KEY, createApp, profileKey } from "./app.js";
import { ARGON2_PARAMS, hashPool, needsRehash } from "./passwords.js";

let pg: TestPostgres;
let db: TestPostgres["sql"];
let rd: TestRedis;
let redis: Redis;
let tokens: Awaited<ReturnType<typeof testTokens>>;
let app: ReturnType<typeof createApp>;
let contract: ContractReport;
let metrics: Metrics;
const log = memoryLogger("user-service");

beforeAll(async () => {
  // The app hashes in this process: at normal priority (a pod's nice 19 starves behind the other test worker
  // on a loaded machine). The pool's own priority is tested below on pools of its own.
  hashPool.configure({ size: 1, nice: 0 });
  [pg, rd, tokens] = await Promise.all([startTestPostgres(), startTestRedis(), testTokens()]);
  // The service's own role, as in production: what the app does must be within its grants (kit roles.ts).
  db = pg.as("user_service");
  redis = createRedis({ url: rd.url });
  await new Promise((r) => redis.once("ready", r));
  metrics = new Metrics("user-service", { processMetrics: false });
  ({ app, report: contract } = contractChecked(createApp({ sql: db, redis, verifier: tokens.verifier, logger: log.logger, metrics })));
});
afterAll(async () => {
  redis?.disconnect();
  await Promise.all([pg?.stop(), rd?.stop()]);
});

const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  app.request(path, { method: "POST", body: JSON.stringify(body), headers: { "content-type": "application/json", ...headers } });
const patch = (path: string, body: unknown, token: string) =>
  app.request(path, { method: "PATCH", body: JSON.stringify(body), headers: { "content-type": "application/json", authorization: `Bearer ${token}` } });
type User = { id: number; username: string; email: string };
const PW = "Str0ng!pass";

async function signup(username: string, email = `${username}@example.com`, password = PW): Promise<User> {
  const res = await post("/users", { username, email, password });
  expect(res.status).toBe(201);
  return (await res.json()) as User;
}

/** Runs `requests` one after another into a lock on the user's row, then lets them all through in that order. */
async function queuedOnRow(userId: number, requests: (() => Response | Promise<Response>)[]): Promise<Response[]> {
  const waiting = async () =>
    (await pg.sql<{ n: number }[]>`select count(distinct pid)::int as n from pg_locks where not granted`)[0]!.n;
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  let locked!: () => void;
  const isLocked = new Promise<void>((r) => (locked = r));
  const holder = pg.sql.begin(async (tx) => {
    await tx`select id from users where id = ${userId} for update`;
    locked();
    await held;
  });
  await isLocked;
  const answers: Promise<Response>[] = [];
  for (const [i, send] of requests.entries()) {
    answers.push(Promise.resolve(send()));
    // The next one is sent once this one waits for the row (it read the row and, for a password, hashed).
    const deadline = Date.now() + 10_000;
    while ((await waiting()) < i + 1) {
      if (Date.now() > deadline) throw new Error(`request ${i} never reached the row lock`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }
  release();
  await holder;
  return Promise.all(answers);
}

describe("signup", () => {
  it("creates the account (201 {id, username, email}) and stores an Argon2id hash, never the password", async () => {
    const user = await signup("alice");
    expect(user).toMatchObject({ username: "alice", email: "alice@example.com" });
    expect(Object.keys(user).sort()).toEqual(["email", "id", "username"]);
    const [row] = await pg.sql`select password_hash from users where id = ${user.id}`;
    expect(row!.password_hash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    expect(needsRehash(row!.password_hash)).toBe(false);
    expect(ARGON2_PARAMS.memoryCost).toBeGreaterThanOrEqual(19_456);
    expect(JSON.stringify(log.lines())).not.toContain(PW);
    expect(await metrics.registry.getSingleMetricAsString("titanium_signups_total")).toContain("} 1");
  });

  it("accepts internationalised addresses, as the original's EmailStr did", async () => {
    for (const [username, email] of [
      ["umlaut_local", "ü@example.com"],
      ["idn_domain", "x@bücher.de"],
    ]) {
      const res = await post("/users", { username, email, password: PW });
      expect(res.status, email).toBe(201);
      expect(await res.json()).toMatchObject({ username, email });
    }
  });

  it("takes and refuses addresses as the original's email-validator did, at signup and in PATCH /users/me", async () => {
    // RFC 5322 atext that z.email() refused; a label ending with a hyphen that it took.
    const res = await post("/users", { username: "atext_signup", email: "a=b@example.com", password: PW });
    expect(res.status).toBe(201);
    expect(await res.json()).toMatchObject({ username: "atext_signup", email: "a=b@example.com" });
    const bad = await post("/users", { username: "hyphen_signup", email: "a@a-.com", password: PW });
    expect(bad.status).toBe(422);
    expect(await bad.json()).toMatchObject({ status_code: 422, field: "email" });
    expect((await app.request("/users/hyphen_signup")).status).toBe(404);

    const user = await signup("atext_patch");
    const token = await tokens.sign(user);
    const refused = await patch("/users/me", { email: "a@a-.com" }, token);
    expect(refused.status).toBe(422);
    expect(await refused.json()).toMatchObject({ status_code: 422, field: "email" });
    const changed = await patch("/users/me", { email: "a=b@example.com" }, token);
    expect(changed.status).toBe(200);
    expect(await changed.json()).toMatchObject({ email: "a=b@example.com" });
    const [row] = await pg.sql<{ email: string }[]>`select email from users where id = ${user.id}`;
    expect(row!.email).toBe("a=b@example.com");
  });

  it("refuses a duplicate username, case-insensitively, with 400 'Username already exists'", async () => {
    await signup("bob");
    const res = await post("/users", { username: "BOB", email: "b2@example.com", password: PW });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: "BadRequest", message: "Username already exists", status_code: 400 });
  });

  it.each([
    [{ username: "ab" }, "username"],
    [{ username: "has space" }, "username"],
    [{ username: "Admin" }, "username"],
    [{ username: "localhost" }, "username"],
    [{ email: "not-an-email" }, "email"],
    [{ email: "a@b" }, "email"],
    [{ email: "x@localhost" }, "email"],
    [{ email: "a b@example.com" }, "email"],
    [{ email: "\u200b@example.com" }, "email"],
    [{ email: "a@b..example.com" }, "email"],
    [{ email: "Name <a@example.com>" }, "email"],
    [{ username: "a".repeat(51) }, "username"],
    [{ password: `Aa1!${"x".repeat(197)}` }, "password"],
    // The original's reserved names, in any case.
    ...["admin", "ROOT", "System", "api", "auth", "user", "blog", "www", "mail", "ftp", "LocalHost"].map((username) => [{ username }, "username"] as [Record<string, string>, string]),
    // `/api/users/health` is the gateway's health route: an account of that name would have no reachable profile.
    [{ username: "health" }, "username"],
    [{ username: "HEALTH" }, "username"],
    [{ password: "short1!" }, "password"],
    [{ password: "alllowercase1!" }, "password"],
    [{ password: "ALLUPPERCASE1!" }, "password"],
    [{ password: "NoDigits!!" }, "password"],
    [{ password: "NoSpecial123" }, "password"],
  ])("rejects %j with 422 naming %s", async (override, field) => {
    const res = await post("/users", { username: "valid_name", email: "v@example.com", password: PW, ...override });
    expect(res.status).toBe(422);
    expect(await res.json()).toMatchObject({ status_code: 422, field });
  });
});

describe("profiles", () => {
  it("shows a public profile without hash or email to others, with the email to its owner", async () => {
    const carol = await signup("carol");
    const dave = await signup("dave");
    const anon = await app.request("/users/carol");
    expect(anon.status).toBe(200);
    const body = (await anon.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ id: carol.id, username: "carol" });
    expect(body.email).toBeUndefined();
    expect(body.password_hash).toBeUndefined();
    const other = await app.request("/users/carol", { headers: { authorization: `Bearer ${await tokens.sign(dave)}` } });
    expect(((await other.json()) as Record<string, unknown>).email).toBeUndefined();
    const own = await app.request("/users/carol", { headers: { authorization: `Bearer ${await tokens.sign(carol)}` } });
    expect(await own.json()).toMatchObject({ email: "carol@example.com" });
    expect((await app.request("/users/nobody")).status).toBe(404);
    // `me` is the token's account: a token whose id and name disagree (never signed by the auth-service, but a
    // key is a key) gets neither account, as PATCH /users/me (by id) would not either.
    const mixed = await app.request("/users/me", { headers: { authorization: `Bearer ${await tokens.sign({ id: dave.id, username: "carol" })}` } });
    expect(mixed.status).toBe(404);
  });

  it("caches profiles in Redis and invalidates on change", async () => {
    const erin = await signup("erin");
    await app.request("/users/erin");
    const key = profileKey("erin", (await redis.get(PROFILE_GENERATION_KEY)) ?? "0");
    expect(JSON.parse((await redis.get(key))!)).toMatchObject({ id: erin.id, email: "erin@example.com" });
    const token = await tokens.sign(erin);
    const res = await patch("/users/me", { email: "new@example.com" }, token);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ email: "new@example.com" });
    // A reader that loaded the old row before the commit writes it back under the generation it read
    // first: that generation is retired, so the stale copy is never served.
    await redis.set(key, JSON.stringify({ id: erin.id, username: "erin", email: "erin@example.com", created_at: "2026-01-01T00:00:00.000Z" }));
    const me = await app.request("/users/me", { headers: { authorization: `Bearer ${token}` } });
    expect(await me.json()).toMatchObject({ id: erin.id, username: "erin", email: "new@example.com" });
  });

  it("changes the password only with the current one, and revokes the user's refresh tokens", async () => {
    const frank = await signup("frank");
    await pg.sql`insert into refresh_tokens (token_hash, family_id, user_id, username, expires_at)
      values (${Buffer.from("x".repeat(32))}, gen_random_uuid(), ${frank.id}, 'frank', now() + interval '1 day')`;
    const token = await tokens.sign(frank);
    const missing = await patch("/users/me", { password: "N3w!password" }, token);
    expect(missing.status).toBe(422);
    expect(await missing.json()).toMatchObject({ field: "current_password" });
    const wrong = await patch("/users/me", { password: "N3w!password", current_password: "wrong" }, token);
    expect(wrong.status).toBe(403);
    const ok = await patch("/users/me", { password: "N3w!password", current_password: PW }, token);
    expect(ok.status).toBe(200);
    const [rt] = await pg.sql`select revoked_at from refresh_tokens where user_id = ${frank.id}`;
    expect(rt!.revoked_at).not.toBeNull();
    const check = await post("/internal/verify-credentials", { username: "frank", password: "N3w!password" });
    expect(check.status).toBe(200);
    // A new password is a new version (the auth-service opens no session for a check of the old one).
    expect(await check.json()).toMatchObject({ password_version: 1 });
  });

  it("applies concurrent changes of email and password both (a PATCH writes only what it changes)", async () => {
    const gale = await signup("gale");
    const token = await tokens.sign(gale);
    const [pw, mail] = await queuedOnRow(gale.id, [
      () => patch("/users/me", { password: "N3w!password", current_password: PW }, token),
      () => patch("/users/me", { email: "gale2@example.com" }, token),
    ]);
    expect([pw!.status, mail!.status]).toEqual([200, 200]);
    // Before, the email PATCH wrote back the hash it had read: the password change was silently undone.
    expect((await post("/internal/verify-credentials", { username: "gale", password: "N3w!password" })).status).toBe(200);
    expect((await post("/internal/verify-credentials", { username: "gale", password: PW })).status).toBe(401);
    const me = await app.request("/users/me", { headers: { authorization: `Bearer ${token}` } });
    expect(await me.json()).toMatchObject({ email: "gale2@example.com" });
  });

  it("refuses (409) a password change whose current password was changed by another request meanwhile", async () => {
    const hugo = await signup("hugo");
    const token = await tokens.sign(hugo);
    // Both checked the same current password; only the first may replace it.
    const [first, second] = await queuedOnRow(hugo.id, [
      () => patch("/users/me", { password: "F1rst!password", current_password: PW }, token),
      () => patch("/users/me", { password: "S3cond!password", current_password: PW }, token),
    ]);
    expect(first!.status).toBe(200);
    expect(second!.status).toBe(409);
    expect(await second!.json()).toMatchObject({ status_code: 409, field: "current_password" });
    expect((await post("/internal/verify-credentials", { username: "hugo", password: "F1rst!password" })).status).toBe(200);
    expect((await post("/internal/verify-credentials", { username: "hugo", password: "S3cond!password" })).status).toBe(401);
  });

  it("refuses /users/me without a valid token", async () => {
    expect((await app.request("/users/me")).status).toBe(401);
    const expired = await tokens.sign({ id: 1, username: "alice" }, -60);
    const res = await app.request("/users/me", { headers: { authorization: `Bearer ${expired}` } });
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ message: "Token has expired" });
  });
});

describe("internal credential check", () => {
  it("answers {id, username, email} and the checked password's version for good credentials, 401 otherwise", async () => {
    const gina = await signup("gina");
    const ok = await post("/internal/verify-credentials", { username: "GINA", password: PW });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ ...gina, password_version: 0 });
    expect((await post("/internal/verify-credentials", { username: "gina", password: "Wrong!pass1" })).status).toBe(401);
    expect((await post("/internal/verify-credentials", { username: "ghost", password: PW })).status).toBe(401);
  });

  it("matches login names by ASCII case only: a name with another character (ALİCE_1) is no account, whatever PostgreSQL's lower() says", async () => {
    const alice = await signup("alice_1");
    await signup("kate_k");
    // The premise, on this database (C.UTF-8, as the cluster's): lower() maps these onto the accounts.
    const [premise] = await pg.sql`select lower('ALİCE_1') = 'alice_1' as dotted, lower(${"\u212AATE_\u212A"}) = 'kate_k' as kelvin`;
    expect(premise).toEqual({ dotted: true, kelvin: true });
    for (const spelling of ["alice_1", "ALICE_1", "Alice_1"]) {
      const ok = await post("/internal/verify-credentials", { username: spelling, password: PW });
      expect(ok.status, spelling).toBe(200);
      expect(await ok.json()).toEqual({ ...alice, password_version: 0 });
    }
    expect((await post("/internal/verify-credentials", { username: "KATE_K", password: PW })).status).toBe(200);
    // The gateway keys these apart from the accounts (kit foldUsername), so they must not log in as them:
    // the answer of an unknown user (same hashing work too: the unknown-user path).
    for (const spelling of ["ALİCE_1", "alİce_1", "\u212AATE_\u212A"]) {
      const res = await post("/internal/verify-credentials", { username: spelling, password: PW });
      expect(res.status, spelling).toBe(401);
      const body = (await res.json()) as Record<string, unknown>;
      expect({ ...body, request_id: undefined }, spelling).toEqual({ error: "Unauthorized", message: "Invalid credentials", status_code: 401, request_id: undefined });
    }
    // Profiles by the same rule.
    expect((await app.request("/users/ALICE_1")).status).toBe(200);
    expect((await app.request(`/users/${encodeURIComponent("ALİCE_1")}`)).status).toBe(404);
    // A name longer than signup allows is simply not found (the original's 404, not a 422).
    for (const name of ["a".repeat(51), "alice_1".repeat(40)]) {
      const res = await app.request(`/users/${name}`);
      expect(res.status, name).toBe(404);
      expect(await res.json(), name).toMatchObject({ status_code: 404, message: "User not found" });
    }
  });

  it("refuses a NUL in the username (PostgreSQL text cannot hold it) with 422 naming the field, not a 500", async () => {
    const check = await post("/internal/verify-credentials", { username: "gi\u0000na", password: PW });
    expect(check.status).toBe(422);
    expect(await check.json()).toMatchObject({ field: "username" });
    const profile = await app.request("/users/gi%00na");
    expect(profile.status).toBe(422);
    expect(await profile.json()).toMatchObject({ field: "username" });
    // An unpaired surrogate (JSON can carry one; UTF-8 cannot) is refused the same way by the kit's pgText().
    const surrogate = await post("/internal/verify-credentials", { username: "gi\ud800na", password: PW });
    expect(surrogate.status).toBe(422);
    expect(await surrogate.json()).toMatchObject({ field: "username", message: expect.stringContaining("unpaired surrogates") });
  });

  it("refuses requests that came through the gateway", async () => {
    await signup("hank");
    const via = await post("/internal/verify-credentials", { username: "hank", password: PW }, { "x-titanium-via": "api-gateway" });
    expect(via.status).toBe(403);
    const xff = await post("/internal/verify-credentials", { username: "hank", password: PW }, { "x-forwarded-for": "1.2.3.4" });
    expect(xff.status).toBe(403);
  });

  it("rehashes a hash made with old parameters after a successful check", async () => {
    const { hash } = await import("@node-rs/argon2");
    const old = await hash(PW, { memoryCost: 8192, timeCost: 1, parallelism: 1 });
    const ivy = await signup("ivy");
    await pg.sql`update users set password_hash = ${old} where id = ${ivy.id}`;
    expect(old).toMatch(/^\$argon2id\$v=19\$m=8192,t=1,p=1\$/);
    expect(needsRehash(old)).toBe(true);
    expect((await post("/internal/verify-credentials", { username: "ivy", password: PW })).status).toBe(200);
    const [row] = await pg.sql`select password_hash from users where id = ${ivy.id}`;
    // OWASP's setting (ADR 0061), read from the stored string itself, and still the same password.
    expect(row!.password_hash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    expect(needsRehash(row!.password_hash)).toBe(false);
    expect((await post("/internal/verify-credentials", { username: "ivy", password: PW })).status).toBe(200);
  });

  it("does not put back, by rehashing, a password changed while the check ran", async () => {
    const { hash } = await import("@node-rs/argon2");
    const old = await hash(PW, { memoryCost: 8192, timeCost: 1, parallelism: 1 });
    const jill = await signup("jill");
    await pg.sql`update users set password_hash = ${old} where id = ${jill.id}`;
    const token = await tokens.sign(jill);
    const [changed, check] = await queuedOnRow(jill.id, [
      () => patch("/users/me", { password: "N3w!password", current_password: PW }, token),
      () => post("/internal/verify-credentials", { username: "jill", password: PW }),
    ]);
    expect([changed!.status, check!.status]).toEqual([200, 200]);
    expect((await post("/internal/verify-credentials", { username: "jill", password: PW })).status).toBe(401);
    expect((await post("/internal/verify-credentials", { username: "jill", password: "N3w!password" })).status).toBe(200);
  });

  // The original's legacy Werkzeug PBKDF2 hashes (its users rows are copied over), made outside this code:
  //   python3 -c 'from werkzeug.security import generate_password_hash as g; print(g("Str0ng!pass", method="pbkdf2:sha256:260000"))'
  //   python3 -c 'import hashlib; pw, s = "Pässwörd!1ü", "sälz"; [print(f"pbkdf2:{h}:1000${s}$" + hashlib.pbkdf2_hmac(h, pw.encode(), s.encode(), 1000).hex()) for h in ("sha512", "sha1")]'
  const WERKZEUG_SHA256 = "pbkdf2:sha256:260000$rQfBWNdpuuyUw64W$c0cd37d70b5b76048e92ed03cb9e1008c8a6e694ff8a2fbe969159e65ada6cdc";
  const LEGACY: [string, string][] = [
    [WERKZEUG_SHA256, PW],
    [
      "pbkdf2:sha512:1000$sälz$2e26b8fe4d77c88bae00e7434b757fa7160f5e1b11a3d6eafcb3e4a0b925e8c32a3c8709082b95db3297a08e43e0a0223b353b2e1dd3b3fd674c83961c057666",
      "Pässwörd!1ü",
    ],
    ["pbkdf2:sha1:1000$sälz$20d43d71be6befd42ee6bbc4612bff804f1c9ff7", "Pässwörd!1ü"],
  ];

  it("accepts a legacy Werkzeug PBKDF2 hash and migrates it to Argon2id on the first successful check", async () => {
    for (const [i, [legacy, password]] of LEGACY.entries()) {
      const user = await signup(`werk_${i}`);
      await pg.sql`update users set password_hash = ${legacy} where id = ${user.id}`;
      expect(needsRehash(legacy)).toBe(true);
      const check = (pw: string) => post("/internal/verify-credentials", { username: user.username, password: pw });
      expect((await check(`${password}x`)).status).toBe(401);
      expect((await pg.sql`select password_hash from users where id = ${user.id}`)[0]!.password_hash).toBe(legacy);
      const ok = await check(password);
      expect(ok.status, legacy).toBe(200);
      expect(await ok.json()).toEqual({ id: user.id, username: user.username, email: user.email, password_version: 0 });
      const [row] = await pg.sql`select password_hash from users where id = ${user.id}`;
      expect(row!.password_hash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
      expect((await check(password)).status).toBe(200);
      expect((await check(`${password}x`)).status).toBe(401);
    }
  });

  it("never matches a malformed or unguessable pbkdf2 hash, and answers it 401, not 500", async () => {
    const [, salt, hex] = WERKZEUG_SHA256.split("$") as [string, string, string];
    const user = await signup("werk_bad");
    for (const bad of [
      `pbkdf2:sha256$${salt}$${hex}`, // no iterations: Werkzeug's default of its day, which we do not guess
      `pbkdf2:sha256:260000$${salt}$${hex.slice(2)}`, // digest too short
      `pbkdf2:sha256:260000$${salt}$${hex.toUpperCase()}`, // Werkzeug compares lower-case hex
      `pbkdf2:sha256:260000$${salt}`,
      `pbkdf2:sha256:0$${salt}$${hex}`,
      `pbkdf2:sha256:99999999999$${salt}$${hex}`,
      `pbkdf2:sha256:26e4$${salt}$${hex}`,
      `pbkdf2:md5:260000$${salt}$${hex}`,
      `pbkdf2:sha256:260000$${salt}$${hex}$`,
      "pbkdf2:",
    ]) {
      await pg.sql`update users set password_hash = ${bad} where id = ${user.id}`;
      const res = await post("/internal/verify-credentials", { username: "werk_bad", password: PW });
      expect(res.status, bad).toBe(401);
      expect((await pg.sql`select password_hash from users where id = ${user.id}`)[0]!.password_hash).toBe(bad);
    }
  });
});

describe("operations", () => {
  it("keeps the original /health and /stats shapes, and stays ready when Redis is down", async () => {
    expect(await (await app.request("/health")).json()).toEqual({ status: "healthy" });
    expect(await (await app.request("/stats")).json()).toMatchObject({
      user_service: { service_status: "online", database: { status: "healthy" }, cache: { status: "healthy" } },
    });
    const noRedis = createApp({ sql: db, verifier: tokens.verifier, logger: log.logger, metrics: new Metrics("user-service", { processMetrics: false }) });
    const ready = await noRedis.request("/readyz");
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ checks: { postgres: "ok", redis: "degraded" } });
    expect((await noRedis.request("/users/alice")).status).toBe(200);
  });

  it("documents its routes in OpenAPI, the profile's email as optional and the owner's only", async () => {
    type Schema = { properties: Record<string, { description?: string }>; required?: string[] };
    const doc = (await (await app.request("/openapi.json")).json()) as { paths: Record<string, unknown>; components: { schemas: Record<string, Schema> } };
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(["/users", "/users/me", "/users/{username}", "/internal/verify-credentials"]));
    const profile = doc.components.schemas.PublicProfile!;
    expect(profile.required).toEqual(expect.arrayContaining(["id", "username", "created_at"]));
    expect(profile.required).not.toContain("email");
    expect(profile.properties.email?.description).toMatch(/only .*this user/);
  });
});

describe("password hashing", () => {
  it("runs at most the configured number of hashes at once, in workers at the lowest CPU priority", async () => {
    const { HashPool, ARGON2_PARAMS } = await import("./passwords.js");
    const { readdirSync, readFileSync } = await import("node:fs");
    const pool = new HashPool(2);
    const niceOf = (tid: string | number) => Number(readFileSync(`/proc/self/task/${tid}/stat`, "utf8").split(") ")[1]!.split(" ")[16]);
    const niceOfThreads = () => readdirSync("/proc/self/task").map(niceOf);
    const before = niceOfThreads().filter((n) => n === 19).length;
    // Three jobs for two workers (at nice 19 they crawl when the machine is busy: few, and no time bound).
    const hashes = await Promise.all(Array.from({ length: 3 }, (_, i) => pool.run({ op: "hash", password: `Pw!${i}aaaaA1`, options: ARGON2_PARAMS })));
    expect(hashes.every((h) => typeof h === "string" && h.startsWith("$argon2id$"))).toBe(true);
    expect(await pool.run({ op: "verify", hash: hashes[0] as string, password: "Pw!0aaaaA1" })).toBe(true);
    expect(await pool.run({ op: "verify", hash: hashes[0] as string, password: "wrong" })).toBe(false);
    // Two workers, both at nice 19; the main thread keeps its priority.
    expect(niceOfThreads().filter((n) => n === 19).length - before).toBe(2);
    // The main thread is the one whose id is the process id (not the first listed: thread ids wrap around).
    expect(niceOf(process.pid)).toBe(0);
    await pool.close();
    // PASSWORD_HASH_NICE sets another level (the local platform's 10).
    const local = new HashPool(1);
    local.configure({ size: 1, nice: 10 });
    const tens = niceOfThreads().filter((n) => n === 10).length;
    await local.run({ op: "verify", hash: hashes[1] as string, password: "Pw!1aaaaA1" });
    expect(niceOfThreads().filter((n) => n === 10).length - tens).toBe(1);
    await local.close();
  });

  it("drops a check still waiting in line when its client goes away, and finishes one already running", async () => {
    await signup("queued");
    // The process's one hashing worker, kept busy by a deliberately slow hash.
    const slow = hashPool.run({ op: "hash", password: "Occupy!1aA", options: { ...ARGON2_PARAMS, timeCost: 40 } });
    const before = { ...hashPool.counts };
    const gone = new AbortController();
    const check = app.request(
      new Request("http://user-service/internal/verify-credentials", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ username: "queued", password: PW }),
        signal: gone.signal,
      }),
    );
    // Abort only once the check waits in line behind the slow hash (the path under test, not "already gone").
    for (let i = 0; i < 200 && hashPool.waiting === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(hashPool.waiting).toBe(1);
    gone.abort();
    expect(hashPool.waiting).toBe(0);
    // Answered at once (499, for logs and metrics only), long before the slow hash ends, and never hashed.
    expect((await check).status).toBe(499);
    expect(hashPool.counts).toEqual({ started: before.started, dropped: before.dropped + 1 });
    expect(await slow).toMatch(/^\$argon2id\$/);
    // A client that stays gets its answer as before.
    expect((await post("/internal/verify-credentials", { username: "queued", password: PW })).status).toBe(200);
    expect(hashPool.counts.started).toBe(before.started + 1);
  });
});

describe("the OpenAPI contract", () => {
  it("every JSON answer these tests received matches the schema /openapi.json documents for its status", () => {
    expect(contract.violations).toEqual([]);
    expect(contract.checked).toBeGreaterThan(20);
  });
});
