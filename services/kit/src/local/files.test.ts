import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { writeFileAtomic } from "./files.js";

const dir = mkdtempSync(join(tmpdir(), "titanium-files-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("a file written whole or not at all (writeFileAtomic)", () => {
  it("replaces the content whole, readable by its owner only unless told, and leaves nothing beside it", () => {
    const file = join(dir, "key.pem");
    writeFileSync(file, "old", { mode: 0o644 });
    writeFileAtomic(file, "new");
    expect([readFileSync(file, "utf8"), statSync(file).mode & 0o777]).toEqual(["new", 0o600]);
    writeFileAtomic(file, "newer", 0o644);
    expect([readFileSync(file, "utf8"), statSync(file).mode & 0o777]).toEqual(["newer", 0o644]);
    expect(readdirSync(dir)).toEqual(["key.pem"]);
  });

  it("leaves the old content when the write fails", () => {
    const file = join(dir, "passwords.json");
    writeFileSync(file, "{}");
    mkdirSync(`${file}.tmp-${process.pid}`); // the write cannot be made: EISDIR
    expect(() => writeFileAtomic(file, '{"a":"b"}')).toThrow(/EISDIR/);
    expect(readFileSync(file, "utf8")).toBe("{}");
  });
});
