/**
 * The environment each service gets: exactly the variables its code reads (checked against the
 * services' own `envSchema` by `apps.test.mts`). Plain values for facts, `secretKeyRef` for secrets:
 * nothing secret is ever a literal or sits in a ConfigMap.
 */
import type * as k8s from "@pulumi/kubernetes";
import type * as pulumi from "@pulumi/pulumi";
import { CALLS, DATABASE_ROLES, type DatabaseClient, JWKS_PATH, POSTGRES, REDIS, REDIS_USERS, type RedisClient, SERVICE_PORTS, serviceHost, type ServiceName, type Workload } from "./topology";

type EnvVar = k8s.types.input.core.v1.EnvVar;

export interface EnvContext {
  /** Namespace of the services (for in-cluster URLs). */
  namespace: string;
  /** Secret with `POSTGRES_PASSWORD`, each database role's password (`DATABASE_ROLES`), each Redis user's (`REDIS_USERS`), `JWT_PRIVATE_KEY`. */
  secretName: string;
  /** The database and its owner role (the migrations'; each other client has its own role, `DATABASE_ROLES`). */
  postgres: { database: string; user: string };
  /** Connections each replica may open (see {@link poolSize}). */
  pgPoolMax: number;
  /** Comma-separated browser origins allowed by CORS. */
  allowedOrigins: string;
  /**
   * Addresses of the proxies whose `X-Forwarded-For` the api-gateway trusts: loopback only (`127.0.0.0/8`),
   * i.e. the pod's own sidecar (it connects from 127.0.0.6 and passes on unchanged the header the ingress
   * gateway appended the client's address to); never the ingress gateway pods or the pod range (see apps.ts).
   */
  trustedProxyCidrs: string;
  /** The services' drain time after SIGTERM. */
  shutdownGraceMs: number;
  /** PEM public keys the auth-service publishes besides its signing key (key rotation); public, so plain. */
  jwtPublicKeys: pulumi.Input<string>;
}

/**
 * The api-gateway's upstream timeout (`UPSTREAM_TIMEOUT_MS`): how long it waits for a service's whole answer,
 * its own retries included, before it answers its 504 envelope. Set here, not left to the service's default,
 * because the public routes in front of it (`ingress.ts`) derive their timeouts from it: they must wait longer
 * than the gateway does, or Envoy cuts a slow read and the client gets Envoy's plain-text 504.
 */
export const GATEWAY_UPSTREAM_TIMEOUT_MS = 10_000;

/** Connections kept free for migrations, backups and an operator's psql. */
export const RESERVED_CONNECTIONS = 20;

/**
 * Pool size per replica so that every replica of every database client, at the HPA's maximum,
 * fits in `max_connections` with the reserve left over (between 2 and the kit's default 10).
 */
export function poolSize(maxReplicasOfDatabaseClients: number[]): number {
  const total = maxReplicasOfDatabaseClients.reduce((a, b) => a + b, 0);
  return Math.max(2, Math.min(10, Math.floor((POSTGRES.maxConnections - RESERVED_CONNECTIONS) / Math.max(1, total))));
}

/** An env var read from the app Secret (`name` defaults to the Secret's key). */
const secret = (ctx: EnvContext, key: string, name = key): EnvVar => ({ name, valueFrom: { secretKeyRef: { name: ctx.secretName, key } } });
const uses = (svc: Workload, target: Workload) => CALLS[svc].some((c) => c.to === target);
const urlOf = (ctx: EnvContext, svc: ServiceName) => `http://${serviceHost(svc, ctx.namespace)}:${SERVICE_PORTS[svc]}`;

/** What sets a service's replica count: fixed, or an HPA's bounds. */
export interface ReplicaSpec {
  replicas: number;
  minReplicas?: number | undefined;
  maxReplicas?: number | undefined;
}

/** A service's replicas at their peak: the HPA's maximum when autoscaling (never below its minimum), else `replicas`. */
export const peakReplicas = (s: ReplicaSpec, autoscaling: boolean): number =>
  autoscaling ? (s.maxReplicas ?? Math.max(s.replicas, s.minReplicas ?? s.replicas)) : s.replicas;

/** The services holding a PostgreSQL pool (its callers in the topology), each with its replicas at their peak. */
export const databaseClientPeaks = (services: Record<ServiceName, ReplicaSpec>, autoscaling: boolean): [ServiceName, number][] =>
  (Object.keys(services) as ServiceName[]).filter((svc) => uses(svc, POSTGRES.name)).map((svc) => [svc, peakReplicas(services[svc], autoscaling)]);

/**
 * libpq-style connection variables: `as` a service's or the backup's own role (`DATABASE_ROLES`: its name and its
 * password's Secret key), or as the `owner` (the migrations, which also get every role's password to set it).
 */
export function postgresEnv(ctx: EnvContext, opts: { pool: boolean; as: DatabaseClient | "owner" }): EnvVar[] {
  const login =
    opts.as === "owner"
      ? [
          { name: "PGUSER", value: ctx.postgres.user },
          secret(ctx, "POSTGRES_PASSWORD", "PGPASSWORD"),
          ...Object.values(DATABASE_ROLES).map((r) => secret(ctx, r.passwordKey)),
        ]
      : [{ name: "PGUSER", value: DATABASE_ROLES[opts.as].role }, secret(ctx, DATABASE_ROLES[opts.as].passwordKey, "PGPASSWORD")];
  return [
    { name: "PGHOST", value: serviceHost(POSTGRES.name, ctx.namespace) },
    { name: "PGPORT", value: String(POSTGRES.port) },
    { name: "PGDATABASE", value: ctx.postgres.database },
    ...login,
    // Istio wraps the connection in mTLS; TLS inside it would only cost CPU.
    { name: "PGSSLMODE", value: "disable" },
    ...(opts.pool ? [{ name: "PG_POOL_MAX", value: String(ctx.pgPoolMax) }] : []),
  ];
}

/** The environment of one service, derived from what it calls. */
export function serviceEnv(svc: ServiceName, ctx: EnvContext): EnvVar[] {
  const env: EnvVar[] = [
    { name: "PORT", value: String(SERVICE_PORTS[svc]) },
    { name: "ALLOWED_ORIGINS", value: ctx.allowedOrigins },
    { name: "SHUTDOWN_GRACE_MS", value: String(ctx.shutdownGraceMs) },
  ];
  if (uses(svc, POSTGRES.name)) {
    if (!(svc in DATABASE_ROLES)) throw new Error(`${svc} uses PostgreSQL but has no database role (DATABASE_ROLES in topology.ts, roles.ts in the kit)`);
    env.push(...postgresEnv(ctx, { pool: true, as: svc as DatabaseClient }));
  }
  if (uses(svc, REDIS.name)) {
    if (!(svc in REDIS_USERS)) throw new Error(`${svc} uses Redis but has no Redis user (REDIS_USERS in topology.ts, redis-acl.ts in the kit)`);
    // Its own ACL user and password, allowed only its keys and commands.
    const own = REDIS_USERS[svc as RedisClient];
    env.push(
      { name: "REDIS_HOST", value: serviceHost(REDIS.name, ctx.namespace) },
      { name: "REDIS_PORT", value: String(REDIS.port) },
      { name: "REDIS_USERNAME", value: own.user },
      secret(ctx, own.passwordKey, "REDIS_PASSWORD"),
    );
  }
  // Upstream URLs of the services it calls (whole API), and the JWKS when it only verifies tokens.
  for (const call of CALLS[svc]) {
    if (!(call.to in SERVICE_PORTS)) continue;
    const to = call.to as ServiceName;
    if (call.paths?.length === 1 && call.paths[0] === JWKS_PATH) continue; // keys only: AUTH_JWKS_URL below
    env.push({ name: `${to.replace(/-service$/, "").toUpperCase()}_SERVICE_URL`, value: urlOf(ctx, to) });
  }
  // Whoever talks to the auth-service verifies its tokens locally with the cached JWKS.
  if (uses(svc, "auth-service")) env.push({ name: "AUTH_JWKS_URL", value: `${urlOf(ctx, "auth-service")}${JWKS_PATH}` });
  if (svc === "auth-service") env.push(secret(ctx, "JWT_PRIVATE_KEY"), { name: "JWT_PUBLIC_KEYS", value: ctx.jwtPublicKeys });
  if (svc === "api-gateway")
    env.push({ name: "TRUSTED_PROXY_CIDRS", value: ctx.trustedProxyCidrs }, { name: "UPSTREAM_TIMEOUT_MS", value: String(GATEWAY_UPSTREAM_TIMEOUT_MS) });
  return env;
}
