import * as gcp from "@pulumi/gcp";
import * as pulumi from "@pulumi/pulumi";

export interface NetworkArgs {
  /** Region of the subnet, the Cloud Router and Cloud NAT. */
  region: string;
  /** Primary IPv4 range of the nodes' subnet (config `network.subnetCidr`). */
  subnetCidr: string;
}

/**
 * A custom-mode VPC with one regional subnet for the nodes, and Cloud NAT so that no node needs a
 * public IP address: nodes reach the internet (images, the K3s release) only through NAT, and
 * Google APIs (Secret Manager, Cloud Storage, Logging) through Private Google Access, off the NAT bill.
 */
export class Network extends pulumi.ComponentResource {
  readonly network: gcp.compute.Network;
  readonly subnetwork: gcp.compute.Subnetwork;
  readonly router: gcp.compute.Router;
  readonly nat: gcp.compute.RouterNat;
  /** Self link of the VPC (what firewall rules and forwarding rules reference). */
  readonly networkSelfLink: pulumi.Output<string>;
  /** Self link of the nodes' subnet. */
  readonly subnetworkSelfLink: pulumi.Output<string>;

  constructor(name: string, args: NetworkArgs, opts?: pulumi.ComponentResourceOptions) {
    super("titanium:gcp:Network", name, {}, opts);

    this.network = new gcp.compute.Network(
      `${name}-vpc`,
      { autoCreateSubnetworks: false, routingMode: "REGIONAL", description: "Titanium: nodes of the K3s cluster" },
      { parent: this },
    );
    this.subnetwork = new gcp.compute.Subnetwork(
      `${name}-nodes`,
      {
        network: this.network.id,
        region: args.region,
        ipCidrRange: args.subnetCidr,
        stackType: "IPV4_ONLY",
        // Google APIs without NAT: the nodes read Secret Manager and write backups this way.
        privateIpGoogleAccess: true,
      },
      { parent: this },
    );
    this.router = new gcp.compute.Router(`${name}-router`, { network: this.network.id, region: args.region }, { parent: this });
    this.nat = new gcp.compute.RouterNat(
      `${name}-nat`,
      {
        router: this.router.name,
        region: args.region,
        natIpAllocateOption: "AUTO_ONLY",
        // Only the nodes' subnet, so nothing else in the VPC silently gains egress.
        sourceSubnetworkIpRangesToNat: "LIST_OF_SUBNETWORKS",
        subnetworks: [{ name: this.subnetwork.selfLink, sourceIpRangesToNats: ["ALL_IP_RANGES"] }],
        logConfig: { enable: true, filter: "ERRORS_ONLY" },
      },
      { parent: this },
    );

    this.networkSelfLink = this.network.selfLink;
    this.subnetworkSelfLink = this.subnetwork.selfLink;
    this.registerOutputs({ networkSelfLink: this.networkSelfLink, subnetworkSelfLink: this.subnetworkSelfLink });
  }
}
