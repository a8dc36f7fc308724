import { containersOf, describeContainer, objectName, podTemplate, type Obj } from "../lib/k8s";
import { resourcePolicy } from "../lib/policy";

/** No privileged container, and privilege escalation explicitly off (its default is on). */
export const noPrivilege = resourcePolicy(
  {
    name: "k8s-no-privilege",
    description:
      "No container runs privileged, and every container sets securityContext.allowPrivilegeEscalation: false (Kubernetes allows escalation when it is unset).",
    severity: "critical",
    enforcementLevel: "mandatory",
    remediationSteps:
      "Remove `securityContext.privileged: true` and set `securityContext.allowPrivilegeEscalation: false` on every container and init container (with chart objects, through the chart's containerSecurityContext values).",
    configSchema: { properties: {} },
  },
  (args, judge, report) => {
    const props = args.props as Obj;
    judge.check(() => {
      const tpl = podTemplate(args.type, props);
      if (!tpl) return;
      for (const ref of containersOf(tpl.spec)) {
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
