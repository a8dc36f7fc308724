/**
 * The hand-built fixtures the rule tests use have the shapes the program really registers: every field
 * path a builder sets appears in some resource of the same type in the dev or prod run. A builder that
 * drifted from the layers (a renamed input, a field the program never sets) would make a rule test pass
 * on a shape `pulumi preview` never sends.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { configuredRun, type ProgramRun, type RecordedResource } from "../../stacks/harness";
import { deployment, destinationRule, firewall, helmRelease, horizontalPodAutoscaler, instance, instanceTemplate, namespace, peerAuthentication, podDisruptionBudget, secret, service } from "./builders";

/** Keys whose children are data, not shape (labels, selectors, chart values, payloads). */
const FREE_FORM = new Set(["labels", "annotations", "matchLabels", "nodeSelector", "values", "data", "stringData", "metadata_startup_script", "metadata"]);

function fieldPaths(value: unknown, prefix = ""): string[] {
  if (Array.isArray(value)) return value.flatMap((v) => fieldPaths(v, `${prefix}[]`));
  if (!value || typeof value !== "object") return [];
  return Object.entries(value as Record<string, unknown>).flatMap(([k, v]) => {
    const p = prefix ? `${prefix}.${k}` : k;
    return FREE_FORM.has(k) ? [p] : [p, ...fieldPaths(v, p)];
  });
}

/**
 * Fields a builder sets in another valid form than the program does, because the rules must judge both
 * (and their tests show it): charts set `runAsUser` on a container, the program on the pod; a firewall
 * rule written by hand has an explicit name; a secret may carry its own labels and automatic
 * replication instead of the provider's default labels and user-managed replicas (both forms are in
 * gcp.test.ts).
 */
const OTHER_VALID_FORMS: Record<string, string[]> = {
  deployment: ["spec.template.spec.containers[].securityContext.runAsUser"],
  firewall: ["name"],
  secret: ["labels", "replication.auto"],
};

const runs: ProgramRun[] = [];
beforeAll(async () => {
  runs.push(await configuredRun("dev"), await configuredRun("prod"));
});

describe("policy test fixtures", () => {
  it.each([
    ["deployment", () => deployment("api")],
    ["namespace", () => namespace("titanium", { "istio-injection": "enabled" })],
    ["peerAuthentication", () => peerAuthentication("default", "istio-system", { mtls: { mode: "STRICT" } })],
    ["destinationRule", () => destinationRule("user", "user-service", { tls: { mode: "ISTIO_MUTUAL" } })],
    ["service", () => service("api")],
    ["podDisruptionBudget", () => podDisruptionBudget("api", { "app.kubernetes.io/name": "api" })],
    ["horizontalPodAutoscaler", () => horizontalPodAutoscaler("api", "api", 2)],
    ["helmRelease", () => helmRelease("istiod", "istiod", {})],
    ["firewall", () => firewall("api", { sourceRanges: ["198.51.100.0/28"], allows: [{ protocol: "tcp", ports: ["6443"] }] })],
    ["instance", () => instance("server-0")],
    ["instanceTemplate", () => instanceTemplate("agents")],
    ["secret", () => secret("k3s-token")],
  ] as [string, () => RecordedResource][])("%s: every field it sets is one the program sets on that type", (name, build) => {
    const fixture = build();
    const real = runs.flatMap((run) => run.resources.filter((r) => r.type === fixture.type));
    expect(real.length, `the program registers ${fixture.type}`).toBeGreaterThan(0);
    const known = new Set(real.flatMap((r) => fieldPaths(r.inputs)));
    const other = OTHER_VALID_FORMS[name] ?? [];
    expect(fieldPaths(fixture.inputs).filter((p) => !known.has(p) && !other.includes(p))).toEqual([]);
    // An exception that no longer differs is dropped from the list.
    for (const p of other) expect(known.has(p), `${name}: ${p} is now the program's own form`).toBe(false);
  });
});
