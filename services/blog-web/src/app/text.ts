// Plain-text helpers. DOM-free so they are unit-tested in Node.

/**
 * A code span or fence (kept: group 1 is its ticks), an HTML comment, or an HTML tag (group 2 is the name of
 * one that breaks a line, which leaves a space). `a < b` and `x<3` are prose, not tags.
 */
const HTML_TAG_OR_CODE =
  /(`+)[^`]*?\1|<!--[\s\S]*?(?:-->|$)|<\/?(?:(br|p|div|li|ul|ol|tr|td|th|table|thead|tbody|h[1-6]|hr|blockquote|pre|dl|dt|dd|details|summary)|[a-z][a-z0-9-]*)(?=[\s/>])(?:\s[^<>]*)?\/?>/gi;

/**
 * The API's excerpt is the first 120 characters of the raw Markdown; shown in a list, the syntax is noise.
 * This strips the common marks (emphasis, code fences and ticks, headings, quotes, list bullets, link and
 * image syntax) and HTML tags (`<kbd>Ctrl</kbd>` → `Ctrl`; in code spans and fences they are the text and
 * stay) and keeps the words. The result is only ever used as text, never as HTML.
 */
export function plainExcerpt(markdown: string): string {
  return markdown
    .replace(HTML_TAG_OR_CODE, (m: string, ticks: string | undefined, block: string | undefined) =>
      ticks !== undefined ? m : block !== undefined ? " " : "")
    .replace(/```[^\n`]*/g, " ") // fence markers with their language
    .replace(/!\[([^\]]*)\]\([^)]*\)?/g, "$1") // images → alt text
    .replace(/\[([^\]]*)\]\([^)]*\)?/g, "$1") // links → their text
    .replace(/(^|\s)#{1,6}\s+/g, "$1") // headings (a "# " is rare in prose)
    // Quotes and bullets only at a line start: the API turns newlines into spaces, and "3 - 2" is prose.
    .replace(/^[ \t]*>[ \t]?/gm, "")
    .replace(/^[ \t]*(?:[-*+]|\d+\.)[ \t]+/gm, "")
    .replace(/(\*\*|__|~~|`)/g, "") // emphasis and code ticks
    .replace(/(^|[\s(])[*_]([^*_\s][^*_]*?)[*_](?=[\s).,!?:;]|$)/g, "$1$2") // single * or _ emphasis
    .replace(/\s+/g, " ")
    .trim();
}

/**
 * The blog-service stores titles and content as the original did: passed through an HTML sanitiser, which
 * leaves text HTML-escaped (`a < b && c` is stored as `a &lt; b &amp;&amp; c`). The UI shows titles as text
 * and renders content as Markdown, so it undoes exactly that one level of escaping; otherwise a blockquote
 * (`> `) or a comparison in a code block would show entities, and every edit would escape them again.
 * The result is never trusted as HTML: titles become text nodes, content goes through DOMPurify.
 */
export function fromStored(text: string): string {
  return decodeStored(text);
}

/**
 * The inverse of {@link fromStored}, for what the UI sends: `&`, `<` and `>` escaped, so the sanitiser
 * finds text and no markup. Without it, `Why <main> matters` or a `<div>` in a code span was stored as
 * `Why  matters` (the tag stripped) while the preview had shown it; escaped, the sanitiser keeps it as it
 * came (it decodes entities and escapes them again) and the UI shows exactly what the author wrote.
 */
export function toStored(text: string): string {
  return text.replace(/[&<>]/g, (c) => (c === "&" ? "&amp;" : c === "<" ? "&lt;" : "&gt;"));
}

function decodeStored(text: string): string {
  return text.replace(/&(lt|gt|amp|quot|#39|#x27);/g, (_, e: string) =>
    e === "lt" ? "<" : e === "gt" ? ">" : e === "amp" ? "&" : e === "quot" ? '"' : "'",
  );
}
