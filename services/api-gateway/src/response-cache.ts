import type { Redis } from "@titanium/kit";

/** A stored answer: what `c.body` needs to replay it. */
export interface CachedResponse {
  headers: Record<string, string | string[]>;
  body: Uint8Array;
}

interface Entry extends CachedResponse {
  generation: string;
  expiresAt: number;
}

/** The header an upstream offers an answer to the gateway's cache with; never passed on to clients. */
export const SURROGATE_CONTROL = "surrogate-control";

/** `max-age` of `Surrogate-Control` in ms (0 when absent, malformed or `no-store`). */
function surrogateMaxAgeMs(headers: Record<string, string | string[]>): number {
  const v = String(headers[SURROGATE_CONTROL] ?? "");
  if (/\bno-store\b/i.test(v)) return 0;
  const m = /\bmax-age=(\d+)/i.exec(v);
  return m ? Number(m[1]) * 1000 : 0;
}

export interface ResponseCacheOptions {
  /** Redis key whose value changes on every write to the cached data (the blog's cache generation). */
  generationKey: string;
  /** Entries kept (least recently stored dropped first); 0 turns the cache off. */
  maxEntries: number;
  /** Age after which an entry is not served even if the generation did not move (and the upstream offered longer): bounds any lost invalidation. */
  maxAgeMs: number;
  /** Largest body stored. */
  maxBodyBytes?: number;
  /** Bodies kept in all (off V8's heap, so the heap cap does not bound them): oldest dropped first. */
  maxTotalBytes?: number;
}

/** A generation read (with the rate limit, app.ts `admit`), and the connection epoch it was read in. */
export interface CacheTicket {
  generation: string;
  epoch: number;
}

/**
 * A micro-cache in the gateway for anonymous GETs of the blog's public reads (posts list, one post,
 * categories). It saves the second hop and the blog's work on the hottest path without ever serving what a
 * write replaced: every entry is filed under the blog's cache generation, which the blog bumps in Redis
 * on each write before it answers, and the gateway reads the current generation in the same Redis round
 * trip as its rate limit (the limiter's script returns it, `epochForRead` + `ticket`). No Redis, no cache: entries are dropped whenever the
 * gateway's Redis connection drops (writes may have happened meanwhile), and requests go to the blog.
 */
export class ResponseCache {
  private readonly entries = new Map<string, Entry>();
  private readonly maxBodyBytes: number;
  private readonly maxTotalBytes: number;
  private bytes = 0;
  /**
   * Bumped whenever the Redis connection drops: an answer fetched under a generation read before the drop
   * may predate a write whose bump the blog still owes, so it is not stored (see `set`).
   */
  private epoch = 0;

  constructor(
    private readonly redis: Redis | undefined,
    private readonly opts: ResponseCacheOptions,
  ) {
    this.maxBodyBytes = opts.maxBodyBytes ?? 256 * 1024;
    this.maxTotalBytes = opts.maxTotalBytes ?? 8 * 1024 * 1024;
    redis?.on("close", () => this.drop());
  }

  /** Drops every entry and moves to a new epoch: the connection closed, or a generation read failed. */
  drop(): void {
    this.epoch++;
    this.entries.clear();
    this.bytes = 0;
  }

  private remove(key: string): void {
    const e = this.entries.get(key);
    if (!e) return;
    this.bytes -= e.body.byteLength;
    this.entries.delete(key);
  }

  get enabled(): boolean {
    return this.opts.maxEntries > 0 && this.redis !== undefined;
  }

  /** The Redis key holding the generation (to read it along with another command, see `ticket`). */
  get generationKey(): string {
    return this.opts.generationKey;
  }

  /** The connection epoch a generation read now is filed under, or undefined when the cache is off or Redis not ready. */
  epochForRead(): number | undefined {
    return this.enabled && this.redis!.status === "ready" ? this.epoch : undefined;
  }

  /** A ticket for a generation read in `epoch` (null: the key is unset, generation "0"). */
  ticket(epoch: number, value: string | null): CacheTicket {
    return { generation: value ?? "0", epoch };
  }

  /** Whether an unexpired entry is filed under `key` (its generation is checked by `get`). */
  has(key: string, now = Date.now()): boolean {
    const e = this.entries.get(key);
    return e !== undefined && now <= e.expiresAt;
  }

  get(key: string, ticket: CacheTicket, now = Date.now()): CachedResponse | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (e.generation !== ticket.generation || now > e.expiresAt) {
      this.remove(key);
      return undefined;
    }
    return e;
  }

  /**
   * Stores a complete 200 answer the upstream offered to the gateway with `Surrogate-Control: max-age=N`
   * (the Edge Architecture header surrogates honour and strip; browsers keep seeing the upstream's
   * `Cache-Control: no-store`), without a cookie, small enough; kept at most N seconds and `maxAgeMs`.
   */
  set(key: string, ticket: CacheTicket, status: number, res: CachedResponse, now = Date.now()): void {
    if (ticket.epoch !== this.epoch) return;
    const offered = surrogateMaxAgeMs(res.headers);
    // Encoded or varying answers would need the request's Accept-Encoding in the key: not kept.
    const varies = res.headers["content-encoding"] !== undefined || res.headers.vary !== undefined;
    if (status !== 200 || offered <= 0 || varies || res.body.byteLength > this.maxBodyBytes || res.headers["set-cookie"] !== undefined) return;
    // The replay gets its own Date, and the offer is for the gateway only.
    const { date: _date, [SURROGATE_CONTROL]: _offer, ...headers } = res.headers;
    this.remove(key);
    this.entries.set(key, { headers, body: res.body, generation: ticket.generation, expiresAt: now + Math.min(offered, this.opts.maxAgeMs) });
    this.bytes += res.body.byteLength;
    while (this.entries.size > this.opts.maxEntries || this.bytes > this.maxTotalBytes) this.remove(this.entries.keys().next().value!);
  }

  get size(): number {
    return this.entries.size;
  }

  /** Bytes of stored bodies. */
  get totalBytes(): number {
    return this.bytes;
  }
}
