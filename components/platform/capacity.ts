/**
 * Capacity check: the requests of everything the stack schedules against what its nodes can give
 * pods, with headroom. Counted from what the program registers, so every layer is included:
 * platform chart workloads from the values each Release passes (via {@link CHARTS_BY_NAME}),
 * Istio sidecars for every pod in a meshed namespace, and every Kubernetes workload object
 * (Deployment, StatefulSet, DaemonSet, Job, CronJob, Pod) at its replica count, at its HPA's
 * maxReplicas when one scales it, or (a DaemonSet) on the nodes its nodeSelector and tolerations allow.
 * What must run on the agents (pinned by a nodeSelector: the ingress gateway, the PD-backed and
 * agent-identity pods; and the DaemonSets' share) must also fit the agents alone.
 */
import type { TitaniumConfig } from "../../stacks/config";
import { cpuCores, memoryMiB } from "../../stacks/config";
import type { ProgramRun, RecordedResource } from "../../stacks/harness";
import { clusterCapacity, DEDICATED_SERVER_TAINT, K3S_ADDONS, NODE_POOL_LABEL, type PoolCapacity } from "../cluster/capacity";
import { CHARTS_BY_NAME, type ChartWorkload, getPath, replicasOf } from "./chart-workloads";

/** Share of allocatable CPU and memory the requests may use: the rest absorbs rolling updates, a node drain, bursts. */
export const CAPACITY_HEADROOM = 0.2;

export interface CapacityLine {
  /** `chart/workload` or `Kind namespace/name`. */
  workload: string;
  pods: number;
  cpu: number;
  memoryMiB: number;
}

export interface CapacityReport {
  nodes: { role: "server" | "agent"; machineType: string; count: number; cpu: number; memoryMiB: number }[];
  allocatable: { cpu: number; memoryMiB: number };
  budget: { cpu: number; memoryMiB: number };
  requested: { cpu: number; memoryMiB: number };
  lines: CapacityLine[];
  /** Single pods larger than the largest node (unschedulable whatever the total). */
  oversizedPods: string[];
  /**
   * What must run on the agents (pods pinned there by their nodeSelector, and each DaemonSet's pods on
   * them) against the agents' own budget: it matters where the servers take workloads too (dev).
   */
  agents: { budget: { cpu: number; memoryMiB: number }; requested: { cpu: number; memoryMiB: number } };
  fits: boolean;
}

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (v && typeof v === "object" && !Array.isArray(v) ? (v as Obj) : {});
const arr = (v: unknown): Obj[] => (Array.isArray(v) ? (v as Obj[]) : []);

function requestsOf(resources: unknown): { cpu: number; memoryMiB: number } {
  const req = obj(obj(resources).requests);
  return {
    cpu: typeof req.cpu === "string" || typeof req.cpu === "number" ? cpuCores(String(req.cpu)) : 0,
    memoryMiB: typeof req.memory === "string" ? memoryMiB(req.memory) : 0,
  };
}

/** A pod's effective requests: its containers' sum, or its largest init container if larger. */
function podRequests(podSpec: Obj): { cpu: number; memoryMiB: number } {
  const sum = arr(podSpec.containers).map((c) => requestsOf(c.resources));
  const init = arr(podSpec.initContainers).map((c) => requestsOf(c.resources));
  const total = sum.reduce((a, b) => ({ cpu: a.cpu + b.cpu, memoryMiB: a.memoryMiB + b.memoryMiB }), { cpu: 0, memoryMiB: 0 });
  return {
    cpu: Math.max(total.cpu, ...init.map((i) => i.cpu)),
    memoryMiB: Math.max(total.memoryMiB, ...init.map((i) => i.memoryMiB)),
  };
}

const WORKLOAD_KINDS: Record<string, string> = {
  "kubernetes:apps/v1:Deployment": "Deployment",
  "kubernetes:apps/v1:StatefulSet": "StatefulSet",
  "kubernetes:apps/v1:DaemonSet": "DaemonSet",
  "kubernetes:batch/v1:Job": "Job",
  "kubernetes:batch/v1:CronJob": "CronJob",
  "kubernetes:core/v1:Pod": "Pod",
};

export function capacityReport(run: ProgramRun, config: TitaniumConfig): CapacityReport {
  // What the kubelets really leave to pods (the reservations the cluster layer configures);
  // dedicated (tainted) servers take no ordinary workloads, so they add nothing to the budget.
  const cluster = clusterCapacity(config.cluster);
  const nodes = cluster.pools
    .filter((p) => p.schedulable && p.count > 0)
    .map((p) => ({
      role: p.pool === "servers" ? ("server" as const) : ("agent" as const),
      machineType: p.machineType,
      count: p.count,
      cpu: p.allocatable.cpuCores,
      memoryMiB: p.allocatable.memoryMiB,
    }));
  // Chart DaemonSets (node exporter, Istio CNI) tolerate every taint: a pod on every node.
  const nodeCount = cluster.pools.reduce((n, p) => n + p.count, 0);
  const total = { cpu: cluster.schedulable.cpuCores, memoryMiB: cluster.schedulable.memoryMiB };

  const meshed = new Set(
    run.resources
      .filter((r) => r.type === "kubernetes:core/v1:Namespace" && obj(obj(r.inputs.metadata).labels)["istio-injection"] === "enabled")
      .map((r) => String(obj(r.inputs.metadata).name)),
  );
  // HPAs scale their target up to maxReplicas: the stack must fit at that size.
  const hpaMax = new Map<string, number>();
  for (const r of run.resources.filter((x) => x.type.startsWith("kubernetes:autoscaling/") && x.type.endsWith(":HorizontalPodAutoscaler"))) {
    const spec = obj(r.inputs.spec);
    const target = obj(spec.scaleTargetRef);
    hpaMax.set(`${target.kind}/${String(obj(r.inputs.metadata).namespace)}/${target.name}`, Number(spec.maxReplicas ?? 0));
  }

  const lines: CapacityLine[] = [];
  const oversized: string[] = [];
  const agentPools = cluster.pools.filter((p) => p.pool === "agents");
  const agentCount = agentPools.reduce((n, p) => n + p.count, 0);
  const onAgents = { cpu: 0, memoryMiB: 0 };
  const addOnAgents = (pods: number, per: { cpu: number; memoryMiB: number }) => {
    onAgents.cpu += pods * per.cpu;
    onAgents.memoryMiB += pods * per.memoryMiB;
  };
  const pinnedToAgents = (selector: unknown) => obj(selector)[NODE_POOL_LABEL] === "agents";
  const largest = nodes.reduce((a, n) => ({ cpu: Math.max(a.cpu, n.cpu), memoryMiB: Math.max(a.memoryMiB, n.memoryMiB) }), { cpu: 0, memoryMiB: 0 });
  const checkPod = (label: string, per: { cpu: number; memoryMiB: number }) => {
    if (per.cpu > largest.cpu || per.memoryMiB > largest.memoryMiB) oversized.push(label);
  };

  // Sidecar requests come from istiod's values (the injected proxy of every meshed pod).
  let sidecar = { cpu: 0, memoryMiB: 0 };
  let meshedPods = 0;
  let sidecarTotal = { cpu: 0, memoryMiB: 0 };
  const releases = run.resources.filter((r) => r.type === "kubernetes:helm.sh/v3:Release");
  for (const r of releases) {
    const info = CHARTS_BY_NAME[String(r.inputs.chart)];
    if (!info) continue;
    const values = r.inputs.values;
    for (const [wname, w] of Object.entries(info.workloads as Record<string, ChartWorkload>)) {
      const per = requestsOf(getPath(values, w.resources));
      if (w.pods === "perMeshedPod") {
        sidecar = per;
        continue;
      }
      // Hooks and init containers end before the steady state the budget is for.
      if (w.pods === "hook" || w.pods === "init") continue;
      const count = w.pods;
      const pods = count === "perNode" ? nodeCount : replicasOf(values, count);
      const containers = w.containersPerPod ?? 1;
      lines.push({ workload: `${info.chart}/${wname}`, pods, cpu: per.cpu * containers * pods, memoryMiB: per.memoryMiB * containers * pods });
      const perPod = { cpu: per.cpu * containers, memoryMiB: per.memoryMiB * containers };
      if (count === "perNode") addOnAgents(agentCount, perPod);
      else if (w.nodeSelector && pinnedToAgents(getPath(values, w.nodeSelector))) addOnAgents(pods, perPod);
      checkPod(`${info.chart}/${wname}`, per);
    }
  }

  for (const r of run.resources) {
    const kind = WORKLOAD_KINDS[r.type];
    if (!kind) continue;
    const meta = obj(r.inputs.metadata);
    const ns = String(meta.namespace ?? "default");
    const { podSpec, podMeta, replicas } = podTemplate(kind, r, cluster.pools);
    const pods = Math.max(replicas, hpaMax.get(`${kind}/${ns}/${String(meta.name)}`) ?? 0);
    const per = podRequests(podSpec);
    const annotations = obj(podMeta.annotations);
    const injected = meshed.has(ns) && annotations["sidecar.istio.io/inject"] !== "false" && obj(podMeta.labels)["sidecar.istio.io/inject"] !== "false";
    // A pod's own sidecar annotations win over istiod's default proxy resources.
    const proxy = injected ? sidecarRequests(annotations, sidecar) : { cpu: 0, memoryMiB: 0 };
    if (injected) {
      meshedPods += pods;
      sidecarTotal = { cpu: sidecarTotal.cpu + proxy.cpu * pods, memoryMiB: sidecarTotal.memoryMiB + proxy.memoryMiB * pods };
    }
    lines.push({ workload: `${kind} ${ns}/${String(meta.name ?? r.name)}`, pods, cpu: per.cpu * pods, memoryMiB: per.memoryMiB * pods });
    const withProxy = { cpu: per.cpu + proxy.cpu, memoryMiB: per.memoryMiB + proxy.memoryMiB };
    if (kind === "DaemonSet") addOnAgents(daemonSetNodes(podSpec, agentPools), withProxy);
    else if (pinnedToAgents(podSpec.nodeSelector)) addOnAgents(pods, withProxy);
    checkPod(`${kind} ${ns}/${String(meta.name ?? r.name)}`, { cpu: per.cpu + proxy.cpu, memoryMiB: per.memoryMiB + proxy.memoryMiB });
  }
  if (meshedPods > 0) lines.push({ workload: "istio-proxy sidecars", pods: meshedPods, ...sidecarTotal });
  // Counted against the whole budget: they tolerate the dedicated servers' taint, so they may run there or on agents.
  for (const a of K3S_ADDONS) lines.push({ workload: `K3s kube-system/${a.name}`, pods: 1, cpu: a.cpuMilli / 1000, memoryMiB: a.memoryMiB });

  const requested = lines.reduce((a, l) => ({ cpu: a.cpu + l.cpu, memoryMiB: a.memoryMiB + l.memoryMiB }), { cpu: 0, memoryMiB: 0 });
  const budget = { cpu: total.cpu * (1 - CAPACITY_HEADROOM), memoryMiB: total.memoryMiB * (1 - CAPACITY_HEADROOM) };
  const agentsBudget = { cpu: cluster.agents.cpuCores * (1 - CAPACITY_HEADROOM), memoryMiB: cluster.agents.memoryMiB * (1 - CAPACITY_HEADROOM) };
  const within = (r: { cpu: number; memoryMiB: number }, b: { cpu: number; memoryMiB: number }) => r.cpu <= b.cpu && r.memoryMiB <= b.memoryMiB;
  return {
    nodes,
    allocatable: total,
    budget,
    requested,
    lines,
    oversizedPods: oversized,
    agents: { budget: agentsBudget, requested: onAgents },
    fits: within(requested, budget) && within(onAgents, agentsBudget) && oversized.length === 0,
  };
}

/** Requests of a pod's injected proxy: its `sidecar.istio.io/proxyCPU`/`proxyMemory` annotations, else istiod's default. */
function sidecarRequests(annotations: Obj, fallback: { cpu: number; memoryMiB: number }): { cpu: number; memoryMiB: number } {
  const cpu = annotations["sidecar.istio.io/proxyCPU"];
  const memory = annotations["sidecar.istio.io/proxyMemory"];
  return {
    cpu: typeof cpu === "string" ? cpuCores(cpu) : fallback.cpu,
    memoryMiB: typeof memory === "string" ? memoryMiB(memory) : fallback.memoryMiB,
  };
}

/** The taint of a pool's nodes: dedicated servers carry {@link DEDICATED_SERVER_TAINT}. */
function poolTaints(pool: PoolCapacity): { key: string; value: string; effect: string }[] {
  if (pool.pool !== "servers" || pool.schedulable) return [];
  const [keyValue, effect] = DEDICATED_SERVER_TAINT.split(":") as [string, string];
  const [key, value] = keyValue.split("=") as [string, string];
  return [{ key, value, effect }];
}

function tolerates(tolerations: Obj[], taint: { key: string; value: string; effect: string }): boolean {
  return tolerations.some((t) => {
    if (t.effect !== undefined && t.effect !== taint.effect) return false;
    if (t.operator === "Exists") return t.key === undefined || t.key === taint.key;
    return t.key === taint.key && t.value === taint.value;
  });
}

/** How many nodes run a DaemonSet's pod: those whose pool labels its nodeSelector matches and whose taints it tolerates. */
export function daemonSetNodes(podSpec: Obj, pools: PoolCapacity[]): number {
  const selector = obj(podSpec.nodeSelector);
  const tolerations = arr(podSpec.tolerations);
  return pools
    .filter((p) => {
      const labels: Record<string, unknown> = { [NODE_POOL_LABEL]: p.pool, "kubernetes.io/os": "linux" };
      return Object.entries(selector).every(([k, v]) => labels[k] === v) && poolTaints(p).every((t) => tolerates(tolerations, t));
    })
    .reduce((n, p) => n + p.count, 0);
}

function podTemplate(kind: string, r: RecordedResource, pools: PoolCapacity[]): { podSpec: Obj; podMeta: Obj; replicas: number } {
  const spec = obj(r.inputs.spec);
  switch (kind) {
    case "Pod":
      return { podSpec: spec, podMeta: obj(r.inputs.metadata), replicas: 1 };
    case "CronJob": {
      const job = obj(obj(spec.jobTemplate).spec);
      return { podSpec: obj(obj(job.template).spec), podMeta: obj(obj(job.template).metadata), replicas: Number(job.parallelism ?? 1) };
    }
    case "Job":
      return { podSpec: obj(obj(spec.template).spec), podMeta: obj(obj(spec.template).metadata), replicas: Number(spec.parallelism ?? 1) };
    case "DaemonSet": {
      const podSpec = obj(obj(spec.template).spec);
      return { podSpec, podMeta: obj(obj(spec.template).metadata), replicas: daemonSetNodes(podSpec, pools) };
    }
    default:
      return { podSpec: obj(obj(spec.template).spec), podMeta: obj(obj(spec.template).metadata), replicas: Number(spec.replicas ?? 1) };
  }
}

const fmt = (c: { cpu: number; memoryMiB: number }) => `${c.cpu.toFixed(2)} CPU, ${(c.memoryMiB / 1024).toFixed(2)} GiB`;

/** The plan's capacity section: a summary, the largest consumers, and a blocking verdict. */
export function renderCapacity(report: CapacityReport): string[] {
  const pct = (a: number, b: number) => `${((a / b) * 100).toFixed(0)}%`;
  const out = [
    ...report.nodes.map((n) => `${n.count} × ${n.machineType} (${n.role}): ${fmt(n)} allocatable each`),
    `allocatable ${fmt(report.allocatable)}; budget with ${CAPACITY_HEADROOM * 100}% headroom ${fmt(report.budget)}`,
    `requested ${fmt(report.requested)} (CPU ${pct(report.requested.cpu, report.budget.cpu)}, memory ${pct(report.requested.memoryMiB, report.budget.memoryMiB)} of budget)`,
    `on the agents only (pinned there, and DaemonSets): ${fmt(report.agents.requested)} of their budget ${fmt(report.agents.budget)}`,
    ...[...report.lines]
      .sort((a, b) => b.memoryMiB - a.memoryMiB)
      .map((l) => `  ${l.workload} ×${l.pods}: ${(l.cpu * 1000).toFixed(0)}m CPU, ${l.memoryMiB.toFixed(0)} MiB`),
  ];
  if (report.oversizedPods.length > 0) out.push(`pods larger than any node: ${report.oversizedPods.join(", ")}`);
  out.push(
    report.fits
      ? "OK: the stack fits its nodes with headroom"
      : "FAIL: the stack, or what must run on the agents, does not fit its nodes with headroom; add or enlarge nodes (titanium:cluster) or lower requests (titanium:charts.*.resources, titanium:services, titanium:data)",
  );
  return out;
}
