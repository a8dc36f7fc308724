import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { APP_UID } from "../../components/apps/mesh";
import { check, messages } from "../testing/check";
import { recorded } from "../testing/fixtures";
import { container, deployment, horizontalPodAutoscaler, instance, namespace, podDisruptionBudget, secret, workload } from "../testing/builders";
import { highAvailability } from "./high-availability";
import { runAsNonRoot } from "./non-root";
import { protectStateful } from "./protect-stateful";
import { readOnlyRootFilesystem } from "./read-only-root-fs";
import { recommendedLabels } from "./recommended-labels";

describe("k8s-run-as-non-root", () => {
  it("passes runAsNonRoot or a non-zero user, on the container or the pod", async () => {
    const podLevel = deployment("api", { containers: [container("api", { securityContext: { allowPrivilegeEscalation: false } })], podSpec: { securityContext: { runAsUser: 70 } } });
    expect((await check(runAsNonRoot, [deployment("api"), podLevel])).findings).toEqual([]);
  });
  it("flags root or unstated users, except exempt workloads", async () => {
    const root = deployment("api", { containers: [container("a", { securityContext: { runAsUser: 0, runAsNonRoot: true } }), container("b", { securityContext: {} })] });
    expect(messages(await check(runAsNonRoot, root))).toEqual(['titanium/api container "a" may run as root', 'titanium/api container "b" may run as root']);
    // The PD CSI node plugin is exempt in its namespace, as a DaemonSet, for its two containers only.
    const node = (ns: string, kind = "kubernetes:apps/v1:DaemonSet") =>
      workload(kind, "csi-gce-pd-node", { namespace: ns, containers: [container("gce-pd-driver", { securityContext: {} })] });
    expect((await check(runAsNonRoot, node("gce-pd-csi-driver"))).findings).toEqual([]);
    expect((await check(runAsNonRoot, node("gce-pd-csi-driver"), { config: { exempt: [] } })).findings).toHaveLength(1);
    expect((await check(runAsNonRoot, node("titanium"))).findings).toHaveLength(1);
    expect((await check(runAsNonRoot, node("gce-pd-csi-driver", "kubernetes:apps/v1:Deployment"))).findings).toHaveLength(1);
    // A look-alike of the log shipper has no exemption (Alloy reads logs through the API, as non-root).
    const alloy = workload("kubernetes:apps/v1:DaemonSet", "x-alloy", { containers: [container("alloy", { securityContext: {} })] });
    expect((await check(runAsNonRoot, alloy)).findings).toHaveLength(1);
  });
  it("names in its remediation the UID the services' images run as: their Dockerfiles' USER, the pods' APP_UID", () => {
    const services = path.resolve(__dirname, "../../services");
    const dockerfiles = readdirSync(services)
      .map((d) => path.join(services, d, "Dockerfile"))
      .filter((f) => existsSync(f));
    expect(dockerfiles.length).toBeGreaterThanOrEqual(4);
    for (const f of dockerfiles) {
      // The last USER instruction is the one the image runs as.
      const user = [...readFileSync(f, "utf8").matchAll(/^USER\s+(\S+)/gm)].at(-1)?.[1];
      expect(user, f).toBe(`${APP_UID}:${APP_UID}`);
    }
    expect(/the services' images use (\d+)/.exec(runAsNonRoot.remediationSteps)?.[1]).toBe(String(APP_UID));
  });
  it("is advisory by default and mandatory when a stack says so", async () => {
    const root = deployment("api", { containers: [container("a", { securityContext: {} })] });
    expect((await check(runAsNonRoot, root)).findings[0]!.level).toBe("advisory");
    expect((await check(runAsNonRoot, root, { level: "mandatory" })).findings[0]!.level).toBe("mandatory");
  });
});

describe("k8s-read-only-root-filesystem", () => {
  it("passes read-only containers and flags writable ones", async () => {
    expect((await check(readOnlyRootFilesystem, deployment("api"))).findings).toEqual([]);
    const run = await check(readOnlyRootFilesystem, deployment("api", { containers: [container("api", { securityContext: { readOnlyRootFilesystem: false } })] }));
    expect(messages(run)).toEqual(['titanium/api container "api" has a writable root filesystem']);
  });
});

describe("k8s-app-high-availability (stack)", () => {
  const api = deployment("api-gateway", { replicas: 2 });
  const pdb = podDisruptionBudget("api-gateway", { "app.kubernetes.io/name": "api-gateway" });
  it("passes two replicas with a PDB, and an HPA whose minimum is two", async () => {
    expect((await check(highAvailability, [api, pdb])).findings).toEqual([]);
    const one = deployment("api-gateway", { replicas: 1 });
    expect((await check(highAvailability, [one, pdb, horizontalPodAutoscaler("api-gateway", "api-gateway", 2)])).findings).toEqual([]);
  });
  it("flags one replica, an HPA minimum of one and a missing or non-matching PDB", async () => {
    const one = deployment("api-gateway", { replicas: 1 });
    expect(messages(await check(highAvailability, [one, pdb]))).toEqual(["titanium/api-gateway runs 1 replica(s); application Deployments need at least 2"]);
    expect(messages(await check(highAvailability, [api, pdb, horizontalPodAutoscaler("hpa", "api-gateway", 1)]))).toEqual([
      "titanium/api-gateway runs 1 replica(s) (HPA minReplicas); application Deployments need at least 2",
    ]);
    const otherPdb = podDisruptionBudget("x", { "app.kubernetes.io/name": "blog-service" });
    expect(messages(await check(highAvailability, [api, otherPdb]))).toEqual(["titanium/api-gateway has no PodDisruptionBudget selecting its pods"]);
  });
  it("places a Deployment and a PodDisruptionBudget without metadata.namespace in their Kubernetes provider's namespace, as the provider does", async () => {
    const provider = recorded("pulumi:providers:kubernetes", "apps-k8s", { kubeconfig: "{}", namespace: "titanium" }, { custom: true });
    const viaProvider = <T extends { inputs: Record<string, unknown>; provider?: string }>(r: T): T => {
      delete (r.inputs.metadata as Record<string, unknown>).namespace;
      r.provider = `${provider.urn}::provider-id`;
      return r;
    };
    // One replica in titanium, by the provider's namespace: not a Deployment of `default`.
    expect(messages(await check(highAvailability, [provider, viaProvider(deployment("api-gateway", { replicas: 1 })), pdb]))).toEqual([
      "api-gateway runs 1 replica(s); application Deployments need at least 2",
    ]);
    // A budget placed in titanium by the provider covers the Deployment there.
    expect((await check(highAvailability, [provider, api, viaProvider(podDisruptionBudget("api-gateway", { "app.kubernetes.io/name": "api-gateway" }))])).findings).toEqual([]);
  });
  const budget = (spec: Record<string, unknown>, name = "api-gateway") => {
    const r = podDisruptionBudget(name, { "app.kubernetes.io/name": "api-gateway" });
    (r.inputs as { spec: Record<string, unknown> }).spec = { selector: { matchLabels: { "app.kubernetes.io/name": "api-gateway" } }, ...spec };
    return r;
  };
  it.each([
    ["maxUnavailable 0", { maxUnavailable: 0 }, 2, undefined, "allows 0 disruptions at 2 replica(s), so a node drain never finishes; it must let at least one pod go"],
    ["maxUnavailable 0%", { maxUnavailable: "0%" }, 2, undefined, "allows 0 disruptions at 2 replica(s), so a node drain never finishes; it must let at least one pod go"],
    ["minAvailable equal to the replicas", { minAvailable: 2 }, 2, undefined, "allows 0 disruptions at 2 replica(s), so a node drain never finishes; it must let at least one pod go"],
    ["minAvailable 100%", { minAvailable: "100%" }, 3, undefined, "allows 0 disruptions at 3 replica(s), so a node drain never finishes; it must let at least one pod go"],
    ["minAvailable 60% of 2 (rounded up: 2)", { minAvailable: "60%" }, 2, undefined, "allows 0 disruptions at 2 replica(s), so a node drain never finishes; it must let at least one pod go"],
    ["minAvailable equal to the HPA's minReplicas", { minAvailable: 2 }, 4, 2, "allows 0 disruptions at 2 replica(s) (HPA minReplicas), so a node drain never finishes; it must let at least one pod go"],
    ["maxUnavailable 100%", { maxUnavailable: "100%" }, 2, undefined, "allows 2 disruption(s) at 2 replica(s), so a drain may evict every pod; it must keep at least one"],
    ["neither field (policy/v1: every pod may go)", {}, 2, undefined, "allows 2 disruption(s) at 2 replica(s), so a drain may evict every pod; it must keep at least one"],
    ["a count as a string", { maxUnavailable: "1" }, 2, undefined, 'maxUnavailable "1" is neither a count nor a percentage'],
  ])("flags a PodDisruptionBudget with %s", async (_label, spec, replicas, hpaMin, problem) => {
    const resources = [deployment("api-gateway", { replicas }), budget(spec), ...(hpaMin ? [horizontalPodAutoscaler("api-gateway", "api-gateway", hpaMin)] : [])];
    expect(messages(await check(highAvailability, resources))).toEqual([`titanium/api-gateway: PodDisruptionBudget titanium/api-gateway ${problem}`]);
  });
  it.each([
    ["maxUnavailable 1 (the platform's)", { maxUnavailable: 1 }, 2, undefined],
    ["maxUnavailable 50% of 2 (rounded up: 1)", { maxUnavailable: "50%" }, 2, undefined],
    ["maxUnavailable 10% of 3 (rounded up: 1)", { maxUnavailable: "10%" }, 3, undefined],
    ["minAvailable 1", { minAvailable: 1 }, 2, undefined],
    ["minAvailable 50% of 3 (rounded up: 2)", { minAvailable: "50%" }, 3, undefined],
    ["minAvailable 2 at an HPA minimum of 3", { minAvailable: 2 }, 1, 3],
  ])("passes a PodDisruptionBudget with %s", async (_label, spec, replicas, hpaMin) => {
    const resources = [deployment("api-gateway", { replicas }), budget(spec), ...(hpaMin ? [horizontalPodAutoscaler("api-gateway", "api-gateway", hpaMin)] : [])];
    expect((await check(highAvailability, resources)).findings).toEqual([]);
  });
  it("flags two PodDisruptionBudgets over the same pods (the eviction API refuses every eviction)", async () => {
    expect(messages(await check(highAvailability, [api, pdb, budget({ maxUnavailable: 1 }, "extra")]))).toEqual([
      "titanium/api-gateway is selected by 2 PodDisruptionBudgets (titanium/api-gateway, titanium/extra): the eviction API refuses to evict a pod with more than one, so every drain blocks",
    ]);
  });
  it("reads a PodDisruptionBudget's selector as the disruption controller does: matchExpressions, and an empty selector selecting every pod (policy/v1)", async () => {
    const withSelector = (name: string, selector: Record<string, unknown>, type = "kubernetes:policy/v1:PodDisruptionBudget") =>
      recorded(type, name, { metadata: { name, namespace: "titanium" }, spec: { maxUnavailable: 1, selector } });
    // matchExpressions alone select the pods: the Deployment has its budget.
    const byExpression = withSelector("by-expression", { matchExpressions: [{ key: "app.kubernetes.io/name", operator: "In", values: ["api-gateway", "blog-service"] }] });
    expect((await check(highAvailability, [api, byExpression])).findings).toEqual([]);
    // An expression the pods fail: the labels alone do not make it select them.
    const excluding = withSelector("excluding", { matchLabels: { "app.kubernetes.io/name": "api-gateway" }, matchExpressions: [{ key: "tier", operator: "Exists" }] });
    expect(messages(await check(highAvailability, [api, excluding]))).toEqual(["titanium/api-gateway has no PodDisruptionBudget selecting its pods"]);
    for (const [operator, values] of [["NotIn", ["api-gateway"]], ["DoesNotExist", undefined]] as const) {
      const r = withSelector("x", { matchExpressions: [{ key: "app.kubernetes.io/name", operator, ...(values ? { values } : {}) }] });
      expect(messages(await check(highAvailability, [api, r])), operator).toEqual(["titanium/api-gateway has no PodDisruptionBudget selecting its pods"]);
    }
    // policy/v1: an empty selector selects every pod of its namespace, so with the Deployment's own budget there are two.
    const everyPod = withSelector("every-pod", {});
    expect(messages(await check(highAvailability, [api, pdb, everyPod]))).toEqual([
      "titanium/api-gateway is selected by 2 PodDisruptionBudgets (titanium/api-gateway, titanium/every-pod): the eviction API refuses to evict a pod with more than one, so every drain blocks",
    ]);
    // policy/v1beta1: an empty selector selects nothing.
    expect((await check(highAvailability, [api, pdb, withSelector("none", {}, "kubernetes:policy/v1beta1:PodDisruptionBudget")])).findings).toEqual([]);
  });
  it("matches an HPA to an auto-named Deployment through its dependency", async () => {
    const unnamed = deployment("api-gateway", { replicas: 1 });
    (unnamed.inputs.metadata as Record<string, unknown>).name = undefined;
    const hpa = { ...horizontalPodAutoscaler("hpa", "api-gateway-8d9f", 3), dependsOn: [unnamed.urn] };
    expect((await check(highAvailability, [unnamed, pdb, hpa])).findings).toEqual([]);
  });
  it("ignores platform namespaces and exempt Deployments (the load generator, the single-instance cache)", async () => {
    const platform = deployment("grafana", { namespace: "monitoring", replicas: 1 });
    const loadgen = deployment("load-generator", { replicas: 1 });
    const cache = deployment("session-cache", { replicas: 1, podLabels: { "app.kubernetes.io/component": "cache" } });
    expect((await check(highAvailability, [platform, loadgen, cache])).findings).toEqual([]);
    expect((await check(highAvailability, [cache], { config: { exempt: [] } })).findings).toHaveLength(2);
  });
});

describe("k8s-recommended-labels", () => {
  it("passes labelled objects and flags missing labels on objects and pod templates", async () => {
    expect((await check(recommendedLabels, [deployment("api"), namespace("titanium")])).findings).toEqual([]);
    const bare = recorded("kubernetes:core/v1:ConfigMap", "cm", { metadata: { name: "cm", namespace: "titanium", labels: { "app.kubernetes.io/name": "cm" } } });
    expect(messages(await check(recommendedLabels, bare))).toEqual(["titanium/cm lacks label(s) app.kubernetes.io/part-of, app.kubernetes.io/managed-by"]);
    const podless = deployment("api");
    ((podless.inputs.spec as { template: { metadata: { labels: Record<string, string> } } }).template.metadata.labels) = { "app.kubernetes.io/name": "api" };
    expect(messages(await check(recommendedLabels, podless))).toEqual([
      "titanium/api pod template lacks label(s) app.kubernetes.io/part-of, app.kubernetes.io/managed-by",
    ]);
  });
  it("leaves chart components alone: a Release is judged through its values, a v4 Chart arrives without properties", async () => {
    const charts = [recorded("kubernetes:helm.sh/v3:Release", "loki", { chart: "loki", values: {} }), recorded("kubernetes:helm.sh/v4:Chart", "loki4", {})];
    expect((await check(recommendedLabels, charts)).findings).toEqual([]);
  });
});

describe("protect-stateful-resources", () => {
  const pvcs = { volumeClaimTemplates: [{ metadata: { name: "data" }, spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "10Gi" } } } }] };
  it("passes protected stateful resources and ignores stateless ones", async () => {
    const db = workload("kubernetes:apps/v1:StatefulSet", "postgres", { spec: pvcs, protect: true });
    const disk = recorded("gcp:compute/disk:Disk", "etcd", { size: 20 }, { protect: true });
    expect((await check(protectStateful, [db, disk, secret("pg", {}, true), instance("server-0"), deployment("api")])).findings).toEqual([]);
  });
  it("flags an unprotected secret, static IP and the database's StatefulSet", async () => {
    const ip = recorded("gcp:compute/address:Address", "lb-ip", { addressType: "EXTERNAL" });
    const db = workload("kubernetes:apps/v1:StatefulSet", "postgres", { spec: pvcs });
    const run = await check(protectStateful, [secret("pg"), ip, db], { level: "mandatory" });
    expect(messages(run)).toEqual([
      "gcp:secretmanager/secret:Secret pg is stateful and not protected",
      "gcp:compute/address:Address lb-ip is stateful and not protected",
      "kubernetes:apps/v1:StatefulSet postgres is stateful and not protected",
    ]);
    expect(run.findings.every((f) => f.level === "mandatory")).toBe(true);
  });
  it("flags an unprotected generated password and CA certificate, not a leaf certificate or a key", async () => {
    const password = recorded("random:index/randomPassword:RandomPassword", "postgres-password", { length: 32 });
    const ca = recorded("tls:index/selfSignedCert:SelfSignedCert", "cluster-ca", { isCaCertificate: true, validityPeriodHours: 87600 });
    const leaf = recorded("tls:index/selfSignedCert:SelfSignedCert", "gateway-cert", { isCaCertificate: false, validityPeriodHours: 8760 });
    const key = recorded("tls:index/privateKey:PrivateKey", "gateway-key", { algorithm: "ECDSA" });
    expect(messages(await check(protectStateful, [password, ca, leaf, key]))).toEqual([
      "random:index/randomPassword:RandomPassword postgres-password is stateful and not protected",
      "tls:index/selfSignedCert:SelfSignedCert cluster-ca is stateful and not protected",
    ]);
  });
});
