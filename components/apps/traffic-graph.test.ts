import { beforeAll, describe, expect, it } from "vitest";
import { type ProgramRun, type RecordedResource, configuredRun } from "../../stacks/harness";
import { GATEWAY, NAMESPACES, PROMETHEUS } from "../platform/names";
import { deriveTrafficGraph, discoverExternals, formatEdge, type GraphPeer, podTemplate, WORKLOAD_TYPES } from "./traffic-graph";

const podTemplateOf = (r: RecordedResource) => {
  const metadata = (podTemplate(r).metadata ?? {}) as { labels?: Record<string, string>; annotations?: Record<string, string> };
  return { labels: metadata.labels ?? {}, annotations: metadata.annotations ?? {} };
};

// The peers of other namespaces, with the names and labels the platform layer gives them.
const externals: GraphPeer[] = [
  { name: "ingress-gateway", namespace: NAMESPACES.istio, labels: GATEWAY.podLabels, principal: `cluster.local/ns/${NAMESPACES.istio}/sa/${GATEWAY.serviceAccount}` },
  { name: "prometheus", namespace: NAMESPACES.monitoring, labels: PROMETHEUS.podLabels, principal: `cluster.local/ns/${NAMESPACES.monitoring}/sa/${PROMETHEUS.serviceAccount}` },
  { name: "istiod", namespace: "istio-system", labels: { app: "istiod" } },
  { name: "dns", namespace: "kube-system", labels: { "k8s-app": "kube-dns" } },
  // Anything else in the cluster, to prove it gets nowhere.
  { name: "stranger", namespace: "default", labels: { app: "stranger" }, principal: "cluster.local/ns/default/sa/default" },
];

/**
 * The intended graph, written out by hand (not derived from topology.ts): who may open a
 * connection to whom, on which port, and for which requests.
 */
const INTENDED = [
  // The api-gateway fronts the three services, on the paths its public routes map to (never a service's
  // /internal/*, /metrics or /readyz), and keeps its rate limits in Redis.
  "api-gateway -> auth-service:8002/TCP /login,/auth/refresh,/auth/logout,/verify,/health,/.well-known/jwks.json",
  "api-gateway -> user-service:8001/TCP /users,/users/*,/health",
  "api-gateway -> blog-service:8005/TCP /,/blog,/blog/*",
  "api-gateway -> redis:6379/TCP",
  // Login checks credentials with the user-service (that call only); refresh tokens are stored in PostgreSQL.
  "auth-service -> user-service:8001/TCP POST /internal/verify-credentials",
  "auth-service -> postgres:5432/TCP",
  // User and blog data, caches, and the auth-service's public keys only (tokens are verified locally).
  "user-service -> postgres:5432/TCP",
  "user-service -> redis:6379/TCP",
  "user-service -> auth-service:8002/TCP GET /.well-known/jwks.json",
  "blog-service -> postgres:5432/TCP",
  "blog-service -> redis:6379/TCP",
  "blog-service -> auth-service:8002/TCP GET /.well-known/jwks.json",
  // Schema migrations and the nightly dump.
  "migrations -> postgres:5432/TCP",
  "postgres-backup -> postgres:5432/TCP",
  // The public entry: the API through the api-gateway, the blog UI (pages only) directly.
  "ingress-gateway -> api-gateway:8000/TCP /api/users/health,/api/auth/health,/api/*,/blog/api/*",
  "ingress-gateway -> blog-service:8005/TCP GET,HEAD /,/health,/blog,/blog/* not /blog/api/*",
  // Prometheus: merged metrics on the agent port (ADR 0021), never the app port (it has no mesh certificate).
  ...["api-gateway", "auth-service", "user-service", "blog-service"].map((svc) => `prometheus -> ${svc}:15020/TCP`),
  // Istio marks every injected pod for scraping: the data stores' proxies too (their merged Envoy metrics).
  "prometheus -> postgres:15020/TCP",
  "prometheus -> redis:15020/TCP",
].sort();

const MESHED = ["api-gateway", "auth-service", "user-service", "blog-service", "postgres", "redis", "migrations", "postgres-backup"];

function intendedEgress(loadGenerator: boolean): string[] {
  return [
    ...MESHED.flatMap((w) => [`${w} -> dns:53/UDP`, `${w} -> dns:53/TCP`, `${w} -> istiod:15012/TCP`]),
    // Only the backup reaches the metadata server (for the node's credentials) and Cloud Storage.
    "postgres-backup -> 169.254.169.254/32:80/TCP",
    "postgres-backup -> 0.0.0.0/0 except 10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,169.254.0.0/16,100.64.0.0/10:443/TCP",
    ...(loadGenerator ? ["load-generator -> dns:53/UDP", "load-generator -> dns:53/TCP", "load-generator -> istiod:15012/TCP", "load-generator -> ingress-gateway:443/TCP"] : []),
  ].sort();
}

const runs: Record<string, ProgramRun> = {};
beforeAll(async () => {
  runs.dev = await configuredRun("dev");
  runs.prod = await configuredRun("prod");
});

const graphOf = (run: ProgramRun) => {
  const g = deriveTrafficGraph(run, { namespace: "titanium", trustDomain: "cluster.local", externals });
  return { internal: g.internal.map(formatEdge).sort(), egress: g.egress.map(formatEdge).sort() };
};

describe.each([["dev", true], ["prod", false]] as const)("allowed traffic (%s)", (stack, loadGenerator) => {
  it("equals the intended graph: nothing more, nothing less", () => {
    expect(graphOf(runs[stack]!).internal).toEqual(INTENDED);
  });

  it("lets traffic out only to DNS, istiod, and (backup only) the metadata server and Cloud Storage", () => {
    expect(graphOf(runs[stack]!).egress).toEqual(intendedEgress(loadGenerator));
  });

  it("lets Prometheus reach every pod Istio marks for scraping: none is a target it cannot reach (a TargetDown alert forever)", () => {
    const run = runs[stack]!;
    const edges = graphOf(run).internal;
    const pods = run.resources.filter((r) => WORKLOAD_TYPES.includes(r.type) && (r.inputs.metadata as { namespace?: string }).namespace === "titanium");
    expect(pods.length).toBeGreaterThanOrEqual(MESHED.length);
    for (const r of pods) {
      const tpl = podTemplateOf(r);
      const name = tpl.labels["app.kubernetes.io/name"]!;
      // The injector sets prometheus.io/scrape "true" on every injected pod that does not say "false".
      if (tpl.annotations["prometheus.io/scrape"] === "false") continue;
      expect(edges, name).toContain(`prometheus -> ${name}:15020/TCP`);
    }
  });
});

describe("traffic graph derivation", () => {
  it("notices a widened NetworkPolicy or AuthorizationPolicy", () => {
    const run = structuredClone(runs.prod!);
    // Let the blog-service's NetworkPolicy admit the auth-service: L4 alone is not enough, L7 still refuses.
    const np = run.resources.find((r) => r.name === "apps-blog-service-network-policy")!;
    const spec = np.inputs.spec as { ingress: { from: unknown[]; ports: unknown[] }[] };
    spec.ingress.push({ from: [{ podSelector: { matchLabels: { "app.kubernetes.io/name": "auth-service" } } }], ports: [{ protocol: "TCP", port: 8005 }] });
    expect(graphOf(run).internal).toEqual(INTENDED);
    // And the auth-service's egress plus the blog-service's AuthorizationPolicy: now the edge exists.
    const egress = (run.resources.find((r) => r.name === "apps-auth-service-network-policy")!.inputs.spec as { egress: unknown[] }).egress;
    egress.push({ to: [{ podSelector: { matchLabels: { "app.kubernetes.io/name": "blog-service" } } }], ports: [{ protocol: "TCP", port: 8005 }] });
    const ap = run.resources.find((r) => r.name === "apps-blog-service-authorization-policy")!.inputs.spec as { rules: unknown[] };
    ap.rules.push({ from: [{ source: { principals: ["cluster.local/ns/titanium/sa/auth-service"] } }], to: [{ operation: { ports: ["8005"] } }] });
    expect(graphOf(run).internal).toContain("auth-service -> blog-service:8005/TCP");
  });

  it("reads empty fields as Kubernetes and Istio do, and shows every rule that admits a caller", () => {
    type Spec = { ingress: unknown[]; egress: unknown[]; rules: unknown[] };
    const specOf = (run: ProgramRun, name: string) => run.resources.find((r) => r.name === name)!.inputs.spec as Spec;
    // A NetworkPolicy rule with no `from` admits everyone; an AuthorizationPolicy rule with no `from`, every principal.
    let run = structuredClone(runs.prod!);
    specOf(run, "apps-blog-service-network-policy").ingress.push({ ports: [{ protocol: "TCP", port: 8005 }] });
    specOf(run, "apps-blog-service-authorization-policy").rules.push({ to: [{ operation: { ports: ["8005"] } }] });
    expect(graphOf(run).internal).toContain("stranger -> blog-service:8005/TCP");
    // A rule with no `ports` opens every port.
    run = structuredClone(runs.prod!);
    specOf(run, "apps-redis-network-policy").ingress.push({ from: [{ podSelector: { matchLabels: { "app.kubernetes.io/name": "blog-service" } } }] });
    specOf(run, "apps-blog-service-network-policy").egress.push({ to: [{ podSelector: { matchLabels: { "app.kubernetes.io/name": "redis" } } }] });
    specOf(run, "apps-redis-authorization-policy").rules.push({ from: [{ source: { principals: ["cluster.local/ns/titanium/sa/blog-service"] } }] });
    expect(graphOf(run).internal).toContain("blog-service -> redis:*/TCP");
    // A second, broader rule for a caller that already has a narrow one.
    run = structuredClone(runs.prod!);
    specOf(run, "apps-user-service-authorization-policy").rules.push({ from: [{ source: { principals: ["cluster.local/ns/titanium/sa/auth-service"] } }] });
    const edges = graphOf(run).internal.filter((e) => e.startsWith("auth-service -> user-service"));
    expect(edges).toEqual(["auth-service -> user-service:8001/TCP", "auth-service -> user-service:8001/TCP POST /internal/verify-credentials"]);
    // Egress with no `to` reaches anywhere; an address range inside the cluster reaches its pods.
    run = structuredClone(runs.prod!);
    specOf(run, "apps-auth-service-network-policy").egress.push({ ports: [{ protocol: "TCP", port: 443 }] });
    expect(graphOf(run).egress).toContain("auth-service -> anywhere:443/TCP");
    const podRange = { ipBlock: { cidr: "10.42.0.0/16" } };
    specOf(run, "apps-redis-network-policy").ingress.push({ from: [podRange], ports: [{ protocol: "TCP", port: 6379 }] });
    specOf(run, "apps-migrations-network-policy").egress.push({ to: [podRange], ports: [{ protocol: "TCP", port: 6379 }] });
    specOf(run, "apps-redis-authorization-policy").rules.push({ from: [{ source: { principals: ["cluster.local/ns/titanium/sa/migrations"] } }] });
    expect(graphOf(run).internal).toContain("migrations -> redis:6379/TCP");
  });

  it("names the other namespaces' peers for the offline plan", () => {
    const names = discoverExternals(runs.prod!, "titanium").map((p) => p.name).sort();
    // Prometheus only reaches the agent port, outside Envoy's inbound listener: no principal, named by its labels.
    expect(names).toEqual([
      "istio-system/app=istiod",
      "istio-system/istio-ingressgateway",
      "kube-system/k8s-app=kube-dns",
      "monitoring/app.kubernetes.io/name=prometheus,operator.prometheus.io/name=kps-prometheus",
    ]);
  });
});
