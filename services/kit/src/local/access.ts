import { realpathSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";

/** The user and group a process runs as. */
export interface RunAs {
  uid: number;
  gid: number;
}

/**
 * The folders on the way to `path` (from `/` down, `path` itself when it is a folder) that a process running
 * as `who` cannot pass through: no search (x) bit for it, the owner's bit for the folder's owner, the group's
 * for its group, the others' for anyone else, as the kernel decides (ACLs aside). Only `who.gid` counts: Node
 * drops the supplementary groups of a process it starts as another user. Both the path as given and the one
 * its symbolic links lead to are walked. Decided from the modes, not by trying: root, which runs this, passes
 * everywhere itself.
 */
export function foldersBlocking(path: string, who: RunAs): string[] {
  const blocking = new Set<string>();
  for (const start of new Set([resolve(path), realpathSync(path)])) {
    const chain: string[] = [];
    for (let dir = statSync(start).isDirectory() ? start : dirname(start); ; dir = dirname(dir)) {
      chain.unshift(dir);
      if (dir === dirname(dir)) break;
    }
    for (const dir of chain) {
      const st = statSync(dir);
      const bit = st.uid === who.uid ? 0o100 : st.gid === who.gid ? 0o010 : 0o001;
      if (!(st.mode & bit)) blocking.add(dir);
    }
  }
  return [...blocking];
}
