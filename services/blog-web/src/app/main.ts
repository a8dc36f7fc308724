// The app shell: header, routing with the History API, focus management, toasts, language switch.
import "./styles.css";
import { ApiClient } from "./api.js";
import type { ToastKind, ViewContext } from "./context.js";
import { h, replace } from "./dom.js";
import { createTranslator, DEFAULT_LOCALE, isLocale, LOCALE_STORAGE_KEY, LOCALES, type Locale, type Translator } from "./i18n.js";
import { fromLegacyHash, href, parseRoute, returnTo, type Route } from "./router.js";
import { guardDuplicateTabs, Session, SESSION_CHANNEL } from "./session.js";
import { renderLogin, renderSignup } from "./views/auth.js";
import { dropDrafts, renderEditor } from "./views/editor.js";
import { renderList } from "./views/list.js";
import { renderPost } from "./views/post.js";
import { BASE_PATH, BLOG_API_PATH, ASSETS_PATH } from "../paths.js";

function storedLocale(): Locale {
  try {
    const v = localStorage.getItem(LOCALE_STORAGE_KEY);
    return isLocale(v) ? v : DEFAULT_LOCALE;
  } catch {
    return DEFAULT_LOCALE;
  }
}

let tr: Translator = createTranslator(storedLocale());
const session = new Session(sessionStorage);
// A duplicated tab starts with a copy of this tab's session: it must not spend the same refresh token.
const sessionChecked =
  typeof BroadcastChannel === "function" ? guardDuplicateTabs(session, new BroadcastChannel(SESSION_CHANNEL), sessionStorage) : undefined;
const api = new ApiClient({
  fetch: (url, init) => fetch(url, { ...init, credentials: "same-origin" }),
  session,
  sessionChecked,
  onSessionExpired: () => toast(tr.t("error.sessionExpired"), "error"),
});

// ── shell ──
const header = h("header", { class: "site-header" });
const main = h("main", { attrs: { id: "main", tabindex: -1 } });
const toasts = h("div", { class: "toasts", attrs: { role: "status", "aria-live": "polite" } });
const footer = h("footer", { class: "site-footer" });
const skip = h("a", { class: "skip", attrs: { href: "#main" } });
skip.addEventListener("click", (ev) => {
  ev.preventDefault();
  main.focus();
});
const root = document.getElementById("app");
if (!root) throw new Error("#app missing from index.html");
replace(root, skip, header, main, footer, toasts);

function toast(message: string, kind: ToastKind = "info"): void {
  // A toast that goes while its close button has focus would leave the keyboard at the top of the document
  // (focus on <body>): it goes on from the content instead.
  const dismiss = () => {
    const focused = item.contains(document.activeElement);
    item.remove();
    if (focused) main.focus({ preventScroll: true });
  };
  const item = h(
    "div",
    { class: `toast ${kind}` },
    h("p", null, message),
    h("button", { class: "close", attrs: { type: "button", "aria-label": tr.t("toast.dismiss") }, on: { click: dismiss } }, "×"),
  );
  toasts.appendChild(item);
  setTimeout(dismiss, kind === "error" ? 10_000 : 5_000);
}

// The header's Log in and Sign up links, kept so each view can point them back at itself (syncChromeLinks).
let loginLink: HTMLAnchorElement | null = null;
let signupLink: HTMLAnchorElement | null = null;
/** Whom the header shows as signed in (null: nobody), to notice a session gone from storage without a logout. */
let chromeUser: string | null = null;

/** After logging in (or signing up, then logging in) the reader comes back to the page they were on. */
function syncChromeLinks(): void {
  const next = returnTo(location.pathname, location.search);
  loginLink?.setAttribute("href", href({ name: "login", next }));
  signupLink?.setAttribute("href", href({ name: "signup", next }));
}

function renderChrome(): void {
  const { t } = tr;
  document.documentElement.lang = tr.locale;
  skip.textContent = t("nav.skip");
  const s = session.get();
  chromeUser = s?.username ?? null;
  loginLink = s ? null : h("a", { class: "btn", attrs: { href: href({ name: "login" }) } }, t("nav.login"));
  signupLink = s ? null : h("a", { class: "btn primary", attrs: { href: href({ name: "signup" }) } }, t("nav.signup"));
  syncChromeLinks();
  const items = s
    ? [
        h("li", null, h("a", { class: "btn primary", attrs: { href: href({ name: "new" }) } }, t("nav.write"))),
        h("li", { class: "whoami" }, t("nav.signedInAs", { username: s.username })),
        h("li", null, h("button", { class: "btn", attrs: { type: "button" }, on: { click: logout } }, t("nav.logout"))),
      ]
    : [h("li", null, loginLink), h("li", null, signupLink)];
  const select = h("select", { attrs: { id: "locale" } }, ...Object.entries(LOCALES).map(([code, l]) =>
    h("option", { attrs: { value: code, selected: code === tr.locale, lang: code } }, l.label)));
  select.addEventListener("change", () => {
    if (!isLocale(select.value)) return;
    tr = createTranslator(select.value);
    try {
      localStorage.setItem(LOCALE_STORAGE_KEY, select.value);
    } catch {
      // remembered for this page only
    }
    // The view is rebuilt in the new language; what the user typed (a draft, a search) is put back.
    const typed = typedValues();
    renderChrome();
    const at = location.href;
    void render(false).then(() => {
      if (location.href === at) restoreValues(typed);
    });
    document.getElementById("locale")?.focus();
  });
  replace(
    header,
    h("a", { class: "brand", attrs: { href: BASE_PATH } }, t("app.title")),
    h("nav", { attrs: { "aria-label": t("nav.primary") } }, h("ul", null, items)),
    h("div", { class: "locale" }, h("label", { attrs: { for: "locale" } }, t("nav.language")), select),
  );
  replace(footer, h("p", null, t("footer.text")));
}

/** The current view's named text fields whose value the user changed (the page's own defaults are left out). */
function typedValues(): Map<string, string> {
  const typed = new Map<string, string>();
  for (const el of main.querySelectorAll<HTMLInputElement | HTMLTextAreaElement>("input[name], textarea[name]")) {
    if (el.value !== el.defaultValue) typed.set(el.name, el.value);
  }
  return typed;
}

function restoreValues(typed: Map<string, string>): void {
  for (const el of main.querySelectorAll<HTMLInputElement | HTMLTextAreaElement>("input[name], textarea[name]")) {
    const value = typed.get(el.name);
    if (value === undefined || el.value === value) continue;
    el.value = value;
    el.dispatchEvent(new Event("input", { bubbles: true })); // counters and the like follow
  }
}

async function logout(): Promise<void> {
  // Signed out at once (the client clears the session before it tells the server): the list comes now, not
  // when the server answers, which would take the reader away from wherever they went meanwhile.
  const revoked = api.logout();
  dropDrafts();
  toast(tr.t("auth.loggedOut"), "info");
  navigate({ name: "list", params: { page: 1 } });
  await revoked;
}

// ── routing ──
let current: AbortController | null = null;

/** What the app keeps in a history entry. */
interface EntryState {
  /** Where the reader was on the page when a link left it. */
  scrollY?: number;
  /** The app page (path and query) the entry was opened from. */
  from?: string;
  /** The document that pushed the entry: only then is the entry before it this document's too (see navigate). */
  doc?: string;
  /** The entry's own id, for `positions`. */
  key?: string;
}
const entryState = (): EntryState => (history.state as EntryState | null) ?? {};
/** This document's id (a reload is a new document). */
const DOC = crypto.randomUUID();
const newKey = (): string => crypto.randomUUID();

/**
 * Where the reader was on each page of this document's history, by entry key, so Forward returns there as
 * Back does (an entry left by Back or Forward can no longer be written). Tracked as the reader scrolls,
 * without writing the history on every scroll: browsers limit that (Safari then refuses every pushState).
 */
const positions = new Map<string, number>();
/** The key of the entry on screen, and the reader's place on it. */
let entryKey = "";
let readerY = window.scrollY;
window.addEventListener(
  "scroll",
  () => {
    readerY = window.scrollY;
  },
  { passive: true },
);

function navigate(to: Route | string, opts: { replace?: boolean; back?: boolean } = {}): void {
  const url = typeof to === "string" ? to : href(to);
  const state = entryState();
  // The page this one was opened from is the entry before it: going back to it leaves no copy of it behind.
  // Only within this document: an entry of a document before a reload could come back from the browser's
  // back/forward cache as it was then (a post as it was before the edit just saved).
  if (opts.back && state.from === url && state.doc === DOC) return history.back(); // popstate renders it
  // A replaced entry was still opened from the same page (a login replaced by the editor it leads to). A link
  // to the page on screen shows it again in place, as a browser does: Back must not show it a second time.
  const key = newKey();
  if (opts.replace || url === location.pathname + location.search) {
    history.replaceState({ from: state.from, doc: state.doc, key } satisfies EntryState, "", url);
  } else {
    // Where the reader was, so Back returns there rather than to the top.
    positions.set(entryKey, window.scrollY);
    history.replaceState({ ...state, scrollY: window.scrollY }, "", location.href);
    history.pushState({ from: location.pathname + location.search, doc: DOC, key } satisfies EntryState, "", url);
  }
  entryKey = key;
  void render(true);
}

/** The view on screen (path and query): a change of the fragment alone (`#section`) is not a new view. */
let shown = "";
/** Scroll position to restore after the next render (Back/Forward), instead of the top. */
let restoreScrollY: number | null = null;

async function render(moveFocus: boolean): Promise<void> {
  shown = location.pathname + location.search;
  // The stored session can change without the Session object knowing (storage cleared, another script):
  // the header must not go on saying "Signed in as" on a login page.
  if ((session.get()?.username ?? null) !== chromeUser) renderChrome();
  syncChromeLinks();
  current?.abort();
  const controller = new AbortController();
  current = controller;
  const route = parseRoute(location.pathname, location.search);
  const ctx: ViewContext = {
    api,
    session,
    tr,
    signal: controller.signal,
    navigate,
    toast,
    setTitle: (title) => {
      document.title = `${title} · ${tr.t("app.title")}`;
    },
  };
  // No aria-busy on <main>: screen readers may skip a busy region, and the view's loading status and error
  // panels are in it. A view marks only the part that is being filled (the list's results).
  switch (route.name) {
    case "list":
      await renderList(ctx, main, route.params);
      break;
    case "post":
      await renderPost(ctx, main, route.id);
      break;
    case "new":
      await renderEditor(ctx, main, null);
      break;
    case "edit":
      await renderEditor(ctx, main, route.id);
      break;
    case "login":
      if (session.get()) return navigate(route.next ?? BASE_PATH, { replace: true }); // already signed in
      renderLogin(ctx, main, route.next, route.user);
      break;
    case "signup":
      // Signed in already (Back to the form, an old link): no account to create; on to where it would lead.
      if (session.get()) return navigate(route.next ?? BASE_PATH, { replace: true });
      renderSignup(ctx, main, route.next);
      break;
    case "notFound": {
      ctx.setTitle(tr.t("notFound.heading"));
      replace(
        main,
        h("h1", { attrs: { tabindex: -1 } }, tr.t("notFound.heading")),
        h("p", null, tr.t("notFound.body")),
        h("p", null, h("a", { attrs: { href: BASE_PATH } }, tr.t("notFound.home"))),
      );
    }
  }
  if (moveFocus && current === controller) {
    // Move focus to the new view's heading, as a page load would put a screen reader at the top.
    const target = main.querySelector<HTMLElement>("h1") ?? main;
    target.focus({ preventScroll: true });
    window.scrollTo(0, restoreScrollY ?? 0);
  }
  if (current === controller) restoreScrollY = null;
}

/** Same-app links are handled here; everything else (API, assets, other sites, new tabs) is left alone. */
document.addEventListener("click", (ev) => {
  if (ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
  const a = (ev.target as Element | null)?.closest?.("a[href]");
  if (!(a instanceof HTMLAnchorElement) || a.target || a.hasAttribute("download")) return;
  const url = new URL(a.href);
  if (url.origin !== location.origin || !url.pathname.startsWith(BASE_PATH)) return;
  if (url.pathname.startsWith(BLOG_API_PATH) || url.pathname.startsWith(ASSETS_PATH)) return;
  if (url.pathname === location.pathname && url.search === location.search && url.hash) return;
  ev.preventDefault();
  // `data-replace`: a link that swaps the page for its sibling (the login and sign-up forms' links to each
  // other), so Back does not step through every switch.
  navigate(url.pathname + url.search, { replace: a.hasAttribute("data-replace") });
});

window.addEventListener("popstate", (ev) => {
  // The entry left behind: where the reader was on it (a fragment's entry, which the browser made, has no key).
  if (entryKey) positions.set(entryKey, readerY);
  const state = ev.state as EntryState | null;
  entryKey = state?.key ?? "";
  // A link to a fragment of the page (a post's `#heading`) moves within it: nothing to render again.
  if (location.pathname + location.search === shown) return;
  const saved = positions.get(entryKey) ?? state?.scrollY;
  restoreScrollY = typeof saved === "number" ? saved : null;
  void render(true);
});
session.subscribe(() => renderChrome());

const legacy = fromLegacyHash(location.hash);
if (legacy) history.replaceState(null, "", href(legacy));
entryKey = entryState().key ?? newKey();
if (entryState().key === undefined) history.replaceState({ ...entryState(), key: entryKey } satisfies EntryState, "", location.href);
renderChrome();
void render(false);
