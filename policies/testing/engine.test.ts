import { describe, expect, it } from "vitest";
import { policies } from "../policies";
import { mtlsPeerAuthentication } from "../rules/mtls-peer-authentication";
import { mtlsMeshWideStrict } from "../rules/mtls-mesh-wide-strict";
import { peerAuthentication } from "./builders";
import { runPolicies } from "./engine";
import { fromRecorded, recorded } from "./fixtures";
import { loadStackPolicyConfig, PolicyConfigError, resolvePolicyConfig } from "./policy-config";

describe("policy config (as the CLI resolves --policy-pack-config)", () => {
  it("lets a policy's own entry win over `all`, which wins over the default level, and fills schema defaults", () => {
    const resolved = resolvePolicyConfig(policies, { all: "advisory", "k8s-image-pinned": { enforcementLevel: "mandatory" }, "istio-destination-rule-mtls": { meshDomain: "corp.local" } });
    expect(resolved.get("k8s-image-pinned")).toEqual({ level: "mandatory", props: { unknownValues: "advisory" } });
    expect(resolved.get("k8s-no-privilege")!.level).toBe("advisory");
    expect(resolved.get("istio-destination-rule-mtls")!.props).toEqual({ unknownValues: "advisory", meshDomain: "corp.local", meshNamespaces: ["titanium", "titanium-*"], meshHostPatterns: [] });
    expect(resolvePolicyConfig(policies, {}).get("k8s-no-privilege")!.level).toBe("mandatory");
  });
  it.each([
    [{ "no-such-policy": "mandatory" }, /^no-such-policy: not a policy of this pack/],
    [{ "k8s-no-privilege": "strict" }, /^k8s-no-privilege\.enforcementLevel: expected one of advisory, mandatory, remediate, disabled$/],
    [{ "k8s-no-privilege": { unknownValues: "ignore" } }, /^k8s-no-privilege\.unknownValues: expected one of "advisory", "violation"$/],
    [{ "k8s-host-path-allow-list": { allowed: [{ names: ["x"] }] } }, /^k8s-host-path-allow-list\.allowed\[0\]\.reason: required$/],
    [{ "gcp-firewall-no-world-admin-ports": { forbiddenPorts: ["22"] } }, /^gcp-firewall-no-world-admin-ports\.forbiddenPorts\[0\]: expected integer, got string$/],
    [{ "k8s-image-pinned": { tags: [] } }, /^k8s-image-pinned\.tags: not a setting of this policy/],
  ])("rejects %j naming the key", (file, message) => {
    expect(() => resolvePolicyConfig(policies, file)).toThrow(PolicyConfigError);
    expect(() => resolvePolicyConfig(policies, file)).toThrow(message);
  });
  it("reads valid dev and prod configs: prod is stricter than dev wherever they differ", () => {
    const dev = resolvePolicyConfig(policies, loadStackPolicyConfig("dev").config);
    const prod = resolvePolicyConfig(policies, loadStackPolicyConfig("prod").config);
    const rank = { disabled: 0, advisory: 1, remediate: 2, mandatory: 2 } as const;
    for (const p of policies) expect(rank[prod.get(p.name)!.level], p.name).toBeGreaterThanOrEqual(rank[dev.get(p.name)!.level]);
    const raised = policies.filter((p) => prod.get(p.name)!.level !== dev.get(p.name)!.level).map((p) => p.name);
    expect(raised.sort()).toEqual(["gcp-secret-manager-hygiene", "k8s-app-high-availability", "k8s-read-only-root-filesystem", "k8s-recommended-labels", "k8s-run-as-non-root", "protect-stateful-resources"]);
    expect(loadStackPolicyConfig("staging")).toEqual({ config: {} });
  });
});

describe("the offline runner (the SDK analyzer's semantics)", () => {
  const weak = peerAuthentication("default", "titanium", { mtls: { mode: "DISABLE" } });
  it("skips disabled policies and reports at the configured level", async () => {
    const subjects = fromRecorded([weak]);
    expect((await runPolicies([mtlsPeerAuthentication], subjects, { "istio-peer-authentication-strict": "disabled" })).findings).toEqual([]);
    const advisory = await runPolicies([mtlsPeerAuthentication], subjects, { all: "advisory" });
    expect(advisory.findings).toEqual([
      { policy: "istio-peer-authentication-strict", level: "advisory", severity: "critical", kind: "violation", message: "titanium/default sets mtls.mode DISABLE", urn: weak.urn, type: weak.type, name: weak.name },
    ]);
    expect((await runPolicies([mtlsPeerAuthentication], subjects, { "istio-peer-authentication-strict": "remediate" })).findings[0]!.level).toBe("mandatory");
  });
  it("turns the harness's [unknown] marker into the SDK's unknown value", async () => {
    const meshWide = peerAuthentication("default", "istio-system", { mtls: { mode: "STRICT" } });
    const inPreview = recorded(meshWide.type, meshWide.name, { ...meshWide.inputs, spec: "[unknown]" });
    const run = await runPolicies([mtlsPeerAuthentication, mtlsMeshWideStrict], fromRecorded([inPreview]));
    expect(run.findings.map((f) => [f.policy, f.kind, f.level])).toEqual([
      ["istio-peer-authentication-strict", "unknown", "advisory"],
      ["istio-mesh-wide-strict-mtls", "unknown", "advisory"],
    ]);
    expect(run.findings[0]!.message).toContain("value at .spec can't be known during preview");
    // An undecidable candidate is not reported as missing: the unknown finding says what happened.
    expect(run.findings.filter((f) => f.kind === "violation")).toEqual([]);
  });
  it("fails loudly when a policy throws anything but an unknown value", async () => {
    const broken = { ...mtlsPeerAuthentication, validateResource: () => { throw new TypeError("boom"); } };
    await expect(runPolicies([broken], fromRecorded([weak]))).rejects.toThrow(/policy istio-peer-authentication-strict failed on .*boom/s);
  });
});
