/**
 * GCE machine types the stacks may use, as the kubelet sees them (vCPUs, memory). Shared-core e2
 * types report 2 vCPUs although they sustain less; the scheduler, which is what the capacity check
 * models, counts the reported number. (The cloud layer may land its own table; the lead unifies.)
 */
export const MACHINE_TYPES: Record<string, { vcpu: number; memoryGiB: number }> = {
  "e2-micro": { vcpu: 2, memoryGiB: 1 },
  "e2-small": { vcpu: 2, memoryGiB: 2 },
  "e2-medium": { vcpu: 2, memoryGiB: 4 },
  "e2-standard-2": { vcpu: 2, memoryGiB: 8 },
  "e2-standard-4": { vcpu: 4, memoryGiB: 16 },
  "e2-standard-8": { vcpu: 8, memoryGiB: 32 },
  "e2-highmem-2": { vcpu: 2, memoryGiB: 16 },
  "e2-highmem-4": { vcpu: 4, memoryGiB: 32 },
  "e2-highcpu-4": { vcpu: 4, memoryGiB: 4 },
  "n2-standard-2": { vcpu: 2, memoryGiB: 8 },
  "n2-standard-4": { vcpu: 4, memoryGiB: 16 },
  "n2d-standard-2": { vcpu: 2, memoryGiB: 8 },
  "n2d-standard-4": { vcpu: 4, memoryGiB: 16 },
  "t2d-standard-1": { vcpu: 1, memoryGiB: 4 },
  "t2d-standard-2": { vcpu: 2, memoryGiB: 8 },
};

/**
 * What a node can give pods: capacity minus the kubelet/OS reservation (GKE's published formula:
 * CPU 6% of the first core, 1% of the next, 0.5% of the next two, 0.25% above; memory 25% of the
 * first 4 GiB, 20% of the next 4, 10% of the next 8, 6% of the next 112, plus the 100 MiB eviction
 * threshold) and, on K3s servers, the in-process control plane (API server, etcd, controllers),
 * which is not a pod and so never appears in any request.
 */
export function allocatable(machineType: string, role: "server" | "agent"): { cpu: number; memoryMiB: number } {
  const m = MACHINE_TYPES[machineType];
  if (!m) throw new Error(`unknown machine type "${machineType}"; known: ${Object.keys(MACHINE_TYPES).join(", ")}`);
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
