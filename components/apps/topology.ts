/**
 * The application's shape in one place: workload names, ports, labels and who calls whom.
 * Every NetworkPolicy, AuthorizationPolicy, Service, URL and VirtualService route is derived from
 * this table; the traffic-graph test checks the result against an independently written graph.
 */

/**
 * The four application services, in dependency order. Their names are Kubernetes names too. Here, at
 * the bottom of the import graph, so the stack config (which re-exports them) and this table share one list.
 */
export const SERVICE_NAMES = ["api-gateway", "auth-service", "user-service", "blog-service"] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];

/** HTTP port of each service (the services' own defaults; `service-env.test.mts` checks them against the kit). */
export const SERVICE_PORTS: Record<ServiceName, number> = {
  "api-gateway": 8000,
  "user-service": 8001,
  "auth-service": 8002,
  "blog-service": 8005,
};

/** `maxConnections` is passed to PostgreSQL, so the services' pool arithmetic has one source. */
export const POSTGRES = { name: "postgres", port: 5432, maxConnections: 100 } as const;
export const REDIS = { name: "redis", port: 6379 } as const;

/** Jobs and helpers that are workloads too (their own ServiceAccount, so their own principal). */
export const MIGRATIONS = "migrations";
export const BACKUP = "postgres-backup";

/**
 * The PostgreSQL role each database client logs in as, and the key of the app Secret with its password (the
 * kit's `DATABASE_ROLES` / `ROLE_PASSWORD_ENV`, which create and grant them: service-env.test.mts holds them
 * equal). The owner (`data.postgres.user`, a superuser) is the migrations' only.
 */
export const DATABASE_ROLES = {
  "auth-service": { role: "auth_service", passwordKey: "AUTH_SERVICE_PGPASSWORD" },
  "user-service": { role: "user_service", passwordKey: "USER_SERVICE_PGPASSWORD" },
  "blog-service": { role: "blog_service", passwordKey: "BLOG_SERVICE_PGPASSWORD" },
  [BACKUP]: { role: "titanium_backup", passwordKey: "BACKUP_PGPASSWORD" },
} as const;
export type DatabaseClient = keyof typeof DATABASE_ROLES;

/**
 * The Redis user each Redis client logs in as, the key of the app Secret with its password, and its ACL rules
 * after the password (the kit's `REDIS_ACL` / `REDIS_PASSWORD_ENV` in services/kit/src/redis-acl.ts say why each
 * is needed: redis-acl.test.mts holds the two equal and runs each service's code against them). The `default`
 * user is off; `probe` is the Redis pod's own probes'. Its password is the former shared one's key.
 */
export const REDIS_PROBE = "probe";
export const REDIS_USERS = {
  "api-gateway": { user: "api-gateway", passwordKey: "API_GATEWAY_REDIS_PASSWORD", rules: "resetchannels -@all +ping +info +evalsha +eval +time +get +set ~rl:* %R~blog:gen" },
  "user-service": { user: "user-service", passwordKey: "USER_SERVICE_REDIS_PASSWORD", rules: "resetchannels -@all +ping +info +evalsha +eval +time +get +set +exists +incr ~user:*" },
  "blog-service": { user: "blog-service", passwordKey: "BLOG_SERVICE_REDIS_PASSWORD", rules: "resetchannels -@all +ping +info +evalsha +eval +time +get +set +exists +incr ~blog:*" },
  [REDIS_PROBE]: { user: "probe", passwordKey: "REDIS_PASSWORD", rules: "resetchannels -@all +ping" },
} as const;
export type RedisClient = keyof typeof REDIS_USERS;
/** The `default` user's line: off, nothing allowed. */
export const REDIS_DEFAULT_USER = "user default reset off resetchannels -@all";
export const LOAD_GENERATOR = "load-generator";

/** Every workload of the namespace that can be a caller or a callee. */
export type Workload = ServiceName | typeof POSTGRES.name | typeof REDIS.name | typeof MIGRATIONS | typeof BACKUP;

/** The port a workload serves on (jobs serve nothing). */
export function portOf(w: Workload): number | undefined {
  if (w === POSTGRES.name) return POSTGRES.port;
  if (w === REDIS.name) return REDIS.port;
  return (SERVICE_PORTS as Record<string, number>)[w];
}

/**
 * Calls inside the namespace. An entry may narrow the call to HTTP paths (enforced by the callee's
 * AuthorizationPolicy): user- and blog-service only fetch the auth-service's public keys to verify
 * tokens locally, so they may not reach its login or refresh endpoints.
 */
export interface Call {
  to: Workload;
  /** HTTP paths the caller may use (`undefined`: any path on the port). */
  paths?: string[];
  /** HTTP methods the caller may use (`undefined`: any method). */
  methods?: string[];
}

/** Where the services find the auth-service's signing keys (`AUTH_JWKS_URL`). */
export const JWKS_PATH = "/.well-known/jwks.json";

const jwks: Call = { to: "auth-service", paths: [JWKS_PATH], methods: ["GET"] };

/**
 * The upstream paths the api-gateway's routes map to (services/api-gateway/src/routes.ts; a test holds
 * them equal): never the services' `/internal/*`, `/metrics`, `/readyz` or `/openapi.json`.
 */
export const GATEWAY_UPSTREAM_PATHS = {
  "auth-service": ["/login", "/auth/refresh", "/auth/logout", "/verify", "/health", JWKS_PATH],
  "user-service": ["/users", "/users/*", "/health"],
  "blog-service": ["/", "/blog", "/blog/*"],
} as const satisfies Partial<Record<ServiceName, readonly string[]>>;

/** The user-service's credential check, the auth-service's only call to it (the kit's internal prefix). */
export const VERIFY_CREDENTIALS_PATH = "/internal/verify-credentials";

export const CALLS: Record<Workload, Call[]> = {
  // Redis holds the distributed rate-limit counters.
  "api-gateway": [
    ...(Object.entries(GATEWAY_UPSTREAM_PATHS) as [ServiceName, readonly string[]][]).map(([to, paths]) => ({ to, paths: [...paths] })),
    { to: REDIS.name },
  ],
  // Refresh tokens live in PostgreSQL so they can be revoked.
  "auth-service": [{ to: "user-service", paths: [VERIFY_CREDENTIALS_PATH], methods: ["POST"] }, { to: POSTGRES.name }],
  "user-service": [{ to: POSTGRES.name }, { to: REDIS.name }, jwks],
  "blog-service": [{ to: POSTGRES.name }, { to: REDIS.name }, jwks],
  [POSTGRES.name]: [],
  [REDIS.name]: [],
  [MIGRATIONS]: [{ to: POSTGRES.name }],
  [BACKUP]: [{ to: POSTGRES.name }],
};

/** The calls that reach `target`, with the caller's name. */
export function callersOf(target: Workload): (Call & { from: Workload })[] {
  return (Object.entries(CALLS) as [Workload, Call[]][]).flatMap(([from, calls]) =>
    calls.filter((c) => c.to === target).map((c) => ({ ...c, from })),
  );
}

/**
 * The original's public paths (seed-system §1.1, §3.5), one place for the VirtualService's routes and
 * the AuthorizationPolicies that admit the ingress gateway: nothing else is reachable from outside
 * (no `/metrics`, `/readyz` or `/openapi.json` of any service).
 */
export const PUBLIC_PATHS = {
  /** Exact health routes of the user- and auth-service, through the api-gateway. */
  health: ["/api/users/health", "/api/auth/health"],
  /**
   * The site's `/health`: the original's ingress sent it, like every path it did not know, to the
   * blog-service (`{"status":"ok","service":"blog-service"}`); the gateway's own empty 200 was never public.
   */
  siteHealth: "/health",
  /** The API, through the api-gateway (which routes and rate-limits). */
  apiPrefixes: ["/api/", "/blog/api/"],
  /** The blog UI's pages and static files. */
  uiPrefix: "/blog",
  /** The SPA shell (redirects to `/blog/`). */
  root: "/",
} as const;

/** Services the public ingress gateway may reach, and what it may ask of them. */
export const INGRESS_TARGETS: { to: ServiceName; paths?: string[]; notPaths?: string[]; methods?: string[] }[] = [
  { to: "api-gateway", paths: [...PUBLIC_PATHS.health, ...PUBLIC_PATHS.apiPrefixes.map((p) => `${p}*`)] },
  // Pages and static files only, read-only; `/blog/api/*` must go through the api-gateway and its rate limits.
  {
    to: "blog-service",
    paths: [PUBLIC_PATHS.root, PUBLIC_PATHS.siteHealth, PUBLIC_PATHS.uiPrefix, `${PUBLIC_PATHS.uiPrefix}/*`],
    notPaths: [`${PUBLIC_PATHS.apiPrefixes[1]}*`],
    methods: ["GET", "HEAD"],
  },
];

/** Labels every object of the layer carries. */
export const PART_OF = { "app.kubernetes.io/part-of": "titanium", "app.kubernetes.io/managed-by": "pulumi" } as const;

/** The selector of a workload's pods (immutable in Deployments: never add the version here). */
export function selectorOf(w: string): Record<string, string> {
  return { "app.kubernetes.io/name": w };
}

/** Pod and object labels: the selector, Istio's `app`/`version` (telemetry), and the component. */
export function labelsOf(w: string, component: string, version?: string): Record<string, string> {
  return {
    ...selectorOf(w),
    "app.kubernetes.io/component": component,
    ...PART_OF,
    app: w,
    ...(version ? { version } : {}),
  };
}

/** In-cluster DNS name of a Service (K3s cluster domain `cluster.local`). */
export function serviceHost(name: string, namespace: string): string {
  return `${name}.${namespace}.svc.cluster.local`;
}

/** The image's version for labels: the digest's first 12 hex digits or the tag. */
export function imageVersion(image: string): string {
  const digest = /@sha256:([a-f0-9]{12})/.exec(image);
  if (digest) return digest[1]!;
  return (image.split("/").pop() ?? image).split(":")[1] ?? "unknown";
}

