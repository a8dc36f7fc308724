import type { MiddlewareHandler } from "hono";
import { createLocalJWKSet, errors, jwtVerify, type JSONWebKeySet, type JWTPayload, type JWTVerifyGetKey } from "jose";
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
  /** `unavailable`: the token's key could not be had (the auth-service unreachable), nothing is known about the token. */
  | { ok: false; reason: "expired" | "invalid" | "unavailable" };

/** How long a verifier uses the JWKS before it asks again (the key rotation runbook's wait). */
export const JWKS_MAX_AGE_MS = 10 * 60_000;
/** The longest an access token may live (the auth-service's ACCESS_TOKEN_TTL_SECONDS). */
export const ACCESS_TOKEN_TTL_MAX_SECONDS = 3600;
/**
 * How long it keeps using that set while the auth-service cannot be asked: until every token issued before
 * the outage has expired, so an outage signs nobody out early; bounded, so a key removed from the JWKS (a
 * leaked one) stops verifying within this time whatever happens.
 */
export const JWKS_MAX_STALE_MS = JWKS_MAX_AGE_MS + ACCESS_TOKEN_TTL_MAX_SECONDS * 1000;

/** A verifier that never had a key set retries this soon after its first failed fetch (doubling up to the cooldown). */
export const JWKS_COLD_RETRY_MS = 250;

/** The auth-service's key set could not be fetched (no answer, an error status, not a key set). */
export class KeysUnavailable extends Error {}

/**
 * The auth-service's JWKS, fetched on first use, refreshed when older than `maxAgeMs` or when a token
 * names an unknown `kid` (at most once per `cooldownMs`), and kept when a refresh fails, up to `maxStaleMs`:
 * a token signed by a key already known stays verifiable through an auth-service outage (jose's remote set
 * fails every verification once its cache is stale and the fetch fails, signing everyone out after ten
 * minutes), but not beyond the longest an access token lives. Until a first fetch succeeds, a failed one is
 * retried after `coldRetryMs`, doubling up to `cooldownMs`: a pod started while the auth-service was briefly
 * away refused every token for the whole cooldown, long after the auth-service was back.
 */
export class CachedKeySet {
  private local: JWTVerifyGetKey | undefined;
  private fetchedAt = -Infinity;
  private attemptedAt = -Infinity;
  private inflight: Promise<void> | undefined;
  /** Why the last fetch failed, until one succeeds. */
  private lastFailure: KeysUnavailable | undefined;
  /** Without a key set: how long after the last failed fetch ended the next one is allowed (0 before any failure). */
  private coldWaitMs = 0;
  private failedAt = -Infinity;

  constructor(
    private readonly url: URL,
    private readonly opts: { maxAgeMs: number; maxStaleMs: number; cooldownMs: number; timeoutMs: number; coldRetryMs?: number; now?: () => number },
  ) {}

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }

  private reload(): Promise<void> {
    this.inflight ??= (async () => {
      this.attemptedAt = this.now();
      let set: JSONWebKeySet;
      try {
        const res = await fetch(this.url, { signal: AbortSignal.timeout(this.opts.timeoutMs), headers: { accept: "application/json" } });
        if (!res.ok) throw new Error(`status ${res.status}`);
        set = (await res.json()) as JSONWebKeySet;
        if (!Array.isArray(set?.keys)) throw new Error("not a key set");
      } catch (err) {
        if (!this.local) {
          const first = this.opts.coldRetryMs ?? JWKS_COLD_RETRY_MS;
          this.coldWaitMs = Math.min(this.coldWaitMs === 0 ? first : this.coldWaitMs * 2, this.opts.cooldownMs);
        }
        this.failedAt = this.now();
        throw (this.lastFailure = new KeysUnavailable(`JWKS ${this.url.href}: ${(err as Error).message}`));
      }
      this.local = createLocalJWKSet(set);
      this.fetchedAt = this.now();
      this.lastFailure = undefined;
    })().finally(() => (this.inflight = undefined));
    return this.inflight;
  }

  private coolingDown(): boolean {
    return this.now() - this.attemptedAt < this.opts.cooldownMs;
  }

  readonly getKey: JWTVerifyGetKey = async (header, token) => {
    if (!this.local) {
      // Never fetched yet: a failure answers at once for a short wait after it (an auth-service that hangs
      // would otherwise hold every request with a token for the fetch timeout), doubling with each failure,
      // not the whole cooldown: with no keys to fall back on, every token is refused until a fetch succeeds.
      if (this.lastFailure && this.now() - this.failedAt < this.coldWaitMs) throw this.lastFailure;
      await this.reload();
    } else if (this.now() - this.fetchedAt > this.opts.maxAgeMs) {
      if (!this.coolingDown()) await this.reload().catch(() => {}); // stale beats nothing...
      // ...up to maxStaleMs: past it, a key retired since the last fetch (a leaked one, removed from the
      // JWKS) would go on verifying for as long as the auth-service cannot be asked.
      if (this.now() - this.fetchedAt > this.opts.maxStaleMs) throw this.lastFailure ?? new KeysUnavailable(`JWKS ${this.url.href}: older than ${this.opts.maxStaleMs} ms`);
    }
    try {
      return await this.local!(header, token);
    } catch (err) {
      // A key the set does not know: perhaps rotated in since the last fetch. Unknown for sure only if the
      // last fetch succeeded; while the auth-service cannot be asked, nothing is known about the token.
      if (!(err instanceof errors.JWKSNoMatchingKey)) throw err;
      // A fetch already in flight (another token's unknown kid, or a refresh for age) may bring the key:
      // wait for it rather than refuse on the set it replaces (the cooldown started with that fetch, so
      // every other token of a newly signing key arriving meanwhile was refused as invalid).
      const pending = this.inflight;
      if (pending) {
        await pending.catch(() => {});
        if (this.lastFailure) throw this.lastFailure;
        return this.local!(header, token);
      }
      if (this.coolingDown()) throw this.lastFailure ?? err;
      await this.reload();
      return this.local!(header, token);
    }
  };
}

/** Verifies access tokens locally: signature (ES256, known `kid`), issuer, audience, expiry. */
export class JwtVerifier {
  private readonly keys: JWTVerifyGetKey;

  constructor(private readonly opts: JwtVerifierOptions) {
    if (opts.keys) this.keys = opts.keys;
    else if (opts.jwksUrl)
      this.keys = new CachedKeySet(new URL(opts.jwksUrl), { maxAgeMs: JWKS_MAX_AGE_MS, maxStaleMs: JWKS_MAX_STALE_MS, cooldownMs: opts.jwksCooldownMs ?? 30_000, timeoutMs: 2_000 }).getKey;
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
      if (err instanceof KeysUnavailable) return { ok: false, reason: "unavailable" };
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
    // The original's answer when it could not ask the auth-service: the client is not at fault.
    if (!result.ok && result.reason === "unavailable") throw new HttpError(502, "Auth service not reachable");
    if (!result.ok)
      throw new HttpError(401, result.reason === "expired" ? "Token has expired" : "Invalid or expired token", {}, {
        "WWW-Authenticate": 'Bearer error="invalid_token"',
      });
    c.set("user", result.user);
    await next();
  };
}
