import { chartName, getPath, HELM_RELEASE_TYPES, objectName, type Obj } from "../lib/k8s";
import { resourcePolicy, type BaseConfig } from "../lib/policy";
import { isOn, reportOpaqueRelease, toggleSchema, walkValues, type ValuesToggle } from "../lib/values";

/** A values path of a Service type whose chart default is LoadBalancer, and the switch that renders that Service (always, when absent). */
export interface ChartServiceType {
  path: string;
  enabledBy?: ValuesToggle;
}

interface Config extends BaseConfig {
  chartServiceTypeDefaults: Record<string, ChartServiceType[]>;
}

/**
 * Charts whose default Service type is LoadBalancer (checked in components/platform/chart-defaults): their values must
 * set another type explicitly wherever that Service is rendered. The Istio gateway chart defaults
 * `service.type` to LoadBalancer; kube-prometheus-stack (88.5.3) its external Thanos sidecar Service's
 * `prometheus.thanosServiceExternal.type`, rendered when `prometheus.thanosServiceExternal.enabled` is on.
 */
export const DEFAULT_CHART_SERVICE_TYPES: Record<string, ChartServiceType[]> = {
  gateway: [{ path: "service.type" }],
  "kube-prometheus-stack": [
    { path: "prometheus.thanosServiceExternal.type", enabledBy: { path: "prometheus.thanosServiceExternal.enabled", default: false } },
  ],
};

/** No Service of type LoadBalancer: public traffic enters only through Titanium's own GCP load balancer. */
export const noLoadBalancerService = resourcePolicy<Config>(
  {
    name: "k8s-no-load-balancer-service",
    description:
      "No Service of type LoadBalancer (as an object, in chart values, or by a chart's default): the GCP load balancer forwards to the Istio gateway's NodePorts, and K3s' service load balancer is disabled.",
    severity: "high",
    enforcementLevel: "mandatory",
    remediationSteps:
      "Use `type: ClusterIP` (or `NodePort` for the Istio gateway, on the ports in `titanium:ingress`). For a chart whose Service defaults to LoadBalancer (the Istio gateway chart), set the type explicitly in its values.",
    configSchema: {
      properties: {
        chartServiceTypeDefaults: {
          type: "object",
          additionalProperties: {
            type: "array",
            items: { type: "object", properties: { path: { type: "string" }, enabledBy: toggleSchema }, required: ["path"], additionalProperties: false },
          },
          default: DEFAULT_CHART_SERVICE_TYPES,
          description: "Per chart, the values paths of Service types whose chart default is LoadBalancer, each with the values switch that renders its Service (`enabledBy`; always rendered when absent).",
        },
      },
    },
  },
  (args, judge, report, config) => {
    const props = args.props as Obj;
    if (args.type === "kubernetes:core/v1:Service") {
      judge.check(() => {
        if ((props.spec as Obj | undefined)?.type === "LoadBalancer") report(`Service ${objectName(props, args.name)} is of type LoadBalancer`);
      });
      return;
    }
    if (!HELM_RELEASE_TYPES.includes(args.type)) return;
    judge.check(() => reportOpaqueRelease(props, chartName(props) ?? "(none)", report));
    judge.check(() => {
      const values = (props.values ?? {}) as Obj;
      walkValues(values, ({ path, key, value, unknown }) => {
        if (key !== "type") return;
        if (unknown) judge.unknownValue(unknown);
        else if (value === "LoadBalancer") report(`values ${path} is LoadBalancer`);
      });
      const chart = chartName(props);
      for (const { path, enabledBy } of (chart && config.chartServiceTypeDefaults[chart]) || []) {
        if (enabledBy && !isOn(values, enabledBy)) continue;
        const on = enabledBy ? ` (on: ${enabledBy.path})` : "";
        if (getPath(values, path) === undefined) report(`chart "${chart}" defaults ${path} to LoadBalancer${on} and the values do not set it`);
      }
    });
  },
);
