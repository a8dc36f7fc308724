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
  bootDisk: { sizeGb: number; type: string; labels: Record<string, string> };
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

/** Boot, K3s download and join take a few minutes before kube-proxy answers: autohealing waits this long. */
export const AUTOHEALING_INITIAL_DELAY_SEC = 600;

/**
 * How long `pulumi up` may wait for the group to roll out: agents are replaced one at a time (surge one),
 * each within one boot (about five minutes) plus, if it never turns healthy, one autohealing cycle; ten
 * minutes on top for the group's own operations.
 */
export function rolloutTimeoutMinutes(agentCount: number): number {
  const perAgent = 5 + AUTOHEALING_INITIAL_DELAY_SEC / 60;
  return agentCount * perAgent + 10;
}

/**
 * The K3s agents: an instance template (auto-named from a prefix, so a change creates a new
 * template before the old one goes) and a zonal managed instance group with autohealing on
 * kube-proxy's /healthz and a rolling update policy that surges one VM and never drops below
 * the target size. `pulumi up` waits until every agent runs the current template and passed its
 * health check: only then does it delete the old template (Compute Engine refuses to delete a
 * template VMs were made from, `resourceInUseByAnotherResource`), and a deploy reports success
 * only once the agents have joined.
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
        disks: [
          {
            boot: true,
            autoDelete: true,
            sourceImage: args.osImage,
            diskSizeGb: args.bootDisk.sizeGb,
            diskType: args.bootDisk.type,
            labels: { ...args.bootDisk.labels, role: "k3s-agent" },
          },
        ],
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
        autoHealingPolicies: { healthCheck: health.id, initialDelaySec: AUTOHEALING_INITIAL_DELAY_SEC },
        updatePolicy: {
          type: "PROACTIVE",
          minimalAction: "REPLACE",
          maxSurgeFixed: 1,
          maxUnavailableFixed: 0,
          replacementMethod: "SUBSTITUTE",
        },
        // UPDATED: every VM on the current template and stable (an autohealed VM is stable once healthy).
        waitForInstances: true,
        waitForInstancesStatus: "UPDATED",
      },
      {
        parent: this,
        customTimeouts: { create: `${rolloutTimeoutMinutes(args.count)}m`, update: `${rolloutTimeoutMinutes(args.count)}m` },
      },
    );
    this.instanceGroup = this.group.instanceGroup;
    this.registerOutputs({ instanceGroup: this.instanceGroup });
  }
}
