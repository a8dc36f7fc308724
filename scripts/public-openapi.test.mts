import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { publicDocument, type OpenApiDocument } from "../services/api-gateway/src/public-openapi.js";
import { matchRoute } from "../services/api-gateway/src/routes.js";
import { buildPublicDocument, PUBLIC_OPENAPI_FILE, serialize } from "./public-openapi.mjs";

describe("the public API's OpenAPI document", () => {
  it("is what the services' schemas generate now (run `npm run openapi` after changing a route or schema)", async () => {
    expect(readFileSync(PUBLIC_OPENAPI_FILE, "utf8")).toBe(serialize(await buildPublicDocument()));
  });

  it("describes the original's public API under its public paths, each operation routed to the service that answers it", () => {
    const doc = JSON.parse(readFileSync(PUBLIC_OPENAPI_FILE, "utf8")) as OpenApiDocument;
    const operations = Object.entries(doc.paths).flatMap(([path, item]) => Object.entries(item).map(([method, op]) => ({ path, method, op })));
    for (const expected of ["post /api/login", "post /api/register", "get /api/users/{username}", "get /api/posts", "post /api/posts", "patch /api/posts/{id}", "delete /api/posts/{id}", "get /api/categories", "post /api/auth/refresh", "get /blog/api/posts"]) {
      expect(operations.map((o) => `${o.method} ${o.path}`)).toContain(expected);
    }
    for (const { path, method, op } of operations) {
      const route = matchRoute(method.toUpperCase(), path.replace(/\{[^}]+\}/g, "1"));
      expect(route, `${method} ${path}`).toBeDefined();
      expect((op as { tags: string[] }).tags, `${method} ${path}`).toEqual([`${route!.upstream}-service`]);
    }
    // Nothing the gateway never forwards: internal routes, probes, metrics, schemas.
    expect(Object.keys(doc.paths).filter((p) => /internal|healthz|readyz|metrics|openapi/.test(p))).toEqual([]);
    // Every reference resolves, and no schema is there for nothing.
    const text = JSON.stringify(doc);
    const refs = new Set([...text.matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)].map((m) => m[1]!));
    expect([...refs].filter((r) => !(r in (doc.components?.schemas ?? {})))).toEqual([]);
    expect(Object.keys(doc.components?.schemas ?? {}).filter((s) => !refs.has(s))).toEqual([]);
  });

  it("refuses two services' components of one name that differ, and leaves out what no public route reaches", () => {
    const doc = (paths: OpenApiDocument["paths"], schemas: Record<string, unknown>): OpenApiDocument => ({ openapi: "3.0.3", info: { title: "t", version: "1" }, paths, components: { schemas } });
    const ref = (name: string) => ({ post: { responses: { 200: { content: { "application/json": { schema: { $ref: `#/components/schemas/${name}` } } } } } } });
    const info = { title: "x", version: "1" };
    expect(() =>
      publicDocument({ auth: doc({ "/login": ref("Error") }, { Error: { type: "object" } }), user: doc({}, { Error: { type: "string" } }), blog: doc({}, {}) }, info),
    ).toThrow("components.schemas.Error differs between the services' documents");
    const merged = publicDocument(
      { auth: doc({ "/login": ref("Login") }, { Login: { type: "object" } }), user: doc({ "/internal/verify-credentials": ref("Credentials") }, { Credentials: { type: "object" } }), blog: doc({}, {}) },
      info,
    );
    expect(Object.keys(merged.paths)).toEqual(["/api/auth/login", "/api/login"]);
    expect(Object.keys(merged.components!.schemas!)).toEqual(["Login"]);
  });
});
