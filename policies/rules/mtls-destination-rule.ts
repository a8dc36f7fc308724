import { isDestinationRule, WEAK_CLIENT_TLS_MODES } from "../lib/istio";
import { globMatch, objectName, type Obj } from "../lib/k8s";
import { resourcePolicy, type BaseConfig } from "../lib/policy";
import { DEFAULT_APPLICATION_NAMESPACES } from "./sidecar-injection";

interface Config extends BaseConfig {
  meshDomain: string;
  meshNamespaces: string[];
  meshHostPatterns: string[];
}

/**
 * Whether a DestinationRule host names a service inside the mesh:
 *
 * - `*` or a bare name (`redis`, resolved in the rule's own namespace);
 * - `<name>.<ns>` (`redis.titanium`, `*.titanium`) where `<ns>` is a mesh namespace
 *   (`meshNamespaces`: by default the application namespaces, the ones `istio-sidecar-injection`
 *   requires to inject sidecars);
 * - anything under `.svc` (`postgres.titanium.svc`, any namespace) or the mesh domain
 *   (`...svc.cluster.local`), and a wildcard over the mesh domain or a suffix of it (`*.local`);
 * - a configured pattern (`meshHostPatterns`).
 *
 * Other FQDNs (`storage.googleapis.com`) are external services, where SIMPLE TLS is the right mode.
 * `<name>.<ns>` is in the mesh only for mesh namespaces, so a two-label external name
 * (`example.com`) stays external.
 */
export function isMeshHost(host: string, config: Pick<Config, "meshDomain" | "meshNamespaces" | "meshHostPatterns">): boolean {
  const h = host.toLowerCase().replace(/\.$/, "");
  if (h === "*" || !h.includes(".")) return true;
  if (h.endsWith(".svc") || h.includes(".svc.") || h.endsWith(`.${config.meshDomain}`)) return true;
  // A wildcard whose suffix the mesh domain ends with covers every in-mesh host: `*.local`,
  // `*.cluster.local` (Istio's documented mesh-wide DestinationRule hosts).
  if (h.startsWith("*.") && `.${config.meshDomain}`.endsWith(h.slice(1))) return true;
  const labels = h.split(".");
  if (labels.length === 2 && config.meshNamespaces.some((g) => globMatch(g, labels[1]!))) return true;
  return config.meshHostPatterns.some((p) => globMatch(p, h));
}

/** Client-side TLS towards in-mesh hosts stays ISTIO_MUTUAL (or unset): never DISABLE, SIMPLE or MUTUAL. */
export const mtlsDestinationRule = resourcePolicy<Config>(
  {
    name: "istio-destination-rule-mtls",
    description: "DestinationRules towards in-mesh hosts never set TLS mode DISABLE, SIMPLE or MUTUAL (which would bypass the mesh's mutual TLS: plaintext, no client identity, or certificates of the rule's own).",
    severity: "critical",
    enforcementLevel: "mandatory",
    remediationSteps:
      "Use `tls.mode: ISTIO_MUTUAL` (or leave `tls` out: Istio's auto mTLS applies) in `trafficPolicy`, its `portLevelSettings` and every subset. SIMPLE and MUTUAL are for hosts outside the mesh (ServiceEntry FQDNs) only.",
    configSchema: {
      properties: {
        meshDomain: { type: "string", default: "cluster.local", description: "The cluster's DNS domain." },
        meshNamespaces: {
          type: "array",
          items: { type: "string" },
          default: DEFAULT_APPLICATION_NAMESPACES,
          description:
            "Globs naming the namespaces in the mesh: `<name>.<ns>` hosts in them are in-mesh short names. Defaults to the application namespaces (the ones istio-sidecar-injection requires to inject); a stack that meshes another namespace adds it here.",
        },
        meshHostPatterns: {
          type: "array",
          items: { type: "string" },
          default: [],
          description: "Extra host globs that are in the mesh (e.g. `*.internal.example`).",
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
