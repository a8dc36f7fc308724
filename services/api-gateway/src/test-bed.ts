// What the gateway's tests share (not part of the server bundle): a real Redis, signing keys, and a
// gateway built on them with quiet defaults (no upstream trusted, memory logger, own metrics registry).
import { Metrics, createRedis, type Redis } from "@titanium/kit";
import { memoryLogger, startTestRedis, testTokens } from "@titanium/kit/testing";
import { createGateway, type GatewayDeps } from "./app.js";
import { trustedProxies } from "./config.js";

export interface GatewayTestBed {
  redis: Redis;
  redisUrl: string;
  tokens: Awaited<ReturnType<typeof testTokens>>;
  /** A gateway sending every upstream to `upstream`, with `overrides` on top of the defaults. */
  gateway(upstream: string, overrides?: Partial<GatewayDeps>): ReturnType<typeof createGateway>["app"];
  /** The same, with the shortcut the server puts in front of the app (cached-reads.ts). */
  gatewayParts(upstream: string, overrides?: Partial<GatewayDeps>): ReturnType<typeof createGateway>;
  stop(): Promise<void>;
}

export async function startGatewayTestBed(): Promise<GatewayTestBed> {
  const [rd, tokens] = await Promise.all([startTestRedis(), testTokens()]);
  const redis = createRedis({ url: rd.url });
  await new Promise((r) => redis.once("ready", r));
  const gatewayParts = (upstream: string, overrides: Partial<GatewayDeps> = {}) =>
    createGateway({
      upstreams: { auth: upstream, user: upstream, blog: upstream },
      verifier: tokens.verifier,
      redis,
      trustedProxies: trustedProxies([]),
      logger: memoryLogger("api-gateway").logger,
      metrics: new Metrics("api-gateway", { processMetrics: false }),
      ...overrides,
    });
  return {
    redis,
    redisUrl: rd.url,
    tokens,
    gateway: (upstream, overrides) => gatewayParts(upstream, overrides).app,
    gatewayParts,
    stop: async () => {
      redis.disconnect();
      await rd.stop();
    },
  };
}
