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
    ["a published API name no public zone can hold", "dev", { cluster: { apiDnsZone: "example-org" } }, "titanium:cluster.apiDnsName", "cannot be published"],
    // Disks: the OS and images (8 GiB), K3s' state on a server (1 GiB) and the local-path volumes within 85 %.
    ["an agent disk too small for the images and dev's local-path volumes", "dev", { cluster: { agents: { bootDiskGb: 10 } } }, "titanium:cluster.agents.bootDiskGb", "expected at least 15 GB to hold the OS and container images (8 GiB), observability (Prometheus 2 + Grafana 1 + Loki 1 GiB) within 85 %"],
    ["a server boot disk (no data disk, takes workloads) too small", "dev", { cluster: { servers: { dataDiskGb: 0, dedicated: false, bootDiskGb: 12 }, agents: { bootDiskGb: 15 } } }, "titanium:cluster.servers.bootDiskGb", "expected at least 16 GB to hold the OS and container images (8 GiB), K3s' state (1 GiB), observability (Prometheus 2 + Grafana 1 + Loki 1 GiB)"],
    ["a dedicated server's data disk too small for images and K3s' state (it takes no volumes)", "dev", { cluster: { servers: { dataDiskGb: 10 }, agents: { bootDiskGb: 15 } } }, "titanium:cluster.servers.dataDiskGb", "expected at least 11 GB to hold the OS and container images (8 GiB), K3s' state (1 GiB) within 85 %"],
    ["a node-local database the agent disk cannot also hold", "dev", { data: { postgres: { diskType: "local-path" } } }, "titanium:cluster.agents.bootDiskGb", "expected at least 26 GB to hold the OS and container images (8 GiB), observability (Prometheus 2 + Grafana 1 + Loki 1 GiB), data.postgres (10 GiB)"],
  ])("rejects %s, naming the key", (_label, stack, overrides, key, message) => {
    const found = issues(stack, overrides).find((i) => i.key === key);
    expect(found?.message).toContain(message);
  });

  it("accepts a stack file with only the keys the bootstrap runbook asks for: the defaults pass their own disk check", () => {
    const minimal = {
      "gcp:project": "titanium-new-1234",
      "gcp:region": "us-central1",
      "gcp:zone": "us-central1-a",
      "titanium:environment": "dev",
      "titanium:protect": "false",
      "titanium:network": JSON.stringify({ adminCidrs: ["198.51.100.0/28"] }),
    };
    const config = loadConfig("dev", minimal);
    expect(config.cluster.agents.bootDiskGb).toBe(36);
    expect(config.observability.diskType).toBe("local-path");
  });

  it("takes the smallest disks that hold their contents: dev's 15 GB agent disk, not 14", () => {
    const cluster = (agentGb: number) => ({ ...(JSON.parse(readStackConfig("dev")["titanium:cluster"]!) as object), agents: { count: 1, machineType: "t2d-standard-1", spot: true, bootDiskGb: agentGb } });
    expect(issues("dev", { cluster: cluster(14) }).map((i) => i.key)).toEqual(["titanium:cluster.agents.bootDiskGb"]);
    const raw = { ...readStackConfig("dev"), "titanium:cluster": JSON.stringify(cluster(15)) };
    expect(loadConfig("dev", raw).cluster.agents.bootDiskGb).toBe(15);
  });

  it("loads the stacks' sizing: dev on two Spot t2d-standard-1, prod on three zones", () => {
    const dev = loadConfig("dev", readStackConfig("dev"));
    expect(dev.cluster.servers).toMatchObject({ machineType: "t2d-standard-1", spot: true, dataDiskGb: 0, dedicated: false, zones: [] });
    expect(dev.cluster.agents).toMatchObject({ machineType: "t2d-standard-1", spot: true, bootDiskGb: 15 });
    const prod = loadConfig("prod", readStackConfig("prod"));
    expect(prod.cluster.servers).toMatchObject({ count: 3, zones: ["us-central1-a", "us-central1-b", "us-central1-c"], dataDiskType: "pd-ssd", dedicated: true });
    expect(prod.ingress).toMatchObject({ httpPort: 80, httpsPort: 443, healthCheckNodePort: 31021 });
  });
});
