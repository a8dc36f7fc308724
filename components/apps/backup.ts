/**
 * Nightly logical backup of PostgreSQL to the cloud layer's GCS bucket.
 *
 * Two steps in one pod: an init container runs `pg_dump` with the database's own image (client and
 * server versions always match) and checks the archive is readable (`pg_restore --list`); then the
 * uploader copies it to `gs://<bucket>/postgres/<stack>/<UTC timestamp>.dump` with the node service
 * account's credentials from the GCE metadata server. Retention is the bucket's lifecycle rule
 * (cloud layer), so the uploader needs create rights only and cannot delete older backups.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { ResourceSpec } from "../../stacks/config";
import { METADATA_SERVER } from "../platform/names";
import type { AppPlatform } from "./inputs";
import { NON_PUBLIC_RANGES } from "../gcp/ipv4";
import { type Access, APP_UID, containerSecurity, networkPolicySpec, NOT_SCRAPED, podSecurity, resourcesOf, shutdownTiming, sidecarAnnotations } from "./mesh";
import { BACKUP, labelsOf, selectorOf } from "./topology";

export interface PostgresBackupArgs {
  /** Namespace (created by the platform). */
  namespace: string;
  /** Cron schedule (`data.backup.schedule`, UTC). */
  schedule: string;
  /** The PostgreSQL image (for `pg_dump`). */
  postgresImage: string;
  /** Image with `gcloud` (`data.backup.uploaderImage`). */
  uploaderImage: string;
  /** Bucket name (cloud layer), without `gs://`. */
  bucket: pulumi.Input<string>;
  /** Object prefix under `postgres/`, normally the stack name. */
  prefix: string;
  /** PostgreSQL connection variables as the read-only backup role (`PGHOST`…, `PGUSER` and its `PGPASSWORD` from the Secret). */
  env: k8s.types.input.core.v1.EnvVar[];
  /** Requests and limits of each of the two steps. */
  resources: ResourceSpec;
  /**
   * Room for the dump (an emptyDir on the node): the database's volume size, which a compressed dump of it
   * never exceeds, so the pod is not evicted for writing a dump its database could hold.
   */
  dumpSpaceGi: number;
  /** Requests and limits of the pod's Istio sidecar. */
  sidecar: ResourceSpec;
  /** PostgreSQL. */
  callees: Access[];
  /** DNS and istiod, for the sidecar; the agents, whose service account may write to the bucket. */
  platform: Pick<AppPlatform, "dns" | "istiod" | "agentNodeSelector">;
  /** Kubernetes provider of the cluster. */
  provider: k8s.Provider;
  /** PostgreSQL and the app secret must exist first. */
  dependsOn: pulumi.Input<pulumi.Resource>[];
}


/** Where the dump goes inside the pod. */
const DUMP = "/backup/postgres.dump";

/** How long the dump waits for PostgreSQL to answer (`DB_WAIT_SECONDS`). */
export const DB_WAIT_SECONDS = 60;

/**
 * The dump's shell script. It first waits until PostgreSQL answers: K3s' NetworkPolicy controller admits a
 * new pod's address to the database's policy a few seconds after the pod starts (kube-router#1309), and a
 * single connection attempt in that window failed the night's backup. Then the dump, and a read of it back.
 */
export const DUMP_SCRIPT = [
  "set -eu",
  'deadline=$(( $(date +%s) + DB_WAIT_SECONDS ))',
  "until pg_isready -q -t 2; do",
  '  if [ "$(date +%s)" -ge "$deadline" ]; then echo "pg-dump: PostgreSQL at ${PGHOST}:${PGPORT} did not answer within ${DB_WAIT_SECONDS} s" >&2; exit 1; fi',
  "  sleep 2",
  "done",
  `pg_dump --format=custom --compress=6 --no-owner --file="${DUMP}"`,
  `pg_restore --list "${DUMP}" > /dev/null`,
].join("\n");

/** The uploader's shell script: timestamped object name, no overwrite of an existing object. */
export const UPLOAD_SCRIPT = [
  "set -eu",
  'object="gs://${BUCKET}/postgres/${PREFIX}/$(date -u +%Y-%m-%dT%H%M%SZ).dump"',
  `gcloud storage cp --no-clobber "${DUMP}" "$object"`,
  'echo "uploaded $object"',
].join("\n");

export class PostgresBackup extends pulumi.ComponentResource {
  readonly cronJobName: pulumi.Output<string>;

  constructor(name: string, args: PostgresBackupArgs, opts?: pulumi.ComponentResourceOptions) {
    super("titanium:apps:PostgresBackup", name, {}, opts);
    const { namespace, provider } = args;
    const child = { parent: this, provider };
    const selector = selectorOf(BACKUP);
    const labels = labelsOf(BACKUP, "backup");
    const timing = shutdownTiming(0);

    const sa = new k8s.core.v1.ServiceAccount(`${name}-sa`, {
      metadata: { name: BACKUP, namespace, labels },
      automountServiceAccountToken: false,
    }, child);

    const networkPolicy = new k8s.networking.v1.NetworkPolicy(`${name}-network-policy`, {
      metadata: { name: BACKUP, namespace, labels },
      spec: networkPolicySpec({
        namespace,
        podLabels: selector,
        callers: [],
        callees: args.callees,
        platform: args.platform,
        extraEgress: [
          { to: [{ ipBlock: { cidr: METADATA_SERVER } }], ports: [{ protocol: "TCP", port: 80 }] },
          { to: [{ ipBlock: { cidr: "0.0.0.0/0", except: [...NON_PUBLIC_RANGES] } }], ports: [{ protocol: "TCP", port: 443 }] },
        ],
      }),
    }, child);

    const cronJob = new k8s.batch.v1.CronJob(`${name}-cronjob`, {
      metadata: { name: BACKUP, namespace, labels },
      spec: {
        schedule: args.schedule,
        timeZone: "Etc/UTC",
        concurrencyPolicy: "Forbid",
        startingDeadlineSeconds: 3600,
        successfulJobsHistoryLimit: 3,
        failedJobsHistoryLimit: 3,
        jobTemplate: {
          metadata: { labels },
          spec: {
            backoffLimit: 2,
            activeDeadlineSeconds: 3600,
            template: {
              metadata: {
                labels,
                annotations: {
                  ...sidecarAnnotations(args.sidecar, timing),
                  ...NOT_SCRAPED,
                  // Credentials come from the metadata server directly, not through the proxy.
                  "traffic.sidecar.istio.io/excludeOutboundIPRanges": METADATA_SERVER,
                },
              },
              spec: {
                serviceAccountName: BACKUP,
                restartPolicy: "Never",
                // The upload authenticates as the node's service account: only the agents' may write.
                nodeSelector: { ...args.platform.agentNodeSelector },
                ...podSecurity(APP_UID),
                initContainers: [
                  {
                    name: "pg-dump",
                    image: args.postgresImage,
                    imagePullPolicy: "IfNotPresent",
                    command: ["sh", "-c", DUMP_SCRIPT],
                    env: [...args.env, { name: "DB_WAIT_SECONDS", value: String(DB_WAIT_SECONDS) }],
                    resources: resourcesOf(args.resources),
                    securityContext: containerSecurity,
                    volumeMounts: [{ name: "backup", mountPath: "/backup" }],
                  },
                ],
                containers: [
                  {
                    name: "upload",
                    image: args.uploaderImage,
                    imagePullPolicy: "IfNotPresent",
                    command: ["sh", "-c", UPLOAD_SCRIPT],
                    env: [
                      { name: "BUCKET", value: args.bucket },
                      { name: "PREFIX", value: args.prefix },
                      // gcloud writes its config and logs; the root filesystem is read-only.
                      { name: "CLOUDSDK_CONFIG", value: "/tmp/gcloud" },
                      // One plain upload: a parallel composite upload (dumps over 150 MiB) deletes its
                      // temporary parts, and the backup identity may create and read objects, never delete.
                      { name: "CLOUDSDK_STORAGE_PARALLEL_COMPOSITE_UPLOAD_ENABLED", value: "False" },
                      { name: "HOME", value: "/tmp" },
                    ],
                    resources: resourcesOf(args.resources),
                    securityContext: containerSecurity,
                    volumeMounts: [
                      { name: "backup", mountPath: "/backup", readOnly: true },
                      { name: "tmp", mountPath: "/tmp" },
                    ],
                  },
                ],
                volumes: [
                  { name: "backup", emptyDir: { sizeLimit: `${args.dumpSpaceGi}Gi` } },
                  { name: "tmp", emptyDir: { sizeLimit: "256Mi" } },
                ],
              },
            },
          },
        },
      },
    }, { ...child, dependsOn: [sa, networkPolicy, ...args.dependsOn] });

    this.cronJobName = cronJob.metadata.name;
    this.registerOutputs({ cronJobName: this.cronJobName });
  }
}
