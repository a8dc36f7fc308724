/**
 * Database migrations as a Job that must finish before the services that use the database roll out
 * (they `dependsOn` it; Pulumi waits for a Job to complete). A new image replaces the Job, so every
 * release runs its migrations once; the kit's advisory lock keeps concurrent runs safe anyway.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { ResourceSpec } from "../../stacks/config";
import type { AppPlatform } from "./inputs";
import { type Access, APP_UID, containerSecurity, networkPolicySpec, NOT_SCRAPED, podSecurity, resourcesOf, shutdownTiming, sidecarAnnotations } from "./mesh";
import { imageVersion, labelsOf, MIGRATIONS, selectorOf } from "./topology";

export interface MigrationsArgs {
  /** Namespace (created by the platform). */
  namespace: string;
  /** A service image that contains the migrations and the one-shot command. */
  image: string;
  /** The one-shot migrations command, e.g. `["node", "dist/migrate.js"]`. */
  command: string[];
  /** PostgreSQL connection variables as the owner (`PGHOST`… and `PGPASSWORD` from the Secret), and each database role's password to set. */
  env: k8s.types.input.core.v1.EnvVar[];
  /** Requests and limits of the container. */
  resources: ResourceSpec;
  /** Requests and limits of its Istio sidecar. */
  sidecar: ResourceSpec;
  /** PostgreSQL, the only thing the Job talks to. */
  callees: Access[];
  /** DNS and istiod, for the sidecar. */
  platform: Pick<AppPlatform, "dns" | "istiod">;
  /** Kubernetes provider of the cluster. */
  provider: k8s.Provider;
  /** PostgreSQL and the app secret must exist first. */
  dependsOn: pulumi.Input<pulumi.Resource>[];
}

export class Migrations extends pulumi.ComponentResource {
  /** The Job; services that need the new schema depend on it. */
  readonly job: k8s.batch.v1.Job;

  constructor(name: string, args: MigrationsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("titanium:apps:Migrations", name, {}, opts);
    const { namespace, provider } = args;
    const child = { parent: this, provider };
    const selector = selectorOf(MIGRATIONS);
    const labels = labelsOf(MIGRATIONS, "migrations");
    const timing = shutdownTiming(0);

    const sa = new k8s.core.v1.ServiceAccount(`${name}-sa`, {
      metadata: { name: MIGRATIONS, namespace, labels },
      automountServiceAccountToken: false,
    }, child);

    const networkPolicy = new k8s.networking.v1.NetworkPolicy(`${name}-network-policy`, {
      metadata: { name: MIGRATIONS, namespace, labels },
      spec: networkPolicySpec({ namespace, podLabels: selector, callers: [], callees: args.callees, platform: args.platform }),
    }, child);

    this.job = new k8s.batch.v1.Job(`${name}-job`, {
      // Auto-named (`migrations-<suffix>`): a new image replaces the Job instead of failing on its immutable template.
      metadata: { namespace, labels },
      spec: {
        backoffLimit: 2,
        activeDeadlineSeconds: 600,
        template: {
          metadata: { labels: labelsOf(MIGRATIONS, "migrations", imageVersion(args.image)), annotations: { ...sidecarAnnotations(args.sidecar, timing), ...NOT_SCRAPED } },
          spec: {
            serviceAccountName: MIGRATIONS,
            restartPolicy: "Never",
            ...podSecurity(APP_UID),
            containers: [
              {
                name: "migrate",
                image: args.image,
                imagePullPolicy: "IfNotPresent",
                command: args.command,
                env: args.env,
                resources: resourcesOf(args.resources),
                securityContext: containerSecurity,
                volumeMounts: [{ name: "tmp", mountPath: "/tmp" }],
              },
            ],
            volumes: [{ name: "tmp", emptyDir: { sizeLimit: "16Mi" } }],
          },
        },
      },
    }, { ...child, dependsOn: [sa, networkPolicy, ...args.dependsOn] });

    this.registerOutputs({ jobName: this.job.metadata.name });
  }
}
