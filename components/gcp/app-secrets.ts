import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import * as tls from "@pulumi/tls";
import { APP_SECRET_NAMES, type AppSecretName, OPERATOR_ONLY_SECRETS } from "./names";
import { Secret } from "./secret";


/** The Secret Manager id of a secret: `titanium-<stack>-<name>`. */
export function secretIdFor(prefix: string, name: string): string {
  return `${prefix}-${name}`;
}

export interface AppSecretsArgs {
  /** Secret id prefix, `titanium-<stack>`. */
  prefix: string;
  /** Region of the secrets' single replica. */
  region: string;
  /** Service account that reads them: the agents', whose pods include External Secrets (ADC). */
  readerEmail: pulumi.Input<string>;
  /** Protect the generated values and the secrets (config `protect`). */
  protect: boolean;
  /** Names of the auth-service's ES256 keys (config `auth.signingKeys`): the first signs, the rest are only published. */
  jwtKeyNames: readonly string[];
}

/**
 * Generates the application secrets with `@pulumi/random` / `@pulumi/tls` and stores each in
 * Secret Manager, readable by the agents' service account only (none for the operators' own). Nothing is a literal; the values
 * exist only in the (encrypted) Pulumi state and in Secret Manager.
 */
export class AppSecrets extends pulumi.ComponentResource {
  /** Secret Manager secret ids by name, for External Secrets' remote references. */
  readonly secretIds: Record<AppSecretName, pulumi.Output<string>>;
  /**
   * PEM public keys of every configured key, the signing key first, concatenated (the auth-service's
   * `JWT_PUBLIC_KEYS`): public by nature, so a plain value rather than a secret. All of them, the signing
   * key too: a pod publishes them whichever private key its Secret held when it started (External Secrets
   * syncs a rotated key up to its refresh interval after the Deployment rolled), and refuses to start with
   * a key the list does not hold (one rotated out because it leaked).
   */
  readonly jwtPublicKeys: pulumi.Output<string>;

  constructor(name: string, args: AppSecretsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("titanium:gcp:AppSecrets", name, {}, opts);
    const keep = { parent: this, protect: args.protect };
    const password = (id: string, length: number) =>
      new random.RandomPassword(`${name}-${id}`, { length, special: false, minLower: 1, minUpper: 1, minNumeric: 1 }, keep);

    const argocd = password("argocd-admin", 24);
    // ES256 keys of the auth-service, one resource per configured name so that reordering the list rotates
    // keys without replacing any (PEM PKCS#8 private keys: what `jose.importPKCS8` reads).
    const jwtKeys = args.jwtKeyNames.map(
      (key) => new tls.PrivateKey(`${name}-jwt-key-${key}`, { algorithm: "ECDSA", ecdsaCurve: "P256" }, keep),
    );
    const signing = jwtKeys[0];
    if (!signing) throw new Error("AppSecrets: jwtKeyNames needs at least one key name");
    this.jwtPublicKeys = pulumi.all(jwtKeys.map((k) => k.publicKeyPem)).apply((pems) => pems.map((p) => p.trim()).join("\n"));

    const values: Record<AppSecretName, pulumi.Output<string>> = {
      // The owner's (the migrations'), then each database role's own (the migrations set them on every run).
      "postgres-password": password("postgres", 32).result,
      "postgres-auth-service-password": password("postgres-auth-service", 32).result,
      "postgres-user-service-password": password("postgres-user-service", 32).result,
      "postgres-blog-service-password": password("postgres-blog-service", 32).result,
      "postgres-backup-password": password("postgres-backup", 32).result,
      // The Redis probes' user's, then each service's own Redis user's (hashed into Redis' config at its start).
      "redis-password": password("redis", 32).result,
      "redis-api-gateway-password": password("redis-api-gateway", 32).result,
      "redis-user-service-password": password("redis-user-service", 32).result,
      "redis-blog-service-password": password("redis-blog-service", 32).result,
      "jwt-signing-key": signing.privateKeyPemPkcs8,
      "grafana-admin-password": password("grafana-admin", 24).result,
      "argocd-admin-password": argocd.result,
      // What Argo CD's argocd-secret `admin.password` holds.
      "argocd-admin-password-bcrypt": argocd.bcryptHash,
    };

    const ids = {} as Record<AppSecretName, pulumi.Output<string>>;
    for (const secretName of APP_SECRET_NAMES) {
      const secret = new Secret(
        `${name}-${secretName}`,
        {
          secretId: secretIdFor(args.prefix, secretName),
          region: args.region,
          data: values[secretName],
          readers: OPERATOR_ONLY_SECRETS.has(secretName) ? {} : { agents: args.readerEmail },
          protect: args.protect,
        },
        { parent: this },
      );
      ids[secretName] = secret.secretId;
    }
    this.secretIds = ids;
    this.registerOutputs({ secretIds: this.secretIds, jwtPublicKeys: this.jwtPublicKeys });
  }
}
