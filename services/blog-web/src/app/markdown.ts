// Markdown → sanitised HTML. Loaded on demand (post and editor views) so the list page stays small.
// Order: marked renders (with highlight.js on fenced code), DOMPurify sanitises the result, and the page
// assigns it only as a Trusted Types value (the CSP requires it), so nothing unsanitised reaches the DOM.
import DOMPurify from "dompurify";
import type { TrustedHTML } from "trusted-types/lib/index.js";
import { Marked } from "marked";
import hljs from "highlight.js/lib/core";
import bash from "highlight.js/lib/languages/bash";
import css from "highlight.js/lib/languages/css";
import go from "highlight.js/lib/languages/go";
import javascript from "highlight.js/lib/languages/javascript";
import json from "highlight.js/lib/languages/json";
import python from "highlight.js/lib/languages/python";
import sql from "highlight.js/lib/languages/sql";
import typescript from "highlight.js/lib/languages/typescript";
import xml from "highlight.js/lib/languages/xml";
import yaml from "highlight.js/lib/languages/yaml";

// A handful of languages a platform blog writes about (the full highlight.js bundle is ~10x larger).
const languages = { bash, css, go, javascript, json, python, sql, typescript, xml, yaml };
for (const [name, lang] of Object.entries(languages)) hljs.registerLanguage(name, lang);
hljs.registerAliases(["sh", "shell", "console"], { languageName: "bash" });
hljs.registerAliases(["js"], { languageName: "javascript" });
hljs.registerAliases(["ts"], { languageName: "typescript" });
hljs.registerAliases(["html", "svg"], { languageName: "xml" });
hljs.registerAliases(["yml"], { languageName: "yaml" });
hljs.registerAliases(["py"], { languageName: "python" });

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const marked = new Marked({
  gfm: true,
  breaks: true, // the original rendered single newlines as line breaks
  renderer: {
    code({ text, lang }) {
      const name = (lang ?? "").trim().split(/\s+/)[0]?.toLowerCase() ?? "";
      const known = name !== "" && hljs.getLanguage(name) !== undefined;
      // highlight.js escapes the code itself; unknown languages are escaped here and left plain.
      const body = known ? hljs.highlight(text, { language: name, ignoreIllegals: true }).value : escapeHtml(text);
      const cls = known ? ` class="hljs language-${escapeHtml(name)}"` : ` class="hljs"`;
      return `<pre><code${cls}>${body}</code></pre>\n`;
    },
  },
});

const PURIFY = {
  USE_PROFILES: { html: true },
  FORBID_TAGS: ["style", "form", "input", "button", "textarea", "select"],
  FORBID_ATTR: ["style", "srcset"], // inline styles would break the CSP; srcset could fetch off-site
};

// Links in posts leave the app safely: no opener, no referrer.
DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A" && node.hasAttribute("href")) {
    node.setAttribute("rel", "noopener noreferrer nofollow");
    if (!node.getAttribute("href")?.startsWith("#")) node.setAttribute("target", "_blank");
  }
});

/** Sanitised HTML for a Markdown source (a TrustedHTML where the browser supports Trusted Types). */
export function renderMarkdown(source: string): TrustedHTML | string {
  const html = marked.parse(source, { async: false });
  return DOMPurify.sanitize(html, { ...PURIFY, RETURN_TRUSTED_TYPE: true });
}

/** Puts rendered Markdown into an element. */
export function setMarkdown(el: Element, source: string): void {
  // innerHTML is typed as string, but under Trusted Types it takes the TrustedHTML DOMPurify returned.
  el.innerHTML = renderMarkdown(source) as string;
}
