/** Walking Helm values (plain JSON trees) for findings that do not depend on the chart's layout. */
import type { PolicyConfigJSONSchema, PolicyConfigJSONSchemaDefinition } from "@pulumi/policy/schema";
import { getPath, namespacePlacement, splitPath, type Obj } from "./k8s";
import { isUnknownValueError, type UnknownValueErrorLike } from "./sdk";

/** A boolean values path and what the chart does when the values leave it unset. */
export interface ValuesToggle {
  path: string;
  default: boolean;
}

/** JSON schema of a {@link ValuesToggle} (policy config). */
export const toggleSchema = {
  type: "object" as const,
  properties: { path: { type: "string" as const }, default: { type: "boolean" as const } },
  required: ["path", "default"],
  additionalProperties: false,
};

/**
 * JSON schema of a per-chart table in a policy's config: chart name → entries of
 * `{ chart, valuesPrefix?, enabledBy?, <listKey>: item[] }` (what a chart's values switch on).
 */
export function chartTableSchema(
  listKey: string,
  item: { properties: Record<string, PolicyConfigJSONSchemaDefinition>; required: string[] },
  defaults: object,
  description: string,
): PolicyConfigJSONSchema {
  return {
    type: "object" as const,
    additionalProperties: {
      type: "array" as const,
      items: {
        type: "object" as const,
        properties: {
          chart: { type: "string" as const },
          valuesPrefix: { type: "string" as const },
          enabledBy: toggleSchema,
          [listKey]: { type: "array" as const, items: { type: "object" as const, ...item, additionalProperties: false } },
        },
        required: ["chart", listKey],
        additionalProperties: false,
      },
    },
    default: defaults,
    description,
  };
}

/** A boolean values toggle (under a subchart's `prefix`): its value, or the chart's default when unset. */
export const isOn = (values: unknown, t: ValuesToggle, prefix?: string): boolean => {
  const v = getPath(values, valuesPath(prefix, t.path));
  return typeof v === "boolean" ? v : t.default;
};

/** A path in a release's values, under a subchart's key when there is one. */
export const valuesPath = (prefix: string | undefined, path: string): string => (prefix ? `${prefix}.${path}` : path);

/**
 * The subcharts each chart bundles, by the values key Helm gives their values (the subchart's name or
 * alias), from the pinned charts' values in components/platform/chart-defaults: a values path under one of these keys
 * configures that subchart's pods, never the release chart's own.
 */
export const SUBCHARTS: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  "kube-prometheus-stack": {
    grafana: "grafana",
    "kube-state-metrics": "kube-state-metrics",
    "prometheus-node-exporter": "prometheus-node-exporter",
    "prometheus-windows-exporter": "prometheus-windows-exporter",
  },
  loki: { minio: "minio", rollout_operator: "rollout-operator" },
  "argo-cd": { "redis-ha": "redis-ha" },
  "external-secrets": { "bitwarden-sdk-server": "bitwarden-sdk-server" },
};

/** The namespace a release installs into: its `namespace`, else its provider's, else `default` ({@link namespacePlacement}). */
export const releaseNamespace = (props: Obj, provider?: Parameters<typeof namespacePlacement>[2]): string =>
  namespacePlacement(props.namespace, "namespace", provider).namespace;

/** Where the pods of the chart whose values sit under `prefix` run: that chart's `namespaceOverride`, else the release's namespace. */
export function chartNamespace(props: Obj, prefix?: string): string {
  const override = getPath(props.values, valuesPath(prefix, "namespaceOverride"));
  return typeof override === "string" && override !== "" ? override : releaseNamespace(props);
}

/** The chart whose pods a release's values path configures, where its values sit, and the namespace those pods run in. */
export interface ValuesOwner {
  chart: string;
  /** The subchart's values key; undefined for the release's own chart. */
  prefix?: string;
  namespace: string;
}

/** Who a path of a release's values belongs to: the subchart under whose key it sits ({@link SUBCHARTS}), else the release's chart. */
export function valuesOwner(props: Obj, release: string, path: string): ValuesOwner {
  const key = splitPath(path)[0];
  const subcharts = Object.hasOwn(SUBCHARTS, release) ? SUBCHARTS[release]! : {};
  if (typeof key === "string" && Object.hasOwn(subcharts, key)) return { chart: subcharts[key]!, prefix: key, namespace: chartNamespace(props, key) };
  return { chart: release, namespace: chartNamespace(props) };
}

/**
 * A release's entries in a per-chart table, or undefined after reporting a chart the table does not
 * list: what its pods do on the node is then unknown, so it is a finding, never a pass.
 */
export function chartEntries<T>(table: Record<string, T[]>, release: string, tableName: string, unknownWhat: string, report: (message: string) => void): T[] | undefined {
  if (Object.hasOwn(table, release)) return table[release]!;
  report(`chart "${release}" is not in the policy's ${tableName}, so ${unknownWhat}`);
  return undefined;
}

export interface ValueHit {
  /** Dotted path of the key, e.g. `server.image.tag`. */
  path: string;
  key: string;
  value: unknown;
  /** Set when the value is unknown during preview (`value` is then undefined). */
  unknown?: UnknownValueErrorLike;
}

/**
 * Every key/value pair of a values tree, depth first, arrays included (`list[0].x`). An unknown
 * leaf (an Output somewhere in the values, during preview) is visited with `unknown` set instead
 * of stopping the walk, so a policy decides whether that key matters to it.
 */
export function walkValues(root: unknown, visit: (hit: ValueHit) => void, path = ""): void {
  if (root === null || typeof root !== "object") return;
  // By index, not `map`: the SDK's proxy throws when an unknown element is read, and that read belongs
  // in the try below (one unknown element must not end the walk of the whole tree).
  const entries: [string, string][] = Array.isArray(root)
    ? Array.from({ length: root.length }, (_, i) => [String(i), `${path}[${i}]`])
    : Object.keys(root).map((k) => [k, path ? `${path}.${k}` : k]);
  for (const [key, p] of entries) {
    let value: unknown;
    try {
      value = (root as Record<string, unknown>)[key];
    } catch (err) {
      if (!isUnknownValueError(err)) throw err;
      visit({ path: p, key, value: undefined, unknown: err });
      continue;
    }
    if (!Array.isArray(root)) visit({ path: p, key, value });
    walkValues(value, visit, p);
  }
}

/**
 * A container spec written out in a release's values (`extraContainers`, `initContainers`,
 * `prometheusSpec.containers`, `sidecars`...), which charts render into their pod specs as written: an
 * object with a string `name` and a string `image`. Tested with `Object.hasOwn` first, so an object
 * without both keys is never read (an unknown `name` elsewhere in the values stays unread).
 */
export function containerSpec(value: unknown): (Obj & { name: string; image: string }) | undefined {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return undefined;
  const c = value as Obj;
  if (!Object.hasOwn(c, "name") || !Object.hasOwn(c, "image")) return undefined;
  return typeof c.name === "string" && typeof c.image === "string" ? (c as Obj & { name: string; image: string }) : undefined;
}

/**
 * The container specs a node of a {@link walkValues} walk holds, with their paths: the node itself, or
 * each element of a list (the walk visits a list, not its elements). An element unknown in preview is
 * skipped like any other key the walk hands over unknown (a whole container is never an Output).
 */
export function containerSpecsAt(path: string, value: unknown): { path: string; container: Obj & { name: string; image: string } }[] {
  const out: { path: string; container: Obj & { name: string; image: string } }[] = [];
  const add = (at: string, read: () => unknown) => {
    let node: unknown;
    try {
      node = read();
    } catch (err) {
      if (!isUnknownValueError(err)) throw err;
      return;
    }
    const container = containerSpec(node);
    if (container) out.push({ path: at, container });
  };
  if (Array.isArray(value)) for (let i = 0; i < value.length; i++) add(`${path}[${i}]`, () => (value as unknown[])[i]);
  else add(path, () => value);
  return out;
}

/**
 * Inputs of a `helm.v3.Release` that change what it renders beyond `values`, where no policy reads them:
 * `valueYamlFiles` (values files Helm merges over the chart's defaults, assets the pack cannot parse) and
 * `postrender` (a binary that rewrites the rendered manifest).
 */
export const OPAQUE_RELEASE_INPUTS = ["valueYamlFiles", "postrender"] as const;

/** The {@link OPAQUE_RELEASE_INPUTS} a release sets (an empty list or string is unset). */
export function opaqueReleaseInputs(props: Obj): string[] {
  return OPAQUE_RELEASE_INPUTS.filter((key) => {
    const v = props[key];
    if (v === undefined || v === null) return false;
    if (Array.isArray(v)) return v.length > 0;
    if (typeof v === "string") return v.trim() !== "";
    return true;
  });
}

/**
 * Reports a release that sets any of {@link OPAQUE_RELEASE_INPUTS}: a policy that judges a release by its
 * values cannot pass what those inputs may add (a privileged container, a hostPath, a `latest` image).
 */
export function reportOpaqueRelease(props: Obj, chart: string, report: (message: string) => void): void {
  const inputs = opaqueReleaseInputs(props);
  if (inputs.length === 0) return;
  report(`chart "${chart}" sets ${inputs.join(", ")}, which change what it renders beyond its values, so this policy cannot judge it: pass every value in \`values\` and use no post-renderer`);
}
