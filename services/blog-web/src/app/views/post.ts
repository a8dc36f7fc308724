// A post: Markdown rendered safely, edit and delete for its author.
import { ApiError } from "../api.js";
import { describeError, refusedOwnPost, signedOut, type ViewContext } from "../context.js";
import { h, replace } from "../dom.js";
import { href } from "../router.js";
import { busy } from "./form.js";
import { categoryBadge, confirmDialog, errorPanel, listCameFrom, loading, loadMarkdown, NewVersionError, newVersionPanel } from "./parts.js";

export async function renderPost(ctx: ViewContext, main: HTMLElement, id: number): Promise<void> {
  const { t, date } = ctx.tr;
  const back = h("p", { class: "back" }, h("a", { attrs: { href: href({ name: "list", params: { page: 1 } }) } }, `← ${t("post.back")}`));
  replace(main, back, loading(t("post.loading")));
  ctx.setTitle(t("post.loading"));

  let post;
  let md;
  let categories;
  try {
    [post, md, categories] = await Promise.all([
      ctx.api.getPost(id),
      loadMarkdown(),
      ctx.api.categories().catch(() => []), // only for the category's colour
    ]);
  } catch (err) {
    if (ctx.signal.aborted) return;
    const notFound = err instanceof ApiError && err.kind === "not_found";
    const heading = h("h1", { attrs: { tabindex: -1 } }, notFound ? t("notFound.heading") : t("error.title"));
    ctx.setTitle(heading.textContent ?? "");
    const panel = notFound
      ? h("p", null, t("post.notFound"))
      : err instanceof NewVersionError
        ? newVersionPanel(ctx)
        : errorPanel(ctx, describeError(err, ctx.tr));
    replace(main, back, heading, panel);
    return;
  }
  if (ctx.signal.aborted) return;

  const body = h("div", { class: "prose" });
  md.setMarkdown(body, post.content, { table: (n) => t("post.table", { n }) });

  const isAuthor = ctx.session.get()?.username === post.author;
  const edited = post.updated_at && post.updated_at !== post.created_at;
  const actions = isAuthor
    ? h(
        "div",
        { class: "actions", attrs: { role: "group", "aria-label": t("post.actions") } },
        h("a", { class: "btn", attrs: { href: href({ name: "edit", id: post.id }) } }, t("post.edit")),
        h(
          "button",
          {
            class: "btn danger",
            attrs: { type: "button" },
            on: {
              click: async (ev) => {
                const button = ev.currentTarget as HTMLButtonElement;
                const ok = await confirmDialog({
                  title: t("post.deleteTitle"),
                  body: t("post.deleteBody", { title: post.title }),
                  confirm: t("post.deleteConfirm"),
                  cancel: t("post.deleteCancel"),
                  signal: ctx.signal,
                });
                // The reader may have left the post while the dialog was open: never act on a view left behind.
                if (!ok || ctx.signal.aborted) return;
                try {
                  // Disabled while the request runs: a second confirmation would delete a deleted post (an error).
                  await busy(button, t("post.deleting"), () => ctx.api.deletePost(post.id));
                  ctx.toast(t("post.deleted"), "success");
                  // Replacing the deleted post's history entry: Back must not lead to its 404. Opened from the
                  // list, it goes back to the list's entry instead (its category, search and page): replaced,
                  // the history would hold the list twice, and Back would stay on it.
                  ctx.navigate(listCameFrom(), { replace: true, back: true });
                } catch (err) {
                  if (signedOut(ctx, err)) {
                    // Sign in again and come back to this post.
                    ctx.navigate({ name: "login", next: href({ name: "post", id: post.id }) });
                    return;
                  }
                  // Deleted meanwhile elsewhere (the service answers 403 for a post it no longer has): what the
                  // author wanted is done, so the post is left as after a delete.
                  const refused = await refusedOwnPost(ctx, err, post.id);
                  if (ctx.signal.aborted) return;
                  if (refused === "gone") {
                    ctx.toast(t("post.alreadyDeleted"), "info");
                    ctx.navigate(listCameFrom(), { replace: true, back: true });
                    return;
                  }
                  ctx.toast(refused === "refused" ? t("post.cannotChange") : describeError(err, ctx.tr), "error");
                }
              },
            },
          },
          t("post.delete"),
        ),
      )
    : null;

  const article = h(
    "article",
    { class: "post" },
    h(
      "header",
      null,
      h("h1", { attrs: { tabindex: -1 } }, post.title),
      h(
        "p",
        { class: "meta" },
        categoryBadge({ ...post.category, color: post.category.color ?? categories.find((c) => c.id === post.category.id)?.color }),
        h("a", { attrs: { href: href({ name: "list", params: { author: post.author, page: 1 } }), title: t("post.postsBy", { author: post.author }) } },
          t("post.by", { author: post.author })),
        h("time", { attrs: { datetime: post.created_at } }, t("post.published", { date: date(post.created_at) })),
        edited ? h("time", { attrs: { datetime: post.updated_at } }, t("post.updated", { date: date(post.updated_at) })) : null,
      ),
      actions,
    ),
    body,
  );
  replace(main, back, article);
  ctx.setTitle(post.title);
}
