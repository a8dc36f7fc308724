import type { MiddlewareHandler } from "hono";
import { cors } from "hono/cors";

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

/** Security headers; HTML outside the APIs gets the page CSP; API answers are `no-store`. */
export function securityHeaders(): MiddlewareHandler {
  return async (c, next) => {
    await next();
    const h = c.res.headers;
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) h.set(k, v);
    const api = isApiPath(c.req.path);
    const page = !api && (h.get("content-type") ?? "").startsWith("text/html");
    // A handler that brings its own policy keeps it (the web UI's is stricter than PAGE_CSP, and its 304s must
    // carry it too: a browser stores the headers of a 304 over the cached page's).
    if (!h.has("Content-Security-Policy")) h.set("Content-Security-Policy", page ? PAGE_CSP : STRICT_CSP);
    // API answers are never cached; pages and assets (JWKS, static files) keep the caching their handler chose.
    if (api || (!page && !h.has("cache-control"))) h.set("Cache-Control", "no-store");
  };
}

/** CORS allow-list as the original: listed origins only, credentials allowed, preflight cached a day. */
export function corsAllowList(allowedOrigins: readonly string[]): MiddlewareHandler {
  const allowed = new Set(allowedOrigins);
  return cors({
    origin: (origin) => (allowed.has(origin) ? origin : null),
    credentials: true,
    allowMethods: ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
    allowHeaders: ["Content-Type", "Authorization", "X-Requested-With", "X-Request-Id"],
    exposeHeaders: ["X-Request-Id", "X-Total-Count", "Retry-After"],
    maxAge: 86400,
  });
}

/** Largest request header block a server accepts (Node answers 431 beyond it), as the original gateway. */
export const MAX_HEADER_BYTES = 16 * 1024;
