import { isKubernetesComponent, labelsOf, metadataOf, objectName, podTemplate, type Obj } from "../lib/k8s";
import { resourcePolicy, type BaseConfig } from "../lib/policy";

interface Config extends BaseConfig {
  required: string[];
}

/** The recommended `app.kubernetes.io/*` labels on every Kubernetes object the program creates. */
export const recommendedLabels = resourcePolicy<Config>(
  {
    name: "k8s-recommended-labels",
    description:
      "Every Kubernetes object the program creates (and the pod template of every workload) carries the recommended app.kubernetes.io labels.",
    severity: "low",
    enforcementLevel: "advisory",
    remediationSteps:
      "Add `app.kubernetes.io/name`, `app.kubernetes.io/part-of: titanium` and `app.kubernetes.io/managed-by: pulumi` to `metadata.labels` (and the pod template's labels); derive them once per component.",
    configSchema: {
      properties: {
        required: {
          type: "array",
          items: { type: "string" },
          default: ["app.kubernetes.io/name", "app.kubernetes.io/part-of", "app.kubernetes.io/managed-by"],
          description: "Label keys every object must carry.",
        },
      },
    },
  },
  (args, judge, report, config) => {
    // Chart resources are not objects; their objects come from the chart's own labels.
    if (!args.type.startsWith("kubernetes:") || isKubernetesComponent(args.type)) return;
    const props = args.props as Obj;
    judge.check(() => {
      const missing = config.required.filter((k) => typeof labelsOf(metadataOf(props))[k] !== "string");
      if (missing.length > 0) report(`${objectName(props, args.name)} lacks label(s) ${missing.join(", ")}`);
    });
    judge.check(() => {
      const tpl = podTemplate(args.type, props);
      if (!tpl) return;
      const missing = config.required.filter((k) => typeof labelsOf(tpl.metadata)[k] !== "string");
      if (missing.length > 0) report(`${objectName(props, args.name)} pod template lacks label(s) ${missing.join(", ")}`);
    });
  },
);
