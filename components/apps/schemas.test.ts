import { beforeAll, describe, expect, it } from "vitest";
import { one, type ProgramRun, configuredRun } from "../../stacks/harness";
import { validateRecorded } from "./testing/k8s-schemas";

const runs: Record<string, ProgramRun> = {};
beforeAll(async () => {
  runs.dev = await configuredRun("dev");
  runs.prod = await configuredRun("prod");
});

describe.each(["dev", "prod"])("Kubernetes and Istio schemas (%s)", (stack) => {
  it("every Kubernetes object the program registers validates against its schema", async () => {
    const run = runs[stack]!;
    const results = (await Promise.all(run.resources.map(validateRecorded))).filter((r) => r !== undefined);
    expect(results.filter((r) => r.status === "invalid")).toEqual([]);
    // The operators' objects too (ExternalSecrets, the secret store, monitors, rules, Argo CD's objects):
    // only server-side-apply patches, partial by design, go unchecked.
    expect(results.filter((r) => r.status === "patch").map((r) => r.resource)).toEqual(["kubernetes:argoproj.io/v1alpha1:AppProjectPatch platform-argocd-project-default-locked"]);
    expect(results.map((r) => r.resource.split(" ")[0])).toEqual(
      expect.arrayContaining([
        "kubernetes:external-secrets.io/v1:ExternalSecret",
        "kubernetes:external-secrets.io/v1:ClusterSecretStore",
        "kubernetes:monitoring.coreos.com/v1:PrometheusRule",
        "kubernetes:monitoring.coreos.com/v1:PodMonitor",
        "kubernetes:monitoring.coreos.com/v1:ServiceMonitor",
      ]),
    );
    // The application layer's own objects are all covered by the schemas (no patches among them).
    const appResults = (await Promise.all(run.resources.filter((r) => r.name.startsWith("apps-")).map(validateRecorded))).filter((r) => r !== undefined);
    expect(appResults.length).toBeGreaterThan(40);
    expect(appResults.filter((r) => r.status !== "valid")).toEqual([]);
    expect(appResults.map((r) => r.resource.split(" ")[0])).toEqual(
      expect.arrayContaining(["kubernetes:security.istio.io/v1:AuthorizationPolicy", "kubernetes:networking.istio.io/v1:DestinationRule", "kubernetes:networking.istio.io/v1:VirtualService"]),
    );
  });
});

describe("schema validation", () => {
  it("catches a malformed object (so a pass means something)", async () => {
    const deployment = structuredClone(one(runs.dev!, "kubernetes:apps/v1:Deployment", "apps-api-gateway-deployment"));
    (deployment.inputs.spec as { template: { spec: { containers: { ports: { containerPort: unknown }[] }[] } } }).template.spec.containers[0]!.ports[0]!.containerPort = "http";
    expect(await validateRecorded(deployment)).toMatchObject({ status: "invalid", error: expect.stringContaining("containerPort must be integer") });
    const policy = structuredClone(one(runs.dev!, "kubernetes:security.istio.io/v1:AuthorizationPolicy", "apps-user-service-authorization-policy"));
    (policy.inputs.spec as { action: string }).action = "PERMIT";
    expect(await validateRecorded(policy)).toMatchObject({ status: "invalid", error: expect.stringContaining("action must be equal to one of the allowed values") });
    // The operators' CRDs as well: a store reference of a kind External Secrets does not have.
    const external = structuredClone(one(runs.dev!, "kubernetes:external-secrets.io/v1:ExternalSecret", "platform-external-secrets-app"));
    (external.inputs.spec as { secretStoreRef: { kind: string } }).secretStoreRef.kind = "SecretsVault";
    expect(await validateRecorded(external)).toMatchObject({ status: "invalid", error: expect.stringContaining("kind must be equal to one of the allowed values") });
  });
});
