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

interface CommonValues {
  /** Pinned K3s release, e.g. v1.33.5+k3s1. */
  k3sVersion: string;
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
    "kube-proxy-arg": ["healthz-bind-address=0.0.0.0:10256"],
    "etcd-snapshot-schedule-cron": "0 */6 * * *",
    "etcd-snapshot-retention": 20,
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
    // The autohealing health check probes kube-proxy's /healthz from Google's ranges.
    "kube-proxy-arg": ["healthz-bind-address=0.0.0.0:10256"],
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

function header(role: "server" | "agent", values: Record<string, Scalar>, k3sConfig: Record<string, unknown>): string {
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
  const yaml = stringify(k3sConfig);
  if (yaml.includes("TITANIUM_K3S_CONFIG")) throw new Error("the K3s configuration contains the heredoc delimiter");
  lines.push("K3S_CONFIG=$(", "  cat <<'TITANIUM_K3S_CONFIG'", yaml.trimEnd(), "TITANIUM_K3S_CONFIG", ")", "readonly K3S_CONFIG", "");
  return lines.join("\n");
}

/** A template file without its shebang and shellcheck directive (the header has them). */
function body(file: string): string {
  return readFileSync(path.join(SCRIPTS_DIR, file), "utf8")
    .replace(/^#!.*\n/, "")
    .replace(/^# shellcheck shell=bash\n/, "");
}

function assemble(role: "server" | "agent", values: Record<string, Scalar>, k3sConfig: Record<string, unknown>): string {
  return [header(role, values, k3sConfig), body("k3s-common.sh"), body(`k3s-${role}.sh`), 'main "$@"', ""].join("\n");
}

export function renderServerScript(v: ServerValues): string {
  if (!v.serverIps.includes(v.nodeIp)) throw new Error(`server ${v.serverIndex}: nodeIp ${v.nodeIp} is not among serverIps`);
  return assemble(
    "server",
    {
      K3S_VERSION: v.k3sVersion,
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
    },
    serverConfig(v),
  );
}

export function renderAgentScript(v: AgentValues): string {
  return assemble(
    "agent",
    { K3S_VERSION: v.k3sVersion, API_DNS_NAME: v.apiDnsName, API_INTERNAL_IP: v.apiInternalIp, AGENT_TOKEN_SECRET: v.agentTokenSecret },
    agentConfig(v),
  );
}
