/**
 * The values the program passes to each chart, checked against the chart's real defaults
 * (`components/platform/chart-defaults/<chart>/<version>/values.yaml`): a misspelled key is silently ignored by Helm,
 * so here it fails the build. Where a chart ships `values.schema.json`, the merged values must
 * validate against it, as `helm install` would require.
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { Ajv } from "ajv";
import { Ajv2020 } from "ajv/dist/2020.js";
import { beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { loadConfig } from "../../stacks/config";
import { ofType, type ProgramRun, readStackConfig, configuredRun, runProgram, UNKNOWN } from "../../stacks/harness";
import { chartDefaultsDir } from "./chart-defaults";
import { CHARTS, type ChartKey, getPath } from "./chart-workloads";
import { helmTplLiteral } from "./helm";
import { ALLOY_CONFIG } from "./logging";
import { NAMESPACES } from "./names";

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);


/**
 * Valid keys the defaults file does not list (documented in chart-defaults/NOTES.md): free-form maps
 * (Istio MeshConfig, grafana.ini, Alertmanager's own config), commented-out keys, and the standard
 * `resources` (and `tolerations`) of subcharts whose defaults are not copied here.
 */
const PASS_THROUGH: Partial<Record<ChartKey, string[]>> = {
  istiod: ["meshConfig"],
  kubePrometheusStack: [
    "grafana.grafana.ini",
    "alertmanager.config",
    "kube-state-metrics.resources",
    "prometheus-node-exporter.resources",
    // The prometheus-node-exporter subchart's own keys (defaults: NoSchedule only; host network and PID).
    "prometheus-node-exporter.tolerations",
    "prometheus-node-exporter.hostNetwork",
    "prometheus-node-exporter.hostPID",
    // Commented out in grafana 12.11.1's values.yaml (`# storageClassName: default`), read by its PVC template.
    "grafana.persistence.storageClassName",
  ],
  loki: ["loki.limits_config.retention_period"],
  // argocd-cm takes any key under configs.cm; an explicit `url` overrides the one the chart derives from global.domain.
  argoCd: ["configs.params", "configs.cm.url"],
};

/**
 * istio `cni` 1.30.3 is not among the reference copies in chart-defaults: its values are limited to
 * these keys, all documented by the chart (CNI paths for K3s, JSON logs, the agent's resources).
 */
const CNI_KEYS = ["cniConfDir", "cniBinDir", "global.logAsJson", "resources.requests.cpu", "resources.requests.memory", "resources.limits.cpu", "resources.limits.memory"];

/**
 * Subtrees the program passes under a key whose chart default is an empty map: the chart copies them
 * whole into an object, so they are Kubernetes or application shapes, not chart keys. Each is checked
 * where it lands: Kubernetes fields by the schema test of the rendered object kinds (a PVC template below),
 * Loki's by Loki at start-up.
 */
const FREE_FORM: Partial<Record<ChartKey, Record<string, string>>> = {
  externalSecrets: { nodeSelector: "a Pod nodeSelector" },
  istiod: { affinity: "a Pod affinity" },
  istioGateway: { nodeSelector: "a Pod nodeSelector", affinity: "a Pod affinity", podDisruptionBudget: "a PodDisruptionBudget spec (prod)" },
  kubePrometheusStack: {
    "defaultRules.disabled": "names of the chart's alerts its rule templates leave out",
    "kubeProxy.serviceMonitor.selector": "a label selector (the operator's kubelet Service)",
    "grafana.nodeSelector": "a Pod nodeSelector",
    "prometheus.prometheusSpec.nodeSelector": "a Pod nodeSelector",
    "prometheus.prometheusSpec.storageSpec": "the Prometheus CRD's storage: a PersistentVolumeClaim template (validated below)",
  },
  loki: { "loki.compactor": "Loki's compactor block (retention)", "loki.schemaConfig": "Loki's schema_config", "singleBinary.nodeSelector": "a Pod nodeSelector" },
};

/** One wrongly typed value per schema, which `helm install` would reject. */
const SCHEMA_VIOLATIONS: Partial<Record<ChartKey, Obj>> = {
  istioGateway: { service: { type: 80 } },
  loki: { singleBinary: { replicas: "one" } },
  externalSecrets: { replicaCount: "many" },
};

function chartDir(chart: string, version: string): string {
  return chartDefaultsDir(chart, version);
}

function defaultsOf(key: ChartKey, version: string): Obj {
  const info = CHARTS[key];
  const raw = parse(readFileSync(path.join(chartDir(info.chart, version), "values.yaml"), "utf8")) as Obj;
  // Istio's charts keep their defaults one level down; users set those keys at the top level.
  const defaults = isObj(raw._internal_defaults_do_not_set) ? raw._internal_defaults_do_not_set : raw;
  if (key === "kubePrometheusStack") {
    // grafana.* goes to the grafana subchart: its own defaults plus what kube-prometheus-stack overrides.
    const grafana = parse(readFileSync(path.join(chartDefaultsDir("grafana", "12.11.1"), "values.yaml"), "utf8")) as Obj;
    defaults.grafana = deepMerge(grafana, defaults.grafana as Obj);
  }
  return defaults;
}

function deepMerge(base: Obj, over: Obj): Obj {
  const out: Obj = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = isObj(v) && isObj(out[k]) ? deepMerge(out[k] as Obj, v) : v;
  return out;
}

function leafPaths(values: Obj, prefix = ""): string[] {
  return Object.entries(values).flatMap(([k, v]) => (isObj(v) && Object.keys(v).length > 0 ? leafPaths(v, `${prefix}${k}.`) : [`${prefix}${k}`]));
}

/**
 * Paths in `values` that the chart does not know. A key whose default is an empty map or null takes any
 * subtree: its path goes to `freeForm`, for the caller to hold against the documented list.
 */
export function unknownKeys(values: Obj, defaults: Obj, allowed: string[], prefix = "", freeForm: string[] = []): string[] {
  const bad: string[] = [];
  for (const [k, v] of Object.entries(values)) {
    const p = `${prefix}${k}`;
    if (allowed.some((a) => p === a || p.startsWith(`${a}.`))) continue;
    if (!(k in defaults)) {
      bad.push(p);
      continue;
    }
    const d = defaults[k];
    if (k === "resources" && isObj(v)) bad.push(...unknownResourceKeys(v, p));
    else if (isObj(v) && isObj(d) && Object.keys(d).length > 0) bad.push(...unknownKeys(v, d, allowed, `${p}.`, freeForm));
    else if (isObj(v) && (d === null || isObj(d))) freeForm.push(p);
    else if (isObj(v) && !(d === null || isObj(d))) bad.push(`${p} (the chart's default is not a map)`);
  }
  return bad;
}

/** A Kubernetes ResourceRequirements block: only requests/limits of cpu/memory. */
function unknownResourceKeys(v: Obj, p: string): string[] {
  return Object.entries(v).flatMap(([k, inner]) =>
    k !== "requests" && k !== "limits"
      ? [`${p}.${k}`]
      : Object.keys(isObj(inner) ? inner : {})
          .filter((r) => r !== "cpu" && r !== "memory")
          .map((r) => `${p}.${k}.${r}`),
  );
}

let runs: Record<string, ProgramRun> = {};
beforeAll(async () => {
  runs = { dev: await configuredRun("dev"), prod: await configuredRun("prod") };
});

function valuesOf(run: ProgramRun, key: ChartKey): Obj {
  const r = ofType(run, "kubernetes:helm.sh/v3:Release").find((x) => x.inputs.chart === CHARTS[key].chart);
  if (!r) throw new Error(`no release of ${CHARTS[key].chart}`);
  return r.inputs.values as Obj;
}

describe("the key checker", () => {
  it("catches a misspelled key, a nested typo and a map where the chart has a scalar", () => {
    const defaults = { service: { type: "LoadBalancer", ports: [] }, resources: {}, replicaCount: null, name: "" };
    expect(unknownKeys({ servce: { type: "NodePort" } }, defaults, [])).toEqual(["servce"]);
    expect(unknownKeys({ service: { tpye: "NodePort" } }, defaults, [])).toEqual(["service.tpye"]);
    expect(unknownKeys({ name: { x: 1 } }, defaults, [])).toEqual(["name (the chart's default is not a map)"]);
    expect(unknownKeys({ resources: { requests: { cpu: "1" }, limits: { memory: "1Gi" } }, replicaCount: 2, service: { ports: [{ port: 1 }] } }, defaults, [])).toEqual([]);
    expect(unknownKeys({ resources: { request: { cpu: "1" }, limits: { mem: "1Gi" } } }, defaults, [])).toEqual(["resources.request", "resources.limits.mem"]);
  });
});

describe.each(["dev", "prod"])("chart values (%s)", (stack) => {
  const config = () => loadConfig(stack, readStackConfig(stack));

  it.each(Object.keys(CHARTS).filter((k) => k !== "istioCni") as ChartKey[])("%s: every key exists in the chart's values.yaml", (key) => {
    const version = config().charts[key].version;
    const dir = chartDir(CHARTS[key].chart, version);
    expect(existsSync(path.join(dir, "values.yaml")), `reference values for ${CHARTS[key].chart} ${version}`).toBe(true);
    const freeForm: string[] = [];
    expect(unknownKeys(valuesOf(runs[stack]!, key), defaultsOf(key, version), PASS_THROUGH[key] ?? [], "", freeForm)).toEqual([]);
    // Subtrees under a key whose default is an empty map are read whole by the chart: each one used is listed, with its reason.
    expect(freeForm.filter((p) => !(p in (FREE_FORM[key] ?? {})))).toEqual([]);
  });

  it("istioCni: only the documented keys", () => {
    expect(leafPaths(valuesOf(runs[stack]!, "istioCni")).sort()).toEqual([...CNI_KEYS].sort());
  });

  it.each(["istioGateway", "loki", "externalSecrets"] as ChartKey[])("%s: the merged values validate against values.schema.json", (key) => {
    const version = config().charts[key].version;
    const schemaFile = path.join(chartDir(CHARTS[key].chart, version), "values.schema.json");
    const schema = JSON.parse(readFileSync(schemaFile, "utf8")) as Obj;
    const raw = parse(readFileSync(path.join(chartDir(CHARTS[key].chart, version), "values.yaml"), "utf8")) as Obj;
    const ours = valuesOf(runs[stack]!, key);
    // Helm validates the chart's defaults coalesced with the user's values.
    const merged = deepMerge(raw, ours);
    const draft2020 = String(schema.$schema ?? "").includes("2020-12");
    delete schema.$schema;
    const ajv = draft2020 ? new Ajv2020({ strict: false, allErrors: true }) : new Ajv({ strict: false, allErrors: true });
    const validate = ajv.compile(schema);
    expect(validate(merged), JSON.stringify(validate.errors, null, 1)).toBe(true);
    // And the schema really rejects a wrongly typed value (guards against a validator that accepts anything).
    expect(validate(deepMerge(merged, SCHEMA_VIOLATIONS[key]!))).toBe(false);
  });
});

/**
 * The values a first `pulumi preview` cannot know (Outputs of resources not created yet), per chart.
 * The policies that scan values (images, host paths and namespaces, Service types) skip an unknown
 * whose key is not one they read, so an Output standing for a whole subtree would hide what it holds:
 * every unknown must be a single string the chart documents as one (the external URLs and host).
 */
const PREVIEW_UNKNOWN_LEAVES = ["argo-cd: configs.cm.url", "kube-prometheus-stack: grafana.grafana.ini.server.domain", "kube-prometheus-stack: prometheus.prometheusSpec.externalUrl"];

/**
 * And one per K3s server and component it runs: `kubeEtcd`, `kubeControllerManager` and `kubeScheduler`
 * list the servers' internal addresses as `endpoints` (the chart writes each into its Endpoints object as
 * one IP), each an Output of its own, unknown until its address exists.
 */
const serverEndpointLeaves = (serverCount: number) =>
  ["kubeEtcd", "kubeControllerManager", "kubeScheduler"].flatMap((key) => Array.from({ length: serverCount }, (_, i) => `kube-prometheus-stack: ${key}.endpoints.${i}`));

describe.each(["dev", "prod"])("chart values in a first preview (%s)", (stack) => {
  it("are known everywhere but a few documented leaf strings, so no policy misses a subtree", async () => {
    const run = await runProgram({ stack, preview: true });
    const found: string[] = [];
    const walk = (v: unknown, chart: string, p: string) => {
      if (v === UNKNOWN) found.push(`${chart}: ${p}`);
      else if (v && typeof v === "object") for (const [k, c] of Object.entries(v)) walk(c, chart, p ? `${p}.${k}` : k);
    };
    for (const r of ofType(run, "kubernetes:helm.sh/v3:Release")) walk(r.inputs.values, String(r.inputs.chart), "");
    const servers = loadConfig(stack, readStackConfig(stack)).cluster.servers.count;
    expect(found.sort()).toEqual([...PREVIEW_UNKNOWN_LEAVES, ...serverEndpointLeaves(servers)].sort());
  });
});

/**
 * What Helm's `tpl` makes of a value, for the only actions an escaped value may hold: a string
 * constant (raw or quoted) is printed; any other action would be executed, so it throws.
 */
export function renderTplLiterals(text: string): string {
  let out = "";
  for (let at = 0; ; ) {
    const open = text.indexOf("{{", at);
    if (open < 0) return out + text.slice(at);
    out += text.slice(at, open);
    let i = open + 2;
    while (text[i] === " ") i++;
    let printed: string;
    const quoted = /^"(?:[^"\\\n]|\\.)*"/.exec(text.slice(i));
    if (text[i] === "`" && text.indexOf("`", i + 1) > 0) {
      const end = text.indexOf("`", i + 1);
      printed = text.slice(i + 1, end).replaceAll("\r", "");
      i = end + 1;
    } else if (quoted) {
      printed = JSON.parse(quoted[0]) as string;
      i += quoted[0].length;
    } else {
      throw new Error(`tpl would execute the action at ${open}: ${text.slice(open, open + 60)}`);
    }
    while (text[i] === " ") i++;
    if (!text.startsWith("}}", i)) throw new Error(`tpl would execute the action at ${open}: ${text.slice(open, open + 60)}`);
    out += printed;
    at = i + 2;
  }
}

/** Values the charts pass through Helm's `tpl`, and the text each must render to. */
const TPL_VALUES: { chart: string; path: string[]; renders: string }[] = [{ chart: "alloy", path: ["alloy", "configMap", "content"], renders: ALLOY_CONFIG }];

describe("values Helm's tpl renders", () => {
  it("the escape renders every text as itself, whatever braces and backticks it holds", () => {
    for (const text of ["", "plain", "{}}", "{{{", "}}{{", "{ {{", "a`b", "``", "{{`x`}}", '{{ "y" }}', "{{ $l := ToLower .Value }}", ALLOY_CONFIG]) {
      expect(renderTplLiterals(helmTplLiteral(text))).toBe(text);
    }
    expect(() => helmTplLiteral("a\r\nb")).toThrow(/carriage returns/);
  });

  it("the renderer refuses what Helm would execute (Alloy's template stage, unescaped)", () => {
    expect(ALLOY_CONFIG).toContain("{{ $l := ToLower .Value }}");
    expect(() => renderTplLiterals(ALLOY_CONFIG)).toThrow(/tpl would execute/);
    expect(() => renderTplLiterals("{}}")).not.toThrow();
    expect(() => renderTplLiterals('{{ "a" | lower }}')).toThrow(/tpl would execute/);
  });

  it.each(["dev", "prod"])("%s: the Alloy config reaches Alloy intact, and no other value holds a template delimiter", (stack) => {
    const releases = ofType(runs[stack]!, "kubernetes:helm.sh/v3:Release");
    for (const { chart, path: keys, renders } of TPL_VALUES) {
      const release = releases.find((r) => r.inputs.chart === chart);
      const value = keys.reduce<unknown>((v, k) => (isObj(v) ? v[k] : undefined), release?.inputs.values);
      expect(typeof value, `${chart}: ${keys.join(".")}`).toBe("string");
      expect(renderTplLiterals(value as string)).toBe(renders);
    }
    const delimiters: string[] = [];
    const walk = (v: unknown, chart: string, p: string[]) => {
      if (typeof v === "string" && /\{\{|\}\}/.test(v) && !TPL_VALUES.some((t) => t.chart === chart && t.path.join(".") === p.join("."))) delimiters.push(`${chart}: ${p.join(".")}`);
      else if (v && typeof v === "object") for (const [k, c] of Object.entries(v)) walk(c, chart, [...p, k]);
    };
    for (const r of releases) walk(r.inputs.values, String(r.inputs.chart), []);
    expect(delimiters).toEqual([]);
  });
});

describe.each(["dev", "prod"])("free-form values that are Kubernetes objects (%s)", (stack) => {
  it("Prometheus' storage is a valid PersistentVolumeClaim template", async () => {
    const { PersistentVolumeClaim } = await import("kubernetes-models/v1");
    const storage = getPath(valuesOf(runs[stack]!, "kubePrometheusStack"), "prometheus.prometheusSpec.storageSpec") as Obj;
    const template = storage.volumeClaimTemplate as Obj;
    expect(Object.keys(storage)).toEqual(["volumeClaimTemplate"]);
    expect(() => new PersistentVolumeClaim({ metadata: { name: "prometheus-db" }, ...template }).validate()).not.toThrow();
    // A misspelt or mistyped field there fails (so a pass means something).
    expect(() => new PersistentVolumeClaim({ metadata: { name: "x" }, spec: { ...(template.spec as Obj), accessModes: "ReadWriteOnce" } } as never).validate()).toThrow();
  });
});

type Alert = Record<string, string>;
interface InhibitRule {
  source_matchers?: string[];
  target_matchers?: string[];
  equal?: string[];
}

/** One Alertmanager matcher, `name op value` (the value quoted or not); regular expressions are anchored. */
function matches(matcher: string, alert: Alert): boolean {
  const m = /^\s*(\w+)\s*(=~|!~|!=|=)\s*"?(.*?)"?\s*$/.exec(matcher);
  if (!m) throw new Error(`not a matcher: ${matcher}`);
  const [, name, op, value] = m as unknown as [string, string, string, string];
  const v = alert[name] ?? "";
  const re = new RegExp(`^(?:${value})$`);
  return op === "=" ? v === value : op === "!=" ? v !== value : op === "=~" ? re.test(v) : !re.test(v);
}
const matchAll = (matchers: string[] | undefined, alert: Alert) => (matchers ?? []).every((m) => matches(m, alert));

/**
 * The alerts Alertmanager sends to each receiver: inhibition as Alertmanager applies it (an alert that
 * matches both sides of a rule is muted only by a source that does not), then the first matching route.
 */
function delivered(config: Obj, firing: Alert[]): Record<string, string[]> {
  const rules = config.inhibit_rules as InhibitRule[];
  const route = config.route as { receiver: string; routes?: { receiver: string; matchers?: string[]; continue?: boolean; routes?: unknown }[] };
  // The model below is exact only for a flat tree without `continue`.
  for (const r of route.routes ?? []) expect(Boolean(r.continue) || r.routes !== undefined).toBe(false);
  const muted = (t: Alert) =>
    rules.some(
      (r) =>
        matchAll(r.target_matchers, t) &&
        firing.some(
          (s) =>
            matchAll(r.source_matchers, s) &&
            (r.equal ?? []).every((n) => (s[n] ?? "") === (t[n] ?? "")) &&
            !(matchAll(r.source_matchers, t) && matchAll(r.target_matchers, s)),
        ),
    );
  const out: Record<string, string[]> = {};
  for (const a of firing.filter((x) => !muted(x))) {
    const receiver = (route.routes ?? []).find((r) => matchAll(r.matchers, a))?.receiver ?? route.receiver;
    (out[receiver] ??= []).push(a.alertname!);
  }
  return out;
}

/**
 * What Prometheus fires besides `alerts`, from the chart's `general.rules` group: Watchdog always, and
 * InfoInhibitor (`ALERTS{severity="info"} unless on(namespace) ALERTS{severity=~"warning|critical"}`) for
 * each info alert in a namespace without a warning or critical one.
 */
function withChartMetaAlerts(alerts: Alert[]): Alert[] {
  const loud = new Set(alerts.filter((a) => /^(warning|critical)$/.test(a.severity ?? "")).map((a) => a.namespace));
  const inhibitors = alerts.filter((a) => a.severity === "info" && !loud.has(a.namespace)).map((a) => ({ ...a, alertname: "InfoInhibitor", severity: "none" }));
  return [...alerts, ...inhibitors, { alertname: "Watchdog", severity: "none" }];
}

describe.each(["dev", "prod"])("Alertmanager's configuration as Helm renders it (%s)", (stack) => {
  /** The chart's defaults coalesced with ours: Helm merges maps and replaces lists. */
  const rendered = () => {
    const defaults = defaultsOf("kubePrometheusStack", loadConfig(stack, readStackConfig(stack)).charts.kubePrometheusStack.version);
    return { chart: getPath(defaults, "alertmanager.config") as Obj, merged: getPath(deepMerge(defaults, valuesOf(runs[stack]!, "kubePrometheusStack")), "alertmanager.config") as Obj };
  };
  const ns = NAMESPACES.app;

  it("keeps the chart's inhibition rules", () => {
    const { chart, merged } = rendered();
    expect((chart.inhibit_rules as unknown[]).length).toBeGreaterThan(0);
    expect(merged.inhibit_rules).toEqual(expect.arrayContaining(chart.inhibit_rules as unknown[]));
  });

  it("sends an info alert only beside a warning or critical one of its namespace (the chart's design), and never Watchdog or InfoInhibitor", () => {
    const { merged } = rendered();
    const info = { alertname: "CPUThrottlingHigh", severity: "info", namespace: ns, pod: "api-gateway-1" };
    const warning = { alertname: "KubePodCrashLooping", severity: "warning", namespace: ns, pod: "api-gateway-1" };
    expect(delivered(merged, withChartMetaAlerts([info]))).toEqual({ null: ["Watchdog"] });
    expect(delivered(merged, withChartMetaAlerts([info, { ...warning, namespace: NAMESPACES.monitoring }]))).toEqual({ default: ["KubePodCrashLooping"], null: ["Watchdog"] });
    expect(delivered(merged, withChartMetaAlerts([info, warning]))).toEqual({ default: ["CPUThrottlingHigh", "KubePodCrashLooping"], null: ["Watchdog"] });
  });

  it("mutes a warning while the same alert is critical in its namespace, and sends the critical one", () => {
    const { merged } = rendered();
    const filling = { alertname: "KubePersistentVolumeFillingUp", namespace: ns, persistentvolumeclaim: "data-postgres-0" };
    expect(delivered(merged, withChartMetaAlerts([{ ...filling, severity: "warning" }, { ...filling, severity: "critical" }]))).toEqual({ default: ["KubePersistentVolumeFillingUp"], null: ["Watchdog"] });
    expect(delivered(merged, withChartMetaAlerts([{ alertname: "TitaniumTargetDown", severity: "critical", namespace: ns }]))).toEqual({ default: ["TitaniumTargetDown"], null: ["Watchdog"] });
  });
});
