/**
 * Building blocks shared by every workload of the layer: who may talk to whom (NetworkPolicy at L4,
 * AuthorizationPolicy at L7, both from the same {@link Access} list), the pod's security context,
 * the sidecar annotations and the shutdown timing. Pure functions: no resources are created here.
 */
import type * as k8s from "@pulumi/kubernetes";
import type { IAuthorizationPolicy } from "@kubernetes-models/istio/security.istio.io/v1/AuthorizationPolicy";
import type { IDestinationRule } from "@kubernetes-models/istio/networking.istio.io/v1beta1/DestinationRule";
import type { IVirtualService } from "@kubernetes-models/istio/networking.istio.io/v1beta1/VirtualService";
import type { ResourceSpec } from "../../stacks/config";
import { dnsEgress, peerSelector } from "../platform/namespaces";
import type { AppPlatform, PodGroup } from "./inputs";

type NetworkPolicySpec = k8s.types.input.networking.v1.NetworkPolicySpec;
type NetworkPolicyPort = k8s.types.input.networking.v1.NetworkPolicyPort;
export type AuthorizationPolicySpec = NonNullable<IAuthorizationPolicy["spec"]>;
export type DestinationRuleSpec = NonNullable<IDestinationRule["spec"]>;
type VirtualServiceSpec = NonNullable<IVirtualService["spec"]>;

/**
 * The istio-agent port: health probes rewritten by the injector and `/stats/prometheus`, where the
 * sidecar merges the app's `/metrics` with Envoy's. The sidecar does not capture it, so only the
 * NetworkPolicy guards it (no AuthorizationPolicy applies).
 */
export const ISTIO_AGENT_PORT = 15020;

/** A peer pod group, with its mesh identity when it has one. */
export interface Peer extends PodGroup {
  /** Name in the traffic graph (`api-gateway`, `prometheus`, `ingress-gateway`). */
  name: string;
  /** SPIFFE principal without `spiffe://`; required for any port the sidecar captures. */
  principal?: string;
}

/** One allowed flow between a peer and a workload. */
export interface Access {
  peer: Peer;
  /** Ports on the destination (for ingress: this workload's; for egress: the peer's). */
  ports: number[];
  /** L7 narrowing, enforced by the destination's AuthorizationPolicy. */
  paths?: string[];
  notPaths?: string[];
  methods?: string[];
}

/** Istio principal of a ServiceAccount. */
export function principalOf(platform: Pick<AppPlatform, "trustDomain">, namespace: string, serviceAccount: string): string {
  return `${platform.trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
}

const tcp = (ports: number[]): NetworkPolicyPort[] => ports.map((port) => ({ protocol: "TCP", port }));

/** Egress every meshed pod needs: DNS over UDP and TCP 53, and istiod for configuration and certificates. */
export function meshEgress(platform: Pick<AppPlatform, "dns" | "istiod">, ownNamespace: string, sidecar = true): k8s.types.input.networking.v1.NetworkPolicyEgressRule[] {
  const rules: k8s.types.input.networking.v1.NetworkPolicyEgressRule[] = [dnsEgress(platform.dns, ownNamespace)];
  if (sidecar) rules.push({ to: [peerSelector(platform.istiod, ownNamespace)], ports: tcp(platform.istiod.ports) });
  return rules;
}

/**
 * The NetworkPolicy of one workload: ingress only from `callers`, egress only to `callees`, DNS and
 * istiod (plus `extraEgress`, e.g. the backup's path to Cloud Storage). Anything else is refused.
 */
export function networkPolicySpec(args: {
  namespace: string;
  podLabels: Record<string, string>;
  callers: Access[];
  callees: Access[];
  platform: Pick<AppPlatform, "dns" | "istiod">;
  sidecar?: boolean;
  extraEgress?: k8s.types.input.networking.v1.NetworkPolicyEgressRule[];
}): NetworkPolicySpec {
  return {
    podSelector: { matchLabels: args.podLabels },
    policyTypes: ["Ingress", "Egress"],
    ingress: args.callers.map((a) => ({ from: [peerSelector(a.peer, args.namespace)], ports: tcp(a.ports) })),
    egress: [
      ...meshEgress(args.platform, args.namespace, args.sidecar ?? true),
      ...args.callees.map((a) => ({ to: [peerSelector(a.peer, args.namespace)], ports: tcp(a.ports) })),
      ...(args.extraEgress ?? []),
    ],
  };
}

/**
 * The ALLOW AuthorizationPolicy of one workload: each caller by principal, on its ports (and paths).
 * Ports the sidecar does not capture are left out (no L7 identity exists there). Together with the
 * namespace's allow-nothing policy, a request that matches no rule is refused.
 */
export function authorizationPolicySpec(podLabels: Record<string, string>, callers: Access[]): AuthorizationPolicySpec {
  const rules = callers.flatMap((a) => {
    const ports = a.ports.filter((p) => p !== ISTIO_AGENT_PORT);
    if (ports.length === 0) return [];
    if (!a.peer.principal) throw new Error(`${a.peer.name} has no mesh identity; STRICT mTLS would refuse it on port ${ports.join(", ")}`);
    return [
      {
        from: [{ source: { principals: [a.peer.principal] } }],
        to: [
          {
            operation: {
              ports: ports.map(String),
              ...(a.paths ? { paths: a.paths } : {}),
              ...(a.notPaths ? { notPaths: a.notPaths } : {}),
              ...(a.methods ? { methods: a.methods } : {}),
            },
          },
        ],
      },
    ];
  });
  return { selector: { matchLabels: podLabels }, action: "ALLOW", rules };
}

/**
 * Ejection of a pod its callers cannot reach (connection refused or reset, timeouts: Envoy's local-origin
 * errors), not of one that answers 5xx. The services answer 503 when they shed load (the gateway's
 * in-flight cap) or lose their database, and ejecting on those would move a replica's share of an
 * overload onto the others, which then shed and are ejected in turn; a pod whose dependencies are down
 * leaves the endpoints through its readiness probe instead.
 */
export const OUTLIER_DETECTION = {
  splitExternalLocalOriginErrors: true,
  consecutiveLocalOriginFailures: 5,
  consecutive5xxErrors: 0,
  interval: "10s",
  baseEjectionTime: "30s",
  maxEjectionPercent: 50,
} as const;

/** How long a sidecar waits for a connection to a pod (the DestinationRules'; Istio's default is 10 s). */
export const CONNECT_TIMEOUT_MS = 2_000;
const CONNECT_TIMEOUT = `${CONNECT_TIMEOUT_MS / 1000}s`;

/** DestinationRule traffic policy: Istio mTLS always, bounded pools, and ejection of failing pods. */
export function destinationRuleSpec(host: string, kind: "http" | "tcp"): DestinationRuleSpec {
  return {
    host,
    trafficPolicy: {
      tls: { mode: "ISTIO_MUTUAL" },
      connectionPool:
        kind === "http"
          ? {
              tcp: { maxConnections: 256, connectTimeout: CONNECT_TIMEOUT },
              http: { http1MaxPendingRequests: 256, http2MaxRequests: 512, maxRetries: 3, idleTimeout: "60s" },
            }
          : // Data stores: the services pool their own connections; this only caps runaway clients.
            { tcp: { maxConnections: 200, connectTimeout: CONNECT_TIMEOUT, tcpKeepalive: { time: "60s", interval: "20s" } } },
      ...(kind === "http" ? { outlierDetection: OUTLIER_DETECTION } : {}),
    },
  };
}

/**
 * Retries of a request that is not a read, between sidecars: only when it never reached the service (the
 * connection failed, or an HTTP/2 stream was refused unprocessed). Without a VirtualService every sidecar
 * applies Istio's default policy to every method, twice on a 503 too, and the server's sidecar answers 503
 * for a request whose service was cut off mid-answer (a pod past its drain grace, a crash): a POST that
 * had already committed would be sent again to another replica (a second post, a refresh token rotated
 * twice, which revokes its whole session family).
 */
export const MESH_WRITE_RETRIES = { attempts: 2, retryOn: "connect-failure,refused-stream" } as const;

/** The methods routed as reads, at the ingress and between sidecars: they change nothing, so a retry is safe. */
export const READ_METHODS = { regex: "GET|HEAD" };

/**
 * The in-mesh routes of one HTTP service (its callers' sidecars; the public routes are `ingress.ts`'):
 * reads keep Istio's default retries (twice, on a connection failure or a 503), anything else gets
 * {@link MESH_WRITE_RETRIES}. No timeout: the callers bound their own requests.
 */
export function meshVirtualServiceSpec(host: string, port: number): VirtualServiceSpec {
  const route = [{ destination: { host, port: { number: port } } }];
  return {
    hosts: [host],
    // No `gateways`: the sidecars of the mesh only.
    http: [
      { name: "reads", match: [{ method: READ_METHODS }], route },
      { name: "writes", route, retries: { ...MESH_WRITE_RETRIES } },
    ],
  };
}

// ---------------------------------------------------------------------------------------------
// Pods
// ---------------------------------------------------------------------------------------------

/**
 * How a pod stops. Native sidecars (annotation below) stop after the app container, so the budget is
 * sequential: endpoints are removed while `preStop` sleeps, the app drains for its own grace, then the
 * proxy drains its last connections; the kubelet's grace period covers all of it plus a margin.
 */
export interface ShutdownTiming {
  /** `preStop` sleep: time for endpoint removal to reach every Envoy before the app stops accepting. */
  preStopSeconds: number;
  /** The service's own drain (`SHUTDOWN_GRACE_MS`). */
  appGraceSeconds: number;
  /** Istio `terminationDrainDuration` (the proxy exits earlier once idle). */
  proxyDrainSeconds: number;
  terminationGracePeriodSeconds: number;
}

export function shutdownTiming(appGraceSeconds: number): ShutdownTiming {
  const preStopSeconds = 5;
  const proxyDrainSeconds = 5;
  const marginSeconds = 5;
  return {
    preStopSeconds,
    appGraceSeconds,
    proxyDrainSeconds,
    terminationGracePeriodSeconds: preStopSeconds + appGraceSeconds + proxyDrainSeconds + marginSeconds,
  };
}

/**
 * Sidecar annotations: its resources (from config, so capacity checks and policies see them), native
 * sidecar mode (starts before and stops after the app; lets Jobs complete), holding the app until the
 * proxy is ready, and the drain.
 */
/**
 * Istio's injector marks every pod it injects for scraping (the merged metrics on :15020) unless the
 * pod says otherwise. Pods nobody watches say so: Jobs (gone before a scrape matters, and a target
 * down while they run) and the load generator; the PodMonitor keeps only `prometheus.io/scrape: "true"`.
 */
export const NOT_SCRAPED = { "prometheus.io/scrape": "false" } as const;

export function sidecarAnnotations(sidecar: ResourceSpec, timing: Pick<ShutdownTiming, "proxyDrainSeconds">): Record<string, string> {
  return {
    "sidecar.istio.io/proxyCPU": sidecar.requests.cpu,
    "sidecar.istio.io/proxyMemory": sidecar.requests.memory,
    "sidecar.istio.io/proxyCPULimit": sidecar.limits.cpu,
    "sidecar.istio.io/proxyMemoryLimit": sidecar.limits.memory,
    "sidecar.istio.io/nativeSidecar": "true",
    "proxy.istio.io/config": JSON.stringify({
      holdApplicationUntilProxyStarts: true,
      terminationDrainDuration: `${timing.proxyDrainSeconds}s`,
      proxyMetadata: { EXIT_ON_ZERO_ACTIVE_CONNECTIONS: "true" },
    }),
  };
}

/** Pod-level security: a fixed non-root identity, RuntimeDefault seccomp, no API token. */
export function podSecurity(uid: number, gid = uid): Pick<k8s.types.input.core.v1.PodSpec, "securityContext" | "automountServiceAccountToken"> {
  return {
    automountServiceAccountToken: false,
    securityContext: {
      runAsNonRoot: true,
      runAsUser: uid,
      runAsGroup: gid,
      fsGroup: gid,
      // Only walk the volume when its owner is wrong (a large data disk would slow every start).
      fsGroupChangePolicy: "OnRootMismatch",
      seccompProfile: { type: "RuntimeDefault" },
    },
  };
}

/** Container-level security (Pod Security `restricted` and then some). */
export const containerSecurity: k8s.types.input.core.v1.SecurityContext = {
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  runAsNonRoot: true,
  privileged: false,
  capabilities: { drop: ["ALL"] },
  seccompProfile: { type: "RuntimeDefault" },
};

/** A container's requests and limits from config. */
export function resourcesOf(spec: ResourceSpec): k8s.types.input.core.v1.ResourceRequirements {
  return {
    requests: { cpu: spec.requests.cpu, memory: spec.requests.memory },
    limits: { cpu: spec.limits.cpu, memory: spec.limits.memory },
  };
}

/** UID the Node.js services and the load generator run as (any non-root UID works: images are world-readable). */
export const APP_UID = 65532;
