import sanitizeHtml from "sanitize-html";

/** The original's allow-list (bleach): these tags survive in post content, `a` keeps `href` and `title`. */
export const CONTENT_TAGS = ["p", "br", "strong", "em", "u", "a", "ul", "ol", "li", "h1", "h2", "h3", "code", "pre", "blockquote"];

/**
 * What the original's parser (bleach's html5lib) did to text before sanitising it, which sanitize-html's parser
 * does not: line breaks normalised (`\r\n` and a lone `\r` are `\n`, as the HTML standard reads input), and a
 * `<` opening a tag that is never closed (`if (a<b) {` with no `>` after it) kept as text. html5lib escapes such
 * a `<` (`a&lt;b`); sanitize-html drops everything from it to the end, so a post with code lost its rest. Every
 * `<` before an ASCII letter or `/` after the last `>` opens such a tag: it is escaped first.
 */
function asTheOriginalRead(text: string): string {
  const lf = text.replace(/\r\n?/g, "\n");
  const tail = lf.lastIndexOf(">") + 1;
  return lf.slice(0, tail) + lf.slice(tail).replace(/<(?=[A-Za-z/])/g, "&lt;");
}

/** Titles are text: every tag is removed. */
export function sanitizeTitle(title: string): string {
  return sanitizeHtml(asTheOriginalRead(title), { allowedTags: [], allowedAttributes: {} }).trim();
}

/** Content keeps the allow-listed tags; everything else (scripts, handlers, javascript: URLs) is removed. */
export function sanitizeContent(content: string): string {
  return sanitizeHtml(asTheOriginalRead(content), {
    allowedTags: CONTENT_TAGS,
    allowedAttributes: { a: ["href", "title"] },
    allowedSchemes: ["http", "https", "mailto"],
    allowProtocolRelative: false,
  }).trim();
}

/**
 * Whether cleaned content keeps any text once every tag is removed: `<p></p>`, `<ul><li></li></ul>` or
 * `<p>&nbsp;</p>` is an empty post, which the API refuses as it refuses an empty string.
 */
export function hasText(content: string): boolean {
  return sanitizeTitle(content) !== "";
}

/**
 * The original's excerpt: the first 120 characters, line breaks as spaces, "..." when cut. Content is stored
 * escaped (`&amp;`, `&lt;`): a cut never splits an entity, which a reader would see as `&a...`.
 */
export function excerpt(content: string, length = 120): string {
  const chars = Array.from(content.replace(/\r\n|\r|\n/g, " "));
  if (chars.length <= length) return chars.join("");
  return `${chars.slice(0, length).join("").replace(/&#?[a-zA-Z0-9]*$/, "")}...`;
}

/** `categories.slug` is varchar(50): every slug, numbered ones included, fits it. */
export const SLUG_MAX = 50;

const graphemes = new Intl.Segmenter(undefined, { granularity: "grapheme" });

/**
 * At most `max` code points of `slug` (what `varchar(n)` counts), cut between user-perceived characters:
 * never inside a surrogate pair (a UTF-16 cut stored U+FFFD), nor between a letter and its combining marks.
 * A `-` the cut leaves at the end goes too.
 */
function cutSlug(slug: string, max: number): string {
  let out = "";
  let used = 0;
  for (const { segment } of graphemes.segment(slug)) {
    const size = Array.from(segment).length;
    if (used + size > max) break;
    out += segment;
    used += size;
  }
  return out.replace(/-+$/, "");
}

/**
 * The original's slug rule, Unicode-aware: lower-case, drop what is not a letter, digit, space, `_` or `-`
 * (Hangul and other scripts stay), spaces and underscores become `-`, no leading or trailing `-`; at most
 * `SLUG_MAX` code points (`cutSlug`).
 */
export function slugify(name: string): string {
  const slug = name
    .toLowerCase()
    .normalize("NFC")
    .replace(/[^\p{L}\p{M}\p{N}\s_-]/gu, "")
    .replace(/[\s_]+/g, "-")
    .replace(/-+/g, "-")
    .replace(/^-|-$/g, "");
  return cutSlug(slug, SLUG_MAX);
}

/**
 * The n-th candidate slug for a category whose plain slug is taken by another name (`base`, `base-2`, …):
 * the base is shortened to leave room for the suffix, so no number makes the slug overflow the column.
 */
export function numberedSlug(base: string, n: number): string {
  if (n === 1) return base;
  const suffix = `-${n}`;
  return `${cutSlug(base, SLUG_MAX - suffix.length)}${suffix}`;
}

/**
 * A category name as it is stored and compared: NFC (one code point sequence for what looks the same),
 * every run of whitespace (tabs, no-break and ideographic spaces included) one space, no space at the ends.
 * Existing categories match it case-insensitively (`lower()` in the repository).
 */
export function normalizeCategoryName(name: string): string {
  return name.normalize("NFC").replace(/\s+/gu, " ").trim();
}

/** The original's palette for new categories. */
export const CATEGORY_COLORS = ["#EF4444", "#F97316", "#EAB308", "#22C55E", "#14B8A6", "#3B82F6", "#8B5CF6", "#EC4899", "#6366F1", "#06B6D4"];
export const randomColor = () => CATEGORY_COLORS[Math.floor(Math.random() * CATEGORY_COLORS.length)]!;
