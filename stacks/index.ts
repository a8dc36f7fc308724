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

// ── Platform layer (components/platform): Istio, monitoring, logging, Argo CD, External Secrets ──

// ── Application layer (components/apps): the Titanium services, PostgreSQL, Redis, mesh routing and security ──

// ── Stack outputs ──
export const environment = config.environment;
export const gcpProject = config.gcp.project;
export const region = config.gcp.region;
export const providerUrn = gcpProvider.urn;
