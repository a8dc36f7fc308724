/**
 * Every Titanium policy, in report order. Tests and the offline plan import this module; only
 * `index.ts` constructs the PolicyPack (its constructor starts the SDK's gRPC server).
 */
import { chartSwitchesOff, chartWorkloads } from "./chart-workloads";
import { noChartExtraObjects } from "./rules/chart-extra-objects";
import type { TitaniumPolicy } from "./lib/policy";
import { gcpFirewallNoWorldAdmin } from "./rules/gcp-firewall";
import { gcpIamLeastPrivilege } from "./rules/gcp-iam";
import { gcpNoPublicIp } from "./rules/gcp-no-public-ip";
import { gcpOsLogin } from "./rules/gcp-os-login";
import { gcpServiceAccount } from "./rules/gcp-service-account";
import { gcpShieldedVm } from "./rules/gcp-shielded-vm";
import { highAvailability } from "./rules/high-availability";
import { noHostNamespaces } from "./rules/host-namespaces";
import { hostPathAllowList } from "./rules/host-path";
import { imagePinned } from "./rules/image-pinned";
import { mtlsDestinationRule } from "./rules/mtls-destination-rule";
import { mtlsEnvoyFilter } from "./rules/mtls-envoy-filter";
import { mtlsMeshWideStrict } from "./rules/mtls-mesh-wide-strict";
import { mtlsPeerAuthentication } from "./rules/mtls-peer-authentication";
import { namespaceDeclared } from "./rules/namespace-declared";
import { namespacePodSecurity } from "./rules/namespace-pod-security";
import { noGuardedPatches } from "./rules/no-guarded-patches";
import { noLoadBalancerService } from "./rules/no-load-balancer";
import { noPrivilege } from "./rules/no-privilege";
import { runAsNonRoot } from "./rules/non-root";
import { protectStateful } from "./rules/protect-stateful";
import { readOnlyRootFilesystem } from "./rules/read-only-root-fs";
import { recommendedLabels } from "./rules/recommended-labels";
import { resourceLimitsPolicy, type ChartWorkloadTable } from "./rules/resource-limits";
import { secretManagerHygiene } from "./rules/secret-manager";
import { sidecarInjection } from "./rules/sidecar-injection";

export interface PolicyDeps {
  /** Values paths of each platform chart's workload resources (see `chart-workloads.ts`). */
  chartWorkloads: ChartWorkloadTable;
  /** Values switches of each chart that must be `false` (workloads the table leaves out). */
  chartSwitchesOff?: ChartWorkloadTable;
}

export function createPolicies(deps: PolicyDeps): TitaniumPolicy[] {
  return [
    // mTLS
    mtlsPeerAuthentication,
    mtlsDestinationRule,
    mtlsEnvoyFilter,
    mtlsMeshWideStrict,
    sidecarInjection,
    // Workloads
    resourceLimitsPolicy(deps.chartWorkloads, deps.chartSwitchesOff),
    noPrivilege,
    noHostNamespaces,
    hostPathAllowList,
    imagePinned,
    noLoadBalancerService,
    noGuardedPatches,
    noChartExtraObjects,
    namespacePodSecurity,
    namespaceDeclared,
    runAsNonRoot,
    readOnlyRootFilesystem,
    highAvailability,
    recommendedLabels,
    // GCP
    gcpFirewallNoWorldAdmin,
    gcpShieldedVm,
    gcpServiceAccount,
    gcpNoPublicIp,
    gcpOsLogin,
    gcpIamLeastPrivilege,
    secretManagerHygiene,
    protectStateful,
  ];
}

/** The pack's policies, with the chart-workload table wired in `chart-workloads.ts`. */
export const policies: TitaniumPolicy[] = createPolicies({ chartWorkloads, chartSwitchesOff });

/** The pack's name (PolicyPack) and version (package.json), as the CLI reports them. */
export const PACK_NAME = "titanium";
