/**
 * Derives the traffic the application namespace actually allows from the objects the program
 * registers (NetworkPolicies at L4, AuthorizationPolicies at L7, workloads' labels and identities),
 * the way Kubernetes and Istio evaluate them. Used by the traffic-graph test (compared with an
 * independently written graph) and by the offline plan's report.
 */
import type { ProgramRun, RecordedResource } from "../../stacks/harness";
import type { PlanSection } from "../../stacks/plan";
import { PRIVATE_RANGES } from "../gcp/ipv4";
import { ISTIO_AGENT_PORT } from "./mesh";

type Labels = Record<string, string>;
type Obj = Record<string, unknown>;

export interface GraphPeer {
  name: string;
  namespace: string;
  labels: Labels;
  /** SPIFFE principal (without `spiffe://`) when the peer has a sidecar. */
  principal?: string;
}

export interface Edge {
  from: string;
  to: string;
  /** {@link ANY_PORT} when a rule names no port (Kubernetes: every port). */
  port: number;
  protocol: string;
  /** L7 narrowing from the destination's AuthorizationPolicy. */
  paths?: string[];
  notPaths?: string[];
  methods?: string[];
}

const NP = "kubernetes:networking.k8s.io/v1:NetworkPolicy";
const AP = "kubernetes:security.istio.io/v1:AuthorizationPolicy";
export const WORKLOAD_TYPES = ["kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet", "kubernetes:batch/v1:Job", "kubernetes:batch/v1:CronJob"];

/** A rule without `ports`, or a port entry without `port`, allows every port: shown as `*`. */
export const ANY_PORT = 0;

const matches = (selector: Labels | undefined, labels: Labels) => Object.entries(selector ?? {}).every(([k, v]) => labels[k] === v);

export function podTemplate(r: RecordedResource): Obj {
  const spec = r.inputs.spec as Obj;
  if (r.type.endsWith(":CronJob")) return ((spec.jobTemplate as Obj).spec as Obj).template as Obj;
  return spec.template as Obj;
}

/** The pods of the namespace, with labels and mesh identity. */
export function workloadsOf(run: ProgramRun, namespace: string, trustDomain: string): GraphPeer[] {
  return run.resources
    .filter((r) => WORKLOAD_TYPES.includes(r.type) && (r.inputs.metadata as Obj | undefined)?.namespace === namespace)
    .map((r) => {
      const template = podTemplate(r);
      const labels = ((template.metadata as Obj | undefined)?.labels ?? {}) as Labels;
      const sa = (template.spec as Obj).serviceAccountName as string;
      const meshed = labels["sidecar.istio.io/inject"] !== "false";
      return {
        name: labels["app.kubernetes.io/name"] ?? r.name,
        namespace,
        labels,
        ...(meshed ? { principal: `${trustDomain}/ns/${namespace}/sa/${sa}` } : {}),
      };
    });
}

interface NpPeer {
  podSelector?: { matchLabels?: Labels };
  namespaceSelector?: { matchLabels?: Labels };
  ipBlock?: { cidr: string; except?: string[] };
}
interface NpRule {
  from?: NpPeer[];
  to?: NpPeer[];
  ports?: { protocol?: string; port?: number }[];
}
interface NpSpec {
  podSelector: { matchLabels?: Labels };
  policyTypes?: string[];
  ingress?: NpRule[];
  egress?: NpRule[];
}

function peerMatches(p: NpPeer, peer: GraphPeer, ownNamespace: string): boolean {
  // Pod addresses are not known offline: an address range counts as reaching every pod (the only ones
  // here are egress ranges to outside the cluster, listed in `egress`, and they exclude private ranges).
  if (p.ipBlock) return mayHoldPods(p.ipBlock);
  const ns = p.namespaceSelector ? matches(p.namespaceSelector.matchLabels, { "kubernetes.io/metadata.name": peer.namespace }) : peer.namespace === ownNamespace;
  return ns && matches(p.podSelector?.matchLabels, peer.labels);
}

/** False for a range that leaves out every private range, or one address outside them: no pod there. */
function mayHoldPods(block: { cidr: string; except?: string[] }): boolean {
  if (PRIVATE_RANGES.every((r) => block.except?.includes(r))) return false;
  const single = /^(\d+)\.(\d+)\.\d+\.\d+\/32$/.exec(block.cidr);
  if (!single) return true;
  const [a, b] = [Number(single[1]), Number(single[2])];
  return a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168);
}

function portAllowed(rule: NpRule, port: number, protocol: string): boolean {
  if (!rule.ports?.length) return true;
  return rule.ports.some((p) => (p.protocol ?? "TCP") === protocol && (p.port === undefined || p.port === port || port === ANY_PORT));
}

/** Kubernetes: a rule with no (or an empty) `from`/`to` admits every peer. */
const anyPeerMatches = (peers: NpPeer[] | undefined, peer: GraphPeer, ns: string) => !peers?.length || peers.some((p) => peerMatches(p, peer, ns));

interface ApRule {
  from?: { source?: { principals?: string[] } }[];
  to?: { operation?: { ports?: string[]; paths?: string[]; notPaths?: string[]; methods?: string[] } }[];
}

/**
 * Every allowed flow into the namespace's pods and every allowed flow out of it.
 * `externals` names the pod groups of other namespaces (ingress gateway, Prometheus, DNS, istiod).
 */
export function deriveTrafficGraph(run: ProgramRun, opts: { namespace: string; trustDomain: string; externals: GraphPeer[] }): { internal: Edge[]; egress: Edge[] } {
  const inNs = (r: RecordedResource) => (r.inputs.metadata as Obj | undefined)?.namespace === opts.namespace;
  const nps = run.resources.filter((r) => r.type === NP && inNs(r)).map((r) => r.inputs.spec as NpSpec);
  const aps = run.resources.filter((r) => r.type === AP && inNs(r)).map((r) => (r.inputs.spec ?? {}) as { selector?: { matchLabels?: Labels }; action?: string; rules?: ApRule[] });
  const pods = workloadsOf(run, opts.namespace, opts.trustDomain);
  const sources = [...pods, ...opts.externals];

  const policiesFor = (pod: GraphPeer, type: "Ingress" | "Egress") =>
    nps.filter((np) => matches(np.podSelector.matchLabels, pod.labels) && (np.policyTypes ?? ["Ingress"]).includes(type));

  const internal: Edge[] = [];
  for (const dst of pods) {
    const ingressRules = policiesFor(dst, "Ingress").flatMap((np) => np.ingress ?? []);
    const ports = new Set<string>(
      ingressRules.flatMap((r) => (r.ports?.length ? r.ports.map((p) => `${p.protocol ?? "TCP"}/${p.port ?? ANY_PORT}`) : [`TCP/${ANY_PORT}`])),
    );
    for (const key of ports) {
      const [protocol, portText] = key.split("/") as [string, string];
      const port = Number(portText);
      for (const src of sources) {
        if (src === dst) continue;
        // L4, destination side.
        if (!ingressRules.some((r) => portAllowed(r, port, protocol) && anyPeerMatches(r.from, src, opts.namespace))) continue;
        // L4, source side (only pods of this namespace have policies here).
        if (src.namespace === opts.namespace) {
          const egressRules = policiesFor(src, "Egress").flatMap((np) => np.egress ?? []);
          if (!egressRules.some((r) => portAllowed(r, port, protocol) && anyPeerMatches(r.to, dst, opts.namespace))) continue;
        }
        // L7: ports the sidecar captures need an ALLOW rule for the source's principal.
        if (dst.principal && port !== ISTIO_AGENT_PORT) {
          if (!src.principal) continue; // STRICT mTLS refuses plaintext
          // Every operation of every rule that admits this principal on this port: one edge each, so a
          // broader second rule (or operation) for the same caller shows up beside the narrow one.
          const operations = aps
            .filter((ap) => (ap.action ?? "ALLOW") === "ALLOW" && matches(ap.selector?.matchLabels, dst.labels))
            .flatMap((ap) => ap.rules ?? [])
            .filter((rule) => (rule.from ?? [{}]).some((f) => !f.source?.principals || f.source.principals.includes(src.principal!)))
            .flatMap((rule) => (rule.to ?? [{}]).map((t) => t.operation ?? {}))
            .filter((op) => !op.ports || port === ANY_PORT || op.ports.includes(String(port)));
          const seen = new Set<string>();
          for (const op of operations) {
            const edge: Edge = { from: src.name, to: dst.name, port, protocol, ...(op.paths ? { paths: op.paths } : {}), ...(op.notPaths ? { notPaths: op.notPaths } : {}), ...(op.methods ? { methods: op.methods } : {}) };
            if (!seen.has(formatEdge(edge))) internal.push(edge);
            seen.add(formatEdge(edge));
          }
          continue;
        }
        internal.push({ from: src.name, to: dst.name, port, protocol });
      }
    }
  }

  const egress: Edge[] = [];
  for (const src of pods) {
    for (const rule of policiesFor(src, "Egress").flatMap((np) => np.egress ?? [])) {
      // No `to`: every destination; no `ports`: every port (Kubernetes' reading of an empty field).
      const ports = rule.ports?.length ? rule.ports.map((p) => ({ port: p.port ?? ANY_PORT, protocol: p.protocol ?? "TCP" })) : [{ port: ANY_PORT, protocol: "TCP" }];
      const destinations: (string | undefined)[] = rule.to?.length
        ? rule.to.map((p) => {
            if (p.ipBlock) return p.ipBlock.except?.length ? `${p.ipBlock.cidr} except ${p.ipBlock.except.join(",")}` : p.ipBlock.cidr;
            return opts.externals.find((e) => peerMatches(p, e, opts.namespace))?.name; // undefined: a pod here, in `internal`
          })
        : ["anywhere"];
      for (const to of destinations) if (to) for (const port of ports) egress.push({ from: src.name, to, ...port });
    }
  }
  return { internal, egress };
}

/** One line per edge, stable and readable: `user-service -> auth-service:8002/TCP GET /.well-known/jwks.json`. */
export function formatEdge(e: Edge): string {
  const l7 = [e.methods?.join(","), e.paths?.join(","), e.notPaths ? `not ${e.notPaths.join(",")}` : undefined].filter(Boolean).join(" ");
  return `${e.from} -> ${e.to}:${e.port === ANY_PORT ? "*" : e.port}/${e.protocol}${l7 ? ` ${l7}` : ""}`;
}

/**
 * The peers of other namespaces that the namespace's NetworkPolicies name, each with the principal
 * the AuthorizationPolicies grant in that namespace (one peer per principal), named `<ns>/<sa>` or
 * `<ns>/<labels>` when it has none (DNS, istiod).
 */
export function discoverExternals(run: ProgramRun, namespace: string): GraphPeer[] {
  const inNs = (r: RecordedResource) => (r.inputs.metadata as Obj | undefined)?.namespace === namespace;
  const groups = new Map<string, { namespace: string; labels: Labels; caller: boolean }>();
  for (const r of run.resources.filter((x) => x.type === NP && inNs(x))) {
    const spec = r.inputs.spec as NpSpec;
    const peers = [
      ...(spec.ingress ?? []).flatMap((rule) => (rule.from ?? []).map((p) => ({ p, caller: true }))),
      ...(spec.egress ?? []).flatMap((rule) => (rule.to ?? []).map((p) => ({ p, caller: false }))),
    ];
    for (const { p, caller } of peers) {
      const ns = p.namespaceSelector?.matchLabels?.["kubernetes.io/metadata.name"];
      if (!ns || ns === namespace) continue;
      const labels = p.podSelector?.matchLabels ?? {};
      const key = `${ns}/${JSON.stringify(labels)}`;
      groups.set(key, { namespace: ns, labels, caller: caller || (groups.get(key)?.caller ?? false) });
    }
  }
  const principals = run.resources
    .filter((x) => x.type === AP && inNs(x))
    .flatMap((x) => ((x.inputs.spec as { rules?: ApRule[] } | undefined)?.rules ?? []).flatMap((rule) => (rule.from ?? []).flatMap((f) => f.source?.principals ?? [])));
  const peers: GraphPeer[] = [];
  for (const { caller, ...g } of groups.values()) {
    // Only callers carry an identity here; egress-only groups (DNS, istiod) are named by their labels.
    const own = caller ? [...new Set(principals.filter((p) => p.includes(`/ns/${g.namespace}/sa/`)))] : [];
    const label = Object.entries(g.labels).map(([k, v]) => `${k}=${v}`).join(",");
    if (own.length === 0) peers.push({ name: `${g.namespace}/${label}`, ...g });
    for (const principal of own) peers.push({ name: `${g.namespace}/${principal.split("/sa/")[1]}`, ...g, principal });
  }
  return peers;
}

/** The trust domain, read from the principals of the namespace's own workloads in its AuthorizationPolicies. */
function trustDomainOf(run: ProgramRun, namespace: string): string {
  const marker = `/ns/${namespace}/sa/`;
  for (const r of run.resources.filter((x) => x.type === AP)) {
    for (const rule of (r.inputs.spec as { rules?: ApRule[] } | undefined)?.rules ?? []) {
      for (const p of (rule.from ?? []).flatMap((f) => f.source?.principals ?? [])) if (p.includes(marker)) return p.slice(0, p.indexOf(marker));
    }
  }
  return "cluster.local";
}

/** The offline plan's report of the allowed traffic (what a reviewer reads before a security change). */
export function trafficGraphSection(run: ProgramRun): PlanSection {
  const namespace = run.outputs.appNamespace;
  if (typeof namespace !== "string") return { title: "Application traffic graph", lines: ["(no application layer in this program)"], blocking: false };
  const graph = deriveTrafficGraph(run, { namespace, trustDomain: trustDomainOf(run, namespace), externals: discoverExternals(run, namespace) });
  const lines = [
    "Allowed inside and into the application namespace (NetworkPolicy and AuthorizationPolicy):",
    ...[...new Set(graph.internal.map(formatEdge))].sort().map((l) => `  ${l}`),
    "Allowed out of it:",
    ...[...new Set(graph.egress.map(formatEdge))].sort().map((l) => `  ${l}`),
  ];
  return { title: "Application traffic graph", lines, blocking: false, data: graph };
}
