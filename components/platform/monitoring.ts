import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { TitaniumConfig } from "../../stacks/config";
import type { ControlPlaneMetrics } from "../cluster/cluster";
import { type ChartsConfig, chartRelease, type VolumePlacement } from "./helm";
import { ADMIN_PATHS, type AppSecretName, GRAFANA, KPS_FULLNAME, LOKI, NAMESPACES } from "./names";
import { ALERT_GROUPS, NOT_USER_ROUTES_REGEX } from "./rules";
import { secretSync } from "./secret-sync";

export interface MonitoringArgs {
  /** Kubernetes provider of the cluster layer. */
  provider: k8s.Provider;
  /** Pinned charts and per-workload resources (`kubePrometheusStack` is used). */
  charts: ChartsConfig;
  /** Retention, storage and the Alertmanager receiver. */
  observability: TitaniumConfig["observability"];
  /**
   * Where admins reach the UIs: the configured host name, else the ingress address. Prometheus builds
   * its UI's links and its redirects from the external URL's path, and alerts link back through it.
   */
  externalHost: pulumi.Input<string>;
  /** Secret Manager secret ids from the cloud layer (`grafana-admin-password` is used). */
  appSecretIds: Record<AppSecretName, pulumi.Input<string>>;
  /** The ClusterSecretStore (ExternalSecrets need it). */
  secretStore: pulumi.Resource;
  /** Prometheus' and Grafana's volumes: their StorageClass and the nodes their pods need. */
  volumes: VolumePlacement;
  /** Where K3s' own components serve their metrics (the cluster layer's `controlPlaneMetrics`). */
  controlPlaneMetrics: ControlPlaneMetrics;
  /** Namespaces (and anything else) that must exist first. */
  dependsOn: pulumi.Resource[];
}

/**
 * The metrics kept from the etcd target. K3s serves the whole process' metric registry on every metrics
 * endpoint (docs.k3s.io/reference/metrics: the API server's, the controllers', ... alongside etcd's), so
 * the etcd job would otherwise duplicate the `apiserver` job's series on every server. The chart's etcd
 * rules read `etcd_*` and `grpc_server_*`; the process' own `process_*` and `go_*` (memory, goroutines) are kept too.
 */
const ETCD_KEPT_METRICS = "etcd_.+|grpc_server_.+|process_.+|go_.+";

/**
 * The job names of K3s' controller manager, scheduler and kube-proxy targets: the chart's defaults, which its
 * rules (`up{job="kube-scheduler"}`, `scheduler_*{job="kube-scheduler"}`, ...) and dashboards select. Passed
 * as the chart's `jobNameOverride` (what its rules and dashboards read) and written onto the targets by a
 * relabeling (what they carry), so the two cannot differ, whichever Service the targets come through.
 */
export const CONTROL_PLANE_JOBS = { controllerManager: "kube-controller-manager", scheduler: "kube-scheduler", proxy: "kube-proxy" } as const;

/**
 * The series kept from those targets. K3s serves its whole process' registry on each of these ports too (a
 * server's holds the API server's, etcd's, the kubelet's ...; an agent's kube-proxy port the kubelet's), so
 * each job keeps only what the chart's rules and dashboards for it read: its component's own family
 * (`workqueue_*` for the controller manager, `scheduler_*`, `kubeproxy_*`), the API client's request counts
 * and latencies, leader election, and the process' `process_*` and `go_*`.
 */
const CLIENT_AND_PROCESS = "rest_client_requests_total|rest_client_request_duration_seconds_.+|process_.+|go_.+";
export const CONTROL_PLANE_KEPT_METRICS = {
  controllerManager: `workqueue_.+|leader_election_master_status|${CLIENT_AND_PROCESS}`,
  scheduler: `scheduler_.+|leader_election_master_status|${CLIENT_AND_PROCESS}`,
  proxy: `kubeproxy_.+|${CLIENT_AND_PROCESS}`,
} as const;

/**
 * The Service the Prometheus operator keeps in kube-system for the kubelets (`prometheusOperator.kubeletService`,
 * the chart's default): one endpoint per Node, at its InternalIP, updated as Nodes come and go. Its labels,
 * as the chart's kubelet ServiceMonitor selects them.
 */
const KUBELET_SERVICE_LABELS = { "app.kubernetes.io/name": "kubelet", "k8s-app": "kubelet" } as const;

const keepOnly = (regex: string) => [{ action: "keep", sourceLabels: ["__name__"], regex }];
const jobLabel = (job: string) => ({ action: "replace", targetLabel: "job", replacement: job });

/** Dashboards provisioned through Grafana's sidecar: every `*.json` beside this file in `dashboards/`. */
export const DASHBOARD_DIR = path.join(__dirname, "dashboards");

/**
 * Stands in a dashboard's JSON for the regex of the kit's probe and scrape routes (`route!~"@NOT_USER_ROUTES@"`
 * on users' traffic, `route=~` on a probes panel): {@link loadDashboards} writes in `NOT_USER_ROUTES_REGEX`
 * (rules.ts), so the dashboards and the alert rules leave the same routes out and the list lives in one place.
 */
export const NOT_USER_ROUTES_PLACEHOLDER = "@NOT_USER_ROUTES@";

/** One dashboard as provisioned: its file, its id (the file's name) and its JSON with the placeholders filled in. */
export interface Dashboard {
  file: string;
  id: string;
  json: string;
}

/** Every dashboard in `dir`, by file name, ready for Grafana; throws on a placeholder it does not know. */
export function loadDashboards(dir: string = DASHBOARD_DIR): Dashboard[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith(".json"))
    .sort()
    .map((file) => ({ file, id: file.replace(/\.json$/, ""), json: renderDashboard(readFileSync(path.join(dir, file), "utf8"), file) }));
}

/** A dashboard's JSON text with {@link NOT_USER_ROUTES_PLACEHOLDER} filled in (in string values, so JSON escaping holds). */
export function renderDashboard(text: string, file = "dashboard"): string {
  const fill = (v: unknown): unknown => {
    if (typeof v === "string") return v.split(NOT_USER_ROUTES_PLACEHOLDER).join(NOT_USER_ROUTES_REGEX);
    if (Array.isArray(v)) return v.map(fill);
    if (v !== null && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, fill(x)]));
    return v;
  };
  const out = JSON.stringify(fill(JSON.parse(text)), null, 2);
  const unknown = /@[A-Z][A-Z_]*@/.exec(out);
  if (unknown) throw new Error(`${file}: unknown placeholder ${unknown[0]}`);
  return out;
}

/**
 * How often Prometheus scrapes (its default for every monitor, and the mesh's pods and istiod explicitly). The
 * chart hands it to Grafana's Prometheus data source as `timeInterval`, which makes the dashboards'
 * `$__rate_interval` at least four scrapes long (a rate over fewer has gaps whenever a scrape is missed).
 */
export const SCRAPE_INTERVAL = "30s";

/** Label the Grafana sidecar watches (kube-prometheus-stack's default, set explicitly). */
const DASHBOARD_LABEL = { grafana_dashboard: "1" };
/** The annotation naming a dashboard ConfigMap's Grafana folder (the sidecar's `folderAnnotation`). */
const DASHBOARD_FOLDER_ANNOTATION = "grafana_folder";
const DATASOURCE_LABEL = { grafana_datasource: "1" };

/** Name of the PodMonitor that scrapes Istio's merged metrics of every meshed pod (ADR 0021). */
export const MESH_POD_MONITOR = "mesh-merged-metrics";

/**
 * kube-prometheus-stack tuned for K3s: Prometheus (retention and storage from config, every
 * monitor and rule in any namespace), Alertmanager with the configured receiver, Grafana under
 * `/grafana` with its admin credentials synced from Secret Manager, the Titanium dashboards, the
 * Loki data source, the scrape of the mesh's merged metrics and the Titanium alert rules.
 */
/**
 * kube-prometheus-stack's default rule groups (`defaultRules.rules.<group>`) turned off: no node runs
 * Windows, and `network` (NodeNetworkInterfaceFlapping only) reads node network counters the node exporter
 * does not see ({@link CHART_ALERTS_OFF}). Every other group stays on, the control plane's included (etcd,
 * the controller manager, the scheduler and kube-proxy, whose metrics K3s serves on the nodes' addresses);
 * the alerts runbook lists them all.
 */
export const CHART_RULE_GROUPS_OFF = ["network", "windows"] as const;

/**
 * Single alerts of kept groups turned off (`defaultRules.disabled`): the node exporter stays out of the
 * node's network namespace (k8s-no-host-namespaces), so network interface and conntrack counters are its
 * own pod's, and these alerts could never see a node's problem.
 */
export const CHART_ALERTS_OFF = ["NodeHighNumberConntrackEntriesUsed", "NodeNetworkReceiveErrs", "NodeNetworkTransmitErrs"] as const;

export class Monitoring extends pulumi.ComponentResource {
  /** The kube-prometheus-stack release (its CRDs back PodMonitors, ServiceMonitors and PrometheusRules). */
  public readonly release: k8s.helm.v3.Release;

  constructor(name: string, args: MonitoringArgs, opts?: pulumi.ComponentResourceOptions) {
    super("titanium:platform:Monitoring", name, {}, opts);
    const k = { parent: this, provider: args.provider };
    const ns = NAMESPACES.monitoring;
    const o = args.observability;
    const ports = args.controlPlaneMetrics.ports;
    /** The chart's values for a component every server runs in the K3s process, scraped over HTTPS on its addresses. */
    const serverComponent = (component: "controllerManager" | "scheduler", port: number) => ({
      enabled: true,
      jobNameOverride: CONTROL_PLANE_JOBS[component],
      endpoints: args.controlPlaneMetrics.serverAddresses,
      service: { enabled: true, port, targetPort: port },
      serviceMonitor: {
        https: true,
        insecureSkipVerify: true,
        relabelings: [jobLabel(CONTROL_PLANE_JOBS[component])],
        metricRelabelings: keepOnly(CONTROL_PLANE_KEPT_METRICS[component]),
      },
    });

    // Grafana starts only with its real admin password in place.
    const grafanaAdmin = secretSync(
      `${name}-grafana-admin`,
      {
        namespace: ns,
        target: GRAFANA.adminSecret,
        data: { password: args.appSecretIds["grafana-admin-password"] },
        template: { data: { "admin-user": "admin", "admin-password": "{{ .password }}" } },
      },
      { ...k, dependsOn: [args.secretStore, ...args.dependsOn] },
    );

    this.release = chartRelease(
      `${name}-kube-prometheus-stack`,
      "kubePrometheusStack",
      args.charts,
      {
        fullnameOverride: KPS_FULLNAME,
        crds: { enabled: true },
        // The servers' controller manager and scheduler, inside the K3s process, bound to the server's internal
        // address by its K3s configuration (components/cluster/startup-script.ts): the chart makes a
        // selector-less Service and Endpoints of the servers' addresses in kube-system for each, and a
        // ServiceMonitor over HTTPS with Prometheus' service-account token (the chart's default for both; the
        // components ask the API server to authenticate it and to authorize `get` on `/metrics`, which the
        // chart's Prometheus ClusterRole grants). No certificate check: their serving certificates name only
        // localhost and 127.0.0.1, not the address scraped. The same network path as etcd's below.
        kubeControllerManager: serverComponent("controllerManager", ports.controllerManager),
        kubeScheduler: serverComponent("scheduler", ports.scheduler),
        // kube-proxy on every node, agents included: they come and go with the managed instance group, so
        // no address list here. The operator's kubelet Service already has one endpoint per Node (its
        // InternalIP); this ServiceMonitor takes its `http-metrics` port's endpoints and points each at
        // kube-proxy's plain-HTTP port on the same address, as job `kube-proxy`. No token: the port asks for none.
        kubeProxy: {
          enabled: true,
          jobNameOverride: CONTROL_PLANE_JOBS.proxy,
          endpoints: [],
          service: { enabled: false },
          serviceMonitor: {
            selector: { matchLabels: { ...KUBELET_SERVICE_LABELS } },
            port: "http-metrics",
            https: false,
            bearerTokenFile: "",
            relabelings: [
              { action: "replace", sourceLabels: ["__address__"], regex: "(.+):\\d+", replacement: `$1:${ports.kubeProxy}`, targetLabel: "__address__" },
              jobLabel(CONTROL_PLANE_JOBS.proxy),
            ],
            metricRelabelings: keepOnly(CONTROL_PLANE_KEPT_METRICS.proxy),
          },
        },
        // Embedded etcd on every server (dev's single one too), its metrics exposed by the servers'
        // `etcd-expose-metrics` on <internal address>:2381 over plain HTTP (no client certificate, unlike
        // 2379). The chart makes a selector-less Service and Endpoints of these addresses in kube-system
        // and a ServiceMonitor on its `http-metrics` port (job `kube-etcd`, which its etcd rules match).
        // The path: Prometheus' pod → a server's address leaves its node masqueraded to the node's
        // address (flannel masquerades IPv4 by default, docs.k3s.io "Basic Network Options"; the same
        // path as the kubelet targets on the nodes' :10250 the chart already scrapes),
        // inside the subnet, which the GCE "internal" rule admits on every TCP port (components/gcp/
        // firewall.ts); the monitoring namespace's only NetworkPolicy (`no-metadata-server`) allows all
        // egress but 169.254.169.254; the K3s process on the server is under no NetworkPolicy. No bearer
        // token: the chart's default would send Prometheus' service-account token in clear to a port that
        // asks for none.
        kubeEtcd: {
          enabled: true,
          endpoints: args.controlPlaneMetrics.serverAddresses,
          service: { enabled: true, port: ports.etcd, targetPort: ports.etcd },
          serviceMonitor: {
            scheme: "http",
            bearerTokenFile: "",
            metricRelabelings: [{ action: "keep", sourceLabels: ["__name__"], regex: ETCD_KEPT_METRICS }],
          },
        },
        // The chart's own alert rules stay on (control plane, nodes, kubelet, workloads, volumes, Prometheus
        // itself: docs/runbooks/alerts.md), except the groups about what is absent here (Windows), and the
        // alerts on node network counters (not collected: the node exporter below).
        defaultRules: {
          rules: Object.fromEntries(CHART_RULE_GROUPS_OFF.map((g) => [g, false])),
          disabled: Object.fromEntries(CHART_ALERTS_OFF.map((a) => [a, true])),
        },
        prometheusOperator: { admissionWebhooks: { patch: {} }, prometheusConfigReloader: {} },
        prometheus: {
          prometheusSpec: {
            replicas: 1,
            // Explicit (the operator's default too): Grafana's data source takes its `timeInterval` from it.
            scrapeInterval: SCRAPE_INTERVAL,
            retention: o.prometheusRetention,
            // Stop before the volume fills (TSDB needs room to compact).
            retentionSize: `${Math.floor(o.prometheusStorageGi * 0.85)}GB`,
            storageSpec: {
              volumeClaimTemplate: {
                spec: {
                  accessModes: ["ReadWriteOnce"],
                  resources: { requests: { storage: `${o.prometheusStorageGi}Gi` } },
                  ...(args.volumes.storageClassName ? { storageClassName: args.volumes.storageClassName } : {}),
                },
              },
            },
            nodeSelector: { ...args.volumes.nodeSelector },
            routePrefix: ADMIN_PATHS.prometheus,
            externalUrl: pulumi.interpolate`https://${args.externalHost}${ADMIN_PATHS.prometheus}`,
            // Select monitors and rules from every namespace, not only those labelled for this release.
            serviceMonitorSelectorNilUsesHelmValues: false,
            podMonitorSelectorNilUsesHelmValues: false,
            ruleSelectorNilUsesHelmValues: false,
            probeSelectorNilUsesHelmValues: false,
            scrapeConfigSelectorNilUsesHelmValues: false,
          },
        },
        alertmanager: {
          enabled: true,
          alertmanagerSpec: { replicas: 1 },
          // A webhook's URL is a credential (Slack, PagerDuty and Teams put the token in it), however it
          // was configured: secret in the state, the diffs and the plan, as `pulumi config set --secret` wants.
          config: o.alertReceiver.type === "webhook" ? pulumi.secret(alertmanagerConfig(o.alertReceiver)) : alertmanagerConfig(o.alertReceiver),
        },
        grafana: {
          replicas: 1,
          admin: { existingSecret: GRAFANA.adminSecret, userKey: "admin-user", passwordKey: "admin-password" },
          // The address browsers use, over the gateway's TLS (Grafana itself serves plain HTTP; its default domain, localhost, would break links and redirects).
          // Its session cookie Secure: the gateway also answers plain HTTP (to redirect), and a browser sends a cookie
          // without the flag on any http:// request to the address, in clear text, before the redirect comes back.
          "grafana.ini": {
            server: { domain: args.externalHost, root_url: `https://%(domain)s${ADMIN_PATHS.grafana}/`, serve_from_sub_path: true },
            security: { cookie_secure: true },
          },
          persistence: {
            enabled: true,
            size: `${o.grafanaStorageGi}Gi`,
            ...(args.volumes.storageClassName ? { storageClassName: args.volumes.storageClassName } : {}),
          },
          // Its volume attaches to one node at a time (a Persistent Disk in prod): the old pod must let go
          // before the new one starts, or a rollout onto another agent hangs on a Multi-Attach error.
          deploymentStrategy: { type: "Recreate" },
          nodeSelector: { ...args.volumes.nodeSelector },
          sidecar: {
            // Folders from the dashboards' `grafana_folder` annotation (the chart reads it only when named here).
            dashboards: {
              enabled: true,
              label: "grafana_dashboard",
              labelValue: "1",
              searchNamespace: "ALL",
              folderAnnotation: DASHBOARD_FOLDER_ANNOTATION,
              provider: { foldersFromFilesStructure: true },
            },
            datasources: { enabled: true },
          },
        },
        "kube-state-metrics": {},
        // On every node: the chart tolerates only NoSchedule taints, and prod's dedicated servers are
        // tainted NoExecute (their disks and memory hold etcd; the capacity check counts a pod per node).
        // Not in the node's network and PID namespaces (the chart's default is both; k8s-no-host-namespaces):
        // it reads the node's /proc, /sys and / through its allow-listed mounts, so CPU, memory, disk and
        // filesystem metrics are the node's; network interface and conntrack counters are the pod's own
        // (the alerts on them are off: CHART_RULE_GROUPS_OFF, CHART_ALERTS_OFF).
        "prometheus-node-exporter": { tolerations: [{ operator: "Exists" }], hostNetwork: false, hostPID: false },
      },
      { ...k, dependsOn: [grafanaAdmin, ...args.volumes.dependsOn, ...args.dependsOn] },
    );
    const after = { ...k, dependsOn: [this.release] };

    new k8s.core.v1.ConfigMap(
      `${name}-datasource-loki`,
      {
        metadata: { name: "grafana-datasource-loki", namespace: ns, labels: DATASOURCE_LABEL },
        data: {
          "loki.yaml": JSON.stringify({
            apiVersion: 1,
            datasources: [
              {
                name: "Loki",
                type: "loki",
                uid: "loki",
                access: "proxy",
                url: `http://${LOKI.service}.${NAMESPACES.logging}.svc.cluster.local:${LOKI.port}`,
                isDefault: false,
                jsonData: { maxLines: 1000 },
              },
            ],
          }),
        },
      },
      { ...k, dependsOn: args.dependsOn },
    );

    for (const { file, id, json } of loadDashboards()) {
      new k8s.core.v1.ConfigMap(
        `${name}-dashboard-${id}`,
        {
          metadata: { name: `dashboard-${id}`, namespace: ns, labels: DASHBOARD_LABEL, annotations: { [DASHBOARD_FOLDER_ANNOTATION]: "Titanium" } },
          data: { [file]: json },
        },
        { ...k, dependsOn: args.dependsOn },
      );
    }

    // Application metrics under STRICT mTLS: the sidecar's agent serves the app's metrics merged
    // with Envoy's on :15020 (plain HTTP, outside the mTLS listener). The injector rewrites the
    // pod's prometheus.io/* annotations to that endpoint; this PodMonitor follows them, taking one
    // target per pod (the istio-proxy's declared stats port) and re-pointing it at the annotation.
    new k8s.apiextensions.CustomResource(
      `${name}-mesh-pods`,
      {
        apiVersion: "monitoring.coreos.com/v1",
        kind: "PodMonitor",
        metadata: { name: MESH_POD_MONITOR, namespace: ns },
        spec: {
          namespaceSelector: { matchNames: [NAMESPACES.app, NAMESPACES.istio] },
          // Every proxy Istio injects, sidecar or gateway: both injection templates set the canonical
          // name (only the sidecar's sets security.istio.io/tlsMode, which would leave the gateway out).
          selector: { matchExpressions: [{ key: "service.istio.io/canonical-name", operator: "Exists" }] },
          podMetricsEndpoints: [
            {
              port: "http-envoy-prom",
              interval: SCRAPE_INTERVAL,
              relabelings: [
                { action: "keep", sourceLabels: ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"], regex: "true" },
                {
                  action: "replace",
                  sourceLabels: ["__meta_kubernetes_pod_ip", "__meta_kubernetes_pod_annotation_prometheus_io_port"],
                  regex: "(.+);(\\d+)",
                  replacement: "$1:$2",
                  targetLabel: "__address__",
                },
                {
                  action: "replace",
                  sourceLabels: ["__meta_kubernetes_pod_annotation_prometheus_io_path"],
                  regex: "(.+)",
                  targetLabel: "__metrics_path__",
                },
                { action: "replace", sourceLabels: ["__meta_kubernetes_pod_label_app"], targetLabel: "app" },
              ],
            },
          ],
        },
      },
      after,
    );

    // istiod's own metrics (control plane: pushes, config errors, certificate signing).
    new k8s.apiextensions.CustomResource(
      `${name}-istiod`,
      {
        apiVersion: "monitoring.coreos.com/v1",
        kind: "ServiceMonitor",
        metadata: { name: "istiod", namespace: ns },
        spec: {
          namespaceSelector: { matchNames: [NAMESPACES.istio] },
          selector: { matchLabels: { app: "istiod" } },
          endpoints: [{ port: "http-monitoring", interval: SCRAPE_INTERVAL }],
        },
      },
      after,
    );

    new k8s.apiextensions.CustomResource(
      `${name}-titanium-rules`,
      {
        apiVersion: "monitoring.coreos.com/v1",
        kind: "PrometheusRule",
        metadata: { name: "titanium-alerts", namespace: ns },
        spec: { groups: ALERT_GROUPS },
      },
      after,
    );

    this.registerOutputs({});
  }
}

/**
 * Alertmanager configuration for the configured receiver. Watchdog (always firing) and InfoInhibitor never
 * page. No `inhibit_rules`: Helm would replace the chart's list with ours, and the chart's own rules are the
 * ones wanted (critical mutes warning and info, warning mutes info, per alert name and namespace; the
 * chart's InfoInhibitor mutes info alerts in a namespace without a warning or critical one).
 */
export function alertmanagerConfig(receiver: TitaniumConfig["observability"]["alertReceiver"]): Record<string, unknown> {
  const target =
    receiver.type === "webhook"
      ? { name: "default", webhook_configs: [{ url: receiver.url, send_resolved: true }] }
      : receiver.type === "email"
        ? { name: "default", email_configs: [{ to: receiver.to, from: receiver.from, smarthost: receiver.smarthost, send_resolved: true }] }
        : { name: "default" };
  return {
    route: {
      receiver: "default",
      group_by: ["alertname", "namespace", "service"],
      group_wait: "30s",
      group_interval: "5m",
      repeat_interval: "4h",
      routes: [{ receiver: "null", matchers: ['alertname =~ "Watchdog|InfoInhibitor"'] }],
    },
    receivers: [{ name: "null" }, target],
  };
}
