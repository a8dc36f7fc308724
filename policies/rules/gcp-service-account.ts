import { isVm, isVmOverride, vmOverrides } from "../lib/gcp";
import type { Obj } from "../lib/k8s";
import { resourcePolicy, type BaseConfig } from "../lib/policy";

interface Config extends BaseConfig {
  justificationLabel: string;
}

const DEFAULT_ACCOUNT = /(-compute@developer\.gserviceaccount\.com|@appspot\.gserviceaccount\.com)$/;
const CLOUD_PLATFORM = ["cloud-platform", "https://www.googleapis.com/auth/cloud-platform"];

/** A dedicated service account on every VM; the broad cloud-platform scope only with a stated reason. */
export const gcpServiceAccount = resourcePolicy<Config>(
  {
    name: "gcp-vm-service-account",
    description:
      "Every VM instance and template runs as a dedicated service account (never the default compute account), and asks for the cloud-platform scope only with a justification label; an InstanceFromTemplate or InstanceFromMachineImage that overrides serviceAccount must too.",
    severity: "high",
    enforcementLevel: "mandatory",
    remediationSteps:
      "Create a service account per role (servers, agents) with only the IAM roles it needs and set `serviceAccount.email` to it. With the cloud-platform scope (IAM then decides), add the label `cloud-platform-justification` saying why (GCP label value: lowercase, digits, - and _).",
    configSchema: {
      properties: {
        justificationLabel: {
          type: "string",
          default: "cloud-platform-justification",
          description: "Label whose non-empty value justifies the cloud-platform scope.",
        },
      },
    },
  },
  (args, judge, report, config) => {
    const props = args.props as Obj;
    if (!isVm(args.type) && !isVmOverride(args.type)) return;
    // Every read of the inputs is inside the check: a block unknown in preview is reported, not thrown past the judge.
    judge.check(() => {
      const overrides = vmOverrides(args.type, props);
      const sa = (overrides ?? props).serviceAccount as Obj | undefined;
      // An override that leaves serviceAccount unset keeps the template's (judged there).
      if (overrides && sa === undefined) return;
      if (!sa) {
        report("has no serviceAccount: it should run as a dedicated, least-privilege service account");
        return;
      }
      judge.check(() => {
        const email = sa.email;
        if (typeof email !== "string" || email === "") report("serviceAccount has no email, so GCE uses the default compute service account");
        // "default" is the Compute Engine API's own name for the default compute service account.
        else if (email === "default" || DEFAULT_ACCOUNT.test(email)) report(`runs as the default service account ${email}`);
      });
      judge.check(() => {
        const scopes = Array.isArray(sa.scopes) ? (sa.scopes as string[]) : [];
        if (!scopes.some((s) => CLOUD_PLATFORM.includes(s))) return;
        const labels = ((overrides ?? props).labels ?? {}) as Record<string, string>;
        const why = labels[config.justificationLabel];
        if (typeof why !== "string" || why === "") report(`asks for the cloud-platform scope without a "${config.justificationLabel}" label`);
      });
    });
  },
);
