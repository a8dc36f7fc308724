// Routes as real URLs under the base path (the server answers every non-asset path under it with the app),
// so a post can be linked, reloaded and opened in a new tab. DOM-free: parse and build only.
import { BASE_PATH } from "../paths.js";

export interface ListParams {
  category?: string;
  q?: string;
  author?: string;
  /** 1-based page number. */
  page: number;
}

export type Route =
  | { name: "list"; params: ListParams }
  | { name: "post"; id: number }
  | { name: "edit"; id: number }
  | { name: "new" }
  | { name: "login"; next?: string; user?: string }
  /** `next`: where to go once the new account has logged in (carried through the login). */
  | { name: "signup"; next?: string }
  | { name: "notFound" };

const ID = "([1-9][0-9]{0,9})";
/** The largest post id (the `serial` column): a larger one names no post. */
const ID_MAX = 2_147_483_647;
const postId = (digits: string): number | null => (Number(digits) <= ID_MAX ? Number(digits) : null);

function str(params: URLSearchParams, key: string, max: number): string | undefined {
  const v = params.get(key)?.trim();
  // Cut at code points, as the services count: a cut between the halves of a surrogate pair left a lone
  // half, which the URL then carried as U+FFFD (an emoji category's tab link named no category).
  return v ? [...v].slice(0, max).join("") : undefined;
}

/** Only same-app paths may be a post-login destination (no open redirect). */
export function safeNext(next: string | null | undefined): string | undefined {
  if (!next || !next.startsWith(BASE_PATH) || next.startsWith("//") || next.includes("\\")) return undefined;
  return next;
}

export function parseRoute(pathname: string, search = ""): Route {
  const params = new URLSearchParams(search);
  if (pathname === BASE_PATH || pathname === BASE_PATH.slice(0, -1)) {
    const page = Number(params.get("page") ?? "1");
    return {
      name: "list",
      params: {
        category: str(params, "category", 50),
        q: str(params, "q", 200),
        author: str(params, "author", 100),
        page: Number.isInteger(page) && page >= 1 && page <= 100_000 ? page : 1,
      },
    };
  }
  const rest = pathname.startsWith(BASE_PATH) ? pathname.slice(BASE_PATH.length).replace(/\/$/, "") : null;
  if (rest === null) return { name: "notFound" };
  let m: RegExpExecArray | null;
  let id: number | null;
  if ((m = new RegExp(`^posts/${ID}$`).exec(rest)) && (id = postId(m[1]!)) !== null) return { name: "post", id };
  if ((m = new RegExp(`^posts/${ID}/edit$`).exec(rest)) && (id = postId(m[1]!)) !== null) return { name: "edit", id };
  if (rest === "new") return { name: "new" };
  if (rest === "login") return { name: "login", next: safeNext(params.get("next")), user: str(params, "user", 100) };
  if (rest === "signup") return { name: "signup", next: safeNext(params.get("next")) };
  return { name: "notFound" };
}

export function href(route: Route): string {
  switch (route.name) {
    case "list": {
      const p = new URLSearchParams();
      const { category, q, author, page } = route.params;
      if (category) p.set("category", category);
      if (q) p.set("q", q);
      if (author) p.set("author", author);
      if (page > 1) p.set("page", String(page));
      const qs = p.toString();
      return qs ? `${BASE_PATH}?${qs}` : BASE_PATH;
    }
    case "post":
      return `${BASE_PATH}posts/${route.id}`;
    case "edit":
      return `${BASE_PATH}posts/${route.id}/edit`;
    case "new":
      return `${BASE_PATH}new`;
    case "login": {
      const p = new URLSearchParams();
      if (route.next) p.set("next", route.next);
      if (route.user) p.set("user", route.user);
      const qs = p.toString();
      return qs ? `${BASE_PATH}login?${qs}` : `${BASE_PATH}login`;
    }
    case "signup":
      return route.next ? `${BASE_PATH}signup?${new URLSearchParams({ next: route.next }).toString()}` : `${BASE_PATH}signup`;
    case "notFound":
      return BASE_PATH;
  }
}

/** The original SPA's hash routes (`#/posts/5`, `#/posts/new`, `#/posts/5/edit`), for old bookmarks. */
export function fromLegacyHash(hash: string): Route | null {
  const m = /^#\/posts\/(new|[1-9][0-9]{0,9})(\/edit)?$/.exec(hash);
  if (hash === "#/" || hash === "#") return { name: "list", params: { page: 1 } };
  if (!m) return null;
  if (m[1] === "new") return m[2] ? null : { name: "new" };
  const id = postId(m[1]!);
  if (id === null) return null;
  return m[2] ? { name: "edit", id } : { name: "post", id };
}

/**
 * The list a page was opened from (`from`: the path and query a history entry records), as its route: null
 * when it is no list (a post, the editor) or not this app's. A delete or a cancelled new post goes back to
 * that list, with its category, search and page, rather than to the first page of all posts.
 */
export function listFrom(from: unknown): Extract<Route, { name: "list" }> | null {
  if (typeof from !== "string" || !safeNext(from)) return null;
  const u = new URL(from, "http://app.invalid");
  const route = parseRoute(u.pathname, u.search);
  return route.name === "list" ? route : null;
}

/**
 * Where the header's "Log in" and "Sign up" should bring the reader back to: the page on screen (path and
 * query), except the login and sign-up pages themselves, which keep the destination they already carry.
 */
export function returnTo(pathname: string, search: string): string | undefined {
  const route = parseRoute(pathname, search);
  if (route.name === "login" || route.name === "signup") return route.next;
  if (route.name === "notFound" || (route.name === "list" && href(route) === BASE_PATH)) return undefined;
  return safeNext(pathname + search);
}
