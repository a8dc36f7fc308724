import * as gcp from "@pulumi/gcp";
import * as pulumi from "@pulumi/pulumi";

export interface SecretArgs {
  /** The Secret Manager secret id, e.g. `titanium-dev-postgres-password`. */
  secretId: string;
  /** The one region the secret is replicated to (user-managed replication keeps the data in region). */
  region: string;
  /** The payload; stored as a secret version and kept secret in the Pulumi state. */
  data: pulumi.Input<string>;
  /**
   * Who may read it: service account emails by a short key (the key names the IAM binding).
   * Each gets roles/secretmanager.secretAccessor on this secret only.
   */
  readers: Record<string, pulumi.Input<string>>;
  /** Protect the secret and its version from deletion (config `protect`). */
  protect: boolean;
}

/** One Secret Manager secret with its current version and per-secret read access. */
export class Secret extends pulumi.ComponentResource {
  readonly secret: gcp.secretmanager.Secret;
  readonly version: gcp.secretmanager.SecretVersion;
  /**
   * The secret id (`titanium-<stack>-<name>`), what External Secrets' `remoteRef.key` names. It carries
   * the version and the read grants as dependencies: a consumer created from it never reads a secret
   * that has no value yet, or that its reader may not read yet.
   */
  readonly secretId: pulumi.Output<string>;
  /** Full resource name, `projects/<project>/secrets/<id>`. */
  readonly resourceName: pulumi.Output<string>;

  constructor(name: string, args: SecretArgs, opts?: pulumi.ComponentResourceOptions) {
    super("titanium:gcp:Secret", name, {}, opts);
    this.secret = new gcp.secretmanager.Secret(
      name,
      {
        secretId: args.secretId,
        replication: { userManaged: { replicas: [{ location: args.region }] } },
      },
      { parent: this, protect: args.protect },
    );
    this.version = new gcp.secretmanager.SecretVersion(
      `${name}-v`,
      { secret: this.secret.id, secretData: pulumi.secret(args.data) },
      { parent: this, protect: args.protect },
    );
    const grants = Object.entries(args.readers).map(
      ([reader, email]) =>
        new gcp.secretmanager.SecretIamMember(
          `${name}-${reader}`,
          { secretId: this.secret.id, role: "roles/secretmanager.secretAccessor", member: pulumi.interpolate`serviceAccount:${email}` },
          { parent: this },
        ),
    );
    // URNs, not ids: known in a preview too, so the id still shows there (an id would read as unknown).
    this.secretId = pulumi.all([this.version.urn, ...grants.map((g) => g.urn)]).apply(() => this.secret.secretId);
    this.resourceName = this.secret.name;
    this.registerOutputs({ secretId: this.secretId, resourceName: this.resourceName });
  }
}
