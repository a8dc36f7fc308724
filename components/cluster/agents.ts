import * as gcp from "@pulumi/gcp";
import * as pulumi from "@pulumi/pulumi";
import { KUBE_PROXY_HEALTHZ_PORT, type NodeTags } from "../gcp/firewall";
import { nodeMetadata, scheduling, SCOPE_JUSTIFICATION_LABELS, SERVICE_ACCOUNT_SCOPES, SHIELDED_VM } from "./vm-options";

export interface K3sAgentsArgs {
  /** Base of the agents' VM names (the group appends a suffix). */
  baseInstanceName: string;
  /** Target size of the group. */
  count: number;
  machineType: string;
  spot: boolean;
  /** Zone of the (zonal) managed instance group. */
  zone: string;
  /** OS image (family) of the boot disk. */
  osImage: string;
  bootDisk: { sizeGb: number; type: string };
  /** Self link of the nodes' subnet. */
  subnetwork: pulumi.Input<string>;
  tags: NodeTags;
  /** The agents' dedicated service account. */
  serviceAccountEmail: pulumi.Input<string>;
  /** The rendered agent startup script. */
  startupScript: pulumi.Input<string>;
  /** Resources that must exist before an agent boots (its join token and IAM grant). */
  after: pulumi.Input<pulumi.Resource>[];
}

/**
 * The K3s agents: an instance template (auto-named from a prefix, so a change creates a new
 * template before the old one goes) and a zonal managed instance group with autohealing on
 * kube-proxy's /healthz and a rolling update policy that surges one VM and never drops below
 * the target size.
 */
export class K3sAgents extends pulumi.ComponentResource {
  readonly template: gcp.compute.InstanceTemplate;
  readonly group: gcp.compute.InstanceGroupManager;
  /** Self link of the group's instance group (the ingress load balancer's backend). */
  readonly instanceGroup: pulumi.Output<string>;

  constructor(name: string, args: K3sAgentsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("titanium:cluster:Agents", name, {}, opts);
    this.template = new gcp.compute.InstanceTemplate(
      `${name}-template`,
      {
        namePrefix: `${args.baseInstanceName}-`,
        machineType: args.machineType,
        tags: [args.tags.node, args.tags.agent],
        labels: { role: "k3s-agent", ...SCOPE_JUSTIFICATION_LABELS },
        disks: [{ boot: true, autoDelete: true, sourceImage: args.osImage, diskSizeGb: args.bootDisk.sizeGb, diskType: args.bootDisk.type }],
        // No access config: no public IP.
        networkInterfaces: [{ subnetwork: args.subnetwork }],
        serviceAccount: { email: args.serviceAccountEmail, scopes: SERVICE_ACCOUNT_SCOPES },
        scheduling: scheduling(args.spot),
        shieldedInstanceConfig: SHIELDED_VM,
        metadata: nodeMetadata(args.startupScript),
      },
      { parent: this, dependsOn: args.after },
    );
    const health = new gcp.compute.HealthCheck(
      `${name}-autohealing`,
      {
        description: "kube-proxy /healthz: the node forwards Service traffic",
        httpHealthCheck: { port: KUBE_PROXY_HEALTHZ_PORT, requestPath: "/healthz" },
        checkIntervalSec: 10,
        timeoutSec: 5,
        healthyThreshold: 2,
        unhealthyThreshold: 6,
      },
      { parent: this },
    );
    this.group = new gcp.compute.InstanceGroupManager(
      `${name}-group`,
      {
        zone: args.zone,
        baseInstanceName: args.baseInstanceName,
        versions: [{ name: "primary", instanceTemplate: this.template.selfLinkUnique }],
        targetSize: args.count,
        // Boot, K3s download and join take a few minutes before kube-proxy answers.
        autoHealingPolicies: { healthCheck: health.id, initialDelaySec: 600 },
        updatePolicy: {
          type: "PROACTIVE",
          minimalAction: "REPLACE",
          maxSurgeFixed: 1,
          maxUnavailableFixed: 0,
          replacementMethod: "SUBSTITUTE",
        },
        waitForInstances: false,
      },
      { parent: this },
    );
    this.instanceGroup = this.group.instanceGroup;
    this.registerOutputs({ instanceGroup: this.instanceGroup });
  }
}
