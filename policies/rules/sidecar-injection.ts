import type { PolicyResource } from "@pulumi/policy";
import { chartName, getPath, globMatch, HELM_RELEASE_TYPES, isPodBearing, labelsOf, metadataOf, namespaceOf, objectName, podTemplate, type Obj } from "../lib/k8s";
import { stackPolicy, type BaseConfig } from "../lib/policy";
import { releaseNamespace, reportOpaqueRelease, valuesOwner, walkValues } from "../lib/values";
import { deploysToKubernetes } from "./mtls-mesh-wide-strict";

interface Config extends BaseConfig {
  applicationNamespaces: string[];
  injectionRevisions: string[];
}

/** Where Titanium's services run; one fact shared by the policies that look at application workloads. */
export const DEFAULT_APPLICATION_NAMESPACES = ["titanium", "titanium-*"];

export const applicationNamespacesSchema = {
  type: "array" as const,
  items: { type: "string" as const },
  default: DEFAULT_APPLICATION_NAMESPACES,
  description: "Globs naming the application namespaces.",
};

const NAMESPACE = "kubernetes:core/v1:Namespace";

/**
 * Injection on: `istio-injection=enabled` (revisionless istiod), or an `istio.io/rev` label naming a
 * revision (or tag) that is installed: a revision webhook fires only for its own names, so a typo or
 * a removed revision leaves the pods without sidecars. Never with `istio-injection=disabled`.
 */
function injectionEnabled(labels: Record<string, string>, revisions: string[]): boolean {
  if (labels["istio-injection"] === "disabled") return false;
  return labels["istio-injection"] === "enabled" || revisions.includes(labels["istio.io/rev"] ?? "");
}

/**
 * What a pod says about its own injection, read as istiod's injector reads it (`injectRequired`): the
 * `sidecar.istio.io/inject` label wins over the annotation of the same name; "y", "yes", "true" and "on"
 * (any case) ask for a sidecar, an empty or absent value leaves the namespace's policy in charge, and
 * any other value ("false", "no", "off", "0", a typo) skips injection.
 */
export function podOptsOut(labels: Record<string, unknown>, annotations: Record<string, unknown>): string | undefined {
  const key = "sidecar.istio.io/inject";
  const value = key in labels ? labels[key] : annotations[key];
  if (typeof value !== "string" || value === "") return undefined;
  return ["y", "yes", "true", "on"].includes(value.toLowerCase()) ? undefined : value;
}

/** Interception modes in which the sidecar captures the pod's traffic (iptables REDIRECT or TPROXY). */
const CAPTURING_MODES = ["REDIRECT", "TPROXY"];
/** A mode that leaves traffic uncaptured: NONE (the proxy sits beside the app, nothing is redirected to it), or one Istio does not know. */
const capturesNothing = (mode: unknown): boolean => mode !== undefined && !CAPTURING_MODES.includes(String(mode));

/**
 * The `interceptionMode` a `proxy.istio.io/config` annotation sets (a ProxyConfig in YAML or JSON), if
 * any. Read as text (the pack loads no YAML parser): the key at any nesting, its value bare or quoted.
 */
export function proxyConfigInterceptionMode(config: string): string | undefined {
  const m = /(?:^|[\s{,])["']?interceptionMode["']?\s*:\s*["']?([\w-]*)/m.exec(config);
  return m ? m[1] : undefined;
}

/** The injection template that adds the proxy and captures the pod's traffic (istiod's default one). */
const SIDECAR_TEMPLATE = "sidecar";
/** Whether a list of injection templates (an `inject.istio.io/templates` value, istiod's `defaultTemplates`) leaves the sidecar out. */
const withoutSidecar = (templates: string[]): boolean => {
  const names = templates.map((t) => t.trim()).filter((t) => t !== "");
  return names.length > 0 && !names.includes(SIDECAR_TEMPLATE);
};

/** A label or annotation value as text (Helm values may hold a number); undefined when absent. */
const text = (v: unknown): string | undefined => (v === undefined || v === null ? undefined : String(v));

/**
 * The labels and annotations `sidecar.istio.io/inject`, `traffic.sidecar.istio.io/*`, `sidecar.istio.io/interceptionMode`,
 * `proxy.istio.io/config` and `inject.istio.io/templates` that are read here: a pod's, or a map of them in a release's values.
 */
const CAPTURE_KEYS = [
  "sidecar.istio.io/inject",
  "traffic.sidecar.istio.io/excludeInboundPorts",
  "traffic.sidecar.istio.io/includeInboundPorts",
  "traffic.sidecar.istio.io/excludeInterfaces",
  "sidecar.istio.io/interceptionMode",
  "proxy.istio.io/config",
  "inject.istio.io/templates",
];

/**
 * How a pod's own labels and annotations keep its inbound traffic from its sidecar, each as the end of a
 * sentence about the pod: it opts out of injection, excludes inbound ports or a network interface from
 * capture, narrows the inbound capture, turns capture off (interceptionMode), or is injected with
 * templates that leave the sidecar out (`grpc-agent`, `gateway`). Outbound exclusions (such as the
 * backup's, to the metadata server) leave inbound protection intact.
 */
export function captureBypasses(labels: Record<string, unknown>, annotations: Record<string, unknown>): string[] {
  const out: string[] = [];
  const optOut = podOptsOut(labels, annotations);
  if (optOut !== undefined) out.push(`opts out of sidecar injection (sidecar.istio.io/inject: "${optOut}")`);
  const excluded = text(annotations["traffic.sidecar.istio.io/excludeInboundPorts"]);
  if (excluded !== undefined && excluded.trim() !== "") out.push(`lets inbound ports ${excluded} bypass its sidecar (traffic.sidecar.istio.io/excludeInboundPorts)`);
  const included = text(annotations["traffic.sidecar.istio.io/includeInboundPorts"]);
  if (included !== undefined && included.trim() !== "*") out.push(`narrows the sidecar's inbound capture to "${included}" (traffic.sidecar.istio.io/includeInboundPorts)`);
  // Traffic arriving on an excluded interface skips the capture rules altogether (istio-iptables' PREROUTING RETURN).
  const interfaces = text(annotations["traffic.sidecar.istio.io/excludeInterfaces"]);
  if (interfaces !== undefined && interfaces.trim() !== "") out.push(`lets traffic on interface(s) "${interfaces}" bypass its sidecar (traffic.sidecar.istio.io/excludeInterfaces)`);
  // Interception NONE: the sidecar is injected but nothing is redirected through it, inbound or outbound.
  const mode = annotations["sidecar.istio.io/interceptionMode"];
  if (capturesNothing(mode)) out.push(`turns off its sidecar's traffic capture (sidecar.istio.io/interceptionMode: "${String(mode)}"; only ${CAPTURING_MODES.join(" or ")} capture)`);
  const proxyConfig = annotations["proxy.istio.io/config"];
  const configMode = typeof proxyConfig === "string" ? proxyConfigInterceptionMode(proxyConfig) : undefined;
  if (mode === undefined && capturesNothing(configMode)) {
    out.push(`turns off its sidecar's traffic capture (interceptionMode "${configMode}" in proxy.istio.io/config; only ${CAPTURING_MODES.join(" or ")} capture)`);
  }
  // istiod injects exactly the templates the annotation names: without `sidecar`, no proxy captures the pod's traffic.
  const templates = text(annotations["inject.istio.io/templates"]);
  if (templates !== undefined && withoutSidecar(templates.split(","))) {
    out.push(`is injected with template(s) "${templates}" instead of the sidecar (inject.istio.io/templates; the sidecar template is the one that captures traffic)`);
  }
  return out;
}

/** istiod values that stop injection in namespaces labelled for it (the chart's defaults inject), or that let traffic past the sidecars. */
const ISTIOD_INJECTION_VALUES: { path: string; stops: (v: unknown) => boolean; why: string }[] = [
  { path: "global.proxy.autoInject", stops: (v) => v !== undefined && v !== "enabled", why: "pods are injected only when they ask for it" },
  { path: "sidecarInjectorWebhook.neverInjectSelector", stops: (v) => Array.isArray(v) && v.length > 0, why: "pods matching it are never injected" },
  { path: "global.proxy.excludeInboundPorts", stops: (v) => v !== undefined && String(v).trim() !== "", why: "those inbound ports bypass every sidecar" },
  { path: "global.proxy.includeInboundPorts", stops: (v) => v !== undefined && String(v).trim() !== "*", why: "the sidecars capture only those inbound ports" },
  { path: "meshConfig.defaultConfig.interceptionMode", stops: capturesNothing, why: "the sidecars capture no traffic" },
  {
    path: "sidecarInjectorWebhook.defaultTemplates",
    stops: (v) => Array.isArray(v) && withoutSidecar(v.map(String)),
    why: "pods get no sidecar template, so nothing captures their traffic",
  },
];

/** Every application namespace injects sidecars, and no application workload opts out. */
export const sidecarInjection = stackPolicy<Config>(
  {
    name: "istio-sidecar-injection",
    description:
      "Every application namespace exists in the stack with Istio sidecar injection enabled, istiod's values keep namespace-wide injection and inbound capture on, and no workload in it (a pod template, or a Helm release's pods through their values) opts out (a sidecar.istio.io/inject label or annotation istiod reads as no), lets inbound ports or a network interface bypass its sidecar, turns its traffic capture off (interceptionMode NONE) or is injected with templates that leave the sidecar out (inject.istio.io/templates).",
    severity: "high",
    enforcementLevel: "mandatory",
    remediationSteps:
      "Label the application Namespace `istio-injection: enabled` (platform layer), leave istiod's `global.proxy.autoInject` at `enabled`, its `sidecarInjectorWebhook.neverInjectSelector` empty and its `defaultTemplates` with `sidecar`, and remove `sidecar.istio.io/inject` opt-outs, inbound port and interface exclusions, `interceptionMode: NONE` (annotation or `proxy.istio.io/config`) and `inject.istio.io/templates` without `sidecar` from pod templates (and from the values of releases in application namespaces). Workloads outside the mesh would bypass STRICT mTLS and the AuthorizationPolicies.",
    configSchema: {
      properties: {
        applicationNamespaces: applicationNamespacesSchema,
        injectionRevisions: {
          type: "array",
          items: { type: "string" },
          // istiod is installed without a revision (components/platform/istio.ts): its webhook answers to "default".
          default: ["default"],
          description: "Istio revisions and revision tags whose injection webhook is installed (values an `istio.io/rev` label may take).",
        },
      },
    },
  },
  (args, judge, report, config) => {
    if (!deploysToKubernetes(args.resources)) args.notApplicable("the stack creates no Kubernetes objects");
    const isApp = (ns: string) => config.applicationNamespaces.some((g) => globMatch(g, ns));
    const namespaces = new Map<string, PolicyResource>();
    let undecided = false;
    for (const r of args.resources.filter((x) => x.type === NAMESPACE)) {
      let decided = false;
      judge.check(() => {
        const name = metadataOf(r.props as Obj).name;
        if (typeof name === "string" && isApp(name)) namespaces.set(name, r);
        decided = true;
      }, r.urn);
      // A Namespace whose name is unknown is reported by the judge, not counted as missing.
      if (!decided) undecided = true;
    }
    if (namespaces.size === 0 && !undecided) {
      report(`no application namespace (matching ${config.applicationNamespaces.join(", ")}) is created by the stack`);
    }
    for (const [name, r] of namespaces) {
      judge.check(() => {
        const labels = labelsOf(metadataOf(r.props as Obj));
        if (!injectionEnabled(labels, config.injectionRevisions)) {
          const rev = labels["istio.io/rev"];
          report(
            rev !== undefined && labels["istio-injection"] !== "disabled"
              ? `namespace "${name}" asks for Istio revision "${rev}", which is not installed (${config.injectionRevisions.join(", ")}): no sidecar would be injected`
              : `namespace "${name}" does not enable sidecar injection (label istio-injection: enabled)`,
            r.urn,
          );
        }
      }, r.urn);
    }
    for (const r of args.resources.filter((x) => HELM_RELEASE_TYPES.includes(x.type))) {
      judge.check(() => {
        const props = r.props as Obj;
        if (chartName(props) !== "istiod") return;
        // Values files or a post-renderer could turn injection off where these values cannot show it.
        reportOpaqueRelease(props, "istiod", (m) => report(m, r.urn));
        for (const v of ISTIOD_INJECTION_VALUES) {
          const value = getPath(props.values, v.path);
          if (v.stops(value)) report(`istiod's values set ${v.path} to ${JSON.stringify(value)}: ${v.why}, whatever the namespace's label`, r.urn);
        }
      }, r.urn);
    }
    for (const r of args.resources.filter((x) => isPodBearing(x.type))) {
      judge.check(() => {
        const props = r.props as Obj;
        const namespace = namespaceOf(props, r.provider);
        if (!isApp(namespace)) return;
        if (!namespaces.has(namespace)) {
          report(`${objectName(props, r.name)} runs in application namespace "${namespace}", which the stack does not create, so its injection cannot be verified`, r.urn);
        }
        // Inbound traffic the proxy does not capture reaches the app in plaintext, past STRICT mTLS and every AuthorizationPolicy.
        const tpl = podTemplate(r.type, props)!;
        for (const bypass of captureBypasses(labelsOf(tpl.metadata), (tpl.metadata.annotations ?? {}) as Obj)) report(`${objectName(props, r.name)} ${bypass}`, r.urn);
      }, r.urn);
    }
    // A release's pods in an application namespace: the same labels and annotations, wherever its values hold them
    // (`podAnnotations`, `podLabels`, a component's own), in the namespace the values' chart runs its pods in.
    for (const r of args.resources.filter((x) => HELM_RELEASE_TYPES.includes(x.type))) {
      judge.check(() => {
        const props = r.props as Obj;
        const chart = chartName(props) ?? "(none)";
        if (chart === "istiod") return;
        if (isApp(releaseNamespace(props, r.provider))) reportOpaqueRelease(props, chart, (m) => report(m, r.urn));
        const judgeMap = (map: Obj, path: string) =>
          judge.check(() => {
            if (!CAPTURE_KEYS.some((k) => Object.hasOwn(map, k))) return;
            const namespace = valuesOwner(props, chart, path).namespace;
            if (!isApp(namespace)) return;
            for (const bypass of captureBypasses(map, map)) report(`chart "${chart}" (namespace ${namespace}): values ${path || "(top level)"} ${bypass}`, r.urn);
          }, r.urn);
        const values = props.values;
        if (values && typeof values === "object" && !Array.isArray(values)) judgeMap(values as Obj, "");
        walkValues(values, ({ path, key, value, unknown }) => {
          if (unknown) {
            if (CAPTURE_KEYS.includes(key) && isApp(valuesOwner(props, chart, path).namespace)) judge.unknownValue(unknown, r.urn);
            return;
          }
          if (value && typeof value === "object" && !Array.isArray(value)) judgeMap(value as Obj, path);
        });
      }, r.urn);
    }
  },
);
