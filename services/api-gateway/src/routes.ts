import { INTERNAL_PREFIX, foldUsername } from "@titanium/kit";
import type { RateRule } from "./rate-limit.js";

export type Upstream = "auth" | "user" | "blog";

/** Per client (user or address) on everything proxied: the original gateway's 20 req/s, burst 50. */
export const GLOBAL_LIMIT: RateRule = { name: "global", limit: 20, periodSeconds: 1, burst: 50 };

/** The original per-endpoint limits (slowapi), now enforced once, in Redis, for all replicas. */
export const RATE_LIMITS = {
  login: { name: "login", limit: 5, periodSeconds: 60, byClient: true },
  /**
   * Per account and client (the login body's username, the client address): one client guessing one
   * account's password, 10 tries per 15 minutes (a burst of 10, then one every 90 s). Its refusals are its own: another client (the account's
   * owner) is not refused for them.
   */
  loginAccountClient: { name: "login_account_client", limit: 10, periodSeconds: 900 },
  /**
   * Per account, whoever asks: many clients guessing one password together, 50 tries per 15 minutes
   * (a burst of 50, then one every 18 s).
   * Counts attempts (the gateway cannot know the outcome first). Holding it exhausted, and so keeping the
   * owner out, takes five or more addresses trying all the time (each is held to its own 10 above).
   */
  loginAccount: { name: "login_account", limit: 50, periodSeconds: 900 },
  verify: { name: "verify", limit: 30, periodSeconds: 60 },
  refresh: { name: "refresh", limit: 30, periodSeconds: 60, byClient: true },
  logout: { name: "logout", limit: 30, periodSeconds: 60 },
  signup: { name: "signup", limit: 10, periodSeconds: 60, byClient: true },
  userGet: { name: "user_get", limit: 120, periodSeconds: 60 },
  userUpdate: { name: "user_update", limit: 10, periodSeconds: 60 },
  postsList: { name: "posts_list", limit: 600, periodSeconds: 60 },
  postGet: { name: "post_get", limit: 300, periodSeconds: 60 },
  postCreate: { name: "post_create", limit: 10, periodSeconds: 60 },
  postUpdate: { name: "post_update", limit: 30, periodSeconds: 60 },
  postDelete: { name: "post_delete", limit: 10, periodSeconds: 60 },
} as const satisfies Record<string, RateRule>;

const LOGIN_ACCOUNT_LIMITS = { perClient: RATE_LIMITS.loginAccountClient, overall: RATE_LIMITS.loginAccount };

/** The longest username login takes (the auth-service's login schema; signup takes at most 50). */
export const LOGIN_USERNAME_MAX = 100;
/** The longest password anywhere: signup's and a new password's (the user-service's `Password`), login's and `current_password`'s. */
export const PASSWORD_MAX = 200;
/**
 * The largest login body the gateway reads (413 beyond it; it is read before any limit is taken, to key
 * the per-account limits). A login is `{"username":…,"password":…}`: at most 100 + 200 UTF-16 units, and
 * JSON writes a unit in at most 6 bytes (a `\uXXXX` escape; raw UTF-8 takes at most 3), so the strings take
 * at most 6 × 300 = 1800 bytes and the whole object 1829. Twice that, rounded up to 4 KiB, leaves room for
 * whitespace and fields the schema ignores.
 */
export const LOGIN_BODY_MAX_BYTES = 4 * 1024;

export interface RouteMatch {
  /** Stable route name: metrics label and log field. */
  route: string;
  upstream: Upstream;
  /** Path on the upstream service. */
  path: string;
  /** The endpoint's own limit, if any (the global limit always applies). */
  limit?: RateRule;
  /** Anonymous GETs of it may be answered from the gateway's micro-cache (response-cache.ts). */
  cacheable?: boolean;
  /**
   * Limits keyed by the account named in the JSON body's `username` (login), charged with the others:
   * per account and client, and per account.
   */
  accountLimits?: { perClient: RateRule; overall: RateRule };
  /**
   * Limits of the same account cells, keyed by the token's account, charged when the body carries a
   * `current_password` (the password check of PATCH /users/me: a guess as good as a login's).
   */
  currentPasswordLimits?: { perClient: RateRule; overall: RateRule };
}

/** A public path (or prefix) and the upstream path (or prefix) it maps to. */
interface PathMap {
  (path: string): string | undefined;
  kind: "exact" | "prefix";
  pub: string;
  up: string;
}

interface RouteDef {
  route: string;
  upstream: Upstream;
  /** Returns the upstream path, or undefined when the public path does not match. */
  map: PathMap;
  limit?: (method: string, upstreamPath: string) => RateRule | undefined;
  cacheable?: (method: string, upstreamPath: string) => boolean;
  accountLimits?: RouteMatch["accountLimits"];
  currentPasswordLimits?: (method: string, upstreamPath: string) => RouteMatch["currentPasswordLimits"];
}

const exact = (pub: string, up: string): PathMap => Object.assign((p: string) => (p === pub ? up : undefined), { kind: "exact" as const, pub, up });
const prefix = (pub: string, up: string): PathMap =>
  Object.assign((p: string) => (p === pub || p.startsWith(`${pub}/`) ? up + p.slice(pub.length) : undefined), { kind: "prefix" as const, pub, up });

const userLimit = (m: string, p: string) =>
  m === "POST" && p === "/users" ? RATE_LIMITS.signup : m === "PATCH" ? RATE_LIMITS.userUpdate : m === "GET" ? RATE_LIMITS.userGet : undefined;
const blogLimit = (m: string, p: string) => {
  const one = /^\/blog\/api\/posts\/[^/]+$/.test(p);
  const many = p === "/blog/api/posts";
  if (m === "GET" && many) return RATE_LIMITS.postsList;
  if (m === "GET" && one) return RATE_LIMITS.postGet;
  if (m === "POST" && many) return RATE_LIMITS.postCreate;
  if (m === "PATCH" && one) return RATE_LIMITS.postUpdate;
  if (m === "DELETE" && one) return RATE_LIMITS.postDelete;
  return undefined;
};

/** The blog's public reads whose answers depend only on the URL and the blog's cache generation. */
const blogCacheable = (m: string, p: string) =>
  m === "GET" && (p === "/blog/api/posts" || p === "/blog/api/categories" || /^\/blog\/api\/posts\/[^/]+$/.test(p));

/**
 * The public routes, in order: the original's paths (gateway + Istio VirtualService), with its defects
 * fixed (`/api/posts` reaches the blog, `/api/auth/*` keeps its path, the credential check is not public).
 * This table routes whatever reaches the gateway: everything on the local platform. In the cluster the Istio
 * ingress (components/apps/ingress.ts) sends only the health paths, `/api/*` and `/blog/api/*` here; it sends
 * `/blog` pages and `/` (GET/HEAD) straight to the blog-service, and routes nothing else (so the `/blog`,
 * `/` and `/.well-known/jwks.json` rows below are not reached from outside the cluster through the gateway).
 */
export const GATEWAY_ROUTES: readonly RouteDef[] = [
  { route: "/api/login", upstream: "auth", map: exact("/api/login", "/login"), limit: () => RATE_LIMITS.login, accountLimits: LOGIN_ACCOUNT_LIMITS },
  { route: "/api/auth/login", upstream: "auth", map: exact("/api/auth/login", "/login"), limit: () => RATE_LIMITS.login, accountLimits: LOGIN_ACCOUNT_LIMITS },
  { route: "/api/auth/refresh", upstream: "auth", map: exact("/api/auth/refresh", "/auth/refresh"), limit: () => RATE_LIMITS.refresh },
  { route: "/api/auth/logout", upstream: "auth", map: exact("/api/auth/logout", "/auth/logout"), limit: () => RATE_LIMITS.logout },
  { route: "/api/auth/verify", upstream: "auth", map: exact("/api/auth/verify", "/verify"), limit: () => RATE_LIMITS.verify },
  { route: "/api/auth/health", upstream: "auth", map: exact("/api/auth/health", "/health") },
  { route: "/.well-known/jwks.json", upstream: "auth", map: exact("/.well-known/jwks.json", "/.well-known/jwks.json") },
  { route: "/api/register", upstream: "user", map: exact("/api/register", "/users"), limit: () => RATE_LIMITS.signup },
  { route: "/api/users/health", upstream: "user", map: exact("/api/users/health", "/health") },
  {
    route: "/api/users",
    upstream: "user",
    map: prefix("/api/users", "/users"),
    limit: userLimit,
    currentPasswordLimits: (m, p) => (m === "PATCH" && p === "/users/me" ? LOGIN_ACCOUNT_LIMITS : undefined),
  },
  { route: "/api/posts", upstream: "blog", map: prefix("/api/posts", "/blog/api/posts"), limit: blogLimit, cacheable: blogCacheable },
  { route: "/api/categories", upstream: "blog", map: prefix("/api/categories", "/blog/api/categories"), limit: blogLimit, cacheable: blogCacheable },
  { route: "/blog/api", upstream: "blog", map: prefix("/blog/api", "/blog/api"), limit: blogLimit, cacheable: blogCacheable },
  // The pages' prefix carries any path under /blog as sent, `/blog/%61pi/posts` included, which decodes to
  // the blog's API (`/blog/api/posts`): limited by that path, as every blog route is. The blog-service
  // answers such a spelling 404 itself (its API takes only a path sent as `/blog/api/…`); the limit keeps
  // it from being a way around the API's limits should a service ever decode it again.
  { route: "/blog", upstream: "blog", map: prefix("/blog", "/blog"), limit: blogLimit },
  { route: "/", upstream: "blog", map: exact("/", "/") },
];

/**
 * The public paths that reach an upstream path (an OpenAPI path of the service, `{param}` segments kept),
 * in route order; none for what no route maps to (the services' internal, probe and schema paths).
 */
export function publicPathsOf(upstream: Upstream, upstreamPath: string): string[] {
  const found = GATEWAY_ROUTES.flatMap(({ upstream: u, map }) => {
    if (u !== upstream) return [];
    if (map.kind === "exact") return upstreamPath === map.up ? [map.pub] : [];
    const below = upstreamPath === map.up || upstreamPath.startsWith(map.up === "/" ? "/" : `${map.up}/`);
    return below ? [map.pub + upstreamPath.slice(map.up.length)] : [];
  });
  // What the gateway itself would route there: a route listed earlier may take the path first.
  const sample = (p: string) => p.replace(/\{[^}]+\}/g, "x");
  return [...new Set(found)].filter((p) => {
    const m = matchRoute("GET", sample(p));
    return m?.upstream === upstream && m.path === sample(upstreamPath);
  });
}

/**
 * The account a login body names, by the rule the user-service matches it with (the kit's `foldUsername`:
 * ASCII case only, so "ALİCE" is neither `alice` there nor a fresh spelling of it here; surrounding spaces
 * dropped so they do not make a fresh key), or undefined when the body has no string `username`.
 */
export function loginAccount(body: Uint8Array): string | undefined {
  const username = jsonField(body, "username");
  return typeof username === "string" ? accountKey(username) : undefined;
}

/** An account's key in the per-account limits (`acct:<key>`): a login body's `username`, or a token's. */
export function accountKey(username: string): string | undefined {
  const key = foldUsername(username.trim());
  return key ? key.slice(0, 200) : undefined;
}

/** Whether a JSON body carries a string `current_password` (the only kind the user-service checks). */
export const carriesCurrentPassword = (body: Uint8Array): boolean => typeof jsonField(body, "current_password") === "string";

function jsonField(body: Uint8Array, name: string): unknown {
  try {
    const parsed = JSON.parse(new TextDecoder().decode(body)) as unknown;
    return parsed !== null && typeof parsed === "object" && Object.hasOwn(parsed, name) ? (parsed as Record<string, unknown>)[name] : undefined;
  } catch {
    return undefined; // not JSON: the service answers 422 without checking any password
  }
}

const PLAIN_PATH = /^[A-Za-z0-9_\-~./]*$/;
/**
 * A path the URL parser leaves as it is: letters, digits, - _ ~ . / and no dot segment. Anything else
 * (dot segments, escapes, backslashes, control characters) the parser would rewrite.
 */
export const isPlainPath = (p: string): boolean => PLAIN_PATH.test(p) && !p.includes("/.");

/** The query of a request target or URL as sent, `?` included ("" when none): split by string, no URL object. */
export function querySuffix(url: string): string {
  const q = url.indexOf("?");
  return q < 0 ? "" : url.slice(q);
}

/** A read's micro-cache key, the one rule for the app and its shortcut: upstream path and query as sent. */
export function cacheKeyOf(match: RouteMatch, search: string): string | undefined {
  return match.cacheable ? match.path + search : undefined;
}

/**
 * The path of a request URL as sent (still percent-encoded), without query or fragment: what the gateway
 * routes and forwards. By string, as `querySuffix`.
 */
export function requestPath(url: string): string {
  const scheme = url.indexOf("://");
  const start = url.indexOf("/", scheme < 0 ? 0 : scheme + 3);
  if (start < 0) return "/";
  let end = url.length;
  for (const stop of ["?", "#"]) {
    const at = url.indexOf(stop, start);
    if (at >= 0 && at < end) end = at;
  }
  return url.slice(start, end);
}

/** A path as the service behind decodes it (Hono: `decodeURI`, `%25` kept): what it routes, and so what is limited. */
function decodedPath(p: string): string {
  if (!p.includes("%")) return p;
  try {
    return decodeURI(p.replace(/%25/g, "%2525"));
  } catch {
    return p;
  }
}

const isInternal = (p: string) => p.startsWith(INTERNAL_PREFIX) || p === INTERNAL_PREFIX.slice(0, -1);

/**
 * The route for a request path as sent (percent-encoded), or undefined (404). The upstream path is the
 * public path with its prefix replaced, nothing else changed. Internal service routes are never reachable.
 */
export function matchRoute(method: string, path: string): RouteMatch | undefined {
  for (const def of GATEWAY_ROUTES) {
    const mapped = def.map(path);
    if (mapped === undefined) continue;
    // Resolve dot segments as the upstream URL will (a path from the Node adapter has none left: then this
    // is the same string), then refuse anything internal, encoded or not.
    const up = isPlainPath(mapped) ? mapped : new URL(mapped, "http://upstream").pathname;
    const decoded = decodedPath(up);
    if (isInternal(up) || isInternal(decoded)) return undefined;
    // Limits by the path the service will route (`/blog/api/post%73` is `/blog/api/posts` there), and a HEAD
    // by its GET (the services answer it with the same handler).
    const limit = def.limit?.(method === "HEAD" ? "GET" : method, decoded);
    const cacheable = def.cacheable?.(method, decoded) ?? false;
    const currentPasswordLimits = def.currentPasswordLimits?.(method, decoded);
    return {
      route: def.route,
      upstream: def.upstream,
      path: up,
      ...(limit && { limit }),
      ...(def.accountLimits && { accountLimits: def.accountLimits }),
      ...(cacheable && { cacheable }),
      ...(currentPasswordLimits && { currentPasswordLimits }),
    };
  }
  return undefined;
}
