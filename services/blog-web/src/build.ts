// Builds the UI: esbuild bundles the app into content-hashed files (the Markdown stack split into a chunk
// loaded on demand), then index.html (no inline script or style, SRI on the entry files), gzip and brotli
// variants, and manifest.json, which the server reads. The output replaces the old one atomically.
import { createHash } from "node:crypto";
import { mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { brotliCompressSync, constants as zc, gzipSync } from "node:zlib";
import * as esbuild from "esbuild";
import { DEFAULT_OUT_DIR, INDEX_FILE, MANIFEST_FILE, PACKAGE_DIR, type AssetInfo, type Manifest } from "./manifest.js";
import { ASSETS_PATH } from "./paths.js";

export { DEFAULT_OUT_DIR, type Manifest };

const CONTENT_TYPES: Record<string, string> = {
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".html": "text/html; charset=utf-8",
  ".txt": "text/plain; charset=utf-8",
};

function contentType(file: string): string {
  const t = CONTENT_TYPES[path.extname(file)];
  if (!t) throw new Error(`build: no content type for ${file}`);
  return t;
}

function sri(data: Uint8Array): string {
  return `sha384-${createHash("sha384").update(data).digest("base64")}`;
}

function shortHash(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("base64url").slice(0, 10).replace(/[-_]/g, "x");
}

/** Writes the file and, when they are smaller, its `.gz` and `.br` variants; returns what it wrote. */
async function writeAsset(dir: string, name: string, data: Uint8Array): Promise<AssetInfo> {
  await writeFile(path.join(dir, name), data);
  const info: AssetInfo = { bytes: data.byteLength, contentType: contentType(name), integrity: sri(data) };
  const gz = gzipSync(data, { level: 9 });
  if (gz.byteLength < data.byteLength) {
    await writeFile(path.join(dir, `${name}.gz`), gz);
    info.gzip = gz.byteLength;
  }
  const br = brotliCompressSync(data, {
    params: { [zc.BROTLI_PARAM_QUALITY]: 11, [zc.BROTLI_PARAM_SIZE_HINT]: data.byteLength },
  });
  if (br.byteLength < data.byteLength) {
    await writeFile(path.join(dir, `${name}.br`), br);
    info.br = br.byteLength;
  }
  return info;
}

const ICON = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="7" fill="#0a58ca"/><path d="M9 9h14v4h-5v11h-4V13H9z" fill="#fff"/></svg>\n`;

function escapeAttr(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;");
}

export function indexHtml(m: Pick<Manifest, "entry" | "assets" | "preload">): string {
  const url = (f: string) => escapeAttr(`${ASSETS_PATH}${f}`);
  const integrity = (f: string) => escapeAttr(m.assets[f]?.integrity ?? "");
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Titanium Blog</title>
<meta name="description" content="Titanium Blog: posts about building and running the platform.">
<link rel="icon" href="${url(m.entry.icon)}" type="image/svg+xml">
<link rel="stylesheet" href="${url(m.entry.style)}" integrity="${integrity(m.entry.style)}">
<script type="module" src="${url(m.entry.script)}" integrity="${integrity(m.entry.script)}"></script>
${m.preload.map((f) => `<link rel="modulepreload" href="${url(f)}" integrity="${integrity(f)}">\n`).join("")}</head>
<body>
<div id="app"><noscript><p>Titanium Blog needs JavaScript. The API is at /blog/api/posts.</p></noscript></div>
</body>
</html>
`;
}

export interface BuildOptions {
  /** Where to write (default: the package's `dist/`). */
  outDir?: string;
}

export async function build(opts: BuildOptions = {}): Promise<{ outDir: string; manifest: Manifest }> {
  const outDir = path.resolve(opts.outDir ?? DEFAULT_OUT_DIR);
  const staging = `${outDir}.tmp-${process.pid}-${Date.now()}`;
  const assetsDir = path.join(staging, "assets");
  await mkdir(assetsDir, { recursive: true });
  try {
    const result = await esbuild.build({
      absWorkingDir: PACKAGE_DIR,
      entryPoints: { app: "src/app/main.ts" },
      bundle: true,
      splitting: true, // the Markdown stack (marked, DOMPurify, highlight.js) loads only where a post is shown
      format: "esm",
      target: ["es2022", "chrome111", "firefox111", "safari16.4"],
      minify: true,
      outdir: "assets",
      entryNames: "[name]-[hash]",
      chunkNames: "[name]-[hash]",
      assetNames: "[name]-[hash]",
      metafile: true,
      write: false,
      logLevel: "silent",
      legalComments: "eof",
      charset: "utf8",
    });
    const assets: Record<string, AssetInfo> = {};
    let script = "";
    let style = "";
    for (const f of result.outputFiles) {
      const name = path.basename(f.path);
      assets[name] = await writeAsset(assetsDir, name, f.contents);
      const meta = result.metafile.outputs[path.relative(PACKAGE_DIR, f.path)];
      if (meta?.entryPoint === "src/app/main.ts") script = name;
      if (name.startsWith("app-") && name.endsWith(".css")) style = name;
    }
    if (!script || !style) throw new Error(`build: entry files missing (script=${script} style=${style})`);
    // The static import closure of the entry: what the first page load needs besides the entry itself.
    const preload: string[] = [];
    const visit = (name: string) => {
      for (const imp of result.metafile.outputs[`assets/${name}`]?.imports ?? []) {
        const dep = path.basename(imp.path);
        if (imp.kind === "import-statement" && !preload.includes(dep)) {
          preload.push(dep);
          visit(dep);
        }
      }
    };
    visit(script);
    const iconBytes = new TextEncoder().encode(ICON);
    const icon = `icon-${shortHash(iconBytes)}.svg`;
    assets[icon] = await writeAsset(assetsDir, icon, iconBytes);

    const entry = { script, style, icon };
    const html = new TextEncoder().encode(indexHtml({ entry, assets, preload }));
    const indexInfo = await writeAsset(staging, INDEX_FILE, html);
    const manifest: Manifest = {
      version: 1,
      assetsPath: ASSETS_PATH,
      entry,
      preload,
      assets,
      index: { ...indexInfo, etag: `"${shortHash(html)}"` },
    };
    const manifestText = `${JSON.stringify(manifest, null, 2)}\n`;
    await writeFile(path.join(staging, MANIFEST_FILE), manifestText);
    // The same sources build the same manifest (every file is named by its content): keep the build in
    // place, so a process serving or loading it (a running platform, a test) never sees it swapped out.
    const current = await readFile(path.join(outDir, MANIFEST_FILE), "utf8").catch(() => undefined);
    const complete = async () =>
      (await Promise.all([INDEX_FILE, ...Object.keys(assets).map((a) => path.join("assets", a))].map((f) => stat(path.join(outDir, f)).then((s) => s.isFile(), () => false)))).every(Boolean);
    if (current === manifestText && (await complete())) {
      await rm(staging, { recursive: true, force: true });
      return { outDir, manifest };
    }
    await rm(outDir, { recursive: true, force: true });
    await rename(staging, outDir);
    return { outDir, manifest };
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    throw err;
  }
}

/** Bytes a browser transfers for the first visit to the list page with brotli (index + entry files). */
export function firstLoadBytes(m: Manifest): { raw: number; transferred: number } {
  const files = [m.index, ...[...Object.values(m.entry), ...m.preload].map((f) => m.assets[f])].filter((f): f is AssetInfo => !!f);
  return {
    raw: files.reduce((n, f) => n + f.bytes, 0),
    transferred: files.reduce((n, f) => n + (f.br ?? f.gzip ?? f.bytes), 0),
  };
}
