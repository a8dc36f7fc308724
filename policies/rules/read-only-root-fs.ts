import { containersOf, coversContainer, describeContainer, matchWorkloads, objectName, podTemplate, workloadMatcherListSchema, type Obj, type WorkloadMatcher } from "../lib/k8s";
import { resourcePolicy, type BaseConfig } from "../lib/policy";

interface Config extends BaseConfig {
  exempt: WorkloadMatcher[];
}

/** Containers cannot write to their image's filesystem. */
export const readOnlyRootFilesystem = resourcePolicy<Config>(
  {
    name: "k8s-read-only-root-filesystem",
    description: "Every container sets securityContext.readOnlyRootFilesystem: true.",
    severity: "medium",
    enforcementLevel: "advisory",
    remediationSteps:
      "Set `securityContext.readOnlyRootFilesystem: true` and mount an `emptyDir` where the process writes (/tmp; /var/run/postgresql and the data volume for Postgres).",
    configSchema: {
      properties: {
        exempt: { ...workloadMatcherListSchema, default: [], description: "Workloads allowed a writable root filesystem (only the containers an entry names, when it names any), with the reason." },
      },
    },
  },
  (args, judge, report, config) => {
    const props = args.props as Obj;
    judge.check(() => {
      const tpl = podTemplate(args.type, props);
      if (!tpl) return;
      // An entry covers the workload's containers it names (`containers`), or all of them when it names none.
      const entries = matchWorkloads(config.exempt, props, tpl);
      for (const ref of containersOf(tpl.spec)) {
        if (entries.some((e) => coversContainer(e, ref.name))) continue;
        judge.check(() => {
          const sc = (ref.container.securityContext ?? {}) as Obj;
          if (sc.readOnlyRootFilesystem !== true) report(`${objectName(props, args.name)} ${describeContainer(ref)} has a writable root filesystem`);
        });
      }
    });
  },
);
