import type { PolicyResource } from "@pulumi/policy";
import { isPeerAuthentication } from "../lib/istio";
import { chartName, getPath, HELM_RELEASE_TYPES, namespaceOf, objectName, type Obj } from "../lib/k8s";
import { stackPolicy, type BaseConfig } from "../lib/policy";
import { isUnknownValueError } from "../lib/sdk";

interface Config extends BaseConfig {
  rootNamespace: string;
}

/** A stack that deploys to Kubernetes at all must carry the mesh's security objects. */
export const deploysToKubernetes = (resources: PolicyResource[]): boolean => resources.some((r) => r.type.startsWith("kubernetes:"));

/**
 * Whether a PeerAuthentication is mesh-wide: in the root namespace with no selector (an empty one
 * selects every workload too). Reads only the namespace and the selector, each on its own: either one,
 * known, can rule the object out while the other is unknown in preview (its mode never matters here).
 */
function isMeshWide(r: PolicyResource, rootNamespace: string): boolean {
  const props = r.props as Obj;
  const facts = [
    // Without metadata.namespace, the object lands in its provider's default namespace.
    () => namespaceOf(props, r.provider) === rootNamespace,
    () => {
      const selector = ((props.spec ?? {}) as Obj).selector as Obj | undefined;
      return !(selector && Object.keys((selector.matchLabels ?? {}) as Obj).length > 0);
    },
  ];
  let unknown: unknown;
  for (const fact of facts) {
    try {
      if (!fact()) return false;
    } catch (err) {
      if (!isUnknownValueError(err)) throw err;
      unknown ??= err;
    }
  }
  if (unknown) throw unknown;
  return true;
}

/**
 * The root namespace istiod's values give the mesh, and the values path that decides it: the istiod
 * chart writes `rootNamespace: {{ .Values.meshConfig.rootNamespace | default .Values.global.istioNamespace }}`
 * into the mesh config (`global.istioNamespace` defaults to `istio-system`).
 */
export function istiodRootNamespace(values: unknown): { namespace: string; from: string } {
  for (const path of ["meshConfig.rootNamespace", "global.istioNamespace"]) {
    const v = getPath(values, path);
    if (typeof v === "string" && v !== "") return { namespace: v, from: path };
  }
  return { namespace: "istio-system", from: "the chart's default" };
}

/**
 * Mesh-wide STRICT mTLS: exactly one selector-less PeerAuthentication in Istio's root namespace, with
 * mode STRICT, and istiod keeps that namespace its root namespace. With two, Istio applies the older one, so the mesh's mode would depend on creation order
 * (a second one with mode UNSET or PERMISSIVE could be the one in force).
 */
export const mtlsMeshWideStrict = stackPolicy<Config>(
  {
    name: "istio-mesh-wide-strict-mtls",
    description:
      "The stack creates exactly one mesh-wide PeerAuthentication (no selector) in Istio's root namespace, with mtls.mode STRICT (with two, Istio applies the older one), and istiod's values keep that namespace the mesh's root namespace.",
    severity: "critical",
    enforcementLevel: "mandatory",
    remediationSteps:
      "Create `PeerAuthentication` `default` in `istio-system` with no `selector` and `spec.mtls.mode: STRICT` (the platform layer owns it), after istiod is ready, and no other selector-less PeerAuthentication there. Leave istiod's `meshConfig.rootNamespace` and `global.istioNamespace` at the policy's `rootNamespace`.",
    configSchema: {
      properties: {
        rootNamespace: { type: "string", default: "istio-system", description: "Istio's root namespace (meshConfig.rootNamespace)." },
      },
    },
  },
  (args, judge, report, config) => {
    if (!deploysToKubernetes(args.resources)) args.notApplicable("the stack creates no Kubernetes objects");
    // A root namespace moved by istiod's values makes the PeerAuthentication below cover one namespace only.
    for (const r of args.resources.filter((x) => HELM_RELEASE_TYPES.includes(x.type))) {
      judge.check(() => {
        const props = r.props as Obj;
        if (chartName(props) !== "istiod") return;
        const root = istiodRootNamespace(props.values);
        if (root.namespace === config.rootNamespace) return;
        report(
          `istiod's values make "${root.namespace}" the mesh's root namespace (${root.from}), not "${config.rootNamespace}": a selector-less PeerAuthentication in "${config.rootNamespace}" covers only that namespace`,
          r.urn,
        );
      }, r.urn);
    }
    const candidates = args.resources.filter((r) => isPeerAuthentication(r.type));
    const meshWide: PolicyResource[] = [];
    let undecided = false;
    for (const r of candidates) {
      let decided = false;
      judge.check(() => {
        if (isMeshWide(r, config.rootNamespace)) meshWide.push(r);
        decided = true;
      }, r.urn);
      // A candidate whose namespace or selector is unknown is reported by the judge: it may be one more mesh-wide policy.
      if (!decided) undecided = true;
    }
    const names = () => meshWide.map((r) => objectName(r.props as Obj, r.name)).join(", ");
    if (meshWide.length > 1) {
      report(
        `${meshWide.length} mesh-wide PeerAuthentications (no selector) in namespace "${config.rootNamespace}" (${names()}): Istio applies only the oldest, so the mesh's mode depends on creation order; keep exactly one, with mode STRICT`,
      );
      return;
    }
    if (undecided) return;
    if (meshWide.length === 0) {
      report(
        `no mesh-wide STRICT PeerAuthentication in namespace "${config.rootNamespace}" (found ${candidates.length} PeerAuthentication object(s), none selector-less with mode STRICT there)`,
      );
      return;
    }
    const only = meshWide[0]!;
    judge.check(() => {
      const mode = (((only.props as Obj).spec ?? {}) as Obj).mtls as Obj | undefined;
      if (mode?.mode !== "STRICT") {
        report(
          `no mesh-wide STRICT PeerAuthentication in namespace "${config.rootNamespace}": its selector-less one, ${names()}, has mode ${JSON.stringify(mode?.mode ?? "UNSET")}`,
          only.urn,
        );
      }
    }, only.urn);
  },
);
