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
    // Commands issued in the same tick share one write: under load, far fewer syscalls per request.
    enableAutoPipelining: true,
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

  /**
   * One round trip for a generation-scoped read: the current generation of `genKey` and the raw value of
   * `${prefix}${generation}:${key}`. A miss (or no Redis) returns the generation to write under.
   */
  async getInGeneration(genKey: string, prefix: string, key: string): Promise<{ generation: string; raw?: string }> {
    if (!this.enabled) return { generation: "0" };
    try {
      const client = this.redis as Redis & { titaniumGenGet?: (k: string, p: string, s: string) => Promise<[string, string | null]> };
      if (!client.titaniumGenGet)
        client.defineCommand("titaniumGenGet", {
          numberOfKeys: 1,
          lua: "local g = redis.call('GET', KEYS[1]) or '0'\nreturn {g, redis.call('GET', ARGV[1] .. g .. ':' .. ARGV[2])}",
        });
      const [generation, raw] = await client.titaniumGenGet!(genKey, prefix, key);
      return raw === null ? { generation } : { generation, raw };
    } catch (err) {
      this.logger?.debug({ err: (err as Error).message, key }, "cache read failed");
      return { generation: "0" };
    }
  }

  async setRaw(key: string, raw: string, ttlSeconds: number): Promise<void> {
    if (!this.enabled) return;
    try {
      await this.redis!.set(key, raw, "EX", ttlSeconds);
    } catch (err) {
      this.logger?.debug({ err: (err as Error).message, key }, "cache write failed");
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
