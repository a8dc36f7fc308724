/**
 * The runtime contract with the Kubernetes layer (components/apps), in one importable place.
 * Ports: `SERVICE_PORTS` (config.ts). Environment: each service's `envSchema` (services/<svc>/src/config.ts)
 * and `migrationEnvSchema` (runtime.ts) for the migration Job.
 */
import type { ServiceName } from "./config.js";

/** Methods that change nothing (RFC 9110 §9.2.1): the only ones sent or retried twice after a failure whose outcome is unknown. */
export const SAFE_METHODS: ReadonlySet<string> = new Set(["GET", "HEAD", "OPTIONS"]);

/** HTTP paths every service serves on its service port. */
export const SERVICE_PATHS = {
  /** Liveness: the process answers (no dependency checks). */
  live: "/healthz",
  /** Readiness: PostgreSQL reachable (Redis only reported); 503 while draining after SIGTERM. */
  ready: "/readyz",
  /** The original's health body, kept for existing probes and clients. */
  legacyHealth: "/health",
  /** Prometheus text format. */
  metrics: "/metrics",
  /** OpenAPI 3 document generated from the zod schemas. */
  openapi: "/openapi.json",
} as const;

/**
 * The blog's cache generation in Redis: the blog bumps it on every write before it answers, and files each
 * cached read under it; the gateway's micro-cache files its entries under it too, so neither serves what a
 * write replaced.
 */
export const BLOG_CACHE_GENERATION_KEY = "blog:gen";

/**
 * V8 flags each service runs with (command-line flags: the image's ENTRYPOINT, `ENTRYPOINTS.server`). A
 * small young generation and a capped old generation keep a service near 105-125 MiB RSS once idle after load
 * on Node 24 (75-95 MiB on Node 20, ~140 without the flags there); `--optimize-for-size`, tried first, saved as much memory but doubled the gateway's CPU per
 * request (docs/benchmarks.md). The cap sits well inside the pods' memory limits (192 MiB and up).
 * The gateway's semispaces are 4 MB, not 2: its requests hold their objects across a Redis round trip, and
 * with 2 MB under load those were promoted and full mark-compacts ran twice a second (a fifth less CPU per
 * cached read for ~6 MB of RSS, docs/benchmarks.md).
 */
const SEMI_SPACE_MB: Readonly<Record<ServiceName, number>> = { "api-gateway": 4, "user-service": 2, "auth-service": 2, "blog-service": 2 };
export const nodeFlags = (service: ServiceName): readonly string[] => [
  `--max-semi-space-size=${SEMI_SPACE_MB[service]}`,
  "--max-old-space-size=64",
  "--enable-source-maps",
];

/**
 * Process environment every service container gets besides its own variables: two glibc malloc arenas
 * instead of one per thread (worker and libuv threads otherwise each keep freed memory in their own arena),
 * and a fixed mmap threshold, so a large block (an Argon2id hash's 19 MiB) is always its own mapping,
 * returned to the system when freed; glibc's moving threshold would otherwise keep it in the heap after
 * the first few hashes.
 */
export const RUNTIME_ENV = { MALLOC_ARENA_MAX: "2", MALLOC_MMAP_THRESHOLD_: "131072" } as const;

/** What a container runs (production bundles, see scripts/build-services.mjs), from the workspace directory. */
export const ENTRYPOINTS = {
  server: (service: ServiceName): readonly string[] => ["node", ...nodeFlags(service), "dist/server.js"],
  /** One-shot migrations (a Job): any of user-service, auth-service, blog-service images carries it. */
  migrate: ["node", "--enable-source-maps", "dist/migrate.js"],
} as const;

/** Default `SHUTDOWN_GRACE_MS` (baseEnv). */
export const DEFAULT_SHUTDOWN_GRACE_MS = 10_000;

