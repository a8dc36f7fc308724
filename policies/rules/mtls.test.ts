import { describe, expect, it } from "vitest";
import { UNKNOWN } from "../../stacks/harness";
import { put } from "../testing/mutate";
import { check, messages } from "../testing/check";
import { recorded, unknown } from "../testing/fixtures";
import { deployment, destinationRule, envoyFilter, helmRelease, namespace, peerAuthentication } from "../testing/builders";
import { mtlsDestinationRule } from "./mtls-destination-rule";
import { mtlsEnvoyFilter } from "./mtls-envoy-filter";
import { mtlsMeshWideStrict } from "./mtls-mesh-wide-strict";
import { mtlsPeerAuthentication } from "./mtls-peer-authentication";
import { podOptsOut, sidecarInjection } from "./sidecar-injection";

const meshWide = peerAuthentication("default", "istio-system", { mtls: { mode: "STRICT" } });
const appNamespace = namespace("titanium", { "istio-injection": "enabled" });

describe("istio-envoy-filter-mtls", () => {
  const secureCookies = envoyFilter("titanium-secure-cookies");
  const patch = (edit: Record<string, unknown>) => ({ ...((secureCookies.inputs.spec as { configPatches: Record<string, unknown>[] }).configPatches[0]!), ...edit });
  it("passes an HTTP filter on the gateway (the platform's secure-cookies Lua filter) and on the sidecars' outbound side", async () => {
    expect((await check(mtlsEnvoyFilter, secureCookies)).findings).toEqual([]);
    expect((await check(mtlsEnvoyFilter, envoyFilter("outbound", [patch({ match: { context: "SIDECAR_OUTBOUND" } })]))).findings).toEqual([]);
  });
  it.each(["CLUSTER", "LISTENER", "FILTER_CHAIN", "NETWORK_FILTER", "TRANSPORT_SOCKET", "LISTENER_FILTER", "BOOTSTRAP"])("rejects a patch applying to %s", async (applyTo) => {
    expect(messages(await check(mtlsEnvoyFilter, envoyFilter("f", [patch({ applyTo })])))).toEqual([
      `istio-system/f configPatches[0] applies to ${applyTo}, which carries the mesh's mTLS or may (only HTTP_FILTER, HTTP_ROUTE, ROUTE_CONFIGURATION, VIRTUAL_HOST, EXTENSION_CONFIG may be patched)`,
    ]);
  });
  it("rejects a patch of the inbound sidecar listeners: SIDECAR_INBOUND, ANY, or no context (ANY)", async () => {
    for (const match of [{ context: "SIDECAR_INBOUND" }, { context: "ANY" }, undefined]) {
      expect(messages(await check(mtlsEnvoyFilter, envoyFilter("f", [patch({ match })]))), JSON.stringify(match)).toEqual([
        `istio-system/f configPatches[0] matches context ${match?.context ?? "ANY"}, which includes the inbound sidecar listeners that enforce STRICT mTLS (match GATEWAY or SIDECAR_OUTBOUND)`,
      ]);
    }
  });
  it("rejects a patch value holding a transport socket or TLS context, whatever it applies to", async () => {
    const value = { name: "envoy.filters.http.lua", transportSocket: { name: "envoy.transport_sockets.raw_buffer" } };
    const run = await check(mtlsEnvoyFilter, envoyFilter("f", [patch({ patch: { operation: "MERGE", value } }), patch({ patch: { operation: "MERGE", value: { common_tls_context: {} } } })]));
    expect(messages(run)).toEqual([
      "istio-system/f configPatches[0] sets Envoy's TLS configuration (a transport_socket or tls_context in its patch value)",
      "istio-system/f configPatches[1] sets Envoy's TLS configuration (a transport_socket or tls_context in its patch value)",
    ]);
  });
  it("reports a patch unknown in preview instead of passing it", async () => {
    const run = await check(mtlsEnvoyFilter, envoyFilter("f", [patch({ applyTo: unknown })]));
    expect(run.findings).toEqual([expect.objectContaining({ kind: "unknown", level: "advisory" })]);
  });
});

describe("istio-peer-authentication-strict", () => {
  it("passes STRICT and UNSET (inherit) modes", async () => {
    const run = await check(mtlsPeerAuthentication, [meshWide, peerAuthentication("pg", "titanium", { selector: { matchLabels: { app: "pg" } }, mtls: { mode: "UNSET" } })]);
    expect(run.findings).toEqual([]);
  });
  it.each(["PERMISSIVE", "DISABLE"])("rejects mode %s", async (mode) => {
    const run = await check(mtlsPeerAuthentication, peerAuthentication("default", "titanium", { mtls: { mode } }));
    expect(run.findings).toHaveLength(1);
    expect(run.findings[0]).toMatchObject({ policy: "istio-peer-authentication-strict", level: "mandatory", kind: "violation" });
    expect(run.findings[0]!.message).toContain(`titanium/default sets mtls.mode ${mode}`);
  });
  it("rejects a port-level exception (the original disabled mTLS for Postgres and Redis)", async () => {
    const run = await check(mtlsPeerAuthentication, peerAuthentication("pg", "titanium", { mtls: { mode: "STRICT" }, portLevelMtls: { "5432": { mode: "DISABLE" } } }));
    expect(messages(run)).toEqual(["titanium/pg sets portLevelMtls[5432].mode DISABLE"]);
  });
  it("never passes silently when the mode is unknown in preview: advisory by default, a violation when configured", async () => {
    const pa = peerAuthentication("default", "titanium", { mtls: { mode: unknown } });
    const advisory = await check(mtlsPeerAuthentication, pa);
    expect(advisory.findings).toEqual([expect.objectContaining({ kind: "unknown", level: "advisory" })]);
    expect(advisory.findings[0]!.message).toMatch(/can't run policy 'istio-peer-authentication-strict'.*during preview: .* value at \.spec\.mtls\.mode/);
    const strict = await check(mtlsPeerAuthentication, pa, { config: { unknownValues: "violation" } });
    expect(strict.findings).toEqual([expect.objectContaining({ kind: "violation", level: "mandatory" })]);
    expect(strict.findings[0]!.message).toContain("keep this field a plain value");
  });
});

describe("istio-destination-rule-mtls", () => {
  it("passes ISTIO_MUTUAL in-mesh and SIMPLE towards an external host", async () => {
    const run = await check(mtlsDestinationRule, [
      destinationRule("user", "user-service.titanium.svc.cluster.local", { tls: { mode: "ISTIO_MUTUAL" } }),
      destinationRule("gsm", "secretmanager.googleapis.com", { tls: { mode: "SIMPLE" } }),
    ]);
    expect(run.findings).toEqual([]);
  });
  it.each([
    ["redis", { tls: { mode: "DISABLE" } }, {}, "trafficPolicy.tls.mode DISABLE"],
    ["postgres.titanium.svc.cluster.local", { portLevelSettings: [{ port: { number: 5432 }, tls: { mode: "SIMPLE" } }] }, {}, "portLevelSettings[port 5432].tls.mode SIMPLE"],
    ["blog-service.titanium.svc", {}, { subsets: [{ name: "v2", trafficPolicy: { tls: { mode: "DISABLE" } } }] }, "subsets[v2].trafficPolicy.tls.mode DISABLE"],
  ])("rejects weak TLS towards in-mesh host %s", async (host, trafficPolicy, extra, expected) => {
    const run = await check(mtlsDestinationRule, destinationRule("dr", host, trafficPolicy, extra));
    expect(messages(run)).toHaveLength(1);
    expect(messages(run)[0]).toContain(expected);
  });
  it.each([
    ["redis.titanium", "DISABLE"],
    ["redis.titanium", "SIMPLE"],
    ["postgres.titanium.svc", "DISABLE"],
    ["postgres.titanium.svc", "SIMPLE"],
    ["*.titanium", "DISABLE"],
    ["cache.titanium-data", "SIMPLE"],
    ["Redis.Titanium.", "DISABLE"],
  ])("treats the short name %s of a mesh namespace as in the mesh (TLS %s is a violation) without any configured pattern", async (host, mode) => {
    const run = await check(mtlsDestinationRule, destinationRule("dr", host, { tls: { mode } }));
    expect(messages(run)).toEqual([`titanium/dr (host ${host}, in the mesh) sets trafficPolicy.tls.mode ${mode}`]);
  });
  it("rejects MUTUAL towards an in-mesh host (client certificates of its own instead of the mesh's identity), and leaves it to external hosts", async () => {
    const mutual = { mode: "MUTUAL", clientCertificate: "/etc/certs/client.pem", privateKey: "/etc/certs/key.pem", caCertificates: "/etc/certs/ca.pem" };
    expect(messages(await check(mtlsDestinationRule, destinationRule("dr", "redis.titanium.svc.cluster.local", { tls: mutual })))).toEqual([
      "titanium/dr (host redis.titanium.svc.cluster.local, in the mesh) sets trafficPolicy.tls.mode MUTUAL",
    ]);
    expect(messages(await check(mtlsDestinationRule, destinationRule("dr", "postgres", { portLevelSettings: [{ port: { number: 5432 }, tls: mutual }] })))).toEqual([
      "titanium/dr (host postgres, in the mesh) sets trafficPolicy.portLevelSettings[port 5432].tls.mode MUTUAL",
    ]);
    expect((await check(mtlsDestinationRule, destinationRule("dr", "partner.example.com", { tls: mutual }))).findings).toEqual([]);
  });
  it.each(["*.local", "*.cluster.local", "*.svc.cluster.local"])("treats the mesh-wide wildcard %s as in the mesh (DISABLE there turns mTLS off for every service)", async (host) => {
    const run = await check(mtlsDestinationRule, destinationRule("dr", host, { tls: { mode: "DISABLE" } }));
    expect(messages(run)).toEqual([`titanium/dr (host ${host}, in the mesh) sets trafficPolicy.tls.mode DISABLE`]);
  });
  it.each(["storage.googleapis.com", "example.com", "redis.other-team", "api.stripe.com", "*.googleapis.com", "*.com"])("leaves the external host %s alone (SIMPLE and DISABLE are its business)", async (host) => {
    for (const mode of ["SIMPLE", "DISABLE"]) {
      expect((await check(mtlsDestinationRule, destinationRule("dr", host, { tls: { mode } }))).findings).toEqual([]);
    }
  });
  it("learns the mesh namespaces from meshNamespaces, and extra hosts from meshHostPatterns", async () => {
    const other = destinationRule("dr", "redis.other-team", { tls: { mode: "DISABLE" } });
    expect((await check(mtlsDestinationRule, other, { config: { meshNamespaces: ["titanium", "other-team"] } })).findings).toHaveLength(1);
    const internal = destinationRule("dr", "db.internal.example", { tls: { mode: "SIMPLE" } });
    expect((await check(mtlsDestinationRule, internal)).findings).toEqual([]);
    expect((await check(mtlsDestinationRule, internal, { config: { meshHostPatterns: ["*.internal.example"] } })).findings).toHaveLength(1);
  });
});

describe("istio-mesh-wide-strict-mtls (stack)", () => {
  it("counts a selector-less PeerAuthentication without metadata.namespace in its provider's default namespace", async () => {
    const provider = recorded("pulumi:providers:kubernetes", "mesh-k8s", { kubeconfig: "{}", namespace: "istio-system" }, { custom: true });
    const second = peerAuthentication("legacy", "istio-system", { mtls: { mode: "UNSET" } });
    delete (second.inputs.metadata as Record<string, unknown>).namespace;
    second.provider = `${provider.urn}::provider-id`;
    expect(messages(await check(mtlsMeshWideStrict, [appNamespace, meshWide, provider, second]))).toEqual([
      '2 mesh-wide PeerAuthentications (no selector) in namespace "istio-system" (istio-system/default, legacy): Istio applies only the oldest, so the mesh\'s mode depends on creation order; keep exactly one, with mode STRICT',
    ]);
  });
  it("passes with a selector-less STRICT PeerAuthentication in istio-system", async () => {
    const run = await check(mtlsMeshWideStrict, [appNamespace, meshWide]);
    expect(run.findings).toEqual([]);
  });
  it.each([
    ["missing", [appNamespace]],
    ["in the wrong namespace", [appNamespace, peerAuthentication("default", "titanium", { mtls: { mode: "STRICT" } })]],
    ["with a selector", [appNamespace, peerAuthentication("default", "istio-system", { selector: { matchLabels: { app: "x" } }, mtls: { mode: "STRICT" } })]],
    ["PERMISSIVE", [appNamespace, peerAuthentication("default", "istio-system", { mtls: { mode: "PERMISSIVE" } })]],
  ])("fails when the mesh-wide policy is %s", async (_label, resources) => {
    const run = await check(mtlsMeshWideStrict, resources);
    expect(run.findings).toEqual([expect.objectContaining({ level: "mandatory", kind: "violation" })]);
    expect(run.findings[0]!.message).toContain('no mesh-wide STRICT PeerAuthentication in namespace "istio-system"');
  });
  it.each([
    ["UNSET", { mtls: { mode: "UNSET" } }],
    ["STRICT as well", { mtls: { mode: "STRICT" } }],
    ["with an empty selector (it selects every workload)", { selector: { matchLabels: {} }, mtls: { mode: "PERMISSIVE" } }],
  ])("fails a second selector-less PeerAuthentication in istio-system, %s: Istio applies the older one", async (_label, spec) => {
    const second = peerAuthentication("legacy", "istio-system", spec);
    expect(messages(await check(mtlsMeshWideStrict, [appNamespace, meshWide, second]))).toEqual([
      '2 mesh-wide PeerAuthentications (no selector) in namespace "istio-system" (istio-system/default, istio-system/legacy): Istio applies only the oldest, so the mesh\'s mode depends on creation order; keep exactly one, with mode STRICT',
    ]);
    // A selector, or another namespace, makes it no mesh-wide policy.
    const workload = peerAuthentication("legacy", "istio-system", { selector: { matchLabels: { app: "x" } }, mtls: { mode: "UNSET" } });
    expect((await check(mtlsMeshWideStrict, [appNamespace, meshWide, workload, peerAuthentication("default", "titanium", { mtls: { mode: "UNSET" } })])).findings).toEqual([]);
  });
  it("names the mode of the one mesh-wide policy when it is not STRICT (UNSET inherits PERMISSIVE)", async () => {
    expect(messages(await check(mtlsMeshWideStrict, [appNamespace, peerAuthentication("default", "istio-system", { mtls: { mode: "UNSET" } })]))).toEqual([
      'no mesh-wide STRICT PeerAuthentication in namespace "istio-system": its selector-less one, istio-system/default, has mode "UNSET"',
    ]);
    expect(messages(await check(mtlsMeshWideStrict, [appNamespace, peerAuthentication("default", "istio-system", {})]))).toEqual([
      'no mesh-wide STRICT PeerAuthentication in namespace "istio-system": its selector-less one, istio-system/default, has mode "UNSET"',
    ]);
  });
  it("passes when another PeerAuthentication is unknown in preview only where it cannot be a second mesh-wide one", async () => {
    // Its namespace is unknown but its selector is known: it is no mesh-wide policy, wherever it lives.
    const selected = peerAuthentication("db", "titanium", { selector: { matchLabels: { app: "postgres" } }, mtls: { mode: "STRICT" } });
    put(selected, "metadata.namespace", UNKNOWN);
    // Its mode is unknown but its namespace is not the root one: it cannot matter either.
    const elsewhere = peerAuthentication("db", "titanium", { mtls: { mode: UNKNOWN } });
    for (const unknownValues of ["advisory", "violation"]) {
      expect((await check(mtlsMeshWideStrict, [appNamespace, meshWide, selected, elsewhere], { config: { unknownValues } })).findings, unknownValues).toEqual([]);
    }
    // Selector-less with an unknown namespace: it may be a second mesh-wide policy, so the outcome is undecided, and says so.
    const other = peerAuthentication("db", "titanium", { mtls: { mode: "STRICT" } });
    put(other, "metadata.namespace", UNKNOWN);
    const undecided = await check(mtlsMeshWideStrict, [appNamespace, meshWide, other], { config: { unknownValues: "violation" } });
    expect(messages(undecided)).toEqual([expect.stringContaining("cannot be checked")]);
    expect(messages(await check(mtlsMeshWideStrict, [appNamespace, other], { config: { unknownValues: "violation" } }))).toEqual([expect.stringContaining("cannot be checked")]);
  });
  it("fails istiod values that move the mesh's root namespace away from the policy's (the PeerAuthentication there is then no longer mesh-wide)", async () => {
    const istiod = (values: Record<string, unknown>) => helmRelease("istiod", "istiod", values);
    expect(messages(await check(mtlsMeshWideStrict, [appNamespace, meshWide, istiod({ meshConfig: { rootNamespace: "istio-config" } })]))).toEqual([
      'istiod\'s values make "istio-config" the mesh\'s root namespace (meshConfig.rootNamespace), not "istio-system": a selector-less PeerAuthentication in "istio-system" covers only that namespace',
    ]);
    // The chart takes the root namespace from global.istioNamespace when meshConfig does not set it.
    expect(messages(await check(mtlsMeshWideStrict, [appNamespace, meshWide, istiod({ global: { istioNamespace: "mesh" } })]))).toEqual([
      'istiod\'s values make "mesh" the mesh\'s root namespace (global.istioNamespace), not "istio-system": a selector-less PeerAuthentication in "istio-system" covers only that namespace',
    ]);
    for (const ok of [istiod({}), istiod({ meshConfig: { rootNamespace: "istio-system" }, global: { istioNamespace: "elsewhere" } }), istiod({ global: { istioNamespace: "istio-system" } })]) {
      expect((await check(mtlsMeshWideStrict, [appNamespace, meshWide, ok])).findings).toEqual([]);
    }
    // A root namespace unknown in preview is reported, not passed.
    const hidden = await check(mtlsMeshWideStrict, [appNamespace, meshWide, istiod({ meshConfig: { rootNamespace: unknown } })]);
    expect(hidden.findings).toEqual([expect.objectContaining({ kind: "unknown" })]);
    // A stack whose root namespace is another one says so in the policy's config, and the values must agree.
    const moved = peerAuthentication("default", "istio-config", { mtls: { mode: "STRICT" } });
    expect((await check(mtlsMeshWideStrict, [appNamespace, moved, istiod({ meshConfig: { rootNamespace: "istio-config" } })], { config: { rootNamespace: "istio-config" } })).findings).toEqual([]);
  });
  it("does not apply to a stack without Kubernetes objects", async () => {
    const run = await check(mtlsMeshWideStrict, []);
    expect(run.findings).toEqual([]);
    expect(run.notApplicable).toEqual([{ policy: "istio-mesh-wide-strict-mtls", reason: "the stack creates no Kubernetes objects" }]);
  });
});

describe("istio-sidecar-injection (stack)", () => {
  const api = deployment("api-gateway");
  it("passes an injected application namespace (label or revision) with its workloads", async () => {
    expect((await check(sidecarInjection, [appNamespace, api])).findings).toEqual([]);
    expect((await check(sidecarInjection, [namespace("titanium", { "istio.io/rev": "default" }), api])).findings).toEqual([]);
    const revisions = { injectionRevisions: ["default", "stable"] };
    expect((await check(sidecarInjection, [namespace("titanium", { "istio.io/rev": "stable" }), api], { config: revisions })).findings).toEqual([]);
  });
  it("fails a namespace asking for a revision that is not installed (its webhook never fires)", async () => {
    expect(messages(await check(sidecarInjection, [namespace("titanium", { "istio.io/rev": "canary" }), api]))).toEqual([
      'namespace "titanium" asks for Istio revision "canary", which is not installed (default): no sidecar would be injected',
    ]);
  });
  it("fails a namespace without injection, one with injection disabled, and a missing namespace", async () => {
    expect(messages(await check(sidecarInjection, [namespace("titanium"), api]))).toEqual([
      'namespace "titanium" does not enable sidecar injection (label istio-injection: enabled)',
    ]);
    expect(messages(await check(sidecarInjection, [namespace("titanium", { "istio-injection": "disabled", "istio.io/rev": "x" }), api]))).toHaveLength(1);
    expect(messages(await check(sidecarInjection, [api]))).toEqual([
      "no application namespace (matching titanium, titanium-*) is created by the stack",
      'titanium/api-gateway runs in application namespace "titanium", which the stack does not create, so its injection cannot be verified',
    ]);
  });
  it("fails a workload that opts out of injection", async () => {
    const optOut = deployment("redis", { podAnnotations: { "sidecar.istio.io/inject": "false" } });
    const run = await check(sidecarInjection, [appNamespace, optOut]);
    expect(messages(run)).toEqual(['titanium/redis opts out of sidecar injection (sidecar.istio.io/inject: "false")']);
    expect(run.findings[0]!.urn).toBe(optOut.urn);
  });
  it("places a workload without metadata.namespace in its Kubernetes provider's default namespace, as the provider does", async () => {
    const provider = recorded("pulumi:providers:kubernetes", "apps-k8s", { kubeconfig: "{}", namespace: "titanium" }, { custom: true });
    const optOut = deployment("redis", { podAnnotations: { "sidecar.istio.io/inject": "false" } });
    delete (optOut.inputs.metadata as Record<string, unknown>).namespace;
    optOut.provider = `${provider.urn}::provider-id`;
    expect(messages(await check(sidecarInjection, [appNamespace, provider, optOut]))).toEqual(['redis opts out of sidecar injection (sidecar.istio.io/inject: "false")']);
    // Without a provider namespace it lands in `default`, which is no application namespace.
    const inDefault = structuredClone(optOut);
    inDefault.provider = undefined;
    expect((await check(sidecarInjection, [appNamespace, inDefault])).findings).toEqual([]);
  });
  it("places a Helm release without a namespace in its Kubernetes provider's namespace too", async () => {
    const provider = recorded("pulumi:providers:kubernetes", "apps-k8s", { kubeconfig: "{}", namespace: "titanium" }, { custom: true });
    const release = helmRelease("cache", "redis", {}, "");
    release.inputs.valueYamlFiles = ["values.yaml"];
    release.provider = `${provider.urn}::provider-id`;
    // In the application namespace, a values file the policy cannot read is refused.
    expect(messages(await check(sidecarInjection, [appNamespace, provider, release]))).toEqual([
      expect.stringContaining('chart "redis" sets valueYamlFiles'),
    ]);
    const inDefault = structuredClone(release);
    inDefault.provider = undefined;
    expect((await check(sidecarInjection, [appNamespace, inDefault])).findings).toEqual([]);
  });
  it("reads a pod's own choice as istiod does: the label over the annotation, anything but yes/true/on/y (any case) skips injection", async () => {
    for (const no of ["false", "False", "no", "off", "0", "n", "disabled"]) expect(podOptsOut({}, { "sidecar.istio.io/inject": no }), no).toBe(no);
    for (const yes of ["true", "TRUE", "yes", "on", "y", ""]) expect(podOptsOut({ "sidecar.istio.io/inject": yes }, {}), yes).toBeUndefined();
    // The label wins: a "true" label keeps a "false" annotation from mattering, and the other way round.
    expect(podOptsOut({ "sidecar.istio.io/inject": "true" }, { "sidecar.istio.io/inject": "false" })).toBeUndefined();
    expect(podOptsOut({ "sidecar.istio.io/inject": "off" }, { "sidecar.istio.io/inject": "true" })).toBe("off");
    const byLabel = deployment("redis", { podLabels: { "sidecar.istio.io/inject": "No" } });
    expect(messages(await check(sidecarInjection, [appNamespace, byLabel]))).toEqual(['titanium/redis opts out of sidecar injection (sidecar.istio.io/inject: "No")']);
  });
  it("fails istiod values that stop namespace-wide injection, and passes the chart's defaults", async () => {
    const api = deployment("api-gateway");
    expect(messages(await check(sidecarInjection, [appNamespace, api, helmRelease("istiod", "istiod", { global: { proxy: { autoInject: "enabled" } }, sidecarInjectorWebhook: { neverInjectSelector: [] } })]))).toEqual([]);
    const off = helmRelease("istiod", "istiod", {
      global: { proxy: { autoInject: "disabled" } },
      sidecarInjectorWebhook: { neverInjectSelector: [{ matchLabels: { app: "redis" } }] },
    });
    expect(messages(await check(sidecarInjection, [appNamespace, api, off]))).toEqual([
      'istiod\'s values set global.proxy.autoInject to "disabled": pods are injected only when they ask for it, whatever the namespace\'s label',
      'istiod\'s values set sidecarInjectorWebhook.neverInjectSelector to [{"matchLabels":{"app":"redis"}}]: pods matching it are never injected, whatever the namespace\'s label',
    ]);
    // Another chart's values with the same keys are not istiod's.
    expect(messages(await check(sidecarInjection, [appNamespace, api, helmRelease("gateway", "gateway", { global: { proxy: { autoInject: "disabled" } } })]))).toEqual([]);
  });
  it("fails a workload that turns its sidecar's traffic capture off (interceptionMode NONE), by annotation or in its proxy config", async () => {
    const none = deployment("postgres", { podAnnotations: { "sidecar.istio.io/interceptionMode": "NONE" } });
    const inConfig = deployment("redis", { podAnnotations: { "proxy.istio.io/config": '{"holdApplicationUntilProxyStarts":true,"interceptionMode":"NONE"}' } });
    const inYaml = deployment("cache", { podAnnotations: { "proxy.istio.io/config": "holdApplicationUntilProxyStarts: true\ninterceptionMode: NONE\n" } });
    expect(messages(await check(sidecarInjection, [appNamespace, none, inConfig, inYaml]))).toEqual([
      'titanium/postgres turns off its sidecar\'s traffic capture (sidecar.istio.io/interceptionMode: "NONE"; only REDIRECT or TPROXY capture)',
      'titanium/redis turns off its sidecar\'s traffic capture (interceptionMode "NONE" in proxy.istio.io/config; only REDIRECT or TPROXY capture)',
      'titanium/cache turns off its sidecar\'s traffic capture (interceptionMode "NONE" in proxy.istio.io/config; only REDIRECT or TPROXY capture)',
    ]);
    // REDIRECT and TPROXY capture; the annotation wins over the proxy config, as in istiod's template.
    const capturing = [
      deployment("a", { podAnnotations: { "sidecar.istio.io/interceptionMode": "TPROXY" } }),
      deployment("b", { podAnnotations: { "proxy.istio.io/config": '{"interceptionMode":"REDIRECT","holdApplicationUntilProxyStarts":true}' } }),
      deployment("c", { podAnnotations: { "sidecar.istio.io/interceptionMode": "REDIRECT", "proxy.istio.io/config": "interceptionMode: NONE" } }),
    ];
    expect((await check(sidecarInjection, [appNamespace, ...capturing])).findings).toEqual([]);
    // Outside the application namespaces the policy does not look (the platform's own pods).
    expect((await check(sidecarInjection, [appNamespace, deployment("grafana", { namespace: "monitoring", podAnnotations: { "sidecar.istio.io/interceptionMode": "NONE" } })])).findings).toEqual([]);
  });
  it("fails istiod values that let inbound traffic past every sidecar", async () => {
    const api = deployment("api-gateway");
    const bypass = helmRelease("istiod", "istiod", {
      global: { proxy: { excludeInboundPorts: "5432", includeInboundPorts: "8080" } },
      meshConfig: { defaultConfig: { interceptionMode: "NONE" } },
    });
    expect(messages(await check(sidecarInjection, [appNamespace, api, bypass]))).toEqual([
      'istiod\'s values set global.proxy.excludeInboundPorts to "5432": those inbound ports bypass every sidecar, whatever the namespace\'s label',
      'istiod\'s values set global.proxy.includeInboundPorts to "8080": the sidecars capture only those inbound ports, whatever the namespace\'s label',
      'istiod\'s values set meshConfig.defaultConfig.interceptionMode to "NONE": the sidecars capture no traffic, whatever the namespace\'s label',
    ]);
    const defaults = helmRelease("istiod", "istiod", { global: { proxy: { excludeInboundPorts: "", includeInboundPorts: "*" } }, meshConfig: { defaultConfig: { interceptionMode: "REDIRECT" } } });
    expect((await check(sidecarInjection, [appNamespace, api, defaults])).findings).toEqual([]);
  });
  it("fails a workload that excludes a network interface from capture, or asks for injection templates without the sidecar", async () => {
    const iface = deployment("postgres", { podAnnotations: { "traffic.sidecar.istio.io/excludeInterfaces": "eth0" } });
    const grpc = deployment("redis", { podAnnotations: { "inject.istio.io/templates": "grpc-agent" } });
    const gateway = deployment("cache", { podAnnotations: { "inject.istio.io/templates": " gateway " } });
    expect(messages(await check(sidecarInjection, [appNamespace, iface, grpc, gateway]))).toEqual([
      'titanium/postgres lets traffic on interface(s) "eth0" bypass its sidecar (traffic.sidecar.istio.io/excludeInterfaces)',
      'titanium/redis is injected with template(s) "grpc-agent" instead of the sidecar (inject.istio.io/templates; the sidecar template is the one that captures traffic)',
      'titanium/cache is injected with template(s) " gateway " instead of the sidecar (inject.istio.io/templates; the sidecar template is the one that captures traffic)',
    ]);
    const withSidecar = deployment("a", { podAnnotations: { "inject.istio.io/templates": "sidecar,spire", "traffic.sidecar.istio.io/excludeInterfaces": "" } });
    expect((await check(sidecarInjection, [appNamespace, withSidecar])).findings).toEqual([]);
  });
  it("fails istiod values whose default injection templates leave the sidecar out", async () => {
    const istiod = (defaultTemplates: string[]) => helmRelease("istiod", "istiod", { sidecarInjectorWebhook: { defaultTemplates } });
    expect(messages(await check(sidecarInjection, [appNamespace, api, istiod(["grpc-agent"])]))).toEqual([
      'istiod\'s values set sidecarInjectorWebhook.defaultTemplates to ["grpc-agent"]: pods get no sidecar template, so nothing captures their traffic, whatever the namespace\'s label',
    ]);
    for (const ok of [istiod([]), istiod(["sidecar", "spire"])]) expect((await check(sidecarInjection, [appNamespace, api, ok])).findings).toEqual([]);
  });
  it("judges a Helm release's pods in an application namespace by the injection labels and annotations its values give them", async () => {
    const release = (values: Record<string, unknown>, ns = "titanium") => helmRelease("search", "opensearch", values, ns);
    const optOut = release({ podAnnotations: { "sidecar.istio.io/inject": "false" }, dashboards: { podLabels: { "sidecar.istio.io/inject": "no" } } });
    expect(messages(await check(sidecarInjection, [appNamespace, api, optOut]))).toEqual([
      'chart "opensearch" (namespace titanium): values podAnnotations opts out of sidecar injection (sidecar.istio.io/inject: "false")',
      'chart "opensearch" (namespace titanium): values dashboards.podLabels opts out of sidecar injection (sidecar.istio.io/inject: "no")',
    ]);
    const bypass = release({ master: { podAnnotations: { "traffic.sidecar.istio.io/excludeInboundPorts": "9200", "sidecar.istio.io/interceptionMode": "NONE" } } });
    expect(messages(await check(sidecarInjection, [appNamespace, api, bypass]))).toEqual([
      'chart "opensearch" (namespace titanium): values master.podAnnotations lets inbound ports 9200 bypass its sidecar (traffic.sidecar.istio.io/excludeInboundPorts)',
      'chart "opensearch" (namespace titanium): values master.podAnnotations turns off its sidecar\'s traffic capture (sidecar.istio.io/interceptionMode: "NONE"; only REDIRECT or TPROXY capture)',
    ]);
    // Outside the application namespaces (the platform's charts) the values are not the policy's business; opting in is fine.
    expect((await check(sidecarInjection, [appNamespace, api, release({ podAnnotations: { "sidecar.istio.io/inject": "false" } }, "monitoring")])).findings).toEqual([]);
    expect((await check(sidecarInjection, [appNamespace, api, release({ podLabels: { "sidecar.istio.io/inject": "true" } })])).findings).toEqual([]);
    // Values files could opt out where the values cannot show it.
    const opaque = release({});
    opaque.inputs.valueYamlFiles = [{ path: "./search.yaml" }];
    expect(messages(await check(sidecarInjection, [appNamespace, api, opaque]))).toEqual([
      'chart "opensearch" sets valueYamlFiles, which change what it renders beyond its values, so this policy cannot judge it: pass every value in `values` and use no post-renderer',
    ]);
  });
  it("fails a workload whose inbound ports bypass its sidecar, but not an outbound exclusion", async () => {
    const bypass = deployment("postgres", { podAnnotations: { "traffic.sidecar.istio.io/excludeInboundPorts": "5432" } });
    const narrowed = deployment("redis", { podAnnotations: { "traffic.sidecar.istio.io/includeInboundPorts": "" } });
    const outbound = deployment("backup", { podAnnotations: { "traffic.sidecar.istio.io/excludeOutboundIPRanges": "169.254.169.254/32" } });
    expect(messages(await check(sidecarInjection, [appNamespace, bypass, narrowed, outbound]))).toEqual([
      "titanium/postgres lets inbound ports 5432 bypass its sidecar (traffic.sidecar.istio.io/excludeInboundPorts)",
      'titanium/redis narrows the sidecar\'s inbound capture to "" (traffic.sidecar.istio.io/includeInboundPorts)',
    ]);
  });
});
