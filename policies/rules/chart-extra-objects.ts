import { chartName, HELM_RELEASE_TYPES, type Obj } from "../lib/k8s";
import { resourcePolicy, type BaseConfig } from "../lib/policy";
import { readOr } from "../lib/sdk";
import { reportOpaqueRelease, walkValues } from "../lib/values";

interface Config extends BaseConfig {
  valuesKeys: string[];
}

/**
 * Values keys whose content a chart renders verbatim as Kubernetes objects (through `tpl`), as the pinned
 * charts name them (components/platform/chart-defaults):
 *
 * - `extraObjects`: argo-cd 10.1.1, alloy 1.11.1, external-secrets 2.9.0, loki 18.11.0 (a list, a map whose
 *   values are the objects, or one YAML string), grafana 12.11.1 (so `grafana.extraObjects` inside
 *   kube-prometheus-stack), promtail 6.17.1;
 * - `extraManifests`: kube-prometheus-stack 88.5.3 (a list or a map; an item an object or a YAML string),
 *   and its kube-state-metrics and prometheus-node-exporter subcharts (`kube-state-metrics.extraManifests`).
 *
 * A chart reads the key at the top of its own values, and a parent chart hands a subchart the values under
 * the subchart's key, so the policy refuses these keys at any depth of a release's values: every place a
 * chart or a bundled subchart (of a subchart, too) reads them, without a table that could fall behind.
 */
export const CHART_OBJECT_KEYS = ["extraObjects", "extraManifests"];

/** What Helm renders nothing from: null, a blank or empty-YAML string, a list or map of such members only. */
const EMPTY_YAML = /^(|\[\s*\]|\{\s*\}|null|Null|NULL|~)$/;

/**
 * Whether a value renders no object. A member unknown in preview is taken as an object: whatever an
 * Output stands for there, the chart renders it unjudged.
 */
function rendersNothing(value: unknown): boolean {
  if (value === undefined || value === null) return true;
  if (typeof value === "string") return EMPTY_YAML.test(value.trim());
  if (typeof value !== "object") return false;
  const keys: (string | number)[] = Array.isArray(value) ? Array.from({ length: value.length }, (_, i) => i) : Object.keys(value);
  return keys.every((k) => readOr(() => rendersNothing((value as Record<string | number, unknown>)[k]), false));
}

/** `PeerAuthentication "default"`, `a YAML string` or `an object`, for messages (never throws on an unknown). */
function describeMember(member: unknown): string {
  return readOr(() => {
    if (typeof member === "string") return "a YAML string";
    if (member === null || typeof member !== "object" || Array.isArray(member)) return "a value";
    const o = member as Obj;
    const kind = Object.hasOwn(o, "kind") && typeof o.kind === "string" ? o.kind : "an object";
    const md = Object.hasOwn(o, "metadata") && o.metadata && typeof o.metadata === "object" ? (o.metadata as Obj) : {};
    return Object.hasOwn(md, "name") && typeof md.name === "string" ? `${kind} "${md.name}"` : kind;
  }, "a value unknown in preview");
}

const UNKNOWN_MEMBER = Symbol("unknown in preview");

/** The members of a non-empty value, described: a list's items, a map's values, or the value itself (a YAML string). */
function describeValue(value: unknown): string {
  if (value === null || typeof value !== "object") return describeMember(value);
  const read = (k: string | number): unknown => readOr(() => (value as Record<string | number, unknown>)[k], UNKNOWN_MEMBER);
  const keys: (string | number)[] = Array.isArray(value) ? Array.from({ length: value.length }, (_, i) => i) : Object.keys(value);
  return keys
    .map(read)
    .filter((m) => m === UNKNOWN_MEMBER || !readOr(() => rendersNothing(m), false))
    .map((m) => (m === UNKNOWN_MEMBER ? "a value unknown in preview" : describeMember(m)))
    .join(", ");
}

/**
 * No objects smuggled through a chart's values: what a release renders from `extraObjects`/`extraManifests`
 * is never a resource of the stack, so no other policy (mTLS, NetworkPolicies, privilege...) sees it.
 */
export const noChartExtraObjects = resourcePolicy<Config>(
  {
    name: "k8s-no-chart-extra-objects",
    description:
      "No Helm release's values carry Kubernetes objects the chart renders verbatim (a non-empty `extraObjects` or `extraManifests`, as a list, a map or a YAML string, at any depth: the chart's own, or a subchart's such as `grafana.extraObjects` in kube-prometheus-stack): no policy would judge them.",
    severity: "critical",
    enforcementLevel: "mandatory",
    remediationSteps:
      "Register each such object as a Pulumi resource (`new k8s.apiextensions.CustomResource(...)`, `new k8s.networking.v1.NetworkPolicy(...)`, ..., with `{ parent, provider }`) next to the release, so every policy judges it (mTLS modes, NetworkPolicies, AuthorizationPolicies, privilege), and leave `extraObjects`/`extraManifests` out of the values.",
    configSchema: {
      properties: {
        valuesKeys: {
          type: "array",
          items: { type: "string" },
          default: CHART_OBJECT_KEYS,
          description: "Values keys whose content charts render verbatim as objects; refused non-empty at any depth of a release's values.",
        },
      },
    },
  },
  (args, judge, report, config) => {
    if (!HELM_RELEASE_TYPES.includes(args.type)) return;
    const props = args.props as Obj;
    const chart = () => chartName(props) ?? "(none)";
    judge.check(() => reportOpaqueRelease(props, chart(), report));
    judge.check(() => {
      const values = (props.values ?? {}) as Obj;
      const reported: string[] = [];
      walkValues(values, ({ path, key, value, unknown }) => {
        // An unknown value under another key is taken as holding no such key: in this program only a few leaf
        // strings are unknown in a first preview (chart-values.test.ts holds it to that), and reporting every
        // unknown leaf would make each release with one uncheckable. A wholly unknown `values` is reported
        // (judge.check turns the unknown read above into a result).
        if (!config.valuesKeys.includes(key)) return;
        // Inside objects already refused (an object's own field of that name is no chart's key).
        if (reported.some((p) => path.startsWith(`${p}.`) || path.startsWith(`${p}[`))) return;
        if (unknown) return judge.unknownValue(unknown);
        if (rendersNothing(value)) return;
        reported.push(path);
        report(
          `chart "${chart()}" renders the objects in its values ${path} verbatim (${describeValue(value)}), which no policy judges: register them as Pulumi resources instead`,
        );
      });
    });
  },
);
