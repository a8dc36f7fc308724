// The UI's copies of the services' rules, held to the services' own schemas.
import { describe, expect, it } from "vitest";
import { SEARCH_TERMS_MAX } from "../../blog-service/src/repo.js";
import { CreatePost } from "../../blog-service/src/schemas.js";
import { codePoints, storedLength } from "../src/app/api.js";
import { Password, Username } from "../../user-service/src/schemas.js";
import { isPlainCategoryName, isStrongPassword, isUsername, LIMITS, looksLikeEmail, SEARCH_WORDS_MAX, searchWords } from "../src/app/limits.js";

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

  it("post fields are counted in code points, as the service's zod .max counts them (an emoji is 1, not 2)", () => {
    const ok = (o: Partial<Record<keyof typeof LIMITS, string>>) => CreatePost.safeParse({ title: "t", category_name: "c", content: "x", ...o }).success;
    for (const key of Object.keys(LIMITS) as (keyof typeof LIMITS)[]) {
      for (const n of [LIMITS[key] - 1, LIMITS[key], LIMITS[key] + 1]) {
        const astral = "😀".repeat(n);
        // The editor refuses exactly what the service refuses.
        expect(storedLength(key, astral) <= LIMITS[key], `${key} of ${n} emoji`).toBe(ok({ [key]: astral }));
      }
    }
    // A 70-emoji title (140 UTF-16 units) is within the 120 the service allows.
    const title = "😀".repeat(70);
    expect([title.length, storedLength("title", title), ok({ title })]).toEqual([140, 70, true]);
    expect(codePoints("기술 스택 🚀")).toBe(7);
  });

  it("search words: the limit is the blog-service's, and a search the service takes is never refused here", () => {
    expect(SEARCH_WORDS_MAX).toBe(SEARCH_TERMS_MAX);
    // As the service counts (PostgreSQL's lexemes): each word, in a phrase too, -word too; `or` is an operator;
    // a hyphenated word counts with its parts.
    const cases: [string, number][] = [
      ["istio mtls", 2],
      ["one two three four five six seven eight", 8],
      ["one two three four five six seven eight nine", 9],
      ['"service mesh" or gateway -legacy', 4],
      ["co-op", 3],
      ["a-b c-d e", 7],
      ["쿠버네티스 운영 장애 대응 사이드카 인증서 갱신 배포 롤백", 9],
      ["  ,  ", 0],
      ["", 0],
    ];
    for (const [q, n] of cases) expect(searchWords(q), q).toBe(n);
  });
});
