/**
 * The application layer: the four Titanium services, PostgreSQL, Redis, migrations, backups, the
 * public routes, default-deny mesh security and the optional load generator, wired from
 * `topology.ts` (who calls whom) and the typed stack config.
 */
import type * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { type ResourceSpec, type ServiceName, serviceImage, type TitaniumConfig } from "../../stacks/config";
import { PostgresBackup } from "./backup";
import { AppIngress } from "./ingress";
import type { AppPlatform } from "./inputs";
import { LoadGenerator } from "./load-generator";
import { type Access, type Peer, principalOf, shutdownTiming } from "./mesh";
import { MeshSecurity } from "./mesh-security";
import { Migrations } from "./migrations";
import { Postgres } from "./postgres";
import { Redis } from "./redis";
import { databaseClientPeaks, type EnvContext, peakReplicas, poolSize, postgresEnv, serviceEnv } from "./service-env";
import { TitaniumService } from "./titanium-service";
import {
  BACKUP,
  CALLS,
  callersOf,
  INGRESS_TARGETS,
  MIGRATIONS,
  portOf,
  POSTGRES,
  REDIS,
  SERVICE_NAMES,
  SERVICE_PORTS,
  selectorOf,
  serviceHost,
  type Workload,
} from "./topology";

export interface TitaniumAppsArgs {
  /** Stack name (backup object prefix). */
  stack: string;
  /** Image registry, tag and digests of the services. */
  images: TitaniumConfig["images"];
  /** Replicas, HPA bounds and sizes per service. */
  services: TitaniumConfig["services"];
  /** PostgreSQL, Redis and backups. */
  data: TitaniumConfig["data"];
  /** Load generator and autoscaling switches. */
  features: TitaniumConfig["features"];
  /** The mesh-wide sidecar size (`charts.istiod.resources.proxy`): every pod's unless its config says otherwise. */
  defaultSidecar: ResourceSpec;
  /** Public host name (`ingress.hostname`); empty when the stack is reached by IP. */
  hostname: string;
  /** `protect` the database volume and StatefulSet. */
  protect: boolean;
  /** What the platform layer provides (namespace, secrets, gateway, identities). */
  platform: AppPlatform;
  /** GCS bucket for database dumps (cloud layer). */
  backupBucket: pulumi.Input<string>;
  /** Public keys of every configured JWT key, the signing key first (cloud layer, config `auth.signingKeys`). */
  jwtPublicKeys: pulumi.Input<string>;
  /** Kubernetes provider of the cluster (cluster layer). */
  provider: k8s.Provider;
}

/** The services' drain time after SIGTERM (`SHUTDOWN_GRACE_MS`). */
export const SHUTDOWN_GRACE_SECONDS = 10;
/** The migrations command inside the user-service image: the kit's `ENTRYPOINTS.migrate` (service-env.test.mts holds them equal). */
export const MIGRATION_COMMAND = ["node", "--enable-source-maps", "dist/migrate.js"];
/** The image that carries the migrations. */
export const MIGRATION_IMAGE_SERVICE: ServiceName = "user-service";

export class TitaniumApps extends pulumi.ComponentResource {
  /** In-cluster URL of every service. */
  readonly urls: Record<ServiceName, string>;
  readonly virtualServiceName: pulumi.Output<string>;
  readonly backupCronJob: pulumi.Output<string>;

  constructor(name: string, args: TitaniumAppsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("titanium:apps:TitaniumApps", name, {}, opts);
    const { platform, provider } = args;
    const namespace = platform.namespace;
    // Every object of the layer lives in the platform's namespace, named by a plain string (no implicit
    // dependency): each waits for what the platform must have ready first, its namespace included.
    const child = { parent: this, transformations: [createdAfter(platform.ready)] };
    const autoscaling = args.features.autoscaling;
    // Stated on every pod (annotations), so what the pod gets is in the plan, not only in istiod's values.
    const sidecarOf = (s: { sidecar?: ResourceSpec | undefined }) => s.sidecar ?? args.defaultSidecar;

    const peerOf = (w: Workload): Peer => ({ name: w, namespace, podLabels: selectorOf(w), principal: principalOf(platform, namespace, w) });
    const ingress: Peer = { name: "ingress-gateway", ...platform.ingressGateway };
    const prometheus: Peer = { name: "prometheus", ...platform.prometheus };
    const callersFrom = (w: Workload): Access[] =>
      callersOf(w).map((c) => ({ peer: peerOf(c.from), ports: [portOf(w)!], paths: c.paths, methods: c.methods }));
    // Istio marks every injected pod for Prometheus: the data stores' proxies are scraped on the agent port too.
    const scrapedByPrometheus: Access = { peer: prometheus, ports: [platform.prometheus.metricsPort] };
    const calleesOf = (w: Workload): Access[] => CALLS[w].map((c) => ({ peer: peerOf(c.to), ports: [portOf(c.to)!] }));

    // Baseline first: no pod of the layer ever runs without default deny.
    const security = new MeshSecurity(`${name}-mesh-security`, { namespace, provider, dependsOn: platform.ready }, child);
    const ready = [...platform.ready, security.networkPolicy, security.authorizationPolicy];

    const maxReplicas = (svc: ServiceName) => peakReplicas(args.services[svc], autoscaling);
    const databasePeaks = databaseClientPeaks(args.services, autoscaling);
    const env: EnvContext = {
      namespace,
      secretName: platform.appSecretName,
      postgres: { database: args.data.postgres.database, user: args.data.postgres.user },
      pgPoolMax: poolSize(databasePeaks.map(([, peak]) => peak)),
      allowedOrigins: args.hostname ? `https://${args.hostname}` : "",
      // The api-gateway's peer is its own sidecar (127.0.0.6), which passes X-Forwarded-For on unchanged (an
      // inbound sidecar does not use the remote address); the ingress gateway appended the client's address
      // to it. Nothing else is trusted: with the pod range, a pod calling the public address (its own IP
      // appended) would have the X-Forwarded-For entries it wrote itself believed, and its rate limits with them.
      trustedProxyCidrs: "127.0.0.0/8",
      shutdownGraceMs: SHUTDOWN_GRACE_SECONDS * 1000,
      jwtPublicKeys: args.jwtPublicKeys,
    };

    const postgres = new Postgres(`${name}-postgres`, {
      namespace,
      image: args.data.postgres.image,
      database: args.data.postgres.database,
      user: args.data.postgres.user,
      storageGi: args.data.postgres.storageGi,
      diskType: args.data.postgres.diskType,
      resources: args.data.postgres.resources,
      sidecar: sidecarOf(args.data.postgres),
      secretName: platform.appSecretName,
      callers: [...callersFrom(POSTGRES.name), scrapedByPrometheus],
      platform,
      protect: args.protect,
      provider,
      dependsOn: ready,
    }, child);

    const redis = new Redis(`${name}-redis`, {
      namespace,
      image: args.data.redis.image,
      maxMemoryMb: args.data.redis.maxMemoryMb,
      resources: args.data.redis.resources,
      sidecar: sidecarOf(args.data.redis),
      secretName: platform.appSecretName,
      callers: [...callersFrom(REDIS.name), scrapedByPrometheus],
      platform,
      provider,
      dependsOn: ready,
    }, child);

    const migrationSpec = args.services[MIGRATION_IMAGE_SERVICE];
    const migrations = new Migrations(`${name}-migrations`, {
      namespace,
      image: serviceImage(args.images, MIGRATION_IMAGE_SERVICE),
      command: MIGRATION_COMMAND,
      env: postgresEnv(env, { pool: false, as: "owner" }),
      resources: migrationSpec.resources,
      sidecar: sidecarOf(migrationSpec),
      callees: calleesOf(MIGRATIONS),
      platform,
      provider,
      dependsOn: [...ready, postgres],
    }, child);

    const timing = shutdownTiming(SHUTDOWN_GRACE_SECONDS);
    const services = {} as Record<ServiceName, TitaniumService>;
    for (const svc of SERVICE_NAMES) {
      const spec = args.services[svc];
      const port = SERVICE_PORTS[svc];
      const usesDatabase = databasePeaks.some(([client]) => client === svc);
      const usesRedis = CALLS[svc].some((c) => c.to === REDIS.name);
      const callers: Access[] = [
        ...callersFrom(svc),
        ...INGRESS_TARGETS.filter((t) => t.to === svc).map((t) => ({ peer: ingress, ports: [port], paths: t.paths, notPaths: t.notPaths, methods: t.methods })),
        // Merged metrics on the agent port (ADR 0021); Prometheus has no mesh certificate for the app port.
        { peer: prometheus, ports: [platform.prometheus.metricsPort] },
      ];
      services[svc] = new TitaniumService(`${name}-${svc}`, {
        serviceName: svc,
        namespace,
        image: serviceImage(args.images, svc),
        port,
        replicas: spec.replicas,
        autoscaling: autoscaling
          ? { minReplicas: spec.minReplicas ?? spec.replicas, maxReplicas: maxReplicas(svc), targetCpuUtilization: spec.targetCpuUtilization }
          : undefined,
        resources: spec.resources,
        sidecar: sidecarOf(spec),
        env: serviceEnv(svc, env),
        callers,
        callees: calleesOf(svc),
        platform,
        shutdown: timing,
        strictSpread: autoscaling,
        provider,
        // The new schema is in place before a new version that needs it takes traffic.
        dependsOn: [...ready, ...(usesDatabase ? [postgres, migrations.job] : []), ...(usesRedis ? [redis] : [])],
      }, child);
    }

    const appIngress = new AppIngress(`${name}-ingress`, {
      namespace,
      gateway: platform.gateway,
      hosts: platform.hosts,
      apiGateway: { host: serviceHost("api-gateway", namespace), port: SERVICE_PORTS["api-gateway"] },
      blog: { host: serviceHost("blog-service", namespace), port: SERVICE_PORTS["blog-service"] },
      provider,
      dependsOn: platform.ready,
    }, child);

    const backup = new PostgresBackup(`${name}-backup`, {
      namespace,
      schedule: args.data.backup.schedule,
      postgresImage: args.data.postgres.image,
      uploaderImage: args.data.backup.uploaderImage,
      bucket: args.backupBucket,
      prefix: args.stack,
      env: postgresEnv(env, { pool: false, as: BACKUP }),
      resources: args.data.backup.resources,
      dumpSpaceGi: args.data.postgres.storageGi,
      sidecar: sidecarOf(args.data.postgres),
      callees: calleesOf(BACKUP),
      platform,
      provider,
      // It logs in as its own role, which the migrations create and give their password: a CronJob switched to it
      // before the Job ran (a fresh stack, the roles' first deploy, a failed Job) would dump nothing.
      dependsOn: [...ready, postgres, migrations.job],
    }, child);

    if (args.features.loadGenerator.enabled) {
      new LoadGenerator(`${name}-load-generator`, {
        namespace,
        image: args.features.loadGenerator.image,
        requestsPerSecond: args.features.loadGenerator.requestsPerSecond,
        hostname: args.hostname,
        ingressGateway: platform.ingressGateway,
        platform,
        resources: args.features.loadGenerator.resources,
        sidecar: sidecarOf(args.features.loadGenerator),
        provider,
        dependsOn: [...ready, appIngress, ...Object.values(services)],
      }, child);
    }

    this.urls = Object.fromEntries(SERVICE_NAMES.map((s) => [s, services[s].url])) as Record<ServiceName, string>;
    this.virtualServiceName = appIngress.virtualServiceName;
    this.backupCronJob = backup.cronJobName;
    this.registerOutputs({ urls: this.urls, virtualServiceName: this.virtualServiceName, backupCronJob: this.backupCronJob });
  }
}

/**
 * A transformation that makes every Kubernetes object below a component wait for `deps`, besides its
 * own dependencies: the layer's objects otherwise race the platform's namespace on a first `pulumi up`
 * (and a destroy could delete the namespace, and with it everything in it, before them).
 */
export function createdAfter(deps: pulumi.Input<pulumi.Resource>[]): pulumi.ResourceTransformation {
  return ({ type, props, opts }) => {
    if (!type.startsWith("kubernetes:")) return undefined;
    const own = opts.dependsOn === undefined ? [] : Array.isArray(opts.dependsOn) ? opts.dependsOn : [opts.dependsOn as pulumi.Input<pulumi.Resource>];
    return { props, opts: { ...opts, dependsOn: [...own, ...deps] } };
  };
}
