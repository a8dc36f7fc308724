/**
 * Monthly cost of a stack, priced from what the program registers (the offline plan's resource
 * list) with the dated table in `pricing.ts`: VMs by machine type and provisioning model, disks
 * (the VMs', and those the PD CSI driver will create for the claims the program registers),
 * forwarding rules, load balancer and NAT data, NAT and IP addresses, Secret Manager versions and
 * backup storage. Usage-dependent items use the stated {@link USAGE_ASSUMPTIONS}.
 */
import { UNKNOWN } from "../../stacks/harness";
import { CHARTS_BY_NAME, getPath, replicasOf } from "../platform/chart-workloads";
import { PD_CSI_DRIVER_NAME } from "./names";
import {
  DISK_TYPES,
  HOURS_PER_MONTH,
  PRICE_TABLE_DATE,
  regionPrices,
  USAGE_ASSUMPTIONS,
  type DiskType,
  type MachineTypeName,
  type RegionPrices,
} from "./pricing";

/** The part of a recorded resource the estimate reads (see `stacks/harness.ts`). */
export interface PricedResource {
  type: string;
  urn: string;
  inputs: Record<string, unknown>;
  dependsOn: string[];
}

export interface CostLine {
  category: "compute" | "disks" | "load balancing" | "cloud nat" | "ip addresses" | "secret manager" | "storage";
  item: string;
  monthlyUsd: number;
}

export interface CostEstimate {
  region: string;
  priceDate: string;
  lines: CostLine[];
  totalUsd: number;
  assumptions: string[];
}

const T = {
  provider: "pulumi:providers:gcp",
  instance: "gcp:compute/instance:Instance",
  template: "gcp:compute/instanceTemplate:InstanceTemplate",
  group: "gcp:compute/instanceGroupManager:InstanceGroupManager",
  disk: "gcp:compute/disk:Disk",
  rule: "gcp:compute/forwardingRule:ForwardingRule",
  address: "gcp:compute/address:Address",
  nat: "gcp:compute/routerNat:RouterNat",
  secretVersion: "gcp:secretmanager/secretVersion:SecretVersion",
  bucket: "gcp:storage/bucket:Bucket",
  claim: "kubernetes:core/v1:PersistentVolumeClaim",
  statefulSet: "kubernetes:apps/v1:StatefulSet",
  storageClass: "kubernetes:storage.k8s.io/v1:StorageClass",
  release: "kubernetes:helm.sh/v3:Release",
} as const;

/** Ports one NAT IP offers (64512 usable source ports) and the default minimum per VM. */
const NAT_PORTS_PER_IP = 64_512;
const NAT_DEFAULT_MIN_PORTS_PER_VM = 64;

type Inputs = Record<string, unknown>;
const obj = (v: unknown): Inputs => (v && typeof v === "object" ? (v as Inputs) : {});
const num = (v: unknown, what: string): number => {
  if (typeof v !== "number") throw new Error(`cost estimate: ${what} is not a known number (${JSON.stringify(v)})`);
  return v;
};
const money = (n: number) => Math.round(n * 100) / 100;

interface Vm {
  machineType: MachineTypeName;
  spot: boolean;
  count: number;
  disks: { type: DiskType; sizeGb: number }[];
}

function vmsOf(resources: PricedResource[]): Vm[] {
  const vms: Vm[] = [];
  for (const r of resources.filter((x) => x.type === T.instance)) {
    const boot = obj(obj(r.inputs.bootDisk).initializeParams);
    vms.push({
      machineType: r.inputs.machineType as MachineTypeName,
      spot: obj(r.inputs.scheduling).provisioningModel === "SPOT",
      count: 1,
      disks: [{ type: (boot.type as DiskType | undefined) ?? "pd-balanced", sizeGb: num(boot.size, `boot disk size of ${r.urn}`) }],
    });
  }
  for (const group of resources.filter((x) => x.type === T.group)) {
    const template = resources.find((x) => x.type === T.template && group.dependsOn.includes(x.urn));
    if (!template) throw new Error(`cost estimate: no instance template found for ${group.urn}`);
    const disks = ((template.inputs.disks as Inputs[] | undefined) ?? []).map((d) => ({
      type: (d.diskType as DiskType | undefined) ?? "pd-balanced",
      sizeGb: num(d.diskSizeGb, `disk size of ${template.urn}`),
    }));
    vms.push({
      machineType: template.inputs.machineType as MachineTypeName,
      spot: obj(template.inputs.scheduling).provisioningModel === "SPOT",
      count: num(group.inputs.targetSize, `target size of ${group.urn}`),
      disks,
    });
  }
  return vms;
}

function computeLines(vms: Vm[], prices: RegionPrices): CostLine[] {
  const byKind = new Map<string, { vm: Vm; count: number }>();
  for (const vm of vms) {
    const key = `${vm.machineType}|${vm.spot}`;
    const entry = byKind.get(key) ?? { vm, count: 0 };
    entry.count += vm.count;
    byKind.set(key, entry);
  }
  return [...byKind.values()].map(({ vm, count }) => {
    const price = prices.machines[vm.machineType];
    if (!price) throw new Error(`cost estimate: no price for machine type "${vm.machineType}"`);
    const hourly = vm.spot ? price.spot : price.standard;
    return {
      category: "compute",
      item: `${count} × ${vm.machineType} ${vm.spot ? "Spot" : "standard"} ($${hourly}/h)`,
      monthlyUsd: count * hourly * HOURS_PER_MONTH,
    };
  });
}

function diskLines(vms: Vm[], resources: PricedResource[], prices: RegionPrices): CostLine[] {
  const gbByType = new Map<DiskType, number>();
  const add = (type: DiskType, gb: number) => gbByType.set(type, (gbByType.get(type) ?? 0) + gb);
  for (const vm of vms) for (const d of vm.disks) add(d.type, d.sizeGb * vm.count);
  for (const d of resources.filter((x) => x.type === T.disk)) {
    add((d.inputs.type as DiskType | undefined) ?? "pd-standard", num(d.inputs.size, `size of ${d.urn}`));
  }
  return [...gbByType.entries()].map(([type, gb]) => ({
    category: "disks",
    item: `${gb} GiB ${type} ($${prices.disks[type]}/GiB-month)`,
    monthlyUsd: gb * prices.disks[type],
  }));
}

/** A Kubernetes quantity of bytes ("10Gi", "500M", "1073741824") in GiB, rounded up as the PD CSI driver sizes disks. */
function quantityGiB(q: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|K|M|G|T)?$/.exec(q);
  if (!m) throw new Error(`cost estimate: ${what} is not a storage quantity (${JSON.stringify(q)})`);
  const unit: Record<string, number> = { "": 1, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, K: 1e3, M: 1e6, G: 1e9, T: 1e12 };
  return Math.ceil((Number(m[1]) * unit[m[2] ?? ""]!) / 2 ** 30);
}

/**
 * The Persistent Disks the PD CSI driver will create: one per PersistentVolumeClaim (and per
 * StatefulSet replica and volume claim template) on a StorageClass whose provisioner is the
 * driver (and per chart workload whose volume the Release values put on such a class), sized from
 * the claim, typed from the class's `type` parameter (the driver's default,
 * pd-standard, when absent). They are not Pulumi resources, so nothing else prices them. Claims on
 * other classes (K3s' `local-path`, the default for the charts' volumes) live on the VMs' boot disks.
 */
function claimedDiskLines(resources: PricedResource[], prices: RegionPrices): CostLine[] {
  const classes = resources.filter((r) => r.type === T.storageClass && r.inputs.provisioner === PD_CSI_DRIVER_NAME);
  const classOf = (name: unknown, dependsOn: string[]) =>
    classes.find((c) => obj(c.inputs.metadata).name === name) ??
    // The claim names the class through its output: when that is not known yet, its dependency says which.
    (typeof name === "string" && name !== UNKNOWN ? undefined : classes.find((c) => dependsOn.includes(c.urn)));
  const claims: { id: string; spec: Inputs; count: number; dependsOn: string[] }[] = [];
  for (const r of resources.filter((x) => x.type === T.claim)) {
    const md = obj(r.inputs.metadata);
    claims.push({ id: `${String(md.namespace ?? "default")}/${String(md.name ?? r.urn)}`, spec: obj(r.inputs.spec), count: 1, dependsOn: r.dependsOn });
  }
  for (const r of resources.filter((x) => x.type === T.statefulSet)) {
    const md = obj(r.inputs.metadata);
    const spec = obj(r.inputs.spec);
    for (const t of (spec.volumeClaimTemplates as Inputs[] | undefined) ?? []) {
      const id = `${String(md.namespace ?? "default")}/${String(obj(t.metadata).name)}-${String(md.name)}-*`;
      claims.push({ id, spec: obj(t.spec), count: typeof spec.replicas === "number" ? spec.replicas : 1, dependsOn: r.dependsOn });
    }
  }
  // The charts' own claims (volumeClaimTemplates the charts render), read from the Release values.
  for (const r of resources.filter((x) => x.type === T.release)) {
    const chart = CHARTS_BY_NAME[String(r.inputs.chart)];
    const values = r.inputs.values;
    for (const [workload, w] of Object.entries(chart?.workloads ?? {})) {
      if (!w.volume || typeof w.pods !== "object") continue;
      const spec = { storageClassName: getPath(values, w.volume.storageClass), resources: { requests: { storage: getPath(values, w.volume.size) } } };
      claims.push({ id: `${chart!.chart}/${workload}`, spec, count: replicasOf(values, w.pods), dependsOn: r.dependsOn });
    }
  }
  const byType = new Map<DiskType, { gib: number; claims: string[] }>();
  for (const c of claims) {
    const sc = classOf(c.spec.storageClassName, c.dependsOn);
    if (!sc) continue;
    const type = (obj(sc.inputs.parameters).type as DiskType | undefined) ?? "pd-standard";
    if (!DISK_TYPES.includes(type)) throw new Error(`cost estimate: no price for disk type "${type}" of StorageClass ${String(obj(sc.inputs.metadata).name)}`);
    const size = quantityGiB(String(obj(obj(c.spec.resources).requests).storage), `the storage request of claim ${c.id}`);
    const entry = byType.get(type) ?? { gib: 0, claims: [] };
    entry.gib += size * c.count;
    entry.claims.push(c.count > 1 ? `${c.id} ×${c.count}` : c.id);
    byType.set(type, entry);
  }
  return [...byType.entries()].map(([type, { gib, claims: ids }]) => ({
    category: "disks",
    item: `${gib} GiB ${type} for claims the PD CSI driver provisions: ${ids.join(", ")} ($${prices.disks[type]}/GiB-month)`,
    monthlyUsd: gib * prices.disks[type],
  }));
}

/** Prices the resources a program run registered. Throws when the region or a machine type has no price. */
export function estimateMonthlyCost(resources: PricedResource[]): CostEstimate {
  const provider = resources.find((r) => r.type === T.provider);
  const region = provider?.inputs.region;
  if (typeof region !== "string") throw new Error("cost estimate: the gcp provider has no region");
  const prices = regionPrices(region);
  const lines: CostLine[] = [];
  const vms = vmsOf(resources);
  const vmCount = vms.reduce((n, vm) => n + vm.count, 0);

  lines.push(...computeLines(vms, prices), ...diskLines(vms, resources, prices), ...claimedDiskLines(resources, prices));

  const rules = resources.filter((r) => r.type === T.rule);
  if (rules.length > 0) {
    const extra = Math.max(0, rules.length - 5);
    lines.push({
      category: "load balancing",
      item: `${rules.length} forwarding rule(s): flat rate for the first 5${extra ? ` + ${extra} × $${prices.forwardingRules.extraHourly}/h` : ""}`,
      monthlyUsd: (prices.forwardingRules.firstFiveHourly + extra * prices.forwardingRules.extraHourly) * HOURS_PER_MONTH,
    });
    const external = rules.filter((r) => r.inputs.loadBalancingScheme === "EXTERNAL").length;
    if (external > 0) {
      lines.push({
        category: "load balancing",
        item: `${USAGE_ASSUMPTIONS.ingressGiBPerMonth} GiB processed by the ingress load balancer ($${prices.lbDataPerGiB}/GiB)`,
        monthlyUsd: USAGE_ASSUMPTIONS.ingressGiBPerMonth * prices.lbDataPerGiB,
      });
    }
  }

  for (const nat of resources.filter((r) => r.type === T.nat)) {
    const minPorts = typeof nat.inputs.minPortsPerVm === "number" ? nat.inputs.minPortsPerVm : NAT_DEFAULT_MIN_PORTS_PER_VM;
    const natIps =
      nat.inputs.natIpAllocateOption === "MANUAL_ONLY"
        ? ((nat.inputs.natIps as unknown[] | undefined) ?? []).length
        : Math.max(1, Math.ceil((vmCount * minPorts) / NAT_PORTS_PER_IP));
    const gatewayHourly = Math.min(vmCount * prices.nat.perVmHourly, prices.nat.maxHourly);
    const dataGiB = USAGE_ASSUMPTIONS.natGiBPerVmMonth * vmCount;
    lines.push(
      { category: "cloud nat", item: `gateway for ${vmCount} VM(s) ($${prices.nat.perVmHourly}/VM-hour)`, monthlyUsd: gatewayHourly * HOURS_PER_MONTH },
      { category: "cloud nat", item: `${natIps} NAT IP address(es) ($${prices.nat.ipHourly}/h)`, monthlyUsd: natIps * prices.nat.ipHourly * HOURS_PER_MONTH },
      { category: "cloud nat", item: `${dataGiB} GiB processed ($${prices.nat.dataPerGiB}/GiB)`, monthlyUsd: dataGiB * prices.nat.dataPerGiB },
    );
  }

  const externalAddresses = resources.filter((r) => r.type === T.address && r.inputs.addressType === "EXTERNAL");
  const used = externalAddresses.filter((a) => rules.some((rule) => rule.dependsOn.includes(a.urn)));
  const unused = externalAddresses.length - used.length;
  if (externalAddresses.length > 0) {
    lines.push({
      category: "ip addresses",
      item: `${used.length} static IP(s) on forwarding rules (no charge)${unused ? `, ${unused} reserved unused ($${prices.unusedStaticIpHourly}/h)` : ""}`,
      monthlyUsd: unused * prices.unusedStaticIpHourly * HOURS_PER_MONTH,
    });
  }

  const versions = resources.filter((r) => r.type === T.secretVersion).length;
  if (versions > 0) {
    const billed = Math.max(0, versions - prices.freeSecretVersions);
    lines.push({
      category: "secret manager",
      item: `${versions} active secret versions (${prices.freeSecretVersions} free, $${prices.secretVersionMonthly} each beyond)`,
      monthlyUsd: billed * prices.secretVersionMonthly,
    });
  }

  for (const bucket of resources.filter((r) => r.type === T.bucket)) {
    const rules = (bucket.inputs.lifecycleRules as Inputs[] | undefined) ?? [];
    const retention = rules.map((r) => obj(r.condition).age).find((age): age is number => typeof age === "number") ?? 30;
    // Soft-deleted objects (the lifecycle's deletions included) are billed until the policy lets them go.
    const softDeleteSeconds = obj(bucket.inputs.softDeletePolicy).retentionDurationSeconds;
    const softDeleteDays = typeof softDeleteSeconds === "number" ? softDeleteSeconds / 86_400 : 7; // GCS' default policy: 7 days
    const days = retention + softDeleteDays;
    const gib = days * USAGE_ASSUMPTIONS.backupGiBPerDay;
    lines.push({
      category: "storage",
      item: `${money(gib)} GiB of backups (${retention} days + ${softDeleteDays} soft-deleted × ${USAGE_ASSUMPTIONS.backupGiBPerDay} GiB/day, $${prices.storagePerGiBMonth}/GiB-month)`,
      monthlyUsd: gib * prices.storagePerGiBMonth,
    });
  }

  const rounded = lines.map((l) => ({ ...l, monthlyUsd: money(l.monthlyUsd) }));
  return {
    region,
    priceDate: PRICE_TABLE_DATE,
    lines: rounded,
    totalUsd: money(rounded.reduce((n, l) => n + l.monthlyUsd, 0)),
    assumptions: [
      `${HOURS_PER_MONTH} hours a month, list prices of ${PRICE_TABLE_DATE} (components/gcp/pricing.ts), no discounts or taxes`,
      `Cloud NAT: ${USAGE_ASSUMPTIONS.natGiBPerVmMonth} GiB per VM a month (images, updates); ingress: ${USAGE_ASSUMPTIONS.ingressGiBPerMonth} GiB a month`,
      "not included: internet egress, Cloud Logging/Monitoring beyond the free allotment, the Pulumi state bucket and KMS key",
    ],
  };
}

/** The offline plan's cost report (registered in `stacks/plan-sections.ts`). */
export function costSection(run: { resources: PricedResource[] }): { title: string; lines: string[]; blocking: boolean; data?: unknown } {
  let estimate: CostEstimate;
  try {
    estimate = estimateMonthlyCost(run.resources);
  } catch (err) {
    return { title: "Estimated monthly cost", lines: [`not available: ${(err as Error).message}`], blocking: false };
  }
  const width = Math.max(...estimate.lines.map((l) => l.category.length));
  return {
    title: `Estimated monthly cost (USD, ${estimate.region}, prices of ${estimate.priceDate})`,
    lines: [
      ...estimate.lines.map((l) => `${l.category.padEnd(width)}  ${`$${l.monthlyUsd.toFixed(2)}`.padStart(9)}  ${l.item}`),
      `${"total".padEnd(width)}  ${`$${estimate.totalUsd.toFixed(2)}`.padStart(9)}`,
      ...estimate.assumptions.map((a) => `assumes: ${a}`),
    ],
    blocking: false,
    data: estimate,
  };
}
