// Locales: Korean covers every English message with the same placeholders; plurals, dates, substitution.
import { describe, expect, it } from "vitest";
import { createTranslator, LOCALES, placeholders, type MessageKey } from "../src/app/i18n.js";

describe("locales", () => {
  const en = LOCALES.en.messages;
  for (const [code, { messages }] of Object.entries(LOCALES)) {
    it(`${code}: same keys as English, same placeholders, nothing empty`, () => {
      expect(Object.keys(messages).sort()).toEqual(Object.keys(en).sort());
      for (const key of Object.keys(en) as MessageKey[]) {
        expect(messages[key].trim(), key).not.toBe("");
        expect(placeholders(messages[key]), key).toEqual(placeholders(en[key]));
      }
    });
  }

  it("Korean is really translated, not copied", () => {
    const same = (Object.keys(en) as MessageKey[]).filter((k) => LOCALES.ko.messages[k] === en[k]);
    expect(same).toEqual([]);
  });
});

describe("translator", () => {
  it("fills placeholders and leaves unknown ones visible", () => {
    const { t } = createTranslator("en");
    expect(t("post.by", { author: "alice" })).toBe("by alice");
    expect(t("post.by")).toBe("by {author}");
  });

  it("picks plural forms by the locale's rules", () => {
    expect(createTranslator("en").plural("list.count", 1)).toBe("1 post");
    expect(createTranslator("en").plural("list.count", 1234)).toBe("1,234 posts");
    expect(createTranslator("ko").plural("list.count", 3)).toBe("글 3개");
  });

  it("reads API timestamps as UTC whether or not they carry a zone", () => {
    const { date } = createTranslator("en");
    expect(date("2026-03-01T23:30:00")).toBe(date("2026-03-01T23:30:00Z"));
    expect(date("2026-03-01T23:30:00+09:00")).toBe(date("2026-03-01T14:30:00Z"));
    expect(date("not a date")).toBe("not a date");
    // A real date in the locale's words (any host time zone): the year and month, and a day apart differs.
    expect(date("2026-03-15T12:00:00Z")).toMatch(/Mar.*2026/);
    expect(createTranslator("ko").date("2026-03-15T12:00:00Z")).toMatch(/2026.*3/);
    expect(date("2026-03-15T12:00:00Z")).not.toBe(date("2026-03-16T12:00:00Z"));
  });
});
