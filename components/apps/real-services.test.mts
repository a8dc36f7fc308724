import { spawn } from "node:child_process";
import { once } from "node:events";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Platform, startPlatform, testPlatformEnv } from "../../scripts/platform.mjs";
import { SERVICE_NAMES } from "../../stacks/config.js";
import { HEALTH_PATHS } from "./ingress.js";
import { HEALTH } from "./titanium-service.js";
import { VERIFY_CREDENTIALS_PATH } from "./topology.js";
// @ts-expect-error -- plain JavaScript shipped in a ConfigMap; no declarations
import { createClient, newAccount, pacer, runJourney, SIGNUP_INTERVAL_MS } from "./load-generator/journey.mjs";
import { RATE_LIMITS } from "../../services/api-gateway/src/routes.js";

// The application layer against the real services (the local platform: real PostgreSQL and Redis, the four
// services built for production, everything through the api-gateway), so the field names, status codes
// and token handling are the services' own: the original's generator used `category` for
// `category_name` and never found its token.
const dataDir = mkdtempSync(path.join(tmpdir(), "titanium-journeys-"));
chmodSync(dataDir, 0o755); // PostgreSQL runs as its own user when the tests run as root
let platform: Platform;

beforeAll(async () => {
  platform = await startPlatform({
    dataDir,
    gatewayPort: 0,
    servicePorts: { "user-service": 0, "auth-service": 0, "blog-service": 0 },
    // These tests run more journeys a minute, from this one address, than the pod does.
    env: testPlatformEnv({ "api-gateway": { RATE_LIMIT_SCALE: "100" } }),
    log: () => {},
  });
}, 120_000);

afterAll(async () => {
  await platform?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

describe("load generator journeys (real services)", () => {
  it("signs up, logs in, lists, reads and creates; later journeys reuse the accounts", async () => {
    const request = createClient({ targetUrl: platform.url, hostHeader: new URL(platform.url).host });
    const state = { users: [] as unknown[] };
    expect(await runJourney(request, state, { maxUsers: 1 })).toEqual(["signup", "login", "list", "categories", "create", "read-created"]);
    // The pool is full: an existing user, still logged in; the post created above is there to read now.
    expect(await runJourney(request, state, { maxUsers: 1 })).toEqual(["list", "read", "categories", "create", "read-created"]);
    expect(state.users).toHaveLength(1);
  }, 90_000);

  it("stays within the gateway's production limits per address: sessions are kept, signups spaced", async () => {
    // One pod is one client address: its logins and signups must fit RATE_LIMITS at any rate.
    // Each signup brings its account's login: the spacing must fit both limits.
    const perMinute = (rule: { limit: number; periodSeconds: number }) => (rule.periodSeconds * 1000) / rule.limit;
    expect(SIGNUP_INTERVAL_MS).toBeGreaterThanOrEqual(Math.max(perMinute(RATE_LIMITS.signup), perMinute(RATE_LIMITS.login)));
    const request = createClient({ targetUrl: platform.url });
    const state = { users: [] as unknown[] };
    let clock = 0;
    const steps: string[] = [];
    // 30 journeys over a simulated minute (one every 2 s): signups spaced, one login per account, each
    // within what the gateway allows one address in a minute.
    for (let i = 0; i < 30; i++) {
      clock = i * 2_000;
      steps.push(...((await runJourney(request, state, { maxUsers: 20, now: () => clock })) as string[]));
    }
    const signups = steps.filter((s) => s === "signup").length;
    const logins = steps.filter((s) => s === "login").length;
    expect(signups).toBeGreaterThan(0);
    expect(signups).toBeLessThanOrEqual(RATE_LIMITS.signup.limit);
    expect(logins).toBe(signups);
    expect(logins).toBeLessThanOrEqual(RATE_LIMITS.login.limit);
    // An access token close to expiry is renewed by logging in again.
    clock += 24 * 3600 * 1000;
    expect(await runJourney(request, state, { maxUsers: 10, now: () => clock })).toContain("login");
  });

  it("fails loudly on an unexpected answer", async () => {
    const request = createClient({ targetUrl: platform.url });
    const state = { users: [{ ...newAccount(), password: "Not-the-passw0rd!" }] };
    await expect(runJourney(request, state, { maxUsers: 1 })).rejects.toThrow("login: HTTP 401");
  });

  it("runs as the container does (environment only) and stops on SIGTERM", async () => {
    const child = spawn(process.execPath, [path.join(import.meta.dirname, "load-generator", "journey.mjs")], {
      env: { PATH: process.env.PATH, TARGET_URL: platform.url, RPS: "50", MAX_USERS: "2" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    for (let i = 0; i < 600 && !out.includes("journey ok"); i++) await new Promise((r) => setTimeout(r, 50));
    child.kill("SIGTERM");
    const [code] = (await once(child, "exit")) as [number | null];
    expect(out).toContain('"msg":"journey ok"');
    expect(out).not.toContain("journey failed");
    expect(code).toBe(0);
  });

  it("every service answers the probe and metrics paths its Deployment uses; the public health routes answer", async () => {
    for (const svc of SERVICE_NAMES) {
      for (const p of [HEALTH.live, HEALTH.ready, HEALTH.metrics]) {
        const res = await fetch(`${platform.services[svc].url}${p}`);
        expect(res.status, `${svc} ${p}`).toBe(200);
      }
    }
    for (const p of HEALTH_PATHS) expect((await fetch(`${platform.url}${p}`)).status, p).toBe(200);
    // The cluster's ingress sends the site's /health to the blog-service, whose answer is the original's.
    expect(await (await fetch(`${platform.services["blog-service"].url}/health`)).json()).toEqual({ status: "ok", service: "blog-service" });
  });

  it("the user-service's credential check is where the auth-service's AuthorizationPolicy rule lets it call", async () => {
    const doc = (await (await fetch(`${platform.services["user-service"].url}/openapi.json`)).json()) as { paths: Record<string, Record<string, unknown>> };
    expect(Object.keys(doc.paths[VERIFY_CREDENTIALS_PATH] ?? {})).toEqual(["post"]);
  });

  it("paces requests at the configured rate", async () => {
    const pace = pacer(50);
    const started = Date.now();
    for (let i = 0; i < 6; i++) await pace();
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(5 * 20 - 5);
    // Not much slower either (a pacer waiting a second per request would feed the dashboards 1/s); wide for a busy host.
    expect(elapsed).toBeLessThan(1000);
  });
});
