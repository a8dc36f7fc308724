import { PD_CSI_DRIVER_NAME } from "../gcp/names";

/**
 * The Kubernetes names of the platform layer: namespaces, Helm release names and the names the
 * charts derive from them. One place, read by the components, the tests and the app layer.
 */

/** Namespaces the platform creates. `app` is where the Titanium services run (meshed, PSA restricted). */
export const NAMESPACES = {
  app: "titanium",
  istio: "istio-system",
  externalSecrets: "external-secrets",
  monitoring: "monitoring",
  logging: "logging",
  argocd: "argocd",
  /** The GCE PD CSI driver (its upstream namespace). */
  storage: "gce-pd-csi-driver",
} as const;
export type NamespaceKey = keyof typeof NAMESPACES;

/** Helm release names (fixed: Services and ServiceAccounts are named after them). */
export const RELEASES = {
  istioBase: "istio-base",
  istioCni: "istio-cni",
  istiod: "istiod",
  istioGateway: "istio-ingressgateway",
  externalSecrets: "external-secrets",
  kubePrometheusStack: "kube-prometheus-stack",
  loki: "loki",
  alloy: "alloy",
  argoCd: "argocd",
} as const;

/** kube-prometheus-stack `fullnameOverride`: objects are `kps-<component>`. */
export const KPS_FULLNAME = "kps";

/** The ingress gateway: the chart names its ServiceAccount after the release and labels pods app/istio. */
export const GATEWAY = {
  serviceAccount: RELEASES.istioGateway,
  podLabels: { app: RELEASES.istioGateway, istio: RELEASES.istioGateway.replace(/^istio-/, "") },
  /** The shared Istio `Gateway` object the app layer binds its VirtualService to. */
  gatewayName: "titanium-gateway",
  /** TLS Secret (in the gateway's namespace) External Secrets syncs a configured certificate into (a generated one is auto-named: istio.ts). */
  tlsSecretName: "titanium-gateway-tls",
  /** Envoy's status port and readiness path: the load balancer's health check (via a NodePort). */
  statusPort: 15021,
  readinessPath: "/healthz/ready",
  /** The gateway pods' container ports behind the Service's HTTP and HTTPS ports. */
  httpTargetPort: 80,
  httpsTargetPort: 443,
} as const;

/** Prometheus as kube-prometheus-stack deploys it (CR `kps-prometheus`). */
export const PROMETHEUS = {
  name: `${KPS_FULLNAME}-prometheus`,
  serviceAccount: `${KPS_FULLNAME}-prometheus`,
  port: 9090,
  podLabels: { "app.kubernetes.io/name": "prometheus", "operator.prometheus.io/name": `${KPS_FULLNAME}-prometheus` },
} as const;

/** Grafana (the kube-prometheus-stack subchart, named `<release>-grafana`). */
export const GRAFANA = { service: `${RELEASES.kubePrometheusStack}-grafana`, port: 80, adminSecret: "grafana-admin" } as const;

/** Loki single binary without its nginx gateway: Alloy pushes straight to it. */
export const LOKI = { service: RELEASES.loki, port: 3100 } as const;

/** Argo CD server (plain HTTP behind the Istio gateway). */
export const ARGOCD = { service: `${RELEASES.argoCd}-server`, port: 80, secret: "argocd-secret" } as const;

/** The ClusterSecretStore every ExternalSecret reads from. */
export const SECRET_STORE = "gcp-secret-manager";

/** The Kubernetes Secret the application reads its credentials from, and its keys. */
export const APP_SECRET = {
  name: "titanium-app-secrets",
  keys: {
    /** The database owner's: PostgreSQL's own and the migrations'. */
    POSTGRES_PASSWORD: "postgres-password",
    /** Each database role's (`DATABASE_ROLES` in components/apps/topology.ts): its workload's `PGPASSWORD`, and the migrations set it. */
    AUTH_SERVICE_PGPASSWORD: "postgres-auth-service-password",
    USER_SERVICE_PGPASSWORD: "postgres-user-service-password",
    BLOG_SERVICE_PGPASSWORD: "postgres-blog-service-password",
    BACKUP_PGPASSWORD: "postgres-backup-password",
    /** The Redis probes' user's (`probe`: PING only); each service's own Redis user's below (`REDIS_USERS` in components/apps/topology.ts). */
    REDIS_PASSWORD: "redis-password",
    API_GATEWAY_REDIS_PASSWORD: "redis-api-gateway-password",
    USER_SERVICE_REDIS_PASSWORD: "redis-user-service-password",
    BLOG_SERVICE_REDIS_PASSWORD: "redis-blog-service-password",
    JWT_PRIVATE_KEY: "jwt-signing-key",
  },
} as const;

/** Where K3s keeps its CNI configuration and binaries (not the usual /etc/cni and /opt/cni): the Istio CNI agent installs there. */
export const K3S_CNI_DIRS = { confDir: "/var/lib/rancher/k3s/agent/etc/cni/net.d", binDir: "/var/lib/rancher/k3s/data/cni" } as const;

/** Admin UIs served under sub-paths of the public gateway, reachable only from the admin CIDRs. */
export const ADMIN_PATHS = { grafana: "/grafana", prometheus: "/prometheus", argocd: "/argocd" } as const;

/** The Secret Manager secrets the platform reads: the cloud layer creates them and owns the list. */
export { APP_SECRET_NAMES, type AppSecretName } from "../gcp/names";

/**
 * What an application pod needs so Prometheus scrapes it under STRICT mTLS (ADR 0021): the
 * standard `prometheus.io/*` annotations naming the app's own metrics port and path. Istio's
 * sidecar injector rewrites them to the agent's merged endpoint (`:15020/stats/prometheus`,
 * plain HTTP outside the mTLS listener), and the platform's PodMonitor scrapes that.
 */
export function appScrapeAnnotations(port: number, path = "/metrics"): Record<string, string> {
  return { "prometheus.io/scrape": "true", "prometheus.io/port": String(port), "prometheus.io/path": path };
}

/** The mesh's identity domain (SPIFFE trust domain of every principal). */
export const TRUST_DOMAIN = "cluster.local";

/** istiod's pods and the ports sidecars open to it: xDS and certificates (15012, TLS). */
export const ISTIOD = { podLabels: { app: "istiod" }, ports: [15012] } as const;

/** Istio's merged metrics endpoint on every injected pod (pilot-agent; not behind the mTLS listener). */
export const MERGED_METRICS = { port: 15020, path: "/stats/prometheus" } as const;

/**
 * The GCE Persistent Disk CSI driver (ADR 0022): its CSI name, which every StorageClass for GCE PDs
 * names as `provisioner`, and the objects it runs as (the upstream names, so its documentation and
 * logs read the same). The policy pack's allow-lists name the node plugin independently and a test
 * checks they agree.
 */
export const PD_CSI = {
  driverName: PD_CSI_DRIVER_NAME,
  namespace: NAMESPACES.storage,
  controller: "csi-gce-pd-controller",
  node: "csi-gce-pd-node",
  /** The driver container (privileged in the node plugin, where it mounts disks; the registrar beside it is not). */
  driverContainer: "gce-pd-driver",
  controllerServiceAccount: "csi-gce-pd-controller-sa",
  nodeServiceAccount: "csi-gce-pd-node-sa",
  /** The kubelet's root directory: K3s' default too (K3s moved it back to `/var/lib/kubelet` for CSI drivers). */
  kubeletDir: "/var/lib/kubelet",
  /** Topology key the driver reports and provisions by (the zone of the node). */
  topologyKey: "topology.gke.io/zone",
} as const;

/**
 * The GCE metadata server: its token is the node's service account (on agents, the reader of the
 * application secrets, ADR 0012). Only the backup pod among the application's may reach it, and no
 * team namespace's pod (Argo CD's optional root app).
 */
export const METADATA_SERVER = "169.254.169.254/32";
