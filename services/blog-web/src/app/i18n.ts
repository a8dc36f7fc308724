// Messages, plurals and dates per locale. English is the default; the choice is remembered per browser.
// DOM-free so it is unit-tested in Node.
import { en } from "./locales/en.js";
import { ko } from "./locales/ko.js";

export type MessageKey = keyof typeof en;
export type Locale = "en" | "ko";

export const DEFAULT_LOCALE: Locale = "en";
export const LOCALES: Record<Locale, { label: string; messages: Record<MessageKey, string> }> = {
  en: { label: "English", messages: en },
  ko: { label: "한국어", messages: ko },
};
export const LOCALE_STORAGE_KEY = "titanium.locale";

export function isLocale(v: unknown): v is Locale {
  return typeof v === "string" && Object.hasOwn(LOCALES, v);
}

/** `{name}` placeholders of a message, sorted (locales must agree on them). */
export function placeholders(message: string): string[] {
  return [...message.matchAll(/\{(\w+)\}/g)].map((m) => m[1] ?? "").sort();
}

type PluralBase = { [K in MessageKey]: K extends `${infer B}.other` ? B : never }[MessageKey];

export interface Translator {
  locale: Locale;
  t(key: MessageKey, params?: Record<string, string | number>): string;
  /** Picks `<base>.one` or `<base>.other` by the locale's plural rules; `{count}` is filled in. */
  plural(base: PluralBase, count: number): string;
  /** A timestamp from the API as a readable date. */
  date(iso: string): string;
}

export function createTranslator(locale: Locale): Translator {
  const messages = LOCALES[locale].messages;
  const rules = new Intl.PluralRules(locale);
  const nf = new Intl.NumberFormat(locale);
  const df = new Intl.DateTimeFormat(locale, { dateStyle: "medium", timeStyle: "short" });
  const t = (key: MessageKey, params: Record<string, string | number> = {}): string =>
    messages[key].replace(/\{(\w+)\}/g, (whole, name: string) =>
      Object.hasOwn(params, name) ? String(params[name]) : whole,
    );
  return {
    locale,
    t,
    plural(base, count) {
      const key = `${base}.${rules.select(count)}` as MessageKey;
      const chosen = Object.hasOwn(messages, key) ? key : (`${base}.other` as MessageKey);
      return t(chosen, { count: nf.format(count) });
    },
    date(iso) {
      // The API's timestamps are UTC; a value without a zone designator is read as UTC too.
      const withZone = /(Z|[+-]\d\d:?\d\d)$/.test(iso) ? iso : `${iso}Z`;
      const d = new Date(withZone);
      return Number.isNaN(d.getTime()) ? iso : df.format(d);
    },
  };
}
