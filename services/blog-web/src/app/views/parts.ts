// Small pieces shared by the views.
import type { CategoryRef } from "../api.js";
import type { ViewContext } from "../context.js";
import { h, uid } from "../dom.js";
import { href } from "../router.js";

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

/** A modal confirmation with the native <dialog> (focus is trapped and Escape cancels). */
export function confirmDialog(opts: { title: string; body: string; confirm: string; cancel: string }): Promise<boolean> {
  return new Promise((resolve) => {
    const titleId = uid("dialog-title");
    const cancel = h("button", { class: "btn", attrs: { type: "button" } }, opts.cancel);
    const ok = h("button", { class: "btn danger", attrs: { type: "button" } }, opts.confirm);
    const dialog = h(
      "dialog",
      { class: "dialog", attrs: { "aria-labelledby": titleId } },
      h("h2", { attrs: { id: titleId } }, opts.title),
      h("p", null, opts.body),
      h("div", { class: "actions" }, cancel, ok),
    );
    let result = false;
    cancel.addEventListener("click", () => dialog.close());
    ok.addEventListener("click", () => {
      result = true;
      dialog.close();
    });
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(result);
    });
    document.body.appendChild(dialog);
    dialog.showModal();
    cancel.focus(); // the safe choice has focus
  });
}
