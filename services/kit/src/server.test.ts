import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const fixture = fileURLToPath(new URL("./testing/slow-server.ts", import.meta.url));

function startFixture(env: Record<string, string>) {
  const child = spawn(process.execPath, ["--import", "tsx", fixture], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const lines: string[] = [];
  const port = new Promise<number>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on("line", (l) => {
      lines.push(l);
      const m = /"listening":(\d+)/.exec(l);
      if (m) resolve(Number(m[1]));
    });
    child.once("exit", (code) => reject(new Error(`fixture exited ${code}`)));
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, port, exited, lines };
}

describe("graceful shutdown (real process, real SIGTERM)", () => {
  it("finishes the request in flight, turns readiness off, refuses new connections, runs closers, exits 0", async () => {
    const f = startFixture({ SHUTDOWN_GRACE_MS: "5000" });
    const port = await f.port;
    const base = `http://127.0.0.1:${port}`;
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    const inflight = fetch(`${base}/slow?ms=700`);
    await new Promise((r) => setTimeout(r, 150));
    f.child.kill("SIGTERM");
    const res = await inflight;
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ done: true });
    expect(await f.exited).toBe(0);
    await expect(fetch(`${base}/healthz`)).rejects.toThrow();
    const log = f.lines.join("\n");
    expect(log).toContain('"msg":"draining"');
    expect(log).toContain('"msg":"closer ran"');
  });

  it("cuts a request that outlives the grace and still exits 0", async () => {
    const f = startFixture({ SHUTDOWN_GRACE_MS: "200" });
    const port = await f.port;
    const inflight = fetch(`http://127.0.0.1:${port}/slow?ms=5000`).then(
      (r) => r.status,
      () => "cut",
    );
    await new Promise((r) => setTimeout(r, 150));
    const started = Date.now();
    f.child.kill("SIGTERM");
    expect(await f.exited).toBe(0);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(await inflight).toBe("cut");
  });
});
