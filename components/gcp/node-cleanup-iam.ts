/**
 * The Compute Engine permission of the K3s servers' node cleanup (`titanium-k3s-node-cleanup`,
 * components/cluster/scripts/k3s-server.sh; ADR 0013): ask whether an agent's VM still exists.
 */
import * as pulumi from "@pulumi/pulumi";
import { checkRoleId, customRoleGrant } from "./custom-role";

/**
 * `instances.get` alone: the cleanup deletes a NotReady agent's Node only when Compute Engine answers 404
 * for its instance. Nothing that lists, changes, starts, stops or deletes a VM, reads its serial port or
 * its disks: `roles/compute.viewer` would also list every resource of the project.
 */
export const NODE_CLEANUP_PERMISSIONS = ["compute.instances.get"] as const;

export interface NodeCleanupIamArgs {
  /** Project of the custom role and its binding. */
  project: string;
  /** Custom role id (`[a-zA-Z0-9_.]`, 3-64 characters; unique per project, so per stack). */
  roleId: string;
  /** The servers' service account: `member` is its IAM member (`serviceAccount:…`). */
  account: { member: pulumi.Input<string> };
}

/**
 * A custom role with exactly {@link NODE_CLEANUP_PERMISSIONS}, granted on the project to the servers'
 * service account (a non-authoritative `IAMMember`, as every grant: ADR 0012). Only the servers' own
 * processes hold that account's token: their pods are refused the metadata server (scripts/k3s-server.sh).
 */
export class NodeCleanupIam extends pulumi.ComponentResource {
  /** The custom role's resource name (`projects/<project>/roles/<roleId>`). */
  readonly roleName: pulumi.Output<string>;

  constructor(name: string, args: NodeCleanupIamArgs, opts?: pulumi.ComponentResourceOptions) {
    super("titanium:gcp:NodeCleanupIam", name, {}, opts);
    checkRoleId(`NodeCleanupIam ${name}`, args.roleId);
    const role = customRoleGrant(this, name, "instances", {
      project: args.project,
      roleId: args.roleId,
      title: "Titanium K3s node cleanup",
      description: "Read whether a K3s agent's VM still exists (instances.get), so the servers delete the Node object of a deleted VM: ADR 0013",
      permissions: NODE_CLEANUP_PERMISSIONS,
      member: args.account.member,
    });
    this.roleName = role.name;
    this.registerOutputs({ roleName: this.roleName });
  }
}
