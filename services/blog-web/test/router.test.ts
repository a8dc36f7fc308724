// Routes: every route survives href → parse, bad input falls back safely, old hash links still work.
import { describe, expect, it } from "vitest";
import { fromLegacyHash, href, listFrom, parseRoute, returnTo, safeNext, type Route } from "../src/app/router.js";

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
    { name: "signup", next: "/blog/posts/42" },
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

  it("the header's Log in and Sign up bring the reader back to the page on screen", () => {
    expect(returnTo("/blog/posts/42", "")).toBe("/blog/posts/42");
    expect(returnTo("/blog/", "?category=k3s&page=2")).toBe("/blog/?category=k3s&page=2");
    expect(returnTo("/blog/posts/42/edit", "")).toBe("/blog/posts/42/edit");
    // The list's first page is where a login lands anyway; a not-found page is nowhere to return to.
    expect(returnTo("/blog/", "")).toBeUndefined();
    expect(returnTo("/blog/nowhere", "")).toBeUndefined();
    // On the login and sign-up pages the destination they carry is kept (and still only a same-app one).
    expect(returnTo("/blog/login", "?next=%2Fblog%2Fnew")).toBe("/blog/new");
    expect(returnTo("/blog/signup", "?next=%2Fblog%2Fposts%2F7")).toBe("/blog/posts/7");
    expect(returnTo("/blog/signup", "?next=https%3A%2F%2Fevil.example%2F")).toBeUndefined();
    expect(parse("/blog/signup?next=//evil.example/blog/")).toEqual({ name: "signup", next: undefined });
  });

  it("maps the original's hash routes", () => {
    expect(fromLegacyHash("#/posts/5")).toEqual({ name: "post", id: 5 });
    expect(fromLegacyHash("#/posts/5/edit")).toEqual({ name: "edit", id: 5 });
    expect(fromLegacyHash("#/posts/new")).toEqual({ name: "new" });
    expect(fromLegacyHash("#/")).toEqual({ name: "list", params: { page: 1 } });
    expect(fromLegacyHash("#main")).toBeNull();
    expect(fromLegacyHash("#/posts/new/edit")).toBeNull();
  });

  it("cuts a category slug at 50 code points, never between the halves of an emoji, and round-trips it", () => {
    const slug = `${"a".repeat(49)}🚀`; // 51 UTF-16 units, 50 code points: the whole slug
    const route: Route = { name: "list", params: { page: 2, category: slug } };
    expect(parse(href(route))).toEqual({ name: "list", params: { category: slug, q: undefined, author: undefined, page: 2 } });
    const longer = parse(href({ name: "list", params: { page: 1, category: `${"🚀".repeat(60)}` } }));
    expect(longer).toMatchObject({ name: "list", params: { category: "🚀".repeat(50) } });
    // The cut category survives another round trip unchanged (no lone surrogate, no U+FFFD).
    if (longer.name === "list") expect(parse(href(longer))).toEqual(longer);
  });

  it("knows the list a page was opened from (category, search, page), and nothing else", () => {
    expect(listFrom("/blog/?category=k3s&page=2")).toEqual({ name: "list", params: { category: "k3s", q: undefined, author: undefined, page: 2 } });
    expect(listFrom("/blog/")).toEqual({ name: "list", params: { category: undefined, q: undefined, author: undefined, page: 1 } });
    for (const other of ["/blog/posts/4", "/blog/new", "https://evil.example/blog/", "//evil.example/blog/", undefined, 42]) {
      expect(listFrom(other), String(other)).toBeNull();
    }
  });
});
