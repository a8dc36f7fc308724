/**
 * Reproduces a service image's file system without a Docker engine, by executing its Dockerfile's
 * own instructions: the build context is the repository filtered by `.dockerignore` (Docker's
 * semantics, `@balena/dockerignore`), every stage gets an empty root in a temp folder (the base
 * image's files are not there: `node` and `npm` are this machine's), WORKDIR/COPY/ENV/RUN run as
 * written, with absolute paths mapped into the stage's root. A RUN that would need the network or
 * minutes here (the build stage's full `npm ci`) can be substituted by the caller; every other RUN
 * runs verbatim. The tests then start the service from the final stage's folder, as the image would.
 */
import { spawn } from "node:child_process";
import { cpSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, symlinkSync } from "node:fs";
import path from "node:path";
import ignore from "@balena/dockerignore";
import { type Dockerfile, imageConfig, type ImageConfig, type Instruction, type Stage } from "./dockerfile";

export interface ReproduceOptions {
  /** The build context (the repository root). */
  context: string;
  /** An empty folder that receives one sub-folder per stage. */
  workDir: string;
  /**
   * Runs instead of a RUN when it returns true (the RUN is then not executed). Receives the stage,
   * the shell command and the stage-mapped working directory.
   */
  substitute?: (stage: Stage, command: string, cwd: string) => boolean;
  /** Extra environment for every RUN (e.g. `npm_config_offline=true`: the local npm cache only). */
  runEnv?: Record<string, string>;
}

export interface ReproducedImage {
  /** Root folder of each stage, by name or index. */
  stageRoots: Record<string, string>;
  /** Root folder of the final stage: the image's files (minus the base image's). */
  root: string;
  config: ImageConfig;
  /** RUN commands executed verbatim, per stage. */
  ran: { stage: string; command: string }[];
  /** RUN commands the caller substituted. */
  substituted: { stage: string; command: string }[];
}

/** Files of the build context, relative POSIX paths, after `.dockerignore`. */
export function contextFiles(context: string): string[] {
  const ignoreFile = path.join(context, ".dockerignore");
  const patterns = existsSync(ignoreFile) ? readFileSync(ignoreFile, "utf8") : "";
  const ig = ignore().add(patterns);
  // Exceptions (`!x`) can re-include something inside an ignored folder: only descend into an
  // ignored folder when an exception points inside it (node_modules and .git are never walked).
  const exceptions = patterns
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l.startsWith("!"))
    .map((l) => l.slice(1).replace(/^\//, ""));
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const entry of readdirSync(path.join(context, rel), { withFileTypes: true })) {
      const p = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) {
        if (!ig.ignores(`${p}/`) || exceptions.some((e) => e.startsWith(`${p}/`))) walk(p);
      } else if (!ig.ignores(p)) {
        out.push(p);
      }
    }
  };
  walk("");
  return out.sort();
}

function run(command: string, cwd: string, env: Record<string, string>): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn("sh", ["-c", command], { cwd, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (b: Buffer) => (output += b.toString()));
    child.stderr.on("data", (b: Buffer) => (output += b.toString()));
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`RUN ${command} (in ${cwd}) exited ${code}:\n${output}`))));
  });
}

/** Absolute paths inside RUN would reach this machine's files, not the stage's: refuse them. */
function assertRelative(ins: Instruction, command: string): void {
  for (const token of command.split(/\s+/)) {
    if (token.startsWith("/")) throw new Error(`line ${ins.line}: RUN uses the absolute path ${token}; the image tests only run relative paths`);
  }
}

/** `COPY` with Docker's rules for the cases the Dockerfiles use (no globs, no --chown/--chmod). */
function copy(ins: Instruction, from: { root: string; files?: string[] }, stageRoot: string, workdir: string): void {
  const unsupported = Object.keys(ins.flags).filter((f) => f !== "from" && f !== "link");
  if (unsupported.length > 0) throw new Error(`line ${ins.line}: COPY --${unsupported.join(", --")} is not modelled`);
  const sources = ins.args.slice(0, -1);
  const destArg = ins.args.at(-1)!;
  if (sources.length === 0) throw new Error(`line ${ins.line}: COPY needs a source and a destination`);
  const destAbs = path.posix.resolve(workdir, destArg);
  const destIsDir = destArg.endsWith("/") || sources.length > 1;
  for (const src of sources) {
    if (/[*?[]/.test(src)) throw new Error(`line ${ins.line}: COPY source ${src} uses a wildcard; the image tests do not model globs`);
    const rel = src.replace(/^\/+/, "").replace(/\/+$/, "");
    if (from.files) {
      // From the context: only what .dockerignore lets through.
      const matches = rel === "" || rel === "." ? from.files : from.files.filter((f) => f === rel || f.startsWith(`${rel}/`));
      if (matches.length === 0) throw new Error(`line ${ins.line}: COPY ${src}: not in the build context (missing, or excluded by .dockerignore)`);
      const isFile = matches.length === 1 && matches[0] === rel;
      for (const f of matches) {
        const target = isFile
          ? destIsDir ? path.posix.join(destAbs, path.posix.basename(f)) : destAbs
          : path.posix.join(destAbs, f.slice(rel === "" || rel === "." ? 0 : rel.length + 1));
        const to = path.join(stageRoot, target);
        mkdirSync(path.dirname(to), { recursive: true });
        cpSync(path.join(from.root, f), to);
      }
    } else {
      const fromPath = path.join(from.root, path.posix.resolve("/", src));
      if (!existsSync(fromPath)) throw new Error(`line ${ins.line}: COPY --from=${ins.flags.from} ${src}: no such path in that stage`);
      const isDir = statSync(fromPath).isDirectory();
      const target = isDir ? destAbs : destIsDir ? path.posix.join(destAbs, path.posix.basename(src)) : destAbs;
      const to = path.join(stageRoot, target);
      mkdirSync(isDir ? to : path.dirname(to), { recursive: true });
      // Directory sources copy their contents; symbolic links stay links (as in an image layer).
      cpSync(fromPath, to, { recursive: true, verbatimSymlinks: true });
    }
  }
}

/** Executes every stage of a Dockerfile into `opts.workDir` and returns the final stage's files and config. */
export async function reproduceImage(dockerfile: Dockerfile, opts: ReproduceOptions): Promise<ReproducedImage> {
  const files = contextFiles(opts.context);
  const stageRoots: Record<string, string> = {};
  const ran: ReproducedImage["ran"] = [];
  const substituted: ReproducedImage["substituted"] = [];
  let root = "";
  for (const [index, stage] of dockerfile.stages.entries()) {
    const id = stage.name ?? String(index);
    root = path.join(opts.workDir, `stage-${index}-${id}`);
    mkdirSync(root, { recursive: true });
    if (stageRoots[stage.image]) throw new Error(`${dockerfile.file}: FROM another stage (${stage.image}) is not modelled`);
    stageRoots[id] = root;
    stageRoots[String(index)] = root;
    let workdir = "/";
    const env: Record<string, string> = {};
    for (const ins of stage.instructions) {
      switch (ins.keyword) {
        case "WORKDIR":
          workdir = path.posix.resolve(workdir, ins.args[0]!);
          mkdirSync(path.join(root, workdir), { recursive: true });
          break;
        case "ENV":
          Object.assign(env, imageConfig({ image: stage.image, instructions: [ins] }).env);
          break;
        case "COPY": {
          const fromName = ins.flags.from;
          if (fromName !== undefined && !stageRoots[fromName]) throw new Error(`line ${ins.line}: COPY --from=${fromName}: no earlier stage of that name`);
          copy(ins, fromName === undefined ? { root: opts.context, files } : { root: stageRoots[fromName]! }, root, workdir);
          break;
        }
        case "RUN": {
          if (ins.json) throw new Error(`line ${ins.line}: exec-form RUN is not modelled`);
          const cwd = path.join(root, workdir);
          if (opts.substitute?.(stage, ins.shell, cwd)) {
            substituted.push({ stage: id, command: ins.shell });
            break;
          }
          assertRelative(ins, ins.shell);
          // The image's PATH names the image's folders; RUN here uses this machine's node and npm.
          const { PATH: _imagePath, ...runEnv } = env;
          await run(ins.shell, cwd, { ...runEnv, ...opts.runEnv });
          ran.push({ stage: id, command: ins.shell });
          break;
        }
        case "ADD":
          throw new Error(`line ${ins.line}: ADD is not modelled (use COPY)`);
        default:
          // USER, EXPOSE, ENTRYPOINT, CMD, LABEL, ARG, HEALTHCHECK: configuration, no files.
          break;
      }
    }
  }
  const config = imageConfig(dockerfile.stages.at(-1)!);
  return { stageRoots, root, config, ran, substituted };
}

/**
 * Stands in for a full `npm ci` of the repository in `target` (a copy of the workspaces): links
 * each installed package of `repo`'s `node_modules` (root and per workspace) into `target`, and
 * re-creates the workspace links (`node_modules/@titanium/*`) so they point at `target`'s own
 * workspace folders, as npm would. The lockfile is the same, so the tree is the one npm ci builds.
 */
export function linkRepositoryInstall(repo: string, target: string): void {
  const mirror = (from: string, to: string) => {
    mkdirSync(to, { recursive: true });
    for (const entry of readdirSync(from, { withFileTypes: true })) {
      const src = path.join(from, entry.name);
      const dest = path.join(to, entry.name);
      if (entry.isSymbolicLink()) {
        // Workspace links are relative (../../services/kit): the same link resolves inside `target`.
        symlinkSync(readlinkSync(src), dest);
      } else if (entry.name.startsWith("@") && entry.isDirectory()) {
        mirror(src, dest);
      } else {
        symlinkSync(src, dest);
      }
    }
  };
  mirror(path.join(repo, "node_modules"), path.join(target, "node_modules"));
  for (const dir of ["services", "policies"]) {
    const base = path.join(target, dir);
    if (!existsSync(base)) continue;
    for (const ws of readdirSync(base)) {
      const installed = path.join(repo, dir, ws, "node_modules");
      if (existsSync(installed) && existsSync(path.join(base, ws))) mirror(installed, path.join(base, ws, "node_modules"));
    }
  }
}

/** Every regular file under `dir` (relative paths), following no symbolic links. */
export function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const entry of readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const p = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) walk(p);
      else if (entry.isFile()) out.push(p);
    }
  };
  walk("");
  return out;
}

/** Bytes of every regular file under `dir` (what a layer holding it weighs, uncompressed). */
export function bytesUnder(dir: string): number {
  return filesUnder(dir).reduce((sum, f) => sum + lstatSync(path.join(dir, f)).size, 0);
}
