/**
 * A fake GCE node for running the rendered startup scripts in tests: a temporary root directory,
 * and stub commands on PATH for what touches the machine or the network (curl, systemctl, blkid,
 * mkfs.ext4, mount, mountpoint, sleep). The stub curl serves the metadata server, Secret Manager,
 * the K3s release and the peers' /cacerts from files; every stub call is appended to `calls.log`.
 * Everything else (bash, coreutils, sed, awk, base64, sha256sum) is the real thing.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { accessSync, chmodSync, constants, cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

const sha256 = (text: string): string => createHash("sha256").update(text).digest("hex");

/** Stub commands, real bash files beside this one. */
const STUBS_DIR = path.join(__dirname, "stubs");

/**
 * The bash the scripts run with (the first on PATH), by absolute path: a stub installed with it in its
 * shebang starts without `env` looking bash up first (the scripts call the stubs hundreds of times).
 */
export const BASH = (() => {
  for (const dir of (process.env.PATH ?? "/usr/bin:/bin").split(path.delimiter)) {
    const candidate = path.join(dir || ".", "bash");
    try {
      accessSync(candidate, constants.X_OK);
      if (!lstatSync(candidate).isDirectory()) return path.resolve(candidate);
    } catch {
      // not here
    }
  }
  return "/bin/bash";
})();

/** A bash script's text with `#!/usr/bin/env bash` replaced by {@link BASH}'s path. */
export const withBashShebang = (script: string): string => script.replace(/^#!\/usr\/bin\/env bash\n/, `#!${BASH}\n`);

export interface RunResult {
  status: number;
  stderr: string;
  /** Stub calls made during this run. */
  calls: string[];
}

export interface FakeNodeOptions {
  k3sVersion: string;
  secrets: Record<string, string>;
  dataDisk?: string;
  liveServerIps?: string[];
  /** Peers that come up later: after this many of the script's sleeps. */
  laterServerIps?: Record<string, number>;
  /** Peers that answer only this many /cacerts probes, then go away (a restart, a crash). */
  peerAnswers?: Record<string, number>;
  tamperChecksum?: boolean;
  /** A replaced release: another binary (same version) with a checksum file that matches it. */
  tamperRelease?: boolean;
  /** What `uname -m` prints on the node (the host's when unset). */
  machine?: string;
}

export class FakeNode {
  readonly dir = mkdtempSync(path.join(tmpdir(), "titanium-node-"));
  readonly root = path.join(this.dir, "root");
  readonly fake = path.join(this.dir, "fake");
  private readonly bin = path.join(this.dir, "bin");
  /** The scripts' TMPDIR: every run must leave it empty, however it ends (`run` throws otherwise). */
  private readonly tmp = path.join(this.dir, "tmp");
  private readonly genuineK3s: string;
  private readonly tamperChecksum: boolean;
  /** The SHA-256 of the genuine release binary: what an operator reads from the release and pins. */
  readonly releaseSha256: string;

  /** Options of a new node, or `{ copyOf }`: a copy of that node's directory as it is now (see {@link clone}). */
  constructor(opts: FakeNodeOptions | { copyOf: FakeNode }) {
    if ("copyOf" in opts) {
      const from = opts.copyOf;
      this.genuineK3s = from.genuineK3s;
      this.tamperChecksum = from.tamperChecksum;
      this.releaseSha256 = from.releaseSha256;
      copyTree(from.dir, this.dir);
      return;
    }
    for (const d of [this.root, this.bin, this.tmp, ...["secrets", "release", "peers", "later", "answers"].map((d) => path.join(this.fake, d))]) {
      mkdirSync(d, { recursive: true });
    }
    this.freshBootDisk();
    for (const name of readdirSync(STUBS_DIR)) {
      writeFileSync(path.join(this.bin, name), withBashShebang(readFileSync(path.join(STUBS_DIR, name), "utf8")));
      chmodSync(path.join(this.bin, name), 0o755);
    }
    if (opts.machine !== undefined) {
      const uname = `#!/usr/bin/env bash\nif [[ $* == -m ]]; then echo ${JSON.stringify(opts.machine)}; else exec /usr/bin/env -u PATH PATH=/usr/bin:/bin uname "$@"; fi\n`;
      writeFileSync(path.join(this.bin, "uname"), uname, { mode: 0o755 });
    }
    for (const [id, value] of Object.entries(opts.secrets)) writeFileSync(path.join(this.fake, "secrets", id), value);
    // The "release": a k3s that reports its version, and the release's checksum file.
    this.genuineK3s = `#!/bin/sh\necho "k3s version ${opts.k3sVersion} (fake)"\necho "go version go1.24"\n`;
    this.releaseSha256 = sha256(this.genuineK3s);
    this.tamperChecksum = opts.tamperChecksum ?? false;
    this.publishRelease({ replaced: opts.tamperRelease ?? false });
    if (opts.dataDisk) {
      mkdirSync(path.dirname(path.join(this.root, opts.dataDisk)), { recursive: true });
      writeFileSync(path.join(this.root, opts.dataDisk), Buffer.alloc(1024 * 1024)); // a new disk: zeros
    }
    for (const ip of opts.liveServerIps ?? []) writeFileSync(path.join(this.fake, "peers", ip), "");
    for (const [ip, sleeps] of Object.entries(opts.laterServerIps ?? {})) writeFileSync(path.join(this.fake, "later", ip), String(sleeps));
    for (const [ip, answers] of Object.entries(opts.peerAnswers ?? {})) writeFileSync(path.join(this.fake, "answers", ip), String(answers));
    writeFileSync(path.join(this.fake, "calls.log"), "");
  }

  /**
   * Another node in the very state this one is in now (its root, the fake world, the stub calls so far), in
   * a directory of its own: what a run left on this node is what it would have left on the copy. Paths of
   * this node's directory in its files (a helper the script wrote with $ROOT in it, the calls' arguments)
   * name the copy's.
   */
  clone(): FakeNode {
    return new FakeNode({ copyOf: this });
  }

  /**
   * Serves the release's `k3s` and its sha256sum-amd64.txt: the genuine binary, or (`replaced`) another
   * binary of the same version whose checksum file was replaced to match (what a pinned digest catches).
   */
  publishRelease(opts: { replaced: boolean }): void {
    const k3s = opts.replaced ? `${this.genuineK3s}# not the binary K3s released\n` : this.genuineK3s;
    writeFileSync(path.join(this.fake, "release", "k3s"), k3s);
    const sum = this.tamperChecksum ? "0".repeat(64) : sha256(k3s);
    writeFileSync(path.join(this.fake, "release", "sha256sum-amd64.txt"), `${"1".repeat(64)}  k3s-airgap-images-amd64.tar\n${sum}  k3s\n`);
  }

  /** Runs the script as the GCE startup script runner would (bash, as root), in the fake world. */
  run(script: string, env: Record<string, string> = {}): RunResult {
    const file = path.join(this.dir, "startup-script.sh");
    writeFileSync(file, script);
    const before = this.calls().length;
    const result = spawnSync("bash", [file], {
      encoding: "utf8",
      timeout: 30_000,
      env: {
        PATH: `${this.bin}:${process.env.PATH ?? "/usr/bin:/bin"}`,
        FAKE: this.fake,
        TITANIUM_ROOT: this.root,
        TMPDIR: this.tmp,
        TITANIUM_RETRY_SLEEP: "0",
        TITANIUM_RETRY_ATTEMPTS: "3",
        ...env,
      },
    });
    if (result.error) throw result.error; // a timeout: the script's own outcome is unknown
    const left = readdirSync(this.tmp);
    if (left.length > 0) throw new Error(`the script left temporary files behind: ${left.join(", ")} (exit ${result.status})\n${result.stderr}`);
    return { status: result.status ?? -1, stderr: result.stderr, calls: this.calls().slice(before) };
  }

  /**
   * The VM replaced (same name, same data disk): a new boot disk from the image. Everything but the
   * data disk's mount point (/var/lib/rancher/k3s) and the disk device goes.
   */
  replaceBootDisk(): void {
    for (const top of readdirSync(this.root)) {
      if (top !== "var" && top !== "dev") rmSync(path.join(this.root, top), { recursive: true, force: true });
    }
    for (const sub of readdirSync(path.join(this.root, "var"))) if (sub !== "lib") rmSync(path.join(this.root, "var", sub), { recursive: true, force: true });
    for (const sub of readdirSync(path.join(this.root, "var", "lib"))) if (sub !== "rancher") rmSync(path.join(this.root, "var", "lib", sub), { recursive: true, force: true });
    this.freshBootDisk();
  }

  /** What a fresh Debian image has. */
  private freshBootDisk(): void {
    mkdirSync(path.join(this.root, "etc"), { recursive: true });
    writeFileSync(path.join(this.root, "etc", "hosts"), "127.0.0.1 localhost\n169.254.169.254 metadata.google.internal  # Added by Google\n");
    writeFileSync(path.join(this.root, "etc", "fstab"), "LABEL=root / ext4 rw,discard,errors=remount-ro 0 1\n");
  }

  /** The routing policy rules as `ip rule show` prints them (only those the script added: the stub starts empty). */
  ipRules(): string[] {
    const file = path.join(this.fake, "ip-rules");
    return existsSync(file) ? readFileSync(file, "utf8").split("\n").filter(Boolean) : [];
  }

  /** Rules lost (a networkd restart that deleted them, or a reboot): what `ip rule show` prints now. */
  setIpRules(rules: string[]): void {
    writeFileSync(path.join(this.fake, "ip-rules"), rules.map((r) => `${r}\n`).join(""));
  }

  calls(): string[] {
    return readFileSync(path.join(this.fake, "calls.log"), "utf8").split("\n").filter(Boolean);
  }

  file(p: string): string {
    return readFileSync(path.join(this.root, p), "utf8");
  }

  exists(p: string): boolean {
    return existsSync(path.join(this.root, p));
  }

  markPeerLive(ip: string): void {
    writeFileSync(path.join(this.fake, "peers", ip), "");
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * Copies the directory `from` into `to` (which exists): modes, timestamps and symbolic links (relative, as the
 * scripts make them) as they are; `from`'s path in a file's text or a name becomes `to`'s.
 */
function copyTree(from: string, to: string): void {
  cpSync(from, to, { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
  const rename = (name: string) => name.replaceAll(from, to).replaceAll(from.replaceAll("/", "_"), to.replaceAll("/", "_"));
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      let file = path.join(dir, entry.name);
      if (rename(entry.name) !== entry.name) {
        const renamed = path.join(dir, rename(entry.name));
        renameSync(file, renamed);
        file = renamed;
      }
      if (entry.isDirectory()) walk(file);
      else if (entry.isFile()) {
        const content = readFileSync(file);
        if (!content.includes(from)) continue;
        const stat = lstatSync(file);
        writeFileSync(file, content.toString("latin1").replaceAll(from, to), "latin1");
        utimesSync(file, stat.atimeMs / 1000, stat.mtimeMs / 1000);
      }
    }
  };
  walk(to);
}
