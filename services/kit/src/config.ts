import { z } from "zod";
import { DEFAULT_SHUTDOWN_GRACE_MS } from "./contract.js";

/**
 * Environment configuration shared by every Titanium service. Each service composes its own `envSchema`
 * from these parts (see `services/<svc>/src/config.ts`), so the Kubernetes layer can import the schema and
 * prove its Deployments set exactly the variables the code reads.
 */

/** The service ports of the original system: one place, read by the services, the local platform and tests. */
export const SERVICE_PORTS = {
  "api-gateway": 8000,
  "user-service": 8001,
  "auth-service": 8002,
  "blog-service": 8005,
} as const;
export type ServiceName = keyof typeof SERVICE_PORTS;
export const SERVICE_NAMES = Object.keys(SERVICE_PORTS) as ServiceName[];

/** Token issuer and audience when `JWT_ISSUER` / `JWT_AUDIENCE` are not set (the original's `iss`). */
export const DEFAULT_JWT_ISSUER = "auth-service";
export const DEFAULT_JWT_AUDIENCE = "titanium";

/** Raised when the environment is invalid: the message names every offending variable. */
export class ConfigError extends Error {
  constructor(readonly issues: { variable: string; message: string }[]) {
    super(`invalid environment: ${issues.map((i) => `${i.variable}: ${i.message}`).join("; ")}`);
    this.name = "ConfigError";
  }
}

const csv = z
  .string()
  .default("")
  .transform((s) =>
    s
      .split(",")
      .map((x) => x.trim())
      .filter(Boolean),
  );

/** An `Origin` header's form: http(s), a host, an optional port, nothing else (what a browser sends). */
function isOrigin(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === "https:" || url.protocol === "http:") && url.origin === value;
  } catch {
    return false;
  }
}

const optionalString = z
  .string()
  .optional()
  .transform((s) => (s === undefined || s === "" ? undefined : s));

const int = (def: number, min: number, max: number) => z.coerce.number().int().min(min).max(max).default(def);

const url = (protocols: string[]) =>
  z
    .string()
    .refine((s) => {
      try {
        return protocols.includes(new URL(s).protocol);
      } catch {
        return false;
      }
    }, `expected a URL (${protocols.join(" or ")})`);

/** Every service: port, logs, CORS, shutdown. */
export const baseEnv = {
  /** Listening port; defaults to the service's port in `SERVICE_PORTS`. */
  PORT: z.coerce.number().int().min(1).max(65535).optional(),
  /** Listening address. */
  HOST: z.string().default("0.0.0.0"),
  /** pino level. */
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  /** CORS allow-list (comma-separated origins); empty rejects every cross-origin request, as the original. */
  ALLOWED_ORIGINS: csv.refine(
    (list) => list.every(isOrigin),
    'expected comma-separated origins such as "https://blog.example.com" (scheme and host, optional port; no path, no trailing slash, no "*")',
  ),
  /** How long in-flight requests may take to finish after SIGTERM before connections are cut. */
  SHUTDOWN_GRACE_MS: int(DEFAULT_SHUTDOWN_GRACE_MS, 0, 600_000),
  /**
   * After SIGTERM, keep serving this long (readiness 503, every answer `Connection: close`) before the
   * listener and idle connections close, so callers that pick instances themselves (the gateway's upstream
   * lists) move away first. 0 in the cluster, where the pod's preStop sleep does this.
   */
  SHUTDOWN_DELAY_MS: int(0, 0, 60_000),
};

/** PostgreSQL: `DATABASE_URL`, or the libpq parts Kubernetes sets (the password from a Secret key). */
export const postgresEnv = {
  DATABASE_URL: optionalString.pipe(z.union([z.undefined(), url(["postgres:", "postgresql:"])])),
  PGHOST: optionalString,
  PGPORT: int(5432, 1, 65535),
  PGDATABASE: z.string().default("titanium"),
  PGUSER: z.string().default("postgres"),
  PGPASSWORD: optionalString,
  /** `disable` (in-cluster traffic is mTLS-wrapped by Istio), `require`, `verify-full`. */
  PGSSLMODE: z.enum(["disable", "prefer", "require", "verify-full"]).default("disable"),
  /** Connections per replica. */
  PG_POOL_MAX: int(10, 1, 100),
};

const POSTGRES_MISSING = "set DATABASE_URL or PGHOST";

/**
 * The environment schema of a process that needs PostgreSQL: {@link postgresEnv} plus `shape`, where
 * neither `DATABASE_URL` nor `PGHOST` set is a bad environment like any other, reported by `loadEnv`
 * with the other bad variables (start-up stops with the one line naming it, not later with a stack
 * trace when the pool is made).
 */
export function withPostgres<T extends z.ZodRawShape>(shape: T) {
  return z.object({ ...postgresEnv, ...shape }).superRefine(
    (env, ctx) => {
      const e = env as { DATABASE_URL?: unknown; PGHOST?: unknown } | undefined;
      if (e && typeof e === "object" && !e.DATABASE_URL && !e.PGHOST) ctx.addIssue({ code: "custom", path: ["DATABASE_URL"], message: POSTGRES_MISSING });
    },
    // Checked even when other variables are bad too, so one run names them all.
    { when: () => true },
  );
}

/**
 * Redis (cache and rate limits): `REDIS_URL`, or host/port and the service's own user and password (`REDIS_USERNAME`:
 * its ACL user, `redis-acl.ts`; unset logs in as `default`). Unset means "no Redis" (degraded).
 */
export const redisEnv = {
  REDIS_URL: optionalString.pipe(z.union([z.undefined(), url(["redis:", "rediss:"])])),
  REDIS_HOST: optionalString,
  REDIS_PORT: int(6379, 1, 65535),
  REDIS_USERNAME: optionalString,
  REDIS_PASSWORD: optionalString,
};

/** Local verification of access tokens against the auth-service's cached JWKS. */
export const jwtVerifyEnv = {
  AUTH_JWKS_URL: url(["http:", "https:"]).default(
    `http://auth-service:${SERVICE_PORTS["auth-service"]}/.well-known/jwks.json`,
  ),
  JWT_ISSUER: z.string().min(1).default(DEFAULT_JWT_ISSUER),
  JWT_AUDIENCE: z.string().min(1).default(DEFAULT_JWT_AUDIENCE),
};

/** Default in-cluster URL of a service (the Kubernetes Service name is the service name). */
export const defaultServiceUrl = (svc: ServiceName) => `http://${svc}:${SERVICE_PORTS[svc]}`;

/** A comma-separated list of URLs as given; `urlList` splits it. */
export const urlList = (s: string): string[] =>
  s
    .split(",")
    .map((x) => x.trim())
    .filter(Boolean);

/**
 * A service the process calls: one URL (the cluster: its Kubernetes Service), or several instances' URLs,
 * comma-separated (the local platform, setups without a mesh), for an `UpstreamPool`.
 */
export const serviceUrls = (svc: ServiceName) =>
  z
    .string()
    .default(defaultServiceUrl(svc))
    .refine(
      (s) =>
        urlList(s).length > 0 &&
        urlList(s).every((u) => {
          try {
            return ["http:", "https:"].includes(new URL(u).protocol);
          } catch {
            return false;
          }
        }),
      "expected a URL (http or https), or several separated by commas",
    );

/** Parse `env` with `schema`; throws `ConfigError` naming each bad or missing variable. */
export function loadEnv<S extends z.ZodType>(schema: S, env: NodeJS.ProcessEnv = process.env): z.output<S> {
  const result = schema.safeParse(env);
  if (result.success) return result.data;
  throw new ConfigError(
    result.error.issues.map((i) => ({
      variable: i.path.length ? i.path.join(".") : "(environment)",
      message: i.message,
    })),
  );
}

/** The variable names a schema reads (for the Kubernetes layer's test and the docs). */
export function envVariables(schema: z.ZodObject): string[] {
  return Object.keys(schema.shape).sort();
}

export interface PostgresSettings {
  DATABASE_URL?: string | undefined;
  PGHOST?: string | undefined;
  PGPORT: number;
  PGDATABASE: string;
  PGUSER: string;
  PGPASSWORD?: string | undefined;
  PGSSLMODE: "disable" | "prefer" | "require" | "verify-full";
  PG_POOL_MAX: number;
}

export interface RedisSettings {
  REDIS_URL?: string | undefined;
  REDIS_HOST?: string | undefined;
  REDIS_PORT: number;
  REDIS_USERNAME?: string | undefined;
  REDIS_PASSWORD?: string | undefined;
}

/** A PostgreSQL connection URL from either form (`DATABASE_URL` wins); throws naming the variable if neither is set. */
export function postgresUrl(s: PostgresSettings): string {
  if (s.DATABASE_URL) return s.DATABASE_URL;
  if (!s.PGHOST) throw new ConfigError([{ variable: "DATABASE_URL", message: POSTGRES_MISSING }]);
  const u = new URL("postgres://localhost");
  u.hostname = s.PGHOST;
  u.port = String(s.PGPORT);
  u.pathname = `/${encodeURIComponent(s.PGDATABASE)}`;
  u.username = encodeURIComponent(s.PGUSER);
  if (s.PGPASSWORD) u.password = encodeURIComponent(s.PGPASSWORD);
  u.searchParams.set("sslmode", s.PGSSLMODE);
  return u.toString();
}

/** A Redis URL from either form, or undefined when Redis is not configured. */
export function redisUrl(s: RedisSettings): string | undefined {
  if (s.REDIS_URL) return s.REDIS_URL;
  if (!s.REDIS_HOST) return undefined;
  const u = new URL("redis://localhost");
  u.hostname = s.REDIS_HOST;
  u.port = String(s.REDIS_PORT);
  if (s.REDIS_USERNAME) u.username = encodeURIComponent(s.REDIS_USERNAME);
  if (s.REDIS_PASSWORD) u.password = encodeURIComponent(s.REDIS_PASSWORD);
  return u.toString();
}
