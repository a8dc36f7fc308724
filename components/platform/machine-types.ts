/**
 * What each node gives pods, for the capacity check. Machine shapes come from the cloud layer's
 * machine table (`components/gcp/pricing.ts`), the one list of types the config accepts.
 */
import { MACHINE_TYPES, isMachineType } from "../gcp/pricing";

/**
 * What a node can give pods: capacity minus the kubelet/OS reservation (GKE's published formula:
 * CPU 6% of the first core, 1% of the next, 0.5% of the next two, 0.25% above; memory 25% of the
 * first 4 GiB, 20% of the next 4, 10% of the next 8, 6% of the next 112, plus the 100 MiB eviction
 * threshold) and, on K3s servers, the in-process control plane (API server, etcd, controllers),
 * which is not a pod and so never appears in any request.
 */
export function allocatable(machineType: string, role: "server" | "agent"): { cpu: number; memoryMiB: number } {
  if (!isMachineType(machineType)) throw new Error(`unknown machine type "${machineType}"; known: ${Object.keys(MACHINE_TYPES).join(", ")}`);
  const m = { vcpu: MACHINE_TYPES[machineType].vcpus, memoryGiB: MACHINE_TYPES[machineType].memoryGiB };
  const cpuReserved = tiers(m.vcpu, [
    [1, 0.06],
    [1, 0.01],
    [2, 0.005],
    [Infinity, 0.0025],
  ]);
  const memGiB = m.memoryGiB;
  const memReservedGiB = tiers(memGiB, [
    [4, 0.25],
    [4, 0.2],
    [8, 0.1],
    [112, 0.06],
    [Infinity, 0.02],
  ]);
  const control = role === "server" ? K3S_SERVER_OVERHEAD : { cpu: 0, memoryMiB: 0 };
  return {
    cpu: m.vcpu - cpuReserved - control.cpu,
    memoryMiB: memGiB * 1024 - memReservedGiB * 1024 - 100 - control.memoryMiB,
  };
}

/** K3s server process (embedded etcd, API server, scheduler, controllers) on a small cluster. */
export const K3S_SERVER_OVERHEAD = { cpu: 0.5, memoryMiB: 1024 };

function tiers(amount: number, steps: [number, number][]): number {
  let left = amount;
  let total = 0;
  for (const [size, rate] of steps) {
    const take = Math.min(left, size);
    total += take * rate;
    left -= take;
    if (left <= 0) break;
  }
  return total;
}
