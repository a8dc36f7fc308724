import { createPrivateKey, createPublicKey, type KeyObject } from "node:crypto";
import { z } from "zod";
import { ACCESS_TOKEN_TTL_MAX_SECONDS, DEFAULT_JWT_AUDIENCE, DEFAULT_JWT_ISSUER, baseEnv, withPostgres, serviceUrls } from "@titanium/kit";

/** PEM from an env var: real newlines, or `\n` escapes as some secret stores deliver them. */
const pem = (s: string) => s.replace(/\\n/g, "\n").trim();

const isP256 = (k: KeyObject) => k.asymmetricKeyType === "ec" && k.asymmetricKeyDetails?.namedCurve === "prime256v1";

/** The signing key: an ECDSA P-256 private key in PEM PKCS#8 (from Secret Manager in the cluster). */
const privateKeyPem = z
  .string({ error: "required: an ECDSA P-256 private key in PEM PKCS#8" })
  .transform(pem)
  .refine((s) => {
    try {
      return s.includes("BEGIN PRIVATE KEY") && isP256(createPrivateKey(s));
    } catch {
      return false;
    }
  }, "expected an ECDSA P-256 private key in PEM PKCS#8 (-----BEGIN PRIVATE KEY-----)");

/**
 * The public keys of every configured key (PEM SPKI blocks, concatenated; the cluster sets all of config
 * `auth.signingKeys`, the signing key first): published in the JWKS beside the service's own key, the next
 * key before it signs and the previous one while its tokens live out. Set, it must hold the service's own
 * key (keys.ts). See docs/runbooks/jwt-key-rotation.md.
 */
const PUBLIC_KEY_BLOCK = /-----BEGIN PUBLIC KEY-----[\s\S]+?-----END PUBLIC KEY-----/g;
const publicKeys = z
  .string()
  .default("")
  // Anything else in the value (a damaged header, an RSA PUBLIC KEY block, stray text) would be dropped
  // silently, and the tokens of the key it meant would be refused after a rotation.
  .refine((s) => pem(s).replace(PUBLIC_KEY_BLOCK, "").trim() === "", "expected only PEM public key blocks (-----BEGIN PUBLIC KEY-----), separated by newlines; found other text")
  .transform((s) => pem(s).match(PUBLIC_KEY_BLOCK) ?? [])
  .refine((blocks) => {
    try {
      return blocks.every((b) => isP256(createPublicKey(b)));
    } catch {
      return false;
    }
  }, "expected PEM public keys (ECDSA P-256)");

/** Every variable the auth-service reads (documented in services/README.md). */
export const envSchema = withPostgres({
  ...baseEnv,
  JWT_PRIVATE_KEY: privateKeyPem,
  JWT_PUBLIC_KEYS: publicKeys,
  JWT_ISSUER: z.string().min(1).default(DEFAULT_JWT_ISSUER),
  JWT_AUDIENCE: z.string().min(1).default(DEFAULT_JWT_AUDIENCE),
  /** Access-token lifetime (short: they cannot be revoked). */
  ACCESS_TOKEN_TTL_SECONDS: z.coerce.number().int().min(60).max(ACCESS_TOKEN_TTL_MAX_SECONDS).default(900),
  /** Refresh-token lifetime (each use rotates it and restarts this clock). */
  REFRESH_TOKEN_TTL_SECONDS: z.coerce.number().int().min(300).max(90 * 86400).default(14 * 86400),
  /** A session's whole life from its login: refreshing never extends it past this (then log in again). */
  REFRESH_SESSION_MAX_SECONDS: z.coerce.number().int().min(300).max(365 * 86400).default(30 * 86400),
  USER_SERVICE_URL: serviceUrls("user-service"),
  /** Timeout for the call to the user-service's credential check. */
  UPSTREAM_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(3000),
});
export type AuthServiceEnv = z.output<typeof envSchema>;
