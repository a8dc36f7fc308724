import { Redis } from "ioredis";
import type { Logger } from "./logger.js";

export type { Redis };

export interface RedisOptions {
  url: string;
  logger?: Logger;
  /** Milliseconds for one command before it fails (the caller then degrades, e.g. reads the database). */
  commandTimeoutMs?: number;
  connectTimeoutMs?: number;
}

/**
 * A Redis client that fails fast instead of queueing: commands time out, nothing is buffered while
 * disconnected, and it keeps reconnecting with capped backoff. Callers treat Redis as optional.
 */
export function createRedis(opts: RedisOptions): Redis {
  const client = new Redis(opts.url, {
    connectTimeout: opts.connectTimeoutMs ?? 2_000,
    commandTimeout: opts.commandTimeoutMs ?? 500,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    lazyConnect: false,
    retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 5), 3_000),
  });
  let healthy = true;
  client.on("error", (err: Error) => {
    if (healthy) opts.logger?.warn({ err: err.message }, "redis unavailable; running degraded");
    healthy = false;
  });
  client.on("ready", () => {
    if (!healthy) opts.logger?.info("redis reconnected");
    healthy = true;
  });
  return client;
}

export async function pingRedis(redis: Redis | undefined): Promise<void> {
  if (!redis) throw new Error("redis not configured");
  await redis.ping();
}

/**
 * A JSON cache over Redis that never fails a request: a Redis error is a miss (reads) or a no-op (writes).
 */
export class JsonCache {
  constructor(
    private readonly redis: Redis | undefined,
    private readonly logger?: Logger,
  ) {}

  get enabled(): boolean {
    return this.redis !== undefined && this.redis.status === "ready";
  }

  async get<T>(key: string): Promise<T | undefined> {
    if (!this.enabled) return undefined;
    try {
      const raw = await this.redis!.get(key);
      return raw === null ? undefined : (JSON.parse(raw) as T);
    } catch (err) {
      this.logger?.debug({ err: (err as Error).message, key }, "cache read failed");
      return undefined;
    }
  }

  async set(key: string, value: unknown, ttlSeconds: number): Promise<void> {
    if (!this.enabled) return;
    try {
      await this.redis!.set(key, JSON.stringify(value), "EX", ttlSeconds);
    } catch (err) {
      this.logger?.debug({ err: (err as Error).message, key }, "cache write failed");
    }
  }

  async del(...keys: string[]): Promise<void> {
    if (!this.enabled || keys.length === 0) return;
    try {
      await this.redis!.del(...keys);
    } catch (err) {
      this.logger?.warn({ err: (err as Error).message, keys }, "cache invalidation failed");
    }
  }

  /** A namespace generation: bumping it invalidates every key built from it, with one O(1) command. */
  async generation(name: string): Promise<string> {
    if (!this.enabled) return "0";
    try {
      return (await this.redis!.get(name)) ?? "0";
    } catch {
      return "0";
    }
  }

  async bump(name: string): Promise<void> {
    if (!this.enabled) return;
    try {
      await this.redis!.incr(name);
    } catch (err) {
      this.logger?.warn({ err: (err as Error).message, name }, "cache invalidation failed");
    }
  }
}
