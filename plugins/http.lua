-- http: web requests and health checks, through the engine's HTTP client
-- (libcurl on the event loop; TLS verification on unless a step turns it
-- off, and the journal says so).

local common = {
  url = { type = "string", required = true, doc = "http:// or https:// URL" },
  headers = { type = "map", default = {}, doc = "request headers, name = value" },
  timeout = { type = "string", default = "30s", doc = "limit for the whole request" },
  verify_tls = { type = "boolean", default = true, doc = "check the server's certificate" },
  ca_file = { type = "string", doc = "extra CA bundle to trust" },
}
local function with(own)
  local t = {}
  for k, v in pairs(common) do t[k] = v end
  for k, v in pairs(own) do t[k] = v end
  return t
end

return {
  doc = "HTTP(S) requests (JSON in and out) and health checks for gates (verify = http.check {...}).",
  actions = {
    request = {
      doc = "Send one request. The step's result: status, body, and json when the answer is JSON. "
        .. "A transport error, or a status other than `expect` (default: any below 400), fails the step.",
      params = with({
        method = { type = "string", default = "GET", doc = "GET, POST, PUT, PATCH, DELETE, HEAD" },
        body = { type = "string", doc = "request body, as text" },
        json = { type = "table", doc = "request body as JSON (sets Content-Type)" },
        expect = { type = "number", doc = "the status that counts as success" },
      }),
      describe = function(p)
        return ("%s %s%s"):format(p.method, p.url, p.expect and (" expecting " .. p.expect) or "")
      end,
      run = function(ctx, p)
        local r = ctx.http { url = p.url, method = p.method, headers = p.headers, body = p.body,
                             json = p.json, timeout = p.timeout, verify_tls = p.verify_tls,
                             ca_file = p.ca_file, check = p.expect == nil }
        if p.expect and r.status ~= p.expect then
          error(("%s %s answered %s, expected %d"):format(p.method, p.url, tostring(r.status), p.expect), 0)
        end
        return { status = r.status, body = r.body, json = r.json }
      end,
    },
    check = {
      doc = "Health check: healthy when the URL answers with the expected status (and, if given, "
        .. "a body containing the text). Use as verify = http.check { ... } on a step.",
      params = with({
        expect = { type = "number", default = 200, doc = "the status a healthy service answers" },
        contains = { type = "string", doc = "text the body must contain" },
        timeout = { type = "string", default = "5s", doc = "limit for one check" },
      }),
      check = true,
      idempotent = true,
      describe = function(p)
        return ("GET %s expecting %d%s"):format(p.url, p.expect,
          p.contains and (" and \"" .. p.contains .. "\"") or "")
      end,
      run = function(ctx, p)
        local r = ctx.http { url = p.url, headers = p.headers, timeout = p.timeout,
                             verify_tls = p.verify_tls, ca_file = p.ca_file, check = false }
        if r.error then return false, ("%s: %s"):format(p.url, r.error) end
        if r.status ~= p.expect then
          return false, ("%s answered %d, expected %d"):format(p.url, r.status, p.expect)
        end
        if p.contains and not (r.body or ""):find(p.contains, 1, true) then
          return false, ("%s answered %d without %q"):format(p.url, r.status, p.contains)
        end
        return true
      end,
    },
  },
}
