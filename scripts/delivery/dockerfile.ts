/**
 * A model of the service Dockerfiles for the image tests (no Docker engine runs here): stages,
 * their instructions with flags and arguments, and the configuration the final stage gives the
 * image (user, working directory, environment, entrypoint and command, exposed ports), parsed by
 * `dockerfile-ast` (the parser behind the VS Code Docker extension) and linted by `dockerfile-utils`.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { DockerfileParser, type Instruction as AstInstruction } from "dockerfile-ast";
import { validate } from "dockerfile-utils";
import { SERVICE_NAMES } from "../../stacks/config";
import { REPO_ROOT } from "./workflows";

export interface Instruction {
  keyword: string;
  /** 1-based line of the instruction in the Dockerfile. */
  line: number;
  /** `--name=value` flags (`--from`, `--platform`, `--mount`...). */
  flags: Record<string, string>;
  /** Arguments after the flags (shell form split on whitespace; line continuations joined). */
  args: string[];
  /** The JSON array of an exec-form CMD/ENTRYPOINT/RUN, else undefined. */
  json?: string[];
  /** The arguments as the shell receives them (RUN): flags removed, continuations joined. */
  shell: string;
}

export interface Stage {
  /** `AS <name>`, if any. */
  name?: string;
  /** The image reference after FROM (tag and digest included). */
  image: string;
  /** `--platform` of the FROM, if any. */
  platform?: string;
  instructions: Instruction[];
}

export interface Dockerfile {
  /** Path relative to the repository root. */
  file: string;
  text: string;
  stages: Stage[];
  /** Instructions before the first FROM (ARG only, in a valid file). */
  preamble: Instruction[];
  /** Findings of the `dockerfile-utils` validator, as `line: message`. */
  problems: string[];
}

/** The runtime configuration an image gets from its final stage. */
export interface ImageConfig {
  user?: string;
  /** Absolute working directory (`/` when never set). */
  workdir: string;
  env: Record<string, string>;
  entrypoint?: string[];
  cmd?: string[];
  exposed: number[];
  healthcheck: boolean;
}

/** The Dockerfile of a service, by the path the images workflow builds: `services/<service>/Dockerfile`. */
export function dockerfilePath(service: string): string {
  return `services/${service}/Dockerfile`;
}

function toInstruction(i: AstInstruction): Instruction {
  const withFlags = i as AstInstruction & { getFlags?: () => { getName(): string; getValue(): string | null }[] };
  const withJson = i as AstInstruction & { getJSONStrings?: () => { getJSONValue(): string }[] };
  const flags = Object.fromEntries((withFlags.getFlags?.() ?? []).map((f) => [f.getName(), f.getValue() ?? ""]));
  const json = withJson.getJSONStrings?.().map((s) => s.getJSONValue());
  return {
    keyword: i.getKeyword(),
    line: i.getRange().start.line + 1,
    flags,
    args: i.getArguments().map((a) => a.getValue()),
    json: json && json.length > 0 ? json : undefined,
    shell: i.getArgumentsContent() ?? "",
  };
}

export function parseDockerfile(text: string, file = "Dockerfile"): Dockerfile {
  const ast = DockerfileParser.parse(text);
  const stages: Stage[] = [];
  const preamble: Instruction[] = [];
  for (const raw of ast.getInstructions()) {
    const ins = toInstruction(raw);
    if (ins.keyword === "FROM") {
      const [image, as, name] = ins.args;
      stages.push({
        image: image ?? "",
        name: as?.toUpperCase() === "AS" ? name : undefined,
        platform: ins.flags.platform,
        instructions: [],
      });
    } else if (stages.length === 0) {
      preamble.push(ins);
    } else {
      stages.at(-1)!.instructions.push(ins);
    }
  }
  const problems = validate(text).map((d) => `${d.range.start.line + 1}: ${d.message}`);
  return { file, text, stages, preamble, problems };
}

export function readDockerfile(service: string): Dockerfile {
  const file = dockerfilePath(service);
  return parseDockerfile(readFileSync(path.join(REPO_ROOT, file), "utf8"), file);
}

export function serviceDockerfiles(): { service: string; dockerfile: Dockerfile }[] {
  return SERVICE_NAMES.map((service) => ({ service, dockerfile: readDockerfile(service) }));
}

/** ENV arguments as key/value pairs (`ENV A=1 B=2`; the legacy `ENV A 1` form too). */
export function envPairs(ins: Instruction): [string, string][] {
  if (ins.args.length === 2 && !ins.args[0]!.includes("=")) return [[ins.args[0]!, ins.args[1]!]];
  return ins.args.map((a) => {
    const eq = a.indexOf("=");
    if (eq < 1) throw new Error(`line ${ins.line}: cannot read ENV argument '${a}'`);
    return [a.slice(0, eq), a.slice(eq + 1).replace(/^"(.*)"$/, "$1")];
  });
}

/**
 * The configuration of the image a stage produces, as far as the Dockerfile sets it. What the base
 * image sets is not known here, so the tests require the final stage to set what they check.
 */
export function imageConfig(stage: Stage): ImageConfig {
  const config: ImageConfig = { workdir: "/", env: {}, exposed: [], healthcheck: false };
  for (const ins of stage.instructions) {
    switch (ins.keyword) {
      case "USER":
        config.user = ins.args[0];
        break;
      case "WORKDIR":
        config.workdir = path.posix.resolve(config.workdir, ins.args[0] ?? "/");
        break;
      case "ENV":
        for (const [k, v] of envPairs(ins)) {
          if (v.includes("$")) throw new Error(`line ${ins.line}: ENV ${k} uses a variable; the model only reads literals`);
          config.env[k] = v;
        }
        break;
      case "ENTRYPOINT":
        if (!ins.json) throw new Error(`line ${ins.line}: ENTRYPOINT must use the exec form (JSON array)`);
        config.entrypoint = ins.json;
        // Docker resets an inherited CMD when a stage sets ENTRYPOINT.
        config.cmd = undefined;
        break;
      case "CMD":
        if (!ins.json) throw new Error(`line ${ins.line}: CMD must use the exec form (JSON array)`);
        config.cmd = ins.json;
        break;
      case "EXPOSE":
        config.exposed.push(...ins.args.map((a) => Number(a.split("/")[0])));
        break;
      case "HEALTHCHECK":
        config.healthcheck = true;
        break;
    }
  }
  return config;
}

/** The final stage: what the image is. */
export function finalStage(d: Dockerfile): Stage {
  const last = d.stages.at(-1);
  if (!last) throw new Error(`${d.file}: no FROM`);
  return last;
}

/** The process the image runs without overrides: ENTRYPOINT followed by CMD. */
export function defaultProcess(config: ImageConfig): string[] {
  return [...(config.entrypoint ?? []), ...(config.cmd ?? [])];
}

/**
 * What Kubernetes runs in a container of this image: `command` replaces ENTRYPOINT (and drops
 * CMD unless `args` is given), `args` replaces CMD.
 */
export function containerProcess(config: ImageConfig, command?: string[], args?: string[]): string[] {
  if (command) return [...command, ...(args ?? [])];
  return [...(config.entrypoint ?? []), ...(args ?? config.cmd ?? [])];
}

/** A reference `<name>:<tag>@sha256:<digest>`, split; throws for anything else. */
export function parseImageRef(ref: string): { name: string; tag?: string; digest?: string } {
  const [nameAndTag, digest, ...rest] = ref.split("@");
  const colon = nameAndTag!.lastIndexOf(":");
  const hasTag = colon > nameAndTag!.lastIndexOf("/");
  const name = hasTag ? nameAndTag!.slice(0, colon) : nameAndTag!;
  const tag = hasTag ? nameAndTag!.slice(colon + 1) : undefined;
  if (rest.length > 0 || !/^[a-z0-9][a-z0-9._/:-]*$/.test(name) || (tag !== undefined && !/^\w[\w.-]{0,127}$/.test(tag))) {
    throw new Error(`not an image reference: ${ref}`);
  }
  if (digest !== undefined && !/^sha256:[a-f0-9]{64}$/.test(digest)) throw new Error(`not a sha256 digest in ${ref}`);
  return { name, tag, digest };
}

/**
 * Facts about the base images the Dockerfiles use that the Dockerfiles do not state (from the
 * images' own build definitions): where `node` is and which users exist. The tests use them to
 * check that `node` resolves through the image's PATH and that the numeric USER is the image's
 * unprivileged user. A new base image needs an entry here.
 */
export const BASE_IMAGE_FACTS: Record<string, { node: string; users: Record<string, number> }> = {
  // GoogleContainerTools/distroless nodejs/BUILD: entrypoint ["/nodejs/bin/node"]; base/ users: nonroot 65532.
  "gcr.io/distroless/nodejs24-debian12": { node: "/nodejs/bin/node", users: { root: 0, nonroot: 65532 } },
  // nodejs/docker-node 24/bookworm-slim: node in /usr/local/bin, user `node` 1000.
  node: { node: "/usr/local/bin/node", users: { root: 0, node: 1000 } },
};
