import * as gcp from "@pulumi/gcp";
import * as pulumi from "@pulumi/pulumi";

/** Source range of IAP TCP forwarding (SSH and the pipeline's tunnel to the K3s API). */
export const IAP_TCP_FORWARDING_RANGE = "35.235.240.0/20";

/** Probes of internal passthrough load balancers and of managed instance group autohealing. */
export const HEALTH_CHECK_RANGES = ["35.191.0.0/16", "130.211.0.0/22"] as const;

/** Probes of external passthrough Network Load Balancers (backend-service based). */
export const NLB_HEALTH_CHECK_RANGES = ["35.191.0.0/16", "209.85.152.0/22", "209.85.204.0/22"] as const;

/** The whole IPv4 internet: allowed only on the load balancer's ports, which reach nothing else. */
export const ANYWHERE = "0.0.0.0/0";

/** Port of the K3s API (the supervisor and kube-apiserver behind it). */
export const K3S_API_PORT = 6443;

/** kube-proxy's /healthz: the agents' autohealing health check (answers while the node forwards traffic). */
export const KUBE_PROXY_HEALTHZ_PORT = 10256;

/** Network tags that select nodes in firewall rules (derived from the component name). */
export interface NodeTags {
  /** Every K3s node. */
  node: string;
  /** K3s servers (control plane, etcd). */
  server: string;
  /** K3s agents (workloads, the Istio ingress gateway). */
  agent: string;
}

/** The tags a cluster named `name` uses. */
export function nodeTags(name: string): NodeTags {
  return { node: `${name}-node`, server: `${name}-server`, agent: `${name}-agent` };
}

export interface FirewallArgs {
  /** Self link of the VPC the rules apply to. */
  network: pulumi.Input<string>;
  /** Tags of the nodes the rules target (see {@link nodeTags}). */
  tags: NodeTags;
  /** The nodes' subnet: node-to-node traffic (etcd, kubelet, flannel VXLAN) stays inside it. */
  subnetCidr: string;
  /** Operators' ranges allowed to the K3s API. */
  adminCidrs: string[];
  /** Ports the ingress load balancer forwards (the gateway Service's ports). */
  ingressPorts: number[];
  /**
   * The ingress load balancer's reserved address. A passthrough load balancer delivers packets still
   * addressed to it: the rule open to the internet admits that destination only, not the agents' own
   * addresses (as GKE's rules for its passthrough load balancers do).
   */
  ingressAddress: pulumi.Input<string>;
  /** The gateway Service's healthCheckNodePort, probed by the ingress load balancer. */
  ingressHealthCheckNodePort: number;
}

/**
 * The cluster's ingress rules, each as narrow as it can be. Nothing opens SSH, the K3s API,
 * the kubelet or all ports to the internet; the only rule open to 0.0.0.0/0 is the ingress load
 * balancer's, on exactly its ports, to the agents, for packets addressed to the load balancer (a
 * passthrough load balancer keeps the client's address as the source, so the rule cannot be
 * narrower than the clients).
 */
export class Firewall extends pulumi.ComponentResource {
  /** Every rule, by purpose. */
  readonly rules: Record<"internal" | "sshFromIap" | "k3sApi" | "ingressTraffic" | "ingressHealth" | "agentAutohealing", gcp.compute.Firewall>;

  constructor(name: string, args: FirewallArgs, opts?: pulumi.ComponentResourceOptions) {
    super("titanium:gcp:Firewall", name, {}, opts);
    const rule = (suffix: string, description: string, spec: Omit<gcp.compute.FirewallArgs, "network" | "direction" | "description">) =>
      new gcp.compute.Firewall(
        `${name}-${suffix}`,
        { network: args.network, direction: "INGRESS", description, ...spec },
        { parent: this },
      );

    this.rules = {
      internal: rule("internal", "Node-to-node traffic inside the nodes' subnet (etcd, kubelet, flannel VXLAN, NodePorts)", {
        sourceRanges: [args.subnetCidr],
        targetTags: [args.tags.node],
        allows: [{ protocol: "tcp" }, { protocol: "udp" }, { protocol: "icmp" }],
      }),
      sshFromIap: rule("ssh-iap", "SSH only through IAP TCP forwarding (OS Login decides who)", {
        sourceRanges: [IAP_TCP_FORWARDING_RANGE],
        targetTags: [args.tags.node],
        allows: [{ protocol: "tcp", ports: ["22"] }],
      }),
      k3sApi: rule("k3s-api", "K3s API: operators, the pipeline's IAP tunnel and the API load balancers' health checks", {
        sourceRanges: unique([...args.adminCidrs, IAP_TCP_FORWARDING_RANGE, ...HEALTH_CHECK_RANGES, ...NLB_HEALTH_CHECK_RANGES]),
        targetTags: [args.tags.server],
        allows: [{ protocol: "tcp", ports: [String(K3S_API_PORT)] }],
      }),
      ingressTraffic: rule("ingress-traffic", "Clients through the passthrough ingress load balancer (client address preserved)", {
        sourceRanges: [ANYWHERE],
        // The API documents ranges in CIDR form: the address as a /32.
        destinationRanges: [pulumi.interpolate`${args.ingressAddress}/32`],
        targetTags: [args.tags.agent],
        allows: [{ protocol: "tcp", ports: args.ingressPorts.map(String) }],
      }),
      ingressHealth: rule("ingress-health", "Ingress load balancer health checks on the gateway's healthCheckNodePort", {
        sourceRanges: [...NLB_HEALTH_CHECK_RANGES],
        targetTags: [args.tags.agent],
        allows: [{ protocol: "tcp", ports: [String(args.ingressHealthCheckNodePort)] }],
      }),
      agentAutohealing: rule("agent-autohealing", "Managed instance group autohealing probes kube-proxy's /healthz", {
        sourceRanges: [...HEALTH_CHECK_RANGES],
        targetTags: [args.tags.agent],
        allows: [{ protocol: "tcp", ports: [String(KUBE_PROXY_HEALTHZ_PORT)] }],
      }),
    };
    this.registerOutputs({});
  }
}

function unique(values: string[]): string[] {
  return [...new Set(values)];
}
