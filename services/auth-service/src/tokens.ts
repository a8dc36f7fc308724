import { createHash, randomBytes, randomUUID } from "node:crypto";
import { SignJWT } from "jose";
import { JWT_ALG, lockUserSessions, type Sql } from "@titanium/kit";
import type { TransactionSql } from "postgres";
import type { SigningKeys } from "./keys.js";

export interface TokenSettings {
  issuer: string;
  audience: string;
  accessTtlSeconds: number;
  refreshTtlSeconds: number;
  /** A session's (refresh-token family's) whole life, counted from its login; no rotation extends it. */
  sessionMaxSeconds: number;
}

export interface Identity {
  id: number;
  username: string;
}

/** What login and refresh answer (login adds the original's `status`). */
export interface TokenPair {
  token: string;
  refresh_token: string;
  expires_in: number;
  token_type: "Bearer";
}

/** Only a SHA-256 of a refresh token is stored: a database leak does not leak sessions. */
const digest = (token: string) => createHash("sha256").update(token).digest();

export class TokenService {
  constructor(
    private readonly sql: Sql,
    private readonly keys: SigningKeys,
    private readonly settings: TokenSettings,
  ) {}

  /** A short-lived ES256 access token: the original's claims plus `sub`, `aud`, and a `kid` header. */
  signAccess(user: Identity): Promise<string> {
    return new SignJWT({ user_id: user.id, username: user.username })
      .setProtectedHeader({ alg: JWT_ALG, kid: this.keys.kid, typ: "JWT" })
      .setSubject(String(user.id))
      .setIssuer(this.settings.issuer)
      .setAudience(this.settings.audience)
      .setIssuedAt()
      .setExpirationTime(`${this.settings.accessTtlSeconds}s`)
      .setJti(randomUUID())
      .sign(this.keys.privateKey);
  }

  /**
   * A new session: a new refresh-token family. With the `passwordVersion` the login's credential check
   * passed against, only while that is still the account's (undefined otherwise: the password was changed
   * since). Checked and inserted under the user's sessions lock, which a password change takes to end every
   * session: a change that committed first is seen here; one that commits after ends this session too.
   * Without it, a login whose check passed with the old password while the change committed kept its session.
   */
  async issue(user: Identity, passwordVersion?: number): Promise<TokenPair | undefined> {
    const refresh = await this.sql.begin(async (tx) => {
      if (passwordVersion !== undefined) {
        await lockUserSessions(tx, user.id);
        const [account] = await tx<{ password_version: number }[]>`select password_version from users where id = ${user.id}`;
        if (account?.password_version !== passwordVersion) return undefined;
      }
      return this.storeRefresh(tx, user, randomUUID(), new Date(Date.now() + this.settings.sessionMaxSeconds * 1000));
    });
    return refresh === undefined ? undefined : this.pair(user, refresh);
  }

  /**
   * Rotate: the presented token is spent and a new one of the same family returned. Presenting a spent
   * token again means it was copied: the whole family is revoked. Returns why it failed otherwise.
   */
  async rotate(presented: string): Promise<TokenPair | { error: "invalid" | "reused" }> {
    type Outcome = { error: "invalid" | "reused" } | { user: Identity; refresh: string };
    const outcome: Outcome = await this.sql.begin(async (tx): Promise<Outcome> => {
      // Whose session it is, first without a lock: the user's sessions lock comes before the token's row
      // lock, in the order a password change takes them, so the two never deadlock.
      const [owner] = await tx<{ user_id: number }[]>`select user_id from refresh_tokens where token_hash = ${digest(presented)}`;
      if (!owner) return { error: "invalid" };
      await lockUserSessions(tx, owner.user_id);
      const [row] = await tx<
        { id: string; family_id: string; user_id: number; username: string; expires_at: Date; session_expires_at: Date; rotated_at: Date | null; revoked_at: Date | null }[]
      >`
        select id, family_id, user_id, username, expires_at, session_expires_at, rotated_at, revoked_at
        from refresh_tokens where token_hash = ${digest(presented)} for update`;
      if (!row || row.revoked_at) return { error: "invalid" };
      // A spent token is reuse whether or not its own lifetime is over: its successors live on (each
      // rotation restarts the clock), so a copy presented late still means the family was copied.
      if (row.rotated_at) {
        await tx`update refresh_tokens set revoked_at = now() where family_id = ${row.family_id} and revoked_at is null`;
        return { error: "reused" };
      }
      if (row.expires_at.getTime() <= Date.now()) return { error: "invalid" };
      await tx`update refresh_tokens set rotated_at = now() where id = ${row.id}`;
      const user = { id: row.user_id, username: row.username };
      // The family's earliest deadline: a token an older auth-service rotated during a rolling update
      // carries the column's default (30 days from that rotation), never the session's own.
      const [family] = await tx<{ deadline: Date }[]>`select min(session_expires_at) as deadline from refresh_tokens where family_id = ${row.family_id}`;
      return { user, refresh: await this.storeRefresh(tx, user, row.family_id, family?.deadline ?? row.session_expires_at) };
    });
    if ("error" in outcome) return outcome;
    return this.pair(outcome.user, outcome.refresh);
  }

  /**
   * Logout: revoke the family of the presented token (unknown tokens are a no-op). Under the user's
   * sessions lock, as a rotation: a refresh rotating this family right now commits its new token first and
   * the revoking statement (a later snapshot) sees it. Without the lock the UPDATE waited for the row the
   * refresh held, then revoked only the rows of its own older snapshot: the refresh's new token survived
   * the logout.
   */
  async revoke(presented: string): Promise<void> {
    await this.sql.begin(async (tx) => {
      const [owner] = await tx<{ user_id: number; family_id: string }[]>`select user_id, family_id from refresh_tokens where token_hash = ${digest(presented)}`;
      if (!owner) return;
      await lockUserSessions(tx, owner.user_id);
      await tx`update refresh_tokens set revoked_at = now() where family_id = ${owner.family_id} and revoked_at is null`;
    });
  }

  /** Sessions that can still be refreshed. */
  async activeSessions(): Promise<number> {
    const [row] = await this.sql<{ n: number }[]>`
      select count(*)::int as n from refresh_tokens where revoked_at is null and rotated_at is null and expires_at > now()`;
    return row?.n ?? 0;
  }

  /**
   * Housekeeping: drop the rows of sessions that ended more than a day ago, i.e. families whose every token
   * expired more than a day ago (each rotation's successor expires last, never past the session's deadline;
   * a family revoked by logout or reuse stays until then too). A spent token of a family that lives on is kept, whatever its own expiry: presenting it again
   * must still be recognised as reuse and revoke the family. Purging it by its own `expires_at` turned a
   * replayed stolen token into a plain "invalid", and its family lived on.
   */
  async purgeExpired(): Promise<number> {
    const rows = await this.sql`
      delete from refresh_tokens spent
      where spent.expires_at < now() - interval '1 day'
        and not exists (
          select 1 from refresh_tokens kin
          where kin.family_id = spent.family_id and kin.expires_at >= now() - interval '1 day')
      returning id`;
    return rows.length;
  }

  /** A token of the family, valid for the refresh lifetime but never past the session's deadline. */
  private async storeRefresh(sql: Sql | TransactionSql, user: Identity, familyId: string, sessionEnds: Date): Promise<string> {
    const token = randomBytes(32).toString("base64url");
    const expires = new Date(Math.min(Date.now() + this.settings.refreshTtlSeconds * 1000, sessionEnds.getTime()));
    await sql`insert into refresh_tokens (token_hash, family_id, user_id, username, expires_at, session_expires_at)
      values (${digest(token)}, ${familyId}, ${user.id}, ${user.username}, ${expires}, ${sessionEnds})`;
    return token;
  }

  private async pair(user: Identity, refresh: string): Promise<TokenPair> {
    return {
      token: await this.signAccess(user),
      refresh_token: refresh,
      expires_in: this.settings.accessTtlSeconds,
      token_type: "Bearer",
    };
  }
}
