import { matchWorkload, objectName, podTemplate, workloadMatcherListSchema, type Obj, type WorkloadMatcher } from "../lib/k8s";
import { resourcePolicy, type BaseConfig } from "../lib/policy";

interface Config extends BaseConfig {
  allowed: WorkloadMatcher[];
}

/**
 * The workloads that may mount node paths: the log shipper (Alloy reads /var/log/pods) and the node
 * exporter (reads /proc, /sys and the root filesystem, read-only). Matched by the names and chart
 * the platform layer uses; a stack may replace the list in its policy config.
 */
export const DEFAULT_HOST_PATH_ALLOWED: WorkloadMatcher[] = [
  { names: ["alloy", "*-alloy"], charts: ["alloy"], reason: "log shipper: reads pod logs under /var/log on each node" },
  {
    names: ["prometheus-node-exporter", "*-node-exporter", "node-exporter"],
    charts: ["prometheus-node-exporter"],
    reason: "node exporter: reads /proc, /sys and / of the node, read-only",
  },
];

/** hostPath volumes only in allow-listed workloads. */
export const hostPathAllowList = resourcePolicy<Config>(
  {
    name: "k8s-host-path-allow-list",
    description: "Only allow-listed workloads (the log shipper and node exporter) mount hostPath volumes.",
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
      if (matchWorkload(config.allowed, props, tpl)) return;
      for (const v of hostPaths) {
        report(`${objectName(props, args.name)} mounts hostPath ${String((v.hostPath as Obj).path)} (volume "${String(v.name)}") and is not on the allow-list`);
      }
    });
  },
);
