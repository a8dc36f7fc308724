import { describe, expect, it } from "vitest";
import { emailDomainToASCII, isEmailAddress, punycodeDecode } from "./email.js";
import { Email } from "./schemas.js";

// Expectations are python email-validator's (2.x, `check_deliverability=False`, the 64-character local part
// bound of 2.0-2.2), as the original's pydantic `EmailStr` applied it; each one was checked against it.
const local64 = "a".repeat(64);
const label63 = "b".repeat(63);

const accepted: [string, string][] = [
  ["a plain address", "alice@example.com"],
  ["a dotted local part with a tag", "first.last+tag@mail.example.co.uk"],
  // RFC 5322 atext beyond z.email()'s set
  ["= in the local part", "a=b@example.com"],
  ["! in the local part", "a!b@example.com"],
  ["# in the local part", "a#b@example.com"],
  ["& in the local part", "a&b@example.com"],
  ["/ in the local part", "a/b@example.com"],
  ["~ in the local part", "a~b@example.com"],
  ["% in the local part", "a%b@example.com"],
  ["' in the local part", "a'@example.com"],
  ["every other atext character", "{a}|b?c^d`e*f$g@example.com"],
  ["a leading hyphen in the local part", "-a@example.com"],
  // internationalised (SMTPUTF8 local parts, IDNA domains)
  ["a Cyrillic domain", "a@пример.рф"],
  ["an A-label top-level domain", "a@example.xn--p1ai"],
  ["a Han top-level domain", "a@example.中国"],
  ["an umlaut local part", "ü@example.com"],
  ["an umlaut domain", "x@bücher.de"],
  ["that domain as an A-label", "x@xn--bcher-kva.de"],
  ["an upper-case A-label", "x@XN--BCHER-KVA.DE"],
  ["a decomposed local part (NFC is taken)", "e\u0301@example.com"],
  ["a symbol in the local part (email-validator takes So there)", "😀@example.com"],
  ["Greek everywhere", "δοκιμή@παράδειγμα.δοκιμή"],
  ["an ideographic full stop in the domain", "a@example。com"],
  ["a fullwidth domain", "a@ｅｘａｍｐｌｅ.com"],
  ["ß (IDNA 2008, non-transitional)", "a@faß.de"],
  ["a CONTEXTO middle dot between l and l", "a@l\u00b7l.com"],
  ["an upper-case domain", "A@EXAMPLE.COM"],
  // bounds
  ["a 64-character local part", `${local64}@example.com`],
  ["a 63-character label", `a@${label63}.com`],
  ["254 characters in all", `${local64}@${label63}.${label63}.${"c".repeat(57)}.com`],
];

const refused: [string, string][] = [
  // bounds
  ["a 65-character local part", `${"a".repeat(65)}@example.com`],
  ["a 64-character label", `a@${"b".repeat(64)}.com`],
  ["255 characters in all", `${local64}@${label63}.${label63}.${"c".repeat(58)}.com`],
  ["a domain over 253 characters", `a@${`${label63}.`.repeat(3)}${"c".repeat(62)}.com`],
  // hyphens and IDNA
  ["a label ending with a hyphen", "a@a-.com"],
  ["a label starting with a hyphen", "a@-a.com"],
  ["an invalid A-label", "a@xn--a.com"],
  ["an empty A-label", "a@xn--.com"],
  ["an A-label ending with a hyphen", "a@xn--bcher-kva-.de"],
  ["an R-LDH label (??--)", "a@ab--c.com"],
  ["an emoji domain (IDNA 2008 refuses symbols)", "a@😀.com"],
  ["an emoji domain as an A-label", "a@xn--e28h.com"],
  ["a heart in the domain", "a@\u2665.com"],
  ["a middle dot outside l·l", "a@a\u00b7b.com"],
  ["an Arabic tatweel", "a@\u0640.com"],
  ["a joiner in the domain", "a@\u0915\u094d\u200d.com"],
  ["a domain starting with a combining mark", "a@\u0301x.com"],
  ["mixed-direction label", "a@a\u0627.com"],
  ["an underscore in the domain", "a@exa_mple.com"],
  ["a percent sign in the domain", "a@a%41.com"],
  // globally deliverable domains
  ["a domain without a dot", "a@b"],
  ["localhost", "x@localhost"],
  ["a .test domain", "a@example.test"],
  ["a .local domain", "a@x.local"],
  ["an .onion domain", "a@x.onion"],
  ["an .invalid domain", "a@x.invalid"],
  ["an .arpa domain", "a@x.arpa"],
  ["a top-level domain ending with a digit", "a@example.c1"],
  ["an IPv4 address", "a@1.2.3.4"],
  ["an IP literal", "a@[1.2.3.4]"],
  ["an IPv6 literal", "a@[IPv6:::1]"],
  // dots
  ["two dots in the domain", "a@b..example.com"],
  ["a trailing dot in the domain", "a@example.com."],
  ["a leading dot in the domain", "a@.example.com"],
  ["a leading dot in the local part", ".a@example.com"],
  ["a trailing dot in the local part", "a.@example.com"],
  ["two dots in the local part", "a..b@example.com"],
  // the local part
  ["a quoted local part", '"a"@example.com'],
  ["a quoted local part with a space", '"a b"@example.com'],
  ["a space", "a b@example.com"],
  ["a zero-width space", "\u200b@example.com"],
  ["a no-break space", "a\u00a0b@example.com"],
  ["a soft hyphen (format character)", "a\u00adb@example.com"],
  ["a private-use character", "a\ue000@example.com"],
  ["a leading combining mark", "\u0301e@example.com"],
  ["parentheses", "a(b)@example.com"],
  ["a comma", "a,b@example.com"],
  ["a backslash", "a\\b@example.com"],
  // shape
  ["no @", "not-an-email"],
  ["two @", "a@@example.com"],
  ["nothing before the @", "@example.com"],
  ["nothing after the @", "a@"],
  ["a display name", "Name <a@example.com>"],
];

describe("e-mail addresses as the original's EmailStr (email-validator) took them", () => {
  it.each(accepted)("accepts %s: %s", (_, address) => {
    expect(isEmailAddress(address)).toBe(true);
    expect(Email.safeParse(address).success).toBe(true);
  });

  it.each(refused)("refuses %s: %s", (_, address) => {
    expect(isEmailAddress(address)).toBe(false);
    expect(Email.safeParse(address).success).toBe(false);
  });

  it("keeps the address as sent (the schema checks, it does not normalize)", () => {
    expect(Email.parse("A@EXAMPLE.COM")).toBe("A@EXAMPLE.COM");
    expect(Email.parse("e\u0301@example.com")).toBe("e\u0301@example.com");
  });

  it("gives the IDNA form of a domain, and decodes punycode as RFC 3492", () => {
    expect(emailDomainToASCII("Bücher.DE")).toBe("xn--bcher-kva.de");
    expect(emailDomainToASCII("пример.рф")).toBe("xn--e1afmkfd.xn--p1ai");
    expect(punycodeDecode("bcher-kva")).toBe("bücher");
    expect(punycodeDecode("e1afmkfd")).toBe("пример");
    expect(punycodeDecode("a")).toBe("\u0080"); // decodes, to a code point no label may hold
    expect(punycodeDecode("99999999999")).toBeUndefined();
    expect(punycodeDecode("ab_c")).toBeUndefined();
  });
});
