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
