/** GCP shapes as the engine sees them (`@pulumi/gcp` inputs, camelCase). */

/**
 * VM-defining resources: instances and the templates managed instance groups create VMs from.
 * (`InstanceFromTemplate` and `InstanceFromMachineImage` take whatever they do not set from their
 * template or machine image; what they do set is an override, judged by `VM_OVERRIDES`.)
 */
export const VM_TYPES: readonly string[] = [
  "gcp:compute/instance:Instance",
  "gcp:compute/instanceTemplate:InstanceTemplate",
  "gcp:compute/regionInstanceTemplate:RegionInstanceTemplate",
];

export const FIREWALL = "gcp:compute/firewall:Firewall";

/** Firewall policy rules (network, regional network, hierarchical): `action`, `direction`, `match.srcIpRanges`, `match.layer4Configs`. */
export const FIREWALL_POLICY_RULES: readonly string[] = [
  "gcp:compute/networkFirewallPolicyRule:NetworkFirewallPolicyRule",
  "gcp:compute/regionNetworkFirewallPolicyRule:RegionNetworkFirewallPolicyRule",
  "gcp:compute/firewallPolicyRule:FirewallPolicyRule",
];

/** Firewall policies created with their rules (`rules[]`, each shaped like a firewall policy rule). */
export const FIREWALL_POLICIES_WITH_RULES: readonly string[] = [
  "gcp:compute/networkFirewallPolicyWithRules:NetworkFirewallPolicyWithRules",
  "gcp:compute/regionNetworkFirewallPolicyWithRules:RegionNetworkFirewallPolicyWithRules",
  "gcp:compute/firewallPolicyWithRules:FirewallPolicyWithRules",
];

export const isVm = (type: string): boolean => VM_TYPES.includes(type);

/**
 * Resources that override some VM fields of a source: an `InstanceFromTemplate` or an
 * `InstanceFromMachineImage` (any Instance field, over its template's or machine image's), a managed
 * instance group's `allInstancesConfig` (metadata and labels for every VM it makes) and a per-instance
 * config's `preservedState` (stateful metadata, and external IPs, for the one VM it names: they win over
 * the template's). A field they leave unset is the source's; one they set must pass the same checks.
 */
export const INSTANCE_FROM_TEMPLATE = "gcp:compute/instanceFromTemplate:InstanceFromTemplate";
export const INSTANCE_FROM_MACHINE_IMAGE = "gcp:compute/instanceFromMachineImage:InstanceFromMachineImage";
/** VMs made from a source (template, machine image) whose own Instance fields, set, replace the source's. */
export const INSTANCES_FROM_SOURCE: readonly string[] = [INSTANCE_FROM_TEMPLATE, INSTANCE_FROM_MACHINE_IMAGE];
/** A managed instance group's stateful configuration of one VM (`preservedState`: metadata, disks, internal and external IPs). */
export const PER_INSTANCE_CONFIG = "gcp:compute/perInstanceConfig:PerInstanceConfig";
export const REGION_PER_INSTANCE_CONFIG = "gcp:compute/regionPerInstanceConfig:RegionPerInstanceConfig";
export const VM_OVERRIDES: Readonly<Record<string, string>> = {
  [INSTANCE_FROM_TEMPLATE]: "",
  [INSTANCE_FROM_MACHINE_IMAGE]: "",
  "gcp:compute/instanceGroupManager:InstanceGroupManager": "allInstancesConfig",
  "gcp:compute/regionInstanceGroupManager:RegionInstanceGroupManager": "allInstancesConfig",
  [PER_INSTANCE_CONFIG]: "preservedState",
  [REGION_PER_INSTANCE_CONFIG]: "preservedState",
};

export const isVmOverride = (type: string): boolean => Object.hasOwn(VM_OVERRIDES, type);

/** The VM fields a resource of {@link VM_OVERRIDES} sets (its own inputs or its `allInstancesConfig`). */
export function vmOverrides(type: string, props: Record<string, unknown>): Record<string, unknown> | undefined {
  const at = VM_OVERRIDES[type];
  if (at === undefined) return undefined;
  const node = at === "" ? props : props[at];
  return node && typeof node === "object" ? (node as Record<string, unknown>) : {};
}

/**
 * `true` for the values the guest agent reads as on: it parses metadata flags such as
 * `enable-oslogin` with Go's strconv.ParseBool, so "yes" or " TRUE " do not count (the agent then
 * falls back to the project's setting) while "t" does.
 */
export const metadataOn = (v: unknown): boolean => typeof v === "string" && ["1", "t", "T", "TRUE", "true", "True"].includes(v);
