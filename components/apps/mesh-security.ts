/**
 * Default deny for the application namespace, at both layers: a NetworkPolicy that selects every pod
 * and allows nothing in or out, and an AuthorizationPolicy with an empty spec (Istio's "allow nothing").
 * Each workload then opens exactly its own flows; anything not listed is refused.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { labelsOf } from "./topology";

export interface MeshSecurityArgs {
  /** The application namespace. */
  namespace: string;
  /** Kubernetes provider of the cluster. */
  provider: k8s.Provider;
  /** The Istio CRDs must exist first. */
  dependsOn: pulumi.Input<pulumi.Resource>[];
}

export const DEFAULT_DENY = "default-deny";

export class MeshSecurity extends pulumi.ComponentResource {
  /** Created first: workloads depend on it so no pod ever runs without the baseline. */
  readonly networkPolicy: k8s.networking.v1.NetworkPolicy;
  readonly authorizationPolicy: k8s.apiextensions.CustomResource;

  constructor(name: string, args: MeshSecurityArgs, opts?: pulumi.ComponentResourceOptions) {
    super("titanium:apps:MeshSecurity", name, {}, opts);
    const child = { parent: this, provider: args.provider };
    const metadata = { name: DEFAULT_DENY, namespace: args.namespace, labels: labelsOf(DEFAULT_DENY, "security") };

    this.networkPolicy = new k8s.networking.v1.NetworkPolicy(`${name}-network-policy`, {
      metadata,
      spec: { podSelector: {}, policyTypes: ["Ingress", "Egress"] },
    }, child);

    this.authorizationPolicy = new k8s.apiextensions.CustomResource(`${name}-authorization-policy`, {
      apiVersion: "security.istio.io/v1",
      kind: "AuthorizationPolicy",
      metadata,
      spec: {},
    }, { ...child, dependsOn: args.dependsOn });

    this.registerOutputs({});
  }
}
