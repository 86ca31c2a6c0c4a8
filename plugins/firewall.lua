-- firewall: isolate a Linux host with nftables, in a table of the engine's
-- own (it never touches the host's other rules), keeping what the runbook
-- lists reachable (management access, mail). release removes the table.
-- Both are idempotent: isolating twice replaces the rules, releasing a
-- host that is not isolated does nothing.
--
-- Runs nft locally, over ssh (host =, or the step's inventory item), or
-- behind a prefix (wrap = { "ip", "netns", "exec", "ns1" }); sudo = true
-- for a user that may run nft through sudo.

local ssh = require("ssh")

-- A service name's port and its protocol when none is given: "tcp",
-- "udp", or "both" (dns answers over both).
local SERVICES = { ssh = { 22, "tcp" }, smtp = { 25, "tcp" }, submission = { 587, "tcp" },
                   smtps = { 465, "tcp" }, imap = { 143, "tcp" }, imaps = { 993, "tcp" },
                   pop3s = { 995, "tcp" }, http = { 80, "tcp" }, https = { 443, "tcp" },
                   dns = { 53, "both" }, ntp = { 123, "udp" }, ldap = { 389, "tcp" },
                   ldaps = { 636, "tcp" }, rdp = { 3389, "tcp" }, syslog = { 514, "udp" } }

-- "smtp", 25, "25/udp", "dns/tcp" -> port, proto ("tcp", "udp", "both"),
-- or nil and why. A bare number is TCP.
local function port_of(x)
  local name, proto = tostring(x):match("^([%w%-]+)/?(%a*)$")
  if not name then return nil, "not a port: " .. tostring(x) end
  if proto ~= "" and proto ~= "tcp" and proto ~= "udp" then
    return nil, "protocol is tcp or udp: " .. tostring(x)
  end
  local port, default = tonumber(name), "tcp"
  if not port and SERVICES[name] then port, default = SERVICES[name][1], SERVICES[name][2] end
  if not port or port < 1 or port > 65535 or port % 1 ~= 0 then
    return nil, "unknown service or port: " .. tostring(x)
  end
  return port, proto ~= "" and proto or default
end

-- The table. Only what the runbook allows passes, each in its direction:
-- services of the host others may still reach (allow), services it may
-- still reach (allow_out), sources let in (allow_from), destinations let
-- out (allow_to). Connections already open are cut unless one of those
-- covers them: an attacker's reverse shell does not survive isolation
-- because it happened to be established first.
local function ports(list)
  local tcp, udp = {}, {}
  for _, x in ipairs(list) do
    local port, proto = port_of(x)
    if proto ~= "udp" then tcp[#tcp + 1] = port end
    if proto ~= "tcp" then udp[#udp + 1] = port end
  end
  return { tcp = tcp, udp = udp }
end

local function ruleset(p, owner)
  local inbound, outbound = ports(p.allow), ports(p.allow_out)
  local function split(list, into4, into6)
    for _, c in ipairs(list) do if c:find(":") then into6[#into6 + 1] = c else into4[#into4 + 1] = c end end
  end
  local from4, from6, to4, to6 = {}, {}, {}, {}
  split(p.allow_from, from4, from6)
  split(p.allow_to, to4, to6)
  local function set(list) return "{ " .. table.concat(list, ", ") .. " }" end
  local t = p.table
  local lines = {
    -- add then delete: the table is gone whether or not it was there, and
    -- made anew, in one transaction
    "add table inet " .. t,
    "delete table inet " .. t,
    "table inet " .. t .. " {",
  }
  local function add(l) lines[#lines + 1] = l end
  if owner then add('  comment "' .. owner .. '"') end
  -- new: the ports whose connections may start in this direction (dport);
  -- answer: those whose replies pass (sport, established only). there:
  -- the other end's address (saddr in, daddr out); open: addresses let
  -- through; reply: addresses only answered.
  local function chain(name, iface, there, new, answer, open4, open6, reply4, reply6)
    add("  chain " .. name .. " {")
    -- priority filter (0), after connection tracking (-200): at -200 the
    -- order against conntrack's own hook is not defined, and a table made
    -- anew could run before it and see no connection state at all
    add("    type filter hook " .. name .. " priority filter; policy drop;")
    add("    " .. iface .. " lo accept")
    add("    ct state invalid drop")
    -- IPv6 needs neighbour discovery to reach even the allowed addresses;
    -- errors about tracked connections come back as related
    add("    icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-advert } accept")
    add("    meta l4proto { icmp, ipv6-icmp } ct state related accept")
    -- An answer is a packet of a connection conntrack knows, in its reply
    -- direction. Nothing looser: a rule that passed any ACK segment from
    -- an allowed port, so that flows open before conntrack looked would
    -- survive, let a root process on the host send anywhere with raw
    -- packets. The engine's own session, which must survive, is pinned by
    -- its addresses and ports instead (nft() below). An allowed flow that
    -- was open before the isolation lives on when its peer speaks first
    -- (conntrack takes that packet as the connection's start); new ones
    -- always work.
    local answer_rule = "ct state established,related accept"
    for _, proto in ipairs { "tcp", "udp" } do
      if #new[proto] > 0 then add("    " .. proto .. " dport " .. set(new[proto]) .. " accept") end
      if #answer[proto] > 0 then add("    " .. proto .. " sport " .. set(answer[proto]) .. " " .. answer_rule) end
    end
    if #open4 > 0 then add("    ip " .. there .. " " .. set(open4) .. " accept") end
    if #open6 > 0 then add("    ip6 " .. there .. " " .. set(open6) .. " accept") end
    if #reply4 > 0 then add("    ip " .. there .. " " .. set(reply4) .. " " .. answer_rule) end
    if #reply6 > 0 then add("    ip6 " .. there .. " " .. set(reply6) .. " " .. answer_rule) end
    add("  }")
  end
  -- in: new connections to the host's allowed services, answers from the
  -- services it may reach; out: the reverse
  chain("input", "iif", "saddr", inbound, outbound, from4, from6, to4, to6)
  chain("output", "oif", "daddr", outbound, inbound, to4, to6, from4, from6)
  add("}")
  return table.concat(lines, "\n") .. "\n"
end

-- --- addresses -----------------------------------------------------------

-- "10.20.0.7" or "2001:db8::7" -> a list of bytes (4 or 16), or nil.
local function addr_bytes(a)
  a = tostring(a):gsub("%%.*$", ""):gsub("^::ffff:(%d+%.%d+%.%d+%.%d+)$", "%1")
  if a:find("^%d+%.%d+%.%d+%.%d+$") then
    local b = {}
    for n in a:gmatch("%d+") do
      -- "010" is 8 to the C library nft uses (octal), 10 to a person:
      -- neither is guessed
      if #n > 1 and n:sub(1, 1) == "0" then return nil end
      n = tonumber(n)
      if n > 255 then return nil end
      b[#b + 1] = n
    end
    return b
  end
  if not a:find("^[%x:]+$") or a:find(":::") then return nil end
  local head, tail = a:match("^(.-)::(.*)$")
  if head and tail:find("::", 1, true) then return nil end -- one "::" at most
  -- groups of 1 to 4 hex digits, one colon apart (nil: a stray colon)
  local function groups(str)
    local g = {}
    if str == "" then return g end
    for x in (str .. ":"):gmatch("([^:]*):") do
      if #x < 1 or #x > 4 then return nil end
      g[#g + 1] = tonumber(x, 16)
    end
    return g
  end
  local left, right = groups(head or a), groups(tail or "")
  if not left or not right then return nil end
  if not head and #left ~= 8 then return nil end
  if head and #left + #right > 7 then return nil end -- "::" stands for one group or more
  local all = {}
  for _, g in ipairs(left) do all[#all + 1] = g end
  for _ = 1, 8 - #left - #right do all[#all + 1] = 0 end
  for _, g in ipairs(right) do all[#all + 1] = g end
  local b = {}
  for _, g in ipairs(all) do
    if g > 0xffff then return nil end
    b[#b + 1], b[#b + 2] = g // 256, g % 256
  end
  return b
end

-- Does CIDR c ("10.20.0.0/24", "2001:db8::/32", "10.1.2.3") hold address a?
local function covers(c, a)
  local net, len = tostring(c):match("^([^/]+)/?(%d*)$")
  local nb, ab = addr_bytes(net or ""), addr_bytes(a)
  if not nb or not ab or #nb ~= #ab then return false end
  local bits = tonumber(len) or #nb * 8
  for i = 1, #nb do
    local take = math.min(8, math.max(0, bits - (i - 1) * 8))
    local mask = (0xff << (8 - take)) & 0xff
    if nb[i] & mask ~= ab[i] & mask then return false end
  end
  return true
end

-- Is c an address or a network nft takes: "10.20.0.7", "10.20.0.0/24",
-- "2001:db8::/32", the prefix within the address's length? Checked at
-- load, so that "10.20.0/24" or "10.0.0.0/33" is a runbook error and not
-- a failure in the middle of an incident, after the probe.
local function cidr_ok(c)
  if type(c) ~= "string" then return false end
  local net, slash, len = c:match("^([^/]+)(/?)(%d*)$")
  local b = net and addr_bytes(net)
  if not b or net:find("%%") or (slash == "/") ~= (len ~= "") then return false end
  return len == "" or tonumber(len) <= #b * 8
end

-- --- whose isolation ------------------------------------------------------

-- The table says which run made it, in its comment: "bulkhead run RUN
-- step STEP". Two runs may isolate the same host (two incidents, one
-- host); the later one replaces the table and so owns it. A run releases
-- only what it owns: the undo of the first run must not lift the second
-- run's isolation.
local function owner_of(ctx)
  local step = tostring(ctx.step):gsub("[^%w%._%-]", "_")
  return ("bulkhead run %s step %s"):format(ctx.run_id, step)
end

-- The run named in the text of `nft list table` (or nil: a table made by
-- hand or by an older bulkhead names none).
local function owner_in(text)
  return tostring(text):match('\n%s*comment "bulkhead run (%S+) step')
end

-- --- running nft -----------------------------------------------------------

-- The words in front of a remote command that needs root: "sudo -n [-u U] ".
local function sudo_words(p)
  if not p.sudo then return "" end
  return "sudo -n " .. (p.sudo_user and ("-u " .. ssh.quote(p.sudo_user) .. " ") or "")
end

-- Over ssh, a script for the remote shell as the login user; sudo only
-- where the script puts it (SSH_CONNECTION is not kept by sudo).
local function remote(ctx, p, item, script)
  local plain = ssh.with(p, { sudo = false })
  return ssh.argv(ctx, plain, item, script)
end

-- What the host says before anything changes: how it sees the engine's
-- connection (SSH_CONNECTION: engine address, its port, the host's address
-- and port), and whether nft runs there as the runbook asked (sudo).
local function probe(ctx, p, item, t)
  local script = 'printf "connection %s\n" "$SSH_CONNECTION"\n'
    .. "out=$(" .. sudo_words(p) .. ssh.quote(p.nft) .. " --version 2>&1)\n"
    .. 'printf "nft %s %s\n" "$?" "$out"\n'
    .. "out=$(" .. sudo_words(p) .. ssh.quote(p.nft) .. " list table inet " .. p.table .. " 2>/dev/null)\n"
    .. 'printf "table\n%s\n" "$out"\n'
  local argv = remote(ctx, p, item, script)
  argv.timeout = p.timeout
  argv.acts = false -- it only looks: a failure here changed nothing
  local r = ctx.exec(argv)
  -- a dry run or drill shows the probe, but its answer would be made up
  if ctx.mode ~= "real" then return nil end
  local seen = {}
  seen.engine, seen.engine_port, seen.addr, seen.port =
    r.stdout:match("connection (%S+) (%d+) (%S+) (%d+)")
  local rc, text = r.stdout:match("\nnft (%d+) ([^\n]*)")
  if rc ~= "0" then
    error(("firewall.isolate: cannot run %s on %s%s: %s; nothing was changed"):format(p.nft, t.name,
      p.sudo and " with sudo -n" or "", text ~= "" and text or ("exit " .. tostring(rc))), 0)
  end
  seen.owner = owner_in(r.stdout:match("\ntable\n(.*)$") or "")
  if not seen.engine then
    error(("firewall.isolate: %s did not say how it sees the engine's connection (no SSH_CONNECTION); "
      .. "nothing was changed"):format(t.name), 0)
  end
  return seen
end

-- Refuse an isolation that would cut the engine off: the host must still
-- let the engine in afterwards (release, evidence), either from its
-- address (allow_from) or on the port it came in on (allow).
local function keeps_engine(p, t, seen)
  for _, c in ipairs(p.allow_from) do
    if covers(c, seen.engine) then return end
  end
  local port = tonumber(seen.port)
  for _, n in ipairs(ports(p.allow).tcp) do
    if n == port then return end
  end
  local from = #p.allow_from > 0 and table.concat(p.allow_from, ", ") or "nothing"
  error(("firewall.isolate: %s sees the engine at %s (SSH_CONNECTION, ssh port %s); allow_from (%s) "
    .. "does not cover it and allow does not keep port %s: isolating would cut the engine off and "
    .. "release could not reach %s. Nothing was changed: add the engine's address or network to "
    .. "allow_from, or \"ssh\" to allow"):format(t.name, seen.engine, seen.port, from, seen.port, t.name), 0)
end

-- Load script with nft -f: on this machine, behind wrap, or over ssh. Over
-- ssh the remote shell adds two rules for the very connection it runs on
-- (its addresses and ports, from SSH_CONNECTION), first in each chain, so
-- that the engine's session survives whatever conntrack makes of it:
-- netfilter tracks only while some rule needs it, so on a host never
-- isolated, or released since, the session is unknown to conntrack when
-- the table loads and its next packet out counts as "new" (or "invalid",
-- with nf_conntrack_tcp_loose=0); a chain that passed only answers it
-- knew dropped it, and the session hung with the host already isolated.
local function nft(ctx, p, item, script)
  local t = ssh.target(p, item)
  local argv
  if t.host then
    local tbl = p.table
    argv = remote(ctx, p, item, table.concat({
      "set -- $SSH_CONNECTION",
      "{ cat",
      '  case "$1" in *%*) ;; *:*) f=ip6 ;; *) f=ip ;; esac',
      '  if [ -n "$4" ] && [ -n "${f:-}" ]; then',
      '    printf "insert rule inet ' .. tbl .. ' input %s saddr %s tcp sport %s tcp dport %s accept\\n" "$f" "$1" "$2" "$4"',
      '    printf "insert rule inet ' .. tbl .. ' output %s daddr %s tcp dport %s tcp sport %s accept\\n" "$f" "$1" "$2" "$4"',
      "  fi",
      "} | " .. sudo_words(p) .. ssh.quote(p.nft) .. " -f -",
    }, "\n"))
  else
    argv = ssh.command(ctx, p, item, { p.nft, "-f", "-" }, p.wrap)
  end
  argv.stdin = script
  argv.timeout = p.timeout
  ctx.exec(argv)
end

local common = ssh.with(ssh.params, {
  table = { type = "string", default = "bulkhead_isolation", doc = "the nftables table (inet family) the engine owns" },
  nft = { type = "string", default = "nft", doc = "the nft program" },
  wrap = { type = "list", default = {}, doc = "a command prefix for local runs, e.g. { \"ip\", \"netns\", \"exec\", \"ns1\" }" },
  timeout = { type = "string", default = "1m", doc = "limit for nft" },
})

local function table_ok(p)
  if not p.table:match("^[%a_][%w_]*$") then return "table is a plain name" end
end

local function where(p, item, each)
  local t = ssh.target(p, item)
  if t.name then return " on " .. t.name end
  if each then return " on each host" end
  if #p.wrap > 0 then return " via " .. table.concat(p.wrap, " ") end
  return " on this host"
end

return {
  doc = "Host isolation with nftables in a table of its own: everything dropped except loopback, "
    .. "established connections and what the runbook allows (the host's own services, services it "
    .. "may reach, management sources, destinations), each one way. release lifts it.",
  ruleset = ruleset,
  actions = {
    isolate = {
      doc = "Isolate a host: drop all traffic in and out except loopback, connections to its allowed "
        .. "services (allow), from it to allowed services elsewhere (allow_out), from allow_from "
        .. "sources and to allow_to destinations, and the answers of those.",
      params = ssh.with(common, {
        allow = { type = "list", default = {},
                  doc = "the host's services others may still connect to: 25, \"smtp\", \"53/udp\"" },
        allow_out = { type = "list", default = {},
                      doc = "services elsewhere the host may still connect to (a mail relay: \"smtp\", \"dns\")" },
        allow_from = { type = "list", default = {}, doc = "sources always allowed in (management), CIDR" },
        allow_to = { type = "list", default = {}, doc = "destinations always allowed out, CIDR" },
      }),
      idempotent = true,
      destructive = true,
      undo = "release",
      effect = "isolated",
      validate = function(p)
        local bad = table_ok(p)
        if bad then return bad end
        for _, list in ipairs { "allow", "allow_out" } do
          for _, x in ipairs(p[list]) do
            local ok, why = port_of(x)
            if not ok then return list .. ": " .. why end
          end
        end
        for _, list in ipairs { "allow_from", "allow_to" } do
          for _, c in ipairs(p[list]) do
            if not cidr_ok(c) then return list .. ": not an address or CIDR: " .. tostring(c) end
          end
        end
      end,
      describe = function(p, item, each)
        local keep = {}
        local function list(l) local t = {} for _, x in ipairs(l) do t[#t + 1] = tostring(x) end return table.concat(t, ", ") end
        if #p.allow > 0 then keep[#keep + 1] = "in to " .. list(p.allow) end
        if #p.allow_out > 0 then keep[#keep + 1] = "out to " .. list(p.allow_out) end
        if #p.allow_from > 0 then keep[#keep + 1] = "from " .. list(p.allow_from) end
        if #p.allow_to > 0 then keep[#keep + 1] = "to " .. list(p.allow_to) end
        return ("isolate%s with nftables table %s, allowing %s"):format(where(p, item, each), p.table,
          #keep > 0 and table.concat(keep, "; ") or "nothing")
      end,
      run = function(ctx, p, item)
        local t = ssh.target(p, item)
        local before
        if t.host then
          local seen = probe(ctx, p, item, t)
          if seen then keeps_engine(p, t, seen) end
          before = seen and seen.owner
          if before and before ~= ctx.run_id then
            ctx.log(("%s was isolated by run %s: this run's rules replace them, and only this run's "
              .. "release lifts them now"):format(t.name, before))
          end
        end
        nft(ctx, p, item, ruleset(p, owner_of(ctx)))
        return { isolated = true, host = t.name, table = p.table,
                 taken_over = before ~= ctx.run_id and before or nil }
      end,
    },
    release = {
      doc = "Lift the isolation: delete the engine's table (nothing happens if it is not there). "
        .. "Only this run's isolation is lifted: a table another run made since is left, and the "
        .. "step fails saying whose it is, unless force = true.",
      params = ssh.with(common, {
        force = { type = "boolean", default = false,
                  doc = "release the table whichever run made it (a person's decision)" },
      }),
      idempotent = true,
      validate = table_ok,
      describe = function(p, item, each)
        return ("release%s: delete nftables table %s%s"):format(where(p, item, each), p.table,
          p.force and " whichever run made it" or " if this run made it")
      end,
      run = function(ctx, p, item)
        local t = ssh.target(p, item)
        if not p.force and ctx.mode == "real" then
          local argv = ssh.command(ctx, p, item, { p.nft, "list", "table", "inet", p.table }, p.wrap)
          argv.timeout, argv.acts, argv.check = p.timeout, false, false
          local r = ctx.exec(argv)
          if r.code ~= 0 and tostring(r.stderr):find("No such file or directory", 1, true) then
            return { isolated = false, host = t.name, absent = true }
          elseif r.code ~= 0 then
            error(("firewall.release: cannot read table %s%s: %s"):format(p.table, where(p, item),
              tostring(r.stderr):match("[^\n]*[Ee]rror[^\n]*") or ("exit " .. tostring(r.code))), 0)
          end
          local owner = owner_in(r.stdout)
          if owner and owner ~= ctx.run_id then
            error(("firewall.release: %s was isolated again since, by run %s: its isolation is that "
              .. "run's and stays. Nothing was changed; release it from that run, or with force = true"):format(
              t.name or "this host", owner), 0)
          end
        end
        -- release only deletes: no rule for the engine's session to add
        local argv = ssh.command(ctx, p, item, { p.nft, "-f", "-" }, p.wrap)
        argv.stdin = "add table inet " .. p.table .. "\ndelete table inet " .. p.table .. "\n"
        argv.timeout = p.timeout
        ctx.exec(argv)
        return { isolated = false, host = t.name }
      end,
    },
  },
}
