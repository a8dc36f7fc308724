// Log in and sign up.
import { ApiError } from "../api.js";
import { describeError, type ViewContext } from "../context.js";
import { h, replace } from "../dom.js";
import { href } from "../router.js";
import { isStrongPassword, isUsername, looksLikeEmail } from "../limits.js";
import { busy, errorSummary, field, fieldProblems, type Field } from "./form.js";

function requiredProblems(ctx: ViewContext, fields: Field[]): { field: Field; message: string }[] {
  return fields
    .filter((f) => f.control.value.trim() === "")
    .map((f) => ({ field: f, message: ctx.tr.t("editor.required", { field: f.label }) }));
}

export function renderLogin(ctx: ViewContext, main: HTMLElement, next?: string, prefill?: string): void {
  const { t } = ctx.tr;
  const heading = h("h1", { attrs: { tabindex: -1 } }, t("auth.loginHeading"));
  ctx.setTitle(t("auth.loginHeading"));
  const username = field({
    name: "username",
    label: t("auth.username"),
    control: h("input", { attrs: { type: "text", autocomplete: "username", required: true, maxlength: 100, autocapitalize: "none", spellcheck: "false" } }),
  });
  const password = field({
    name: "password",
    label: t("auth.password"),
    control: h("input", { attrs: { type: "password", autocomplete: "current-password", required: true, maxlength: 200 } }),
  });
  if (prefill) username.control.value = prefill;
  const fields = [username, password];
  const summary = errorSummary();
  const submit = h("button", { class: "btn primary", attrs: { type: "submit" } }, t("auth.loginSubmit"));
  const form = h(
    "form",
    {
      class: "auth",
      attrs: { novalidate: true },
      on: {
        submit: async (ev) => {
          ev.preventDefault();
          const missing = requiredProblems(ctx, fields);
          for (const f of fields) f.setError(missing.find((m) => m.field === f)?.message ?? null);
          if (missing.length > 0) return summary.show(t("editor.errorSummary"), missing);
          summary.clear();
          try {
            const s = await busy(submit, t("auth.working"), () =>
              ctx.api.login(username.control.value.trim(), password.control.value),
            );
            ctx.toast(t("auth.loggedIn", { username: s.username }), "success");
            // Back to the page the login was opened from (its own entry): Back then leaves it, not shows it twice.
            ctx.navigate(next ?? href({ name: "list", params: { page: 1 } }), { replace: true, back: true });
          } catch (err) {
            const bad = err instanceof ApiError && err.kind === "unauthorized";
            // Only a refused password is cleared: after a rate limit or a network error it is still the right one.
            if (bad) password.control.value = "";
            summary.show(t("error.title"), [{ message: bad ? t("auth.badCredentials") : describeError(err, ctx.tr) }]);
          }
        },
      },
    },
    summary.el,
    username.wrapper,
    password.wrapper,
    h("div", { class: "actions" }, submit),
  );
  replace(
    main,
    heading,
    form,
    h("p", null, `${t("auth.noAccount")} `, h("a", { attrs: { href: href({ name: "signup", next }), "data-replace": "" } }, t("nav.signup"))),
  );
}

/** `next`: where the reader was going (a page they were on, the editor); the login after sign-up goes there. */
export function renderSignup(ctx: ViewContext, main: HTMLElement, next?: string): void {
  const { t } = ctx.tr;
  const heading = h("h1", { attrs: { tabindex: -1 } }, t("auth.signupHeading"));
  ctx.setTitle(t("auth.signupHeading"));
  const username = field({
    name: "username",
    label: t("auth.username"),
    hint: t("auth.usernameHint"),
    control: h("input", {
      attrs: { type: "text", autocomplete: "username", required: true, minlength: 3, maxlength: 50, pattern: "[A-Za-z0-9_]+", autocapitalize: "none", spellcheck: "false" },
    }),
  });
  const email = field({
    name: "email",
    label: t("auth.email"),
    control: h("input", { attrs: { type: "email", autocomplete: "email", required: true, maxlength: 255 } }),
  });
  const password = field({
    name: "password",
    label: t("auth.password"),
    hint: t("auth.passwordHint"),
    control: h("input", { attrs: { type: "password", autocomplete: "new-password", required: true, minlength: 8, maxlength: 200 } }),
  });
  const fields = [username, email, password];
  const summary = errorSummary();
  const submit = h("button", { class: "btn primary", attrs: { type: "submit" } }, t("auth.signupSubmit"));
  const form = h(
    "form",
    {
      class: "auth",
      attrs: { novalidate: true },
      on: {
        submit: async (ev) => {
          ev.preventDefault();
          const missing = requiredProblems(ctx, fields);
          const broken = [
            { field: username, ok: isUsername(username.control.value.trim()), message: t("auth.usernameHint") },
            { field: email, ok: looksLikeEmail(email.control.value.trim()), message: t("auth.emailInvalid") },
            { field: password, ok: isStrongPassword(password.control.value), message: t("auth.passwordRules") },
          ]
            .filter((r) => !r.ok && !missing.some((m) => m.field === r.field))
            .map((r) => ({ field: r.field, message: `${r.field.label}: ${r.message}` }));
          const problems = [...missing, ...broken];
          for (const f of fields) f.setError(problems.find((m) => m.field === f)?.message ?? null);
          if (problems.length > 0) return summary.show(t("editor.errorSummary"), problems);
          summary.clear();
          const name = username.control.value.trim();
          try {
            await busy(submit, t("auth.working"), () =>
              ctx.api.signup({ username: name, email: email.control.value.trim(), password: password.control.value }),
            );
            ctx.toast(t("auth.signedUp"), "success");
            // The login takes the sign-up form's place: once signed in, Back never shows the form again.
            ctx.navigate({ name: "login", user: name, next }, { replace: true });
          } catch (err) {
            // The server names the rule that failed (reserved name, weak password, taken name).
            const problems = fieldProblems(err, fields, ctx.tr);
            for (const f of fields) f.setError(problems.find((p) => p.field === f)?.message ?? null);
            summary.show(t("error.title"), problems.length > 0 ? problems : [{ message: describeError(err, ctx.tr) }]);
          }
        },
      },
    },
    summary.el,
    username.wrapper,
    email.wrapper,
    password.wrapper,
    h("div", { class: "actions" }, submit),
  );
  replace(
    main,
    heading,
    form,
    h("p", null, `${t("auth.haveAccount")} `, h("a", { attrs: { href: href({ name: "login", next }), "data-replace": "" } }, t("nav.login"))),
  );
}
