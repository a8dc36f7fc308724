/**
 * Kubernetes shapes as the engine sees them (inputs of `@pulumi/kubernetes` resources, camelCase),
 * shared by the pod-level policies.
 */
import { readOr } from "./sdk";

/** Type tokens of every pod-bearing kind, with the path from the object to its pod template. */
export const POD_TEMPLATE_PATHS: Readonly<Record<string, readonly string[]>> = {
  "kubernetes:apps/v1:Deployment": ["spec", "template"],
  "kubernetes:apps/v1:StatefulSet": ["spec", "template"],
  "kubernetes:apps/v1:DaemonSet": ["spec", "template"],
  "kubernetes:apps/v1:ReplicaSet": ["spec", "template"],
  "kubernetes:core/v1:ReplicationController": ["spec", "template"],
  "kubernetes:batch/v1:Job": ["spec", "template"],
  "kubernetes:batch/v1:CronJob": ["spec", "jobTemplate", "spec", "template"],
  // A bare Pod is its own template.
  "kubernetes:core/v1:Pod": [],
};

/**
 * Helm chart resources: one opaque object whose workloads live in `values`. Only the v3 Release: a
 * `helm.sh/v4:Chart` is a component the provider registers with no properties (the CLI's analyzer
 * sees `{}`), and its rendered objects reach the policies one by one like any other resource.
 */
export const HELM_RELEASE_TYPES: readonly string[] = ["kubernetes:helm.sh/v3:Release"];

/** Kubernetes types that are no object of their own: a Release (judged through its values) and a v4 Chart component (no properties). */
export const CHART_TYPES: readonly string[] = [...HELM_RELEASE_TYPES, "kubernetes:helm.sh/v4:Chart"];

/**
 * Kubernetes component resources: no object of their own (a local component reaches the analyzer with
 * no properties), their objects registered as children and judged one by one. The charts above, the
 * client-side `helm.v3.Chart` (and its old v2 token), YAML `ConfigFile`/`ConfigGroup` and kustomize
 * `Directory`, in every version.
 */
export const isKubernetesComponent = (type: string): boolean =>
  CHART_TYPES.includes(type) || /^kubernetes:(helm\.sh\/v[23]:Chart|yaml(\/v\d+)?:\w+|kustomize(\/v\d+)?:Directory)$/.test(type);

export type Obj = Record<string, unknown>;

/**
 * Kinds that live outside any namespace, by API group (`core` for the legacy group, as in the type
 * token `kubernetes:core/v1:Namespace`): the built-in ones (Kubernetes 1.33) and the cluster-scoped
 * custom resources of the operators Titanium installs or may (External Secrets, cert-manager, Gateway
 * API, CSI snapshots). Matched on group and kind, never on the kind alone (`Gateway` is namespaced in
 * both Istio and the Gateway API, `GatewayClass` is not). A kind missing here is taken as namespaced,
 * the safe side: a policy that places it in a namespace says so, and the kind is added here.
 */
export const CLUSTER_SCOPED_KINDS: Readonly<Record<string, readonly string[]>> = {
  core: ["Namespace", "Node", "PersistentVolume", "ComponentStatus"],
  "rbac.authorization.k8s.io": ["ClusterRole", "ClusterRoleBinding"],
  "apiextensions.k8s.io": ["CustomResourceDefinition"],
  "apiregistration.k8s.io": ["APIService"],
  "admissionregistration.k8s.io": [
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "MutatingAdmissionPolicy",
    "MutatingAdmissionPolicyBinding",
  ],
  "storage.k8s.io": ["StorageClass", "CSIDriver", "CSINode", "VolumeAttachment", "VolumeAttributesClass"],
  "scheduling.k8s.io": ["PriorityClass"],
  "node.k8s.io": ["RuntimeClass"],
  "networking.k8s.io": ["IngressClass", "IPAddress", "ServiceCIDR", "ClusterCIDR"],
  "certificates.k8s.io": ["CertificateSigningRequest", "ClusterTrustBundle"],
  "flowcontrol.apiserver.k8s.io": ["FlowSchema", "PriorityLevelConfiguration"],
  "resource.k8s.io": ["DeviceClass", "ResourceSlice"],
  "storagemigration.k8s.io": ["StorageVersionMigration"],
  "internal.apiserver.k8s.io": ["StorageVersion"],
  policy: ["PodSecurityPolicy"],
  "external-secrets.io": ["ClusterSecretStore", "ClusterExternalSecret", "ClusterPushSecret", "ClusterGenerator"],
  "cert-manager.io": ["ClusterIssuer"],
  "gateway.networking.k8s.io": ["GatewayClass"],
  "snapshot.storage.k8s.io": ["VolumeSnapshotClass", "VolumeSnapshotContent"],
};

/**
 * The API group and kind of a Kubernetes type token (`kubernetes:rbac.authorization.k8s.io/v1:ClusterRole`),
 * a patch's (`...:ClusterRolePatch`) being its target's; undefined for tokens of no Kubernetes object.
 */
export function groupKindOf(type: string): { group: string; kind: string; patch: boolean } | undefined {
  const m = /^kubernetes:([^/:]+)\/[^/:]+:(\w+)$/.exec(type);
  if (!m) return undefined;
  const patch = m[2]!.endsWith("Patch") && m[2]!.length > "Patch".length;
  return { group: m[1]!, kind: patch ? m[2]!.slice(0, -"Patch".length) : m[2]!, patch };
}

/** Whether a type token names a cluster-scoped kind ({@link CLUSTER_SCOPED_KINDS}), or a patch of one. */
export function isClusterScoped(type: string): boolean {
  const gk = groupKindOf(type);
  return gk !== undefined && Object.hasOwn(CLUSTER_SCOPED_KINDS, gk.group) && CLUSTER_SCOPED_KINDS[gk.group]!.includes(gk.kind);
}

export interface ContainerRef {
  /** `containers`, `initContainers` or `ephemeralContainers`. */
  list: string;
  name: string;
  container: Obj;
}

export interface PodTemplate {
  metadata: Obj;
  spec: Obj;
}

export const isPodBearing = (type: string): boolean => type in POD_TEMPLATE_PATHS;

const asObj = (v: unknown): Obj => (v && typeof v === "object" ? (v as Obj) : {});

/** The pod template of a pod-bearing resource (its `metadata` and `spec`); undefined for other types. */
export function podTemplate(type: string, props: Obj): PodTemplate | undefined {
  const path = POD_TEMPLATE_PATHS[type];
  if (!path) return undefined;
  let node: unknown = props;
  for (const key of path) node = asObj(node)[key];
  const template = asObj(node);
  return { metadata: asObj(template.metadata), spec: asObj(template.spec) };
}

/** Every container of a pod spec, init and ephemeral ones included. */
export function containersOf(spec: Obj): ContainerRef[] {
  const out: ContainerRef[] = [];
  for (const list of ["initContainers", "containers", "ephemeralContainers"]) {
    const items = spec[list];
    if (!Array.isArray(items)) continue;
    items.forEach((c: unknown, i: number) => {
      const container = asObj(c);
      out.push({ list, name: typeof container.name === "string" ? container.name : `#${i}`, container });
    });
  }
  return out;
}

/** `container "api"` or `init container "migrate"`, for messages. */
export function describeContainer(ref: ContainerRef): string {
  const kind = ref.list === "initContainers" ? "init container" : ref.list === "ephemeralContainers" ? "ephemeral container" : "container";
  return `${kind} "${ref.name}"`;
}

export const metadataOf = (props: Obj): Obj => asObj(props.metadata);
export const labelsOf = (metadata: Obj): Record<string, string> => asObj(metadata.labels) as Record<string, string>;

/** The Kubernetes provider a resource is created with, as the engine shows it to policies. */
type ProviderRef = { type: string; props: Record<string, unknown> } | undefined;

/** Where an object or a release lands, and what decided it (for messages). */
export interface NamespacePlacement {
  namespace: string;
  from: string;
}

/**
 * The namespace an object or a release names (`field`: `metadata.namespace`, a release's `namespace`), else
 * the `namespace` setting of the Kubernetes provider it is created with (the provider's default for what
 * names none), else `default`, with the reason. (A namespace in the provider's kubeconfig context is beyond
 * what the engine shows policies.)
 */
export function namespacePlacement(explicit: unknown, field: string, provider: ProviderRef): NamespacePlacement {
  if (typeof explicit === "string" && explicit !== "") return { namespace: explicit, from: field };
  const fromProvider = provider?.type === "pulumi:providers:kubernetes" ? provider.props.namespace : undefined;
  if (typeof fromProvider === "string" && fromProvider !== "") return { namespace: fromProvider, from: `no ${field}: its Kubernetes provider's namespace` };
  return { namespace: "default", from: `no ${field} and no provider namespace: Kubernetes' default` };
}

/** The namespace a namespaced object lands in ({@link namespacePlacement} of its `metadata.namespace`). */
export function namespaceOf(props: Obj, provider?: ProviderRef): string {
  return namespacePlacement(metadataOf(props).namespace, "metadata.namespace", provider).namespace;
}

/** `namespace/name` of an object, as far as its inputs say (an auto-named object has no name yet). */
export function objectName(props: Obj, fallback: string): string {
  // Only for messages: an unknown name must not turn a finding into "unknown".
  return readOr(() => {
    const md = metadataOf(props);
    const name = typeof md.name === "string" ? md.name : fallback;
    return typeof md.namespace === "string" ? `${md.namespace}/${name}` : name;
  }, fallback);
}

/** The chart name of a Helm resource: the last path segment of `chart` (`repo/istiod`, `oci://.../alloy`). */
export function chartName(props: Obj): string | undefined {
  const chart = props.chart;
  if (typeof chart !== "string" || chart === "") return undefined;
  return chart.replace(/\/+$/, "").split("/").pop();
}

/** A values path such as `prometheus.prometheusSpec.resources`, `controller[0].resources` or `configs."a.b"`. */
export function splitPath(path: string): (string | number)[] {
  const out: (string | number)[] = [];
  const re = /"([^"]+)"|\[(\d+)\]|([^.[\]"]+)/g;
  for (const m of path.matchAll(re)) {
    if (m[1] !== undefined) out.push(m[1]);
    else if (m[2] !== undefined) out.push(Number(m[2]));
    else if (m[3] !== undefined) out.push(m[3]);
  }
  return out;
}

/** Reads a values path; undefined when any step is missing. */
export function getPath(root: unknown, path: string): unknown {
  let node = root;
  for (const step of splitPath(path)) {
    if (node === null || typeof node !== "object") return undefined;
    node = (node as Record<string | number, unknown>)[step];
  }
  return node;
}

/** Simple globs: `*` matches any run of characters, everything else is literal. */
export function globMatch(pattern: string, value: string): boolean {
  const re = new RegExp(`^${pattern.split("*").map((p) => p.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*")}$`);
  return re.test(value);
}

/**
 * An entry of a data-driven allow-list: which workloads it covers (by object name or
 * `app.kubernetes.io/name` label, by Helm chart, optionally in one namespace and of some kinds),
 * optionally narrowed to some of their containers or host paths, and why.
 */
export interface WorkloadMatcher {
  /** Globs against `metadata.name` and the `app.kubernetes.io/name` label of the object or its pods. */
  names?: string[];
  /** Chart names, matched against the `helm.sh/chart` label (`<chart>-<version>`). */
  charts?: string[];
  /** Values of the `app.kubernetes.io/component` label (e.g. `cache`). */
  components?: string[];
  /** Only in this namespace (any namespace when absent). */
  namespace?: string;
  /** Only objects of these kinds (`DaemonSet`, ...); any kind when absent. */
  kinds?: string[];
  /** Only these containers of the workload, by name (every container when absent); for per-container checks. */
  containers?: string[];
  /** Only these host paths, exactly (a trailing `/` aside; any path when absent); for the hostPath check. */
  hostPaths?: string[];
  /**
   * For the privilege check: only these added Linux capabilities (`NET_ADMIN`, ...), the container
   * otherwise held to every rule; absent, the entry admits the container as privileged (every capability).
   */
  capabilities?: string[];
  /** Why the exception is acceptable (shown in reports and the README). */
  reason: string;
}

/**
 * Every allow-list entry that covers this workload (as a whole; see {@link coversContainer} and {@link coversHostPath}).
 * `namespaceOverride` stands in for a cluster-scoped object's own (a PersistentVolume: the namespace of the claim it is reserved for).
 */
export function matchWorkloads(entries: readonly WorkloadMatcher[], props: Obj, template?: PodTemplate, namespaceOverride?: string): WorkloadMatcher[] {
  const md = metadataOf(props);
  // Only the labels that identify a workload are read (an unknown unrelated label must not matter).
  const label = (key: string) => labelsOf(md)[key] ?? labelsOf(template?.metadata ?? {})[key];
  const names = [md.name, label("app.kubernetes.io/name")].filter((n): n is string => typeof n === "string");
  const chartLabel = label("helm.sh/chart");
  const component = label("app.kubernetes.io/component");
  const namespace = namespaceOverride ?? (typeof md.namespace === "string" ? md.namespace : "default");
  return entries.filter((e) => {
    if (e.namespace !== undefined && e.namespace !== namespace) return false;
    if (e.kinds !== undefined && !(typeof props.kind === "string" && e.kinds.includes(props.kind))) return false;
    const byName = (e.names ?? []).some((g) => names.some((n) => globMatch(g, n)));
    const byChart = typeof chartLabel === "string" && (e.charts ?? []).some((c) => new RegExp(`^${c.replace(/[.+?^${}()|[\]\\]/g, "\\$&")}-v?\\d`).test(chartLabel));
    const byComponent = typeof component === "string" && (e.components ?? []).includes(component);
    return byName || byChart || byComponent;
  });
}

/** The first allow-list entry that covers this workload, if any. */
export function matchWorkload(entries: readonly WorkloadMatcher[], props: Obj, template?: PodTemplate): WorkloadMatcher | undefined {
  return matchWorkloads(entries, props, template)[0];
}

/** Whether an entry (already matched to the workload) covers this container. */
export const coversContainer = (entry: WorkloadMatcher, container: string): boolean => entry.containers === undefined || entry.containers.includes(container);

const trimSlash = (path: string) => (path.length > 1 ? path.replace(/\/+$/, "") : path);
/** Whether an entry (already matched to the workload) covers this host path. */
export const coversHostPath = (entry: WorkloadMatcher, path: string): boolean =>
  entry.hostPaths === undefined || entry.hostPaths.some((p) => trimSlash(p) === trimSlash(path));

/** JSON schema of a {@link WorkloadMatcher} list, for policies' config schemas. */
export const workloadMatcherListSchema = {
  type: "array" as const,
  items: {
    type: "object" as const,
    properties: {
      names: { type: "array" as const, items: { type: "string" as const } },
      charts: { type: "array" as const, items: { type: "string" as const } },
      components: { type: "array" as const, items: { type: "string" as const } },
      namespace: { type: "string" as const },
      kinds: { type: "array" as const, items: { type: "string" as const } },
      containers: { type: "array" as const, items: { type: "string" as const } },
      hostPaths: { type: "array" as const, items: { type: "string" as const } },
      capabilities: { type: "array" as const, items: { type: "string" as const } },
      reason: { type: "string" as const, minLength: 1 },
    },
    required: ["reason"],
    additionalProperties: false,
  },
};
