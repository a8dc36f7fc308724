import { availableParallelism } from "node:os";
import { defineConfig } from "vitest/config";

// One test configuration for the whole repository: the Pulumi program, the policy pack and the services.
export default defineConfig({
  test: {
    // `.test.mts` for tests that import the (ESM) services from the (CommonJS) Pulumi side.
    include: ["**/*.test.ts", "**/*.test.mts"],
    exclude: ["**/node_modules/**", "**/dist/**", ".local/**"],
    // Vitest's default is one worker fewer than the cores: one worker on the 2-core machines here. Most
    // files wait on child processes (PostgreSQL, Redis, services, Chromium), graces and timeouts, or the
    // Pulumi engine's callbacks, so a worker per core took the suite from 302 s to 196 s here, and more
    // workers than cores fill the waits that are left: 2 workers 231-263 s (five runs, median 246 s),
    // 3 workers 220-237 s (four runs, median 228 s); on 2026-12-07 21:30, back to back on an idle machine,
    // 3 workers 209 s, 4 workers 200 s, 5 workers 203 s, every test passing. Twice the cores, then.
    maxWorkers: availableParallelism() * 2,
    // The files of a worker share one module registry instead of importing the Pulumi SDKs, zod, Hono and
    // the rest again for each (import time 52 s → 10 s; the suite ~183 s → ~148 s here). That is safe
    // because no test mocks modules or stubs globals: each whole-program run sets the Pulumi engine's
    // config and mocks afresh (stacks/harness.ts), every file starts and stops its own servers and
    // processes, and the module-level caches the code keeps are keyed by what they depend on.
    isolate: false,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    reporters: ["default"],
  },
});
