import { existsSync, readFileSync, statSync } from "node:fs";
import { extname, join, normalize, sep } from "node:path";
import type { Hono } from "hono";
import type { AppEnv } from "@titanium/kit";
import { createWebUi } from "@titanium/blog-web";

/**
 * The web UI boundary. Issue 8 builds the UI as static files; the blog-service serves them under /blog/
 * (`WEB_ROOT`), with index.html for client-side routes, and `/` redirects to `/blog/`. Without a build it
 * serves a small placeholder page. Replace this module, not the API, to change how pages are served.
 */
export interface WebOptions {
  /** Directory with index.html and assets; undefined → placeholder page. */
  root?: string;
}

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".woff2": "font/woff2",
  ".txt": "text/plain; charset=utf-8",
};

const PLACEHOLDER = `<!doctype html>
<html lang="ko"><head><meta charset="utf-8"><title>Titanium Blog</title></head>
<body><h1>Titanium Blog</h1>
<p>The web UI is not built in this checkout. The API is live: <a href="/blog/api/posts">/blog/api/posts</a>,
<a href="/blog/api/categories">/blog/api/categories</a>.</p></body></html>`;

export function mountWeb(app: Hono<AppEnv>, opts: WebOptions = {}): void {
  // The built UI (services/blog-web): hashed assets cached for a year, index.html with its strict CSP.
  if (opts.root) {
    app.route("/", createWebUi({ distDir: opts.root }));
    return;
  }
  app.get("/", (c) => c.redirect("/blog/", 302));
  app.get("/blog", (c) => c.redirect("/blog/", 301));
  app.get("/blog/*", (c, next) => {
    if (c.req.path.startsWith("/blog/api/")) return next();
    c.set("route", "/blog/*");
    if (!opts.root) return c.html(PLACEHOLDER);
    const rel = normalize(decodeURIComponent(c.req.path.slice("/blog/".length)));
    const file = join(opts.root, rel);
    if (!file.startsWith(opts.root + sep) && file !== opts.root) return c.notFound();
    if (rel && existsSync(file) && statSync(file).isFile()) {
      // Hashed asset names may be cached; index.html never.
      c.header("Cache-Control", rel.startsWith("assets/") ? "public, max-age=31536000, immutable" : "no-cache");
      return c.body(readFileSync(file), 200, { "Content-Type": TYPES[extname(file)] ?? "application/octet-stream" });
    }
    const index = join(opts.root, "index.html");
    if (!existsSync(index)) return c.html(PLACEHOLDER);
    c.header("Cache-Control", "no-cache");
    return c.html(readFileSync(index, "utf8"));
  });
}
