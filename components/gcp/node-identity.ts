import * as gcp from "@pulumi/gcp";
import * as pulumi from "@pulumi/pulumi";

/** Project roles every node needs: ship its logs and metrics, nothing else. Secrets are granted per secret. */
export const NODE_PROJECT_ROLES = ["roles/logging.logWriter", "roles/monitoring.metricWriter"] as const;

export interface NodeIdentityArgs {
  /** Project the service accounts and role bindings live in. */
  project: string;
  /** Prefix of the account ids (`<prefix>-server`, `<prefix>-agent`; at most 24 characters). */
  accountPrefix: string;
}

/**
 * One dedicated service account for the K3s servers and one for the agents, each with only the
 * project roles in {@link NODE_PROJECT_ROLES}. Read access to a secret is granted on that secret
 * alone (see `Secret`), so a server can read the K3s CA and tokens and an agent only its join token
 * and the application secrets External Secrets syncs.
 */
export class NodeIdentity extends pulumi.ComponentResource {
  readonly server: gcp.serviceaccount.Account;
  readonly agent: gcp.serviceaccount.Account;
  /** The accounts' addresses as Outputs: for what must wait until the account exists (IAM bindings). */
  readonly serverEmail: pulumi.Output<string>;
  readonly agentEmail: pulumi.Output<string>;
  /**
   * The same addresses as plain values, known in a preview (`<accountId>@<project>.iam.gserviceaccount.com`):
   * for the VMs, so the service-account policy judges them before anything exists. A VM that takes one
   * waits for the account through its other dependencies (the secrets granted to the account).
   */
  readonly serverAddress: string;
  readonly agentAddress: string;

  constructor(name: string, args: NodeIdentityArgs, opts?: pulumi.ComponentResourceOptions) {
    super("titanium:gcp:NodeIdentity", name, {}, opts);
    // Account ids are 6-30 characters; the longest one here is `<prefix>-server`.
    if (!/^[a-z][a-z0-9-]{4,22}$/.test(args.accountPrefix)) {
      throw new Error(`NodeIdentity ${name}: accountPrefix "${args.accountPrefix}" must be 5-23 characters of a-z, 0-9 and "-", starting with a letter`);
    }
    const account = (role: "server" | "agent") => {
      const sa = new gcp.serviceaccount.Account(
        `${name}-${role}`,
        {
          project: args.project,
          accountId: `${args.accountPrefix}-${role}`,
          displayName: `Titanium K3s ${role}s`,
          description: `Identity of the K3s ${role} VMs: logs, metrics and the secrets granted to it`,
        },
        { parent: this },
      );
      for (const projectRole of NODE_PROJECT_ROLES) {
        new gcp.projects.IAMMember(
          `${name}-${role}-${projectRole.split("/")[1]!.replace(/\./g, "-").toLowerCase()}`,
          { project: args.project, role: projectRole, member: sa.member },
          { parent: this },
        );
      }
      return sa;
    };
    this.server = account("server");
    this.agent = account("agent");
    this.serverEmail = this.server.email;
    this.agentEmail = this.agent.email;
    this.serverAddress = `${args.accountPrefix}-server@${args.project}.iam.gserviceaccount.com`;
    this.agentAddress = `${args.accountPrefix}-agent@${args.project}.iam.gserviceaccount.com`;
    this.registerOutputs({ serverEmail: this.serverEmail, agentEmail: this.agentEmail });
  }
}
