// `npm run build -w @titanium/blog-web` (also run by `prepare`, i.e. on every `npm ci`/`npm install`).
import { build, firstLoadBytes } from "./build.js";

const started = Date.now();
const { outDir, manifest } = await build();
const first = firstLoadBytes(manifest);
const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
console.log(
  `blog-web: built ${Object.keys(manifest.assets).length} assets into ${outDir} in ${Date.now() - started} ms; ` +
    `first load ${kib(first.raw)} raw, ${kib(first.transferred)} brotli`,
);
