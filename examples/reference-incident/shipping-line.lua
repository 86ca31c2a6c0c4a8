-- shipping-line.lua: the second half of the reference incident. The same week a container shipping line
-- suspends its e-booking sites to protect customers, keeps email and EDI
-- flowing, reconnects its back-office service centres one by one,
-- investigates a suspected data breach (how much, what kind) and keeps
-- customers updated.
--
-- Acts ONLY on local stand-ins under param.workdir:
--   hosts/NAME/state, hosts/NAME/service.log, hosts/NAME/firewall.rules
--   centres/NAME/state        connected | disconnected
--   breach/export.csv         the suspicious export found on a booking host
--   outbox/WHO.txt            customer and regulator messages (appended)
--
--   wd=$(mktemp -d)
--   build/bulkhead run examples/reference-incident/shipping-line.lua -p workdir=$wd
--   build/bulkhead show last && build/bulkhead verify last
--   build/bulkhead drill examples/reference-incident/shipping-line.lua -p workdir=$wd \
--     --slow reconnect-centres=3 --seed 7          # rehearse it: nothing is executed

runbook {
  id = "shipping-line",
  title = "Shipping line: suspend e-booking, keep mail+EDI, reconnect centres, assess breach",
  severity = "high",
  owner = "ir-team",
  description = "Suspend e-booking sites, keep email and EDI flowing, reconnect back-office "
    .. "service centres one at a time with a check after each, size a suspected data breach "
    .. "and send customer updates. Local stand-ins only.",
  timeout = "30m",   -- sized for a real incident; `estimate` is each step's usual time
  kill_grace = "2s",
  params = {
    workdir = { type = "string", required = true,
                doc = "folder holding the stand-ins (use a temporary folder, e.g. mktemp -d)" },
    setup = { type = "boolean", default = true,
              doc = "create fresh stand-ins (hosts, centres, export file) under workdir first" },
    incident = { type = "string", default = "IR-SHIP-001", doc = "incident reference used in messages" },
    booking_sites = { type = "list", default = { "ebooking-eu", "ebooking-asia", "ebooking-am" },
                      doc = "customer e-booking sites to suspend" },
    keep_running = { type = "list", default = { "mail", "edi" }, doc = "systems that must keep flowing" },
    keep_ports = { type = "map", default = { mail = "smtp,submission,imaps", edi = "as2,sftp" },
                   doc = "ports still allowed on each keep_running host (comma-separated)" },
    centres = { type = "list", default = { "centre-manila", "centre-gdansk", "centre-chennai", "centre-montevideo" },
                doc = "back-office service centres, reconnected in this order" },
    record_kinds = { type = "list", default = { "customer", "booking", "payment", "passport" },
                     doc = "record kinds to count in the suspicious export" },
    settle = { type = "number", default = 0.2, doc = "seconds a centre gets to settle before its check" },
    audiences = { type = "list", default = { "customers", "regulator" },
                  doc = "who receives updates (one outbox file each)" },
  },
}

local W = param.workdir
local function host(name, file) return W .. "/hosts/" .. name .. (file and ("/" .. file) or "") end
local function centre(name, file) return W .. "/centres/" .. name .. (file and ("/" .. file) or "") end
local function now() return os.date("!%Y-%m-%dT%H:%M:%SZ") end

-- In a dry run or drill nothing is executed (ctx.mode ~= "real"): what the
-- steps would have written is kept here and read back, so that the
-- runbook's own checks still run against something.
local written = {}
local function put(ctx, path, text)
  if ctx.mode ~= "real" then written[path] = text end
  ctx.exec { "tee", path, stdin = text }
end
local function append(ctx, path, text) ctx.exec { "tee", "-a", path, stdin = text } end
local function read_state(ctx, path)
  if ctx.mode ~= "real" then return ((written[path] or ""):gsub("%s+$", "")) end
  return (ctx.exec { "cat", path }.stdout:gsub("%s+$", ""))
end
local function expect(ctx, path, want, what)   -- health check: fail unless the state file says `want`
  local got = read_state(ctx, path)
  if got ~= want then error(("%s is %q, expected %q"):format(what, got, want)) end
  return got
end
local function notify(ctx, who, subject, body)
  append(ctx, W .. "/outbox/" .. who .. ".txt",
    ("[%s] %s  %s\n%s\n\n"):format(now(), param.incident, subject, body))
end

------------------------------------------------------------------------------
phase "prepare"

step "create-standins" {
  doc = "If setup is true: create hosts (running), centres (disconnected) and a suspicious export file",
  timeout = "10m", estimate = "1m",
  run = function(ctx)
    if not param.setup then
      ctx.exec { "test", "-d", W .. "/hosts" }
      ctx.log("setup=false: using existing stand-ins in " .. W)
      return { created = 0 }
    end
    ctx.exec { "mkdir", "-p", W .. "/hosts", W .. "/centres", W .. "/breach", W .. "/outbox" }
    local n = 0
    for _, l in ipairs { param.booking_sites, param.keep_running } do
      for _, h in ipairs(l) do
        ctx.exec { "mkdir", "-p", host(h) }
        put(ctx, host(h, "state"), "running\n")
        put(ctx, host(h, "firewall.rules"), "allow all\n")
        put(ctx, host(h, "service.log"), "2026-11-21T01:00:00Z " .. h .. " started\n")
        n = n + 1
      end
    end
    for _, c in ipairs(param.centres) do
      ctx.exec { "mkdir", "-p", centre(c) }
      put(ctx, centre(c, "state"), "disconnected\n")   -- cut off when the intrusion was found
      n = n + 1
    end
    -- A stand-in for the export the attacker staged: kind,id,... one record a line.
    local lines, kinds = { "kind,id,country" }, { "customer", "booking", "booking", "payment", "customer", "booking" }
    for i = 1, 240 do lines[#lines + 1] = ("%s,%06d,%s"):format(kinds[i % #kinds + 1], i, ({ "NL", "SG", "BR", "IN" })[i % 4 + 1]) end
    put(ctx, W .. "/breach/export.csv", table.concat(lines, "\n") .. "\n")
    ctx.log(("created %d stand-ins and breach/export.csv under %s"):format(n, W))
    return { created = n }
  end,
}

------------------------------------------------------------------------------
phase "contain"

step "suspend-ebooking" {
  doc = "Suspend the e-booking sites: state stopped, firewall denies everything",
  timeout = "20m", estimate = "5m",
  run = function(ctx)
    for _, h in ipairs(param.booking_sites) do
      put(ctx, host(h, "firewall.rules"), "deny all\n")
      put(ctx, host(h, "state"), "stopped\n")
      append(ctx, host(h, "service.log"), now() .. " suspended to protect customers\n")
      expect(ctx, host(h, "state"), "stopped", h)
      ctx.log("suspended " .. h)
    end
    return param.booking_sites
  end,
  -- at the all-clear (`bulkhead undo RUN`): the sites come back
  undo = function(ctx, _, sites)
    for _, h in ipairs(sites or param.booking_sites) do
      put(ctx, host(h, "firewall.rules"), "allow all\n")
      put(ctx, host(h, "state"), "running\n")
      append(ctx, host(h, "service.log"), now() .. " reconnected at the all-clear\n")
      ctx.log("reconnected " .. h)
    end
  end,
}

step "keep-mail-and-edi" {
  doc = "Keep email and EDI flowing: restrict them to their ports and check they still run",
  timeout = "15m", estimate = "4m",
  run = function(ctx)
    local kept = {}
    for _, h in ipairs(param.keep_running) do
      local ports, rules = param.keep_ports[h] or "", {}
      for p in ports:gmatch("[^,%s]+") do rules[#rules + 1] = "allow " .. p end
      if #rules == 0 then rules[1] = "deny all" end
      put(ctx, host(h, "firewall.rules"), table.concat(rules, "\n") .. "\n")
      expect(ctx, host(h, "state"), "running", h)
      ctx.log(("%s keeps flowing on %s"):format(h, ports))
      kept[h] = ports
    end
    return kept
  end,
  undo = function(ctx)
    for _, h in ipairs(param.keep_running) do
      put(ctx, host(h, "firewall.rules"), "allow all\n")
      ctx.log(h .. ": port restrictions lifted")
    end
  end,
}

------------------------------------------------------------------------------
phase "investigate"

-- What a dry run or drill takes as the breach's size (nothing is counted).
local none_by_kind = {}
for _, k in ipairs(param.record_kinds) do none_by_kind[k] = 0 end

step "size-breach" {
  doc = "How much and what kind: count the records in the staged export, by kind",
  timeout = "1h", estimate = "30m",
  simulate = { result = { total = 0, by_kind = none_by_kind, export_sha256 = "simulated" } },
  run = function(ctx)
    local f = W .. "/breach/export.csv"
    local total = tonumber(ctx.exec { "wc", "-l", f }.stdout:match("%d+")) - 1   -- minus the header
    local by_kind = {}
    for _, k in ipairs(param.record_kinds) do
      -- grep -c exits 1 when it counts zero: that is an answer, not a failure.
      local r = ctx.exec { "grep", "-c", "^" .. k .. ",", f, check = false }
      if r.code > 1 then error("grep failed on " .. f .. ": " .. r.stderr) end
      by_kind[k] = tonumber(r.stdout:match("%d+")) or 0
      ctx.log(("%-10s %d records"):format(k, by_kind[k]))
    end
    local sha = ctx.exec { "sha256sum", f }.stdout:match("^(%x+)")
    ctx.log(("export holds %d records, sha256 %s"):format(total, sha))
    return { total = total, by_kind = by_kind, export_sha256 = sha }
  end,
}

------------------------------------------------------------------------------
phase "communicate"

step "customer-update" {
  doc = "Tell customers and the regulator what is suspended, what works and what the breach looks like",
  timeout = "30m", estimate = "10m",
  run = function(ctx)
    local b = ctx.results["size-breach"]
    local kinds = {}
    for _, k in ipairs(param.record_kinds) do
      if b.by_kind[k] > 0 then kinds[#kinds + 1] = ("%d %s"):format(b.by_kind[k], k) end
    end
    local body = ("E-booking is suspended to protect you; email and EDI keep working. "
      .. "We are investigating a possible data exposure of up to %d records (%s). "
      .. "Next update within 24 hours."):format(b.total, table.concat(kinds, ", "))
    for _, a in ipairs(param.audiences) do notify(ctx, a, "Service update 1", body) end
    ctx.log("update 1 sent to " .. table.concat(param.audiences, ", "))
    return body
  end,
}

------------------------------------------------------------------------------
phase "recover"

step "reconnect-centres" {
  doc = "Reconnect the back-office service centres one by one; check each before the next",
  timeout = "3h", estimate = "1h",
  run = function(ctx)
    local done = {}
    for i, c in ipairs(param.centres) do
      put(ctx, centre(c, "state"), "connected\n")
      ctx.sleep(param.settle)
      expect(ctx, centre(c, "state"), "connected", c)   -- stop here if this centre is not healthy
      done[#done + 1] = c
      ctx.log(("centre %d/%d %s reconnected and healthy"):format(i, #param.centres, c))
    end
    return done
  end,
}

step "customer-update-2" {
  doc = "Second update: which centres are back; e-booking stays suspended pending the investigation",
  timeout = "30m", estimate = "10m",
  run = function(ctx)
    local body = ("Back-office service centres reconnected: %s. E-booking stays suspended while the "
      .. "investigation continues (export fingerprint %s)."):format(
        table.concat(ctx.results["reconnect-centres"], ", "),
        ctx.results["size-breach"].export_sha256:sub(1, 16))
    for _, a in ipairs(param.audiences) do notify(ctx, a, "Service update 2", body) end
    return { sent_to = param.audiences }
  end,
}
