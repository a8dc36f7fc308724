import * as gcp from "@pulumi/gcp";
import * as pulumi from "@pulumi/pulumi";

export interface BackupBucketArgs {
  /** Globally unique bucket name. */
  bucketName: string;
  /** Region the bucket lives in (the cluster's). */
  region: string;
  /** Days a backup is kept (config `data.backup.retentionDays`); deleted ones stay recoverable {@link SOFT_DELETE_DAYS} more. */
  retentionDays: number;
  /** Service account that writes and reads backups (the agents', where the backup job runs). */
  writerEmail: pulumi.Input<string>;
  /** Protect the bucket; unprotected buckets may be destroyed with their objects (dev). */
  protect: boolean;
}

/**
 * Days a deleted backup stays recoverable (GCS soft delete, its minimum: 7). It covers deletions by
 * the lifecycle rule too, so an object is billed for retentionDays + SOFT_DELETE_DAYS.
 */
export const SOFT_DELETE_DAYS = 7;

/**
 * The bucket for PostgreSQL backups: uniform bucket-level access, public access prevention, a
 * lifecycle that deletes each backup after the retention period, and soft delete so a mistaken
 * deletion can be undone for a week. No object versioning: backups have unique names and the writer
 * may create and read objects, neither delete nor overwrite them, so versions would only keep every
 * expired backup for a second retention period.
 */
export class BackupBucket extends pulumi.ComponentResource {
  readonly bucket: gcp.storage.Bucket;
  readonly bucketName: pulumi.Output<string>;

  constructor(name: string, args: BackupBucketArgs, opts?: pulumi.ComponentResourceOptions) {
    super("titanium:gcp:BackupBucket", name, {}, opts);
    if (args.retentionDays < 1) throw new Error(`BackupBucket ${name}: retentionDays must be at least 1`);
    this.bucket = new gcp.storage.Bucket(
      name,
      {
        name: args.bucketName,
        location: args.region.toUpperCase(),
        storageClass: "STANDARD",
        uniformBucketLevelAccess: true,
        publicAccessPrevention: "enforced",
        versioning: { enabled: false },
        softDeletePolicy: { retentionDurationSeconds: SOFT_DELETE_DAYS * 86_400 },
        lifecycleRules: [{ condition: { age: args.retentionDays }, action: { type: "Delete" } }],
        forceDestroy: !args.protect,
      },
      { parent: this, protect: args.protect },
    );
    for (const role of ["roles/storage.objectCreator", "roles/storage.objectViewer"]) {
      new gcp.storage.BucketIAMMember(
        `${name}-${role.split(".")[1]!.toLowerCase()}`,
        { bucket: this.bucket.name, role, member: pulumi.interpolate`serviceAccount:${args.writerEmail}` },
        { parent: this },
      );
    }
    this.bucketName = this.bucket.name;
    this.registerOutputs({ bucketName: this.bucketName });
  }
}
