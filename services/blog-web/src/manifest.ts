// The build's output contract, shared by the build (build.ts) and the server (serve.ts) without pulling
// esbuild into the server.
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
export const PACKAGE_DIR = path.resolve(here, "..");
export const DEFAULT_OUT_DIR = path.join(PACKAGE_DIR, "dist");
export const MANIFEST_FILE = "manifest.json";
export const INDEX_FILE = "index.html";

export interface AssetInfo {
  /** Bytes of the file as stored. */
  bytes: number;
  /** Bytes of the precompressed variants written beside it (absent when compression would not help). */
  gzip?: number;
  br?: number;
  contentType: string;
  /** Subresource Integrity value (`sha384-...`). */
  integrity: string;
}

export interface Manifest {
  version: 1;
  /** URL prefix of the assets. */
  assetsPath: string;
  /** File names (inside `assets/`) that index.html references directly. */
  entry: { script: string; style: string; icon: string };
  /** Chunks the entry script imports statically (preloaded by index.html); the rest load on demand. */
  preload: string[];
  /** Every file in `assets/` by name. */
  assets: Record<string, AssetInfo>;
  /** index.html, served at every app route. */
  index: AssetInfo & { etag: string };
}
