import type { MiddlewareHandler } from "hono";
import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from "jose";
import type { AppEnv, AuthUser } from "./app.js";
import { HttpError } from "./errors.js";
import { requestHeader } from "./request-id.js";

/** The only signature algorithm accepted anywhere (`alg: none`, HS256 with a public key, … are refused). */
export const JWT_ALG = "ES256";

export interface JwtVerifierOptions {
  /** The auth-service's JWKS (fetched on first use and on an unknown `kid`, then cached). */
  jwksUrl?: string;
  /** Or a key set directly (tests, the auth-service itself). */
  keys?: JWTVerifyGetKey;
  issuer: string;
  audience: string;
  /** Minimum time between two JWKS fetches (an unknown `kid` triggers one); jose's default. */
  jwksCooldownMs?: number;
  /** Seconds of clock skew tolerated. */
  clockToleranceSeconds?: number;
}

export type VerifyResult =
  | { ok: true; payload: JWTPayload; user: AuthUser }
  | { ok: false; reason: "expired" | "invalid" };

/** Verifies access tokens locally: signature (ES256, known `kid`), issuer, audience, expiry. */
export class JwtVerifier {
  private readonly keys: JWTVerifyGetKey;

  constructor(private readonly opts: JwtVerifierOptions) {
    if (opts.keys) this.keys = opts.keys;
    else if (opts.jwksUrl)
      this.keys = createRemoteJWKSet(new URL(opts.jwksUrl), {
        cacheMaxAge: 10 * 60_000,
        cooldownDuration: opts.jwksCooldownMs ?? 30_000,
        timeoutDuration: 2_000,
      });
    else throw new Error("JwtVerifier needs jwksUrl or keys");
  }

  async verify(token: string): Promise<VerifyResult> {
    try {
      const { payload } = await jwtVerify(token, this.keys, {
        algorithms: [JWT_ALG],
        issuer: this.opts.issuer,
        audience: this.opts.audience,
        clockTolerance: this.opts.clockToleranceSeconds ?? 5,
        requiredClaims: ["exp", "sub", "iat"],
      });
      // jose checks `iat` only with maxTokenAge: a token issued in the future is not valid yet (a forged or
      // skewed clock would otherwise stretch its lifetime), as `nbf` in the future is not.
      const tolerance = this.opts.clockToleranceSeconds ?? 5;
      if (typeof payload.iat !== "number" || payload.iat > Date.now() / 1000 + tolerance) return { ok: false, reason: "invalid" };
      const id = Number(payload.sub);
      const username = payload.username;
      if (!Number.isInteger(id) || typeof username !== "string") return { ok: false, reason: "invalid" };
      return { ok: true, payload, user: { id, username, claims: payload } };
    } catch (err) {
      if (err instanceof errors.JWTExpired) return { ok: false, reason: "expired" };
      return { ok: false, reason: "invalid" };
    }
  }
}

/** The token of an `Authorization: Bearer <token>` header, or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  const m = /^Bearer\s+(\S+)$/i.exec(header ?? "");
  return m?.[1];
}

/** Route middleware: 401 unless a valid access token is presented; sets `c.var.user`. */
export function requireUser(verifier: JwtVerifier): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const token = bearerToken(requestHeader(c, "authorization"));
    if (!token) throw new HttpError(401, "Authorization header missing or invalid", {}, { "WWW-Authenticate": "Bearer" });
    const result = await verifier.verify(token);
    if (!result.ok)
      throw new HttpError(401, result.reason === "expired" ? "Token has expired" : "Invalid or expired token", {}, {
        "WWW-Authenticate": 'Bearer error="invalid_token"',
      });
    c.set("user", result.user);
    await next();
  };
}
