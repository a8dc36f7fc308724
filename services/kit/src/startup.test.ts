import { spawn } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { buildService } from "../../../scripts/build-services.mjs";
import { postgresEnv } from "./config.js";
import { freePort } from "./local/index.js";

/**
 * What services/README.md promises for any bad or missing variable, checked on the production bundles as
 * a container runs them: the process stops at start-up with exit code 1 and one JSON line naming the
 * variable, nothing on stderr (no stack trace).
 */
const SERVICES_DIR = fileURLToPath(new URL("../../", import.meta.url));
const DATABASE_SERVICES = ["auth-service", "user-service", "blog-service"] as const;

/** The test's environment without any PostgreSQL setting (nor a port another process may hold). */
function withoutPostgres(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of [...Object.keys(postgresEnv), "PGSERVICE", "PORT"]) delete env[name];
  return { ...env, HOST: "127.0.0.1", ...extra };
}

async function run(entry: string, env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string[]; stderr: string }> {
  const child = spawn(process.execPath, [entry], { env, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  // A process that did not stop (it started listening instead) fails the test rather than hanging it.
  const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
  const code = await new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
  clearTimeout(timer);
  return { code, stdout: stdout.split("\n").filter(Boolean), stderr };
}

const JWT_PRIVATE_KEY = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ type: "pkcs8", format: "pem" }).toString();

beforeAll(async () => {
  await Promise.all(DATABASE_SERVICES.map((svc) => buildService(svc)));
}, 60_000);

describe("start-up without DATABASE_URL or PGHOST", () => {
  it.each(DATABASE_SERVICES)("%s: dist/server.js stops with one line naming DATABASE_URL and PGHOST, exit 1, no stack trace", async (svc) => {
    const extra = { PORT: String(await freePort()), ...(svc === "auth-service" && { JWT_PRIVATE_KEY }) };
    const { code, stdout, stderr } = await run(join(SERVICES_DIR, svc, "dist/server.js"), withoutPostgres(extra));
    expect(stderr).toBe("");
    expect(code).toBe(1);
    expect(stdout).toHaveLength(1);
    const line = JSON.parse(stdout[0]!) as { level: unknown; msg: string; issues: { variable: string; message: string }[] };
    expect(line.msg).toBe("invalid environment: DATABASE_URL: set DATABASE_URL or PGHOST");
    expect(line.issues).toEqual([{ variable: "DATABASE_URL", message: "set DATABASE_URL or PGHOST" }]);
    expect(line.level).toBe("fatal");
  });

  it("names it in the same line as the other bad variables (auth-service without its key, with a bad port)", async () => {
    const { code, stdout, stderr } = await run(join(SERVICES_DIR, "auth-service/dist/server.js"), withoutPostgres({ PORT: "http" }));
    expect([code, stderr, stdout.length]).toEqual([1, "", 1]);
    const { msg } = JSON.parse(stdout[0]!) as { msg: string };
    for (const variable of ["PORT", "JWT_PRIVATE_KEY", "DATABASE_URL"]) expect(msg).toContain(`${variable}:`);
    expect(msg).toContain("PGHOST");
  });

  it("the migration command (dist/migrate.js) stops the same way", async () => {
    const { code, stdout, stderr } = await run(join(SERVICES_DIR, "blog-service/dist/migrate.js"), withoutPostgres({}));
    expect([code, stderr, stdout.length]).toEqual([1, "", 1]);
    expect((JSON.parse(stdout[0]!) as { msg: string }).msg).toBe("invalid environment: DATABASE_URL: set DATABASE_URL or PGHOST");
  });
});
