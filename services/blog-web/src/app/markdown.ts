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
    // The page's own title is the one <h1>: a post's headings start one level below it (# → h2, ###### stays h6).
    heading({ tokens, depth }) {
      const level = Math.min(depth + 1, 6);
      return `<h${level}>${this.parser.parseInline(tokens)}</h${level}>\n`;
    },
    // Form controls never reach the page (FORBID_TAGS has input): a task's state is shown as a character.
    checkbox({ checked }) {
      return checked ? "☑ " : "☐ ";
    },
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
  // A <dialog open> would float over the page like the app's own dialogs. Audio and video can never play
  // under the page's CSP (no media-src: `default-src 'none'`): they would only be broken players, an
  // off-site request attempted and a console error.
  FORBID_TAGS: ["style", "form", "input", "button", "textarea", "select", "dialog", "video", "audio", "source", "track"],
  // Inline styles would break the CSP; srcset, poster and background could fetch off-site (images the
  // offsite rewrite below never sees); ids and names could clash with the app's own elements (and forms'
  // named fields); a role (alert, dialog) or aria-* would make screen readers announce a post as the app's
  // own alerts; a tabindex would reorder the page's keyboard path (a positive one comes before the skip link
  // and the header, -1 hides a link from keyboards).
  FORBID_ATTR: ["style", "srcset", "poster", "background", "id", "name", "role", "tabindex"],
  ALLOW_ARIA_ATTR: false,
  // A post's own data-* attributes never reach the page: the page's code reads data attributes (below).
  ALLOW_DATA_ATTR: false,
};

/** Set by the sanitiser on an off-site image: the index of its address in `offsite`, the last render's (never the post's own). */
const OFFSITE = "data-offsite";
let offsite: string[] = [];
/** Classes a post may carry: highlight.js's own (so a post cannot dress up as the app's toasts or dialogs). */
const POST_CLASS = /^(hljs(-[\w-]+)?|language-[\w-]+)$/;

/** An image this page's CSP lets load (`img-src 'self' data:`): this origin, or a data: URL. */
function loadsHere(src: string): boolean {
  try {
    const url = new URL(src, document.baseURI);
    return url.origin === location.origin || url.protocol === "data:";
  } catch {
    return false;
  }
}

const safeLink = (a: Element) => {
  a.setAttribute("rel", "noopener noreferrer nofollow");
  if (!a.getAttribute("href")?.startsWith("#")) a.setAttribute("target", "_blank");
};

DOMPurify.addHook("uponSanitizeAttribute", (_node, data) => {
  if (data.attrName !== "class") return;
  const kept = data.attrValue.split(/\s+/).filter((c) => POST_CLASS.test(c));
  if (kept.length === 0) data.keepAttr = false;
  else data.attrValue = kept.join(" ");
});

DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  // Links in posts leave the app safely: no opener, no referrer.
  if (node.tagName === "A" && node.hasAttribute("href")) safeLink(node);
  // An image from another site would be blocked by the CSP (a broken image and a console error): it never
  // gets a src; setMarkdown turns it into a link to the image.
  const src = node.tagName === "IMG" ? node.getAttribute("src") : null;
  if (src && !loadsHere(src)) {
    node.removeAttribute("src");
    node.setAttribute(OFFSITE, String(offsite.push(src) - 1));
  }
});

/** Only web addresses become links to an off-site image (never javascript:, data: or the like). */
function webAddress(src: string): string | undefined {
  try {
    const url = new URL(src, document.baseURI);
    return url.protocol === "https:" || url.protocol === "http:" ? url.href : undefined;
  } catch {
    return undefined;
  }
}

/** Sanitised HTML for a Markdown source (a TrustedHTML where the browser supports Trusted Types). */
export function renderMarkdown(source: string): TrustedHTML | string {
  offsite = [];
  const html = marked.parse(source, { async: false });
  return DOMPurify.sanitize(html, { ...PURIFY, RETURN_TRUSTED_TYPE: true });
}

/** What setMarkdown needs to say in the UI's language. */
export interface MarkdownLabels {
  /** The accessible name of the `n`th table's scrolling region (1-based). */
  table(n: number): string;
}

/** Puts rendered Markdown into an element. */
export function setMarkdown(el: Element, source: string, labels: MarkdownLabels): void {
  // innerHTML is typed as string, but under Trusted Types it takes the TrustedHTML DOMPurify returned.
  el.innerHTML = renderMarkdown(source) as string;
  // A code block scrolls sideways when a line is wider than the screen (a phone): as a tab stop, a keyboard
  // can scroll it too (WCAG 2.1.1; axe's scrollable-region-focusable). The post's own tabindex never gets here.
  for (const pre of el.querySelectorAll("pre")) pre.tabIndex = 0;
  // A table wider than the screen scrolls sideways in a wrapper, which is a tab stop for the same reason. As
  // a tab stop it is a named region, so a screen reader says what got focus (the table itself keeps its
  // table semantics, which `display: block` on it would lose).
  el.querySelectorAll("table").forEach((table, i) => {
    const scroller = document.createElement("div");
    scroller.className = "table-scroll";
    scroller.tabIndex = 0;
    scroller.setAttribute("role", "region");
    scroller.setAttribute("aria-label", labels.table(i + 1));
    table.replaceWith(scroller);
    scroller.append(table);
  });
  for (const img of el.querySelectorAll(`img[${OFFSITE}]`)) {
    const href = webAddress(offsite[Number(img.getAttribute(OFFSITE))] ?? "");
    // An image that is a link's content (a badge: `[![build](https://ci.example/badge.svg)](https://ci.example)`)
    // becomes that link's text: a link to the image inside it would take the click to the picture instead.
    if (img.closest("a")) {
      img.replaceWith(img.getAttribute("alt") || href || "");
      continue;
    }
    if (!href) {
      img.remove();
      continue;
    }
    const link = document.createElement("a");
    link.href = href;
    link.textContent = img.getAttribute("alt") || href;
    link.className = "offsite-image";
    safeLink(link);
    img.replaceWith(link);
  }
}
