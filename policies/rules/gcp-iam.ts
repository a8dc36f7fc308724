import type { Obj } from "../lib/k8s";
import { resourcePolicy, type BaseConfig } from "../lib/policy";

interface Config extends BaseConfig {
  forbiddenRoles: string[];
}

/** Grants on a whole project, folder or organization (non-authoritative: one member, one role), by what they cover. */
const HIERARCHY_MEMBERS: Readonly<Record<string, string>> = {
  "gcp:projects/iAMMember:IAMMember": "project",
  "gcp:folder/iAMMember:IAMMember": "folder",
  "gcp:organizations/iAMMember:IAMMember": "organization",
};

/**
 * Authoritative IAM resources (`*IAMPolicy`/`*IamPolicy` own a resource's whole policy, `*IAMBinding`/
 * `*IamBinding` every member of one role): applying one removes the grants made outside this program
 * (operators', Google's service agents', another stack's), on a project possibly locking everyone out.
 */
export const isAuthoritativeIam = (type: string): boolean => type.startsWith("gcp:") && /(IAM|Iam)(Policy|Binding)$/.test(type.slice(type.lastIndexOf(":") + 1));

/** Basic roles: thousands of permissions each. */
const BASIC_ROLES = ["roles/owner", "roles/editor", "roles/viewer"];

/**
 * Project-, folder- or organization-wide grants that are never least privilege here: basic roles, any
 * predefined admin role, and roles that read every secret or act as every service account.
 */
export function forbiddenHierarchyRole(role: string, forbidden: readonly string[]): boolean {
  if (BASIC_ROLES.includes(role) || forbidden.includes(role)) return true;
  return role.startsWith("roles/") && /admin/i.test(role.slice("roles/".length));
}

/** Non-authoritative IAM, and no project-wide grant of a role broader than one resource needs. */
export const gcpIamLeastPrivilege = resourcePolicy<Config>(
  {
    name: "gcp-iam-least-privilege",
    description:
      "No authoritative IAM resource (any `*IAMPolicy`/`*IamPolicy` or `*IAMBinding`/`*IamBinding`: it removes grants made outside the program), and no project, folder or organization IAMMember granting a basic role, a predefined admin role, or a role that reads every secret or acts as every service account (those are granted on the one secret or account that needs them).",
    severity: "critical",
    enforcementLevel: "mandatory",
    remediationSteps:
      "Use the `*IAMMember`/`*IamMember` resource (one member, one role, nothing else touched). Grant `roles/secretmanager.secretAccessor` on the secret (`secretmanager.SecretIamMember`), `roles/iam.serviceAccountUser` on the service account (`serviceaccount.IAMMember`), bucket roles on the bucket, and a custom role with the exact permissions instead of an admin role (ADR 0012, ADR 0022).",
    configSchema: {
      properties: {
        forbiddenRoles: {
          type: "array",
          items: { type: "string" },
          default: [
            "roles/secretmanager.secretAccessor",
            "roles/secretmanager.secretVersionManager",
            "roles/secretmanager.secretVersionAdder",
            "roles/iam.serviceAccountUser",
            "roles/iam.serviceAccountTokenCreator",
            "roles/iam.serviceAccountOpenIdTokenCreator",
            "roles/iam.workloadIdentityUser",
            "roles/storage.objectUser",
          ],
          description: "Roles never granted on a whole project, folder or organization (basic and predefined admin roles are always refused).",
        },
      },
    },
  },
  (args, judge, report, config) => {
    if (isAuthoritativeIam(args.type)) {
      report(`${args.type} is authoritative: it removes every grant made outside this program; use the matching IAMMember resource`);
      return;
    }
    const scope = HIERARCHY_MEMBERS[args.type];
    if (scope === undefined) return;
    const props = args.props as Obj;
    judge.check(() => {
      const role = props.role;
      if (typeof role === "string" && forbiddenHierarchyRole(role, config.forbiddenRoles)) {
        report(`grants ${role} on the whole ${scope}: grant it on the one resource that needs it, or a narrower role`);
      }
    });
  },
);
