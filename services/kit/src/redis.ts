import { Redis } from "ioredis";
import type { Logger } from "./logger.js";

export type { Redis };

export interface RedisOptions {
  url: string;
  logger?: Logger;
  /** Milliseconds for one command before it fails (the caller then degrades, e.g. reads the database). */
  commandTimeoutMs?: number;
  connectTimeoutMs?: number;
  /** More Lua commands to define with the client's own (see KIT_SCRIPTS: never define one later). */
  scripts?: Record<string, { lua: string; numberOfKeys?: number }>;
}

/**
 * The kit's Lua commands, defined when the client is made: a command defined later (on first use) is
 * missing from an auto-pipeline already being filled in that tick, and ioredis then misaligns the batch's
 * callbacks and throws out of its own callback, killing the process (redis/ioredis#1931; seen here when a
 * restarted user-service took its first requests).
 */
const KIT_SCRIPTS = {
  titaniumGenGet: {
    numberOfKeys: 1,
    lua: "local g = redis.call('GET', KEYS[1]) or '0'\nreturn {g, redis.call('GET', ARGV[1] .. g .. ':' .. ARGV[2])}",
  },
};

/**
 * A Redis client that fails fast instead of queueing: commands time out, nothing is buffered while
 * disconnected, and it keeps reconnecting with capped backoff. Callers treat Redis as optional.
 */
export function createRedis(opts: RedisOptions): Redis {
  const client = new Redis(opts.url, {
    scripts: { ...KIT_SCRIPTS, ...opts.scripts },
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

export interface JsonCacheOptions {
  /**
   * Generation keys of this cache's namespaces (keys are built as `<prefix><generation>:<key>`). Paying an
   * owed invalidation bumps them all: every entry built from them is dropped with one O(1) command each.
   */
  generations?: readonly string[];
}

/** Owed key deletes kept for a cache without generations; beyond this the cache stays bypassed until paid. */
const MAX_OWED_KEYS = 10_000;
/** A failed payment is retried at most this often (requests meanwhile read the database). */
const SETTLE_RETRY_MS = 500;

/**
 * A JSON cache over Redis that never fails a request: a Redis error is a miss (reads) or a no-op (writes).
 *
 * It never serves what an invalidation it could not deliver should have removed. When an invalidation fails
 * or is skipped (Redis down), or the connection drops (another replica's invalidation may have been lost
 * too), the cache owes an invalidation and is bypassed (reads go to the database, nothing is written) until
 * it has paid: owed key deletes sent and every namespace generation bumped. A fresh process starts owing,
 * so a write whose invalidation died with a crashed process is covered too. Payment runs when Redis is
 * ready again, before the cache is used.
 */
export class JsonCache {
  /** Incremented whenever an invalidation may have been missed. */
  private debt: number;
  /** The debt value last paid in full. */
  private paid = 0;
  private readonly owedKeys = new Set<string>();
  private owedOverflow = false;
  private settling: Promise<void> | undefined;
  /** After a failed payment, no new attempt before this time (a reconnect clears it). */
  private notBefore = 0;
  private readonly generations: readonly string[];

  constructor(
    private readonly redis: Redis | undefined,
    private readonly logger?: Logger,
    opts: JsonCacheOptions = {},
  ) {
    this.generations = opts.generations ?? [];
    this.debt = this.generations.length > 0 ? 1 : 0;
    redis?.on("close", () => this.owe());
    redis?.on("ready", () => {
      this.notBefore = 0;
      void this.settle();
    });
  }

  /** True when the cache may be read and written right now (Redis ready, no invalidation owed). */
  get enabled(): boolean {
    return this.redis !== undefined && this.redis.status === "ready" && this.paid === this.debt;
  }

  /** Invalidations owed and not yet delivered (0 when the cache is in use). */
  get owed(): number {
    return this.debt - this.paid;
  }

  private owe(keys: readonly string[] = []): void {
    this.debt++;
    for (const k of keys) {
      if (this.owedKeys.size >= MAX_OWED_KEYS) this.owedOverflow = true;
      else this.owedKeys.add(k);
    }
  }

  /** Deliver what is owed (one attempt at a time, retried at most every SETTLE_RETRY_MS). */
  private settle(): Promise<void> {
    if (this.enabled || !this.redis || this.redis.status !== "ready") return Promise.resolve();
    if (this.settling) return this.settling;
    if (Date.now() < this.notBefore) return Promise.resolve();
    const target = this.debt;
    const keys = [...this.owedKeys];
    const redis = this.redis;
    this.settling = (async () => {
      try {
        if (this.owedOverflow && this.generations.length === 0) throw new Error("too many owed keys and no generation to bump");
        if (keys.length) await redis.del(...keys);
        for (const g of this.generations) await redis.incr(g);
        for (const k of keys) this.owedKeys.delete(k);
        if (this.generations.length) this.owedOverflow = false;
        this.paid = Math.max(this.paid, target);
        this.logger?.info({ generations: this.generations, keys: keys.length }, "cache invalidations paid; cache back in use");
      } catch (err) {
        this.notBefore = Date.now() + SETTLE_RETRY_MS;
        this.logger?.warn({ err: (err as Error).message }, "cache invalidation still owed; reads go to the database");
      } finally {
        this.settling = undefined;
      }
    })();
    return this.settling;
  }

  /** Whether to use the cache for this request: pays what is owed first when Redis is back. */
  private async usable(): Promise<boolean> {
    if (this.enabled) return true;
    await this.settle();
    return this.enabled;
  }

  async get<T>(key: string): Promise<T | undefined> {
    if (!(await this.usable())) return undefined;
    try {
      const raw = await this.redis!.get(key);
      return raw === null ? undefined : (JSON.parse(raw) as T);
    } catch (err) {
      this.logger?.debug({ err: (err as Error).message, key }, "cache read failed");
      return undefined;
    }
  }

  async set(key: string, value: unknown, ttlSeconds: number): Promise<void> {
    if (!(await this.usable())) return;
    try {
      await this.redis!.set(key, JSON.stringify(value), "EX", ttlSeconds);
    } catch (err) {
      this.logger?.debug({ err: (err as Error).message, key }, "cache write failed");
    }
  }

  /** Invalidate keys; when that cannot be delivered now, it is owed (and the cache bypassed until paid). */
  async del(...keys: string[]): Promise<void> {
    if (!this.redis || keys.length === 0) return;
    if (!(await this.usable())) return this.owe(keys);
    try {
      await this.redis.del(...keys);
    } catch (err) {
      this.owe(keys);
      this.logger?.warn({ err: (err as Error).message, keys }, "cache invalidation failed; owed");
    }
  }

  /**
   * One round trip for a generation-scoped read: the current generation of `genKey` and the raw value of
   * `${prefix}${generation}:${key}`. A miss (or no Redis) returns the generation to write under.
   */
  async getInGeneration(genKey: string, prefix: string, key: string): Promise<{ generation: string; raw?: string }> {
    if (!(await this.usable())) return { generation: "0" };
    try {
      const [generation, raw] = await this.scripts().titaniumGenGet(genKey, prefix, key);
      return raw === null ? { generation } : { generation, raw };
    } catch (err) {
      this.logger?.debug({ err: (err as Error).message, key }, "cache read failed");
      return { generation: "0" };
    }
  }

  async setRaw(key: string, raw: string, ttlSeconds: number): Promise<void> {
    if (!(await this.usable())) return;
    try {
      await this.redis!.set(key, raw, "EX", ttlSeconds);
    } catch (err) {
      this.logger?.debug({ err: (err as Error).message, key }, "cache write failed");
    }
  }

  /** A namespace generation: bumping it invalidates every key built from it, with one O(1) command. */
  async generation(name: string): Promise<string> {
    if (!(await this.usable())) return "0";
    try {
      return (await this.redis!.get(name)) ?? "0";
    } catch {
      return "0";
    }
  }

  /** Bump a generation; when that cannot be delivered now, it is owed (and the cache bypassed until paid). */
  async bump(name: string): Promise<void> {
    if (!this.redis) return;
    if (!(await this.usable())) return this.owe();
    try {
      await this.redis.incr(name);
    } catch (err) {
      this.owe();
      this.logger?.warn({ err: (err as Error).message, name }, "cache invalidation failed; owed");
    }
  }

  private scripts(): GenScripts {
    const client = this.redis as Redis & Partial<GenScripts>;
    if (!client.titaniumGenGet) throw new Error("JsonCache needs a client made by createRedis (its Lua commands are defined there)");
    return client as Redis & GenScripts;
  }
}

interface GenScripts {
  titaniumGenGet: (genKey: string, prefix: string, key: string) => Promise<[string, string | null]>;
}
