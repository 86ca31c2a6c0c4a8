-- tcp: is a port open? A health check for gates: verify = tcp.check {...}.

-- host = wins over the step's item (a host table's host, or a name).
local function host_of(p, item)
  return p.host or (type(item) == "table" and item.host) or item
end

return {
  doc = "TCP connect checks: healthy when a connection to host:port opens in time.",
  actions = {
    check = {
      doc = "Open a TCP connection to host:port and close it. Healthy when it opens within the timeout "
        .. "(default host: the step's item, a host table's host or a host name).",
      params = {
        host = { type = "string", doc = "host name or address (default: the step's item)" },
        port = { type = "number", required = true, doc = "port to connect to" },
        timeout = { type = "string", default = "5s", doc = "how long to wait for the connection" },
        expect = { type = "string", default = "open", doc = "\"open\", or \"closed\" to check that nothing listens" },
      },
      check = true,
      idempotent = true,
      validate = function(p)
        if p.expect ~= "open" and p.expect ~= "closed" then return "expect is \"open\" or \"closed\"" end
        if p.port < 1 or p.port > 65535 or p.port % 1 ~= 0 then return "port must be 1-65535" end
      end,
      describe = function(p, item)
        local h = host_of(p, item) or "each host"
        return ("connect to %s:%d, expecting it %s"):format(tostring(h), p.port, p.expect)
      end,
      run = function(ctx, p, item)
        local h = host_of(p, item)
        if type(h) ~= "string" then error("tcp.check: give host = or fan out over hosts", 0) end
        local r = ctx.connect { host = h, port = p.port, timeout = p.timeout, check = false }
        local open = r.ok
        if (p.expect == "open") == open then return true end
        return false, ("%s:%d is %s"):format(h, p.port, open and "open" or ("closed (" .. tostring(r.error) .. ")"))
      end,
    },
  },
}
