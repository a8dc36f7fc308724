/**
 * An External Secrets `ExternalSecret` that copies Secret Manager secrets into one Kubernetes
 * Secret. Pulumi waits for its `Ready` condition (the Secret is written), so whatever depends on
 * it never starts with a placeholder.
 */
import * as k8s from "@pulumi/kubernetes";
import type * as pulumi from "@pulumi/pulumi";
import { SECRET_STORE } from "./names";

export interface SecretSyncSpec {
  namespace: string;
  /** Name of the Kubernetes Secret to produce (or merge into). */
  target: string;
  /** Secret key → Secret Manager secret id. */
  data: Record<string, pulumi.Input<string>>;
  /** `Owner`: ESO creates and owns the Secret; `Merge`: adds keys to a Secret a chart created. */
  creationPolicy?: "Owner" | "Merge";
  /** ESO template: Secret type and literal/templated keys (`{{ .key }}` reads a fetched key). */
  template?: { type?: string; data: Record<string, string> };
  /**
   * The ExternalSecret's own labels. ESO copies them onto the Secret it writes (without a template),
   * so an ExternalSecret that merges into a chart's Secret carries that chart's labels, not ours.
   */
  labels?: Record<string, string>;
}

/** How often ESO re-reads Secret Manager (a rotated secret reaches the cluster within this). */
export const REFRESH_INTERVAL = "1h";

export function secretSync(name: string, spec: SecretSyncSpec, opts: pulumi.CustomResourceOptions): k8s.apiextensions.CustomResource {
  return new k8s.apiextensions.CustomResource(
    name,
    {
      apiVersion: "external-secrets.io/v1",
      kind: "ExternalSecret",
      metadata: {
        name: spec.target,
        namespace: spec.namespace,
        ...(spec.labels ? { labels: spec.labels } : {}),
        // Pulumi waits until ESO reports the Secret synced.
        annotations: { "pulumi.com/waitFor": "condition=Ready" },
      },
      spec: {
        refreshInterval: REFRESH_INTERVAL,
        secretStoreRef: { kind: "ClusterSecretStore", name: SECRET_STORE },
        target: {
          name: spec.target,
          creationPolicy: spec.creationPolicy ?? "Owner",
          // Retain for Merge too: with any other policy ESO skips a remote secret it cannot find (GCP NotFound),
          // removes the keys it wrote (Merge) and reports Ready, so a missing secret would pass Pulumi's wait and
          // strip Argo CD's admin.password. With Retain a missing secret is a SecretSyncedError (Pulumi's wait fails,
          // the copy stays); an outage or a deleted secret never deletes what was synced.
          deletionPolicy: "Retain",
          ...(spec.template ? { template: { engineVersion: "v2", ...(spec.template.type ? { type: spec.template.type } : {}), data: spec.template.data } } : {}),
        },
        data: Object.entries(spec.data).map(([secretKey, key]) => ({ secretKey, remoteRef: { key, version: "latest" } })),
      },
    },
    opts,
  );
}
