/**
 * Mutation test: the real dev and prod resource lists from the whole-program harness pass every
 * mandatory policy; breaking one thing at a time is caught by exactly the policy that owns it.
 * Every layer is on main; `withStandIns` (testing/representative.ts) only adds a resource of a type
 * the stack does not register, which today is one fake `gcp:compute/disk:Disk` in dev (dev's
 * servers have no data disk; the only policy that reads disks is disabled in dev).
 */
import { beforeAll, describe, expect, it } from "vitest";
import { chartName, getPath, globMatch } from "./lib/k8s";
import { createPolicies } from "./policies";
import { chartSwitchesOff, chartWorkloads } from "./chart-workloads";
import { selects } from "./rules/high-availability";
import { DEFAULT_APPLICATION_NAMESPACES } from "./rules/sidecar-injection";
import { runPolicies, type PolicyRun } from "./testing/engine";
import { fromRecorded } from "./testing/fixtures";
import { put } from "./testing/mutate";
import { loadStackPolicyConfig } from "./testing/policy-config";
import { REPRESENTATIVE_CHART_WORKLOADS, withStandIns } from "./testing/representative";
import { configuredRun, type RecordedResource } from "../stacks/harness";

// The platform's wired table wins over the representative entries (it lists every chart the stacks install).
const policies = createPolicies({ chartWorkloads: { ...REPRESENTATIVE_CHART_WORKLOADS, ...chartWorkloads }, chartSwitchesOff });
const STACKS = ["dev", "prod"] as const;
type Stack = (typeof STACKS)[number];
const base: Partial<Record<Stack, RecordedResource[]>> = {};

beforeAll(async () => {
  for (const stack of STACKS) base[stack] = withStandIns(stack, (await configuredRun(stack)).resources);
});

const evaluate = (stack: Stack, resources: RecordedResource[]): Promise<PolicyRun> =>
  runPolicies(policies, fromRecorded(resources), loadStackPolicyConfig(stack).config);
const failing = (run: PolicyRun) => [...new Set(run.findings.filter((f) => f.level === "mandatory").map((f) => f.policy))].sort();

// ── Finding what to break (in the real shapes; a missing target fails the test with its name) ──
function find(rs: RecordedResource[], what: string, pred: (r: RecordedResource) => boolean): RecordedResource {
  const r = rs.find(pred);
  if (!r) throw new Error(`mutation target not found: ${what}`);
  return r;
}
const isAppNs = (ns: unknown) => typeof ns === "string" && DEFAULT_APPLICATION_NAMESPACES.some((g) => globMatch(g, ns));
const appDeployment = (rs: RecordedResource[]) =>
  find(rs, "an application Deployment", (r) => r.type === "kubernetes:apps/v1:Deployment" && isAppNs(getPath(r.inputs, "metadata.namespace")));
const meshWide = (rs: RecordedResource[]) =>
  find(
    rs,
    "the mesh-wide PeerAuthentication",
    (r) => /PeerAuthentication$/.test(r.type) && getPath(r.inputs, "metadata.namespace") === "istio-system" && getPath(r.inputs, "spec.selector") === undefined,
  );
const byType = (rs: RecordedResource[], type: string) => find(rs, type, (r) => r.type === type);
const chartRelease = (rs: RecordedResource[], chart: string) =>
  find(rs, `the ${chart} chart`, (r) => r.type.startsWith("kubernetes:helm.sh/") && chartName(r.inputs) === chart);

const CONTAINER = "spec.template.spec.containers[0]";

/** The backup CronJob and the path of its `pg-dump` init container (under the job template). */
function backupInit(rs: RecordedResource[]): [RecordedResource, string] {
  const cron = find(rs, "the backup CronJob", (r) => r.type === "kubernetes:batch/v1:CronJob" && getPath(r.inputs, "metadata.name") === "postgres-backup");
  const at = "spec.jobTemplate.spec.template.spec.initContainers";
  const list = getPath(cron.inputs, at);
  const i = Array.isArray(list) ? list.findIndex((c) => (c as { name?: unknown }).name === "pg-dump") : -1;
  if (i < 0) throw new Error("mutation target not found: the backup's pg-dump init container");
  return [cron, `${at}[${i}]`];
}

interface Mutation {
  name: string;
  stacks: readonly Stack[];
  policies: string[];
  apply(rs: RecordedResource[]): RecordedResource[] | void;
}

const MUTATIONS: Mutation[] = [
  { name: "drops a container's CPU limit", stacks: STACKS, policies: ["k8s-resource-limits"], apply: (rs) => put(appDeployment(rs), `${CONTAINER}.resources.limits.cpu`, undefined) },
  {
    name: "drops a platform chart workload's resources",
    stacks: STACKS,
    policies: ["k8s-resource-limits"],
    apply: (rs) => put(chartRelease(rs, "istiod"), "values.resources", undefined),
  },
  {
    name: "drops the resources of Grafana's init-chown-data init container (kube-prometheus-stack values)",
    stacks: STACKS,
    policies: ["k8s-resource-limits"],
    apply: (rs) => put(chartRelease(rs, "kube-prometheus-stack"), "values.grafana.initChownData.resources", undefined),
  },
  {
    name: "turns Argo CD's Dex back on (a workload the chart-workload table leaves out, so nothing sizes it)",
    stacks: STACKS,
    policies: ["k8s-resource-limits"],
    apply: (rs) => put(chartRelease(rs, "argo-cd"), "values.dex.enabled", true),
  },
  {
    name: "leaves Loki's memcached chunks cache to the chart's default (on, 8 GiB)",
    stacks: STACKS,
    policies: ["k8s-resource-limits"],
    apply: (rs) => put(chartRelease(rs, "loki"), "values.chunksCache", undefined),
  },
  {
    name: "drops the resources of Argo CD's repo-server copyutil init container",
    stacks: STACKS,
    policies: ["k8s-resource-limits"],
    apply: (rs) => put(chartRelease(rs, "argo-cd"), "values.repoServer.copyutil.resources", undefined),
  },
  {
    name: "sets the mesh-wide mTLS mode PERMISSIVE",
    stacks: STACKS,
    policies: ["istio-mesh-wide-strict-mtls", "istio-peer-authentication-strict"],
    apply: (rs) => put(meshWide(rs), "spec.mtls.mode", "PERMISSIVE"),
  },
  { name: "drops the mesh-wide PeerAuthentication", stacks: STACKS, policies: ["istio-mesh-wide-strict-mtls"], apply: (rs) => rs.filter((r) => r !== meshWide(rs)) },
  {
    name: "adds a second selector-less PeerAuthentication in istio-system, mode UNSET (Istio would apply the older one)",
    stacks: STACKS,
    policies: ["istio-mesh-wide-strict-mtls"],
    apply: (rs) => {
      const second = structuredClone(meshWide(rs));
      Object.assign(second, { name: `${second.name}-legacy`, urn: `${second.urn}-legacy` });
      put(second, "metadata.name", "legacy");
      put(second, "spec.mtls.mode", "UNSET");
      return [...rs, second];
    },
  },
  {
    name: "disables TLS in a DestinationRule towards a service",
    stacks: STACKS,
    policies: ["istio-destination-rule-mtls"],
    apply: (rs) => put(find(rs, "a DestinationRule", (r) => /DestinationRule$/.test(r.type)), "spec.trafficPolicy", { tls: { mode: "DISABLE" } }),
  },
  {
    name: "turns the gateway's secure-cookies EnvoyFilter into a patch of the inbound sidecars' transport socket",
    stacks: STACKS,
    policies: ["istio-envoy-filter-mtls"],
    apply: (rs) =>
      put(find(rs, "the secure-cookies EnvoyFilter", (r) => /EnvoyFilter$/.test(r.type)), "spec.configPatches[0]", {
        applyTo: "TRANSPORT_SOCKET",
        match: { context: "SIDECAR_INBOUND" },
        patch: { operation: "MERGE", value: { name: "envoy.transport_sockets.raw_buffer" } },
      }),
  },
  {
    name: "sizes an application pod's istio-proxy by its requests alone (the injected proxy then has no limits)",
    stacks: STACKS,
    policies: ["k8s-resource-limits"],
    apply: (rs) => {
      const d = appDeployment(rs);
      put(d, 'spec.template.metadata.annotations."sidecar.istio.io/proxyCPULimit"', undefined);
      put(d, 'spec.template.metadata.annotations."sidecar.istio.io/proxyMemoryLimit"', undefined);
    },
  },
  {
    name: "binds a port of the node from an application container (hostPort)",
    stacks: STACKS,
    policies: ["k8s-no-host-namespaces"],
    apply: (rs) => put(appDeployment(rs), `${CONTAINER}.ports[0].hostPort`, 8080),
  },
  {
    name: "points a platform chart's image repository at a latest tag through its values",
    stacks: STACKS,
    policies: ["k8s-image-pinned"],
    apply: (rs) => put(chartRelease(rs, "alloy"), "values.image", { repository: "grafana/alloy:latest" }),
  },
  {
    name: "removes sidecar injection from the application namespace",
    stacks: STACKS,
    policies: ["istio-sidecar-injection"],
    apply: (rs) =>
      put(find(rs, "the application Namespace", (r) => r.type === "kubernetes:core/v1:Namespace" && isAppNs(getPath(r.inputs, "metadata.name"))), 'metadata.labels."istio-injection"', undefined),
  },
  { name: "adds a latest image", stacks: STACKS, policies: ["k8s-image-pinned"], apply: (rs) => put(appDeployment(rs), `${CONTAINER}.image`, "ghcr.io/titanium-platform/titanium/api-gateway:latest") },
  {
    name: "gives the backup's pg-dump init container a latest image",
    stacks: STACKS,
    policies: ["k8s-image-pinned"],
    apply: (rs) => {
      const [cron, init] = backupInit(rs);
      put(cron, `${init}.image`, "postgres:latest");
    },
  },
  {
    name: "drops the memory limit of the backup's pg-dump init container",
    stacks: STACKS,
    policies: ["k8s-resource-limits"],
    apply: (rs) => {
      const [cron, init] = backupInit(rs);
      put(cron, `${init}.resources.limits.memory`, undefined);
    },
  },
  { name: "makes a container privileged", stacks: STACKS, policies: ["k8s-no-privilege"], apply: (rs) => put(appDeployment(rs), `${CONTAINER}.securityContext.privileged`, true) },
  {
    name: "makes the backup's pg-dump init container privileged (under the CronJob's job template)",
    stacks: STACKS,
    policies: ["k8s-no-privilege"],
    apply: (rs) => {
      const [cron, init] = backupInit(rs);
      put(cron, `${init}.securityContext.privileged`, true);
    },
  },
  {
    name: "adds NET_ADMIN to an application container",
    stacks: STACKS,
    policies: ["k8s-no-privilege"],
    apply: (rs) => put(appDeployment(rs), `${CONTAINER}.securityContext.capabilities`, { drop: ["ALL"], add: ["NET_ADMIN"] }),
  },
  {
    name: "makes a chart's containers privileged through its values",
    stacks: STACKS,
    policies: ["k8s-no-privilege"],
    apply: (rs) => put(chartRelease(rs, "kube-prometheus-stack"), "values.grafana.containerSecurityContext", { privileged: true }),
  },
  {
    name: "relaxes the application namespace's Pod Security level",
    stacks: STACKS,
    policies: ["k8s-namespace-pod-security"],
    apply: (rs) =>
      put(find(rs, "the application Namespace", (r) => r.type === "kubernetes:core/v1:Namespace" && isAppNs(getPath(r.inputs, "metadata.name"))), 'metadata.labels."pod-security.kubernetes.io/enforce"', "privileged"),
  },
  { name: "puts a pod on the host network", stacks: STACKS, policies: ["k8s-no-host-namespaces"], apply: (rs) => put(appDeployment(rs), "spec.template.spec.hostNetwork", true) },
  {
    name: "leaves the node exporter in the node's namespaces (the chart's default)",
    stacks: STACKS,
    policies: ["k8s-no-host-namespaces"],
    apply: (rs) => put(chartRelease(rs, "kube-prometheus-stack"), 'values."prometheus-node-exporter".hostNetwork', undefined),
  },
  {
    name: "installs the Istio CNI agent into the chart's default CNI directories, not K3s'",
    stacks: STACKS,
    policies: ["k8s-host-path-allow-list"],
    apply: (rs) => put(chartRelease(rs, "cni"), "values.cniBinDir", undefined),
  },
  {
    name: "binds the database's claim to a hostPath PersistentVolume",
    stacks: STACKS,
    policies: ["k8s-host-path-allow-list"],
    apply: (rs) => {
      const claim = find(rs, "the database's PersistentVolumeClaim", (r) => r.type === "kubernetes:core/v1:PersistentVolumeClaim");
      const pv = structuredClone(claim);
      Object.assign(pv, { type: "kubernetes:core/v1:PersistentVolume", name: `${claim.name}-pv`, urn: `${claim.urn}-pv` });
      pv.inputs = {
        apiVersion: "v1",
        kind: "PersistentVolume",
        metadata: { name: "postgres-data-host", labels: getPath(claim.inputs, "metadata.labels") },
        spec: {
          capacity: getPath(claim.inputs, "spec.resources.requests"),
          accessModes: ["ReadWriteOnce"],
          hostPath: { path: "/var/lib/titanium/postgres" },
          claimRef: { namespace: getPath(claim.inputs, "metadata.namespace"), name: getPath(claim.inputs, "metadata.name") },
        },
      };
      return [...rs, pv];
    },
  },
  {
    name: "mounts a hostPath into an application pod",
    stacks: STACKS,
    policies: ["k8s-host-path-allow-list"],
    apply: (rs) => put(appDeployment(rs), "spec.template.spec.volumes", [{ name: "docker", hostPath: { path: "/var/run/docker.sock" } }]),
  },
  {
    name: "adds a DaemonSet named and labelled like the log shipper to the application namespace, mounting the node's root (node agents are allow-listed in their own namespace only)",
    stacks: STACKS,
    policies: ["k8s-host-path-allow-list"],
    apply: (rs) => {
      const ds = structuredClone(appDeployment(rs));
      Object.assign(ds, { type: "kubernetes:apps/v1:DaemonSet", name: "x-alloy", urn: `${ds.urn}-x-alloy` });
      put(ds, "kind", "DaemonSet");
      put(ds, "metadata.name", "x-alloy");
      put(ds, 'spec.template.metadata.labels."app.kubernetes.io/name"', "alloy");
      put(ds, "spec.template.spec.volumes", [{ name: "root", hostPath: { path: "/" } }]);
      return [...rs, ds];
    },
  },
  {
    name: "mounts the node's /etc into the node exporter through kube-prometheus-stack's values",
    stacks: STACKS,
    policies: ["k8s-host-path-allow-list"],
    apply: (rs) =>
      put(chartRelease(rs, "kube-prometheus-stack"), 'values."prometheus-node-exporter".extraHostVolumeMounts', [
        { name: "etc", hostPath: "/etc", mountPath: "/host/etc", readOnly: true },
      ]),
  },
  {
    name: "makes the PD CSI node plugin's registrar privileged (only its driver container is allow-listed)",
    stacks: STACKS,
    policies: ["k8s-no-privilege"],
    apply: (rs) => put(find(rs, "the PD CSI node plugin", (r) => r.type === "kubernetes:apps/v1:DaemonSet" && getPath(r.inputs, "metadata.name") === "csi-gce-pd-node"), `${CONTAINER}.securityContext.privileged`, true),
  },
  {
    name: "mounts the node's root filesystem into the PD CSI node plugin (only its own host paths are allow-listed)",
    stacks: STACKS,
    policies: ["k8s-host-path-allow-list"],
    apply: (rs) => {
      const node = find(rs, "the PD CSI node plugin", (r) => r.type === "kubernetes:apps/v1:DaemonSet" && getPath(r.inputs, "metadata.name") === "csi-gce-pd-node");
      put(node, "spec.template.spec.volumes", [...(getPath(node.inputs, "spec.template.spec.volumes") as unknown[]), { name: "root", hostPath: { path: "/" } }]);
    },
  },
  {
    name: "exposes a Service as LoadBalancer",
    stacks: STACKS,
    policies: ["k8s-no-load-balancer-service"],
    apply: (rs) => put(byType(rs, "kubernetes:core/v1:Service"), "spec.type", "LoadBalancer"),
  },
  {
    name: "opens 6443 to the world",
    stacks: STACKS,
    policies: ["gcp-firewall-no-world-admin-ports"],
    apply: (rs) =>
      put(find(rs, "the K3s API firewall rule", (r) => r.type === "gcp:compute/firewall:Firewall" && JSON.stringify(r.inputs.allows ?? []).includes('"6443"')), "sourceRanges", ["0.0.0.0/0"]),
  },
  { name: "removes Shielded VM from the agent template", stacks: STACKS, policies: ["gcp-shielded-vm"], apply: (rs) => put(byType(rs, "gcp:compute/instanceTemplate:InstanceTemplate"), "shieldedInstanceConfig", undefined) },
  {
    name: "runs a server as the default compute service account",
    stacks: STACKS,
    policies: ["gcp-vm-service-account"],
    apply: (rs) => put(byType(rs, "gcp:compute/instance:Instance"), "serviceAccount.email", "123456789012-compute@developer.gserviceaccount.com"),
  },
  {
    name: "gives agents a public IP",
    stacks: STACKS,
    policies: ["gcp-no-public-ip"],
    apply: (rs) => put(byType(rs, "gcp:compute/instanceTemplate:InstanceTemplate"), "networkInterfaces[0].accessConfigs", [{}]),
  },
  { name: "turns OS Login off", stacks: STACKS, policies: ["gcp-os-login"], apply: (rs) => put(byType(rs, "gcp:compute/instance:Instance"), 'metadata."enable-oslogin"', "FALSE") },
  {
    name: "grants a node's account the secret accessor on the whole project (every secret, the K3s CA bundle included)",
    stacks: STACKS,
    policies: ["gcp-iam-least-privilege"],
    apply: (rs) => put(find(rs, "a node's project role", (r) => r.type === "gcp:projects/iAMMember:IAMMember" && r.inputs.role === "roles/logging.logWriter"), "role", "roles/secretmanager.secretAccessor"),
  },
  {
    name: "grants a secret's reader through an authoritative SecretIamBinding",
    stacks: STACKS,
    policies: ["gcp-iam-least-privilege"],
    apply: (rs) => {
      const grant = byType(rs, "gcp:secretmanager/secretIamMember:SecretIamMember");
      Object.assign(grant, { type: "gcp:secretmanager/secretIamBinding:SecretIamBinding" });
      grant.inputs = { secretId: grant.inputs.secretId, role: grant.inputs.role, members: [grant.inputs.member] };
    },
  },
  {
    name: "makes the backups readable by anyone (the bucket writer's grant to allUsers)",
    stacks: STACKS,
    policies: ["gcp-iam-least-privilege"],
    apply: (rs) => put(byType(rs, "gcp:storage/bucketIAMMember:BucketIAMMember"), "member", "allUsers"),
  },
  {
    name: "drops public access prevention from the backup bucket",
    stacks: STACKS,
    policies: ["gcp-iam-least-privilege"],
    apply: (rs) => put(byType(rs, "gcp:storage/bucket:Bucket"), "publicAccessPrevention", "inherited"),
  },
  {
    name: "turns OS Login off for one agent through a per-instance config's preserved metadata",
    stacks: STACKS,
    policies: ["gcp-os-login"],
    apply: (rs) => {
      const group = find(rs, "the agents' instance group", (r) => /instanceGroupManager:/i.test(r.type));
      const config = structuredClone(group);
      const type = group.type.includes("region") ? "gcp:compute/regionPerInstanceConfig:RegionPerInstanceConfig" : "gcp:compute/perInstanceConfig:PerInstanceConfig";
      Object.assign(config, { type, name: "agent-0", urn: `${group.urn}-agent-0` });
      config.inputs = { instanceGroupManager: group.name, name: "agent-0", preservedState: { metadata: { "enable-oslogin": "FALSE" } } };
      return [...rs, config];
    },
  },
  // Advisory in dev, mandatory in prod.
  {
    name: "unprotects the database's volume",
    stacks: ["prod"],
    policies: ["protect-stateful-resources"],
    apply: (rs) =>
      void (find(
        rs,
        "the database volume (a PersistentVolumeClaim, or a StatefulSet's volume claim templates)",
        (r) =>
          r.protect &&
          (r.type === "kubernetes:core/v1:PersistentVolumeClaim" || (r.type === "kubernetes:apps/v1:StatefulSet" && getPath(r.inputs, "spec.volumeClaimTemplates") !== undefined)),
      ).protect = false),
  },
  {
    name: "unprotects the cluster's CA certificate",
    stacks: ["prod"],
    policies: ["protect-stateful-resources"],
    apply: (rs) =>
      void (find(rs, "a protected CA certificate", (r) => r.protect && r.type === "tls:index/selfSignedCert:SelfSignedCert" && getPath(r.inputs, "isCaCertificate") === true).protect = false),
  },
  {
    name: "opts the gateway's pods out of injection with a label istiod reads as no",
    stacks: STACKS,
    policies: ["istio-sidecar-injection"],
    apply: (rs) => put(appDeployment(rs), 'spec.template.metadata.labels."sidecar.istio.io/inject"', "off"),
  },
  {
    name: "turns the sidecar's traffic capture off on an application pod (interceptionMode NONE)",
    stacks: STACKS,
    policies: ["istio-sidecar-injection"],
    apply: (rs) => put(appDeployment(rs), 'spec.template.metadata.annotations."sidecar.istio.io/interceptionMode"', "NONE"),
  },
  {
    name: "excludes an application pod's network interface from its sidecar's capture",
    stacks: STACKS,
    policies: ["istio-sidecar-injection"],
    apply: (rs) => put(appDeployment(rs), 'spec.template.metadata.annotations."traffic.sidecar.istio.io/excludeInterfaces"', "eth0"),
  },
  {
    name: "moves the mesh's root namespace in istiod's values (the mesh-wide PeerAuthentication then covers istio-system only)",
    stacks: STACKS,
    policies: ["istio-mesh-wide-strict-mtls"],
    apply: (rs) => put(chartRelease(rs, "istiod"), "values.meshConfig.rootNamespace", "istio-config"),
  },
  {
    name: "lets Helm create a platform release's namespace (createNamespace: no Pod Security level)",
    stacks: STACKS,
    policies: ["k8s-namespace-pod-security"],
    apply: (rs) => put(chartRelease(rs, "istiod"), "createNamespace", true),
  },
  {
    name: "moves a platform release into a namespace the stack does not create (a typo: no Pod Security level, no default-deny policies there)",
    stacks: STACKS,
    policies: ["k8s-namespace-declared"],
    apply: (rs) => put(chartRelease(rs, "loki"), "namespace", "titanum"),
  },
  {
    name: "drops a dashboard ConfigMap's metadata.namespace (it lands in the provider's namespace, else default)",
    stacks: STACKS,
    policies: ["k8s-namespace-declared"],
    apply: (rs) =>
      put(find(rs, "a dashboard ConfigMap", (r) => r.type === "kubernetes:core/v1:ConfigMap" && getPath(r.inputs, "metadata.namespace") === "monitoring"), "metadata.namespace", undefined),
  },
  {
    name: "patches the gateway's Deployment instead of owning it",
    stacks: STACKS,
    policies: ["k8s-no-guarded-patches"],
    apply: (rs) => void (appDeployment(rs).type = "kubernetes:apps/v1:DeploymentPatch"),
  },
  {
    name: "patches istiod's sidecar injector ConfigMap",
    stacks: STACKS,
    policies: ["k8s-no-guarded-patches"],
    apply: (rs) => {
      const project = byType(rs, "kubernetes:argoproj.io/v1alpha1:AppProjectPatch");
      const patch = structuredClone(project);
      Object.assign(patch, { type: "kubernetes:core/v1:ConfigMapPatch", name: "injector-patch", urn: `${project.urn}-injector-patch` });
      patch.inputs = { apiVersion: "v1", kind: "ConfigMap", metadata: { ...(project.inputs.metadata as object), name: "istio-sidecar-injector", namespace: "istio-system" }, data: { values: "{}" } };
      return [...rs, patch];
    },
  },
  {
    name: "switches on kube-prometheus-stack's external Thanos Service (type LoadBalancer by the chart's default)",
    stacks: STACKS,
    policies: ["k8s-no-load-balancer-service"],
    apply: (rs) => put(chartRelease(rs, "kube-prometheus-stack"), "values.prometheus.thanosServiceExternal", { enabled: true }),
  },
  {
    name: "adds an unsized container to a chart through its values (extraContainers: rendered as written)",
    stacks: STACKS,
    policies: ["k8s-resource-limits"],
    apply: (rs) =>
      put(chartRelease(rs, "alloy"), "values.controller.extraContainers", [{ name: "debug", image: "busybox:1.37.0", securityContext: { allowPrivilegeEscalation: false } }]),
  },
  {
    name: "places a PERMISSIVE PeerAuthentication in Argo CD's values (extraObjects: rendered by the chart, no resource of the stack)",
    stacks: STACKS,
    policies: ["k8s-no-chart-extra-objects"],
    apply: (rs) =>
      put(chartRelease(rs, "argo-cd"), "values.extraObjects", [
        { apiVersion: "security.istio.io/v1", kind: "PeerAuthentication", metadata: { name: "argocd", namespace: "argocd" }, spec: { mtls: { mode: "PERMISSIVE" } } },
      ]),
  },
  {
    name: "places an allow-all NetworkPolicy, as a YAML string, in Grafana's values inside kube-prometheus-stack (grafana.extraObjects)",
    stacks: STACKS,
    policies: ["k8s-no-chart-extra-objects"],
    apply: (rs) =>
      put(chartRelease(rs, "kube-prometheus-stack"), "values.grafana.extraObjects", [
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: allow-all\nspec:\n  podSelector: {}\n  ingress:\n  - {}\n",
      ]),
  },
  { name: "drops the PodDisruptionBudgets", stacks: ["prod"], policies: ["k8s-app-high-availability"], apply: (rs) => rs.filter((r) => !/PodDisruptionBudget$/.test(r.type)) },
  {
    name: "drops the PodDisruptionBudget of the api-gateway Deployment, placed by its Kubernetes provider's namespace (no metadata.namespace)",
    stacks: ["prod"],
    policies: ["k8s-app-high-availability"],
    apply: (rs) => {
      const d = find(rs, "the api-gateway Deployment", (r) => r.type === "kubernetes:apps/v1:Deployment" && getPath(r.inputs, "metadata.name") === "api-gateway");
      const current = find(rs, "the Deployment's Kubernetes provider", (r) => r.urn === d.provider?.split("::").slice(0, -1).join("::"));
      const provider = structuredClone(current);
      Object.assign(provider, { name: `${current.name}-titanium`, urn: `${current.urn}-titanium`, inputs: { ...current.inputs, namespace: getPath(d.inputs, "metadata.namespace") } });
      put(d, "metadata.namespace", undefined);
      d.provider = `${provider.urn}::provider-id`;
      const podLabels = (getPath(d.inputs, "spec.template.metadata.labels") ?? {}) as Record<string, unknown>;
      return [...rs.filter((r) => !(/PodDisruptionBudget$/.test(r.type) && selects(getPath(r.inputs, "spec.selector"), podLabels, true))), provider];
    },
  },
  {
    name: "sets a PodDisruptionBudget to maxUnavailable 0 (every drain blocks)",
    stacks: ["prod"],
    policies: ["k8s-app-high-availability"],
    apply: (rs) => put(find(rs, "a PodDisruptionBudget", (r) => /PodDisruptionBudget$/.test(r.type)), "spec.maxUnavailable", 0),
  },
  {
    name: "leaves the mesh-wide PeerAuthentication without its recommended labels",
    stacks: ["prod"],
    policies: ["k8s-recommended-labels"],
    apply: (rs) => put(meshWide(rs), "metadata.labels", undefined),
  },
  { name: "runs a container as root", stacks: ["prod"], policies: ["k8s-run-as-non-root"], apply: (rs) => put(appDeployment(rs), `${CONTAINER}.securityContext.runAsUser`, 0) },
  {
    name: "makes a root filesystem writable",
    stacks: ["prod"],
    policies: ["k8s-read-only-root-filesystem"],
    apply: (rs) => put(appDeployment(rs), `${CONTAINER}.securityContext.readOnlyRootFilesystem`, false),
  },
  { name: "drops a secret's replication", stacks: ["prod"], policies: ["gcp-secret-manager-hygiene"], apply: (rs) => put(byType(rs, "gcp:secretmanager/secret:Secret"), "replication", undefined) },
];

describe.each(STACKS)("policies over the %s stack", (stack) => {
  it("pass every mandatory policy as the program stands", async () => {
    const run = await evaluate(stack, base[stack]!);
    expect(run.findings.filter((f) => f.level === "mandatory")).toEqual([]);
    expect(run.notApplicable.filter((n) => !n.urn)).toEqual([]);
  });

  it.each(MUTATIONS.filter((m) => m.stacks.includes(stack)).map((m) => [m.name, m] as const))("catch a mutation that %s", async (_name, mutation) => {
    const copy = structuredClone(base[stack]!);
    const mutated = mutation.apply(copy) ?? copy;
    expect(failing(await evaluate(stack, mutated))).toEqual(mutation.policies);
  });
});

it("covers at least twelve distinct mutations, each pinned to the policy that owns the fact", () => {
  expect(new Set(MUTATIONS.map((m) => m.name)).size).toBeGreaterThanOrEqual(12);
  const owned = new Set(MUTATIONS.flatMap((m) => m.policies));
  expect(policies.filter((p) => !owned.has(p.name)).map((p) => p.name)).toEqual([]);
});
