import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "./config";
import { readStackConfig } from "./harness";

function issues(stack: string, overrides: Record<string, unknown>): ConfigError["issues"] {
  const raw = readStackConfig(stack);
  for (const [key, value] of Object.entries(overrides)) raw[key.includes(":") ? key : `titanium:${key}`] = JSON.stringify(value);
  try {
    loadConfig(stack, raw);
  } catch (err) {
    if (err instanceof ConfigError) return err.issues;
    throw err;
  }
  throw new Error("expected the config to be rejected");
}

describe("cloud and cluster config", () => {
  it.each([
    ["a machine type without prices", "dev", { cluster: { agents: { machineType: "n1-standard-1" } } }, "titanium:cluster.agents.machineType", "expected a machine type of the price table in components/gcp/pricing.ts (e2-small"],
    ["a data disk below the minimum", "dev", { cluster: { servers: { dataDiskGb: 5, dedicated: false } } }, "titanium:cluster.servers.dataDiskGb", "expected 0 (no data disk) or at least 10 GB"],
    ["prod servers without a data disk", "prod", { cluster: { servers: { count: 3, dataDiskGb: 0 }, agents: { count: 3, spot: false } } }, "titanium:cluster.servers.dataDiskGb", "persistent data disk"],
    ["a server zone outside the region", "prod", { cluster: { servers: { count: 3, zones: ["us-central1-a", "europe-west1-b"] }, agents: { count: 3, spot: false } } }, "titanium:cluster.servers.zones[1]", "expected a zone inside region us-central1"],
    ["an unknown disk type", "dev", { cluster: { agents: { bootDiskType: "pd-fast" } } }, "titanium:cluster.agents.bootDiskType", "expected a persistent disk type (pd-standard, pd-balanced, pd-ssd)"],
    ["overlapping cluster ranges", "dev", { network: { adminCidrs: ["198.51.100.0/28"], podCidr: "10.128.8.0/21" } }, "titanium:network.serviceCidr", "not to overlap"],
    ["the same ingress port twice", "dev", { ingress: { httpPort: 443 } }, "titanium:ingress.httpsPort", "different HTTP and HTTPS ports"],
    ["a bad DNS zone name", "dev", { cluster: { apiDnsZone: "Example.org." } }, "titanium:cluster.apiDnsZone", "Cloud DNS managed zone"],
  ])("rejects %s, naming the key", (_label, stack, overrides, key, message) => {
    const found = issues(stack, overrides).find((i) => i.key === key);
    expect(found?.message).toContain(message);
  });

  it("loads the stacks' sizing: dev on two Spot t2d-standard-1, prod on three zones", () => {
    const dev = loadConfig("dev", readStackConfig("dev"));
    expect(dev.cluster.servers).toMatchObject({ machineType: "t2d-standard-1", spot: true, dataDiskGb: 0, dedicated: false, zones: [] });
    expect(dev.cluster.agents).toMatchObject({ machineType: "t2d-standard-1", spot: true, bootDiskGb: 10 });
    const prod = loadConfig("prod", readStackConfig("prod"));
    expect(prod.cluster.servers).toMatchObject({ count: 3, zones: ["us-central1-a", "us-central1-b", "us-central1-c"], dataDiskType: "pd-ssd", dedicated: true });
    expect(prod.ingress).toMatchObject({ httpPort: 80, httpsPort: 443, healthCheckNodePort: 31021 });
  });
});
