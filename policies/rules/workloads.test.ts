import { describe, expect, it } from "vitest";
import { POD_TEMPLATE_PATHS } from "../lib/k8s";
import { check, messages } from "../testing/check";
import { recorded, unknown } from "../testing/fixtures";
import { resolvePolicyConfig } from "../testing/policy-config";
import { container, deployment, helmRelease, namespace, service, workload } from "../testing/builders";
import { noHostNamespaces } from "./host-namespaces";
import { K3S_CNI_DIRS } from "../../components/platform/names";
import { DEFAULT_HOST_PATH_ALLOWED, hostPathAllowList } from "./host-path";
import { imagePinned, imageProblem } from "./image-pinned";
import { namespacePodSecurity } from "./namespace-pod-security";
import { noGuardedPatches, patchedKind } from "./no-guarded-patches";
import { noLoadBalancerService } from "./no-load-balancer";
import { noPrivilege } from "./no-privilege";
import { readOnlyRootFilesystem } from "./read-only-root-fs";
import { isQuantity, resourceLimitsPolicy } from "./resource-limits";

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
  it("counts only real, non-zero quantities (a zero limit is no limit)", () => {
    for (const q of ["500m", "1", "1.5", "0.5", ".5", "256Mi", "1Gi", "1e3", "2k", 1, 0.25]) expect(isQuantity(q), String(q)).toBe(true);
    for (const q of ["0", "0m", "0Mi", "0.0", "", " ", "lots", "-1", "1GB", 0, -1, null, true]) expect(isQuantity(q), String(q)).toBe(false);
  });
  describe("the injected istio-proxy's resources (sidecar.istio.io/proxy* annotations replace istiod's whole resources block, istio#35905)", () => {
    const sizedProxy = {
      "sidecar.istio.io/proxyCPU": "20m",
      "sidecar.istio.io/proxyMemory": "64Mi",
      "sidecar.istio.io/proxyCPULimit": "500m",
      "sidecar.istio.io/proxyMemoryLimit": "160Mi",
    };
    it("passes all four, or none (istiod's global.proxy.resources then size it)", async () => {
      expect((await check(resourceLimits, deployment("api", { podAnnotations: sizedProxy }))).findings).toEqual([]);
      expect((await check(resourceLimits, deployment("api", { podAnnotations: { "sidecar.istio.io/nativeSidecar": "true" } }))).findings).toEqual([]);
    });
    it("refuses requests without limits, and a zero limit", async () => {
      const requestsOnly = { "sidecar.istio.io/proxyCPU": "20m", "sidecar.istio.io/proxyMemory": "64Mi" };
      expect(messages(await check(resourceLimits, deployment("api", { podAnnotations: requestsOnly })))).toEqual([
        "titanium/api sets sidecar.istio.io/proxy* resources without sidecar.istio.io/proxyCPULimit, sidecar.istio.io/proxyMemoryLimit (a non-zero quantity): with any of them set, Istio sizes the injected istio-proxy from these annotations alone, so it runs without that request or limit",
      ]);
      const zero = { ...sizedProxy, "sidecar.istio.io/proxyCPULimit": "0", "sidecar.istio.io/proxyMemoryLimit": "0Mi" };
      expect(messages(await check(resourceLimits, workload("kubernetes:batch/v1:CronJob", "backup", { podAnnotations: zero })))).toEqual([
        expect.stringContaining("titanium/backup sets sidecar.istio.io/proxy* resources without sidecar.istio.io/proxyCPULimit, sidecar.istio.io/proxyMemoryLimit (a non-zero quantity)"),
      ]);
    });
    it("refuses a request above its limit, comparing quantities by value", async () => {
      expect((await check(resourceLimits, deployment("api", { podAnnotations: { ...sizedProxy, "sidecar.istio.io/proxyCPU": "0.5", "sidecar.istio.io/proxyMemory": "0.15Gi" } }))).findings).toEqual([]);
      expect(messages(await check(resourceLimits, deployment("api", { podAnnotations: { ...sizedProxy, "sidecar.istio.io/proxyMemory": "1Gi" } })))).toEqual([
        "titanium/api asks sidecar.istio.io/proxyMemory 1Gi above its sidecar.istio.io/proxyMemoryLimit 160Mi",
      ]);
    });
    it("judges the same annotations in a release's values (podAnnotations)", async () => {
      const release = (podAnnotations: object) => helmRelease("gateway", "gateway", { resources: sized, podAnnotations });
      expect((await check(resourceLimits, release(sizedProxy))).findings).toEqual([]);
      expect(messages(await check(resourceLimits, release({ "sidecar.istio.io/proxyMemory": "64Mi" })))).toEqual([
        expect.stringMatching(/^chart "gateway" values podAnnotations sets sidecar\.istio\.io\/proxy\* resources without sidecar\.istio\.io\/proxyCPU, sidecar\.istio\.io\/proxyCPULimit, sidecar\.istio\.io\/proxyMemoryLimit /),
      ]);
    });
  });
  it("checks a Helm chart's workloads at the table's values paths", async () => {
    const ok = helmRelease("istiod", "istiod", { resources: sized, global: { proxy: { resources: sized } } });
    expect((await check(resourceLimits, ok)).findings).toEqual([]);
    const bad = helmRelease("istiod", "istiod", { resources: sized, global: { proxy: { resources: { requests: sized.requests } } } });
    expect(messages(await check(resourceLimits, bad))).toEqual(['chart "istiod" values global.proxy.resources lacks limits.cpu, limits.memory']);
  });
  it("refuses a chart workload the table leaves out unless its switch is false (absent means the chart's default: on)", async () => {
    const policy = resourceLimitsPolicy({ "argo-cd": [] }, { "argo-cd": ["dex.enabled", "notifications.enabled"] });
    expect((await check(policy, helmRelease("argo", "argo-cd", { dex: { enabled: false }, notifications: { enabled: false } }, "argocd"))).findings).toEqual([]);
    expect(messages(await check(policy, helmRelease("argo", "argo-cd", { dex: { enabled: true } }, "argocd")))).toEqual([
      'chart "argo-cd" values dex.enabled is not false: it runs a workload whose resources the chart-workload table does not list',
      'chart "argo-cd" values notifications.enabled is not false: it runs a workload whose resources the chart-workload table does not list',
    ]);
  });

  it("refuses a container spec passed through chart values (extraContainers, initContainers) without requests and limits", async () => {
    const policy = resourceLimitsPolicy({ alloy: ["controller.resources"] });
    const debug = { name: "debug", image: "ghcr.io/x/debug:1.0.0" };
    const values = (extra: object) => ({ controller: { resources: sized, extraContainers: [{ ...debug, ...extra }] } });
    expect((await check(policy, helmRelease("alloy", "alloy", values({ resources: sized }), "logging"))).findings).toEqual([]);
    expect(messages(await check(policy, helmRelease("alloy", "alloy", values({ resources: { requests: sized.requests } }), "logging")))).toEqual([
      'chart "alloy" values controller.extraContainers[0] (container "debug") lacks resources.limits.cpu, resources.limits.memory',
    ]);
  });
  it("reports a chart missing from the table (unknown chart = violation)", async () => {
    const release = helmRelease("loki", "grafana/loki", { singleBinary: { resources: sized } });
    expect(messages(await check(resourceLimits, release))).toEqual([expect.stringContaining('Helm chart "loki" is not in the chart-workload table')]);
  });
  it("leaves a helm.sh/v4 Chart component alone: the CLI hands it over without properties, its rendered objects are judged themselves", async () => {
    const chart = { ...helmRelease("loki", "grafana/loki", {}), type: "kubernetes:helm.sh/v4:Chart", urn: "urn:v4", inputs: {} };
    expect((await check(resourceLimits, chart)).findings).toEqual([]);
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
  it("rejects a Helm release whose values make any of its pods privileged or able to escalate, and passes false or absent", async () => {
    const bad = helmRelease("monitoring", "kube-prometheus-stack", {
      grafana: { containerSecurityContext: { privileged: true } },
      prometheusOperator: { containerSecurityContext: { allowPrivilegeEscalation: true } },
      alertmanager: { alertmanagerSpec: { securityContext: { allowPrivilegeEscalation: false } } },
    }, "monitoring");
    expect(messages(await check(noPrivilege, bad))).toEqual([
      'chart "kube-prometheus-stack": values grafana.containerSecurityContext.privileged is true (its pods are privileged)',
      'chart "kube-prometheus-stack": values prometheusOperator.containerSecurityContext.allowPrivilegeEscalation is true (its pods are able to escalate privileges)',
    ]);
    expect((await check(noPrivilege, helmRelease("monitoring", "kube-prometheus-stack", { grafana: { replicas: 1 } }, "monitoring"))).findings).toEqual([]);
  });
  it("holds a container spec passed through chart values (extraContainers) to the pod rule: escalation explicitly off", async () => {
    const values = (securityContext?: object) => ({ controller: { extraContainers: [{ name: "debug", image: "ghcr.io/x/debug:1.0.0", ...(securityContext ? { securityContext } : {}) }] } });
    expect((await check(noPrivilege, helmRelease("alloy", "alloy", values({ allowPrivilegeEscalation: false }), "logging"))).findings).toEqual([]);
    expect(messages(await check(noPrivilege, helmRelease("alloy", "alloy", values(), "logging")))).toEqual([
      'chart "alloy": values controller.extraContainers[0] (container "debug") does not forbid privilege escalation (allowPrivilegeEscalation: false)',
    ]);
  });
  it("rejects an unmasked /proc (procMount other than Default), in a container or in a Helm release's values", async () => {
    const unmasked = deployment("api", { containers: [container("api", { securityContext: { allowPrivilegeEscalation: false, procMount: "Unmasked" } })], podSpec: { hostUsers: false } });
    expect(messages(await check(noPrivilege, unmasked))).toEqual(['titanium/api container "api" mounts /proc unmasked (procMount: Unmasked; only Default masks the kernel\'s files)']);
    expect((await check(noPrivilege, deployment("api", { containers: [container("api", { securityContext: { allowPrivilegeEscalation: false, procMount: "Default" } })] }))).findings).toEqual([]);
    const release = helmRelease("monitoring", "kube-prometheus-stack", { grafana: { containerSecurityContext: { procMount: "Unmasked" } }, prometheusOperator: { containerSecurityContext: { procMount: "Default" } } }, "monitoring");
    expect(messages(await check(noPrivilege, release))).toEqual(['chart "kube-prometheus-stack": values grafana.containerSecurityContext.procMount is "Unmasked" (its pods mount /proc unmasked)']);
    const hidden = helmRelease("monitoring", "kube-prometheus-stack", { grafana: { containerSecurityContext: { procMount: unknown } } }, "monitoring");
    expect((await check(noPrivilege, hidden)).findings).toEqual([expect.objectContaining({ kind: "unknown" })]);
  });
});

describe("k8s-no-privilege: added capabilities", () => {
  const adding = (add: unknown[], name = "api", o: { namespace?: string; type?: string } = {}) =>
    workload(o.type ?? "kubernetes:apps/v1:Deployment", name, {
      namespace: o.namespace,
      containers: [container(name, { securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"], add } } })],
    });
  it("allows only NET_BIND_SERVICE (in any spelling the runtime accepts), and nothing added", async () => {
    expect((await check(noPrivilege, [adding([]), adding(["NET_BIND_SERVICE"]), adding(["CAP_NET_BIND_SERVICE", "net_bind_service"])])).findings).toEqual([]);
    expect(messages(await check(noPrivilege, adding(["NET_BIND_SERVICE", "NET_ADMIN", "cap_sys_admin", "ALL"])))).toEqual([
      'titanium/api container "api" adds capabilities NET_ADMIN, cap_sys_admin, ALL (only NET_BIND_SERVICE may be added without an allow-list entry)',
    ]);
  });
  it("admits an entry's capabilities only, and holds such a container to every other rule", async () => {
    const entry = { names: ["cni-agent"], namespace: "istio-system", kinds: ["DaemonSet"], containers: ["cni-agent"], capabilities: ["NET_ADMIN"], reason: "test" };
    const agent = (add: unknown[], o: { namespace?: string; privileged?: boolean } = {}) =>
      workload("kubernetes:apps/v1:DaemonSet", "cni-agent", {
        namespace: o.namespace ?? "istio-system",
        containers: [container("cni-agent", { securityContext: { allowPrivilegeEscalation: false, privileged: o.privileged ?? false, capabilities: { add } } })],
      });
    const withEntry = { config: { allowed: [entry] } };
    expect((await check(noPrivilege, agent(["NET_ADMIN"]), withEntry)).findings).toEqual([]);
    expect(messages(await check(noPrivilege, agent(["NET_ADMIN", "SYS_ADMIN"]), withEntry))).toEqual([
      'istio-system/cni-agent container "cni-agent" adds capabilities SYS_ADMIN (only NET_BIND_SERVICE may be added besides those its allow-list entry names)',
    ]);
    expect(messages(await check(noPrivilege, agent(["NET_ADMIN"], { privileged: true }), withEntry))).toEqual(['istio-system/cni-agent container "cni-agent" is privileged']);
    expect(messages(await check(noPrivilege, agent(["NET_ADMIN"], { namespace: "titanium" }), withEntry))).toHaveLength(1);
    // The default list: the PD CSI driver may be privileged (every capability), nothing else may add one.
    expect(messages(await check(noPrivilege, agent(["NET_ADMIN"])))).toHaveLength(1);
    const driver = workload("kubernetes:apps/v1:DaemonSet", "csi-gce-pd-node", {
      namespace: "gce-pd-csi-driver",
      containers: [container("gce-pd-driver", { securityContext: { privileged: true, capabilities: { add: ["SYS_ADMIN"] } } }), container("csi-driver-registrar", { securityContext: { allowPrivilegeEscalation: false, capabilities: { add: ["SYS_ADMIN"] } } })],
    });
    expect(messages(await check(noPrivilege, driver))).toEqual([
      'gce-pd-csi-driver/csi-gce-pd-node container "csi-driver-registrar" adds capabilities SYS_ADMIN (only NET_BIND_SERVICE may be added without an allow-list entry)',
    ]);
  });
  it("rejects capabilities a Helm release's values add, unless an entry names the chart whose pods add them, their namespace and the capability", async () => {
    const release = (ns = "monitoring", exporter: Record<string, unknown> = {}) =>
      helmRelease("kps", "kube-prometheus-stack", {
        "prometheus-node-exporter": { ...exporter, containerSecurityContext: { capabilities: { add: ["SYS_TIME", "NET_BIND_SERVICE"], drop: ["ALL"] } } },
        grafana: { containerSecurityContext: { capabilities: { drop: ["ALL"] } } },
      }, ns);
    expect(messages(await check(noPrivilege, release()))).toEqual([
      'chart "kube-prometheus-stack": values prometheus-node-exporter.containerSecurityContext.capabilities.add (chart prometheus-node-exporter, namespace monitoring) adds capabilities SYS_TIME (only NET_BIND_SERVICE may be added without an allow-list entry)',
    ]);
    const allowing = (entry: Record<string, unknown>) => ({ config: { allowed: [{ namespace: "monitoring", capabilities: ["SYS_TIME"], reason: "test", ...entry }] } });
    // The node exporter's values are its own subchart's: an entry for it admits them, one for the release's chart does not.
    const exporterEntry = allowing({ charts: ["prometheus-node-exporter"] });
    expect((await check(noPrivilege, release(), exporterEntry)).findings).toEqual([]);
    expect((await check(noPrivilege, release(), allowing({ charts: ["kube-prometheus-stack"] }))).findings).toHaveLength(1);
    expect((await check(noPrivilege, release("titanium"), exporterEntry)).findings).toHaveLength(1);
    // The subchart's pods run where its namespaceOverride puts them.
    expect(messages(await check(noPrivilege, release("monitoring", { namespaceOverride: "kube-system" }), exporterEntry))).toEqual([
      'chart "kube-prometheus-stack": values prometheus-node-exporter.containerSecurityContext.capabilities.add (chart prometheus-node-exporter, namespace kube-system) adds capabilities SYS_TIME (only NET_BIND_SERVICE may be added without an allow-list entry)',
    ]);
    // The release chart's own values belong to its entries.
    const operator = helmRelease("kps", "kube-prometheus-stack", { prometheusOperator: { containerSecurityContext: { capabilities: { add: ["SYS_TIME"] } } } }, "monitoring");
    expect((await check(noPrivilege, operator, allowing({ charts: ["kube-prometheus-stack"] }))).findings).toEqual([]);
    expect((await check(noPrivilege, operator, exporterEntry)).findings).toHaveLength(1);
    // An unknown list of capabilities is reported, not passed.
    const hidden = helmRelease("kps", "kube-prometheus-stack", { grafana: { containerSecurityContext: { capabilities: unknown } } }, "monitoring");
    expect((await check(noPrivilege, hidden)).findings).toEqual([expect.objectContaining({ kind: "unknown" })]);
  });
  it("reports added capabilities that are unknown in preview", async () => {
    const run = await check(noPrivilege, adding([unknown]));
    expect(run.findings).toEqual([expect.objectContaining({ kind: "unknown" })]);
    expect(run.findings[0]!.message).toContain(".spec.template.spec.containers.0.securityContext.capabilities.add.0");
  });
});

describe("k8s-no-host-namespaces", () => {
  it("passes an ordinary pod and rejects each host namespace", async () => {
    expect((await check(noHostNamespaces, deployment("api"))).findings).toEqual([]);
    const run = await check(noHostNamespaces, workload("kubernetes:apps/v1:DaemonSet", "agent", { podSpec: { hostNetwork: true, hostPID: true, hostIPC: true } }));
    expect(messages(run)).toEqual(["titanium/agent sets hostNetwork: true", "titanium/agent sets hostPID: true", "titanium/agent sets hostIPC: true"]);
  });
  it("rejects a container binding a port of the node (ports[].hostPort, refused by Pod Security's baseline); 0 binds none", async () => {
    const withPorts = (ports: object[]) => container("api", { ports });
    expect((await check(noHostNamespaces, deployment("api", { containers: [withPorts([{ name: "http", containerPort: 3000, hostPort: 0 }])] }))).findings).toEqual([]);
    const run = await check(
      noHostNamespaces,
      deployment("api", { containers: [withPorts([{ name: "http", containerPort: 3000, hostPort: 8080 }])], initContainers: [container("init", { ports: [{ containerPort: 9000, hostPort: 9000 }] })] }),
    );
    expect(messages(run)).toEqual(['titanium/api init container "init" binds host port 9000 (ports[].hostPort)', 'titanium/api container "api" binds host port 8080 (ports[].hostPort)']);
  });
  it("rejects a hostPort anywhere in a release's values (a port spec written out in them)", async () => {
    const values = (hostPort: unknown) => ({ controller: { extraContainers: [{ name: "debug", image: "busybox:1.37.0", ports: [{ containerPort: 8080, hostPort }] }] } });
    expect((await check(noHostNamespaces, helmRelease("alloy", "alloy", values(0), "logging"))).findings).toEqual([]);
    expect(messages(await check(noHostNamespaces, helmRelease("alloy", "alloy", values(8080), "logging")))).toEqual([
      'chart "alloy": values controller.extraContainers[0].ports[0].hostPort binds host port 8080',
    ]);
  });

  describe("Helm releases (the host namespaces their values and their charts' defaults give their pods)", () => {
    const kps = (values: Record<string, unknown>) => helmRelease("kps", "kube-prometheus-stack", values, "monitoring");
    it("rejects kube-prometheus-stack's node exporter on the chart's defaults, and passes it with both switched off", async () => {
      expect(messages(await check(noHostNamespaces, kps({ "prometheus-node-exporter": {} })))).toEqual([
        'chart "kube-prometheus-stack": its prometheus-node-exporter pods use hostNetwork (the chart\'s default)',
        'chart "kube-prometheus-stack": its prometheus-node-exporter pods use hostPID (the chart\'s default)',
      ]);
      expect((await check(noHostNamespaces, kps({ "prometheus-node-exporter": { hostNetwork: false, hostPID: false } }))).findings).toEqual([]);
      expect((await check(noHostNamespaces, kps({ nodeExporter: { enabled: false } }))).findings).toEqual([]);
      expect(messages(await check(noHostNamespaces, kps({ "prometheus-node-exporter": { hostNetwork: false, hostPID: false, hostIPC: true } })))).toEqual([
        'chart "kube-prometheus-stack": its prometheus-node-exporter pods use hostIPC (values prometheus-node-exporter.hostIPC)',
      ]);
    });
    it("rejects an explicit switch anywhere else in the values, and Istio CNI only when ambient shares the host network", async () => {
      const off = { "prometheus-node-exporter": { hostNetwork: false, hostPID: false } };
      expect(messages(await check(noHostNamespaces, kps({ ...off, prometheusOperator: { hostNetwork: true } })))).toEqual([
        'chart "kube-prometheus-stack": values prometheusOperator.hostNetwork is true',
      ]);
      expect((await check(noHostNamespaces, helmRelease("cni", "cni", { ambient: { enabled: true } }))).findings).toEqual([]);
      expect(messages(await check(noHostNamespaces, helmRelease("cni", "cni", { ambient: { enabled: true, shareHostNetworkNamespace: true } })))).toEqual([
        'chart "cni": its pods use hostNetwork (values ambient.enabled, ambient.shareHostNetworkNamespace)',
      ]);
    });
    it("reports a chart it knows nothing about, and a switch that is unknown in preview", async () => {
      expect(messages(await check(noHostNamespaces, helmRelease("ca", "cert-manager", {}, "cert-manager")))).toEqual([
        'chart "cert-manager" is not in the policy\'s chartHostNamespaces, so the host namespaces its pods join are unknown: add it (with none if it joins none)',
      ]);
      const run = await check(noHostNamespaces, kps({ "prometheus-node-exporter": { hostNetwork: unknown, hostPID: false } }));
      expect(run.findings).toEqual([expect.objectContaining({ kind: "unknown" })]);
    });
  });
});

describe("k8s-host-path-allow-list", () => {
  const DS = "kubernetes:apps/v1:DaemonSet";
  const mounts = (...paths: string[]) => ({ volumes: paths.map((path, i) => ({ name: `host-${i}`, hostPath: { path } })) });
  /** The node exporter as kube-prometheus-stack renders it: the subchart's DaemonSet in monitoring. */
  const nodeExporter = (namespace: string, ...paths: string[]) =>
    workload(DS, "kube-prometheus-stack-prometheus-node-exporter", {
      namespace,
      podLabels: { "app.kubernetes.io/name": "prometheus-node-exporter", "helm.sh/chart": "prometheus-node-exporter-4.56.1" },
      podSpec: mounts(...paths),
    });

  it("allows the node exporter its real paths (/proc, /sys, /) in monitoring", async () => {
    expect((await check(hostPathAllowList, nodeExporter("monitoring", "/proc", "/sys", "/"))).findings).toEqual([]);
  });
  it("rejects a look-alike of a node agent outside its namespace: x-alloy, a label alloy, a node exporter in the app namespace", async () => {
    const xAlloy = deployment("x-alloy", { podSpec: mounts("/") });
    expect(messages(await check(hostPathAllowList, xAlloy))).toEqual(['titanium/x-alloy mounts hostPath / (volume "host-0") and is not on the allow-list']);
    const labelled = deployment("logs", { podLabels: { "app.kubernetes.io/name": "alloy", "helm.sh/chart": "alloy-1.11.1" }, podSpec: mounts("/") });
    expect(messages(await check(hostPathAllowList, labelled))).toEqual(['titanium/logs mounts hostPath / (volume "host-0") and is not on the allow-list']);
    const exporterInApp = nodeExporter("titanium", "/proc", "/sys", "/");
    expect(messages(await check(hostPathAllowList, exporterInApp))).toHaveLength(3);
  });
  it("rejects a path the entry does not name, in the entry's own namespace", async () => {
    expect(messages(await check(hostPathAllowList, nodeExporter("monitoring", "/proc", "/etc")))).toEqual([
      'monitoring/kube-prometheus-stack-prometheus-node-exporter mounts hostPath /etc (volume "host-1"), which its allow-list entry does not name',
    ]);
  });
  it("has no entry for the log shipper: Alloy reads logs through the Kubernetes API, with no host mount", async () => {
    const alloy = workload(DS, "alloy", { namespace: "logging", podLabels: { "helm.sh/chart": "alloy-1.11.1" }, podSpec: mounts("/var/log") });
    expect(messages(await check(hostPathAllowList, alloy))).toEqual(['logging/alloy mounts hostPath /var/log (volume "host-0") and is not on the allow-list']);
    expect(DEFAULT_HOST_PATH_ALLOWED.filter((e) => e.charts?.includes("alloy") || e.names?.some((n) => n.includes("alloy")))).toEqual([]);
  });
  it("every default entry names its namespace and its exact host paths", () => {
    for (const e of DEFAULT_HOST_PATH_ALLOWED) {
      expect(e.namespace, e.reason).toEqual(expect.any(String));
      expect(e.hostPaths!.length, e.reason).toBeGreaterThan(0);
    }
  });
  it("follows a stack's own allow-list, whose entries must name a namespace and host paths", async () => {
    const api = deployment("api", { podSpec: mounts("/var/log") });
    expect(messages(await check(hostPathAllowList, api))).toEqual(['titanium/api mounts hostPath /var/log (volume "host-0") and is not on the allow-list']);
    const entry = { names: ["api"], namespace: "titanium", hostPaths: ["/var/log"], reason: "test" };
    expect((await check(hostPathAllowList, api, { config: { allowed: [entry] } })).findings).toEqual([]);
    expect((await check(hostPathAllowList, api, { config: { allowed: [{ ...entry, namespace: "logging" }] } })).findings).toHaveLength(1);
    const resolve = (allowed: unknown) => () => resolvePolicyConfig([hostPathAllowList], { "k8s-host-path-allow-list": { allowed } });
    expect(resolve([{ names: ["api"], hostPaths: ["/"], reason: "test" }])).toThrow(/allowed\[0\]\.namespace: required/);
    expect(resolve([{ names: ["api"], namespace: "titanium", reason: "test" }])).toThrow(/allowed\[0\]\.hostPaths: required/);
  });

  describe("PersistentVolumes backed by a node path (hostPath, local)", () => {
    const pv = (name: string, spec: Record<string, unknown>) =>
      recorded("kubernetes:core/v1:PersistentVolume", name, {
        apiVersion: "v1",
        kind: "PersistentVolume",
        metadata: { name, labels: { "app.kubernetes.io/name": name } },
        spec: { capacity: { storage: "10Gi" }, accessModes: ["ReadWriteOnce"], ...spec },
      });
    const claim = { claimRef: { namespace: "titanium", name: "postgres-data" } };
    it("rejects a hostPath or local PersistentVolume off the allow-list, and one any claim may bind", async () => {
      const run = await check(hostPathAllowList, [
        pv("pg-host", { hostPath: { path: "/var/lib/postgres" }, ...claim }),
        pv("pg-local", { local: { path: "/mnt/disks/ssd0" }, nodeAffinity: {}, ...claim }),
        pv("anyone", { hostPath: { path: "/" } }),
      ]);
      expect(messages(run)).toEqual([
        "PersistentVolume pg-host exposes the node's /var/lib/postgres (spec.hostPath) to claim titanium/postgres-data and is not on the allow-list",
        "PersistentVolume pg-local exposes the node's /mnt/disks/ssd0 (spec.local) to claim titanium/postgres-data and is not on the allow-list",
        "PersistentVolume anyone exposes the node's / (spec.hostPath) to a claim in any namespace (no spec.claimRef), which no allow-list entry can admit",
      ]);
    });
    it("passes volumes of a real storage backend, and follows an entry for the claim's namespace, kind and paths", async () => {
      expect((await check(hostPathAllowList, pv("disk", { csi: { driver: "pd.csi.storage.gke.io", volumeHandle: "projects/p/zones/z/disks/d" }, ...claim }))).findings).toEqual([]);
      const local = pv("pg-local", { local: { path: "/mnt/disks/ssd0" }, ...claim });
      const entry = { names: ["pg-local"], namespace: "titanium", kinds: ["PersistentVolume"], hostPaths: ["/mnt/disks/ssd0"], reason: "test" };
      expect((await check(hostPathAllowList, local, { config: { allowed: [entry] } })).findings).toEqual([]);
      expect((await check(hostPathAllowList, local, { config: { allowed: [{ ...entry, namespace: "monitoring" }] } })).findings).toHaveLength(1);
      expect((await check(hostPathAllowList, local, { config: { allowed: [{ ...entry, kinds: ["DaemonSet"] }] } })).findings).toHaveLength(1);
      // An entry without kinds was written for pods (it matches any kind there): it never admits a volume.
      const { kinds: _kinds, ...kindless } = entry;
      expect((await check(hostPathAllowList, local, { config: { allowed: [kindless] } })).findings).toHaveLength(1);
      expect(messages(await check(hostPathAllowList, local, { config: { allowed: [{ ...entry, hostPaths: ["/mnt/disks/ssd1"] }] } }))).toEqual([
        "PersistentVolume pg-local exposes the node's /mnt/disks/ssd0 (spec.local), which its allow-list entry does not name",
      ]);
      // The default entries are node agents' DaemonSets: none admits a volume, even one named like them in their namespace.
      const lookalike = pv("prometheus-node-exporter", { hostPath: { path: "/proc" }, claimRef: { namespace: "monitoring", name: "x" } });
      expect((await check(hostPathAllowList, lookalike)).findings).toHaveLength(1);
    });
    it("reports a node path that is unknown in preview", async () => {
      const run = await check(hostPathAllowList, pv("pg-host", { hostPath: { path: unknown }, ...claim }));
      expect(run.findings).toEqual([expect.objectContaining({ kind: "unknown" })]);
    });
  });

  describe("Helm releases (the host mounts their values switch on)", () => {
    const kps = (values: Record<string, unknown>, ns = "monitoring") => helmRelease("kps", "kube-prometheus-stack", values, ns);
    const alloy = (values: Record<string, unknown>, ns = "logging") => helmRelease("alloy", "alloy", values, ns);
    it("passes kube-prometheus-stack's node exporter with its default mounts in monitoring, and Alloy without host mounts", async () => {
      expect((await check(hostPathAllowList, [kps({ "prometheus-node-exporter": {} }), alloy({ controller: { type: "deployment" } })])).findings).toEqual([]);
    });
    it("rejects the node exporter's mounts when the release installs into another namespace (unless the exporter is off)", async () => {
      expect(messages(await check(hostPathAllowList, kps({}, "titanium")))).toEqual([
        'chart "kube-prometheus-stack" (namespace titanium): its prometheus-node-exporter pods mount hostPath /proc (always), which no allow-list entry for chart prometheus-node-exporter in namespace titanium names',
        'chart "kube-prometheus-stack" (namespace titanium): its prometheus-node-exporter pods mount hostPath /sys (always), which no allow-list entry for chart prometheus-node-exporter in namespace titanium names',
        'chart "kube-prometheus-stack" (namespace titanium): its prometheus-node-exporter pods mount hostPath / (values prometheus-node-exporter.hostRootFsMount.enabled, on by the chart\'s default), which no allow-list entry for chart prometheus-node-exporter in namespace titanium names',
      ]);
      expect(messages(await check(hostPathAllowList, kps({ "prometheus-node-exporter": { namespaceOverride: "titanium" } })))).toHaveLength(3);
      expect((await check(hostPathAllowList, kps({ nodeExporter: { enabled: false } }, "titanium"))).findings).toEqual([]);
    });
    it("rejects an extra host path in the values, and follows the chart's toggles", async () => {
      const extra = kps({ "prometheus-node-exporter": { extraHostVolumeMounts: [{ name: "etc", hostPath: "/etc", mountPath: "/host/etc", readOnly: true }] } });
      expect(messages(await check(hostPathAllowList, extra))).toEqual([
        'chart "kube-prometheus-stack" (namespace monitoring): its prometheus-node-exporter pods mount hostPath /etc (values prometheus-node-exporter.extraHostVolumeMounts[0].hostPath), which no allow-list entry for chart prometheus-node-exporter in namespace monitoring names',
      ]);
      // Every bundled subchart's values are its own pods', in its namespace (grafana's has no host-mount toggle to list it by).
      const grafana = kps({ grafana: { namespaceOverride: "dashboards", extraVolumes: [{ name: "etc", hostPath: "/etc" }] } });
      expect(messages(await check(hostPathAllowList, grafana))).toEqual([
        'chart "kube-prometheus-stack" (namespace dashboards): its grafana pods mount hostPath /etc (values grafana.extraVolumes[0].hostPath), which no allow-list entry for chart grafana in namespace dashboards names',
      ]);
      expect(messages(await check(hostPathAllowList, alloy({ alloy: { mounts: { varlog: true } } })))).toEqual([
        'chart "alloy" (namespace logging): its pods mount hostPath /var/log (values alloy.mounts.varlog), which no allow-list entry for chart alloy in namespace logging names',
      ]);
      expect(messages(await check(hostPathAllowList, alloy({ controller: { volumes: { extra: [{ name: "root", hostPath: { path: "/" } }] } } })))).toEqual([
        'chart "alloy" (namespace logging): its pods mount hostPath / (values controller.volumes.extra[0].hostPath), which no allow-list entry for chart alloy in namespace logging names',
      ]);
      const fileTailing = { charts: ["alloy"], namespace: "logging", hostPaths: ["/var/log"], reason: "file tailing" };
      expect((await check(hostPathAllowList, alloy({ alloy: { mounts: { varlog: true } } }), { config: { allowed: [fileTailing] } })).findings).toEqual([]);
    });
    it("judges the Istio CNI agent's mounts, at the paths its values set", async () => {
      const k3s = { cniBinDir: K3S_CNI_DIRS.binDir, cniConfDir: K3S_CNI_DIRS.confDir };
      expect((await check(hostPathAllowList, helmRelease("cni", "cni", k3s))).findings).toEqual([]);
      // The chart's own defaults (/opt/cni/bin, /etc/cni/net.d) are not K3s' directories: not allow-listed.
      expect(messages(await check(hostPathAllowList, helmRelease("cni", "cni", {})))).toEqual([
        'chart "cni" (namespace istio-system): its pods mount hostPath /opt/cni/bin (always), which no allow-list entry for chart cni in namespace istio-system names',
        'chart "cni" (namespace istio-system): its pods mount hostPath /etc/cni/net.d (always), which no allow-list entry for chart cni in namespace istio-system names',
      ]);
      expect(messages(await check(hostPathAllowList, helmRelease("cni", "cni", { ...k3s, ambient: { enabled: true } })))).toEqual([
        'chart "cni" (namespace istio-system): its pods mount hostPath /var/run/ztunnel (values ambient.enabled), which no allow-list entry for chart cni in namespace istio-system names',
      ]);
      expect(messages(await check(hostPathAllowList, helmRelease("cni", "cni", k3s, "kube-system")))).toHaveLength(5);
    });
    it("reports a release of a chart it knows nothing about, instead of passing it", async () => {
      expect(messages(await check(hostPathAllowList, helmRelease("ca", "cert-manager", {}, "cert-manager")))).toEqual([
        'chart "cert-manager" is not in the policy\'s chartHostMounts, so the host paths its pods mount are unknown: add it (with no mounts if it has none)',
      ]);
    });
    it("reports an explicit host path that is unknown in preview", async () => {
      const run = await check(hostPathAllowList, alloy({ controller: { volumes: { extra: [{ name: "x", hostPath: unknown }] } } }));
      expect(run.findings).toEqual([expect.objectContaining({ kind: "unknown" })]);
    });
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
    ["nginx@sha256:", "has a malformed digest (nginx@sha256:)"],
    ["nginx:", "has a malformed tag (nginx:)"],
    ["localhost:5000/nginx:", "has a malformed tag (localhost:5000/nginx:)"],
    ["nginx:-1", "has a malformed tag (nginx:-1)"],
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
    // An unknown list element (an Output in an args list) is one key the policy ignores: the walk goes on past it.
    const listed = await check(imagePinned, helmRelease("alloy", "alloy", { extraArgs: ["--a", unknown, "--b"], later: [{ image: { tag: "latest" } }] }));
    expect(messages(listed)).toEqual(['values later[0].image.tag is "latest"']);
  });
  it("judges the image of a container spec passed through chart values like a pod's: untagged means latest", async () => {
    const values = (image: string) => ({ controller: { extraContainers: [{ name: "debug", image }] } });
    expect((await check(imagePinned, helmRelease("alloy", "alloy", values("busybox:1.37.0")))).findings).toEqual([]);
    expect(messages(await check(imagePinned, helmRelease("alloy", "alloy", values("busybox"))))).toEqual([
      'values controller.extraContainers[0] (container "debug") is not pinned (busybox has no tag or digest, so it means :latest)',
    ]);
    expect(messages(await check(imagePinned, helmRelease("alloy", "alloy", values("busybox:latest"))))).toEqual([
      "values controller.extraContainers[0].image uses the mutable tag latest (busybox:latest)",
    ]);
  });
  it("judges image references in chart values that claim a tag or digest, and an image object's version, like a pod's", async () => {
    const judged = async (values: Record<string, unknown>) => messages(await check(imagePinned, helmRelease("alloy", "alloy", values)));
    expect(await judged({ image: { repository: "busybox:latest" } })).toEqual(["values image.repository uses the mutable tag latest (busybox:latest)"]);
    expect(await judged({ sidecar: { image: "busybox@sha256:" } })).toEqual(["values sidecar.image has a malformed digest (busybox@sha256:)"]);
    expect(await judged({ sidecar: { image: "busybox:" } })).toEqual(["values sidecar.image has a malformed tag (busybox:)"]);
    expect(await judged({ image: { repository: "busybox", version: "latest" } })).toEqual(['values image.version is "latest"']);
    // Untagged references are composed by the chart with a tag of its own (Istio's `image: pilot`), a
    // registry port is no tag, and a `repository` outside an image object is a Git URL.
    expect(
      await judged({
        pilot: { image: "pilot" },
        global: { hub: "docker.io/istio", tag: "1.30.3" },
        proxy: { image: { repository: "localhost:5000/proxyv2", tag: "1.30.3" } },
        pinned: { image: { repository: `ghcr.io/x/y@sha256:${"b".repeat(64)}` } },
        source: { repository: "git@github.com:titanium-platform/titanium.git", version: "latest" },
      }),
    ).toEqual([]);
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
  it("catches kube-prometheus-stack's external Thanos Service, LoadBalancer by default once it is switched on", async () => {
    // prometheus.thanosServiceExternal.type defaults to LoadBalancer (kube-prometheus-stack 88.5.3 values.yaml).
    const kps = (values: Record<string, unknown>) => helmRelease("kps", "kube-prometheus-stack", values, "monitoring");
    expect((await check(noLoadBalancerService, kps({}))).findings).toEqual([]);
    expect((await check(noLoadBalancerService, kps({ prometheus: { thanosServiceExternal: { enabled: false } } }))).findings).toEqual([]);
    expect((await check(noLoadBalancerService, kps({ prometheus: { thanosServiceExternal: { enabled: true, type: "ClusterIP" } } }))).findings).toEqual([]);
    expect(messages(await check(noLoadBalancerService, kps({ prometheus: { thanosServiceExternal: { enabled: true } } })))).toEqual([
      'chart "kube-prometheus-stack" defaults prometheus.thanosServiceExternal.type to LoadBalancer (on: prometheus.thanosServiceExternal.enabled) and the values do not set it',
    ]);
  });
});

describe("k8s-no-guarded-patches", () => {
  const patch = (type: string, name: string) => recorded(type, name, { metadata: { name, namespace: "titanium" } });
  it("refuses patches of the kinds the other policies judge, in any API version", async () => {
    const run = await check(noGuardedPatches, [
      patch("kubernetes:apps/v1:DeploymentPatch", "api-gateway"),
      patch("kubernetes:core/v1:ServicePatch", "gateway"),
      patch("kubernetes:core/v1:NamespacePatch", "titanium"),
      patch("kubernetes:batch/v1:CronJobPatch", "backup"),
      patch("kubernetes:security.istio.io/v1beta1:PeerAuthenticationPatch", "default"),
      patch("kubernetes:networking.k8s.io/v1:NetworkPolicyPatch", "default-deny"),
    ]);
    expect(messages(run)).toEqual([
      "kubernetes:apps/v1:DeploymentPatch api-gateway patches a Deployment the policies cannot judge as a whole",
      "kubernetes:core/v1:ServicePatch gateway patches a Service the policies cannot judge as a whole",
      "kubernetes:core/v1:NamespacePatch titanium patches a Namespace the policies cannot judge as a whole",
      "kubernetes:batch/v1:CronJobPatch backup patches a CronJob the policies cannot judge as a whole",
      "kubernetes:security.istio.io/v1beta1:PeerAuthenticationPatch default patches a PeerAuthentication the policies cannot judge as a whole",
      "kubernetes:networking.k8s.io/v1:NetworkPolicyPatch default-deny patches a NetworkPolicy the policies cannot judge as a whole",
    ]);
  });
  it("refuses patches of PersistentVolumes (a hostPath behind a claim) and MutatingWebhookConfigurations (which pods istiod injects)", async () => {
    const run = await check(noGuardedPatches, [
      recorded("kubernetes:core/v1:PersistentVolumePatch", "pv", { metadata: { name: "pv" } }),
      recorded("kubernetes:admissionregistration.k8s.io/v1:MutatingWebhookConfigurationPatch", "injector", { metadata: { name: "istio-sidecar-injector" } }),
    ]);
    expect(messages(run)).toEqual([
      "kubernetes:core/v1:PersistentVolumePatch pv patches a PersistentVolume the policies cannot judge as a whole",
      "kubernetes:admissionregistration.k8s.io/v1:MutatingWebhookConfigurationPatch injector patches a MutatingWebhookConfiguration the policies cannot judge as a whole",
    ]);
  });
  it("refuses patches of istiod's ConfigMaps (the mesh config, the sidecar injector), not of other ConfigMaps", async () => {
    const cm = (name: string, ns: string) => recorded("kubernetes:core/v1:ConfigMapPatch", `${ns}-${name}`, { metadata: { name, namespace: ns }, data: {} });
    const run = await check(noGuardedPatches, [cm("istio-sidecar-injector", "istio-system"), cm("istio", "istio-system"), cm("istio-canary", "istio-system"), cm("istio", "titanium"), cm("grafana", "istio-system")]);
    expect(messages(run)).toEqual([
      "kubernetes:core/v1:ConfigMapPatch istio-system-istio-sidecar-injector patches ConfigMap istio-system/istio-sidecar-injector, istiod's configuration (mesh config, sidecar injection), which no policy judges",
      "kubernetes:core/v1:ConfigMapPatch istio-system-istio patches ConfigMap istio-system/istio, istiod's configuration (mesh config, sidecar injection), which no policy judges",
      "kubernetes:core/v1:ConfigMapPatch istio-system-istio-canary patches ConfigMap istio-system/istio-canary, istiod's configuration (mesh config, sidecar injection), which no policy judges",
    ]);
    // A ConfigMapPatch whose target is unknown in preview may be one of them: reported, not passed.
    const hidden = recorded("kubernetes:core/v1:ConfigMapPatch", "x", { metadata: { name: unknown, namespace: "istio-system" } });
    expect((await check(noGuardedPatches, hidden)).findings).toEqual([expect.objectContaining({ kind: "unknown" })]);
  });
  it("allows patches of other kinds (the platform's AppProject) and whole objects", async () => {
    const run = await check(noGuardedPatches, [patch("kubernetes:argoproj.io/v1alpha1:AppProjectPatch", "default"), patch("kubernetes:core/v1:ConfigMapPatch", "x"), deployment("api-gateway")]);
    expect(run.findings).toEqual([]);
  });
  it("covers every pod-bearing kind the pack knows", () => {
    for (const type of Object.keys(POD_TEMPLATE_PATHS)) expect(patchedKind(`${type}Patch`), type).toMatch(/^[\w.]+:\w+$/);
  });
});

describe("k8s-namespace-pod-security", () => {
  const ns = (name: string, enforce?: string) => namespace(name, enforce === undefined ? {} : { "pod-security.kubernetes.io/enforce": enforce });
  it("passes the platform's levels: restricted application, privileged only where node agents run, baseline elsewhere", async () => {
    const run = await check(namespacePodSecurity, [ns("titanium", "restricted"), ns("istio-system", "privileged"), ns("monitoring", "privileged"), ns("gce-pd-csi-driver", "privileged"), ns("argocd", "baseline"), ns("team-search", "restricted")]);
    expect(run.findings).toEqual([]);
  });
  it("rejects a missing or invalid level, a lax application namespace and a privileged one not on the list", async () => {
    const run = await check(namespacePodSecurity, [ns("logging"), ns("argocd", "Baseline"), ns("titanium", "baseline"), ns("titanium-jobs", "privileged"), ns("team-search", "privileged")]);
    expect(messages(run)).toEqual([
      "namespace logging does not set pod-security.kubernetes.io/enforce: expected one of privileged, baseline, restricted",
      'namespace argocd sets an invalid pod-security.kubernetes.io/enforce ("Baseline"): expected one of privileged, baseline, restricted',
      'application namespace titanium enforces "baseline": expected "restricted"',
      'application namespace titanium-jobs enforces "privileged": expected "restricted"',
      'namespace titanium-jobs enforces "privileged", which only the allow-listed namespaces may (istio-system, monitoring, gce-pd-csi-driver)',
      'namespace team-search enforces "privileged", which only the allow-listed namespaces may (istio-system, monitoring, gce-pd-csi-driver)',
    ]);
  });
  it("rejects a Helm release that creates its own namespace (createNamespace): Helm gives it no Pod Security level", async () => {
    const release = (createNamespace?: boolean) => {
      const r = helmRelease("node-agent", "cni", {}, "node-agent");
      if (createNamespace !== undefined) r.inputs.createNamespace = createNamespace;
      return r;
    };
    expect(messages(await check(namespacePodSecurity, release(true)))).toEqual([
      'Helm release of chart "cni" creates its namespace node-agent itself (createNamespace: true), without a pod-security.kubernetes.io/enforce level: create the Namespace in the program instead',
    ]);
    for (const ok of [release(false), release()]) expect((await check(namespacePodSecurity, ok)).findings).toEqual([]);
    const hidden = release();
    hidden.inputs.createNamespace = unknown;
    expect((await check(namespacePodSecurity, hidden)).findings).toEqual([expect.objectContaining({ kind: "unknown" })]);
  });
});

describe("k8s-read-only-root-filesystem: exemptions", () => {
  const writable = (name: string) => container(name, { securityContext: { ...(container(name).securityContext as object), readOnlyRootFilesystem: false } });
  const web = () => deployment("web", { containers: [writable("a"), writable("b")] });
  it("an entry naming containers covers only those: the workload's other containers are still judged", async () => {
    const exempt = [{ names: ["web"], containers: ["a"], reason: "a writes its cache into the image" }];
    expect(messages(await check(readOnlyRootFilesystem, web(), { config: { exempt } }))).toEqual(['titanium/web container "b" has a writable root filesystem']);
  });
  it("an entry naming no containers covers every container of the workload, and only that workload", async () => {
    const exempt = [{ names: ["web"], reason: "legacy image" }];
    expect((await check(readOnlyRootFilesystem, web(), { config: { exempt } })).findings).toEqual([]);
    const other = deployment("api", { containers: [writable("a")] });
    expect(messages(await check(readOnlyRootFilesystem, other, { config: { exempt } }))).toEqual(['titanium/api container "a" has a writable root filesystem']);
  });
});
