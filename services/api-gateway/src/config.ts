import { BlockList, isIP } from "node:net";
import { z } from "zod";
import { baseEnv, jwtVerifyEnv, redisEnv, serviceUrls } from "@titanium/kit";

/** `10.0.0.0/8,127.0.0.1,::1/128` → a list of [address, prefix] pairs; a bare address is a /32 (/128). */
const cidrs = z
  .string()
  .default("")
  .transform((s, ctx) => {
    const out: { address: string; prefix: number; family: "ipv4" | "ipv6" }[] = [];
    for (const part of s.split(",").map((x) => x.trim()).filter(Boolean)) {
      const [address = "", bits] = part.split("/");
      const v = isIP(address);
      const max = v === 6 ? 128 : 32;
      const prefix = bits === undefined ? max : Number(bits);
      if (!v || !Number.isInteger(prefix) || prefix < 0 || prefix > max) {
        ctx.addIssue({ code: "custom", message: `"${part}" is not an address or CIDR` });
        return z.NEVER;
      }
      out.push({ address, prefix, family: v === 6 ? "ipv6" : "ipv4" });
    }
    return out;
  });

/** Every variable the api-gateway reads (documented in services/README.md). */
export const envSchema = z.object({
  ...baseEnv,
  ...redisEnv,
  ...jwtVerifyEnv,
  AUTH_SERVICE_URL: serviceUrls("auth-service"),
  USER_SERVICE_URL: serviceUrls("user-service"),
  BLOG_SERVICE_URL: serviceUrls("blog-service"),
  /**
   * Proxies whose X-Forwarded-For is believed (in the cluster: the pod's own sidecar, 127.0.0.0/8, and the
   * Istio ingress gateway). Empty: the TCP peer is the client and X-Forwarded-For is ignored.
   */
  TRUSTED_PROXY_CIDRS: cidrs,
  /** Upstream request timeout. */
  UPSTREAM_TIMEOUT_MS: z.coerce.number().int().min(100).max(120_000).default(10_000),
  /** Largest request body forwarded. */
  BODY_LIMIT_BYTES: z.coerce.number().int().min(1024).max(50 * 1024 * 1024).default(1024 * 1024),
  /** Micro-cache of anonymous blog reads (response-cache.ts): entries kept; 0 turns it off. */
  RESPONSE_CACHE_MAX_ENTRIES: z.coerce.number().int().min(0).max(100_000).default(1000),
  /** Micro-cache: oldest entry served even when the blog's generation did not move (bounds a lost invalidation). */
  /** Micro-cache: bytes of stored bodies in all (they live outside V8's heap, so the heap cap does not bound them). */
  RESPONSE_CACHE_MAX_BYTES: z.coerce.number().int().min(0).max(256 * 1024 * 1024).default(8 * 1024 * 1024),
  RESPONSE_CACHE_MAX_AGE_MS: z.coerce.number().int().min(0).max(60_000).default(5000),
  /** Requests handled at once; beyond it the gateway sheds load with 503 + Retry-After (memory stays bounded). */
  MAX_IN_FLIGHT: z.coerce.number().int().min(1).max(100_000).default(256),
  /** Multiplies every rate limit (1 = the original's limits; load tests raise it, the checks still run). */
  RATE_LIMIT_SCALE: z.coerce.number().positive().max(1_000_000).default(1),
});
export type GatewayEnv = z.output<typeof envSchema>;

export function trustedProxies(list: GatewayEnv["TRUSTED_PROXY_CIDRS"]): BlockList {
  const bl = new BlockList();
  for (const c of list) bl.addSubnet(c.address, c.prefix, c.family);
  return bl;
}
