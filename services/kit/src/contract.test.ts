import { describe, expect, it } from "vitest";
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { contractChecked } from "./testing/index.js";

/** An app whose answers can disagree with its own document, to show the checker notices. */
function drifting() {
  const app = new OpenAPIHono();
  const Thing = z.object({ id: z.number().int(), note: z.string().nullable() }).openapi("Thing");
  app.openapi(
    createRoute({ method: "get", path: "/things/{id}", request: { params: z.object({ id: z.string() }) }, responses: { 200: { description: "a thing", content: { "application/json": { schema: Thing } } } } }),
    // Some ids answer what the document does not say: a string id, or a 201.
    (c) => {
      const id = c.req.valid("param").id;
      if (id === "created") return c.json({ id: 7, note: null }, 201 as 200);
      return c.json((id === "bad" ? { id: "seven", note: null } : { id: 7, note: null }) as never, 200);
    },
  );
  app.doc("/openapi.json", { openapi: "3.0.3", info: { title: "t", version: "1" } });
  return app;
}

describe("contractChecked", () => {
  it("passes answers that match their documented schema (nullable included) and counts them", async () => {
    const { app, report } = contractChecked(drifting());
    expect((await app.request("/things/1")).status).toBe(200);
    expect(report).toEqual({ checked: 1, violations: [] });
  });

  it("reports an answer that breaks its schema, and a success status the document does not list", async () => {
    const { app, report } = contractChecked(drifting());
    await app.request("/things/bad");
    await app.request("/openapi.json");
    expect(report.violations).toEqual([expect.stringMatching(/^GET \/things\/\{id\} 200: data\/id must be integer/)]);
    const undocumented = contractChecked(drifting());
    await undocumented.app.request("/things/created");
    expect(undocumented.report.violations).toEqual(["GET /things/{id} 201: status not documented"]);
  });
});
