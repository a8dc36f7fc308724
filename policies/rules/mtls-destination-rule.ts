import { isDestinationRule, WEAK_CLIENT_TLS_MODES } from "../lib/istio";
import { globMatch, objectName, type Obj } from "../lib/k8s";
import { resourcePolicy, type BaseConfig } from "../lib/policy";

interface Config extends BaseConfig {
  meshDomain: string;
  meshHostPatterns: string[];
}

/**
 * Whether a DestinationRule host names a service inside the mesh: a short name (`redis`), anything
 * under `.svc` or the mesh domain, `*`, or a configured pattern. Other FQDNs are external services,
 * where SIMPLE TLS is the right mode.
 */
export function isMeshHost(host: string, config: Pick<Config, "meshDomain" | "meshHostPatterns">): boolean {
  if (host === "*" || !host.includes(".")) return true;
  const h = host.toLowerCase();
  if (h.endsWith(".svc") || h.includes(".svc.") || h.endsWith(`.${config.meshDomain}`)) return true;
  return config.meshHostPatterns.some((p) => globMatch(p, h));
}

/** Client-side TLS towards in-mesh hosts stays ISTIO_MUTUAL (or unset): never DISABLE or SIMPLE. */
export const mtlsDestinationRule = resourcePolicy<Config>(
  {
    name: "istio-destination-rule-mtls",
    description: "DestinationRules towards in-mesh hosts never set TLS mode DISABLE or SIMPLE (which would bypass mutual TLS).",
    severity: "critical",
    enforcementLevel: "mandatory",
    remediationSteps:
      "Use `tls.mode: ISTIO_MUTUAL` (or leave `tls` out: Istio's auto mTLS applies) in `trafficPolicy`, its `portLevelSettings` and every subset. SIMPLE is for hosts outside the mesh (ServiceEntry FQDNs) only.",
    configSchema: {
      properties: {
        meshDomain: { type: "string", default: "cluster.local", description: "The cluster's DNS domain." },
        meshHostPatterns: {
          type: "array",
          items: { type: "string" },
          default: [],
          description: "Extra host globs that are in the mesh (e.g. `*.titanium` for name.namespace hosts).",
        },
      },
    },
  },
  (args, judge, report, config) => {
    if (!isDestinationRule(args.type)) return;
    const props = args.props as Obj;
    judge.check(() => {
      const spec = (props.spec ?? {}) as Obj;
      const host = spec.host;
      if (typeof host !== "string" || !isMeshHost(host, config)) return;
      const weak: string[] = [];
      const inspect = (policy: unknown, where: string) => {
        const tp = (policy ?? {}) as Obj;
        const mode = (tp.tls as Obj | undefined)?.mode;
        if (typeof mode === "string" && WEAK_CLIENT_TLS_MODES.includes(mode)) weak.push(`${where}tls.mode ${mode}`);
        const ports = Array.isArray(tp.portLevelSettings) ? (tp.portLevelSettings as Obj[]) : [];
        ports.forEach((p, i) => {
          const m = (p.tls as Obj | undefined)?.mode;
          const port = ((p.port as Obj | undefined)?.number as number | undefined) ?? i;
          if (typeof m === "string" && WEAK_CLIENT_TLS_MODES.includes(m)) weak.push(`${where}portLevelSettings[port ${port}].tls.mode ${m}`);
        });
      };
      inspect(spec.trafficPolicy, "trafficPolicy.");
      const subsets = Array.isArray(spec.subsets) ? (spec.subsets as Obj[]) : [];
      subsets.forEach((s, i) => inspect(s.trafficPolicy, `subsets[${typeof s.name === "string" ? s.name : i}].trafficPolicy.`));
      for (const w of weak) report(`${objectName(props, args.name)} (host ${host}, in the mesh) sets ${w}`);
    });
  },
);
