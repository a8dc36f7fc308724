import type { Obj } from "../lib/k8s";
import { resourcePolicy, type BaseConfig } from "../lib/policy";

interface Config extends BaseConfig {
  requiredLabels: string[];
}

const SECRET = "gcp:secretmanager/secret:Secret";

/** Provider inputs reach the engine JSON-encoded (provider config is string-typed), objects in tests. */
function providerLabels(value: unknown): Record<string, string> {
  if (typeof value === "string") {
    try {
      return JSON.parse(value) as Record<string, string>;
    } catch {
      return {};
    }
  }
  return (value ?? {}) as Record<string, string>;
}

/** Secret Manager secrets are labelled (the provider's default labels count) and say how they replicate. */
export const secretManagerHygiene = resourcePolicy<Config>(
  {
    name: "gcp-secret-manager-hygiene",
    description:
      "Every Secret Manager secret carries the required labels (its own or the provider's defaultLabels) and states its replication (auto or user-managed).",
    severity: "medium",
    enforcementLevel: "advisory",
    remediationSteps:
      "Create secrets through the explicit GCP provider (its defaultLabels carry environment, project, managed-by) or pass `labels`, and set user-managed replication in the stack's region, `replication: { userManaged: { replicas: [{ location: <region> }] } }` (ADR 0012; `auto: {}` passes too).",
    configSchema: {
      properties: {
        requiredLabels: {
          type: "array",
          items: { type: "string" },
          default: ["environment", "project", "managed-by"],
          description: "Label keys every secret must carry.",
        },
      },
    },
  },
  (args, judge, report, config) => {
    if (args.type !== SECRET) return;
    const props = args.props as Obj;
    judge.check(() => {
      const own = (props.labels ?? {}) as Record<string, string>;
      const fromProvider = providerLabels((args.provider?.props as Obj | undefined)?.defaultLabels);
      const labels = { ...fromProvider, ...own };
      const missing = config.requiredLabels.filter((k) => typeof labels[k] !== "string" || labels[k] === "");
      if (missing.length > 0) report(`secret ${String(props.secretId ?? args.name)} lacks label(s) ${missing.join(", ")}`);
    });
    judge.check(() => {
      const replication = (props.replication ?? {}) as Obj;
      const userManaged = replication.userManaged as Obj | undefined;
      const replicas = Array.isArray(userManaged?.replicas) ? (userManaged!.replicas as unknown[]) : [];
      if (replication.auto === undefined && replicas.length === 0) {
        report(`secret ${String(props.secretId ?? args.name)} states no replication (auto or userManaged.replicas)`);
      }
    });
  },
);
