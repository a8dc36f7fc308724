import { BlockList, isIP } from "node:net";
import { z } from "zod";
import { SERVICE_BODY_LIMIT_BYTES, baseEnv, jwtVerifyEnv, redisEnv, serviceUrls } from "@titanium/kit";

/**
 * Request-body bytes the gateway holds at once, all requests together (BODY_BUDGET_BYTES' default). The
 * pod may use 192 MiB and the gateway sits at ~130 MiB RSS when steady (a 132 MiB baseline measured), so
 * about 60 MiB are spare; a body held costs up to twice its size while it is read (the chunks, then the
 * whole), and bodies get at most half the spare: 30 MiB / 2 → 16 MiB. That is 64 bodies at the services'
 * 256 KiB limit, a quarter of MAX_IN_FLIGHT (256) at the limit, where 256 × 256 KiB (64 MiB, doubled while
 * read) would not fit; 256 requests in flight with bodies of 64 KiB (a post is a few KiB, a login less than
 * 4) still fit. Beyond it the gateway sheds the request with 503, as beyond MAX_IN_FLIGHT.
 */
export const DEFAULT_BODY_BUDGET_BYTES = 16 * 1024 * 1024;

/**
 * Requests one client (its rate-limit address: an IPv4 address, an IPv6 /64) has in flight at once
 * (MAX_IN_FLIGHT_PER_CLIENT's default; 429 + Retry-After beyond): an eighth of MAX_IN_FLIGHT's 256, so at
 * least eight clients are needed to fill the gateway, far more than a browser opens (six connections per
 * host) or a household behind one address needs.
 */
export const DEFAULT_MAX_IN_FLIGHT_PER_CLIENT = 32;

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
  /**
   * Largest request body forwarded (413 beyond it): the services' own limit by default, and never above it
   * (a larger body would be read and held here only for the service to refuse it).
   */
  BODY_LIMIT_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(SERVICE_BODY_LIMIT_BYTES, `at most ${SERVICE_BODY_LIMIT_BYTES} (the services' own body limit: they refuse anything larger)`)
    .default(SERVICE_BODY_LIMIT_BYTES),
  /**
   * Request-body bytes held at once, all requests together; a request whose body does not fit is shed with
   * 503 + Retry-After before any of it is read (see DEFAULT_BODY_BUDGET_BYTES). At least BODY_LIMIT_BYTES.
   */
  BODY_BUDGET_BYTES: z.coerce.number().int().min(1024).max(1024 * 1024 * 1024).default(DEFAULT_BODY_BUDGET_BYTES),
  /** Micro-cache of anonymous blog reads (response-cache.ts): entries kept; 0 turns it off. */
  RESPONSE_CACHE_MAX_ENTRIES: z.coerce.number().int().min(0).max(100_000).default(1000),
  /** Micro-cache: oldest entry served even when the blog's generation did not move (bounds a lost invalidation). */
  /** Micro-cache: bytes of stored bodies in all (they live outside V8's heap, so the heap cap does not bound them). */
  RESPONSE_CACHE_MAX_BYTES: z.coerce.number().int().min(0).max(256 * 1024 * 1024).default(8 * 1024 * 1024),
  RESPONSE_CACHE_MAX_AGE_MS: z.coerce.number().int().min(0).max(60_000).default(5000),
  /** Requests handled at once; beyond it the gateway sheds load with 503 + Retry-After (memory stays bounded). */
  MAX_IN_FLIGHT: z.coerce.number().int().min(1).max(100_000).default(256),
  /** Requests of one client handled at once, the upload of their bodies included; beyond it 429 + Retry-After (scaled by RATE_LIMIT_SCALE). */
  MAX_IN_FLIGHT_PER_CLIENT: z.coerce.number().int().min(1).max(100_000).default(DEFAULT_MAX_IN_FLIGHT_PER_CLIENT),
  /** Multiplies every rate limit (1 = the original's limits; load tests raise it, the checks still run). */
  RATE_LIMIT_SCALE: z.coerce.number().positive().max(1_000_000).default(1),
}).superRefine((env, ctx) => {
  // A budget below the limit would shed every body near the limit, however idle the gateway.
  if (env.BODY_BUDGET_BYTES < env.BODY_LIMIT_BYTES)
    ctx.addIssue({ code: "custom", path: ["BODY_BUDGET_BYTES"], message: `at least BODY_LIMIT_BYTES (${env.BODY_LIMIT_BYTES})` });
});
export type GatewayEnv = z.output<typeof envSchema>;

export function trustedProxies(list: GatewayEnv["TRUSTED_PROXY_CIDRS"]): BlockList {
  const bl = new BlockList();
  for (const c of list) bl.addSubnet(c.address, c.prefix, c.family);
  return bl;
}
