/**
 * The GCE PD CSI driver through the whole program, both stacks: installed, pinned, sized,
 * authenticated by the agents' service account (no key anywhere), on the nodes the cloud layer
 * lets attach disks, and in front of the database (ADR 0022).
 */
import { beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../stacks/config";
import { ofType, one, type ProgramRun, ProgramError, readStackConfig, type RecordedResource, configuredRun, runProgram } from "../../stacks/harness";
import { kubeletArgs, NODE_POOL_LABEL } from "../cluster/capacity";
import { PD_CSI_DRIVER_NAME } from "../gcp/names";
import { capacityReport, daemonSetNodes } from "./capacity";
import { PD_CSI } from "./names";
import { PD_CSI_NODE_HOST_PATHS } from "./pd-csi-driver";

type Obj = Record<string, any>; // oxlint-disable-line typescript/no-explicit-any -- recorded inputs are untyped JSON
const input = (r: RecordedResource) => r.inputs as Obj;
const podSpec = (r: RecordedResource): Obj => input(r).spec.template.spec;
const T = {
  csiDriver: "kubernetes:storage.k8s.io/v1:CSIDriver",
  storageClass: "kubernetes:storage.k8s.io/v1:StorageClass",
  deployment: "kubernetes:apps/v1:Deployment",
  daemonSet: "kubernetes:apps/v1:DaemonSet",
  statefulSet: "kubernetes:apps/v1:StatefulSet",
  namespace: "kubernetes:core/v1:Namespace",
};

const runs: Record<string, ProgramRun> = {};
beforeAll(async () => {
  for (const stack of ["dev", "prod"]) runs[stack] = await configuredRun(stack);
});

/** True when `r` depends on `dep`, directly or through the chain of explicit dependencies. */
function dependsOn(run: ProgramRun, r: RecordedResource, dep: RecordedResource, seen = new Set<string>()): boolean {
  for (const urn of r.dependsOn) {
    if (urn === dep.urn) return true;
    if (seen.has(urn)) continue;
    seen.add(urn);
    const next = run.resources.find((x) => x.urn === urn);
    if (next && dependsOn(run, next, dep, seen)) return true;
  }
  return false;
}

describe.each(["dev", "prod"])("GCE PD CSI driver (%s)", (stack) => {
  const run = () => runs[stack]!;
  const config = () => loadConfig(stack, readStackConfig(stack));
  const controller = () => one(run(), T.deployment, "platform-pd-csi-controller");
  const node = () => one(run(), T.daemonSet, "platform-pd-csi-node");
  const containers = (r: RecordedResource) => podSpec(r).containers as Obj[];

  it("registers the driver under the name the database's StorageClass provisions with", () => {
    const driver = one(run(), T.csiDriver, "platform-pd-csi-csidriver");
    expect(input(driver).metadata.name).toBe(PD_CSI_DRIVER_NAME);
    expect(input(driver).spec).toMatchObject({ attachRequired: true, podInfoOnMount: false, fsGroupPolicy: "ReadWriteOnceWithFSType" });
    // One class per Persistent Disk type the volumes use (the database's, observability.diskType's), shared.
    const c = config();
    const pdTypes = new Set([c.data.postgres.diskType, c.observability.diskType].filter((t) => t !== "local-path"));
    const classes = ofType(run(), T.storageClass);
    expect(classes.map((sc) => input(sc).metadata.name).sort()).toEqual([...pdTypes].map((t) => `titanium-${t}`).sort());
    for (const c of classes) expect(input(c).provisioner).toBe(input(driver).metadata.name);
    // The namespace admits privileged pods (the node plugin) and is not meshed.
    const ns = input(one(run(), T.namespace, `platform-namespaces-${PD_CSI.namespace}`)).metadata.labels;
    expect(ns).toMatchObject({ "pod-security.kubernetes.io/enforce": "privileged" });
    expect(ns["istio-injection"]).toBeUndefined();
  });

  it("runs pinned images with the configured requests and limits on every container", () => {
    const c = config().storage.pdCsiDriver;
    const byName = (r: RecordedResource) => Object.fromEntries(containers(r).map((x) => [x.name, x]));
    const ctl = byName(controller());
    const nd = byName(node());
    expect(Object.keys(ctl).sort()).toEqual(["csi-attacher", "csi-provisioner", "csi-resizer", "gce-pd-driver"]);
    expect(Object.keys(nd).sort()).toEqual(["csi-driver-registrar", "gce-pd-driver"]);
    expect([ctl["csi-provisioner"].image, ctl["csi-attacher"].image, ctl["csi-resizer"].image, ctl["gce-pd-driver"].image, nd["csi-driver-registrar"].image, nd["gce-pd-driver"].image]).toEqual([
      c.images.provisioner,
      c.images.attacher,
      c.images.resizer,
      c.images.driver,
      c.images.registrar,
      c.images.driver,
    ]);
    for (const image of Object.values(c.images)) expect(image).toMatch(/^registry\.k8s\.io\/[a-z0-9/-]+:v\d+\.\d+\.\d+$/);
    expect(ctl["gce-pd-driver"].resources).toEqual(c.resources.controllerDriver);
    expect(ctl["csi-provisioner"].resources).toEqual(c.resources.provisioner);
    expect(ctl["csi-attacher"].resources).toEqual(c.resources.attacher);
    expect(ctl["csi-resizer"].resources).toEqual(c.resources.resizer);
    expect(nd["gce-pd-driver"].resources).toEqual(c.resources.nodeDriver);
    expect(nd["csi-driver-registrar"].resources).toEqual(c.resources.registrar);
  });

  it("authenticates as the node's service account through the metadata server: no key, no credentials file, no host network", () => {
    for (const r of [controller(), node()]) {
      const spec = podSpec(r);
      expect(spec.hostNetwork, r.name).toBeUndefined();
      expect(JSON.stringify(spec)).not.toMatch(/GOOGLE_APPLICATION_CREDENTIALS|cloud-sa|--cloud-config|secretName/);
      expect((spec.volumes as Obj[]).filter((v) => v.secret || v.projected)).toEqual([]);
    }
    const driverArgs = containers(controller()).find((x) => x.name === PD_CSI.driverContainer)!.args as string[];
    expect(driverArgs).toEqual(expect.arrayContaining(["--run-node-service=false"]));
    // The node plugin needs no Kubernetes API access at all.
    expect(podSpec(node()).automountServiceAccountToken).toBe(false);
  });

  it("runs the controller and the node plugin only on the agents, whose service account may attach disks", () => {
    const agents = { [NODE_POOL_LABEL]: "agents" };
    for (const r of [controller(), node()]) expect(podSpec(r).nodeSelector, r.name).toEqual({ "kubernetes.io/os": "linux", ...agents });
    // The database's pod goes where its disk can attach.
    expect(podSpec(one(run(), T.statefulSet, "apps-postgres-statefulset")).nodeSelector).toEqual(agents);
    // The agents run as their own account with the cloud-platform scope (IAM, not scopes, limits the driver).
    const template = one(run(), "gcp:compute/instanceTemplate:InstanceTemplate", `titanium-${stack}-agent-template`);
    expect(input(template).serviceAccount).toEqual({ email: `titanium-${stack}-agent@titanium-${stack}-4821.iam.gserviceaccount.com`, scopes: ["https://www.googleapis.com/auth/cloud-platform"] });
    expect(input(template).labels["cloud-platform-justification"]).toBeTruthy();
    expect(input(controller()).spec.replicas).toBe(stack === "prod" ? 2 : 1);
  });

  it("keeps the node plugin until the last phase of a node shutdown (critical priority), after the pods whose disks it unmounts", () => {
    // The kubelet's graceful node shutdown stops pods of priority >= 2000000000 (the system classes) in
    // its critical phase, after every other pod; Kubernetes' own system-node-critical is 2000001000.
    expect(podSpec(node()).priorityClassName).toBe("system-node-critical");
    expect(ofType(run(), "kubernetes:scheduling.k8s.io/v1:PriorityClass").map((p) => input(p).metadata.name)).toEqual(["csi-gce-pd-controller"]);
    expect(kubeletArgs("agents")).toContain("shutdown-grace-period-critical-pods=5s");
  });

  it("mounts disks through K3s' kubelet directory, registered where the kubelet looks", () => {
    // K3s keeps the kubelet's root at the upstream default; the cluster layer does not move it.
    for (const pool of ["servers", "agents"] as const) expect(kubeletArgs(pool).join(" ")).not.toMatch(/root-dir/);
    const spec = podSpec(node());
    const registrar = (spec.containers as Obj[]).find((x) => x.name === "csi-driver-registrar")!;
    const driver = (spec.containers as Obj[]).find((x) => x.name === PD_CSI.driverContainer)!;
    expect(registrar.args).toContain(`--kubelet-registration-path=/var/lib/kubelet/plugins/${PD_CSI_DRIVER_NAME}/csi.sock`);
    expect(driver.volumeMounts).toContainEqual({ name: "kubelet-dir", mountPath: "/var/lib/kubelet", mountPropagation: "Bidirectional" });
    const hostPaths = Object.fromEntries((spec.volumes as Obj[]).filter((v) => v.hostPath).map((v) => [v.name, v.hostPath.path]));
    expect(hostPaths).toEqual(Object.fromEntries(Object.entries(PD_CSI_NODE_HOST_PATHS).map(([k, v]) => [k, v.path])));
    expect(hostPaths["plugin-dir"]).toBe(`/var/lib/kubelet/plugins/${PD_CSI_DRIVER_NAME}`);
    // Only the node plugin's driver is privileged; everything else drops every capability and writes nothing to its image.
    expect(driver.securityContext).toEqual({ privileged: true, readOnlyRootFilesystem: true });
    for (const c of [...containers(controller()), registrar]) {
      expect(c.securityContext, c.name).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } });
    }
    expect(podSpec(controller()).securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } });
  });

  it("is ready before the database: its StorageClass, claim and StatefulSet wait for the driver", () => {
    const ready = [one(run(), T.csiDriver, "platform-pd-csi-csidriver"), controller(), node()];
    for (const r of [
      one(run(), T.storageClass, `platform-pd-csi-${config().data.postgres.diskType}`),
      one(run(), "kubernetes:core/v1:PersistentVolumeClaim", "apps-postgres-data"),
      one(run(), T.statefulSet, "apps-postgres-statefulset"),
    ]) {
      for (const dep of ready) expect(dependsOn(run(), r, dep), `${r.name} → ${dep.name}`).toBe(true);
    }
  });

  it("outlives the namespaces whose pods mount its disks: a destroy deletes them, and waits for their pods, before the driver", () => {
    for (const name of ["monitoring", "logging", "titanium"]) {
      const namespace = one(run(), T.namespace, `platform-namespaces-${name}`);
      for (const dep of [controller(), node()]) expect(dependsOn(run(), namespace, dep), `${name} → ${dep.name}`).toBe(true);
    }
    // Not the driver's own namespace (that would be a cycle), nor the others.
    expect(dependsOn(run(), one(run(), T.namespace, `platform-namespaces-${PD_CSI.namespace}`), node())).toBe(false);
  });

  it("counts the driver's pods in the capacity check: the controller's replicas and a node plugin per agent", () => {
    const c = config();
    const report = capacityReport(run(), c);
    const line = (w: string) => report.lines.find((l) => l.workload === w);
    expect(line(`Deployment ${PD_CSI.namespace}/${PD_CSI.controller}`)?.pods).toBe(stack === "prod" ? 2 : 1);
    expect(line(`DaemonSet ${PD_CSI.namespace}/${PD_CSI.node}`)?.pods).toBe(c.cluster.agents.count);
    expect(report.fits).toBe(true);
  });
});

describe("GCE PD CSI driver settings", () => {
  it("makes one StorageClass per disk type in use: observability on pd-ssd and the database on pd-balanced get one each", async () => {
    const observability = JSON.parse(readStackConfig("prod")["titanium:observability"] ?? "{}") as Record<string, unknown>;
    const run = await runProgram({ stack: "prod", config: { observability: { ...observability, diskType: "pd-ssd" } } });
    const classes = Object.fromEntries(ofType(run, T.storageClass).map((sc) => [(sc.inputs.metadata as { name: string }).name, sc]));
    expect(Object.keys(classes).sort()).toEqual(["titanium-pd-balanced", "titanium-pd-ssd"]);
    for (const [name, sc] of Object.entries(classes)) {
      expect(sc.inputs).toMatchObject({ provisioner: PD_CSI_DRIVER_NAME, parameters: { type: name.replace("titanium-", "") }, reclaimPolicy: "Retain", volumeBindingMode: "WaitForFirstConsumer" });
      expect(sc.deleteBeforeReplace).toBe(true);
    }
    const claim = one(run, "kubernetes:core/v1:PersistentVolumeClaim", "apps-postgres-data");
    expect((claim.inputs.spec as { storageClassName: string }).storageClassName).toBe("titanium-pd-balanced");
    const kps = one(run, "kubernetes:helm.sh/v3:Release", "platform-monitoring-kube-prometheus-stack").inputs.values as { grafana: { persistence: { storageClassName: string } } };
    expect(kps.grafana.persistence.storageClassName).toBe("titanium-pd-ssd");
  });

  it("places a DaemonSet's pods by its nodeSelector and the dedicated servers' taint", () => {
    const pools = [
      { pool: "servers", count: 3, schedulable: false },
      { pool: "agents", count: 4, schedulable: true },
    ] as Parameters<typeof daemonSetNodes>[1];
    expect(daemonSetNodes({}, pools)).toBe(4);
    expect(daemonSetNodes({ tolerations: [{ operator: "Exists" }] }, pools)).toBe(7);
    expect(daemonSetNodes({ tolerations: [{ key: "CriticalAddonsOnly", operator: "Exists" }] }, pools)).toBe(7);
    expect(daemonSetNodes({ tolerations: [{ key: "CriticalAddonsOnly", operator: "Exists", effect: "NoSchedule" }] }, pools)).toBe(4);
    expect(daemonSetNodes({ nodeSelector: { [NODE_POOL_LABEL]: "agents" }, tolerations: [{ operator: "Exists" }] }, pools)).toBe(4);
    expect(daemonSetNodes({ nodeSelector: { [NODE_POOL_LABEL]: "servers" }, tolerations: [{ operator: "Exists" }] }, pools)).toBe(3);
    expect(daemonSetNodes({ nodeSelector: { "kubernetes.io/os": "windows" } }, pools)).toBe(0);
  });

  it.each([
    ["an unpinned driver image", { storage: { pdCsiDriver: { images: { driver: "registry.k8s.io/cloud-provider-gcp/gcp-compute-persistent-disk-csi-driver" } } } }, "titanium:storage.pdCsiDriver.images.driver", "pinned by tag or digest"],
    ["a container without limits", { storage: { pdCsiDriver: { resources: { nodeDriver: { requests: { cpu: "10m", memory: "32Mi" } } } } } }, "titanium:storage.pdCsiDriver.resources.nodeDriver.limits", "expected object"],
    ["a database disk below the PD minimum", { data: { postgres: { storageGi: 5 } } }, "titanium:data.postgres.storageGi", "at least 10 GiB for a GCE Persistent Disk"],
  ])("refuses %s, naming the key", async (_what, config, key, message) => {
    const err = await runProgram({ stack: "dev", config }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ProgramError);
    expect((err as Error).message).toContain(`${key}: `);
    expect((err as Error).message).toContain(message);
  });

  it("lets a node-local database disk be small (no PD is created)", async () => {
    const run = await runProgram({ stack: "dev", config: { data: { postgres: { diskType: "local-path", storageGi: 5 } }, cluster: { servers: { bootDiskGb: 30 }, agents: { bootDiskGb: 30 } } } });
    expect(input(one(run, "kubernetes:core/v1:PersistentVolumeClaim", "apps-postgres-data")).spec.resources.requests.storage).toBe("5Gi");
    expect(podSpec(one(run, T.statefulSet, "apps-postgres-statefulset")).nodeSelector).toBeUndefined();
  });
});
