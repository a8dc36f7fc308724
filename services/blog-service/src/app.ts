import {
  API_SECURITY_HEADERS,
  BLOG_CACHE_GENERATION_KEY,
  HttpError,
  foldUsername,
  GenerationCache,
  Lifecycle,
  Metrics,
  bearer,
  createRoute,
  createServiceApp,
  errorResponse,
  errors,
  invalidField,
  json,
  parseOrThrow,
  pingPostgres,
  pingRedis,
  requireUser,
  z,
  type JwtVerifier,
  type Logger,
  type Redis,
  type Sql,
} from "@titanium/kit";
import { SLUG_MAX, hasText, sanitizeContent, sanitizeTitle } from "./content.js";
import { BlogRepo, SEARCH_TERMS_MAX, type CategoryOut, type ListFilter } from "./repo.js";
import { Category, CreatePost, ListQuery, PatchPost, Post, PostId, PostSummary } from "./schemas.js";
import { mountWeb, type WebOptions } from "./web.js";

export interface BlogServiceDeps {
  sql: Sql;
  /** Read cache; absent or down means every read goes to PostgreSQL. */
  redis?: Redis;
  /** Verifies access tokens locally (cached JWKS): no call to the auth-service per request. */
  verifier: JwtVerifier;
  logger: Logger;
  metrics?: Metrics;
  lifecycle?: Lifecycle;
  allowedOrigins?: readonly string[];
  web?: WebOptions;
}

/** Each query parameter's last value (`?limit=5&limit=7` is 7, as Starlette's query params gave it to FastAPI). */
const lastValues = (params: Record<string, string[]>): Record<string, string | undefined> =>
  Object.fromEntries(Object.entries(params).map(([k, v]) => [k, v.at(-1)]));

/** Cache lifetimes, as the original. */
export const CACHE_TTL = { list: 60, post: 300, categories: 600 } as const;
/** Every cache key embeds this generation; a write bumps it, so no stale list, post or count survives a write (a replica cut off from Redis alone owes the bump: ADR 0063). */
export const CACHE_GENERATION_KEY = BLOG_CACHE_GENERATION_KEY;
/** Where the cache files its entries (`blog:<generation>:<key>`): the blog-service's Redis user may use `blog:*` only. */
export const CACHE_PREFIX = "blog:";

/**
 * Which list pages are cached: the key space must be bounded by the data, not by what clients ask. Redis
 * also holds the gateway's rate-limit cells, and beyond its memory cap it evicts keys with a TTL (cache
 * entries and cells alike, least recently used first): were every query its own entry (any search, offset,
 * limit, unknown category or author), a client could fill it and have the cells evicted (a brute-forcer's
 * budget reset). So only the pages readers actually load are cached: the web UI's (services/blog-web,
 * `PAGE_SIZE`: 10 posts, by category and author too) and the API's default of 20 (clients without a
 * `limit`, the benchmark's plain list), from the first `pages` pages (the newest 100 or 200 posts: the UI
 * numbers its pages, and few readers go past the tenth), with no search, and only when the page holds posts
 * (a category or author no post has, or a page past the end, is never stored). The filters are keyed as
 * the query matches them (the author folded as `foldUsername` compares it), so one page is one entry.
 * Everything else is read from PostgreSQL, which the gateway's rate limits bound.
 */
export const LIST_CACHE = { limits: [10, 20] as readonly number[], pages: 10 } as const;

/** The cache key of a list page worth caching (LIST_CACHE), or undefined when it is read from PostgreSQL. */
function listCacheKey(f: ListFilter): string | undefined {
  if (f.q || !LIST_CACHE.limits.includes(f.limit) || f.offset % f.limit !== 0 || f.offset / f.limit >= LIST_CACHE.pages) return undefined;
  return `list:${JSON.stringify([f.offset, f.limit, f.category || null, f.author ? foldUsername(f.author) : null])}`;
}

/** The API's prefix: its routes answer only a request whose path, as sent, is spelled with it. */
const API_PREFIX = "/blog/api";
const underApi = (path: string) => path === API_PREFIX || path.startsWith(`${API_PREFIX}/`);

/**
 * The request's path as sent: percent-escapes not decoded (dot segments are resolved already, as the
 * adapter's URL and Envoy both resolve them), where `c.req.path` is the decoded path Hono routes.
 */
function rawPath(url: string): string {
  const start = url.indexOf("/", url.indexOf("://") + 3);
  if (start === -1) return "/";
  const end = url.slice(start).search(/[?#]/);
  return end === -1 ? url.slice(start) : url.slice(start, start + end);
}

/** Every ASCII escape decoded (`%61` → `a`, `%2F` → `/`): whatever a proxy or the router may decode. */
const decodeAscii = (path: string) => path.replace(/%([0-7][0-9a-fA-F])/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));

/**
 * A path that decodes into the API while not spelled as it (`/blog/%61pi/posts`, which Hono decodes to the
 * API's `/blog/api/posts`; `/blog/api%2Fposts`, `/blog%2Fapi/posts`, which a proxy that decodes `%2F` reads so).
 * The cluster's ingress sends page paths under `/blog/` straight here and only `/blog/api/*` through the
 * api-gateway, and the blog's AuthorizationPolicy keeps the ingress off `/blog/api/*` by that spelling: were
 * another spelling answered by the API, API calls would skip the gateway's rate limits whenever the proxy in
 * front leaves the escapes as they are. So such a path is a 404 (no route and no page). The api-gateway
 * forwards such a path as sent, limited as the API route it names (services/api-gateway/src/routes.ts): it
 * gets this 404 too, which is fine, as every client spells the API as `/blog/api/` (or the gateway's
 * `/api/posts`, `/api/categories`, which it forwards under `/blog/api/`).
 */
export function isMisspelledApiPath(url: string): boolean {
  if (!url.includes("%")) return false; // fast path: without escapes, the path as sent is the one routed
  const raw = rawPath(url);
  return !underApi(raw) && underApi(decodeAscii(raw));
}

export function createApp(deps: BlogServiceDeps) {
  const metrics = deps.metrics ?? new Metrics("blog-service");
  const repo = new BlogRepo(deps.sql);
  const cache = new GenerationCache(deps.redis, deps.logger, { generationKey: CACHE_GENERATION_KEY, prefix: CACHE_PREFIX });

  const app = createServiceApp({
    service: "blog-service",
    logger: deps.logger,
    metrics,
    allowedOrigins: deps.allowedOrigins ?? [],
    lifecycle: deps.lifecycle ?? new Lifecycle(),
    health: (c) => c.json({ status: "ok", service: "blog-service" }),
    readiness: {
      postgres: { required: true, check: () => pingPostgres(deps.sql) },
      redis: { required: false, check: () => pingRedis(deps.redis) },
    },
    openapi: { title: "Titanium blog-service", version: "1.0.0", description: "Posts and categories." },
  });
  app.openAPIRegistry.registerComponent("securitySchemes", "bearerAuth", { type: "http", scheme: "bearer", bearerFormat: "JWT" });
  // The API only under its own spelling (isMisspelledApiPath): before every route and page, as an API answer.
  app.use("*", async (c, next) => {
    if (!isMisspelledApiPath(c.req.url)) return next();
    for (const [k, v] of Object.entries(API_SECURITY_HEADERS)) c.header(k, v);
    return errorResponse(c, 404, "Not Found");
  });

  /**
   * Read through the cache under the current generation (one Redis round trip on a hit). Values are kept
   * as the JSON text they are served as, so a hit is neither parsed nor re-serialised. `load` says whether
   * what it read may be stored: only what the data holds is (a missing post or an empty page is not), so
   * the entries are bounded by the data, not by the requests (LIST_CACHE).
   */
  async function cached(key: string, ttl: number, load: () => Promise<{ text: string; store: boolean }>): Promise<string> {
    const { generation, raw } = await cache.read(key);
    if (raw !== undefined) return raw;
    const { text, store } = await load();
    if (store) await cache.write(key, generation, text, ttl);
    return text;
  }
  const JSON_TYPE = { "Content-Type": "application/json" };
  /**
   * Public reads are offered to the gateway's micro-cache (Surrogate-Control, which it strips; clients
   * still get no-store): it files them under the same generation, so a write retires them too.
   */
  const offer = (seconds: number) => ({ "Surrogate-Control": `max-age=${seconds}` });
  const invalidate = () => cache.invalidate();

  // The two hot reads are plain routes serving cached JSON text; their OpenAPI entries are registered
  // beside them and their input is validated with the same schemas.
  app.openAPIRegistry.registerPath(
    createRoute({
      method: "get",
      path: "/blog/api/posts",
      summary: "Posts, newest first (total count in X-Total-Count)",
      request: { query: ListQuery },
      responses: {
        200: { ...json(z.array(PostSummary), "posts"), headers: { "X-Total-Count": { schema: { type: "integer" } } } },
        ...errors(422),
      },
    }),
  );
  app.get("/blog/api/posts", async (c) => {
    // A repeated parameter counts by its last value, as the original's FastAPI read it (Hono's query() keeps the first).
    const query = parseOrThrow(ListQuery, lastValues(c.req.queries()), "query");
    // An empty or blank q is no search (one cache key with the plain list). A search of more words than
    // SEARCH_TERMS_MAX (as PostgreSQL splits them) is refused as any other bad query parameter.
    const search = query.q ? await repo.parseSearch(query.q) : undefined;
    if (search && search.terms > SEARCH_TERMS_MAX) {
      throw invalidField("q", `at most ${SEARCH_TERMS_MAX} words (this search has ${search.terms})`, "query");
    }
    const f: ListFilter = { ...query, q: search };
    // No stored slug is longer: nothing to look up or cache.
    if (f.category !== undefined && [...f.category].length > SLUG_MAX) return c.body("[]", 200, { ...JSON_TYPE, ...offer(CACHE_TTL.list), "X-Total-Count": "0" });
    // Cached as `total\n[items]`: the header and the body in one value; only the pages LIST_CACHE names, and
    // only when they hold posts (the key is the whole page: the original keyed by page number, so unaligned
    // offsets collided).
    const key = listCacheKey(f);
    const load = async () => {
      const page = await repo.list(f);
      return { text: `${page.total}\n${JSON.stringify(page.items)}`, store: page.items.length > 0 };
    };
    const text = key === undefined ? (await load()).text : await cached(key, CACHE_TTL.list, load);
    const cut = text.indexOf("\n");
    return c.body(text.slice(cut + 1), 200, { ...JSON_TYPE, ...offer(CACHE_TTL.list), "X-Total-Count": text.slice(0, cut) });
  });

  app.openAPIRegistry.registerPath(
    createRoute({
      method: "get",
      path: "/blog/api/posts/{id}",
      summary: "One post",
      request: { params: PostId },
      responses: { 200: json(Post, "the post"), ...errors(404, 422) },
    }),
  );
  app.get("/blog/api/posts/:id", async (c) => {
    const { id } = parseOrThrow(PostId, c.req.param(), "path");
    // A missing post is not stored (any id could be asked for): its 404 comes from PostgreSQL each time.
    const text = await cached(`post:${id}`, CACHE_TTL.post, async () => {
      const post = await repo.get(id);
      return { text: JSON.stringify(post ?? null), store: post !== undefined };
    });
    // "null" is also what a replica of before this rule stored for a missing post (while a rollout runs).
    if (text === "null") throw new HttpError(404, "Post not found");
    return c.body(text, 200, { ...JSON_TYPE, ...offer(CACHE_TTL.post) });
  });

  const auth = requireUser(deps.verifier);
  app.on(["POST"], "/blog/api/posts", auth);
  app.on(["PATCH", "DELETE"], "/blog/api/posts/:id", auth);

  app.openapi(
    createRoute({
      method: "post",
      path: "/blog/api/posts",
      summary: "Create a post (author = the token's user)",
      security: bearer,
      request: { body: { ...json(CreatePost), required: true } },
      responses: { 201: json(Post, "created"), ...errors(401, 422) },
    }),
    async (c) => {
      const body = c.req.valid("json");
      const title = sanitizeTitle(body.title);
      const content = sanitizeContent(body.content);
      if (!title) throw invalidField("title", "empty once markup is removed");
      if (!hasText(content)) throw invalidField("content", "empty once markup is removed");
      const post = await repo.create({ title, content, author: c.get("user").username, categoryName: body.category_name });
      await invalidate();
      metrics.postsCreated.inc({ service: "blog-service" });
      return c.json(post, 201);
    },
  );

  app.openapi(
    createRoute({
      method: "patch",
      path: "/blog/api/posts/{id}",
      summary: "Change a post (author only)",
      security: bearer,
      request: { params: PostId, body: { ...json(PatchPost), required: true } },
      responses: {
        200: json(z.union([Post, z.object({ message: z.literal("No changes") })]), "the changed post, or No changes"),
        ...errors(401, 403, 422),
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const valid = c.req.valid("json");
      const body = { title: valid.title ?? undefined, content: valid.content ?? undefined, category_name: valid.category_name ?? undefined };
      if (body.title === undefined && body.content === undefined && body.category_name === undefined)
        return c.json({ message: "No changes" as const }, 200);
      const title = body.title === undefined ? undefined : sanitizeTitle(body.title);
      const content = body.content === undefined ? undefined : sanitizeContent(body.content);
      if (title === "") throw invalidField("title", "empty once markup is removed");
      if (content !== undefined && !hasText(content)) throw invalidField("content", "empty once markup is removed");
      const post = await repo.update(id, c.get("user").username, {
        ...(title !== undefined && { title }),
        ...(content !== undefined && { content }),
        ...(body.category_name !== undefined && { categoryName: body.category_name }),
      });
      if (!post) throw new HttpError(403, "Forbidden or post not found");
      await invalidate();
      return c.json(post, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "delete",
      path: "/blog/api/posts/{id}",
      summary: "Delete a post (author only)",
      security: bearer,
      request: { params: PostId },
      responses: { 204: { description: "deleted" }, ...errors(401, 403, 422) },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      if (!(await repo.delete(id, c.get("user").username))) throw new HttpError(403, "Forbidden or post not found");
      await invalidate();
      return c.body(null, 204);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/blog/api/categories",
      summary: "Categories with colours and post counts",
      responses: { 200: json(z.array(Category), "categories") },
    }),
    async (c) =>
      c.json(
        JSON.parse(await cached("categories", CACHE_TTL.categories, async () => ({ text: JSON.stringify(await repo.categories()), store: true }))) as CategoryOut[],
        200,
        offer(CACHE_TTL.categories),
      ),
  );

  app.get("/stats", async (c) =>
    c.json({ blog_service: { service_status: "online", post_count: await repo.postCount().catch(() => 0) } }),
  );

  mountWeb(app, deps.web);
  return app;
}
