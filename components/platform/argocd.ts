import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { TitaniumConfig } from "../../stacks/config";
import { offValues } from "./chart-workloads";
import { type ChartsConfig, chartRelease } from "./helm";
import { ADMIN_PATHS, ARGOCD, type AppSecretName, METADATA_SERVER, NAMESPACES } from "./names";
import { dnsEgress, type PodPeer, podSecurityLabels } from "./namespaces";
import { secretSync } from "./secret-sync";

export interface ArgoCdArgs {
  /** Kubernetes provider of the cluster layer. */
  provider: k8s.Provider;
  /** Pinned charts and per-workload resources (`argoCd` is used). */
  charts: ChartsConfig;
  /** Public host name (Argo CD's `global.domain`); empty when the stack has none. */
  hostname: string;
  /** Where browsers reach the gateway: the host name, or the load balancer's address without one. */
  externalHost: pulumi.Input<string>;
  /** Secret Manager secret ids (`argocd-admin-password-bcrypt` is used). */
  appSecretIds: Record<AppSecretName, pulumi.Input<string>>;
  /** Optional root Application (GitOps for teams' extra apps). */
  rootApp?: TitaniumConfig["features"]["argoRootApp"];
  /** The pods' address range and the cluster DNS pods, for the team namespaces' egress (teamEgressPolicy). */
  clusterNetwork: TeamNetwork;
  /** The ClusterSecretStore (the admin password ExternalSecret needs it). */
  secretStore: pulumi.Resource;
  /** The PD CSI driver, rolled out: team namespaces (whose apps may claim Persistent Disks) are deleted before it. */
  storageReady: pulumi.Resource[];
  /** Must exist first (namespace). */
  dependsOn: pulumi.Resource[];
}

const IN_CLUSTER = "https://kubernetes.default.svc";

/** What a team namespace's egress is cut from: the pods' range, and the cluster DNS pods it may still ask. */
export interface TeamNetwork {
  podCidr: string;
  dns: PodPeer;
}

/** The team namespaces' labels (besides Pod Security). */
const TEAM_NAMESPACE_LABELS = { "app.kubernetes.io/name": "team-namespace", "app.kubernetes.io/part-of": "titanium", "app.kubernetes.io/managed-by": "pulumi" };
/** Kubernetes' own namespaces: never a destination. */
const KUBERNETES_NAMESPACES = ["default", "kube-system", "kube-public", "kube-node-lease"];
/**
 * Kinds a team's app may not create: Argo CD's own (a project of its own is an escape), RBAC, network and mesh policy,
 * quotas; External Secrets' (a `SecretStore` without `auth` reads Secret Manager as the controller's node, the agents'
 * account that reads the application's secrets; a generator mints that account's tokens); Istio's traffic objects, the
 * Gateway API's and Ingresses (a `Gateway` selecting the ingress gateway's pods, a `VirtualService` bound to the shared
 * one, or an `Ingress` of class `istio`, which istiod programs into the pods labelled `istio: ingressgateway`, puts
 * routes on the public gateway, to the admin UIs under paths the admin-CIDR policy does not cover among them);
 * the Prometheus operator's (one Prometheus selects monitors and rules in every namespace: a monitor with
 * `honorLabels` writes series as `namespace="titanium"`, a rule fires or inhibits the platform's alerts); K3s' Helm
 * controller's (it runs a `HelmChart`'s install Job bound to `cluster-admin`).
 * Argo CD matches `group` and `kind` as globs.
 */
const TEAM_DENIED_KINDS = [
  { group: "argoproj.io", kind: "*" },
  { group: "rbac.authorization.k8s.io", kind: "*" },
  { group: "networking.k8s.io", kind: "NetworkPolicy" },
  { group: "networking.k8s.io", kind: "Ingress" },
  { group: "security.istio.io", kind: "*" },
  { group: "networking.istio.io", kind: "*" },
  { group: "gateway.networking.k8s.io", kind: "*" },
  { group: "external-secrets.io", kind: "*" },
  { group: "*.external-secrets.io", kind: "*" },
  { group: "monitoring.coreos.com", kind: "*" },
  { group: "helm.cattle.io", kind: "*" },
  { group: "", kind: "ResourceQuota" },
  { group: "", kind: "LimitRange" },
];

/**
 * Argo CD from its chart, serving plain HTTP under `/argocd` behind the Istio gateway, with its
 * admin password (bcrypt) merged into `argocd-secret` from Secret Manager. Pulumi owns every
 * platform and application object; Argo CD may only sync a team's extra apps through the optional
 * root Application, whose projects reach only the configured team namespaces (created here, without
 * access to the metadata server; never one of the platform's or Kubernetes' own), no cluster-scoped
 * object and no kind that grants rights or changes isolation; the `default` project is locked so
 * nothing escapes through it.
 */
export class ArgoCd extends pulumi.ComponentResource {
  constructor(name: string, args: ArgoCdArgs, opts?: pulumi.ComponentResourceOptions) {
    super("titanium:platform:ArgoCd", name, {}, opts);
    const k = { parent: this, provider: args.provider };
    const ns = NAMESPACES.argocd;

    const release = chartRelease(
      `${name}-argo-cd`,
      "argoCd",
      args.charts,
      {
        ...(args.hostname ? { global: { domain: args.hostname } } : {}),
        configs: {
          params: {
            // TLS ends at the Istio gateway; the server lives under a sub-path there.
            "server.insecure": true,
            "server.basehref": ADMIN_PATHS.argocd,
            "server.rootpath": ADMIN_PATHS.argocd,
          },
          // Its external URL (links, redirects): under the sub-path, on the host or address browsers use.
          cm: { url: pulumi.interpolate`https://${args.externalHost}${ADMIN_PATHS.argocd}`, "admin.enabled": true, "exec.enabled": false },
          secret: { createSecret: true },
        },
        ...offValues("argoCd"),
        controller: { replicas: 1 },
        server: { replicas: 1 },
        repoServer: { replicas: 1 },
        applicationSet: { replicas: 1 },
      },
      { ...k, dependsOn: args.dependsOn },
    );

    // The chart creates argocd-secret (with server.secretkey); ESO merges the admin password into it.
    secretSync(
      `${name}-admin-password`,
      {
        namespace: ns,
        target: ARGOCD.secret,
        creationPolicy: "Merge",
        data: { "admin.password": args.appSecretIds["argocd-admin-password-bcrypt"] },
        // Copied onto argocd-secret by ESO: the chart's own labels, so the two writers agree.
        labels: { "app.kubernetes.io/name": ARGOCD.secret, "app.kubernetes.io/part-of": "argocd", "app.kubernetes.io/managed-by": "Helm" },
      },
      { ...k, dependsOn: [release, args.secretStore] },
    );

    // Every namespace Pulumi manages (Argo CD's own included: its AppProjects and Applications are the
    // confinement itself) and Kubernetes' own.
    const deniedNamespaces = [...Object.values(NAMESPACES), ...KUBERNETES_NAMESPACES];
    const project = (projectName: string, spec: Record<string, unknown>) =>
      new k8s.apiextensions.CustomResource(
        `${name}-project-${projectName}`,
        { apiVersion: "argoproj.io/v1alpha1", kind: "AppProject", metadata: { name: projectName, namespace: ns }, spec },
        { ...k, dependsOn: [release] },
      );

    // Argo CD recreates `default` at start; lock it (server-side apply) so no Application can use it.
    new k8s.apiextensions.CustomResourcePatch(
      `${name}-project-default-locked`,
      {
        apiVersion: "argoproj.io/v1alpha1",
        kind: "AppProject",
        metadata: { name: "default", namespace: ns, annotations: { "pulumi.com/patchForce": "true" } },
        spec: { sourceRepos: [], destinations: [], clusterResourceWhitelist: [], namespaceResourceWhitelist: [] },
      },
      { ...k, dependsOn: [release] },
    );

    if (args.rootApp) {
      const root = args.rootApp;
      // The team namespaces: restricted pods, no way to the metadata server, whose token is the agents'
      // identity (it reads the application secrets, ADR 0012), nor to the platform's pods (teamEgressPolicy);
      // teams cannot add policies.
      // In force before the root Application syncs anything into the team namespaces.
      const teamGuards: pulumi.Resource[] = [];
      for (const team of root.teamNamespaces) {
        const namespace = new k8s.core.v1.Namespace(
          `${name}-${team}`,
          {
            metadata: {
              name: team,
              labels: { ...TEAM_NAMESPACE_LABELS, ...podSecurityLabels("restricted") },
            },
          },
          { ...k, dependsOn: args.storageReady },
        );
        teamGuards.push(namespace, teamEgressPolicy(`${name}-${team}-egress`, team, args.clusterNetwork, { ...k, dependsOn: [namespace] }));
      }
      // A Service of any namespace may claim any address as an `externalIPs` entry, and kube-proxy then takes the
      // traffic to it: the load balancer's address on the HTTPS port included, the gateway's (CVE-2020-8554). Services
      // are a kind teams need, so the API server refuses the field in their namespaces instead.
      const noExternalIps = new k8s.admissionregistration.v1.ValidatingAdmissionPolicy(
        `${name}-team-no-external-ips`,
        {
          metadata: { name: "team-services-no-external-ips" },
          spec: {
            failurePolicy: "Fail",
            matchConstraints: { resourceRules: [{ apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE", "UPDATE"], resources: ["services"] }] },
            validations: [
              {
                expression: "!has(object.spec.externalIPs) || size(object.spec.externalIPs) == 0",
                message: "Services in team namespaces may not set spec.externalIPs (they would take the traffic to those addresses)",
              },
            ],
          },
        },
        k,
      );
      const noExternalIpsBinding = new k8s.admissionregistration.v1.ValidatingAdmissionPolicyBinding(
        `${name}-team-no-external-ips`,
        {
          metadata: { name: "team-services-no-external-ips" },
          spec: {
            policyName: "team-services-no-external-ips",
            validationActions: ["Deny"],
            matchResources: { namespaceSelector: { matchExpressions: [{ key: "kubernetes.io/metadata.name", operator: "In", values: [...root.teamNamespaces] }] } },
          },
        },
        { ...k, dependsOn: [noExternalIps] },
      );
      teamGuards.push(noExternalIps, noExternalIpsBinding);
      // Teams' apps: only in their namespaces, namespaced objects only, and none of the kinds that grant
      // rights or change isolation (TEAM_DENIED_KINDS).
      project("gitops", {
        description: "Extra apps synced by Argo CD; only in the team namespaces Pulumi creates, never cluster-scoped objects",
        sourceRepos: [root.repoURL],
        destinations: [
          ...deniedNamespaces.map((n) => ({ server: IN_CLUSTER, namespace: `!${n}` })),
          ...root.teamNamespaces.map((n) => ({ server: IN_CLUSTER, namespace: n })),
        ],
        clusterResourceWhitelist: [],
        namespaceResourceBlacklist: TEAM_DENIED_KINDS,
      });
      // The root app may only create Applications (app of apps) in Argo CD's namespace.
      project("gitops-root", {
        description: "The root Application: creates Applications only",
        sourceRepos: [root.repoURL],
        destinations: [{ server: IN_CLUSTER, namespace: ns }],
        clusterResourceWhitelist: [],
        namespaceResourceWhitelist: [{ group: "argoproj.io", kind: "Application" }],
      });
      new k8s.apiextensions.CustomResource(
        `${name}-root-app`,
        {
          apiVersion: "argoproj.io/v1alpha1",
          kind: "Application",
          // Deleting it deletes what it made (children first, Argo CD still running: the app depends on the
          // release): children left behind with this finalizer of their own would hold the namespaces forever.
          metadata: { name: "root", namespace: ns, finalizers: [ARGO_CASCADE_FINALIZER] },
          spec: {
            project: "gitops-root",
            source: { repoURL: root.repoURL, path: root.path, targetRevision: root.targetRevision },
            destination: { server: IN_CLUSTER, namespace: ns },
            syncPolicy: { automated: { prune: true, selfHeal: true } },
          },
        },
        { ...k, dependsOn: [release, ...teamGuards] },
      );
    }

    this.registerOutputs({});
  }
}

/** Argo CD's cascading delete: an Application carrying it is deleted only after the resources it made. */
const ARGO_CASCADE_FINALIZER = "resources-finalizer.argocd.argoproj.io";

/**
 * A team namespace's egress: pods of the team namespaces and of the application (which denies by default),
 * the cluster DNS, and every address outside the pods' range but the metadata server. Not the platform's
 * pods: inside the cluster Alertmanager (silences), Prometheus (its lifecycle API, every series) and Loki
 * (every namespace's logs; pushes) answer without authentication, only the gateway in front of them checks
 * the admin CIDRs; nor istiod, Argo CD, External Secrets, the PD CSI driver or kube-system. Pod addresses
 * are cut from the address rule too: a NetworkPolicy's ipBlock matches pods' addresses as well (K3s'
 * kube-router), which would let every pod through.
 */
function teamEgressPolicy(name: string, namespace: string, network: TeamNetwork, opts: pulumi.CustomResourceOptions): k8s.networking.v1.NetworkPolicy {
  const platformNamespaces = [...Object.values(NAMESPACES).filter((n) => n !== NAMESPACES.app), ...KUBERNETES_NAMESPACES];
  return new k8s.networking.v1.NetworkPolicy(
    name,
    {
      metadata: { name: "team-egress", namespace, labels: TEAM_NAMESPACE_LABELS },
      spec: {
        podSelector: {},
        policyTypes: ["Egress"],
        egress: [
          { to: [{ namespaceSelector: { matchExpressions: [{ key: "kubernetes.io/metadata.name", operator: "NotIn", values: platformNamespaces }] } }] },
          dnsEgress(network.dns, namespace),
          { to: [{ ipBlock: { cidr: "0.0.0.0/0", except: [METADATA_SERVER, network.podCidr] } }] },
        ],
      },
    },
    opts,
  );
}
