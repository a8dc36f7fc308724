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

// STAND-IN until the cluster layer lands (lead replaces at merge): the cluster's Kubernetes provider.
const k8sProvider = new k8s.Provider("k8s", { kubeconfig: "stand-in", enableServerSideApply: true });

// ── Platform layer (components/platform): Istio, monitoring, logging, Argo CD, External Secrets ──

// STAND-IN until the platform layer lands (lead replaces at merge): what the application needs from
// the platform. `ready` must hold the app ExternalSecret (synced), istiod with its injector, the Istio
// CRDs and the GCE PD CSI driver; `gateway` the shared Gateway; the identities and pod labels below.
const appSecretStandIn = new k8s.apiextensions.CustomResource("app-secrets-standin", {
  apiVersion: "external-secrets.io/v1",
  kind: "ExternalSecret",
  metadata: { name: "titanium-app-secrets", namespace: "titanium" },
  spec: {
    refreshInterval: "1h",
    secretStoreRef: { kind: "ClusterSecretStore", name: "gcp-secret-manager" },
    target: { name: "titanium-app-secrets", creationPolicy: "Owner" },
    data: ["POSTGRES_PASSWORD", "REDIS_PASSWORD", "JWT_PRIVATE_KEY"].map((key) => ({
      secretKey: key,
      remoteRef: { key: `titanium-${key.toLowerCase().replace(/_/g, "-")}` },
    })),
  },
}, { provider: k8sProvider });
const appPlatform: AppPlatform = {
  namespace: "titanium",
  trustDomain: "cluster.local",
  appSecretName: "titanium-app-secrets",
  ready: [appSecretStandIn],
  gateway: "istio-system/titanium-gateway",
  hosts: config.ingress.hostname ? [config.ingress.hostname] : ["*"],
  ingressGateway: {
    namespace: "istio-system",
    podLabels: { app: "istio-ingressgateway", istio: "ingressgateway" },
    principal: "cluster.local/ns/istio-system/sa/istio-ingressgateway",
    serviceHost: "istio-ingressgateway.istio-system.svc.cluster.local",
    httpsTargetPort: 443,
  },
  prometheus: {
    namespace: "monitoring",
    podLabels: { "app.kubernetes.io/name": "prometheus" },
    principal: "cluster.local/ns/monitoring/sa/kube-prometheus-stack-prometheus",
  },
  metricsAnnotations: { "prometheus.io/scrape": "true", "prometheus.io/path": "/metrics" },
  istiod: { namespace: "istio-system", podLabels: { app: "istiod" }, ports: [15012] },
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
export const appNamespace = appPlatform.namespace;
export const appServiceUrls = apps.urls;
export const appBackupCronJob = apps.backupCronJob;
export const appBackupBucket = backupBucketName;
