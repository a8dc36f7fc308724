/**
 * The Titanium program: the only file that wires the layers together.
 *
 *   Pulumi.<stack>.yaml → config → gcp → cluster → platform → apps
 *
 * Each layer is a ComponentResource that receives the previous layer's outputs as typed args.
 * The config is validated first, so a bad stack file fails before any resource is registered.
 */
import * as gcp from "@pulumi/gcp";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { TitaniumApps } from "../components/apps/apps";
import type { AppPlatform } from "../components/apps/inputs";
import { APP_SECRET_NAMES, type AppSecretName, GATEWAY, NAMESPACES } from "../components/platform/names";
import { Platform } from "../components/platform/platform";
import { loadConfig } from "./config";

const config = loadConfig(pulumi.getStack(), pulumi.runtime.allConfig());

/** Labels on every GCP resource that takes labels (GCP label values: lowercase, digits, - and _). */
const labels = { environment: config.environment, project: "titanium", "managed-by": "pulumi", stack: config.stack };

// One explicit provider, so nothing depends on ambient gcloud settings and every resource carries the labels.
const gcpProvider = new gcp.Provider("gcp", {
  project: config.gcp.project,
  region: config.gcp.region,
  zone: config.gcp.zone,
  defaultLabels: labels,
});

// ── Cloud layer (components/gcp): network, NAT, firewall, load balancer, service accounts, Secret Manager ──

// STAND-IN until the cloud layer lands (lead replaces at merge): the GCS bucket for PostgreSQL dumps
// (lifecycle rule deleting objects older than config.data.backup.retentionDays; the agents' service
// account may create objects in it).
const backupBucketName: pulumi.Output<string> = pulumi.output(`${config.gcp.project}-backups`);

// ── Cluster layer (components/cluster): K3s servers and agents, CA, kubeconfig, Kubernetes provider ──

// STAND-IN until the cluster layer lands (lead replaces at merge): the cluster's k8s.Provider and
// the cloud layer's Secret Manager secret ids.
const k8sProvider = new k8s.Provider("k8s-standin", { kubeconfig: "<unused under mocks>" });
const appSecretIds = Object.fromEntries(
  APP_SECRET_NAMES.map((n) => [n, pulumi.output(`titanium-${config.stack}-${n}`)]),
) as Record<AppSecretName, pulumi.Output<string>>;

// ── Platform layer (components/platform): Istio, monitoring, logging, Argo CD, External Secrets ──
const platform = new Platform("platform", {
  provider: k8sProvider,
  appSecretIds,
  projectId: config.gcp.project,
  highAvailability: config.environment === "prod",
  charts: config.charts,
  observability: config.observability,
  ingress: config.ingress,
  adminCidrs: config.network.adminCidrs,
  argoRootApp: config.features.argoRootApp,
  labels: { environment: config.environment, "app.kubernetes.io/part-of": "titanium", "app.kubernetes.io/managed-by": "pulumi" },
});

// What the application layer takes from the platform (its outputs, plus chart facts it fixes by name).
const appPlatform: AppPlatform = {
  namespace: platform.appNamespace,
  trustDomain: "cluster.local",
  appSecretName: platform.appSecretName,
  // The app Secret holds the real values; istiod (sidecar injector) and STRICT mTLS are in place.
  // The GCE PD CSI driver belongs here too once a layer installs it (ADR 0030).
  ready: [platform.appSecretReady, ...platform.meshReady],
  gateway: platform.gatewayRef,
  hosts: [config.ingress.hostname || "*"],
  ingressGateway: {
    ...platform.ingressGateway,
    serviceHost: `${GATEWAY.serviceAccount}.${NAMESPACES.istio}.svc.cluster.local`,
    httpsTargetPort: 443,
    // A certificate from config is a real one; the generated one is self-signed and not passed here.
    publiclyTrusted: config.ingress.tls !== undefined,
  },
  prometheus: platform.prometheus,
  metricsAnnotations: { "prometheus.io/scrape": "true", "prometheus.io/path": "/metrics" },
  istiod: { namespace: NAMESPACES.istio, podLabels: { app: "istiod" }, ports: [15012] },
  dns: { namespace: "kube-system", podLabels: { "k8s-app": "kube-dns" } },
};

// ── Application layer (components/apps): the Titanium services, PostgreSQL, Redis, mesh routing and security ──
const apps = new TitaniumApps("apps", {
  stack: config.stack,
  images: config.images,
  services: config.services,
  data: config.data,
  features: config.features,
  hostname: config.ingress.hostname,
  podCidr: config.network.podCidr,
  protect: config.protect,
  platform: appPlatform,
  backupBucket: backupBucketName,
  provider: k8sProvider,
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
export const appNamespace = appPlatform.namespace;
export const appServiceUrls = apps.urls;
export const appBackupCronJob = apps.backupCronJob;
export const appBackupBucket = backupBucketName;
