import { describe, expect, it } from "vitest";
import { requestHeader, requestIdFrom } from "./request-id.js";

describe("request headers and ids", () => {
  it("reads Node's own headers when the request came through the Node adapter, else the web request's", () => {
    const fromWeb = (name: string) => (name === "origin" ? "https://web.example" : undefined);
    const node = { env: { incoming: { headers: { origin: "https://node.example", "x-forwarded-for": ["1.1.1.1", "2.2.2.2"] } } }, req: { header: fromWeb } };
    expect(requestHeader(node, "origin")).toBe("https://node.example");
    expect(requestHeader(node, "x-forwarded-for")).toBe("1.1.1.1, 2.2.2.2");
    expect(requestHeader(node, "authorization")).toBeUndefined();
    expect(requestHeader({ env: undefined, req: { header: fromWeb } }, "origin")).toBe("https://web.example");
  });

  it("keeps a well-formed request id and replaces anything else", () => {
    expect(requestIdFrom("abc-123.x:y")).toBe("abc-123.x:y");
    expect(requestIdFrom("bad id\n")).toMatch(/^[0-9a-f-]{36}$/);
    expect(requestIdFrom(undefined)).toMatch(/^[0-9a-f-]{36}$/);
  });
});
