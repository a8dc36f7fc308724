import { spawn } from "node:child_process";
import { once } from "node:events";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
// @ts-expect-error -- plain JavaScript shipped in a ConfigMap; no declarations
import { createClient, newAccount, pacer, runJourney } from "./journey.mjs";

/**
 * A strict stand-in for the public API's contract (seed-system §1: field names, status codes,
 * Bearer tokens), so the journey is proven to send what the services accept: the original's
 * generator used `category` for `category_name` and never found its token.
 */
function contractServer() {
  const users = new Map<string, { password: string; email: string }>();
  const posts: { id: number; title: string; content: string; author: string }[] = [{ id: 1, title: "Hello", content: "First", author: "seed" }];
  const seen: { method: string; path: string; host: string }[] = [];
  const body = async (req: IncomingMessage) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return chunks.length ? (JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown>) : {};
  };
  const server = createServer(async (req, res) => {
    const url = new URL(req.url!, "http://x");
    seen.push({ method: req.method!, path: url.pathname, host: req.headers.host ?? "" });
    const send = (status: number, json: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(json));
    };
    const b = req.method === "POST" ? await body(req) : {};
    if (req.method === "POST" && url.pathname === "/api/users") {
      const { username, email, password } = b as Record<string, string>;
      if (!/^[A-Za-z0-9_]{3,50}$/.test(username ?? "")) return send(422, { error: "username" });
      if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email ?? "")) return send(422, { error: "email" });
      if (!(password && password.length >= 8 && /[A-Z]/.test(password) && /[a-z]/.test(password) && /\d/.test(password) && /[!@#$%^&*(),.?":{}|<>]/.test(password)))
        return send(422, { error: "password" });
      if (users.has(username!)) return send(400, { message: "Username already exists" });
      users.set(username!, { password: password, email: email! });
      return send(201, { id: users.size, username, email });
    }
    if (req.method === "POST" && url.pathname === "/api/login") {
      const { username, password } = b as Record<string, string>;
      if (users.get(username ?? "")?.password !== password) return send(401, { status: "failed", message: "Invalid username or password" });
      return send(200, { status: "success", token: `token-${username}`, refresh_token: "r", expires_in: 900, token_type: "Bearer" });
    }
    if (req.method === "GET" && url.pathname === "/blog/api/posts") return send(200, posts.slice(0, Number(url.searchParams.get("limit") ?? 20)));
    if (req.method === "GET" && url.pathname === "/blog/api/categories") return send(200, [{ id: 3, name: "Test", slug: "test", color: "#757575", post_count: 1 }]);
    const one = /^\/blog\/api\/posts\/(\d+)$/.exec(url.pathname);
    if (req.method === "GET" && one) {
      const post = posts.find((p) => p.id === Number(one[1]));
      return post ? send(200, post) : send(404, { message: "Post not found" });
    }
    if (req.method === "POST" && url.pathname === "/blog/api/posts") {
      const auth = /^Bearer token-(\w+)$/.exec(req.headers.authorization ?? "");
      if (!auth || !users.has(auth[1]!)) return send(401, { message: "Authorization header missing or invalid" });
      const { title, content, category_name } = b as Record<string, string>;
      if (!title || !content || !category_name) return send(422, { error: "title, content and category_name are required" });
      const post = { id: posts.length + 1, title, content, author: auth[1]! };
      posts.push(post);
      return send(201, post);
    }
    send(404, { message: "not found" });
  });
  return { server, seen, users, posts };
}

const servers: Server[] = [];
async function start() {
  const s = contractServer();
  s.server.listen(0, "127.0.0.1");
  await once(s.server, "listening");
  servers.push(s.server);
  return { ...s, url: `http://127.0.0.1:${(s.server.address() as AddressInfo).port}` };
}
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

describe("load generator journeys", () => {
  it("signs up, logs in, lists, reads and creates with the API's real field names and the token", async () => {
    const api = await start();
    const request = createClient({ targetUrl: api.url, hostHeader: "titanium.example.com" });
    const state = { users: [] as unknown[] };
    const steps = await runJourney(request, state, { maxUsers: 1 });
    expect(steps).toEqual(["signup", "login", "list", "read", "categories", "create", "read-created"]);
    expect(api.posts).toHaveLength(2);
    expect(api.seen.every((r) => r.host === "titanium.example.com")).toBe(true);
    // The pool is full: the next journey logs an existing user in instead of signing up.
    expect((await runJourney(request, state, { maxUsers: 1 }))[0]).toBe("login");
    expect(api.users.size).toBe(1);
  });

  it("fails loudly on an unexpected answer", async () => {
    const api = await start();
    const request = createClient({ targetUrl: api.url });
    const state = { users: [{ ...newAccount(), password: "not-the-password" }] };
    await expect(runJourney(request, state, { maxUsers: 1 })).rejects.toThrow("login: HTTP 401");
  });

  it("paces requests at the configured rate", async () => {
    const pace = pacer(50);
    const started = Date.now();
    for (let i = 0; i < 6; i++) await pace();
    expect(Date.now() - started).toBeGreaterThanOrEqual(5 * 20 - 5);
  });

  it("runs as the container does (env only) and stops on SIGTERM", async () => {
    const api = await start();
    const child = spawn(process.execPath, [path.join(__dirname, "journey.mjs")], {
      env: { PATH: process.env.PATH, TARGET_URL: api.url, HOST_HEADER: "titanium.example.com", RPS: "100" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    for (let i = 0; i < 100 && !out.includes("journey ok"); i++) await new Promise((r) => setTimeout(r, 50));
    child.kill("SIGTERM");
    const [code] = (await once(child, "exit")) as [number | null];
    expect(out).toContain('"msg":"journey ok"');
    expect(code).toBe(0);
  });
});
