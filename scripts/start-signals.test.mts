import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { processAlive, type ProcessId } from "../services/kit/src/local/index.js";
import { ROOT } from "./platform.mjs";

// How `npm start` stops: a terminal that closes (SIGHUP), a Ctrl-C typed in it (which npm passes on as
// well), a process that will not stop, a second Ctrl-C. `npm start` runs in a real terminal here (util-linux
// `script` gives it a pseudo-terminal) or, for signals sent to it alone, as scripts/start.mts itself.
// Every test leaves nothing running. The ones that stop in order share a data directory (PostgreSQL's cluster
// is made once); the ones that kill everything get one each (a copy of it): a killed PostgreSQL is its
// runner's child, and where nothing reaps it at once (pid 1 in some containers) its pid file stops the next
// start on that data.
const dataDirs: string[] = [];
const newDataDir = () => {
  const dir = mkdtempSync(join(tmpdir(), "titanium-start-signals-"));
  chmodSync(dir, 0o755); // PostgreSQL runs as its own user when the tests run as root
  dataDirs.push(dir);
  return dir;
};
const shared = newDataDir();
/**
 * A data directory of its own holding a copy of `shared`'s data (once a test before has made its cluster and
 * stopped it cleanly), for a test that kills everything but not one about a first start: its runner then
 * starts PostgreSQL on that cluster instead of running initdb first. `cp -a` keeps the owner (PostgreSQL's
 * own user when the tests run as root) and modes PostgreSQL insists on.
 */
const copyOfShared = () => {
  const dir = newDataDir();
  const cluster = join(shared, "postgres/cluster");
  if (existsSync(join(cluster, "PG_VERSION")) && !existsSync(join(cluster, "postmaster.pid")) && !existsSync(join(shared, "platform.lock")))
    execFileSync("cp", ["-a", `${shared}/.`, dir]);
  return dir;
};
const running = new Set<ChildProcess>();
const kill = (pid: number, signal: NodeJS.Signals = "SIGKILL") => {
  try {
    process.kill(pid, signal);
  } catch {
    // gone
  }
};
afterAll(() => {
  for (const child of running) child.kill("SIGKILL");
  // What a failed test may leave behind (SIGKILL also ends a process stopped with SIGSTOP).
  for (const dir of dataDirs) {
    if (existsSync(join(dir, "platform.lock"))) for (const id of Object.values(lockOf(dir).children)) kill(id.pid);
    if (existsSync(join(dir, "postgres/cluster/postmaster.pid"))) kill(postmasterPid(dir));
    rmSync(dir, { recursive: true, force: true });
  }
});

interface Lock {
  pid: number;
  start?: number;
  children: Record<string, ProcessId>;
}
const lockOf = (dir: string) => JSON.parse(readFileSync(join(dir, "platform.lock"), "utf8")) as Lock;
const postmasterPid = (dir: string) => Number(readFileSync(join(dir, "postgres/cluster/postmaster.pid"), "utf8").split("\n")[0]);
/** Without a terminal's colours. */
// oxlint-disable-next-line no-control-regex
const plain = (text: string) => text.replace(/\x1b\[[0-9;]*m/g, "");

function run(dataDir: string, command: string, args: string[], env: Record<string, string> = {}, detached = false) {
  const child = spawn(command, args, {
    cwd: ROOT,
    env: { ...process.env, TITANIUM_DATA_DIR: dataDir, PORT: "0", TITANIUM_SERVICE_PORTS: "any", SHELL: "/bin/sh", ...env },
    stdio: ["pipe", "pipe", "pipe"],
    detached,
  });
  running.add(child);
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += plain(d.toString())));
  child.stderr!.on("data", (d: Buffer) => (out += plain(d.toString())));
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => (running.delete(child), r(code))));
  const until = async (text: string | RegExp, timeout = 60_000) => {
    await expect.poll(() => (typeof text === "string" ? out.includes(text) : text.test(out)) || child.exitCode !== null, { timeout, interval: 100 }).toBe(true);
    expect(out, out.slice(-3000)).toMatch(text);
  };
  return { child, output: () => out, exited, until };
}
/**
 * `npm start` without prestart's build of the web UI (`npm ci` has built it; start.test.mts runs `npm start`
 * with it): the same chain of processes, npm, its shell, the runner.
 */
const NPM_START = "npm start --silent --ignore-scripts";
/** A shell's `command` in a terminal of its own, the shell its session leader: what is typed goes to it (Ctrl-C is "\x03"). */
const inTerminal = (command: string) => run(shared, "script", ["-qfec", command, "/dev/null"]);
/** scripts/start.mts itself, signals to it alone. */
const runner = (dataDir: string, env: Record<string, string> = {}) => run(dataDir, process.execPath, ["--import", "tsx", "scripts/start.mts"], env);

/** Everything the platform started, and the runner: pids and start times, read once it is up. */
function processesOf(dataDir: string): ProcessId[] {
  const lock = lockOf(dataDir);
  return [{ pid: lock.pid, start: lock.start }, ...Object.values(lock.children), { pid: postmasterPid(dataDir) }];
}
async function expectAllGone(dataDir: string, ids: ProcessId[], timeout = 10_000) {
  await expect.poll(() => ids.filter((id) => processAlive(id)).map((id) => id.pid), { timeout }).toEqual([]);
  expect(existsSync(join(dataDir, "platform.lock")), "lock released").toBe(false);
}
const cleanPostgresStop = (dataDir: string) => expect(existsSync(join(dataDir, "postgres/cluster/postmaster.pid")), "PostgreSQL shut down cleanly").toBe(false);
/** The runner takes a repeat of the first signal within 1 s for a copy of it (npm passes signals on). */
const pastCopyWindow = () => new Promise((r) => setTimeout(r, 1500));

describe("npm start: signals", () => {
  it("the terminal closing (SIGHUP, its output gone) stops everything in order: nothing left running, PostgreSQL shut down cleanly", async () => {
    // The terminal's session leader (the shell, or npm in its place) dies of the hangup, and every process of
    // its foreground group gets a SIGHUP: npm, the runner, the services, PostgreSQL, Redis.
    const terminal = inTerminal(NPM_START);
    await terminal.until("Titanium is up:");
    const ids = processesOf(shared);
    // The terminal window closed: the pseudo-terminal's other end goes, and with it every write to it (EIO).
    terminal.child.kill("SIGKILL");
    await terminal.exited;
    await expectAllGone(shared, ids, 25_000); // well within the 30 s after which a stuck stop kills everything
    cleanPostgresStop(shared);
  }, 120_000);

  it("one Ctrl-C typed in the terminal (which npm passes on too) stops everything in order, exit 0", async () => {
    // As an interactive shell: Ctrl-C does not end it, it waits for npm and has its exit code. npm passes the
    // SIGINT on to its child as well: the runner gets it twice (and while `npm start` runs the runner through
    // tsx's command line, tsx relays it once more, and SIGKILLs the runner, exit 130, when its event loop has
    // not answered within 30 ms: on a loaded machine, half the time).
    const terminal = inTerminal(`trap '' INT; ${NPM_START}; echo "npm start exited with $?"`);
    await terminal.until("Titanium is up:");
    const ids = processesOf(shared);
    terminal.child.stdin!.write("\x03");
    await terminal.exited;
    expect(terminal.output(), terminal.output().slice(-3000)).toMatch(/^npm start exited with 0\r?$/m);
    // The terminal echoes the Ctrl-C as "^C" where the cursor is: maybe at the start of the runner's next line.
    expect(terminal.output()).toMatch(/^(\^C)?platform +\| SIGINT: stopping/m);
    expect(terminal.output()).toMatch(/^platform +\| stopped\r?$/m);
    expect(terminal.output()).not.toContain("killing everything");
    await expectAllGone(shared, ids);
    cleanPostgresStop(shared);
  }, 120_000);

  it("a service that does not stop on SIGTERM is killed once its grace is over, and the ordered stop goes on (PostgreSQL shut down cleanly, exit 0)", async () => {
    // The services' drain (SHUTDOWN_GRACE_MS) set to none: the grace is what the runner adds to it, 6 s (11 s
    // with npm start's default drain of 5 s).
    const r = runner(shared, { SHUTDOWN_GRACE_MS: "0" });
    await r.until("Titanium is up:");
    const ids = processesOf(shared);
    kill(lockOf(shared).children["api-gateway"]!.pid, "SIGSTOP"); // hung: SIGTERM never handled
    const t0 = performance.now();
    r.child.kill("SIGTERM");
    await r.until(/^platform +\| api-gateway \(pid \d+\) did not stop within 6 s of SIGTERM: killed$/m, 30_000);
    expect(performance.now() - t0, "killed once its grace was over, not before").toBeGreaterThanOrEqual(6000);
    expect(await r.exited, r.output().slice(-3000)).toBe(0);
    expect(r.output()).toMatch(/^platform +\| stopped$/m);
    expect(r.output()).not.toContain("killing everything");
    await expectAllGone(shared, ids);
    cleanPostgresStop(shared);
  }, 120_000);

  it("with the longest drain, a hung gateway and a hung service are killed in time for PostgreSQL's clean shutdown within the 30 s of a stop (exit 0)", async () => {
    // Each stuck for its whole grace, one after the other (16 s each at SHUTDOWN_GRACE_MS=10000), they would
    // outlast the 30 s after which everything is killed, PostgreSQL mid-checkpoint. The stop's one deadline
    // kills the gateway early enough for the services to have their whole drain (11 s) and a hung service in
    // time to leave Redis and PostgreSQL their 5 s.
    const r = runner(shared, { SHUTDOWN_GRACE_MS: "10000" });
    await r.until("Titanium is up:");
    const ids = processesOf(shared);
    const { children } = lockOf(shared);
    kill(children["api-gateway"]!.pid, "SIGSTOP");
    kill(children["blog-service"]!.pid, "SIGSTOP");
    const t0 = performance.now();
    r.child.kill("SIGINT");
    expect(await r.exited, r.output().slice(-3000)).toBe(0);
    expect(performance.now() - t0, "the stop ended within its 30 s").toBeLessThan(30_000);
    const killedAfter = (name: string) => Number(new RegExp(`^platform +\\| ${name} \\(pid \\d+\\) did not stop within ([\\d.]+) s of SIGTERM: killed$`, "m").exec(r.output())?.[1]);
    const gateway = killedAfter("api-gateway");
    expect(gateway, "the gateway had its whole drain").toBeGreaterThanOrEqual(11);
    expect(gateway + killedAfter("blog-service"), "both killed with 5 s of the 30 left").toBeLessThanOrEqual(25.1);
    expect(r.output()).toMatch(/^postgres +\| .*database system is shut down$/m);
    expect(r.output()).toMatch(/^platform +\| stopped$/m);
    expect(r.output()).not.toContain("killing everything");
    await expectAllGone(shared, ids);
    cleanPostgresStop(shared);
  }, 120_000);

  it("a second Ctrl-C while stopping kills everything at once: exit 1, nothing left running", async () => {
    const dataDir = copyOfShared();
    const r = runner(dataDir);
    await r.until("Titanium is up:");
    const ids = processesOf(dataDir);
    kill(lockOf(dataDir).children["api-gateway"]!.pid, "SIGSTOP"); // the stop cannot finish by itself for 11 s
    r.child.kill("SIGINT");
    await r.until(/^platform +\| SIGINT: stopping/m);
    await pastCopyWindow();
    const t0 = Date.now();
    r.child.kill("SIGINT");
    expect(await r.exited, r.output().slice(-3000)).toBe(1);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(r.output()).toMatch(/^platform +\| SIGINT while stopping: killing everything now$/m);
    await expectAllGone(dataDir, ids);
  }, 120_000);

  it("a Ctrl-C during the first start's copy of the new cluster stops it like any other during start-up (exit 0), leaving no half-made cluster", async () => {
    const dataDir = newDataDir();
    // A cp that takes its time once done: the Ctrl-C comes while it runs.
    const bin = mkdtempSync(join(dataDir, "bin-"));
    writeFileSync(join(bin, "cp"), '#!/bin/sh\n/bin/cp "$@" && exec sleep 30\n', { mode: 0o755 });
    // A process group of its own, as a terminal's foreground job: the Ctrl-C reaches the runner and cp at once.
    const r = run(dataDir, process.execPath, ["--import", "tsx", "scripts/start.mts"], { PATH: `${bin}:${process.env.PATH}` }, true);
    const postgresDir = join(dataDir, "postgres");
    const copying = () => existsSync(postgresDir) && readdirSync(postgresDir).some((n) => n.startsWith("cluster.tmp-"));
    await expect.poll(() => copying() || r.child.exitCode !== null, { timeout: 60_000, interval: 20 }).toBe(true);
    expect(copying(), r.output().slice(-3000)).toBe(true);
    process.kill(-r.child.pid!, "SIGINT");
    expect(await r.exited, r.output().slice(-3000)).toBe(0);
    expect(r.output()).toMatch(/^platform +\| SIGINT during start-up: stopping what has started$/m);
    expect(r.output()).toMatch(/^platform +\| stopped$/m);
    expect(readdirSync(postgresDir).filter((n) => n.startsWith("cluster"))).toEqual([]);
    expect(existsSync(join(dataDir, "platform.lock"))).toBe(false);
  }, 120_000);

  it("a second Ctrl-C during start-up kills what has started: exit 1, nothing left running", async () => {
    const dataDir = copyOfShared();
    const r = runner(dataDir);
    await r.until("PostgreSQL ready");
    const pg = postmasterPid(dataDir);
    kill(pg, "SIGSTOP"); // the start-up cannot go on, nor PostgreSQL stop
    r.child.kill("SIGINT");
    await r.until(/^platform +\| SIGINT during start-up: stopping what has started$/m);
    await pastCopyWindow();
    const ids = [{ pid: pg }, ...Object.values(lockOf(dataDir).children)];
    r.child.kill("SIGINT");
    expect(await r.exited, r.output().slice(-3000)).toBe(1);
    expect(r.output()).toMatch(/^platform +\| SIGINT while stopping: killing everything now$/m);
    await expectAllGone(dataDir, ids);
  }, 120_000);
});
