/**
 * The gateway's Lua filter run in a real Lua VM (wasmoon: the reference interpreter, Lua 5.4; Envoy runs LuaJIT,
 * Lua 5.1: secure-cookies.ts keeps to that subset), against a stand-in
 * for Envoy's header map that keeps Envoy's rules: one pair per value in `pairs()`, lower-case names, and
 * no change while it is being iterated (Envoy raises an error then).
 */
import { spawnSync } from "node:child_process";
import { LuaFactory, type LuaEngine } from "wasmoon";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SECURE_COOKIES_LUA } from "./secure-cookies";

const FAKE_ENVOY = `
function fake_handle(names, values)
  local list, iterating = {}, false
  for i = 1, #names do list[i] = { names[i], values[i] } end
  local headers = {}
  setmetatable(headers, { __pairs = function()
    local i = 0
    iterating = true
    return function()
      i = i + 1
      if list[i] == nil then iterating = false; return nil end
      return list[i][1], list[i][2]
    end
  end })
  function headers:remove(name)
    if iterating then error("headers modified during iteration") end
    local kept = {}
    for _, e in ipairs(list) do if e[1] ~= name then kept[#kept + 1] = e end end
    list = kept
  end
  function headers:add(name, value)
    if iterating then error("headers modified during iteration") end
    list[#list + 1] = { name, value }
  end
  local handle = {}
  function handle:headers() return headers end
  return handle, function()
    local out = {}
    for _, e in ipairs(list) do out[#out + 1] = e[1] .. ": " .. e[2] end
    return table.concat(out, "\\n")
  end
end

function run(names, values)
  local handle, dump = fake_handle(names, values)
  envoy_on_response(handle)
  return dump()
end
`;

let lua: LuaEngine;
beforeAll(async () => {
  lua = await new LuaFactory().createEngine();
  await lua.doString(SECURE_COOKIES_LUA);
  await lua.doString(FAKE_ENVOY);
});
afterAll(() => lua?.global.close());

const respond = (headers: [string, string][]): string[] => {
  const run = lua.global.get("run") as (names: string[], values: string[]) => string;
  const out = run(
    headers.map(([n]) => n),
    headers.map(([, v]) => v),
  );
  return out === "" ? [] : out.split("\n");
};

describe("the gateway's secure-cookies Lua filter", () => {
  it("adds Secure to a cookie set without it (Argo CD's session token behind the gateway)", () => {
    expect(respond([["set-cookie", "argocd.token=eyJhbGciOi; path=/argocd; SameSite=lax; httpOnly"]])).toEqual([
      "set-cookie: argocd.token=eyJhbGciOi; path=/argocd; SameSite=lax; httpOnly; Secure",
    ]);
  });

  it("leaves a cookie that has Secure already as it is, however it is spelt or spaced", () => {
    for (const cookie of ["grafana_session=abc; Path=/grafana; Secure; HttpOnly", "a=b;secure", "a=b; SECURE ;HttpOnly", "a=b;  Secure  "]) {
      expect(respond([["set-cookie", cookie]])).toEqual([`set-cookie: ${cookie}`]);
    }
  });

  it("is not fooled by 'secure' inside a value or another attribute", () => {
    expect(respond([["set-cookie", "mode=secure; Path=/secure"]])).toEqual(["set-cookie: mode=secure; Path=/secure; Secure"]);
  });

  it("handles every cookie of a response, in order, and keeps the other headers", () => {
    expect(
      respond([
        ["content-type", "text/html"],
        ["set-cookie", "a=1; Path=/"],
        ["cache-control", "no-store"],
        ["set-cookie", "b=2; Secure"],
        ["set-cookie", "c=3"],
      ]),
    ).toEqual(["content-type: text/html", "cache-control: no-store", "set-cookie: a=1; Path=/; Secure", "set-cookie: b=2; Secure", "set-cookie: c=3; Secure"]);
  });

  it("runs the same in LuaJIT, Envoy's runtime (Lua 5.1: a 5.2+ construct would not even load)", () => {
    // Envoy builds LuaJIT with its Lua 5.2 compatibility, under which pairs() honours __pairs; Debian's
    // luajit is built without it, so the stand-in gives pairs() that one 5.2 behaviour.
    const script = `
local raw_pairs = pairs
pairs = function(t)
  local mt = getmetatable(t)
  if mt and mt.__pairs then return mt.__pairs(t) end
  return raw_pairs(t)
end
${SECURE_COOKIES_LUA}
${FAKE_ENVOY}
io.write(run({ "set-cookie", "content-type", "set-cookie" }, { "argocd.token=x; path=/argocd; httpOnly", "text/html", "b=2; Secure" }))
`;
    const r = spawnSync("luajit", ["-"], { input: script, encoding: "utf8" });
    expect(r.error, "luajit (Debian package luajit, installed by .ci/run)").toBeUndefined();
    expect(r.stderr).toBe("");
    expect(r.stdout.split("\n")).toEqual(["content-type: text/html", "set-cookie: argocd.token=x; path=/argocd; httpOnly; Secure", "set-cookie: b=2; Secure"]);
  });

  it("changes nothing in a response without cookies", () => {
    expect(respond([["content-type", "application/json"], ["location", "https://example.test/"]])).toEqual([
      "content-type: application/json",
      "location: https://example.test/",
    ]);
    expect(respond([])).toEqual([]);
  });
});
