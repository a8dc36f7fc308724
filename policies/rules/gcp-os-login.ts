import { isVm, metadataOn } from "../lib/gcp";
import type { Obj } from "../lib/k8s";
import { resourcePolicy } from "../lib/policy";

/** OS Login on every VM: SSH access follows IAM, and metadata SSH keys are ignored. */
export const gcpOsLogin = resourcePolicy(
  {
    name: "gcp-os-login",
    description: "Every VM instance and template sets metadata enable-oslogin to TRUE.",
    severity: "high",
    enforcementLevel: "mandatory",
    remediationSteps:
      "Set `metadata: { \"enable-oslogin\": \"TRUE\", \"block-project-ssh-keys\": \"TRUE\" }` on the instance or template, and grant `roles/compute.osAdminLogin` to operators instead of distributing SSH keys.",
    configSchema: { properties: {} },
  },
  (args, judge, report) => {
    if (!isVm(args.type)) return;
    const props = args.props as Obj;
    judge.check(() => {
      const metadata = (props.metadata ?? {}) as Obj;
      const value = metadata["enable-oslogin"];
      if (!metadataOn(value)) report(value === undefined ? "does not set metadata enable-oslogin" : `sets metadata enable-oslogin to ${String(value)}`);
    });
  },
);
