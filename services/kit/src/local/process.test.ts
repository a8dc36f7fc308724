import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { afterEach, describe, expect, it } from "vitest";
import { forEachLine, processAlive, processArgs, processStartTime, stopChild, stopProcess } from "./process.js";

// Tiny real processes (node -e), no sleeps: each waits for what it needs to see.
const started = new Set<ChildProcess>();
afterEach(() => {
  for (const child of started) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  started.clear();
});

function node(script: string, args: string[] = []): ChildProcess {
  const child = spawn(process.execPath, ["-e", script, ...args], { stdio: ["pipe", "pipe", "pipe"] });
  started.add(child);
  return child;
}
/** The first line `child` prints to stdout that matches. */
const lineOf = (child: ChildProcess, match: RegExp) =>
  new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.on("line", (l) => match.test(l) && resolve(l));
    child.once("exit", (code, signal) => reject(new Error(`exited (${code ?? signal}) before a line matching ${match}`)));
  });
const exited = (child: ChildProcess) => new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once("exit", () => resolve())));

/** Keeps running until killed; says "ready" once its signal handlers are in place, and answers "ping" with "pong". */
const SLEEPER = `
  if (process.argv[1] === "ignore-term") process.on("SIGTERM", () => console.log("SIGTERM ignored"));
  process.stdin.on("data", (d) => String(d).includes("ping") && console.log("pong"));
  console.log("ready");
  setInterval(() => {}, 1 << 30);
`;

describe("forEachLine", () => {
  it("passes every line on whole and once, however the output comes in chunks: split inside a line or a character, several lines in one chunk, CRLF, stderr beside stdout, a last line without a newline at exit", async () => {
    // The child writes one piece, then waits for "next" (sent once this side has read that piece) before the
    // following: each piece is a chunk of its own here, whatever the load.
    const korean = Buffer.from("안녕하세요\n");
    const pieces: [1 | 2, Buffer][] = [
      [1, Buffer.from("hel")],
      [1, Buffer.from("lo wor")],
      [1, Buffer.from("ld\nsecond\nthird\n")],
      [1, korean.subarray(0, 4)], // 안 is 3 bytes: this ends inside 녕
      [1, korean.subarray(4)],
      [2, Buffer.from("from stderr\r\n")],
      [1, Buffer.from("\nlast, without a newline")],
    ];
    const child = node(
      `const pieces = JSON.parse(process.argv[1]).map(([fd, b]) => [fd, Buffer.from(b, "base64")]);
       let i = 0;
       const next = () => {
         if (i === pieces.length) process.exit(0);
         const [fd, b] = pieces[i++];
         require("node:fs").writeSync(fd, b);
       };
       require("node:readline").createInterface({ input: process.stdin }).on("line", next);
       next();`,
      [JSON.stringify(pieces.map(([fd, b]) => [fd, b.toString("base64")]))],
    );
    const lines: string[] = [];
    const ended = forEachLine(child, (l) => lines.push(l));
    // What had been passed on after each piece (forEachLine's listeners see a chunk before these ones).
    const seen: string[][] = [];
    for (const stream of [child.stdout!, child.stderr!])
      stream.on("data", () => {
        seen.push([...lines]);
        child.stdin!.write("next\n");
      });
    await ended;
    expect(seen).toEqual([
      [],
      [],
      ["hello world", "second", "third"],
      ["hello world", "second", "third"],
      ["hello world", "second", "third", "안녕하세요"],
      ["hello world", "second", "third", "안녕하세요", "from stderr"],
      ["hello world", "second", "third", "안녕하세요", "from stderr", ""],
    ]);
    expect(lines).toEqual(["hello world", "second", "third", "안녕하세요", "from stderr", "", "last, without a newline"]);
  });

  it("resolves once the output has ended, with lines written just before the exit in", async () => {
    const child = node(`const fs = require("node:fs"); for (let i = 0; i < 2000; i++) fs.writeSync(i % 2 ? 1 : 2, "line " + i + "\\n"); fs.writeSync(1, "end"); process.exit(3)`);
    const lines: string[] = [];
    await forEachLine(child, (l) => lines.push(l));
    expect(lines).toHaveLength(2001);
    expect(lines.at(-1)).toBe("end");
    expect(new Set(lines).size).toBe(2001);
  });
});

describe("stopChild", () => {
  it("sends SIGTERM and resolves with how the child ended; no SIGKILL for one that stops", async () => {
    const child = node(`process.on("SIGTERM", () => process.exit(7)); console.log("ready"); setInterval(() => {}, 1 << 30);`);
    await lineOf(child, /^ready$/);
    await expect(stopChild(child, 30_000)).resolves.toEqual({ code: 7, signal: null, killed: false });
  });

  // The grace is waited out in full, so it is short: long enough only for what must happen within it. The
  // child that ignores SIGTERM has to run its handler and say so before the SIGKILL (1 s, for a busy
  // machine); the stopped one never runs, and any grace shows the SIGKILL does not come before it.
  it.each([
    ["ignores SIGTERM", (child: ChildProcess) => lineOf(child, /^ready$/), ["ignore-term"], 1000],
    ["is stopped (SIGSTOP) and never gets to run", async (child: ChildProcess) => (await lineOf(child, /^ready$/), child.kill("SIGSTOP")), [], 300],
  ])("SIGKILLs a child that %s once its grace is over, not before", async (_, prepare, args, graceMs) => {
    const child = node(SLEEPER, args);
    await prepare(child);
    const ignored = args.length ? lineOf(child, /^SIGTERM ignored$/) : undefined;
    const t0 = Date.now();
    const result = await stopChild(child, graceMs);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(graceMs);
    expect(result).toEqual({ code: null, signal: "SIGKILL", killed: true });
    if (ignored) await ignored; // it did get the SIGTERM first
  });

  it("resolves at once for a child that has exited already", async () => {
    const child = node(`process.exit(4)`);
    await exited(child);
    await expect(stopChild(child, 60_000)).resolves.toEqual({ code: 4, signal: null, killed: false });
  });
});

describe("stopProcess and processAlive (what a killed runner left running, known by pid and start time)", () => {
  it("stops a leftover that honours SIGTERM, and SIGKILLs one that ignores it after the timeout", async () => {
    const polite = node(SLEEPER);
    const stubborn = node(SLEEPER, ["ignore-term"]);
    await Promise.all([lineOf(polite, /^ready$/), lineOf(stubborn, /^ready$/)]);
    const ids = [polite, stubborn].map((c) => ({ pid: c.pid!, start: processStartTime(c.pid!) }));
    expect(ids.map(processAlive)).toEqual([true, true]);
    const politeExit = new Promise((r) => polite.once("exit", (_, s) => r(s)));
    await stopProcess(ids[0]!, "SIGTERM", 30_000);
    expect(await politeExit).toBe("SIGTERM");
    const stubbornExit = new Promise((r) => stubborn.once("exit", (_, s) => r(s)));
    // Its handler is in place ("ready"): it outlives the SIGTERM whenever it runs, so the timeout can be short.
    const t0 = Date.now();
    await stopProcess(ids[1]!, "SIGTERM", 300);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(300);
    expect(processAlive(ids[1]!)).toBe(false);
    expect(await stubbornExit).toBe("SIGKILL");
  });

  it("leaves alone a pid that is now another process (its start time differs)", async () => {
    const other = node(SLEEPER);
    await lineOf(other, /^ready$/);
    const reused = { pid: other.pid!, start: processStartTime(other.pid!)! - 1 };
    expect(processAlive(reused)).toBe(false);
    await stopProcess(reused, "SIGTERM", 1000);
    // Not signalled: a SIGTERM (default action) would have ended it before it could answer.
    const pong = lineOf(other, /^pong$/);
    other.stdin!.write("ping\n");
    await pong;
    expect(processAlive({ pid: other.pid!, start: processStartTime(other.pid!) })).toBe(true);
  });

  it("counts a zombie (exited, not yet reaped by its parent) as gone", async () => {
    // `head`'s parent becomes `sleep 1000`, which never reaps it; it exits once it has read a byte.
    const parent = spawn("sh", ["-c", "head -c 1 <&3 >/dev/null & echo $!; exec sleep 1000"], { stdio: ["ignore", "pipe", "ignore", "pipe"] });
    started.add(parent);
    const pid = Number(await lineOf(parent, /^\d+$/));
    await expect.poll(() => processArgs(parent.pid!)?.[0], { timeout: 10_000 }).toBe("sleep");
    expect(processAlive({ pid })).toBe(true);
    (parent.stdio[3] as NodeJS.WritableStream).write("x");
    const state = () => {
      try {
        return readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]![0];
      } catch {
        return "gone";
      }
    };
    await expect.poll(state, { timeout: 10_000 }).toBe("Z");
    expect(processAlive({ pid })).toBe(false);
  });
});
