import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { freePort } from "../services/kit/src/local/index.js";
import { ROOT } from "./platform.mjs";

// The README's command itself: `npm start` (prestart builds the web UI, then scripts/start.mts), on a
// data directory and ports of its own, stopped by a signal as Ctrl-C or a service manager would.
const dataDir = mkdtempSync(join(tmpdir(), "titanium-npm-start-"));
chmodSync(dataDir, 0o755); // PostgreSQL runs as its own user when the tests run as root
let running: ChildProcess | undefined;
afterAll(() => {
  running?.kill("SIGKILL");
  rmSync(dataDir, { recursive: true, force: true });
});

/** `npm start` until it says it is up; its output, and a stop that sends SIGTERM and waits for the exit code. */
async function npmStart(port: number): Promise<{ output: () => string; stop: () => Promise<number | null> }> {
  const child = spawn("npm", ["start", "--silent"], {
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
    // Every component's lines, tagged with its name (the gateway's first line may follow the "up" line).
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

    // The same data directory: the account is still there.
    const second = await npmStart(port);
    const login = await fetch(`${base}/api/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username, password: "Str0ng!pass" }),
    });
    expect(login.status).toBe(200);
    expect(await second.stop()).toBe(0);
  }, 180_000);

  it("refuses a bad PORT or TITANIUM_SERVICE_PORTS before starting anything, naming the variable", async () => {
    const run = (env: Record<string, string>) =>
      new Promise<{ code: number | null; out: string }>((resolve) => {
        const child = spawn(process.execPath, ["--import", "tsx", "scripts/start.mts"], { cwd: ROOT, env: { ...process.env, TITANIUM_DATA_DIR: dataDir, ...env } });
        let out = "";
        child.stderr.on("data", (d: Buffer) => (out += d.toString()));
        child.once("exit", (code) => resolve({ code, out }));
      });
    expect(await run({ PORT: "eighty" })).toMatchObject({ code: 2, out: expect.stringContaining('PORT: expected a port number, got "eighty"') });
    expect(await run({ PORT: "0", TITANIUM_SERVICE_PORTS: "random" })).toMatchObject({ code: 2, out: expect.stringContaining('TITANIUM_SERVICE_PORTS: expected "any" or "original"') });
  }, 60_000);
});
