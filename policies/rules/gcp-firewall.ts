import { ipv4Contains, ipv4Range, isIpv4Cidr, NON_PUBLIC_RANGES } from "../../components/gcp/ipv4";
import { FIREWALL, FIREWALL_POLICIES_WITH_RULES, FIREWALL_POLICY_RULES } from "../lib/gcp";
import type { Obj } from "../lib/k8s";
import { resourcePolicy, type BaseConfig } from "../lib/policy";

interface Config extends BaseConfig {
  forbiddenPorts: number[];
}

const WORLD = ["0.0.0.0/0", "::/0"];
/** Public sources this broad are "the internet" too (`0.0.0.0/1` + `128.0.0.0/1` is the world in two rules' worth). */
const BROADEST_PUBLIC_PREFIX = { v4: 16, v6: 32 };

/** An IPv6 address (`2001:db8::1`, `::ffff:10.0.0.1`) as a 128-bit number; undefined when it is not one. */
export function ipv6Number(address: string): bigint | undefined {
  let text = address.trim().toLowerCase();
  const v4 = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    if (!isIpv4Cidr(v4[2]!)) return undefined;
    const n = ipv4Range(v4[2]!).address;
    text = `${v4[1]}${Math.floor(n / 65536).toString(16)}:${(n % 65536).toString(16)}`;
  }
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const groupsOf = (s: string) => (s === "" ? [] : s.split(":"));
  const head = groupsOf(halves[0]!);
  const tail = halves.length === 2 ? groupsOf(halves[1]!) : [];
  if (halves.length === 2 && head.length + tail.length > 7) return undefined;
  const groups = halves.length === 2 ? [...head, ...Array<string>(8 - head.length - tail.length).fill("0"), ...tail] : head;
  if (groups.length !== 8 || groups.some((g) => !/^[0-9a-f]{1,4}$/.test(g))) return undefined;
  return groups.reduce((n, g) => (n << 16n) + BigInt(parseInt(g, 16)), 0n);
}

/** IPv6 ranges that are not the internet: unique-local (fc00::/7) and link-local (fe80::/10). */
const NON_PUBLIC_V6: readonly [string, number][] = [
  ["fc00::", 7],
  ["fe80::", 10],
];

/** Whether every address of the IPv6 range `address/prefix` lies in `net/netPrefix` (by the bits, whatever the spelling). */
function ipv6Within(address: bigint, prefix: number, net: string, netPrefix: number): boolean {
  const shift = BigInt(128 - netPrefix);
  return prefix >= netPrefix && address >> shift === ipv6Number(net)! >> shift;
}

/**
 * Whether a source range reaches (a large share of) the internet: 0.0.0.0/0 and ::/0, and any public
 * range broader than /16 (IPv6: /32). Ranges that are not the internet (private, link-local, shared;
 * IPv6 unique-local and link-local) count at any size, judged by the range's bits: `fd::/1` is `0::/1`.
 */
export function opensToInternet(cidr: string): boolean {
  const text = cidr.trim();
  if (WORLD.includes(text)) return true;
  if (text.includes(":")) {
    const [addr, bits] = text.split("/");
    const prefix = Number(bits);
    if (bits === undefined || !(prefix < BROADEST_PUBLIC_PREFIX.v6)) return false;
    const address = ipv6Number(addr!);
    // A broad range GCP would read and this cannot: the internet, not a pass.
    if (address === undefined) return true;
    return !NON_PUBLIC_V6.some(([net, netPrefix]) => ipv6Within(address, prefix, net, netPrefix));
  }
  if (!isIpv4Cidr(text)) return false;
  return ipv4Range(text).prefix < BROADEST_PUBLIC_PREFIX.v4 && !NON_PUBLIC_RANGES.some((r) => ipv4Contains(r, text));
}

/** Protocols with ports; `all` and the protocol numbers of TCP, UDP and SCTP included. */
const PORTED = ["tcp", "udp", "sctp", "all", "6", "17", "132"];

/** Whether a firewall port spec ("22", "1-1024", 22) covers a port. */
export function portSpecCovers(spec: unknown, port: number): boolean {
  const text = String(spec).trim();
  const range = /^(\d+)-(\d+)$/.exec(text);
  if (range) return Number(range[1]) <= port && port <= Number(range[2]);
  return Number(text) === port;
}

/** What one rule allows: a protocol and its ports (none: every port of it). */
interface Allowance {
  protocol: unknown;
  ports: unknown;
}

/** Reports each allowance that opens a forbidden port, or every port, of a ported protocol to `from`. */
function judgeAllowances(rule: string, from: string, allowances: Allowance[], forbiddenPorts: number[], report: (message: string) => void): void {
  for (const allow of allowances) {
    const protocol = String(allow.protocol ?? "").toLowerCase();
    if (!PORTED.includes(protocol)) continue;
    const ports = Array.isArray(allow.ports) ? (allow.ports as unknown[]) : [];
    if (protocol === "all" || ports.length === 0) {
      report(`rule ${rule} opens all ${protocol} ports to ${from}`);
      continue;
    }
    const hit = forbiddenPorts.filter((p) => ports.some((spec) => portSpecCovers(spec, p)));
    if (hit.length > 0) report(`rule ${rule} opens ${protocol} port(s) ${hit.join(", ")} to ${from}`);
  }
}

const isEgress = (direction: unknown): boolean => typeof direction === "string" && direction.toUpperCase() === "EGRESS";
const listOf = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/** A VPC firewall rule (`gcp:compute/firewall:Firewall`). */
function judgeVpcRule(props: Obj, name: string, forbiddenPorts: number[], report: (message: string) => void): void {
  if (props.disabled === true || isEgress(props.direction)) return;
  const ranges = listOf(props.sourceRanges);
  const world = ranges.filter((r): r is string => typeof r === "string" && opensToInternet(r));
  const implicitWorld = ranges.length === 0 && listOf(props.sourceTags).length === 0 && listOf(props.sourceServiceAccounts).length === 0;
  if (world.length === 0 && !implicitWorld) return;
  const from = implicitWorld ? "0.0.0.0/0 (no source given)" : world.join(", ");
  judgeAllowances(name, from, listOf(props.allows) as Allowance[], forbiddenPorts, report);
}

/** Sources of a firewall policy rule's `match`; any one of them given means the rule names its sources. */
const POLICY_RULE_SOURCES = ["srcIpRanges", "srcRegionCodes", "srcAddressGroups", "srcFqdns", "srcThreatIntelligences", "srcSecureTags", "srcNetworks"];

/**
 * A firewall policy rule (network, regional network or hierarchical; alone or in a `*WithRules` policy):
 * an `allow` (or `apply_security_profile_group`) ingress rule whose `match` takes traffic from the
 * internet: a world or broad public `srcIpRanges`, a country (`srcRegionCodes`), the `INTERNET` network
 * scope, or no source at all.
 */
function judgePolicyRule(rule: Obj, name: string, forbiddenPorts: number[], report: (message: string) => void): void {
  if (rule.disabled === true || isEgress(rule.direction)) return;
  const action = String(rule.action ?? "").toLowerCase().replace(/_/g, "");
  if (action === "deny" || action === "gotonext") return;
  const match = (rule.match ?? {}) as Obj;
  const scope = match.srcNetworkScope ?? match.srcNetworkContext;
  const from: string[] = [];
  const world = listOf(match.srcIpRanges).filter((r): r is string => typeof r === "string" && opensToInternet(r));
  if (world.length > 0) from.push(world.join(", "));
  const regions = listOf(match.srcRegionCodes);
  if (regions.length > 0) from.push(`region codes ${regions.map(String).join(", ")}`);
  if (scope === "INTERNET") from.push("the INTERNET network scope");
  if (scope === undefined && POLICY_RULE_SOURCES.every((k) => listOf(match[k]).length === 0)) from.push("0.0.0.0/0 (no source given)");
  if (from.length === 0) return;
  const allowances = listOf(match.layer4Configs).map((c) => ({ protocol: (c as Obj).ipProtocol, ports: (c as Obj).ports }));
  judgeAllowances(name, from.join(", "), allowances, forbiddenPorts, report);
}

/** No ingress rule opens SSH, the K3s API, the kubelet or all ports to the whole internet. */
export const gcpFirewallNoWorldAdmin = resourcePolicy<Config>(
  {
    name: "gcp-firewall-no-world-admin-ports",
    description:
      "No enabled ingress firewall rule (VPC firewall rule, or allow rule of a network, regional or hierarchical firewall policy) opens SSH (22), the K3s API (6443), the kubelet (10250) or all ports to 0.0.0.0/0 (or ::/0, a public range broader than /16 or /32 for IPv6, a country, the INTERNET network scope, or no source at all, which GCP reads as 0.0.0.0/0).",
    severity: "critical",
    enforcementLevel: "mandatory",
    remediationSteps:
      "Narrow `sourceRanges` (a firewall policy rule's `match.srcIpRanges`): SSH only from IAP (35.235.240.0/20), 6443 from `titanium:network.adminCidrs`, IAP and the load balancer's health-check ranges, 10250 from inside the subnet. Name ports explicitly instead of allowing a whole protocol.",
    configSchema: {
      properties: {
        forbiddenPorts: { type: "array", items: { type: "integer" }, default: [22, 6443, 10250], description: "Ports never open to the world." },
      },
    },
  },
  (args, judge, report, config) => {
    const props = args.props as Obj;
    const nameOf = (o: Obj, fallback: string) => (typeof o.name === "string" && o.name !== "" ? o.name : fallback);
    if (args.type === FIREWALL) {
      judge.check(() => judgeVpcRule(props, nameOf(props, args.name), config.forbiddenPorts, report));
    } else if (FIREWALL_POLICY_RULES.includes(args.type)) {
      judge.check(() => {
        const rule = typeof props.ruleName === "string" && props.ruleName !== "" ? props.ruleName : args.name;
        judgePolicyRule(props, rule, config.forbiddenPorts, report);
      });
    } else if (FIREWALL_POLICIES_WITH_RULES.includes(args.type)) {
      judge.check(() => {
        const policy = nameOf(props, args.name);
        listOf(props.rules).forEach((_, i) => {
          judge.check(() => {
            const rule = listOf(props.rules)[i] as Obj;
            const ruleName = typeof rule.ruleName === "string" && rule.ruleName !== "" ? rule.ruleName : `priority ${String(rule.priority ?? i)}`;
            judgePolicyRule(rule, `${policy}/${ruleName}`, config.forbiddenPorts, report);
          });
        });
      });
    }
  },
);
