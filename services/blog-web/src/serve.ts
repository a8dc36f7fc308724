// Serves the built UI from memory: `/` and `/blog` redirect to `/blog/`, content-hashed assets are cached
// for a year (immutable), index.html is revalidated on every visit (`no-cache` + ETag) and carries a strict
// Content-Security-Policy. Only files named in the build's manifest are served (no file-system lookups per
// request, so no path traversal), with brotli or gzip chosen from Accept-Encoding.
import { readFileSync } from "node:fs";
import path from "node:path";
import { Hono, type Context } from "hono";
import { DEFAULT_OUT_DIR, INDEX_FILE, MANIFEST_FILE, type AssetInfo, type Manifest } from "./manifest.js";
import { ASSETS_PATH, BASE_PATH, BLOG_API_PATH } from "./paths.js";
import { parseRoute } from "./app/router.js";

/**
 * The page's Content-Security-Policy: scripts, styles, fonts and images only from this origin (no inline
 * code at all), API calls only to this origin, no framing, no plugins, and Trusted Types so that only
 * DOMPurify's output can reach an HTML sink.
 */
export const WEB_UI_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "object-src 'none'",
  "require-trusted-types-for 'script'",
  "trusted-types dompurify",
].join("; ");

/** Hashed file names never change content: cache them for a year. */
export const IMMUTABLE_CACHE = "public, max-age=31536000, immutable";
/** The HTML names the current hashes: always revalidate it (cheap with the ETag). */
export const HTML_CACHE = "no-cache";

const PAGE_HEADERS: Record<string, string> = {
  "Content-Security-Policy": WEB_UI_CSP,
  "X-Content-Type-Options": "nosniff",
  "X-Frame-Options": "DENY",
  "Referrer-Policy": "strict-origin-when-cross-origin",
  "Permissions-Policy": "geolocation=(), microphone=(), camera=()",
  "Cross-Origin-Opener-Policy": "same-origin",
};

interface Variant {
  body: Uint8Array<ArrayBuffer>;
  encoding: "br" | "gzip" | null;
}

interface LoadedFile {
  info: AssetInfo;
  variants: Variant[]; // best first
}

export interface WebUiOptions {
  /** The build output (default: this package's `dist/`). */
  distDir?: string;
}

function load(dir: string, name: string, info: AssetInfo): LoadedFile {
  const read = (f: string) => new Uint8Array(readFileSync(path.join(dir, f)));
  const variants: Variant[] = [];
  if (info.br !== undefined) variants.push({ body: read(`${name}.br`), encoding: "br" });
  if (info.gzip !== undefined) variants.push({ body: read(`${name}.gz`), encoding: "gzip" });
  variants.push({ body: read(name), encoding: null });
  return { info, variants };
}

/** Reads the manifest and every file it names; throws a clear error when the UI was not built. */
export function loadWebUi(distDir = DEFAULT_OUT_DIR): { manifest: Manifest; index: LoadedFile; assets: Map<string, LoadedFile> } {
  let manifest: Manifest;
  try {
    manifest = JSON.parse(readFileSync(path.join(distDir, MANIFEST_FILE), "utf8")) as Manifest;
  } catch (err) {
    throw new Error(
      `blog-web: no built UI in ${distDir} (${(err as Error).message}); run \`npm run build -w @titanium/blog-web\``,
    );
  }
  if (manifest.version !== 1) throw new Error(`blog-web: unsupported manifest version ${String(manifest.version)}`);
  const assetsDir = path.join(distDir, "assets");
  const assets = new Map<string, LoadedFile>();
  for (const [name, info] of Object.entries(manifest.assets)) assets.set(name, load(assetsDir, name, info));
  return { manifest, index: load(distDir, INDEX_FILE, manifest.index), assets };
}

function accepts(header: string | undefined, coding: string): boolean {
  if (!header) return false;
  return header.split(",").some((part) => {
    const [name, ...params] = part.trim().split(";");
    if (name?.trim().toLowerCase() !== coding) return false;
    const q = params.map((p) => p.trim()).find((p) => p.startsWith("q="));
    return q === undefined || Number(q.slice(2)) > 0;
  });
}

function pick(file: LoadedFile, acceptEncoding: string | undefined): Variant {
  for (const v of file.variants) {
    if (v.encoding === null || accepts(acceptEncoding, v.encoding)) return v;
  }
  // The identity variant is always last, so this is unreachable; keep the type checker honest.
  throw new Error("blog-web: no identity variant");
}

function send(c: Context, file: LoadedFile, status: 200 | 404, headers: Record<string, string>): Response {
  const v = pick(file, c.req.header("Accept-Encoding"));
  const h: Record<string, string> = {
    ...headers,
    "Content-Type": file.info.contentType,
    "Content-Length": String(v.body.byteLength),
    Vary: "Accept-Encoding",
  };
  if (v.encoding) h["Content-Encoding"] = v.encoding;
  if (c.req.method === "HEAD") return c.body(null, status, h);
  return c.body(v.body, status, h);
}

/**
 * The UI as a Hono app to mount at the root of the blog-service (`app.route("/", createWebUi())`). It
 * never answers under `/blog/api/`, so the API's own 404s stay JSON.
 */
export function createWebUi(opts: WebUiOptions = {}): Hono {
  const ui = loadWebUi(opts.distDir);
  const app = new Hono();

  app.get("/", (c) => c.redirect(BASE_PATH, 302));
  app.get(BASE_PATH.slice(0, -1), (c) => c.redirect(BASE_PATH, 302));

  app.get(`${ASSETS_PATH}:file`, (c, next) => {
    const file = ui.assets.get(c.req.param("file"));
    if (!file) {
      // Not ours: the host app's 404 (the blog-service's error envelope), never cached under a hashed name.
      c.header("Cache-Control", "no-store");
      return next();
    }
    return send(c, file, 200, { "Cache-Control": IMMUTABLE_CACHE, "X-Content-Type-Options": "nosniff" });
  });

  app.get(`${BASE_PATH}*`, async (c, next) => {
    const p = c.req.path;
    if (p.startsWith(BLOG_API_PATH) || p.startsWith(ASSETS_PATH)) return next();
    // Each encoding of the page is its own representation, with its own validator (as Apache's `"…-gzip"`): a
    // cache holding one encoding must not be told by a 304 that it may serve it to a client asking for another.
    const variant = pick(ui.index, c.req.header("Accept-Encoding"));
    const etag = variant.encoding ? `${ui.manifest.index.etag.slice(0, -1)}-${variant.encoding}"` : ui.manifest.index.etag;
    const headers = { ...PAGE_HEADERS, "Cache-Control": HTML_CACHE, ETag: etag };
    if (c.req.header("If-None-Match")?.split(",").some((t) => t.trim().replace(/^W\//, "") === etag)) {
      // A 304 carries the Vary a 200 would (RFC 9110, 15.4.5).
      return c.body(null, 304, { ...headers, Vary: "Accept-Encoding" });
    }
    // Unknown app paths get the app (which shows "not found") with a 404 status for crawlers and monitors.
    const status = parseRoute(p).name === "notFound" ? 404 : 200;
    return send(c, ui.index, status, headers);
  });

  return app;
}
