/**
 * The dated price table and machine table of the cloud layer: the one place that knows what a
 * machine type is (vCPUs, memory) and what it costs. The config schema validates machine types
 * against it, the offline plan prices every stack from it (`cost-estimate.ts`) and the capacity
 * figures of the cluster layer (`components/cluster/capacity.ts`) read the shapes from it.
 *
 * Prices are list prices in USD per hour (or per GiB-month), without discounts or taxes. Spot
 * prices change up to once every 30 days: refresh this table (and its date) before relying on it.
 */

/** The day the catalogue snapshot below was taken. */
export const PRICE_TABLE_DATE = "2025-03-06";

/** Where the numbers come from. */
export const PRICE_SOURCES = [
  "Cloud Billing catalogue snapshot of 2025-03-06 as published in Cyclenerd/google-cloud-pricing-cost-calculator pricing.yml (machines: hour, hour_spot)",
  "https://cloud.google.com/compute/vm-instance-pricing (T2D: $0.027502 per vCPU-hour + $0.003686 per GiB-hour on demand)",
  "https://cloud.google.com/spot-vms/pricing (Spot prices: 60-91% off, revised at most every 30 days)",
  "https://cloud.google.com/compute/disks-image-pricing, https://cloud.google.com/vpc/network-pricing (load balancing, Cloud NAT, IP addresses)",
  "https://cloud.google.com/secret-manager/pricing, https://cloud.google.com/storage/pricing",
] as const;

/** Hours in the billing month every monthly figure uses. */
export const HOURS_PER_MONTH = 730;

/** The shape of a machine type as the kubelet sees it. */
export interface MachineShape {
  /** vCPUs the guest (and so the kubelet) sees. Shared-core E2 types show 2 but guarantee a fraction. */
  vcpus: number;
  /** Guaranteed share of those vCPUs for shared-core types (1 = dedicated). */
  cpuShare: number;
  /** Memory in GiB (GCE's "GB" is 2^30 bytes). */
  memoryGiB: number;
}

/**
 * Machine types Titanium supports (x86-64 only: the OS image and the K3s binary assume it).
 * A type missing here is rejected by the config schema.
 */
export const MACHINE_TYPES = {
  "e2-small": { vcpus: 2, cpuShare: 0.25, memoryGiB: 2 },
  "e2-medium": { vcpus: 2, cpuShare: 0.5, memoryGiB: 4 },
  "e2-standard-2": { vcpus: 2, cpuShare: 1, memoryGiB: 8 },
  "e2-standard-4": { vcpus: 4, cpuShare: 1, memoryGiB: 16 },
  // T2D (AMD Milan, one vCPU = one physical core, no SMT): the cheapest Spot memory in the table.
  "t2d-standard-1": { vcpus: 1, cpuShare: 1, memoryGiB: 4 },
  "t2d-standard-2": { vcpus: 2, cpuShare: 1, memoryGiB: 8 },
  "t2d-standard-4": { vcpus: 4, cpuShare: 1, memoryGiB: 16 },
} as const satisfies Record<string, MachineShape>;

export type MachineTypeName = keyof typeof MACHINE_TYPES;
export const MACHINE_TYPE_NAMES = Object.keys(MACHINE_TYPES) as MachineTypeName[];

export type DiskType = "pd-standard" | "pd-balanced" | "pd-ssd";
export const DISK_TYPES: readonly DiskType[] = ["pd-standard", "pd-balanced", "pd-ssd"];
/** The smallest zonal Persistent Disk Compute Engine creates, of any of these types (GiB). */
export const PD_MIN_SIZE_GI = 10;

/** What one region charges for the things Titanium creates. */
export interface RegionPrices {
  /** $/hour per machine type, on demand and Spot. */
  machines: Record<MachineTypeName, { standard: number; spot: number }>;
  /** $/GiB-month per persistent disk type. */
  disks: Record<DiskType, number>;
  /** Forwarding rules (external and internal passthrough share it): flat $/hour for the first 5, then $/hour each. */
  forwardingRules: { firstFiveHourly: number; extraHourly: number };
  /** Data processed by a passthrough Network Load Balancer, $/GiB. */
  lbDataPerGiB: number;
  /** Cloud NAT: $/hour per VM using the gateway (capped), $/GiB processed, $/hour per NAT IP. */
  nat: { perVmHourly: number; maxHourly: number; dataPerGiB: number; ipHourly: number };
  /** A reserved external IP that nothing uses, $/hour (in use on a forwarding rule: free). */
  unusedStaticIpHourly: number;
  /** Secret Manager: $ per active version per month beyond the free ones. */
  secretVersionMonthly: number;
  freeSecretVersions: number;
  /** Cloud Storage, standard class, regional, $/GiB-month. */
  storagePerGiBMonth: number;
}

/** us-central1 (Iowa), where prod runs. */
const US_CENTRAL1: RegionPrices = {
  machines: {
    "e2-small": { standard: 0.016753, spot: 0.006698 },
    "e2-medium": { standard: 0.033506, spot: 0.013396 },
    "e2-standard-2": { standard: 0.067011, spot: 0.026792 },
    "e2-standard-4": { standard: 0.134023, spot: 0.053584 },
    "t2d-standard-1": { standard: 0.042246, spot: 0.005872 },
    "t2d-standard-2": { standard: 0.084492, spot: 0.011744 },
    "t2d-standard-4": { standard: 0.168984, spot: 0.023488 },
  },
  disks: { "pd-standard": 0.04, "pd-balanced": 0.1, "pd-ssd": 0.17 },
  forwardingRules: { firstFiveHourly: 0.025, extraHourly: 0.01 },
  lbDataPerGiB: 0.008,
  nat: { perVmHourly: 0.0014, maxHourly: 0.044, dataPerGiB: 0.045, ipHourly: 0.005 },
  unusedStaticIpHourly: 0.01,
  secretVersionMonthly: 0.06,
  freeSecretVersions: 6,
  storagePerGiBMonth: 0.02,
};

/** `machines` with other Spot prices (the on-demand ones unchanged). */
function withSpot(machines: RegionPrices["machines"], spot: Record<MachineTypeName, number>): RegionPrices["machines"] {
  return Object.fromEntries(Object.entries(machines).map(([type, p]) => [type, { ...p, spot: spot[type as MachineTypeName] }])) as RegionPrices["machines"];
}

export const REGION_PRICES: Record<string, RegionPrices> = {
  "us-central1": US_CENTRAL1,
  // us-east5 (Columbus), where dev runs (ADR 0013): the same list prices as us-central1 in the snapshot
  // (on-demand machines, pd-standard/balanced/ssd, NAT, IPs, Cloud Storage; forwarding rules and
  // Secret Manager are priced alike across US regions) except Spot prices
  // (T2D 35 %, E2 54 % below us-central1's).
  "us-east5": {
    ...US_CENTRAL1,
    machines: withSpot(US_CENTRAL1.machines, {
      "e2-small": 0.003113,
      "e2-medium": 0.006226,
      "e2-standard-2": 0.012452,
      "e2-standard-4": 0.024904,
      "t2d-standard-1": 0.003808,
      "t2d-standard-2": 0.007616,
      "t2d-standard-4": 0.015232,
    }),
  },
};

/**
 * Usage the estimate assumes (the bill depends on traffic; the program cannot know it).
 * Stated in every cost report so a reader can scale them.
 */
export const USAGE_ASSUMPTIONS = {
  /** Image pulls, package updates and alert webhooks leaving through Cloud NAT, per VM. */
  natGiBPerVmMonth: 2.5,
  /** Client traffic through the ingress load balancer. */
  ingressGiBPerMonth: 5,
  /** Compressed PostgreSQL dump written to the backup bucket each day. */
  backupGiBPerDay: 0.1,
} as const;

/** The price table of a region, or an error naming the regions the table knows. */
export function regionPrices(region: string): RegionPrices {
  const prices = REGION_PRICES[region];
  if (!prices) {
    throw new Error(
      `no prices for region "${region}" in components/gcp/pricing.ts (known: ${Object.keys(REGION_PRICES).join(", ")}); add the region's prices there`,
    );
  }
  return prices;
}

export function isMachineType(name: string): name is MachineTypeName {
  return Object.hasOwn(MACHINE_TYPES, name);
}
