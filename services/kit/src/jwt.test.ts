import { SignJWT, calculateJwkThumbprint, createLocalJWKSet, exportJWK, generateKeyPair } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { JwtVerifier } from "./jwt.js";

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
