/**
 * The ingress gateway's Lua filter (Envoy's `envoy.filters.http.lua`): every cookie a response sets gets
 * the `Secure` attribute. Argo CD sets its session token cookie without it whenever its server runs plain
 * HTTP (`server.insecure`, as it must behind a TLS-terminating gateway); the gateway also listens on port
 * 80 (only to redirect), and a browser sends a cookie without `Secure` on a plain `http://` request there,
 * before the redirect, to anyone on the path. HSTS does not help: browsers ignore it for an IP address,
 * which is the ingress URL without a hostname. The gateway answers plain HTTP with redirects only, so every
 * cookie it passes on was set over HTTPS.
 *
 * Envoy's header map (its Lua filter documentation, "Header object API"): `pairs()` yields every header
 * (names lower case, one pair per value) and must run to its end (no `break`) before the map is modified;
 * `remove(name)` drops every value, `add(name, value)` appends one. secure-cookies.test.ts runs it against
 * a stand-in map that enforces those rules, in Lua 5.4 (wasmoon) and in LuaJIT, Envoy's runtime (Lua 5.1
 * with a few 5.2 features): keep to Lua 5.1 (no `//`, bitwise operators or `utf8`).
 */
export const SECURE_COOKIES_LUA = `
local function secured(cookie)
  for attribute in string.gmatch(cookie, ";([^;]*)") do
    if string.lower((string.gsub(attribute, "^%s*(.-)%s*$", "%1"))) == "secure" then
      return cookie
    end
  end
  return cookie .. "; Secure"
end

function envoy_on_response(response_handle)
  local headers = response_handle:headers()
  local cookies = {}
  for name, value in pairs(headers) do
    if name == "set-cookie" then
      cookies[#cookies + 1] = value
    end
  end
  if #cookies == 0 then
    return
  end
  headers:remove("set-cookie")
  for _, cookie in ipairs(cookies) do
    headers:add("set-cookie", secured(cookie))
  end
end
`;
