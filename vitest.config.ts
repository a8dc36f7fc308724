import { defineConfig } from "vitest/config";

// One test configuration for the whole repository: the Pulumi program, the policy pack and the services.
export default defineConfig({
  test: {
    // `.test.mts` for tests that import the (ESM) services from the (CommonJS) Pulumi side.
    include: ["**/*.test.ts", "**/*.test.mts"],
    exclude: ["**/node_modules/**", "**/dist/**", ".local/**"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    reporters: process.env.CI ? ["default"] : ["default"],
  },
});
