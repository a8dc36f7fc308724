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
  /**
   * Path of the API server's readiness (`/readyz`), probed over HTTPS on `port`. The servers let
   * anonymous requests reach it (and `/livez`) and nothing else (ADR 0011).
   */
  healthCheckPath: string;
  /** Unmanaged instance groups holding the servers, one per zone. */
  instanceGroups: pulumi.Input<string>[];
}

/**
 * The stable address of the K3s API in front of all servers: an internal passthrough load
 * balancer for the VPC (agents, servers' peers) and an external passthrough one for operators,
 * both on the same server instance groups with one health check. The DNS name in every
 * kubeconfig resolves to one of them (or to an IAP tunnel), so the kubeconfig never changes.
 *
 * The health check asks the API server whether it is ready (HTTPS GET of `/readyz` on the API
 * port, healthy on 200), not whether the port accepts TCP: on K3s the port is the supervisor's,
 * which accepts connections before the embedded API server is up and while it is broken (it
 * answers 503 then), so a TCP check kept a joining or failed server in rotation. Google's
 * probes do not verify the server certificate (the cluster CA's).
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
        description: "K3s API server ready (HTTPS GET /readyz answers 200)",
        httpsHealthCheck: { port: args.port, requestPath: args.healthCheckPath },
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
      // Its address is taken (GCE_ENDPOINT: one rule) until the old rule goes; ports and backend change by replacement.
      { parent: this, deleteBeforeReplace: true },
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
      // A second rule on the same address and port is refused: the old one goes first.
      { parent: this, deleteBeforeReplace: true },
    );
    this.registerOutputs({});
  }
}
