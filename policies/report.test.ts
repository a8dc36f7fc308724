import { describe, expect, it } from "vitest";
import { configuredRun } from "../stacks/harness";
import { planSections } from "../stacks/plan-sections";
import { policiesSection, SECTION_TITLE } from "./report";
import { container, deployment, firewall, helmRelease } from "./testing/builders";
import { recorded } from "./testing/fixtures";

describe("the offline plan's Policies section", () => {
  it.each(["dev", "prod"])("is registered and passes the %s stack as the program stands (also in preview)", async (stack) => {
    for (const preview of [false, true]) {
      const run = await configuredRun(stack, { preview });
      const section = (await planSections(run)).find((s) => s.title === SECTION_TITLE)!;
      expect(section.blocking).toBe(false);
      expect(section.lines[0]).toMatch(new RegExp(`^Pack titanium@\\d+\\.\\d+\\.\\d+, config policies/config\\.${stack}\\.json: \\d+ policies`));
      expect(section.lines.at(-1)).toMatch(/^Summary: 0 mandatory violation\(s\), \d+ advisory, \d+ not checkable in preview: no mandatory violation$/);
    }
  });
  it("prints each result (level, policy, resource, message) and blocks on a mandatory violation", async () => {
    const run = await configuredRun("dev");
    const open = firewall("allow-api", { sourceRanges: ["0.0.0.0/0"], allows: [{ protocol: "tcp", ports: ["6443"] }] });
    const unsized = deployment("api", { replicas: 1 });
    (unsized.inputs as { spec: { template: { spec: { containers: { resources?: unknown }[] } } } }).spec.template.spec.containers[0]!.resources = undefined;
    const section = await policiesSection({ ...run, resources: [...run.resources, open, unsized] });
    expect(section.blocking).toBe(true);
    expect(section.lines).toContain("MANDATORY  gcp-firewall-no-world-admin-ports  gcp:compute/firewall:Firewall::allow-api  rule allow-api opens tcp port(s) 6443 to 0.0.0.0/0");
    expect(section.lines.filter((l) => l.startsWith("MANDATORY  k8s-resource-limits  kubernetes:apps/v1:Deployment::api  titanium/api container \"api\" lacks"))).toHaveLength(1);
    // dev: high availability is advisory, listed after every mandatory result.
    const firstAdvisory = section.lines.findIndex((l) => l.startsWith("advisory "));
    expect(section.lines.slice(firstAdvisory).some((l) => l.startsWith("MANDATORY"))).toBe(false);
    expect(section.lines.slice(firstAdvisory)).toContainEqual(expect.stringMatching(/^advisory {3}k8s-app-high-availability {2}kubernetes:apps\/v1:Deployment::api {2}titanium\/api runs 1 replica/));
    expect(section.lines.at(-1)).toMatch(/^Summary: 2 mandatory violation\(s\), \d+ advisory, 0 not checkable in preview: BLOCKING$/);
  });
  it("prints stack policy results against the stack", async () => {
    const run = await configuredRun("dev");
    const section = await policiesSection({ ...run, resources: [deployment("api")] });
    expect(section.lines).toContain(
      'MANDATORY  istio-mesh-wide-strict-mtls  (stack)  no mesh-wide STRICT PeerAuthentication in namespace "istio-system" (found 0 PeerAuthentication object(s), none selector-less with mode STRICT there)',
    );
  });
  it("blocks on a Kubernetes component whose objects only the provider renders (the offline plan never sees them)", async () => {
    const run = await configuredRun("dev");
    // A helm.v4.Chart (or yaml/v2 ConfigGroup) is rendered by the provider's Construct: under the harness's mocks it
    // has no children, so a privileged, unsized pod in it would reach no policy offline.
    const chart = recorded("kubernetes:helm.sh/v4:Chart", "debug", { chart: "debug", values: { securityContext: { privileged: true } } }, { custom: false });
    const section = await policiesSection({ ...run, resources: [...run.resources, chart] });
    expect(section.blocking).toBe(true);
    expect(section.lines).toContainEqual(expect.stringMatching(/^MANDATORY {2}\(offline plan\) {2}kubernetes:helm\.sh\/v4:Chart::debug {2}its objects are rendered by the Kubernetes provider/));
    // Once its objects are in the run (the real preview's shape), they are judged one by one and the component is no finding.
    const pod = deployment("debug", { containers: [container("debug")] });
    const rendered = await policiesSection({ ...run, resources: [...run.resources, chart, { ...pod, parent: chart.urn }] });
    expect(rendered.lines.filter((l) => l.includes("(offline plan)"))).toEqual([]);
  });
  it("says which values a preview could not judge", async () => {
    const run = await configuredRun("dev");
    const unknownType = helmRelease("gw", "gateway", { service: { type: "[unknown]" } });
    const section = await policiesSection({ ...run, resources: [...run.resources, unknownType] }, undefined, { config: {} });
    expect(section.lines.some((l) => l.startsWith("advisory   k8s-no-load-balancer-service") && l.includes("can't be known during preview"))).toBe(true);
  });
});
