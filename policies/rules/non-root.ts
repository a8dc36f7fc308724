import { containersOf, coversContainer, describeContainer, matchWorkloads, objectName, podTemplate, workloadMatcherListSchema, type Obj, type WorkloadMatcher } from "../lib/k8s";
import { resourcePolicy, type BaseConfig } from "../lib/policy";

interface Config extends BaseConfig {
  exempt: WorkloadMatcher[];
}

/**
 * Node agents that must mount disks as root. Named by namespace, kind and container: a look-alike
 * elsewhere is not covered. (Alloy needs no entry: it reads pod logs through the Kubernetes API.)
 */
export const DEFAULT_ROOT_EXEMPT: WorkloadMatcher[] = [
  {
    names: ["csi-gce-pd-node"],
    namespace: "gce-pd-csi-driver",
    kinds: ["DaemonSet"],
    containers: ["gce-pd-driver", "csi-driver-registrar"],
    reason: "GCE PD CSI node plugin: mount(2) needs root; the registrar writes its socket into the kubelet's root-owned plugin registry",
  },
];

/** Whether a container runs as non-root, from its own securityContext or the pod's. */
function runsAsNonRoot(pod: Obj, container: Obj): boolean {
  const podSc = (pod.securityContext ?? {}) as Obj;
  const sc = (container.securityContext ?? {}) as Obj;
  const user = sc.runAsUser ?? podSc.runAsUser;
  if (user === 0) return false;
  if ((sc.runAsNonRoot ?? podSc.runAsNonRoot) === true) return true;
  return typeof user === "number" && user > 0;
}

/** Containers run as a non-root user. */
export const runAsNonRoot = resourcePolicy<Config>(
  {
    name: "k8s-run-as-non-root",
    description: "Every container runs as a non-root user (runAsNonRoot: true, or a non-zero runAsUser, on the container or the pod).",
    severity: "medium",
    enforcementLevel: "advisory",
    remediationSteps:
      "Set `securityContext.runAsNonRoot: true` and a numeric `runAsUser` (the services' images use 65532, distroless `nonroot`: `APP_UID` in components/apps/mesh.ts, their Dockerfiles' `USER`; postgres:alpine uses 70, redis:alpine 999) on the pod or the container.",
    configSchema: {
      properties: {
        exempt: { ...workloadMatcherListSchema, default: DEFAULT_ROOT_EXEMPT, description: "Workloads allowed to run as root, with the reason." },
      },
    },
  },
  (args, judge, report, config) => {
    const props = args.props as Obj;
    judge.check(() => {
      const tpl = podTemplate(args.type, props);
      if (!tpl) return;
      const entries = matchWorkloads(config.exempt, props, tpl);
      for (const ref of containersOf(tpl.spec)) {
        if (entries.some((e) => coversContainer(e, ref.name))) continue;
        judge.check(() => {
          if (!runsAsNonRoot(tpl.spec, ref.container)) report(`${objectName(props, args.name)} ${describeContainer(ref)} may run as root`);
        });
      }
    });
  },
);
