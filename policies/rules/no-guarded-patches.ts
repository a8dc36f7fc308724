import { globMatch, metadataOf, POD_TEMPLATE_PATHS, type Obj } from "../lib/k8s";
import { resourcePolicy, type BaseConfig } from "../lib/policy";

interface Config extends BaseConfig {
  guardedConfigMaps: string[];
}

/**
 * Kinds the pack judges as whole objects: pod-bearing kinds (resources, privileges, host access,
 * images), Services (LoadBalancer), Namespaces (sidecar injection), NetworkPolicies, PersistentVolumes
 * (hostPath and local volumes), and the Istio objects the mTLS policies read; and the
 * MutatingWebhookConfigurations, whose selectors decide which pods istiod's webhook injects at all.
 * Matched by API group and kind, any version.
 */
const GUARDED_KINDS = [
  ...Object.keys(POD_TEMPLATE_PATHS).map((t) => t.replace(/^kubernetes:/, "").replace(/\/v\w+:/, ":")),
  "core:Service",
  "core:Namespace",
  "core:PersistentVolume",
  "networking.k8s.io:NetworkPolicy",
  "security.istio.io:PeerAuthentication",
  "security.istio.io:AuthorizationPolicy",
  "networking.istio.io:DestinationRule",
  "networking.istio.io:Sidecar",
  "admissionregistration.k8s.io:MutatingWebhookConfiguration",
];

/**
 * istiod's own configuration, which the istiod chart writes and no policy sees: the mesh config
 * (`istio`: `defaultConfig.interceptionMode`, the root namespace...), the sidecar injector's template
 * and values (`istio-sidecar-injector`: what every injected pod gets, its never-inject selectors),
 * their per-revision copies and the mesh's root certificate (`istio-ca-root-cert`).
 */
export const DEFAULT_GUARDED_CONFIG_MAPS = ["istio-system/istio", "istio-system/istio-*"];

/** `apps:Deployment` for `kubernetes:apps/v1:DeploymentPatch`; undefined for anything but a Kubernetes patch. */
export function patchedKind(type: string): string | undefined {
  const m = /^kubernetes:([\w.-]+)\/[\w.-]+:(\w+)Patch$/.exec(type);
  return m ? `${m[1]}:${m[2]}` : undefined;
}

/**
 * No server-side-apply patch of a kind the pack judges: the policies see whole objects, and a
 * `DeploymentPatch` (or `ServicePatch`, `NamespacePatch`, `PeerAuthenticationPatch`...) changes an object,
 * maybe one outside the stack, without the rest of it ever being judged. Nor a patch of istiod's
 * configuration ConfigMaps or of a MutatingWebhookConfiguration, which change sidecar injection for
 * every pod without touching a pod template.
 */
export const noGuardedPatches = resourcePolicy<Config>(
  {
    name: "k8s-no-guarded-patches",
    description:
      "No server-side-apply Patch resource (DeploymentPatch, ServicePatch, NamespacePatch, PersistentVolumePatch, PeerAuthenticationPatch, ...) of a kind the other policies judge: a patch changes an object whose whole the policies never see; nor a patch of a MutatingWebhookConfiguration or of istiod's ConfigMaps in istio-system (the mesh config, the sidecar injector), which change injection for every pod. Patches of other kinds and other ConfigMaps (Argo CD's AppProject) are allowed.",
    severity: "high",
    enforcementLevel: "mandatory",
    remediationSteps:
      "Create and own the whole object in the program (where every policy judges it), or change it through its chart's values (istiod's mesh config and injector through the istiod release's values). A patch of another kind stays allowed.",
    configSchema: {
      properties: {
        guardedConfigMaps: {
          type: "array",
          items: { type: "string" },
          default: DEFAULT_GUARDED_CONFIG_MAPS,
          description: "ConfigMaps no patch may change, as `namespace/name` globs (istiod's mesh config and sidecar injector).",
        },
      },
    },
  },
  (args, judge, report, config) => {
    const kind = patchedKind(args.type);
    if (kind && GUARDED_KINDS.includes(kind)) {
      report(`${args.type} ${args.name} patches a ${kind.split(":")[1]} the policies cannot judge as a whole`);
      return;
    }
    if (kind !== "core:ConfigMap") return;
    judge.check(() => {
      const md = metadataOf(args.props as Obj);
      const target = `${typeof md.namespace === "string" ? md.namespace : "default"}/${String(md.name)}`;
      if (config.guardedConfigMaps.some((g) => globMatch(g, target))) {
        report(`${args.type} ${args.name} patches ConfigMap ${target}, istiod's configuration (mesh config, sidecar injection), which no policy judges`);
      }
    });
  },
);
