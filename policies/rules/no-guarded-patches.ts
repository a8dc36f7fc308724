import { POD_TEMPLATE_PATHS } from "../lib/k8s";
import { resourcePolicy, type BaseConfig } from "../lib/policy";

type Config = BaseConfig;

/**
 * Kinds the pack judges as whole objects: pod-bearing kinds (resources, privileges, host access,
 * images), Services (LoadBalancer), Namespaces (sidecar injection), NetworkPolicies, and the Istio
 * objects the mTLS policies read. Matched by API group and kind, any version.
 */
const GUARDED_KINDS = [
  ...Object.keys(POD_TEMPLATE_PATHS).map((t) => t.replace(/^kubernetes:/, "").replace(/\/v\w+:/, ":")),
  "core:Service",
  "core:Namespace",
  "networking.k8s.io:NetworkPolicy",
  "security.istio.io:PeerAuthentication",
  "security.istio.io:AuthorizationPolicy",
  "networking.istio.io:DestinationRule",
  "networking.istio.io:Sidecar",
];

/** `apps:Deployment` for `kubernetes:apps/v1:DeploymentPatch`; undefined for anything but a Kubernetes patch. */
export function patchedKind(type: string): string | undefined {
  const m = /^kubernetes:([\w.-]+)\/[\w.-]+:(\w+)Patch$/.exec(type);
  return m ? `${m[1]}:${m[2]}` : undefined;
}

/**
 * No server-side-apply patch of a kind the pack judges: the policies see whole objects, and a
 * `DeploymentPatch` (or `ServicePatch`, `NamespacePatch`, `PeerAuthenticationPatch`...) changes an object,
 * maybe one outside the stack, without the rest of it ever being judged.
 */
export const noGuardedPatches = resourcePolicy<Config>(
  {
    name: "k8s-no-guarded-patches",
    description:
      "No server-side-apply Patch resource (DeploymentPatch, ServicePatch, NamespacePatch, PeerAuthenticationPatch, ...) of a kind the other policies judge: a patch changes an object whose whole the policies never see. Patches of other kinds (Argo CD's AppProject) are allowed.",
    severity: "high",
    enforcementLevel: "mandatory",
    remediationSteps:
      "Create and own the whole object in the program (where every policy judges it), or change it through its chart's values. A patch of another kind stays allowed.",
    configSchema: { properties: {} },
  },
  (args, _judge, report) => {
    const kind = patchedKind(args.type);
    if (kind && GUARDED_KINDS.includes(kind)) report(`${args.type} ${args.name} patches a ${kind.split(":")[1]} the policies cannot judge as a whole`);
  },
);
