// main.ts imports the stylesheet for its side effect: esbuild bundles it into the page's CSS file.
declare module "*.css";
