import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { waitForPort } from "./ports.js";

/** A real Redis (`redis-server` from PATH) for tests and the local platform. */
export interface LocalRedis {
  url: string;
  port: number;
  process: ChildProcess;
  stop: () => Promise<void>;
}

export interface LocalRedisOptions {
  port: number;
  /** Where Redis may write. */
  dir: string;
  /**
   * Keep the data across a restart in `dir` (append-only file, written out on SIGTERM), as a Redis with
   * persistence would: a restarted Redis then still holds the entries written before it stopped.
   */
  persist?: boolean;
  /** `requirepass` (the `default` user's password). */
  password?: string;
  /**
   * ACL `user` lines (`redisAclLines` of redis-acl.ts, and any more): written to `<dir>/redis.conf` (mode 0600,
   * hashed passwords only), which the server reads first. The returned `url` then carries no login: build each
   * user's with `redisUrlAs`.
   */
  acl?: string[];
  onLog?: (line: string) => void;
  /** The server binary (default `redis-server` from PATH). */
  command?: string;
}

/** Thrown when `redis-server` is not on PATH (callers decide whether that is fatal). */
export class RedisNotInstalled extends Error {}

export async function startLocalRedis(opts: LocalRedisOptions): Promise<LocalRedis> {
  mkdirSync(opts.dir, { recursive: true });
  const args = ["--port", String(opts.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", opts.persist ? "yes" : "no", "--dir", opts.dir];
  if (opts.password) args.push("--requirepass", opts.password);
  if (opts.acl) {
    const conf = join(opts.dir, "redis.conf");
    writeFileSync(conf, `${opts.acl.join("\n")}\n`, { mode: 0o600 });
    chmodSync(conf, 0o600); // an existing file keeps its mode through writeFileSync
    args.unshift(conf);
  }
  const child = spawn(opts.command ?? "redis-server", args, { stdio: ["ignore", "pipe", "pipe"] });
  const spawned = new Promise<void>((resolve, reject) => {
    child.once("spawn", () => resolve());
    child.once("error", (err: NodeJS.ErrnoException) =>
      reject(err.code === "ENOENT" ? new RedisNotInstalled("redis-server is not installed (not on PATH)") : err),
    );
  });
  await spawned;
  const log = opts.onLog;
  if (log) {
    // Whole lines: a chunk of output may end inside one.
    for (const stream of [child.stdout, child.stderr]) if (stream) createInterface({ input: stream }).on("line", (l) => l && log(l));
  } else {
    child.stdout?.resume();
    child.stderr?.resume();
  }
  await waitForPort(opts.port);
  const auth = opts.password ? `:${encodeURIComponent(opts.password)}@` : "";
  return {
    url: `redis://${auth}127.0.0.1:${opts.port}`,
    port: opts.port,
    process: child,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}
