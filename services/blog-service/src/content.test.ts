import { describe, expect, it } from "vitest";
import { SLUG_MAX, excerpt, normalizeCategoryName, numberedSlug, sanitizeContent, sanitizeTitle, slugify } from "./content.js";

describe("sanitising (the original's allow-list)", () => {
  it.each([
    ["<script>alert(1)</script><p>hi</p>", "<p>hi</p>"],
    ['<p onclick="x()">hi</p>', "<p>hi</p>"],
    ['<a href="javascript:alert(1)">x</a>', "<a>x</a>"],
    ['<a href="https://e.example" title="t" target="_blank">x</a>', '<a href="https://e.example" title="t">x</a>'],
    ["<img src=x onerror=alert(1)>ok", "ok"],
    ["<IMG SRC=x OnErRoR=alert(1)>ok", "ok"],
    ["<svg><script>alert(1)</script></svg>text", "text"],
    ["<h1>a</h1><h4>b</h4><pre><code>c</code></pre><blockquote>d</blockquote>", "<h1>a</h1>b<pre><code>c</code></pre><blockquote>d</blockquote>"],
    ["<iframe src=//evil></iframe>kept", "kept"],
    // Every tag of the original's allow-list survives as it is.
    ...["p", "strong", "em", "u", "ul", "ol", "li", "h1", "h2", "h3", "code", "pre", "blockquote"].map((t) => [`<${t}>x</${t}>`, `<${t}>x</${t}>`] as [string, string]),
    ["a<br>b<br />c", "a<br />b<br />c"],
  ])("content %s → %s", (input, expected) => {
    expect(sanitizeContent(input)).toBe(expected);
  });

  it("strips every tag from titles", () => {
    expect(sanitizeTitle("<b>Hello</b> <script>x</script>world")).toBe("Hello world");
  });

  // What the original's bleach (html5lib) answered for each, checked against bleach 6.
  it.each([
    // A `<` opening a tag that never closes is text there; sanitize-html's parser dropped the rest of the post.
    ["```\nfor (i=0;i<n;i++) {}\n```", "```\nfor (i=0;i&lt;n;i++) {}\n```"],
    ["if (a<b) { x }", "if (a&lt;b) { x }"],
    ["```sh\ncat <<EOF\nhello\nEOF\n```", "```sh\ncat &lt;&lt;EOF\nhello\nEOF\n```"],
    ["a<b c<d", "a&lt;b c&lt;d"],
    ["x </b", "x &lt;/b"],
    ["<p>x</p><p>i<n", "<p>x</p><p>i&lt;n</p>"],
    // Closed tags and comments are still tags (and dropped when not allowed), as they were.
    ["a<b>c<d", "ac&lt;d"],
    ["x<y and y>z", "xz"],
    ["x <!-- c", "x"],
    // Line breaks as html5lib reads them: CRLF and a lone CR are LF.
    ["line1\r\nline2\rline3", "line1\nline2\nline3"],
  ])("content %j → %j (as the original stored it)", (input, expected) => {
    expect(sanitizeContent(input)).toBe(expected);
  });

  it("reads titles as the original did too: an unclosed tag's < is text, CRLF is LF", () => {
    expect(sanitizeTitle("Why a<b")).toBe("Why a&lt;b");
    expect(sanitizeTitle("one\r\ntwo")).toBe("one\ntwo");
  });
});

describe("slugs and excerpts", () => {
  it.each([
    ["기술 스택", "기술-스택"],
    ["Hello, World!", "hello-world"],
    ["  snake_case  name ", "snake-case-name"],
    ["Ünïcödé Straße", "ünïcödé-straße"],
    ["!!!", ""],
  ])("slugify(%s) = %s", (name, slug) => {
    expect(slugify(name)).toBe(slug);
  });

  it("cuts a long slug at 50 code points between whole characters: no half surrogate pair, no lone mark, no trailing -", () => {
    const lone = /[\uD800-\uDFFF]/u;
    // 49 letters and an astral letter: 51 UTF-16 units (a cut at 50 units kept half of the pair).
    expect(slugify(`${"a".repeat(49)}𠀀𠀀`)).toBe(`${"a".repeat(49)}𠀀`);
    expect(slugify(`${"a".repeat(49)}𠀀𠀀`)).not.toMatch(lone);
    expect(slugify(`${"a".repeat(48)}𝐀𝐀`)).toBe(`${"a".repeat(48)}𝐀𝐀`);
    for (let k = 0; k < 60; k++) {
      const slug = slugify(`${"a".repeat(k)}${"𠀀".repeat(60)}`);
      expect(slug, String(k)).not.toMatch(lone);
      expect(Array.from(slug).length, String(k)).toBeLessThanOrEqual(SLUG_MAX);
    }
    // q + combining dot (no precomposed form) does not fit whole: neither part stays.
    expect(slugify(`${"a".repeat(49)}q\u0307`)).toBe("a".repeat(49));
    expect(slugify(`${"a".repeat(49)} b`)).toBe("a".repeat(49));
    expect(numberedSlug(`${"a".repeat(46)}-bc`, 10)).toBe(`${"a".repeat(46)}-10`);
    expect(numberedSlug(`${"a".repeat(47)}𠀀𠀀`, 2)).toBe(`${"a".repeat(47)}𠀀-2`);
  });

  it.each([
    ["  Kubernetes   운영 ", "Kubernetes 운영"],
    ["Te\tst", "Te st"],
    ["Te\u00a0\u3000st", "Te st"],
    ["Cafe\u0301", "Caf\u00e9"],
    ["\n\t ", ""],
  ])("normalizeCategoryName(%j) = %j", (name, normal) => {
    expect(normalizeCategoryName(name)).toBe(normal);
  });

  it("numbers a taken slug within the column's 50 characters, however large the number", () => {
    const base = slugify("가".repeat(60));
    expect(Array.from(base)).toHaveLength(SLUG_MAX);
    expect(numberedSlug(base, 1)).toBe(base);
    expect(numberedSlug("short", 2)).toBe("short-2");
    for (const n of [2, 10, 999, 1000, 123_456]) {
      const slug = numberedSlug(base, n);
      expect(Array.from(slug).length, String(n)).toBeLessThanOrEqual(SLUG_MAX);
      expect(slug.endsWith(`-${n}`), String(n)).toBe(true);
    }
  });

  it("cuts at 120 characters (code points), turns line breaks into spaces and marks the cut", () => {
    expect(excerpt("a\r\nb\nc")).toBe("a b c");
    const long = "가".repeat(130);
    expect(excerpt(long)).toBe(`${"가".repeat(120)}...`);
    expect(excerpt("x".repeat(120))).toBe("x".repeat(120));
    // A cut through an escaped character drops the partial entity instead of showing "&a...".
    expect(excerpt(`${"x".repeat(118)}&amp;rest`)).toBe(`${"x".repeat(118)}...`);
    expect(excerpt(`${"x".repeat(116)}&#39;s more`)).toBe(`${"x".repeat(116)}...`);
    expect(excerpt(`${"x".repeat(114)}&amp; and more`)).toBe(`${"x".repeat(114)}&amp; ...`);
  });
});
