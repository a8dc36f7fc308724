import { describe, expect, it } from "vitest";
import { ConfigError, SERVICE_BODY_LIMIT_BYTES, loadEnv } from "@titanium/kit";
import { urlList } from "@titanium/kit";
import { DEFAULT_BODY_BUDGET_BYTES, envSchema } from "./config.js";

describe("api-gateway environment", () => {
  it("parses trusted proxy CIDRs and bare addresses, and defaults the upstreams to the in-cluster names", () => {
    const env = loadEnv(envSchema, { TRUSTED_PROXY_CIDRS: "127.0.0.0/8, 10.42.0.0/16, ::1" });
    expect(env.TRUSTED_PROXY_CIDRS).toEqual([
      { address: "127.0.0.0", prefix: 8, family: "ipv4" },
      { address: "10.42.0.0", prefix: 16, family: "ipv4" },
      { address: "::1", prefix: 128, family: "ipv6" },
    ]);
    expect(env.AUTH_SERVICE_URL).toBe("http://auth-service:8002");
    expect(env.AUTH_JWKS_URL).toBe("http://auth-service:8002/.well-known/jwks.json");
    expect(env.RATE_LIMIT_SCALE).toBe(1);
  });

  it("names the variable of a bad CIDR or URL", () => {
    expect(() => loadEnv(envSchema, { TRUSTED_PROXY_CIDRS: "10.0.0.0/33" })).toThrow(/TRUSTED_PROXY_CIDRS/);
    expect(() => loadEnv(envSchema, { TRUSTED_PROXY_CIDRS: "everyone" })).toThrow(ConfigError);
    expect(() => loadEnv(envSchema, { BLOG_SERVICE_URL: "blog:8005" })).toThrow(/BLOG_SERVICE_URL/);
    expect(() => loadEnv(envSchema, { BLOG_SERVICE_URL: "http://a:1, ftp://b:2" })).toThrow(/BLOG_SERVICE_URL/);
    expect(() => loadEnv(envSchema, { MAX_IN_FLIGHT: "0" })).toThrow(/MAX_IN_FLIGHT/);
    expect(() => loadEnv(envSchema, { MAX_IN_FLIGHT_PER_CLIENT: "0" })).toThrow(/MAX_IN_FLIGHT_PER_CLIENT/);
  });

  it("takes an upstream as one URL or a comma-separated list of instances", () => {
    const env = loadEnv(envSchema, { BLOG_SERVICE_URL: "http://127.0.0.1:9001, http://127.0.0.1:9002" });
    expect(urlList(env.BLOG_SERVICE_URL)).toEqual(["http://127.0.0.1:9001", "http://127.0.0.1:9002"]);
    expect(urlList(env.USER_SERVICE_URL)).toEqual(["http://user-service:8001"]);
    expect(env.MAX_IN_FLIGHT).toBe(256);
    expect(env.MAX_IN_FLIGHT_PER_CLIENT).toBe(32);
  });

  it("limits bodies to the services' own limit by default, may lower it but not raise it, and keeps the budget at least one body", () => {
    const env = loadEnv(envSchema, {});
    expect(env.BODY_LIMIT_BYTES).toBe(SERVICE_BODY_LIMIT_BYTES);
    expect(env.BODY_BUDGET_BYTES).toBe(DEFAULT_BODY_BUDGET_BYTES);
    expect(loadEnv(envSchema, { BODY_LIMIT_BYTES: "65536" }).BODY_LIMIT_BYTES).toBe(65536);
    // A larger body would be read and held here only for the service behind to refuse it.
    expect(() => loadEnv(envSchema, { BODY_LIMIT_BYTES: String(SERVICE_BODY_LIMIT_BYTES + 1) })).toThrow(/BODY_LIMIT_BYTES: at most 262144/);
    expect(() => loadEnv(envSchema, { BODY_LIMIT_BYTES: "1048576" })).toThrow(ConfigError);
    expect(() => loadEnv(envSchema, { BODY_BUDGET_BYTES: "100000" })).toThrow(/BODY_BUDGET_BYTES: at least BODY_LIMIT_BYTES/);
    expect(loadEnv(envSchema, { BODY_BUDGET_BYTES: "100000", BODY_LIMIT_BYTES: "65536" }).BODY_BUDGET_BYTES).toBe(100000);
  });
});
