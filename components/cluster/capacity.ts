/**
 * What the nodes offer to pods: the kubelet reservations the startup scripts configure and the
 * allocatable CPU and memory they leave on each machine type of the price table. The platform
 * layer's capacity check compares its requests with {@link clusterCapacity}.
 */
import { MACHINE_TYPES, type MachineTypeName } from "../gcp/pricing";

/** Node label every node carries; its value is the pool (`servers` or `agents`). */
export const NODE_POOL_LABEL = "titanium.io/pool";
export type NodePool = "servers" | "agents";

/**
 * What K3s deploys in kube-system by itself, outside the program, with the requests of its bundled
 * manifests: CoreDNS and metrics-server (the HPAs need it) ask 100m CPU and 70Mi each; the
 * local-path provisioner asks nothing; Traefik and servicelb are disabled (startup-script.ts).
 */
export const K3S_ADDONS = [
  { name: "coredns", cpuMilli: 100, memoryMiB: 70 },
  { name: "metrics-server", cpuMilli: 100, memoryMiB: 70 },
] as const;

/** Taint of dedicated servers: only critical add-ons (and what tolerates it, e.g. log collectors) run there. */
export const DEDICATED_SERVER_TAINT = "CriticalAddonsOnly=true:NoExecute";

/**
 * Resources kept from pods on every node. `kube` on a server also covers the K3s server process
 * (kube-apiserver, controller-manager, scheduler and etcd run in it, outside any pod).
 */
export const KUBELET_RESERVATIONS = {
  system: { cpuMilli: 100, memoryMiB: 256 },
  kube: { servers: { cpuMilli: 250, memoryMiB: 768 }, agents: { cpuMilli: 100, memoryMiB: 256 } },
  evictionHardMemoryMiB: 100,
} as const;

/**
 * What a node's disk holds besides volumes, in GiB: Debian 12 (about 2 GiB in use) and the container
 * images of the platform and the services, about 4.7 GiB unpacked plus the compressed layers containerd
 * keeps (~6 GiB) if one node pulls them all, as it does when the other nodes are gone. An estimate from the
 * pinned images' sizes, rounded up; re-check it when a chart or base image grows.
 */
export const NODE_DISK_RESERVE_GI = 8;
/** The K3s datastore, its snapshots and the server's certificates and manifests, in GiB. */
export const SERVER_STATE_GI = 1;
/**
 * Share of a node's disk its contents may fill: the kubelet starts deleting images at 85 % use
 * (`imageGCHighThresholdPercent`) and evicts pods below 10 % free (`nodefs.available`, kubeletArgs).
 */
export const NODE_DISK_USE_LIMIT = 0.85;

/** The smallest disk (GB) that holds `contentGi` within {@link NODE_DISK_USE_LIMIT}. */
export const diskGbFor = (contentGi: number): number => Math.ceil(contentGi / NODE_DISK_USE_LIMIT);

/** Share of a machine's nominal memory the guest kernel reports (firmware and kernel keep the rest). */
export const GUEST_MEMORY_FRACTION = 0.96;

/**
 * Graceful node shutdown. GCE shuts a VM down before it goes (a Spot preemption gives 30 s; a managed
 * instance group replacing an agent for a new template, autohealing, a scale-in): the kubelet holds a
 * systemd inhibitor lock for `gracePeriodSeconds` and stops the pods, ordinary ones first (20 s: a
 * service's preStop, drain and proxy drain, components/apps/mesh.ts), critical ones (node plugins) in
 * the last `criticalPodsSeconds`, so they end terminal and their controllers recreate them on
 * other nodes. Without it (the kubelet's default is off) their Node just goes silent: a StatefulSet's
 * pod such as PostgreSQL's stays Terminating there until someone deletes the Node. Fits Spot's notice.
 */
export const NODE_SHUTDOWN = { gracePeriodSeconds: 25, criticalPodsSeconds: 5 } as const;

/** The kubelet flags that implement {@link KUBELET_RESERVATIONS} and {@link NODE_SHUTDOWN} on a node of `pool`. */
export function kubeletArgs(pool: NodePool): string[] {
  const { system, kube, evictionHardMemoryMiB } = KUBELET_RESERVATIONS;
  return [
    `system-reserved=cpu=${system.cpuMilli}m,memory=${system.memoryMiB}Mi`,
    `kube-reserved=cpu=${kube[pool].cpuMilli}m,memory=${kube[pool].memoryMiB}Mi`,
    // Every signal the kubelet's defaults cover, named: setting any one of them drops the defaults of
    // the others to zero (Kubernetes, "Node-pressure Eviction"), so an inode or image-store shortage would
    // otherwise never evict. The defaults' values, but for memory (`evictionHardMemoryMiB`).
    `eviction-hard=memory.available<${evictionHardMemoryMiB}Mi,nodefs.available<10%,nodefs.inodesFree<5%,imagefs.available<15%`,
    `shutdown-grace-period=${NODE_SHUTDOWN.gracePeriodSeconds}s`,
    `shutdown-grace-period-critical-pods=${NODE_SHUTDOWN.criticalPodsSeconds}s`,
  ];
}

export interface PoolCapacity {
  pool: NodePool;
  count: number;
  machineType: MachineTypeName;
  /** Per node, as the kubelet reports capacity. */
  vcpus: number;
  memoryMiB: number;
  /** Per node, what pods may request. */
  allocatable: { cpuCores: number; memoryMiB: number };
  /** Whether ordinary workloads may land there (dedicated servers are tainted). */
  schedulable: boolean;
}

export interface ClusterCapacity {
  pools: PoolCapacity[];
  /** Sum of allocatable resources over the nodes ordinary workloads may use. */
  schedulable: { cpuCores: number; memoryMiB: number };
  /** The same for the agents only (where the ingress gateway runs). */
  agents: { cpuCores: number; memoryMiB: number };
}

/** The shape of the cluster config this needs (a slice of `TitaniumConfig["cluster"]`). */
export interface ClusterSizing {
  servers: { count: number; machineType: string; dedicated: boolean };
  agents: { count: number; machineType: string };
}

function pool(name: NodePool, count: number, machineType: string, schedulable: boolean): PoolCapacity {
  const shape = MACHINE_TYPES[machineType as MachineTypeName];
  if (!shape) throw new Error(`unknown machine type "${machineType}" (see components/gcp/pricing.ts)`);
  const { system, kube, evictionHardMemoryMiB } = KUBELET_RESERVATIONS;
  const memoryMiB = Math.floor(shape.memoryGiB * 1024 * GUEST_MEMORY_FRACTION);
  return {
    pool: name,
    count,
    machineType: machineType as MachineTypeName,
    vcpus: shape.vcpus,
    memoryMiB,
    allocatable: {
      cpuCores: round(shape.vcpus - (system.cpuMilli + kube[name].cpuMilli) / 1000),
      memoryMiB: memoryMiB - system.memoryMiB - kube[name].memoryMiB - evictionHardMemoryMiB,
    },
    schedulable,
  };
}

const round = (n: number) => Math.round(n * 1000) / 1000;

/** Allocatable capacity of the cluster a config describes. */
export function clusterCapacity(sizing: ClusterSizing): ClusterCapacity {
  const pools = [
    pool("servers", sizing.servers.count, sizing.servers.machineType, !sizing.servers.dedicated),
    pool("agents", sizing.agents.count, sizing.agents.machineType, true),
  ];
  const sum = (list: PoolCapacity[]) => ({
    cpuCores: round(list.reduce((n, p) => n + p.count * p.allocatable.cpuCores, 0)),
    memoryMiB: list.reduce((n, p) => n + p.count * p.allocatable.memoryMiB, 0),
  });
  return { pools, schedulable: sum(pools.filter((p) => p.schedulable)), agents: sum(pools.filter((p) => p.pool === "agents")) };
}
