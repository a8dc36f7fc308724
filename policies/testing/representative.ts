/**
 * Representative resources of the cloud, platform and application layers (issues 4, 5, 6), built
 * from the stack's real config (replicas, sizes, images, protect) in the shapes the providers use.
 * They stood in for those layers until each landed; every layer is on main now. The mutation test
 * still adds one only for a resource type the real stack does not register, which today is a single
 * fake `gcp:compute/disk:Disk` in dev (dev's servers have no data disk, `dataDiskGb: 0`).
 */
import { loadConfig, SERVICE_NAMES, serviceImage, type TitaniumConfig } from "../../stacks/config";
import { readStackConfig, type RecordedResource } from "../../stacks/harness";
import {
  APP_NAMESPACE,
  appLabels,
  container,
  deployment,
  destinationRule,
  firewall,
  helmRelease,
  horizontalPodAutoscaler,
  instance,
  instanceTemplate,
  namespace,
  peerAuthentication,
  podDisruptionBudget,
  secret,
  service,
  workload,
} from "./builders";
import { recorded } from "./fixtures";

/** Chart-workload entries for the stand-in Helm releases (the platform's table replaces them). */
export const REPRESENTATIVE_CHART_WORKLOADS = {
  base: [],
  istiod: ["resources", "global.proxy.resources"],
  gateway: ["resources"],
};

const IAP = "35.235.240.0/20";
const HEALTH_CHECKS = ["35.191.0.0/16", "130.211.0.0/22"];

function cloud(c: TitaniumConfig): RecordedResource[] {
  const subnet = c.network.subnetCidr;
  const servers = Array.from({ length: c.cluster.servers.count }, (_, i) => instance(`k3s-server-${i}`));
  const disks = Array.from({ length: c.cluster.servers.count }, (_, i) =>
    recorded("gcp:compute/disk:Disk", `k3s-server-${i}-data`, { size: c.cluster.servers.dataDiskGb, type: "pd-balanced" }, { protect: c.protect }),
  );
  const secrets = ["k3s-server-token", "k3s-agent-token", "postgres-password", "redis-password", "jwt-signing-key", "grafana-admin-password", "argocd-admin-password"];
  return [
    firewall("allow-internal", { sourceRanges: [subnet, c.network.podCidr], allows: [{ protocol: "tcp" }, { protocol: "udp" }, { protocol: "icmp" }] }),
    firewall("allow-iap-ssh", { sourceRanges: [IAP], allows: [{ protocol: "tcp", ports: ["22"] }] }),
    firewall("allow-k3s-api", { sourceRanges: [...c.network.adminCidrs, IAP, ...HEALTH_CHECKS], allows: [{ protocol: "tcp", ports: ["6443"] }] }),
    firewall("allow-gateway", {
      // A passthrough load balancer keeps the client's address, so clients reach the NodePorts.
      sourceRanges: ["0.0.0.0/0"],
      allows: [{ protocol: "tcp", ports: [String(c.ingress.httpNodePort), String(c.ingress.httpsNodePort)] }],
    }),
    firewall("allow-health-checks", { sourceRanges: HEALTH_CHECKS, allows: [{ protocol: "tcp", ports: [String(c.ingress.healthCheckNodePort), "10250"] }] }),
    ...servers,
    ...disks,
    instanceTemplate("k3s-agent"),
    recorded("gcp:compute/address:Address", "lb-ip", { addressType: "EXTERNAL", region: c.gcp.region }, { protect: c.protect }),
    ...secrets.map((s) => secret(s, {}, c.protect)),
  ];
}

function platform(c: TitaniumConfig): RecordedResource[] {
  const small = { requests: { cpu: "50m", memory: "64Mi" }, limits: { cpu: "500m", memory: "256Mi" } };
  return [
    namespace("istio-system"),
    namespace("monitoring"),
    namespace(APP_NAMESPACE, { "istio-injection": "enabled" }),
    helmRelease("istio-base", "base", {}),
    helmRelease("istiod", "istiod", { resources: { requests: { cpu: "100m", memory: "256Mi" }, limits: { cpu: "500m", memory: "512Mi" } }, global: { proxy: { resources: small } } }),
    helmRelease("istio-gateway", "gateway", {
      service: { type: "NodePort", ports: [{ name: "http2", port: 80, targetPort: 80, nodePort: c.ingress.httpNodePort }] },
      resources: small,
    }),
    peerAuthentication("default", "istio-system", { mtls: { mode: "STRICT" } }),
  ];
}

function apps(c: TitaniumConfig): RecordedResource[] {
  const out: RecordedResource[] = [];
  for (const name of SERVICE_NAMES) {
    const spec = c.services[name];
    out.push(
      deployment(name, { replicas: spec.replicas, containers: [container(name, { image: serviceImage(c.images, name), resources: spec.resources })] }),
      service(name),
      destinationRule(name, `${name}.${APP_NAMESPACE}.svc.cluster.local`, { tls: { mode: "ISTIO_MUTUAL" } }),
    );
    if (c.features.autoscaling) {
      out.push(horizontalPodAutoscaler(name, name, spec.minReplicas ?? spec.replicas), podDisruptionBudget(name, { "app.kubernetes.io/name": name }));
    }
  }
  const dataPod = (name: string, image: string, resources: object, user: number) =>
    workload("kubernetes:apps/v1:StatefulSet", name, {
      replicas: 1,
      containers: [container(name, { image, resources, securityContext: { ...(container(name).securityContext as object), runAsUser: user } })],
      spec: { serviceName: name, volumeClaimTemplates: [{ metadata: { name: "data", labels: appLabels(name) }, spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "10Gi" } } } }] },
      protect: c.protect,
    });
  out.push(
    dataPod("postgres", c.data.postgres.image, c.data.postgres.resources, 70),
    dataPod("redis", c.data.redis.image, c.data.redis.resources, 999),
    workload("kubernetes:batch/v1:Job", "migrate", { containers: [container("migrate", { image: serviceImage(c.images, "user-service") })] }),
  );
  return out;
}

/** What the cloud, platform and application layers register for this stack, per their issues. */
export function representativeResources(stack: string): RecordedResource[] {
  const c = loadConfig(stack, readStackConfig(stack));
  return [...cloud(c), ...platform(c), ...apps(c)].map((r) => ({ ...r, urn: r.urn.replace("urn:pulumi:test::", `urn:pulumi:${stack}::`) }));
}

/** The real resources plus stand-ins for the types the real program does not register yet. */
export function withStandIns(stack: string, real: readonly RecordedResource[]): RecordedResource[] {
  const realTypes = new Set(real.map((r) => r.type));
  return [...real, ...representativeResources(stack).filter((r) => !realTypes.has(r.type))];
}
