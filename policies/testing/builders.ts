/**
 * Representative resources in the shapes the layers register (inputs as the engine receives them:
 * camelCase `@pulumi/gcp` / `@pulumi/kubernetes` args, the type tokens the providers use). Each
 * builder returns a compliant resource; tests break one field to show a policy catching it.
 */
import type { RecordedResource } from "../../stacks/harness";
import { recorded } from "./fixtures";

type Obj = Record<string, unknown>;

export const APP_NAMESPACE = "titanium";

/** The recommended labels every object carries. */
export const appLabels = (name: string): Record<string, string> => ({
  "app.kubernetes.io/name": name,
  "app.kubernetes.io/part-of": "titanium",
  "app.kubernetes.io/managed-by": "pulumi",
});

/** A hardened container (the application layer's TitaniumService shape). */
export function container(name: string, overrides: Obj = {}): Obj {
  return {
    name,
    image: `ghcr.io/titanium-platform/titanium/${name}:main-1a2b3c4`,
    ports: [{ name: "http", containerPort: 3000 }],
    resources: { requests: { cpu: "50m", memory: "64Mi" }, limits: { cpu: "500m", memory: "128Mi" } },
    securityContext: {
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      runAsUser: 1000,
      capabilities: { drop: ["ALL"] },
      seccompProfile: { type: "RuntimeDefault" },
    },
    ...overrides,
  };
}

export interface WorkloadOptions {
  namespace?: string;
  replicas?: number;
  containers?: Obj[];
  initContainers?: Obj[];
  podSpec?: Obj;
  podLabels?: Record<string, string>;
  podAnnotations?: Record<string, string>;
  spec?: Obj;
  protect?: boolean;
}

const KIND: Record<string, { apiVersion: string; kind: string }> = {
  "kubernetes:apps/v1:Deployment": { apiVersion: "apps/v1", kind: "Deployment" },
  "kubernetes:apps/v1:StatefulSet": { apiVersion: "apps/v1", kind: "StatefulSet" },
  "kubernetes:apps/v1:DaemonSet": { apiVersion: "apps/v1", kind: "DaemonSet" },
  "kubernetes:apps/v1:ReplicaSet": { apiVersion: "apps/v1", kind: "ReplicaSet" },
  "kubernetes:core/v1:ReplicationController": { apiVersion: "v1", kind: "ReplicationController" },
  "kubernetes:batch/v1:Job": { apiVersion: "batch/v1", kind: "Job" },
  "kubernetes:batch/v1:CronJob": { apiVersion: "batch/v1", kind: "CronJob" },
  "kubernetes:core/v1:Pod": { apiVersion: "v1", kind: "Pod" },
};

/** Any pod-bearing kind, with its pod template where that kind keeps it. */
export function workload(type: string, name: string, o: WorkloadOptions = {}): RecordedResource {
  const kind = KIND[type];
  if (!kind) throw new Error(`not a pod-bearing type: ${type}`);
  const labels = { ...appLabels(name), ...o.podLabels };
  const podSpec: Obj = {
    serviceAccountName: name,
    containers: o.containers ?? [container(name)],
    ...(o.initContainers ? { initContainers: o.initContainers } : {}),
    ...(type === "kubernetes:batch/v1:Job" || type === "kubernetes:batch/v1:CronJob" ? { restartPolicy: "OnFailure" } : {}),
    ...o.podSpec,
  };
  const template = { metadata: { labels, ...(o.podAnnotations ? { annotations: o.podAnnotations } : {}) }, spec: podSpec };
  const metadata = { name, namespace: o.namespace ?? APP_NAMESPACE, labels: appLabels(name) };
  let spec: Obj;
  if (type === "kubernetes:core/v1:Pod") return recorded(type, name, { ...kind, metadata: { ...metadata, labels }, spec: podSpec }, { protect: o.protect ?? false });
  if (type === "kubernetes:batch/v1:CronJob") spec = { schedule: "0 3 * * *", jobTemplate: { spec: { template } } };
  else if (type === "kubernetes:batch/v1:Job") spec = { template };
  else spec = { replicas: o.replicas ?? 2, selector: { matchLabels: { "app.kubernetes.io/name": name } }, template };
  return recorded(type, name, { ...kind, metadata, spec: { ...spec, ...o.spec } }, { protect: o.protect ?? false });
}

export const deployment = (name: string, o: WorkloadOptions = {}) => workload("kubernetes:apps/v1:Deployment", name, o);

export function namespace(name: string, labels: Record<string, string> = {}): RecordedResource {
  return recorded("kubernetes:core/v1:Namespace", name, { apiVersion: "v1", kind: "Namespace", metadata: { name, labels: { ...appLabels(name), ...labels } } });
}

export function peerAuthentication(name: string, ns: string, spec: Obj): RecordedResource {
  return recorded("kubernetes:security.istio.io/v1:PeerAuthentication", `${ns}-${name}`, {
    apiVersion: "security.istio.io/v1",
    kind: "PeerAuthentication",
    metadata: { name, namespace: ns, labels: appLabels(name) },
    spec,
  });
}

export function destinationRule(name: string, host: string, trafficPolicy: Obj, extra: Obj = {}): RecordedResource {
  return recorded("kubernetes:networking.istio.io/v1:DestinationRule", name, {
    apiVersion: "networking.istio.io/v1",
    kind: "DestinationRule",
    metadata: { name, namespace: APP_NAMESPACE, labels: appLabels(name) },
    spec: { host, trafficPolicy, ...extra },
  });
}

/** An EnvoyFilter shaped like the platform's secure-cookies one: a Lua HTTP filter on the ingress gateway. */
export function envoyFilter(name: string, configPatches?: Obj[]): RecordedResource {
  return recorded("kubernetes:networking.istio.io/v1alpha3:EnvoyFilter", name, {
    apiVersion: "networking.istio.io/v1alpha3",
    kind: "EnvoyFilter",
    metadata: { name, namespace: "istio-system", labels: appLabels(name) },
    spec: {
      workloadSelector: { labels: { istio: "ingressgateway" } },
      configPatches: configPatches ?? [
        {
          applyTo: "HTTP_FILTER",
          match: { context: "GATEWAY", listener: { filterChain: { filter: { name: "envoy.filters.network.http_connection_manager", subFilter: { name: "envoy.filters.http.router" } } } } },
          patch: {
            operation: "INSERT_BEFORE",
            value: { name: "envoy.filters.http.lua", typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua", default_source_code: { inline_string: "function envoy_on_response(h) end" } } },
          },
        },
      ],
    },
  });
}

export function service(name: string, spec: Obj = {}): RecordedResource {
  return recorded("kubernetes:core/v1:Service", name, {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name, namespace: APP_NAMESPACE, labels: appLabels(name) },
    spec: { selector: { "app.kubernetes.io/name": name }, ports: [{ name: "http", port: 80, targetPort: "http" }], ...spec },
  });
}

export function podDisruptionBudget(name: string, matchLabels: Record<string, string>, ns = APP_NAMESPACE): RecordedResource {
  return recorded("kubernetes:policy/v1:PodDisruptionBudget", name, {
    apiVersion: "policy/v1",
    kind: "PodDisruptionBudget",
    metadata: { name, namespace: ns, labels: appLabels(name) },
    spec: { maxUnavailable: 1, selector: { matchLabels } },
  });
}

export function horizontalPodAutoscaler(name: string, target: string, minReplicas: number, ns = APP_NAMESPACE): RecordedResource {
  return recorded("kubernetes:autoscaling/v2:HorizontalPodAutoscaler", name, {
    apiVersion: "autoscaling/v2",
    kind: "HorizontalPodAutoscaler",
    metadata: { name, namespace: ns, labels: appLabels(name) },
    spec: {
      scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name: target },
      minReplicas,
      maxReplicas: 6,
      metrics: [{ type: "ContainerResource", containerResource: { name: "cpu", container: target, target: { type: "Utilization", averageUtilization: 70 } } }],
    },
  });
}

/** A `helm.v3.Release` (one opaque resource: its workloads are in `values`). */
export function helmRelease(name: string, chart: string, values: Obj, ns = "istio-system"): RecordedResource {
  return recorded("kubernetes:helm.sh/v3:Release", name, {
    chart,
    version: "1.30.3",
    namespace: ns,
    repositoryOpts: { repo: "https://istio-release.storage.googleapis.com/charts" },
    values,
  });
}

// ── GCP ─────────────────────────────────────────────────────────────────────────────────────────

export function firewall(name: string, inputs: Obj): RecordedResource {
  return recorded("gcp:compute/firewall:Firewall", name, { name, network: "https://www.googleapis.com/compute/v1/projects/p/global/networks/titanium", direction: "INGRESS", ...inputs });
}

/** A K3s node the way the cloud layer builds one: shielded, OS Login, dedicated account, no public IP. */
export function vmInputs(role: string, overrides: Obj = {}): Obj {
  return {
    machineType: "e2-medium",
    labels: { role, "cloud-platform-justification": "iam-roles-bound-the-account" },
    metadata: { "enable-oslogin": "TRUE", "block-project-ssh-keys": "TRUE" },
    networkInterfaces: [{ subnetwork: "titanium-subnet" }],
    serviceAccount: { email: `titanium-${role}@titanium-dev-4821.iam.gserviceaccount.com`, scopes: ["https://www.googleapis.com/auth/cloud-platform"] },
    shieldedInstanceConfig: { enableSecureBoot: true, enableVtpm: true, enableIntegrityMonitoring: true },
    ...overrides,
  };
}

export const instance = (name: string, overrides: Obj = {}, protect = false) =>
  recorded("gcp:compute/instance:Instance", name, { ...vmInputs("server", overrides), bootDisk: { initializeParams: { image: "debian-cloud/debian-12" } } }, { protect });

export const instanceTemplate = (name: string, overrides: Obj = {}) =>
  recorded("gcp:compute/instanceTemplate:InstanceTemplate", name, {
    ...vmInputs("agent", overrides),
    namePrefix: `${name}-`,
    disks: [{ sourceImage: "debian-cloud/debian-12", boot: true }],
  });

export function secret(name: string, inputs: Obj = {}, protect = false, provider?: string): RecordedResource {
  return recorded(
    "gcp:secretmanager/secret:Secret",
    name,
    { secretId: name, labels: { environment: "dev", project: "titanium", "managed-by": "pulumi" }, replication: { auto: {} }, ...inputs },
    { protect, ...(provider ? { provider } : {}) },
  );
}
