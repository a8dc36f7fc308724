import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { TitaniumConfig } from "../../stacks/config";
import { type ChartsConfig, chartRelease } from "./helm";
import { APP_SECRET, type AppSecretName, GATEWAY, NAMESPACES, SECRET_STORE } from "./names";
import { secretSync } from "./secret-sync";

export interface ExternalSecretsArgs {
  /** Kubernetes provider of the cluster layer. */
  provider: k8s.Provider;
  /** Pinned charts and per-workload resources (`externalSecrets` is used). */
  charts: ChartsConfig;
  /** GCP project whose Secret Manager the store reads. */
  projectId: string;
  /** Secret Manager secret ids from the cloud layer (`titanium-<stack>-<name>`). */
  appSecretIds: Record<AppSecretName, pulumi.Input<string>>;
  /** Optional real gateway certificate (Secret Manager ids of the PEM chain and key). */
  gatewayTls?: TitaniumConfig["ingress"]["tls"];
  /** Namespaces (the operator's, and those that receive Secrets) must exist first. */
  namespaces: pulumi.Resource[];
  /** Where the controller may run: on the VMs whose service account may read the secrets (the agents). */
  controllerNodeSelector: Record<string, string>;
}

/** Namespaces allowed to read through the store: only those the platform writes Secrets into. */
const STORE_NAMESPACES = [NAMESPACES.app, NAMESPACES.monitoring, NAMESPACES.argocd, NAMESPACES.istio];

/**
 * External Secrets Operator (with its CRDs), a `ClusterSecretStore` for GCP Secret Manager that
 * authenticates as the node VMs' service account through the metadata server (Application Default
 * Credentials: no key file exists anywhere), and the application's Secret.
 */
export class ExternalSecrets extends pulumi.ComponentResource {
  /** The ClusterSecretStore: every ExternalSecret depends on it. */
  public readonly store: k8s.apiextensions.CustomResource;
  /** Name of the Kubernetes Secret holding the keys of `APP_SECRET.keys` (POSTGRES_PASSWORD, the database roles' passwords, the Redis users' passwords, JWT_PRIVATE_KEY). */
  public readonly appSecretName: string;
  /** The app Secret's ExternalSecret, Ready only once the Secret holds the real values: `dependsOn` it. */
  public readonly appSecret: k8s.apiextensions.CustomResource;

  constructor(name: string, args: ExternalSecretsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("titanium:platform:ExternalSecrets", name, {}, opts);
    const k = { parent: this, provider: args.provider };

    const release = chartRelease(
      `${name}-operator`,
      "externalSecrets",
      args.charts,
      {
        installCRDs: true,
        replicaCount: 1,
        // The controller reads Secret Manager as its node's service account (no `auth` in the store);
        // the webhook and the cert controller never call Google, so they may run anywhere.
        nodeSelector: { ...args.controllerNodeSelector },
        webhook: { replicaCount: 1 },
        certController: { replicaCount: 1 },
      },
      { ...k, dependsOn: args.namespaces },
    );

    this.store = new k8s.apiextensions.CustomResource(
      `${name}-store`,
      {
        apiVersion: "external-secrets.io/v1",
        kind: "ClusterSecretStore",
        metadata: { name: SECRET_STORE, annotations: { "pulumi.com/waitFor": "condition=Ready" } },
        spec: {
          conditions: [{ namespaces: STORE_NAMESPACES }],
          // No `auth` block: ADC, i.e. the VM service account via the GCE metadata server.
          provider: { gcpsm: { projectID: args.projectId } },
        },
      },
      { ...k, dependsOn: [release] },
    );

    this.appSecretName = APP_SECRET.name;
    this.appSecret = secretSync(
      `${name}-app`,
      {
        namespace: NAMESPACES.app,
        target: APP_SECRET.name,
        data: Object.fromEntries(Object.entries(APP_SECRET.keys).map(([envKey, id]) => [envKey, args.appSecretIds[id]])),
      },
      { ...k, dependsOn: [this.store] },
    );

    if (args.gatewayTls) {
      secretSync(
        `${name}-gateway-tls`,
        {
          namespace: NAMESPACES.istio,
          target: GATEWAY.tlsSecretName,
          data: { cert: args.gatewayTls.certificateSecretId, key: args.gatewayTls.privateKeySecretId },
          template: { type: "kubernetes.io/tls", data: { "tls.crt": "{{ .cert }}", "tls.key": "{{ .key }}" } },
        },
        { ...k, dependsOn: [this.store] },
      );
    }

    this.registerOutputs({ appSecretName: this.appSecretName });
  }
}
