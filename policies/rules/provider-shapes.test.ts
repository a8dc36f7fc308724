/**
 * Shapes the providers really give policies that the pack once misjudged: each test shows a violating
 * resource caught (or a compliant one passed) in the form `@pulumi/gcp` and `@pulumi/kubernetes`
 * register it.
 */
import { describe, expect, it } from "vitest";
import { UNKNOWN, type RecordedResource } from "../../stacks/harness";
import type { TitaniumPolicy } from "../lib/policy";
import { container, deployment, firewall, helmRelease, instance, instanceTemplate, namespace, peerAuthentication } from "../testing/builders";
import { check, messages } from "../testing/check";
import { recorded, unknown } from "../testing/fixtures";
import { put } from "../testing/mutate";
import { noChartExtraObjects } from "./chart-extra-objects";
import { gcpFirewallNoWorldAdmin, opensToInternet } from "./gcp-firewall";
import { gcpOsLogin } from "./gcp-os-login";
import { gcpServiceAccount } from "./gcp-service-account";
import { gcpShieldedVm } from "./gcp-shielded-vm";
import { noHostNamespaces } from "./host-namespaces";
import { hostPathAllowList } from "./host-path";
import { imagePinned, imageProblem } from "./image-pinned";
import { noLoadBalancerService } from "./no-load-balancer";
import { noPrivilege } from "./no-privilege";
import { recommendedLabels } from "./recommended-labels";
import { resourceLimitsPolicy } from "./resource-limits";
import { sidecarInjection } from "./sidecar-injection";

const fromTemplate = (inputs: Record<string, unknown>) =>
  recorded("gcp:compute/instanceFromTemplate:InstanceFromTemplate", "vm", { sourceInstanceTemplate: "t", zone: "us-central1-a", ...inputs });
const group = (allInstancesConfig: Record<string, unknown>) =>
  recorded("gcp:compute/instanceGroupManager:InstanceGroupManager", "agents", { zone: "us-central1-a", allInstancesConfig });

describe("GCP VM policies: a whole block unknown in preview is a violation in prod, never downgraded to the SDK's advisory", () => {
  const shielded = { enableSecureBoot: true, enableVtpm: true, enableIntegrityMonitoring: true };
  const account = { email: "agents@p.iam.gserviceaccount.com", scopes: ["logging-write"] };
  it.each<[string, TitaniumPolicy, () => RecordedResource, string]>([
    ["an instance's shieldedInstanceConfig", gcpShieldedVm, () => instance("server-0"), "shieldedInstanceConfig"],
    ["a template's shieldedInstanceConfig", gcpShieldedVm, () => instanceTemplate("agents"), "shieldedInstanceConfig"],
    ["an InstanceFromTemplate's shieldedInstanceConfig", gcpShieldedVm, () => fromTemplate({ shieldedInstanceConfig: shielded }), "shieldedInstanceConfig"],
    ["a group's allInstancesConfig (shielded VM)", gcpShieldedVm, () => group({ metadata: { "enable-oslogin": "TRUE" } }), "allInstancesConfig"],
    ["an InstanceFromTemplate's serviceAccount", gcpServiceAccount, () => fromTemplate({ serviceAccount: account }), "serviceAccount"],
    ["a group's allInstancesConfig (service account)", gcpServiceAccount, () => group({ metadata: { "enable-oslogin": "TRUE" } }), "allInstancesConfig"],
    ["a group's allInstancesConfig (OS Login)", gcpOsLogin, () => group({ metadata: { "enable-oslogin": "TRUE" } }), "allInstancesConfig"],
  ])("%s", async (_what, policy, build, path) => {
    const r = build();
    expect((await check(policy, r, { level: "mandatory", config: { unknownValues: "violation" } })).findings).toEqual([]);
    put(r, path, UNKNOWN);
    const strict = await check(policy, r, { level: "mandatory", config: { unknownValues: "violation" } });
    expect(strict.findings.map((f) => [f.kind, f.level])).toEqual([["violation", "mandatory"]]);
    expect(strict.findings[0]!.message).toContain(`.${path} can't be known during preview`);
  });
});

describe("helm.v3.Release inputs that change what it renders beyond `values`", () => {
  const sized = { requests: { cpu: "100m", memory: "128Mi" }, limits: { cpu: "1", memory: "512Mi" } };
  const istiod = (extra: Record<string, unknown>) => {
    const r = helmRelease("istiod", "istiod", { resources: sized, global: { proxy: { resources: sized } } });
    Object.assign(r.inputs, extra);
    return r;
  };
  // A values file as the SDK hands it to a policy (a FileAsset), and a post-renderer binary.
  const files = { valueYamlFiles: [{ path: "./istiod-values.yaml" }] };
  const post = { postrender: "./bin/patch-manifest" };
  const limits = resourceLimitsPolicy({ istiod: ["resources", "global.proxy.resources"] });
  const valuePolicies: TitaniumPolicy[] = [limits, noPrivilege, noHostNamespaces, hostPathAllowList, imagePinned, noLoadBalancerService, noChartExtraObjects];
  it.each(valuePolicies.map((p) => [p.name, p] as const))("%s refuses a release it cannot read, and still passes one it can", async (_name, policy) => {
    expect((await check(policy, istiod({}))).findings).toEqual([]);
    expect((await check(policy, istiod({ valueYamlFiles: [] }))).findings).toEqual([]);
    expect(messages(await check(policy, istiod(files)))).toEqual([
      'chart "istiod" sets valueYamlFiles, which change what it renders beyond its values, so this policy cannot judge it: pass every value in `values` and use no post-renderer',
    ]);
    expect(messages(await check(policy, istiod({ ...files, ...post })))).toEqual([
      'chart "istiod" sets valueYamlFiles, postrender, which change what it renders beyond its values, so this policy cannot judge it: pass every value in `values` and use no post-renderer',
    ]);
    const unknownFiles = await check(policy, istiod({ valueYamlFiles: unknown }), { config: { unknownValues: "violation" } });
    expect(unknownFiles.findings.map((f) => f.message)).toEqual([expect.stringContaining(".valueYamlFiles can't be known during preview")]);
  });
  it("istio-sidecar-injection: istiod's values files could turn injection off, so they are refused too", async () => {
    const stack = (r: RecordedResource) => [namespace("titanium", { "istio-injection": "enabled" }), peerAuthentication("default", "istio-system", { mtls: { mode: "STRICT" } }), r];
    expect((await check(sidecarInjection, stack(istiod({})))).findings).toEqual([]);
    expect(messages(await check(sidecarInjection, stack(istiod(post))))).toEqual([
      'chart "istiod" sets postrender, which change what it renders beyond its values, so this policy cannot judge it: pass every value in `values` and use no post-renderer',
    ]);
  });
});

describe("k8s-recommended-labels: Kubernetes components are no objects of their own", () => {
  it("passes the component resources of helm.v3.Chart and kustomize (their objects are judged one by one)", async () => {
    const components = ["kubernetes:helm.sh/v3:Chart", "kubernetes:helm.sh/v2:Chart", "kubernetes:kustomize:Directory", "kubernetes:kustomize/v2:Directory"].map((t) =>
      recorded(t, "platform", {}, { custom: false }),
    );
    expect((await check(recommendedLabels, components)).findings).toEqual([]);
    // An object of the chart is still judged.
    const child = deployment("api");
    put(child, "metadata.labels", {});
    expect(messages(await check(recommendedLabels, child))).toEqual([
      "titanium/api lacks label(s) app.kubernetes.io/name, app.kubernetes.io/part-of, app.kubernetes.io/managed-by",
    ]);
  });
});

describe("gcp-firewall-no-world-admin-ports: IPv6 ranges by their bits, not their spelling", () => {
  it("a range that only starts with the letters of the private prefix is the internet when its bits say so", () => {
    // fd::/1 is 0::/1 (the address is 00fd::), which holds all of 2000::/3.
    expect(["fd::/1", "fc::/2", "fdff::/3"].filter((c) => !opensToInternet(c))).toEqual([]);
    // Unique-local and link-local ranges are not the internet, at any size within them.
    expect(["fc00::/7", "fd00::/8", "fd12:3456:789a::/48", "fe80::/10", "FD00::/8"].filter(opensToInternet)).toEqual([]);
  });
  it("refuses SSH opened to fd::/1", async () => {
    expect(messages(await check(gcpFirewallNoWorldAdmin, firewall("bad", { sourceRanges: ["fd::/1"], allows: [{ protocol: "tcp", ports: ["22"] }] })))).toEqual([
      "rule bad opens tcp port(s) 22 to fd::/1",
    ]);
  });
});

describe("gcp-firewall-no-world-admin-ports: firewall policy rules", () => {
  const rule = (type: string, inputs: Record<string, unknown>) =>
    recorded(type, "rule", { firewallPolicy: "titanium", priority: 1000, direction: "INGRESS", action: "allow", ...inputs });
  const NETWORK = "gcp:compute/networkFirewallPolicyRule:NetworkFirewallPolicyRule";
  const world = (l4: Record<string, unknown>[]) => ({ match: { srcIpRanges: ["0.0.0.0/0"], layer4Configs: l4 } });
  it("refuses a network, regional or hierarchical policy rule opening an admin port or everything to the world", async () => {
    for (const type of [NETWORK, "gcp:compute/regionNetworkFirewallPolicyRule:RegionNetworkFirewallPolicyRule", "gcp:compute/firewallPolicyRule:FirewallPolicyRule"]) {
      expect(messages(await check(gcpFirewallNoWorldAdmin, rule(type, world([{ ipProtocol: "tcp", ports: ["6000-7000"] }])))), type).toEqual([
        "rule rule opens tcp port(s) 6443 to 0.0.0.0/0",
      ]);
    }
    expect(messages(await check(gcpFirewallNoWorldAdmin, rule(NETWORK, { match: { srcIpRanges: ["::/0"], layer4Configs: [{ ipProtocol: "all" }] } })))).toEqual([
      "rule rule opens all all ports to ::/0",
    ]);
    // Sources that are the internet by another name: a country, the INTERNET scope, none at all.
    expect(messages(await check(gcpFirewallNoWorldAdmin, rule(NETWORK, { match: { srcRegionCodes: ["US"], layer4Configs: [{ ipProtocol: "tcp", ports: ["22"] }] } })))).toEqual([
      "rule rule opens tcp port(s) 22 to region codes US",
    ]);
    expect(messages(await check(gcpFirewallNoWorldAdmin, rule(NETWORK, { match: { srcNetworkScope: "INTERNET", layer4Configs: [{ ipProtocol: "tcp", ports: ["10250"] }] } })))).toEqual([
      "rule rule opens tcp port(s) 10250 to the INTERNET network scope",
    ]);
    expect(messages(await check(gcpFirewallNoWorldAdmin, rule(NETWORK, { match: { layer4Configs: [{ ipProtocol: "tcp" }] } })))).toEqual([
      "rule rule opens all tcp ports to 0.0.0.0/0 (no source given)",
    ]);
  });
  it("refuses the same rule inside a policy created with its rules", async () => {
    const withRules = recorded("gcp:compute/networkFirewallPolicyWithRules:NetworkFirewallPolicyWithRules", "titanium", {
      rules: [
        { priority: 900, action: "allow", ruleName: "iap-ssh", match: { srcIpRanges: ["35.235.240.0/20"], layer4Configs: [{ ipProtocol: "tcp", ports: ["22"] }] } },
        { priority: 1000, action: "allow", ruleName: "api", match: { srcIpRanges: ["0.0.0.0/0"], layer4Configs: [{ ipProtocol: "tcp", ports: ["6443"] }] } },
      ],
    });
    expect(messages(await check(gcpFirewallNoWorldAdmin, withRules))).toEqual(["rule titanium/api opens tcp port(s) 6443 to 0.0.0.0/0"]);
  });
  it("passes deny, goto_next, egress, disabled and narrow rules", async () => {
    const ssh = [{ ipProtocol: "tcp", ports: ["22"] }];
    const ok = [
      rule(NETWORK, { action: "deny", ...world(ssh) }),
      rule(NETWORK, { action: "goto_next", ...world(ssh) }),
      rule(NETWORK, { direction: "EGRESS", match: { destIpRanges: ["0.0.0.0/0"], layer4Configs: ssh } }),
      rule(NETWORK, { disabled: true, ...world(ssh) }),
      rule(NETWORK, { match: { srcIpRanges: ["35.235.240.0/20"], layer4Configs: ssh } }),
      rule(NETWORK, world([{ ipProtocol: "tcp", ports: ["31080", "31443"] }])),
    ];
    expect((await check(gcpFirewallNoWorldAdmin, ok)).findings).toEqual([]);
  });
  it("reports a rule's sources unknown in preview", async () => {
    const run = await check(gcpFirewallNoWorldAdmin, rule(NETWORK, { match: { srcIpRanges: unknown, layer4Configs: [{ ipProtocol: "tcp", ports: ["22"] }] } }));
    expect(run.findings).toEqual([expect.objectContaining({ kind: "unknown" })]);
  });
});

describe("k8s-image-pinned: every digest algorithm the OCI image spec registers", () => {
  it("passes sha512 digests (with or without a tag) and still refuses a malformed one", async () => {
    expect(imageProblem(`ghcr.io/titanium-platform/titanium/api:main-1a2b3c4@sha512:${"b".repeat(128)}`)).toBeUndefined();
    expect(imageProblem(`registry.local:5000/api@sha512:${"b".repeat(128)}`)).toBeUndefined();
    expect(imageProblem(`api@sha512:${"b".repeat(64)}`)).toBe(`has a malformed digest (api@sha512:${"b".repeat(64)})`);
    const pinned = deployment("api", { containers: [container("api", { image: `ghcr.io/x/api@sha512:${"c".repeat(128)}` })] });
    expect((await check(imagePinned, pinned)).findings).toEqual([]);
  });
});
