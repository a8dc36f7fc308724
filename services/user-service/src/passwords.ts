import { hash, parseOptions, verify, type Algorithm } from "@node-rs/argon2";

/**
 * Argon2id at OWASP's first recommended setting (m = 19 MiB, t = 2, p = 1). The native binding runs on
 * libuv's thread pool, so hashing never blocks the event loop.
 */
export const ARGON2_PARAMS = {
  algorithm: 2 as Algorithm, // Argon2id (a const enum: spelled as its value under isolatedModules)
  memoryCost: 19_456,
  timeCost: 2,
  parallelism: 1,
} as const;

/**
 * At most `limit` hashes at a time per process; the rest wait in line. Each hash takes 19 MiB and a core
 * for ~10 ms, so a login storm is bounded in memory and leaves CPU to everything else in the pod.
 */
export class Semaphore {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private limit: number) {}

  setLimit(limit: number): void {
    this.limit = limit;
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active++;
    try {
      return await task();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}

/** Shared by every hash and verify in this process (`PASSWORD_HASH_CONCURRENCY`). */
export const hashSlots = new Semaphore(1);

export function hashPassword(password: string): Promise<string> {
  return hashSlots.run(() => hash(password, ARGON2_PARAMS));
}

export async function verifyPassword(stored: string, password: string): Promise<boolean> {
  try {
    return await hashSlots.run(() => verify(stored, password));
  } catch {
    return false; // a malformed stored hash never matches
  }
}

/** True when a stored hash was made with other parameters (rehashed after the next successful login). */
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
export async function burnVerify(password: string): Promise<void> {
  dummyHash ??= hashPassword("titanium-dummy-password");
  await verifyPassword(await dummyHash, password);
}
