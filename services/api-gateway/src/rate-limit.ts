import type { Logger, Redis } from "@titanium/kit";

/** A limit: `limit` requests per `periodSeconds`, at most `burst` at once (defaults to `limit`). */
export interface RateRule {
  name: string;
  limit: number;
  periodSeconds: number;
  burst?: number;
  /**
   * Keyed by the client address even when the request carries a valid access token: for the routes that
   * make sessions or accounts, where a token proves nothing about who may try (one client holding tokens
   * of several accounts would otherwise get a budget per account).
   */
  byClient?: true;
}

export interface RateDecision {
  allowed: boolean;
  /** Milliseconds until the request would be allowed (0 when allowed). */
  retryAfterMs: number;
  /** "redis" or "local" (in-process fallback). */
  store: "redis" | "local";
  /** The value of `take`'s `read` key (null when unset): only when Redis admitted the request. */
  read?: string | null;
}

interface Cell {
  key: string;
  intervalMs: number;
  burst: number;
}

const cellOf = (rule: RateRule, subject: string, scale: number): Cell => {
  const limit = rule.limit * scale;
  return {
    key: `rl:${rule.name}:${subject}`,
    intervalMs: (rule.periodSeconds * 1000) / limit,
    burst: Math.max(1, Math.round((rule.burst ?? rule.limit) * scale)),
  };
};

/**
 * GCRA (the generic cell rate algorithm) over several keys at once, atomically in Redis: either every
 * rule admits the request and all are charged, or none is charged and the longest wait is returned.
 * Time comes from Redis, so gateway replicas with skewed clocks agree. A key after the ARGV pairs (an odd
 * ARGV count) is read and returned with an admission: another value the request needs (the micro-cache's
 * generation) in the same round trip, one command instead of two. It is an argument, not a KEY: Redis' ACL
 * counts a script's KEYS as read and written, and the gateway's Redis user may only read the blog's generation
 * (services/kit/src/redis-acl.ts); the GET inside is checked as a read.
 */
const GCRA_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = #KEYS
local tats = {}
local wait = 0
for i = 1, n do
  local interval = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', KEYS[i]) or now)
  if tat < now then tat = now end
  local new_tat = tat + interval
  local allow_at = new_tat - burst * interval
  if allow_at > now then
    if allow_at - now > wait then wait = allow_at - now end
  end
  tats[i] = new_tat
end
if wait > 0 then return {0, math.ceil(wait)} end
for i = 1, n do
  redis.call('SET', KEYS[i], tats[i], 'PX', math.ceil(tats[i] - now) + 1000)
end
if #ARGV > 2 * n then return {1, 0, redis.call('GET', ARGV[2 * n + 1]) or false} end
return {1, 0}
`;

/** The same algorithm in process memory: the fallback while Redis is unavailable (limits then per replica). */
export class LocalLimiter {
  private readonly tats = new Map<string, number>();
  constructor(private readonly maxKeys = 100_000) {}

  take(cells: Cell[], now = Date.now()): RateDecision {
    let wait = 0;
    const next: number[] = [];
    for (const c of cells) {
      const tat = Math.max(this.tats.get(c.key) ?? now, now);
      const newTat = tat + c.intervalMs;
      const allowAt = newTat - c.burst * c.intervalMs;
      if (allowAt > now) wait = Math.max(wait, allowAt - now);
      next.push(newTat);
    }
    if (wait > 0) return { allowed: false, retryAfterMs: Math.ceil(wait), store: "local" };
    cells.forEach((c, i) => {
      this.tats.delete(c.key); // re-insert: Map order doubles as least-recently-used order
      this.tats.set(c.key, next[i]!);
    });
    if (this.tats.size > this.maxKeys) this.evict();
    return { allowed: true, retryAfterMs: 0, store: "local" };
  }

  /** Drop the least recently used keys (Map order) once there are too many. */
  private evict(): void {
    let excess = this.tats.size - Math.floor(this.maxKeys * 0.9);
    for (const k of this.tats.keys()) {
      if (excess-- <= 0) break;
      this.tats.delete(k);
    }
  }
}

type GcraRedis = Redis & { titaniumGcra(numKeys: number, ...args: (string | number)[]): Promise<[number, number, (string | null)?]> };

/** The limiter's Lua command, to define with the client (`connectRedis(env, logger, RATE_LIMIT_SCRIPTS)`). */
export const RATE_LIMIT_SCRIPTS = { titaniumGcra: { lua: GCRA_LUA } };

export class RateLimiter {
  private readonly local = new LocalLimiter();
  private warned = false;

  constructor(
    private readonly redis: Redis | undefined,
    private readonly opts: { scale?: number; logger?: Logger } = {},
  ) {
    // Clients from connectRedis(…, RATE_LIMIT_SCRIPTS) have it already; defining it here, before any
    // request, is for clients made elsewhere (tests).
    if (redis && !("titaniumGcra" in redis)) redis.defineCommand("titaniumGcra", { lua: GCRA_LUA });
  }

  /**
   * Charge `subject` against every rule, and each `also` rule against its own subject (e.g. the account of a
   * login), all or nothing; distributed through Redis, in process when Redis is unavailable. With `read`,
   * an admission through Redis also returns that key's value.
   */
  async take(rules: RateRule[], subject: string, also: { rule: RateRule; subject: string }[] = [], read?: string): Promise<RateDecision> {
    const scale = this.opts.scale ?? 1;
    const cells = [...rules.map((r) => cellOf(r, subject, scale)), ...also.map((a) => cellOf(a.rule, a.subject, scale))];
    const redis = this.redis as GcraRedis | undefined;
    if (redis && redis.status === "ready") {
      try {
        const args: (string | number)[] = cells.flatMap((c) => [c.intervalMs, c.burst]);
        const keys = cells.map((c) => c.key);
        if (read !== undefined) args.push(read);
        const [ok, wait, value] = await redis.titaniumGcra(keys.length, ...keys, ...args);
        this.warned = false;
        if (ok !== 1) return { allowed: false, retryAfterMs: Number(wait), store: "redis" };
        return { allowed: true, retryAfterMs: 0, store: "redis", ...(read !== undefined && { read: value ?? null }) };
      } catch (err) {
        this.warn((err as Error).message);
      }
    } else if (redis) this.warn(`redis ${redis.status}`);
    return this.local.take(cells);
  }

  private warn(reason: string): void {
    if (this.warned) return;
    this.warned = true;
    this.opts.logger?.warn({ reason }, "rate limits fall back to in-process counters (per replica)");
  }
}
