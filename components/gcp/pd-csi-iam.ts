/**
 * The cloud layer's side of the GCE Persistent Disk CSI driver (ADR 0022): the Compute Engine
 * permissions its controller uses, as a custom role, for the service account it runs as.
 */
import * as gcp from "@pulumi/gcp";
import * as pulumi from "@pulumi/pulumi";
import { checkRoleId, customRoleGrant } from "./custom-role";

/**
 * What the controller calls for zonal disks that are retained (the only StorageClass Titanium
 * creates: `reclaimPolicy: Retain`, expansion allowed, no snapshots), one permission per call of
 * the driver's Compute client. Not here, on purpose: `compute.disks.delete` (the cluster never
 * deletes a disk; an operator does, see docs/runbooks/database.md), snapshots and images, regional
 * disks, instance labels, and every other resource type. `roles/compute.storageAdmin`, which upstream
 * suggests, would also let a node delete any disk, snapshot or image in the project.
 */
export const PD_CSI_DRIVER_PERMISSIONS = [
  // CreateVolume: disks.insert, in the zone of the node the pod was scheduled to.
  "compute.disks.create",
  // The same insert carries labels (the claim's and volume's names, from the provisioner's
  // --extra-create-metadata): Compute Engine checks setLabels for labels given at creation too.
  "compute.disks.setLabels",
  // Idempotent create, polling an attachment, reading the size before a resize.
  "compute.disks.get",
  // ListVolumes (the attacher reconciles attachments): disks of the region's zones.
  "compute.disks.list",
  "compute.zones.list",
  // ControllerExpandVolume (the StorageClass allows expansion).
  "compute.disks.resize",
  // ControllerPublish/Unpublish: attaching a disk needs `use` on the disk and `attachDisk` on the VM.
  "compute.disks.use",
  "compute.instances.get",
  "compute.instances.attachDisk",
  "compute.instances.detachDisk",
  // Every disk and attach call returns a zonal operation the driver waits for.
  "compute.zoneOperations.get",
] as const;

export interface PdCsiDriverIamArgs {
  /** Project of the custom role and its binding. */
  project: string;
  /** Custom role id (`[a-zA-Z0-9_.]`, 3-64 characters; unique per project, so per stack). */
  roleId: string;
  /**
   * The service account the controller runs as (the agents'): `name` is its resource name
   * (`projects/…/serviceAccounts/…`), `member` its IAM member (`serviceAccount:…`).
   */
  account: { name: pulumi.Input<string>; member: pulumi.Input<string> };
}

/**
 * A custom role with exactly {@link PD_CSI_DRIVER_PERMISSIONS}, granted on the project to the
 * agents' service account, and `roles/iam.serviceAccountUser` on that account only: Compute Engine
 * requires `actAs` on a VM's service account to attach a disk to the VM, so the driver can attach
 * and detach disks on VMs that run as the agents' account and on no other VM (not the K3s servers).
 * The disk permissions are project-wide: resize and setLabels reach any disk (ADR 0022, not narrowed
 * by an IAM Condition that cannot be verified without a project).
 */
export class PdCsiDriverIam extends pulumi.ComponentResource {
  /** The custom role's resource name (`projects/<project>/roles/<roleId>`). */
  readonly roleName: pulumi.Output<string>;

  constructor(name: string, args: PdCsiDriverIamArgs, opts?: pulumi.ComponentResourceOptions) {
    super("titanium:gcp:PdCsiDriverIam", name, {}, opts);
    checkRoleId(`PdCsiDriverIam ${name}`, args.roleId);
    const child = { parent: this };
    const role = customRoleGrant(this, name, "disks", {
      project: args.project,
      roleId: args.roleId,
      title: "Titanium GCE PD CSI driver",
      description: "Create, resize, attach and detach the cluster's zonal Persistent Disks (never delete): ADR 0022",
      permissions: PD_CSI_DRIVER_PERMISSIONS,
      member: args.account.member,
    });
    new gcp.serviceaccount.IAMMember(
      `${name}-act-as-self`,
      { serviceAccountId: args.account.name, role: "roles/iam.serviceAccountUser", member: args.account.member },
      child,
    );
    this.roleName = role.name;
    this.registerOutputs({ roleName: this.roleName });
  }
}
