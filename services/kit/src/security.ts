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
/** CSP for the blog's HTML pages (the original's relaxed policy). */
export const PAGE_CSP =
  "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'";

const isApiPath = (path: string) => path.startsWith("/api/") || path.startsWith("/blog/api/");

/** Pages (the blog UI, issue 8) live at `/` and under `/blog/` outside the API; everything else is an API. */
const isPagePath = (path: string) => !isApiPath(path) && (path === "/" || path === "/blog" || path.startsWith("/blog/"));

/**
 * Security headers, prepared before the handler runs (so they ride on the response the handler builds
 * instead of copying it afterwards). Pages get the page CSP and their own caching; everything else is
 * `no-store` unless its handler chooses caching (e.g. the JWKS).
 */
export function securityHeaders(): MiddlewareHandler {
  return async (c, next) => {
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) c.header(k, v);
    const page = isPagePath(c.req.path);
    c.header("Content-Security-Policy", page ? PAGE_CSP : STRICT_CSP);
    if (!page) c.header("Cache-Control", "no-store");
    await next();
  };
}

const ALLOW_METHODS = "GET,POST,PUT,PATCH,DELETE,OPTIONS";
const ALLOW_HEADERS = "Content-Type,Authorization,X-Requested-With,X-Request-Id";
const EXPOSE_HEADERS = "X-Request-Id,X-Total-Count,Retry-After";

/**
 * CORS allow-list as the original: listed origins only, credentials allowed, preflight cached a day; every
 * OPTIONS preflight is answered 204 (without CORS headers for an origin not on the list).
 */
export function corsAllowList(allowedOrigins: readonly string[]): MiddlewareHandler {
  const allowed = new Set(allowedOrigins);
  return async (c, next) => {
    const origin = requestHeader(c, "origin");
    const ok = origin !== undefined && allowed.has(origin);
    c.header("Vary", "Origin");
    if (ok) {
      c.header("Access-Control-Allow-Origin", origin);
      c.header("Access-Control-Allow-Credentials", "true");
      c.header("Access-Control-Expose-Headers", EXPOSE_HEADERS);
    }
    if (c.req.method === "OPTIONS" && requestHeader(c, "access-control-request-method")) {
      if (ok) {
        c.header("Access-Control-Allow-Methods", ALLOW_METHODS);
        c.header("Access-Control-Allow-Headers", ALLOW_HEADERS);
        c.header("Access-Control-Max-Age", "86400");
      }
      return c.body(null, 204);
    }
    await next();
  };
}

/** Largest request header block a server accepts (Node answers 431 beyond it), as the original gateway. */
export const MAX_HEADER_BYTES = 16 * 1024;
