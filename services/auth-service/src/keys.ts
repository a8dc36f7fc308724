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

export class SigningKeyNotConfigured extends Error {
  constructor(
    readonly kid: string,
    readonly configured: string[],
  ) {
    super(
      `JWT_PRIVATE_KEY (kid ${kid}) is not one of JWT_PUBLIC_KEYS (kids ${configured.join(", ")}): the key's Secret is older than the ` +
        "configuration (External Secrets syncs it within its refresh interval; resync it: docs/runbooks/jwt-key-rotation.md)",
    );
    this.name = "SigningKeyNotConfigured";
  }
}

async function publicJwk(key: KeyObject): Promise<JWK & { kid: string }> {
  const jwk = key.export({ format: "jwk" }) as JWK;
  const pub: JWK = { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y };
  return { ...pub, kid: await calculateJwkThumbprint(pub), alg: JWT_ALG, use: "sig" };
}

/**
 * The service's key and the configured public keys (`JWT_PUBLIC_KEYS`). A configured list must hold the
 * service's own key: the private key comes from a Secret External Secrets syncs up to an hour after the
 * Deployment rolled, and a key the stack no longer lists (one rotated out because it leaked) must stop the
 * service instead of signing on. A key the list holds but does not sign with first (the previous one, not
 * synced yet) signs on, and stays valid: it is published.
 */
export async function loadSigningKeys(privatePem: string, publicPems: string[] = []): Promise<SigningKeys> {
  const privateKey = createPrivateKey(privatePem);
  const current = await publicJwk(createPublicKey(privateKey));
  const configured = await Promise.all(publicPems.map((p) => publicJwk(createPublicKey(p))));
  if (configured.length > 0 && !configured.some((k) => k.kid === current.kid)) {
    throw new SigningKeyNotConfigured(current.kid, configured.map((k) => k.kid));
  }
  const keys = [current, ...configured.filter((k) => k.kid !== current.kid)];
  const jwks: JSONWebKeySet = { keys };
  return { privateKey, kid: current.kid, jwks, keySet: createLocalJWKSet(jwks) };
}
