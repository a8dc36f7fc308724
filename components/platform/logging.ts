import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { TitaniumConfig } from "../../stacks/config";
import { offValues } from "./chart-workloads";
import { type ChartsConfig, chartRelease, helmTplLiteral, type VolumePlacement } from "./helm";
import { LOKI, NAMESPACES } from "./names";

export interface LoggingArgs {
  /** Kubernetes provider of the cluster layer. */
  provider: k8s.Provider;
  /** Pinned charts and per-workload resources (`loki`, `alloy` are used). */
  charts: ChartsConfig;
  /** Loki retention and volume size. */
  observability: TitaniumConfig["observability"];
  /** Loki's volume: its StorageClass and the nodes its pod needs. */
  volumes: VolumePlacement;
  /** Must exist first: the namespace, and the monitoring CRDs (Loki's and Alloy's ServiceMonitors). */
  dependsOn: pulumi.Resource[];
}

/** Loki's push endpoint (single binary, no nginx gateway). */
export const LOKI_PUSH_URL = `http://${LOKI.service}.${NAMESPACES.logging}.svc.cluster.local:${LOKI.port}/loki/api/v1/push`;

/** pino's numeric levels and the names the services may log: anything else gets no `level` label. */
const LEVELS: [string, string[]][] = [
  ["trace", ["10", "trace"]],
  ["debug", ["20", "debug"]],
  ["info", ["30", "info"]],
  ["warn", ["40", "warn", "warning"]],
  ["error", ["50", "error"]],
  ["fatal", ["60", "fatal"]],
];
const levelTemplate =
  "{{ $l := ToLower .Value }}" +
  LEVELS.map(([name, values], i) => `{{ ${i === 0 ? "if" : "else if"} or ${values.map((v) => `(eq $l "${v}")`).join(" ")} }}${name}`).join("") +
  "{{ end }}";

/**
 * Labels `loki.source.kubernetes` puts on every stream besides its target's (Alloy's kubetail
 * `PrepareLabels`): `instance` is `<namespace>/<pod>:<container>`, a pod name in a label, and `job`
 * the component's id. The pipeline drops both.
 */
export const SOURCE_ADDED_LABELS = ["instance", "job"] as const;

/**
 * Alloy pipeline: every pod's logs through the Kubernetes API (one Deployment, no host mounts),
 * labelled with namespace, app and container only (no pod names or request ids: bounded
 * cardinality); the Titanium services' JSON logs also get their `level` as a label.
 */
export const ALLOY_CONFIG = `discovery.kubernetes "pods" {
  role = "pod"
}

discovery.relabel "pods" {
  targets = discovery.kubernetes.pods.targets
  rule {
    source_labels = ["__meta_kubernetes_namespace"]
    target_label  = "namespace"
  }
  rule {
    source_labels = ["__meta_kubernetes_pod_label_app_kubernetes_io_name", "__meta_kubernetes_pod_label_app"]
    separator     = ";"
    regex         = ";*([^;]+).*"
    target_label  = "app"
  }
  rule {
    source_labels = ["__meta_kubernetes_pod_container_name"]
    target_label  = "container"
  }
}

loki.source.kubernetes "pods" {
  targets    = discovery.relabel.pods.output
  forward_to = [loki.process.pods.receiver]
}

loki.process "pods" {
  forward_to = [loki.write.loki.receiver]

  // loki.source.kubernetes adds instance="<namespace>/<pod>:<container>" (a new stream per pod) and job.
  stage.label_drop {
    values = ${JSON.stringify([...SOURCE_ADDED_LABELS])}
  }

  stage.match {
    selector = "{namespace=\\"${NAMESPACES.app}\\"}"

    stage.json {
      expressions = { level = "level" }
    }

    stage.template {
      source   = "level"
      template = ${JSON.stringify(levelTemplate)}
    }

    stage.labels {
      values = { level = "" }
    }
  }
}

loki.write "loki" {
  endpoint {
    url = "${LOKI_PUSH_URL}"
  }
}
`;

/** Loki in single-binary (monolithic) mode on a persistent volume, and Alloy shipping pod logs to it. */
export class Logging extends pulumi.ComponentResource {
  /** The Loki release. */
  public readonly loki: k8s.helm.v3.Release;

  constructor(name: string, args: LoggingArgs, opts?: pulumi.ComponentResourceOptions) {
    super("titanium:platform:Logging", name, {}, opts);
    const k = { parent: this, provider: args.provider };
    const o = args.observability;

    this.loki = chartRelease(
      `${name}-loki`,
      "loki",
      args.charts,
      {
        deploymentMode: "Monolithic",
        loki: {
          auth_enabled: false,
          commonConfig: { replication_factor: 1 },
          storage: { type: "filesystem" },
          schemaConfig: {
            configs: [{ from: "2024-04-01", store: "tsdb", object_store: "filesystem", schema: "v13", index: { prefix: "index_", period: "24h" } }],
          },
          limits_config: { retention_period: o.lokiRetention },
          // Retention is enforced by the compactor.
          compactor: { retention_enabled: true, delete_request_store: "filesystem" },
        },
        singleBinary: {
          replicas: 1,
          persistence: { enabled: true, size: `${o.lokiStorageGi}Gi`, ...(args.volumes.storageClassName ? { storageClass: args.volumes.storageClassName } : {}) },
          nodeSelector: { ...args.volumes.nodeSelector },
        },
        backend: { replicas: 0 },
        read: { replicas: 0 },
        write: { replicas: 0 },
        // Caches, gateway, canary, rules sidecar and test pod off (chart-workloads.ts says why).
        ...offValues("loki"),
        monitoring: { serviceMonitor: { enabled: true } },
      },
      { ...k, dependsOn: [...args.volumes.dependsOn, ...args.dependsOn] },
    );

    chartRelease(
      `${name}-alloy`,
      "alloy",
      args.charts,
      {
        controller: { type: "deployment", replicas: 1 },
        // The chart passes `content` through `tpl`: escaped, so the template stage reaches Alloy intact.
        alloy: { configMap: { create: true, content: helmTplLiteral(ALLOY_CONFIG) } },
        serviceMonitor: { enabled: true },
      },
      { ...k, dependsOn: [this.loki] },
    );

    this.registerOutputs({});
  }
}
