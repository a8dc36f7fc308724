import * as gcp from "@pulumi/gcp";
import * as pulumi from "@pulumi/pulumi";

export interface ApiLoadBalancerArgs {
  /** Region of the load balancers. */
  region: string;
  /** Self link of the VPC (for the internal forwarding rule). */
  network: pulumi.Input<string>;
  /** Self link of the nodes' subnet (for the internal forwarding rule). */
  subnetwork: pulumi.Input<string>;
  /** Reserved internal address of the API inside the VPC (agents join through it). */
  internalIpAddress: pulumi.Input<string>;
  /** Reserved external address of the API for operators in the admin CIDRs (firewalled to them). */
  publicIpAddress: pulumi.Input<string>;
  /** The K3s API port. */
  port: number;
  /** Unmanaged instance groups holding the servers, one per zone. */
  instanceGroups: pulumi.Input<string>[];
}

/**
 * The stable address of the K3s API in front of all servers: an internal passthrough load
 * balancer for the VPC (agents, servers' peers) and an external passthrough one for operators,
 * both on the same server instance groups with one TCP health check. The DNS name in every
 * kubeconfig resolves to one of them (or to an IAP tunnel), so the kubeconfig never changes.
 */
export class ApiLoadBalancer extends pulumi.ComponentResource {
  readonly healthCheck: gcp.compute.RegionHealthCheck;
  readonly internalRule: gcp.compute.ForwardingRule;
  readonly externalRule: gcp.compute.ForwardingRule;

  constructor(name: string, args: ApiLoadBalancerArgs, opts?: pulumi.ComponentResourceOptions) {
    super("titanium:gcp:ApiLoadBalancer", name, {}, opts);
    this.healthCheck = new gcp.compute.RegionHealthCheck(
      `${name}-hc`,
      {
        region: args.region,
        description: "K3s API listening on the server",
        tcpHealthCheck: { port: args.port },
        checkIntervalSec: 5,
        timeoutSec: 5,
        healthyThreshold: 2,
        unhealthyThreshold: 3,
      },
      { parent: this },
    );
    const backends = args.instanceGroups.map((group) => ({ group, balancingMode: "CONNECTION" }));
    const service = (scheme: "INTERNAL" | "EXTERNAL") =>
      new gcp.compute.RegionBackendService(
        `${name}-${scheme.toLowerCase()}`,
        { region: args.region, loadBalancingScheme: scheme, protocol: "TCP", healthChecks: this.healthCheck.id, backends },
        { parent: this },
      );
    this.internalRule = new gcp.compute.ForwardingRule(
      `${name}-internal`,
      {
        region: args.region,
        loadBalancingScheme: "INTERNAL",
        network: args.network,
        subnetwork: args.subnetwork,
        ipAddress: args.internalIpAddress,
        ipProtocol: "TCP",
        ports: [String(args.port)],
        backendService: service("INTERNAL").id,
      },
      { parent: this },
    );
    this.externalRule = new gcp.compute.ForwardingRule(
      `${name}-external`,
      {
        region: args.region,
        loadBalancingScheme: "EXTERNAL",
        ipAddress: args.publicIpAddress,
        ipProtocol: "TCP",
        ports: [String(args.port)],
        backendService: service("EXTERNAL").id,
        networkTier: "PREMIUM",
      },
      { parent: this },
    );
    this.registerOutputs({});
  }
}
