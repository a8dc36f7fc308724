/**
 * The rules every service Dockerfile must follow, as a function returning the problems it finds,
 * so the tests can show both that the real Dockerfiles pass and that each rule catches the defect
 * it exists for (a mutated Dockerfile). What the rules compare against (the service's port, the
 * pods' user) comes from the program, never from here.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { BASE_IMAGE_FACTS, type Dockerfile, finalStage, imageConfig, type Instruction, parseImageRef, type Stage } from "./dockerfile";
import { REPO_ROOT } from "./workflows";

export interface ImageExpectations {
  /** The service (`services/<service>/`, the npm workspace the image installs). */
  service: string;
  /** The HTTP port the service listens on (and the Deployment's containerPort). */
  port: number;
  /** The pods' `runAsUser` / `runAsGroup`. */
  uid: number;
  gid: number;
  /** The process the service runs as (the kit's `ENTRYPOINTS.server`): ENTRYPOINT + CMD. */
  process: readonly string[];
  /** Environment every service container gets (the kit's `RUNTIME_ENV`). */
  env: Readonly<Record<string, string>>;
}

/** The production install: `npm ci --omit=dev ... --workspace services/<svc>`. */
export function isProductionInstall(command: string, service: string): boolean {
  return /^npm ci\b/.test(command) && /\s--omit=dev\b/.test(command) && new RegExp(`\\s--workspace[= ]services/${service}(\\s|$)`).test(command);
}

/** Installs packages in any way (npm/yarn/pnpm install or ci, apt). */
function installs(command: string): boolean {
  return /\b(npm|pnpm|yarn)\s+(ci|install|i|add)\b|\bapt(-get)?\s+install\b/.test(command);
}

function stageOf(d: Dockerfile, name: string | undefined): Stage | undefined {
  return d.stages.find((s) => s.name === name) ?? (name !== undefined && /^\d+$/.test(name) ? d.stages[Number(name)] : undefined);
}

/** `@titanium/*` workspaces a service depends on at run time, transitively, itself included. */
export function workspaceClosure(service: string): string[] {
  const manifest = (ws: string) =>
    JSON.parse(readFileSync(path.join(REPO_ROOT, "services", ws, "package.json"), "utf8")) as { dependencies?: Record<string, string> };
  const seen = new Set<string>();
  const visit = (ws: string) => {
    if (seen.has(ws)) return;
    seen.add(ws);
    for (const dep of Object.keys(manifest(ws).dependencies ?? {})) {
      if (dep.startsWith("@titanium/")) visit(dep.slice("@titanium/".length));
    }
  };
  visit(service);
  return [...seen].sort();
}

export function imageRuleProblems(d: Dockerfile, expect: ImageExpectations): string[] {
  const problems: string[] = [...d.problems.map((p) => `lint ${p}`)];
  const at = (ins: Instruction, msg: string) => problems.push(`line ${ins.line}: ${msg}`);

  for (const ins of d.preamble) if (ins.keyword !== "ARG") at(ins, `${ins.keyword} before the first FROM`);
  if (d.stages.length < 2) problems.push("not multi-stage: the runtime image must not contain the build tools");

  // Base images: a known image, by tag AND digest (Renovate updates digests it can tie to a tag).
  const stageNames = new Set(d.stages.map((s) => s.name).filter(Boolean));
  for (const stage of d.stages) {
    if (stageNames.has(stage.image)) continue;
    let ref: ReturnType<typeof parseImageRef>;
    try {
      ref = parseImageRef(stage.image);
    } catch (err) {
      problems.push(`FROM ${stage.image}: ${(err as Error).message}`);
      continue;
    }
    if (!ref.digest) problems.push(`FROM ${stage.image}: not pinned by digest (@sha256:...)`);
    if (!ref.tag) problems.push(`FROM ${stage.image}: no tag beside the digest (Renovate and readers need to know what it is)`);
    if (ref.tag === "latest" || /(^|[-.])latest($|[-.])/.test(ref.tag ?? "")) problems.push(`FROM ${stage.image}: uses a latest tag`);
    if (!BASE_IMAGE_FACTS[ref.name]) problems.push(`FROM ${stage.image}: unknown base image (add its facts to BASE_IMAGE_FACTS)`);
  }
  for (const stage of d.stages) {
    for (const ins of stage.instructions) {
      if (ins.keyword === "HEALTHCHECK") at(ins, "HEALTHCHECK: Kubernetes probes check health");
      if (ins.keyword === "ADD") at(ins, "ADD: use COPY (ADD fetches URLs and unpacks archives)");
    }
  }

  const last = finalStage(d);
  let config: ReturnType<typeof imageConfig>;
  try {
    config = imageConfig(last);
  } catch (err) {
    problems.push((err as Error).message);
    return problems;
  }

  // Non-root, numeric, the pods' user, and the base image's own unprivileged user.
  const user = /^(\d+)(?::(\d+))?$/.exec(config.user ?? "");
  if (!user) {
    problems.push(`final USER '${config.user ?? "(unset)"}' must be numeric uid:gid (Kubernetes runAsNonRoot cannot check names)`);
  } else {
    const [uid, gid] = [Number(user[1]), Number(user[2] ?? user[1])];
    if (uid === 0) problems.push("final USER is root");
    if (uid !== expect.uid || gid !== expect.gid) problems.push(`final USER ${uid}:${gid}, the pods run as ${expect.uid}:${expect.gid}`);
    const base = BASE_IMAGE_FACTS[parseImageRef(last.image).name];
    if (base && !Object.entries(base.users).some(([name, id]) => name !== "root" && id === uid)) {
      problems.push(`final USER ${uid} is not an unprivileged user of ${last.image}`);
    }
  }

  if (config.healthcheck) problems.push("final stage has a HEALTHCHECK");
  if (JSON.stringify(config.exposed) !== JSON.stringify([expect.port])) problems.push(`EXPOSE ${config.exposed.join(" ")}, the service listens on ${expect.port}`);
  if (!last.instructions.some((i) => i.keyword === "ENTRYPOINT") || !last.instructions.some((i) => i.keyword === "CMD")) {
    problems.push("the final stage must set ENTRYPOINT and CMD itself (the base image's are not part of the contract)");
  }
  if (config.env.NODE_ENV !== "production") problems.push("NODE_ENV is not production in the final stage");
  for (const [k, v] of Object.entries(expect.env)) if (config.env[k] !== v) problems.push(`ENV ${k}=${config.env[k] ?? "(unset)"}, the runtime contract says ${v}`);
  const process = [...(config.entrypoint ?? []), ...(config.cmd ?? [])];
  if (JSON.stringify(process) !== JSON.stringify(expect.process)) {
    problems.push(`ENTRYPOINT + CMD run ${JSON.stringify(process)}, the runtime contract is ${JSON.stringify(expect.process)}`);
  }
  // CMD is the script alone, so \`docker run <image> dist/migrate.js\` keeps the node flags.
  if (config.cmd && config.cmd.length !== 1) problems.push(`CMD ${JSON.stringify(config.cmd)}: the script only; node and its flags belong in ENTRYPOINT`);
  // Read-only root file system: nothing writes into the image at run time, and the final stage has
  // no shell to run anything with.
  for (const ins of last.instructions) if (ins.keyword === "RUN") at(ins, "RUN in the final stage (distroless: no shell; and nothing may change the runtime layer)");

  // Production-only install: node_modules come from a stage whose only install is `npm ci --omit=dev`
  // for this workspace, on the TARGET platform (native packages ship one binary per architecture).
  const copies = last.instructions.filter((i) => i.keyword === "COPY");
  const fromStages = new Set(copies.map((c) => c.flags.from).filter((f): f is string => f !== undefined));
  let productionStages = 0;
  for (const name of fromStages) {
    const stage = stageOf(d, name);
    if (!stage) {
      problems.push(`COPY --from=${name}: no such stage`);
      continue;
    }
    const runs = stage.instructions.filter((i) => i.keyword === "RUN");
    const production = runs.filter((r) => isProductionInstall(r.shell, expect.service));
    const otherInstalls = runs.filter((r) => installs(r.shell) && !isProductionInstall(r.shell, expect.service));
    const copiesFromIt = copies.filter((c) => c.flags.from === name).map((c) => c.args[0]!);
    if (production.length > 0) {
      productionStages++;
      if (otherInstalls.length > 0) problems.push(`stage ${name}: installs more than the production dependencies (${otherInstalls.map((r) => r.shell).join("; ")})`);
      if (stage.platform) problems.push(`stage ${name}: production dependencies on --platform=${stage.platform}; they must match the target architecture`);
      // It must copy exactly the manifests of the workspaces the service runs with.
      const manifests = stage.instructions
        .filter((i) => i.keyword === "COPY" && i.flags.from === undefined)
        .flatMap((i) => i.args.slice(0, -1))
        .filter((src) => /^services\/[^/]+\/package\.json$/.test(src))
        .map((src) => src.split("/")[1]!)
        .sort();
      const closure = workspaceClosure(expect.service);
      if (JSON.stringify(manifests) !== JSON.stringify(closure)) {
        problems.push(`stage ${name}: copies the manifests of [${manifests.join(", ")}], the service runs with [${closure.join(", ")}]`);
      }
    } else {
      // A stage with the dev install (the build) may only hand over its build output.
      const notBuildOutput = copiesFromIt.filter((src) => !/\/dist\/?$/.test(src));
      if (otherInstalls.length > 0 && notBuildOutput.length > 0) {
        problems.push(`COPY --from=${name} ${notBuildOutput.join(" ")}: the runtime image takes more than build output (dist/) from a stage with development dependencies`);
      }
    }
  }
  if (productionStages !== 1) problems.push(`node_modules must come from exactly one stage running \`npm ci --omit=dev --workspace services/${expect.service}\` (found ${productionStages})`);

  return problems;
}
