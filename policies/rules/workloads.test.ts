import { describe, expect, it } from "vitest";
import { POD_TEMPLATE_PATHS } from "../lib/k8s";
import { check, messages } from "../testing/check";
import { unknown } from "../testing/fixtures";
import { container, deployment, helmRelease, service, workload } from "../testing/builders";
import { noHostNamespaces } from "./host-namespaces";
import { hostPathAllowList } from "./host-path";
import { imagePinned, imageProblem } from "./image-pinned";
import { noLoadBalancerService } from "./no-load-balancer";
import { noPrivilege } from "./no-privilege";
import { resourceLimitsPolicy } from "./resource-limits";

/** A fixture chart-workload table (the platform layer owns the real one). */
const TABLE = { istiod: ["resources", "global.proxy.resources"], gateway: ["resources"] };
const resourceLimits = resourceLimitsPolicy(TABLE);
const sized = { requests: { cpu: "100m", memory: "256Mi" }, limits: { cpu: "1", memory: "512Mi" } };

describe("k8s-resource-limits", () => {
  it.each(Object.keys(POD_TEMPLATE_PATHS))("passes a sized %s and catches a missing limit in its init container", async (type) => {
    const ok = workload(type, "migrate", { initContainers: [container("migrate")] });
    expect((await check(resourceLimits, ok)).findings).toEqual([]);
    const bad = workload(type, "migrate", { initContainers: [container("migrate", { resources: { requests: { cpu: "10m", memory: "16Mi" }, limits: { cpu: "100m" } } })] });
    expect(messages(await check(resourceLimits, bad))).toEqual([expect.stringContaining('init container "migrate" lacks resources.limits.memory')]);
  });
  it("names every missing quantity of every container", async () => {
    const run = await check(resourceLimits, deployment("api", { containers: [container("api", { resources: undefined }), container("sidecar", { resources: { limits: { cpu: "1", memory: "1Gi" } } })] }));
    expect(messages(run)).toEqual([
      'titanium/api container "api" lacks resources.requests.cpu, resources.requests.memory, resources.limits.cpu, resources.limits.memory',
      'titanium/api container "sidecar" lacks resources.requests.cpu, resources.requests.memory',
    ]);
  });
  it("checks a Helm chart's workloads at the table's values paths", async () => {
    const ok = helmRelease("istiod", "istiod", { resources: sized, global: { proxy: { resources: sized } } });
    expect((await check(resourceLimits, ok)).findings).toEqual([]);
    const bad = helmRelease("istiod", "istiod", { resources: sized, global: { proxy: { resources: { requests: sized.requests } } } });
    expect(messages(await check(resourceLimits, bad))).toEqual(['chart "istiod" values global.proxy.resources lacks limits.cpu, limits.memory']);
  });
  it("reports a chart missing from the table (unknown chart = violation), for v3 Releases and v4 Charts", async () => {
    const release = helmRelease("loki", "grafana/loki", { singleBinary: { resources: sized } });
    expect(messages(await check(resourceLimits, release))).toEqual([expect.stringContaining('Helm chart "loki" is not in the chart-workload table')]);
    const chart = { ...release, type: "kubernetes:helm.sh/v4:Chart", urn: "urn:v4" };
    expect((await check(resourceLimits, chart)).findings).toHaveLength(1);
  });
  it("reports limits that are unknown in preview instead of passing them", async () => {
    const run = await check(resourceLimits, deployment("api", { containers: [container("api", { resources: { requests: sized.requests, limits: unknown } })] }));
    expect(run.findings).toEqual([expect.objectContaining({ kind: "unknown", level: "advisory" })]);
    expect(run.findings[0]!.message).toContain(".spec.template.spec.containers.0.resources.limits");
  });
});

describe("k8s-no-privilege", () => {
  it("passes containers that forbid escalation", async () => {
    expect((await check(noPrivilege, deployment("api"))).findings).toEqual([]);
  });
  it("rejects privileged containers and unset or allowed escalation", async () => {
    const run = await check(
      noPrivilege,
      deployment("api", {
        containers: [
          container("a", { securityContext: { privileged: true, allowPrivilegeEscalation: false } }),
          container("b", { securityContext: { allowPrivilegeEscalation: true } }),
          container("c", { securityContext: {} }),
        ],
      }),
    );
    expect(messages(run)).toEqual([
      'titanium/api container "a" is privileged',
      'titanium/api container "b" allows privilege escalation (allowPrivilegeEscalation: false)',
      'titanium/api container "c" does not forbid privilege escalation (allowPrivilegeEscalation: false)',
    ]);
  });
});

describe("k8s-no-host-namespaces", () => {
  it("passes an ordinary pod and rejects each host namespace", async () => {
    expect((await check(noHostNamespaces, deployment("api"))).findings).toEqual([]);
    const run = await check(noHostNamespaces, workload("kubernetes:apps/v1:DaemonSet", "agent", { podSpec: { hostNetwork: true, hostPID: true, hostIPC: true } }));
    expect(messages(run)).toEqual(["titanium/agent sets hostNetwork: true", "titanium/agent sets hostPID: true", "titanium/agent sets hostIPC: true"]);
  });
});

describe("k8s-host-path-allow-list", () => {
  const logs = { volumes: [{ name: "varlog", hostPath: { path: "/var/log" } }] };
  it("allows the log shipper and node exporter, by name, label or chart", async () => {
    const alloy = workload("kubernetes:apps/v1:DaemonSet", "alloy", { namespace: "logging", podSpec: logs });
    const exporter = workload("kubernetes:apps/v1:DaemonSet", "monitoring-prometheus-node-exporter", { namespace: "monitoring", podSpec: logs });
    const byChart = workload("kubernetes:apps/v1:DaemonSet", "logs", { podLabels: { "helm.sh/chart": "alloy-1.11.1" }, podSpec: logs });
    expect((await check(hostPathAllowList, [alloy, exporter, byChart])).findings).toEqual([]);
  });
  it("rejects anyone else, and follows a stack's own allow-list", async () => {
    const api = deployment("api", { podSpec: logs });
    expect(messages(await check(hostPathAllowList, api))).toEqual(['titanium/api mounts hostPath /var/log (volume "varlog") and is not on the allow-list']);
    expect((await check(hostPathAllowList, api, { config: { allowed: [{ names: ["api"], reason: "test" }] } })).findings).toEqual([]);
    const alloyElsewhere = workload("kubernetes:apps/v1:DaemonSet", "alloy", { namespace: "default", podSpec: logs });
    const run = await check(hostPathAllowList, alloyElsewhere, { config: { allowed: [{ names: ["alloy"], namespace: "logging", reason: "logs" }] } });
    expect(run.findings).toHaveLength(1);
  });
});

describe("k8s-image-pinned", () => {
  it.each([
    ["ghcr.io/titanium-platform/titanium/api-gateway:main-1a2b3c4", undefined],
    [`ghcr.io/titanium-platform/titanium/api-gateway@sha256:${"a".repeat(64)}`, undefined],
    ["localhost:5000/postgres:18.1-alpine", undefined],
    ["postgres:latest", "uses the mutable tag latest (postgres:latest)"],
    ["localhost:5000/redis", "is not pinned (localhost:5000/redis has no tag or digest, so it means :latest)"],
    ["redis@sha256:abc", "has a malformed digest (redis@sha256:abc)"],
  ])("judges %s", (image, problem) => {
    expect(imageProblem(image)).toBe(problem);
  });
  it("checks every container of a workload", async () => {
    expect((await check(imagePinned, deployment("api"))).findings).toEqual([]);
    const run = await check(imagePinned, deployment("api", { initContainers: [container("migrate", { image: "ghcr.io/x/migrate:latest" })] }));
    expect(messages(run)).toEqual(['titanium/api init container "migrate" uses the mutable tag latest (ghcr.io/x/migrate:latest)']);
  });
  it("rejects latest image tags in chart values, and reports an unknown tag", async () => {
    expect((await check(imagePinned, helmRelease("alloy", "alloy", { image: { tag: "v1.18.1" } }))).findings).toEqual([]);
    expect(messages(await check(imagePinned, helmRelease("alloy", "alloy", { alloy: { image: { tag: "latest" } }, global: { imageTag: "latest" } })))).toEqual([
      'values alloy.image.tag is "latest"',
      'values global.imageTag is "latest"',
    ]);
    const run = await check(imagePinned, helmRelease("alloy", "alloy", { image: { tag: unknown }, other: unknown }));
    expect(run.findings).toEqual([expect.objectContaining({ kind: "unknown" })]);
    expect(run.findings[0]!.message).toContain(".values.image.tag");
  });
});

describe("k8s-no-load-balancer-service", () => {
  it("passes ClusterIP and NodePort Services and rejects LoadBalancer", async () => {
    expect((await check(noLoadBalancerService, [service("api"), service("gw", { type: "NodePort" })])).findings).toEqual([]);
    expect(messages(await check(noLoadBalancerService, service("api", { type: "LoadBalancer" })))).toEqual(["Service titanium/api is of type LoadBalancer"]);
  });
  it("catches LoadBalancer in chart values and the Istio gateway chart's LoadBalancer default", async () => {
    expect((await check(noLoadBalancerService, helmRelease("gw", "gateway", { service: { type: "NodePort" } }))).findings).toEqual([]);
    expect(messages(await check(noLoadBalancerService, helmRelease("gw", "gateway", {})))).toEqual([
      'chart "gateway" defaults service.type to LoadBalancer and the values do not set it',
    ]);
    expect(messages(await check(noLoadBalancerService, helmRelease("kps", "kube-prometheus-stack", { grafana: { service: { type: "LoadBalancer" } } })))).toEqual([
      "values grafana.service.type is LoadBalancer",
    ]);
  });
});
