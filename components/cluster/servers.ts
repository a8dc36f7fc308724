import * as gcp from "@pulumi/gcp";
import * as pulumi from "@pulumi/pulumi";
import type { NodeTags } from "../gcp/firewall";
import { DATA_DISK_DEVICE_NAME, type NodeCleanupValues, renderServerScript, type ServerValues } from "./startup-script";
import { nodeMetadata, scheduling, SCOPE_JUSTIFICATION_LABELS, SERVICE_ACCOUNT_SCOPES, SHIELDED_VM } from "./vm-options";

/** A server's script values that are the same for every server. */
export type SharedServerValues = Omit<ServerValues & NodeCleanupValues, "serverIndex" | "nodeIp" | "serverIps" | "dataDisk">;

export interface K3sServersArgs {
  /** VM names are `<namePrefix>-<index>`: stable host names are stable etcd member names. */
  namePrefix: string;
  /** Odd number of servers (embedded etcd). */
  count: number;
  machineType: string;
  spot: boolean;
  /** Zones the servers are spread over, round-robin (at least one). */
  zones: string[];
  region: string;
  /** OS image (family) of the boot disk. */
  osImage: string;
  bootDisk: { sizeGb: number; type: string; labels: Record<string, string> };
  /** Persistent data disk for /var/lib/rancher/k3s; undefined: none (state on the boot disk). */
  dataDisk?: { sizeGb: number; type: string };
  /** Self link of the nodes' subnet. */
  subnetwork: pulumi.Input<string>;
  tags: NodeTags;
  /** The servers' dedicated service account. */
  serviceAccountEmail: pulumi.Input<string>;
  /** Values of the startup script shared by all servers (rendered per server with its address). */
  scriptValues: pulumi.Input<SharedServerValues>;
  /** Resources that must exist before a server boots (its secrets and their IAM grants). */
  after: pulumi.Input<pulumi.Resource>[];
  /** Protect the addresses, data disks and VMs (config `protect`). */
  protect: boolean;
}

/** A server as other components and the pipeline see it. */
export interface ServerInfo {
  name: string;
  zone: string;
  internalIp: string;
}

/**
 * The K3s servers: one VM per server with a static internal address and (optionally) a persistent
 * data disk, no public IP, a Shielded VM with OS Login and its own service account, plus one
 * unmanaged instance group per zone for the API load balancers.
 */
export class K3sServers extends pulumi.ComponentResource {
  readonly instances: gcp.compute.Instance[];
  /** Self links of the per-zone instance groups. */
  readonly instanceGroups: pulumi.Output<string>[];
  readonly servers: pulumi.Output<ServerInfo[]>;

  constructor(name: string, args: K3sServersArgs, opts?: pulumi.ComponentResourceOptions) {
    super("titanium:cluster:Servers", name, {}, opts);
    if (args.zones.length === 0) throw new Error(`K3sServers ${name}: expected at least one zone`);
    const keep = { parent: this, protect: args.protect };
    const zoneOf = (i: number) => args.zones[i % args.zones.length]!;

    const addresses = Array.from({ length: args.count }, (_, i) =>
      new gcp.compute.Address(
        `${name}-${i}-ip`,
        { region: args.region, addressType: "INTERNAL", purpose: "GCE_ENDPOINT", subnetwork: args.subnetwork, description: `K3s server ${i}` },
        keep,
      ),
    );
    const serverIps = pulumi.all(addresses.map((a) => a.address));

    const instances: gcp.compute.Instance[] = [];
    this.instances = addresses.map((address, i) => {
      const zone = zoneOf(i);
      const vmName = `${args.namePrefix}-${i}`;
      const disk = args.dataDisk
        ? new gcp.compute.Disk(
            `${name}-${i}-data`,
            { zone, size: args.dataDisk.sizeGb, type: args.dataDisk.type, labels: { role: "k3s-server-data" } },
            keep,
          )
        : undefined;
      const script = pulumi
        .all([args.scriptValues, serverIps, address.address])
        .apply(([values, ips, ip]) => renderServerScript({ ...values, serverIndex: i, nodeIp: ip, serverIps: ips, dataDisk: disk !== undefined }));
      const vm = new gcp.compute.Instance(
        `${name}-${i}`,
        {
          name: vmName,
          zone,
          machineType: args.machineType,
          tags: [args.tags.node, args.tags.server],
          labels: { role: "k3s-server", ...SCOPE_JUSTIFICATION_LABELS },
          bootDisk: {
            autoDelete: true,
            // Labels update in place (disks.setLabels), they do not replace the VM.
            initializeParams: { image: args.osImage, size: args.bootDisk.sizeGb, type: args.bootDisk.type, labels: { ...args.bootDisk.labels, role: "k3s-server" } },
          },
          attachedDisks: disk ? [{ source: disk.id, deviceName: DATA_DISK_DEVICE_NAME, mode: "READ_WRITE" }] : [],
          // No access config: no public IP. Egress goes through Cloud NAT.
          networkInterfaces: [{ subnetwork: args.subnetwork, networkIp: address.address }],
          serviceAccount: { email: args.serviceAccountEmail, scopes: SERVICE_ACCOUNT_SCOPES },
          scheduling: scheduling(args.spot),
          shieldedInstanceConfig: SHIELDED_VM,
          metadata: nodeMetadata(script),
          allowStoppingForUpdate: true,
          // `pulumi up --refresh` starts a stopped server while the API answers through the others (not
          // dev's only server: the refresh of the Kubernetes objects fails first; bootstrap runbook).
          desiredStatus: "RUNNING",
          deletionProtection: args.protect,
        },
        // A fixed name and a fixed address: the old VM must go before its replacement comes. Each server
        // waits for the one before it, so a change that stops VMs (machine type, service account) stops
        // one at a time rather than all of etcd at once (the upgrades runbook goes one server further).
        { ...keep, deleteBeforeReplace: true, dependsOn: [...args.after, ...instances.slice(-1)] },
      );
      instances.push(vm);
      return vm;
    });

    const zones = [...new Set(this.instances.map((_, i) => zoneOf(i)))];
    this.instanceGroups = zones.map((zone) => {
      // The group outlives its members: the API backend services use it, so GCE refuses to delete it.
      const group = new gcp.compute.InstanceGroup(`${name}-${zone}`, { zone, description: `K3s servers in ${zone}` }, { parent: this });
      // Each VM joins through a membership of its own, replaced with the VM: a replaced VM keeps its name
      // and self link, and GCE drops the old VM from the group when it deletes it. (A group listing its
      // `instances` never noticed; one that was itself replaced cascaded into deleting a group in use.)
      const memberships = this.instances.flatMap((vm, i) =>
        zoneOf(i) === zone
          ? [new gcp.compute.InstanceGroupMembership(`${name}-${i}-membership`, { zone, instanceGroup: group.name, instance: vm.selfLink }, { parent: this, replaceWith: [vm] })]
          : [],
      );
      // The load balancers take the group once its members are in it.
      return pulumi.all(memberships.map((m) => m.id)).apply(() => group.selfLink);
    });
    this.servers = serverIps.apply((ips) => ips.map((ip, i) => ({ name: `${args.namePrefix}-${i}`, zone: zoneOf(i), internalIp: ip })));
    this.registerOutputs({ servers: this.servers });
  }
}
