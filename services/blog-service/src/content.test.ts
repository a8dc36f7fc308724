import { describe, expect, it } from "vitest";
import { SLUG_MAX, excerpt, numberedSlug, sanitizeContent, sanitizeTitle, slugify } from "./content.js";

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
  ])("content %s → %s", (input, expected) => {
    expect(sanitizeContent(input)).toBe(expected);
  });

  it("strips every tag from titles", () => {
    expect(sanitizeTitle("<b>Hello</b> <script>x</script>world")).toBe("Hello world");
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
  });
});
