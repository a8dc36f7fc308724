import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "./config";
import { RESERVED_CONNECTIONS, poolSize } from "../components/apps/service-env";
import { POSTGRES } from "../components/apps/topology";
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
    ["a server zone outside the region", "prod", { cluster: { servers: { count: 3, zones: ["us-central1-a", "us-central1-b", "europe-west1-b"] }, agents: { count: 3, spot: false } } }, "titanium:cluster.servers.zones[2]", "expected a zone inside region us-central1"],
    ["an unknown disk type", "dev", { cluster: { agents: { bootDiskType: "pd-fast" } } }, "titanium:cluster.agents.bootDiskType", "expected a persistent disk type (pd-standard, pd-balanced, pd-ssd)"],
    ["a pod range overlapping the subnet", "dev", { network: { adminCidrs: ["198.51.100.0/28"], podCidr: "10.128.0.0/16" } }, "titanium:network.podCidr", "expected podCidr not to overlap subnetCidr (10.128.0.0/20)"],
    ["a subnet overlapping the pod range", "dev", { network: { adminCidrs: ["198.51.100.0/28"], subnetCidr: "10.42.16.0/20" } }, "titanium:network.subnetCidr", "expected subnetCidr not to overlap podCidr (10.42.0.0/16)"],
    ["a service range overlapping the pod range", "dev", { network: { adminCidrs: ["198.51.100.0/28"], serviceCidr: "10.42.0.0/16" } }, "titanium:network.serviceCidr", "expected serviceCidr not to overlap podCidr (10.42.0.0/16)"],
    ["an admin range inside the pod range", "dev", { network: { adminCidrs: ["198.51.100.0/28", "10.42.3.0/24"] } }, "titanium:network.adminCidrs[1]", "expected an admin range outside podCidr (10.42.0.0/16)"],
    ["an admin range inside the service range", "dev", { network: { adminCidrs: ["10.43.0.0/20"] } }, "titanium:network.adminCidrs[0]", "expected an admin range outside serviceCidr (10.43.0.0/16)"],
    // A firewall or mesh source in reserved space admits no administrator (or the metadata server's own traffic).
    ["an admin range in loopback space", "dev", { network: { adminCidrs: ["198.51.100.0/28", "127.0.0.0/8"] } }, "titanium:network.adminCidrs[1]", "expected an admin range outside 127.0.0.0/8 (loopback)"],
    ["the metadata server as an admin range", "dev", { network: { adminCidrs: ["169.254.169.254/32"] } }, "titanium:network.adminCidrs[0]", "expected an admin range outside 169.254.0.0/16 (link-local: the metadata server)"],
    ["an admin range in multicast space", "dev", { network: { adminCidrs: ["224.0.0.0/24"] } }, "titanium:network.adminCidrs[0]", "expected an admin range outside 224.0.0.0/4 (multicast)"],
    ["a pod range in link-local space", "dev", { network: { adminCidrs: ["198.51.100.0/28"], podCidr: "169.254.0.0/16" } }, "titanium:network.podCidr", "expected a range outside 169.254.0.0/16 (link-local: the metadata server)"],
    ["a service range in loopback space", "dev", { network: { adminCidrs: ["198.51.100.0/28"], serviceCidr: "127.0.0.0/16" } }, "titanium:network.serviceCidr", "expected a range outside 127.0.0.0/8 (loopback)"],
    ["a subnet in multicast space", "dev", { network: { adminCidrs: ["198.51.100.0/28"], subnetCidr: "224.0.0.0/20" } }, "titanium:network.subnetCidr", "expected a range outside 224.0.0.0/4 (multicast)"],
    ["a pod range holding the link-local block", "dev", { network: { adminCidrs: ["198.51.100.0/28"], podCidr: "169.0.0.0/8" } }, "titanium:network.podCidr", "169.254.0.0/16"],
    // K3s gives each node a /24: a /20 holds 16, not 1 server + 12 agents + the margin of 4.
    ["a pod range with too few /24s for the nodes", "dev", { network: { adminCidrs: ["198.51.100.0/28"], podCidr: "10.42.0.0/20" }, cluster: { agents: { count: 12 } } }, "titanium:network.podCidr", "expected a /24 for every node: 1 server + 12 agents + 4 (the agent group's surge VM and 3 stale Node objects) = 17, and a /20 holds 16 (a /19 holds 32)"],
    // Each database client replica gets at least 2 connections (poolSize); 100 - 20 reserved leaves room for 40 replicas.
    ["HPA maxima whose pools exceed max_connections", "prod", { services: { "auth-service": { replicas: 2, maxReplicas: 10 }, "user-service": { replicas: 2, maxReplicas: 20 }, "blog-service": { replicas: 2, maxReplicas: 11 } } }, "titanium:services.user-service.maxReplicas", "expected the PostgreSQL clients' replicas at most 40 (auth-service 10 + user-service 20 + blog-service 11 = 41"],
    ["HPA maxima whose pools exceed max_connections (each client named)", "prod", { services: { "auth-service": { replicas: 2, maxReplicas: 10 }, "user-service": { replicas: 2, maxReplicas: 20 }, "blog-service": { replicas: 2, maxReplicas: 11 } } }, "titanium:services.blog-service.maxReplicas", "2 connections each within max_connections 100 less 20 reserved"],
    ["fixed replicas whose pools exceed max_connections (no HPA)", "dev", { services: { "auth-service": { replicas: 30 }, "blog-service": { replicas: 11 } } }, "titanium:services.auth-service.replicas", "expected the PostgreSQL clients' replicas at most 40"],
    // The public URLs carry no port, and Envoy's redirect to HTTPS would keep a non-default HTTP port.
    ["a non-default HTTPS port", "dev", { ingress: { httpsPort: 8443 } }, "titanium:ingress.httpsPort", "expected 443: the public URLs and the HTTP-to-HTTPS redirect assume the default HTTPS port"],
    ["a non-default HTTP port", "prod", { ingress: { httpPort: 8080 } }, "titanium:ingress.httpPort", "expected 80"],
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

  it("names only the ranges that clash, and takes ranges that do not", () => {
    const keys = issues("dev", { network: { adminCidrs: ["198.51.100.0/28"], podCidr: "10.128.0.0/16" } }).map((i) => i.key);
    expect(keys.sort()).toEqual(["titanium:network.podCidr", "titanium:network.subnetCidr"]);
    const raw = { ...readStackConfig("dev"), "titanium:network": JSON.stringify({ adminCidrs: ["10.128.0.0/28", "100.64.0.0/10"], podCidr: "172.16.0.0/16", serviceCidr: "172.17.0.0/16" }) };
    expect(loadConfig("dev", raw).network.podCidr).toBe("172.16.0.0/16");
  });

  it("takes a pod range that just holds the nodes and the margin", () => {
    const raw = readStackConfig("dev");
    const cluster = { ...(JSON.parse(raw["titanium:cluster"]!) as object), agents: { count: 11, machineType: "t2d-standard-1", spot: true, bootDiskGb: 15 } };
    const c = loadConfig("dev", { ...raw, "titanium:cluster": JSON.stringify(cluster), "titanium:network": JSON.stringify({ adminCidrs: ["198.51.100.0/28"], podCidr: "10.42.0.0/20" }) });
    expect(c.cluster.agents.count + c.cluster.servers.count).toBe(12);
  });

  it("takes the largest HPA maxima whose pools fit, and the pool the apps layer derives fits them", () => {
    const raw = readStackConfig("prod");
    const services = JSON.parse(raw["titanium:services"]!) as Record<string, Record<string, number>>;
    const maxima = { "auth-service": 10, "user-service": 20, "blog-service": 10 } as const;
    for (const [svc, max] of Object.entries(maxima)) services[svc] = { ...services[svc], maxReplicas: max };
    // The api-gateway holds no database connection: its maximum is not counted.
    services["api-gateway"] = { ...services["api-gateway"], maxReplicas: 50 };
    const c = loadConfig("prod", { ...raw, "titanium:services": JSON.stringify(services) });
    const clients = Object.values(maxima);
    const total = clients.reduce((a, b) => a + b, 0);
    expect(c.services["user-service"].maxReplicas).toBe(20);
    expect(poolSize(clients) * total).toBeLessThanOrEqual(POSTGRES.maxConnections - RESERVED_CONNECTIONS);
    // One more replica and the apps layer's floor of 2 connections would overrun the budget.
    expect(poolSize([...clients, 1]) * (total + 1)).toBeGreaterThan(POSTGRES.maxConnections - RESERVED_CONNECTIONS);
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
