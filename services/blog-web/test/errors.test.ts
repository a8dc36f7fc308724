// Which sentence an error from the API becomes: a write the server may have applied is never offered again,
// and a 503 that says when to come back says so (in the UI's language).
import { describe, expect, it } from "vitest";
import { ApiClient, ApiError, kindFor } from "../src/app/api.js";
import { describeError } from "../src/app/context.js";
import { createTranslator } from "../src/app/i18n.js";
import { Session } from "../src/app/session.js";
import { MemoryStore } from "./memory-store.js";

const IN_DOUBT = "the upstream failed during the request; it may or may not have been applied, check before retrying";

function client(status: number, headers: Record<string, string> = {}) {
  const session = new Session(new MemoryStore());
  session.set({ token: "t", refreshToken: "r", expiresAt: null, username: "alice" });
  const api = new ApiClient({
    session,
    fetch: () => Promise.resolve(new Response(JSON.stringify({ error: "ServiceUnavailable", message: IN_DOUBT }), { status, headers: { "Content-Type": "application/json", ...headers } })),
  });
  return api;
}

const input = { title: "t", content: "c", category_name: "k" };

describe("errors the UI says", () => {
  const en = createTranslator("en");
  const ko = createTranslator("ko");

  it("a 503 without Retry-After to a write is in doubt: no 'try again' (a second Publish made a second post)", async () => {
    for (const write of [() => client(503).createPost(input), () => client(504).updatePost(1, input), () => client(503).deletePost(1)]) {
      const err = (await write().catch((e: unknown) => e)) as ApiError;
      expect(err.kind).toBe("in_doubt");
      expect(describeError(err, en)).toMatch(/may have been made/);
      expect(describeError(err, en)).not.toMatch(/try again/i);
      expect(describeError(err, ko)).not.toMatch(/다시 시도/);
    }
    // A read or a login done twice does no harm: still the plain server error.
    expect(((await client(503).getPost(1).catch((e: unknown) => e)) as ApiError).kind).toBe("server");
    expect(((await client(503).login("a", "b").catch((e: unknown) => e)) as ApiError).kind).toBe("server");
    expect(kindFor(500, "POST")).toBe("in_doubt");
    expect(kindFor(502, "GET")).toBe("server");
  });

  it("a 503 with Retry-After says the service is unavailable for that long, on a read and on a write", async () => {
    const read = (await client(503, { "Retry-After": "7" }).listPosts({ offset: 0, limit: 10 }).catch((e: unknown) => e)) as ApiError;
    expect([read.kind, read.retryAfter]).toEqual(["unavailable", 7]);
    expect(describeError(read, en)).toBe("The service is temporarily unavailable. Try again in 7 s.");
    expect(describeError(read, ko)).toBe("서비스를 잠시 사용할 수 없습니다. 7초 후에 다시 시도하세요.");
    const write = (await client(503, { "Retry-After": "3" }).createPost(input).catch((e: unknown) => e)) as ApiError;
    expect(write.kind).toBe("unavailable"); // refused before anything was done: sending again is safe
    expect(describeError(new ApiError("server", 503, "x"), en)).toBe("Something went wrong on our side. Please try again.");
  });
});
