import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { TitaniumConfig, VolumeType } from "../../stacks/config";
import type { DiskType } from "../gcp/pricing";
import { AdminIngress } from "./admin-ingress";
import { ArgoCd, type TeamNetwork } from "./argocd";
import { ExternalSecrets } from "./external-secrets";
import type { VolumePlacement } from "./helm";
import { Istio } from "./istio";
import { Logging } from "./logging";
import type { ControlPlaneMetrics } from "../cluster/cluster";
import { Monitoring } from "./monitoring";
import { type AppSecretName, appScrapeAnnotations, GATEWAY, ISTIOD, MERGED_METRICS, NAMESPACES, PROMETHEUS, TRUST_DOMAIN } from "./names";
import { Namespaces } from "./namespaces";
import { PdCsiDriver } from "./pd-csi-driver";

export interface PlatformArgs {
  /** Kubernetes provider of the cluster layer (kubeconfig gated on `/readyz`). */
  provider: k8s.Provider;
  /** Secret Manager secret ids from the cloud layer (`titanium-<stack>-<name>`). */
  appSecretIds: Record<AppSecretName, pulumi.Input<string>>;
  /** GCP project whose Secret Manager External Secrets reads. */
  projectId: string;
  /** Two replicas of istiod and the gateway, spread over nodes (prod). */
  highAvailability: boolean;
  /** Pinned charts and per-workload requests/limits (`config.charts`). */
  charts: TitaniumConfig["charts"];
  /** Retention, storage, alert receiver (`config.observability`). */
  observability: TitaniumConfig["observability"];
  /** Gateway NodePorts, host name, optional real certificate (`config.ingress`). */
  ingress: TitaniumConfig["ingress"];
  /** The cloud layer's ingress load balancer address (the gateway Service's external IP). */
  publicIp: pulumi.Input<string>;
  /** Who may reach the admin UIs (`config.network.adminCidrs`). */
  adminCidrs: string[];
  /** Optional Argo CD root Application (`config.features.argoRootApp`). */
  argoRootApp?: TitaniumConfig["features"]["argoRootApp"];
  /** The pods' address range (`config.network.podCidr`) and the cluster DNS pods: what team namespaces may reach. */
  clusterNetwork: TeamNetwork;
  /** The GCE PD CSI driver's pinned images and container sizes (`config.storage`). */
  storage: TitaniumConfig["storage"];
  /** Where the application layer's volumes live (`data.postgres.diskType`): their StorageClasses are made here. */
  appVolumeTypes: VolumeType[];
  /**
   * Node labels of the agents: the only VMs the ingress load balancer sends traffic to, and the only
   * ones whose service account may read the app secrets, write backups and attach disks (ADRs 0010,
   * 0012, 0022). The ingress gateway, the External Secrets controller and the PD CSI driver run
   * there, and so must pods with PD claims or backups. dev's server takes workloads too (untainted).
   */
  agentNodeSelector: Record<string, string>;
  /** Labels on every namespace. */
  labels: Record<string, string>;
  /** Where Prometheus scrapes K3s' own components: embedded etcd, controller manager, scheduler, kube-proxy (the cluster layer's). */
  controlPlaneMetrics: ControlPlaneMetrics;
}

const principal = (ns: string, sa: string) => `cluster.local/ns/${ns}/sa/${sa}`;

/**
 * The platform layer: namespaces, Istio (STRICT mTLS, the shared ingress Gateway), External
 * Secrets, monitoring (Prometheus, Alertmanager, Grafana, dashboards, alerts), logging (Loki,
 * Alloy), Argo CD and the GCE PD CSI driver, with the admin UIs behind the gateway for the admin
 * CIDRs. Its public outputs are the application layer's contract.
 */
export class Platform extends pulumi.ComponentResource {
  /** Namespace names by key; `app` (`titanium`) is meshed and PSA `restricted`. */
  public readonly namespaces: typeof NAMESPACES;
  /** The application namespace. */
  public readonly appNamespace: string;
  /** Kubernetes Secret with the keys of `APP_SECRET.keys` (POSTGRES_PASSWORD, the database roles' passwords, the Redis users' passwords, JWT_PRIVATE_KEY; in `titanium`). */
  public readonly appSecretName: string;
  /** `dependsOn` this: Ready only once the app Secret holds the real values from Secret Manager. */
  public readonly appSecretReady: pulumi.Resource;
  /** `dependsOn` this before creating meshed pods: istiod (sidecar injector) and STRICT mTLS are in place. */
  public readonly meshReady: pulumi.Resource[];
  /** `namespace/name` of the shared Istio Gateway (bind app VirtualServices to it). */
  public readonly gatewayRef: string;
  /**
   * The ingress gateway's identity and pods (for AuthorizationPolicies and NetworkPolicies), its
   * in-cluster Service address and HTTPS container port, and the certificate in-cluster clients trust.
   */
  public readonly ingressGateway: {
    namespace: string;
    principal: string;
    podLabels: Record<string, string>;
    serviceHost: string;
    httpsPort: number;
    httpsTargetPort: number;
    /** A real (publicly signed) certificate from config; otherwise the generated one is `caCertPem`. */
    publiclyTrusted: boolean;
    caCertPem?: pulumi.Output<string>;
  };
  /** Host names the shared Gateway serves (the configured host, or any). */
  public readonly gatewayHosts: string[];
  /** The mesh's trust domain. */
  public readonly trustDomain: string;
  /** istiod's pods and the ports sidecars reach it on. */
  public readonly istiod: { namespace: string; podLabels: Record<string, string>; ports: number[] };
  /** Pod annotations that make the sidecar merge an app's `/metrics` for Prometheus (add `prometheus.io/port`). */
  public readonly metricsAnnotations: Record<string, string>;
  /** Prometheus' identity and pods; it scrapes app pods on `metricsPort` (Istio's merged metrics, plain HTTP). */
  public readonly prometheus: { namespace: string; principal: string; podLabels: Record<string, string>; metricsPort: number };
  /** The generated ingress certificate (PEM), for clients such as the deploy's smoke test; undefined with a real one. */
  public readonly ingressCertificatePem?: pulumi.Output<string>;
  /** Block storage for stateful workloads: the StorageClass name of each Persistent Disk type asked for, and where those disks attach. */
  public readonly blockStorage: { storageClasses: Partial<Record<DiskType, pulumi.Output<string>>>; nodeSelector: Record<string, string> };
  /** `dependsOn` these before creating pods with PD claims: the PD CSI driver is registered and rolled out. */
  public readonly storageReady: pulumi.Resource[];

  constructor(name: string, args: PlatformArgs, opts?: pulumi.ComponentResourceOptions) {
    super("titanium:platform:Platform", name, {}, opts);
    // Each part labels what it writes itself with its own app name (recommendedLabels).
    const part = (appName: string): pulumi.ComponentResourceOptions => ({ parent: this, transformations: [recommendedLabels(appName, args.labels)] });
    const provider = args.provider;
    const charts = args.charts;
    const hostname = args.ingress.hostname;

    // The PD CSI driver (in the storage namespace) is made below: the namespaces whose pods mount its disks
    // wait for it, through this promise, so a destroy deletes them, and waits for their pods, before it.
    let driverMade!: (ready: pulumi.Resource[]) => void;
    const driverReady = new Promise<pulumi.Resource[]>((resolve) => (driverMade = resolve));
    const ns = new Namespaces(
      `${name}-namespaces`,
      { provider, labels: args.labels, after: { monitoring: driverReady, logging: driverReady, app: driverReady } },
      part("namespaces"),
    );
    const all = Object.values(ns.namespaces);

    const istio = new Istio(
      `${name}-istio`,
      {
        provider,
        charts,
        ingress: args.ingress,
        publicIp: args.publicIp,
        replicas: args.highAvailability ? 2 : 1,
        namespace: ns.namespaces.istio,
        gatewayNodeSelector: args.agentNodeSelector,
      },
      part("istio"),
    );

    const secrets = new ExternalSecrets(
      `${name}-external-secrets`,
      {
        provider,
        charts,
        projectId: args.projectId,
        appSecretIds: args.appSecretIds,
        gatewayTls: args.ingress.tls,
        namespaces: all,
        controllerNodeSelector: args.agentNodeSelector,
      },
      part("external-secrets"),
    );

    const pdCsi = new PdCsiDriver(
      `${name}-pd-csi`,
      {
        provider,
        namespace: ns.namespaces.storage,
        config: args.storage.pdCsiDriver,
        nodeSelector: args.agentNodeSelector,
        controllerReplicas: args.highAvailability ? 2 : 1,
        volumeTypes: [args.observability.diskType, ...args.appVolumeTypes],
        labels: args.labels,
      },
      part("gce-pd-csi-driver"),
    );
    driverMade(pdCsi.ready);


    // Prometheus', Grafana's and Loki's volumes: Persistent Disks when the stack says so, so a replaced
    // agent does not strand them (local-path volumes belong to their node); their pods then run where
    // the driver attaches disks, the agents.
    const observabilityClass = args.observability.diskType === "local-path" ? undefined : pdCsi.storageClasses[args.observability.diskType];
    const volumes: VolumePlacement = observabilityClass
      ? { storageClassName: observabilityClass.metadata.name, nodeSelector: { ...args.agentNodeSelector }, dependsOn: [observabilityClass] }
      : { nodeSelector: {}, dependsOn: [] };

    const externalHost = hostname || args.publicIp;
    const monitoring = new Monitoring(
      `${name}-monitoring`,
      {
        provider,
        charts,
        observability: args.observability,
        externalHost,
        appSecretIds: args.appSecretIds,
        secretStore: secrets.store,
        volumes,
        controlPlaneMetrics: args.controlPlaneMetrics,
        dependsOn: [ns.namespaces.monitoring],
      },
      part("monitoring"),
    );

    new Logging(
      `${name}-logging`,
      { provider, charts, observability: args.observability, volumes, dependsOn: [ns.namespaces.logging, monitoring.release] },
      part("logging"),
    );

    const argocd = new ArgoCd(
      `${name}-argocd`,
      {
        provider,
        charts,
        hostname,
        externalHost,
        appSecretIds: args.appSecretIds,
        rootApp: args.argoRootApp,
        clusterNetwork: args.clusterNetwork,
        secretStore: secrets.store,
        storageReady: pdCsi.ready,
        dependsOn: [ns.namespaces.argocd],
      },
      part("argocd"),
    );

    new AdminIngress(
      `${name}-admin`,
      { provider, gatewayRef: istio.gatewayRef, hostname, adminCidrs: args.adminCidrs, dependsOn: [istio.gatewayObject, monitoring.release, argocd] },
      part("admin-ingress"),
    );

    this.namespaces = NAMESPACES;
    this.appNamespace = NAMESPACES.app;
    this.appSecretName = secrets.appSecretName;
    this.appSecretReady = secrets.appSecret;
    this.meshReady = [istio.istiod, istio.peerAuthentication, ns.namespaces.app];
    this.gatewayRef = istio.gatewayRef;
    this.ingressCertificatePem = istio.generatedCertificatePem;
    this.blockStorage = {
      storageClasses: Object.fromEntries(Object.entries(pdCsi.storageClasses).map(([type, sc]) => [type, sc.metadata.name])),
      nodeSelector: pdCsi.nodeSelector,
    };
    this.storageReady = pdCsi.ready;
    this.ingressGateway = {
      namespace: NAMESPACES.istio,
      principal: principal(NAMESPACES.istio, GATEWAY.serviceAccount),
      podLabels: { ...GATEWAY.podLabels },
      serviceHost: `${GATEWAY.serviceAccount}.${NAMESPACES.istio}.svc.cluster.local`,
      httpsPort: args.ingress.httpsPort,
      httpsTargetPort: GATEWAY.httpsTargetPort,
      publiclyTrusted: args.ingress.tls !== undefined,
      caCertPem: this.ingressCertificatePem,
    };
    this.gatewayHosts = [args.ingress.hostname || "*"];
    this.trustDomain = TRUST_DOMAIN;
    this.istiod = { namespace: NAMESPACES.istio, podLabels: { ...ISTIOD.podLabels }, ports: [...ISTIOD.ports] };
    const { "prometheus.io/port": _port, ...metricsAnnotations } = appScrapeAnnotations(0);
    this.metricsAnnotations = metricsAnnotations;
    this.prometheus = {
      namespace: NAMESPACES.monitoring,
      principal: principal(NAMESPACES.monitoring, PROMETHEUS.serviceAccount),
      podLabels: { ...PROMETHEUS.podLabels },
      metricsPort: MERGED_METRICS.port,
    };
    this.registerOutputs({
      namespaces: this.namespaces,
      appSecretName: this.appSecretName,
      gatewayRef: this.gatewayRef,
      ingressGateway: this.ingressGateway,
      prometheus: this.prometheus,
      blockStorage: this.blockStorage,
    });
  }
}

/**
 * The recommended `app.kubernetes.io/*` labels on every object a part of the layer writes itself (charts
 * label theirs): `name` is the part's (a Namespace's: its own name), with the stack's `part-of` and
 * `managed-by`; a label an object sets itself wins. One transformation per part, instead of a label bag
 * threaded through every object.
 */
function recommendedLabels(appName: string, base: Record<string, string>): pulumi.ResourceTransformation {
  const isPlain = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !pulumi.Output.isInstance(v);
  return ({ type, props, opts }) => {
    if (!type.startsWith("kubernetes:") || type.startsWith("kubernetes:helm.sh/") || type.startsWith("kubernetes:yaml")) return undefined;
    const metadata = props.metadata;
    if (!isPlain(metadata)) return undefined;
    const defaults = { "app.kubernetes.io/name": type === "kubernetes:core/v1:Namespace" ? metadata.name : appName, ...base };
    const labels = metadata.labels;
    const merged = labels === undefined || isPlain(labels) ? { ...defaults, ...labels } : pulumi.output(labels).apply((l) => ({ ...defaults, ...l }));
    return { props: { ...props, metadata: { ...metadata, labels: merged } }, opts };
  };
}
