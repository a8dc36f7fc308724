import { availableParallelism } from "node:os";
import { defineConfig } from "vitest/config";

// One test configuration for the whole repository: the Pulumi program, the policy pack and the services.
export default defineConfig({
  test: {
    // `.test.mts` for tests that import the (ESM) services from the (CommonJS) Pulumi side.
    include: ["**/*.test.ts", "**/*.test.mts"],
    exclude: ["**/node_modules/**", "**/dist/**", ".local/**"],
    // Vitest's default is one worker fewer than the cores: one worker on the 2-core machines here. Most
    // files wait on child processes (PostgreSQL, Redis, services, Chromium) or the Pulumi engine's
    // callbacks, so a worker per core took the suite from 302 s to 196 s here, every test still passing.
    maxWorkers: Math.max(2, availableParallelism()),
    testTimeout: 30_000,
    hookTimeout: 60_000,
    reporters: ["default"],
  },
});
