import { objectName, podTemplate, type Obj } from "../lib/k8s";
import { resourcePolicy } from "../lib/policy";

const HOST_NAMESPACES = ["hostNetwork", "hostPID", "hostIPC"] as const;

/** Pods never share the node's network, process or IPC namespace. */
export const noHostNamespaces = resourcePolicy(
  {
    name: "k8s-no-host-namespaces",
    description: "No pod uses hostNetwork, hostPID or hostIPC.",
    severity: "critical",
    enforcementLevel: "mandatory",
    remediationSteps:
      "Remove `hostNetwork`, `hostPID` and `hostIPC` from the pod spec. Node-level metrics come from node exporter through hostPath mounts (allow-listed), not from host namespaces; expose ports through a Service.",
    configSchema: { properties: {} },
  },
  (args, judge, report) => {
    const props = args.props as Obj;
    judge.check(() => {
      const tpl = podTemplate(args.type, props);
      if (!tpl) return;
      for (const field of HOST_NAMESPACES) {
        judge.check(() => {
          if (tpl.spec[field] === true) report(`${objectName(props, args.name)} sets ${field}: true`);
        });
      }
    });
  },
);
