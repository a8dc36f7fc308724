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

// ── duplicated tabs ──
// A browser's "Duplicate tab" copies sessionStorage, refresh token included. Two tabs presenting the same
// rotating refresh token look like a stolen one to the auth-service (reuse detection): it revokes the whole
// session and BOTH tabs are logged out. So each tab's copy of the session carries a random holder id (kept
// next to the session), and on start a tab asks the others on a BroadcastChannel whether one of them is a
// live holder of the same id. If one is, this tab is the copy: it keeps the access token (valid until it
// expires) but drops the refresh token, so only the original tab ever refreshes; when its access token
// expires the copy asks the reader to sign in again (in that tab only). It then takes an id of its own.

/** Name of the channel the tabs of this origin talk on. */
export const SESSION_CHANNEL = "titanium-session";

/** How long a starting tab waits for another tab to say it holds the same session (a live tab answers in ms). */
export const HOLDER_CHECK_MS = 300;

/** The subset of BroadcastChannel the guard needs (a real one in the browser and in Node's tests). */
export interface ChannelLike {
  postMessage(message: unknown): void;
  addEventListener(type: "message", listener: (ev: Event) => void): void;
}

type HolderMessage = { type: "claim" | "taken"; holder: string };

function isHolderMessage(v: unknown): v is HolderMessage {
  const o = v as HolderMessage | null;
  return typeof o === "object" && o !== null && (o.type === "claim" || o.type === "taken") && typeof o.holder === "string";
}

function newHolderId(): string {
  return crypto.randomUUID();
}

/**
 * Starts the duplicate-tab guard for `session` (see above). Returns a promise that settles once this tab
 * knows whether it is a copy: the API client waits for it before it spends a refresh token.
 */
export function guardDuplicateTabs(session: Session, channel: ChannelLike, store: KeyValueStore, waitMs = HOLDER_CHECK_MS): Promise<void> {
  const key = `${SESSION_KEY}.holder`;
  const holder = (): string | null => {
    try {
      return store.getItem(key);
    } catch {
      return null;
    }
  };
  const setHolder = (): string => {
    const id = newHolderId();
    try {
      store.setItem(key, id);
    } catch {
      // storage disabled: no session to protect either
    }
    return id;
  };
  const mine = holder() ?? setHolder();
  let checking = true;
  let settle = (): void => {};
  const checked = new Promise<void>((resolve) => {
    settle = () => {
      checking = false;
      resolve();
    };
  });
  channel.addEventListener("message", (ev) => {
    const msg = (ev as MessageEvent).data as unknown;
    if (!isHolderMessage(msg) || msg.holder !== holder()) return;
    if (msg.type === "claim") {
      // Another tab starts with our id: it is a copy of this one. Tell it (it gives up the refresh token).
      channel.postMessage({ type: "taken", holder: msg.holder } satisfies HolderMessage);
    } else if (checking) {
      // A live tab holds this session: this tab is the copy. Keep the access token, drop the refresh token.
      const s = session.get();
      if (s?.refreshToken) session.set({ ...s, refreshToken: null });
      setHolder();
      settle();
    }
  });
  channel.postMessage({ type: "claim", holder: mine } satisfies HolderMessage);
  setTimeout(settle, waitMs); // no answer: no other live tab holds this session
  return checked;
}
