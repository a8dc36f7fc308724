// Numbers the UI shares with its tests. DOM-free.

/** Posts per list page (the API allows up to 100). */
export const PAGE_SIZE = 10;

/** Field limits of the blog API (seed-system 1.4), checked in the editor before a round trip. */
export const LIMITS = { title: 120, category_name: 50, content: 20_000 } as const;

/**
 * The user-service's account rules (its schemas.ts; test/limits.test.ts holds them equal), checked at
 * sign-up so they read in the UI's language. Reserved names and taken ones only the server knows.
 */
export const isUsername = (u: string): boolean => /^[A-Za-z0-9_]{3,50}$/.test(u);
export const isStrongPassword = (p: string): boolean =>
  p.length >= 8 && p.length <= 200 && /[A-Z]/.test(p) && /[a-z]/.test(p) && /\d/.test(p) && /[!@#$%^&*(),.?":{}|<>]/.test(p);
/** The shape of an address; the server's own check (internationalised addresses, IDNA domains) decides. */
export const looksLikeEmail = (e: string): boolean => /^[^\s@]+@[^\s@]+\.[^\s@]+$/u.test(e);
/** A category name is plain text to the blog-service: it refuses one with `<` or `>` (its schemas.ts). */
export const isPlainCategoryName = (name: string): boolean => !/[<>]/.test(name);

/**
 * The most words a search (`q`) may look up: the blog-service's SEARCH_TERMS_MAX (its repo.ts, server code
 * the browser bundle must not import; test/limits.test.ts holds them equal). More is a 422 naming `q`.
 */
export const SEARCH_WORDS_MAX = 8;

/** A word of several parts (`a-b`, `co-op`, `x1-y2`): PostgreSQL looks up the whole and each part. */
const HYPHENATED = /^[\p{L}\p{M}\p{N}]*\p{L}[\p{L}\p{M}\p{N}]*(?:-[\p{L}\p{M}\p{N}]*\p{L}[\p{L}\p{M}\p{N}]*)+$/u;

/**
 * How many words a search looks up, counted as the blog-service counts them (the lexemes of PostgreSQL's
 * `websearch_to_tsquery('simple', q)`): each word once per occurrence, inside a "phrase" too, `-word` too;
 * `or` between words is an operator; a hyphenated word counts with its parts (`a-b` is 3). Forms the parser
 * splits further (`it's`, `a_b`) count once here: this count never exceeds the server's, so a search the
 * server takes is never refused here, and the rest is the server's 422.
 */
export function searchWords(q: string): number {
  let n = 0;
  for (const raw of q.normalize("NFC").replaceAll('"', " ").split(/\s+/u)) {
    const word = raw.replace(/^-+/, "");
    if (!/[\p{L}\p{N}]/u.test(word) || word.toLowerCase() === "or") continue;
    n += HYPHENATED.test(word) ? word.split("-").length + 1 : 1;
  }
  return n;
}
