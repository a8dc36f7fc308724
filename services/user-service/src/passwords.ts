import { parseOptions, type Algorithm } from "@node-rs/argon2";
import { timingSafeEqual } from "node:crypto";
import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";

const require = createRequire(import.meta.url);

/**
 * Argon2id at OWASP's first recommended setting (m = 19 MiB, t = 2, p = 1), never on the event loop.
 */
export const ARGON2_PARAMS = {
  algorithm: 2 as Algorithm, // Argon2id (a const enum: spelled as its value under isolatedModules)
  memoryCost: 19_456,
  timeCost: 2,
  parallelism: 1,
} as const;

/**
 * Hashing runs in worker threads at the lowest CPU priority (nice 19 by default, `PASSWORD_HASH_NICE`:
 * raising one's own nice value needs no privilege, and on Linux it applies to the calling thread only). A login storm then takes only the CPU
 * nothing else wants: reads through the same node keep their latency. At most `size` hashes run at once
 * (`PASSWORD_HASH_CONCURRENCY`), each 19 MiB; the rest wait in line.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const os = require("node:os");
const crypto = require("node:crypto");
const argon2 = require(workerData.argon2);
try { os.setPriority(workerData.nice); } catch {}
const run = (m) =>
  m.op === "hash" ? argon2.hashSync(m.password, m.options)
  : m.op === "verify" ? argon2.verifySync(m.hash, m.password)
  : crypto.pbkdf2Sync(m.password, m.salt, m.iterations, m.keylen, m.digest).toString("hex");
parentPort.on("message", (m) => {
  try {
    const result = run(m);
    parentPort.postMessage({ id: m.id, result });
  } catch (err) {
    parentPort.postMessage({ id: m.id, error: String((err && err.message) || err) });
  }
});`;

type Argon2Options = { algorithm: Algorithm; memoryCost: number; timeCost: number; parallelism: number };
type Job =
  | { op: "hash"; password: string; options: Argon2Options }
  | { op: "verify"; hash: string; password: string }
  /** Hex of PBKDF2-HMAC-`digest` (strings as UTF-8), for the original's legacy Werkzeug hashes. */
  | { op: "pbkdf2"; password: string; salt: string; iterations: number; keylen: number; digest: string };
interface Pending {
  job: Job;
  resolve: (v: string | boolean) => void;
  reject: (e: Error) => void;
  /** Stops watching the request's signal once the job has started. */
  started?: () => void;
}

export class HashPool {
  private workers: { worker: Worker; busy: Pending | undefined }[] = [];
  private readonly queue: Pending[] = [];
  private nextId = 0;
  /** Jobs handed to a worker, and jobs dropped from the line because their client went away. */
  readonly counts = { started: 0, dropped: 0 };
  /** Nice value of the workers started from now on (`configure`). */
  private nice = 19;

  constructor(private size = 1) {}

  /** Jobs waiting in line for a worker. */
  get waiting(): number {
    return this.queue.length;
  }

  /** Workers at most, and their nice value (for workers started from now on: call before the first job). */
  configure(opts: { size: number; nice: number }): void {
    this.size = opts.size;
    this.nice = opts.nice;
  }

  /**
   * Runs `job` when a worker is free. With the request's `signal`, a job still waiting in line when its
   * client goes away (a login storm's clients time out and retry) is dropped with the signal's reason
   * instead of hashing for nobody; one already running finishes (native code cannot be interrupted).
   */
  run(job: Job, signal?: AbortSignal): Promise<string | boolean> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        this.counts.dropped++;
        return reject(signal.reason);
      }
      const pending: Pending = { job, resolve, reject };
      if (signal) {
        const drop = () => {
          const at = this.queue.indexOf(pending);
          if (at < 0) return;
          this.queue.splice(at, 1);
          this.counts.dropped++;
          reject(signal.reason);
        };
        signal.addEventListener("abort", drop, { once: true });
        pending.started = () => signal.removeEventListener("abort", drop);
      }
      this.queue.push(pending);
      this.pump();
    });
  }

  /** Stop the workers (shutdown); queued jobs fail. */
  async close(): Promise<void> {
    for (const p of this.queue.splice(0)) {
      p.started?.();
      p.reject(new Error("hash pool closed"));
    }
    await Promise.all(this.workers.splice(0).map((w) => w.worker.terminate()));
  }

  private pump(): void {
    while (this.queue.length) {
      let slot = this.workers.find((w) => !w.busy);
      if (!slot && this.workers.length < this.size) slot = this.spawn();
      if (!slot) return;
      const pending = this.queue.shift()!;
      pending.started?.();
      this.counts.started++;
      slot.busy = pending;
      slot.worker.postMessage({ id: this.nextId++, ...pending.job });
    }
  }

  private spawn() {
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { argon2: require.resolve("@node-rs/argon2"), nice: this.nice },
      // The worker only shuttles strings to native code: a small JS heap keeps the pod's memory flat.
      resourceLimits: { maxYoungGenerationSizeMb: 1, maxOldGenerationSizeMb: 12 },
    });
    worker.unref();
    const slot: { worker: Worker; busy: Pending | undefined } = { worker, busy: undefined };
    worker.on("message", (m: { result?: string | boolean; error?: string }) => {
      const done = slot.busy;
      slot.busy = undefined;
      if (m.error !== undefined) done?.reject(new Error(m.error));
      else done?.resolve(m.result!);
      this.pump();
    });
    worker.on("error", (err) => {
      slot.busy?.reject(err);
      this.workers = this.workers.filter((w) => w !== slot);
      this.pump();
    });
    this.workers.push(slot);
    return slot;
  }
}

/** The process's hashing pool (`PASSWORD_HASH_CONCURRENCY` workers at most). */
export const hashPool = new HashPool(1);

/** `signal`: the request's; its job is dropped while still in line if the client goes away (see `run`). */
export async function hashPassword(password: string, signal?: AbortSignal): Promise<string> {
  return (await hashPool.run({ op: "hash", password, options: ARGON2_PARAMS }, signal)) as string;
}

/** Key length (the hash's natural output) of each hash a legacy Werkzeug PBKDF2 hash may name. */
const PBKDF2_KEYLEN: Record<string, number> = { sha1: 20, sha256: 32, sha512: 64 };
/** Far above any real setting (Werkzeug's default is 1,000,000): a corrupt row cannot tie up a worker for hours. */
const PBKDF2_MAX_ITERATIONS = 10_000_000;

/**
 * A legacy Werkzeug hash `pbkdf2:<sha1|sha256|sha512>:<iterations>$<salt>$<hex digest>` (the original's v2
 * stored these; its rows are copied over), or undefined when `stored` is not one Werkzeug could check. Without
 * iterations Werkzeug used its version's default, which we cannot know: such a hash never matches.
 */
function parseWerkzeugHash(stored: string) {
  const g = /^pbkdf2:(?<digest>sha1|sha256|sha512):(?<n>[0-9]+)\$(?<salt>[^$]*)\$(?<hex>[0-9a-f]+)$/.exec(stored)?.groups;
  if (!g) return undefined;
  const { digest, salt, hex } = g as Record<"digest" | "salt" | "hex", string>;
  const iterations = Number(g.n);
  const keylen = PBKDF2_KEYLEN[digest]!;
  if (iterations < 1 || iterations > PBKDF2_MAX_ITERATIONS || hex.length !== keylen * 2) return undefined;
  return { digest, iterations, salt, keylen, hex };
}

export async function verifyPassword(stored: string, password: string, signal?: AbortSignal): Promise<boolean> {
  try {
    if (stored.startsWith("pbkdf2:")) {
      const legacy = parseWerkzeugHash(stored);
      if (!legacy) return false;
      const { hex, ...job } = legacy;
      const computed = (await hashPool.run({ op: "pbkdf2", password, ...job }, signal)) as string;
      return timingSafeEqual(Buffer.from(computed), Buffer.from(hex));
    }
    return (await hashPool.run({ op: "verify", hash: stored, password }, signal)) === true;
  } catch (err) {
    if (signal?.aborted) throw err; // dropped: the client went away (the kit answers 499)
    return false; // a malformed stored hash never matches
  }
}

/**
 * True when a stored hash was made with other parameters or is not Argon2 at all, such as a legacy Werkzeug
 * PBKDF2 one (`parseOptions` throws): rehashed to Argon2id after the next successful login.
 */
export function needsRehash(stored: string): boolean {
  try {
    const p = parseOptions(stored);
    return (
      p.algorithm !== ARGON2_PARAMS.algorithm ||
      p.memoryCost !== ARGON2_PARAMS.memoryCost ||
      p.timeCost !== ARGON2_PARAMS.timeCost ||
      p.parallelism !== ARGON2_PARAMS.parallelism
    );
  } catch {
    return true;
  }
}

/** Verified against when the user does not exist, so the answer takes as long either way. */
let dummyHash: Promise<string> | undefined;
export async function burnVerify(password: string, signal?: AbortSignal): Promise<void> {
  dummyHash ??= hashPassword("titanium-dummy-password");
  await verifyPassword(await dummyHash, password, signal);
}
