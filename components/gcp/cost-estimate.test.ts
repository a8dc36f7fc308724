import { readFileSync } from "node:fs";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { type ProgramRun, REPO_ROOT, configuredRun } from "../../stacks/harness";
import { planSections } from "../../stacks/plan-sections";
import { costSection, estimateMonthlyCost, type PricedResource } from "./cost-estimate";
import { HOURS_PER_MONTH, PRICE_TABLE_DATE, REGION_PRICES } from "./pricing";

let dev: ProgramRun;
let prod: ProgramRun;
beforeAll(async () => {
  dev = await configuredRun("dev");
  prod = await configuredRun("prod");
});

const line = (estimate: ReturnType<typeof estimateMonthlyCost>, re: RegExp) => estimate.lines.find((l) => re.test(l.item));
/** dev's monthly budget (issue 4; the original's was $50). */
const DEV_BUDGET_USD = 35;

describe("monthly cost estimate", () => {
  it("prices dev under its $35 budget in us-east5 (it would not be in prod's region), and prices prod, from the resources each stack registers", () => {
    const d = estimateMonthlyCost(dev.resources);
    expect(d.region).toBe("us-east5");
    // The disk the PD CSI driver creates for the database's claim: 10 GiB pd-balanced, the smallest PD.
    const database = line(d, /^10 GiB pd-balanced for claims the PD CSI driver provisions: titanium\/postgres-data /);
    expect(database?.monthlyUsd).toBe(1);
    // Boot disks: 16 GB server + 15 GB agent, what the config's disk check asks for (ADR 0013).
    const boot = line(d, /^31 GiB pd-balanced \(/);
    expect(boot?.monthlyUsd).toBe(3.1);
    const compute = line(d, /^2 × t2d-standard-1 Spot \(\$0\.003808\/h\)/);
    expect(compute?.monthlyUsd).toBe(5.56);
    expect(d.totalUsd).toBe(34.5);
    expect(d.totalUsd).toBeLessThan(DEV_BUDGET_USD);
    // The same machines at us-central1's Spot price would break the budget (why dev runs in us-east5).
    const centralSpot = REGION_PRICES["us-central1"]!.machines["t2d-standard-1"].spot;
    expect(d.totalUsd - compute!.monthlyUsd + 2 * centralSpot * HOURS_PER_MONTH).toBeGreaterThan(DEV_BUDGET_USD);
    expect(line(d, /forwarding rule/)?.monthlyUsd).toBe(18.25);
    expect(line(d, /^16 active secret versions/)?.monthlyUsd).toBe(0.6);
    const p = estimateMonthlyCost(prod.resources);
    expect(line(p, /^3 × e2-medium standard/)?.monthlyUsd).toBe(73.38);
    expect(line(p, /^3 × e2-standard-2 standard/)?.monthlyUsd).toBe(146.75);
    expect(line(p, /^60 GiB pd-ssd/)?.monthlyUsd).toBe(10.2);
    expect(line(p, /gateway for 6 VM/)?.monthlyUsd).toBe(6.13);
    // The database's 20 GiB, and the observability volumes the charts claim on Persistent Disks in prod
    // (Prometheus 30, Grafana 10, Loki 30), priced from the Release values.
    expect(line(p, /^90 GiB pd-balanced for claims the PD CSI driver provisions: titanium\/postgres-data, kube-prometheus-stack\/prometheus, kube-prometheus-stack\/grafana, loki\/singleBinary /)?.monthlyUsd).toBe(9);
    expect(p.totalUsd).toBe(289.75);
    expect(p.totalUsd).toBeGreaterThan(d.totalUsd);
    expect(d.priceDate).toBe(PRICE_TABLE_DATE);
  });

  it("prices every category the issue names, with exact arithmetic", () => {
    const urn = (n: string) => `urn:${n}`;
    const r = (type: string, name: string, inputs: Record<string, unknown>, dependsOn: string[] = []): PricedResource => ({ type, urn: urn(name), inputs, dependsOn });
    const resources: PricedResource[] = [
      r("pulumi:providers:gcp", "gcp", { region: "us-central1" }),
      r("gcp:compute/instance:Instance", "s0", { machineType: "e2-medium", scheduling: { provisioningModel: "STANDARD" }, bootDisk: { initializeParams: { size: 20, type: "pd-standard" } } }),
      r("gcp:compute/instanceTemplate:InstanceTemplate", "t", { machineType: "t2d-standard-2", scheduling: { provisioningModel: "SPOT" }, disks: [{ boot: true, diskSizeGb: 30, diskType: "pd-balanced" }] }),
      r("gcp:compute/instanceGroupManager:InstanceGroupManager", "g", { targetSize: 4 }, [urn("t")]),
      r("gcp:compute/disk:Disk", "d", { size: 50, type: "pd-ssd" }),
      r("gcp:compute/address:Address", "used", { addressType: "EXTERNAL" }),
      r("gcp:compute/address:Address", "idle", { addressType: "EXTERNAL" }),
      ...Array.from({ length: 7 }, (_, i) => r("gcp:compute/forwardingRule:ForwardingRule", `fr${i}`, { loadBalancingScheme: "INTERNAL" }, i === 0 ? [urn("used")] : [])),
      r("gcp:compute/routerNat:RouterNat", "nat", { natIpAllocateOption: "AUTO_ONLY" }),
      ...Array.from({ length: 8 }, (_, i) => r("gcp:secretmanager/secretVersion:SecretVersion", `v${i}`, {})),
      // GCS' default soft delete (7 days) applies to the lifecycle's deletions; 0 turns it off.
      r("gcp:storage/bucket:Bucket", "b", { lifecycleRules: [{ condition: { age: 10 }, action: { type: "Delete" } }] }),
      r("gcp:storage/bucket:Bucket", "c", { lifecycleRules: [{ condition: { age: 30 }, action: { type: "Delete" } }], softDeletePolicy: { retentionDurationSeconds: 0 } }),
    ];
    const e = estimateMonthlyCost(resources);
    const price = REGION_PRICES["us-central1"]!;
    const byItem = Object.fromEntries(e.lines.map((l) => [l.item.split(" (")[0]!, l.monthlyUsd]));
    expect(byItem["1 × e2-medium standard"]).toBe(+(0.033506 * 730).toFixed(2));
    expect(byItem["4 × t2d-standard-2 Spot"]).toBe(+(4 * 0.011744 * 730).toFixed(2));
    expect(byItem["20 GiB pd-standard"]).toBe(0.8);
    expect(byItem["120 GiB pd-balanced"]).toBe(12);
    expect(byItem["50 GiB pd-ssd"]).toBe(8.5);
    expect(e.lines.find((l) => l.item.startsWith("7 forwarding rule"))?.monthlyUsd).toBe(+((0.025 + 2 * 0.01) * 730).toFixed(2));
    expect(e.lines.find((l) => l.category === "ip addresses")?.monthlyUsd).toBe(+(price.unusedStaticIpHourly * 730).toFixed(2));
    expect(byItem["gateway for 5 VM(s)"]).toBe(+(5 * 0.0014 * 730).toFixed(2));
    expect(byItem["1 NAT IP address(es)"]).toBe(3.65);
    expect(byItem["12.5 GiB processed"]).toBe(0.56);
    expect(e.lines.find((l) => l.category === "secret manager")?.monthlyUsd).toBe(0.12);
    expect(e.lines.filter((l) => l.category === "storage").map((l) => [l.item, l.monthlyUsd])).toEqual([
      ["1.7 GiB of backups (10 days + 7 soft-deleted × 0.1 GiB/day, $0.02/GiB-month)", 0.03],
      ["3 GiB of backups (30 days + 0 soft-deleted × 0.1 GiB/day, $0.02/GiB-month)", 0.06],
    ]);
    expect(e.lines.some((l) => l.item.includes("processed by the ingress"))).toBe(false);
    expect(e.totalUsd).toBe(+e.lines.reduce((n, l) => n + l.monthlyUsd, 0).toFixed(2));
  });

  it("prices the disks the PD CSI driver will create for claims on its StorageClasses, and only those", () => {
    const urn = (n: string) => `urn:${n}`;
    const r = (type: string, name: string, inputs: Record<string, unknown>, dependsOn: string[] = []): PricedResource => ({ type, urn: urn(name), inputs, dependsOn });
    const claim = (name: string, storageClassName: unknown, storage: string, dependsOn: string[] = []) =>
      r("kubernetes:core/v1:PersistentVolumeClaim", name, { metadata: { name, namespace: "ns" }, spec: { storageClassName, resources: { requests: { storage } } } }, dependsOn);
    const sc = (name: string, provisioner: string, type?: string) =>
      r("kubernetes:storage.k8s.io/v1:StorageClass", name, { metadata: { name }, provisioner, parameters: type ? { type } : {} });
    const resources: PricedResource[] = [
      r("pulumi:providers:gcp", "gcp", { region: "us-central1" }),
      sc("fast", "pd.csi.storage.gke.io", "pd-ssd"),
      sc("cheap", "pd.csi.storage.gke.io"),
      sc("local-path", "rancher.io/local-path"),
      claim("a", "fast", "20Gi"),
      claim("b", "fast", "10737418241"), // one byte over 10 GiB: the driver rounds up to 11
      claim("c", "cheap", "10Gi"),
      claim("d", "local-path", "100Gi"),
      claim("e", "[unknown]", "10Gi", [urn("fast")]),
      r("kubernetes:apps/v1:StatefulSet", "db", {
        metadata: { name: "db", namespace: "ns" },
        spec: { replicas: 3, volumeClaimTemplates: [{ metadata: { name: "data" }, spec: { storageClassName: "fast", resources: { requests: { storage: "15G" } } } }] },
      }),
    ];
    const e = estimateMonthlyCost(resources);
    const claims = e.lines.filter((l) => l.item.includes("claims the PD CSI driver provisions"));
    // 20 + 11 + 10 (the class named through an unknown output, found by dependency) + 3 × 14 (15 GB = 13.97 GiB, rounded up).
    expect(claims.map((l) => [l.item.split(" (")[0], l.monthlyUsd])).toEqual([
      ["83 GiB pd-ssd for claims the PD CSI driver provisions: ns/a, ns/b, ns/e, ns/data-db-* ×3", +(83 * 0.17).toFixed(2)],
      ["10 GiB pd-standard for claims the PD CSI driver provisions: ns/c", 0.4],
    ]);
    // The local-path claim is on a VM's boot disk: no line of its own.
    expect(e.lines.some((l) => /ns\/d\b(?!ata)/.test(l.item))).toBe(false);
    const bad = [...resources.slice(0, 2), claim("x", "fast", "lots")];
    expect(() => estimateMonthlyCost(bad)).toThrow('cost estimate: the storage request of claim ns/x is not a storage quantity ("lots")');
  });

  it("says plainly when a region has no prices in the table", () => {
    const resources = dev.resources.map((r) => (r.type === "pulumi:providers:gcp" ? { ...r, inputs: { ...r.inputs, region: "europe-west9" } } : r));
    expect(() => estimateMonthlyCost(resources)).toThrow('no prices for region "europe-west9" in components/gcp/pricing.ts (known: us-central1, us-east5)');
    const section = costSection({ resources });
    expect(section.blocking).toBe(false);
    expect(section.lines[0]).toContain("not available: no prices for region");
  });

  it("is printed by the offline plan, and the README states both stacks' figures", async () => {
    const sections = await planSections(dev);
    const cost = sections.find((s) => s.title.startsWith("Estimated monthly cost"))!;
    const total = estimateMonthlyCost(dev.resources).totalUsd;
    expect(cost.lines.find((l) => l.startsWith("total"))).toMatch(new RegExp(`^total +\\$${total.toFixed(2)}$`));
    const readme = readFileSync(path.join(REPO_ROOT, "README.md"), "utf8");
    for (const run of [dev, prod]) {
      expect(readme).toContain(`| ${run.stack} | $${estimateMonthlyCost(run.resources).totalUsd.toFixed(2)} |`);
    }
    expect(readme).toContain(PRICE_TABLE_DATE);
  });
});
