/** GCP shapes as the engine sees them (`@pulumi/gcp` inputs, camelCase). */

/**
 * VM-defining resources: instances and the templates managed instance groups create VMs from.
 * (`InstanceFromTemplate` only overrides its template, which is judged as a template.)
 */
export const VM_TYPES: readonly string[] = [
  "gcp:compute/instance:Instance",
  "gcp:compute/instanceTemplate:InstanceTemplate",
  "gcp:compute/regionInstanceTemplate:RegionInstanceTemplate",
];

export const FIREWALL = "gcp:compute/firewall:Firewall";

export const isVm = (type: string): boolean => VM_TYPES.includes(type);

/** `true` for the metadata flag forms GCE accepts as on. */
export const metadataOn = (v: unknown): boolean => typeof v === "string" && ["true", "1", "yes", "y"].includes(v.trim().toLowerCase());
