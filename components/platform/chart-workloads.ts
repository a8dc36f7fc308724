/**
 * Every platform chart, and every workload each one runs: where its `resources` live in the
 * chart's values and how many pods of it run. The components set each workload's resources from
 * `config.charts.<chart>.resources.<workload>` at exactly these paths, the capacity check counts
 * them from the values the program passes, and the policy pack reads {@link chartWorkloads} to
 * check requests/limits inside `helm.v3.Release` values (ADR 0020).
 */
import type { TitaniumConfig } from "../../stacks/config";
import { NAMESPACES, type NamespaceKey, RELEASES } from "./names";

export type ChartKey = keyof TitaniumConfig["charts"];

/** How many pods carry a workload's container. */
export type PodCount =
  /** Sum of the replica counts at these values paths (`fallback` where a path is unset). */
  | { replicaPaths: string[]; fallback: number }
  /** A DaemonSet: one per node. */
  | "perNode"
  /** The Istio sidecar: one per pod in a meshed namespace. */
  | "perMeshedPod"
  /** A Helm hook Job: runs during install/upgrade, then completes (not a steady-state load). */
  | "hook"
  /** An init container the chart starts with empty `resources`: it runs, and ends, before its pod's containers. */
  | "init";

export interface ChartWorkload {
  /** Values path (dot-separated) of the workload's `resources` block. */
  resources: string;
  pods: PodCount;
  /** Containers per pod sharing this resources block (Grafana runs two sidecars with one block). */
  containersPerPod?: number;
  /** Values paths of the persistent volume each pod claims (the cost estimate prices Persistent Disks). */
  volume?: { size: string; storageClass: string };
  /** Values path of the pods' `nodeSelector`, where the components may pin them (the capacity check's agents share). */
  nodeSelector?: string;
}

export interface ChartInfo {
  /** The Helm chart name (`chart` input of the Release). */
  chart: string;
  /** Release name. */
  release: string;
  /** Namespace the release installs into. */
  namespace: NamespaceKey;
  /** Workloads by the names used in `config.charts.<key>.resources`. */
  workloads: Record<string, ChartWorkload>;
  /**
   * Values switches of workloads the chart runs by default and Titanium keeps off (their resources are
   * never set): the component sets each to `false` ({@link offValues}) and the policy pack refuses any
   * other value; a workload turned on joins `workloads` instead.
   */
  off?: readonly string[];
}

const replicas = (fallback: number, ...replicaPaths: string[]): PodCount => ({ replicaPaths, fallback });

/** The platform charts in install order. */
export const CHARTS = {
  istioBase: { chart: "base", release: RELEASES.istioBase, namespace: "istio", workloads: {} },
  istioCni: {
    chart: "cni",
    release: RELEASES.istioCni,
    namespace: "istio",
    workloads: { cniNode: { resources: "resources", pods: "perNode" } },
  },
  istiod: {
    chart: "istiod",
    release: RELEASES.istiod,
    namespace: "istio",
    workloads: {
      discovery: { resources: "resources", pods: replicas(1, "replicaCount") },
      proxy: { resources: "global.proxy.resources", pods: "perMeshedPod" },
    },
  },
  istioGateway: {
    chart: "gateway",
    release: RELEASES.istioGateway,
    namespace: "istio",
    workloads: { gateway: { resources: "resources", pods: replicas(1, "replicaCount"), nodeSelector: "nodeSelector" } },
  },
  externalSecrets: {
    chart: "external-secrets",
    release: RELEASES.externalSecrets,
    namespace: "externalSecrets",
    workloads: {
      controller: { resources: "resources", pods: replicas(1, "replicaCount"), nodeSelector: "nodeSelector" },
      webhook: { resources: "webhook.resources", pods: replicas(1, "webhook.replicaCount") },
      certController: { resources: "certController.resources", pods: replicas(1, "certController.replicaCount") },
    },
  },
  kubePrometheusStack: {
    chart: "kube-prometheus-stack",
    release: RELEASES.kubePrometheusStack,
    namespace: "monitoring",
    workloads: {
      operator: { resources: "prometheusOperator.resources", pods: replicas(1) },
      admissionPatch: { resources: "prometheusOperator.admissionWebhooks.patch.resources", pods: "hook" },
      // The operator injects one config-reloader into every Prometheus and Alertmanager pod.
      configReloader: {
        resources: "prometheusOperator.prometheusConfigReloader.resources",
        pods: replicas(1, "prometheus.prometheusSpec.replicas", "alertmanager.alertmanagerSpec.replicas"),
      },
      prometheus: {
        resources: "prometheus.prometheusSpec.resources",
        pods: replicas(1, "prometheus.prometheusSpec.replicas"),
        nodeSelector: "prometheus.prometheusSpec.nodeSelector",
        volume: {
          size: "prometheus.prometheusSpec.storageSpec.volumeClaimTemplate.spec.resources.requests.storage",
          storageClass: "prometheus.prometheusSpec.storageSpec.volumeClaimTemplate.spec.storageClassName",
        },
      },
      alertmanager: { resources: "alertmanager.alertmanagerSpec.resources", pods: replicas(1, "alertmanager.alertmanagerSpec.replicas") },
      grafana: {
        resources: "grafana.resources",
        pods: replicas(1, "grafana.replicas"),
        nodeSelector: "grafana.nodeSelector",
        volume: { size: "grafana.persistence.size", storageClass: "grafana.persistence.storageClassName" },
      },
      // Dashboards and datasources sidecars share one block.
      // Run because Grafana's persistence is on (busybox `chown -R` over the data volume).
      grafanaInitChownData: { resources: "grafana.initChownData.resources", pods: "init" },
      grafanaSidecar: { resources: "grafana.sidecar.resources", pods: replicas(1, "grafana.replicas"), containersPerPod: 2, nodeSelector: "grafana.nodeSelector" },
      kubeStateMetrics: { resources: "kube-state-metrics.resources", pods: replicas(1) },
      nodeExporter: { resources: "prometheus-node-exporter.resources", pods: "perNode" },
    },
  },
  loki: {
    chart: "loki",
    release: RELEASES.loki,
    namespace: "logging",
    // The memcached caches (8 GiB each by default), the nginx gateway, the canary, the rules sidecar, the Helm test pod.
    off: ["chunksCache.enabled", "resultsCache.enabled", "gateway.enabled", "lokiCanary.enabled", "sidecar.rules.enabled", "test.enabled"],
    workloads: {
      singleBinary: {
        resources: "singleBinary.resources",
        pods: replicas(0, "singleBinary.replicas"),
        nodeSelector: "singleBinary.nodeSelector",
        volume: { size: "singleBinary.persistence.size", storageClass: "singleBinary.persistence.storageClass" },
      },
    },
  },
  alloy: {
    chart: "alloy",
    release: RELEASES.alloy,
    namespace: "logging",
    workloads: {
      alloy: { resources: "alloy.resources", pods: replicas(1, "controller.replicas") },
      configReloader: { resources: "configReloader.resources", pods: replicas(1, "controller.replicas") },
    },
  },
  argoCd: {
    chart: "argo-cd",
    release: RELEASES.argoCd,
    namespace: "argocd",
    off: ["dex.enabled", "notifications.enabled"],
    workloads: {
      controller: { resources: "controller.resources", pods: replicas(1, "controller.replicas") },
      server: { resources: "server.resources", pods: replicas(1, "server.replicas") },
      repoServer: { resources: "repoServer.resources", pods: replicas(1, "repoServer.replicas") },
      applicationSet: { resources: "applicationSet.resources", pods: replicas(1, "applicationSet.replicas") },
      redis: { resources: "redis.resources", pods: replicas(1) },
      // The repo-server's init container that copies the argocd binary into a shared volume.
      repoServerCopyutil: { resources: "repoServer.copyutil.resources", pods: "init" },
      redisSecretInit: { resources: "redisSecretInit.resources", pods: "hook" },
    },
  },
} as const satisfies Record<ChartKey, ChartInfo>;

/** Chart info by Helm chart name (the `chart` input of a Release). */
export const CHARTS_BY_NAME: Record<string, ChartInfo> = Object.fromEntries(Object.values(CHARTS).map((c) => [c.chart, c]));

/**
 * Contract with the policy pack: for each platform Helm chart (by chart name), the values paths
 * holding each workload's `resources`, so a policy can check requests and limits inside a Release.
 */
export const chartWorkloads: { [chartName: string]: string[] } = Object.fromEntries(
  Object.values(CHARTS).map((c) => [c.chart, Object.values(c.workloads as Record<string, ChartWorkload>).map((w) => w.resources)]),
);

/** Contract with the policy pack: for each chart (by chart name), the values switches that must be `false`. */
export const chartSwitchesOff: { [chartName: string]: string[] } = Object.fromEntries(
  Object.values(CHARTS as Record<ChartKey, ChartInfo>).flatMap((c) => (c.off ? [[c.chart, [...c.off]]] : [])),
);

/** A chart's `off` switches as values (`{ dex: { enabled: false } }`), to spread into the values it gets. */
export function offValues(key: ChartKey): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  for (const path of (CHARTS as Record<ChartKey, ChartInfo>)[key].off ?? []) {
    const keys = path.split(".");
    let at = values;
    for (const k of keys.slice(0, -1)) at = (at[k] ??= {}) as Record<string, unknown>;
    at[keys.at(-1)!] = false;
  }
  return values;
}

/** The namespace a chart installs into. */
export function chartNamespace(key: ChartKey): string {
  return NAMESPACES[CHARTS[key].namespace];
}

/** Pods of a replicated workload: the sum of its replica paths in the values (the fallback where unset). */
export function replicasOf(values: unknown, pods: { replicaPaths: string[]; fallback: number }): number {
  return pods.replicaPaths.length === 0 ? pods.fallback : pods.replicaPaths.reduce((n, p) => n + Number(getPath(values, p) ?? pods.fallback), 0);
}

/** Reads a dot-separated path from nested values. */
export function getPath(values: unknown, path: string): unknown {
  let cur: unknown = values;
  for (const part of path.split(".")) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

/** Writes a dot-separated path into nested values, creating objects on the way. */
export function setPath(values: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split(".");
  let cur = values;
  for (const part of parts.slice(0, -1)) {
    const next = cur[part];
    if (next === undefined) cur[part] = {};
    else if (next === null || typeof next !== "object" || Array.isArray(next)) throw new Error(`values path ${path}: "${part}" is not an object`);
    cur = cur[part] as Record<string, unknown>;
  }
  cur[parts[parts.length - 1]!] = value;
}

/**
 * The chart's values with every workload's requests/limits from config placed at its path.
 * Components build their values through this, so the table above and the values cannot drift.
 */
export function withWorkloadResources(
  key: ChartKey,
  resources: Record<string, { requests: { cpu: string; memory: string }; limits: { cpu: string; memory: string } }>,
  values: Record<string, unknown>,
): Record<string, unknown> {
  const workloads = CHARTS[key].workloads as Record<string, ChartWorkload>;
  for (const [name, w] of Object.entries(workloads)) {
    const spec = resources[name];
    if (!spec) throw new Error(`titanium:charts.${key}.resources.${name}: missing requests/limits for the ${name} workload`);
    setPath(values, w.resources, structuredClone(spec));
  }
  return values;
}
