/**
 * The contract between the Deployments and the service code: each container gets exactly the
 * variables its code reads (the services' own zod `envSchema`, imported, not repeated), they parse,
 * and the parsed values point where the cluster really is (ports, hosts, URLs, drain time).
 */
import { beforeAll, describe, expect, it } from "vitest";
import { envSchema as gatewayEnv } from "../../services/api-gateway/src/config.js";
import { envSchema as authEnv } from "../../services/auth-service/src/config.js";
import { envSchema as blogEnv } from "../../services/blog-service/src/config.js";
import { envSchema as userEnv } from "../../services/user-service/src/config.js";
import { loadEnv, postgresEnv, SERVICE_PORTS as KIT_PORTS } from "../../services/kit/src/config.js";
import { DEFAULT_STATEMENT_TIMEOUT_MS } from "../../services/kit/src/db.js";
import { GATEWAY_UPSTREAM_TIMEOUT_MS } from "./service-env.js";
import { ENTRYPOINTS } from "../../services/kit/src/contract.js";
import { DATABASE_ROLES as KIT_ROLES, ROLE_PASSWORD_ENV } from "../../services/kit/src/roles.js";
import { migrationEnvSchema } from "../../services/kit/src/runtime.js";
import { one, type ProgramRun, type RecordedResource, configuredRun } from "../../stacks/harness.js";
import { MIGRATION_COMMAND } from "./apps.js";
import { containerValue, type EnvVar, SECRET_VALUES } from "./testing/container-env.js";
import { BACKUP, DATABASE_ROLES, JWKS_PATH, REDIS_USERS, SERVICE_PORTS } from "./topology.js";

type Obj = Record<string, any>; // oxlint-disable-line typescript/no-explicit-any -- recorded inputs are untyped JSON

const SCHEMAS = { "api-gateway": gatewayEnv, "auth-service": authEnv, "user-service": userEnv, "blog-service": blogEnv } as const;

/** The environment a container would see: literals as they are, Secret keys resolved. */
function resolve(env: EnvVar[]): Record<string, string> {
  return Object.fromEntries(env.map((e) => [e.name, containerValue(e, "titanium-app-secrets")]));
}

const container = (r: RecordedResource): Obj => (r.inputs as Obj).spec.template.spec.containers[0];
const runs: Record<string, ProgramRun> = {};
beforeAll(async () => {
  runs.dev = await configuredRun("dev");
  runs.prod = await configuredRun("prod");
});

describe.each(["dev", "prod"])("service environment contract (%s)", (stack) => {
  it("lets PostgreSQL cancel a statement before the gateway stops waiting: a slow query is the service's 503, not the gateway's 504", () => {
    expect(DEFAULT_STATEMENT_TIMEOUT_MS).toBeLessThanOrEqual(GATEWAY_UPSTREAM_TIMEOUT_MS - 1_000);
  });

  it("uses the kit's ports", () => {
    expect(SERVICE_PORTS).toEqual(KIT_PORTS);
  });

  it("names the kit's database roles, and the Secret keys its migrator reads their passwords from", () => {
    const kit = { ...KIT_ROLES, [BACKUP]: KIT_ROLES.backup } as Record<string, string>;
    for (const [client, { role, passwordKey }] of Object.entries(DATABASE_ROLES)) {
      expect(kit[client]).toBe(role);
      expect(ROLE_PASSWORD_ENV[role]).toBe(passwordKey);
    }
    expect(Object.values(DATABASE_ROLES).map((r) => r.role).sort()).toEqual(Object.values(KIT_ROLES).sort());
  });

  it("the backup logs in as its read-only role, not the owner", () => {
    const cron = one(runs[stack]!, "kubernetes:batch/v1:CronJob", "apps-backup-cronjob");
    const dump = (cron.inputs as Obj).spec.jobTemplate.spec.template.spec.initContainers[0];
    const env = resolve(dump.env as EnvVar[]);
    expect(env).toMatchObject({ PGUSER: DATABASE_ROLES[BACKUP].role, PGPASSWORD: SECRET_VALUES.BACKUP_PGPASSWORD });
    expect(Object.keys(env)).not.toContain("POSTGRES_PASSWORD");
  });

  it.each(Object.keys(SCHEMAS) as (keyof typeof SCHEMAS)[])("%s: sets only variables its code reads, and they parse to the cluster's addresses", (svc) => {
    const schema = SCHEMAS[svc];
    const deployment = one(runs[stack]!, "kubernetes:apps/v1:Deployment", `apps-${svc}-deployment`);
    const c = container(deployment);
    const env = c.env as EnvVar[];
    const names = env.map((e) => e.name);
    expect(new Set(names).size).toBe(names.length);
    const read = Object.keys(schema.shape);
    expect(names.filter((n) => !read.includes(n))).toEqual([]);

    const parsed = loadEnv(schema, resolve(env)) as Record<string, unknown>;
    const port = SERVICE_PORTS[svc];
    expect(parsed.PORT).toBe(port);
    expect(c.ports[0].containerPort).toBe(port);
    // The service drains within the pod's budget.
    const podSpec = (deployment.inputs as Obj).spec.template.spec;
    expect(Number(parsed.SHUTDOWN_GRACE_MS) / 1000 + c.lifecycle.preStop.sleep.seconds).toBeLessThan(podSpec.terminationGracePeriodSeconds);

    const host = (name: string) => `${name}.titanium.svc.cluster.local`;
    if ("PGHOST" in schema.shape) {
      expect(parsed).toMatchObject({ PGHOST: host("postgres"), PGPORT: 5432, PGSSLMODE: "disable" });
      // Its own role and password, never the owner's.
      const own = DATABASE_ROLES[svc as keyof typeof DATABASE_ROLES];
      expect(own, `${svc} has no database role`).toBeDefined();
      expect(parsed.PGUSER).toBe(own.role);
      expect(parsed.PGPASSWORD).toBe(SECRET_VALUES[own.passwordKey]);
      expect(parsed.PGPASSWORD).not.toBe(SECRET_VALUES.POSTGRES_PASSWORD);
    }
    if ("REDIS_HOST" in schema.shape) {
      // Its own Redis user and password, never the probes' nor another service's.
      const own = REDIS_USERS[svc as keyof typeof REDIS_USERS];
      expect(own, `${svc} has no Redis user`).toBeDefined();
      expect(parsed).toMatchObject({ REDIS_HOST: host("redis"), REDIS_PORT: 6379, REDIS_USERNAME: own.user, REDIS_PASSWORD: SECRET_VALUES[own.passwordKey] });
      expect(parsed.REDIS_PASSWORD).not.toBe(SECRET_VALUES.REDIS_PASSWORD);
    }
    if ("AUTH_JWKS_URL" in schema.shape) expect(parsed.AUTH_JWKS_URL).toBe(`http://${host("auth-service")}:${KIT_PORTS["auth-service"]}${JWKS_PATH}`);
    for (const upstream of ["auth-service", "user-service", "blog-service"] as const) {
      const key = `${upstream.replace(/-service$/, "").toUpperCase()}_SERVICE_URL`;
      if (key in schema.shape) {
        // Set explicitly (the in-code default is the short name, which only resolves in the same namespace).
        expect(names).toContain(key);
        expect(parsed[key]).toBe(`http://${host(upstream)}:${KIT_PORTS[upstream]}`);
      }
    }
  });

  it("gives the migrations Job exactly what the kit's migrator reads", () => {
    const job = one(runs[stack]!, "kubernetes:batch/v1:Job", "apps-migrations-job");
    const c = container(job);
    expect(c.command).toEqual(MIGRATION_COMMAND);
    expect(MIGRATION_COMMAND).toEqual([...ENTRYPOINTS.migrate]);
    const env = c.env as EnvVar[];
    const read = [...Object.keys(postgresEnv), ...Object.values(ROLE_PASSWORD_ENV), "LOG_LEVEL"];
    expect(read.every((n) => n in migrationEnvSchema.shape)).toBe(true);
    expect(env.map((e) => e.name).filter((n) => !read.includes(n))).toEqual([]);
    // As the owner, with every role's password to set.
    expect(resolve(env)).toMatchObject({
      PGHOST: "postgres.titanium.svc.cluster.local",
      PGUSER: "titanium",
      PGPASSWORD: SECRET_VALUES.POSTGRES_PASSWORD,
      ...Object.fromEntries(Object.values(ROLE_PASSWORD_ENV).map((k) => [k, SECRET_VALUES[k]])),
    });
  });
});
