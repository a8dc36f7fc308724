// `prepare` (runs on every `npm ci` / `npm install` of the repository): build the UI. A production install
// (`npm ci --omit=dev`) has no build tools; it then says so and leaves the build to the stage that has them.
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const missing = ["esbuild", "tsx/package.json"].filter((m) => {
  try {
    require.resolve(m);
    return false;
  } catch {
    return true;
  }
});
if (missing.length > 0) {
  console.log(`blog-web: build skipped (${missing.join(", ")} not installed: a production install)`);
  process.exit(0);
}
const tsx = require.resolve("tsx/cli");
const r = spawnSync(process.execPath, [tsx, "src/build-cli.ts"], { stdio: "inherit" });
process.exit(r.status ?? 1);
