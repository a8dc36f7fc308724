import { SignJWT, calculateJwkThumbprint, createLocalJWKSet, exportJWK, generateKeyPair } from "jose";
import { once } from "node:events";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Hono } from "hono";
import { beforeAll, describe, expect, it } from "vitest";
import type { AppEnv } from "./app.js";
import { HttpError } from "./errors.js";
import { ACCESS_TOKEN_TTL_MAX_SECONDS, CachedKeySet, JWKS_MAX_AGE_MS, JWKS_MAX_STALE_MS, JwtVerifier, requireUser } from "./jwt.js";

let privateKey: Awaited<ReturnType<typeof generateKeyPair>>["privateKey"];
let kid: string;
let verifier: JwtVerifier;
const now = () => Math.floor(Date.now() / 1000);

beforeAll(async () => {
  const pair = await generateKeyPair("ES256");
  privateKey = pair.privateKey;
  const jwk = await exportJWK(pair.publicKey);
  kid = await calculateJwkThumbprint(jwk);
  verifier = new JwtVerifier({ keys: createLocalJWKSet({ keys: [{ ...jwk, kid, alg: "ES256" }] }), issuer: "auth-service", audience: "titanium" });
});

/** A token valid in every way except what `edit` changes. */
const token = (edit: (j: SignJWT) => SignJWT = (j) => j) =>
  edit(
    new SignJWT({ username: "alice", user_id: 1 })
      .setProtectedHeader({ alg: "ES256", kid })
      .setSubject("1")
      .setIssuer("auth-service")
      .setAudience("titanium")
      .setIssuedAt()
      .setExpirationTime(now() + 300),
  ).sign(privateKey);

describe("JwtVerifier: time claims", () => {
  it("accepts a token issued now, and one issued within the clock tolerance ahead", async () => {
    expect((await verifier.verify(await token())).ok).toBe(true);
    expect((await verifier.verify(await token((j) => j.setIssuedAt(now() + 3)))).ok).toBe(true);
  });

  it("refuses a token issued in the future (iat), not yet valid (nbf), or without iat", async () => {
    expect(await verifier.verify(await token((j) => j.setIssuedAt(now() + 3600)))).toEqual({ ok: false, reason: "invalid" });
    expect(await verifier.verify(await token((j) => j.setNotBefore(now() + 3600)))).toEqual({ ok: false, reason: "invalid" });
    const noIat = await new SignJWT({ username: "alice" })
      .setProtectedHeader({ alg: "ES256", kid })
      .setSubject("1")
      .setIssuer("auth-service")
      .setAudience("titanium")
      .setExpirationTime(now() + 300)
      .sign(privateKey);
    expect(await verifier.verify(noIat)).toEqual({ ok: false, reason: "invalid" });
  });

  it("reports expiry apart from other failures", async () => {
    expect(await verifier.verify(await token((j) => j.setIssuedAt(now() - 3600).setExpirationTime(now() - 60)))).toEqual({ ok: false, reason: "expired" });
  });
});

describe("CachedKeySet: the auth-service's JWKS over HTTP", () => {
  /** A JWKS endpoint that can be taken down, serving whichever keys the test publishes. */
  async function jwksServer() {
    const state = { up: true, keys: [] as object[], fetches: 0 };
    const server = createServer((_req, res) => {
      state.fetches++;
      if (!state.up) return void res.writeHead(503).end();
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ keys: state.keys }));
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`);
    return { state, url, close: () => new Promise((r) => server.close(r)) };
  }
  const signer = async () => {
    const pair = await generateKeyPair("ES256");
    const jwk = await exportJWK(pair.publicKey);
    const keyId = await calculateJwkThumbprint(jwk);
    const sign = () =>
      new SignJWT({ username: "alice" }).setProtectedHeader({ alg: "ES256", kid: keyId }).setSubject("1").setIssuer("auth-service").setAudience("titanium").setIssuedAt().setExpirationTime(now() + 300).sign(pair.privateKey);
    return { jwk: { ...jwk, kid: keyId, alg: "ES256", use: "sig" }, sign };
  };

  /** A key the auth-service publishes, a verifier on a key set with a settable clock, and a first token verified (one fetch). */
  const publishedKeyVerifier = async (jwks: Awaited<ReturnType<typeof jwksServer>>) => {
    const key = await signer();
    jwks.state.keys = [key.jwk];
    const clock = { ms: 1_000_000 };
    const keys = new CachedKeySet(jwks.url, { maxAgeMs: JWKS_MAX_AGE_MS, maxStaleMs: JWKS_MAX_STALE_MS, cooldownMs: 30_000, timeoutMs: 2_000, now: () => clock.ms });
    const v = new JwtVerifier({ keys: keys.getKey, issuer: "auth-service", audience: "titanium" });
    expect((await v.verify(await key.sign())).ok).toBe(true);
    return { key, v, clock };
  };

  it("stops trusting the keys it has once every token issued before the outage has expired (a key removed meanwhile, a leaked one, verifies no longer)", async () => {
    const jwks = await jwksServer();
    try {
      const { key, v, clock } = await publishedKeyVerifier(jwks);
      jwks.state.up = false;
      // Up to the longest token lifetime past the last refresh due: still verified from the set it has.
      clock.ms += JWKS_MAX_AGE_MS + ACCESS_TOKEN_TTL_MAX_SECONDS * 1000 - 1_000;
      expect((await v.verify(await key.sign())).ok).toBe(true);
      // Beyond it (the outage outlasts every token the auth-service issued before it): unavailable.
      clock.ms += 2_000;
      expect(await v.verify(await key.sign())).toEqual({ ok: false, reason: "unavailable" });
      clock.ms += 31_000; // within the cooldown it would not even ask
      expect(await v.verify(await key.sign())).toEqual({ ok: false, reason: "unavailable" });
      // Back, and no longer publishing that key: refused as invalid; the key it publishes verifies.
      const next = await signer();
      jwks.state.up = true;
      jwks.state.keys = [next.jwk];
      clock.ms += 31_000;
      expect(await v.verify(await key.sign())).toEqual({ ok: false, reason: "invalid" });
      expect((await v.verify(await next.sign())).ok).toBe(true);
    } finally {
      await jwks.close();
    }
  });

  it("keeps verifying with the keys it has while the auth-service is down, past their age, and says unavailable when it has none", async () => {
    const jwks = await jwksServer();
    try {
      const { key, v, clock } = await publishedKeyVerifier(jwks);
      expect(jwks.state.fetches).toBe(1);
      // Eleven minutes on, the auth-service down: the refresh fails, the known key still verifies.
      jwks.state.up = false;
      clock.ms += 11 * 60_000;
      expect((await v.verify(await key.sign())).ok).toBe(true);
      expect(jwks.state.fetches).toBe(2);
      // A token from a key it never saw (rotated in during the outage): unavailable, not invalid.
      const rotated = await signer();
      clock.ms += 60_000;
      expect(await v.verify(await rotated.sign())).toEqual({ ok: false, reason: "unavailable" });
      // Back up: the unknown kid fetches again (outside the cooldown) and the new key is accepted.
      jwks.state.up = true;
      jwks.state.keys = [key.jwk, rotated.jwk];
      clock.ms += 60_000;
      expect((await v.verify(await rotated.sign())).ok).toBe(true);
      // A key the auth-service does not publish, just after a good fetch: invalid, and no fetch storm.
      const stranger = await signer();
      const fetches = jwks.state.fetches;
      expect(await v.verify(await stranger.sign())).toEqual({ ok: false, reason: "invalid" });
      expect(jwks.state.fetches).toBe(fetches);
      // A verifier that never had a key set, the auth-service down: unavailable.
      jwks.state.up = false;
      let coldClock = 5_000_000;
      const cold = new JwtVerifier({ keys: new CachedKeySet(jwks.url, { maxAgeMs: JWKS_MAX_AGE_MS, maxStaleMs: JWKS_MAX_STALE_MS, cooldownMs: 30_000, timeoutMs: 2_000, now: () => coldClock }).getKey, issuer: "auth-service", audience: "titanium" });
      const before = jwks.state.fetches;
      expect(await cold.verify(await key.sign())).toEqual({ ok: false, reason: "unavailable" });
      // Right after, it answers from the failure it has, without asking again (no fetch per request).
      for (let i = 0; i < 5; i++) expect(await cold.verify(await key.sign())).toEqual({ ok: false, reason: "unavailable" });
      expect(jwks.state.fetches).toBe(before + 1);
      // After the cooldown, and the auth-service back, it fetches and verifies.
      jwks.state.up = true;
      coldClock += 31_000;
      expect((await cold.verify(await key.sign())).ok).toBe(true);
    } finally {
      await jwks.close();
    }
  });

  it("a verifier that never had a key set retries soon (backing off), not after the whole cooldown: a pod started during a blip verifies once the auth-service is back", async () => {
    const jwks = await jwksServer();
    try {
      const key = await signer();
      jwks.state.keys = [key.jwk];
      jwks.state.up = false;
      // The pods' own verifier (real clock, 30 s cooldown), started while the auth-service is away.
      const v = new JwtVerifier({ jwksUrl: jwks.url.href, issuer: "auth-service", audience: "titanium" });
      const token = await key.sign();
      expect(await v.verify(token)).toEqual({ ok: false, reason: "unavailable" });
      // A burst of requests meanwhile: answered from the failure, with a few backing-off retries (at about 250 and
      // 750 ms), not a fetch each. A second long, so a stalled machine still sees the first retry.
      const burstEnds = Date.now() + 1_000;
      let requests = 0;
      while (Date.now() < burstEnds) {
        expect(await v.verify(token)).toEqual({ ok: false, reason: "unavailable" });
        requests++;
        await new Promise((r) => setTimeout(r, 10));
      }
      expect(requests).toBeGreaterThan(10);
      expect(jwks.state.fetches).toBeGreaterThanOrEqual(2);
      expect(jwks.state.fetches).toBeLessThanOrEqual(4);
      // The auth-service is back: tokens verify within a couple of seconds (the cooldown is 30 s).
      jwks.state.up = true;
      const back = Date.now();
      let result = await v.verify(token);
      while (!result.ok && Date.now() - back < 5_000) {
        await new Promise((r) => setTimeout(r, 25));
        result = await v.verify(token);
      }
      expect(result.ok).toBe(true);
      expect(Date.now() - back).toBeLessThan(2_500);
    } finally {
      await jwks.close();
    }
  });

  it("lets tokens of a new kid that arrive while its fetch is in flight wait for it, instead of refusing them", async () => {
    const jwks = await jwksServer();
    try {
      const { key, v, clock } = await publishedKeyVerifier(jwks);
      // The next key starts signing (an emergency rotation, or a verifier that missed the publication):
      // the first of its tokens makes the set refetch, and the others that arrive meanwhile are just as valid.
      const rotated = await signer();
      jwks.state.keys = [key.jwk, rotated.jwk];
      clock.ms += 60_000;
      const tokens = await Promise.all([1, 2, 3].map(() => rotated.sign()));
      expect(await Promise.all(tokens.map((t) => v.verify(t)))).toEqual(tokens.map(() => expect.objectContaining({ ok: true })));
      expect(jwks.state.fetches).toBe(2);
      // The same while a refresh for age is in flight: a new kid waits for it rather than failing on the old set.
      const third = await signer();
      jwks.state.keys = [key.jwk, rotated.jwk, third.jwk];
      clock.ms += 11 * 60_000;
      const [old, fresh] = await Promise.all([v.verify(await key.sign()), v.verify(await third.sign())]);
      expect([old.ok, fresh.ok]).toEqual([true, true]);
      expect(jwks.state.fetches).toBe(3);
      // A failed fetch in flight: the tokens that waited for it learn that nothing is known (unavailable).
      const fourth = await signer();
      jwks.state.up = false;
      clock.ms += 60_000;
      const failed = await Promise.all([1, 2].map(async () => v.verify(await fourth.sign())));
      expect(failed).toEqual([{ ok: false, reason: "unavailable" }, { ok: false, reason: "unavailable" }]);
      expect(jwks.state.fetches).toBe(4);
    } finally {
      await jwks.close();
    }
  });

  it("answers 502 \"Auth service not reachable\" (the original's answer) through requireUser when no key can be had", async () => {
    const jwks = await jwksServer();
    try {
      jwks.state.up = false;
      const key = await signer();
      const v = new JwtVerifier({ jwksUrl: jwks.url.href, issuer: "auth-service", audience: "titanium" });
      const app = new Hono<AppEnv>();
      app.onError((err, c) => c.json({ message: err.message }, (err as HttpError).status as 502));
      app.get("/me", requireUser(v), (c) => c.json({ ok: true }));
      const res = await app.request("/me", { headers: { authorization: `Bearer ${await key.sign()}` } });
      expect([res.status, ((await res.json()) as { message: string }).message]).toEqual([502, "Auth service not reachable"]);
    } finally {
      await jwks.close();
    }
  });
});
