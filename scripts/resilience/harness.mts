/**
 * What the resilience scenarios share: a local platform on a fresh data directory with free ports, an
 * ingress for several gateways, a small HTTP client that never throws on a status, and process readings
 * (RSS) by pid.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { Agent, createServer, request, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { HOP_BY_HOP_HEADERS } from "../../services/api-gateway/src/proxy.js";
import { UpstreamPool } from "../../services/kit/src/upstream-pool.js";
import { startPlatform, testPlatformEnv, type Platform, type PlatformOptions } from "../platform.mjs";

export { rssMb } from "../platform.mjs";

export const PASSWORD = "Str0ng!pass-resilience";

export interface TestPlatform extends Platform {
  /** Every log line, `<source> | <line>`. */
  lines: string[];
  /** The platform's data directory (PostgreSQL cluster, `jwt-private-key.pem`): attack tests sign with its key. */
  dataDir: string;
  /** Stops everything and removes the data directory. */
  dispose: () => Promise<void>;
}

export async function startTestPlatform(opts: Partial<PlatformOptions> = {}): Promise<TestPlatform> {
  const dataDir = mkdtempSync(join(tmpdir(), "titanium-resilience-"));
  chmodSync(dataDir, 0o755); // PostgreSQL runs as its own user when the tests run as root
  const lines: string[] = [];
  const platform = await startPlatform({
    dataDir,
    gatewayPort: 0,
    servicePorts: { "user-service": 0, "auth-service": 0, "blog-service": 0 },
    log: (source, line) => lines.push(`${source} | ${line}`),
    ...opts,
    env: testPlatformEnv(opts.env),
  });
  return {
    ...platform,
    lines,
    dataDir,
    dispose: async () => {
      await platform.stop();
      // Kept for a post-mortem of a failed run (git-ignored scratch space).
      if (process.env.RESILIENCE_LOG) writeFileSync(process.env.RESILIENCE_LOG, lines.join("\n"));
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

const HOP_BY_HOP = new Set(HOP_BY_HOP_HEADERS);
const withoutHopByHop = (h: IncomingHttpHeaders) => Object.fromEntries(Object.entries(h).filter(([k, v]) => v !== undefined && !HOP_BY_HOP.has(k)));

/**
 * A stand-in for the Istio ingress in front of several gateways, no more forgiving than Envoy with the
 * ingress's routes (components/apps/ingress.ts ROUTE_POLICY): it sends each request to a gateway whose
 * `/readyz` answers 200 (Envoy learns readiness from the endpoints; here the kit's UpstreamPool probes every
 * 500 ms), and sends a request whose connection was refused to another gateway (the routes' retries, reads
 * and writes alike, are on `connect-failure,refused-stream` only). Nothing else is retried:
 * a reset or a broken answer reaches the client as a failure. Headers pass unchanged but hop-by-hop ones.
 */
export async function startIngress(gateways: readonly string[]): Promise<{ url: string; stop: () => Promise<void> }> {
  const pool = new UpstreamPool(gateways);
  const agent = new Agent({ keepAlive: true });
  const attempt = (base: string, req: IncomingMessage, body: Buffer) =>
    new Promise<IncomingMessage>((resolve, reject) =>
      request(`${base}${req.url ?? "/"}`, { method: req.method, headers: { ...withoutHopByHop(req.headers), "content-length": String(body.length) }, agent }, resolve)
        .once("error", reject)
        .end(body),
    );
  const proxy = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    const tried = new Set<ReturnType<UpstreamPool["pick"]>>();
    for (;;) {
      const inst = pool.pick(tried);
      tried.add(inst);
      try {
        const up = await attempt(inst.base, req, body);
        res.writeHead(up.statusCode ?? 502, withoutHopByHop(up.headers));
        await pipeline(up, res);
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ECONNREFUSED" && tried.size < pool.instances.length) {
          pool.eject(inst);
          continue;
        }
        if (!res.headersSent) res.writeHead(503, { "content-type": "text/plain" }).end(`ingress: ${(err as Error).message}`);
        else res.destroy();
        return;
      }
    }
  };
  const server = createServer((req, res) => void proxy(req, res).catch(() => res.destroy()));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stop: async () => {
      pool.stop();
      agent.destroy();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

export interface Reply {
  status: number;
  headers: Headers;
  text: string;
  /** Parsed JSON body, or undefined when the body is not JSON. */
  json: unknown;
}

export interface CallOptions {
  body?: unknown;
  /** A raw body (string or bytes), sent as is. */
  raw?: string | Uint8Array;
  token?: string;
  headers?: Record<string, string>;
  timeoutMs?: number;
}

/** One request; network errors and timeouts become status 0 with the error in `text`. */
export async function call(base: string, method: string, path: string, o: CallOptions = {}): Promise<Reply> {
  const headers: Record<string, string> = { ...o.headers };
  if (o.body !== undefined || o.raw !== undefined) headers["content-type"] ??= "application/json";
  if (o.token) headers.authorization = `Bearer ${o.token}`;
  try {
    const res = await fetch(`${base}${path}`, {
      method,
      headers,
      body: o.raw ?? (o.body !== undefined ? JSON.stringify(o.body) : undefined),
      signal: AbortSignal.timeout(o.timeoutMs ?? 15_000),
    });
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, text, json };
  } catch (err) {
    return { status: 0, headers: new Headers(), text: String(err), json: undefined };
  }
}

/** Signs up and logs in a user through the gateway; returns its tokens. */
export async function newUser(base: string, username: string): Promise<{ token: string; refresh: string }> {
  const signup = await call(base, "POST", "/api/register", { body: { username, email: `${username}@example.com`, password: PASSWORD } });
  if (signup.status !== 201) throw new Error(`signup ${username}: ${signup.status} ${signup.text}`);
  const login = await call(base, "POST", "/api/login", { body: { username, password: PASSWORD } });
  if (login.status !== 200) throw new Error(`login ${username}: ${login.status} ${login.text}`);
  const body = login.json as { token: string; refresh_token: string };
  return { token: body.token, refresh: body.refresh_token };
}


/** True when the body is the platform's error envelope. */
export function isEnvelope(json: unknown, status: number): boolean {
  const e = json as Record<string, unknown> | undefined;
  return !!e && typeof e.error === "string" && typeof e.message === "string" && e.status_code === status && typeof e.request_id === "string";
}

/** Probes and scrapes (pools poll /readyz, tests read /metrics): not load. */
const PROBE_ROUTES = new Set(["/readyz", "/healthz", "/metrics"]);

/**
 * The requests a service instance has answered, by route pattern (its /metrics `http_requests_total`,
 * summed over methods and statuses; probes and scrapes left out); undefined when unreadable.
 */
export async function requestsByRoute(url: string): Promise<Map<string, number> | undefined> {
  const r = await call(url, "GET", "/metrics", { timeoutMs: 2_000 });
  if (r.status !== 200) return undefined;
  const counts = new Map<string, number>();
  for (const line of r.text.split("\n")) {
    const m = /^http_requests_total\{([^}]*)\} ([0-9.e+]+)$/.exec(line);
    const route = m && /route="([^"]*)"/.exec(m[1]!)?.[1];
    if (route !== undefined && route !== null && !PROBE_ROUTES.has(route)) counts.set(route, (counts.get(route) ?? 0) + Number(m![2]));
  }
  return counts;
}
