/** Istio custom resources as `@pulumi/kubernetes` registers them (`kubernetes:<group>/<version>:<Kind>`). */

const istioType = (group: string, kind: string) => new RegExp(`^kubernetes:${group.replace(/\./g, "\\.")}/v1(beta1|alpha3)?:${kind}$`);

export const isPeerAuthentication = (type: string): boolean => istioType("security.istio.io", "PeerAuthentication").test(type);
export const isDestinationRule = (type: string): boolean => istioType("networking.istio.io", "DestinationRule").test(type);
export const isEnvoyFilter = (type: string): boolean => istioType("networking.istio.io", "EnvoyFilter").test(type);

/**
 * mTLS modes that let plaintext in (PeerAuthentication), or that send traffic out without the mesh's
 * mutual TLS (DestinationRule): plaintext (DISABLE), TLS without a client identity (SIMPLE), or TLS with
 * client certificates of the rule's own instead of the workload's mesh identity (MUTUAL).
 */
export const WEAK_PEER_MODES: readonly string[] = ["PERMISSIVE", "DISABLE"];
export const WEAK_CLIENT_TLS_MODES: readonly string[] = ["DISABLE", "SIMPLE", "MUTUAL"];
