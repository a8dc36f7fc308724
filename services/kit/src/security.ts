import type { MiddlewareHandler } from "hono";
import { requestHeader } from "./request-id.js";

/** The original's security headers (every response). */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
  "X-Frame-Options": "DENY",
  "X-Content-Type-Options": "nosniff",
  "X-XSS-Protection": "1; mode=block",
  "Referrer-Policy": "strict-origin-when-cross-origin",
  "Permissions-Policy": "geolocation=(), microphone=(), camera=()",
};
/** CSP for JSON and everything that is not a page. */
export const STRICT_CSP = "default-src 'none'; frame-ancestors 'none'";
/**
 * CSP for answers on page paths that set none of their own (the web UI sends its stricter policy,
 * services/blog-web/src/serve.ts): same-origin only, and never inline code (the original allowed it).
 */
export const PAGE_CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

const isApiPath = (path: string) => path.startsWith("/api/") || path.startsWith("/blog/api/");

/** Pages (the blog UI, issue 8) live at `/` and under `/blog/` outside the API; everything else is an API. */
const isPagePath = (path: string) => !isApiPath(path) && (path === "/" || path === "/blog" || path.startsWith("/blog/"));

/** Every API answer's security and caching headers (lower-case names, as Node sends them). */
export const API_SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  ...lowerCaseNames(SECURITY_HEADERS),
  "content-security-policy": STRICT_CSP,
  "cache-control": "no-store",
});
/** A page's: the page CSP, and no `cache-control` (pages choose their own caching). */
const PAGE_HEADERS: Readonly<Record<string, string>> = Object.freeze({ ...lowerCaseNames(SECURITY_HEADERS), "content-security-policy": PAGE_CSP });

function lowerCaseNames(headers: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
}

/**
 * The security headers of an answer on `path`: pages get the page CSP and their own caching; everything
 * else is `no-store` unless its handler chooses caching (e.g. the JWKS). Shared by the middleware below and
 * by answers made outside Hono (the gateway's cached reads).
 */
export function securityHeaderSet(path: string): Readonly<Record<string, string>> {
  return isPagePath(path) ? PAGE_HEADERS : API_SECURITY_HEADERS;
}

/** Security headers, prepared before the handler runs (so they ride on the response the handler builds). */
export function securityHeaders(): MiddlewareHandler {
  return async (c, next) => {
    for (const [k, v] of Object.entries(securityHeaderSet(c.req.path))) c.header(k, v);
    await next();
  };
}

const ALLOW_METHODS = "GET,POST,PUT,PATCH,DELETE,OPTIONS";
const ALLOW_HEADERS = "Content-Type,Authorization,X-Requested-With,X-Request-Id";
const EXPOSE_HEADERS = "X-Request-Id,X-Total-Count,Retry-After";

/** The CORS headers of an answer to `origin` (not a preflight): lower-case names. */
export function corsHeaderSet(origin: string | undefined, allowed: ReadonlySet<string>): Record<string, string> {
  if (origin === undefined || !allowed.has(origin)) return { vary: "Origin" };
  return {
    vary: "Origin",
    "access-control-allow-origin": origin,
    "access-control-allow-credentials": "true",
    "access-control-expose-headers": EXPOSE_HEADERS,
  };
}

/**
 * CORS allow-list as the original: listed origins only, credentials allowed, preflight cached a day. Every
 * OPTIONS request is answered 204 here, whatever its path, with or without `Origin` or
 * `Access-Control-Request-Method` (the original's gateway did so); the preflight headers go only to an
 * origin on the list.
 */
export function corsAllowList(allowedOrigins: readonly string[]): MiddlewareHandler {
  const allowed = new Set(allowedOrigins);
  return async (c, next) => {
    const origin = requestHeader(c, "origin");
    for (const [k, v] of Object.entries(corsHeaderSet(origin, allowed))) c.header(k, v);
    if (c.req.method === "OPTIONS") {
      if (origin !== undefined && allowed.has(origin)) {
        c.header("Access-Control-Allow-Methods", ALLOW_METHODS);
        c.header("Access-Control-Allow-Headers", ALLOW_HEADERS);
        c.header("Access-Control-Max-Age", "86400");
      }
      return c.body(null, 204);
    }
    await next();
  };
}

/** Largest request header block a client may send to the public entry (the gateway; 431 beyond it), as the original gateway. */
export const MAX_HEADER_BYTES = 16 * 1024;

/**
 * What a service behind the gateway accepts: the client's limit plus room for the headers the gateway
 * (forwarding and request-id headers) and the mesh's proxies (`x-envoy-*`, `x-forwarded-client-cert`, trace
 * headers) add on the way. Without it a request the gateway admitted could be refused by the service with a
 * 431 carrying a request id of its own, which no log of the caller's request mentions.
 */
export const SERVICE_MAX_HEADER_BYTES = MAX_HEADER_BYTES + 4 * 1024;
