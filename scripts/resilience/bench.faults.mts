/**
 * `npm run bench` still runs end to end, in a short run (BENCH_DURATION=1): every scenario measured without
 * errors, the report's tables whole, the platform stopped and its data directory gone. The numbers are not
 * judged here (one second on a shared host says nothing about them): docs/benchmarks.md does that.
 */
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { describe, expect, it } from "vitest";
import { ROOT } from "../platform.mjs";

/** The rows of the Markdown table whose header starts with `header`, as trimmed cells. */
function table(markdown: string, header: string): string[][] {
  const lines = markdown.split("\n");
  const start = lines.findIndex((l) => l.startsWith(header));
  if (start < 0) return [];
  const rows: string[][] = [];
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith("|")) break;
    rows.push(line.slice(1, -1).split("|").map((c) => c.trim()));
  }
  return rows;
}

const benchDirs = () => readdirSync(tmpdir()).filter((f) => f.startsWith("titanium-bench-"));

describe("npm run bench", () => {
  it("measures every scenario without errors and prints the whole report", () => {
    const before = new Set(benchDirs());
    const run = spawnSync(process.execPath, ["--import", "tsx", "scripts/bench.mts"], {
      cwd: ROOT,
      env: { ...process.env, BENCH_DURATION: "1" },
      encoding: "utf8",
      timeout: 200_000,
    });
    expect(run.status, `${run.stderr.slice(-3000)}\n${run.stdout.slice(-2000)}`).toBe(0);
    const scenarios = table(run.stdout, "| scenario |");
    expect(scenarios.map((r) => r[0])).toEqual([
      "baseline: bare Hono GET /",
      "cached posts list via gateway",
      "single post via gateway",
      "authenticated create via gateway",
      "login via gateway (Argon2id)",
      "list probe, idle",
      "list probe, logins flat out",
      "login flat out (during probe)",
    ]);
    for (const [name, , rps, p50, p99, errors] of scenarios) {
      expect(Number(rps), `${name} req/s`).toBeGreaterThan(0);
      expect(Number(p50), `${name} p50`).toBeGreaterThan(0);
      expect(Number(p99), `${name} p99`).toBeGreaterThanOrEqual(Number(p50));
      expect(errors, `${name} errors`).toBe("0");
    }
    expect(table(run.stdout, "| cached list: CPU per request |").map((r) => r[0])).toEqual(["api-gateway", "blog-service", "redis", "(baseline, whole process)"]);
    const rss = table(run.stdout, "| service |");
    expect(rss.map((r) => r[0]).sort()).toEqual(["api-gateway", "auth-service", "blog-service", "user-service"]);
    for (const [service, atStop, idle] of rss) expect([Number(atStop), Number(idle)].every((mb) => mb > 20), service).toBe(true);
    expect(table(run.stdout, "| target |")).toHaveLength(5);
    // Its fresh data directory is removed when it ends (the platform stopped first).
    expect(benchDirs().filter((d) => !before.has(d))).toEqual([]);
  }, 240_000);
});
