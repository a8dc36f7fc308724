/**
 * The application's public routes: a VirtualService bound to the platform's shared Gateway (which
 * terminates TLS and redirects HTTP to HTTPS). The original's public paths: `/api/*` and `/blog/api/*`
 * to the api-gateway (it routes and rate-limits), `/blog/*` and `/` to the blog UI. No route rewrites
 * paths (the original's prefix rewrite turned `/api/users/health` into `/users/health`); exact health
 * routes come first. Only idempotent requests are retried after they reached the api-gateway: Istio retries
 * every route twice unless told otherwise, so writes are retried only when they never reached it (as
 * between sidecars, MESH_WRITE_RETRIES). What goes to the api-gateway waits longer than the gateway waits
 * for its services, so every answer there is the gateway's own (its 504 envelope included).
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { IVirtualService } from "@kubernetes-models/istio/networking.istio.io/v1beta1/VirtualService";
import { CONNECT_TIMEOUT_MS, READ_METHODS } from "./mesh";
import { GATEWAY_UPSTREAM_TIMEOUT_MS } from "./service-env";
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

/**
 * What the api-gateway may spend on a request besides its upstream call (which `UPSTREAM_TIMEOUT_MS` bounds,
 * its own retries included): fetching the JWKS for a token signed by a key it has not cached yet (2 s), the
 * rate-limit admission and the current-password limit in Redis (500 ms command timeout each), and its own
 * scheduling under load.
 */
export const GATEWAY_OVERHEAD_MS = 5_000;
/** The longest the api-gateway takes to answer (within it, whatever happened behind it, its own answer). */
export const GATEWAY_ANSWER_MS = GATEWAY_UPSTREAM_TIMEOUT_MS + GATEWAY_OVERHEAD_MS;

/**
 * Envoy's retry conditions under which the request never reached the api-gateway: the connection could not be
 * made (`connect-failure`) or an HTTP/2 stream was refused unprocessed (`refused-stream`). Not `503`: the
 * gateway sheds load with 503 on purpose (in-flight and body budgets) and answers one for a service that is
 * down, and each retry would be admitted, and charged to the client's rate limit, again. Not `reset`: in
 * Envoy it is any answer that did not come (a disconnect, a reset or a per-try timeout), so a read the gateway
 * had already taken, limited and forwarded would run again; the gateway itself retries a read whose
 * connection to a service failed, within its own deadline.
 */
export const NEVER_SENT_RETRY_ON = "connect-failure,refused-stream";
/** Retries of a read through the api-gateway. */
const GATEWAY_RETRY_ATTEMPTS = 2;

/** Whole seconds, rounded up (Istio's duration form, as the other routes state theirs). */
const seconds = (ms: number) => `${Math.ceil(ms / 1000)}s`;

/**
 * Timeouts and retries per kind of route: one place. Through the api-gateway, each try waits for the
 * gateway's longest answer, and the route for that try after connection attempts that failed (each within the
 * connect timeout) plus a second of backoff; Envoy's timers start once the client's request is all received.
 */
export const ROUTE_POLICY = {
  // Reads and writes alike: a write is not idempotent (a retried POST could create a second post), but one
  // that never reached the gateway (a pod gone between its endpoint's removal and Envoy's update) is safe to send.
  gateway: {
    timeout: seconds(GATEWAY_ANSWER_MS + GATEWAY_RETRY_ATTEMPTS * CONNECT_TIMEOUT_MS + 1_000),
    retries: { attempts: GATEWAY_RETRY_ATTEMPTS, perTryTimeout: seconds(GATEWAY_ANSWER_MS), retryOn: NEVER_SENT_RETRY_ON },
  },
  // Straight to the blog-service (its /health, pages and static files): reads with no rate limit to charge twice.
  siteHealth: { timeout: "3s", retries: { attempts: 2, perTryTimeout: "1s", retryOn: "connect-failure,refused-stream,unavailable,reset,503" } },
  siteRead: { timeout: "15s", retries: { attempts: 2, perTryTimeout: "5s", retryOn: "connect-failure,refused-stream,unavailable,reset,503" } },
} as const;

/** The original's public health paths: the services' through the api-gateway, the site's from the blog-service. */
export const HEALTH_PATHS: readonly string[] = [PUBLIC_PATHS.siteHealth, ...PUBLIC_PATHS.health];

/** The routes, in match order. */
export function virtualServiceSpec(args: Pick<AppIngressArgs, "gateway" | "hosts" | "apiGateway" | "blog">): VirtualServiceSpec {
  const to = (t: RouteTarget) => [{ destination: { host: t.host, port: { number: t.port } } }];
  const apiPrefixes = PUBLIC_PATHS.apiPrefixes;
  const http: HttpRoute[] = [
    // The services' health through the api-gateway, any method (retried only when never sent: safe for any).
    { name: "health", match: PUBLIC_PATHS.health.map((p) => ({ uri: { exact: p } })), route: to(args.apiGateway), ...ROUTE_POLICY.gateway },
    { name: "site-health", match: [{ uri: { exact: PUBLIC_PATHS.siteHealth }, method: READ_METHODS }], route: to(args.blog), ...ROUTE_POLICY.siteHealth },
    // Every method: the gateway answers what it does not route (404, 405).
    { name: "api", match: apiPrefixes.map((p) => ({ uri: { prefix: p } })), route: to(args.apiGateway), ...ROUTE_POLICY.gateway },
    // The UI serves pages and static files only; other methods, and any other path, get the gateway's 404.
    { name: "blog-ui", match: [{ uri: { prefix: PUBLIC_PATHS.uiPrefix }, method: READ_METHODS }], route: to(args.blog), ...ROUTE_POLICY.siteRead },
    { name: "root", match: [{ uri: { exact: PUBLIC_PATHS.root }, method: READ_METHODS }], route: to(args.blog), ...ROUTE_POLICY.siteRead },
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
