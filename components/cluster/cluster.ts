import * as gcp from "@pulumi/gcp";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { ApiLoadBalancer } from "../gcp/api-load-balancer";
import { K3S_API_PORT, type NodeTags } from "../gcp/firewall";
import { IngressLoadBalancer } from "../gcp/ingress-load-balancer";
import { Secret } from "../gcp/secret";
import { K3sAgents } from "./agents";
import { clusterCapacity, type ClusterCapacity } from "./capacity";
import { buildKubeconfig } from "./kubeconfig";
import { ClusterPki } from "./pki";
import { gateOnReadyz, gateTestSeam } from "./readiness";
import { K3sServers, type ServerInfo } from "./servers";
import {
  API_READINESS_PATH,
  CONTROLLER_MANAGER_METRICS_PORT,
  ETCD_METRICS_PORT,
  KUBE_PROXY_METRICS_PORT,
  SCHEDULER_METRICS_PORT,
  renderAgentScript,
} from "./startup-script";
import type { DiskType } from "../gcp/pricing";

export interface ClusterArgs {
  /** Prefix of physical names (`titanium-<stack>`): VM names, secret ids. */
  prefix: string;
  /** GCP project (Secret Manager resource names). */
  project: string;
  /** The stack's labels, for the boot disks (the provider's default labels reach only top-level `labels`). */
  labels: Record<string, string>;
  region: string;
  /** Zone of the agents' managed instance group, and of the servers when `servers.zones` is empty. */
  zone: string;
  /** K3s settings and node sizing (config `cluster`). */
  k3s: {
    version: string;
    /** Pinned SHA-256 of the release's amd64 `k3s` binary; empty: the release's checksum file only. */
    sha256: string;
    apiDnsName: string;
    /** Existing Cloud DNS zone publishing apiDnsName; empty: none. */
    apiDnsZone: string;
    apiReadyTimeoutSeconds: number;
    osImage: string;
  };
  servers: {
    count: number;
    machineType: string;
    spot: boolean;
    zones: string[];
    bootDiskGb: number;
    bootDiskType: DiskType;
    /** 0: no data disk. */
    dataDiskGb: number;
    dataDiskType: DiskType;
    dedicated: boolean;
  };
  agents: { count: number; machineType: string; spot: boolean; bootDiskGb: number; bootDiskType: DiskType };
  /** K3s cluster-cidr and service-cidr (config `network`). */
  podCidr: string;
  serviceCidr: string;
  /**
   * The ingress load balancer's ports and its health check: the NodePort of the gateway's status
   * port (config `ingress.healthCheckNodePort`) and the gateway's readiness path there.
   */
  ingress: { httpPort: number; httpsPort: number; healthCheckNodePort: number; healthCheckPath: string };
  /** What the cloud layer provides. */
  cloud: {
    networkSelfLink: pulumi.Input<string>;
    subnetworkSelfLink: pulumi.Input<string>;
    tags: NodeTags;
    /** The nodes' accounts, as Outputs: the secrets' IAM bindings wait for the accounts through them. */
    serverServiceAccountEmail: pulumi.Input<string>;
    agentServiceAccountEmail: pulumi.Input<string>;
    /** The same addresses as plain strings, for the VMs (known in a preview; they wait for the accounts through the secrets). */
    serverServiceAccountAddress: string;
    agentServiceAccountAddress: string;
    publicIp: pulumi.Input<string>;
    apiPublicIp: pulumi.Input<string>;
    apiInternalIp: pulumi.Input<string>;
  };
  /** Protect stateful resources: CA keys, tokens, server disks and VMs (config `protect`). */
  protect: boolean;
}

/** Where K3s' own components serve their metrics (`Cluster.controlPlaneMetrics`): the platform's scrape targets. */
export interface ControlPlaneMetrics {
  /** Every server's internal address: embedded etcd, the controller manager and the scheduler. */
  serverAddresses: pulumi.Input<string>[];
  /** etcd plain HTTP, the controller manager and the scheduler HTTPS, kube-proxy plain HTTP on every node. */
  ports: { etcd: number; controllerManager: number; scheduler: number; kubeProxy: number };
}

/** What the deploy pipeline needs to reach the API without opening it to the internet (see ADR 0011). */
export interface PipelineAccess {
  method: "iap-tunnel";
  project: string;
  /** Servers to tunnel to, in order of preference: `gcloud compute start-iap-tunnel NAME 6443 --zone ZONE`. */
  tunnelTargets: { instance: string; zone: string }[];
  port: number;
  /** Map this name to 127.0.0.1 while the tunnel runs; the kubeconfig stays the same. */
  apiDnsName: string;
}

/**
 * The cluster layer: the generated PKI and K3s tokens (in Secret Manager, readable by the nodes
 * that need them), the K3s servers and the agents' managed instance group, the API and ingress
 * load balancers in front of them, the kubeconfig Pulumi computes itself, and the Kubernetes
 * provider the platform layer uses, gated on the API's /readyz.
 */
/** K3s deploys CoreDNS in kube-system with the upstream `k8s-app: kube-dns` label. */
const K3S_DNS = { namespace: "kube-system", podLabels: { "k8s-app": "kube-dns" } } as const;

export class Cluster extends pulumi.ComponentResource {
  /** The admin kubeconfig (secret): stable server name, the stack's own CA. Returned once the API is ready. */
  readonly kubeconfig: pulumi.Output<string>;
  /** Kubernetes provider for the upper layers, built from {@link kubeconfig}. */
  readonly provider: k8s.Provider;
  /** `https://<apiDnsName>:6443`. */
  readonly apiEndpoint: string;
  readonly servers: pulumi.Output<ServerInfo[]>;
  /**
   * Where Prometheus scrapes what K3s runs in its own process (startup-script.ts binds each off loopback):
   * every server's internal address (in index order; one Output each, so a first preview knows how many
   * there are and that each is one address), where its embedded etcd, controller manager and scheduler
   * serve their metrics, and the ports, kube-proxy's on every node included.
   */
  readonly controlPlaneMetrics: ControlPlaneMetrics;
  /** Self link of the agents' instance group. */
  readonly agentInstanceGroup: pulumi.Output<string>;
  readonly pipelineAccess: pulumi.Output<PipelineAccess>;
  /** Allocatable CPU and memory per node pool (for the platform's capacity check). */
  readonly capacity: ClusterCapacity;
  /** The cluster DNS pods (K3s' bundled CoreDNS): workloads' NetworkPolicies allow UDP and TCP 53 to them. */
  readonly dns = K3S_DNS;

  constructor(name: string, args: ClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    super("titanium:cluster:Cluster", name, {}, opts);
    const child = { parent: this };
    const keep = { parent: this, protect: args.protect };
    this.apiEndpoint = `https://${args.k3s.apiDnsName}:${K3S_API_PORT}`;
    this.capacity = clusterCapacity({ servers: args.servers, agents: args.agents });

    // ── PKI and join tokens, delivered to the servers through Secret Manager ──
    const pki = new ClusterPki(`${name}-pki`, { clusterName: name, protect: args.protect }, child);
    const password = (id: string) => new random.RandomPassword(`${name}-${id}`, { length: 48, special: false }, keep).result;
    const serverPassword = password("k3s-server-token");
    const agentPassword = password("k3s-agent-token");
    // Secure token format: joining nodes verify the server CA's hash before sending the password.
    const serverToken = pulumi.secret(pulumi.interpolate`K10${pki.caHash}::server:${serverPassword}`);
    const agentToken = pulumi.secret(pulumi.interpolate`K10${pki.caHash}::node:${agentPassword}`);
    const servers = { servers: args.cloud.serverServiceAccountEmail };
    const clusterSecret = (id: string, data: pulumi.Input<string>, readers: Record<string, pulumi.Input<string>>) =>
      new Secret(`${name}-${id}`, { secretId: `${args.prefix}-${id}`, region: args.region, data, readers, protect: args.protect }, child);
    const serverTokenSecret = clusterSecret("k3s-server-token", serverToken, servers);
    const caBundleSecret = clusterSecret("k3s-ca-bundle", pki.caBundle, servers);
    const agentTokenSecret = clusterSecret("k3s-agent-token", agentToken, { ...servers, agents: args.cloud.agentServiceAccountEmail });

    // ── Nodes ──
    const serverZones = args.servers.zones.length > 0 ? args.servers.zones : [args.zone];
    const serverSet = new K3sServers(
      `${name}-server`,
      {
        namePrefix: `${args.prefix}-server`,
        count: args.servers.count,
        machineType: args.servers.machineType,
        spot: args.servers.spot,
        zones: serverZones,
        region: args.region,
        osImage: args.k3s.osImage,
        bootDisk: { sizeGb: args.servers.bootDiskGb, type: args.servers.bootDiskType, labels: args.labels },
        dataDisk: args.servers.dataDiskGb > 0 ? { sizeGb: args.servers.dataDiskGb, type: args.servers.dataDiskType } : undefined,
        subnetwork: args.cloud.subnetworkSelfLink,
        tags: args.cloud.tags,
        serviceAccountEmail: args.cloud.serverServiceAccountAddress,
        scriptValues: pulumi
          .all([args.cloud.apiInternalIp, args.cloud.apiPublicIp, serverTokenSecret.resourceName, agentTokenSecret.resourceName, caBundleSecret.resourceName])
          .apply(([apiInternalIp, apiPublicIp, serverTokenName, agentTokenName, caBundleName]) => ({
            k3sVersion: args.k3s.version,
            k3sSha256: args.k3s.sha256,
            apiDnsName: args.k3s.apiDnsName,
            apiInternalIp,
            tlsSans: [args.k3s.apiDnsName, apiInternalIp, apiPublicIp],
            podCidr: args.podCidr,
            serviceCidr: args.serviceCidr,
            dedicated: args.servers.dedicated,
            serverTokenSecret: serverTokenName,
            agentTokenSecret: agentTokenName,
            caBundleSecret: caBundleName,
            // The agents' group is zonal, in args.zone (below): the node cleanup asks Compute Engine there.
            project: args.project,
            agentZone: args.zone,
          })),
        after: [serverTokenSecret, caBundleSecret, agentTokenSecret],
        protect: args.protect,
      },
      child,
    );
    this.servers = serverSet.servers;
    this.controlPlaneMetrics = {
      ports: { etcd: ETCD_METRICS_PORT, controllerManager: CONTROLLER_MANAGER_METRICS_PORT, scheduler: SCHEDULER_METRICS_PORT, kubeProxy: KUBE_PROXY_METRICS_PORT },
      serverAddresses: Array.from({ length: args.servers.count }, (_, i) => serverSet.servers.apply((s) => s[i]!.internalIp)),
    };

    const agents = new K3sAgents(
      `${name}-agent`,
      {
        baseInstanceName: `${args.prefix}-agent`,
        count: args.agents.count,
        machineType: args.agents.machineType,
        spot: args.agents.spot,
        zone: args.zone,
        osImage: args.k3s.osImage,
        bootDisk: { sizeGb: args.agents.bootDiskGb, type: args.agents.bootDiskType, labels: args.labels },
        subnetwork: args.cloud.subnetworkSelfLink,
        tags: args.cloud.tags,
        serviceAccountEmail: args.cloud.agentServiceAccountAddress,
        startupScript: pulumi
          .all([args.cloud.apiInternalIp, agentTokenSecret.resourceName])
          .apply(([apiInternalIp, agentTokenName]) =>
            renderAgentScript({
              k3sVersion: args.k3s.version,
              k3sSha256: args.k3s.sha256,
              apiDnsName: args.k3s.apiDnsName,
              apiInternalIp,
              agentTokenSecret: agentTokenName,
            }),
          ),
        after: [agentTokenSecret],
      },
      child,
    );
    this.agentInstanceGroup = agents.instanceGroup;

    // ── Load balancers in front of the nodes ──
    const apiLb = new ApiLoadBalancer(
      `${name}-api`,
      {
        region: args.region,
        network: args.cloud.networkSelfLink,
        subnetwork: args.cloud.subnetworkSelfLink,
        internalIpAddress: args.cloud.apiInternalIp,
        publicIpAddress: args.cloud.apiPublicIp,
        port: K3S_API_PORT,
        // The API server's readiness, which the servers let anonymous requests read (ADR 0011).
        healthCheckPath: API_READINESS_PATH,
        instanceGroups: serverSet.instanceGroups,
      },
      child,
    );
    new IngressLoadBalancer(
      `${name}-ingress`,
      {
        region: args.region,
        ipAddress: args.cloud.publicIp,
        ports: [args.ingress.httpPort, args.ingress.httpsPort],
        healthCheckNodePort: args.ingress.healthCheckNodePort,
        healthCheckPath: args.ingress.healthCheckPath,
        instanceGroups: [agents.instanceGroup],
      },
      child,
    );
    const zoneName = args.k3s.apiDnsZone;
    const dnsRecord = zoneName
      ? new gcp.dns.RecordSet(
          `${name}-api-dns`,
          {
            managedZone: zoneName,
            // Refused before anything is written when the zone cannot publish the name.
            name: gcp.dns
              .getManagedZoneOutput({ name: zoneName, project: args.project }, child)
              .apply((zone) => apiRecordName(args.k3s.apiDnsName, zoneName, zone)),
            type: "A",
            ttl: 300,
            rrdatas: [args.cloud.apiPublicIp],
          },
          child,
        )
      : undefined;

    // ── Kubeconfig and the gated provider ──
    const kubeconfig = pulumi
      .all([pki.serverCaCertPem, pki.adminCertPem, pki.adminKeyPem])
      .apply(([caCertPem, clientCertPem, clientKeyPem]) =>
        buildKubeconfig({ name, server: this.apiEndpoint, caCertPem, clientCertPem, clientKeyPem }),
      );
    const timeoutSeconds = args.k3s.apiReadyTimeoutSeconds;
    const readyUrl = `${this.apiEndpoint}/readyz`;
    const resolutionHint = (apiPublicIp: string) =>
      `Map it to the API's public address from the admin CIDRs (add "${apiPublicIp} ${args.k3s.apiDnsName}" to /etc/hosts; ` +
      `the address is the stack output apiPublicIp) or to 127.0.0.1 through an IAP tunnel (pipelineAccess); see docs/runbooks/bootstrap.md.`;
    // Poll only once the VMs and the API's forwarding rules (and DNS record) exist. Not in a preview, which
    // never polls: there a replaced VM's unknown id would make the kubeconfig unknown, and the Kubernetes
    // provider (and every object of the layers above) would preview as replaced.
    const apiDeployed = pulumi.runtime.isDryRun()
      ? pulumi.output(true)
      : pulumi.all([...serverSet.instances.map((vm) => vm.id), apiLb.externalRule.id, apiLb.internalRule.id, dnsRecord?.id ?? ""]).apply(() => true);
    this.kubeconfig = pulumi.secret(
      pulumi
        .all([kubeconfig, pki.serverCaCertPem, pki.adminCertPem, pki.adminKeyPem, args.cloud.apiPublicIp, apiDeployed])
        .apply(([config, caCertPem, clientCertPem, clientKeyPem, apiPublicIp]) =>
          gateOnReadyz(
            config,
            { caCertPem, clientCertPem, clientKeyPem },
            {
              url: readyUrl,
              timeoutMs: timeoutSeconds * 1000,
              intervalMs: 10_000,
              failFastOnUnresolvedName: dnsRecord === undefined,
              resolutionHint: resolutionHint(apiPublicIp),
              unreachableHint:
                "The firewall opens 6443 only to network.adminCidrs and IAP's range: run pulumi up from an admin address, or through the IAP tunnel (pipelineAccess; docs/runbooks/bootstrap.md).",
              isDryRun: pulumi.runtime.isDryRun,
              engineAttached: gateTestSeam.engineAttached ?? (() => pulumi.runtime.getEngine() !== undefined),
              probe: gateTestSeam.probe,
              sleep: gateTestSeam.sleep,
              log: (message) => pulumi.log.info(message, this),
            },
          ),
        ),
    );
    this.provider = new k8s.Provider(`${name}-k8s`, { kubeconfig: this.kubeconfig }, child);

    this.pipelineAccess = this.servers.apply((list) => ({
      method: "iap-tunnel" as const,
      project: args.project,
      tunnelTargets: list.map((s) => ({ instance: s.name, zone: s.zone })),
      port: K3S_API_PORT,
      apiDnsName: args.k3s.apiDnsName,
    }));

    this.registerOutputs({
      kubeconfig: this.kubeconfig,
      apiEndpoint: this.apiEndpoint,
      servers: this.servers,
      agentInstanceGroup: this.agentInstanceGroup,
      pipelineAccess: this.pipelineAccess,
    });
  }
}

/**
 * The record name of `apiDnsName` in the Cloud DNS zone `zoneName`, or an error naming the config key:
 * the name must lie in the zone's domain, and the zone must be public (a private zone resolves only
 * inside its VPC: neither operators nor the pipeline's readiness gate would find the API).
 */
export function apiRecordName(apiDnsName: string, zoneName: string, zone: { dnsName: string; visibility: string }): string {
  const fqdn = `${apiDnsName}.`;
  if (fqdn !== zone.dnsName && !fqdn.endsWith(`.${zone.dnsName}`)) {
    throw new Error(`titanium:cluster.apiDnsName: expected a name under ${zone.dnsName} (the domain of Cloud DNS zone ${zoneName}), got ${apiDnsName}`);
  }
  if (zone.visibility !== "public") {
    throw new Error(`titanium:cluster.apiDnsZone: expected a public Cloud DNS zone, ${zoneName} is ${zone.visibility} (its names resolve only inside its VPC)`);
  }
  return fqdn;
}
