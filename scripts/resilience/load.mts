/**
 * A bounded load generator for the fault scenarios: `concurrency` workers, each sending one request after
 * another (`next`) until `stop()` or the hard deadline; every answer's status and latency is kept.
 */
import type { Reply } from "./harness.mjs";

export interface Outcome {
  /** When the request was sent (ms since epoch). */
  at: number;
  ms: number;
  status: number;
  label: string;
}

export interface Load {
  outcomes: Outcome[];
  /** Ask the workers to finish their current request and stop; resolves when all have. */
  stop: () => Promise<void>;
}

export interface LoadOptions {
  concurrency: number;
  /** Stop by itself after this long at the latest (a scenario that hangs still ends). */
  hardTimeoutMs: number;
  /** Pause between one worker's requests. */
  pauseMs?: number;
  /** The next request of worker `w` (its `n`-th); `label` groups the outcomes. */
  next: (w: number, n: number) => { label: string; send: () => Promise<Reply> };
  /** Called with each answer (e.g. to keep acknowledged ids). */
  onReply?: (label: string, reply: Reply) => void;
}

export function startLoad(o: LoadOptions): Load {
  const outcomes: Outcome[] = [];
  let stopped = false;
  const deadline = Date.now() + o.hardTimeoutMs;
  const worker = async (w: number) => {
    for (let n = 0; !stopped && Date.now() < deadline; n++) {
      const { label, send } = o.next(w, n);
      const at = Date.now();
      const started = performance.now();
      const reply = await send();
      outcomes.push({ at, ms: performance.now() - started, status: reply.status, label });
      o.onReply?.(label, reply);
      if (o.pauseMs) await new Promise((r) => setTimeout(r, o.pauseMs));
    }
  };
  const done = Promise.all(Array.from({ length: o.concurrency }, (_, w) => worker(w)));
  return {
    outcomes,
    stop: async () => {
      stopped = true;
      await done;
    },
  };
}

/** Count of outcomes per status, e.g. `{"200": 812, "503": 40}`. */
export function byStatus(outcomes: readonly Outcome[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const o of outcomes) out[o.status] = (out[o.status] ?? 0) + 1;
  return out;
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return Math.round(sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]! * 10) / 10;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `probe` every `everyMs` until it returns true or `timeoutMs` passes; resolves with the time it took (or NaN). */
export async function timeUntil(probe: () => Promise<boolean>, timeoutMs: number, everyMs = 50): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    if (await probe()) return Date.now() - started;
    await sleep(everyMs);
  }
  return Number.NaN;
}
