/**
 * The Titanium program: the only file that wires the layers together.
 *
 *   Pulumi.<stack>.yaml → config → gcp → cluster → platform → apps
 *
 * Each layer is a ComponentResource that receives the previous layer's outputs as typed args.
 * The config is validated first, so a bad stack file fails before any resource is registered.
 */
import * as gcp from "@pulumi/gcp";
import * as pulumi from "@pulumi/pulumi";
import { TitaniumApps } from "../components/apps/apps";
import type { AppPlatform } from "../components/apps/inputs";
import { NODE_POOL_LABEL } from "../components/cluster/capacity";
import { Cluster } from "../components/cluster/cluster";
import { Cloud } from "../components/gcp/cloud";
import { GATEWAY } from "../components/platform/names";
import { Platform } from "../components/platform/platform";
import { loadConfig, TITANIUM_LABEL_KEYS } from "./config";

/**
 * The keys the CLI marks secret (`pulumi config set --secret`, or `--path --secret` inside a key, which
 * marks the whole top-level key). The SDK's own test of it is exported but not in its typings.
 */
function secretConfigKeys(raw: Record<string, string>): string[] {
  const isConfigSecret = (pulumi.runtime as unknown as { isConfigSecret?: (key: string) => boolean }).isConfigSecret;
  if (typeof isConfigSecret !== "function") throw new Error("@pulumi/pulumi no longer exports runtime.isConfigSecret: stacks/index.ts cannot tell secret config from plain");
  return Object.keys(raw).filter((key) => isConfigSecret(key));
}

const rawConfig = pulumi.runtime.allConfig();
const config = loadConfig(pulumi.getStack(), rawConfig, secretConfigKeys(rawConfig));

/** Labels on every GCP resource that takes labels (GCP label values: lowercase, digits, - and _). */
const labels: Record<(typeof TITANIUM_LABEL_KEYS)[number], string> = { environment: config.environment, project: "titanium", "managed-by": "pulumi", stack: config.stack };

// One explicit provider, so nothing depends on ambient gcloud settings and every resource carries the labels.
// Being explicit, it reads no `gcp:*` stack config: the supported keys are forwarded here (loadConfig refuses
// the others), the credentials always as secrets, since a provider's inputs are kept in the state.
const { credentials, accessToken, defaultLabels: extraLabels, ...gcpSettings } = config.gcpProvider;
const gcpProvider = new gcp.Provider("gcp", {
  ...gcpSettings,
  project: config.gcp.project,
  region: config.gcp.region,
  zone: config.gcp.zone,
  ...(credentials !== undefined ? { credentials: pulumi.secret(credentials) } : {}),
  ...(accessToken !== undefined ? { accessToken: pulumi.secret(accessToken) } : {}),
  defaultLabels: { ...extraLabels, ...labels },
});

// ── Cloud layer (components/gcp): network, NAT, firewall, load balancer, service accounts, Secret Manager ──
/** Prefix of every predictable physical name (secret ids, service accounts, VM names, tags). */
const prefix = `titanium-${config.stack}`;
const cloud = new Cloud(
  prefix,
  {
    prefix,
    project: config.gcp.project,
    region: config.gcp.region,
    network: config.network,
    ingress: config.ingress,
    backupRetentionDays: config.data.backup.retentionDays,
    jwtKeyNames: config.auth.signingKeys,
    externalSecretIds: config.ingress.tls ? [config.ingress.tls.certificateSecretId, config.ingress.tls.privateKeySecretId] : [],
    protect: config.protect,
  },
  { providers: [gcpProvider] },
);

// ── Cluster layer (components/cluster): K3s servers and agents, CA, kubeconfig, Kubernetes provider ──
const cluster = new Cluster(
  prefix,
  {
    prefix,
    project: config.gcp.project,
    labels,
    region: config.gcp.region,
    zone: config.gcp.zone,
    k3s: {
      version: config.cluster.k3sVersion,
      sha256: config.cluster.k3sSha256,
      apiDnsName: config.cluster.apiDnsName,
      apiDnsZone: config.cluster.apiDnsZone,
      apiReadyTimeoutSeconds: config.cluster.apiReadyTimeoutSeconds,
      osImage: config.cluster.osImage,
    },
    servers: config.cluster.servers,
    agents: config.cluster.agents,
    podCidr: config.network.podCidr,
    serviceCidr: config.network.serviceCidr,
    // The LB health-checks the gateway's readiness through the status port's NodePort.
    ingress: { ...config.ingress, healthCheckPath: GATEWAY.readinessPath },
    cloud: {
      networkSelfLink: cloud.network.networkSelfLink,
      subnetworkSelfLink: cloud.network.subnetworkSelfLink,
      tags: cloud.tags,
      serverServiceAccountEmail: cloud.identity.serverEmail,
      agentServiceAccountEmail: cloud.identity.agentEmail,
      serverServiceAccountAddress: cloud.identity.serverAddress,
      agentServiceAccountAddress: cloud.identity.agentAddress,
      publicIp: cloud.publicIp,
      apiPublicIp: cloud.apiPublicIp,
      apiInternalIp: cloud.apiInternalIp,
    },
    protect: config.protect,
  },
  { providers: [gcpProvider] },
);

// The load balancer targets the agents, and the cloud layer grants secrets, backups and disks to the
// agents' service account only (ADRs 0010, 0012, 0022): what needs them runs there.
const agentNodeSelector = { [NODE_POOL_LABEL]: "agents" };

// ── Platform layer (components/platform): Istio, monitoring, logging, Argo CD, External Secrets ──
const platform = new Platform("platform", {
  provider: cluster.provider,
  appSecretIds: cloud.appSecretIds,
  projectId: config.gcp.project,
  highAvailability: config.environment === "prod",
  charts: config.charts,
  observability: config.observability,
  ingress: config.ingress,
  publicIp: cloud.publicIp,
  adminCidrs: config.network.adminCidrs,
  argoRootApp: config.features.argoRootApp,
  clusterNetwork: { podCidr: config.network.podCidr, dns: cluster.dns },
  storage: config.storage,
  appVolumeTypes: [config.data.postgres.diskType],
  agentNodeSelector,
  labels: { environment: config.environment, "app.kubernetes.io/part-of": "titanium", "app.kubernetes.io/managed-by": "pulumi" },
  // Every server's address and etcd's metrics port: Prometheus scrapes the servers' embedded etcd there.
  controlPlaneMetrics: cluster.controlPlaneMetrics,
});

// What the application layer takes from the layers below.
const appPlatform: AppPlatform = {
  namespace: platform.appNamespace,
  trustDomain: platform.trustDomain,
  appSecretName: platform.appSecretName,
  // The app Secret holds the real values; istiod (sidecar injector) and STRICT mTLS are in place;
  // the GCE PD CSI driver is registered and rolled out, so the database's claim can bind (ADR 0022).
  ready: [platform.appSecretReady, ...platform.meshReady, ...platform.storageReady],
  gateway: platform.gatewayRef,
  hosts: platform.gatewayHosts,
  ingressGateway: platform.ingressGateway,
  prometheus: platform.prometheus,
  metricsAnnotations: platform.metricsAnnotations,
  istiod: platform.istiod,
  dns: cluster.dns,
  blockStorage: platform.blockStorage,
  agentNodeSelector,
};

// ── Application layer (components/apps): the Titanium services, PostgreSQL, Redis, mesh routing and security ──
const apps = new TitaniumApps("apps", {
  stack: config.stack,
  images: config.images,
  services: config.services,
  data: config.data,
  features: config.features,
  defaultSidecar: config.charts.istiod.resources.proxy,
  hostname: config.ingress.hostname,
  protect: config.protect,
  platform: appPlatform,
  backupBucket: cloud.backupBucket,
  jwtPublicKeys: cloud.jwtPublicKeys,
  provider: cluster.provider,
});

// ── Stack outputs ──
export const environment = config.environment;
export const gcpProject = config.gcp.project;
export const region = config.gcp.region;
export const providerUrn = gcpProvider.urn;
export const platformNamespaces = platform.namespaces;
export const gatewayRef = platform.gatewayRef;
export const ingressGateway = platform.ingressGateway;
export const prometheus = platform.prometheus;
export const appSecretName = platform.appSecretName;
/** The self-signed ingress certificate clients (the deploy's smoke test) must trust; absent with a real certificate. */
export const ingressCaCertificate = platform.ingressCertificatePem;
// Cloud and cluster layers: what operators, the upper layers and the pipeline need.
export const publicIp = cloud.publicIp;
export const ingressUrl = config.ingress.hostname ? `https://${config.ingress.hostname}` : pulumi.interpolate`https://${cloud.publicIp}`;
export const apiEndpoint = cluster.apiEndpoint;
export const apiPublicIp = cloud.apiPublicIp;
export const kubeconfig = cluster.kubeconfig;
export const appSecretIds = cloud.appSecretIds;
export const backupBucket = cloud.backupBucket;
export const agentServiceAccountEmail = cloud.identity.agentEmail;
export const nodeCapacity = cluster.capacity;
export const pipelineAccess = cluster.pipelineAccess;
// Application layer.
export const appNamespace = appPlatform.namespace;
export const appServiceUrls = apps.urls;
export const appBackupCronJob = apps.backupCronJob;
// Delivery (ADR 0050). The image set this update deployed, { registry, tag, digests } (not secret):
// the committed stack files carry no digests, so previews and drift checks set these again from the
// state (.github/scripts/deployed-images.sh) and compare like with like.
export const images = config.images;
