/**
 * The allow-list entries for the GCE PD CSI node plugin (hostPath, privileged, root) admit that
 * workload as the platform registers it, and nothing else: not the same pod elsewhere, under another
 * name or kind, not another container of it, not one more host path.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { PD_CSI_NODE_HOST_PATHS } from "../../components/platform/pd-csi-driver";
import { one, type RecordedResource, configuredRun } from "../../stacks/harness";
import type { WorkloadMatcher } from "../lib/k8s";
import { check, messages } from "../testing/check";
import { put } from "../testing/mutate";
import { DEFAULT_HOST_PATH_ALLOWED, hostPathAllowList } from "./host-path";
import { DEFAULT_PRIVILEGED_ALLOWED, noPrivilege } from "./no-privilege";
import { DEFAULT_ROOT_EXEMPT, runAsNonRoot } from "./non-root";

const DAEMON_SET = "kubernetes:apps/v1:DaemonSet";
let node: RecordedResource;
let controller: RecordedResource;
beforeAll(async () => {
  const run = await configuredRun("dev");
  node = one(run, DAEMON_SET, "platform-pd-csi-node");
  controller = one(run, "kubernetes:apps/v1:Deployment", "platform-pd-csi-controller");
});

const copy = (r: RecordedResource, edit: (c: RecordedResource) => void = () => {}) => {
  const c = structuredClone(r);
  edit(c);
  return c;
};
const POLICIES = [hostPathAllowList, noPrivilege, runAsNonRoot] as const;
/** Findings of the three policies, at mandatory level (as in prod). */
async function findings(r: RecordedResource): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const p of POLICIES) out[p.name] = messages(await check(p, r, { level: "mandatory" }));
  return out;
}
const csiEntry = (list: WorkloadMatcher[]) => list.filter((e) => e.names?.includes("csi-gce-pd-node"));

describe("the PD CSI node plugin's allow-list entries", () => {
  it("admit the node plugin as the platform registers it (privileged driver, root registrar, its host paths)", async () => {
    expect(await findings(node)).toEqual({ "k8s-host-path-allow-list": [], "k8s-no-privilege": [], "k8s-run-as-non-root": [] });
    // The controller needs none of them: it passes as an ordinary workload.
    expect(await findings(controller)).toEqual({ "k8s-host-path-allow-list": [], "k8s-no-privilege": [], "k8s-run-as-non-root": [] });
  });

  it("name exactly the host paths the node plugin mounts, one entry per policy", () => {
    const [hostPaths] = csiEntry(DEFAULT_HOST_PATH_ALLOWED);
    expect(csiEntry(DEFAULT_HOST_PATH_ALLOWED)).toHaveLength(1);
    expect([...hostPaths!.hostPaths!].sort()).toEqual(Object.values(PD_CSI_NODE_HOST_PATHS).map((v) => v.path).sort());
    expect(csiEntry(DEFAULT_PRIVILEGED_ALLOWED)).toEqual([expect.objectContaining({ containers: ["gce-pd-driver"], kinds: ["DaemonSet"], namespace: "gce-pd-csi-driver" })]);
    expect(csiEntry(DEFAULT_ROOT_EXEMPT)).toEqual([expect.objectContaining({ kinds: ["DaemonSet"], namespace: "gce-pd-csi-driver" })]);
    for (const e of [...DEFAULT_HOST_PATH_ALLOWED, ...DEFAULT_PRIVILEGED_ALLOWED, ...DEFAULT_ROOT_EXEMPT]) expect(e.reason.length).toBeGreaterThan(20);
  });

  it("do not admit the same pod in another namespace, under another name, or as another kind", async () => {
    const moved = copy(node, (c) => put(c, "metadata.namespace", "titanium"));
    const renamed = copy(node, (c) => {
      put(c, "metadata.name", "disk-helper");
      put(c, 'metadata.labels."app.kubernetes.io/name"', "disk-helper");
      put(c, 'spec.template.metadata.labels."app.kubernetes.io/name"', "disk-helper");
    });
    const asDeployment: RecordedResource = { ...copy(node, (c) => put(c, "kind", "Deployment")), type: "kubernetes:apps/v1:Deployment" };
    for (const r of [moved, renamed, asDeployment]) {
      const f = await findings(r);
      expect(f["k8s-host-path-allow-list"], r.name).toHaveLength(Object.keys(PD_CSI_NODE_HOST_PATHS).length);
      expect(f["k8s-host-path-allow-list"]![0]).toMatch(/is not on the allow-list$/);
      expect(f["k8s-no-privilege"]).toEqual([expect.stringMatching(/container "gce-pd-driver" is privileged$/), expect.stringMatching(/container "gce-pd-driver" does not forbid privilege escalation/)]);
      expect(f["k8s-run-as-non-root"]).toHaveLength(2);
    }
  });

  it("do not admit one more host path, another privileged container, or the controller privileged", async () => {
    const rootMount = copy(node, (c) => {
      const volumes = (c.inputs.spec as { template: { spec: { volumes: unknown[] } } }).template.spec.volumes;
      volumes.push({ name: "host-root", hostPath: { path: "/" } }, { name: "containerd", hostPath: { path: "/run/k3s/containerd/containerd.sock" } });
    });
    expect(messages(await check(hostPathAllowList, rootMount, { level: "mandatory" }))).toEqual([
      'gce-pd-csi-driver/csi-gce-pd-node mounts hostPath / (volume "host-root"), which its allow-list entry does not name',
      'gce-pd-csi-driver/csi-gce-pd-node mounts hostPath /run/k3s/containerd/containerd.sock (volume "containerd"), which its allow-list entry does not name',
    ]);

    const registrar = copy(node, (c) => put(c, "spec.template.spec.containers[0].securityContext.privileged", true));
    expect(messages(await check(noPrivilege, registrar, { level: "mandatory" }))).toEqual(['gce-pd-csi-driver/csi-gce-pd-node container "csi-driver-registrar" is privileged']);

    const extra = copy(node, (c) => {
      const containers = (c.inputs.spec as { template: { spec: { containers: Record<string, unknown>[] } } }).template.spec.containers;
      containers.push({ ...structuredClone(containers[1]!), name: "debug" });
    });
    expect(messages(await check(noPrivilege, extra, { level: "mandatory" }))).toEqual([
      'gce-pd-csi-driver/csi-gce-pd-node container "debug" is privileged',
      'gce-pd-csi-driver/csi-gce-pd-node container "debug" does not forbid privilege escalation (allowPrivilegeEscalation: false)',
    ]);
    expect(messages(await check(runAsNonRoot, extra, { level: "mandatory" }))).toEqual(['gce-pd-csi-driver/csi-gce-pd-node container "debug" may run as root']);

    const privilegedController = copy(controller, (c) => put(c, "spec.template.spec.containers[3].securityContext", { privileged: true }));
    expect(messages(await check(noPrivilege, privilegedController, { level: "mandatory" }))).toEqual([
      'gce-pd-csi-driver/csi-gce-pd-controller container "gce-pd-driver" is privileged',
      'gce-pd-csi-driver/csi-gce-pd-controller container "gce-pd-driver" does not forbid privilege escalation (allowPrivilegeEscalation: false)',
    ]);
  });

  it("are data: a stack that empties the lists refuses the node plugin", async () => {
    expect(messages(await check(noPrivilege, node, { level: "mandatory", config: { allowed: [] } }))).toHaveLength(2);
    expect(messages(await check(hostPathAllowList, node, { level: "mandatory", config: { allowed: [] } }))).toHaveLength(Object.keys(PD_CSI_NODE_HOST_PATHS).length);
  });
});
