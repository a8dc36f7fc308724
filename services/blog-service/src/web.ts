import type { Hono } from "hono";
import type { AppEnv } from "@titanium/kit";
import { createWebUi } from "@titanium/blog-web";

/**
 * The web UI boundary: the built UI (services/blog-web, `WEB_ROOT`) is served under /blog/ by
 * `createWebUi` (hashed assets cached for a year, index.html with its strict CSP, client-side routes,
 * `/` leading to `/blog/`). Without a build, a small placeholder page says where the API is. Replace
 * this module, not the API, to change how pages are served.
 */
export interface WebOptions {
  /** Directory with index.html and assets; undefined → placeholder page. */
  root?: string;
}

const PLACEHOLDER = `<!doctype html>
<html lang="ko"><head><meta charset="utf-8"><title>Titanium Blog</title></head>
<body><h1>Titanium Blog</h1>
<p>The web UI is not built in this checkout. The API is live: <a href="/blog/api/posts">/blog/api/posts</a>,
<a href="/blog/api/categories">/blog/api/categories</a>.</p></body></html>`;

export function mountWeb(app: Hono<AppEnv>, opts: WebOptions = {}): void {
  if (opts.root) {
    app.route("/", createWebUi({ distDir: opts.root }));
    return;
  }
  app.get("/", (c) => c.redirect("/blog/", 302));
  app.get("/blog", (c) => c.redirect("/blog/", 301));
  app.get("/blog/*", (c, next) => {
    if (c.req.path.startsWith("/blog/api/")) return next();
    c.set("route", "/blog/*");
    return c.html(PLACEHOLDER);
  });
}
