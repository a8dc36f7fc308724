/**
 * Validates the Kubernetes objects a program run registers against the published schemas:
 * `kubernetes-models` (the Kubernetes OpenAPI) and the CRD models of the operators the platform
 * installs: Istio, External Secrets, the Prometheus Operator and Argo CD.
 * Test support only (the packages are devDependencies).
 */
import type { RecordedResource } from "../../../stacks/harness";

/** Registered types that are not Kubernetes objects (providers, Helm releases, YAML groups). */
const NOT_OBJECTS = [/^kubernetes:helm\.sh\//, /^kubernetes:yaml(\/v2)?:/, /^kubernetes:kustomize/];

/** The models package of each CRD API group (the rest is Kubernetes' own, `kubernetes-models`). */
const CRD_MODELS: [test: (group: string) => boolean, pkg: string][] = [
  [(g) => g.endsWith(".istio.io"), "@kubernetes-models/istio"],
  [(g) => g === "external-secrets.io", "@kubernetes-models/external-secrets"],
  [(g) => g === "monitoring.coreos.com", "@kubernetes-models/prometheus-operator"],
  [(g) => g === "argoproj.io", "@kubernetes-models/argo-cd"],
];

/**
 * Istio serves `v1` and `v1beta1` of its networking and security kinds from one CRD schema; the Istio
 * models package predates some v1 promotions (all of networking, PeerAuthentication), so a v1 object
 * without a v1 model is checked against the v1beta1 schema.
 */
const ISTIO_SAME_SCHEMA: Record<string, string> = {
  "networking.istio.io/v1": "networking.istio.io/v1beta1",
  "security.istio.io/v1": "security.istio.io/v1beta1",
};

interface Model {
  new (data: unknown): { validate(): void };
}

const modules = new Map<string, Record<string, unknown> | null>();

async function load(specifier: string): Promise<Record<string, unknown> | null> {
  if (!modules.has(specifier)) {
    modules.set(specifier, await import(specifier).then((m: Record<string, unknown>) => m, () => null));
  }
  return modules.get(specifier)!;
}

/** `kubernetes:apps/v1:Deployment` → `{ apiVersion: "apps/v1", kind: "Deployment" }`. */
export function typeToApiVersionKind(type: string): { apiVersion: string; kind: string } {
  const m = /^kubernetes:(.+)\/([^/]+):(\w+)$/.exec(type);
  if (!m) throw new Error(`not a Kubernetes type: ${type}`);
  const [, group, version, kind] = m as unknown as [string, string, string, string];
  return { apiVersion: group === "core" ? version : `${group}/${version}`, kind };
}

export type ValidationResult = { resource: string; status: "valid" } | { resource: string; status: "invalid"; error: string } | { resource: string; status: "patch" };

/** Validates one recorded resource; `undefined` when it is not a Kubernetes object. */
export async function validateRecorded(r: RecordedResource): Promise<ValidationResult | undefined> {
  if (!r.custom || !r.type.startsWith("kubernetes:") || NOT_OBJECTS.some((re) => re.test(r.type))) return undefined;
  const { apiVersion, kind } = typeToApiVersionKind(r.type);
  const resource = `${r.type} ${r.name}`;
  const group = apiVersion.includes("/") ? apiVersion.split("/")[0]! : "";
  // A server-side-apply patch is a partial object by design: no schema of the whole kind applies.
  if (kind.endsWith("Patch")) return { resource, status: "patch" };
  const pkg = CRD_MODELS.find(([test]) => test(group))?.[1] ?? "kubernetes-models";
  const modelFor = async (version: string) => (await load(`${pkg}/${version}`))?.[kind] as Model | undefined;
  let schemaVersion = apiVersion;
  let model = await modelFor(apiVersion);
  if (!model && ISTIO_SAME_SCHEMA[apiVersion]) {
    schemaVersion = ISTIO_SAME_SCHEMA[apiVersion];
    model = await modelFor(schemaVersion);
  }
  if (!model) return { resource, status: "invalid", error: `no schema for ${apiVersion} ${kind}` };
  const { apiVersion: _a, kind: _k, ...inputs } = r.inputs;
  const data = { ...inputs, apiVersion: schemaVersion, kind };
  try {
    new model(data).validate();
    return { resource, status: "valid" };
  } catch (err) {
    return { resource, status: "invalid", error: err instanceof Error ? err.message : String(err) };
  }
}
