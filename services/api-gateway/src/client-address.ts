import { BlockList, isIP } from "node:net";

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
