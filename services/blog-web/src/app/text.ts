// Plain-text helpers. DOM-free so they are unit-tested in Node.

/**
 * The API's excerpt is the first 120 characters of the raw Markdown; shown in a list, the syntax is noise.
 * This strips the common marks (emphasis, code fences and ticks, headings, quotes, list bullets, link and
 * image syntax) and keeps the words. The result is only ever used as text, never as HTML.
 */
export function plainExcerpt(markdown: string): string {
  return markdown
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
