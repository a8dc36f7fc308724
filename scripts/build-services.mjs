// Builds each service for production: one ESM bundle per entry (dist/server.js, dist/migrate.js) with the
// kit inlined and third-party packages left to `npm ci --omit=dev` (so native ones such as Argon2 load
// their prebuilt binary), plus the SQL migrations in dist/migrations.
//   node scripts/build-services.mjs [service ...]     (all four when none is named)
import { build } from "esbuild";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
export const SERVICES = ["api-gateway", "auth-service", "user-service", "blog-service"];

/**
 * postgres.js 3.4.9 crashes the process when its connection closes with a small write still scheduled
 * (`nextWrite` on a null socket, thrown from a setImmediate: porsager/postgres#1154, #1208, unfixed
 * upstream), and a teardown that cancels that write leaves the connection unable to flush again. A
 * PostgreSQL restart triggers both (the resilience suite's postgres-restart scenario). So the driver is
 * bundled with the guard of porsager/postgres#1209: a write to a closed socket is dropped (the queries
 * waiting on it are rejected by the close), and a teardown forgets the cancelled write. The build fails if
 * the driver's code no longer matches (an upgrade must re-check this).
 *
 * Also: a connection closed while its query had an error pending (PostgreSQL's "terminating connection due
 * to administrator command" at a shutdown, or pg_terminate_backend) keeps that error, and the next
 * connection's handshake hands it to the first query waiting for it (porsager/postgres#1223, unfixed): a
 * write after the database is back was refused with the old error, never sent. The close forgets it.
 */
const POSTGRES_PATCHES = [
  ["function nextWrite(fn) {\n", "function nextWrite(fn) {\n    if (!socket) return (chunk = nextWriteTimer = null, false)\n"],
  ["  async function closed(hadError) {\n", "  async function closed(hadError) {\n    errorResponse = null\n"],
  ["    clearImmediate(nextWriteTimer)\n    if (socket) {", "    clearImmediate(nextWriteTimer)\n    chunk = nextWriteTimer = null\n    if (socket) {"],
  ["    clearImmediate(nextWriteTimer)\n    socket.removeListener", "    clearImmediate(nextWriteTimer)\n    chunk = nextWriteTimer = null\n    socket.removeListener"],
];
const postgresDir = join(root, "node_modules/postgres");

/** Bundle our own code (relative imports and @titanium/*) and the patched PostgreSQL driver; keep every other npm package external. */
const externalPackages = {
  name: "external-packages",
  setup(b) {
    b.onResolve({ filter: /^postgres$/ }, () => ({ path: join(postgresDir, "src/index.js") }));
    b.onLoad({ filter: /[\\/]postgres[\\/]src[\\/]connection\.js$/ }, (args) => {
      let code = readFileSync(args.path, "utf8");
      for (const [from, to] of POSTGRES_PATCHES) {
        if (!code.includes(from)) throw new Error(`postgres.js patch no longer applies (${JSON.stringify(from)}): re-check porsager/postgres#1209`);
        code = code.replace(from, to);
      }
      return { contents: code, loader: "js" };
    });
    b.onResolve({ filter: /^[^./]/ }, (args) =>
      args.path.startsWith("@titanium/") ? undefined : { path: args.path, external: true },
    );
  },
};

/**
 * Replace `file` with `contents` only if they differ, by writing a temporary file and renaming it over:
 * a process starting from dist/ at that moment (another test file's platform, `npm start` beside a test
 * run) reads the old file or the new one, never a missing or half-written one.
 */
const TMP_SUFFIX = ".partial";
function replaceIfChanged(file, contents) {
  if (existsSync(file) && readFileSync(file).equals(contents)) return;
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.${randomBytes(6).toString("hex")}${TMP_SUFFIX}`;
  writeFileSync(tmp, contents);
  renameSync(tmp, file);
}

const filesUnder = (dir) => (existsSync(dir) ? readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name)) : []);

/** Bundle the patched PostgreSQL driver alone into `outfile` (an ES module whose default export is `postgres`), as the services get it. */
export async function bundlePostgresDriver(outfile) {
  await build({
    stdin: { contents: 'export { default } from "postgres";', resolveDir: root, loader: "js" },
    outfile,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    logLevel: "warning",
    plugins: [externalPackages],
  });
  return outfile;
}

export async function buildService(name) {
  const dir = join(root, "services", name);
  const out = join(dir, "dist");
  const entryPoints = { server: join(dir, "src/server.ts") };
  if (existsSync(join(dir, "src/migrate.ts"))) entryPoints.migrate = join(dir, "src/migrate.ts");
  const result = await build({
    entryPoints,
    outdir: out,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    sourcemap: "linked",
    logLevel: "warning",
    plugins: [externalPackages],
    write: false,
  });
  const wanted = new Map(result.outputFiles.map((f) => [f.path, Buffer.from(f.contents)]));
  if (entryPoints.migrate) {
    const migrations = join(root, "services/kit/migrations");
    for (const file of filesUnder(migrations)) wanted.set(join(out, "migrations", relative(migrations, file)), readFileSync(file));
  }
  for (const [file, contents] of wanted) replaceIfChanged(file, contents);
  // What an earlier build left that this one no longer makes (another build's temporary files excepted).
  for (const file of filesUnder(out)) if (!wanted.has(file) && !file.endsWith(TMP_SUFFIX)) rmSync(file, { force: true });
  return out;
}

export async function buildAll(names = SERVICES) {
  const started = Date.now();
  await Promise.all(names.map(buildService));
  return Date.now() - started;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const names = process.argv.slice(2);
  const unknown = names.filter((n) => !SERVICES.includes(n));
  if (unknown.length) {
    console.error(`unknown service(s): ${unknown.join(", ")}; expected ${SERVICES.join(", ")}`);
    process.exit(2);
  }
  const ms = await buildAll(names.length ? names : SERVICES);
  console.log(`built ${(names.length ? names : SERVICES).join(", ")} in ${ms} ms`);
}
