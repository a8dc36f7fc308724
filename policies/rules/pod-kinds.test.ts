/**
 * The pod-level policies judge every pod-bearing kind the pack knows (each keeps its pod template at
 * its own path: a CronJob's under `jobTemplate`, a bare Pod's at the top) and every container list:
 * one table, each policy's break placed in each kind's containers and in its init containers. A
 * policy that read only `containers`, or only a Deployment's template, fails a row here.
 */
import { describe, expect, it } from "vitest";
import type { RecordedResource } from "../../stacks/harness";
import { POD_TEMPLATE_PATHS } from "../lib/k8s";
import type { TitaniumPolicy } from "../lib/policy";
import { container, workload } from "../testing/builders";
import { check, messages } from "../testing/check";
import { noHostNamespaces } from "./host-namespaces";
import { hostPathAllowList } from "./host-path";
import { imagePinned } from "./image-pinned";
import { noPrivilege } from "./no-privilege";
import { runAsNonRoot } from "./non-root";
import { readOnlyRootFilesystem } from "./read-only-root-fs";
import { resourceLimitsPolicy } from "./resource-limits";

type Obj = Record<string, unknown>;
const KINDS = Object.keys(POD_TEMPLATE_PATHS);
const LISTS = ["containers", "initContainers"] as const;
type List = (typeof LISTS)[number];
const NAMES: Record<List, string> = { containers: "app", initContainers: "init" };
const DESCRIBED: Record<List, string> = { containers: 'container "app"', initContainers: 'init container "init"' };

/** A compliant workload of `type` with one container and one init container; `edit` changes the one in `list`. */
function pod(type: string, list?: List, edit: Obj = {}, podSpec: Obj = {}): RecordedResource {
  const make = (l: List) => {
    const base = container(NAMES[l]);
    return l === list ? { ...base, ...edit, securityContext: { ...(base.securityContext as Obj), ...(edit.securityContext as Obj | undefined) } } : base;
  };
  return workload(type, "w", { containers: [make("containers")], initContainers: [make("initContainers")], podSpec });
}

interface ContainerCase {
  policy: TitaniumPolicy;
  what: string;
  edit: Obj;
  /** The finding, after `titanium/w <container>`. */
  message: string;
}

const CONTAINER_CASES: ContainerCase[] = [
  { policy: noPrivilege, what: "privileged", edit: { securityContext: { privileged: true } }, message: "is privileged" },
  {
    policy: noPrivilege,
    what: "escalation left on",
    edit: { securityContext: { allowPrivilegeEscalation: undefined } },
    message: "does not forbid privilege escalation (allowPrivilegeEscalation: false)",
  },
  {
    policy: noPrivilege,
    what: "an added capability",
    edit: { securityContext: { capabilities: { drop: ["ALL"], add: ["NET_BIND_SERVICE", "NET_ADMIN"] } } },
    message: "adds capabilities NET_ADMIN (only NET_BIND_SERVICE may be added without an allow-list entry)",
  },
  {
    policy: noPrivilege,
    what: "an unmasked /proc",
    edit: { securityContext: { procMount: "Unmasked" } },
    message: "mounts /proc unmasked (procMount: Unmasked; only Default masks the kernel's files)",
  },
  { policy: runAsNonRoot, what: "root", edit: { securityContext: { runAsUser: 0 } }, message: "may run as root" },
  { policy: readOnlyRootFilesystem, what: "a writable root", edit: { securityContext: { readOnlyRootFilesystem: false } }, message: "has a writable root filesystem" },
  { policy: imagePinned, what: "a latest image", edit: { image: "ghcr.io/x/app:latest" }, message: "uses the mutable tag latest (ghcr.io/x/app:latest)" },
  { policy: imagePinned, what: "an empty tag", edit: { image: "ghcr.io/x/app:" }, message: "has a malformed tag (ghcr.io/x/app:)" },
  { policy: noHostNamespaces, what: "a host port", edit: { ports: [{ containerPort: 8080, hostPort: 8080 }] }, message: "binds host port 8080 (ports[].hostPort)" },
  {
    policy: resourceLimitsPolicy({}),
    what: "no memory limit",
    edit: { resources: { requests: { cpu: "10m", memory: "16Mi" }, limits: { cpu: "100m" } } },
    message: "lacks resources.limits.memory",
  },
];

describe.each(KINDS)("the pod policies over a %s", (type) => {
  it.each([...new Set(CONTAINER_CASES.map((c) => c.policy))].map((p) => [p.name, p] as const))("%s passes its compliant containers and init containers", async (_name, policy) => {
    expect((await check(policy, pod(type), { level: "mandatory" })).findings).toEqual([]);
  });

  const rows = CONTAINER_CASES.flatMap((c) => LISTS.map((list) => [c.policy.name, c.what, list, c] as const));
  it.each(rows)("%s catches %s in its %s", async (_name, _what, list, c) => {
    const run = await check(c.policy, pod(type, list, c.edit), { level: "mandatory" });
    expect(messages(run)).toEqual([`titanium/w ${DESCRIBED[list]} ${c.message}`]);
  });

  // Pod-level fields: whichever container mounts the volume (an init container can read the node's files as well).
  it.each(LISTS)("k8s-host-path-allow-list catches a hostPath volume mounted by its %s", async (list) => {
    const volumes = { volumes: [{ name: "host", hostPath: { path: "/var/run/docker.sock" } }] };
    const run = await check(hostPathAllowList, pod(type, list, { volumeMounts: [{ name: "host", mountPath: "/var/run/docker.sock" }] }, volumes), { level: "mandatory" });
    expect(messages(run)).toEqual(['titanium/w mounts hostPath /var/run/docker.sock (volume "host") and is not on the allow-list']);
    expect((await check(hostPathAllowList, pod(type), { level: "mandatory" })).findings).toEqual([]);
  });

  it.each(["hostNetwork", "hostPID", "hostIPC"])("k8s-no-host-namespaces catches %s", async (field) => {
    expect(messages(await check(noHostNamespaces, pod(type, undefined, {}, { [field]: true }), { level: "mandatory" }))).toEqual([`titanium/w sets ${field}: true`]);
    expect((await check(noHostNamespaces, pod(type, undefined, {}, { [field]: false }), { level: "mandatory" })).findings).toEqual([]);
  });
});
