// The focus ring must stand out from what it is drawn on (WCAG 1.4.11, non-text contrast: at least 3:1).
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";

const css = readFileSync(new URL("../src/app/styles.css", import.meta.url), "utf8");

/** The stylesheet's custom properties as `:root` declares them. */
function rootVars(): Map<string, string> {
  const root = /:root\s*\{([^}]*)\}/.exec(css)?.[1] ?? "";
  return new Map([...root.matchAll(/(--[\w-]+)\s*:\s*([^;]+);/g)].map((m) => [m[1]!, m[2]!.trim()]));
}

function luminance(hex: string): number {
  const m = /^#([0-9a-f]{6})$/i.exec(hex);
  if (!m) throw new Error(`not a #rrggbb colour: ${hex}`);
  const [r, g, b] = [0, 2, 4].map((i) => {
    const c = parseInt(m[1]!.slice(i, i + 2), 16) / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r! + 0.7152 * g! + 0.0722 * b!;
}

function contrast(a: string, b: string): number {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi! + 0.05) / (lo! + 0.05);
}

describe("focus ring contrast", () => {
  const vars = rootVars();
  const focus = vars.get("--focus")!;
  // Where a focus ring is drawn (2 px outside the control): the page (--bg, also dialogs), the header and
  // code blocks (--surface), and a toast, whose close button sits on the toast's own dark background (--text).
  for (const bg of ["--bg", "--surface", "--text"]) {
    it(`--focus (${focus}) on ${bg} (${vars.get(bg)}) is at least 3:1`, () => {
      expect(contrast(focus, vars.get(bg)!)).toBeGreaterThanOrEqual(3);
    });
  }

  it("the helper agrees with known values", () => {
    expect(contrast("#000000", "#ffffff")).toBeCloseTo(21, 5);
    expect(contrast("#f59e0b", "#ffffff")).toBeCloseTo(2.15, 2);
  });

  it("the rules that draw the ring use --focus, and toasts keep the dark background the check assumes", () => {
    expect([...css.matchAll(/outline:\s*3px solid ([^;]+);/g)].map((m) => m[1])).toEqual(["var(--focus)", "var(--focus)"]);
    expect(/\.toast\s*\{[^}]*background:\s*var\(--text\);/.exec(css)).not.toBeNull();
  });
});
