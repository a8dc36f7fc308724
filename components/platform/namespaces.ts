import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { METADATA_SERVER, NAMESPACES, type NamespaceKey } from "./names";

/** Pod Security Admission levels (https://kubernetes.io/docs/concepts/security/pod-security-standards/). */
export type PsaLevel = "privileged" | "baseline" | "restricted";

export interface NamespacesArgs {
  /** Kubernetes provider of the cluster layer. */
  provider: k8s.Provider;
  /** Labels added to every namespace (environment, managed-by). */
  labels: Record<string, string>;
  /**
   * Namespaces created after, and so deleted before, these resources: the namespaces of pods with Persistent
   * Disks wait for the PD CSI driver. Deleting a namespace waits for its pods to stop, and a pod unmounts its
   * disk through the driver's node plugin: deleted first, it leaves them Terminating and the destroy stuck.
   */
  after?: Partial<Record<NamespaceKey, pulumi.Input<pulumi.Resource[]>>>;
}

/**
 * Who in a namespace may reach the GCE metadata server, whose token on an agent is the agents' service
 * account (it reads the application secrets, ADR 0012): `blocked` gets a {@link noMetadataServer} policy
 * here; `needs` is a namespace whose pods authenticate to Google with it; `apps` is the application's,
 * whose own policies (default deny, the backup's exception) the apps layer writes.
 */
export type MetadataAccess = "blocked" | "needs" | "apps";

/**
 * What each namespace enforces. `restricted` for the application (the Istio CNI node agent sets up
 * traffic redirection, so meshed pods need no NET_ADMIN init container); `privileged` only where a
 * workload needs host access (the CNI agent and node-exporter mount host paths, the PD CSI node
 * plugin mounts disks); `baseline` elsewhere, with `restricted` warnings so drift towards it is
 * visible. Host-network pods (node-exporter, the CNI agent) are the node itself: no policy applies to them.
 */
export const NAMESPACE_POLICY: Record<NamespaceKey, { enforce: PsaLevel; meshed: boolean; metadataServer: MetadataAccess }> = {
  app: { enforce: "restricted", meshed: true, metadataServer: "apps" },
  // The internet-facing ingress gateway among them.
  istio: { enforce: "privileged", meshed: false, metadataServer: "blocked" },
  // Reads Secret Manager as the agents' account.
  externalSecrets: { enforce: "restricted", meshed: false, metadataServer: "needs" },
  // Grafana's data sources can be pointed anywhere by its admins.
  monitoring: { enforce: "privileged", meshed: false, metadataServer: "blocked" },
  logging: { enforce: "baseline", meshed: false, metadataServer: "blocked" },
  argocd: { enforce: "baseline", meshed: false, metadataServer: "blocked" },
  // The PD CSI node plugin mounts disks for the kubelet: privileged, host paths, Bidirectional propagation;
  // its controller creates and attaches disks as the agents' account.
  storage: { enforce: "privileged", meshed: false, metadataServer: "needs" },
};

/**
 * A NetworkPolicy that lets every pod of `namespace` reach anything but the metadata server: every pod
 * of the cluster, and every address outside 169.254.169.254/32.
 */
export function noMetadataServer(
  name: string,
  namespace: pulumi.Input<string>,
  labels: Record<string, string>,
  opts: pulumi.CustomResourceOptions,
): k8s.networking.v1.NetworkPolicy {
  return new k8s.networking.v1.NetworkPolicy(
    name,
    {
      metadata: { name: "no-metadata-server", namespace, labels },
      spec: {
        podSelector: {},
        policyTypes: ["Egress"],
        egress: [{ to: [{ namespaceSelector: {} }] }, { to: [{ ipBlock: { cidr: "0.0.0.0/0", except: [METADATA_SERVER] } }] }],
      },
    },
    opts,
  );
}

/** Pods of one namespace: where they are and the labels that select exactly them (NetworkPolicy `podSelector`). */
export interface PodPeer {
  namespace: string;
  podLabels: Record<string, string>;
}

/** A NetworkPolicy peer for `peer`'s pods, seen from a policy in `ownNamespace` (no namespace selector there). */
export function peerSelector(peer: PodPeer, ownNamespace: string): k8s.types.input.networking.v1.NetworkPolicyPeer {
  return peer.namespace === ownNamespace
    ? { podSelector: { matchLabels: peer.podLabels } }
    : {
        namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": peer.namespace } },
        podSelector: { matchLabels: peer.podLabels },
      };
}

/** Egress to the cluster DNS pods over UDP and TCP 53, from a policy in `ownNamespace`. */
export function dnsEgress(dns: PodPeer, ownNamespace: string): k8s.types.input.networking.v1.NetworkPolicyEgressRule {
  return {
    to: [peerSelector(dns, ownNamespace)],
    ports: [
      { protocol: "UDP", port: 53 },
      { protocol: "TCP", port: 53 },
    ],
  };
}

/** A namespace's Pod Security Admission labels: `enforce` its level, warn and audit at `restricted`. */
export function podSecurityLabels(enforce: PsaLevel): Record<string, string> {
  return {
    "pod-security.kubernetes.io/enforce": enforce,
    "pod-security.kubernetes.io/enforce-version": "latest",
    "pod-security.kubernetes.io/warn": "restricted",
    "pod-security.kubernetes.io/audit": "restricted",
  };
}

/**
 * Every namespace of the platform and the application, created first so each Helm release and
 * object lands in a namespace whose admission rules are already in force.
 */
export class Namespaces extends pulumi.ComponentResource {
  /** Namespace name by key (`app` → `titanium`). */
  public readonly names: typeof NAMESPACES;
  /** The Namespace objects by key, for `dependsOn`. */
  public readonly namespaces: Record<NamespaceKey, k8s.core.v1.Namespace>;

  constructor(name: string, args: NamespacesArgs, opts?: pulumi.ComponentResourceOptions) {
    super("titanium:platform:Namespaces", name, {}, opts);
    const created = {} as Record<NamespaceKey, k8s.core.v1.Namespace>;
    for (const key of Object.keys(NAMESPACES) as NamespaceKey[]) {
      const policy = NAMESPACE_POLICY[key];
      created[key] = new k8s.core.v1.Namespace(
        `${name}-${NAMESPACES[key]}`,
        {
          metadata: {
            name: NAMESPACES[key],
            labels: {
              ...args.labels,
              ...podSecurityLabels(policy.enforce),
              ...(policy.meshed ? { "istio-injection": "enabled" } : {}),
            },
          },
        },
        { parent: this, provider: args.provider, dependsOn: args.after?.[key] ?? [] },
      );
      if (policy.metadataServer === "blocked") {
        noMetadataServer(`${name}-${NAMESPACES[key]}-no-metadata-server`, NAMESPACES[key], args.labels, {
          parent: this,
          provider: args.provider,
          dependsOn: [created[key]],
        });
      }
    }
    this.names = NAMESPACES;
    this.namespaces = created;
    this.registerOutputs({ names: this.names });
  }
}
