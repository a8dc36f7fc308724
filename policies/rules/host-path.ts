import type { ReportViolation } from "@pulumi/policy";
import {
  chartName,
  coversHostPath,
  getPath,
  HELM_RELEASE_TYPES,
  matchWorkloads,
  objectName,
  podTemplate,
  workloadMatcherListSchema,
  type Obj,
  type WorkloadMatcher,
} from "../lib/k8s";
import { resourcePolicy, type BaseConfig, type Judge } from "../lib/policy";
import { chartEntries, chartNamespace, chartTableSchema, isOn, reportOpaqueRelease, toggleSchema, type ValuesToggle, valuesOwner, valuesPath, walkValues } from "../lib/values";
import { K3S_CNI_DIRS } from "../../components/platform/names";

/**
 * The host paths a chart's pods mount, as far as a Helm release's values decide them (the release
 * is one opaque resource: its DaemonSets are never seen as objects).
 */
export interface ChartHostMounts {
  /** The chart whose pods mount them; allow-list entries name it in `charts`. */
  chart: string;
  /** Where that chart's values sit in the release's values (a subchart's key); the release's own values when absent. */
  valuesPrefix?: string;
  /** A boolean path of the release's values that turns the chart's pods on (a subchart's `enabled`), and its default. */
  enabledBy?: ValuesToggle;
  /**
   * Host paths the pods mount: always, or when a boolean values path (under `valuesPrefix`) is on;
   * `pathFrom` names the values key that replaces the chart's default path when set.
   */
  mounts: { hostPath: string; pathFrom?: string; when?: ValuesToggle }[];
}

interface Config extends BaseConfig {
  allowed: WorkloadMatcher[];
  chartHostMounts: Record<string, ChartHostMounts[]>;
}

/** prometheus-node-exporter's DaemonSet (chart 4.x): /proc and /sys always, / unless `hostRootFsMount.enabled` is false. */
const NODE_EXPORTER_MOUNTS: ChartHostMounts["mounts"] = [
  { hostPath: "/proc" },
  { hostPath: "/sys" },
  { hostPath: "/", when: { path: "hostRootFsMount.enabled", default: true } },
];

/**
 * The workloads that may mount node paths, each in one namespace and only the paths it names:
 *
 * - the node exporter (kube-prometheus-stack's `prometheus-node-exporter` subchart in `monitoring`:
 *   `/proc`, `/sys` and, read-only, the node's root `/` for filesystem metrics);
 * - the Istio CNI agent (the `cni` chart in `istio-system`: K3s' CNI binary and configuration
 *   directories, its socket directory, the network namespaces and /proc);
 * - the GCE PD CSI node plugin (its eight kubelet, device and udev paths, in its own namespace).
 *
 * The log shipper is not on it: Alloy runs as one Deployment reading logs through the Kubernetes
 * API (`components/platform/logging.ts`, `loki.source.kubernetes`), with no host mount. A stack that
 * switches it to file tailing adds `{ charts: ["alloy"], namespace: "logging", hostPaths: ["/var/log"] }`.
 */
export const DEFAULT_HOST_PATH_ALLOWED: WorkloadMatcher[] = [
  {
    names: ["prometheus-node-exporter", "*-prometheus-node-exporter"],
    charts: ["prometheus-node-exporter"],
    namespace: "monitoring",
    kinds: ["DaemonSet"],
    hostPaths: NODE_EXPORTER_MOUNTS.map((m) => m.hostPath),
    reason: "node exporter: reads the node's /proc, /sys and root filesystem (read-only) for node metrics",
  },
  {
    names: ["istio-cni-node"],
    charts: ["cni"],
    namespace: "istio-system",
    kinds: ["DaemonSet"],
    hostPaths: [K3S_CNI_DIRS.binDir, K3S_CNI_DIRS.confDir, "/var/run/istio-cni", "/var/run/netns", "/proc"],
    reason:
      "Istio CNI agent: installs its plugin into K3s' CNI directories, so restricted pods need no NET_ADMIN init container, and repairs pods through /proc and the network namespaces",
  },
  {
    names: ["csi-gce-pd-node"],
    namespace: "gce-pd-csi-driver",
    kinds: ["DaemonSet"],
    hostPaths: [
      "/var/lib/kubelet",
      "/var/lib/kubelet/plugins/pd.csi.storage.gke.io",
      "/var/lib/kubelet/plugins_registry",
      "/dev",
      "/etc/udev",
      "/lib/udev",
      "/run/udev",
      "/sys",
    ],
    reason:
      "GCE PD CSI node plugin: mounts attached disks into the kubelet's pod directories, registers its socket with the kubelet, and finds the disks under /dev and /sys through the node's udev",
  },
];


/**
 * Per release chart, the host mounts its values switch on (checked against the pinned charts in
 * components/platform/chart-defaults: alloy 1.11.1 `alloy.mounts.*`; kube-prometheus-stack 88.5.3 `nodeExporter.enabled`
 * and its `prometheus-node-exporter` subchart; istio `cni` 1.30's DaemonSet template). Explicit
 * `hostPath` keys anywhere in a release's values (extra volumes, `extraHostVolumeMounts[].hostPath`)
 * count too, for every chart. Every chart a release may install is listed, with no mounts when its
 * pods have none: a release of a chart missing here is reported, not passed.
 */
export const DEFAULT_CHART_HOST_MOUNTS: Record<string, ChartHostMounts[]> = {
  cni: [
    {
      chart: "cni",
      mounts: [
        { hostPath: "/opt/cni/bin", pathFrom: "cniBinDir" },
        { hostPath: "/etc/cni/net.d", pathFrom: "cniConfDir" },
        { hostPath: "/var/run/istio-cni" },
        { hostPath: "/var/run/netns", pathFrom: "cniNetnsDir" },
        { hostPath: "/proc", when: { path: "repair.repairPods", default: true } },
        { hostPath: "/var/run/ztunnel", when: { path: "ambient.enabled", default: false } },
      ],
    },
  ],
  base: [],
  istiod: [],
  gateway: [],
  loki: [],
  "argo-cd": [],
  "external-secrets": [],
  alloy: [
    {
      chart: "alloy",
      mounts: [
        { hostPath: "/var/log", when: { path: "alloy.mounts.varlog", default: false } },
        { hostPath: "/var/lib/docker/containers", when: { path: "alloy.mounts.dockercontainers", default: false } },
      ],
    },
  ],
  "prometheus-node-exporter": [{ chart: "prometheus-node-exporter", mounts: NODE_EXPORTER_MOUNTS }],
  "kube-prometheus-stack": [
    { chart: "prometheus-node-exporter", valuesPrefix: "prometheus-node-exporter", enabledBy: { path: "nodeExporter.enabled", default: true }, mounts: NODE_EXPORTER_MOUNTS },
  ],
};

/** Every entry of this allow-list names its namespace and its host paths. */
const allowedSchema = {
  ...workloadMatcherListSchema,
  items: { ...workloadMatcherListSchema.items, required: ["reason", "namespace", "hostPaths"] },
};

/** hostPath volumes only in allow-listed workloads, in their namespace, and only the paths their entry names. */
export const hostPathAllowList = resourcePolicy<Config>(
  {
    name: "k8s-host-path-allow-list",
    description:
      "Only allow-listed workloads (the node exporter, the PD CSI node plugin and the Istio CNI agent), each in its own namespace, mount hostPath volumes, and only the paths their entry names; a PersistentVolume backed by a node path (hostPath or local) is judged the same way, in the namespace of the claim it is reserved for; Helm releases are judged by the host mounts their values switch on.",
    severity: "high",
    enforcementLevel: "mandatory",
    remediationSteps:
      "Use a PersistentVolumeClaim of a real storage class (not a hostPath or local PersistentVolume), emptyDir, ConfigMap or projected volume instead of hostPath. If a new node agent really needs the node's files, add it to the policy's `allowed` list in policies/config.<stack>.json with its namespace, its exact host paths and a reason (for a chart, also its host-mount toggles in `chartHostMounts`).",
    configSchema: {
      properties: {
        allowed: {
          ...allowedSchema,
          default: DEFAULT_HOST_PATH_ALLOWED,
          description: "Workloads allowed to mount hostPath volumes: each with its namespace, the exact host paths and the reason.",
        },
        chartHostMounts: chartTableSchema(
          "mounts",
          { properties: { hostPath: { type: "string" }, pathFrom: { type: "string" }, when: toggleSchema }, required: ["hostPath"] },
          DEFAULT_CHART_HOST_MOUNTS,
          "Per Helm chart (of a Release), the host paths its pods mount as its values decide.",
        ),
      },
    },
  },
  (args, judge, report, config) => {
    const props = args.props as Obj;
    const allowed = config.allowed;
    if (HELM_RELEASE_TYPES.includes(args.type)) {
      judge.check(() => reportOpaqueRelease(props, chartName(props) ?? "(none)", report));
      judge.check(() => checkRelease(props, allowed, config.chartHostMounts, judge, report));
      return;
    }
    if (args.type === PERSISTENT_VOLUME) {
      judge.check(() => checkPersistentVolume(props, args.name, allowed, report));
      return;
    }
    judge.check(() => {
      const tpl = podTemplate(args.type, props);
      if (!tpl) return;
      const volumes = Array.isArray(tpl.spec.volumes) ? (tpl.spec.volumes as Obj[]) : [];
      const hostPaths = volumes.filter((v) => v.hostPath !== undefined);
      if (hostPaths.length === 0) return;
      const entries = matchWorkloads(allowed, props, tpl);
      for (const v of hostPaths) {
        const path = String((v.hostPath as Obj).path);
        if (entries.some((e) => coversHostPath(e, path))) continue;
        report(
          entries.length === 0
            ? `${objectName(props, args.name)} mounts hostPath ${path} (volume "${String(v.name)}") and is not on the allow-list`
            : `${objectName(props, args.name)} mounts hostPath ${path} (volume "${String(v.name)}"), which its allow-list entry does not name`,
        );
      }
    });
  },
);

/** A PersistentVolume is a hostPath by another name when it sets `spec.hostPath` or `spec.local`. */
export const PERSISTENT_VOLUME = "kubernetes:core/v1:PersistentVolume";
const NODE_VOLUME_SOURCES = ["hostPath", "local"] as const;

/**
 * A PersistentVolume backed by a node directory (`hostPath`, or a `local` volume) gives that directory
 * to whichever pod mounts the claim bound to it: judged against the same entries as a pod's hostPath
 * volume, in the namespace of the claim it is reserved for (`spec.claimRef`), matched by the volume's
 * own name and labels, and only for kinds that include `PersistentVolume`. Without a `claimRef` any claim
 * in any namespace may bind it, so no entry (each bound to one namespace) admits it.
 */
function checkPersistentVolume(props: Obj, fallback: string, allowed: WorkloadMatcher[], report: ReportViolation): void {
  const spec = (props.spec ?? {}) as Obj;
  const paths = NODE_VOLUME_SOURCES.filter((source) => spec[source] !== undefined).map((source) => ({
    source,
    path: String(((spec[source] ?? {}) as Obj).path),
  }));
  if (paths.length === 0) return;
  const who = `PersistentVolume ${objectName(props, fallback)}`;
  const claimRef = spec.claimRef as Obj | undefined;
  const claimNs = claimRef && typeof claimRef.namespace === "string" && claimRef.namespace !== "" ? claimRef.namespace : undefined;
  if (claimNs === undefined) {
    for (const p of paths) {
      report(`${who} exposes the node's ${p.path} (spec.${p.source}) to a claim in any namespace (no spec.claimRef), which no allow-list entry can admit`);
    }
    return;
  }
  // An entry without `kinds` matches every kind: it was written for pods, never for volumes.
  const entries = matchWorkloads(allowed, props, undefined, claimNs).filter((e) => e.kinds?.includes("PersistentVolume") === true);
  for (const p of paths) {
    if (entries.some((e) => coversHostPath(e, p.path))) continue;
    report(
      entries.length === 0
        ? `${who} exposes the node's ${p.path} (spec.${p.source}) to claim ${claimNs}/${String(claimRef!.name)} and is not on the allow-list`
        : `${who} exposes the node's ${p.path} (spec.${p.source}), which its allow-list entry does not name`,
    );
  }
}

interface ReleaseMount {
  /** The chart whose pods mount it. */
  chart: string;
  namespace: string;
  hostPath: string;
  /** Why: `always`, or the values path that switches it on or names it. */
  source: string;
}

/**
 * The Helm-values side: the host paths a release's pods mount (the chart's toggles from
 * `chartHostMounts`, and every explicit `hostPath` in the values), each judged against the
 * allow-list entries that name the mounting chart (`charts`) in the namespace its pods run in.
 */
function checkRelease(props: Obj, allowed: WorkloadMatcher[], table: Record<string, ChartHostMounts[]>, judge: Judge, report: ReportViolation): void {
  const release = chartName(props) ?? "(none)";
  const values = (props.values ?? {}) as Obj;
  const known = chartEntries(table, release, "chartHostMounts", "the host paths its pods mount are unknown: add it (with no mounts if it has none)", report);
  if (!known) return;
  const mounts: ReleaseMount[] = [];
  for (const c of known) {
    judge.check(() => {
      if (c.enabledBy && !isOn(values, c.enabledBy)) return;
      const namespace = chartNamespace(props, c.valuesPrefix);
      for (const m of c.mounts) {
        if (m.when && !isOn(values, m.when, c.valuesPrefix)) continue;
        const toggle = m.when && valuesPath(c.valuesPrefix, m.when.path);
        const source = toggle ? `values ${toggle}${getPath(values, toggle) === undefined ? ", on by the chart's default" : ""}` : "always";
        const setPath = m.pathFrom && getPath(values, valuesPath(c.valuesPrefix, m.pathFrom));
        mounts.push({ chart: c.chart, namespace, hostPath: typeof setPath === "string" && setPath !== "" ? setPath : m.hostPath, source });
      }
    });
  }
  // Explicit hostPath values belong to the subchart whose values hold them, else to the release's chart.
  walkValues(values, ({ path, key, value, unknown }) => {
    if (key !== "hostPath") return;
    if (unknown) {
      judge.unknownValue(unknown);
      return;
    }
    const hostPath = typeof value === "string" ? value : value && typeof value === "object" ? (value as Obj).path : undefined;
    if (typeof hostPath !== "string") return;
    const o = valuesOwner(props, release, path);
    mounts.push({ chart: o.chart, namespace: o.namespace, hostPath, source: `values ${path}` });
  });
  for (const m of mounts) {
    const entries = allowed.filter((e) => e.namespace === m.namespace && (e.charts ?? []).includes(m.chart));
    if (entries.some((e) => coversHostPath(e, m.hostPath))) continue;
    const who = m.chart === release ? "its pods" : `its ${m.chart} pods`;
    report(
      `chart "${release}" (namespace ${m.namespace}): ${who} mount hostPath ${m.hostPath} (${m.source}), which no allow-list entry for chart ${m.chart} in namespace ${m.namespace} names`,
    );
  }
}
