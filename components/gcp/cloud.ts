import * as gcp from "@pulumi/gcp";
import * as pulumi from "@pulumi/pulumi";
import { AppSecrets } from "./app-secrets";
import type { AppSecretName } from "./names";
import { BackupBucket } from "./backup-bucket";
import { Firewall, nodeTags, type NodeTags } from "./firewall";
import { Network } from "./network";
import { NodeCleanupIam } from "./node-cleanup-iam";
import { NodeIdentity } from "./node-identity";
import { PdCsiDriverIam } from "./pd-csi-iam";

export interface CloudArgs {
  /** Prefix of names that must be predictable (`titanium-<stack>`): secret ids, service account ids, tags. */
  prefix: string;
  /** GCP project id (the backup bucket's name derives from it: bucket names are global). */
  project: string;
  /** Region of every regional resource. */
  region: string;
  /** Addressing and who administers the cluster (config `network`). */
  network: { subnetCidr: string; adminCidrs: string[] };
  /** The ingress load balancer's ports and health check port (config `ingress`). */
  ingress: { httpPort: number; httpsPort: number; healthCheckNodePort: number };
  /** Days PostgreSQL backups are kept (config `data.backup.retentionDays`). */
  backupRetentionDays: number;
  /**
   * Secrets created outside the program that External Secrets must read (the gateway's real
   * certificate, config `ingress.tls`): the agents get read access to each, and nothing else.
   */
  externalSecretIds: string[];
  /** Protect stateful resources: static addresses, secrets, the backup bucket (config `protect`). */
  protect: boolean;
  /** The auth-service's ES256 key names, signing key first (config `auth.signingKeys`). */
  jwtKeyNames: readonly string[];
}

/**
 * The cloud layer: everything the cluster stands on that does not depend on its VMs. The VPC with
 * Cloud NAT, the firewall, the nodes' service accounts (and the disk permissions of the agents' for
 * the PD CSI driver, the servers' instances.get for their node cleanup), the application secrets in Secret Manager,
 * the backup bucket, and the reserved addresses (the public ingress IP, the K3s API's public and
 * internal IPs) that the cluster's certificates and kubeconfig name before any VM exists.
 */
export class Cloud extends pulumi.ComponentResource {
  readonly network: Network;
  readonly tags: NodeTags;
  readonly identity: NodeIdentity;
  /** Secret Manager ids of the application secrets, for External Secrets. */
  readonly appSecretIds: Record<AppSecretName, pulumi.Output<string>>;
  /** Public keys of every configured JWT key, the signing key first (the auth-service's `JWT_PUBLIC_KEYS`). */
  readonly jwtPublicKeys: pulumi.Output<string>;
  /** Name of the PostgreSQL backup bucket. */
  readonly backupBucket: pulumi.Output<string>;
  /** The public address of the ingress load balancer (the platform's entry point). */
  readonly publicIp: pulumi.Output<string>;
  /** The K3s API's public address (reachable from the admin CIDRs only). */
  readonly apiPublicIp: pulumi.Output<string>;
  /** The K3s API's address inside the VPC. */
  readonly apiInternalIp: pulumi.Output<string>;

  constructor(name: string, args: CloudArgs, opts?: pulumi.ComponentResourceOptions) {
    super("titanium:gcp:Cloud", name, {}, opts);
    const child = { parent: this };
    const keep = { parent: this, protect: args.protect };

    this.network = new Network(`${name}-net`, { region: args.region, subnetCidr: args.network.subnetCidr }, child);
    const external = (suffix: string, description: string) =>
      new gcp.compute.Address(
        `${name}-${suffix}`,
        { region: args.region, addressType: "EXTERNAL", networkTier: "PREMIUM", description },
        keep,
      ).address;
    this.publicIp = external("ingress-ip", "Titanium ingress load balancer");
    this.tags = nodeTags(args.prefix);
    new Firewall(
      `${name}-fw`,
      {
        network: this.network.networkSelfLink,
        tags: this.tags,
        subnetCidr: args.network.subnetCidr,
        adminCidrs: args.network.adminCidrs,
        ingressPorts: [args.ingress.httpPort, args.ingress.httpsPort],
        ingressAddress: this.publicIp,
        ingressHealthCheckNodePort: args.ingress.healthCheckNodePort,
      },
      child,
    );
    this.identity = new NodeIdentity(`${name}-id`, { project: args.project, accountPrefix: args.prefix }, child);
    // The PD CSI controller runs on the agents and acts as their account (ADR 0022).
    new PdCsiDriverIam(
      `${name}-pd-csi`,
      { project: args.project, roleId: `${args.prefix.replace(/-/g, "_")}_pd_csi_driver`, account: this.identity.agent },
      child,
    );
    // The servers' node cleanup deletes a NotReady agent's Node once Compute Engine says its VM is gone (ADR 0013).
    new NodeCleanupIam(
      `${name}-node-cleanup`,
      { project: args.project, roleId: `${args.prefix.replace(/-/g, "_")}_node_cleanup`, account: this.identity.server },
      child,
    );

    const secrets = new AppSecrets(
      `${name}-app`,
      { prefix: args.prefix, region: args.region, readerEmail: this.identity.agentEmail, protect: args.protect, jwtKeyNames: args.jwtKeyNames },
      child,
    );
    this.appSecretIds = secrets.secretIds;
    this.jwtPublicKeys = secrets.jwtPublicKeys;
    for (const id of args.externalSecretIds) {
      new gcp.secretmanager.SecretIamMember(
        `${name}-external-${id}`,
        {
          secretId: `projects/${args.project}/secrets/${id}`,
          role: "roles/secretmanager.secretAccessor",
          member: pulumi.interpolate`serviceAccount:${this.identity.agentEmail}`,
        },
        child,
      );
    }

    this.backupBucket = new BackupBucket(
      `${name}-backups`,
      {
        bucketName: `${args.project}-pg-backups`,
        region: args.region,
        retentionDays: args.backupRetentionDays,
        writerEmail: this.identity.agentEmail,
        protect: args.protect,
      },
      child,
    ).bucketName;

    this.apiPublicIp = external("api-ip", "Titanium K3s API for operators (admin CIDRs)");
    this.apiInternalIp = new gcp.compute.Address(
      `${name}-api-internal-ip`,
      {
        region: args.region,
        addressType: "INTERNAL",
        purpose: "GCE_ENDPOINT",
        subnetwork: this.network.subnetworkSelfLink,
        description: "Titanium K3s API inside the VPC",
      },
      keep,
    ).address;

    this.registerOutputs({
      appSecretIds: this.appSecretIds,
      jwtPublicKeys: this.jwtPublicKeys,
      backupBucket: this.backupBucket,
      publicIp: this.publicIp,
      apiPublicIp: this.apiPublicIp,
      apiInternalIp: this.apiInternalIp,
    });
  }
}
