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
import { APP_SECRET_NAMES, type AppSecretName } from "../components/platform/names";
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

// ── Application layer (components/apps): the Titanium services, PostgreSQL, Redis, mesh routing and security ──

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
