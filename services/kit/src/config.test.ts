import { describe, expect, it } from "vitest";
import { z } from "zod";
import { ConfigError, baseEnv, envVariables, loadEnv, postgresEnv, postgresUrl, redisEnv, redisUrl, withPostgres } from "./config.js";

const schema = z.object({ ...baseEnv, ...postgresEnv, ...redisEnv });

describe("environment", () => {
  it("applies defaults and builds the PostgreSQL URL from the libpq parts", () => {
    const env = loadEnv(schema, { PGHOST: "db", PGPASSWORD: "p@ss/word", ALLOWED_ORIGINS: "https://a.example, https://b.example" });
    expect(env.SHUTDOWN_GRACE_MS).toBe(10_000);
    expect(env.ALLOWED_ORIGINS).toEqual(["https://a.example", "https://b.example"]);
    const url = new URL(postgresUrl(env));
    expect(url.hostname).toBe("db");
    expect(url.port).toBe("5432");
    expect(url.pathname).toBe("/titanium");
    expect(decodeURIComponent(url.password)).toBe("p@ss/word");
    expect(redisUrl(env)).toBeUndefined();
  });

  it("takes only origins a browser could send in ALLOWED_ORIGINS, naming the variable otherwise", () => {
    expect(loadEnv(schema, { ALLOWED_ORIGINS: "http://localhost:5173,https://blog.example.com" }).ALLOWED_ORIGINS).toEqual(["http://localhost:5173", "https://blog.example.com"]);
    for (const bad of ["https://x.com/", "*", "blog.example.com", "https://x.com/path", "ftp://x.com"]) {
      expect(() => loadEnv(schema, { ALLOWED_ORIGINS: bad }), bad).toThrow(/ALLOWED_ORIGINS: expected comma-separated origins/);
    }
  });

  it("prefers DATABASE_URL and REDIS_URL, and builds Redis from host/port/password", () => {
    const env = loadEnv(schema, { DATABASE_URL: "postgres://u@h/db", REDIS_HOST: "r", REDIS_PASSWORD: "s3cret" });
    expect(postgresUrl(env)).toBe("postgres://u@h/db");
    expect(redisUrl(env)).toBe("redis://:s3cret@r:6379");
    // A service's own ACL user (redis-acl.ts): ioredis sends AUTH <user> <password>.
    const own = loadEnv(schema, { DATABASE_URL: "postgres://u@h/db", REDIS_HOST: "r", REDIS_USERNAME: "blog-service", REDIS_PASSWORD: "p@ss/word" });
    expect(redisUrl(own)).toBe("redis://blog-service:p%40ss%2Fword@r:6379");
  });

  it("names every bad or missing variable", () => {
    expect(() => loadEnv(schema, { PORT: "http", DATABASE_URL: "mysql://x" })).toThrow(ConfigError);
    try {
      loadEnv(schema, { PORT: "http", DATABASE_URL: "mysql://x" });
    } catch (err) {
      const msg = (err as Error).message;
      expect(msg).toContain("PORT");
      expect(msg).toContain("DATABASE_URL");
    }
    const env = loadEnv(schema, {});
    expect(() => postgresUrl(env)).toThrow(/DATABASE_URL/);
  });

  it("counts neither DATABASE_URL nor PGHOST as a bad variable when the process needs PostgreSQL, named with the others", () => {
    const needsPostgres = withPostgres({ ...baseEnv, ...redisEnv });
    expect(Object.keys(needsPostgres.shape).sort()).toEqual(Object.keys(schema.shape).sort());
    expect(() => loadEnv(needsPostgres, {})).toThrow("invalid environment: DATABASE_URL: set DATABASE_URL or PGHOST");
    expect(() => loadEnv(needsPostgres, { DATABASE_URL: "", PGHOST: "" })).toThrow(/PGHOST/);
    expect(() => loadEnv(needsPostgres, { PORT: "http" })).toThrow(/PORT: .*; DATABASE_URL: set DATABASE_URL or PGHOST/);
    expect(loadEnv(needsPostgres, { PGHOST: "db" }).PGHOST).toBe("db");
    expect(loadEnv(needsPostgres, { DATABASE_URL: "postgres://u@h/db" }).DATABASE_URL).toBe("postgres://u@h/db");
    // A DATABASE_URL that is there but wrong is named for what it is, once.
    expect(() => loadEnv(needsPostgres, { DATABASE_URL: "mysql://x" })).toThrow(/^invalid environment: DATABASE_URL: expected a URL[^;]*$/);
  });

  it("lists the variables a schema reads", () => {
    expect(envVariables(schema)).toContain("PGPASSWORD");
    expect(envVariables(schema)).toContain("SHUTDOWN_GRACE_MS");
  });
});

describe("shutdown grace", () => {
  it("defaults to the contract's drain grace (the pods' timing is derived in components/apps/mesh.ts shutdownTiming)", async () => {
    const { DEFAULT_SHUTDOWN_GRACE_MS } = await import("./contract.js");
    expect(loadEnv(schema, {}).SHUTDOWN_GRACE_MS).toBe(DEFAULT_SHUTDOWN_GRACE_MS);
    expect(loadEnv(schema, { SHUTDOWN_GRACE_MS: "2500" }).SHUTDOWN_GRACE_MS).toBe(2500);
  });
});
