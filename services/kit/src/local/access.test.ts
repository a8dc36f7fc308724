import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { foldersBlocking } from "./access.js";

// The modes decide, not a try: the tests run as root, which passes every folder itself.
const root = mkdtempSync(join(tmpdir(), "titanium-access-"));
chmodSync(root, 0o755);
afterAll(() => rmSync(root, { recursive: true, force: true }));
const someone = { uid: 54321, gid: 54321 };
const uid = process.getuid?.() ?? 0;
const gid = process.getgid?.() ?? 0;

describe("the folders a user cannot pass on the way to a path (foldersBlocking)", () => {
  it("names each folder without the search bit that applies to the user, from / down, the path itself included", () => {
    const home = join(root, "home"); // as a /root cloned into: 0700
    const data = join(home, "repo", ".local");
    mkdirSync(data, { recursive: true });
    chmodSync(home, 0o700);
    chmodSync(join(home, "repo"), 0o755);
    chmodSync(data, 0o750);
    expect(foldersBlocking(data, someone)).toEqual([home, data]);
    // A file: the folders to it.
    writeFileSync(join(home, "repo", "initdb"), "");
    expect(foldersBlocking(join(home, "repo", "initdb"), someone)).toEqual([home]);
    chmodSync(home, 0o701); // o+x: others may pass (not list)
    chmodSync(data, 0o751);
    expect(foldersBlocking(data, someone)).toEqual([]);
  });

  it("takes the owner's bit for the owner and the group's for the group, whatever the others' say", () => {
    const dir = join(root, "owned");
    mkdirSync(dir);
    chownSync(dir, uid, gid);
    chmodSync(dir, 0o071); // everyone but the owner
    expect(foldersBlocking(dir, { uid, gid: 1 })).toEqual([dir]);
    expect(foldersBlocking(dir, { uid: 54321, gid })).toEqual([]);
    chmodSync(dir, 0o701); // the owner and others, not the group
    expect(foldersBlocking(dir, { uid: 54321, gid })).toEqual([dir]);
    expect(foldersBlocking(dir, someone)).toEqual([]);
  });

  it("walks the folders a symbolic link leads through as well", () => {
    const closed = join(root, "closed");
    mkdirSync(join(closed, "data"), { recursive: true });
    chmodSync(closed, 0o700);
    const link = join(root, "link");
    symlinkSync(join(closed, "data"), link);
    expect(foldersBlocking(link, someone)).toEqual([closed]);
  });
});
