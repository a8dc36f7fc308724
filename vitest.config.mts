import { existsSync } from "node:fs";
import { availableParallelism } from "node:os";
import { defineConfig } from "vitest/config";
import { BaseSequencer, type TestSpecification } from "vitest/node";

/**
 * The files that take longest, most of it waiting on graces, timeouts and child processes (npm start's
 * stops, Chromium, the CI scripts' fakes, the K3s scripts' fake nodes, offline installs): started first, so
 * their waits overlap the other files' work instead of ending the run alone. Vitest orders by the timings of
 * the last run on the machine, but a fresh clone (CI) has none and it falls back to file size, which put
 * npm start's signal tests (a small file, ~75 s) last. Longest first; a file not listed keeps Vitest's order.
 */
const STARTED_FIRST = [
  "scripts/start-signals.test.mts",
  "services/blog-web/test/browser.test.ts",
  "scripts/delivery/ci-scripts.test.ts",
  "components/cluster/startup-script.test.ts",
  "scripts/start.test.mts",
  "scripts/delivery/images.test.mts",
  "stacks/plan.test.ts",
  "scripts/resilience/fuzz.test.mts",
];

// A file renamed or removed would silently lose its place: say so instead.
for (const p of STARTED_FIRST) if (!existsSync(new URL(p, import.meta.url))) throw new Error(`vitest.config.mts STARTED_FIRST: ${p} does not exist`);

class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const rank = (f: TestSpecification) => {
      const i = STARTED_FIRST.findIndex((p) => f.moduleId.endsWith(`/${p}`));
      return i < 0 ? STARTED_FIRST.length : i;
    };
    return (await super.sort(files)).sort((a, b) => rank(a) - rank(b)); // stable: the rest keep their order
  }
}

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
    // 3 workers 209 s, 4 workers 200 s, 5 workers 203 s, every test passing. Twice the cores, then, up to 8:
    // each worker starts its own PostgreSQL, Redis and services, and more was never measured.
    maxWorkers: Math.min(availableParallelism() * 2, 8),
    // The files of a worker share one module registry instead of importing the Pulumi SDKs, zod, Hono and
    // the rest again for each (import time 52 s → 10 s; the suite ~183 s → ~148 s here). That is safe
    // because no test mocks modules or stubs globals: each whole-program run sets the Pulumi engine's
    // config and mocks afresh (stacks/harness.ts), every file starts and stops its own servers and
    // processes, and the module-level caches the code keeps are keyed by what they depend on.
    isolate: false,
    sequence: { sequencer: LongestFirst },
    testTimeout: 30_000,
    hookTimeout: 60_000,
    reporters: ["default"],
  },
});
