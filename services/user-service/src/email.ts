import { domainToASCII } from "node:url";

/**
 * E-mail addresses as the original's pydantic `EmailStr` took them: pydantic calls the python
 * `email-validator` package (`validate_email(value, check_deliverability=False)`, otherwise its defaults:
 * SMTPUTF8 allowed, quoted local parts and `[IP]` domain literals refused, globally deliverable domains).
 * This is that package's syntax check (email_validator/syntax.py and validate_email.py, 2.x up to 2.2,
 * which also bounds the local part at 64 characters; 2.3 made that bound optional), with node's
 * WHATWG/UTS-46 `domainToASCII` in place of python's `idna` package and the IDNA 2008 rules that matter
 * checked here on top of it (UTS-46 takes emoji and other symbols, IDNA 2008 does not; node does not check
 * `xn--` labels it is given).
 *
 * Decision, what is stored: pydantic v2 returned email-validator's `normalized` form (the local part in NFC,
 * the domain lower-cased and in Unicode; v1 lower-cased the domain), so the original stored that. Titanium
 * stores and echoes the address as sent, as before this module (services/README.md says so; the reference
 * only says "pydantic `EmailStr`"): this module only says whether an address is one the original accepted and
 * rewrites nothing. For the same reason pydantic's stripping of surrounding spaces and its `Name <a@b.com>`
 * form are not taken (both stay a 422).
 *
 * Known differences, all at the edges of Unicode: node's tables are newer than the original's python 3.11
 * (code points unassigned in Unicode 14 are refused there, taken here), and node's bidi check misses a few
 * Arabic letters added in Unicode 14 (U+0870-U+089F, U+08C8) that python refuses in a left-to-right label.
 */

/** RFC 5322 atext (email-validator's ATEXT). */
const ATEXT = "A-Za-z0-9!#$%&'*+\\-/=?^_`{|}~";
const DOT_ATOM = new RegExp(`^[${ATEXT}]+(?:\\.[${ATEXT}]+)*$`);
/** RFC 6531: with SMTPUTF8 any code point from U+0080 up is atext too (then checked for safety below). */
const ATEXT_INTL = `${ATEXT}\\u{80}-\\u{10FFFF}`;
const DOT_ATOM_INTL = new RegExp(`^[${ATEXT_INTL}]+(?:\\.[${ATEXT_INTL}]+)*$`, "u");

const EMAIL_MAX_LENGTH = 254;
const LOCAL_PART_MAX_LENGTH = 64;
const DOMAIN_MAX_LENGTH = 253;
const LABEL_MAX_LENGTH = 63;
/** IANA special-use names email-validator refuses (with their subdomains), `test` included outside its test mode. */
const SPECIAL_USE_DOMAINS = ["arpa", "invalid", "local", "localhost", "onion", "test"];

const codePoints = (s: string): string[] => [...s];
const utf8Length = (s: string): number => Buffer.byteLength(s, "utf8");

/** email-validator's check_unsafe_chars: letters, numbers, punctuation and symbols; marks except first. */
const SAFE = /^[\p{L}\p{N}\p{P}\p{S}]$/u;
const MARK = /^\p{M}$/u;
function safeChars(s: string): boolean {
  return codePoints(s).every((c, i) => SAFE.test(c) || (i > 0 && MARK.test(c)));
}

function isLocalPart(local: string): boolean {
  if (local.length === 0 || codePoints(local).length > LOCAL_PART_MAX_LENGTH) return false;
  if (DOT_ATOM.test(local)) return true;
  if (!DOT_ATOM_INTL.test(local)) return false;
  // Internationalised: the NFC form must be safe and still a dot-atom within the length (email-validator 2.2).
  const nfc = local.normalize("NFC");
  return safeChars(nfc) && DOT_ATOM_INTL.test(nfc) && codePoints(nfc).length <= LOCAL_PART_MAX_LENGTH;
}

/** RFC 3492 decoding of an A-label's payload (after `xn--`); undefined when it is not valid punycode. */
export function punycodeDecode(input: string): string | undefined {
  const BASE = 36, T_MIN = 1, T_MAX = 26, SKEW = 38, DAMP = 700, MAX = 0x10ffff;
  const adapt = (delta: number, points: number, first: boolean): number => {
    delta = first ? Math.floor(delta / DAMP) : delta >> 1;
    delta += Math.floor(delta / points);
    let k = 0;
    for (; delta > ((BASE - T_MIN) * T_MAX) >> 1; k += BASE) delta = Math.floor(delta / (BASE - T_MIN));
    return k + Math.floor(((BASE - T_MIN + 1) * delta) / (delta + SKEW));
  };
  const digit = (c: number): number =>
    c >= 0x30 && c <= 0x39 ? c - 22 : c >= 0x41 && c <= 0x5a ? c - 0x41 : c >= 0x61 && c <= 0x7a ? c - 0x61 : BASE;
  const delimiter = input.lastIndexOf("-");
  const output: number[] = [];
  for (let j = 0; j < Math.max(delimiter, 0); j++) {
    const c = input.charCodeAt(j);
    if (c >= 0x80) return undefined;
    output.push(c);
  }
  let n = 0x80, bias = 72, i = 0;
  for (let pos = delimiter >= 0 ? delimiter + 1 : 0; pos < input.length; ) {
    const oldI = i;
    for (let w = 1, k = BASE; ; k += BASE) {
      if (pos >= input.length) return undefined;
      const d = digit(input.charCodeAt(pos++));
      if (d >= BASE) return undefined;
      i += d * w;
      const t = k <= bias ? T_MIN : k >= bias + T_MAX ? T_MAX : k - bias;
      if (d < t) break;
      w *= BASE - t;
      if (i > 2 ** 40 || w > 2 ** 40) return undefined; // far past any valid label: no float imprecision
    }
    bias = adapt(i - oldI, output.length + 1, oldI === 0);
    n += Math.floor(i / (output.length + 1));
    i %= output.length + 1;
    if (n > MAX) return undefined;
    output.splice(i++, 0, n);
  }
  return String.fromCodePoint(...output);
}

// IDNA 2008 (RFC 5892) code point classes, as python's `idna` package applies them to every label.
const LETTER_DIGIT = /^[\p{Ll}\p{Lu}\p{Lo}\p{Lm}\p{Nd}\p{Mn}\p{Mc}]$/u;
const IGNORABLE = /^[\p{Default_Ignorable_Code_Point}\p{White_Space}\p{Noncharacter_Code_Point}\u{20D0}-\u{20FF}\u{1D100}-\u{1D24F}\u{1100}-\u{11FF}\u{A960}-\u{A97F}\u{D7B0}-\u{D7FF}]$/u;
const EXCEPTION_PVALID = new Set(["\u00DF", "\u03C2", "\u06FD", "\u06FE", "\u0F0B", "\u3007", "-"]);
const EXCEPTION_DISALLOWED = new Set(["\u0640", "\u07FA", "\u302E", "\u302F", "\u3031", "\u3032", "\u3033", "\u3034", "\u3035", "\u303B"]);

/** RFC 5892 appendix A's CONTEXTO rules. */
function contextO(label: string[], i: number): boolean | undefined {
  const c = label[i]!;
  switch (c) {
    case "\u00B7":
      return label[i - 1] === "l" && label[i + 1] === "l";
    case "\u0375":
      return /^\p{Script=Greek}$/u.test(label[i + 1] ?? "");
    case "\u05F3":
    case "\u05F4":
      return /^\p{Script=Hebrew}$/u.test(label[i - 1] ?? "");
    case "\u30FB":
      return label.some((x) => x !== "\u30FB" && /^[\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Han}]$/u.test(x));
  }
  if (/^[\u0660-\u0669]$/u.test(c)) return !label.some((x) => /^[\u06F0-\u06F9]$/u.test(x));
  if (/^[\u06F0-\u06F9]$/u.test(c)) return !label.some((x) => /^[\u0660-\u0669]$/u.test(x));
  return undefined;
}

/** `idna.check_label` on a decoded U-label: NFC, hyphens, no leading mark, only PVALID (or valid CONTEXT) code points. */
function isULabel(label: string): boolean {
  const cps = codePoints(label);
  if (cps.length === 0 || label !== label.normalize("NFC")) return false;
  if (label.startsWith("-") || label.endsWith("-") || label.slice(2, 4) === "--" || MARK.test(cps[0]!)) return false;
  return cps.every((c, i) => {
    const ctx = contextO(cps, i);
    if (ctx !== undefined) return ctx;
    if (EXCEPTION_PVALID.has(c) || /^[a-z0-9]$/.test(c)) return true;
    // (RFC 5892's "unstable" code points, changed by NFKC case folding, fail the caller's UTS-46 round trip.)
    return !EXCEPTION_DISALLOWED.has(c) && !IGNORABLE.test(c) && LETTER_DIGIT.test(c);
  });
}

const LDH_LABEL = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/;

/** The domain's IDNA (ASCII) form when email-validator would take it, else undefined. */
export function emailDomainToASCII(domain: string): string | undefined {
  // Before any mapping: ASCII letters, digits, hyphens and dots only, other characters safe (no leading mark).
  if (domain.length === 0 || /[^A-Za-z0-9.\-\u{80}-\u{10FFFF}]/u.test(domain)) return undefined;
  if (!safeChars(domain)) return undefined;
  // UTS-46 mapping (case folding, NFC, fullwidth and ideographic full stops) and punycode, by node.
  const ascii = /^[\x20-\x7E]*$/.test(domain) ? domain.toLowerCase() : domainToASCII(domain);
  if (ascii === "" || ascii.length > DOMAIN_MAX_LENGTH) return undefined;
  const labels = ascii.split(".");
  for (const label of labels) {
    if (label.length > LABEL_MAX_LENGTH || !LDH_LABEL.test(label)) return undefined;
    // RFC 5890: no "??--" label (an R-LDH label) but an A-label ...
    if (label.slice(2, 4) === "--" && !label.startsWith("xn--")) return undefined;
    if (!label.startsWith("xn--")) continue;
    // ... which must be real punycode of a valid IDNA 2008 label, in its canonical (UTS-46-mapped) form and
    // safe (email-validator checks the decoded domain's characters again: no joiners, CONTEXTJ in IDNA 2008).
    const u = punycodeDecode(label.slice(4));
    if (u === undefined || !safeChars(u) || !isULabel(u) || domainToASCII(u) !== label) return undefined;
  }
  // Globally deliverable: a dot, a top-level domain ending with a letter, no special-use name.
  if (labels.length < 2 || !/[a-z]$/.test(ascii)) return undefined;
  if (SPECIAL_USE_DOMAINS.some((d) => ascii === d || ascii.endsWith(`.${d}`))) return undefined;
  return ascii;
}

/** Whether the original's `EmailStr` (email-validator) accepted `value`, taken as sent. */
export function isEmailAddress(value: string): boolean {
  const parts = value.split("@");
  if (parts.length !== 2) return false;
  const [local, domain] = parts as [string, string];
  if (!isLocalPart(local)) return false;
  const ascii = emailDomainToASCII(domain);
  if (ascii === undefined) return false;
  // At most 254 octets: in ASCII when the local part is ASCII, and in UTF-8 (the normalized form and, as
  // email-validator 2.2 does for internationalised local parts, the address as sent).
  const asciiLocal = DOT_ATOM.test(local);
  if (asciiLocal && `${local}@${ascii}`.length > EMAIL_MAX_LENGTH) return false;
  const unicodeDomain = ascii
    .split(".")
    .map((l) => (l.startsWith("xn--") ? punycodeDecode(l.slice(4))! : l))
    .join(".");
  if (utf8Length(`${local.normalize("NFC")}@${unicodeDomain}`) > EMAIL_MAX_LENGTH) return false;
  return asciiLocal || utf8Length(value) <= EMAIL_MAX_LENGTH;
}
