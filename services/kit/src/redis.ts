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
 * A generation number must never repeat: an entry filed under one outlives it (its TTL), so a number used
 * again would serve an entry from before a later write. INCR alone restarts at 1 when the key is gone (evicted,
 * or a Redis restarted without persistence), so a missing key is set to Redis's clock in microseconds instead:
 * above every number used before it, since INCR adds one per bump and no Redis runs a bump per microsecond
 * (about 1.7e15: exact in a JS number and in INCR's 64 bits). Digits are joined as text: Lua would print the
 * number in exponent form.
 */
const FRESH_GENERATION_LUA = `local function fresh(key)
  local t = redis.call('TIME')
  local g = t[1] .. string.format('%06d', tonumber(t[2]))
  redis.call('SET', key, g)
  return g
end`;

/**
 * The kit's Lua commands, defined when the client is made: a command defined later (on first use) is
 * missing from an auto-pipeline already being filled in that tick, and ioredis then misaligns the batch's
 * callbacks and throws out of its own callback, killing the process (redis/ioredis#1931; seen here when a
 * restarted user-service took its first requests).
 */
const KIT_SCRIPTS = {
  titaniumGenGet: {
    numberOfKeys: 1,
    lua: `${FRESH_GENERATION_LUA}
local g = redis.call('GET', KEYS[1]) or fresh(KEYS[1])
return {g, redis.call('GET', ARGV[1] .. g .. ':' .. ARGV[2])}`,
  },
  titaniumGenBump: {
    numberOfKeys: 1,
    lua: `${FRESH_GENERATION_LUA}
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('INCR', KEYS[1]) end
return fresh(KEYS[1])`,
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
    // No CLIENT SETINFO on connect: the services' Redis users may not run CLIENT (redis-acl.ts), and each
    // refused command would fill the ACL log.
    disableClientInfo: true,
    retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 5), 3_000),
  });
  // A Redis that keeps its connections but stops answering (a hung process, a paused VM) would make every
  // command wait the full timeout, several times per request. The first timeout drops the connection:
  // until a reconnect passes the ready check, commands fail at once (no offline queue) and callers run
  // degraded at full speed.
  // Only a command sent on the current ready connection counts: not the ready check of a reconnect, nor
  // a command of a closed connection that ioredis sends again once reconnected.
  let connection = 0;
  client.on("ready", () => connection++);
  client.on("close", () => connection++);
  const sendCommand = client.sendCommand.bind(client);
  const watched = new WeakSet<object>();
  client.sendCommand = ((command: Parameters<Redis["sendCommand"]>[0], stream?: Parameters<Redis["sendCommand"]>[1]) => {
    // A command ioredis sends again after a reconnect keeps the connection it was first sent on.
    if (watched.has(command)) return sendCommand(command, stream);
    watched.add(command);
    const sentOn = client.status === "ready" ? connection : -1;
    const sent = sendCommand(command, stream);
    command.promise.catch((err: Error) => {
      if (err.message === "Command timed out" && sentOn === connection && client.status === "ready") {
        opts.logger?.warn({ command: command.name }, "redis stopped answering; reconnecting and running degraded meanwhile");
        client.disconnect(true);
      }
    });
    return sent;
  }) as Redis["sendCommand"];
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

/** Where a `GenerationCache` files `key` under `generation` (the same layout as its read script's). */
export const cacheEntryKey = (prefix: string, generation: string, key: string): string => `${prefix}${generation}:${key}`;

export interface GenerationCacheOptions {
  /** Redis key of the namespace's generation: bumping it retires every entry of the namespace at once. */
  generationKey: string;
  /** Entries are stored as `<prefix><generation>:<key>`. */
  prefix: string;
}

/** What `read` returns when it read no generation (Redis unusable): Redis never holds it (see FRESH_GENERATION_LUA). */
const NO_GENERATION = "0";

/** A failed payment of an owed invalidation is retried at most this often (requests meanwhile read the database). */
const SETTLE_RETRY_MS = 500;

/**
 * A read cache over Redis for one namespace whose entries are filed under a generation: a write
 * invalidates the whole namespace with one O(1) `INCR` (to a number never used before: FRESH_GENERATION_LUA),
 * and a reader stores what it loaded under the generation it read before loading, so a write racing the
 * read retires the stale copy. It never fails a request: a Redis error is a miss (reads) or a no-op (writes).
 *
 * It never serves what an invalidation it could not deliver should have removed. When an invalidation fails
 * or is skipped (Redis down), or the connection drops (another replica's invalidation may have been lost
 * too), the cache owes one and is bypassed (reads go to the database, nothing is written) until it has
 * bumped the generation. A fresh process starts owing, so a write whose invalidation died with a crashed
 * process is covered too. Payment runs when Redis is ready again, before the cache is used.
 */
export class GenerationCache {
  /** Incremented whenever an invalidation may have been missed; a fresh process starts owing one. */
  private debt = 1;
  /** The debt value last paid in full. */
  private paid = 0;
  private settling: Promise<void> | undefined;
  /** After a failed payment, no new attempt before this time (a reconnect clears it). */
  private notBefore = 0;

  constructor(
    private readonly redis: Redis | undefined,
    private readonly logger: Logger | undefined,
    private readonly opts: GenerationCacheOptions,
  ) {
    redis?.on("close", () => this.debt++);
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

  /** Deliver what is owed: one generation bump (one attempt at a time, retried at most every SETTLE_RETRY_MS). */
  private settle(): Promise<void> {
    if (this.enabled || !this.redis || this.redis.status !== "ready") return Promise.resolve();
    if (this.settling) return this.settling;
    if (Date.now() < this.notBefore) return Promise.resolve();
    const target = this.debt;
    this.settling = (async () => {
      try {
        await this.scripts().titaniumGenBump(this.opts.generationKey);
        this.paid = Math.max(this.paid, target);
        this.logger?.info({ generation: this.opts.generationKey }, "cache invalidation paid; cache back in use");
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

  /**
   * The current generation and, on a hit, the stored text of `key` under it (one round trip). A miss (or
   * no usable Redis) returns the generation to `write` under once the value is loaded.
   */
  async read(key: string): Promise<{ generation: string; raw?: string }> {
    if (!(await this.usable())) return { generation: NO_GENERATION };
    try {
      const [generation, raw] = await this.scripts().titaniumGenGet(this.opts.generationKey, this.opts.prefix, key);
      return raw === null ? { generation } : { generation, raw };
    } catch (err) {
      this.logger?.debug({ err: (err as Error).message, key }, "cache read failed");
      return { generation: NO_GENERATION };
    }
  }

  /** Store `raw` for `key` under the generation `read` returned before the value was loaded. */
  async write(key: string, generation: string, raw: string, ttlSeconds: number): Promise<void> {
    // No generation was read: an entry filed under none could not be retired by a bump.
    if (generation === NO_GENERATION || !(await this.usable())) return;
    try {
      await this.redis!.set(cacheEntryKey(this.opts.prefix, generation, key), raw, "EX", ttlSeconds);
    } catch (err) {
      this.logger?.debug({ err: (err as Error).message, key }, "cache write failed");
    }
  }

  /** Retire every entry (after a write, before answering); when that cannot be delivered now, it is owed. */
  async invalidate(): Promise<void> {
    if (!this.redis) return;
    if (!(await this.usable())) {
      this.debt++;
      return;
    }
    try {
      await this.scripts().titaniumGenBump(this.opts.generationKey);
    } catch (err) {
      this.debt++;
      this.logger?.warn({ err: (err as Error).message, generation: this.opts.generationKey }, "cache invalidation failed; owed");
    }
  }

  private scripts(): GenScripts {
    const client = this.redis as Redis & Partial<GenScripts>;
    if (!client.titaniumGenGet) throw new Error("GenerationCache needs a client made by createRedis (its Lua commands are defined there)");
    return client as Redis & GenScripts;
  }
}

interface GenScripts {
  titaniumGenGet: (genKey: string, prefix: string, key: string) => Promise<[string, string | null]>;
  titaniumGenBump: (genKey: string) => Promise<number | string>;
}
