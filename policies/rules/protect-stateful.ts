import type { Obj } from "../lib/k8s";
import { resourcePolicy, type BaseConfig } from "../lib/policy";

interface Config extends BaseConfig {
  statefulTypes: string[];
}

/** Resources whose loss loses data or identity: secrets, disks, static IPs, buckets, keys, volumes. */
export const DEFAULT_STATEFUL_TYPES = [
  "gcp:secretmanager/secret:Secret",
  "gcp:secretmanager/secretVersion:SecretVersion",
  "gcp:compute/disk:Disk",
  "gcp:compute/regionDisk:RegionDisk",
  "gcp:compute/address:Address",
  "gcp:compute/globalAddress:GlobalAddress",
  "gcp:storage/bucket:Bucket",
  "gcp:kms/keyRing:KeyRing",
  "gcp:kms/cryptoKey:CryptoKey",
  "kubernetes:core/v1:PersistentVolumeClaim",
  "kubernetes:core/v1:PersistentVolume",
  // A generated password: a replacement is a new one that what holds the old one (the database's
  // data, a joined node) no longer matches.
  "random:index/randomPassword:RandomPassword",
];

/**
 * A CA certificate: replacing it re-keys the cluster's trust (every kubeconfig, joined node and issued
 * certificate). Its private key is guarded through it: a new key forces a new certificate, which
 * `protect` refuses. A leaf certificate or key (the admin client's, the gateway's fallback) is replaceable.
 */
const SELF_SIGNED_CERT = "tls:index/selfSignedCert:SelfSignedCert";

const STATEFUL_SET = "kubernetes:apps/v1:StatefulSet";

/** `protect` on stateful resources: volumes (the database's claim), stateful sets with volume claim templates, disks, buckets, secrets, static addresses, KMS keys. */
export const protectStateful = resourcePolicy<Config>(
  {
    name: "protect-stateful-resources",
    description:
      "Stateful resources (Secret Manager secrets, disks, static IPs, buckets, KMS keys, volumes such as the database's claim, generated passwords, CA certificates, and StatefulSets with volume claim templates) are created with `protect`.",
    severity: "high",
    enforcementLevel: "advisory",
    remediationSteps:
      "Pass `{ protect: config.protect }` to the resource (it is true in prod). To delete one on purpose: `pulumi state unprotect <urn>` first, after a backup.",
    configSchema: {
      properties: {
        statefulTypes: { type: "array", items: { type: "string" }, default: DEFAULT_STATEFUL_TYPES, description: "Type tokens that must be protected." },
      },
    },
  },
  (args, judge, report, config) => {
    // A protected resource passes whatever its inputs (and needs none of them known).
    if (args.opts.protect) return;
    judge.check(() => {
      const stateful =
        config.statefulTypes.includes(args.type) ||
        (args.type === SELF_SIGNED_CERT && (args.props as Obj).isCaCertificate === true) ||
        (args.type === STATEFUL_SET && Array.isArray(((args.props as Obj).spec as Obj | undefined)?.volumeClaimTemplates));
      if (stateful) report(`${args.type} ${args.name} is stateful and not protected`);
    });
  },
);
