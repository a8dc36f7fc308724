import type { PolicyResource } from "@pulumi/policy";
import { chartName, getPath, groupKindOf, HELM_RELEASE_TYPES, isClusterScoped, isKubernetesComponent, metadataOf, namespacePlacement, type NamespacePlacement, objectName, type Obj } from "../lib/k8s";
import { stackPolicy, type BaseConfig } from "../lib/policy";
import { readOr } from "../lib/sdk";
import { SUBCHARTS, valuesPath } from "../lib/values";
import { deploysToKubernetes } from "./mtls-mesh-wide-strict";

interface AllowedNamespace {
  namespace: string;
  reason: string;
}

interface Config extends BaseConfig {
  allowedNamespaces: AllowedNamespace[];
}

const NAMESPACE = "kubernetes:core/v1:Namespace";

/**
 * Namespaces the stack may use without creating them. None: the program creates every namespace it
 * deploys to (components/platform/namespaces.ts) and puts nothing in `kube-system`, `kube-public` or
 * `default` (its NetworkPolicies only name kube-system's DNS pods as a peer). A default entry would admit
 * objects, unasked, into a namespace with no Pod Security level and no default-deny policies
 * (`kube-system` runs K3s' own privileged components); a stack that must (a patch of K3s' CoreDNS
 * ConfigMap) lists the namespace in its config file with the reason.
 */
export const DEFAULT_ALLOWED_NAMESPACES: AllowedNamespace[] = [];

/** A release's chart for messages; an unknown one must not stop the namespace check. */
function chartOf(props: Obj): string {
  return readOr(() => chartName(props) ?? "(none)", "(unknown)");
}

/**
 * Every Helm release and every namespaced Kubernetes object targets a Namespace the stack creates (or an
 * allow-listed one): anywhere else it escapes the baseline the platform gives each namespace it creates
 * (the Pod Security level `k8s-namespace-pod-security` holds it to, sidecar injection, the default-deny
 * NetworkPolicies and AuthorizationPolicies). Cluster-scoped kinds (`CLUSTER_SCOPED_KINDS` in
 * `lib/k8s.ts`) are not judged unless they name a namespace; an unlisted kind counts as namespaced.
 */
export const namespaceDeclared = stackPolicy<Config>(
  {
    name: "k8s-namespace-declared",
    description:
      "Every Helm release (its namespace, and a namespaceOverride in its values) and every namespaced Kubernetes object (its metadata.namespace, else its provider's namespace, else default) targets a Namespace the stack creates, or an allow-listed one: elsewhere (default, kube-public, a typo) it has no Pod Security level, no sidecar injection and no default-deny policies.",
    severity: "high",
    enforcementLevel: "mandatory",
    remediationSteps:
      "Put the object or release in a Namespace the program creates (components/platform/namespaces.ts gives each its Pod Security level and default-deny policies), fixing a typo or a missing `metadata.namespace`; create a new namespace there the same way; a namespace the stack must use without owning it (kube-system, for a patch of K3s' own objects) goes on `allowedNamespaces` with a reason.",
    configSchema: {
      properties: {
        allowedNamespaces: {
          type: "array",
          items: {
            type: "object",
            properties: { namespace: { type: "string", minLength: 1 }, reason: { type: "string", minLength: 1 } },
            required: ["namespace", "reason"],
            additionalProperties: false,
          },
          default: DEFAULT_ALLOWED_NAMESPACES,
          description: "Namespaces the stack may deploy to without creating them, each with the reason.",
        },
      },
    },
  },
  (args, judge, report, config) => {
    if (!deploysToKubernetes(args.resources)) args.notApplicable("the stack creates no Kubernetes objects");
    const declared = new Set<string>();
    let undecided = false;
    for (const r of args.resources.filter((x) => x.type === NAMESPACE)) {
      let decided = false;
      judge.check(() => {
        const name = metadataOf(r.props as Obj).name;
        if (typeof name === "string" && name !== "") declared.add(name);
        decided = true;
      }, r.urn);
      // A Namespace whose name is unknown is reported by the judge: any undeclared namespace below may be it.
      if (!decided) undecided = true;
    }
    const allowed = new Set(config.allowedNamespaces.map((a) => a.namespace));
    const created = () => (declared.size > 0 ? [...declared].sort().join(", ") : "none");
    const judgePlacement = (r: PolicyResource, subject: string, p: NamespacePlacement) => {
      if (declared.has(p.namespace) || allowed.has(p.namespace) || undecided) return;
      report(
        `${subject} namespace "${p.namespace}" (${p.from}), which the stack does not create (it creates: ${created()}): no Pod Security level, sidecar injection or default-deny NetworkPolicy/AuthorizationPolicy applies there; use a Namespace the program creates (components/platform/namespaces.ts), create this one there, or add it to allowedNamespaces with a reason`,
        r.urn,
      );
    };
    /** An object (a registered one, or an item of a List): by its own namespace, else by kind and provider. */
    const judgeObject = (r: PolicyResource, type: string, props: Obj, fallback: string) => {
      const kind = type.split(":").pop()!;
      const explicit = metadataOf(props).namespace;
      // An explicit namespace places the object whatever its kind; without one a cluster-scoped kind is in none.
      if (!(typeof explicit === "string" && explicit !== "") && isClusterScoped(type)) return;
      judgePlacement(r, `${kind} ${objectName(props, fallback)} is created in`, namespacePlacement(explicit, "metadata.namespace", r.provider));
    };

    for (const r of args.resources) {
      const props = r.props as Obj;
      if (HELM_RELEASE_TYPES.includes(r.type)) {
        const chart = chartOf(props);
        judge.check(() => judgePlacement(r, `Helm release of chart "${chart}" installs into`, namespacePlacement(props.namespace, "namespace", r.provider)), r.urn);
        // The chart's own namespaceOverride, and each bundled subchart's, move their objects out of the release's namespace.
        const subcharts = Object.hasOwn(SUBCHARTS, chart) ? SUBCHARTS[chart]! : {};
        for (const prefix of [undefined, ...Object.keys(subcharts)]) {
          judge.check(() => {
            const path = valuesPath(prefix, "namespaceOverride");
            const override = getPath(props.values, path);
            if (typeof override !== "string" || override === "") return;
            const whose = prefix === undefined ? "its" : `its ${subcharts[prefix]} subchart's`;
            judgePlacement(r, `Helm release of chart "${chart}" puts ${whose} objects (values ${path}) in`, { namespace: override, from: `values ${path}` });
          }, r.urn);
        }
        continue;
      }
      // The Namespaces are the declarations; components (v4 Charts, YAML groups) have their objects judged one by one.
      if (!r.type.startsWith("kubernetes:") || r.type === NAMESPACE || isKubernetesComponent(r.type)) continue;
      judge.check(() => {
        const gk = groupKindOf(r.type);
        // A List (`ConfigMapList`) is no object of its own: its items are.
        if (gk && !gk.patch && gk.kind.endsWith("List") && Array.isArray(props.items)) {
          const itemType = r.type.slice(0, -"List".length);
          const items = props.items as unknown[];
          for (let i = 0; i < items.length; i++) judge.check(() => judgeObject(r, itemType, (items[i] ?? {}) as Obj, `${r.name}[${i}]`), r.urn);
          return;
        }
        judgeObject(r, r.type, props, r.name);
      }, r.urn);
    }
  },
);
