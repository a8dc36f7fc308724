// Create and edit a post: title, category (pick or type), Markdown content with a preview.
// A draft survives an expired session: it is parked in sessionStorage while the user signs in again.
import { ApiError, type Post, type PostInput, storedLength } from "../api.js";
import { describeError, refusedOwnPost, signedOut, type ViewContext } from "../context.js";
import { h, replace, uid } from "../dom.js";
import { href, type Route } from "../router.js";
import { isPlainCategoryName, LIMITS } from "../limits.js";
import { errorPanel, listCameFrom, loading, loadMarkdown, newVersionPanel } from "./parts.js";
import { busy, errorSummary, field, fieldProblems, type Field } from "./form.js";

/** One draft per post (and one for a new post), so editing one never overwrites another's. */
const DRAFT_PREFIX = "titanium.draft.";
const draftKey = (id: number | null) => `${DRAFT_PREFIX}${id ?? "new"}`;

/** An open preview is rendered again this long after the author stops typing. */
const PREVIEW_DELAY_MS = 250;

interface Draft extends PostInput {
  /** The post being edited, or null for a new one. */
  id: number | null;
  /** Who wrote it: another user signing in on this tab never sees it. */
  owner: string;
}

/** The draft `owner` left for post `id` (taken out of storage), or null; someone else's is dropped. */
function takeDraft(id: number | null, owner: string): Draft | null {
  try {
    const raw = sessionStorage.getItem(draftKey(id));
    if (!raw) return null;
    sessionStorage.removeItem(draftKey(id));
    const d = JSON.parse(raw) as Draft;
    return d.id === id && d.owner === owner ? d : null;
  } catch {
    return null;
  }
}

function parkDraft(d: Draft): void {
  try {
    sessionStorage.setItem(draftKey(d.id), JSON.stringify(d));
  } catch {
    // storage full or disabled: nothing more we can do
  }
}

/** Drops every draft of this tab (a logout: the next user of the tab must not find them). */
export function dropDrafts(): void {
  try {
    for (const key of Object.keys(sessionStorage)) if (key.startsWith(DRAFT_PREFIX)) sessionStorage.removeItem(key);
  } catch {
    // storage disabled: there are no drafts
  }
}

export async function renderEditor(ctx: ViewContext, main: HTMLElement, id: number | null): Promise<void> {
  const { t } = ctx.tr;
  const here: Route = id === null ? { name: "new" } : { name: "edit", id };
  const heading = h("h1", { attrs: { tabindex: -1 } }, id === null ? t("editor.newHeading") : t("editor.editHeading"));
  ctx.setTitle(heading.textContent ?? "");
  const session = ctx.session.get();
  if (!session) {
    ctx.toast(t("auth.loginFirst"), "info");
    ctx.navigate({ name: "login", next: href(here) }, { replace: true });
    return;
  }

  replace(main, heading, loading(t("post.loading")));
  let original: Post | null = null;
  let categories: string[] = [];
  try {
    const [post, cats] = await Promise.all([
      id === null ? Promise.resolve(null) : ctx.api.getPost(id),
      ctx.api.categories().catch(() => []),
    ]);
    original = post;
    categories = cats.map((c) => c.name);
  } catch (err) {
    if (ctx.signal.aborted) return;
    // A deleted post (Back to its editor, an old link): said as the post page says it, with nothing to retry.
    const gone = err instanceof ApiError && err.kind === "not_found";
    replace(main, heading, gone ? h("p", { class: "panel error", attrs: { role: "alert" } }, t("post.notFound")) : errorPanel(ctx, describeError(err, ctx.tr)));
    return;
  }
  if (ctx.signal.aborted) return;
  if (original && original.author !== session.username) {
    replace(main, heading, h("p", { class: "panel error", attrs: { role: "alert" } }, t("editor.notAuthor")),
      h("p", null, h("a", { attrs: { href: href({ name: "post", id: original.id }) } }, `← ${original.title}`)));
    return;
  }

  const draft = takeDraft(id, session.username);
  const saved: PostInput = {
    title: original?.title ?? "",
    category_name: original?.category.name ?? "",
    content: original?.content ?? "",
  };
  const initial: PostInput = draft ?? saved;

  // No `maxlength`: the browser counts it in UTF-16 units (an emoji is 2) where the service counts code
  // points; the limits are checked on submit (validate) as the service counts them, and the counter shows them.
  const listId = uid("categories");
  const title = field({
    name: "title",
    label: t("editor.title"),
    control: h("input", { attrs: { type: "text", required: true, autocomplete: "off" } }),
  });
  const category = field({
    name: "category_name",
    label: t("editor.category"),
    hint: t("editor.categoryHint"),
    control: h("input", { attrs: { type: "text", required: true, list: listId, autocomplete: "off" } }),
    extra: h("datalist", { attrs: { id: listId } }, categories.map((c) => h("option", { attrs: { value: c } }))),
  });
  const counter = h("small", { class: "counter", attrs: { "aria-live": "off" } });
  const content = field({
    name: "content",
    label: t("editor.content"),
    hint: t("editor.contentHint"),
    control: h("textarea", { attrs: { rows: 16, required: true, spellcheck: "true" } }),
    extra: counter,
  });
  title.control.value = initial.title;
  category.control.value = initial.category_name;
  content.control.value = initial.content;
  const updateCounter = () => {
    counter.textContent = t("editor.chars", { count: storedLength("content", content.control.value), max: LIMITS.content });
  };
  content.control.addEventListener("input", updateCounter);
  updateCounter();

  // Preview: rendered with the same sanitising pipeline as the post page.
  const previewId = uid("preview");
  const preview = h("section", { class: "prose preview", attrs: { id: previewId, hidden: true, "aria-label": t("editor.preview") } });
  const previewBtn = h("button", { class: "btn", attrs: { type: "button", "aria-expanded": "false", "aria-controls": previewId } }, t("editor.preview"));
  const renderPreview = async () => {
    const empty = () => replace(preview, h("p", { class: "empty" }, t("editor.previewEmpty")));
    if (!content.control.value.trim()) return empty();
    let md;
    try {
      md = await loadMarkdown();
    } catch {
      // A deploy replaced the Markdown module (the draft is kept in the tab's storage across a reload).
      replace(preview, newVersionPanel(ctx));
      return;
    }
    // The author may have typed on, or closed it, while the module loaded: show what is there now.
    if (preview.hidden) return;
    const src = content.control.value.trim();
    if (src) md.setMarkdown(preview, src, { table: (n) => t("post.table", { n }) });
    else empty();
  };
  previewBtn.addEventListener("click", () => {
    const open = preview.hidden;
    preview.hidden = !open;
    previewBtn.setAttribute("aria-expanded", String(open));
    if (open) void renderPreview();
  });
  // An open preview follows what is typed (shortly after the typing pauses), so it never shows an older text.
  let previewTimer: ReturnType<typeof setTimeout> | undefined;
  content.control.addEventListener("input", () => {
    if (preview.hidden) return;
    clearTimeout(previewTimer);
    previewTimer = setTimeout(() => {
      if (!ctx.signal.aborted && !preview.hidden) void renderPreview();
    }, PREVIEW_DELAY_MS);
  });

  const fields: Field[] = [title, category, content];
  const summary = errorSummary();
  const submit = h("button", { class: "btn primary", attrs: { type: "submit" } }, id === null ? t("editor.publish") : t("editor.save"));
  // A new post cancelled goes back to the list it was started from (its category, search and page).
  const cancelTo: Route = original ? { name: "post", id: original.id } : listCameFrom();

  const values = (): PostInput => ({
    title: title.control.value.trim(),
    category_name: category.control.value.trim(),
    content: content.control.value,
  });
  // What the author types is kept in the tab's session storage as they type: leaving the editor (a link,
  // Back, a reload) and coming back restores it. A save or Cancel drops it.
  const keepDraft = () => {
    const v = values();
    if (v.title === saved.title && v.category_name === saved.category_name && v.content === saved.content) takeDraft(id, session.username);
    else parkDraft({ ...v, id, owner: session.username });
  };
  for (const f of [title, category, content]) f.control.addEventListener("input", keepDraft);
  // A restored draft was taken out of storage: keep it there until it is saved or dropped.
  if (draft) keepDraft();

  const validate = (v: PostInput): { field: Field; message: string }[] => {
    const problems: { field: Field; message: string }[] = [];
    for (const f of fields) {
      const key = f.name as keyof PostInput;
      const value = key === "content" ? v.content.trim() : v[key];
      if (!value) problems.push({ field: f, message: t("editor.required", { field: f.label }) });
      else if (storedLength(key, v[key]) > LIMITS[key]) problems.push({ field: f, message: t("editor.tooLong", { field: f.label, max: LIMITS[key] }) });
      // The blog-service's rule, checked here so it is said in the UI's language (its own words are English).
      else if (key === "category_name" && !isPlainCategoryName(value)) problems.push({ field: f, message: t("editor.categoryMarkup", { field: f.label }) });
    }
    return problems;
  };

  const showProblems = (problems: { field?: Field; message: string }[]) => {
    for (const f of fields) f.setError(problems.find((p) => p.field === f)?.message ?? null);
    // "Please fix the following" only when there is something in the form to fix (not a network error).
    summary.show(problems.some((p) => p.field) ? t("editor.errorSummary") : t("error.title"), problems);
  };
  // Once saved (or cancelled) the editor leaves the history: Back goes to where the author was before it,
  // not to a form of what was just saved (or, after a delete, to the editor of a post that is gone). Opened
  // from the post, it goes back to that entry rather than adding a second one: otherwise each edit left a
  // copy of the post for Back to show again, and after a delete Back showed the deleted post's "not found".
  const leave = (to: Route) => ctx.navigate(to, { replace: true, back: true });

  const cancel = h("a", { class: "btn", attrs: { href: href(cancelTo) } }, t("editor.cancel"));
  cancel.addEventListener("click", (ev) => {
    // A plain click leaves as a save does, dropping the draft; a click for a new tab (a modifier key) leaves
    // the editor and its draft as they are.
    if (ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
    ev.preventDefault();
    takeDraft(id, session.username);
    leave(cancelTo);
  });

  const form = h(
    "form",
    {
      class: "editor",
      attrs: { novalidate: true },
      on: {
        submit: async (ev) => {
          ev.preventDefault();
          const v = values();
          const problems = validate(v);
          if (problems.length > 0) return showProblems(problems);
          for (const f of fields) f.setError(null);
          summary.clear();
          try {
            await busy(submit, t("editor.saving"), async () => {
              if (original === null) {
                const created = await ctx.api.createPost(v);
                takeDraft(id, session.username);
                ctx.toast(t("editor.created"), "success");
                leave({ name: "post", id: created.id });
                return;
              }
              const patch: Partial<PostInput> = {};
              if (v.title !== original.title) patch.title = v.title;
              if (v.category_name !== original.category.name) patch.category_name = v.category_name;
              if (v.content !== original.content) patch.content = v.content;
              if (Object.keys(patch).length === 0) {
                takeDraft(id, session.username);
                ctx.toast(t("editor.noChanges"), "info");
                leave({ name: "post", id: original.id });
                return;
              }
              await ctx.api.updatePost(original.id, patch);
              takeDraft(id, session.username);
              ctx.toast(t("editor.updated"), "success");
              leave({ name: "post", id: original.id });
            });
          } catch (err) {
            if (signedOut(ctx, err)) {
              parkDraft({ ...v, id, owner: session.username });
              ctx.navigate({ name: "login", next: href(here) });
              return;
            }
            // The post deleted meanwhile elsewhere: the service's 403 is no refusal of this author (the draft is kept).
            const refused = original === null ? null : await refusedOwnPost(ctx, err, original.id);
            if (ctx.signal.aborted) return;
            if (refused !== null) return showProblems([{ message: refused === "gone" ? t("post.notFound") : t("post.cannotChange") }]);
            if (err instanceof ApiError && err.kind === "in_doubt") {
              // The save may have been done: no "try again" (a second Publish made a second post), the draft
              // stays, and the author's own posts are one click away to check.
              const mine = h("p", null, h("a", { attrs: { href: href({ name: "list", params: { author: session.username, page: 1 } }) } }, t("editor.myPosts")));
              for (const f of fields) f.setError(null);
              summary.show(t("error.title"), [{ message: t("editor.inDoubt") }], mine);
              return;
            }
            const problems = fieldProblems(err, fields, ctx.tr);
            showProblems(problems.length > 0 ? problems : [{ message: describeError(err, ctx.tr) }]);
          }
        },
      },
    },
    summary.el,
    title.wrapper,
    category.wrapper,
    content.wrapper,
    h("div", { class: "actions" }, submit, previewBtn, cancel),
    preview,
  );
  replace(main, heading, form);
}
