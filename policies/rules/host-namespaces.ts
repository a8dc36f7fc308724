import { chartName, containersOf, describeContainer, getPath, HELM_RELEASE_TYPES, objectName, podTemplate, type Obj } from "../lib/k8s";
import { resourcePolicy, type BaseConfig } from "../lib/policy";
import { chartEntries, chartTableSchema, isOn, reportOpaqueRelease, toggleSchema, type ValuesToggle, valuesPath, walkValues } from "../lib/values";

const HOST_NAMESPACES = ["hostNetwork", "hostPID", "hostIPC"] as const;
type HostNamespace = (typeof HOST_NAMESPACES)[number];

/**
 * The host namespaces a chart's pods join, as far as a Helm release's values decide them (the
 * release is one opaque resource: its pod specs are never seen as objects).
 */
export interface ChartHostNamespaces {
  /** The chart whose pods join them. */
  chart: string;
  /** Where that chart's values sit in the release's values (a subchart's key); the release's own values when absent. */
  valuesPrefix?: string;
  /** A boolean path of the release's values that turns the chart's pods on (a subchart's `enabled`), and its default. */
  enabledBy?: ValuesToggle;
  /** A host namespace the pods join when every one of its toggles (under `valuesPrefix`) is on. */
  joins: { field: HostNamespace; when: ValuesToggle[] }[];
}

interface Config extends BaseConfig {
  chartHostNamespaces: Record<string, ChartHostNamespaces[]>;
}

const NODE_EXPORTER: Omit<ChartHostNamespaces, "valuesPrefix" | "enabledBy"> = {
  chart: "prometheus-node-exporter",
  joins: [
    { field: "hostNetwork", when: [{ path: "hostNetwork", default: true }] },
    { field: "hostPID", when: [{ path: "hostPID", default: true }] },
    { field: "hostIPC", when: [{ path: "hostIPC", default: false }] },
  ],
};

/**
 * Per release chart, the host namespaces its pods join unless the values say otherwise (the node
 * exporter subchart joins the node's network and PID namespaces by default; istio `cni` joins the
 * network namespace in ambient mode with `shareHostNetworkNamespace`). An explicit `true` for
 * `hostNetwork`, `hostPID` or `hostIPC` anywhere in a release's values counts too. Every chart a
 * release may install is listed: a release of a chart missing here is reported, not passed.
 */
export const DEFAULT_CHART_HOST_NAMESPACES: Record<string, ChartHostNamespaces[]> = {
  "kube-prometheus-stack": [{ ...NODE_EXPORTER, valuesPrefix: "prometheus-node-exporter", enabledBy: { path: "nodeExporter.enabled", default: true } }],
  "prometheus-node-exporter": [NODE_EXPORTER],
  cni: [
    {
      chart: "cni",
      joins: [{ field: "hostNetwork", when: [{ path: "ambient.enabled", default: false }, { path: "ambient.shareHostNetworkNamespace", default: false }] }],
    },
  ],
  base: [],
  istiod: [],
  gateway: [],
  loki: [],
  alloy: [],
  "argo-cd": [],
  "external-secrets": [],
};

/**
 * A `hostPort` that binds a port of the node (0 or unset binds none). Pod Security's baseline refuses it: the
 * port is opened on the node's address, outside the Services, the mesh and the NetworkPolicies.
 */
export const bindsHostPort = (v: unknown): boolean => (typeof v === "number" ? v !== 0 : typeof v === "string" && v.trim() !== "" && Number(v) !== 0);

/** Pods never share the node's network, process or IPC namespace, nor bind a port on the node: neither the program's nor a chart's. */
export const noHostNamespaces = resourcePolicy<Config>(
  {
    name: "k8s-no-host-namespaces",
    description:
      "No pod uses hostNetwork, hostPID or hostIPC, and no container binds a hostPort; Helm releases are judged by the host namespaces their values (and their charts' defaults) give their pods, and by any hostPort in their values.",
    severity: "critical",
    enforcementLevel: "mandatory",
    remediationSteps:
      "Remove `hostNetwork`, `hostPID` and `hostIPC` from the pod spec, or set them to false in the chart's values (the node exporter subchart defaults both hostNetwork and hostPID to true). Remove `ports[].hostPort` from every container (and from chart values). Node-level metrics come from node exporter through hostPath mounts (allow-listed), not from host namespaces; expose ports through a Service (a NodePort for the gateway).",
    configSchema: {
      properties: {
        chartHostNamespaces: chartTableSchema(
          "joins",
          { properties: { field: { type: "string", enum: [...HOST_NAMESPACES] }, when: { type: "array", items: toggleSchema } }, required: ["field", "when"] },
          DEFAULT_CHART_HOST_NAMESPACES,
          "Per Helm chart (of a Release), the host namespaces its pods join as its values decide.",
        ),
      },
    },
  },
  (args, judge, report, config) => {
    const props = args.props as Obj;
    if (HELM_RELEASE_TYPES.includes(args.type)) {
      judge.check(() => reportOpaqueRelease(props, chartName(props) ?? "(none)", report));
      judge.check(() => {
        const release = chartName(props) ?? "(none)";
        const entries = chartEntries(config.chartHostNamespaces, release, "chartHostNamespaces", "the host namespaces its pods join are unknown: add it (with none if it joins none)", report);
        if (!entries) return;
        const values = (props.values ?? {}) as Obj;
        const decided = new Set<string>();
        for (const c of entries) {
          judge.check(() => {
            if (c.enabledBy && !isOn(values, c.enabledBy)) return;
            const at = (path: string) => valuesPath(c.valuesPrefix, path);
            for (const j of c.joins) {
              for (const t of j.when) decided.add(at(t.path));
              if (!j.when.every((t) => isOn(values, t, c.valuesPrefix))) continue;
              const set = j.when.filter((t) => getPath(values, at(t.path)) !== undefined).map((t) => at(t.path));
              const why = set.length === j.when.length ? `values ${set.join(", ")}` : "the chart's default";
              report(`chart "${release}": its ${c.chart === release ? "" : `${c.chart} `}pods use ${j.field} (${why})`);
            }
          });
        }
        // Explicit switches anywhere else in the values (a subchart, an extra component).
        walkValues(values, ({ path, key, value, unknown }) => {
          if (!(HOST_NAMESPACES as readonly string[]).includes(key) || decided.has(path)) return;
          if (unknown) {
            judge.unknownValue(unknown);
            return;
          }
          if (value === true) report(`chart "${release}": values ${path} is true`);
        });
        // A hostPort anywhere in the values: a port spec written out (`extraContainers[0].ports[0].hostPort`) or a chart's own switch.
        walkValues(values, ({ path, key, value, unknown }) => {
          if (key !== "hostPort") return;
          if (unknown) {
            judge.unknownValue(unknown);
            return;
          }
          if (bindsHostPort(value)) report(`chart "${release}": values ${path} binds host port ${String(value)}`);
        });
      });
      return;
    }
    judge.check(() => {
      const tpl = podTemplate(args.type, props);
      if (!tpl) return;
      for (const field of HOST_NAMESPACES) {
        judge.check(() => {
          if (tpl.spec[field] === true) report(`${objectName(props, args.name)} sets ${field}: true`);
        });
      }
      for (const ref of containersOf(tpl.spec)) {
        judge.check(() => {
          const ports = Array.isArray(ref.container.ports) ? (ref.container.ports as Obj[]) : [];
          for (const port of ports) {
            if (bindsHostPort(port?.hostPort)) report(`${objectName(props, args.name)} ${describeContainer(ref)} binds host port ${String(port.hostPort)} (ports[].hostPort)`);
          }
        });
      }
    });
  },
);
