/**
 * The api-gateway's and the auth-service's calls, as the AuthorizationPolicies narrow them, against the
 * services' own code: every upstream path a public route maps to is allowed, nothing else is.
 */
import { describe, expect, it } from "vitest";
import { GATEWAY_ROUTES } from "../../services/api-gateway/src/routes.js";
import { CALLS, GATEWAY_UPSTREAM_PATHS, VERIFY_CREDENTIALS_PATH } from "./topology.js";

/** Istio's HTTP path match: exact, `prefix*`, `*suffix`, or `*` (any). */
const istioMatch = (pattern: string, path: string) =>
  pattern === "*" || (pattern.endsWith("*") ? path.startsWith(pattern.slice(0, -1)) : pattern.startsWith("*") ? path.endsWith(pattern.slice(1)) : path === pattern);
const allowed = (from: keyof typeof CALLS, to: string, path: string) =>
  CALLS[from].some((c) => c.to === to && (c.paths === undefined || c.paths.some((p) => istioMatch(p, path))));

/** Public paths exercising each route: the route itself and, for a prefix route, paths below it. */
const samples = ["", "/x", "/x/y", "/123"];

describe("the api-gateway's upstream paths", () => {
  it("allow every path a public route maps to, on the route's service", () => {
    const used = new Set<string>();
    for (const route of GATEWAY_ROUTES) {
      const to = `${route.upstream}-service` as keyof typeof GATEWAY_UPSTREAM_PATHS;
      for (const suffix of samples) {
        const upstreamPath = route.map(route.route === "/" ? "/" : `${route.route}${suffix}`);
        if (upstreamPath === undefined) continue;
        expect(allowed("api-gateway", to, upstreamPath), `${route.route}${suffix} → ${to} ${upstreamPath}`).toBe(true);
        for (const p of GATEWAY_UPSTREAM_PATHS[to]) if (istioMatch(p, upstreamPath)) used.add(`${to} ${p}`);
      }
    }
    // And nothing more: every allowed pattern serves some route.
    const declared = Object.entries(GATEWAY_UPSTREAM_PATHS).flatMap(([to, paths]) => paths.map((p) => `${to} ${p}`));
    expect(declared.filter((d) => !used.has(d))).toEqual([]);
  });

  it("never reach a service's internal, probe, metrics or schema endpoints", () => {
    for (const to of ["auth-service", "user-service", "blog-service"]) {
      for (const path of [VERIFY_CREDENTIALS_PATH, "/internal/anything", "/metrics", "/readyz", "/healthz", "/openapi.json"]) {
        expect(allowed("api-gateway", to, path), `${to} ${path}`).toBe(false);
      }
    }
  });

  it("leave the auth-service only the credential check on the user-service", () => {
    expect(CALLS["auth-service"].filter((c) => c.to === "user-service")).toEqual([{ to: "user-service", paths: [VERIFY_CREDENTIALS_PATH], methods: ["POST"] }]);
    expect(allowed("auth-service", "user-service", "/users/alice")).toBe(false);
  });
});
