import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { freePort, processAlive } from "../services/kit/src/local/index.js";
import { ROOT } from "./platform.mjs";

// The README's command itself: `npm start` (prestart builds the web UI, then scripts/start.mts), on a
// data directory and ports of its own, stopped by a signal as Ctrl-C or a service manager would.
const dataDir = mkdtempSync(join(tmpdir(), "titanium-npm-start-"));
chmodSync(dataDir, 0o755); // PostgreSQL runs as its own user when the tests run as root
let running: ChildProcess | undefined;
const runners = new Set<ChildProcess>();
afterAll(async () => {
  running?.kill("SIGKILL");
  for (const r of runners) r.kill("SIGKILL");
  // What a killed runner leaves behind (the tests below kill some on purpose; a failed one may leave more).
  for (const dir of [dataDir, dataDir2]) {
    const lock = join(dir, "platform.lock");
    if (existsSync(lock)) for (const id of Object.values((JSON.parse(readFileSync(lock, "utf8")) as { children: Record<string, { pid: number }> }).children)) kill(id.pid);
    const pidFile = join(dir, "postgres/cluster/postmaster.pid");
    if (existsSync(pidFile)) kill(Number(readFileSync(pidFile, "utf8").split("\n")[0]), "SIGQUIT");
  }
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(dataDir2, { recursive: true, force: true });
});
const dataDir2 = mkdtempSync(join(tmpdir(), "titanium-npm-start-other-"));
chmodSync(dataDir2, 0o755);
const kill = (pid: number, signal: NodeJS.Signals = "SIGKILL") => {
  try {
    process.kill(pid, signal);
  } catch {
    // gone
  }
};

/** scripts/start.mts itself (no npm in between: its pid is the runner's), on `dir`; output, exit code, and the child. */
function runner(env: Record<string, string>, dir = dataDir) {
  const child = spawn(process.execPath, ["--import", "tsx", "scripts/start.mts"], {
    cwd: ROOT,
    env: { ...process.env, TITANIUM_DATA_DIR: dir, TITANIUM_SERVICE_PORTS: "any", NO_COLOR: "1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  runners.add(child);
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => (runners.delete(child), r(code))));
  const until = async (text: string | RegExp, timeout = 90_000) => {
    await expect.poll(() => (typeof text === "string" ? out.includes(text) : text.test(out)) || child.exitCode !== null, { timeout, interval: 100 }).toBe(true);
    expect(out, out.slice(-3000)).toMatch(text);
  };
  return { child, output: () => out, exited, until };
}
const lockOf = (dir: string) => JSON.parse(readFileSync(join(dir, "platform.lock"), "utf8")) as { pid: number; children: Record<string, { pid: number; start?: number }> };
const postmasterPid = (dir: string) => Number(readFileSync(join(dir, "postgres/cluster/postmaster.pid"), "utf8").split("\n")[0]);

/**
 * `npm start` until it says it is up; its output, and a stop that sends SIGTERM and waits for the exit code.
 * `prestart: false` skips prestart's build of the web UI (built by the first start already).
 */
async function npmStart(port: number, { prestart = true } = {}): Promise<{ output: () => string; stop: () => Promise<number | null> }> {
  const child = spawn("npm", ["start", "--silent", ...(prestart ? [] : ["--ignore-scripts"])], {
    cwd: ROOT,
    env: { ...process.env, PORT: String(port), TITANIUM_DATA_DIR: dataDir, TITANIUM_SERVICE_PORTS: "any", NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  running = child;
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const up = await new Promise<boolean>((resolve) => {
    const poll = setInterval(() => {
      if (!out.includes("Titanium is up:")) return;
      clearInterval(poll);
      resolve(true);
    }, 100);
    void exited.then(() => {
      clearInterval(poll);
      resolve(false);
    });
  });
  expect(up, out.slice(-3000)).toBe(true);
  return {
    output: () => out,
    stop: async () => {
      child.kill("SIGTERM");
      const code = await exited;
      running = undefined;
      return code;
    },
  };
}

describe("npm start", () => {
  it("serves the platform through the gateway on PORT, tags every line with its source, stops cleanly on SIGTERM, and keeps its data for the next start", async () => {
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const first = await npmStart(port);
    expect(first.output()).toContain(`Titanium is up: ${base}`);
    // Said once the gateway says it listens (its lines come a little after it is ready), not above it.
    expect(first.output()).toMatch(/^api-gateway +\| .*"msg":"listening"[\s\S]*Titanium is up:/m);
    // Every component's lines, tagged with its name.
    for (const source of ["postgres", "redis", "migrate", "user-service", "auth-service", "blog-service", "api-gateway"]) {
      await expect.poll(() => first.output(), { message: source, timeout: 10_000 }).toMatch(new RegExp(`^${source} +\\| `, "m"));
    }
    expect((await fetch(`${base}/health`)).status).toBe(200);
    expect(await (await fetch(`${base}/api/users/health`)).json()).toEqual({ status: "healthy" });
    const page = await fetch(`${base}/blog/`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toContain("text/html");
    const username = `starter${Date.now() % 100000}`;
    const signup = await fetch(`${base}/api/users`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username, email: `${username}@example.com`, password: "Str0ng!pass" }),
    });
    expect(signup.status, await signup.clone().text()).toBe(201);
    expect(await first.stop()).toBe(0);
    expect(first.output()).toMatch(/^platform +\| SIGTERM: stopping/m);
    expect(first.output()).toMatch(/^platform +\| stopped$/m);
    await expect(fetch(`${base}/health`)).rejects.toThrow();

    // The same data directory: the account is still there (the web UI is built: npm start without prestart).
    const second = await npmStart(port, { prestart: false });
    const login = await fetch(`${base}/api/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username, password: "Str0ng!pass" }),
    });
    expect(login.status).toBe(200);
    expect(await second.stop()).toBe(0);
  }, 180_000);

  it("refuses a bad PORT or TITANIUM_SERVICE_PORTS, or a PORT a service has, before starting anything, naming the variable", async () => {
    const run = (env: Record<string, string>) =>
      new Promise<{ code: number | null; out: string }>((resolve) => {
        const child = spawn(process.execPath, ["--import", "tsx", "scripts/start.mts"], { cwd: ROOT, env: { ...process.env, TITANIUM_DATA_DIR: dataDir, NO_COLOR: "1", ...env } });
        let out = "";
        child.stdout.on("data", (d: Buffer) => (out += d.toString()));
        child.stderr.on("data", (d: Buffer) => (out += d.toString()));
        child.once("exit", (code) => resolve({ code, out }));
        setTimeout(() => child.kill("SIGKILL"), 20_000).unref(); // a bad value taken for a good one would start the platform
      });
    expect(await run({ PORT: "eighty" })).toMatchObject({ code: 2, out: expect.stringContaining('PORT: expected a port number, got "eighty"') });
    // Number() reads these as 0 (any port), 80 and 1000: not what anyone typing them meant.
    for (const bad of [" ", "0x50", "1e3", "80.0"]) expect(await run({ PORT: bad })).toMatchObject({ code: 2, out: expect.stringContaining(`PORT: expected a port number, got "${bad}"`) });
    expect(await run({ PORT: "0", TITANIUM_SERVICE_PORTS: "random" })).toMatchObject({ code: 2, out: expect.stringContaining('TITANIUM_SERVICE_PORTS: expected "any" or "original"') });
    expect(await run({ PORT: "0", TITANIUM_SERVICE_PORTS: "any", SHUTDOWN_GRACE_MS: "5s" })).toMatchObject({ code: 2, out: expect.stringContaining('SHUTDOWN_GRACE_MS: expected milliseconds from 0 to 10000 (a stop ends within 30 s), got "5s"') });
    // A longer drain would let the 30 s bound on a stop kill a platform whose drains are going as asked.
    expect(await run({ PORT: "0", TITANIUM_SERVICE_PORTS: "any", SHUTDOWN_GRACE_MS: "10001" })).toMatchObject({ code: 2, out: expect.stringContaining('got "10001"') });
    // The gateway on the user-service's original port: refused at once, not once everything else runs.
    const clash = await run({ PORT: "8001", TITANIUM_SERVICE_PORTS: "original" });
    expect(clash.code, clash.out).toBe(1);
    expect(clash.out).toMatch(/^platform +\| failed to start: port 8001 is asked for twice: for user-service and for api-gateway$/m);
    expect(clash.out).toContain("PORT=<port> npm start puts the gateway elsewhere");
    expect(clash.out).not.toMatch(/^postgres/m);
  }, 60_000);

  it("refuses a second start on the same data or port with a clear message, recovers from a runner killed with SIGKILL, stops everything when a service dies later, and stops cleanly on SIGTERM during start-up", async () => {
    const port = await freePort();
    const first = runner({ PORT: String(port) });
    await first.until("Titanium is up:");

    // The same data directory while it runs: refused at once, the first one untouched.
    const same = runner({ PORT: String(await freePort()) });
    // Another data directory on the same gateway port: refused before anything starts, naming the port.
    const samePort = runner({ PORT: String(port) }, dataDir2);
    expect(await same.exited, same.output()).toBe(1);
    expect(same.output()).toMatch(/failed to start: another platform \(pid \d+, http:\/\/127\.0\.0\.1:\d+\) is already running on /);
    expect(await samePort.exited, samePort.output()).toBe(1);
    expect(samePort.output()).toContain(`port ${port} (api-gateway) is already in use on 127.0.0.1`);
    expect(samePort.output()).toContain("PORT=<port> npm start");
    expect(samePort.output()).not.toMatch(/^postgres/m);
    expect((await fetch(`http://127.0.0.1:${port}/health`)).status).toBe(200);

    // kill -9 of the runner: its PostgreSQL, Redis and services keep running; the next start stops them and starts.
    const left = lockOf(dataDir);
    const pgPid = postmasterPid(dataDir);
    first.child.kill("SIGKILL");
    await first.exited;
    expect(processAlive(left.children.redis!)).toBe(true);
    const second = runner({ PORT: String(port) });
    await second.until("Titanium is up:");
    expect(second.output()).toMatch(/did not stop; stopping what it left running: .*redis \(pid/);
    expect(second.output()).toContain(`stopping PostgreSQL (pid ${pgPid}) left running`);
    for (const id of Object.values(left.children)) expect(processAlive(id)).toBe(false);
    expect((await fetch(`http://127.0.0.1:${port}/health`)).status).toBe(200);

    // A service dying once the platform is up: everything stops, exit 1, its last lines shown.
    const now = lockOf(dataDir);
    kill(now.children["blog-service"]!.pid);
    expect(await second.exited, second.output()).toBe(1);
    expect(second.output()).toMatch(/blog-service exited unexpectedly \(signal SIGKILL\); its last lines:/);
    expect(second.output()).toMatch(/^platform +\| stopped$/m);
    for (const id of Object.values(now.children)) expect(processAlive(id)).toBe(false);
    expect(existsSync(join(dataDir, "platform.lock"))).toBe(false);
    expect(existsSync(join(dataDir, "postgres/cluster/postmaster.pid"))).toBe(false);

    // SIGTERM (a process manager) during start-up: what has started stops, nothing is left behind.
    const third = runner({ PORT: String(port) });
    await third.until("PostgreSQL ready");
    third.child.kill("SIGTERM");
    expect(await third.exited, third.output()).toBe(0);
    expect(third.output()).toMatch(/SIGTERM during start-up: stopping what has started/);
    expect(existsSync(join(dataDir, "platform.lock"))).toBe(false);
    expect(existsSync(join(dataDir, "postgres/cluster/postmaster.pid"))).toBe(false);
  }, 240_000);
});
