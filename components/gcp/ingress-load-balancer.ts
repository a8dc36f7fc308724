import * as gcp from "@pulumi/gcp";
import * as pulumi from "@pulumi/pulumi";

export interface IngressLoadBalancerArgs {
  /** Region of the load balancer (regional backend service, forwarding rule). */
  region: string;
  /** The reserved external address clients use (an IP, from the cloud layer's static address). */
  ipAddress: pulumi.Input<string>;
  /**
   * Ports the forwarding rule accepts (config `ingress.httpPort`/`httpsPort`). A passthrough load
   * balancer does not translate ports: packets reach the agents on these ports, addressed to
   * {@link ipAddress}, and kube-proxy hands them to the gateway Service (its `externalIPs`).
   */
  ports: number[];
  /** NodePort of the gateway's status port (config `ingress.healthCheckNodePort`). */
  healthCheckNodePort: number;
  /** The gateway's readiness path on that port (Envoy's `/healthz/ready`). */
  healthCheckPath: string;
  /** Instance groups of the agents (the managed instance group's `instanceGroup`). */
  instanceGroups: pulumi.Input<string>[];
}

/**
 * External passthrough Network Load Balancer (regional backend service) in front of the agents.
 * It keeps the client's address (no proxy, no SNAT), and its HTTP health check on the gateway's
 * healthCheckNodePort selects only agents that run a gateway pod (externalTrafficPolicy: Local).
 */
export class IngressLoadBalancer extends pulumi.ComponentResource {
  readonly healthCheck: gcp.compute.RegionHealthCheck;
  readonly backendService: gcp.compute.RegionBackendService;
  readonly forwardingRule: gcp.compute.ForwardingRule;

  constructor(name: string, args: IngressLoadBalancerArgs, opts?: pulumi.ComponentResourceOptions) {
    super("titanium:gcp:IngressLoadBalancer", name, {}, opts);
    if (args.ports.length === 0 || args.ports.length > 5) {
      throw new Error(`IngressLoadBalancer ${name}: expected 1 to 5 ports, got ${args.ports.length}`);
    }
    this.healthCheck = new gcp.compute.RegionHealthCheck(
      `${name}-hc`,
      {
        region: args.region,
        description: "The gateway's readiness: only nodes with a ready local gateway pod answer (externalTrafficPolicy: Local)",
        httpHealthCheck: { port: args.healthCheckNodePort, requestPath: args.healthCheckPath },
        checkIntervalSec: 5,
        timeoutSec: 5,
        healthyThreshold: 2,
        unhealthyThreshold: 2,
      },
      { parent: this },
    );
    this.backendService = new gcp.compute.RegionBackendService(
      `${name}-backend`,
      {
        region: args.region,
        loadBalancingScheme: "EXTERNAL",
        protocol: "TCP",
        healthChecks: this.healthCheck.id,
        backends: args.instanceGroups.map((group) => ({ group, balancingMode: "CONNECTION" })),
        // Draining lets in-flight requests finish when an agent leaves the group.
        connectionDrainingTimeoutSec: 30,
      },
      { parent: this },
    );
    this.forwardingRule = new gcp.compute.ForwardingRule(
      `${name}-rule`,
      {
        region: args.region,
        loadBalancingScheme: "EXTERNAL",
        ipAddress: args.ipAddress,
        ipProtocol: "TCP",
        ports: args.ports.map(String),
        backendService: this.backendService.id,
        networkTier: "PREMIUM",
      },
      // Ports change only by replacement, and a second rule on the same address and ports is refused:
      // the old rule goes first (the ingress is away for the minute that takes).
      { parent: this, deleteBeforeReplace: true },
    );
    this.registerOutputs({});
  }
}
