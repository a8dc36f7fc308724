import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { ADMIN_PATHS, ARGOCD, GATEWAY, GRAFANA, NAMESPACES, PROMETHEUS } from "./names";

export interface AdminIngressArgs {
  /** Kubernetes provider of the cluster layer. */
  provider: k8s.Provider;
  /** `namespace/name` of the shared Gateway. */
  gatewayRef: string;
  /** Public host name; empty: any host. */
  hostname: string;
  /** Client ranges allowed to reach the admin UIs (`config.network.adminCidrs`). */
  adminCidrs: string[];
  /** Istio (CRDs, gateway) and the UIs' releases must exist first. */
  dependsOn: pulumi.Resource[];
}

const svc = (name: string, ns: string) => `${name}.${ns}.svc.cluster.local`;

/** Every admin UI: sub-path, backing Service, port. */
export const ADMIN_ROUTES = [
  { name: "grafana", path: ADMIN_PATHS.grafana, host: svc(GRAFANA.service, NAMESPACES.monitoring), port: GRAFANA.port },
  { name: "prometheus", path: ADMIN_PATHS.prometheus, host: svc(PROMETHEUS.name, NAMESPACES.monitoring), port: PROMETHEUS.port },
  { name: "argocd", path: ADMIN_PATHS.argocd, host: svc(ARGOCD.service, NAMESPACES.argocd), port: ARGOCD.port },
] as const;

/**
 * Paths the DENY policy matches: Istio's `abc*` is a plain string prefix, like the routes' `prefix`
 * match, so whatever a route sends to a UI is covered. `/grafana` and `/grafana/*` alone left out
 * what the routes also send, such as `/prometheus%2Ffederate`: Istio's default path normalization
 * keeps `%2F` encoded, and Prometheus decodes it and serves `/federate`.
 */
export const adminPathPatterns = (): string[] => ADMIN_ROUTES.map((r) => `${r.path}*`);

/**
 * Grafana, Prometheus and Argo CD under sub-paths of the public gateway, for the admin CIDRs only:
 * a DENY policy on the gateway rejects those paths from any other client address (the gateway sees
 * the real one: passthrough load balancer, `externalTrafficPolicy: Local`).
 */
export class AdminIngress extends pulumi.ComponentResource {
  constructor(name: string, args: AdminIngressArgs, opts?: pulumi.ComponentResourceOptions) {
    super("titanium:platform:AdminIngress", name, {}, opts);
    const k = { parent: this, provider: args.provider, dependsOn: args.dependsOn };
    const ns = NAMESPACES.istio;

    // First: the routes never exist without it (created after it, deleted before it), so the UIs are never
    // reachable from outside the admin CIDRs, not even for the seconds between the two.
    const adminOnly = new k8s.apiextensions.CustomResource(
      `${name}-admin-only`,
      {
        apiVersion: "security.istio.io/v1",
        kind: "AuthorizationPolicy",
        metadata: { name: "admin-uis-admin-cidrs-only", namespace: ns },
        spec: {
          selector: { matchLabels: { ...GATEWAY.podLabels } },
          action: "DENY",
          rules: [{ from: [{ source: { notRemoteIpBlocks: args.adminCidrs } }], to: [{ operation: { paths: adminPathPatterns() } }] }],
        },
      },
      k,
    );

    new k8s.apiextensions.CustomResource(
      `${name}-routes`,
      {
        apiVersion: "networking.istio.io/v1",
        kind: "VirtualService",
        metadata: { name: "admin-uis", namespace: ns },
        spec: {
          hosts: [args.hostname || "*"],
          gateways: [args.gatewayRef],
          http: ADMIN_ROUTES.map((r) => ({
            name: r.name,
            match: [{ uri: { prefix: r.path } }],
            route: [{ destination: { host: r.host, port: { number: r.port } } }],
          })),
        },
      },
      { ...k, dependsOn: [...args.dependsOn, adminOnly] },
    );

    this.registerOutputs({});
  }
}
