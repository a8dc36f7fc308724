/** Settings every K3s VM shares, servers and agents alike. */
import type * as gcp from "@pulumi/gcp";
import type * as pulumi from "@pulumi/pulumi";

type Scheduling = gcp.types.input.compute.InstanceScheduling & gcp.types.input.compute.InstanceTemplateScheduling;

/** Spot VMs stop when preempted (disks stay); standard VMs live-migrate and restart on failure. */
export function scheduling(spot: boolean): Scheduling {
  return spot
    ? { provisioningModel: "SPOT", preemptible: true, automaticRestart: false, onHostMaintenance: "TERMINATE", instanceTerminationAction: "STOP" }
    : { provisioningModel: "STANDARD", preemptible: false, automaticRestart: true, onHostMaintenance: "MIGRATE" };
}

/** Secure Boot, vTPM and integrity monitoring. */
export const SHIELDED_VM = { enableSecureBoot: true, enableVtpm: true, enableIntegrityMonitoring: true } as const;

/** Scopes are the legacy gate; IAM on the service account decides what the VM may do. */
export const SERVICE_ACCOUNT_SCOPES = ["https://www.googleapis.com/auth/cloud-platform"];

/**
 * The reason for the cloud-platform scope, as a label on every VM that asks for it (the policy
 * pack's `gcp-vm-service-account` requires one). GCP label values: lowercase, digits, - and _.
 */
export const SCOPE_JUSTIFICATION_LABELS = { "cloud-platform-justification": "iam-roles-of-the-node-account-limit-access" } as const;

/**
 * Instance metadata: OS Login (IAM decides who may SSH, no keys in metadata), project-wide SSH keys
 * blocked, and the startup script. Nothing else, and never a secret.
 */
export function nodeMetadata(startupScript: pulumi.Input<string>): pulumi.Input<Record<string, pulumi.Input<string>>> {
  return { "enable-oslogin": "TRUE", "block-project-ssh-keys": "TRUE", "startup-script": startupScript };
}
