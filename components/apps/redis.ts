/**
 * Redis for caches and rate limits: one pod, password from the ExternalSecret (never on the command
 * line), bounded memory with LRU eviction of the keys that expire, no persistence (everything in it can
 * be rebuilt), in the mesh.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { ResourceSpec } from "../../stacks/config";
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
import { imageVersion, labelsOf, REDIS, selectorOf, serviceHost } from "./topology";

export interface RedisArgs {
  /** Namespace (created by the platform). */
  namespace: string;
  /** Pinned Redis image (`data.redis.image`). */
  image: string;
  /** `maxmemory` in MiB; keys with a TTL are evicted (volatile-lru) beyond it. */
  maxMemoryMb: number;
  /** Requests and limits of the Redis container. */
  resources: ResourceSpec;
  /** Requests and limits of its Istio sidecar. */
  sidecar: ResourceSpec;
  /** Secret with `REDIS_PASSWORD`. */
  secretName: string;
  /** Who may connect. */
  callers: Access[];
  /** DNS and istiod, for the sidecar. */
  platform: Pick<AppPlatform, "dns" | "istiod">;
  /** Kubernetes provider of the cluster. */
  provider: k8s.Provider;
  /** Must be ready first (the app secret, istiod). */
  dependsOn: pulumi.Input<pulumi.Resource>[];
}

/** UID and GID of the `redis` user in the official Alpine images. */
const REDIS_UID = 999;
const REDIS_GID = 1000;

/**
 * Evict only keys with a TTL: the cache entries (`SET … EX`) and the rate limits' cells (`SET … PX`). The
 * caches' generation counters (no TTL) must stay: evicting one retires its namespace's whole cache at
 * once, and a counter that restarted at a number already used would serve entries older than the last
 * write (`services/kit/src/redis.ts`). Should memory ever fill with keys without a TTL, Redis refuses
 * writes (OOM errors): the services then read the database, skip the cache write and owe the
 * invalidation, and limit rates per replica; nothing fails a request.
 */
const MAXMEMORY_POLICY = "maxmemory-policy volatile-lru";

/**
 * The container's command. The configuration goes to Redis on stdin (`redis-server -`, a here-document:
 * a pipe, no file), so the password never appears in the process arguments (`ps`, `/proc/<pid>/cmdline`)
 * or in the pod spec; `"` and `\\` in it are escaped for Redis' config syntax. `exec` makes redis-server
 * the container's PID 1, so the kubelet's SIGTERM reaches it (a shell as PID 1 ignores it, and Redis
 * would be killed at the end of the grace period instead of shutting down).
 */
export function redisStartCommand(maxMemoryMb: number, port: number = REDIS.port, dataDir = "/data"): string[] {
  const script = [
    `pw=$(printf '%s' "$REDIS_PASSWORD" | sed 's/[\\\\"]/\\\\&/g')`,
    "exec redis-server - <<EOF",
    `port ${port}`,
    "bind * -::*",
    'requirepass "$pw"',
    `maxmemory ${maxMemoryMb}mb`,
    MAXMEMORY_POLICY,
    'save ""',
    "appendonly no",
    `dir ${dataDir}`,
    "EOF",
  ].join("\n");
  return ["sh", "-c", script];
}

/**
 * The probe: redis-cli reads the password from REDISCLI_AUTH (the probe's arguments stay clean too)
 * and exits 0 even on an error reply, hence the check for PONG.
 */
export function redisPingCommand(port: number = REDIS.port): string[] {
  return ["sh", "-c", `redis-cli -p ${port} ping | grep -q PONG`];
}

export class Redis extends pulumi.ComponentResource {
  /** Host the services use (`REDIS_HOST`). */
  readonly host: string;
  readonly port: number;

  constructor(name: string, args: RedisArgs, opts?: pulumi.ComponentResourceOptions) {
    super("titanium:apps:Redis", name, {}, opts);
    const { namespace, provider } = args;
    const child = { parent: this, provider };
    const svc = REDIS.name;
    const selector = selectorOf(svc);
    const labels = labelsOf(svc, "cache");
    const timing = shutdownTiming(5);
    const password = { name: "REDIS_PASSWORD", valueFrom: { secretKeyRef: { name: args.secretName, key: "REDIS_PASSWORD" } } };
    const ping = redisPingCommand();

    const sa = new k8s.core.v1.ServiceAccount(`${name}-sa`, {
      metadata: { name: svc, namespace, labels },
      automountServiceAccountToken: false,
    }, child);

    // Before the pod: under default deny it could not even reach istiod without it.
    const networkPolicy = new k8s.networking.v1.NetworkPolicy(`${name}-network-policy`, {
      metadata: { name: svc, namespace, labels },
      spec: networkPolicySpec({ namespace, podLabels: selector, callers: args.callers, callees: [], platform: args.platform }),
    }, child);

    new k8s.apps.v1.Deployment(`${name}-deployment`, {
      metadata: { name: svc, namespace, labels },
      spec: {
        replicas: 1,
        selector: { matchLabels: selector },
        // One instance at a time: two caches side by side would serve different answers.
        strategy: { type: "Recreate" },
        template: {
          metadata: { labels: labelsOf(svc, "cache", imageVersion(args.image)), annotations: sidecarAnnotations(args.sidecar, timing) },
          spec: {
            serviceAccountName: svc,
            ...podSecurity(REDIS_UID, REDIS_GID),
            terminationGracePeriodSeconds: timing.terminationGracePeriodSeconds,
            containers: [
              {
                name: "redis",
                image: args.image,
                imagePullPolicy: "IfNotPresent",
                command: redisStartCommand(args.maxMemoryMb),
                ports: [{ name: "tcp-redis", containerPort: REDIS.port, protocol: "TCP" }],
                env: [password, { name: "REDISCLI_AUTH", valueFrom: password.valueFrom }],
                resources: resourcesOf(args.resources),
                securityContext: containerSecurity,
                startupProbe: { exec: { command: ping }, periodSeconds: 2, failureThreshold: 30 },
                readinessProbe: { exec: { command: ping }, periodSeconds: 5, timeoutSeconds: 2, failureThreshold: 2 },
                livenessProbe: { exec: { command: ping }, periodSeconds: 10, timeoutSeconds: 2, failureThreshold: 3 },
                volumeMounts: [{ name: "data", mountPath: "/data" }],
              },
            ],
            volumes: [{ name: "data", emptyDir: { sizeLimit: "64Mi" } }],
          },
        },
      },
    }, { ...child, dependsOn: [sa, networkPolicy, ...args.dependsOn] });

    new k8s.core.v1.Service(`${name}-service`, {
      metadata: { name: svc, namespace, labels },
      spec: {
        type: "ClusterIP",
        selector,
        ports: [{ name: "tcp-redis", port: REDIS.port, targetPort: "tcp-redis", protocol: "TCP" }],
      },
    }, child);

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
    this.port = REDIS.port;
    this.registerOutputs({ host: this.host, port: this.port });
  }
}
