import { chartName, globMatch, HELM_RELEASE_TYPES, labelsOf, metadataOf, type Obj } from "../lib/k8s";
import { releaseNamespace } from "../lib/values";
import { resourcePolicy, type BaseConfig } from "../lib/policy";
import { applicationNamespacesSchema } from "./sidecar-injection";
import { NAMESPACES } from "../../components/platform/names";

interface Config extends BaseConfig {
  applicationNamespaces: string[];
  privilegedNamespaces: { namespace: string; reason: string }[];
}

const ENFORCE = "pod-security.kubernetes.io/enforce";
const LEVELS = ["privileged", "baseline", "restricted"];

/**
 * Namespaces whose pods may be privileged (Pod Security Admission `privileged`): the node agents the
 * other policies allow-list live there, and PSA is what bounds the security contexts of their charts.
 */
export const DEFAULT_PRIVILEGED_NAMESPACES = [
  { namespace: NAMESPACES.istio, reason: "the Istio CNI node agent sets up traffic redirection (root, NET_ADMIN, SYS_ADMIN, host paths)" },
  { namespace: NAMESPACES.monitoring, reason: "the node exporter reads the node's /proc, /sys and / through host paths" },
  { namespace: NAMESPACES.storage, reason: "the PD CSI node plugin mounts disks for the kubelet (privileged, Bidirectional propagation)" },
];

/**
 * Every Namespace states the Pod Security level it enforces; application namespaces enforce
 * `restricted`, and only allow-listed namespaces may be `privileged`. A Helm release never creates its
 * namespace (`createNamespace`): Helm would create it without a level, and a release's pods are bounded
 * by nothing else (the other policies judge only its values).
 */
export const namespacePodSecurity = resourcePolicy<Config>(
  {
    name: "k8s-namespace-pod-security",
    description:
      "Every Namespace sets the Pod Security Admission label pod-security.kubernetes.io/enforce to a valid level; application namespaces enforce restricted, and only allow-listed namespaces (the node agents': istio-system, monitoring, gce-pd-csi-driver) may be privileged. No Helm release creates its own namespace (createNamespace), which Helm would leave without a level.",
    severity: "high",
    enforcementLevel: "mandatory",
    remediationSteps:
      "Label the Namespace `pod-security.kubernetes.io/enforce` (components/platform/namespaces.ts: `restricted` for the application, `baseline` where nothing needs more). A namespace that must host privileged node agents goes on `privilegedNamespaces` with a reason. A Helm release installs into a Namespace the program creates (`createNamespace: false`).",
    configSchema: {
      properties: {
        applicationNamespaces: applicationNamespacesSchema,
        privilegedNamespaces: {
          type: "array",
          items: {
            type: "object",
            properties: { namespace: { type: "string" }, reason: { type: "string", minLength: 1 } },
            required: ["namespace", "reason"],
            additionalProperties: false,
          },
          default: DEFAULT_PRIVILEGED_NAMESPACES,
          description: "Namespaces allowed to enforce `privileged`, each with the reason.",
        },
      },
    },
  },
  (args, judge, report, config) => {
    if (HELM_RELEASE_TYPES.includes(args.type)) {
      judge.check(() => {
        const props = args.props as Obj;
        if (props.createNamespace !== true) return;
        report(
          `Helm release of chart "${chartName(props) ?? "(none)"}" creates its namespace ${releaseNamespace(props, args.provider)} itself (createNamespace: true), without a ${ENFORCE} level: create the Namespace in the program instead`,
        );
      });
      return;
    }
    if (args.type !== "kubernetes:core/v1:Namespace") return;
    judge.check(() => {
      const metadata = metadataOf(args.props as Obj);
      const name = String(metadata.name ?? args.name);
      const level = labelsOf(metadata)[ENFORCE];
      if (!LEVELS.includes(level ?? "")) {
        report(`namespace ${name} ${level === undefined ? "does not set" : `sets an invalid`} ${ENFORCE}${level === undefined ? "" : ` ("${level}")`}: expected one of ${LEVELS.join(", ")}`);
        return;
      }
      if (config.applicationNamespaces.some((g) => globMatch(g, name)) && level !== "restricted") {
        report(`application namespace ${name} enforces "${level}": expected "restricted"`);
      }
      if (level === "privileged" && !config.privilegedNamespaces.some((p) => p.namespace === name)) {
        report(`namespace ${name} enforces "privileged", which only the allow-listed namespaces may (${config.privilegedNamespaces.map((p) => p.namespace).join(", ")})`);
      }
    });
  },
);
