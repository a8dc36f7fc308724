// The public API as the UI uses it: the original's routes (blog under /blog/api, login under /api) plus the
// new ones (refresh, logout, signup, me, search, author filter, total count). Tokens are refreshed quietly:
// ahead of expiry, and once more when a request comes back 401. DOM-free so it is unit-tested in Node.
import type { Session, SessionData } from "./session.js";
import { fromStored, toStored } from "./text.js";

export interface CategoryRef {
  id: number;
  name: string;
  slug: string;
  color?: string;
}

export interface Category extends CategoryRef {
  color: string;
  post_count: number;
}

export interface PostSummary {
  id: number;
  title: string;
  author: string;
  created_at: string;
  excerpt: string;
  category: CategoryRef;
}

export interface Post {
  id: number;
  title: string;
  content: string;
  author: string;
  created_at: string;
  updated_at: string;
  category: CategoryRef;
}

export interface PostInput {
  title: string;
  content: string;
  category_name: string;
}

export interface ListQuery {
  offset: number;
  limit: number;
  category?: string;
  q?: string;
  author?: string;
}

export interface PostPage {
  posts: PostSummary[];
  /** Total matching posts from the `X-Total-Count` header; null when the server did not say. */
  total: number | null;
}

export interface SignupInput {
  username: string;
  email: string;
  password: string;
}

/** Paths of the public API, one place. */
export const API = {
  login: "/api/login",
  refresh: "/api/auth/refresh",
  logout: "/api/auth/logout",
  users: "/api/users",
  me: "/api/users/me",
  posts: "/blog/api/posts",
  categories: "/blog/api/categories",
} as const;

/** Header carrying the total of a paginated list (the body stays the original's array). */
export const TOTAL_HEADER = "X-Total-Count";

/** Refresh this long before the access token expires, so a request never races its expiry. */
export const REFRESH_MARGIN_MS = 30_000;

export type ApiErrorKind =
  | "network" // no response at all
  | "validation" // 400/422 naming fields
  | "unauthorized" // 401 without a session to refresh (wrong password, ...)
  | "session_expired" // 401 and the refresh failed: sign in again
  | "forbidden"
  | "not_found"
  | "conflict"
  | "rate_limited"
  | "unavailable" // 503 with Retry-After: refused for now (nothing done), try again in that many seconds
  | "in_doubt" // a write answered 5xx without Retry-After: it may or may not have been applied
  | "server";

export class ApiError extends Error {
  constructor(
    readonly kind: ApiErrorKind,
    readonly status: number,
    message: string,
    /** Field name → message, when the server named fields. */
    readonly fields: Record<string, string> = {},
    /** Seconds from `Retry-After` (a 429, a 503). */
    readonly retryAfter: number | null = null,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

export interface ApiClientOptions {
  fetch: FetchLike;
  session: Session;
  /** Called once when a signed-in user's session could not be refreshed. */
  onSessionExpired?: () => void;
  /** Clock, for tests. */
  now?: () => number;
  /**
   * Settles once this tab knows whether it is a duplicate of another (see guardDuplicateTabs in session.ts):
   * no refresh token is spent before, so a copied one is never presented.
   */
  sessionChecked?: Promise<void>;
}

interface RequestOptions {
  body?: unknown;
  query?: Record<string, string | number | undefined>;
  /** Send the access token (refreshing it first when it is about to expire). */
  auth?: boolean;
  /** A POST that changes nothing when done twice (a login): its 5xx is no write in doubt. */
  repeatable?: boolean;
}

interface TokenResponse {
  token: string;
  refresh_token?: string;
  expires_in?: number;
}

const WRITES = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/**
 * The kind of a refused request. A 5xx to a write without `Retry-After` (the gateway's and the services' 503
 * "it may or may not have been applied, check before retrying", a 504) is in doubt: the write may have been
 * done, so sending it again could do it twice (a second copy of a post). A 503 with `Retry-After` is a refusal
 * before anything was done (overload): it may be sent again after that long.
 */
export function kindFor(status: number, method = "GET", retryAfter: number | null = null): ApiErrorKind {
  if (status >= 500 && WRITES.has(method.toUpperCase()) && retryAfter === null) return "in_doubt";
  if (status === 503 && retryAfter !== null) return "unavailable";
  if (status === 400 || status === 422) return "validation";
  if (status === 401) return "unauthorized";
  if (status === 403) return "forbidden";
  if (status === 404) return "not_found";
  if (status === 409) return "conflict";
  if (status === 429) return "rate_limited";
  return "server";
}

function fieldName(path: unknown): string | null {
  if (typeof path === "string") return path.replace(/^body\./, "");
  if (Array.isArray(path)) {
    // FastAPI's `loc` starts with where the field was (`body`, `query`, `path`): the field is the rest.
    const parts = (["body", "query", "path"].includes(String(path[0])) ? path.slice(1) : path).map(String);
    return parts.length > 0 ? parts.join(".") : null;
  }
  return null;
}

/** Reads the error envelope (`{error, message, ...}`), tolerating the shapes a validation error may take. */
export function parseErrorBody(body: unknown): { message: string | null; fields: Record<string, string> } {
  const fields: Record<string, string> = {};
  if (typeof body !== "object" || body === null) return { message: null, fields };
  const o = body as Record<string, unknown>;
  const lists = [o.details, o.issues, o.errors, o.detail].filter(Array.isArray) as unknown[][];
  for (const list of lists) {
    for (const item of list) {
      if (typeof item !== "object" || item === null) continue;
      const i = item as Record<string, unknown>;
      const name = fieldName(i.field ?? i.path ?? i.loc);
      const msg = i.message ?? i.msg;
      if (!name || typeof msg !== "string") continue;
      // Every rule a field broke, so the user can fix them in one go (a password: too short, needs a digit, …).
      const seen = fields[name];
      if (seen === undefined) fields[name] = msg;
      else if (!seen.split("; ").includes(msg)) fields[name] = `${seen}; ${msg}`;
    }
  }
  if (typeof o.fields === "object" && o.fields !== null) {
    for (const [k, v] of Object.entries(o.fields as Record<string, unknown>)) {
      if (typeof v === "string") fields[k] = v;
      else if (Array.isArray(v) && typeof v[0] === "string") fields[k] = v[0];
    }
  }
  const message = [o.message, o.error, o.detail].find((m): m is string => typeof m === "string" && m.length > 0);
  if (typeof o.field === "string" && message && !(o.field in fields)) fields[o.field] = message;
  return { message: message ?? null, fields };
}

function categoryText<T extends CategoryRef>(c: T): T {
  return { ...c, name: fromStored(c.name) };
}

/** What the author wrote, escaped as the service stores it (see toStored): title and content. */
function storedInput<T extends Partial<PostInput>>(input: T): T {
  return {
    ...input,
    ...(input.title !== undefined && { title: toStored(input.title) }),
    ...(input.content !== undefined && { content: toStored(input.content) }),
  };
}

/**
 * A field's length as the service counts it (its limits apply to what it stores): the title and content
 * travel escaped (storedInput), so `R&D <notes>` counts 20, not 12; and in code points, as its zod `.max`
 * does, so an emoji counts 1, not the 2 UTF-16 units of `String.length`.
 */
export function storedLength(field: keyof PostInput, value: string): number {
  const { [field]: sent } = storedInput({ [field]: value });
  return codePoints(sent ?? value);
}

/** The length of `s` in code points (what the services' limits count). */
export const codePoints = (s: string): number => [...s].length;

/** Stored text as the author wrote it (see fromStored). */
function summaryText(p: PostSummary): PostSummary {
  return { ...p, title: fromStored(p.title), excerpt: fromStored(p.excerpt), category: categoryText(p.category) };
}

function postText(p: Post): Post {
  return { ...p, title: fromStored(p.title), content: fromStored(p.content), category: categoryText(p.category) };
}

export class ApiClient {
  private refreshing: Promise<boolean> | null = null;
  private readonly now: () => number;

  constructor(private readonly opts: ApiClientOptions) {
    this.now = opts.now ?? (() => Date.now());
  }

  // ── auth ──

  async login(username: string, password: string): Promise<SessionData> {
    const res = await this.send("POST", API.login, { body: { username, password }, repeatable: true });
    const tokens = (await res.json()) as TokenResponse;
    if (typeof tokens.token !== "string") throw new ApiError("server", res.status, "Malformed login response");
    const s = this.sessionFrom(tokens, username);
    // The canonical spelling of the name comes from the server (authorship is compared by exact name). The
    // session is stored only once it is complete, so the page never shows a half-signed-in state.
    try {
      const me = await this.raw("GET", API.me, { auth: true }, s.token);
      if (me.ok) s.username = ((await me.json()) as { username: string }).username;
    } catch {
      // keep the name as typed
    }
    this.opts.session.set(s);
    return s;
  }

  async logout(): Promise<void> {
    const s = this.opts.session.get();
    this.opts.session.clear();
    if (!s) return;
    try {
      await this.opts.fetch(API.logout, {
        method: "POST",
        headers: { "Content-Type": "application/json", Authorization: `Bearer ${s.token}` },
        body: JSON.stringify({ refresh_token: s.refreshToken ?? undefined }),
      });
    } catch {
      // Signed out locally either way; the refresh token expires on its own.
    }
  }

  async signup(input: SignupInput): Promise<{ id: number; username: string }> {
    const res = await this.send("POST", API.users, { body: input });
    return (await res.json()) as { id: number; username: string };
  }

  async me(): Promise<{ id: number; username: string; email?: string }> {
    const res = await this.send("GET", API.me, { auth: true });
    return (await res.json()) as { id: number; username: string; email?: string };
  }

  // ── blog ──

  async listPosts(q: ListQuery): Promise<PostPage> {
    const res = await this.send("GET", API.posts, {
      query: { offset: q.offset, limit: q.limit, category: q.category, q: q.q, author: q.author },
    });
    const posts = ((await res.json()) as PostSummary[]).map(summaryText);
    const header = res.headers.get(TOTAL_HEADER);
    const total = header !== null && /^\d+$/.test(header) ? Number(header) : null;
    return { posts, total };
  }

  async categories(): Promise<Category[]> {
    const res = await this.send("GET", API.categories);
    return ((await res.json()) as Category[]).map(categoryText);
  }

  async getPost(id: number): Promise<Post> {
    const res = await this.send("GET", `${API.posts}/${id}`);
    return postText((await res.json()) as Post);
  }

  async createPost(input: PostInput): Promise<Post> {
    const res = await this.send("POST", API.posts, { body: storedInput(input), auth: true });
    return postText((await res.json()) as Post);
  }

  async updatePost(id: number, patch: Partial<PostInput>): Promise<Post> {
    const res = await this.send("PATCH", `${API.posts}/${id}`, { body: storedInput(patch), auth: true });
    return postText((await res.json()) as Post);
  }

  async deletePost(id: number): Promise<void> {
    await this.send("DELETE", `${API.posts}/${id}`, { auth: true });
  }

  // ── transport ──

  /** Refreshes the access token; concurrent callers share one request (refresh tokens rotate on use). */
  refresh(): Promise<boolean> {
    this.refreshing ??= this.doRefresh().finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  private async doRefresh(): Promise<boolean> {
    await this.opts.sessionChecked;
    const s = this.opts.session.get();
    if (!s?.refreshToken) return false;
    let res: Response;
    try {
      res = await this.opts.fetch(API.refresh, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ refresh_token: s.refreshToken }),
      });
    } catch {
      throw new ApiError("network", 0, "Network error");
    }
    if (res.status === 400 || res.status === 401 || res.status === 403) return false;
    if (!res.ok) throw await this.errorFrom(res, "GET"); // a refresh done twice is harmless: never in doubt
    const tokens = (await res.json()) as TokenResponse;
    if (typeof tokens.token !== "string") return false;
    // Another tab or a logout may have replaced the session meanwhile: only update the one we refreshed.
    if (this.opts.session.get()?.refreshToken !== s.refreshToken) return this.opts.session.get() !== null;
    this.opts.session.set(this.sessionFrom(tokens, s.username, s.refreshToken));
    return true;
  }

  private sessionFrom(t: TokenResponse, username: string, previousRefresh: string | null = null): SessionData {
    return {
      token: t.token,
      refreshToken: t.refresh_token ?? previousRefresh,
      expiresAt: typeof t.expires_in === "number" ? this.now() + t.expires_in * 1000 : null,
      username,
    };
  }

  private expire(): ApiError {
    const had = this.opts.session.get() !== null;
    this.opts.session.clear();
    if (had) this.opts.onSessionExpired?.();
    return new ApiError("session_expired", 401, "Session expired");
  }

  /**
   * The refresh ahead of expiry. Its failure only matters once the access token has expired: until then the
   * request goes with the current token (a 401 for it takes the usual path below). A network error, a 429 or
   * a 5xx is retried by the next request's early refresh; a refused refresh token is dropped, so the session
   * lasts as long as its access token and the 401 after that ends it.
   */
  private async refreshAhead(s: SessionData): Promise<void> {
    let refreshed: boolean;
    try {
      refreshed = await this.refresh();
    } catch (err) {
      if (this.stillValid(s)) return;
      throw err;
    }
    if (refreshed) return;
    const current = this.opts.session.get();
    if (!current || !this.stillValid(s)) throw this.expire();
    if (current.refreshToken === s.refreshToken) this.opts.session.set({ ...current, refreshToken: null });
  }

  /** Whether the access token of `s` has not expired yet. */
  private stillValid(s: SessionData): boolean {
    return s.expiresAt !== null && s.expiresAt > this.now();
  }

  private async send(method: string, path: string, o: RequestOptions = {}): Promise<Response> {
    if (o.auth) {
      const s = this.opts.session.get();
      if (!s) throw new ApiError("unauthorized", 401, "Not signed in");
      if (s.expiresAt !== null && s.expiresAt - this.now() < REFRESH_MARGIN_MS && s.refreshToken) await this.refreshAhead(s);
    }
    // The access token this request carries: a 401 for it says nothing about a newer one.
    const used = o.auth ? this.opts.session.get()?.token : undefined;
    let res = await this.raw(method, path, o, used);
    if (res.status === 401 && o.auth) {
      // The token may have been revoked or the clock skewed: one quiet refresh, then one retry. When another
      // request already refreshed meanwhile (the session holds a different token), the retry uses that one:
      // refreshing again would spend a refresh token for nothing.
      const current = this.opts.session.get()?.token;
      if (current === undefined || current === used) {
        if (!(await this.refresh())) throw this.expire();
      }
      res = await this.raw(method, path, o);
      if (res.status === 401) throw this.expire();
    }
    if (!res.ok) throw await this.errorFrom(res, o.repeatable ? "GET" : method);
    return res;
  }

  private async raw(method: string, path: string, o: RequestOptions, token?: string): Promise<Response> {
    const headers: Record<string, string> = { Accept: "application/json" };
    if (o.body !== undefined) headers["Content-Type"] = "application/json";
    if (o.auth) {
      const t = token ?? this.opts.session.get()?.token;
      if (t) headers.Authorization = `Bearer ${t}`;
    }
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(o.query ?? {})) {
      if (v !== undefined && v !== "") params.set(k, String(v));
    }
    const url = params.size > 0 ? `${path}?${params.toString()}` : path;
    try {
      return await this.opts.fetch(url, {
        method,
        headers,
        body: o.body === undefined ? undefined : JSON.stringify(o.body),
      });
    } catch {
      throw new ApiError("network", 0, "Network error");
    }
  }

  private async errorFrom(res: Response, method: string): Promise<ApiError> {
    let body: unknown = null;
    try {
      body = await res.json();
    } catch {
      // not JSON (a proxy's page): the status says enough
    }
    const { message, fields } = parseErrorBody(body);
    const ra = res.headers.get("Retry-After");
    const retryAfter = ra !== null && /^\d+$/.test(ra) ? Number(ra) : null;
    return new ApiError(kindFor(res.status, method, retryAfter), res.status, message ?? `HTTP ${res.status}`, fields, retryAfter);
  }
}
