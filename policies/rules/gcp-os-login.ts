import { isVm, isVmOverride, metadataOn, vmOverrides } from "../lib/gcp";
import type { Obj } from "../lib/k8s";
import { resourcePolicy } from "../lib/policy";

/** OS Login on every VM: SSH access follows IAM, and metadata SSH keys are ignored. */
export const gcpOsLogin = resourcePolicy(
  {
    name: "gcp-os-login",
    description: "Every VM instance and template sets metadata enable-oslogin to TRUE, and nothing that overrides a template or machine image (InstanceFromTemplate, InstanceFromMachineImage, a managed instance group's allInstancesConfig, a per-instance config's preservedState metadata) turns it off.",
    severity: "high",
    enforcementLevel: "mandatory",
    remediationSteps:
      "Set `metadata: { \"enable-oslogin\": \"TRUE\", \"block-project-ssh-keys\": \"TRUE\" }` on the instance or template, and grant `roles/compute.osAdminLogin` to operators instead of distributing SSH keys.",
    configSchema: { properties: {} },
  },
  (args, judge, report) => {
    const props = args.props as Obj;
    if (isVmOverride(args.type)) {
      // Unset: the template's value (judged there); set: it must be on too. (All reads inside the check:
      // an `allInstancesConfig` unknown in preview is reported, not thrown past the judge.)
      judge.check(() => {
        const overrides = vmOverrides(args.type, props)!;
        const value = ((overrides.metadata ?? {}) as Obj)["enable-oslogin"];
        if (value !== undefined && !metadataOn(value)) report(`overrides metadata enable-oslogin with ${String(value)} for the VMs it makes`);
      });
      return;
    }
    if (!isVm(args.type)) return;
    judge.check(() => {
      const metadata = (props.metadata ?? {}) as Obj;
      const value = metadata["enable-oslogin"];
      if (!metadataOn(value)) report(value === undefined ? "does not set metadata enable-oslogin" : `sets metadata enable-oslogin to ${String(value)}`);
    });
  },
);
