import type { Obj } from "../lib/k8s";
import { resourcePolicy, type BaseConfig } from "../lib/policy";
import { readOr } from "../lib/sdk";

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

/**
 * IAM principals that mean "anyone": `allUsers` (no sign-in at all) and `allAuthenticatedUsers` (any
 * Google account, i.e. anyone too). Nothing this program creates is public; the ingress is the load balancer.
 */
const PUBLIC_PRINCIPALS = ["allUsers", "allAuthenticatedUsers"] as const;

/** A non-authoritative grant to one member on one resource or on the hierarchy (`*IAMMember`/`*IamMember`). */
const isIamMember = (type: string): boolean => type.startsWith("gcp:") && /(IAM|Iam)Member$/.test(type.slice(type.lastIndexOf(":") + 1));

const BUCKET = "gcp:storage/bucket:Bucket";

/** Cloud Storage ACL resources granting one `entity`, and those setting `ROLE:entity` pairs or a predefined ACL. */
const ACL_ENTITY = new Set([
  "gcp:storage/bucketAccessControl:BucketAccessControl",
  "gcp:storage/objectAccessControl:ObjectAccessControl",
  "gcp:storage/defaultObjectAccessControl:DefaultObjectAccessControl",
]);
const ACL_ROLE_ENTITIES = new Set(["gcp:storage/bucketACL:BucketACL", "gcp:storage/objectACL:ObjectACL", "gcp:storage/defaultObjectACL:DefaultObjectACL"]);
/** Predefined ACLs that open a bucket or object to anyone (any Google account counts as anyone). */
const PUBLIC_PREDEFINED_ACLS = ["publicRead", "publicReadWrite", "authenticatedRead"];
const isPublic = (principal: unknown): principal is string => typeof principal === "string" && (PUBLIC_PRINCIPALS as readonly string[]).includes(principal);
const ANYONE = "that is anyone on the internet; grant it to the user, group or service account that needs it";

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

/** Non-authoritative IAM, nothing public, and no project-wide grant of a role broader than one resource needs. */
export const gcpIamLeastPrivilege = resourcePolicy<Config>(
  {
    name: "gcp-iam-least-privilege",
    description:
      "No authoritative IAM resource (any `*IAMPolicy`/`*IamPolicy` or `*IAMBinding`/`*IamBinding`: it removes grants made outside the program); no grant to `allUsers` or `allAuthenticatedUsers`, as an IAM member or through a Cloud Storage ACL (nor a public predefined ACL); every Cloud Storage bucket with public access prevention enforced and uniform bucket-level access (no object ACL can make an object public); and no project, folder or organization IAMMember granting a basic role, a predefined admin role, or a role that reads every secret or acts as every service account (those are granted on the one secret or account that needs them).",
    severity: "critical",
    enforcementLevel: "mandatory",
    remediationSteps:
      "Use the `*IAMMember`/`*IamMember` resource (one member, one role, nothing else touched), naming a user, group or service account, never `allUsers`/`allAuthenticatedUsers`; give every bucket `publicAccessPrevention: \"enforced\"` and `uniformBucketLevelAccess: true`. Grant `roles/secretmanager.secretAccessor` on the secret (`secretmanager.SecretIamMember`), `roles/iam.serviceAccountUser` on the service account (`serviceaccount.IAMMember`), bucket roles on the bucket, and a custom role with the exact permissions instead of an admin role (ADR 0012, ADR 0022).",
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
    const props = args.props as Obj;
    if (args.type === BUCKET) {
      judge.check(() => {
        if (props.publicAccessPrevention !== "enforced") {
          report(`bucket has publicAccessPrevention ${JSON.stringify(props.publicAccessPrevention ?? "inherited")}: set "enforced" so no grant or ACL can make it public`);
        }
        if (props.uniformBucketLevelAccess !== true) report("bucket lacks uniformBucketLevelAccess: object ACLs could grant access the bucket's IAM does not show");
      });
      return;
    }
    // A member or entity unknown in preview is another resource's output (a service account's email); the
    // public principals are literals, known in every preview.
    if (isIamMember(args.type)) {
      const member = readOr(() => props.member, undefined);
      if (isPublic(member)) report(`grants ${String(readOr(() => props.role, "a role"))} to ${member}: ${ANYONE}`);
    }
    if (ACL_ENTITY.has(args.type)) {
      const entity = readOr(() => props.entity, undefined);
      if (isPublic(entity)) report(`grants ${String(readOr(() => props.role, "a role"))} to ${entity} through a storage ACL: ${ANYONE}`);
    }
    if (ACL_ROLE_ENTITIES.has(args.type)) {
      const pairs = readOr(() => props.roleEntities, undefined);
      for (const pair of Array.isArray(pairs) ? pairs : []) {
        const [role, entity] = readOr(() => String(pair).split(":"), []);
        if (isPublic(entity)) report(`grants ${role} to ${entity} through a storage ACL: ${ANYONE}`);
      }
      const predefined = readOr(() => props.predefinedAcl, undefined);
      if (typeof predefined === "string" && PUBLIC_PREDEFINED_ACLS.includes(predefined)) report(`sets the predefined ACL ${predefined}: ${ANYONE}`);
    }
    const scope = HIERARCHY_MEMBERS[args.type];
    if (scope === undefined) return;
    judge.check(() => {
      const role = props.role;
      if (typeof role === "string" && forbiddenHierarchyRole(role, config.forbiddenRoles)) {
        report(`grants ${role} on the whole ${scope}: grant it on the one resource that needs it, or a narrower role`);
      }
    });
  },
);
