/**
 * The application's public routes: a VirtualService bound to the platform's shared Gateway (which
 * terminates TLS and redirects HTTP to HTTPS). The original's public paths: `/api/*` and `/blog/api/*`
 * to the api-gateway (it routes and rate-limits), `/blog/*` and `/` to the blog UI. No route rewrites
 * paths (the original's prefix rewrite turned `/api/users/health` into `/users/health`); exact health
 * routes come first with their own short timeout. Only idempotent requests are retried: Istio retries
 * every route twice unless told otherwise, so writes say `attempts: 0`.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { IVirtualService } from "@kubernetes-models/istio/networking.istio.io/v1beta1/VirtualService";
import { READ_METHODS } from "./mesh";
import { labelsOf, PUBLIC_PATHS } from "./topology";

export type VirtualServiceSpec = NonNullable<IVirtualService["spec"]>;
type HttpRoute = NonNullable<VirtualServiceSpec["http"]>[number];

/** A destination inside the mesh. */
export interface RouteTarget {
  /** Service FQDN, e.g. `api-gateway.titanium.svc.cluster.local`. */
  host: string;
  port: number;
}

export interface AppIngressArgs {
  /** Namespace of the VirtualService (the application's). */
  namespace: string;
  /** The platform's Gateway as `<namespace>/<name>`. */
  gateway: string;
  /** Host names (covered by the Gateway's hosts; `*` when the stack has no host name). */
  hosts: string[];
  /** The api-gateway (the API and its rate limits). */
  apiGateway: RouteTarget;
  /** The blog-service (the UI's pages and static files). */
  blog: RouteTarget;
  /** Kubernetes provider of the cluster. */
  provider: k8s.Provider;
  /** The Istio CRDs (and the Gateway) must exist first. */
  dependsOn: pulumi.Input<pulumi.Resource>[];
}

/** Timeouts and retries per kind of route: one place. */
export const ROUTE_POLICY = {
  health: { timeout: "3s", retries: { attempts: 2, perTryTimeout: "1s", retryOn: "connect-failure,refused-stream,unavailable,reset,503" } },
  read: { timeout: "15s", retries: { attempts: 2, perTryTimeout: "5s", retryOn: "connect-failure,refused-stream,unavailable,reset,503" } },
  // Writes are not idempotent: a retried POST could create a second post.
  write: { timeout: "15s", retries: { attempts: 0 } },
} as const;

/** The original's public health paths: the services' through the api-gateway, the site's from the blog-service. */
export const HEALTH_PATHS: readonly string[] = [PUBLIC_PATHS.siteHealth, ...PUBLIC_PATHS.health];

/** The routes, in match order. */
export function virtualServiceSpec(args: Pick<AppIngressArgs, "gateway" | "hosts" | "apiGateway" | "blog">): VirtualServiceSpec {
  const to = (t: RouteTarget) => [{ destination: { host: t.host, port: { number: t.port } } }];
  const apiPrefixes = PUBLIC_PATHS.apiPrefixes;
  const http: HttpRoute[] = [
    { name: "health", match: PUBLIC_PATHS.health.map((p) => ({ uri: { exact: p } })), route: to(args.apiGateway), ...ROUTE_POLICY.health },
    { name: "site-health", match: [{ uri: { exact: PUBLIC_PATHS.siteHealth }, method: READ_METHODS }], route: to(args.blog), ...ROUTE_POLICY.health },
    { name: "api-read", match: apiPrefixes.map((p) => ({ uri: { prefix: p }, method: READ_METHODS })), route: to(args.apiGateway), ...ROUTE_POLICY.read },
    { name: "api-write", match: apiPrefixes.map((p) => ({ uri: { prefix: p } })), route: to(args.apiGateway), ...ROUTE_POLICY.write },
    // The UI serves pages and static files only; other methods, and any other path, get the gateway's 404.
    { name: "blog-ui", match: [{ uri: { prefix: PUBLIC_PATHS.uiPrefix }, method: READ_METHODS }], route: to(args.blog), ...ROUTE_POLICY.read },
    { name: "root", match: [{ uri: { exact: PUBLIC_PATHS.root }, method: READ_METHODS }], route: to(args.blog), ...ROUTE_POLICY.read },
  ];
  return { hosts: args.hosts, gateways: [args.gateway], http };
}

export class AppIngress extends pulumi.ComponentResource {
  readonly virtualServiceName: pulumi.Output<string>;

  constructor(name: string, args: AppIngressArgs, opts?: pulumi.ComponentResourceOptions) {
    super("titanium:apps:AppIngress", name, {}, opts);
    const vs = new k8s.apiextensions.CustomResource(`${name}-virtual-service`, {
      apiVersion: "networking.istio.io/v1",
      kind: "VirtualService",
      metadata: { name: "titanium", namespace: args.namespace, labels: labelsOf("titanium", "ingress") },
      spec: virtualServiceSpec(args),
    }, { parent: this, provider: args.provider, dependsOn: args.dependsOn });
    this.virtualServiceName = vs.metadata.name;
    this.registerOutputs({ virtualServiceName: this.virtualServiceName });
  }
}
