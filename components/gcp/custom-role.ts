/** A project custom role with exactly the permissions one job needs, granted to one member (ADR 0012, 0022). */
import * as gcp from "@pulumi/gcp";
import * as pulumi from "@pulumi/pulumi";

export interface CustomRoleGrantArgs {
  /** Project of the custom role and its binding. */
  project: string;
  /** Custom role id (`[a-zA-Z0-9_.]`, 3-64 characters; unique per project, so per stack). */
  roleId: string;
  title: string;
  description: string;
  permissions: readonly string[];
  /** Who gets the role (`serviceAccount:…`). */
  member: pulumi.Input<string>;
}

/**
 * Checks a custom role id as Google does, naming the component (`what`) that asks for it.
 */
export function checkRoleId(what: string, roleId: string): void {
  if (!/^[a-zA-Z0-9_.]{3,64}$/.test(roleId)) throw new Error(`${what}: roleId "${roleId}" must be 3-64 characters of a-z, A-Z, 0-9, "_" and "."`);
}

/**
 * The role (`<name>-role`) and a non-authoritative project `IAMMember` granting it (`<name>-<grant>`), as
 * children of `parent`, the component `name` that needs them; returns the role. The grant names the role as
 * a plain value (what the provider returns), known in a preview so that the IAM policy judges it then too,
 * and waits for the role through dependsOn.
 */
export function customRoleGrant(parent: pulumi.ComponentResource, name: string, grant: string, args: CustomRoleGrantArgs): gcp.projects.IAMCustomRole {
  const role = new gcp.projects.IAMCustomRole(
    `${name}-role`,
    { project: args.project, roleId: args.roleId, title: args.title, description: args.description, permissions: [...args.permissions], stage: "GA" },
    { parent },
  );
  new gcp.projects.IAMMember(
    `${name}-${grant}`,
    { project: args.project, role: `projects/${args.project}/roles/${args.roleId}`, member: args.member },
    { parent, dependsOn: [role] },
  );
  return role;
}
