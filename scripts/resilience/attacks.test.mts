/**
 * Token attacks and injection against the running platform, through the gateway. Tokens are crafted with
 * the platform's own signing key (its data dir's `jwt-private-key.pem`), so each attack gets only the
 * attacked property wrong.
 */
import { createPrivateKey, createPublicKey } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { SignJWT, UnsecuredJWT, base64url, calculateJwkThumbprint, exportJWK, generateKeyPair } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, isEnvelope, newUser, PASSWORD, startTestPlatform, type Reply, type TestPlatform } from "./harness.mjs";
import { recordScenario, renderReliability, unmet } from "./report.mjs";

let p: TestPlatform;
let victim: { id: number; username: string; token: string; refresh: string };

beforeAll(async () => {
  // Limits scaled up: these scenarios are about authentication and input, not throttling (abuse.test.mts).
  p = await startTestPlatform({ env: { "api-gateway": { RATE_LIMIT_SCALE: "1000" } } });
  const u = await newUser(p.url, "victim");
  const me = await call(p.url, "GET", "/api/users/me", { token: u.token });
  victim = { id: (me.json as { id: number }).id, username: "victim", ...u };
}, 120_000);
afterAll(async () => {
  await p?.dispose();
  renderReliability();
});

const now = () => Math.floor(Date.now() / 1000);
const POST_BODY = { title: "t", content: "c", category_name: "attack" };
/** The three protected routes; each answer must be 401, and never 5xx. */
const protectedCalls = (token: string): Promise<[string, Reply]>[] => [
  call(p.url, "GET", "/api/users/me", { token }).then((r) => ["GET /api/users/me", r]),
  call(p.url, "POST", "/blog/api/posts", { token, body: POST_BODY }).then((r) => ["POST /blog/api/posts", r]),
  call(p.url, "GET", "/api/auth/verify", { token }).then((r) => ["GET /api/auth/verify", r]),
];

describe("token attacks", () => {
  it("refuses forged, expired, not-yet-valid, misdirected and tampered access tokens, and spent refresh tokens", async () => {
    const pem = readFileSync(join(p.dataDir, "jwt-private-key.pem"), "utf8");
    const key = createPrivateKey(pem);
    const publicPem = createPublicKey(key).export({ type: "spki", format: "pem" }).toString();
    const publicJwk = await exportJWK(createPublicKey(key));
    const kid = await calculateJwkThumbprint(publicJwk);
    const claims = { username: victim.username, user_id: victim.id };
    /** A token right in every way but what `edit` changes. */
    const good = (edit: (j: SignJWT) => SignJWT = (j) => j, header: Record<string, unknown> = {}, signKey: Parameters<SignJWT["sign"]>[0] = key) =>
      edit(
        new SignJWT(claims)
          .setProtectedHeader({ alg: "ES256", kid, typ: "JWT", ...header })
          .setSubject(String(victim.id))
          .setIssuer("auth-service")
          .setAudience("titanium")
          .setIssuedAt()
          .setExpirationTime(now() + 300),
      ).sign(signKey);
    const control = await good();
    const hs = (secret: string) => good((j) => j, { alg: "HS256" }, new TextEncoder().encode(secret));
    const other = await generateKeyPair("ES256");
    const tamper = (token: string) => {
      const [h, , s] = token.split(".");
      return `${h}.${base64url.encode(JSON.stringify({ ...claims, sub: "1", user_id: 1, username: "admin", iss: "auth-service", aud: "titanium", iat: now(), exp: now() + 300 }))}.${s}`;
    };
    const attacks: [string, string][] = [
      ["alg none", new UnsecuredJWT(claims).setSubject(String(victim.id)).setIssuer("auth-service").setAudience("titanium").setIssuedAt().setExpirationTime(now() + 300).encode()],
      ["alg none, signature kept", `${base64url.encode(JSON.stringify({ alg: "none", kid }))}.${control.split(".")[1]}.${control.split(".")[2]}`],
      ["HS256 keyed with the public key (PEM)", await hs(publicPem)],
      ["HS256 keyed with the public key (JWK)", await hs(JSON.stringify({ ...publicJwk, kid }))],
      ["HS256 keyed with the published JWKS", await hs((await call(p.url, "GET", "/.well-known/jwks.json")).text)],
      ["wrong kid, real key", await good((j) => j, { kid: "not-a-known-kid" })],
      ["known kid, another key", await good((j) => j, {}, other.privateKey)],
      ["expired", await good((j) => j.setIssuedAt(now() - 3600).setExpirationTime(now() - 60))],
      ["not yet valid (nbf in the future)", await good((j) => j.setNotBefore(now() + 3600))],
      ["issued in the future (iat)", await good((j) => j.setIssuedAt(now() + 3600).setExpirationTime(now() + 7200))],
      ["wrong issuer", await good((j) => j.setIssuer("evil-issuer"))],
      ["wrong audience", await good((j) => j.setAudience("other-service"))],
      ["tampered payload (another user)", tamper(control)],
      ["signature stripped", `${control.split(".")[0]}.${control.split(".")[1]}.`],
    ];
    // The control token must work, or the attacks prove nothing.
    const controls = await Promise.all(protectedCalls(control));
    const controlOk = controls.every(([, r]) => r.status === 200 || r.status === 201);

    const failures: string[] = [];
    let requests = 0;
    let fiveXx = 0;
    for (const [name, token] of attacks) {
      for (const [route, r] of await Promise.all(protectedCalls(token))) {
        requests++;
        if (r.status >= 500) fiveXx++;
        const shapeOk = route.endsWith("verify") ? (r.json as { status?: string })?.status === "failed" : isEnvelope(r.json, 401);
        if (r.status !== 401 || !shapeOk) failures.push(`${name} → ${route}: ${r.status} ${r.text.slice(0, 100)}`);
      }
    }

    // Refresh tokens: revoked by logout, reused after rotation (which revokes the family).
    const a = await newUser(p.url, "refresher_a");
    const logout = await call(p.url, "POST", "/api/auth/logout", { body: { refresh_token: a.refresh } });
    const afterLogout = await call(p.url, "POST", "/api/auth/refresh", { body: { refresh_token: a.refresh } });
    const b = await newUser(p.url, "refresher_b");
    const rotated = await call(p.url, "POST", "/api/auth/refresh", { body: { refresh_token: b.refresh } });
    const fresh = (rotated.json as { refresh_token?: string }).refresh_token ?? "";
    const reused = await call(p.url, "POST", "/api/auth/refresh", { body: { refresh_token: b.refresh } });
    const familyAfterReuse = await call(p.url, "POST", "/api/auth/refresh", { body: { refresh_token: fresh } });
    const refreshRequests = 5;
    const refreshOk =
      logout.status === 200 &&
      afterLogout.status === 401 &&
      rotated.status === 200 &&
      reused.status === 401 &&
      /reuse/i.test((reused.json as { message?: string }).message ?? "") &&
      familyAfterReuse.status === 401;

    const result = {
      id: "token-attacks",
      title: "Token attacks through the gateway",
      suite: "npm test" as const,
      injected:
        `${attacks.length} forged or invalid access tokens, each on GET /api/users/me, POST /blog/api/posts and GET /api/auth/verify (signed with the platform's real key so only the attacked property is wrong): ` +
        `${attacks.map(([n]) => n).join("; ")}. Refresh: a token revoked by logout, and a rotated token presented again (then the family's live token).`,
      measured: {
        "access-token requests": requests,
        "refused 401 with the expected body": requests - failures.length,
        "5xx": fiveXx,
        "control token accepted on all three routes": controlOk ? "yes" : "no",
        "refresh after logout": afterLogout.status,
        "reused rotated refresh token": reused.status,
        "family's live token after the reuse": familyAfterReuse.status,
        "refresh requests": refreshRequests,
      },
      criteria: [
        { text: "a valid token signed the same way is accepted (the attacks are meaningful)", met: controlOk },
        { text: "every attack is refused with 401 on every route (envelope; `/verify` its original `{status:\"failed\"}`)", met: failures.length === 0 },
        { text: "no 5xx", met: fiveXx === 0 },
        { text: "a revoked refresh token is refused; a reused one is refused and revokes its family", met: refreshOk },
      ],
    };
    recordScenario(result);
    expect(failures).toEqual([]);
    expect(unmet(result)).toEqual([]);
  });
});
