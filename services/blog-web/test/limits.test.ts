// The UI's copies of the services' rules, held to the services' own schemas.
import { describe, expect, it } from "vitest";
import { CreatePost } from "../../blog-service/src/schemas.js";
import { Password, Username } from "../../user-service/src/schemas.js";
import { isPlainCategoryName, isStrongPassword, isUsername, LIMITS, looksLikeEmail } from "../src/app/limits.js";

describe("the UI's rules agree with the services'", () => {
  it("usernames: the same answer as the user-service's schema (reserved names are the server's alone)", () => {
    for (const u of ["alice", "al", "a_1", "x".repeat(50), "x".repeat(51), "bad name", "ünï", "bob-1", "Alice_99", "admin"]) {
      expect(isUsername(u), u).toBe(Username.safeParse(u).success || u === "admin");
    }
  });

  it("passwords: the same answer as the user-service's schema", () => {
    for (const p of ["Str0ng!pass", "weakpassword1", "Sh0rt!", "NoDigits!!", "n0upper!x", "N0LOWER!X", "NoSpecial1x", "Dash-0nly-x", `A1!${"a".repeat(197)}`, `A1!${"a".repeat(198)}`]) {
      expect(isStrongPassword(p), p).toBe(Password.safeParse(p).success);
    }
  });

  it("e-mail: refuses what is plainly not an address, leaves the rest to the server", () => {
    expect(["name@example.com", "ü@bücher.de"].map(looksLikeEmail)).toEqual([true, true]);
    expect(["bad-email", "a@b", "a @b.c"].map(looksLikeEmail)).toEqual([false, false, false]);
  });

  it("category names: plain text, as the blog-service's schema has it", () => {
    for (const c of ["Kubernetes", "C<D>", "a > b", "<", "R&D", "기술 스택", "x => y"]) {
      expect(isPlainCategoryName(c), c).toBe(CreatePost.safeParse({ title: "t", category_name: c, content: "x" }).success);
    }
  });

  it("post fields: the editor's limits are the blog-service's", () => {
    const post = (o: Partial<Record<keyof typeof LIMITS, string>>) => CreatePost.safeParse({ title: "t", category_name: "c", content: "x", ...o }).success;
    for (const key of Object.keys(LIMITS) as (keyof typeof LIMITS)[]) {
      expect(post({ [key]: "a".repeat(LIMITS[key]) }), `${key} at the limit`).toBe(true);
      expect(post({ [key]: "a".repeat(LIMITS[key] + 1) }), `${key} past it`).toBe(false);
    }
  });
});
