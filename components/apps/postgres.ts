/**
 * PostgreSQL for the services: one StatefulSet pod on a GCE Persistent Disk (a zonal PD outlives any
 * agent VM and re-attaches wherever the pod is rescheduled), inside the mesh under STRICT mTLS,
 * its password only from the platform's ExternalSecret.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { ResourceSpec, VolumeType } from "../../stacks/config";
import type { AppPlatform } from "./inputs";
import {
  type Access,
  authorizationPolicySpec,
  containerSecurity,
  destinationRuleSpec,
  networkPolicySpec,
  podSecurity,
  resourcesOf,
  shutdownTiming,
  sidecarAnnotations,
} from "./mesh";
import { imageVersion, labelsOf, POSTGRES, selectorOf, serviceHost } from "./topology";

export interface PostgresArgs {
  /** Namespace (created by the platform). */
  namespace: string;
  /** Pinned PostgreSQL image (`data.postgres.image`). */
  image: string;
  /** Database created at first start. */
  database: string;
  /** Its owner role, a superuser (the migrations' `PGUSER`; the services and the backup log in as roles of their own, `DATABASE_ROLES`). */
  user: string;
  /** Size of the data disk in GiB. */
  storageGi: number;
  /** GCE PD type of the data disk (the platform's StorageClass for it), or `local-path` (K3s' node-local class). */
  diskType: VolumeType;
  /** Requests and limits of the database container. */
  resources: ResourceSpec;
  /** Requests and limits of its Istio sidecar. */
  sidecar: ResourceSpec;
  /** Secret with `POSTGRES_PASSWORD`, the owner's (written by the platform's ExternalSecret). */
  secretName: string;
  /** Who may connect (the services that own data, migrations, backup). */
  callers: Access[];
  /** DNS and istiod, for the sidecar; the platform's StorageClasses and the nodes their disks attach to. */
  platform: Pick<AppPlatform, "dns" | "istiod" | "blockStorage">;
  /** `protect` the data volume and the StatefulSet (prod). */
  protect: boolean;
  /** Kubernetes provider of the cluster. */
  provider: k8s.Provider;
  /** Must be ready first: the app secret (never start with a placeholder password), istiod, and the disk driver. */
  dependsOn: pulumi.Input<pulumi.Resource>[];
}

/** UID/GID of the `postgres` user in the official Alpine images. */
const POSTGRES_UID = 70;
/**
 * The official images (18+) keep data in `/var/lib/postgresql/<major>/docker`: mounting the disk at
 * the parent keeps the ext4 `lost+found` out of PGDATA and allows `pg_upgrade --link` across majors.
 */
const DATA_MOUNT = "/var/lib/postgresql";
/** `pg_ctl stop --mode=fast --timeout` (seconds). */
const POSTGRES_STOP_SECONDS = 12;

export class Postgres extends pulumi.ComponentResource {
  /** Host the services use (`PGHOST`). */
  readonly host: string;
  readonly port: number;
  readonly storageClassName: pulumi.Output<string>;
  readonly claimName: pulumi.Output<string>;

  constructor(name: string, args: PostgresArgs, opts?: pulumi.ComponentResourceOptions) {
    super("titanium:apps:Postgres", name, {}, opts);
    const { namespace, provider } = args;
    const child = { parent: this, provider };
    const svc = POSTGRES.name;
    const selector = selectorOf(svc);
    const labels = labelsOf(svc, "database");
    // The fast stop's bound: with the sidecar's drain after it, within what a node shutdown leaves ordinary
    // pods (NODE_SHUTDOWN: 20 s; a Spot preemption, an agent replaced), where the kubelet caps the grace
    // period. A fast stop is a rollback, a disconnect and a checkpoint of at most shared_buffers (128 MB):
    // seconds on a Persistent Disk.
    const timing = shutdownTiming(POSTGRES_STOP_SECONDS);

    const storageClassName = args.diskType === "local-path" ? undefined : args.platform.blockStorage.storageClasses[args.diskType];
    if (args.diskType !== "local-path" && storageClassName === undefined) {
      throw new Error(`the platform made no StorageClass for the database's disk type "${args.diskType}" (pass it in the platform's appVolumeTypes)`);
    }

    // A claim of its own (not a volumeClaimTemplate), so Pulumi can protect it.
    const claim = new k8s.core.v1.PersistentVolumeClaim(`${name}-data`, {
      metadata: {
        name: `${svc}-data`,
        namespace,
        labels,
        // WaitForFirstConsumer: the claim stays Pending until the pod exists; do not wait for Bound.
        annotations: { "pulumi.com/skipAwait": "true" },
      },
      spec: {
        accessModes: ["ReadWriteOnce"],
        storageClassName: storageClassName ?? "local-path",
        resources: { requests: { storage: `${args.storageGi}Gi` } },
      },
    }, { ...child, protect: args.protect });

    const sa = new k8s.core.v1.ServiceAccount(`${name}-sa`, {
      metadata: { name: svc, namespace, labels },
      automountServiceAccountToken: false,
    }, child);

    const service = new k8s.core.v1.Service(`${name}-service`, {
      metadata: { name: svc, namespace, labels },
      spec: {
        type: "ClusterIP",
        selector,
        // `tcp-` prefix: Istio must not sniff a server-first protocol.
        ports: [{ name: "tcp-postgres", port: POSTGRES.port, targetPort: "tcp-postgres", protocol: "TCP" }],
      },
    }, child);

    // Before the pod: under default deny it could not even reach istiod without it.
    const networkPolicy = new k8s.networking.v1.NetworkPolicy(`${name}-network-policy`, {
      metadata: { name: svc, namespace, labels },
      spec: networkPolicySpec({ namespace, podLabels: selector, callers: args.callers, callees: [], platform: args.platform }),
    }, child);

    // The kubelet stops a container with SIGTERM (it ignores the image's STOPSIGNAL SIGINT), which is PostgreSQL's
    // *smart* shutdown: it waits for every session to end, and the services' pools keep theirs open (idle 60 s,
    // lifetime 30 min), so the pod would be SIGKILLed at the end of its grace period and every rollout would start
    // with crash recovery. A fast shutdown (roll back open transactions, disconnect, checkpoint) from preStop
    // instead, within the grace period; pg_ctl finds the data directory in the image's PGDATA. The server is PID 1:
    // once it has exited the container is done and the kubelet's SIGTERM finds nothing to stop.
    const fastStop = ["pg_ctl", "stop", "--mode=fast", "--wait", `--timeout=${timing.appGraceSeconds}`];
    // Over TCP on loopback, not the socket: on first start the image's entrypoint runs a temporary
    // server on the socket only (listen_addresses=''), which must not make the pod Ready.
    const pgIsReady = ["pg_isready", "--host=127.0.0.1", `--port=${POSTGRES.port}`, `--username=${args.user}`, `--dbname=${args.database}`];
    new k8s.apps.v1.StatefulSet(`${name}-statefulset`, {
      metadata: { name: svc, namespace, labels },
      spec: {
        replicas: 1,
        serviceName: service.metadata.name,
        selector: { matchLabels: selector },
        template: {
          metadata: {
            labels: labelsOf(svc, "database", imageVersion(args.image)),
            annotations: sidecarAnnotations(args.sidecar, timing),
          },
          spec: {
            serviceAccountName: svc,
            // A PD attaches only to the VMs the driver may attach disks to (the agents).
            ...(storageClassName ? { nodeSelector: { ...args.platform.blockStorage.nodeSelector } } : {}),
            ...podSecurity(POSTGRES_UID),
            terminationGracePeriodSeconds: timing.terminationGracePeriodSeconds,
            containers: [
              {
                name: "postgres",
                image: args.image,
                imagePullPolicy: "IfNotPresent",
                args: ["-c", `max_connections=${POSTGRES.maxConnections}`],
                ports: [{ name: "tcp-postgres", containerPort: POSTGRES.port, protocol: "TCP" }],
                env: [
                  { name: "POSTGRES_DB", value: args.database },
                  { name: "POSTGRES_USER", value: args.user },
                  { name: "POSTGRES_PASSWORD", valueFrom: { secretKeyRef: { name: args.secretName, key: "POSTGRES_PASSWORD" } } },
                  // SCRAM for every TCP client (the image's default, stated so it cannot drift to `trust`).
                  { name: "POSTGRES_HOST_AUTH_METHOD", value: "scram-sha-256" },
                ],
                resources: resourcesOf(args.resources),
                securityContext: containerSecurity,
                lifecycle: { preStop: { exec: { command: fastStop } } },
                startupProbe: { exec: { command: pgIsReady }, periodSeconds: 5, failureThreshold: 60 },
                readinessProbe: { exec: { command: pgIsReady }, periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 3 },
                livenessProbe: { exec: { command: pgIsReady }, periodSeconds: 20, timeoutSeconds: 5, failureThreshold: 6 },
                volumeMounts: [
                  { name: "data", mountPath: DATA_MOUNT },
                  { name: "run", mountPath: "/var/run/postgresql" },
                  { name: "tmp", mountPath: "/tmp" },
                ],
              },
            ],
            volumes: [
              { name: "data", persistentVolumeClaim: { claimName: claim.metadata.name } },
              { name: "run", emptyDir: { medium: "Memory", sizeLimit: "1Mi" } },
              { name: "tmp", emptyDir: { sizeLimit: "256Mi" } },
            ],
          },
        },
      },
    }, { ...child, dependsOn: [sa, networkPolicy, claim, ...args.dependsOn], protect: args.protect });

    const host = serviceHost(svc, namespace);
    new k8s.apiextensions.CustomResource(`${name}-destination-rule`, {
      apiVersion: "networking.istio.io/v1",
      kind: "DestinationRule",
      metadata: { name: svc, namespace, labels },
      spec: destinationRuleSpec(host, "tcp"),
    }, { ...child, dependsOn: args.dependsOn });

    new k8s.apiextensions.CustomResource(`${name}-authorization-policy`, {
      apiVersion: "security.istio.io/v1",
      kind: "AuthorizationPolicy",
      metadata: { name: svc, namespace, labels },
      spec: authorizationPolicySpec(selector, args.callers),
    }, { ...child, dependsOn: args.dependsOn });


    this.host = host;
    this.port = POSTGRES.port;
    this.storageClassName = pulumi.output(storageClassName ?? "local-path");
    this.claimName = claim.metadata.name;
    this.registerOutputs({ host: this.host, port: this.port, storageClassName: this.storageClassName, claimName: this.claimName });
  }
}
