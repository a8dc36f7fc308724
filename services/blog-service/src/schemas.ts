import { pgText, z } from "@titanium/kit";
import { normalizeCategoryName } from "./content.js";

/**
 * `category_name`: normalised (`normalizeCategoryName`: NFC, whitespace runs as one space, trimmed), then
 * 1 to 50 characters (zod counts code points, as the original and the `varchar(50)` column do), without
 * `<` or `>`: names are stored and served as plain text (titles and contents are sanitised instead), so
 * markup in one is refused rather than served to clients that might render it.
 */
const CategoryName = () =>
  pgText()
    .overwrite(normalizeCategoryName)
    .min(1)
    .max(50)
    .refine((name) => !/[<>]/.test(name), "must not contain < or > (a category name is plain text)")
    .openapi({ description: "normalised (NFC, whitespace runs as one space, trimmed), no < or >; an existing category whose name differs only in case is used" });

/** The range of PostgreSQL's `integer` (a `serial` id). */
const INT_MIN = -2_147_483_648;
const INT_MAX = 2_147_483_647;

export const CategoryRef = z.object({ id: z.number().int(), name: z.string(), slug: z.string() }).openapi("CategoryRef");

export const PostSummary = z
  .object({
    id: z.number().int(),
    title: z.string(),
    author: z.string(),
    created_at: z.string(),
    excerpt: z.string(),
    category: CategoryRef,
  })
  .openapi("PostSummary");

export const Post = z
  .object({
    id: z.number().int(),
    title: z.string(),
    content: z.string(),
    author: z.string(),
    created_at: z.string(),
    updated_at: z.string(),
    category: CategoryRef,
  })
  .openapi("Post");

export const Category = z
  .object({ id: z.number().int(), name: z.string(), slug: z.string(), color: z.string(), post_count: z.number().int() })
  .openapi("Category");

/**
 * A query parameter that is an optionally signed decimal integer in [min, max], as the original's FastAPI `int`
 * took it: `z.coerce.number()` read `0x10` as 16, `1e1` as 10 and an empty or blank value as 0, so such a
 * request got another page than it named instead of a 422.
 */
const queryInt = (min: number, max: number, fallback: number) =>
  z
    .string()
    .regex(/^[+-]?\d+$/, "must be a decimal integer")
    .transform(Number)
    .pipe(z.number().int().min(min).max(max))
    .default(fallback)
    .openapi({ type: "integer", minimum: min, maximum: max, default: fallback });

export const ListQuery = z.object({
  offset: queryInt(0, Number.MAX_SAFE_INTEGER, 0),
  limit: queryInt(1, 100, 20),
  // Any length, as the original: a slug longer than any stored one simply matches nothing.
  category: pgText().optional().openapi({ description: "category slug" }),
  author: pgText().max(100).optional().openapi({ description: "author's username, case-insensitive" }),
  // NFC, as the search column indexes the text; empty or blank is no search, as an empty `category` or `author`.
  q: pgText()
    .overwrite((q) => q.normalize("NFC").trim())
    .max(200)
    .optional()
    .openapi({ description: 'full-text search in title and content (NFC; every word also matches as a prefix; "phrase", or, -word); empty: no search' }),
});

/**
 * A post id in a path: an optionally signed decimal integer within `integer`, as the original's FastAPI `int`
 * took it (no `1e0`, `0x10`, ` 1`: `Number()` took all of them). 0 and negative ids are no post's: they take
 * the missing post's answers (404, PATCH and DELETE 403) as they did there, not a 422.
 */
export const PostId = z.object({
  id: z
    .string()
    .regex(/^[+-]?\d+$/, "must be a post id (a decimal integer)")
    .transform(Number)
    .pipe(z.number().int().min(INT_MIN).max(INT_MAX))
    .openapi({ type: "integer", minimum: INT_MIN, maximum: INT_MAX }),
});

export const CreatePost = z
  .object({
    title: pgText().min(1).max(120),
    content: pgText().min(1).max(20_000),
    category_name: CategoryName(),
  })
  .openapi("CreatePost");

/** A field that is absent or `null` stays as it is (the original's `Optional[str] = None` skipped both). */
const unchangedWhenNull = { description: "absent or null: unchanged" };
export const PatchPost = z
  .object({
    title: pgText().min(1).max(120).nullish().openapi(unchangedWhenNull),
    content: pgText().min(1).max(20_000).nullish().openapi(unchangedWhenNull),
    category_name: CategoryName().nullish().openapi(unchangedWhenNull),
  })
  .openapi("UpdatePost");
