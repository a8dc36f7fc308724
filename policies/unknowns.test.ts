/**
 * Which checks need known values: for every policy, a compliant resource whose policy-relevant
 * field is made unknown (as `pulumi preview` sends it, through the SDK's proxy). No policy passes
 * it: by default it is reported as the SDK's advisory "can't run ... during preview", and with
 * `unknownValues: "violation"` (prod) as a violation at the policy's level.
 */
import { describe, expect, it } from "vitest";
import type { RecordedResource } from "../stacks/harness";
import { UNKNOWN } from "../stacks/harness";
import { createPolicies } from "./policies";
import { deployment, destinationRule, envoyFilter, firewall, helmRelease, instance, instanceTemplate, namespace, peerAuthentication, podDisruptionBudget, secret, service, workload } from "./testing/builders";
import { check } from "./testing/check";
import { recorded } from "./testing/fixtures";
import { put } from "./testing/mutate";

const policies = createPolicies({ chartWorkloads: {} });
const meshWide = () => peerAuthentication("default", "istio-system", { mtls: { mode: "STRICT" } });
const appNs = () => namespace("titanium", { "istio-injection": "enabled" });
/** Unprotected and without volume claims: stateless, until its spec is unknown. */
const cache = () => workload("kubernetes:apps/v1:StatefulSet", "cache", {});

/** policy → [the resources, the one to edit, the field that is unknown]. */
const CASES: Record<string, () => [RecordedResource[], number, string]> = {
  "istio-peer-authentication-strict": () => [[meshWide()], 0, "spec.mtls.mode"],
  "istio-destination-rule-mtls": () => [[destinationRule("user", "user-service", { tls: { mode: "ISTIO_MUTUAL" } })], 0, "spec.trafficPolicy.tls"],
  "istio-envoy-filter-mtls": () => [[envoyFilter("titanium-secure-cookies")], 0, "spec.configPatches[0].applyTo"],
  "istio-mesh-wide-strict-mtls": () => [[meshWide(), appNs()], 0, "spec"],
  "istio-sidecar-injection": () => [[appNs(), deployment("api")], 0, "metadata.labels"],
  "k8s-resource-limits": () => [[deployment("api")], 0, "spec.template.spec.containers[0].resources.limits"],
  "k8s-no-privilege": () => [[deployment("api")], 0, "spec.template.spec.containers[0].securityContext"],
  "k8s-no-host-namespaces": () => [[deployment("api")], 0, "spec.template.spec.hostNetwork"],
  "k8s-host-path-allow-list": () => [[deployment("api")], 0, "spec.template.spec.volumes"],
  "k8s-image-pinned": () => [[deployment("api")], 0, "spec.template.spec.containers[0].image"],
  "k8s-no-load-balancer-service": () => [[service("api")], 0, "spec.type"],
  "k8s-run-as-non-root": () => [[deployment("api")], 0, "spec.template.spec.containers[0].securityContext.runAsUser"],
  "k8s-read-only-root-filesystem": () => [[deployment("api")], 0, "spec.template.spec.containers[0].securityContext"],
  "k8s-app-high-availability": () => [[deployment("api", { replicas: 3 }), podDisruptionBudget("api", { "app.kubernetes.io/name": "api" })], 0, "spec.replicas"],
  "k8s-recommended-labels": () => [[namespace("titanium")], 0, "metadata.labels"],
  "gcp-firewall-no-world-admin-ports": () => [[firewall("api", { sourceRanges: ["198.51.100.0/28"], allows: [{ protocol: "tcp", ports: ["6443"] }] })], 0, "sourceRanges"],
  "gcp-shielded-vm": () => [[instance("server-0")], 0, "shieldedInstanceConfig.enableSecureBoot"],
  "gcp-vm-service-account": () => [[instance("server-0")], 0, "serviceAccount.email"],
  "gcp-no-public-ip": () => [[instanceTemplate("agents")], 0, "networkInterfaces"],
  "gcp-os-login": () => [[instance("server-0")], 0, 'metadata."enable-oslogin"'],
  "gcp-iam-least-privilege": () => [[recorded("gcp:projects/iAMMember:IAMMember", "logs", { project: "p", role: "roles/logging.logWriter", member: "serviceAccount:a@p.iam.gserviceaccount.com" })], 0, "role"],
  "gcp-secret-manager-hygiene": () => [[secret("pg")], 0, "replication"],
  "protect-stateful-resources": () => [[cache()], 0, "spec"],
  "k8s-namespace-pod-security": () => [[namespace("titanium", { "istio-injection": "enabled", "pod-security.kubernetes.io/enforce": "restricted" })], 0, "metadata.labels"],
  "k8s-namespace-declared": () => [[appNs(), deployment("api")], 1, "metadata.namespace"],
  "k8s-no-chart-extra-objects": () => [[helmRelease("argo-cd", "argo-cd", { extraObjects: [] }, "argocd")], 0, "values.extraObjects"],
};

/**
 * Policies that judge by the type token alone: a preview's unknowns never change their verdict. (A
 * ConfigMapPatch is the exception: `k8s-no-guarded-patches` reads its target's name, and an unknown one
 * is reported, rules/workloads.test.ts.)
 */
const TYPE_ONLY: Record<string, () => RecordedResource> = {
  "k8s-no-guarded-patches": () => recorded("kubernetes:apps/v1:DeploymentPatch", "api", { metadata: { name: "api" } }),
};

it("documents every policy", () => {
  expect([...Object.keys(CASES), ...Object.keys(TYPE_ONLY)].sort()).toEqual(policies.map((p) => p.name).sort());
});

describe.each(policies.filter((p) => p.name in TYPE_ONLY).map((p) => [p.name, p] as const))("%s", (name, policy) => {
  it("judges by type alone: a resource whose inputs are unknown is refused all the same", async () => {
    const r = TYPE_ONLY[name]!();
    put(r, "metadata", UNKNOWN);
    const run = await check(policy, [r], { level: "mandatory", config: { unknownValues: "violation" } });
    expect(run.findings.map((f) => [f.kind, f.level])).toEqual([["violation", "mandatory"]]);
  });
});

describe.each(policies.filter((p) => !(p.name in TYPE_ONLY)).map((p) => [p.name, p] as const))("%s", (name, policy) => {
  it("passes the resources with every value known", async () => {
    const [resources] = CASES[name]!();
    expect((await check(policy, resources, { level: "mandatory" })).findings).toEqual([]);
  });
  it("reports, never passes, when the field is unknown in preview", async () => {
    const [resources, index, path] = CASES[name]!();
    put(resources[index]!, path, UNKNOWN);
    const advisory = await check(policy, resources, { level: "mandatory" });
    const unknown = advisory.findings.filter((f) => f.kind === "unknown");
    expect(unknown, "an advisory 'can't run during preview' finding").toHaveLength(1);
    expect(unknown[0]!.level).toBe("advisory");
    // The SDK names the property path it could not read: `.spec.template.spec.containers.0.image`.
    expect(unknown[0]!.message).toContain(`value at .${path.replace(/\[(\d+)\]/g, ".$1").replace(/"/g, "")} can't be known during preview`);
    const strict = await check(policy, resources, { level: "mandatory", config: { unknownValues: "violation" } });
    expect(strict.findings.filter((f) => f.kind === "unknown")).toEqual([]);
    expect(strict.findings.some((f) => f.level === "mandatory" && f.message.includes("keep this field a plain value"))).toBe(true);
  });
});
