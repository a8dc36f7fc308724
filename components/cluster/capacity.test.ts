import { describe, expect, it } from "vitest";
import { clusterCapacity, kubeletArgs, KUBELET_RESERVATIONS } from "./capacity";
import { agentConfig, serverConfig } from "./startup-script";

describe("cluster capacity", () => {
  it("derives allocatable CPU and memory from the machine table and the kubelet reservations", () => {
    const dev = clusterCapacity({ servers: { count: 1, machineType: "t2d-standard-1", dedicated: false }, agents: { count: 1, machineType: "t2d-standard-1" } });
    // 4 GiB nominal → 3932 MiB seen by the kernel; minus system 256, kube 768 (server) or 256 (agent), eviction 100.
    expect(dev.pools.map((p) => [p.pool, p.memoryMiB, p.allocatable.memoryMiB, p.allocatable.cpuCores])).toEqual([
      ["servers", 3932, 2808, 0.65],
      ["agents", 3932, 3320, 0.8],
    ]);
    expect(dev.schedulable).toEqual({ cpuCores: 1.45, memoryMiB: 6128 });
    expect(dev.agents).toEqual({ cpuCores: 0.8, memoryMiB: 3320 });
  });

  it("leaves dedicated (tainted) servers out of what workloads can use", () => {
    const prod = clusterCapacity({ servers: { count: 3, machineType: "e2-medium", dedicated: true }, agents: { count: 3, machineType: "e2-standard-2" } });
    expect(prod.schedulable).toEqual({ cpuCores: 3 * 1.8, memoryMiB: 3 * (7864 - 256 - 256 - 100) });
    expect(prod.pools[0]!.schedulable).toBe(false);
  });

  it("rejects a machine type the table does not know", () => {
    expect(() => clusterCapacity({ servers: { count: 1, machineType: "n1-standard-1", dedicated: true }, agents: { count: 1, machineType: "e2-small" } })).toThrow(
      'unknown machine type "n1-standard-1"',
    );
  });

  it("is what the nodes' kubelets are configured with", () => {
    expect(kubeletArgs("servers")).toEqual([
      `system-reserved=cpu=100m,memory=${KUBELET_RESERVATIONS.system.memoryMiB}Mi`,
      "kube-reserved=cpu=250m,memory=768Mi",
      // All four default signals named (naming one zeroes the others' defaults).
      "eviction-hard=memory.available<100Mi,nodefs.available<10%,nodefs.inodesFree<5%,imagefs.available<15%",
      // Graceful node shutdown within a Spot VM's 30 s notice, critical pods stopped last.
      "shutdown-grace-period=25s",
      "shutdown-grace-period-critical-pods=5s",
    ]);
    const common = { k3sVersion: "v1.33.5+k3s1", apiDnsName: "k3s-api.titanium.internal", apiInternalIp: "10.128.0.9", agentTokenSecret: "projects/p/secrets/a" };
    expect(agentConfig(common)["kubelet-arg"]).toEqual(kubeletArgs("agents"));
    const server = serverConfig({ ...common, serverIndex: 0, nodeIp: "10.128.0.2", serverIps: ["10.128.0.2"], tlsSans: [], podCidr: "10.42.0.0/16", serviceCidr: "10.43.0.0/16", dataDisk: false, dedicated: true, serverTokenSecret: "s", caBundleSecret: "c" });
    expect(server["kubelet-arg"]).toEqual(kubeletArgs("servers"));
  });
});
