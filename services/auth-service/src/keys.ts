import { createPrivateKey, createPublicKey, type KeyObject } from "node:crypto";
import { calculateJwkThumbprint, createLocalJWKSet, type JSONWebKeySet, type JWK, type JWTVerifyGetKey } from "jose";
import { JWT_ALG } from "@titanium/kit";

/** The signing key and the published key set. The `kid` is the RFC 7638 thumbprint: derived, never configured. */
export interface SigningKeys {
  privateKey: KeyObject;
  kid: string;
  /** Current public key first, then the extra (next or previous) ones. */
  jwks: JSONWebKeySet;
  /** Verifies tokens against `jwks` (the auth-service's own `/verify`). */
  keySet: JWTVerifyGetKey;
}

async function publicJwk(key: KeyObject): Promise<JWK & { kid: string }> {
  const jwk = key.export({ format: "jwk" }) as JWK;
  const pub: JWK = { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y };
  return { ...pub, kid: await calculateJwkThumbprint(pub), alg: JWT_ALG, use: "sig" };
}

export async function loadSigningKeys(privatePem: string, extraPublicPems: string[] = []): Promise<SigningKeys> {
  const privateKey = createPrivateKey(privatePem);
  const current = await publicJwk(createPublicKey(privateKey));
  const extra = await Promise.all(extraPublicPems.map((p) => publicJwk(createPublicKey(p))));
  const keys = [current, ...extra.filter((k) => k.kid !== current.kid)];
  const jwks: JSONWebKeySet = { keys };
  return { privateKey, kid: current.kid, jwks, keySet: createLocalJWKSet(jwks) };
}
