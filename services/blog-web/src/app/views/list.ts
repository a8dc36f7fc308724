// The post list: category tabs with counts, search and author filter, server-side pagination.
import { ApiError, type Category, type PostPage, type PostSummary } from "../api.js";
import { describeError, describeFieldError, type ViewContext } from "../context.js";
import { h, replace, uid } from "../dom.js";
import { href, type ListParams } from "../router.js";
import { PAGE_SIZE, SEARCH_WORDS_MAX, searchWords } from "../limits.js";
import { plainExcerpt } from "../text.js";
import { categoryBadge, colorDot, errorPanel, loading } from "./parts.js";


function listHref(params: ListParams): string {
  return href({ name: "list", params });
}

function categoryNav(ctx: ViewContext, categories: Category[], params: ListParams): HTMLElement {
  const { t } = ctx.tr;
  const total = categories.reduce((n, c) => n + c.post_count, 0);
  // The counts are of all posts: under a search or an author filter they would promise what a tab does not hold.
  const showCounts = !params.q && !params.author;
  const tab = (label: string, count: number, slug: string | undefined, color?: string) => {
    const current = (params.category ?? undefined) === slug;
    const dot = color ? colorDot(color) : null;
    return h(
      "li",
      null,
      h(
        "a",
        {
          class: "tab",
          attrs: {
            href: listHref({ category: slug, q: params.q, author: params.author, page: 1 }),
            "aria-current": current ? "page" : null,
            title: label,
          },
        },
        dot,
        h("span", { class: "tab-name" }, label),
        ...(showCounts ? [" ", h("span", { class: "count" }, `(${count})`)] : []),
      ),
    );
  };
  return h(
    "nav",
    { class: "tabs", attrs: { "aria-label": t("list.categories") } },
    h(
      "ul",
      null,
      tab(t("list.all"), total, undefined),
      // A category no post is in is no tab (the seeded ones stay in the API until used), unless it is the one asked for.
      categories.filter((c) => c.post_count > 0 || c.slug === params.category).map((c) => tab(c.name, c.post_count, c.slug, c.color)),
    ),
  );
}

/**
 * On a narrow screen the tabs scroll sideways: a tab (the current one; one the keyboard moves to, which the
 * browser leaves half out of the strip) is brought into the strip's view (centred).
 */
function revealTab(nav: HTMLElement, current: Element | null): void {
  const strip = nav.querySelector("ul");
  if (!strip || !current) return;
  const s = strip.getBoundingClientRect();
  const c = current.getBoundingClientRect();
  if (c.left < s.left || c.right > s.right) strip.scrollLeft += c.left - s.left - (s.width - c.width) / 2;
}

/** The search form, and a way to say on its words field why a search was refused. */
interface SearchForm {
  el: HTMLElement;
  /** Says `message` on the words field (aria-invalid, the message in its description); null clears it. */
  setError(message: string | null): void;
}

/**
 * Why a search of `q` is refused for its number of words, or null when it is within the limit. `said`: the
 * API's message about `q` (`at most 8 words (this search has 9)`), whose count is taken when it is larger
 * (the server may split a word this count keeps whole).
 */
function tooManyWords(ctx: ViewContext, q: string, said?: string): string | null {
  const server = Number(/at most \d+ words \(this search has (\d+)\)/.exec(said ?? "")?.[1] ?? 0);
  const count = Math.max(searchWords(q), server);
  if (count <= SEARCH_WORDS_MAX) return null;
  return ctx.tr.t("search.tooManyWords", { max: SEARCH_WORDS_MAX, count });
}

function searchForm(ctx: ViewContext, params: ListParams): SearchForm {
  const { t } = ctx.tr;
  const qId = uid("q");
  const qHint = uid("q-hint");
  const qError = uid("q-error");
  const aId = uid("author");
  const q = h("input", {
    attrs: { id: qId, name: "q", type: "search", value: params.q ?? "", maxlength: 200, "aria-describedby": qHint },
  });
  const author = h("input", {
    attrs: { id: aId, name: "author", type: "text", value: params.author ?? "", maxlength: 100, autocomplete: "off" },
  });
  const filtered = Boolean(params.q || params.author);
  const error = h("p", { class: "field-error", attrs: { id: qError, hidden: true } });
  const qField = h("div", { class: "field" }, h("label", { attrs: { for: qId } }, t("search.query")), q,
    h("small", { class: "hint", attrs: { id: qHint } }, t("search.queryHint", { max: SEARCH_WORDS_MAX })), error);
  const setError = (message: string | null) => {
    error.textContent = message ?? "";
    error.hidden = message === null;
    qField.classList.toggle("invalid", message !== null);
    if (message === null) q.removeAttribute("aria-invalid");
    else q.setAttribute("aria-invalid", "true");
    q.setAttribute("aria-describedby", message === null ? qHint : `${qHint} ${qError}`);
  };
  const el = h(
    "form",
    {
      class: "search",
      attrs: { role: "search", "aria-label": t("search.label") },
      on: {
        submit: (ev) => {
          ev.preventDefault();
          // More words than the API looks up: said here, in the UI's language, before any request.
          const refused = tooManyWords(ctx, q.value.trim());
          if (refused !== null) {
            setError(refused);
            q.focus();
            return;
          }
          setError(null);
          ctx.navigate({
            name: "list",
            params: { category: params.category, q: q.value.trim(), author: author.value.trim(), page: 1 },
          });
        },
      },
    },
    qField,
    h("div", { class: "field" }, h("label", { attrs: { for: aId } }, t("search.author")), author),
    h(
      "div",
      { class: "search-actions" },
      h("button", { class: "btn primary", attrs: { type: "submit" } }, t("search.submit")),
      filtered
        ? h("a", { class: "btn", attrs: { href: listHref({ category: params.category, page: 1 }) } }, t("search.clear"))
        : null,
    ),
  );
  return { el, setError };
}

function postItem(ctx: ViewContext, p: PostSummary, colors: Map<number, string>): HTMLElement {
  const { t, date } = ctx.tr;
  return h(
    "li",
    null,
    h(
      "article",
      { class: "card" },
      h("h3", { class: "card-title" }, h("a", { attrs: { href: href({ name: "post", id: p.id }) } }, p.title)),
      h(
        "p",
        { class: "meta" },
        // Summaries carry no colour; the categories list (fetched alongside) does.
        categoryBadge({ ...p.category, color: p.category.color ?? colors.get(p.category.id) }),
        h("a", { attrs: { href: listHref({ author: p.author, page: 1 }) } }, t("post.by", { author: p.author })),
        h("time", { attrs: { datetime: p.created_at } }, date(p.created_at)),
      ),
      h("p", { class: "excerpt" }, plainExcerpt(p.excerpt)),
    ),
  );
}

/** Page links: first, last, and a window around the current page. */
export function pageWindow(page: number, pages: number, span = 2): (number | "gap")[] {
  const out: (number | "gap")[] = [];
  for (let i = 1; i <= pages; i++) {
    if (i === 1 || i === pages || Math.abs(i - page) <= span) out.push(i);
    else if (out[out.length - 1] !== "gap") out.push("gap");
  }
  return out;
}

/** How many pages `total` posts fill (at least one). */
const pageCount = (total: number): number => Math.max(1, Math.ceil(total / PAGE_SIZE));

function pagination(ctx: ViewContext, params: ListParams, page: PostPage): HTMLElement | null {
  const { t } = ctx.tr;
  // Without a total the server still tells us whether a next page may exist: a full page.
  const pages = page.total !== null ? pageCount(page.total) : null;
  const hasNext = pages !== null ? params.page < pages : page.posts.length === PAGE_SIZE;
  if (params.page === 1 && !hasNext) return null;
  const link = (n: number, label: string, rel?: string) =>
    h("a", { class: "btn", attrs: { href: listHref({ ...params, page: n }), rel: rel ?? null } }, label);
  const items: HTMLElement[] = [];
  if (params.page > 1) items.push(h("li", null, link(params.page - 1, t("pagination.prev"), "prev")));
  if (pages !== null) {
    for (const n of pageWindow(params.page, pages)) {
      if (n === "gap") {
        items.push(h("li", { class: "gap", attrs: { "aria-hidden": "true" } }, "…"));
      } else {
        const a = link(n, String(n));
        a.setAttribute("aria-label", t("pagination.page", { page: n }));
        if (n === params.page) a.setAttribute("aria-current", "page");
        items.push(h("li", null, a));
      }
    }
  }
  if (hasNext) items.push(h("li", null, link(params.page + 1, t("pagination.next"), "next")));
  return h(
    "nav",
    { class: "pagination", attrs: { "aria-label": t("pagination.label") } },
    pages !== null ? h("p", { class: "page-status" }, t("pagination.status", { page: params.page, pages })) : null,
    h("ul", null, items),
  );
}

export async function renderList(ctx: ViewContext, main: HTMLElement, params: ListParams): Promise<void> {
  const { t } = ctx.tr;
  // The heading says what is listed: a search, one author's posts, or (once categories load) a category.
  const title = params.q
    ? t("list.headingSearch")
    : params.author
      ? t("list.headingAuthor", { author: params.author })
      : t("list.heading");
  const heading = h("h1", { attrs: { tabindex: -1 } }, title);
  const tabsSlot = h("div", { class: "tabs-slot" });
  const resultsId = uid("results");
  const results = h("section", { class: "results", attrs: { "aria-labelledby": resultsId } });
  const resultsHeading = h("h2", { attrs: { id: resultsId } });
  // While the posts load only the part they will fill is busy (aria-busy): the loading status stays outside
  // it, so screen readers announce it, and what ends the wait (posts, an empty state, an error) is shown once
  // the region is no longer busy.
  const status = h("div", { class: "results-status" }, loading(t("list.loading")));
  const body = h("div", { class: "results-body", attrs: { "aria-busy": "true" } });
  const show = (...nodes: (Node | null)[]) => {
    body.removeAttribute("aria-busy");
    replace(status);
    replace(body, ...nodes);
  };
  const search = searchForm(ctx, params);
  replace(main, heading, tabsSlot, search.el, results);
  replace(results, resultsHeading, status, body);
  ctx.setTitle(title);
  /** A search refused for its words (here, or by the API's 422 naming `q`): said on the field, nothing to retry. */
  const refuseSearch = (message: string) => {
    search.setError(message);
    resultsHeading.textContent = t("search.notRun");
    show();
  };
  // A link or an old URL with more words than the API looks up: refused before any request.
  const refused = params.q ? tooManyWords(ctx, params.q) : null;

  const [cats, page] = await Promise.allSettled([
    ctx.api.categories(),
    refused !== null ? Promise.reject(new ApiError("validation", 422, refused, { q: refused })) : ctx.api.listPosts({
      offset: (params.page - 1) * PAGE_SIZE,
      limit: PAGE_SIZE,
      category: params.category,
      q: params.q,
      author: params.author,
    }),
  ]);
  if (ctx.signal.aborted) return;

  if (cats.status === "fulfilled") {
    const nav = categoryNav(ctx, cats.value, params);
    replace(tabsSlot, nav);
    revealTab(nav, nav.querySelector('[aria-current="page"]'));
    // Only for the keyboard: moving the tab under a pointer between press and release would lose the click.
    nav.addEventListener("focusin", (ev) => {
      if ((ev.target as Element).matches(":focus-visible")) revealTab(nav, ev.target as Element);
    });
    const current = cats.value.find((c) => c.slug === params.category);
    if (current && !params.q && !params.author) {
      heading.textContent = t("list.headingCategory", { category: current.name });
      ctx.setTitle(heading.textContent);
    } else if (params.category && !current && !params.q && !params.author) {
      // An old link to a category whose last post went (an empty category leaves the list): say so, not "Latest posts".
      heading.textContent = t("list.headingNoCategory", { category: params.category });
      ctx.setTitle(heading.textContent);
      if (page.status === "fulfilled" && page.value.posts.length === 0) {
        resultsHeading.textContent = ctx.tr.plural("list.count", 0);
        show(
          h("p", { class: "empty" }, t("list.noCategory", { category: params.category }), " ",
            h("a", { attrs: { href: listHref({ page: 1 }) } }, t("list.allPosts"))),
        );
        return;
      }
    }
  }
  if (refused !== null) return refuseSearch(refused);
  if (page.status === "rejected" && params.q && page.reason instanceof ApiError && page.reason.kind === "validation" && page.reason.fields.q) {
    const said = page.reason.fields.q;
    return refuseSearch(tooManyWords(ctx, params.q, said) ?? describeFieldError(page.reason, "q", said.replace(/^q: /, ""), ctx.tr));
  }
  if (page.status === "rejected") {
    resultsHeading.textContent = t("error.title");
    show(errorPanel(ctx, describeError(page.reason, ctx.tr)));
    return;
  }
  const { posts, total } = page.value;
  const filtered = Boolean(params.q || params.author || params.category);
  resultsHeading.textContent =
    total !== null ? ctx.tr.plural("list.count", total) : filtered ? t("list.filteredBy") : t("list.heading");
  if (posts.length === 0 && total !== null && total > 0 && params.page > 1) {
    // A page past the end (an old link, or posts deleted meanwhile): say so and offer the last page.
    const last = pageCount(total);
    show(
      h("p", { class: "empty" }, t("list.pastEnd"), " ",
        h("a", { attrs: { href: listHref({ ...params, page: last }) } }, t("list.lastPage", { page: last }))),
    );
    return;
  }
  if (posts.length === 0) {
    show(
      h("p", { class: "empty" }, filtered || params.page > 1 ? t("list.emptyFiltered") : t("list.empty")),
    );
    return;
  }
  const colors = new Map(cats.status === "fulfilled" ? cats.value.map((c) => [c.id, c.color] as const) : []);
  show(
    h("ul", { class: "posts" }, posts.map((p) => postItem(ctx, p, colors))),
    pagination(ctx, params, page.value),
  );
}
