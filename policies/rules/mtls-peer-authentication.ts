import { isPeerAuthentication, WEAK_PEER_MODES } from "../lib/istio";
import { objectName, type Obj } from "../lib/k8s";
import { resourcePolicy } from "../lib/policy";

/** No PeerAuthentication may accept plaintext, at workload or port level. */
export const mtlsPeerAuthentication = resourcePolicy(
  {
    name: "istio-peer-authentication-strict",
    description: "PeerAuthentication objects never weaken mTLS: no mode or port-level mode PERMISSIVE or DISABLE.",
    severity: "critical",
    enforcementLevel: "mandatory",
    remediationSteps:
      "Remove the exception. Keep `spec.mtls.mode` STRICT (or UNSET to inherit the mesh-wide STRICT policy) and drop PERMISSIVE/DISABLE from `spec.portLevelMtls`. Workloads that cannot speak mTLS (Postgres, Redis) stay inside the mesh with sidecars instead.",
    configSchema: { properties: {} },
  },
  (args, judge, report) => {
    if (!isPeerAuthentication(args.type)) return;
    const props = args.props as Obj;
    judge.check(() => {
      const spec = (props.spec ?? {}) as Obj;
      const mode = (spec.mtls as Obj | undefined)?.mode;
      if (typeof mode === "string" && WEAK_PEER_MODES.includes(mode)) {
        report(`${objectName(props, args.name)} sets mtls.mode ${mode}`);
      }
      const ports = (spec.portLevelMtls ?? {}) as Record<string, Obj>;
      for (const port of Object.keys(ports)) {
        const portMode = ports[port]?.mode;
        if (typeof portMode === "string" && WEAK_PEER_MODES.includes(portMode)) {
          report(`${objectName(props, args.name)} sets portLevelMtls[${port}].mode ${portMode}`);
        }
      }
    });
  },
);
