import { renameSync, rmSync, writeFileSync } from "node:fs";

/** The suffix of a file being written in place of another (`<file>.tmp-<pid>`): swept once its writer is gone. */
export const TEMP_SUFFIX = ".tmp-";
/** Where this process writes `file` before it takes `file`'s place. */
export const tempSibling = (file: string): string => `${file}${TEMP_SUFFIX}${process.pid}`;

/**
 * Writes `file` whole or not at all: into a temporary file beside it, then renamed over it (a rename within a
 * folder is atomic). A run killed halfway (Ctrl-C, kill -9, a full disk) leaves the old content or the new,
 * never a truncated file that the next start cannot read.
 */
export function writeFileAtomic(file: string, data: string, mode = 0o600): void {
  const tmp = tempSibling(file);
  try {
    writeFileSync(tmp, data, { mode });
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}
