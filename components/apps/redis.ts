/**
 * Redis for caches and rate limits: one pod, one ACL user per client (the `default` user off), the users'
 * passwords from the ExternalSecret, hashed into the config by an init container (never on a command line,
 * never in the server's environment or config in plaintext), bounded memory with LRU eviction of the keys that
 * expire, no persistence (everything in it can be rebuilt), in the mesh.
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
import { imageVersion, labelsOf, REDIS, REDIS_DEFAULT_USER, REDIS_PROBE, REDIS_USERS, type RedisClient, selectorOf, serviceHost } from "./topology";

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
  /** Secret with each Redis user's password (`REDIS_USERS[…].passwordKey`; the probes' is `REDIS_PASSWORD`). */
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
 * Evict only keys with a TTL: the cache entries (`SET … EX`) and the rate limits' cells (`SET … PX`), alike,
 * least recently used first. So the caches store only what the data justifies (the blog's list pages readers
 * load, existing posts and profiles: their key space is bounded by the data, not by the requests; ADR 0063,
 * "Caches"): no stream of requests can fill memory and have the cells evicted (a rate budget reset). The
 * caches' generation counters (no TTL) must stay: evicting one retires its namespace's whole cache at
 * once, and a counter that restarted at a number already used would serve entries older than the last
 * write (`services/kit/src/redis.ts`). Should memory ever fill with keys without a TTL, Redis refuses
 * writes (OOM errors): the services then read the database, skip the cache write and owe the
 * invalidation, and limit rates per replica; nothing fails a request.
 */
const MAXMEMORY_POLICY = "maxmemory-policy volatile-lru";

/** Where the init container writes the config and the server reads it (an emptyDir shared by the two). */
export const REDIS_CONFIG_PATH = "/config/redis.conf";

/**
 * The config init container's command: writes the whole Redis config to `configPath` (mode 0600, by umask), its
 * `user` lines from {@link REDIS_USERS} with each password's SHA-256 (`#<hex>`), which is all Redis keeps of a
 * password: the file, `ACL LIST` and `CONFIG GET` hold no plaintext. The passwords come from the environment (the
 * app Secret) and reach `sha256sum` through a pipe from the shell's own printf (no process has one in its
 * arguments); an empty or missing one fails the pod. Only this container sees them: the server's container gets
 * the probes' password alone. The text is exactly the kit's `redisAclLines` (services/kit/src/redis-acl.ts) after
 * the server settings: redis-acl.test.mts runs this script and compares.
 */
export function redisConfigCommand(maxMemoryMb: number, port: number = REDIS.port, dataDir = "/data", configPath = REDIS_CONFIG_PATH): string[] {
  const settings = [`port ${port}`, "bind * -::*", `maxmemory ${maxMemoryMb}mb`, MAXMEMORY_POLICY, 'save ""', "appendonly no", `dir ${dataDir}`];
  const clients = Object.keys(REDIS_USERS) as RedisClient[];
  const variable = (c: RedisClient) => `h_${REDIS_USERS[c].user.replace(/\W/g, "_")}`;
  const script = [
    "set -eu",
    "umask 077",
    // The hash of the password in $1 (named $2 in the error), or exit: sha256sum prints "<hex>  -".
    'hash() { [ -n "$1" ] || { echo "$2 is empty or unset" >&2; exit 1; }; h=$(printf \'%s\' "$1" | sha256sum | cut -d " " -f 1); [ ${#h} -eq 64 ] || { echo "no SHA-256 of $2" >&2; exit 1; }; echo "$h"; }',
    // Assignments, so that a failed hash stops the script (set -e), which it would not inside printf's arguments.
    ...clients.map((c) => `${variable(c)}=$(hash "\${${REDIS_USERS[c].passwordKey}:-}" ${REDIS_USERS[c].passwordKey})`),
    `tmp=${configPath}.tmp`,
    "{",
    ...settings.map((l) => `  echo '${l}'`),
    `  echo '${REDIS_DEFAULT_USER}'`,
    ...clients.map((c) => `  printf 'user %s reset on #%s %s\\n' '${REDIS_USERS[c].user}' "$${variable(c)}" '${REDIS_USERS[c].rules}'`),
    '} > "$tmp"',
    // Whole or not at all: the server never reads a file cut short by a failed hash.
    `mv "$tmp" ${configPath}`,
  ].join("\n");
  return ["sh", "-c", script];
}

/**
 * The server's command: redis-server itself is the container's PID 1 (the kubelet's SIGTERM reaches it) and
 * reads the config the init container wrote.
 */
export function redisStartCommand(configPath = REDIS_CONFIG_PATH): string[] {
  return ["redis-server", configPath];
}

/**
 * The probe: redis-cli logs in as the `probe` user (which may only PING), its password from REDISCLI_AUTH (the
 * probe's arguments stay clean), and exits 0 even on an error reply, hence the check for PONG.
 */
export function redisPingCommand(port: number = REDIS.port): string[] {
  return ["sh", "-c", `redis-cli -p ${port} --user ${REDIS_USERS[REDIS_PROBE].user} ping | grep -q PONG`];
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
    const passwordOf = (key: string) => ({ secretKeyRef: { name: args.secretName, key } });
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
            initContainers: [
              {
                // Every user's password, hashed into the config; nothing of it reaches the server's container.
                name: "config",
                image: args.image,
                imagePullPolicy: "IfNotPresent",
                command: redisConfigCommand(args.maxMemoryMb),
                env: Object.values(REDIS_USERS).map((u) => ({ name: u.passwordKey, valueFrom: passwordOf(u.passwordKey) })),
                // Its requests never add to the pod's (the larger of init and app containers counts).
                resources: resourcesOf(args.resources),
                securityContext: containerSecurity,
                volumeMounts: [{ name: "config", mountPath: "/config" }],
              },
            ],
            containers: [
              {
                name: "redis",
                image: args.image,
                imagePullPolicy: "IfNotPresent",
                command: redisStartCommand(),
                ports: [{ name: "tcp-redis", containerPort: REDIS.port, protocol: "TCP" }],
                // The probes' password only (their user may PING and nothing else).
                env: [{ name: "REDISCLI_AUTH", valueFrom: passwordOf(REDIS_USERS[REDIS_PROBE].passwordKey) }],
                resources: resourcesOf(args.resources),
                securityContext: containerSecurity,
                startupProbe: { exec: { command: ping }, periodSeconds: 2, failureThreshold: 30 },
                readinessProbe: { exec: { command: ping }, periodSeconds: 5, timeoutSeconds: 2, failureThreshold: 2 },
                livenessProbe: { exec: { command: ping }, periodSeconds: 10, timeoutSeconds: 2, failureThreshold: 3 },
                volumeMounts: [
                  { name: "data", mountPath: "/data" },
                  { name: "config", mountPath: "/config", readOnly: true },
                ],
              },
            ],
            volumes: [
              { name: "data", emptyDir: { sizeLimit: "64Mi" } },
              { name: "config", emptyDir: { medium: "Memory", sizeLimit: "1Mi" } },
            ],
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
