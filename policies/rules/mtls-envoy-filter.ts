import { isEnvoyFilter } from "../lib/istio";
import { objectName, type Obj } from "../lib/k8s";
import { resourcePolicy } from "../lib/policy";

/**
 * What an EnvoyFilter patch may apply to: HTTP-level objects only. Everything else carries the mesh's mutual
 * TLS or holds what does: clusters (the client side's transport sockets, ISTIO_MUTUAL origination),
 * listeners, their filter chains, listener and network filters (the STRICT inbound chains, TLS detection),
 * transport sockets themselves, and the bootstrap, which can rewrite any of it. An allow-list: a kind
 * Istio adds later is refused until judged.
 */
export const PATCHABLE: readonly string[] = ["HTTP_FILTER", "HTTP_ROUTE", "ROUTE_CONFIGURATION", "VIRTUAL_HOST", "EXTENSION_CONFIG"];

/**
 * Contexts a patch may match: the gateways' listeners and the sidecars' outbound ones. A patch of the
 * inbound sidecar listeners (`SIDECAR_INBOUND`, or `ANY`, which is also the default when `match.context`
 * or `match` is left out) reaches what enforces STRICT mTLS and the AuthorizationPolicies.
 */
const ALLOWED_CONTEXTS: readonly string[] = ["GATEWAY", "SIDECAR_OUTBOUND"];

/** Envoy's TLS configuration, in any spelling a patch value may use (`transport_socket`, `transportSocket`, `common_tls_context`). */
const TLS_CONFIG = /transport_?socket|tls_?context/i;

/** Why one `configPatches` entry could bypass the mesh's mTLS, each as the end of a sentence; none when it cannot. */
export function envoyPatchProblems(patch: Obj): string[] {
  const out: string[] = [];
  const applyTo = patch.applyTo;
  if (typeof applyTo !== "string" || !PATCHABLE.includes(applyTo)) {
    out.push(`applies to ${String(applyTo ?? "(unset)")}, which carries the mesh's mTLS or may (only ${PATCHABLE.join(", ")} may be patched)`);
  }
  const context = ((patch.match ?? {}) as Obj).context ?? "ANY";
  if (typeof context !== "string" || !ALLOWED_CONTEXTS.includes(context)) {
    out.push(`matches context ${String(context)}, which includes the inbound sidecar listeners that enforce STRICT mTLS (match GATEWAY or SIDECAR_OUTBOUND)`);
  }
  const value = ((patch.patch ?? {}) as Obj).value;
  if (value !== undefined && TLS_CONFIG.test(JSON.stringify(value))) out.push("sets Envoy's TLS configuration (a transport_socket or tls_context in its patch value)");
  return out;
}

/**
 * No EnvoyFilter patches what carries the mesh's mutual TLS: an EnvoyFilter is applied to Envoy's config
 * after Istio generates it, so one patch of a listener's transport socket, a filter chain or a cluster
 * re-opens plaintext past every STRICT PeerAuthentication and DestinationRule the other policies judge.
 */
export const mtlsEnvoyFilter = resourcePolicy(
  {
    name: "istio-envoy-filter-mtls",
    description:
      "EnvoyFilters never patch what carries the mesh's mTLS: every patch applies to an HTTP-level object (HTTP_FILTER, HTTP_ROUTE, ROUTE_CONFIGURATION, VIRTUAL_HOST, EXTENSION_CONFIG; never a CLUSTER, LISTENER, FILTER_CHAIN, NETWORK_FILTER, TRANSPORT_SOCKET...), matches the gateways or the sidecars' outbound side (never SIDECAR_INBOUND, nor ANY, the default), and holds no transport_socket or tls_context in its value.",
    severity: "critical",
    enforcementLevel: "mandatory",
    remediationSteps:
      "Express the change in Istio's own APIs (PeerAuthentication, DestinationRule, Sidecar, Telemetry, AuthorizationPolicy). An EnvoyFilter is for HTTP-level behaviour only: `applyTo` HTTP_FILTER, HTTP_ROUTE, ROUTE_CONFIGURATION, VIRTUAL_HOST or EXTENSION_CONFIG, with `match.context` GATEWAY or SIDECAR_OUTBOUND, like the gateway's secure-cookies Lua filter (components/platform/istio.ts).",
    configSchema: { properties: {} },
  },
  (args, judge, report) => {
    if (!isEnvoyFilter(args.type)) return;
    const props = args.props as Obj;
    judge.check(() => {
      const patches = ((props.spec ?? {}) as Obj).configPatches;
      if (!Array.isArray(patches)) return;
      // By index: one patch unknown in preview must not hide the others.
      for (let i = 0; i < patches.length; i++) {
        judge.check(() => {
          for (const problem of envoyPatchProblems((patches[i] ?? {}) as Obj)) report(`${objectName(props, args.name)} configPatches[${i}] ${problem}`);
        });
      }
    });
  },
);
