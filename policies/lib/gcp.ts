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

/**
 * `true` for the values the guest agent reads as on: it parses metadata flags such as
 * `enable-oslogin` with Go's strconv.ParseBool, so "yes" or " TRUE " do not count (the agent then
 * falls back to the project's setting) while "t" does.
 */
export const metadataOn = (v: unknown): boolean => typeof v === "string" && ["1", "t", "T", "TRUE", "true", "True"].includes(v);
