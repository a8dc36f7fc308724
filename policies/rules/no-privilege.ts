import {
  chartName,
  containersOf,
  HELM_RELEASE_TYPES,
  coversContainer,
  describeContainer,
  matchWorkloads,
  objectName,
  podTemplate,
  workloadMatcherListSchema,
  type Obj,
  type WorkloadMatcher,
} from "../lib/k8s";
import { resourcePolicy, type BaseConfig } from "../lib/policy";
import { containerSpecsAt, reportOpaqueRelease, valuesOwner, walkValues, type ValuesOwner } from "../lib/values";

/** Values keys that grant privilege whatever chart reads them (a security context's fields). */
const PRIVILEGE_VALUES: Record<string, string> = { privileged: "privileged", allowPrivilegeEscalation: "able to escalate privileges" };

/**
 * `procMount`: only `Default` masks and read-only-mounts the kernel's files under /proc (`/proc/kcore`,
 * `/proc/sys`, ...); `Unmasked` hands them to the container, which Pod Security's baseline level refuses.
 */
const unmaskedProc = (procMount: unknown): boolean => typeof procMount === "string" && procMount !== "" && procMount !== "Default";
const UNMASKED = "only Default masks the kernel's files";

interface Config extends BaseConfig {
  allowed: WorkloadMatcher[];
}

/**
 * Containers that must be privileged, each named with its workload, kind and namespace: only the
 * GCE PD CSI node plugin's driver. Its registrar, and everything else, stays unprivileged.
 */
export const DEFAULT_PRIVILEGED_ALLOWED: WorkloadMatcher[] = [
  {
    names: ["csi-gce-pd-node"],
    namespace: "gce-pd-csi-driver",
    kinds: ["DaemonSet"],
    containers: ["gce-pd-driver"],
    reason:
      "GCE PD CSI node plugin: formats attached disks and mounts them into the kubelet's directory with Bidirectional propagation, which Kubernetes allows only in privileged containers",
  },
];

/**
 * The one capability any container may add: binding ports below 1024, as Pod Security's `restricted`
 * level allows. Every other one (NET_ADMIN, SYS_ADMIN, NET_RAW, ALL...) needs an allow-list entry.
 */
export const ADDABLE_CAPABILITIES = ["NET_BIND_SERVICE"];

/** `NET_ADMIN` for `net_admin` or `CAP_NET_ADMIN` (the runtime upper-cases a name and prefixes `CAP_`). */
export const capabilityName = (c: unknown): string => String(c).toUpperCase().replace(/^CAP_/, "");

/** The added capabilities neither {@link ADDABLE_CAPABILITIES} nor `extra` admit. */
function forbiddenAdds(add: unknown, extra: string[]): string[] {
  if (!Array.isArray(add)) return [];
  const allowed = new Set([...ADDABLE_CAPABILITIES, ...extra].map(capabilityName));
  return add.map(String).filter((c) => !allowed.has(capabilityName(c)));
}

const addsMessage = (caps: string[], entry: boolean) =>
  `adds capabilities ${caps.join(", ")} (only ${ADDABLE_CAPABILITIES.join(", ")} may be added${entry ? " besides those its allow-list entry names" : " without an allow-list entry"})`;

/**
 * No privileged container, privilege escalation explicitly off (its default is on), and no added
 * capability but NET_BIND_SERVICE; allow-listed containers aside.
 */
export const noPrivilege = resourcePolicy<Config>(
  {
    name: "k8s-no-privilege",
    description:
      "No container runs privileged, adds a Linux capability other than NET_BIND_SERVICE or mounts /proc unmasked (procMount other than Default), and every container sets securityContext.allowPrivilegeEscalation: false (Kubernetes allows escalation when it is unset); allow-listed containers (the PD CSI node plugin's driver) aside. A Helm release's values never set privileged or allowPrivilegeEscalation to true, procMount to anything but Default, nor add another capability.",
    severity: "critical",
    enforcementLevel: "mandatory",
    remediationSteps:
      "Remove `securityContext.privileged: true`, any `capabilities.add` but NET_BIND_SERVICE and any `procMount` but Default, and set `securityContext.allowPrivilegeEscalation: false` on every container and init container (with chart objects, through the chart's containerSecurityContext values). A node agent that cannot work otherwise goes on the policy's `allowed` list, by workload, kind, namespace and container, with a reason: with `capabilities`, it may add only those; without, it may be privileged.",
    configSchema: {
      properties: {
        allowed: {
          ...workloadMatcherListSchema,
          default: DEFAULT_PRIVILEGED_ALLOWED,
          description:
            "Containers allowed to be privileged (and so to escalate), by workload and container name, with the reason; an entry with `capabilities` allows only those added capabilities (for a Helm release: an entry naming, in `charts`, the chart whose values add them, a subchart's under its own key, in the namespace its pods run in).",
        },
      },
    },
  },
  (args, judge, report, config) => {
    const props = args.props as Obj;
    if (HELM_RELEASE_TYPES.includes(args.type)) {
      judge.check(() => reportOpaqueRelease(props, chartName(props) ?? "(none)", report));
      // A release's pods are judged by what its values switch on: an explicit `privileged: true`,
      // `allowPrivilegeEscalation: true` or added capability anywhere in them (a security context of any of its workloads).
      judge.check(() => {
        const chart = chartName(props) ?? args.name;
        // Capabilities added in a subchart's values are its pods', admitted by entries naming it in its namespace.
        const capsFor = (owner: ValuesOwner): string[] =>
          config.allowed
            .filter((e) => e.capabilities !== undefined && (e.charts ?? []).includes(owner.chart) && (e.namespace === undefined || e.namespace === owner.namespace))
            .flatMap((e) => e.capabilities!);
        walkValues(props.values, ({ path, key, value, unknown }) => {
          // A container spec in the values (`extraContainers`...) is rendered as written: escalation must be
          // off in it, as in a pod's container, unless an entry for the chart admits it as privileged.
          if (!unknown) {
            judge.check(() => {
              for (const { path: at, container: c } of containerSpecsAt(path, value)) {
                const owner = valuesOwner(props, chart, at);
                const admitted = config.allowed.some(
                  (e) => e.capabilities === undefined && (e.charts ?? []).includes(owner.chart) && (e.namespace === undefined || e.namespace === owner.namespace) && coversContainer(e, c.name),
                );
                const escalation = ((c.securityContext ?? {}) as Obj).allowPrivilegeEscalation;
                // An explicit `true` is reported below, by its key.
                if (!admitted && escalation !== false && escalation !== true) {
                  report(`chart "${chart}": values ${at} (container "${c.name}") does not forbid privilege escalation (allowPrivilegeEscalation: false)`);
                }
              }
            });
          }
          const isAdd = key === "add" && /(^|\.)capabilities\.add$/.test(path);
          if (!Object.hasOwn(PRIVILEGE_VALUES, key) && !isAdd && key !== "capabilities" && key !== "procMount") return;
          if (unknown) {
            judge.unknownValue(unknown);
            return;
          }
          if (Object.hasOwn(PRIVILEGE_VALUES, key) && value === true) report(`chart "${chart}": values ${path} is true (its pods are ${PRIVILEGE_VALUES[key]})`);
          if (key === "procMount" && unmaskedProc(value)) report(`chart "${chart}": values ${path} is ${JSON.stringify(value)} (its pods mount /proc unmasked)`);
          if (isAdd) {
            judge.check(() => {
              const owner = valuesOwner(props, chart, path);
              const entryCaps = capsFor(owner);
              const caps = forbiddenAdds(value, entryCaps);
              const whose = owner.chart === chart ? "" : ` (chart ${owner.chart}, namespace ${owner.namespace})`;
              if (caps.length > 0) report(`chart "${chart}": values ${path}${whose} ${addsMessage(caps, entryCaps.length > 0)}`);
            });
          }
        });
      });
      return;
    }
    judge.check(() => {
      const tpl = podTemplate(args.type, props);
      if (!tpl) return;
      const entries = matchWorkloads(config.allowed, props, tpl);
      for (const ref of containersOf(tpl.spec)) {
        const covering = entries.filter((e) => coversContainer(e, ref.name));
        // An entry without `capabilities` admits a privileged container, which escalates and holds every
        // capability by definition (the API refuses privileged without escalation).
        if (covering.some((e) => e.capabilities === undefined)) continue;
        const entryCaps = covering.flatMap((e) => e.capabilities!);
        const who = `${objectName(props, args.name)} ${describeContainer(ref)}`;
        judge.check(() => {
          const sc = (ref.container.securityContext ?? {}) as Obj;
          if (sc.privileged === true) report(`${who} is privileged`);
          if (sc.allowPrivilegeEscalation !== false) {
            report(`${who} ${sc.allowPrivilegeEscalation === true ? "allows" : "does not forbid"} privilege escalation (allowPrivilegeEscalation: false)`);
          }
        });
        judge.check(() => {
          const procMount = ((ref.container.securityContext ?? {}) as Obj).procMount;
          if (unmaskedProc(procMount)) report(`${who} mounts /proc unmasked (procMount: ${String(procMount)}; ${UNMASKED})`);
        });
        judge.check(() => {
          const sc = (ref.container.securityContext ?? {}) as Obj;
          const caps = forbiddenAdds(((sc.capabilities ?? {}) as Obj).add, entryCaps);
          if (caps.length > 0) report(`${who} ${addsMessage(caps, covering.length > 0)}`);
        });
      }
    });
  },
);
