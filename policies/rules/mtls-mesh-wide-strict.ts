import type { PolicyResource } from "@pulumi/policy";
import { isPeerAuthentication } from "../lib/istio";
import type { Obj } from "../lib/k8s";
import { stackPolicy, type BaseConfig } from "../lib/policy";

interface Config extends BaseConfig {
  rootNamespace: string;
}

/** A stack that deploys to Kubernetes at all must carry the mesh's security objects. */
export const deploysToKubernetes = (resources: PolicyResource[]): boolean => resources.some((r) => r.type.startsWith("kubernetes:"));

/** Selector-less, in the root namespace, mode STRICT. */
function isMeshWideStrict(props: Obj, rootNamespace: string): boolean {
  const md = (props.metadata ?? {}) as Obj;
  if (md.namespace !== rootNamespace) return false;
  const spec = (props.spec ?? {}) as Obj;
  const selector = spec.selector as Obj | undefined;
  if (selector && Object.keys((selector.matchLabels ?? {}) as Obj).length > 0) return false;
  return (spec.mtls as Obj | undefined)?.mode === "STRICT";
}

/** Mesh-wide STRICT mTLS: a selector-less PeerAuthentication in Istio's root namespace. */
export const mtlsMeshWideStrict = stackPolicy<Config>(
  {
    name: "istio-mesh-wide-strict-mtls",
    description: "The stack creates a mesh-wide PeerAuthentication (no selector) in Istio's root namespace with mtls.mode STRICT.",
    severity: "critical",
    enforcementLevel: "mandatory",
    remediationSteps:
      "Create `PeerAuthentication` `default` in `istio-system` with no `selector` and `spec.mtls.mode: STRICT` (the platform layer owns it), after istiod is ready.",
    configSchema: {
      properties: {
        rootNamespace: { type: "string", default: "istio-system", description: "Istio's root namespace (meshConfig.rootNamespace)." },
      },
    },
  },
  (args, judge, report, config) => {
    if (!deploysToKubernetes(args.resources)) args.notApplicable("the stack creates no Kubernetes objects");
    const candidates = args.resources.filter((r) => isPeerAuthentication(r.type));
    let found = false;
    let undecided = false;
    for (const r of candidates) {
      let decided = false;
      judge.check(() => {
        if (isMeshWideStrict(r.props as Obj, config.rootNamespace)) found = true;
        decided = true;
      }, r.urn);
      // A candidate whose fields are unknown is reported by the judge, not counted as missing.
      if (!decided) undecided = true;
    }
    // One decisive mesh-wide STRICT policy is enough: another one's unknown fields cannot change that.
    if (found) judge.settle();
    if (!found && !undecided) {
      report(
        `no mesh-wide STRICT PeerAuthentication in namespace "${config.rootNamespace}" (found ${candidates.length} PeerAuthentication object(s), none selector-less with mode STRICT there)`,
      );
    }
  },
);
