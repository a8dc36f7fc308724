import { BlockList, SocketAddress, isIP, isIPv6 } from "node:net";

/** `::ffff:1.2.3.4` → `1.2.3.4`. */
export function normalizeIp(ip: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  return m ? m[1]! : ip;
}

/**
 * Decisions per list and address: the same few peers (in the cluster, the pod's own sidecar) ask on every
 * request, and `BlockList.check` builds a SocketAddress each time.
 */
const decisions = new WeakMap<BlockList, Map<string, boolean>>();
const MAX_DECISIONS = 4096;

function isTrusted(trusted: BlockList, ip: string): boolean {
  let known = decisions.get(trusted);
  if (!known) decisions.set(trusted, (known = new Map()));
  let yes = known.get(ip);
  if (yes === undefined) {
    const v = isIP(ip);
    yes = v !== 0 && trusted.check(ip, v === 6 ? "ipv6" : "ipv4");
    if (known.size >= MAX_DECISIONS) known.clear();
    known.set(ip, yes);
  }
  return yes;
}

/**
 * The client's address: the TCP peer, unless the peer is a trusted proxy; then X-Forwarded-For is walked
 * from the right (entries appended by our own proxies) to the first address that is not a trusted proxy.
 * Entries a client wrote itself sit to the left of that and are never believed.
 */
export function clientAddress(peer: string, xff: string | undefined, trusted: BlockList): string {
  let client = normalizeIp(peer);
  if (!isTrusted(trusted, client) || !xff) return client;
  const hops = xff
    .split(",")
    .map((h) => normalizeIp(h.trim()))
    .filter(Boolean);
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i]!;
    if (isIP(hop) === 0) return client; // garbage: stop at the last address we could trust
    client = hop;
    if (!isTrusted(trusted, hop)) return hop;
  }
  return client;
}

/** IPv6 ranges whose last 32 bits are an IPv4 host: IPv4-mapped, and NAT64's well-known prefix (RFC 6052). */
const EMBEDDED_IPV4 = new BlockList();
EMBEDDED_IPV4.addSubnet("::ffff:0:0", 96, "ipv6");
EMBEDDED_IPV4.addSubnet("64:ff9b::", 96, "ipv6");

/** The eight 16-bit groups of an IPv6 address as SocketAddress writes it (lower case, `::`, maybe an IPv4 tail). */
function hextets(canonical: string): number[] {
  const groups = (part: string): number[] =>
    part === ""
      ? []
      : part.split(":").flatMap((g) => {
          if (!g.includes(".")) return [parseInt(g, 16)];
          const [a = 0, b = 0, c = 0, d = 0] = g.split(".").map(Number);
          return [(a << 8) | b, (c << 8) | d];
        });
  const [head = "", tail] = canonical.split("::");
  const left = groups(head);
  const right = tail === undefined ? [] : groups(tail);
  return [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
}

/**
 * The rate-limit subject of a client address (`clientAddress`): `ip:<IPv4 address>`, or for IPv6 `ip:<its
 * /64>` (`ip:2001:db8:1:2::/64`, canonical whichever way the address was written, zone id dropped). One
 * IPv6 host or customer normally holds a whole /64 and may use any address in it (privacy addresses, or
 * a new one per request), so a budget per 128-bit address would be no limit at all. An IPv4-mapped or
 * NAT64 address is its IPv4 host's (a /64 there would be every IPv4 client behind the translator).
 * Anything that is no IPv6 address (IPv4, or not an address) is kept as it is. Only the limiter's key:
 * the X-Forwarded-For sent upstream keeps the full address.
 */
export function rateLimitSubjectOf(address: string): string {
  if (!isIPv6(address)) return `ip:${address}`;
  // Without its zone id: SocketAddress refuses a long address that carries one.
  const ip = new SocketAddress({ address: address.split("%")[0]!, family: "ipv6" });
  const g = hextets(ip.address);
  if (EMBEDDED_IPV4.check(ip)) return `ip:${g[6]! >> 8}.${g[6]! & 255}.${g[7]! >> 8}.${g[7]! & 255}`;
  const prefix = new SocketAddress({ address: `${g.slice(0, 4).map((h) => h.toString(16)).join(":")}::`, family: "ipv6" });
  return `ip:${prefix.address}/64`;
}
