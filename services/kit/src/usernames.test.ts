import { describe, expect, it } from "vitest";
import { foldUsername } from "./usernames.js";

describe("foldUsername: the one rule for which names are the same account", () => {
  it("folds ASCII letters only, the same as lower-casing for every ASCII name", () => {
    expect(foldUsername("Alice_1")).toBe("alice_1");
    expect(foldUsername("ALICE_1")).toBe("alice_1");
    for (let c = 0; c < 128; c++) {
      const name = `a${String.fromCharCode(c)}Z`;
      expect(foldUsername(name)).toBe(name.toLowerCase());
    }
  });

  it("keeps every other character, so a name with one never equals an ASCII username", () => {
    // JavaScript lower-cases "İ" to "i" + U+0307, PostgreSQL (C.UTF-8) to "i", the Kelvin sign to "k":
    // under either rule these were spellings of alice_1 / kate; under this one they are no account's.
    expect(foldUsername("ALİCE_1")).toBe("alİce_1");
    expect(foldUsername("\u212AATE")).toBe("\u212Aate");
    expect(foldUsername("ÀLICE")).toBe("Àlice");
    expect(foldUsername(foldUsername("MiXeD_İ"))).toBe(foldUsername("MiXeD_İ"));
  });
});
