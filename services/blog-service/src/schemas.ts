import { pgText, z } from "@titanium/kit";
import { normalizeCategoryName } from "./content.js";
import { SEARCH_PREFIX_MIN, SEARCH_TERMS_MAX } from "./repo.js";

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
 * The integers pydantic's lax `int` reads from a string: `+5`, `05`, `1_000`, `5.0`, ` 5 ` (not `0x10`, `1e1`,
 * `5.5`, `1.`, `1__0`), around them the whitespace it trims (Unicode White_Space) less the control characters
 * (tab, line breaks, U+0085): a path with one is refused by the gateway, and such a value stays a 422.
 */
const LAX_INT = /^[ \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*([+-]?\d+(?:_\d+)*)(?:\.0+)?[ \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$/;

/** The integer a query or path value names as the original's FastAPI `int` read it, or undefined. */
export function laxInt(value: string): number | undefined {
  const m = LAX_INT.exec(value);
  return m ? Number(m[1]!.replace(/_/g, "")) : undefined;
}

/**
 * An integer in [min, max] from a query or path string, as the original's FastAPI `int` (pydantic, lax mode)
 * took it: `laxInt`; anything else is a 422 typed `int_parsing`, as pydantic typed it. (`z.coerce.number()`
 * had read `0x10` as 16, `1e1` as 10 and an empty value as 0: another page or post than the client named.)
 */
const intFrom = (message: string, min: number, max: number) =>
  z
    .string()
    .transform((value, ctx) => {
      const n = laxInt(value);
      if (n !== undefined) return n;
      ctx.addIssue({ code: "custom", message, params: { pydantic: "int_parsing" } });
      return z.NEVER;
    })
    .pipe(z.number().int().min(min).max(max));

const queryInt = (min: number, max: number, fallback: number) =>
  intFrom("must be an integer", min, max).default(fallback).openapi({ type: "integer", minimum: min, maximum: max, default: fallback });

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
    .openapi({
      description:
        `full-text search in title and content (NFC; "phrase", or, -word); a word of ${SEARCH_PREFIX_MIN} or more characters (2 Korean, Chinese or Japanese) also matches as a prefix, a shorter one whole words only; at most ${SEARCH_TERMS_MAX} words (a hyphenated word counts with its parts: a-b is 3), more is a 422; empty: no search`,
    }),
});

/**
 * A post id in a path: an integer as the original's FastAPI `int` took it (`laxInt`: `1`, `+1`, `01`, `1.0`),
 * within `integer` (no `1e0`, `0x10`: `Number()` took both). 0 and negative ids are no post's: they take the
 * missing post's answers (404, PATCH and DELETE 403) as they did there, not a 422.
 */
export const PostId = z.object({
  id: intFrom("must be a post id (an integer)", INT_MIN, INT_MAX).openapi({ type: "integer", minimum: INT_MIN, maximum: INT_MAX }),
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
