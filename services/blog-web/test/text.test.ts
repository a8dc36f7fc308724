import { describe, expect, it } from "vitest";
import { fromStored, plainExcerpt, toStored } from "../src/app/text.js";

describe("plainExcerpt", () => {
  it("keeps the words and drops the Markdown marks", () => {
    expect(plainExcerpt("## Why STRICT mTLS\n\nEvery hop is **encrypted** and _fast_; see [the docs](https://x.y/z).")).toBe(
      "Why STRICT mTLS Every hop is encrypted and fast; see the docs.",
    );
    expect(plainExcerpt("- one\n- two\n1. three\n> quoted `code`")).toBe("one two three quoted code");
    expect(plainExcerpt("```ts\nconst x = 1;\n```")).toBe("const x = 1;");
    expect(plainExcerpt("![diagram](a.png) and a cut-off [link](https://exa")).toBe("diagram and a cut-off link");
  });

  it("leaves ordinary punctuation and snake_case alone", () => {
    expect(plainExcerpt("a * b = c, my_var_name, 3 - 2")).toBe("a * b = c, my_var_name, 3 - 2");
    expect(plainExcerpt("a < b and c > d, x<3, 1<2>0")).toBe("a < b and c > d, x<3, 1<2>0");
  });

  it("drops HTML tags and comments and keeps their text, but not in code spans and fences", () => {
    expect(plainExcerpt("Press <kbd>Ctrl</kbd>+<kbd>C</kbd> to copy.")).toBe("Press Ctrl+C to copy.");
    expect(plainExcerpt('<p align="center">Centred</p><p>Next<br/>line</p> <img src="x.png" alt="pic"> done')).toBe("Centred Next line done");
    expect(plainExcerpt("<script>alert(1)</script> and <!-- a note --> text")).toBe("alert(1) and text"); // only ever text
    expect(plainExcerpt("Why `<main>` matters\n\n```html\n<div>x</div>\n```")).toBe("Why <main> matters <div>x</div>");
    expect(plainExcerpt("cut off <a href=\"https://exa")).toBe("cut off <a href=\"https://exa");
  });
});

describe("fromStored", () => {
  it("undoes exactly one level of the sanitiser's escaping", () => {
    // What sanitize-html stores for "> quote", "if (a < b && c > d)" and a literal "&lt;" typed by the author.
    expect(fromStored("&gt; quote\n\n```\nif (a &lt; b &amp;&amp; c &gt; d) {}\n```")).toBe("> quote\n\n```\nif (a < b && c > d) {}\n```");
    expect(fromStored("A &amp;lt; B")).toBe("A &lt; B");
    expect(fromStored("&quot;q&quot; &#39;s&#x27;")).toBe(`"q" 's'`);
    expect(fromStored("&nbsp; &copy; stay")).toBe("&nbsp; &copy; stay");
  });
});

describe("toStored", () => {
  it("escapes what the sanitiser would take for markup, and fromStored gives the author's text back", () => {
    const written = "Why <main> matters: `<div>` & <img src=x> in `a < b && c > d`; &lt; typed as is";
    expect(toStored(written)).toBe("Why &lt;main&gt; matters: `&lt;div&gt;` &amp; &lt;img src=x&gt; in `a &lt; b &amp;&amp; c &gt; d`; &amp;lt; typed as is");
    expect(fromStored(toStored(written))).toBe(written);
  });
});
