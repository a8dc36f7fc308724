import { INSTANCES_FROM_SOURCE, isVm, PER_INSTANCE_CONFIG, REGION_PER_INSTANCE_CONFIG } from "../lib/gcp";
import type { Obj } from "../lib/k8s";
import { resourcePolicy, type BaseConfig } from "../lib/policy";

interface Config extends BaseConfig {
  justificationLabel: string;
}

/** No external address on agents (or any other VM): egress goes through Cloud NAT. */
export const gcpNoPublicIp = resourcePolicy<Config>(
  {
    name: "gcp-no-public-ip",
    description:
      "No K3s agent (or any other VM instance or template) gets an external IP: no accessConfigs or ipv6AccessConfigs on its network interfaces, and no stateful external IP in a managed instance group's per-instance config (preservedState.externalIps).",
    severity: "high",
    enforcementLevel: "mandatory",
    remediationSteps:
      "Remove `accessConfigs` from `networkInterfaces`: Cloud NAT gives nodes egress, the load balancer brings traffic in, IAP brings operators in. A VM that truly needs one carries the `public-ip-justification` label.",
    configSchema: {
      properties: {
        justificationLabel: { type: "string", default: "public-ip-justification", description: "Label whose non-empty value justifies an external IP." },
      },
    },
  },
  (args, judge, report, config) => {
    // An InstanceFromTemplate's (or InstanceFromMachineImage's) own networkInterfaces replace its source's: judged like an instance's.
    // A per-instance config's stateful external IP is given to the VM it names whatever its template says.
    const perInstance = args.type === PER_INSTANCE_CONFIG || args.type === REGION_PER_INSTANCE_CONFIG;
    if (!isVm(args.type) && !INSTANCES_FROM_SOURCE.includes(args.type) && !perInstance) return;
    const props = args.props as Obj;
    judge.check(() => {
      const nonEmpty = (v: unknown) => Array.isArray(v) && v.length > 0;
      const nics = Array.isArray(props.networkInterfaces) ? (props.networkInterfaces as Obj[]) : [];
      const exposed = perInstance
        ? nonEmpty(((props.preservedState ?? {}) as Obj).externalIps) ? ["preservedState.externalIps"] : []
        : nics.flatMap((nic, i) => ["accessConfigs", "ipv6AccessConfigs"].filter((k) => nonEmpty(nic[k])).map((k) => `networkInterfaces[${i}].${k}`));
      if (exposed.length === 0) return;
      const labels = (props.labels ?? {}) as Record<string, string>;
      if (typeof labels[config.justificationLabel] === "string" && labels[config.justificationLabel] !== "") return;
      report(`has an external IP (${exposed.join(", ")})`);
    });
  },
);
