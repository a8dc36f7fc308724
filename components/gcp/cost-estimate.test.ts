import { readFileSync } from "node:fs";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { type ProgramRun, REPO_ROOT, runProgram } from "../../stacks/harness";
import { planSections } from "../../stacks/plan-sections";
import { costSection, estimateMonthlyCost, type PricedResource } from "./cost-estimate";
import { PRICE_TABLE_DATE, REGION_PRICES } from "./pricing";

let dev: ProgramRun;
let prod: ProgramRun;
beforeAll(async () => {
  dev = await runProgram({ stack: "dev" });
  prod = await runProgram({ stack: "prod" });
});

const line = (estimate: ReturnType<typeof estimateMonthlyCost>, re: RegExp) => estimate.lines.find((l) => re.test(l.item));

describe("monthly cost estimate", () => {
  it("keeps dev under the $35 budget and prices prod, from the resources each stack registers", () => {
    const d = estimateMonthlyCost(dev.resources);
    expect(d.totalUsd).toBeLessThan(35);
    expect(line(d, /^2 × t2d-standard-1 Spot/)?.monthlyUsd).toBe(8.57);
    expect(line(d, /forwarding rule/)?.monthlyUsd).toBe(18.25);
    expect(line(d, /^20 GiB pd-balanced/)?.monthlyUsd).toBe(2);
    expect(line(d, /^9 active secret versions/)?.monthlyUsd).toBe(0.18);
    const p = estimateMonthlyCost(prod.resources);
    expect(line(p, /^3 × e2-medium standard/)?.monthlyUsd).toBe(73.38);
    expect(line(p, /^3 × e2-standard-2 standard/)?.monthlyUsd).toBe(146.75);
    expect(line(p, /^60 GiB pd-ssd/)?.monthlyUsd).toBe(10.2);
    expect(line(p, /gateway for 6 VM/)?.monthlyUsd).toBe(6.13);
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
      r("gcp:storage/bucket:Bucket", "b", { lifecycleRules: [{ condition: { age: 10 }, action: { type: "Delete" } }] }),
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
    expect(e.lines.find((l) => l.category === "storage")?.monthlyUsd).toBe(0.02);
    expect(e.lines.some((l) => l.item.includes("processed by the ingress"))).toBe(false);
    expect(e.totalUsd).toBe(+e.lines.reduce((n, l) => n + l.monthlyUsd, 0).toFixed(2));
  });

  it("says plainly when a region has no prices in the table", () => {
    const resources = dev.resources.map((r) => (r.type === "pulumi:providers:gcp" ? { ...r, inputs: { ...r.inputs, region: "europe-west9" } } : r));
    expect(() => estimateMonthlyCost(resources)).toThrow('no prices for region "europe-west9" in components/gcp/pricing.ts (known: us-central1)');
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
