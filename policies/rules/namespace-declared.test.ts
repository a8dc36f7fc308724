import { describe, expect, it } from "vitest";
import { UNKNOWN, type RecordedResource } from "../../stacks/harness";
import { isClusterScoped } from "../lib/k8s";
import { check, messages } from "../testing/check";
import { recorded } from "../testing/fixtures";
import { put } from "../testing/mutate";
import { resolvePolicyConfig } from "../testing/policy-config";
import { appLabels, deployment, helmRelease, namespace, service } from "../testing/builders";
import { namespaceDeclared } from "./namespace-declared";

/** The platform's namespaces, as the program creates them. */
const NAMESPACES = ["argocd", "external-secrets", "gce-pd-csi-driver", "istio-system", "logging", "monitoring", "titanium"].map((n) => namespace(n));
const CREATED = "argocd, external-secrets, gce-pd-csi-driver, istio-system, logging, monitoring, titanium";
const REMEDY = `which the stack does not create (it creates: ${CREATED}): no Pod Security level, sidecar injection or default-deny NetworkPolicy/AuthorizationPolicy applies there; use a Namespace the program creates (components/platform/namespaces.ts), create this one there, or add it to allowedNamespaces with a reason`;

/** A Kubernetes object of any type, the way the layers register one. */
function object(type: string, name: string, ns: string | undefined, extra: Record<string, unknown> = {}): RecordedResource {
  const [, group, version, kind] = /^kubernetes:([^/]+)\/([^:]+):(\w+)$/.exec(type)!;
  return recorded(type, name, { apiVersion: group === "core" ? version : `${group}/${version}`, kind, metadata: { name, ...(ns ? { namespace: ns } : {}), labels: appLabels(name) }, ...extra });
}

/** A Kubernetes provider with a default namespace, and an object created with it that names none. */
function viaProvider(providerNamespace: string | undefined, o: RecordedResource = service("redis")): RecordedResource[] {
  const provider = recorded("pulumi:providers:kubernetes", "apps-k8s", { kubeconfig: "{}", ...(providerNamespace ? { namespace: providerNamespace } : {}) });
  // An object names no namespace (a release's is removed by the caller).
  if (o.inputs.metadata) delete (o.inputs.metadata as Record<string, unknown>).namespace;
  o.provider = `${provider.urn}::provider-id`;
  return [provider, o];
}

describe("k8s-namespace-declared (stack)", () => {
  it("passes objects and releases in the namespaces the stack creates (the program's shapes)", async () => {
    const run = await check(namespaceDeclared, [
      ...NAMESPACES,
      deployment("api-gateway"),
      service("api-gateway"),
      helmRelease("platform-istio-istiod", "istiod", { pilot: {} }),
      helmRelease("platform-monitoring", "kube-prometheus-stack", { grafana: { enabled: true } }, "monitoring"),
      object("kubernetes:argoproj.io/v1alpha1:AppProjectPatch", "default", "argocd", { spec: {} }),
      ...viaProvider("titanium"),
    ]);
    expect(run.findings).toEqual([]);
  });

  it("rejects a Helm release installed into a namespace the stack does not create (a typo)", async () => {
    const run = await check(namespaceDeclared, [...NAMESPACES, helmRelease("platform-istio-istiod", "istiod", {}, "titanum")]);
    expect(run.findings).toEqual([
      expect.objectContaining({ policy: "k8s-namespace-declared", level: "mandatory", kind: "violation", name: "platform-istio-istiod" }),
    ]);
    expect(messages(run)).toEqual([`Helm release of chart "istiod" installs into namespace "titanum" (namespace), ${REMEDY}`]);
  });

  it("places a release without a namespace in its provider's namespace, else in default", async () => {
    const release = () => {
      const r = helmRelease("platform-loki", "loki", {}, "logging");
      delete r.inputs.namespace;
      return r;
    };
    expect(messages(await check(namespaceDeclared, [...NAMESPACES, release()]))).toEqual([
      `Helm release of chart "loki" installs into namespace "default" (no namespace and no provider namespace: Kubernetes' default), ${REMEDY}`,
    ]);
    expect((await check(namespaceDeclared, [...NAMESPACES, ...viaProvider("logging", release())])).findings).toEqual([]);
  });

  it("rejects a namespaceOverride in a release's values that moves the chart's or a bundled subchart's objects elsewhere", async () => {
    const run = await check(namespaceDeclared, [
      ...NAMESPACES,
      helmRelease("platform-monitoring", "kube-prometheus-stack", { grafana: { namespaceOverride: "grafana" }, namespaceOverride: "monitoring" }, "monitoring"),
      helmRelease("platform-logging-alloy", "alloy", { namespaceOverride: "kube-public" }, "logging"),
    ]);
    expect(messages(run)).toEqual([
      `Helm release of chart "kube-prometheus-stack" puts its grafana subchart's objects (values grafana.namespaceOverride) in namespace "grafana" (values grafana.namespaceOverride), ${REMEDY}`,
      `Helm release of chart "alloy" puts its objects (values namespaceOverride) in namespace "kube-public" (values namespaceOverride), ${REMEDY}`,
    ]);
  });

  it("rejects an object without metadata.namespace that its provider's namespace puts outside the stack's namespaces", async () => {
    expect(messages(await check(namespaceDeclared, [...NAMESPACES, ...viaProvider("kube-public")]))).toEqual([
      `Service redis is created in namespace "kube-public" (no metadata.namespace: its Kubernetes provider's namespace), ${REMEDY}`,
    ]);
    expect(messages(await check(namespaceDeclared, [...NAMESPACES, ...viaProvider(undefined, deployment("worker"))]))).toEqual([
      `Deployment worker is created in namespace "default" (no metadata.namespace and no provider namespace: Kubernetes' default), ${REMEDY}`,
    ]);
  });

  it("rejects an object whose metadata.namespace the stack does not create", async () => {
    expect(messages(await check(namespaceDeclared, [...NAMESPACES, deployment("api", { namespace: "default" })]))).toEqual([
      `Deployment default/api is created in namespace "default" (metadata.namespace), ${REMEDY}`,
    ]);
  });

  it.each([
    "kubernetes:core/v1:Namespace",
    "kubernetes:core/v1:PersistentVolume",
    "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole",
    "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding",
    "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition",
    "kubernetes:storage.k8s.io/v1:StorageClass",
    "kubernetes:storage.k8s.io/v1:CSIDriver",
    "kubernetes:scheduling.k8s.io/v1:PriorityClass",
    "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicy",
    "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicyBinding",
    "kubernetes:admissionregistration.k8s.io/v1:MutatingWebhookConfiguration",
    "kubernetes:admissionregistration.k8s.io/v1:ValidatingWebhookConfiguration",
    "kubernetes:networking.k8s.io/v1:IngressClass",
    "kubernetes:external-secrets.io/v1:ClusterSecretStore",
    "kubernetes:rbac.authorization.k8s.io/v1:ClusterRolePatch",
  ])("does not judge the cluster-scoped %s, even through a provider whose namespace the stack does not create", async (type) => {
    const o = object(type, "cluster-wide", undefined);
    expect(isClusterScoped(type)).toBe(true);
    expect((await check(namespaceDeclared, [...NAMESPACES, ...viaProvider("kube-public", o)])).findings).toEqual([]);
  });

  it("judges an object that names a namespace whatever its kind, and takes an unlisted kind as namespaced", async () => {
    const run = await check(namespaceDeclared, [
      ...NAMESPACES,
      object("kubernetes:rbac.authorization.k8s.io/v1:ClusterRole", "reader", "titanum"),
      // `Gateway` is namespaced (Istio's, and the Gateway API's; only GatewayClass is cluster-scoped).
      object("kubernetes:gateway.networking.k8s.io/v1:Gateway", "edge", undefined),
      object("kubernetes:gateway.networking.k8s.io/v1:GatewayClass", "istio", undefined),
    ]);
    expect(messages(run)).toEqual([
      `ClusterRole titanum/reader is created in namespace "titanum" (metadata.namespace), ${REMEDY}`,
      `Gateway edge is created in namespace "default" (no metadata.namespace and no provider namespace: Kubernetes' default), ${REMEDY}`,
    ]);
  });

  it("judges each item of a List by its own namespace and kind", async () => {
    const list = recorded("kubernetes:core/v1:ConfigMapList", "dashboards", {
      apiVersion: "v1",
      kind: "ConfigMapList",
      items: [
        { metadata: { name: "ok", namespace: "monitoring" }, data: {} },
        { metadata: { name: "stray", namespace: "kube-public" }, data: {} },
      ],
    });
    expect(messages(await check(namespaceDeclared, [...NAMESPACES, list]))).toEqual([`ConfigMap kube-public/stray is created in namespace "kube-public" (metadata.namespace), ${REMEDY}`]);
  });

  it("honours the allow-list, namespace by namespace", async () => {
    const coreDns = object("kubernetes:core/v1:ConfigMapPatch", "coredns", "kube-system", { data: {} });
    const stray = deployment("api", { namespace: "default" });
    const allowedNamespaces = [{ namespace: "kube-system", reason: "patches K3s' CoreDNS ConfigMap" }];
    expect(messages(await check(namespaceDeclared, [...NAMESPACES, coreDns, stray], { config: { allowedNamespaces } }))).toEqual([
      `Deployment default/api is created in namespace "default" (metadata.namespace), ${REMEDY}`,
    ]);
    // Empty by default: the program puts nothing in kube-system.
    expect(messages(await check(namespaceDeclared, [...NAMESPACES, coreDns]))).toEqual([`ConfigMapPatch kube-system/coredns is created in namespace "kube-system" (metadata.namespace), ${REMEDY}`]);
  });

  it("requires a reason for each allow-listed namespace", () => {
    const resolve = (allowedNamespaces: unknown) => () => resolvePolicyConfig([namespaceDeclared], { "k8s-namespace-declared": { allowedNamespaces } });
    expect(resolve([{ namespace: "kube-system" }])).toThrow(/allowedNamespaces\[0\]\.reason: required/);
    expect(resolve([{ namespace: "kube-system", reason: "CoreDNS" }])).not.toThrow();
  });

  it("never passes an unknown namespace in preview: advisory by default, a violation when configured", async () => {
    const stack = () => {
      const d = deployment("api");
      put(d, "metadata.namespace", UNKNOWN);
      return [...NAMESPACES, d];
    };
    const advisory = await check(namespaceDeclared, stack());
    expect(advisory.findings).toEqual([expect.objectContaining({ kind: "unknown", level: "advisory" })]);
    expect(advisory.findings[0]!.message).toMatch(/can't run policy 'k8s-namespace-declared'.*during preview: .* value at \.metadata\.namespace/);
    const strict = await check(namespaceDeclared, stack(), { config: { unknownValues: "violation" } });
    expect(strict.findings).toEqual([expect.objectContaining({ kind: "violation", level: "mandatory", name: "api" })]);
    expect(strict.findings[0]!.message).toContain("keep this field a plain value");
  });

  it("reports an unknown release namespace, provider namespace or namespaceOverride, each on its own", async () => {
    const release = helmRelease("platform-istio-istiod", "istiod", { namespaceOverride: UNKNOWN }, UNKNOWN as string);
    const [provider, svc] = viaProvider(UNKNOWN as string);
    const run = await check(namespaceDeclared, [...NAMESPACES, release, provider!, svc!, deployment("api", { namespace: "default" })], { config: { unknownValues: "violation" } });
    expect(run.findings.map((f) => [f.name, f.message])).toEqual([
      // The known violation is not hidden by the unknowns, reported after every check.
      ["api", `Deployment default/api is created in namespace "default" (metadata.namespace), ${REMEDY}`],
      ["platform-istio-istiod", expect.stringMatching(/^cannot be checked: .* value at \.namespace can't be known/)],
      ["platform-istio-istiod", expect.stringMatching(/^cannot be checked: .* value at \.values\.namespaceOverride can't be known/)],
      ["redis", expect.stringMatching(/^cannot be checked: .* value at \.namespace can't be known/)],
    ]);
  });

  it("does not count an object as undeclared while a Namespace's name is unknown (the Namespace is reported instead)", async () => {
    const pending = namespace("titanium-jobs");
    put(pending, "metadata.name", UNKNOWN);
    const run = await check(namespaceDeclared, [...NAMESPACES, pending, deployment("worker", { namespace: "titanium-jobs" })], { config: { unknownValues: "violation" } });
    expect(run.findings).toEqual([expect.objectContaining({ kind: "violation", name: "titanium-jobs" })]);
    expect(run.findings[0]!.message).toMatch(/^cannot be checked: .*metadata\.name/);
  });

  it("does not apply to a stack without Kubernetes objects", async () => {
    const run = await check(namespaceDeclared, []);
    expect(run.findings).toEqual([]);
    expect(run.notApplicable).toEqual([{ policy: "k8s-namespace-declared", reason: "the stack creates no Kubernetes objects" }]);
  });
});
