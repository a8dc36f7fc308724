import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { NAMESPACES, type NamespaceKey } from "./names";

/** Pod Security Admission levels (https://kubernetes.io/docs/concepts/security/pod-security-standards/). */
export type PsaLevel = "privileged" | "baseline" | "restricted";

export interface NamespacesArgs {
  /** Kubernetes provider of the cluster layer. */
  provider: k8s.Provider;
  /** Labels added to every namespace (environment, managed-by). */
  labels: Record<string, string>;
}

/**
 * What each namespace enforces. `restricted` for the application (the Istio CNI node agent sets up
 * traffic redirection, so meshed pods need no NET_ADMIN init container); `privileged` only where a
 * workload needs host access (the CNI agent and node-exporter mount host paths, the PD CSI node
 * plugin mounts disks); `baseline` elsewhere, with `restricted` warnings so drift towards it is
 * visible.
 */
export const NAMESPACE_POLICY: Record<NamespaceKey, { enforce: PsaLevel; meshed: boolean }> = {
  app: { enforce: "restricted", meshed: true },
  istio: { enforce: "privileged", meshed: false },
  externalSecrets: { enforce: "restricted", meshed: false },
  monitoring: { enforce: "privileged", meshed: false },
  logging: { enforce: "baseline", meshed: false },
  argocd: { enforce: "baseline", meshed: false },
  // The PD CSI node plugin mounts disks for the kubelet: privileged, host paths, Bidirectional propagation.
  storage: { enforce: "privileged", meshed: false },
};

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
        { parent: this, provider: args.provider },
      );
    }
    this.names = NAMESPACES;
    this.namespaces = created;
    this.registerOutputs({ names: this.names });
  }
}
