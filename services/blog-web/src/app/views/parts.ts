// Small pieces shared by the views.
import type { CategoryRef } from "../api.js";
import type { ViewContext } from "../context.js";
import { h, uid } from "../dom.js";
import { href, listFrom, type Route } from "../router.js";

/** A decorative colour dot; the colour is set through CSSOM, which the CSP allows (no style attribute). */
export function colorDot(color: string | undefined): HTMLElement {
  const dot = h("span", { class: "dot", attrs: { "aria-hidden": "true" } });
  if (color && /^#[0-9a-fA-F]{3,8}$/.test(color)) dot.style.backgroundColor = color;
  return dot;
}

export function categoryBadge(c: CategoryRef): HTMLElement {
  const dot = colorDot(c.color);
  return h("a", { class: "badge", attrs: { href: href({ name: "list", params: { category: c.slug, page: 1 } }) } }, dot, c.name);
}

export function loading(text: string): HTMLElement {
  return h("p", { class: "loading", attrs: { role: "status" } }, h("span", { class: "spinner", attrs: { "aria-hidden": "true" } }), text);
}

/**
 * The Markdown module, loaded on demand. Its file is named by the build that served this page: after a
 * deploy the server has only the new build's files, so a tab opened before it gets a 404 for the old one.
 * That failure is a NewVersionError (not an ApiError), shown as newVersionPanel rather than a server error.
 */
export class NewVersionError extends Error {
  constructor(cause: unknown) {
    super("The Markdown module could not be loaded (a newer version of the app is deployed?)", { cause });
    this.name = "NewVersionError";
  }
}

export function loadMarkdown(): Promise<typeof import("../markdown.js")> {
  return import("../markdown.js").catch((err: unknown) => {
    throw new NewVersionError(err);
  });
}

/** Says a new version is available, with a button that reloads the page (drafts are kept in the tab's storage). */
export function newVersionPanel(ctx: ViewContext): HTMLElement {
  return h(
    "div",
    { class: "panel error", attrs: { role: "alert" } },
    h("p", null, ctx.tr.t("error.newVersion")),
    h("button", { class: "btn primary", attrs: { type: "button" }, on: { click: () => location.reload() } }, ctx.tr.t("error.reload")),
  );
}

/** An error with a retry button that reloads the current view. */
export function errorPanel(ctx: ViewContext, message: string): HTMLElement {
  return h(
    "div",
    { class: "panel error", attrs: { role: "alert" } },
    h("p", null, message),
    h(
      "button",
      {
        class: "btn",
        attrs: { type: "button" },
        on: { click: () => ctx.navigate(location.pathname + location.search, { replace: true }) },
      },
      ctx.tr.t("error.retry"),
    ),
  );
}

/**
 * A modal confirmation with the native <dialog> (focus is trapped and Escape cancels). It belongs to the view
 * that opened it: when `signal` aborts (the user navigated away, e.g. with Back) it closes, answering false.
 */
export function confirmDialog(opts: { title: string; body: string; confirm: string; cancel: string; signal: AbortSignal }): Promise<boolean> {
  return new Promise((resolve) => {
    if (opts.signal.aborted) return resolve(false);
    const titleId = uid("dialog-title");
    const bodyId = uid("dialog-body");
    const cancel = h("button", { class: "btn", attrs: { type: "button" } }, opts.cancel);
    const ok = h("button", { class: "btn danger", attrs: { type: "button" } }, opts.confirm);
    const dialog = h(
      "dialog",
      // Named by its heading and described by its sentence: a screen reader says what will be deleted.
      { class: "dialog", attrs: { "aria-labelledby": titleId, "aria-describedby": bodyId } },
      h("h2", { attrs: { id: titleId } }, opts.title),
      h("p", { attrs: { id: bodyId } }, opts.body),
      h("div", { class: "actions" }, cancel, ok),
    );
    let result = false;
    cancel.addEventListener("click", () => dialog.close());
    ok.addEventListener("click", () => {
      result = true;
      dialog.close();
    });
    const abandon = () => {
      result = false;
      dialog.close();
    };
    opts.signal.addEventListener("abort", abandon, { once: true });
    dialog.addEventListener("close", () => {
      opts.signal.removeEventListener("abort", abandon);
      dialog.remove();
      resolve(result && !opts.signal.aborted);
    });
    document.body.appendChild(dialog);
    dialog.showModal();
    cancel.focus(); // the safe choice has focus
  });
}

/**
 * The list this page was opened from (its category, search and page), from the history entry, or the first
 * page of all posts: where a delete or a cancelled new post leads.
 */
export function listCameFrom(): Route {
  return listFrom((history.state as { from?: unknown } | null)?.from) ?? { name: "list", params: { page: 1 } };
}
