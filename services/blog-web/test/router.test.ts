// Routes: every route survives href → parse, bad input falls back safely, old hash links still work.
import { describe, expect, it } from "vitest";
import { fromLegacyHash, href, parseRoute, safeNext, type Route } from "../src/app/router.js";

function parse(url: string): Route {
  const u = new URL(url, "http://x");
  return parseRoute(u.pathname, u.search);
}

describe("router", () => {
  const routes: Route[] = [
    { name: "list", params: { page: 1 } },
    { name: "list", params: { page: 3, category: "기술-스택", q: "istio mtls", author: "alice" } },
    { name: "post", id: 42 },
    { name: "edit", id: 42 },
    { name: "new" },
    { name: "login", next: "/blog/posts/42/edit", user: "bob" },
    { name: "signup" },
  ];
  for (const r of routes) {
    it(`round-trips ${href(r)}`, () => {
      const back = parse(href(r));
      if (r.name === "list") expect(back).toEqual({ name: "list", params: { category: undefined, q: undefined, author: undefined, ...r.params } });
      else expect(back).toEqual(r);
    });
  }

  it("falls back to page 1 and not-found on junk", () => {
    for (const p of ["0", "-1", "2.5", "abc", "1e9"]) {
      expect(parse(`/blog/?page=${p}`)).toMatchObject({ name: "list", params: { page: 1 } });
    }
    expect(parse("/blog/posts/0").name).toBe("notFound");
    expect(parse("/blog/posts/abc").name).toBe("notFound");
    expect(parse("/elsewhere").name).toBe("notFound");
    expect(parse("/blog/posts/5/").name).toBe("post");
    // Ids beyond the database's integer name no post: not found, never a request the API refuses.
    expect(parse("/blog/posts/2147483647")).toEqual({ name: "post", id: 2147483647 });
    for (const big of ["2147483648", "99999999999", "9".repeat(16)]) {
      expect(parse(`/blog/posts/${big}`).name, big).toBe("notFound");
      expect(parse(`/blog/posts/${big}/edit`).name, big).toBe("notFound");
      expect(fromLegacyHash(`#/posts/${big}`), big).toBeNull();
    }
  });

  it("only follows post-login destinations inside the app", () => {
    expect(safeNext("/blog/new")).toBe("/blog/new");
    for (const bad of ["https://evil.example/", "//evil.example/blog/", "/api/users", "/blog/\\evil", "", null]) {
      expect(safeNext(bad), String(bad)).toBeUndefined();
    }
    expect(parse("/blog/login?next=https://evil.example/")).toEqual({ name: "login", next: undefined, user: undefined });
  });

  it("maps the original's hash routes", () => {
    expect(fromLegacyHash("#/posts/5")).toEqual({ name: "post", id: 5 });
    expect(fromLegacyHash("#/posts/5/edit")).toEqual({ name: "edit", id: 5 });
    expect(fromLegacyHash("#/posts/new")).toEqual({ name: "new" });
    expect(fromLegacyHash("#/")).toEqual({ name: "list", params: { page: 1 } });
    expect(fromLegacyHash("#main")).toBeNull();
    expect(fromLegacyHash("#/posts/new/edit")).toBeNull();
  });
});
