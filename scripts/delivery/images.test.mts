/**
 * The service images, checked without a Docker engine:
 * - each Dockerfile follows the rules (image-rules.ts) and each rule catches its defect;
 * - each image runs what components/apps deploys (process, port, user, the migration Job's command);
 * - each image's production install is reproduced from a clean folder by executing the Dockerfile's
 *   own instructions (image-build.ts), and the service started from there, with the environment
 *   its Deployment gives it, answers /healthz and /readyz against a real PostgreSQL and Redis; the
 *   migration Job's command, run in its image, migrates that database.
 */
import { spawn } from "node:child_process";
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MIGRATION_COMMAND, MIGRATION_IMAGE_SERVICE } from "../../components/apps/apps.js";
import { containerValue, type EnvVar, SECRET_VALUES } from "../../components/apps/testing/container-env.js";
import { DATABASE_ROLES, REDIS_USERS, SERVICE_PORTS } from "../../components/apps/topology.js";
import { ENTRYPOINTS, RUNTIME_ENV } from "../../services/kit/src/contract.js";
import { freePort, startLocalRedis, type LocalRedis } from "../../services/kit/src/local/index.js";
import { REDIS_CLIENTS, REDIS_PASSWORD_ENV, redisAclLines } from "../../services/kit/src/redis-acl.js";
import { startTestPostgres, type TestPostgres } from "../../services/kit/src/testing/index.js";
import { loadConfig, SERVICE_NAMES, type ServiceName } from "../../stacks/config.js";
import { one, ofType, type ProgramRun, readStackConfig, type RecordedResource, configuredRun } from "../../stacks/harness.js";
import {
  BASE_IMAGE_FACTS,
  containerProcess,
  defaultProcess,
  type Dockerfile,
  dockerfilePath,
  finalStage,
  imageConfig,
  parseDockerfile,
  parseImageRef,
  readDockerfile,
} from "./dockerfile.js";
import { bytesUnder, contextFiles, filesUnder, linkRepositoryInstall, type ReproducedImage, reproduceImage } from "./image-build.js";
import { imageRuleProblems, isProductionInstall, workspaceClosure } from "./image-rules.js";
import { REPO_ROOT } from "./workflows.js";

type Obj = Record<string, any>; // oxlint-disable-line typescript/no-explicit-any -- recorded inputs are untyped JSON

const APP_SECRET = "titanium-app-secrets";
const dockerfiles = Object.fromEntries(SERVICE_NAMES.map((s) => [s, readDockerfile(s)])) as Record<ServiceName, Dockerfile>;
const runs: Record<string, ProgramRun> = {};
const podSpec = (r: RecordedResource): Obj => (r.inputs as Obj).spec.template.spec;
const deploymentOf = (run: ProgramRun, svc: ServiceName) => one(run, "kubernetes:apps/v1:Deployment", `apps-${svc}-deployment`);
const migrationJob = (run: ProgramRun) => one(run, "kubernetes:batch/v1:Job", "apps-migrations-job");

/** The pods' user and group, as components/apps sets them (one value for every service pod). */
function podUser(run: ProgramRun, svc: ServiceName): { uid: number; gid: number } {
  const sc = podSpec(deploymentOf(run, svc)).securityContext as Obj;
  return { uid: sc.runAsUser as number, gid: sc.runAsGroup as number };
}

/** What a service's image must be, from the program and the kit's runtime contract. */
function expectations(run: ProgramRun, svc: ServiceName) {
  return { service: svc, port: SERVICE_PORTS[svc], ...podUser(run, svc), process: ENTRYPOINTS.server(svc), env: RUNTIME_ENV };
}

beforeAll(async () => {
  runs.dev = await configuredRun("dev");
  runs.prod = await configuredRun("prod");
});

describe("Dockerfile rules", () => {
  it.each(SERVICE_NAMES)("%s: follows every rule", (svc) => {
    expect(imageRuleProblems(dockerfiles[svc], expectations(runs.dev!, svc))).toEqual([]);
  });

  // Each rule must catch the defect it exists for: mutate a real Dockerfile, expect the named problem.
  const svc: ServiceName = "user-service";
  const mutations: [string, (t: string) => string, RegExp][] = [
    ["a base image by tag only", (t) => t.replace(/@sha256:[a-f0-9]{64}/, ""), /not pinned by digest/],
    ["a latest base image", (t) => t.replace(/FROM (\S+) AS deps/, "FROM node:latest@sha256:" + "a".repeat(64) + " AS deps"), /latest tag/],
    ["a truncated digest", (t) => t.replace(/(@sha256:)[a-f0-9]{64}/, "$1abc123"), /not a sha256 digest/],
    ["an unknown base image", (t) => t.replace(/^FROM gcr\.io\/\S+/m, "FROM alpine:3.20@sha256:" + "b".repeat(64)), /unknown base image/],
    ["root", (t) => t.replace(/^USER .*$/m, "USER 0:0"), /final USER is root/],
    ["a user name", (t) => t.replace(/^USER .*$/m, "USER nonroot"), /must be numeric/],
    ["another uid than the pods'", (t) => t.replace(/^USER .*$/m, "USER 1000:1000"), /the pods run as/],
    ["a HEALTHCHECK", (t) => t.replace(/^USER /m, 'HEALTHCHECK CMD ["node", "-e", "0"]\nUSER '), /HEALTHCHECK/],
    ["a wrong EXPOSE", (t) => t.replace(/^EXPOSE \d+/m, "EXPOSE 3000"), /EXPOSE 3000, the service listens on/],
    ["a dev install in the deps stage", (t) => t.replace(/ --omit=dev/, ""), /exactly one stage running/],
    ["dependencies installed for the build platform", (t) => t.replace(/^FROM (\S+) AS deps/m, "FROM --platform=$$BUILDPLATFORM $1 AS deps"), /must match the target architecture/],
    ["node_modules from the build stage", (t) => t.replace("COPY --from=deps /app /app", "COPY --from=build /src/node_modules /app/node_modules"), /more than build output|exactly one stage/],
    ["a missing workspace manifest", (t) => t.replace(/^COPY services\/kit\/package\.json services\/kit\/\n/m, ""), /copies the manifests of/],
    ["a RUN in the final stage", (t) => t.replace(/^USER /m, "RUN mkdir -p data\nUSER "), /RUN in the final stage/],
    ["an inherited entrypoint", (t) => t.replace(/^ENTRYPOINT .*\n/m, ""), /must set ENTRYPOINT and CMD/],
    ["a process without the contract's node flags", (t) => t.replace(/^ENTRYPOINT .*$/m, 'ENTRYPOINT ["node"]'), /the runtime contract is/],
    ["flags in CMD", (t) => t.replace(/^ENTRYPOINT .*$/m, 'ENTRYPOINT ["node"]').replace(/^CMD .*$/m, 'CMD ["--max-semi-space-size=2", "--max-old-space-size=64", "--enable-source-maps", "dist/server.js"]'), /the script only/],
    ["a missing runtime variable", (t) => t.replace(/ +MALLOC_ARENA_MAX=2 \\\n/, ""), /ENV MALLOC_ARENA_MAX=\(unset\)/],
    ["a single stage", (t) => t.replace(/^[\s\S]*?(?=^FROM gcr)/m, ""), /not multi-stage/],
    ["a syntax error", (t) => t.replace("COPY --from=deps", "COPY --form=deps"), /^lint /],
  ];
  it.each(mutations)("catches %s", (_label, mutate, problem) => {
    const text = readFileSync(path.join(REPO_ROOT, dockerfilePath(svc)), "utf8");
    const mutated = mutate(text);
    expect(mutated).not.toBe(text);
    const problems = imageRuleProblems(parseDockerfile(mutated, "mutated"), expectations(runs.dev!, svc));
    expect(problems.join("\n")).toMatch(problem);
  });

  it("the build context is an allow-list: sources and manifests only, nothing local or secret", () => {
    const files = contextFiles(REPO_ROOT);
    for (const required of ["package.json", "package-lock.json", "scripts/build-services.mjs", "services/kit/migrations/0001_initial_schema.sql"]) {
      expect(files).toContain(required);
    }
    const stray = files.filter((f) => /(^|\/)(node_modules|dist|\.git)(\/|$)|\.test\.m?ts$|(^|\/)\.env|\.(pem|key)$/.test(f) || !/^(services\/|scripts\/build-services\.mjs$|package(-lock)?\.json$|tsconfig\.base\.json$)/.test(f));
    expect(stray).toEqual([]);
    // What the Deploy workflow treats as an image input covers the whole context.
    const inputs = readFileSync(path.join(REPO_ROOT, ".github/scripts/image-inputs.sh"), "utf8");
    const listed = /IMAGE_INPUTS=\(([^)]*)\)/.exec(inputs)![1]!.split(/\s+/).filter(Boolean);
    for (const f of files) expect(listed.some((p) => (p.endsWith("/") ? f.startsWith(p) : f === p)), f).toBe(true);
    expect(listed).toContain(".dockerignore");
    for (const svcName of SERVICE_NAMES) expect(listed.some((p) => dockerfilePath(svcName).startsWith(p)), svcName).toBe(true);
  });
});

describe.each(["dev", "prod"])("the images run what components/apps deploys (%s)", (stack) => {
  const run = () => runs[stack]!;

  it.each(SERVICE_NAMES)("%s: image name, process, port and user", (svc) => {
    const deployment = deploymentOf(run(), svc);
    const c = podSpec(deployment).containers[0] as Obj;
    // <registry>/<service>: what the images workflow pushes for services/<service>/Dockerfile.
    const registry = loadConfig(stack, readStackConfig(stack)).images.registry;
    expect(parseImageRef(c.image as string).name).toBe(`${registry}/${svc}`);
    expect(existsSync(path.join(REPO_ROOT, dockerfilePath(svc)))).toBe(true);

    const config = imageConfig(finalStage(dockerfiles[svc]));
    const process = containerProcess(config, c.command as string[] | undefined, c.args as string[] | undefined);
    expect(process).toEqual(defaultProcess(config));
    // What runs is the kit's runtime contract, with its environment.
    expect(process).toEqual(ENTRYPOINTS.server(svc));
    expect(config.env).toMatchObject(RUNTIME_ENV);
    expect((c.ports as Obj[]).map((p) => p.containerPort)).toEqual(config.exposed);
    const { uid, gid } = podUser(run(), svc);
    expect(config.user).toBe(`${uid}:${gid}`);
    // The root file system is read-only; /tmp is the only writable path the pod mounts.
    expect(c.securityContext.readOnlyRootFilesystem).toBe(true);
    expect((c.volumeMounts as Obj[]).map((m) => m.mountPath)).toEqual(["/tmp"]);
  });

  it("the migration Job runs its command in the image of the service that carries the migrations", () => {
    const job = migrationJob(run());
    const c = podSpec(job).containers[0] as Obj;
    expect(parseImageRef(c.image as string).name.split("/").pop()).toBe(MIGRATION_IMAGE_SERVICE);
    expect(c.command).toEqual(MIGRATION_COMMAND);
    // The same script as the kit's migration entry point.
    expect(MIGRATION_COMMAND.at(-1)).toBe(ENTRYPOINTS.migrate.at(-1));
    const config = imageConfig(finalStage(dockerfiles[MIGRATION_IMAGE_SERVICE]));
    // `node` resolves through the image's PATH to the base image's node.
    const base = BASE_IMAGE_FACTS[parseImageRef(finalStage(dockerfiles[MIGRATION_IMAGE_SERVICE]).image).name]!;
    const program = containerProcess(config, c.command as string[])[0]!;
    const resolved = program.startsWith("/") ? program : (config.env.PATH ?? "").split(":").map((d) => path.posix.join(d, program)).find((p) => p === base.node);
    expect(resolved).toBe(base.node);
    const sc = podSpec(job).securityContext as Obj;
    expect(config.user).toBe(`${sc.runAsUser}:${sc.runAsGroup}`);
  });
});

// ── Production installs from a clean folder ──

/** The container's environment: literals as they are, Secret keys resolved, cluster addresses replaced by the local ones. */
function containerEnv(env: EnvVar[], local: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of env) out[e.name] = containerValue(e, APP_SECRET);
  // The owner (the migrations) is the test database's superuser here; a service's own role stays as it is.
  const owner = !Object.values(DATABASE_ROLES).some((r) => r.role === out.PGUSER);
  for (const [k, v] of Object.entries(local)) if (k in out && (owner || (k !== "PGUSER" && k !== "PGPASSWORD"))) out[k] = v;
  return out;
}

/**
 * Runs a process of the image: argv[0] `node` is this machine's node, the working directory is the
 * image's WORKDIR, the environment only the image's and the container's. Absolute paths the image's
 * ENV names (WEB_ROOT) point into the image: they are mapped into the reproduced root.
 */
function startInImage(image: ReproducedImage, argv: string[], env: Record<string, string>) {
  expect(argv[0]).toBe("node");
  const { PATH: _imagePath, ...declared } = image.config.env;
  const imageEnv = Object.fromEntries(Object.entries(declared).map(([k, v]) => [k, v.startsWith("/") ? path.join(image.root, v) : v]));
  return spawn(process.execPath, argv.slice(1), {
    cwd: path.join(image.root, image.config.workdir),
    env: { ...imageEnv, ...env, PATH: process.env.PATH ?? "/usr/bin:/bin" },
    stdio: ["ignore", "pipe", "pipe"],
  });
}

/** Every file and folder under `root` with its size and modification time. */
function treeState(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, entry.name);
      const st = lstatSync(p);
      out.push(`${path.relative(root, p)} ${st.size} ${st.mtimeMs}`);
      if (entry.isDirectory()) walk(p);
    }
  };
  walk(root);
  return out.sort();
}

function exited(child: ReturnType<typeof spawn>): Promise<number | null> {
  return new Promise((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.once("exit", (code) => resolve(code))));
}

async function waitForOk(url: string, child: ReturnType<typeof spawn>, output: () => string): Promise<Response> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the service exited ${child.exitCode}:\n${output()}`);
    try {
      const res = await fetch(url);
      if (res.ok || Date.now() > deadline) return res;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`${url}: ${(err as Error).message}\n${output()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("each image's production install, reproduced from a clean folder, starts and serves", () => {
  let work: string;
  let pg: TestPostgres;
  let redis: LocalRedis;
  let local: Record<string, string>;
  const images = {} as Record<ServiceName, ReproducedImage>;
  const reproduceMs = {} as Record<ServiceName, number>;

  beforeAll(async () => {
    work = mkdtempSync(path.join(tmpdir(), "titanium-images-"));
    pg = await startTestPostgres({ migrate: false });
    mkdirSync(path.join(work, "redis"));
    // The cluster's users (redis-acl.ts), with the Secret's passwords: each service logs in as its own.
    const acl = redisAclLines(Object.fromEntries(REDIS_CLIENTS.map((c) => [c, SECRET_VALUES[REDIS_PASSWORD_ENV[c]]!])) as Parameters<typeof redisAclLines>[0]);
    redis = await startLocalRedis({ port: await freePort(), dir: path.join(work, "redis"), acl });
    const db = new URL(pg.url);
    local = {
      PGHOST: db.hostname,
      PGPORT: db.port,
      PGUSER: decodeURIComponent(db.username),
      PGPASSWORD: decodeURIComponent(db.password),
      PGDATABASE: db.pathname.slice(1),
      REDIS_HOST: "127.0.0.1",
      REDIS_PORT: String(redis.port),
    };
    // The four reproductions in parallel: npm's offline install waits on the disk as much as on the CPU.
    await Promise.all(
      SERVICE_NAMES.map(async (svc) => {
        const started = Date.now();
        images[svc] = await reproduceImage(dockerfiles[svc], {
          context: REPO_ROOT,
          workDir: path.join(work, svc),
          // The build stage's full install would download the whole tree (~470 MB): this checkout's
          // install (same lockfile) stands in for it. The production install runs verbatim, offline.
          substitute: (_stage, command, cwd) => {
            if (!/^npm ci\b/.test(command) || isProductionInstall(command, svc)) return false;
            linkRepositoryInstall(REPO_ROOT, cwd);
            return true;
          },
          runEnv: { npm_config_offline: "true", npm_config_update_notifier: "false" },
        });
        reproduceMs[svc] = Date.now() - started;
      }),
    );
  }, 240_000);

  afterAll(async () => {
    await redis?.stop();
    await pg?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it.each(SERVICE_NAMES)("%s: only the build stage's full install was substituted; the rest ran verbatim", (svc) => {
    const image = images[svc];
    expect(image.substituted).toHaveLength(1);
    const buildStage = dockerfiles[svc].stages.find((s) => s.name === image.substituted[0]!.stage)!;
    expect(buildStage.platform).toBe("$BUILDPLATFORM");
    expect(image.ran.filter((r) => isProductionInstall(r.command, svc))).toHaveLength(1);
  });

  it.each(SERVICE_NAMES)("%s: the image holds the entry point, production dependencies only, and no workspace links", (svc) => {
    const image = images[svc];
    const workdir = path.join(image.root, image.config.workdir);
    expect(existsSync(path.join(workdir, defaultProcess(image.config).at(-1)!))).toBe(true);
    const lock = JSON.parse(readFileSync(path.join(REPO_ROOT, "package-lock.json"), "utf8")) as { packages: Record<string, { dev?: boolean; devOptional?: boolean }> };
    const installed = JSON.parse(readFileSync(path.join(image.root, "app/node_modules/.package-lock.json"), "utf8")) as { packages: Record<string, unknown> };
    const names = Object.keys(installed.packages);
    expect(names.length).toBeGreaterThan(10);
    expect(names.filter((p) => lock.packages[p]?.dev === true)).toEqual([]);
    for (const tool of ["esbuild", "typescript", "vitest", "tsx", "@pulumi/pulumi"]) expect(existsSync(path.join(image.root, "app/node_modules", tool)), tool).toBe(false);
    expect(existsSync(path.join(image.root, "app/node_modules/@titanium"))).toBe(false);
    expect(existsSync(path.join(image.root, "app/package-lock.json"))).toBe(false);
    // The manifests the image carries are those of the service's workspaces (package.json "type" matters to node).
    expect(readdirSync(path.join(image.root, "app/services")).sort()).toEqual(workspaceClosure(svc));
  });

  it.each(SERVICE_NAMES)("%s: every native binary comes from a package npm picks per architecture; the bundles carry none", (svc) => {
    const image = images[svc];
    const elf = (file: string) => readFileSync(file).subarray(0, 4).equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]));
    const root = path.join(image.root, "app");
    const natives = filesUnder(root).filter((f) => !f.includes("/dist/") && elf(path.join(root, f)));
    for (const f of natives) {
      const pkgDir = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(f)![1]!;
      const pkg = JSON.parse(readFileSync(path.join(root, pkgDir, "package.json"), "utf8")) as { cpu?: string[]; os?: string[] };
      expect(pkg.cpu && pkg.os, `${f}: a native binary in a package without os/cpu`).toBeTruthy();
    }
    // What comes from the build stage (built on the build machine's platform) is JavaScript only.
    const built = filesUnder(root).filter((f) => f.includes("/dist/"));
    expect(built.length).toBeGreaterThan(0);
    expect(built.filter((f) => elf(path.join(root, f)))).toEqual([]);
  });

  it("the migration Job's command, in its image, with its Job's environment, migrates the database", async () => {
    const job = migrationJob(runs.dev!);
    const c = podSpec(job).containers[0] as Obj;
    const image = images[MIGRATION_IMAGE_SERVICE];
    const child = startInImage(image, containerProcess(image.config, c.command as string[]), containerEnv(c.env as EnvVar[], local));
    let output = "";
    child.stdout!.on("data", (b: Buffer) => (output += b.toString()));
    child.stderr!.on("data", (b: Buffer) => (output += b.toString()));
    expect(await exited(child), output).toBe(0);
    const applied = await pg.sql<{ version: number }[]>`select version from schema_migrations order by version`;
    const shipped = readdirSync(path.join(REPO_ROOT, "services/kit/migrations")).filter((f) => f.endsWith(".sql"));
    expect(applied.map((r) => r.version)).toHaveLength(shipped.length);
  });

  // After the migration test above (tests in a file run in order): the schema is in place.
  it.each(SERVICE_NAMES)("%s: started as its Deployment starts it, answers /healthz and /readyz, drains on SIGTERM, and writes nothing into the image", async (svc) => {
    const image = images[svc];
    const c = podSpec(deploymentOf(runs.dev!, svc)).containers[0] as Obj;
    const port = await freePort();
    // The pod's only writable place is its /tmp emptyDir (readOnlyRootFilesystem): here a scratch folder.
    const scratch = mkdtempSync(path.join(tmpdir(), `titanium-${svc}-tmp-`));
    const env = { ...containerEnv(c.env as EnvVar[], local), PORT: String(port), TMPDIR: scratch };
    const before = treeState(image.root);
    const child = startInImage(image, containerProcess(image.config, c.command as string[] | undefined, c.args as string[] | undefined), env);
    let output = "";
    child.stdout!.on("data", (b: Buffer) => (output += b.toString()));
    child.stderr!.on("data", (b: Buffer) => (output += b.toString()));
    try {
      const health = await waitForOk(`http://127.0.0.1:${port}${c.livenessProbe.httpGet.path}`, child, () => output);
      expect(health.status, output).toBe(200);
      const ready = await waitForOk(`http://127.0.0.1:${port}${c.readinessProbe.httpGet.path}`, child, () => output);
      expect(ready.status, output).toBe(200);
      // Logged in to Redis as its own user with the Deployment's REDIS_USERNAME and Secret key (the ACL the
      // cluster's Redis gets): ready, not degraded. The ready check can run before the first connection is up.
      if (svc in REDIS_USERS) {
        await expect
          .poll(async () => ((await (await fetch(`http://127.0.0.1:${port}${c.readinessProbe.httpGet.path}`)).json()) as { checks: Record<string, string> }).checks.redis, { timeout: 5000 })
          .toBe("ok");
      }
      if (svc === "user-service") {
        // A signup hashes with Argon2id in a worker that loads @node-rs/argon2's native binary from
        // the image's production install.
        const signup = await fetch(`http://127.0.0.1:${port}/users`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ username: "imagecheck", email: "imagecheck@example.com", password: "Str0ng!pass-image" }),
        });
        expect(signup.status, `${await signup.clone().text()}\n${output}`).toBe(201);
      }
      if (svc === "blog-service") {
        // WEB_ROOT points at the built UI inside the image: the real index, not the placeholder.
        const page = await fetch(`http://127.0.0.1:${port}/blog/`);
        const html = await page.text();
        expect(page.status).toBe(200);
        const manifest = JSON.parse(readFileSync(path.join(image.root, image.config.env.WEB_ROOT!, "manifest.json"), "utf8")) as { entry: { script: string } };
        expect(html).toContain(manifest.entry.script);
      }
    } finally {
      child.kill("SIGTERM");
    }
    expect(await exited(child), output).toBe(0);
    // Read-only-root friendly: the run created, changed or removed nothing in the image's file system.
    expect(treeState(image.root)).toEqual(before);
    rmSync(scratch, { recursive: true, force: true });
  });

  it("image sizes: the layers Titanium adds, as docs/images.md reports them", () => {
    const doc = readFileSync(path.join(REPO_ROOT, "docs/images.md"), "utf8");
    const measured = Object.fromEntries(SERVICE_NAMES.map((svc) => [svc, bytesUnder(path.join(images[svc].root, "app")) / 1e6]));
    console.log(`image layers (uncompressed): ${SERVICE_NAMES.map((s) => `${s} ${measured[s]!.toFixed(1)} MB (${reproduceMs[s]} ms)`).join(", ")}`);
    for (const svc of SERVICE_NAMES) {
      const row = new RegExp(`^\\| \`${svc}\` \\| ([\\d.]+) MB`, "m").exec(doc);
      expect(row, `docs/images.md has a row for ${svc}`).not.toBeNull();
      // The documented figure stays within 20% of what the image really adds.
      const mb = measured[svc]!;
      expect(Math.abs(Number(row![1]) - mb) / mb, `${svc}: documented ${row![1]} MB, measured ${mb.toFixed(1)} MB`).toBeLessThan(0.2);
    }
  });
});

it("every service has exactly one Dockerfile and nothing else builds images", () => {
  const dirs = readdirSync(path.join(REPO_ROOT, "services")).filter((d) => existsSync(path.join(REPO_ROOT, "services", d, "Dockerfile")));
  expect(dirs.sort()).toEqual([...SERVICE_NAMES].sort());
  expect(ofType(runs.dev!, "kubernetes:apps/v1:Deployment").length).toBeGreaterThanOrEqual(SERVICE_NAMES.length);
});
