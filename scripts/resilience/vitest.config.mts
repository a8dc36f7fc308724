import { defineConfig } from "vitest/config";

// `npm run test:resilience`: the long fault scenarios against the running platform. Their files end in
// `.faults.mts`, outside the default `npm test` include; one file at a time (each starts a platform and
// loads the 2 cores it shares).
export default defineConfig({
  test: {
    root: new URL("../..", import.meta.url).pathname,
    include: ["scripts/resilience/**/*.faults.mts"],
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    reporters: ["default"],
  },
});
