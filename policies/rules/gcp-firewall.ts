import { ipv4Contains, ipv4Range, isIpv4Cidr, NON_PUBLIC_RANGES } from "../../components/gcp/ipv4";
import { FIREWALL } from "../lib/gcp";
import type { Obj } from "../lib/k8s";
import { resourcePolicy, type BaseConfig } from "../lib/policy";

interface Config extends BaseConfig {
  forbiddenPorts: number[];
}

const WORLD = ["0.0.0.0/0", "::/0"];
/** Public sources this broad are "the internet" too (`0.0.0.0/1` + `128.0.0.0/1` is the world in two rules' worth). */
const BROADEST_PUBLIC_PREFIX = { v4: 16, v6: 32 };

/**
 * Whether a source range reaches (a large share of) the internet: 0.0.0.0/0 and ::/0, and any public
 * range broader than /16 (IPv6: /32). Ranges that are not the internet (private, link-local, shared)
 * count at any size.
 */
export function opensToInternet(cidr: string): boolean {
  const text = cidr.trim();
  if (WORLD.includes(text)) return true;
  if (text.includes(":")) {
    const [addr, bits] = text.split("/");
    return bits !== undefined && Number(bits) < BROADEST_PUBLIC_PREFIX.v6 && !/^f[cd]/i.test(addr!);
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

/** No ingress rule opens SSH, the K3s API, the kubelet or all ports to the whole internet. */
export const gcpFirewallNoWorldAdmin = resourcePolicy<Config>(
  {
    name: "gcp-firewall-no-world-admin-ports",
    description:
      "No enabled ingress firewall rule opens SSH (22), the K3s API (6443), the kubelet (10250) or all ports to 0.0.0.0/0 (or ::/0, a public range broader than /16 or /32 for IPv6, or no source at all, which GCP reads as 0.0.0.0/0).",
    severity: "critical",
    enforcementLevel: "mandatory",
    remediationSteps:
      "Narrow `sourceRanges`: SSH only from IAP (35.235.240.0/20), 6443 from `titanium:network.adminCidrs`, IAP and the load balancer's health-check ranges, 10250 from inside the subnet. Name ports explicitly instead of allowing a whole protocol.",
    configSchema: {
      properties: {
        forbiddenPorts: { type: "array", items: { type: "integer" }, default: [22, 6443, 10250], description: "Ports never open to the world." },
      },
    },
  },
  (args, judge, report, config) => {
    if (args.type !== FIREWALL) return;
    const props = args.props as Obj;
    judge.check(() => {
      if (props.disabled === true) return;
      if (typeof props.direction === "string" && props.direction.toUpperCase() === "EGRESS") return;
      const ranges = Array.isArray(props.sourceRanges) ? (props.sourceRanges as string[]) : [];
      const tags = Array.isArray(props.sourceTags) ? (props.sourceTags as string[]) : [];
      const accounts = Array.isArray(props.sourceServiceAccounts) ? (props.sourceServiceAccounts as string[]) : [];
      const world = ranges.filter((r) => typeof r === "string" && opensToInternet(r));
      const implicitWorld = ranges.length === 0 && tags.length === 0 && accounts.length === 0;
      if (world.length === 0 && !implicitWorld) return;
      const from = implicitWorld ? "0.0.0.0/0 (no source given)" : world.join(", ");
      const allows = Array.isArray(props.allows) ? (props.allows as Obj[]) : [];
      for (const allow of allows) {
        const protocol = String(allow.protocol ?? "").toLowerCase();
        if (!PORTED.includes(protocol)) continue;
        const ports = Array.isArray(allow.ports) ? (allow.ports as unknown[]) : [];
        if (protocol === "all" || ports.length === 0) {
          report(`rule ${String(props.name ?? args.name)} opens all ${protocol} ports to ${from}`);
          continue;
        }
        const hit = config.forbiddenPorts.filter((p) => ports.some((spec) => portSpecCovers(spec, p)));
        if (hit.length > 0) report(`rule ${String(props.name ?? args.name)} opens ${protocol} port(s) ${hit.join(", ")} to ${from}`);
      }
    });
  },
);
