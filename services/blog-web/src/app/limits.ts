// Numbers the UI shares with its tests. DOM-free.

/** Posts per list page (the API allows up to 100). */
export const PAGE_SIZE = 10;

/** Field limits of the blog API (seed-system 1.4), checked in the editor before a round trip. */
export const LIMITS = { title: 120, category_name: 50, content: 20_000 } as const;
