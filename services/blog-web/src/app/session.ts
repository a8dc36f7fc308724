// The signed-in session: tokens and the username they belong to, kept in sessionStorage (per tab, gone when
// the tab closes, as the original kept its token). DOM-free so it is unit-tested in Node.

/** The subset of the Web Storage API the session needs (sessionStorage in the browser, a Map in tests). */
export interface KeyValueStore {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export interface SessionData {
  /** Access token (JWT) sent as `Authorization: Bearer`. */
  token: string;
  /** Rotating refresh token, or null when the server issued none. */
  refreshToken: string | null;
  /** Epoch ms when the access token expires, or null when unknown. */
  expiresAt: number | null;
  /** The signed-in user's name (authorship checks in the UI are cosmetic: the API decides). */
  username: string;
}

export const SESSION_KEY = "titanium.session";

function isSessionData(v: unknown): v is SessionData {
  if (typeof v !== "object" || v === null) return false;
  const o = v as Record<string, unknown>;
  return (
    typeof o.token === "string" &&
    o.token.length > 0 &&
    typeof o.username === "string" &&
    (o.refreshToken === null || typeof o.refreshToken === "string") &&
    (o.expiresAt === null || typeof o.expiresAt === "number")
  );
}

export class Session {
  private listeners = new Set<(s: SessionData | null) => void>();

  constructor(
    private readonly store: KeyValueStore,
    private readonly key = SESSION_KEY,
  ) {}

  get(): SessionData | null {
    let raw: string | null;
    try {
      raw = this.store.getItem(this.key);
    } catch {
      return null; // storage disabled: behave as signed out
    }
    if (!raw) return null;
    try {
      const parsed: unknown = JSON.parse(raw);
      return isSessionData(parsed) ? parsed : null;
    } catch {
      return null;
    }
  }

  set(data: SessionData): void {
    this.store.setItem(this.key, JSON.stringify(data));
    this.emit(data);
  }

  clear(): void {
    const had = this.get() !== null;
    this.store.removeItem(this.key);
    if (had) this.emit(null);
  }

  /** Called with the new session (or null) whenever it changes; returns an unsubscribe function. */
  subscribe(listener: (s: SessionData | null) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(s: SessionData | null): void {
    for (const l of this.listeners) l(s);
  }
}
