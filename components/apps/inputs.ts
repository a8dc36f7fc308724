/**
 * What the application layer needs from the layers below, as plain data and Outputs, so
 * `stacks/index.ts` can hand over the platform's real values. Nothing here creates resources.
 */
import type * as pulumi from "@pulumi/pulumi";
import type { DiskType } from "../gcp/pricing";
import type { PodPeer } from "../platform/namespaces";

/** A set of pods another layer runs: where they are and how to select them (the platform's `PodPeer`). */
export type PodGroup = PodPeer;

/** A mesh workload outside the application namespace: its pods and its SPIFFE identity. */
export interface MeshWorkload extends PodGroup {
  /** Istio principal without `spiffe://`, e.g. `cluster.local/ns/istio-system/sa/istio-ingressgateway`. */
  principal: string;
}

/** The platform layer's outputs the application consumes (`components/platform`). */
export interface AppPlatform {
  /**
   * Application namespace, created by the platform with `istio-injection=enabled` and Pod Security
   * `restricted`. This layer never creates it.
   */
  namespace: string;
  /** Istio trust domain (`cluster.local` unless the mesh config says otherwise). */
  trustDomain: string;
  /**
   * Kubernetes Secret in {@link namespace} written by an ExternalSecret, with the keys
   * `POSTGRES_PASSWORD`, each database role's password (`DATABASE_ROLES`), each Redis user's (`REDIS_USERS`) and `JWT_PRIVATE_KEY`.
   */
  appSecretName: string;
  /**
   * Resources that must be ready before any workload starts: the ExternalSecret above (so PostgreSQL
   * never initialises with anything but the real password), istiod and its injector webhook (so every
   * pod gets its sidecar), the Istio CRDs, and the PD CSI driver (so the database's claim binds).
   */
  ready: pulumi.Input<pulumi.Resource>[];
  /** The shared Istio Gateway as `<namespace>/<name>` (TLS, HTTP→HTTPS redirect; owned by the platform). */
  gateway: string;
  /** Host names the VirtualService answers on; must be covered by the Gateway's hosts. */
  hosts: string[];
  /** The Istio ingress gateway pods and identity, plus the in-cluster Service the load generator calls. */
  ingressGateway: MeshWorkload & {
    /** In-cluster address of the gateway Service, e.g. `istio-ingressgateway.istio-system.svc.cluster.local`. */
    serviceHost: string;
    /** The gateway Service's HTTPS port (`ingress.httpsPort`): what an in-cluster client connects to. */
    httpsPort: number;
    /** The gateway pods' HTTPS container port (the NetworkPolicy port for in-cluster clients). */
    httpsTargetPort: number;
    /** The gateway's certificate is a real one (a public CA signed it): in-cluster clients can verify it. */
    publiclyTrusted: boolean;
    /**
     * PEM of the generated (self-signed) certificate, public data, so in-cluster clients can verify
     * it too; `undefined` when not passed.
     */
    caCertPem?: pulumi.Input<string>;
  };
  /**
   * Prometheus: its pods (scraping pod `:15020/stats/prometheus`, where the sidecar merges the app's
   * `/metrics`; admitted by the NetworkPolicy only, since that port is outside Envoy's inbound listener)
   * and its identity (in the traffic graph; no AuthorizationPolicy rule names it).
   */
  prometheus: MeshWorkload & {
    /** Port Prometheus scrapes on every app pod: the istio-agent's merged metrics (15020). */
    metricsPort: number;
  };
  /** Pod annotations that make the sidecar merge app metrics; this layer adds `prometheus.io/port` per pod. */
  metricsAnnotations: Record<string, string>;
  /** istiod pods and the ports sidecars use (xDS and certificates). */
  istiod: PodGroup & { ports: number[] };
  /** Cluster DNS pods (CoreDNS in K3s: `kube-system`, `k8s-app=kube-dns`), reached on UDP and TCP 53. */
  dns: PodGroup;
  /** Block storage for the database: GCE Persistent Disks through the platform's CSI driver (ADR 0022). */
  blockStorage: {
    /** The StorageClass name of each Persistent Disk type the platform was asked for (`titanium-<type>`). */
    storageClasses: Partial<Record<DiskType, pulumi.Input<string>>>;
    /**
     * Node labels of the VMs the driver may attach disks to (the agents: the cloud layer grants the
     * disk permissions to their service account only). A pod with a PD claim must run there.
     */
    nodeSelector: Record<string, string>;
  };
  /** Node labels of the agents, whose service account may write backups (dev's server takes workloads too). */
  agentNodeSelector: Record<string, string>;
}
