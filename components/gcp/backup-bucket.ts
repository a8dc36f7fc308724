import * as gcp from "@pulumi/gcp";
import * as pulumi from "@pulumi/pulumi";

export interface BackupBucketArgs {
  /** Globally unique bucket name. */
  bucketName: string;
  /** Region the bucket lives in (the cluster's). */
  region: string;
  /** Days a backup (and an overwritten or deleted version of it) is kept (config `data.backup.retentionDays`). */
  retentionDays: number;
  /** Service account that writes and reads backups (the agents', where the backup job runs). */
  writerEmail: pulumi.Input<string>;
  /** Protect the bucket; unprotected buckets may be destroyed with their objects (dev). */
  protect: boolean;
}

/**
 * The bucket for PostgreSQL backups: uniform bucket-level access, public access prevention,
 * versioning, and a lifecycle that keeps each backup (and each overwritten version) for the
 * retention period. The writer may create and read objects, not delete them.
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
        versioning: { enabled: true },
        lifecycleRules: [
          { condition: { age: args.retentionDays, withState: "LIVE" }, action: { type: "Delete" } },
          { condition: { daysSinceNoncurrentTime: args.retentionDays, withState: "ARCHIVED" }, action: { type: "Delete" } },
        ],
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
