/**
 * Renders the nodes' GCE startup scripts from the templates in `scripts/` (real, shellcheck-clean
 * bash files): a header of readonly values, then the shared functions, then the role's `main`.
 * Values are names, addresses and Secret Manager resource names, never secrets: the scripts fetch
 * secrets themselves at boot, with the VM's service account.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { stringify } from "yaml";
import { DEDICATED_SERVER_TAINT, kubeletArgs, NODE_POOL_LABEL, NODE_SHUTDOWN } from "./capacity";

export const SCRIPTS_DIR = path.join(__dirname, "scripts");

/** GCE exposes an attached disk as /dev/disk/by-id/google-<deviceName>. */
export const DATA_DISK_DEVICE_NAME = "k3s-data";
export const DATA_DISK_DEVICE = `/dev/disk/by-id/google-${DATA_DISK_DEVICE_NAME}`;

/** Where the scripts put the tokens (referenced by the K3s configuration). */
const TOKEN_FILE = "/etc/rancher/k3s/token";
const AGENT_TOKEN_FILE = "/etc/rancher/k3s/agent-token";

/** The API server's authentication configuration on a server (written by its script, named in its K3s configuration). */
export const AUTHENTICATION_CONFIG_FILE = "/etc/rancher/k3s/authentication-config.yaml";

/**
 * Where embedded etcd serves its metrics once `etcd-expose-metrics` is on ({@link serverConfig}): plain
 * HTTP on the server's node address as well as on 127.0.0.1 (K3s pkg/etcd `listenMetricsURLs`:
 * `http://127.0.0.1:2381` always, plus `http://<node address>:2381` with the flag). Prometheus scrapes
 * it on every server's internal address (components/platform/monitoring.ts, `kubeEtcd`).
 */
export const ETCD_METRICS_PORT = 2381;

/**
 * Where the rest of K3s' control plane serves its metrics once bound off loopback ({@link serverConfig},
 * {@link agentConfig}; K3s binds all three to 127.0.0.1 by default). The controller manager and the
 * scheduler serve HTTPS on their `secure-port`s (K3s passes 10257 and 10259) and check a bearer token with
 * the API server (K3s gives both `authentication-kubeconfig` and `authorization-kubeconfig`: TokenReview,
 * then a SubjectAccessReview of `get` on the non-resource URL `/metrics`); kube-proxy serves plain HTTP.
 * Prometheus scrapes them on the nodes' internal addresses (components/platform/monitoring.ts,
 * `kubeControllerManager`, `kubeScheduler`, `kubeProxy`).
 */
export const CONTROLLER_MANAGER_METRICS_PORT = 10257;
export const SCHEDULER_METRICS_PORT = 10259;
export const KUBE_PROXY_METRICS_PORT = 10249;

/** kube-proxy's health endpoint on every node: the agents' autohealing health check probes it from Google's ranges. */
const KUBE_PROXY_HEALTHZ_ARG = "healthz-bind-address=0.0.0.0:10256";

/**
 * Where containerd pulls Docker Hub's images (/etc/rancher/k3s/registries.yaml, every node): Google's
 * pull-through cache of Docker Hub first. All nodes reach the internet through one Cloud NAT address, and
 * Docker Hub allows anonymous pulls per address (100 per 6 hours): K3s' own images (pause, CoreDNS),
 * Istio's CNI and Alloy come from docker.io on every node, and every agent rollout pulls them again.
 * containerd falls back to docker.io itself when the mirror fails (K3s keeps the default endpoint last).
 */
export const DOCKER_HUB_MIRROR = "https://mirror.gcr.io";

/** The registries configuration of every node: Docker Hub through {@link DOCKER_HUB_MIRROR}. Contains no secret. */
export function registriesConfig(): Record<string, unknown> {
  return { mirrors: { "docker.io": { endpoint: [DOCKER_HUB_MIRROR] } } };
}

/** The API server's readiness: what the API load balancers' health check asks (ADR 0011). */
export const API_READINESS_PATH = "/readyz";

/**
 * The only paths anonymous requests may reach on the API server: its readiness (the load balancers'
 * health check) and its liveness. Every other path still answers 401 without credentials, as with
 * K3s' default `--anonymous-auth=false`; client certificates and tokens authenticate as before.
 */
export const ANONYMOUS_API_PATHS = [API_READINESS_PATH, "/livez"] as const;

/**
 * The AuthenticationConfiguration of the API server (`--authentication-config`): no JWT issuer, only
 * the anonymous authenticator, limited to {@link ANONYMOUS_API_PATHS} (KEP-4633). The `anonymous`
 * field exists in `apiserver.config.k8s.io/v1beta1` from Kubernetes 1.32 (where its feature gate
 * AnonymousAuthConfigurableEndpoints is beta, on by default) and in `v1` from 1.34 (GA). Older
 * releases are refused by the stack configuration (`titanium:cluster.k3sVersion`).
 */
export function authenticationConfig(k3sVersion: string): Record<string, unknown> {
  const m = /^v1\.(\d+)\.\d+\+k3s\d+$/.exec(k3sVersion);
  const minor = m ? Number(m[1]) : NaN;
  if (!(minor >= 32)) throw new Error(`K3s ${k3sVersion}: the API's authentication config needs Kubernetes 1.32 or later (titanium:cluster.k3sVersion)`);
  return {
    apiVersion: minor >= 34 ? "apiserver.config.k8s.io/v1" : "apiserver.config.k8s.io/v1beta1",
    kind: "AuthenticationConfiguration",
    anonymous: { enabled: true, conditions: ANONYMOUS_API_PATHS.map((path) => ({ path })) },
  };
}

interface CommonValues {
  /** Pinned K3s release, e.g. v1.33.5+k3s1. */
  k3sVersion: string;
  /** SHA-256 the release's amd64 `k3s` binary must also have; empty or absent: its checksum file only. */
  k3sSha256?: string;
  /** Stable name of the API; pinned to the internal load balancer in /etc/hosts. */
  apiDnsName: string;
  /** Address of the API's internal load balancer. */
  apiInternalIp: string;
  /** Secret Manager resource name (`projects/<p>/secrets/<id>`) of the agents' join token. */
  agentTokenSecret: string;
}

export interface ServerValues extends CommonValues {
  /** 0-based; server 0 initialises etcd when no peer answers. */
  serverIndex: number;
  /** This server's static internal address. */
  nodeIp: string;
  /** Every server's internal address, in index order (the peers it may join). */
  serverIps: string[];
  /** Every name and address the API certificate must cover. */
  tlsSans: string[];
  podCidr: string;
  serviceCidr: string;
  /** Whether the data disk is attached (else K3s state stays on the boot disk). */
  dataDisk: boolean;
  /** Taint servers so only critical add-ons run there. */
  dedicated: boolean;
  serverTokenSecret: string;
  caBundleSecret: string;
}

/** Where a server's node cleanup asks Compute Engine whether an agent's VM exists (scripts/k3s-server.sh). */
export interface NodeCleanupValues {
  /** GCP project of the agents' VMs. */
  project: string;
  /** Zone of the agents' (zonal) managed instance group: the only zone their VMs live in. */
  agentZone: string;
}

export type AgentValues = CommonValues;

/** The K3s configuration of a server (/etc/rancher/k3s/config.yaml). Contains no secret. */
export function serverConfig(v: ServerValues): Record<string, unknown> {
  return {
    "token-file": TOKEN_FILE,
    "agent-token-file": AGENT_TOKEN_FILE,
    "node-ip": v.nodeIp,
    "tls-san": v.tlsSans,
    "cluster-cidr": v.podCidr,
    "service-cidr": v.serviceCidr,
    // The Istio gateway is the ingress, behind the GCP load balancer.
    disable: ["traefik", "servicelb"],
    "secrets-encryption": true,
    "write-kubeconfig-mode": "0600",
    "node-label": [`${NODE_POOL_LABEL}=servers`],
    ...(v.dedicated ? { "node-taint": [DEDICATED_SERVER_TAINT] } : {}),
    "kubelet-arg": kubeletArgs("servers"),
    // The control plane's metrics on this server's internal address only (not 0.0.0.0), where Prometheus
    // scrapes them ({@link CONTROLLER_MANAGER_METRICS_PORT}; docs/runbooks/alerts.md). Nothing else reads
    // them on 127.0.0.1 (only the deprecated `kubectl get componentstatuses` would, and now reports them unhealthy).
    "kube-proxy-arg": [KUBE_PROXY_HEALTHZ_ARG, `metrics-bind-address=${v.nodeIp}:${KUBE_PROXY_METRICS_PORT}`],
    "kube-controller-manager-arg": [`bind-address=${v.nodeIp}`],
    "kube-scheduler-arg": [`bind-address=${v.nodeIp}`],
    // K3s then leaves out its --anonymous-auth=false (which the file's `anonymous` field excludes).
    "kube-apiserver-arg": [`authentication-config=${AUTHENTICATION_CONFIG_FILE}`],
    "etcd-snapshot-schedule-cron": "0 */6 * * *",
    "etcd-snapshot-retention": 20,
    // Every stack's servers run embedded etcd, dev's single server too: server 0 starts with
    // `cluster-init: true` when no peer answers (scripts/k3s-server.sh, write_join), never on SQLite/kine.
    // Its metrics on the node address too, not only 127.0.0.1: Prometheus' etcd alerts read them
    // ({@link ETCD_METRICS_PORT}; docs/runbooks/alerts.md).
    "etcd-expose-metrics": true,
  };
}

/** The K3s configuration of an agent. Contains no secret. */
export function agentConfig(v: AgentValues): Record<string, unknown> {
  return {
    server: `https://${v.apiDnsName}:6443`,
    "token-file": TOKEN_FILE,
    // A VM recreated by the managed instance group gets a new node name instead of being rejected.
    "with-node-id": true,
    "node-label": [`${NODE_POOL_LABEL}=agents`],
    "kubelet-arg": kubeletArgs("agents"),
    // The autohealing health check probes kube-proxy's /healthz from Google's ranges. Its metrics on every
    // address: the managed instance group's template is one for all agents, so an agent's address is not
    // known here (the `internal` firewall rule alone admits other hosts, from the subnet; agents have no
    // external address). Prometheus finds them through the kubelet's Endpoints (monitoring.ts, `kubeProxy`).
    "kube-proxy-arg": [KUBE_PROXY_HEALTHZ_ARG, `metrics-bind-address=0.0.0.0:${KUBE_PROXY_METRICS_PORT}`],
  };
}

const SAFE_VALUE = /^[A-Za-z0-9_.:/+,=-]*$/;

/** A bash single-quoted word; values are restricted to a safe alphabet on top of the quoting. */
function quote(value: string, key: string): string {
  if (!SAFE_VALUE.test(value)) throw new Error(`startup script value ${key}=${JSON.stringify(value)} has characters outside [A-Za-z0-9_.:/+,=-]`);
  return `'${value}'`;
}

type Scalar = string | number | string[];

/** How long systemd-logind lets the kubelet's inhibitor delay a shutdown (its default, 5 s, is too short). */
export const SHUTDOWN_INHIBIT_SECONDS = NODE_SHUTDOWN.gracePeriodSeconds + 5;

/** YAML documents the header carries as readonly variables, by variable name. */
type Documents = Record<string, Record<string, unknown>>;

function header(role: "server" | "agent", values: Record<string, Scalar>, documents: Documents): string {
  const lines = [
    "#!/usr/bin/env bash",
    `# K3s ${role} bootstrap, rendered by components/cluster/startup-script.ts from components/cluster/scripts/.`,
    "# Runs at every boot (GCE startup-script); idempotent; contains no secret.",
    "set -euo pipefail",
    "",
    `readonly ROLE=${quote(role, "ROLE")}`,
    `readonly SHUTDOWN_INHIBIT_SECONDS=${SHUTDOWN_INHIBIT_SECONDS}`,
  ];
  for (const [key, value] of Object.entries(values)) {
    if (Array.isArray(value)) lines.push(`readonly ${key}=(${value.map((v) => quote(v, key)).join(" ")})`);
    else lines.push(`readonly ${key}=${typeof value === "number" ? String(value) : quote(value, key)}`);
  }
  for (const [name, document] of Object.entries(documents)) {
    const yaml = stringify(document);
    const delimiter = `TITANIUM_${name}`;
    if (yaml.includes(delimiter)) throw new Error(`${name} contains its heredoc delimiter`);
    lines.push(`${name}=$(`, `  cat <<'${delimiter}'`, yaml.trimEnd(), delimiter, ")", `readonly ${name}`);
  }
  lines.push("");
  return lines.join("\n");
}

/**
 * A template file without its shebang and leading shellcheck directives: the header has the shebang,
 * and the directives only serve a template checked alone (the rendered script is checked whole).
 */
function body(file: string): string {
  return readFileSync(path.join(SCRIPTS_DIR, file), "utf8")
    .replace(/^#!.*\n/, "")
    .replace(/^(# shellcheck [^\n]*\n)+/, "");
}

function assemble(role: "server" | "agent", values: Record<string, Scalar>, documents: Documents): string {
  return [header(role, values, documents), body("k3s-common.sh"), body(`k3s-${role}.sh`), 'main "$@"', ""].join("\n");
}

export function renderServerScript(v: ServerValues & NodeCleanupValues): string {
  if (!v.serverIps.includes(v.nodeIp)) throw new Error(`server ${v.serverIndex}: nodeIp ${v.nodeIp} is not among serverIps`);
  return assemble(
    "server",
    {
      K3S_VERSION: v.k3sVersion,
      K3S_SHA256: v.k3sSha256 ?? "",
      API_DNS_NAME: v.apiDnsName,
      API_INTERNAL_IP: v.apiInternalIp,
      SERVER_INDEX: v.serverIndex,
      NODE_IP: v.nodeIp,
      SERVER_IPS: v.serverIps,
      DATA_DISK_DEVICE: v.dataDisk ? DATA_DISK_DEVICE : "",
      POD_CIDR: v.podCidr,
      SERVER_TOKEN_SECRET: v.serverTokenSecret,
      AGENT_TOKEN_SECRET: v.agentTokenSecret,
      CA_BUNDLE_SECRET: v.caBundleSecret,
      AUTHENTICATION_CONFIG_FILE,
      // The servers' node cleanup tells the agents' Node objects by this label (scripts/k3s-server.sh).
      NODE_POOL_LABEL,
      // Where the node cleanup looks for an agent's VM (instances.get, scripts/k3s-server.sh): names, not secrets.
      PROJECT: v.project,
      AGENT_ZONE: v.agentZone,
    },
    { K3S_CONFIG: serverConfig(v), K3S_REGISTRIES: registriesConfig(), AUTHENTICATION_CONFIG: authenticationConfig(v.k3sVersion) },
  );
}

export function renderAgentScript(v: AgentValues): string {
  return assemble(
    "agent",
    {
      K3S_VERSION: v.k3sVersion,
      K3S_SHA256: v.k3sSha256 ?? "",
      API_DNS_NAME: v.apiDnsName,
      API_INTERNAL_IP: v.apiInternalIp,
      AGENT_TOKEN_SECRET: v.agentTokenSecret,
    },
    { K3S_CONFIG: agentConfig(v), K3S_REGISTRIES: registriesConfig() },
  );
}
