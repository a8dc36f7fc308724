// The UI's API client against a scripted server: quiet token refresh (ahead of expiry, on 401, shared by
// concurrent requests), session expiry, and how errors reach the user. The browser tests run the same code
// against the real services; these pin the timing cases a real server cannot be made to hit on demand.
import { describe, expect, it } from "vitest";
import { API, ApiClient, ApiError, parseErrorBody, REFRESH_MARGIN_MS, storedLength, TOTAL_HEADER } from "../src/app/api.js";
import { Session, type SessionData } from "../src/app/session.js";
import { MemoryStore } from "./memory-store.js";


interface Call {
  method: string;
  url: string;
  auth: string | null;
  body: unknown;
}

type Handler = (call: Call) => Response | Promise<Response>;

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(body === null ? null : JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json", ...headers },
  });
}

function setup(handler: Handler, opts: { now?: number; session?: SessionData } = {}) {
  const calls: Call[] = [];
  const session = new Session(new MemoryStore());
  if (opts.session) session.set(opts.session);
  let expired = 0;
  const now = opts.now ?? 1_000_000;
  const api = new ApiClient({
    session,
    now: () => now,
    onSessionExpired: () => {
      expired += 1;
    },
    fetch: async (url, init) => {
      const headers = new Headers(init?.headers);
      const call: Call = {
        method: init?.method ?? "GET",
        url,
        auth: headers.get("Authorization"),
        body: typeof init?.body === "string" ? JSON.parse(init.body) : undefined,
      };
      calls.push(call);
      return handler(call);
    },
  });
  return { api, session, calls, expiredCount: () => expired, now };
}

const post = {
  id: 7,
  title: "t",
  content: "c",
  author: "alice",
  created_at: "2026-01-01T00:00:00Z",
  updated_at: "2026-01-01T00:00:00Z",
  category: { id: 1, name: "Test", slug: "test" },
};

describe("ApiClient: login and logout", () => {
  it("stores the tokens with their expiry and the server's spelling of the username", async () => {
    const { api, session, calls, now } = setup((c) => {
      if (c.url === API.login) return json(200, { status: "success", token: "a1", refresh_token: "r1", expires_in: 900, token_type: "Bearer" });
      if (c.url === API.me) return json(200, { id: 1, username: "Alice" });
      return json(404, {});
    });
    const changes: unknown[] = [];
    session.subscribe((d) => changes.push(d));
    const s = await api.login("alice", "pw");
    expect(s).toEqual({ token: "a1", refreshToken: "r1", expiresAt: now + 900_000, username: "Alice" });
    expect(session.get()).toEqual(s);
    expect(changes).toEqual([s]); // stored once, complete: the header never shows a half-signed-in state
    expect(calls.map((c) => [c.url, c.auth])).toEqual([
      [API.login, null],
      [API.me, "Bearer a1"],
    ]);
  });

  it("reports a wrong password as unauthorized and stores nothing", async () => {
    const { api, session } = setup(() => json(401, { status: "failed", message: "Invalid username or password" }));
    const err = await api.login("alice", "bad").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).kind).toBe("unauthorized");
    expect(session.get()).toBeNull();
  });

  it("logout revokes the refresh token and clears the session even when the server is down", async () => {
    const s: SessionData = { token: "a1", refreshToken: "r1", expiresAt: null, username: "alice" };
    const ok = setup(() => json(204, null), { session: s });
    await ok.api.logout();
    expect(ok.session.get()).toBeNull();
    expect(ok.calls).toEqual([{ method: "POST", url: API.logout, auth: "Bearer a1", body: { refresh_token: "r1" } }]);

    const down = setup(() => Promise.reject(new TypeError("fetch failed")), { session: s });
    await down.api.logout();
    expect(down.session.get()).toBeNull();
  });
});

describe("ApiClient: quiet token refresh", () => {
  it("refreshes ahead of expiry, then sends the request with the new token", async () => {
    const { api, session, calls, now } = setup(
      (c) => {
        if (c.url === API.refresh) return json(200, { token: "a2", refresh_token: "r2", expires_in: 900 });
        return json(201, post);
      },
      { session: { token: "a1", refreshToken: "r1", expiresAt: 1_000_000 + REFRESH_MARGIN_MS - 1, username: "alice" } },
    );
    await api.createPost({ title: "t", content: "c", category_name: "Test" });
    expect(calls.map((c) => [c.url, c.auth, c.body])).toEqual([
      [API.refresh, null, { refresh_token: "r1" }],
      [API.posts, "Bearer a2", { title: "t", content: "c", category_name: "Test" }],
    ]);
    expect(session.get()).toMatchObject({ token: "a2", refreshToken: "r2", expiresAt: now + 900_000 });
  });

  it("does not refresh a token that is still fresh", async () => {
    const { api, calls } = setup(() => json(201, post), {
      session: { token: "a1", refreshToken: "r1", expiresAt: 1_000_000 + REFRESH_MARGIN_MS + 1, username: "alice" },
    });
    await api.createPost({ title: "t", content: "c", category_name: "Test" });
    expect(calls.map((c) => c.url)).toEqual([API.posts]);
  });

  it("inside the early-refresh window, a refresh that fails leaves the request to go with the still-valid token", async () => {
    const aging: SessionData = { token: "a1", refreshToken: "r1", expiresAt: 1_000_000 + REFRESH_MARGIN_MS - 1, username: "alice" };
    const failures: [string, () => Response | Promise<Response>][] = [
      ["network", () => Promise.reject(new TypeError("fetch failed"))],
      ["429", () => json(429, { message: "Too Many Requests" }, { "Retry-After": "5" })],
      ["503", () => json(503, { message: "Service Unavailable" })],
    ];
    for (const [name, fail] of failures) {
      const { api, session, calls, expiredCount } = setup((c) => (c.url === API.refresh ? fail() : json(200, post)), { session: aging });
      const saved = await api.updatePost(7, { title: "t" });
      expect(saved.id, name).toBe(7);
      expect(calls.map((c) => [c.url, c.auth]), name).toEqual([
        [API.refresh, null],
        [`${API.posts}/7`, "Bearer a1"],
      ]);
      // The refresh token is kept: the next request tries again.
      expect(session.get(), name).toEqual(aging);
      expect(expiredCount(), name).toBe(0);
    }
  });

  it("inside the early-refresh window, a refused refresh keeps the session until its token expires, then ends it", async () => {
    let now = 1_000_000;
    const calls: string[] = [];
    const session = new Session(new MemoryStore());
    session.set({ token: "a1", refreshToken: "r1", expiresAt: now + REFRESH_MARGIN_MS - 1, username: "alice" });
    let expired = 0;
    const api = new ApiClient({
      session,
      now: () => now,
      onSessionExpired: () => (expired += 1),
      fetch: async (url, init) => {
        const auth = new Headers(init?.headers).get("Authorization");
        calls.push(`${url} ${auth}`);
        if (url === API.refresh) return json(401, { message: "refresh token revoked" });
        // The access token works until it expires.
        return now < 1_000_000 + REFRESH_MARGIN_MS - 1 ? json(200, post) : json(401, { message: "Token has expired" });
      },
    });
    expect((await api.updatePost(7, { title: "t" })).id).toBe(7);
    expect(session.get()).toMatchObject({ token: "a1", refreshToken: null });
    expect(expired).toBe(0);
    // The refused refresh token is not presented again: the next write goes straight out.
    expect((await api.updatePost(7, { title: "t" })).id).toBe(7);
    expect(calls).toEqual([`${API.refresh} null`, `${API.posts}/7 Bearer a1`, `${API.posts}/7 Bearer a1`]);
    // Once the token has expired, the 401 ends the session (said once).
    now += REFRESH_MARGIN_MS;
    const err = (await api.updatePost(7, { title: "t" }).catch((e: unknown) => e)) as ApiError;
    expect(err.kind).toBe("session_expired");
    expect(session.get()).toBeNull();
    expect(expired).toBe(1);
  });

  it("a failed refresh of a token that has already expired still stops the request", async () => {
    const past: SessionData = { token: "a1", refreshToken: "r1", expiresAt: 1_000_000 - 1, username: "alice" };
    const down = setup((c) => (c.url === API.refresh ? Promise.reject(new TypeError("fetch failed")) : json(200, post)), { session: past });
    expect(((await down.api.updatePost(7, { title: "t" }).catch((e: unknown) => e)) as ApiError).kind).toBe("network");
    expect(down.calls.map((c) => c.url)).toEqual([API.refresh]);
    expect(down.session.get()).toEqual(past);
    const refused = setup((c) => (c.url === API.refresh ? json(401, {}) : json(200, post)), { session: past });
    expect(((await refused.api.updatePost(7, { title: "t" }).catch((e: unknown) => e)) as ApiError).kind).toBe("session_expired");
    expect(refused.calls.map((c) => c.url)).toEqual([API.refresh]);
    expect(refused.session.get()).toBeNull();
    expect(refused.expiredCount()).toBe(1);
  });

  it("on a 401 refreshes once for all concurrent requests and retries each with the new token", async () => {
    const { api, calls, expiredCount } = setup(
      async (c) => {
        if (c.url === API.refresh) {
          await new Promise((r) => setTimeout(r, 5)); // let the other requests pile up behind it
          return json(200, { token: "a2", refresh_token: "r2", expires_in: 900 });
        }
        return c.auth === "Bearer a2" ? json(200, { id: 1, username: "alice" }) : json(401, { message: "Token has expired" });
      },
      { session: { token: "a1", refreshToken: "r1", expiresAt: null, username: "alice" } },
    );
    await Promise.all([api.me(), api.me(), api.me()]);
    expect(calls.filter((c) => c.url === API.refresh)).toHaveLength(1);
    expect(calls.filter((c) => c.auth === "Bearer a2")).toHaveLength(3);
    expect(expiredCount()).toBe(0);
  });

  it("a 401 that arrives after another request already refreshed retries with the new token, no second refresh", async () => {
    const { api, calls, session, expiredCount } = setup(
      async (c) => {
        if (c.url === API.refresh) return json(200, { token: "a2", refresh_token: "r2", expires_in: 900 });
        if (c.auth === "Bearer a2") return c.method === "DELETE" ? json(204, null) : json(200, { id: 1, username: "alice" });
        // The delete sent with the old token is slow: its 401 comes back after the other request's refresh.
        if (c.method === "DELETE") await new Promise((r) => setTimeout(r, 30));
        return json(401, { message: "Token has expired" });
      },
      { session: { token: "a1", refreshToken: "r1", expiresAt: null, username: "alice" } },
    );
    await Promise.all([api.deletePost(7), api.me()]);
    expect(calls.filter((c) => c.url === API.refresh).map((c) => c.body)).toEqual([{ refresh_token: "r1" }]);
    expect(calls.filter((c) => c.method === "DELETE").map((c) => c.auth)).toEqual(["Bearer a1", "Bearer a2"]);
    expect(session.get()).toMatchObject({ token: "a2", refreshToken: "r2" });
    expect(expiredCount()).toBe(0);
  });

  it("ends the session once, with a clear error, when the refresh token is refused", async () => {
    const { api, session, expiredCount } = setup(
      (c) => (c.url === API.refresh ? json(401, { message: "refresh token revoked" }) : json(401, { message: "Token has expired" })),
      { session: { token: "a1", refreshToken: "r1", expiresAt: null, username: "alice" } },
    );
    const errors = await Promise.all([api.me().catch((e: unknown) => e), api.me().catch((e: unknown) => e)]);
    for (const e of errors) expect((e as ApiError).kind).toBe("session_expired");
    expect(session.get()).toBeNull();
    expect(expiredCount()).toBe(1);
  });

  it("keeps the session when the refresh fails for a network reason (a blip is not a logout)", async () => {
    const { api, session } = setup(
      (c) => (c.url === API.refresh ? Promise.reject(new TypeError("fetch failed")) : json(401, {})),
      { session: { token: "a1", refreshToken: "r1", expiresAt: null, username: "alice" } },
    );
    const err = (await api.me().catch((e: unknown) => e)) as ApiError;
    expect(err.kind).toBe("network");
    expect(session.get()?.refreshToken).toBe("r1");
  });

  it("a write without a session fails before any request", async () => {
    const { api, calls } = setup(() => json(201, post));
    const err = (await api.deletePost(1).catch((e: unknown) => e)) as ApiError;
    expect(err.kind).toBe("unauthorized");
    expect(calls).toHaveLength(0);
  });
});

describe("ApiClient: lists and errors", () => {
  it("sends only the filters that are set and reads the total from the header", async () => {
    const { api, calls } = setup(() => json(200, [], { [TOTAL_HEADER]: "42" }));
    const page = await api.listPosts({ offset: 10, limit: 10, q: "istio", author: "", category: undefined });
    expect(page).toEqual({ posts: [], total: 42 });
    expect(calls[0]?.url).toBe(`${API.posts}?offset=10&limit=10&q=istio`);
  });

  it("hands the views text as the author wrote it, not the sanitiser's escaped form", async () => {
    const stored = { ...post, title: "Tom &amp; Jerry", content: "&gt; a &lt; b", category: { id: 1, name: "Q&amp;A", slug: "qa" } };
    const { api } = setup((c) =>
      c.url.startsWith(`${API.posts}/`)
        ? json(200, stored)
        : json(200, [{ id: 7, title: "Tom &amp; Jerry", author: "a", created_at: "", excerpt: "&gt; a &lt; b", category: stored.category }]),
    );
    const one = await api.getPost(7);
    expect([one.title, one.content, one.category.name]).toEqual(["Tom & Jerry", "> a < b", "Q&A"]);
    const [first] = (await api.listPosts({ offset: 0, limit: 10 })).posts;
    expect([first?.title, first?.excerpt]).toEqual(["Tom & Jerry", "> a < b"]);
  });

  it("has no total when the server sends none", async () => {
    const { api } = setup(() => json(200, []));
    expect((await api.listPosts({ offset: 0, limit: 10 })).total).toBeNull();
  });

  it("turns a 429 into a rate-limit error with the wait from Retry-After", async () => {
    const { api } = setup(() => json(429, { error: "TooManyRequests", message: "Too Many Requests" }, { "Retry-After": "12" }));
    const err = (await api.getPost(1).catch((e: unknown) => e)) as ApiError;
    expect([err.kind, err.status, err.retryAfter]).toEqual(["rate_limited", 429, 12]);
  });

  it("survives a non-JSON error page", async () => {
    const { api } = setup(() => new Response("<html>bad gateway</html>", { status: 502 }));
    const err = (await api.getPost(1).catch((e: unknown) => e)) as ApiError;
    expect([err.kind, err.message]).toEqual(["server", "HTTP 502"]);
  });

  it("reads field errors from the shapes a validation error takes", () => {
    expect(parseErrorBody({ error: "BadRequest", message: "Invalid body", details: [{ path: ["title"], message: "Too long" }] })).toEqual({
      message: "Invalid body",
      fields: { title: "Too long" },
    });
    expect(parseErrorBody({ message: "Username already exists", field: "username" }).fields).toEqual({ username: "Username already exists" });
    expect(parseErrorBody({ detail: [{ loc: ["body", "email"], msg: "not an email" }] }).fields).toEqual({ email: "not an email" });
    // The services' 422 carries both lists: one field each, whatever the location, each message once.
    const both = { message: "limit: too big", field: "limit", details: [{ field: "limit", message: "too big" }], detail: [{ type: "less_than_equal", loc: ["query", "limit"], msg: "too big" }] };
    expect(parseErrorBody(both).fields).toEqual({ limit: "too big" });
    expect(parseErrorBody({ fields: { password: ["too weak"] } }).fields).toEqual({ password: "too weak" });
    expect(parseErrorBody("nope")).toEqual({ message: null, fields: {} });
  });

  it("keeps every rule a field broke, not only the first (the user fixes them in one go)", () => {
    const body = {
      error: "ValidationError",
      message: "password: Too small: expected string to have >=8 characters",
      field: "password",
      details: [
        { field: "username", message: "Too small: expected string to have >=3 characters" },
        { field: "password", message: "Too small: expected string to have >=8 characters" },
        { field: "password", message: "needs an uppercase letter" },
        { field: "password", message: "needs a digit" },
      ],
      errors: [{ field: "password", message: "needs a digit" }], // the same rule twice is said once
    };
    expect(parseErrorBody(body).fields).toEqual({
      username: "Too small: expected string to have >=3 characters",
      password: "Too small: expected string to have >=8 characters; needs an uppercase letter; needs a digit",
    });
  });
});

describe("storedLength", () => {
  it("counts the title and content as the service stores them (escaped), the category as typed", () => {
    expect(storedLength("title", "R&D <notes>")).toBe("R&amp;D &lt;notes&gt;".length);
    expect(storedLength("content", "a < b")).toBe(8);
    expect(storedLength("category_name", "R&D")).toBe(3);
    expect(storedLength("title", "plain")).toBe(5);
  });
});

describe("Session", () => {
  it("treats corrupt or foreign storage content as signed out", () => {
    const store = new MemoryStore();
    const s = new Session(store);
    store.setItem("titanium.session", "{not json");
    expect(s.get()).toBeNull();
    store.setItem("titanium.session", JSON.stringify({ token: "", username: "x", refreshToken: null, expiresAt: null }));
    expect(s.get()).toBeNull();
  });

  it("notifies subscribers on sign-in and sign-out only", () => {
    const s = new Session(new MemoryStore());
    const seen: (string | null)[] = [];
    s.subscribe((d) => seen.push(d?.username ?? null));
    s.clear(); // nothing to clear: no event
    s.set({ token: "t", refreshToken: null, expiresAt: null, username: "bob" });
    s.clear();
    expect(seen).toEqual(["bob", null]);
  });
});
