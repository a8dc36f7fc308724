import { coversHostPath, matchWorkloads, objectName, podTemplate, workloadMatcherListSchema, type Obj, type WorkloadMatcher } from "../lib/k8s";
import { resourcePolicy, type BaseConfig } from "../lib/policy";

interface Config extends BaseConfig {
  allowed: WorkloadMatcher[];
}

/**
 * The workloads that may mount node paths: the log shipper (Alloy reads /var/log/pods), the node
 * exporter (reads /proc, /sys and the root filesystem, read-only) and the GCE PD CSI node plugin
 * (exactly the paths it needs, in its own namespace). Matched by the names and chart the platform
 * layer uses; a stack may replace the list in its policy config.
 */
export const DEFAULT_HOST_PATH_ALLOWED: WorkloadMatcher[] = [
  { names: ["alloy", "*-alloy"], charts: ["alloy"], reason: "log shipper: reads pod logs under /var/log on each node" },
  {
    names: ["prometheus-node-exporter", "*-node-exporter", "node-exporter"],
    charts: ["prometheus-node-exporter"],
    reason: "node exporter: reads /proc, /sys and / of the node, read-only",
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

/** hostPath volumes only in allow-listed workloads. */
export const hostPathAllowList = resourcePolicy<Config>(
  {
    name: "k8s-host-path-allow-list",
    description: "Only allow-listed workloads (the log shipper, node exporter and the PD CSI node plugin) mount hostPath volumes, and only the paths their entry names.",
    severity: "high",
    enforcementLevel: "mandatory",
    remediationSteps:
      "Use a PersistentVolumeClaim, emptyDir, ConfigMap or projected volume instead of hostPath. If a new node agent really needs the node's files, add it to the policy's `allowed` list in policies/config.<stack>.json with a reason.",
    configSchema: {
      properties: {
        allowed: { ...workloadMatcherListSchema, default: DEFAULT_HOST_PATH_ALLOWED, description: "Workloads allowed to mount hostPath volumes." },
      },
    },
  },
  (args, judge, report, config) => {
    const props = args.props as Obj;
    judge.check(() => {
      const tpl = podTemplate(args.type, props);
      if (!tpl) return;
      const volumes = Array.isArray(tpl.spec.volumes) ? (tpl.spec.volumes as Obj[]) : [];
      const hostPaths = volumes.filter((v) => v.hostPath !== undefined);
      if (hostPaths.length === 0) return;
      const entries = matchWorkloads(config.allowed, props, tpl);
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
