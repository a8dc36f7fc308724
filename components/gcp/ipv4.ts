/**
 * IPv4 ranges as numbers: the one place for this arithmetic (the config's CIDR checks, the cloud tests'
 * firewall questions, the firewall policy) and for the ranges that are not the public internet.
 */

/** The RFC 1918 private ranges: where the cluster's pods and nodes are, never the public internet. */
export const PRIVATE_RANGES = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"] as const;

/** Every range that is not the public internet: private, link-local (the metadata server), shared (CGNAT). */
export const NON_PUBLIC_RANGES = [...PRIVATE_RANGES, "169.254.0.0/16", "100.64.0.0/10"] as const;

const IPV4_CIDR = /^(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?:\/(?:3[0-2]|[12]?\d))?$/;

/** Whether a string is an IPv4 address or CIDR (`10.0.0.0/8`, `198.51.100.7`). */
export const isIpv4Cidr = (s: string): boolean => IPV4_CIDR.test(s);

/** An IPv4 CIDR (or a bare address, /32) as numbers: the address written, and the range's first and last. */
export function ipv4Range(cidr: string): { address: number; first: number; last: number; prefix: number } {
  const [ip, bits] = cidr.split("/") as [string, string | undefined];
  const address = ip.split(".").reduce((n, o) => n * 256 + Number(o), 0);
  const prefix = Number(bits ?? 32);
  const size = 2 ** (32 - prefix);
  const first = address - (address % size);
  return { address, first, last: first + size - 1, prefix };
}

/** Whether every address of `inner` is in `outer`. */
export function ipv4Contains(outer: string, inner: string): boolean {
  const o = ipv4Range(outer);
  const i = ipv4Range(inner);
  return o.first <= i.first && i.last <= o.last;
}
