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
import { walkValues } from "../lib/values";

/** Values keys that grant privilege whatever chart reads them (a security context's fields). */
const PRIVILEGE_VALUES: Record<string, string> = { privileged: "privileged", allowPrivilegeEscalation: "able to escalate privileges" };

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

/** No privileged container, and privilege escalation explicitly off (its default is on); allow-listed containers aside. */
export const noPrivilege = resourcePolicy<Config>(
  {
    name: "k8s-no-privilege",
    description:
      "No container runs privileged, and every container sets securityContext.allowPrivilegeEscalation: false (Kubernetes allows escalation when it is unset); allow-listed containers (the PD CSI node plugin's driver) aside. A Helm release's values never set privileged or allowPrivilegeEscalation to true.",
    severity: "critical",
    enforcementLevel: "mandatory",
    remediationSteps:
      "Remove `securityContext.privileged: true` and set `securityContext.allowPrivilegeEscalation: false` on every container and init container (with chart objects, through the chart's containerSecurityContext values). A node agent that cannot work otherwise goes on the policy's `allowed` list, by workload, kind, namespace and container, with a reason.",
    configSchema: {
      properties: {
        allowed: {
          ...workloadMatcherListSchema,
          default: DEFAULT_PRIVILEGED_ALLOWED,
          description: "Containers allowed to be privileged (and so to escalate), by workload and container name, with the reason.",
        },
      },
    },
  },
  (args, judge, report, config) => {
    const props = args.props as Obj;
    if (HELM_RELEASE_TYPES.includes(args.type)) {
      // A release's pods are judged by what its values switch on: an explicit `privileged: true` or
      // `allowPrivilegeEscalation: true` anywhere in them (a security context of any of its workloads).
      judge.check(() => {
        walkValues(props.values, ({ path, key, value, unknown }) => {
          if (!(key in PRIVILEGE_VALUES)) return;
          if (unknown) {
            judge.unknownValue(unknown);
            return;
          }
          if (value === true) report(`chart "${chartName(props) ?? args.name}": values ${path} is true (its pods are ${PRIVILEGE_VALUES[key]})`);
        });
      });
      return;
    }
    judge.check(() => {
      const tpl = podTemplate(args.type, props);
      if (!tpl) return;
      const entries = matchWorkloads(config.allowed, props, tpl);
      for (const ref of containersOf(tpl.spec)) {
        // A privileged container escalates by definition (the API refuses privileged without escalation).
        if (entries.some((e) => coversContainer(e, ref.name))) continue;
        judge.check(() => {
          const sc = (ref.container.securityContext ?? {}) as Obj;
          const who = `${objectName(props, args.name)} ${describeContainer(ref)}`;
          if (sc.privileged === true) report(`${who} is privileged`);
          if (sc.allowPrivilegeEscalation !== false) {
            report(`${who} ${sc.allowPrivilegeEscalation === true ? "allows" : "does not forbid"} privilege escalation (allowPrivilegeEscalation: false)`);
          }
        });
      }
    });
  },
);
