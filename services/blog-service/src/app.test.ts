import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Lifecycle, Metrics, createPostgres, createRedis, startServer, type Redis } from "@titanium/kit";
import { contractChecked, type ContractReport, memoryLogger, startTestPostgres, startTestRedis, testTokens, type TestPostgres, type TestRedis } from "@titanium/kit/testing";
import { fileURLToPath } from "node:url";
import postgres from "postgres";
import { PAGE_SIZE } from "../../blog-web/src/app/limits.js";
import { CACHE_GENERATION_KEY, CACHE_PREFIX, LIST_CACHE, createApp } from "./app.js";
import { normalizeCategoryName, sanitizeTitle } from "./content.js";
import { BlogRepo } from "./repo.js";
import { ListQuery } from "./schemas.js";

/** The built web UI (`npm ci` builds it). */
const WEB_DIST = fileURLToPath(new URL("../../blog-web/dist", import.meta.url));

let pg: TestPostgres;
let rd: TestRedis;
let redis: Redis;
let tokens: Awaited<ReturnType<typeof testTokens>>;
let app: ReturnType<typeof createApp>;
let contract: ContractReport;
let metrics: Metrics;
let db: TestPostgres["sql"];
let alice: string;
let bob: string;

beforeAll(async () => {
  [pg, rd, tokens] = await Promise.all([startTestPostgres(), startTestRedis(), testTokens()]);
  // The service's own role, as in production: what the app does must be within its grants (kit roles.ts).
  db = pg.as("blog_service");
  redis = createRedis({ url: rd.url });
  await new Promise((r) => redis.once("ready", r));
  metrics = new Metrics("blog-service", { processMetrics: false });
  ({ app, report: contract } = contractChecked(createApp({ sql: db, redis, verifier: tokens.verifier, logger: memoryLogger().logger, metrics })));
  alice = await tokens.sign({ id: 1, username: "alice" });
  bob = await tokens.sign({ id: 2, username: "bob" });
});
afterAll(async () => {
  redis?.disconnect();
  await Promise.all([pg?.stop(), rd?.stop()]);
});

type PostT = { id: number; title: string; content: string; author: string; created_at: string; updated_at: string; category: { id: number; name: string; slug: string } };
type Summary = { id: number; title: string; excerpt: string; category: { slug: string } };
type Cat = { id: number; name: string; slug: string; color: string; post_count: number };
const send = (method: string, path: string, body?: unknown, token?: string) =>
  app.request(path, {
    method,
    ...(body !== undefined && { body: JSON.stringify(body) }),
    headers: { "content-type": "application/json", ...(token && { authorization: `Bearer ${token}` }) },
  });
async function create(token: string, body: Partial<{ title: string; content: string; category_name: string }> = {}): Promise<PostT> {
  const res = await send("POST", "/blog/api/posts", { title: "T", content: "C", category_name: "Test", ...body }, token);
  expect(res.status).toBe(201);
  return (await res.json()) as PostT;
}
const list = async (qs = "") => {
  const res = await app.request(`/blog/api/posts${qs}`);
  expect(res.status).toBe(200);
  return { items: (await res.json()) as Summary[], total: Number(res.headers.get("x-total-count")) };
};
const categories = async () => (await (await app.request("/blog/api/categories")).json()) as Cat[];

describe("posts", () => {
  it("creates with the token's user as author, sanitised, in a category made on first use (201)", async () => {
    const post = await create(alice, { title: "<b>Hello</b>", content: "<p>Hi</p><script>x</script>", category_name: "쿠버네티스 운영" });
    expect(post).toMatchObject({ title: "Hello", content: "<p>Hi</p>", author: "alice", category: { name: "쿠버네티스 운영", slug: "쿠버네티스-운영" } });
    const cat = (await categories()).find((c) => c.slug === "쿠버네티스-운영");
    expect(cat?.color).toMatch(/^#[0-9A-F]{6}$/);
    expect(cat?.post_count).toBe(1);
    const got = await app.request(`/blog/api/posts/${post.id}`);
    expect(await got.json()).toEqual(post);
    expect(await metrics.registry.getSingleMetricAsString("titanium_posts_created_total")).toMatch(/} [1-9]/);
  });

  it("keeps text the web UI sent escaped exactly as sent (the UI's toStored), so a post about HTML loses nothing", async () => {
    // What blog-web sends for the title "Why <main> matters" and a code span and fence holding tags.
    const title = "Why &lt;main&gt; matters &amp; more";
    const content = "Wrap it in `&lt;main&gt;`:\n\n```html\n&lt;main&gt;&lt;p&gt;hi&lt;/p&gt;&lt;/main&gt;\n&lt;script&gt;x()&lt;/script&gt;\n```";
    const post = await create(alice, { title, content, category_name: "Test" });
    expect(post).toMatchObject({ title, content });
    const got = (await (await app.request(`/blog/api/posts/${post.id}`)).json()) as { title: string; content: string };
    expect([got.title, got.content]).toEqual([title, content]);
  });

  it("stores code with an unclosed `<` whole and line breaks as LF, as the original's bleach did (the rest of the post was dropped)", async () => {
    const content = "Loop:\r\n```c\nfor (i = 0; i<n; i++) { sum += a[i]; }\n```\r\nDone.";
    const post = await create(alice, { title: "if a<b", content, category_name: "Test" });
    const stored = "Loop:\n```c\nfor (i = 0; i&lt;n; i++) { sum += a[i]; }\n```\nDone.";
    expect(post).toMatchObject({ title: "if a&lt;b", content: stored });
    expect(await (await app.request(`/blog/api/posts/${post.id}`)).json()).toMatchObject({ title: "if a&lt;b", content: stored });
  });

  it("refuses writes without a valid token (401) and validates bodies (422 naming the field)", async () => {
    expect((await send("POST", "/blog/api/posts", { title: "t", content: "c", category_name: "x" })).status).toBe(401);
    expect((await send("POST", "/blog/api/posts", { title: "t", content: "c", category_name: "x" }, "garbage")).status).toBe(401);
    const expired = await tokens.sign({ id: 1, username: "alice" }, -60);
    expect((await send("POST", "/blog/api/posts", { title: "t", content: "c", category_name: "x" }, expired)).status).toBe(401);
    const long = await send("POST", "/blog/api/posts", { title: "x".repeat(121), content: "c", category_name: "x" }, alice);
    expect(long.status).toBe(422);
    expect(await long.json()).toMatchObject({ field: "title" });
    const missing = await send("POST", "/blog/api/posts", { title: "t", content: "c" }, alice);
    expect(await missing.json()).toMatchObject({ status_code: 422, field: "category_name" });
    const onlyMarkup = await send("POST", "/blog/api/posts", { title: "<i></i>", content: "c", category_name: "x" }, alice);
    expect(onlyMarkup.status).toBe(422);
    expect((await app.request("/blog/api/posts/abc")).status).toBe(422);
    expect((await app.request("/blog/api/posts/999999")).status).toBe(404);
  });

  it("stores a title of 120 characters that escaping lengthens (& and > become entities), on create and patch; 121 is a 422", async () => {
    const title = "&>".repeat(60);
    expect(title).toHaveLength(120);
    // The cleaner escapes the text: the stored title is longer than what was sent (it overflowed the old varchar(200)).
    expect(sanitizeTitle(title).length).toBeGreaterThan(200);
    // Category names are stored as sent (not escaped): 50 such characters fit their varchar(50).
    const created = await create(alice, { title, category_name: "&\"".repeat(25) });
    expect(created.title).toBe(sanitizeTitle(title));
    expect(created.category.name).toBe("&\"".repeat(25));
    expect(((await (await app.request(`/blog/api/posts/${created.id}`)).json()) as PostT).title).toBe(sanitizeTitle(title));
    const other = await create(alice, { title: "short" });
    const patchTitle = ">&".repeat(60);
    const patched = await send("PATCH", `/blog/api/posts/${other.id}`, { title: patchTitle }, alice);
    expect(patched.status).toBe(200);
    expect(((await patched.json()) as PostT).title).toBe(sanitizeTitle(patchTitle));
    const tooLong = `${title}&`;
    for (const res of [
      await send("POST", "/blog/api/posts", { title: tooLong, content: "c", category_name: "x" }, alice),
      await send("PATCH", `/blog/api/posts/${other.id}`, { title: tooLong }, alice),
    ]) {
      expect(res.status).toBe(422);
      expect(await res.json()).toMatchObject({ status_code: 422, field: "title" });
    }
  });

  it("refuses a content of only markup (no text once tags are removed) with 422 naming content, on create and patch", async () => {
    const post = await create(alice, { content: "kept" });
    for (const content of ["<p></p>", "<ul><li></li></ul>", "<p> </p><br>", "<p>&nbsp;</p>", "<h1>\n</h1>", '<a href="https://e.example"></a>']) {
      for (const res of [
        await send("POST", "/blog/api/posts", { title: "t", content, category_name: "Test" }, alice),
        await send("PATCH", `/blog/api/posts/${post.id}`, { content }, alice),
      ]) {
        expect(res.status, content).toBe(422);
        expect(await res.json(), content).toMatchObject({ status_code: 422, field: "content" });
      }
    }
    expect(((await (await app.request(`/blog/api/posts/${post.id}`)).json()) as PostT).content).toBe("kept");
    // Markup around text is still fine.
    expect((await create(alice, { content: "<p><strong>x</strong></p>" })).content).toBe("<p><strong>x</strong></p>");
  });

  it("refuses markup in a category name (plain text, served as is) with 422 naming it, on create and patch", async () => {
    const mine = await create(alice);
    for (const name of ["<script>alert(1)</script>", "a<b", "x>y", '<img src=x onerror="alert(1)">']) {
      for (const res of [await send("POST", "/blog/api/posts", { title: "t", content: "c", category_name: name }, alice), await send("PATCH", `/blog/api/posts/${mine.id}`, { category_name: name }, alice)]) {
        expect(res.status, name).toBe(422);
        expect(await res.json(), name).toMatchObject({ field: "category_name", message: expect.stringContaining("must not contain < or >") });
      }
    }
    // Other punctuation stays: C++ & Go.
    expect((await create(alice, { category_name: "C++ & Go" })).category.name).toBe("C++ & Go");
  });

  it("refuses NUL characters (PostgreSQL text cannot hold them) with 422 naming the field, not a 500", async () => {
    const bodies: [string, Record<string, string>][] = [
      ["title", { title: "a\u0000b", content: "c", category_name: "x" }],
      ["content", { title: "t", content: "c\u0000", category_name: "x" }],
      ["category_name", { title: "t", content: "c", category_name: "\u0000" }],
    ];
    for (const [field, body] of bodies) {
      const res = await send("POST", "/blog/api/posts", body, alice);
      expect(res.status, field).toBe(422);
      expect(await res.json(), field).toMatchObject({ field });
    }
    const mine = await create(alice);
    const patched = await send("PATCH", `/blog/api/posts/${mine.id}`, { content: "\u0000" }, alice);
    expect(await patched.json()).toMatchObject({ status_code: 422, field: "content" });
    for (const field of ["q", "author", "category"]) {
      const res = await app.request(`/blog/api/posts?${field}=a%00b`);
      expect(res.status, field).toBe(422);
      expect(await res.json(), field).toMatchObject({ field });
    }
  });

  it("lets only the author change or delete; others get 403 'Forbidden or post not found'", async () => {
    const post = await create(alice, { category_name: "Test" });
    const byBob = await send("PATCH", `/blog/api/posts/${post.id}`, { title: "hijack" }, bob);
    expect(byBob.status).toBe(403);
    expect(await byBob.json()).toMatchObject({ error: "Forbidden", message: "Forbidden or post not found", status_code: 403 });
    expect((await send("DELETE", `/blog/api/posts/${post.id}`, undefined, bob)).status).toBe(403);
    expect((await send("PATCH", `/blog/api/posts/999999`, { title: "x" }, alice)).status).toBe(403);
    const empty = await send("PATCH", `/blog/api/posts/${post.id}`, {}, alice);
    expect(await empty.json()).toEqual({ message: "No changes" });
    // null means unchanged, as the original's Optional fields did (a client may send the whole form).
    const nulls = await send("PATCH", `/blog/api/posts/${post.id}`, { title: null, content: null, category_name: null }, alice);
    expect(await nulls.json()).toEqual({ message: "No changes" });
    const partly = await send("PATCH", `/blog/api/posts/${post.id}`, { title: null, content: "kept title", category_name: null }, alice);
    expect(partly.status).toBe(200);
    expect(await partly.json()).toMatchObject({ title: "T", content: "kept title", category: { name: "Test" } });
    const changed = await send("PATCH", `/blog/api/posts/${post.id}`, { content: "<p>new</p><img src=x>" }, alice);
    expect(changed.status).toBe(200);
    const body = (await changed.json()) as PostT;
    expect(body).toMatchObject({ title: "T", content: "<p>new</p>" });
    expect(new Date(body.updated_at).getTime()).toBeGreaterThan(new Date(post.updated_at).getTime());
    const del = await send("DELETE", `/blog/api/posts/${post.id}`, undefined, alice);
    expect(del.status).toBe(204);
    expect((await app.request(`/blog/api/posts/${post.id}`)).status).toBe(404);
  });
});

describe("what a request may name", () => {
  it("takes a post id as the original's FastAPI int took it, within the integer range (else 422 naming id), on every method", async () => {
    await pg.sql`delete from posts`;
    // Posts 1 and 16 exist, so an id that Number() coerced (1e0, 0x10, …) would find one.
    await pg.sql`insert into posts (id, title, content, author, category_id) values (1, 'one', 'c', 'alice', 3), (16, 'sixteen', 'c', 'alice', 3)`;
    expect((await app.request("/blog/api/posts/1")).status).toBe(200);
    expect((await app.request("/blog/api/posts/16")).status).toBe(200);
    // pydantic's lax int (checked against pydantic 2.13): a sign, leading zeros, `_` between digits, a `.0`
    // fraction, spaces around (not tabs or line breaks: control characters stay refused, as at the gateway).
    for (const id of ["+1", "01", "1.0", "1.00", "%201", "1%20", "%E3%80%801", "0_1"]) {
      const res = await app.request(`/blog/api/posts/${id}`);
      expect(res.status, id).toBe(200);
      expect(((await res.json()) as PostT).title, id).toBe("one");
    }
    expect(((await (await app.request("/blog/api/posts/1_6")).json()) as PostT).title).toBe("sixteen");
    for (const id of ["1e0", "0x10", "0b1", "0o1", "%091", "1%0A", "1.", "1.5", ".0", "1__6", "_1", "1_", "--1", "+-1", "-", "%20", "2147483648", "-2147483649", "1".repeat(400), "%D9%A1", "%EF%BC%91"]) {
      const res = await app.request(`/blog/api/posts/${id}`);
      expect(res.status, id).toBe(422);
      expect(await res.json(), id).toMatchObject({ status_code: 422, field: "id" });
      for (const method of ["PATCH", "DELETE"]) {
        const write = await send(method, `/blog/api/posts/${id}`, method === "PATCH" ? { title: "x" } : undefined, alice);
        expect(write.status, `${method} ${id}`).toBe(422);
        expect(await write.json(), `${method} ${id}`).toMatchObject({ field: "id" });
      }
    }
    // Ids no post has (0, negatives, down to the integer's least) answer as a missing post did in the original:
    // GET 404 "Post not found", PATCH and DELETE 403 "Forbidden or post not found".
    for (const id of ["0", "-0", "-1", "-16", "-2147483648"]) {
      const res = await app.request(`/blog/api/posts/${id}`);
      expect(res.status, id).toBe(404);
      expect(await res.json(), id).toMatchObject({ error: "NotFound", message: "Post not found", status_code: 404 });
      for (const method of ["PATCH", "DELETE"]) {
        const write = await send(method, `/blog/api/posts/${id}`, method === "PATCH" ? { title: "x" } : undefined, alice);
        expect(write.status, `${method} ${id}`).toBe(403);
        expect(await write.json(), `${method} ${id}`).toMatchObject({ message: "Forbidden or post not found", status_code: 403 });
      }
    }
    expect(((await (await app.request("/blog/api/posts/1")).json()) as PostT).title).toBe("one");
    await pg.sql`delete from posts`;
  });

  it("refuses unpaired surrogates in text (stored as U+FFFD before) with 422 naming the field; pairs are fine", async () => {
    for (const [field, body] of [
      ["title", { title: "a\ud800b", content: "c", category_name: "x" }],
      ["content", { title: "t", content: "c\udfff", category_name: "x" }],
      ["category_name", { title: "t", content: "c", category_name: "cat\ud83d" }],
    ] as const) {
      const res = await send("POST", "/blog/api/posts", body, alice);
      expect(res.status, field).toBe(422);
      expect(await res.json(), field).toMatchObject({ field });
    }
    const mine = await create(alice, { title: "t😀", content: "c😀", category_name: "Emoji 😀" });
    expect(mine).toMatchObject({ title: "t😀", content: "c😀", category: { name: "Emoji 😀" } });
    for (const field of ["title", "content", "category_name"]) {
      const res = await send("PATCH", `/blog/api/posts/${mine.id}`, { [field]: "\udc00" }, alice);
      expect(res.status, field).toBe(422);
      expect(await res.json(), field).toMatchObject({ field });
    }
    expect(((await (await app.request(`/blog/api/posts/${mine.id}`)).json()) as PostT).title).toBe("t😀");
  });
});

describe("categories by name", () => {
  it("files look-alike names (case, whitespace, Unicode form) under one category, keeping its stored name", async () => {
    const seededTest = (await categories()).find((c) => c.slug === "test")!;
    for (const name of ["test", "TEST", "  tEsT ", "Test\u3000"]) {
      const post = await create(alice, { category_name: name });
      expect(post.category, JSON.stringify(name)).toEqual({ id: seededTest.id, name: "Test", slug: "test" });
    }
    const first = await create(alice, { category_name: "Te st" });
    expect(first.category).toMatchObject({ name: "Te st", slug: "te-st" });
    for (const name of ["Te  st", "Te\tst", "Te\u00a0st", " te\n ST ", "TE\u2003ST"]) {
      expect((await create(alice, { category_name: name })).category, JSON.stringify(name)).toEqual(first.category);
    }
    const nfc = await create(alice, { category_name: "Caf\u00e9 noir" });
    expect(nfc.category.name).toBe("Caf\u00e9 noir");
    expect((await create(alice, { category_name: "cafe\u0301 NOIR" })).category).toEqual(nfc.category);
    // A new name is stored normalised: NFC, one space, trimmed.
    const fresh = await create(alice, { category_name: " \tNe\u0301o\u00a0\u00a0Tokyo  " });
    expect(fresh.category).toMatchObject({ name: "N\u00e9o Tokyo", slug: "néo-tokyo" });
    // PATCH files the same way.
    const moved = await send("PATCH", `/blog/api/posts/${fresh.id}`, { category_name: "TROUBLESHOOTING" }, alice);
    expect(((await moved.json()) as PostT).category).toMatchObject({ name: "Troubleshooting", slug: "troubleshooting" });
    const names = (await categories()).map((c) => normalizeCategoryName(c.name).toLowerCase());
    expect(names.filter((n) => n === "test")).toHaveLength(1);
    expect(names.filter((n) => n === "te st")).toHaveLength(1);
    expect(names.filter((n) => n === "café noir")).toHaveLength(1);
  });

  it("counts a name's 1 to 50 characters after normalising, in code points (as varchar(50) and the original)", async () => {
    const astral = `${"a".repeat(40)}${"𠀀".repeat(10)}`; // 50 characters, 60 UTF-16 units
    const post = await create(alice, { category_name: `  ${astral}  ` });
    expect(post.category.name).toBe(astral);
    for (const category_name of [`${astral}b`, " \t\u00a0 ", ""]) {
      const res = await send("POST", "/blog/api/posts", { title: "t", content: "c", category_name }, alice);
      expect(res.status, JSON.stringify(category_name)).toBe(422);
      expect(await res.json()).toMatchObject({ field: "category_name" });
    }
  });

  it("makes a slug of at most 50 characters that never ends in half a surrogate pair", async () => {
    const post = await create(alice, { category_name: `${"b".repeat(49)}𠀀` });
    expect(post.category.slug).toBe(`${"b".repeat(49)}𠀀`);
    // "İ" lower-cases to two code points (i + U+0307), so this 50-character name makes a 51-character slug: cut.
    const cut = await create(alice, { category_name: `İ${"c".repeat(47)}𠀀x` });
    expect(cut.category.slug).toBe(`i\u0307${"c".repeat(47)}𠀀`);
    for (const slug of [post.category.slug, cut.category.slug]) expect(slug).not.toMatch(/\uFFFD|[\uD800-\uDFFF]/u);
  });

  it("creates no category for a PATCH that answers 403 (not the author's post, or no such post)", async () => {
    const post = await create(alice, { category_name: "Test" });
    const before = await categories();
    for (const [id, token] of [[post.id, bob], [999_999, alice]] as const) {
      const res = await send("PATCH", `/blog/api/posts/${id}`, { category_name: `Rejected ${id}` }, token);
      expect(res.status).toBe(403);
    }
    expect(await pg.sql`select name from categories where name like 'Rejected%'`).toHaveLength(0);
    expect(await categories()).toEqual(before);
    expect(((await (await app.request(`/blog/api/posts/${post.id}`)).json()) as PostT).category.name).toBe("Test");
  });
});

describe("listing, search and pagination", () => {
  it("keeps the array response, newest first, with excerpts, and adds the total in X-Total-Count", async () => {
    await pg.sql`delete from posts`;
    for (let i = 1; i <= 5; i++) await create(i % 2 ? alice : bob, { title: `Post ${i}`, content: `Body ${i} ${"z".repeat(130)}`, category_name: i % 2 ? "Odd" : "Even" });
    const all = await list();
    expect(all.total).toBe(5);
    expect(all.items.map((p) => p.title)).toEqual(["Post 5", "Post 4", "Post 3", "Post 2", "Post 1"]);
    expect(all.items[0]!.excerpt.endsWith("...")).toBe(true);
    expect(Object.keys(all.items[0]!).sort()).toEqual(["author", "category", "created_at", "excerpt", "id", "title"]);
    const page = await list("?offset=1&limit=2");
    expect(page.items.map((p) => p.title)).toEqual(["Post 4", "Post 3"]);
    expect(page.total).toBe(5);
    // Unaligned offsets are different pages (the original's cache keys collided).
    expect((await list("?offset=2&limit=2")).items.map((p) => p.title)).toEqual(["Post 3", "Post 2"]);
    expect((await list("?offset=50")).items).toEqual([]);
    expect((await list("?offset=50")).total).toBe(5);
    expect((await list("?category=even")).items.map((p) => p.title)).toEqual(["Post 4", "Post 2"]);
    // A slug longer than any stored one finds nothing (the original answered [] too, not a 422).
    for (const slug of ["e".repeat(51), `even${"-".repeat(300)}`]) expect(await list(`?category=${slug}`), slug).toEqual({ items: [], total: 0 });
    expect((await list("?author=alice")).total).toBe(3);
    // Usernames are one account in any case (login, signup, profiles): so is the author filter.
    for (const author of ["ALICE", "Alice", "aLiCe"]) expect((await list(`?author=${author}`)).total, author).toBe(3);
    expect((await list("?author=alic")).total).toBe(0);
    // Only ASCII folds, as the user-service matches usernames: "İ" is no "i".
    expect((await list(`?author=${encodeURIComponent("alİce")}`)).total).toBe(0);
  });

  it("filters by author with the index on lower(author), not a scan of every post", async () => {
    const seen: { query: string; params: unknown[] }[] = [];
    const spy = postgres(pg.urlAs("blog_service"), { max: 1, transform: { undefined: null }, debug: (_c, query, params) => void seen.push({ query, params }) });
    try {
      await new BlogRepo(spy).list({ offset: 0, limit: 20, author: "ALICE" });
      const listed = seen.find((q) => q.query.includes("from posts p"))!;
      const plan = await spy.begin(async (tx) => {
        await tx`set local enable_seqscan = off`;
        return tx.unsafe(`explain (format json) ${listed.query}`, listed.params as postgres.ParameterOrJSON<never>[]);
      });
      expect(JSON.stringify(plan)).toContain("idx_posts_author_lower");
    } finally {
      await spy.end({ timeout: 1 });
    }
  });

  it("rejects out-of-range paging with 422", async () => {
    expect((await app.request("/blog/api/posts?limit=101")).status).toBe(422);
    expect((await app.request("/blog/api/posts?offset=-1")).status).toBe(422);
    expect((await app.request("/blog/api/posts?limit=0")).status).toBe(422);
  });

  it("takes offset and limit only as integers the original's FastAPI int took (else 422 naming the field)", async () => {
    await pg.sql`delete from posts`;
    for (let i = 0; i < 17; i++) await create(alice, { title: `p${i}` });
    // Number() read `0x10` as 16, `1e1` as 10, an empty or blank value as 0: another page than the client asked for.
    for (const [name, value] of [
      ["limit", "0x10"],
      ["limit", "1e1"],
      ["limit", "0b11"],
      ["limit", "5.5"],
      ["limit", "5."],
      ["limit", "%095"],
      ["offset", ""],
      ["offset", "%20"],
      ["offset", "1e1"],
      ["offset", "0x2"],
      ["offset", "Infinity"],
    ]) {
      const res = await app.request(`/blog/api/posts?${name}=${value}`);
      expect(res.status, `${name}=${value}`).toBe(422);
      // In FastAPI's form too, where the original's clients read it, typed as pydantic typed it.
      expect(await res.json(), `${name}=${value}`).toMatchObject({ status_code: 422, field: name, detail: [{ type: "int_parsing", loc: ["query", name] }] });
    }
    // Integers as FastAPI took them (pydantic's lax int: sign, leading zeros, `_`, `.0`, spaces around) page as before.
    expect((await list("?limit=16")).items).toHaveLength(16);
    expect((await list("?limit=%2B3&offset=-0")).items.map((p) => p.title)).toEqual(["p16", "p15", "p14"]);
    expect((await list("?offset=016&limit=5")).items.map((p) => p.title)).toEqual(["p0"]);
    expect((await list("?limit=5.0&offset=1_0")).items.map((p) => p.title)).toEqual(["p6", "p5", "p4", "p3", "p2"]);
    expect((await list("?limit=%202%20&offset=1.00")).items.map((p) => p.title)).toEqual(["p15", "p14"]);
    await pg.sql`delete from posts`;
  });

  it("reads a repeated query parameter by its last value, as the original's FastAPI did", async () => {
    await pg.sql`delete from posts`;
    for (let i = 0; i < 5; i++) await create(alice, { title: `p${i}`, category_name: i % 2 ? "Test" : "Troubleshooting" });
    expect((await list("?limit=1&limit=3")).items.map((p) => p.title)).toEqual(["p4", "p3", "p2"]);
    expect((await list("?offset=0&limit=2&offset=3")).items.map((p) => p.title)).toEqual(["p1", "p0"]);
    expect((await list("?category=test&category=troubleshooting")).items.map((p) => p.title)).toEqual(["p4", "p2", "p0"]);
    // A bad value is refused only when it is the one that counts (FastAPI validated the last).
    expect((await list("?limit=abc&limit=2")).items).toHaveLength(2);
    expect((await app.request("/blog/api/posts?limit=2&limit=abc")).status).toBe(422);
    await pg.sql`delete from posts`;
  });

  it("searches title and content (q), Korean included", async () => {
    await create(alice, { title: "쿠버네티스 장애 대응", content: "istio 사이드카 인증서 문제", category_name: "Troubleshooting" });
    await create(bob, { title: "Grafana panels", content: "Loki datasource setup", category_name: "Troubleshooting" });
    expect((await list("?q=loki")).items.map((p) => p.title)).toEqual(["Grafana panels"]);
    expect((await list(`?q=${encodeURIComponent("사이드카")}`)).items.map((p) => p.title)).toEqual(["쿠버네티스 장애 대응"]);
    expect((await list("?q=nothing-matches-this")).total).toBe(0);
  });

  it("finds a Korean word with its particle attached and an English word by its beginning, whatever the Unicode form", async () => {
    await pg.sql`delete from posts`;
    const ko = await create(alice, { title: "쿠버네티스를 운영하며", content: "장애가 났을 때 istio 사이드카에서 인증서를 확인했다", category_name: "Test" });
    const en = await create(bob, { title: "Deploying Grafana Tempo", content: "tracing notes", category_name: "Test" });
    // Text written in NFD (decomposed jamo, as macOS file names are) is the same text.
    const nfd = await create(bob, { title: "모니터링 대시보드".normalize("NFD"), content: "프로메테우스로 수집", category_name: "Test" });
    const titles = async (q: string) => (await list(`?q=${encodeURIComponent(q)}`)).items.map((p) => p.title);
    // Korean attaches particles and endings to the word: 쿠버네티스를, 장애가, 사이드카에서, 인증서를.
    for (const q of ["쿠버네티스", "장애", "사이드카", "인증서", "운영", "쿠버네티스 장애", '"istio 사이드카"']) expect(await titles(q), q).toEqual([ko.title]);
    for (const q of ["deploy", "Tempo", "grafana"]) expect(await titles(q), q).toEqual([en.title]);
    for (const q of ["모니터링", "대시보드", "프로메테우스"]) expect(await titles(q), q).toEqual([nfd.title]);
    for (const q of ["모니터링", "쿠버네티스"]) expect(await titles(q.normalize("NFD")), `NFD ${q}`).toHaveLength(1);
    // Punctuation only: no word to look for, nothing found (and no error).
    for (const q of ["!!!", "-", "&|:*", "'"]) expect(await list(`?q=${encodeURIComponent(q)}`), q).toEqual({ items: [], total: 0 });
  });

  it("takes an empty or blank q as no search (the other filters' rule), and refuses one over 200 characters (422 naming q)", async () => {
    const all = await list();
    expect(all.total).toBeGreaterThan(0);
    for (const q of ["", "%20%20", "%09", "%E3%80%80"]) expect(await list(`?q=${q}`), q).toEqual(all);
    expect((await list(`?q=${"a".repeat(200)}`)).total).toBe(0);
    const long = await app.request(`/blog/api/posts?q=${"a".repeat(201)}`);
    expect(long.status).toBe(422);
    expect(await long.json()).toMatchObject({ status_code: 422, field: "q" });
  });

  it("looks up at most 8 words (as PostgreSQL splits them) and refuses more with 422 naming q", async () => {
    await pg.sql`delete from posts`;
    const post = await create(alice, { title: "a b c d e f g h", content: "x", category_name: "Test" });
    expect((await list(`?q=${encodeURIComponent("a b c d e f g h")}`)).items.map((p) => p.id)).toEqual([post.id]);
    // 100 one-letter words (199 characters) cost about 20 list reads; a hyphenated word is itself and its parts.
    for (const q of ["a b c d e f g h i", "a ".repeat(100), "a-b-c-d-e-f-g-h", '"a b c d e" or f g h -x']) {
      const res = await app.request(`/blog/api/posts?q=${encodeURIComponent(q)}`);
      expect(res.status, q).toBe(422);
      expect(await res.json(), q).toMatchObject({
        status_code: 422,
        field: "q",
        message: expect.stringMatching(/^q: at most 8 words/),
        detail: [{ type: "value_error", loc: ["query", "q"] }],
      });
    }
  });

  it("matches a word as a prefix only from 3 characters (2 Korean syllables); a shorter word matches whole words", async () => {
    await pg.sql`delete from posts`;
    const en = await create(bob, { title: "Deploying Grafana", content: "go to the dashboards", category_name: "Test" });
    const ko = await create(alice, { title: "장애가 났다", content: "운영하며 배운 것", category_name: "Test" });
    const ids = async (q: string) => (await list(`?q=${encodeURIComponent(q)}`)).items.map((p) => p.id);
    expect(await ids("dep")).toEqual([en.id]);
    expect(await ids("Dashboard")).toEqual([en.id]);
    expect(await ids("go")).toEqual([en.id]);
    // A one- or two-letter prefix begins a large share of all words: whole words only (no "de" in the post).
    expect(await ids("de")).toEqual([]);
    expect(await ids("g")).toEqual([]);
    expect(await ids("장애")).toEqual([ko.id]);
    expect(await ids("운영")).toEqual([ko.id]);
    expect(await ids("장")).toEqual([]);
    expect(await ids("것")).toEqual([ko.id]);
  });

  it("answers a search PostgreSQL cancels at its statement timeout (57014) 503 with Retry-After, not 500", async () => {
    // A pool with a short statement timeout, and the posts table locked meanwhile: the list's query waits
    // for the lock until PostgreSQL cancels it (query_canceled), as a search too slow for the timeout is.
    const slow = createPostgres({ url: pg.urlAs("blog_service"), max: 1, statementTimeoutMs: 100 });
    const slowApp = createApp({ sql: slow, redis, verifier: tokens.verifier, logger: memoryLogger().logger, metrics: new Metrics("blog-service", { processMetrics: false }) });
    const blocker = await pg.sql.reserve();
    try {
      await blocker`begin`;
      await blocker`lock table posts in access exclusive mode`;
      const res = await slowApp.request(`/blog/api/posts?q=grafana`);
      expect(res.status).toBe(503);
      expect(res.headers.get("retry-after")).toBe("1");
      expect(await res.json()).toMatchObject({ error: "ServiceUnavailable", status_code: 503 });
    } finally {
      await blocker`rollback`;
      blocker.release();
      await slow.end({ timeout: 1 });
    }
  });
});

describe("caches", () => {
  it("serves lists from Redis and invalidates lists, posts and category counts on every write", async () => {
    await pg.sql`delete from posts`;
    /**
     * Every read a write must retire: the posts (a title, or the status of a missing one), the list and the
     * category counts. Taken right before each write it puts them all in the cache under the current
     * generation, so a write that did not invalidate would have them served stale right after.
     */
    const snapshot = async (...ids: number[]) => {
      const posts: (string | number)[] = [];
      for (const id of ids) {
        const res = await app.request(`/blog/api/posts/${id}`);
        posts.push(res.status === 200 ? ((await res.json()) as PostT).title : res.status);
      }
      const cats = await categories();
      const count = (slug: string) => cats.find((c) => c.slug === slug)?.post_count ?? "none";
      return { posts, list: (await list()).items.map((x) => x.title), cache: count("cache"), moved: count("moved") };
    };
    const p = await create(alice, { title: "cached", category_name: "Cache" });
    const cachedView = await snapshot(p.id);
    expect(cachedView).toEqual({ posts: ["cached"], list: ["cached"], cache: 1, moved: "none" });
    // Behind the cache's back, the database changes: a cached read must not see it…
    await pg.sql`update posts set title = 'sneaky' where id = ${p.id}`;
    expect(await snapshot(p.id)).toEqual(cachedView);
    // …until a write through the API invalidates everything (each write below follows a snapshot: all cached).
    const genBefore = await redis.get(CACHE_GENERATION_KEY);
    const q = await create(bob, { title: "second", category_name: "Cache" });
    expect(await redis.get(CACHE_GENERATION_KEY)).not.toBe(genBefore);
    expect(await snapshot(p.id, q.id)).toEqual({ posts: ["sneaky", "second"], list: ["second", "sneaky"], cache: 2, moved: "none" });
    expect((await send("PATCH", `/blog/api/posts/${p.id}`, { title: "edited", category_name: "Moved" }, alice)).status).toBe(200);
    expect(await snapshot(p.id, q.id)).toEqual({ posts: ["edited", "second"], list: ["second", "edited"], cache: 1, moved: 1 });
    expect((await send("DELETE", `/blog/api/posts/${q.id}`, undefined, bob)).status).toBe(204);
    // The emptied category "Cache" is gone too.
    expect(await snapshot(p.id, q.id)).toEqual({ posts: ["edited", 404], list: ["edited"], cache: "none", moved: 1 });
    expect((await list()).total).toBe(1);
  });

  it("removes emptied categories but never the seeded ones", async () => {
    const p = await create(alice, { category_name: "Ephemeral" });
    const t = await create(alice, { category_name: "Test" });
    await send("DELETE", `/blog/api/posts/${p.id}`, undefined, alice);
    await send("DELETE", `/blog/api/posts/${t.id}`, undefined, alice);
    await pg.sql`delete from posts`;
    await create(alice, { category_name: "Other" }).then((x) => send("DELETE", `/blog/api/posts/${x.id}`, undefined, alice));
    const slugs = (await categories()).map((c) => c.slug);
    expect(slugs).toEqual(expect.arrayContaining(["tech-stack", "troubleshooting", "test"]));
    expect(slugs).not.toContain("ephemeral");
    expect(slugs).not.toContain("other");
  });

  it("works without Redis (reads go to PostgreSQL) and stays ready", async () => {
    const plain = createApp({ sql: db, verifier: tokens.verifier, logger: memoryLogger().logger, metrics: new Metrics("blog-service", { processMetrics: false }) });
    expect((await plain.request("/blog/api/posts")).status).toBe(200);
    expect((await plain.request("/readyz")).status).toBe(200);
  });
});

describe("what the cache holds: bounded by the data, not by the requests", () => {
  // Redis also holds the gateway's rate-limit cells and evicts keys with a TTL under memory pressure: a
  // request must not be able to add an entry the data does not justify (LIST_CACHE in app.ts).
  /** The keys of the current generation, without `blog:<gen>:` (a write moves to a new, empty one). */
  const cacheKeys = async () => {
    const gen = await redis.get(CACHE_GENERATION_KEY);
    if (gen === null) return [];
    const prefix = `${CACHE_PREFIX}${gen}:`;
    return (await redis.keys(`${prefix}*`)).map((k) => k.slice(prefix.length)).sort();
  };
  /** Everything a read answers: status, body (less the request id of an error), total and the gateway's offer. */
  const answer = async (a: { request: (path: string) => Response | Promise<Response> }, path: string) => {
    const res = await a.request(path);
    const json = (await res.json()) as unknown[] | Record<string, unknown>;
    const body = Array.isArray(json) ? json : { ...json, request_id: typeof json.request_id };
    return { status: res.status, body, total: res.headers.get("x-total-count"), offer: res.headers.get("surrogate-control") };
  };
  /** The same code without Redis: every answer from PostgreSQL. */
  const uncached = () => createApp({ sql: db, verifier: tokens.verifier, logger: memoryLogger().logger, metrics: new Metrics("blog-service", { processMetrics: false }) });

  it("caches the pages readers load (the plain list, the web UI's pages: all, by category, by author) and posts; a write retires them", async () => {
    // The web UI's page size and the API's default (the plain list) are the cached ones.
    expect(LIST_CACHE.limits).toEqual(expect.arrayContaining([PAGE_SIZE, ListQuery.parse({}).limit]));
    await pg.sql`delete from posts`;
    for (let i = 0; i < 25; i++) await create(i % 2 ? bob : alice, { title: `hot ${i}`, category_name: i % 3 ? "Test" : "Troubleshooting" });
    expect(await cacheKeys()).toEqual([]);
    const hot = [
      "",
      "?offset=20",
      "?offset=0&limit=10",
      "?offset=10&limit=10",
      "?offset=20&limit=10",
      "?category=test&limit=10",
      "?author=bob&limit=10",
      "?category=troubleshooting&author=alice&offset=0&limit=10",
    ].map((qs) => `/blog/api/posts${qs}`);
    const post = (await list()).items[3]!.id;
    hot.push(`/blog/api/posts/${post}`);
    const first = [];
    for (const path of hot) first.push(await answer(app, path));
    for (const [i, a] of first.entries()) expect(a.status, hot[i]).toBe(200);
    const keys = await cacheKeys();
    expect(keys).toHaveLength(hot.length);
    expect(keys).toContain(`post:${post}`);
    // The author as the query compares it (any case): one page, one entry.
    expect(await answer(app, "/blog/api/posts?author=BOB&limit=10")).toEqual(first[6]);
    expect(await cacheKeys()).toEqual(keys);
    // Served from Redis: a change behind the cache's back is not seen…
    await pg.sql`update posts set title = title || ' (changed)'`;
    for (const [i, path] of hot.entries()) expect(await answer(app, path), path).toEqual(first[i]);
    // …until a write through the API retires every page.
    await create(alice, { title: "newest", category_name: "Test" });
    const reference = uncached();
    for (const path of hot) expect(await answer(app, path), path).toEqual(await answer(reference, path));
    expect((await list()).items.map((p) => p.title).slice(0, 2)).toEqual(["newest", "hot 24 (changed)"]);
    await pg.sql`delete from posts`;
  });

  it("stores nothing for a search, another limit, an unaligned or deep page, an unknown category or author, an empty page or a missing post, and answers as before", async () => {
    await pg.sql`delete from posts`;
    await pg.sql`insert into posts (title, content, author, category_id) select 'bulk ' || g, 'text ' || g, 'alice', c.id from generate_series(1, 210) g, categories c where c.slug = 'test'`;
    // Through the API: a write, so the generation is a new, empty one.
    await create(bob, { title: "bulk by bob", category_name: "Test" });
    expect(await cacheKeys()).toEqual([]);
    const cold = [
      "?q=bulk",
      `?q=${encodeURIComponent("no such words")}`,
      "?q=bulk&limit=10",
      "?limit=7",
      "?limit=100",
      "?offset=5&limit=10",
      "?offset=3",
      // Deep pages (past the first LIST_CACHE.pages), holding posts.
      `?offset=${LIST_CACHE.pages * 10}&limit=10`,
      `?offset=${LIST_CACHE.pages * 20}`,
      // A category or author no post has (known or not), and a page past the end of one that has posts.
      "?category=no-such-category",
      "?category=troubleshooting&limit=10",
      "?author=nobody&limit=10",
      "?category=test&author=nobody",
      "?author=bob&offset=10&limit=10",
      `?category=test&author=bob&offset=${(LIST_CACHE.pages - 1) * 20}`,
    ].map((qs) => `/blog/api/posts${qs}`);
    cold.push("/blog/api/posts/999999", "/blog/api/posts/0");
    const reference = uncached();
    const seen = [];
    for (const path of cold) {
      const got = await answer(app, path);
      expect(got, path).toEqual(await answer(reference, path));
      expect(await cacheKeys(), path).toEqual([]);
      seen.push(got);
    }
    // The sample holds what it should: results of a search, full deep pages, empty ones, 404s.
    expect(seen.map((a) => (Array.isArray(a.body) ? a.body.length : a.status))).toEqual([20, 0, 10, 7, 100, 10, 20, 10, 11, 0, 0, 0, 0, 0, 0, 404, 404]);
    // Read from PostgreSQL each time: a change behind the cache's back is seen at once.
    await pg.sql`update posts set title = title || ' (changed)'`;
    for (const path of cold) expect(await answer(app, path), path).toEqual(await answer(reference, path));
    expect(await cacheKeys()).toEqual([]);
    await pg.sql`delete from posts`;
  });
});

describe("operations and pages", () => {
  it("keeps the original /health and /stats, and serves a page under /blog/ with the page CSP", async () => {
    expect(await (await app.request("/health")).json()).toEqual({ status: "ok", service: "blog-service" });
    expect(await (await app.request("/stats")).json()).toMatchObject({ blog_service: { service_status: "online", post_count: expect.any(Number) } });
    const root = await app.request("/");
    expect(root.status).toBe(302);
    expect(root.headers.get("location")).toBe("/blog/");
    const page = await app.request("/blog/posts/1");
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toContain("text/html");
    expect(page.headers.get("content-security-policy")).toContain("default-src 'self'");
    expect(page.headers.get("content-security-policy")).not.toMatch(/unsafe-inline|unsafe-eval/);
    const api = await app.request("/blog/api/categories");
    expect(api.headers.get("content-security-policy")).toBe("default-src 'none'; frame-ancestors 'none'");
    expect(api.headers.get("cache-control")).toBe("no-store");
    expect((await app.request("/blog/api/nothing")).status).toBe(404);
    // With the built UI mounted: an unknown asset is the service's 404 envelope, never cached.
    const withUi = createApp({ sql: db, verifier: tokens.verifier, logger: memoryLogger().logger, metrics: new Metrics("blog-service", { processMetrics: false }), web: { root: WEB_DIST } });
    for (const p of ["/blog/assets/nope.js", "/blog/assets/x%00.js", "/blog/assets/..%2F..%2Fpackage.json"]) {
      const res = await withUi.request(p);
      expect(res.status, p).toBe(404);
      expect(res.headers.get("cache-control"), p).toBe("no-store");
      expect(await res.json(), p).toMatchObject({ error: "NotFound", status_code: 404, request_id: expect.any(String) });
    }
    const doc = (await (await app.request("/openapi.json")).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(["/blog/api/posts", "/blog/api/posts/{id}", "/blog/api/categories"]),
    );
  });
});

describe("the API only under its own spelling (/blog/api/)", () => {
  /** Spellings of API paths that decode into the API: the ingress would send them here past the gateway. */
  const MISSPELLED = ["/blog/%61pi/posts", "/blog/%61pi/posts?limit=1", "/blog/api%2Fposts", "/blog/api%2fcategories", "/blog%2Fapi/posts", "/blog/%61pi", "/blog/ap%69/posts/1", "/blog/%2561pi/../%61pi/posts"];

  async function expectNotFoundEnvelope(res: Response, path: string) {
    expect(res.status, path).toBe(404);
    expect(res.headers.get("content-type"), path).toContain("application/json");
    expect(res.headers.get("content-security-policy"), path).toBe("default-src 'none'; frame-ancestors 'none'");
    expect(res.headers.get("cache-control"), path).toBe("no-store");
    const body = (await res.json()) as Record<string, unknown>;
    expect(body, path).toMatchObject({ error: "NotFound", status_code: 404, request_id: expect.any(String) });
    expect(res.headers.get("x-request-id"), path).toBe(body.request_id);
  }

  it("answers a path that only decodes into the API (/blog/%61pi/posts, /blog/api%2Fposts) 404 in the envelope, with or without the built UI", async () => {
    await create(alice, { title: "spelled" });
    const withUi = createApp({ sql: db, verifier: tokens.verifier, logger: memoryLogger().logger, metrics: new Metrics("blog-service", { processMetrics: false }), web: { root: WEB_DIST } });
    for (const a of [app, withUi]) {
      for (const path of MISSPELLED) await expectNotFoundEnvelope(await a.request(path), path);
      // Writes too: no post is made through another spelling.
      await expectNotFoundEnvelope(await a.request("/blog/%61pi/posts", { method: "POST", body: JSON.stringify({ title: "T", content: "C", category_name: "x" }), headers: { "content-type": "application/json", authorization: `Bearer ${alice}` } }), "POST");
      // The API as spelled, escapes after its prefix included (the gateway forwards `/api/post%73` as `/blog/api/post%73`).
      for (const path of ["/blog/api/posts", "/blog/api/post%73", "/blog/api/categories"]) {
        const res = await a.request(path);
        expect(res.status, path).toBe(200);
        expect(Array.isArray(await res.json()), path).toBe(true);
      }
      // Pages, escapes included, are still pages.
      for (const path of ["/blog/", "/blog/posts/1", "/blog/%70osts/1", "/blog/?category=%ED%95%9C", "/blog/login"]) {
        const res = await a.request(path);
        expect(res.status, path).toBe(200);
        expect(res.headers.get("content-type"), path).toContain("text/html");
      }
    }
    expect((await list()).items.map((p) => p.title)).toEqual(["spelled"]);
  });

  it("refuses it on a real socket too, where the path comes as sent through the Node adapter", async () => {
    const running = await startServer({ fetch: app.fetch, port: 0, host: "127.0.0.1", logger: memoryLogger().logger, lifecycle: new Lifecycle(), graceMs: 100 });
    try {
      const base = `http://127.0.0.1:${running.port}`;
      for (const path of ["/blog/%61pi/posts", "/blog/api%2Fposts"]) await expectNotFoundEnvelope(await fetch(`${base}${path}`), path);
      expect((await fetch(`${base}/blog/api/posts`)).status).toBe(200);
    } finally {
      await running.shutdown();
    }
  });
});

describe("the OpenAPI contract", () => {
  it("every JSON answer these tests received matches the schema /openapi.json documents for its status", () => {
    expect(contract.violations).toEqual([]);
    expect(contract.checked).toBeGreaterThan(20);
  });
});
