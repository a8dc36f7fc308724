// Labelled form fields with hints and inline errors, and an error summary that takes focus.
import { ApiError } from "../api.js";
import { describeFieldError } from "../context.js";
import type { Translator } from "../i18n.js";
import { h, replace, uid } from "../dom.js";

export interface Field {
  name: string;
  label: string;
  wrapper: HTMLElement;
  control: HTMLInputElement | HTMLTextAreaElement;
  setError(message: string | null): void;
}

/**
 * The server's words for each field it refused, under the field's label: the server may start its
 * message with the field's name (`title: empty once markup is removed`), which the label replaces.
 */
export function fieldProblems(err: unknown, fields: Field[], tr: Translator): { field: Field; message: string }[] {
  if (!(err instanceof ApiError)) return [];
  return fields
    .filter((f) => err.fields[f.name])
    .map((f) => {
      const said = err.fields[f.name]!;
      const own = said.toLowerCase().startsWith(`${f.name.toLowerCase()}: `) ? said.slice(f.name.length + 2) : said;
      // Each of the rules it broke (`; `-joined), in the UI's language where the UI knows it.
      const text = own.split("; ").map((part) => describeFieldError(err, f.name, part, tr)).join("; ");
      return { field: f, message: `${f.label}: ${text}` };
    });
}

export function field(opts: {
  name: string;
  label: string;
  hint?: string;
  control: HTMLInputElement | HTMLTextAreaElement;
  extra?: HTMLElement;
}): Field {
  const id = uid(opts.name);
  const hintId = opts.hint ? uid(`${opts.name}-hint`) : null;
  const errId = uid(`${opts.name}-error`);
  const { control } = opts;
  control.id = id;
  control.name = opts.name;
  const error = h("p", { class: "field-error", attrs: { id: errId, hidden: true } });
  const describe = (withError: boolean) =>
    [hintId, withError ? errId : null].filter(Boolean).join(" ") || null;
  const d = describe(false);
  if (d) control.setAttribute("aria-describedby", d);
  const wrapper = h(
    "div",
    { class: "field" },
    h("label", { attrs: { for: id } }, opts.label),
    opts.hint ? h("small", { class: "hint", attrs: { id: hintId } }, opts.hint) : null,
    control,
    opts.extra,
    error,
  );
  return {
    name: opts.name,
    label: opts.label,
    wrapper,
    control,
    setError(message) {
      error.textContent = message ?? "";
      error.hidden = message === null;
      wrapper.classList.toggle("invalid", message !== null);
      if (message === null) control.removeAttribute("aria-invalid");
      else control.setAttribute("aria-invalid", "true");
      const desc = describe(message !== null);
      if (desc) control.setAttribute("aria-describedby", desc);
      else control.removeAttribute("aria-describedby");
    },
  };
}

/** A region that lists errors (each linking to its field) and takes focus so screen readers read it. */
export function errorSummary(): {
  el: HTMLElement;
  /** `extra`: shown below the list (a link to where the user can check something). */
  show(title: string, items: { field?: Field; message: string }[], extra?: Node): void;
  clear(): void;
} {
  const el = h("div", { class: "panel error", attrs: { tabindex: -1, hidden: true, role: "alert" } });
  return {
    el,
    show(title, items, extra) {
      const list = h(
        "ul",
        null,
        items.map((i) =>
          h(
            "li",
            null,
            i.field
              ? h(
                  "a",
                  {
                    attrs: { href: `#${i.field.control.id}` },
                    on: {
                      click: (ev) => {
                        ev.preventDefault();
                        i.field?.control.focus();
                      },
                    },
                  },
                  i.message,
                )
              : i.message,
          ),
        ),
      );
      replace(el, h("p", null, h("strong", null, title)), list, extra ?? null);
      el.hidden = false;
      el.focus();
    },
    clear() {
      el.hidden = true;
      replace(el);
    },
  };
}

/** Disables a form's submit button while a request runs, with a busy label. */
export async function busy<T>(button: HTMLButtonElement, label: string, work: () => Promise<T>): Promise<T> {
  const original = button.textContent;
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  button.textContent = label;
  try {
    return await work();
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
    button.textContent = original;
  }
}
