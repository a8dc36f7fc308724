// The blog web UI in a real browser (Debian Chromium) against the local platform started by this test:
// the issue's whole journey, stored XSS, search, pagination, accessibility, and the Korean locale.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Page } from "playwright-core";
import { ApiUser, launchBrowser, openPage, PASSWORD, runId, seriousA11yViolations, type Browser, type Watched } from "./browser/harness.js";
import { startPlatform, type Platform } from "./browser/platform.js";
import { PAGE_SIZE } from "../src/app/limits.js";
import { fromStored, toStored } from "../src/app/text.js";
import { build } from "../src/build.js";

/**
 * How long a UI state may take to appear after a click: a login runs an Argon2id verification, and when the
 * rest of the suite loads both cores a round trip can take seconds (expect.poll's default is 1 s).
 */
const UI_WAIT = { timeout: 10_000 };
let platform: Platform;
let browser: Browser;
let base: string;
const id = runId();
const alice = `alice_${id}`;
const bob = `bob_${id}`;
const opened: Watched[] = [];

beforeAll(async () => {
  // Test the UI as the sources are now (the blog-service loads dist/ when it starts).
  if (!process.env.BLOG_WEB_BASE_URL) await build();
  [platform, browser] = await Promise.all([startPlatform(), launchBrowser()]);
  base = platform.baseUrl;
  // The tab Chromium opened at launch stays on the site (a JSON document: no app running in it), so its
  // renderer lives between the tests and each test's new tabs join it (--process-per-site) instead of
  // starting another. Tabs opened while another on the site is open share its process.
  const first = browser.context.pages()[0] ?? (await browser.context.newPage());
  await first.goto(`${base}/blog/api/categories`);
}, 90_000);

// A test's tabs end with it: checked (anything that went wrong in them fails the test that opened them, not a
// later one), then closed so that they do not weigh on the renderer later tests share.
afterEach(async () => {
  const done = opened.splice(0);
  try {
    expectCleanPages(done);
  } finally {
    await Promise.all(done.map((w) => w.page.close()));
  }
});

afterAll(async () => {
  await browser?.close();
  await platform?.stop();
});

async function tab(): Promise<Watched> {
  const w = await openPage(browser);
  opened.push(w);
  return w;
}

/** Nothing went wrong in the app's pages: no script errors, no dialogs, no CSP or Trusted Types violations. */
function expectCleanPages(pages: Watched[]) {
  for (const w of pages) {
    expect(w.errors, "page errors").toEqual([]);
    expect(w.dialogs, "dialogs").toEqual([]);
    expect(w.violations, "CSP violations").toEqual([]);
    expect(w.offsite, "requests to other origins").toEqual([]);
  }
}

/** Chromium reports a CSP violation when DOMPurify's inert parse meets an event-handler attribute (nothing runs). */
const isCspReport = (m: string) => /violates the following Content Security Policy directive/.test(m);

/**
 * Logs in through the login form. With `next` (a path under /blog/, with its query), the form is the one a
 * "log in to continue" link opens (`/blog/login?next=…`) and leads on to that page by itself, in the same
 * document: one page load instead of the login's and then the page's. The page is then shown by the app's
 * own navigation (focus on its heading, the login's "Welcome" toast still up, no login entry left in the
 * history), so tests that judge a fresh load, the toasts or the history before it load the page themselves.
 */
async function loginViaUi(page: Page, username: string, next?: string) {
  await page.goto(`${base}/blog/login${next === undefined ? "" : `?next=${encodeURIComponent(next)}`}`);
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Log in" }).click();
  await expect.poll(() => page.getByText(`Signed in as ${username}`).isVisible(), UI_WAIT).toBe(true);
  if (next !== undefined) await page.waitForURL((u) => u.pathname + u.search === next);
}

describe("blog web UI in Chromium", () => {
  it("signup → login → write with Markdown → list and category → edit → another user is refused → delete", async () => {
    const { page } = await tab();
    const landing = await page.goto(`${base}/`);
    expect(new URL(page.url()).pathname).toBe("/blog/");
    // The page as the gateway delivers it carries the strict policy (no inline script or style).
    expect(landing?.headers()["content-security-policy"]).toMatch(/script-src 'self'(;|$)/);
    expect(landing?.headers()["content-security-policy"]).not.toMatch(/unsafe-inline|unsafe-eval/);

    // Sign up, then log in with the name carried over.
    await page.getByRole("link", { name: "Sign up" }).click();
    await page.getByLabel("Username").fill(alice);
    await page.getByLabel("Email").fill(`${alice}@example.com`);
    // The account rules are checked first, in the UI's language, on the field they concern.
    await page.getByLabel("Password").fill("weakpassword1");
    await page.getByRole("button", { name: "Create account" }).click();
    await page.locator(".field-error", { hasText: "Password: at least 8 characters, with an upper-case letter" }).waitFor();
    expect(await page.getByLabel("Password").getAttribute("aria-invalid")).toBe("true");
    // What only the server knows (a reserved name) lands on the field it names, the name said once.
    await page.getByLabel("Username").fill("Admin");
    await page.getByLabel("Password").fill(PASSWORD);
    await page.getByRole("button", { name: "Create account" }).click();
    await page.locator(".field-error", { hasText: "Username: this username is reserved" }).waitFor();
    expect((await page.locator(".field-error").allTextContents()).filter(Boolean)).toEqual(["Username: this username is reserved"]);
    await page.getByLabel("Username").fill(alice);
    await page.getByRole("button", { name: "Create account" }).click();
    await page.waitForURL(/\/blog\/login\?user=/);
    await expect.poll(() => page.getByLabel("Username").inputValue(), UI_WAIT).toBe(alice);
    await page.getByLabel("Password").fill(PASSWORD);
    await page.getByRole("button", { name: "Log in" }).click();
    await page.getByText(`Signed in as ${alice}`).waitFor();

    // Write a post with Markdown in a new category.
    // A title and a code span naming an HTML tag: stored and shown as written, not stripped as markup.
    const title = `Mesh notes ${id} on <main>`;
    const category = `Journey ${id}`;
    await page.getByRole("link", { name: "Write" }).click();
    await page.getByLabel("Title").fill(title);
    await page.getByLabel("Category").fill(category);
    await page.getByLabel("Content (Markdown)").fill(
      `## Why STRICT mTLS\n\nEvery hop is **encrypted**, wrapped in \`<main>\`.\n\n![the mesh diagram](https://example.com/mesh.png)\n\n- one\n- two\n\n> Tom & Jerry\n\n\`\`\`ts\nconst mode: string = "STRICT";\nif (a < b && c > d) {}\n\`\`\`\n`,
    );
    await page.getByRole("button", { name: "Publish" }).click();
    await page.waitForURL(/\/blog\/posts\/\d+$/);
    const postId = Number(new URL(page.url()).pathname.split("/").pop());
    await expect.poll(() => page.getByRole("heading", { level: 1 }).textContent(), UI_WAIT).toBe(title);
    expect(await page.locator(".prose h3").textContent()).toBe("Why STRICT mTLS"); // Markdown levels shift down one (`##` → h3): the title is the one h1
    expect(await page.locator(".prose strong").textContent()).toBe("encrypted");
    expect(await page.locator(".prose p code").first().textContent()).toBe("<main>");
    // An image from another site (the CSP would block it: a broken image) becomes a link to it.
    expect(await page.locator(".prose img").count()).toBe(0);
    const offsite = page.locator(".prose a.offsite-image");
    expect([await offsite.textContent(), await offsite.getAttribute("href"), await offsite.getAttribute("rel")]).toEqual(["the mesh diagram", "https://example.com/mesh.png", "noopener noreferrer nofollow"]);
    expect(await page.locator(".prose li").count()).toBe(2);
    expect(await page.locator(".prose pre code.language-ts .hljs-keyword").first().textContent()).toBe("const");
    // Characters the server's sanitiser stores escaped come back as written (quote, comparison, ampersand).
    const asWritten = async () => {
      expect(await page.locator(".prose blockquote").textContent()).toContain("Tom & Jerry");
      expect(await page.locator(".prose pre code").textContent()).toContain("if (a < b && c > d) {}");
    };
    await asWritten();
    // Focus moved to the new page's heading (keyboard and screen-reader users land on the content).
    expect(await page.evaluate(() => document.activeElement?.tagName)).toBe("H1");

    // It is in the list, and under its category tab with a count.
    await page.getByRole("link", { name: "All posts" }).click();
    await page.getByRole("link", { name: title }).waitFor();
    await page.getByRole("navigation", { name: "Categories" }).getByRole("link", { name: `${category} (1)` }).click();
    await page.waitForURL(/category=/);
    await page.getByRole("heading", { level: 1, name: `Posts in ${category}` }).waitFor();
    expect(await page.locator(".posts > li").count()).toBe(1);
    await page.getByRole("link", { name: title }).click();

    // Edit.
    await page.getByRole("link", { name: "Edit" }).click();
    await page.waitForURL(/\/edit$/);
    expect(await page.getByLabel("Title").inputValue()).toBe(title);
    expect(await page.getByLabel("Content (Markdown)").inputValue()).toContain("> Tom & Jerry");
    await page.getByLabel("Title").fill(`${title} (revised)`);
    await page.getByLabel("Content (Markdown)").press("End");
    await page.getByLabel("Content (Markdown)").pressSequentially("\nEdited.");
    await page.getByRole("button", { name: "Save changes" }).click();
    await page.waitForURL(new RegExp(`/blog/posts/${postId}$`));
    await expect.poll(() => page.getByRole("heading", { level: 1 }).textContent(), UI_WAIT).toBe(`${title} (revised)`);
    await page.getByText("Edited.").waitFor();
    await asWritten(); // an edit does not escape them a second time

    // Another user: no edit or delete button, the editor says no, and the API refuses.
    const other = await tab();
    await new ApiUser(base, bob).signup();
    await loginViaUi(other.page, bob, `/blog/posts/${postId}`);
    await other.page.getByRole("heading", { level: 1, name: `${title} (revised)` }).waitFor();
    expect(await other.page.getByRole("link", { name: "Edit" }).count()).toBe(0);
    expect(await other.page.getByRole("button", { name: "Delete" }).count()).toBe(0);
    await other.page.goto(`${base}/blog/posts/${postId}/edit`);
    await other.page.getByText("You can only edit your own posts.").waitFor();
    const refused = await other.page.evaluate(async (pid) => {
      const token = (JSON.parse(sessionStorage.getItem("titanium.session") ?? "{}") as { token?: string }).token;
      const headers = { Authorization: `Bearer ${token}`, "Content-Type": "application/json" };
      const patch = await fetch(`/blog/api/posts/${pid}`, { method: "PATCH", headers, body: JSON.stringify({ title: "hijacked" }) });
      const del = await fetch(`/blog/api/posts/${pid}`, { method: "DELETE", headers });
      return [patch.status, del.status];
    }, postId);
    expect(refused).toEqual([403, 403]);

    // Delete: the modal dialog opens with focus on the safe choice and Escape backs out; then confirm.
    await page.getByRole("button", { name: "Delete" }).click();
    const dialog = page.getByRole("dialog", { name: "Delete this post?" });
    await dialog.waitFor();
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe("Keep it");
    await page.keyboard.press("Escape");
    await dialog.waitFor({ state: "detached" });
    expect((await fetch(`${base}/blog/api/posts/${postId}`)).status).toBe(200);
    await page.getByRole("button", { name: "Delete" }).click();
    await dialog.waitFor();
    await dialog.getByRole("button", { name: "Delete post" }).click();
    // Back to the list the post was opened from: the category's.
    await page.waitForURL(/\/blog\/\?category=journey-/);
    await page.getByText("Post deleted.").waitFor();
    expect(await page.getByRole("link", { name: `${title} (revised)` }).count()).toBe(0);
    expect((await fetch(`${base}/blog/api/posts/${postId}`)).status).toBe(404);

    // Log out.
    await page.getByRole("button", { name: "Log out" }).click();
    await page.getByRole("link", { name: "Log in" }).waitFor();
  });

  it("renders stored script payloads inert in the list, the post and the editor preview", async () => {
    const author = await new ApiUser(base, `xss_${id}`).signup().then((u) => u.login());
    const title = `XSS ${id} <script>window.__pwned='title-script'</script><img src=x onerror="window.__pwned='title-img'">`;
    const payload = [
      `<script>window.__pwned='script'</script>`,
      `<img src=x onerror="window.__pwned='img'">`,
      `<svg onload="window.__pwned='svg'"></svg>`,
      `<a href="javascript:window.__pwned='a-href'">html link</a>`,
      `[md link](javascript:window.__pwned='md-link')`,
      `[md link 2](JaVaScRiPt:window.__pwned='md-link-case')`,
      `![md image](javascript:window.__pwned='md-img')`,
      `<iframe src="javascript:window.__pwned='iframe'"></iframe>`,
      `<p style="background:url(javascript:window.__pwned='style')">styled</p>`,
      `<details open ontoggle="window.__pwned='toggle'">x</details>`,
      // The page's own hooks and look: a data attribute its code reads, its toast styling, its element ids.
      `<img data-offsite-src="javascript:window.__pwned='offsite'" data-offsite="0" alt="offsite trick">`,
      `<div class="toasts" id="locale"><p>Session expired: log in at evil.example</p></div>`,
      // A floating box and screen-reader alerts dressed as the app's own.
      `<dialog open><p>Your session expired: log in again at evil.example</p></dialog>`,
      `<p role="alert" aria-live="assertive">Your session expired</p>`,
    ].join("\n\n");
    const postId = await author.createPost(title, payload, `Security ${id}`);
    // The same post as the UI stores it (raw HTML escaped by the editor, decoded and rendered on every reader's page).
    // A title with characters the page must show literally, never as markup (the UI's own way of storing it).
    const literalTitle = `UI XSS ${id} <b>bold</b> & "q" <img src=x onerror="window.__pwned='title-img'">`;
    const storedId = await author.createPost(toStored(literalTitle), toStored(payload), `Security ${id}`);
    // The raw title: whatever the server's sanitiser keeps of it is what the page must show, as text.
    const rawTitle = fromStored(((await (await fetch(`${base}/blog/api/posts/${postId}`)).json()) as { title: string }).title);
    expect(rawTitle).toContain(`XSS ${id}`);

    // Not in `opened`: its CSP reports are expected (see isCspReport); it gets its own checks below.
    const w = await openPage(browser);
    const { page } = w;
    // The payload's `<img src=x>`, kept without its handler, loads `x` next to the page and gets a 404.
    w.expectedFailures.push(/^https?:\/\/[^/]+\/blog\/(posts\/)?x$/);
    const inert = async () => {
      expect(await page.evaluate(() => (window as unknown as { __pwned?: string }).__pwned)).toBeUndefined();
      const bad = await page.evaluate(() => ({
        jsLinks: [...document.querySelectorAll("[href],[src],[action],[formaction]")]
          .map((e) => e.getAttribute("href") ?? e.getAttribute("src") ?? e.getAttribute("action") ?? e.getAttribute("formaction") ?? "")
          .filter((v) => /^\s*javascript:/i.test(v)),
        handlers: [...document.querySelectorAll("*")].flatMap((e) => [...e.attributes].filter((a) => /^on/i.test(a.name)).map((a) => `${e.tagName}[${a.name}]`)),
        scripts: [...document.querySelectorAll("main script, main iframe, main svg[onload]")].length,
      }));
      expect(bad).toEqual({ jsLinks: [], handlers: [], scripts: 0 });
    };

    /** Text, exactly, and no element inside: a title is never parsed as HTML. */
    const asText = (selector: string) =>
      page.locator(selector).evaluateAll((els) => els.map((e) => ({ text: e.textContent, elements: e.childElementCount })));
    await page.goto(`${base}/blog/?q=${encodeURIComponent(`XSS ${id}`)}`);
    await page.locator(".posts > li").nth(1).waitFor();
    await inert();
    expect(new Set(await asText(".posts .card-title a"))).toEqual(new Set([{ text: rawTitle, elements: 0 }, { text: literalTitle, elements: 0 }]));
    expect(await page.locator(".posts .card-title").evaluateAll((els) => els.map((e) => e.childElementCount))).toEqual([1, 1]);

    await page.goto(`${base}/blog/posts/${postId}`);
    await page.locator(".prose").waitFor();
    expect(await asText("h1")).toEqual([{ text: rawTitle, elements: 0 }]);
    // Rendered, only defanged: the text stays, the javascript: target does not.
    await page.locator(".prose a", { hasText: "md link 2" }).waitFor();
    expect(await page.locator(".prose a[href]").count()).toBe(0);
    await inert();
    // Clicking what is left of the links runs nothing either: checked after each click, on the same page.
    const links = await page.locator(".prose a").all();
    expect(links.length).toBeGreaterThan(0);
    for (const link of links) {
      await link.click();
      await inert();
    }
    expect(new URL(page.url()).pathname).toBe(`/blog/posts/${postId}`);

    // As the UI stores it, the server's sanitiser never sees the tags: the browser's alone keeps them inert.
    await page.goto(`${base}/blog/posts/${storedId}`);
    await page.locator(".prose").waitFor();
    expect(await asText("h1")).toEqual([{ text: literalTitle, elements: 0 }]);
    await page.locator(".prose a", { hasText: "md link 2" }).waitFor();
    expect(await page.locator(".prose a[href]").count()).toBe(0);
    expect(await page.locator(".prose [class]:not([class^='hljs']):not([class^='language-']), .prose [id], .prose [data-offsite], .prose [data-offsite-src]").count()).toBe(0);
    expect(await page.locator(".prose dialog, .prose [role], .prose [aria-live]").count()).toBe(0);
    await inert();

    // The preview renders raw Markdown the server has not seen: the browser-side sanitiser alone.
    await loginViaUi(page, author.username, "/blog/new");
    await page.getByLabel("Content (Markdown)").fill(payload);
    await page.getByRole("button", { name: "Preview" }).click();
    await page.locator(".preview a").first().waitFor();
    await inert();
    await page.waitForTimeout(100); // give a late onerror/onload a chance to fire
    await inert();
    expect(w.dialogs).toEqual([]);
    expect(w.offsite).toEqual([]);
    expect(w.errors.filter((e) => !isCspReport(e))).toEqual([]);
    // The only reports are the blocked attributes themselves (the CSP as a second line), never a script;
    // at least one came: the policy was in force on this page.
    expect(w.violations.length).toBeGreaterThan(0);
    for (const v of w.violations) expect(v).toMatch(/^(script-src-attr|style-src-attr|script-src|style-src) inline/);
    await page.close();
  });

  it("finds a post by a word in its body and pages through more than one page", async () => {
    const word = `zebrafish${id}`;
    const category = `Paging ${id}`;
    const writers = await Promise.all([`carol_${id}`, `dave_${id}`].map((n) => new ApiUser(base, n).signup().then((u) => u.login())));
    const total = PAGE_SIZE + 3;
    for (let i = 0; i < total; i++) {
      const writer = writers[i % writers.length]!;
      const body = i === 4 ? `The ${word} swims through the mesh.` : `Post ${i} about sidecars.`;
      await writer.createPost(`Paged ${id} #${i}`, body, category);
    }

    const { page } = await tab();
    // Search from the form by a word that only appears in one body.
    await page.goto(`${base}/blog/`);
    await page.getByLabel("Words").fill(word);
    await page.getByRole("button", { name: "Search" }).click();
    await page.waitForURL(/q=/);
    await page.getByRole("heading", { level: 2, name: "1 post" }).waitFor();
    expect(await page.locator(".posts .card-title").allTextContents()).toEqual([`Paged ${id} #4`]);
    // Under a search the tabs show no counts: theirs are of all posts, not of what the tab would list.
    await page.getByRole("navigation", { name: "Categories" }).getByRole("link", { name: category, exact: true }).waitFor();
    expect(await page.locator(".tabs .count").count()).toBe(0);

    // Page through the category: page 1 is full, page 2 has the rest, no post twice.
    await page.getByRole("link", { name: "Titanium Blog", exact: true }).click();
    await page.waitForURL((u) => u.pathname === "/blog/" && u.search === "");
    await page.getByRole("navigation", { name: "Categories" }).getByRole("link", { name: `${category} (${total})` }).click();
    await page.getByText("Page 1 of 2").waitFor();
    const first = await page.locator(".posts .card-title").allTextContents();
    expect(first).toHaveLength(PAGE_SIZE);
    await page.getByRole("navigation", { name: "Pages" }).getByRole("link", { name: "Next" }).click();
    await page.getByText("Page 2 of 2").waitFor();
    const second = await page.locator(".posts .card-title").allTextContents();
    expect(second).toHaveLength(total - PAGE_SIZE);
    expect(new Set([...first, ...second]).size).toBe(total);
    expect(first[0]).toBe(`Paged ${id} #${total - 1}`); // newest first
    expect(await page.getByRole("link", { name: "Next" }).count()).toBe(0);
    await page.getByRole("link", { name: "Page 1", exact: true }).click();
    await page.getByText("Page 1 of 2").waitFor();

    // The author filter narrows to one writer's posts.
    await page.locator(".posts .meta a", { hasText: `by ${writers[1]!.username}` }).first().click();
    await page.getByRole("heading", { level: 1, name: `Posts by ${writers[1]!.username}` }).waitFor();
    await page.locator(".posts > li").first().waitFor();
    const authors = await page.locator(".posts .meta a:not(.badge)").allTextContents();
    expect(new Set(authors)).toEqual(new Set([`by ${writers[1]!.username}`]));
  });

  it("refreshes the access token quietly, and keeps the draft when the session cannot be refreshed", async () => {
    const writer = await new ApiUser(base, `fay_${id}`).signup();
    const { page } = await tab();
    const calls: string[] = [];
    page.on("response", (r) => {
      const u = new URL(r.url());
      if (u.pathname.startsWith("/api/") || u.pathname.startsWith("/blog/api/")) calls.push(`${r.request().method()} ${u.pathname} ${r.status()}`);
    });
    const session = () => page.evaluate(() => JSON.parse(sessionStorage.getItem("titanium.session") ?? "null") as { refreshToken: string } | null);
    // A new post's editor: the login leads there first, then the header's Write link (the session's handling
    // is what is judged here, not how the editor is reached).
    const draft = async (title: string) => {
      if (new URL(page.url()).pathname !== "/blog/new") {
        await page.getByRole("link", { name: "Write" }).click();
        await page.waitForURL(/\/blog\/new$/);
      }
      await page.getByLabel("Title").fill(title);
      await page.getByLabel("Category").fill(`Sessions ${id}`);
      await page.getByLabel("Content (Markdown)").fill("Written while the token aged.");
    };
    await loginViaUi(page, writer.username, "/blog/new");

    // An access token about to expire is refreshed before the write; the refresh token rotates.
    await draft(`Fresh token ${id}`);
    const before = (await session())!.refreshToken;
    await page.evaluate(() => {
      const s = JSON.parse(sessionStorage.getItem("titanium.session")!) as { expiresAt: number };
      s.expiresAt = Date.now() + 1_000;
      sessionStorage.setItem("titanium.session", JSON.stringify(s));
    });
    calls.length = 0;
    await page.getByRole("button", { name: "Publish" }).click();
    await page.waitForURL(/\/blog\/posts\/\d+$/);
    expect(calls.filter((c) => !c.startsWith("GET"))).toEqual(["POST /api/auth/refresh 200", "POST /blog/api/posts 201"]);
    expect((await session())!.refreshToken).not.toBe(before);

    // The refresh ahead of expiry fails (the auth-service is down) while the token is still valid: the write
    // goes with the current token instead of failing, and the refresh token is kept for the next try.
    await draft(`Refresh down ${id}`);
    const kept = (await session())!.refreshToken;
    await page.evaluate(() => {
      const s = JSON.parse(sessionStorage.getItem("titanium.session")!) as { expiresAt: number };
      s.expiresAt = Date.now() + 10_000;
      sessionStorage.setItem("titanium.session", JSON.stringify(s));
    });
    await page.route("**/api/auth/refresh", (route) => route.fulfill({ status: 503, contentType: "application/json", body: '{"message":"Service Unavailable"}' }));
    calls.length = 0;
    try {
      await page.getByRole("button", { name: "Publish" }).click();
      await page.waitForURL(/\/blog\/posts\/\d+$/);
    } finally {
      await page.unroute("**/api/auth/refresh");
    }
    expect(calls.filter((c) => !c.startsWith("GET"))).toEqual(["POST /api/auth/refresh 503", "POST /blog/api/posts 201"]);
    expect((await session())!.refreshToken).toBe(kept);

    // An access token the API refuses (revoked, a skewed clock) while the refresh token is good: the write
    // gets a 401, the UI refreshes once and sends it again with the new token.
    await draft(`Retried ${id}`);
    await page.evaluate(() => {
      const s = JSON.parse(sessionStorage.getItem("titanium.session")!) as Record<string, unknown>;
      Object.assign(s, { token: "not.a.jwt", expiresAt: null });
      sessionStorage.setItem("titanium.session", JSON.stringify(s));
    });
    calls.length = 0;
    await page.getByRole("button", { name: "Publish" }).click();
    await page.waitForURL(/\/blog\/posts\/\d+$/);
    await page.getByRole("heading", { level: 1, name: `Retried ${id}` }).waitFor();
    expect(calls.filter((c) => !c.startsWith("GET"))).toEqual(["POST /blog/api/posts 401", "POST /api/auth/refresh 200", "POST /blog/api/posts 201"]);
    expect((await session())!.refreshToken).not.toBe(kept);
    expect(await page.locator(".toast", { hasText: "session" }).count()).toBe(0);

    // A session that cannot be refreshed (token and refresh token no longer valid): told so, sent to log in,
    // and the draft is back in the editor afterwards.
    await draft(`Kept draft ${id}`);
    await page.evaluate(() => {
      const s = JSON.parse(sessionStorage.getItem("titanium.session")!) as Record<string, unknown>;
      Object.assign(s, { token: "not.a.jwt", refreshToken: "revoked", expiresAt: null });
      sessionStorage.setItem("titanium.session", JSON.stringify(s));
    });
    await page.getByRole("button", { name: "Publish" }).click();
    await page.getByText("Your session has expired. Please log in again.").waitFor();
    await page.waitForURL(/\/blog\/login\?next=%2Fblog%2Fnew/);
    await page.getByLabel("Username").fill(writer.username);
    await page.getByLabel("Password").fill(PASSWORD);
    await page.getByRole("button", { name: "Log in" }).click();
    await page.waitForURL(/\/blog\/new$/);
    await expect.poll(() => page.getByLabel("Title").inputValue(), UI_WAIT).toBe(`Kept draft ${id}`);
    expect(await page.getByLabel("Content (Markdown)").inputValue()).toBe("Written while the token aged.");
  });

  it("a duplicated tab never spends the refresh token its original holds: the original stays signed in", async () => {
    const writer = await new ApiUser(base, `tab_${id}`).signup();
    const a = (await tab()).page;
    await loginViaUi(a, writer.username);
    // "Duplicate tab": B starts with a copy of A's session storage, written before any of the app's scripts run.
    const copied = await a.evaluate(() => Object.fromEntries(Object.entries(sessionStorage)));
    expect(Object.keys(copied)).toContain("titanium.session");
    const b = (await tab()).page;
    await b.addInitScript((entries: Record<string, string>) => {
      if (sessionStorage.getItem("titanium.session") !== null) return; // copied once, as the browser does
      for (const [k, v] of Object.entries(entries)) sessionStorage.setItem(k, v);
    }, copied);
    await b.goto(`${base}/blog/`);
    await expect.poll(() => b.getByText(`Signed in as ${writer.username}`).isVisible(), UI_WAIT).toBe(true);

    const refreshes: string[] = [];
    for (const [name, p] of [["A", a], ["B", b]] as const) {
      p.on("response", (r) => {
        if (new URL(r.url()).pathname === "/api/auth/refresh") refreshes.push(`${name} ${r.status()}`);
      });
    }
    /** Ages the tab's access token so its next write refreshes first, then publishes a post. */
    const publishAged = async (p: Page, title: string) => {
      await p.goto(`${base}/blog/new`);
      await p.getByLabel("Title").fill(title);
      await p.getByLabel("Category").fill(`Tabs ${id}`);
      await p.getByLabel("Content (Markdown)").fill("Written in one of two tabs.");
      await p.evaluate(() => {
        const s = JSON.parse(sessionStorage.getItem("titanium.session")!) as { expiresAt: number };
        s.expiresAt = Date.now() + 1_000;
        sessionStorage.setItem("titanium.session", JSON.stringify(s));
      });
      await p.getByRole("button", { name: "Publish" }).click();
      await p.waitForURL(/\/blog\/(posts\/\d+|login\?.*)$/);
    };

    // A refreshes (the refresh token rotates), then B's write comes: B must not present the copied token.
    await publishAged(a, `First in A ${id}`);
    await publishAged(b, `Then in B ${id}`);
    // A refreshes again and writes: the session was not revoked by B.
    await publishAged(a, `Again in A ${id}`);
    expect(a.url()).toMatch(/\/blog\/posts\/\d+$/);
    expect(await a.getByText(`Signed in as ${writer.username}`).isVisible()).toBe(true);
    expect(refreshes.filter((r) => r.startsWith("A"))).toEqual(["A 200", "A 200"]);
    // B at worst asks to sign in again; it never presents a refresh token (it holds none).
    expect(refreshes.filter((r) => r.startsWith("B"))).toEqual([]);
    expect(await b.evaluate(() => (JSON.parse(sessionStorage.getItem("titanium.session") ?? "null") as { refreshToken: unknown } | null)?.refreshToken ?? null)).toBeNull();
    // A's token, after its refreshes, still writes through the API.
    const token = await a.evaluate(() => (JSON.parse(sessionStorage.getItem("titanium.session")!) as { token: string }).token);
    const api = new ApiUser(base, writer.username);
    api.token = token;
    expect(await api.status("POST", "/blog/api/posts", { title: `By API ${id}`, content: "x", category_name: `Tabs ${id}` })).toBe(201);
  });

  it("keeps a draft per post, and never shows one user's draft to the next user of the tab", async () => {
    const gil = await new ApiUser(base, `gil_${id}`).signup().then((u) => u.login());
    const hana = await new ApiUser(base, `hana_${id}`).signup();
    const postId = await gil.createPost(`Gil's post ${id}`, "Saved text.", `Drafts ${id}`);
    const { page } = await tab();
    // An unsaved edit of the post survives a detour through a new draft (one draft per post).
    await loginViaUi(page, gil.username, `/blog/posts/${postId}/edit`);
    await page.getByLabel("Content (Markdown)").fill("Unsaved edit.");
    await page.goto(`${base}/blog/new`);
    await page.getByLabel("Title").fill("A new one, private");
    await page.goBack();
    await page.getByLabel("Title").waitFor();
    await expect.poll(() => page.getByLabel("Content (Markdown)").inputValue(), UI_WAIT).toBe("Unsaved edit.");
    // Logging out drops the tab's drafts: the next user starts from empty.
    await page.getByRole("button", { name: "Log out" }).click();
    await page.getByText("You are logged out.").waitFor();
    await loginViaUi(page, hana.username, "/blog/new");
    await page.getByLabel("Title").waitFor();
    expect(await page.getByLabel("Title").inputValue()).toBe("");
    expect(await page.evaluate(() => Object.keys(sessionStorage).filter((k) => k.startsWith("titanium.draft")))).toEqual([]);
  });

  it("Back returns to where the reader was in the list, and a link to a fragment of a post does not reload it", async () => {
    const ivo = await new ApiUser(base, `ivo_${id}`).signup().then((u) => u.login());
    for (let i = 0; i < PAGE_SIZE; i++) await ivo.createPost(`Ivo ${id} #${i}`, i === 0 ? "[Jump to the top](#main)\n\nText." : "Text.", `Scroll ${id}`);
    const { page } = await tab();
    await page.setViewportSize({ width: 800, height: 500 });
    await page.goto(`${base}/blog/?author=${ivo.username}`);
    const eighth = page.locator(".posts > li").nth(7);
    await eighth.scrollIntoViewIfNeeded();
    const y = await page.evaluate(() => window.scrollY);
    expect(y).toBeGreaterThan(100);
    await eighth.locator("a").first().click();
    await page.locator(".prose").waitFor();
    await page.goBack();
    await page.locator(".posts > li").nth(7).waitFor();
    await expect.poll(() => page.evaluate(() => window.scrollY), UI_WAIT).toBe(y);
    // The post with a fragment link: following it fetches nothing and keeps the post on screen.
    await page.getByRole("link", { name: `Ivo ${id} #0`, exact: true }).click();
    await page.locator(".prose a", { hasText: "Jump to the top" }).waitFor();
    const calls: string[] = [];
    page.on("request", (r) => calls.push(new URL(r.url()).pathname));
    await page.locator(".prose a", { hasText: "Jump to the top" }).click();
    await page.waitForTimeout(300);
    expect(new URL(page.url()).hash).toBe("#main");
    expect(calls.filter((c) => c.includes("/api/"))).toEqual([]);
    expect(await page.locator(".prose").count()).toBe(1);
  });

  it("has no serious or critical accessibility violations on the list, a post and the editor", async () => {
    const writer = await new ApiUser(base, `erin_${id}`).signup().then((u) => u.login());
    const postId = await writer.createPost(`Accessible ${id}`, "# Heading\n\nText with `code` and a [link](https://example.com).\n\n```bash\necho hi\n```", `A11y ${id}`);
    // A table of 16 columns is wider than a phone: it scrolls sideways, so a keyboard must reach it.
    const columns = Array.from({ length: 16 }, (_, i) => i + 1);
    const wide = [`| ${columns.map((c) => `Column ${c}`).join(" | ")} |`, `|${" --- |".repeat(16)}`, `| ${columns.map((c) => `value ${c}`).join(" | ")} |`].join("\n");
    const tableId = await writer.createPost(`Wide table ${id}`, `Measurements:\n\n${wide}\n`, `A11y ${id}`);
    const { page } = await tab();
    await page.goto(`${base}/blog/`);
    await page.locator(".posts > li").first().waitFor();
    expect(await seriousA11yViolations(page), "list").toEqual([]);
    // Keyboard: the first Tab reaches the skip link, which moves focus to the content; Enter on a post's
    // link opens it with focus on its heading.
    await page.keyboard.press("Tab");
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe("Skip to content");
    await page.keyboard.press("Enter");
    expect(await page.evaluate(() => document.activeElement?.id)).toBe("main");
    await page.getByRole("link", { name: `Accessible ${id}` }).focus();
    await page.keyboard.press("Enter");
    await page.waitForURL(new RegExp(`/blog/posts/${postId}$`));
    await expect.poll(() => page.evaluate(() => document.activeElement?.textContent), UI_WAIT).toBe(`Accessible ${id}`);
    await page.locator(".prose pre").waitFor();
    expect(await seriousA11yViolations(page), "post").toEqual([]);
    await loginViaUi(page, writer.username, "/blog/new");
    await page.getByLabel("Title").waitFor();
    // With the error summary showing too: errors must be as accessible as the form.
    await page.getByRole("button", { name: "Publish" }).click();
    await page.getByText("Please fix the following:").waitFor();
    expect(await seriousA11yViolations(page), "editor").toEqual([]);

    // On a phone, a table wider than the screen scrolls in a named region that is a tab stop.
    await page.setViewportSize({ width: 375, height: 740 });
    await page.goto(`${base}/blog/posts/${tableId}`);
    await page.locator(".prose table th").nth(15).waitFor();
    expect(await seriousA11yViolations(page), "post with a wide table on a phone").toEqual([]);
    const scroller = page.getByRole("region", { name: "Table 1" });
    expect(await scroller.evaluate((e) => e.scrollWidth > e.clientWidth)).toBe(true);
    await scroller.focus();
    await page.keyboard.press("ArrowRight");
    await expect.poll(() => scroller.evaluate((e) => e.scrollLeft), UI_WAIT).toBeGreaterThan(0);
    // The editor's preview wraps it the same way.
    await page.getByRole("link", { name: "Edit" }).click();
    await page.waitForURL(/\/edit$/);
    await page.getByRole("button", { name: "Preview" }).click();
    await page.locator(".preview").getByRole("region", { name: "Table 1" }).locator("table").waitFor();
    expect(await seriousA11yViolations(page), "editor preview of a wide table on a phone").toEqual([]);
  });

  it("fits a phone screen when a title, a category and a user name are each one long word", async () => {
    const name = `w_${id}_`.padEnd(50, "x"); // the longest name signup allows, no space to wrap at
    const writer = await new ApiUser(base, name).signup().then((u) => u.login());
    const category = `Cat${id}`.padEnd(50, "W");
    const title = `T${id}`.padEnd(120, "w");
    const postId = await writer.createPost(title, `${"Supercalifragilistic".repeat(10)} https://example.com/${"segment/".repeat(30)}`, category);
    const { page } = await tab();
    await page.setViewportSize({ width: 375, height: 740 });
    const overflow = () => page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    // The login leads to the first page (the header then says "Signed in as <name>", its toast "Welcome, <name>."),
    // then the pages' own links lead on to the others: their layout is judged, not how they are reached.
    for (const [what, path, follow, heading, ready] of [
      ["the author's list", `/blog/?author=${name}`, null, `Posts by ${name}`, ".posts > li"],
      ["the category's list", `/blog/?category=${encodeURIComponent(category.toLowerCase())}`, page.locator(".posts .badge"), `Posts in ${category}`, ".posts > li"],
      ["the post", `/blog/posts/${postId}`, page.locator(".posts .card-title a"), title, ".prose"],
      ["the editor", "/blog/new", page.getByRole("link", { name: "Write", exact: true }), "Write a post", "textarea"],
    ] as const) {
      if (follow === null) await loginViaUi(page, name, path);
      else {
        await follow.first().click();
        await page.waitForURL((u) => u.pathname + u.search === path);
      }
      // The page's own heading first: the previous page's content is gone by then.
      await page.getByRole("heading", { level: 1, name: heading, exact: true }).waitFor();
      await page.locator(ready).first().waitFor();
      expect(await overflow(), `horizontal overflow on ${what}`).toBe(0);
    }
  });

  it("keeps the search panel's fields and button inside it, the button level with the inputs, in both languages", async () => {
    const { page } = await tab();
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.goto(`${base}/blog/`);
    try {
      for (const [language, button] of [["en", "Search"], ["ko", "검색"]] as const) {
        if (language === "ko") await page.getByLabel("Language").selectOption("ko");
        await page.getByRole("button", { name: button, exact: true }).waitFor();
        const boxes = await page.locator("form.search").evaluate((form) => {
          const box = (e: Element) => e.getBoundingClientRect();
          return { form: box(form), parts: [...form.querySelectorAll("input, button, .hint")].map((e) => ({ tag: e.tagName, ...box(e).toJSON() })) };
        });
        for (const p of boxes.parts) {
          expect(p.left, `${language} ${p.tag}`).toBeGreaterThanOrEqual(boxes.form.left);
          expect(p.right, `${language} ${p.tag}`).toBeLessThanOrEqual(boxes.form.right);
        }
        const inputs = boxes.parts.filter((p) => p.tag === "INPUT");
        const buttonBox = boxes.parts.find((p) => p.tag === "BUTTON")!;
        expect(Math.abs(buttonBox.top - inputs[0]!.top), language).toBeLessThanOrEqual(4);
      }
    } finally {
      await page.evaluate(() => localStorage.removeItem("titanium.locale")); // the other tests read English
    }
  });

  it("keeps what the user typed when the language changes", async () => {
    const writer = await new ApiUser(base, `gus_${id}`).signup();
    const { page } = await tab();
    await loginViaUi(page, writer.username, "/blog/new");
    await page.getByLabel("Title").fill(`Half-written ${id}`);
    await page.getByLabel("Content (Markdown)").fill("Two paragraphs in, then the language changed.");
    await page.getByLabel("Language").selectOption("ko");
    try {
      await page.getByRole("heading", { level: 1, name: "새 글 쓰기" }).waitFor();
      await expect.poll(() => page.getByLabel("제목").inputValue(), UI_WAIT).toBe(`Half-written ${id}`);
      expect(await page.getByLabel("내용 (Markdown)").inputValue()).toBe("Two paragraphs in, then the language changed.");
      expect(await page.locator(".counter").textContent()).toBe("45 / 20000자");
      await page.getByLabel("언어").selectOption("en");
      await page.getByRole("heading", { level: 1, name: "Write a post" }).waitFor();
      await expect.poll(() => page.getByLabel("Title").inputValue(), UI_WAIT).toBe(`Half-written ${id}`);
    } finally {
      await page.evaluate(() => localStorage.removeItem("titanium.locale")); // the other tests read English
    }
    // Leaving the editor by a link, then Back, and a reload: the half-written post is still there.
    await page.getByRole("link", { name: "Titanium Blog" }).click();
    await page.getByRole("heading", { level: 1, name: "Latest posts" }).waitFor();
    await page.goBack();
    await page.getByRole("heading", { level: 1, name: "Write a post" }).waitFor();
    await expect.poll(() => page.getByLabel("Title").inputValue(), UI_WAIT).toBe(`Half-written ${id}`);
    expect(await page.getByLabel("Content (Markdown)").inputValue()).toBe("Two paragraphs in, then the language changed.");
    await page.reload();
    await expect.poll(() => page.getByLabel("Title").inputValue(), UI_WAIT).toBe(`Half-written ${id}`);
    // Cancel drops it: the editor opens empty next time.
    await page.getByRole("link", { name: "Cancel" }).click();
    await page.getByRole("heading", { level: 1, name: "Latest posts" }).waitFor();
    await page.goto(`${base}/blog/new`);
    await page.getByRole("heading", { level: 1, name: "Write a post" }).waitFor();
    expect(await page.getByLabel("Title").inputValue()).toBe("");
  });

  it("a delete refused for an expired session says so once and leads to the login, then back to the post", async () => {
    const writer = await new ApiUser(base, `hal_${id}`).signup().then((u) => u.login());
    const postId = await writer.createPost(`Expiring ${id}`, "Still here.", `Sessions ${id}`);
    const { page } = await tab();
    await loginViaUi(page, writer.username, `/blog/posts/${postId}`);
    await page.getByRole("button", { name: "Delete" }).waitFor();
    await page.evaluate(() => {
      const s = JSON.parse(sessionStorage.getItem("titanium.session")!) as Record<string, unknown>;
      Object.assign(s, { token: "not.a.jwt", refreshToken: "revoked", expiresAt: null });
      sessionStorage.setItem("titanium.session", JSON.stringify(s));
    });
    await page.getByRole("button", { name: "Delete" }).click();
    await page.getByRole("button", { name: "Delete post" }).click();
    await page.waitForURL(new RegExp(`/blog/login\\?next=%2Fblog%2Fposts%2F${postId}$`));
    expect(await page.locator(".toast", { hasText: "Your session has expired" }).count()).toBe(1);
    await page.getByLabel("Username").fill(writer.username);
    await page.getByLabel("Password").fill(PASSWORD);
    await page.getByRole("button", { name: "Log in" }).click();
    await page.waitForURL(new RegExp(`/blog/posts/${postId}$`));
    await page.getByRole("button", { name: "Delete" }).waitFor(); // signed in again, the post is still there
  });

  it("a page past the end of the list offers the last page", async () => {
    const writer = await new ApiUser(base, `ida_${id}`).signup().then((u) => u.login());
    for (let i = 0; i < PAGE_SIZE + 1; i++) await writer.createPost(`Ida ${id} #${i}`, "text", `Ends ${id}`);
    const { page } = await tab();
    await page.goto(`${base}/blog/?author=${writer.username}&page=7`);
    await page.getByText("This page is past the end of the list.").waitFor();
    await page.getByRole("link", { name: "Go to the last page (2)" }).click();
    await page.getByText("Page 2 of 2").waitFor();
    expect(new URL(page.url()).searchParams.get("author")).toBe(writer.username);
    expect(await page.locator(".posts > li").count()).toBe(1);
  });

  it("a link to a category that no longer has posts says so and leads to all posts", async () => {
    const { page } = await tab();
    await page.goto(`${base}/blog/?category=gone-${id}`);
    await page.getByRole("heading", { level: 1, name: `No category “gone-${id}”` }).waitFor();
    await page.getByText(`No post is in a category “gone-${id}”`).waitFor();
    expect(await page.title()).toContain(`gone-${id}`);
    await page.getByRole("link", { name: "See all posts" }).click();
    await page.getByRole("heading", { level: 1, name: "Latest posts" }).waitFor();
    expect(new URL(page.url()).searchParams.get("category")).toBeNull();
  });

  it("a category no post is in has no tab, unless it is the one the reader asked for", async () => {
    const categories = (await (await fetch(`${base}/blog/api/categories`)).json()) as { name: string; slug: string; post_count: number }[];
    // The seeded categories nobody has posted in yet (the original's three; this suite writes into none of "Troubleshooting").
    const empty = categories.filter((c) => c.post_count === 0);
    expect(empty.map((c) => c.slug)).toContain("troubleshooting");
    const { page } = await tab();
    await page.goto(`${base}/blog/`);
    const tabs = page.getByRole("navigation", { name: "Categories" });
    await tabs.getByRole("link", { name: /^All \(\d+\)$/ }).waitFor();
    for (const c of empty) expect(await tabs.getByRole("link", { name: `${c.name} (0)`, exact: true }).count(), c.slug).toBe(0);
    await page.goto(`${base}/blog/?category=troubleshooting`);
    await tabs.getByRole("link", { name: "Troubleshooting (0)", exact: true }).waitFor();
    expect(await tabs.getByRole("link", { name: "Troubleshooting (0)", exact: true }).getAttribute("aria-current")).toBe("page");
  });

  it("says when posts are loading, when no post matches, and when the API limits the rate", async () => {
    const { page } = await tab();
    // A slow list: the loading state shows while it waits.
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    await page.route("**/blog/api/posts?*", async (route) => {
      await held;
      await route.continue();
    });
    await page.goto(`${base}/blog/`);
    await page.getByText("Loading posts…").waitFor();
    expect(await page.locator(".posts > li").count()).toBe(0);
    // Only the part being filled is busy: never <main>, and never the status (screen readers may skip a busy region).
    const busy = () =>
      page.evaluate(() => ({
        main: document.querySelector("main")?.getAttribute("aria-busy") ?? null,
        busy: [...document.querySelectorAll("[aria-busy='true']")].map((e) => e.className),
        statusInBusy: [...document.querySelectorAll("main [role='status'], main [role='alert']")].some((e) => e.closest("[aria-busy='true']") !== null),
      }));
    expect(await busy()).toEqual({ main: null, busy: ["results-body"], statusInBusy: false });
    release();
    await page.getByText("Loading posts…").waitFor({ state: "hidden" });
    expect(await busy()).toEqual({ main: null, busy: [], statusInBusy: false });
    await page.unroute("**/blog/api/posts?*");
    // A search nothing matches (from the list's own form: the states are judged, not how the list is reached).
    const search = async (words: string) => {
      await page.getByLabel("Words").fill(words);
      await page.getByRole("button", { name: "Search" }).click();
      await page.waitForURL((u) => u.searchParams.get("q") === words);
    };
    await search(`nomatch${id}zz`);
    await page.getByText("No posts match these filters.").waitFor();
    // The gateway's 429 (its envelope and Retry-After) becomes a message with the wait, not a failure page.
    await page.route("**/blog/api/posts?*", (route) =>
      route.fulfill({
        status: 429,
        headers: { "content-type": "application/json", "retry-after": "7" },
        body: JSON.stringify({ error: "TooManyRequests", message: "Too Many Requests", status_code: 429 }),
      }),
    );
    await search(`limited${id}`);
    await page.getByText("Too many requests. Try again in 7 s.").waitFor();
    await page.unroute("**/blog/api/posts?*");
  });

  it("a delete dialog left open closes when the reader goes Back, and deletes nothing", async () => {
    const writer = await new ApiUser(base, `jon_${id}`).signup().then((u) => u.login());
    const postId = await writer.createPost(`Kept ${id}`, "Not deleted by a dialog left behind.", `Dialogs ${id}`);
    const { page } = await tab();
    await loginViaUi(page, writer.username, `/blog/?author=${writer.username}`);
    await page.getByRole("link", { name: `Kept ${id}` }).click();
    await page.getByRole("button", { name: "Delete" }).click();
    const dialog = page.getByRole("dialog", { name: "Delete this post?" });
    await dialog.waitFor();
    await page.goBack();
    await page.getByRole("heading", { level: 1, name: `Posts by ${writer.username}` }).waitFor();
    await page.locator(".posts > li").first().waitFor();
    expect(await page.locator("dialog").count()).toBe(0);
    expect(await page.getByRole("button", { name: "Delete post" }).count()).toBe(0);
    await page.waitForTimeout(200);
    expect((await fetch(`${base}/blog/api/posts/${postId}`)).status).toBe(200);
    expect(await page.getByRole("link", { name: `Kept ${id}` }).count()).toBe(1);
  });

  it("a post's Markdown headings sit below the page's one h1, and task lists show their state", async () => {
    const writer = await new ApiUser(base, `kai_${id}`).signup().then((u) => u.login());
    const content = "# Top heading\n\nText.\n\n## Second\n\n###### Sixth\n\n- [x] done thing\n- [ ] open thing\n";
    const postId = await writer.createPost(`Headings ${id}`, content, `Markdown ${id}`);
    const { page } = await tab();
    const check = async (scope: string) => {
      expect(await page.locator(`${scope} h1`).count()).toBe(0);
      expect(await page.locator(`${scope} h2`).allTextContents()).toEqual(["Top heading"]);
      expect(await page.locator(`${scope} h3`).allTextContents()).toEqual(["Second"]);
      expect(await page.locator(`${scope} h6`).allTextContents()).toEqual(["Sixth"]);
      expect((await page.locator(`${scope} li`).allTextContents()).map((t) => t.trim())).toEqual(["☑ done thing", "☐ open thing"]);
    };
    await loginViaUi(page, writer.username, `/blog/posts/${postId}`);
    await page.locator(".prose h2").waitFor();
    await check(".prose");
    expect(await page.locator("h1").allTextContents()).toEqual([`Headings ${id}`]);
    // The editor's preview renders the same way (its page heading stays the only h1).
    await page.getByRole("link", { name: "Edit" }).click();
    await page.waitForURL(/\/edit$/);
    await page.getByRole("button", { name: "Preview" }).click();
    await page.locator(".preview h2").waitFor();
    await check(".preview");
    expect(await page.locator("h1").allTextContents()).toEqual(["Edit post"]);
  });

  it("says a new version is available when a deploy removed the Markdown module this tab would load", async () => {
    const writer = await new ApiUser(base, `lev_${id}`).signup().then((u) => u.login());
    const postId = await writer.createPost(`Deployed ${id}`, "**Rendered** after a reload.", `Deploys ${id}`);
    const w = await tab();
    const { page } = w;
    // The old build's chunk is gone from the server (it serves only its own build's files).
    const gone = "**/blog/assets/markdown-*.js";
    await page.route(gone, (route) => route.fulfill({ status: 404, contentType: "text/plain", body: "Not found" }));
    w.expectedFailures.push(/\/blog\/assets\/markdown-[^/]*\.js$/);
    await page.goto(`${base}/blog/posts/${postId}`);
    await page.getByText("A new version of the blog is available. Reload the page to continue.").waitFor();
    expect(await page.getByText("Something went wrong on our side").count()).toBe(0);
    // The editor's preview says the same.
    await loginViaUi(page, writer.username, `/blog/posts/${postId}/edit`);
    await page.getByRole("button", { name: "Preview" }).click();
    await page.locator(".preview", { hasText: "A new version of the blog is available." }).waitFor();
    // Back to the post (the editor's Cancel), which says it too; Reload loads the new build: the post renders.
    await page.getByRole("link", { name: "Cancel" }).click();
    await page.waitForURL(new RegExp(`/blog/posts/${postId}$`));
    await page.getByRole("button", { name: "Reload" }).waitFor();
    await page.unroute(gone);
    await page.getByRole("button", { name: "Reload" }).click();
    await page.locator(".prose strong", { hasText: "Rendered" }).waitFor();
  });

  it("a post's own HTML never takes the keyboard order or loads media, and a long code block scrolls by keyboard", async () => {
    const writer = await new ApiUser(base, `mia_${id}`).signup().then((u) => u.login());
    const content = [
      "```bash",
      `echo ${"x".repeat(300)}`,
      "```",
      // Positive tabindex jumps the queue ahead of the skip link and the header; -1 hides a link from keyboards.
      `<p tabindex="3">First in the tab order?</p>`,
      `<a href="https://example.com/" tabindex="-1">A link keyboards cannot reach</a>`,
      // Media and background images the CSP blocks: broken players and console errors, requests attempted.
      `<video src="https://example.com/v.mp4" poster="https://example.com/poster.png" controls></video>`,
      `<audio src="https://example.com/a.mp3" controls></audio>`,
      `<table background="https://example.com/bg.png"><tr><td>cell</td></tr></table>`,
    ].join("\n\n");
    // Stored the UI's way (escaped): the server's sanitiser never sees these tags, the browser's must handle them.
    const postId = await writer.createPost(`Keyboard ${id}`, toStored(content), `Keyboard ${id}`);
    const { page } = await tab();
    await page.setViewportSize({ width: 375, height: 740 });
    await page.goto(`${base}/blog/posts/${postId}`);
    await page.locator(".prose pre").waitFor();
    await page.locator(".prose a", { hasText: "A link keyboards cannot reach" }).waitFor();
    // The app's own tab stops only: code blocks and table scrollers.
    expect(await page.locator(".prose [tabindex]:not(pre):not(.table-scroll)").count()).toBe(0);
    expect(await page.locator(".prose video, .prose audio, .prose [background], .prose [poster]").count()).toBe(0);
    // The code block is wider than a phone: it is a tab stop, so a keyboard can scroll it.
    const pre = page.locator(".prose pre");
    expect(await pre.evaluate((e) => e.scrollWidth > e.clientWidth)).toBe(true);
    expect(await pre.getAttribute("tabindex")).toBe("0");
    await pre.focus();
    await page.keyboard.press("ArrowRight");
    await expect.poll(() => pre.evaluate((e) => e.scrollLeft), UI_WAIT).toBeGreaterThan(0);
    expect(await seriousA11yViolations(page), "post with a long code block on a phone").toEqual([]);
  });

  it("a linked image from another site (a badge) leaves one link, to where the author's link goes", async () => {
    const writer = await new ApiUser(base, `bea_${id}`).signup().then((u) => u.login());
    const content = [
      "[![Build status](https://ci.example.com/badge.svg)](https://ci.example.com/builds)",
      "[![](https://ci.example.com/coverage.svg)](https://ci.example.com/coverage)",
      "![A diagram](https://example.com/diagram.png)",
    ].join("\n\n");
    const postId = await writer.createPost(`Badges ${id}`, toStored(content), `Badges ${id}`);
    const { page } = await tab();
    await page.goto(`${base}/blog/posts/${postId}`);
    await page.locator(".prose a").first().waitFor();
    const links = await page.locator(".prose a").evaluateAll((els) =>
      els.map((a) => ({ href: a.getAttribute("href"), text: a.textContent, nested: a.querySelector("a") !== null || a.parentElement?.closest("a") !== null })));
    expect(links).toEqual([
      { href: "https://ci.example.com/builds", text: "Build status", nested: false },
      // No alt text: the link says where the picture was, rather than being empty.
      { href: "https://ci.example.com/coverage", text: "https://ci.example.com/coverage.svg", nested: false },
      // An image on its own still becomes a link to it.
      { href: "https://example.com/diagram.png", text: "A diagram", nested: false },
    ]);
    expect(await page.locator(".prose img").count()).toBe(0);
    expect(await seriousA11yViolations(page), "post with linked images").toEqual([]);
  });

  it("a delete in flight cannot be confirmed a second time", async () => {
    const writer = await new ApiUser(base, `quin_${id}`).signup().then((u) => u.login());
    const postId = await writer.createPost(`Slow delete ${id}`, "Deleted once.", `Deletes ${id}`);
    const { page } = await tab();
    await loginViaUi(page, writer.username);
    await page.goto(`${base}/blog/posts/${postId}`);
    const deletes: number[] = [];
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    await page.route(`**/blog/api/posts/${postId}`, async (route) => {
      if (route.request().method() !== "DELETE") return route.continue();
      deletes.push(Date.now());
      await held;
      await route.continue();
    });
    await page.getByRole("button", { name: "Delete" }).click();
    await page.getByRole("button", { name: "Delete post" }).click();
    await expect.poll(() => deletes.length, UI_WAIT).toBe(1);
    // While the server works, the button says so and cannot start another delete.
    const button = page.locator(".post .actions button");
    expect([await button.isDisabled(), await button.textContent()]).toEqual([true, "Deleting…"]);
    await button.click({ force: true });
    expect(await page.locator("dialog").count()).toBe(0);
    release();
    await page.waitForURL(/\/blog\/$/);
    await page.getByText("Post deleted.").waitFor();
    expect(deletes).toHaveLength(1);
    expect(await page.locator(".toast.error").count()).toBe(0);
    await page.unroute(`**/blog/api/posts/${postId}`);
    // The deleted post's page left the history with it: Back goes where the reader was before, not to a 404.
    await page.goBack();
    await page.waitForURL((url) => !url.pathname.startsWith("/blog/posts/"));
    expect(await page.getByText("This post does not exist or was deleted.").count()).toBe(0);
  });

  it("an open preview follows what the author types instead of showing an older text", async () => {
    const writer = await new ApiUser(base, `pia_${id}`).signup();
    const { page } = await tab();
    await loginViaUi(page, writer.username, "/blog/new");
    const content = page.getByLabel("Content (Markdown)");
    await content.fill("First **draft**");
    await page.getByRole("button", { name: "Preview" }).click();
    await page.locator(".preview strong", { hasText: "draft" }).waitFor();
    await content.press("End");
    await content.pressSequentially("\n\n## Added later");
    await expect.poll(() => page.locator(".preview h3").allTextContents(), UI_WAIT).toEqual(["Added later"]);
    await content.fill("");
    await page.locator(".preview", { hasText: "Nothing to preview yet." }).waitFor();
    // Closed, it is left alone; opened again, it shows the text as it is then.
    await page.getByRole("button", { name: "Preview" }).click();
    await content.fill("Back with *words*");
    await page.getByRole("button", { name: "Preview" }).click();
    await page.locator(".preview em", { hasText: "words" }).waitFor();
  });

  it("Log in from the header comes back to the page the reader was on, also by way of sign-up", async () => {
    const writer = await new ApiUser(base, `noa_${id}`).signup().then((u) => u.login());
    const postId = await writer.createPost(`Come back ${id}`, "Read, then log in.", `Return ${id}`);
    const { page } = await tab();
    await page.goto(`${base}/blog/?author=${writer.username}`);
    await page.getByRole("link", { name: `Come back ${id}` }).click();
    await page.getByRole("heading", { level: 1, name: `Come back ${id}` }).waitFor();
    // An existing account: the header's Log in leads back to the post.
    await page.getByRole("link", { name: "Log in" }).click();
    await page.getByLabel("Username").fill(writer.username);
    await page.getByLabel("Password").fill(PASSWORD);
    await page.getByRole("button", { name: "Log in" }).click();
    await page.waitForURL(new RegExp(`/blog/posts/${postId}$`));
    await page.getByRole("button", { name: "Delete" }).waitFor(); // the author's own post, signed in
    // The login returned to the post's own entry: Back leaves the post (no second copy of it, no login form).
    await page.goBack();
    await page.waitForURL(/\/blog\/\?author=/);
    await page.goForward();
    await page.getByRole("button", { name: "Delete" }).waitFor();
    await page.getByRole("button", { name: "Log out" }).click();
    await page.getByRole("link", { name: "Log in" }).waitFor();
    await page.waitForURL(/\/blog\/$/); // the logout's own navigation is done (the history below counts on it)
    // A new reader: Log in from the header, over to the sign-up form and back and forth between the two
    // (each switch replaces the other form's entry), sign up, then log in, and land on the page they were reading.
    await page.goto(`${base}/blog/posts/${postId}`);
    await page.getByRole("heading", { level: 1, name: `Come back ${id}` }).waitFor();
    await page.getByRole("banner").getByRole("link", { name: "Log in" }).click();
    for (const form of ["Sign up", "Log in", "Sign up"]) {
      await page.getByRole("main").getByRole("link", { name: form }).click();
      await page.waitForURL(form === "Sign up" ? /\/blog\/signup\?/ : /\/blog\/login\?/);
    }
    const reader = `oli_${id}`;
    await page.getByLabel("Username").fill(reader);
    await page.getByLabel("Email").fill(`${reader}@example.com`);
    await page.getByLabel("Password").fill(PASSWORD);
    await page.getByRole("button", { name: "Create account" }).click();
    await page.waitForURL(/\/blog\/login\?/);
    await expect.poll(() => page.getByLabel("Username").inputValue(), UI_WAIT).toBe(reader);
    await page.getByLabel("Password").fill(PASSWORD);
    await page.getByRole("button", { name: "Log in" }).click();
    await page.waitForURL(new RegExp(`/blog/posts/${postId}$`));
    await page.getByText(`Signed in as ${reader}`).waitFor();
    // Neither the login nor the sign-up form is left in the history: Back goes to where the reader was before.
    await page.goBack();
    await page.waitForURL(/\/blog\/$/);
    // A signed-in reader who opens the sign-up form anyway (an old link) goes on to where it leads, as the login does.
    await page.goto(`${base}/blog/signup?next=${encodeURIComponent(`/blog/posts/${postId}`)}`);
    await page.waitForURL(new RegExp(`/blog/posts/${postId}$`));
    await page.getByText(`Signed in as ${reader}`).waitFor();
    expect(await page.getByRole("heading", { name: "Create an account" }).count()).toBe(0);
  });

  it("switches to Korean and remembers it", async () => {
    const { page } = await tab();
    try {
      await page.goto(`${base}/blog/`);
      await page.getByLabel("Language").selectOption("ko");
      await page.getByRole("heading", { level: 1, name: "최신 글" }).waitFor();
      expect(await page.evaluate(() => document.documentElement.lang)).toBe("ko");
      await page.reload();
      await page.getByRole("heading", { level: 1, name: "최신 글" }).waitFor();
      // Sign-up rules answer in Korean, before anything is sent (the form by the header's link).
      await page.getByRole("banner").getByRole("link", { name: "회원가입" }).click();
      await page.waitForURL(/\/blog\/signup$/);
      await page.getByLabel("사용자 이름").fill("ab");
      await page.getByLabel("이메일").fill("bad-email");
      await page.getByLabel("비밀번호").fill("short");
      await page.getByRole("button", { name: "계정 만들기" }).click();
      await page.locator(".field-error").first().waitFor();
      const errors = (await page.locator(".field-error").allTextContents()).filter(Boolean);
      expect(errors).toEqual([expect.stringContaining("영문자, 숫자, 밑줄로 3–50자"), expect.stringContaining("name@example.com 형식"), expect.stringContaining("8자 이상이며")]);
      expect(errors.join(" ")).not.toMatch(/Too small|Invalid|expected/);
      // What only the server knows is said in Korean too: a name already taken (the server says it in English).
      const taken = await new ApiUser(base, `kim_${id}`).signup();
      await page.getByLabel("사용자 이름").fill(taken.username);
      await page.getByLabel("이메일").fill(`kim2_${id}@example.com`);
      await page.getByLabel("비밀번호").fill(PASSWORD);
      await page.getByRole("button", { name: "계정 만들기" }).click();
      await page.locator(".field-error", { hasText: "이미 사용 중인" }).waitFor();
      expect((await page.locator(".field-error").allTextContents()).filter(Boolean)).toEqual(["사용자 이름: 이미 사용 중인 사용자 이름입니다."]);
      expect(await page.locator(".panel.error").textContent()).not.toMatch(/already exists/i);
      await page.getByRole("link", { name: "Titanium 블로그", exact: true }).click();
      await page.getByRole("heading", { level: 1, name: "최신 글" }).waitFor();
      await page.getByLabel("언어").selectOption("en");
      await page.getByRole("heading", { level: 1, name: "Latest posts" }).waitFor();
    } finally {
      await page.evaluate(() => localStorage.removeItem("titanium.locale")); // the other tests read English
    }
  });

  it("a session gone from the tab's storage while writing leads to the login, with the draft kept", async () => {
    const writer = await new ApiUser(base, `ria_${id}`).signup();
    const { page } = await tab();
    await loginViaUi(page, writer.username, "/blog/new");
    await page.getByLabel("Title").fill(`Storage cleared ${id}`);
    await page.getByLabel("Category").fill(`Sessions ${id}`);
    await page.getByLabel("Content (Markdown)").fill("Typed before the session vanished.");
    // The stored session becomes unreadable (cleared site data, a broken write): nothing told the app.
    await page.evaluate(() => sessionStorage.setItem("titanium.session", "{not json"));
    await page.getByRole("button", { name: "Publish" }).click();
    await page.waitForURL(/\/blog\/login\?next=%2Fblog%2Fnew$/);
    await page.getByText("You are not signed in. Please log in.").waitFor();
    // The header agrees: nobody is signed in any more, and it offers to log in.
    await page.getByRole("banner").getByRole("link", { name: "Log in" }).waitFor();
    expect(await page.getByText(`Signed in as ${writer.username}`).count()).toBe(0);
    await page.getByLabel("Username").fill(writer.username);
    await page.getByLabel("Password").fill(PASSWORD);
    await page.getByRole("button", { name: "Log in" }).click();
    await page.waitForURL(/\/blog\/new$/);
    await expect.poll(() => page.getByLabel("Title").inputValue(), UI_WAIT).toBe(`Storage cleared ${id}`);
    expect(await page.getByLabel("Content (Markdown)").inputValue()).toBe("Typed before the session vanished.");
  });

  it("a link to the page on screen shows it again without a second history entry of it", async () => {
    const kai = await new ApiUser(base, `sam_${id}`).signup().then((u) => u.login());
    const postId = await kai.createPost(`Same page ${id}`, "Text.", `Same ${id}`);
    const { page } = await tab();
    await page.goto(`${base}/blog/posts/${postId}`);
    await page.getByRole("link", { name: "All posts" }).click();
    await page.waitForURL(/\/blog\/$/);
    await page.locator(".posts > li").first().waitFor();
    // The brand and the current tab both lead to the page on screen.
    await page.getByRole("link", { name: "Titanium Blog", exact: true }).click();
    await page.getByRole("navigation", { name: "Categories" }).getByRole("link", { name: /^All/ }).click();
    await page.locator(".posts > li").first().waitFor();
    await page.goBack();
    await page.waitForURL((url) => url.pathname === `/blog/posts/${postId}`);
    await page.getByRole("heading", { level: 1, name: `Same page ${id}` }).waitFor();
  });

  it("dismissing a toast from the keyboard leaves focus in the page, not at the top of the document", async () => {
    const writer = await new ApiUser(base, `yul_${id}`).signup();
    const { page } = await tab();
    await loginViaUi(page, writer.username); // says "Welcome" in a toast
    // The page it leads to has finished rendering (its heading takes focus then): a render finishing later
    // would move focus after the toast's dismissal, and this test would judge the render, not the toast.
    await expect.poll(() => page.evaluate(() => document.activeElement?.tagName), UI_WAIT).toBe("H1");
    const close = page.locator(".toast .close").first();
    await close.focus();
    await page.keyboard.press("Enter");
    await expect.poll(() => page.locator(".toast").count(), UI_WAIT).toBe(0);
    expect(await page.evaluate(() => document.activeElement?.id)).toBe("main");
    // The next Tab goes on in the content, not back to the skip link.
    await page.keyboard.press("Tab");
    expect(await page.evaluate(() => document.activeElement?.closest("main") !== null)).toBe(true);
  });

  it("logging out takes effect at once: a slow server does not pull the reader back to the list later", async () => {
    const writer = await new ApiUser(base, `zed_${id}`).signup().then((u) => u.login());
    const postId = await writer.createPost(`Slow logout ${id}`, "Text.", `Logout ${id}`);
    const { page } = await tab();
    await loginViaUi(page, writer.username, `/blog/posts/${postId}`);
    let release = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    await page.route("**/api/auth/logout", async (route) => {
      await held;
      await route.continue();
    });
    const answered = page.waitForResponse((r) => new URL(r.url()).pathname === "/api/auth/logout");
    await page.getByRole("heading", { level: 1, name: `Slow logout ${id}` }).waitFor();
    await page.getByRole("button", { name: "Log out" }).click();
    // Signed out and on the list while the server has not answered yet.
    await page.getByText("You are logged out.").waitFor();
    await page.waitForURL(/\/blog\/$/);
    await page.getByRole("link", { name: `Slow logout ${id}` }).click();
    await page.getByRole("heading", { level: 1, name: `Slow logout ${id}` }).waitFor();
    release();
    expect((await answered).status()).toBe(200);
    await page.waitForTimeout(300);
    expect(new URL(page.url()).pathname).toBe(`/blog/posts/${postId}`);
    expect(await page.getByRole("link", { name: "Log in" }).isVisible()).toBe(true);
  });

  it("Forward returns to where the reader was in a post, as Back does in the list", async () => {
    const jin = await new ApiUser(base, `jin_${id}`).signup().then((u) => u.login());
    const long = Array.from({ length: 60 }, (_, i) => `Paragraph ${i} of a long read.`).join("\n\n");
    const postId = await jin.createPost(`Long read ${id}`, long, `Scroll ${id}`);
    const { page } = await tab();
    await page.setViewportSize({ width: 800, height: 500 });
    await page.goto(`${base}/blog/?author=${jin.username}`);
    await page.locator(".posts > li a").first().click();
    await page.waitForURL((url) => url.pathname === `/blog/posts/${postId}`);
    // The app keeps the reader's place from the window's scroll events, with a listener it added at start: a
    // listener added now runs after it, so once this one has seen the position the app has it too.
    await page.evaluate(() => {
      const w = window as unknown as { seenScrollY: number };
      w.seenScrollY = -1;
      window.addEventListener("scroll", () => (w.seenScrollY = window.scrollY), { passive: true });
    });
    await page.locator(".prose p").nth(40).scrollIntoViewIfNeeded();
    const y = await page.evaluate(() => window.scrollY);
    expect(y).toBeGreaterThan(500);
    await expect.poll(() => page.evaluate(() => (window as unknown as { seenScrollY: number }).seenScrollY), UI_WAIT).toBe(y);
    // Then the reader goes Back and Forward.
    await page.goBack();
    await page.locator(".posts > li").first().waitFor();
    await page.goForward();
    await page.locator(".prose p").nth(40).waitFor();
    await expect.poll(() => page.evaluate(() => window.scrollY), UI_WAIT).toBe(y);
  });

  it("Back after publishing, saving or cancelling does not reopen the editor, and a deleted post's editor says it is gone", async () => {
    const writer = await new ApiUser(base, `uma_${id}`).signup();
    const { page } = await tab();
    await loginViaUi(page, writer.username, `/blog/?author=${writer.username}`);
    await page.getByRole("link", { name: "Write" }).click();
    await page.getByLabel("Title").fill(`History ${id}`);
    await page.getByLabel("Category").fill(`History ${id}`);
    await page.getByLabel("Content (Markdown)").fill("Published once.");
    await page.getByRole("button", { name: "Publish" }).click();
    await page.waitForURL(/\/blog\/posts\/\d+$/);
    const postPath = new URL(page.url()).pathname;
    // Back from the new post: the list the author came from, not an empty editor.
    await page.goBack();
    await page.waitForURL(/\/blog\/\?author=/);
    await page.goForward();
    await page.getByRole("heading", { level: 1, name: `History ${id}` }).waitFor();
    // Saved, then cancelled: the editor returns to the post's own entry. Back then leaves the post for the
    // list, never the form again and never a second copy of the post (each edit used to leave one behind).
    await page.getByRole("link", { name: "Edit" }).click();
    await page.getByLabel("Title").fill(`History ${id} (saved)`);
    await page.getByRole("button", { name: "Save changes" }).click();
    await page.getByRole("heading", { level: 1, name: `History ${id} (saved)` }).waitFor();
    expect(new URL(page.url()).pathname).toBe(postPath);
    await page.getByRole("link", { name: "Edit" }).click();
    await page.getByRole("link", { name: "Cancel" }).click();
    await page.getByRole("heading", { level: 1, name: `History ${id} (saved)` }).waitFor();
    await page.goBack();
    await page.waitForURL(/\/blog\/\?author=/);
    await page.goForward();
    await page.getByRole("heading", { level: 1, name: `History ${id} (saved)` }).waitFor();
    // Edited, then deleted: Back goes to the list the author came from, not to the deleted post's "not found".
    await page.getByRole("link", { name: "Edit" }).click();
    await page.getByLabel("Content (Markdown)").fill("Published once, edited once.");
    await page.getByRole("button", { name: "Save changes" }).click();
    await page.locator(".prose", { hasText: "edited once" }).waitFor();
    await page.getByRole("button", { name: "Delete" }).click();
    await page.getByRole("button", { name: "Delete post" }).click();
    // The list the post was opened from (the author's), in its own history entry: no copy of it, no "not found".
    await page.waitForURL(/\/blog\/\?author=/);
    await page.getByRole("heading", { level: 1, name: `Posts by ${writer.username}` }).waitFor();
    expect(await page.getByText("This post does not exist or was deleted.").count()).toBe(0);
    await page.goto(`${base}${postPath}/edit`);
    await page.getByText("This post does not exist or was deleted.").waitFor();
    expect(await page.getByRole("button", { name: "Try again" }).count()).toBe(0);
  });

  it("an editor error that is no field's is not announced as something to fix in the form", async () => {
    const writer = await new ApiUser(base, `wes_${id}`).signup();
    const { page } = await tab();
    await loginViaUi(page, writer.username, "/blog/new");
    await page.getByLabel("Title").fill(`Offline ${id}`);
    await page.getByLabel("Category").fill(`Offline ${id}`);
    await page.getByLabel("Content (Markdown)").fill("Written while the network was down.");
    await page.route("**/blog/api/posts", (route) => route.abort("connectionrefused"));
    await page.getByRole("button", { name: "Publish" }).click();
    const summary = page.locator(".panel.error");
    await summary.getByText("Cannot reach the server. Check your connection and try again.").waitFor();
    expect(await summary.locator("strong").textContent()).toBe("Something went wrong");
    await page.unroute("**/blog/api/posts");
    // A form problem still is.
    await page.getByLabel("Title").fill("");
    await page.getByRole("button", { name: "Publish" }).click();
    await summary.getByText("Title is required.").waitFor();
    expect(await summary.locator("strong").textContent()).toBe("Please fix the following:");
  });

  it("a login refused for the rate or by the network keeps the password typed; a wrong one is cleared", async () => {
    const { page } = await tab();
    await page.goto(`${base}/blog/login`);
    await page.getByLabel("Username").fill(`nobody_${id}`);
    await page.getByLabel("Password").fill(PASSWORD);
    await page.route("**/api/login", (route) =>
      route.fulfill({
        status: 429,
        headers: { "content-type": "application/json", "retry-after": "12" },
        body: JSON.stringify({ error: "TooManyRequests", message: "Too Many Requests", status_code: 429 }),
      }),
    );
    await page.getByRole("button", { name: "Log in" }).click();
    await page.getByText("Too many requests. Try again in 12 s.").waitFor();
    expect(await page.getByLabel("Password").inputValue()).toBe(PASSWORD);
    await page.unroute("**/api/login");
    await page.route("**/api/login", (route) => route.abort("connectionrefused"));
    await page.getByRole("button", { name: "Log in" }).click();
    await page.getByText("Cannot reach the server. Check your connection and try again.").waitFor();
    expect(await page.getByLabel("Password").inputValue()).toBe(PASSWORD);
    await page.unroute("**/api/login");
    // No such account: the password is refused, and cleared.
    await page.getByRole("button", { name: "Log in" }).click();
    await page.getByText("Wrong username or password.").waitFor();
    expect(await page.getByLabel("Password").inputValue()).toBe("");
  });

  it("says in Korean what the services refuse in English: a category with < or >, an address the user-service rejects", async () => {
    const writer = await new ApiUser(base, `sol_${id}`).signup();
    const { page } = await tab();
    await loginViaUi(page, writer.username, "/blog/new");
    await page.getByLabel("Language").selectOption("ko");
    try {
      await page.getByLabel("제목").fill(`Markup ${id}`);
      await page.getByLabel("카테고리").fill("C<D>");
      await page.getByLabel("내용 (Markdown)").fill("Text.");
      const writes: string[] = [];
      page.on("request", (r) => {
        if (r.method() === "POST" && new URL(r.url()).pathname === "/blog/api/posts") writes.push(r.url());
      });
      await page.getByRole("button", { name: "발행" }).click();
      await page.locator(".field-error", { hasText: "카테고리" }).waitFor();
      expect((await page.locator(".field-error").allTextContents()).filter(Boolean)).toEqual(["카테고리에는 < 또는 >를 쓸 수 없습니다."]);
      expect(writes).toEqual([]); // said before anything is sent
      // Signed out, a sign-up with an address of the right shape that the user-service refuses.
      await page.getByRole("button", { name: "로그아웃" }).click();
      await page.getByRole("banner").getByRole("link", { name: "회원가입" }).click();
      await page.waitForURL(/\/blog\/signup$/);
      await page.getByLabel("사용자 이름").fill(`tia_${id}`);
      await page.getByLabel("이메일").fill("tia@example.123"); // a browser takes it; email-validator (the original's) does not: its top-level domain ends with a digit
      await page.getByLabel("비밀번호").fill(PASSWORD);
      await page.getByRole("button", { name: "계정 만들기" }).click();
      await page.locator(".field-error", { hasText: "이메일" }).waitFor();
      expect((await page.locator(".field-error").allTextContents()).filter(Boolean)).toEqual(["이메일: name@example.com 형식의 주소를 입력하세요."]);
    } finally {
      await page.evaluate(() => localStorage.removeItem("titanium.locale")); // the other tests read English
    }
  });

  it("on a phone the current category's tab is scrolled into the tab strip's view", async () => {
    const writer = await new ApiUser(base, `vic_${id}`).signup().then((u) => u.login());
    for (let i = 0; i < 4; i++) await writer.createPost(`Tabs ${id} #${i}`, "Text.", `Far away category ${id} ${i}`);
    // The last tab's category (tabs follow the API's order, one per category with posts), opened by its address.
    const categories = (await (await fetch(`${base}/blog/api/categories`)).json()) as { slug: string; post_count: number }[];
    const last = categories.filter((c) => c.post_count > 0).at(-1)!;
    const { page } = await tab();
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${base}/blog/?${new URLSearchParams({ category: last.slug }).toString()}`);
    await page.locator(".posts > li").first().waitFor();
    const strip = await page.evaluate(() => {
      const ul = document.querySelector(".tabs ul")!;
      const s = ul.getBoundingClientRect();
      const current = document.querySelector(".tab[aria-current='page']")!;
      const c = current.getBoundingClientRect();
      // A pixel of slack: at the strip's far end its edges fall on fractions of a pixel.
      return {
        last: [...ul.querySelectorAll(".tab")].at(-1) === current,
        scrolls: ul.scrollWidth > ul.clientWidth,
        currentInView: c.left >= s.left - 1 && c.right <= s.right + 1,
      };
    });
    expect(strip).toEqual({ last: true, scrolls: true, currentInView: true });
  });

  it("a keyboard user sees every category tab whole, with its whole focus ring (the scrolling strip clips what is outside it)", async () => {
    const writer = await new ApiUser(base, `rin_${id}`).signup().then((u) => u.login());
    for (let i = 0; i < 3; i++) await writer.createPost(`Ring ${id} #${i}`, "Text.", `Ring category ${id} ${i}`);
    // A category named with one long word (50 characters, the most allowed): its tab is cut to fit a phone too.
    await writer.createPost(`Ring ${id} long`, "Text.", `Ring${id}`.padEnd(50, "W"));
    const { page } = await tab();
    await page.setViewportSize({ width: 360, height: 800 });
    await page.goto(`${base}/blog/`);
    await page.locator(".posts > li").first().waitFor();
    // The same list at both widths: the layout follows the viewport (no second load needed).
    for (const width of [360, 1280]) {
      await page.setViewportSize({ width, height: 800 });
      await page.locator(".tabs a").first().focus();
      const tabs = await page.locator(".tabs a").count();
      for (let i = 0; i < tabs; i++) {
        if (i > 0) await page.keyboard.press("Tab"); // the tab the keyboard moves to comes into the strip's view
        const ring = await page.evaluate(async () => {
          await new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
          const a = document.activeElement!;
          const ul = a.closest("ul")!;
          const style = getComputedStyle(a);
          // The ring's outer edge: the outline's width beyond the offset, all around the tab.
          const out = parseFloat(style.outlineWidth) + parseFloat(style.outlineOffset);
          const r = a.getBoundingClientRect();
          const u = ul.getBoundingClientRect();
          // What the strip shows: its padding box (inside its borders, above its scrollbar).
          const box = { top: u.top + ul.clientTop, left: u.left + ul.clientLeft, bottom: u.top + ul.clientTop + ul.clientHeight, right: u.left + ul.clientLeft + ul.clientWidth };
          return {
            tab: a.classList.contains("tab") && style.outlineStyle === "solid",
            inside:
              r.top - out >= box.top - 0.5 &&
              r.bottom + out <= box.bottom + 0.5 &&
              r.left - out >= box.left - 0.5 &&
              r.right + out <= box.right + 0.5,
          };
        });
        expect({ width, i, ...ring }).toEqual({ width, i, tab: true, inside: true });
      }
    }
    // A click on a tab half out of the strip opens that tab: the strip does not move under the pointer.
    await page.setViewportSize({ width: 360, height: 800 });
    await page.goto(`${base}/blog/`);
    await page.locator(".posts > li").first().waitFor();
    const edge = await page.evaluate(() => {
      const ul = document.querySelector(".tabs ul")!.getBoundingClientRect();
      const a = [...document.querySelectorAll<HTMLAnchorElement>(".tabs a")].find((t) => {
        const r = t.getBoundingClientRect();
        return r.left < ul.right - 10 && r.right > ul.right + 10;
      })!;
      const r = a.getBoundingClientRect();
      return { href: a.getAttribute("href")!, x: (r.left + ul.right) / 2, y: (r.top + r.bottom) / 2 };
    });
    await page.mouse.click(edge.x, edge.y);
    await page.waitForURL((url) => url.pathname + url.search === edge.href);
  });

  it("a post deleted after opening it from the list leaves the list once in the history: Back leaves it", async () => {
    const writer = await new ApiUser(base, `nia_${id}`).signup().then((u) => u.login());
    const before = await writer.createPost(`Read before ${id}`, "The page before the list.", `History ${id}`);
    await writer.createPost(`Doomed ${id}`, "Deleted from the list.", `History ${id}`);
    const { page } = await tab();
    await loginViaUi(page, writer.username, `/blog/posts/${before}`);
    await page.getByRole("link", { name: "All posts" }).click();
    await page.getByRole("link", { name: `Doomed ${id}` }).click();
    await page.waitForURL(/\/blog\/posts\/\d+$/);
    await page.getByRole("button", { name: "Delete" }).click();
    const dialog = page.getByRole("dialog", { name: "Delete this post?" });
    await dialog.waitFor();
    // The dialog is described by its sentence: a screen reader says which post goes.
    expect(await dialog.evaluate((d) => document.getElementById(d.getAttribute("aria-describedby") ?? "")?.textContent)).toBe(
      `“Doomed ${id}” will be deleted permanently.`,
    );
    await dialog.getByRole("button", { name: "Delete post" }).click();
    await page.getByText("Post deleted.").waitFor();
    await page.waitForURL((u) => u.pathname === "/blog/" && u.search === "");
    await page.getByRole("heading", { level: 1, name: "Latest posts" }).waitFor();
    // Back leaves the list (it is not in the history twice) for the post read before it.
    await page.goBack();
    await page.waitForURL((u) => u.pathname === `/blog/posts/${before}`);
    await page.getByRole("heading", { level: 1, name: `Read before ${id}` }).waitFor();
  });

  it("a post its author deleted elsewhere is said to be gone, not forbidden, when saved or deleted here", async () => {
    const writer = await new ApiUser(base, `oz_${id}`).signup().then((u) => u.login());
    const edited = await writer.createPost(`Edited here ${id}`, "Deleted in another tab.", `Elsewhere ${id}`);
    const deleted = await writer.createPost(`Deleted twice ${id}`, "Deleted in another tab too.", `Elsewhere ${id}`);
    const { page } = await tab();
    // The editor is open when the post is deleted elsewhere: the save says the post is gone (draft kept).
    await loginViaUi(page, writer.username, `/blog/posts/${edited}/edit`);
    await page.getByLabel("Title").fill(`Edited here ${id} (revised)`);
    expect(await writer.status("DELETE", `/blog/api/posts/${edited}`)).toBe(204);
    await page.getByRole("button", { name: "Save changes" }).click();
    await page.locator(".editor .panel.error", { hasText: "This post does not exist or was deleted." }).waitFor();
    expect(await page.getByText("You are not allowed to do that.").count()).toBe(0);
    expect(await page.getByLabel("Title").inputValue()).toBe(`Edited here ${id} (revised)`);
    // The post is on screen when it is deleted elsewhere: deleting it here finds it gone, as wanted.
    await page.goto(`${base}/blog/posts/${deleted}`);
    await page.getByRole("button", { name: "Delete" }).click();
    expect(await writer.status("DELETE", `/blog/api/posts/${deleted}`)).toBe(204);
    await page.getByRole("dialog").getByRole("button", { name: "Delete post" }).click();
    await page.getByText("This post had already been deleted.").waitFor();
    await page.waitForURL((u) => u.pathname === "/blog/");
    expect(await page.getByText("You are not allowed to do that.").count()).toBe(0);
  });

  it("a publish the server may have applied (503 without Retry-After) invites no resend and links to the author's posts", async () => {
    const writer = await new ApiUser(base, `doubt_${id}`).signup();
    const { page } = await tab();
    await loginViaUi(page, writer.username, "/blog/new");
    const title = `In doubt ${id}`;
    await page.getByLabel("Title").fill(title);
    await page.getByLabel("Category").fill(`Doubt ${id}`);
    await page.getByLabel("Content (Markdown)").fill("Saved, but the answer was lost.");
    // The post reaches the server and is saved; the answer the browser gets is the gateway's in-doubt 503.
    await page.route("**/blog/api/posts", async (route) => {
      if (route.request().method() !== "POST") return route.fallback();
      const saved = await route.fetch();
      expect(saved.status()).toBe(201);
      await route.fulfill({
        status: 503,
        contentType: "application/json",
        body: JSON.stringify({ error: "ServiceUnavailable", message: "the upstream failed during the request; it may or may not have been applied, check before retrying" }),
      });
    });
    await page.getByRole("button", { name: "Publish" }).click();
    const summary = page.locator(".editor .panel.error");
    await summary.getByText("your post may have been saved").waitFor(UI_WAIT);
    await page.unroute("**/blog/api/posts");
    expect(await summary.textContent()).not.toMatch(/try again/i);
    expect(await page.getByRole("button", { name: "Try again" }).count()).toBe(0);
    // The draft stays; the link leads to the author's own posts, where the post is, once.
    expect(await page.getByLabel("Title").inputValue()).toBe(title);
    const mine = summary.getByRole("link", { name: "See your posts" });
    expect(await mine.getAttribute("href")).toBe(`/blog/?author=${writer.username}`);
    await mine.click();
    await page.getByRole("heading", { level: 1, name: `Posts by ${writer.username}` }).waitFor();
    await page.getByRole("link", { name: title }).waitFor();
    const listed = (await (await fetch(`${base}/blog/api/posts?author=${writer.username}`)).json()) as { title: string }[];
    expect(listed.map((p) => p.title)).toEqual([title]);
  });

  it("a search of more than 8 words is refused on the search field, in Korean, with nothing to retry", async () => {
    const { page } = await tab();
    try {
      await page.goto(`${base}/blog/`);
      await page.getByLabel("Language").selectOption("ko");
      await page.getByRole("heading", { level: 1, name: "최신 글" }).waitFor();
      const words = page.getByRole("searchbox");
      // The hint names the limit.
      const hintIds = (await words.getAttribute("aria-describedby")) ?? "";
      expect(await page.locator(`[id="${hintIds}"]`).textContent()).toMatch(/최대 8단어/);
      // Refused before anything is sent.
      let searched = 0;
      page.on("request", (r) => {
        if (/\/blog\/api\/posts\?.*q=/.test(r.url())) searched++;
      });
      await words.fill("하나 둘 셋 넷 다섯 여섯 일곱 여덟 아홉");
      await page.getByRole("button", { name: "검색", exact: true }).click();
      const error = page.locator(".search .field-error");
      await error.waitFor();
      expect(await error.textContent()).toBe("검색어: 최대 8단어까지 쓸 수 있습니다(이 검색은 9단어입니다).");
      expect(await words.getAttribute("aria-invalid")).toBe("true");
      expect((await words.getAttribute("aria-describedby"))?.split(" ")).toContain(await error.getAttribute("id"));
      expect(searched).toBe(0);
      expect(new URL(page.url()).search).toBe("");
      // What the server refuses (a link with more words than it looks up; here counted only by the server:
      // `it's` is two words to it) is said the same way, in Korean, with no "try again".
      await page.goto(`${base}/blog/?q=${encodeURIComponent("one two three four five six seven it's")}`);
      await error.waitFor(UI_WAIT);
      expect(await error.textContent()).toBe("검색어: 최대 8단어까지 쓸 수 있습니다(이 검색은 9단어입니다).");
      expect(await page.getByRole("searchbox").getAttribute("aria-invalid")).toBe("true");
      expect(await page.getByRole("button", { name: "다시 시도" }).count()).toBe(0);
      expect(await page.locator("main").textContent()).not.toMatch(/at most|Something went wrong|문제가 생겼습니다/);
      // A search within the limit clears it.
      await page.getByRole("searchbox").fill("one two");
      await page.getByRole("button", { name: "검색", exact: true }).click();
      await page.waitForURL((u) => u.search === "?q=one+two");
      await expect.poll(() => page.getByRole("searchbox").getAttribute("aria-invalid"), UI_WAIT).toBeNull();
    } finally {
      await page.evaluate(() => localStorage.removeItem("titanium.locale")); // the other tests read English
    }
  });

  it("deleting a post, or cancelling a new one, goes back to the list page it came from (category, page 2)", async () => {
    const writer = await new ApiUser(base, `pager_${id}`).signup().then((u) => u.login());
    const category = `Paged ${id}`;
    for (let i = 1; i <= PAGE_SIZE + 2; i++) await writer.createPost(`Paged ${id} #${i}`, `Post ${i}.`, category);
    const cats = (await (await fetch(`${base}/blog/api/categories`)).json()) as { name: string; slug: string }[];
    const slug = cats.find((c) => c.name === category)!.slug;
    const listUrl = `/blog/?${new URLSearchParams({ category: slug, page: "2" }).toString()}`;
    const { page } = await tab();
    await loginViaUi(page, writer.username, listUrl);
    const doomed = page.locator(".posts .card-title a").first();
    const doomedTitle = (await doomed.textContent()) ?? "";
    await doomed.click();
    await page.waitForURL(/\/blog\/posts\/\d+$/);
    await page.getByRole("button", { name: "Delete" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Delete post" }).click();
    await page.getByText("Post deleted.").waitFor();
    await page.waitForURL((u) => u.pathname + u.search === listUrl);
    await page.getByRole("heading", { level: 1, name: `Posts in ${category}` }).waitFor();
    await page.getByText("Page 2 of 2").waitFor(UI_WAIT);
    expect(await page.getByRole("link", { name: doomedTitle, exact: true }).count()).toBe(0);
    // A new post started from that page and cancelled goes back to it too.
    await page.getByRole("banner").getByRole("link", { name: "Write" }).click();
    await page.waitForURL(/\/blog\/new$/);
    await page.getByRole("link", { name: "Cancel" }).click();
    await page.waitForURL((u) => u.pathname + u.search === listUrl);
    await page.getByText("Page 2 of 2").waitFor(UI_WAIT);
  });

  it("the pages' watch reports a stylesheet or script that fails to load, not a refused API call", async () => {
    // Not one of the tabs expectCleanPages checks: its errors are this test's to look at.
    const w = await openPage(browser);
    try {
      await w.page.route("**/blog/assets/app-*.css", (route) => route.fulfill({ status: 404, contentType: "text/plain", body: "Not found" }));
      await w.page.goto(`${base}/blog/`);
      await w.page.getByRole("heading", { level: 1, name: "Latest posts" }).waitFor();
      expect(await w.page.evaluate(async () => (await fetch("/blog/api/posts/2147483647")).status)).toBe(404);
      await expect
        .poll(() => w.errors, UI_WAIT)
        .toEqual(expect.arrayContaining([expect.stringMatching(/^Failed to load resource: .*404.*: http:\/\/[^ ]+\/blog\/assets\/app-[^/]+\.css$/)]));
      expect(w.errors.join("\n")).not.toMatch(/\/api\//);
    } finally {
      await w.page.close();
    }
  });
});
