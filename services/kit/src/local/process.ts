import type { ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";

/**
 * Processes by pid, for what a killed runner may leave behind (Linux /proc; elsewhere only `kill(pid, 0)`).
 * A pid alone can be reused by another process: `startTime` tells them apart.
 */
export interface ProcessId {
  pid: number;
  /** The kernel's start time of the process (clock ticks since boot), undefined where /proc is missing. */
  start?: number;
}

function stat(pid: number): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  } catch {
    return undefined;
  }
}

/** The start time of a running process (undefined when gone or without /proc). */
export function processStartTime(pid: number): number | undefined {
  const fields = stat(pid);
  return fields ? Number(fields[19]) : undefined;
}

/** The process's arguments (undefined when gone or without /proc). */
export function processArgs(pid: number): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
  } catch {
    return undefined;
  }
}

/** True while `id` runs (a zombie counts as gone; a reused pid too when the start time is known). */
export function processAlive(id: ProcessId): boolean {
  try {
    process.kill(id.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  const fields = stat(id.pid);
  if (!fields) return !existsProc(); // no /proc: trust kill(pid, 0)
  if (fields[0] === "Z") return false;
  return id.start === undefined || Number(fields[19]) === id.start;
}

function existsProc(): boolean {
  try {
    readFileSync("/proc/self/stat");
    return true;
  } catch {
    return false;
  }
}

/** `signal`, then SIGKILL after `timeoutMs` if still running; resolves once it is gone. */
export async function stopProcess(id: ProcessId, signal: NodeJS.Signals = "SIGTERM", timeoutMs = 10_000): Promise<void> {
  const send = (s: NodeJS.Signals) => {
    try {
      process.kill(id.pid, s);
    } catch {
      // gone already
    }
  };
  if (!processAlive(id)) return;
  send(signal);
  const deadline = Date.now() + timeoutMs;
  while (processAlive(id)) {
    if (Date.now() > deadline) {
      send("SIGKILL");
      for (let i = 0; i < 100 && processAlive(id); i++) await new Promise((r) => setTimeout(r, 50));
      return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Calls `onLine` with each line a child writes to stdout and stderr, whole and once: a chunk of output may end
 * inside a line (or inside a character) or hold several, and a last line without a newline counts when its
 * stream ends. Resolves once both streams have ended (so every line is in: e.g. for an exit's last lines).
 */
export function forEachLine(child: ChildProcess, onLine: (line: string) => void): Promise<void> {
  const ended: Promise<void>[] = [];
  for (const stream of [child.stdout, child.stderr]) {
    if (!stream) continue;
    const lines = createInterface({ input: stream, crlfDelay: Infinity });
    lines.on("line", onLine);
    ended.push(new Promise((resolve) => lines.once("close", resolve)));
  }
  return Promise.all(ended).then(() => {});
}

/** How a child stopped by `stopChild` ended. */
export interface ChildStopped {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** It outlived its grace and got SIGKILL. */
  killed: boolean;
}

/**
 * `signal` to a child, then SIGKILL if it is still running `graceMs` later (a process that ignores or never
 * gets to handle SIGTERM, or a stopped one); resolves once it has exited (at once if it had already).
 */
export function stopChild(child: ChildProcess, graceMs: number, signal: NodeJS.Signals = "SIGTERM"): Promise<ChildStopped> {
  const result = (killSent: boolean): ChildStopped => ({
    code: child.exitCode,
    signal: child.signalCode as NodeJS.Signals | null,
    killed: killSent && child.signalCode === "SIGKILL", // not one that exited as its grace ran out
  });
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(result(false));
  return new Promise((resolve) => {
    let killSent = false;
    const timer = setTimeout(() => {
      killSent = true;
      child.kill("SIGKILL");
    }, graceMs);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve(result(killSent));
    });
    child.kill(signal);
  });
}
