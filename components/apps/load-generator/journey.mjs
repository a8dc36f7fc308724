// Synthetic user journeys against the public entry (the Istio ingress gateway), so the dashboards
// show real traffic: sign up, log in, list posts, read one, create one, list categories.
// Plain Node.js (no dependencies): the load-generator pod runs it from a ConfigMap.
//
// Environment:
//   TARGET_URL      base URL, e.g. https://istio-ingressgateway.istio-system.svc.cluster.local
//   HOST_HEADER     public host name to send (Host and TLS SNI); empty: the target's own host
//   TLS_INSECURE    "true" to accept the gateway's certificate without verification (self-signed, IP-only)
//   RPS             requests per second, all journeys together (default 2)
//   MAX_USERS       synthetic accounts kept and reused (default 20)
import http from "node:http";
import https from "node:https";
import { randomBytes } from "node:crypto";
import { pathToFileURL } from "node:url";

/** A small HTTP client bound to one target, sending JSON. */
export function createClient({ targetUrl, hostHeader = "", insecure = false, timeoutMs = 10_000 }) {
  const target = new URL(targetUrl);
  const lib = target.protocol === "https:" ? https : http;
  return function request(method, path, { body, token } = {}) {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers = { accept: "application/json", "user-agent": "titanium-load-generator/1" };
    if (hostHeader) headers.host = hostHeader;
    if (payload !== undefined) {
      headers["content-type"] = "application/json";
      headers["content-length"] = Buffer.byteLength(payload);
    }
    if (token) headers.authorization = `Bearer ${token}`;
    return new Promise((resolve, reject) => {
      const req = lib.request(
        {
          protocol: target.protocol,
          hostname: target.hostname,
          port: target.port || undefined,
          path,
          method,
          headers,
          timeout: timeoutMs,
          ...(target.protocol === "https:" ? { servername: hostHeader || target.hostname, rejectUnauthorized: !insecure } : {}),
        },
        (res) => {
          const chunks = [];
          res.on("data", (c) => chunks.push(c));
          res.on("end", () => {
            const text = Buffer.concat(chunks).toString("utf8");
            let json;
            try {
              json = text ? JSON.parse(text) : undefined;
            } catch {
              json = undefined;
            }
            resolve({ status: res.statusCode ?? 0, json });
          });
        },
      );
      req.on("timeout", () => req.destroy(new Error(`timeout after ${timeoutMs} ms: ${method} ${path}`)));
      req.on("error", reject);
      if (payload !== undefined) req.write(payload);
      req.end();
    });
  };
}

/** A fresh synthetic account that passes the signup rules (letters, digits, underscore; strong password). */
export function newAccount() {
  const id = randomBytes(5).toString("hex");
  return {
    username: `loadbot_${id}`,
    email: `loadbot_${id}@example.com`,
    password: `Lg-${randomBytes(6).toString("base64url")}a1A!`,
  };
}

function expectStatus(step, res, ...ok) {
  if (!ok.includes(res.status)) throw new Error(`${step}: HTTP ${res.status}${res.json?.message ? ` (${res.json.message})` : ""}`);
  return res;
}

/**
 * Every journey comes from the one load-generator pod, i.e. one client address to the api-gateway,
 * whose production limits per address are 10 signups and 5 logins a minute
 * (services/api-gateway/src/routes.ts RATE_LIMITS; real-services.test.mts holds these in step). So it
 * behaves like real clients: an account logs in once and keeps its access token until shortly before
 * it expires, and new accounts are signed up no faster than both limits allow: each signup is followed
 * by that account's login, so one every 12 s (5 logins a minute) is the pace, not the signups' 6 s.
 */
export const SIGNUP_INTERVAL_MS = 12_000;
/** Log in again this long before the access token expires. */
export const TOKEN_RENEW_MARGIN_MS = 30_000;

/**
 * One journey. `state.users` is the pool of accounts created so far (each with its session once
 * logged in); a new one is signed up while the pool is below `maxUsers` and the last signup is
 * `signupIntervalMs` old. Returns the steps taken; throws on the first unexpected answer.
 * `pace()` is awaited before every request (the rate limiter).
 */
export async function runJourney(request, state, { maxUsers = 20, pace = async () => {}, signupIntervalMs = SIGNUP_INTERVAL_MS, now = Date.now } = {}) {
  const steps = [];
  let user;
  const call = async (step, method, path, opts, ...ok) => {
    await pace();
    const res = await request(method, path, opts);
    // A refused token (revoked, or the auth-service's keys rotated): log in afresh next time.
    if (res.status === 401 && opts.token) delete user.session;
    expectStatus(step, res, ...ok);
    steps.push(step);
    return res;
  };

  const signupDue = state.users.length < maxUsers && (state.users.length === 0 || now() - (state.lastSignup ?? 0) >= signupIntervalMs);
  if (signupDue) {
    user = newAccount();
    state.lastSignup = now();
    await call("signup", "POST", "/api/users", { body: user }, 201);
    state.users.push(user);
  } else {
    user = state.users[Math.floor(Math.random() * state.users.length)];
  }

  if (!user.session || user.session.expiresAt - TOKEN_RENEW_MARGIN_MS <= now()) {
    const login = await call("login", "POST", "/api/login", { body: { username: user.username, password: user.password } }, 200);
    const fresh = login.json?.token;
    if (typeof fresh !== "string" || fresh.length === 0) throw new Error("login: no token in the answer");
    user.session = { token: fresh, expiresAt: now() + Number(login.json?.expires_in ?? 0) * 1000 };
  }
  const token = user.session.token;

  const list = await call("list", "GET", "/blog/api/posts?limit=10", {}, 200);
  if (!Array.isArray(list.json)) throw new Error("list: expected an array of posts");
  if (list.json.length > 0) {
    const pick = list.json[Math.floor(Math.random() * list.json.length)];
    await call("read", "GET", `/blog/api/posts/${pick.id}`, {}, 200);
  }

  await call("categories", "GET", "/blog/api/categories", {}, 200);

  const created = await call(
    "create",
    "POST",
    "/blog/api/posts",
    {
      token,
      body: {
        title: `Load test ${new Date().toISOString()}`,
        content: `Synthetic post by ${user.username}: traffic for the dashboards.`,
        category_name: "Test",
      },
    },
    201,
  );
  const id = created.json?.id;
  if (id === undefined) throw new Error("create: no id in the answer");
  await call("read-created", "GET", `/blog/api/posts/${id}`, {}, 200);
  return steps;
}

/** Spaces requests `1000 / rps` ms apart. */
export function pacer(rps) {
  const interval = 1000 / rps;
  let next = Date.now();
  return async () => {
    const wait = next - Date.now();
    next = Math.max(next, Date.now()) + interval;
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  };
}

async function main() {
  const env = process.env;
  if (!env.TARGET_URL) throw new Error("TARGET_URL is required");
  const rps = Number(env.RPS ?? "2");
  if (!(rps > 0)) throw new Error("RPS must be a positive number");
  const request = createClient({ targetUrl: env.TARGET_URL, hostHeader: env.HOST_HEADER ?? "", insecure: env.TLS_INSECURE === "true" });
  const state = { users: [] };
  const pace = pacer(rps);
  let stopping = false;
  process.on("SIGTERM", () => {
    stopping = true;
  });
  let failures = 0;
  while (!stopping) {
    const started = Date.now();
    try {
      const steps = await runJourney(request, state, { maxUsers: Number(env.MAX_USERS ?? "20"), pace });
      failures = 0;
      console.log(JSON.stringify({ level: "info", msg: "journey ok", steps, ms: Date.now() - started }));
    } catch (err) {
      failures += 1;
      console.log(JSON.stringify({ level: "warn", msg: "journey failed", error: String(err?.message ?? err), failures }));
      // Back off while the platform is down instead of hammering it.
      await new Promise((r) => setTimeout(r, Math.min(30_000, 1000 * 2 ** Math.min(failures, 5))));
    }
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
