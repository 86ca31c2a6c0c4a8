-- ssh: run commands on remote hosts with OpenSSH.
--
-- Safe defaults: BatchMode (never a password prompt), strict host key
-- checking (an unknown or changed host key fails the step), a connect
-- timeout, the host after "--" (a host name cannot pass itself off as an
-- option), and no connection sharing unless asked.
--
-- multiplex = true shares one connection among the commands that run at
-- the same time on the same host (ControlMaster=auto). The engine stops
-- every process a command leaves behind, so a master cannot outlive the
-- command that opened it (ControlPersist would be swept at once): that
-- command's attempt lasts until the others sharing it finish, and if it is
-- stopped they lose their connection. Hence off by default. The socket is
-- in the run's private directory (ctx.tmpdir()), never in the shared /tmp,
-- where another user could plant one and see the commands.
--
-- Hosts come from the step's item (a host table from inventory():hosts(),
-- or a host name) or from the `host` parameter. Other plugins use this
-- file's ssh.argv() to reach a host.

local M = {}

-- Quote one word for the remote POSIX shell.
local function quote(s)
  s = tostring(s)
  if s:match("^[%w%._/:=@%-,+]+$") then return s end
  return "'" .. s:gsub("'", "'\\''") .. "'"
end
M.quote = quote

-- What ssh prints when it fails before the remote command could start:
-- then a 255 is a plain failure, not an effect in doubt.
M.NOT_STARTED = { "Host key verification failed", "Could not resolve hostname",
                  "ssh: connect to host ", "Permission denied (", "Too many authentication failures",
                  "Connection timed out during banner exchange", "kex_exchange_identification",
                  "REMOTE HOST IDENTIFICATION HAS CHANGED" }

-- Where to connect: the item (host table or name), else p.host.
function M.target(p, item)
  local t = { host = p.host, user = p.user, port = p.port, key = p.key }
  if type(item) == "table" and item.host then
    t.host = item.host
    t.user = p.user or item.user
    t.port = p.port or item.port
    t.key = p.key or item.key
    t.name = item.name
  elseif type(item) == "string" then
    t.host = item
  end
  t.name = t.name or t.host
  return t
end

-- The argv that runs `remote` (a list of words, or one shell script) on
-- the target; nil when there is no host (run it locally instead). ctx is
-- the step's (for its private directory).
function M.argv(ctx, p, item, remote)
  local t = M.target(p, item)
  if not t.host then return nil end
  for _, v in ipairs { t.host, t.user or "" } do
    if tostring(v):sub(1, 1) == "-" or tostring(v):find("[%s%c]") then
      error(("ssh: %q is not a host or user name"):format(tostring(v)), 0)
    end
  end
  local argv = { p.ssh or "ssh",
    "-o", "BatchMode=yes",
    "-o", "StrictHostKeyChecking=" .. (p.strict_host_keys == false and "accept-new" or "yes"),
    "-o", "ConnectTimeout=" .. tostring(p.connect_timeout or 10),
    -- a connection that dies quietly (a host powered off, a cable pulled)
    -- ends the command after alive_interval * 3 seconds instead of at the
    -- step's timeout
    "-o", "ServerAliveInterval=" .. tostring(p.alive_interval or 5),
    "-o", "ServerAliveCountMax=3",
  }
  local function add(...) for _, a in ipairs { ... } do argv[#argv + 1] = a end end
  local function opt(o) add("-o", o) end
  if p.multiplex then
    opt("ControlMaster=auto")
    opt("ControlPath=" .. (p.control_dir or ctx.tmpdir()) .. "/%C")
    opt("ControlPersist=no")
  else -- whatever ~/.ssh/config says
    opt("ControlMaster=no")
    opt("ControlPath=none")
  end
  if p.known_hosts then opt("UserKnownHostsFile=" .. p.known_hosts) end
  if t.key then
    add("-i", t.key)
    opt("IdentitiesOnly=yes") -- that key, not whatever an agent offers first
  end
  if t.port then add("-p", tostring(t.port)) end
  if t.user then add("-l", t.user) end
  for _, o in ipairs(p.options or {}) do opt(o) end
  add("--", t.host)
  -- sudo -n: never a password prompt; a sudoers rule must allow it
  local prefix = p.sudo and ("sudo -n " .. (p.sudo_user and ("-u " .. quote(p.sudo_user) .. " ") or "")) or ""
  if type(remote) == "string" then
    argv[#argv + 1] = p.sudo and (prefix .. "sh -c " .. quote(remote)) or remote
  else
    local words = {}
    for i, w in ipairs(remote) do words[i] = quote(w) end
    argv[#argv + 1] = prefix .. table.concat(words, " ")
  end
  -- 255 is ssh's own failure, which includes a connection lost after the
  -- remote command started: whether it acted is then unknown (in doubt),
  -- unless ssh says it never got that far
  argv.doubt_exit = { 255 }
  argv.not_started = M.NOT_STARTED
  return argv, t
end

-- The argv that runs words (a list) on the target over ssh, or on this
-- machine when there is no host. sudo -n goes in front either way when
-- p.sudo; wrap (a local prefix, e.g. { "ip", "netns", "exec", "ns1" })
-- applies only here. Also returns the target.
function M.command(ctx, p, item, words, wrap)
  local argv, t = M.argv(ctx, p, item, words)
  if argv then
    if wrap and #wrap > 0 then error("give host (ssh) or wrap, not both", 0) end
    return argv, t
  end
  argv = {}
  if p.sudo then
    argv[1], argv[2] = "sudo", "-n"
    if p.sudo_user then argv[3], argv[4] = "-u", p.sudo_user end
  end
  for _, w in ipairs(wrap or {}) do argv[#argv + 1] = w end
  for _, w in ipairs(words) do argv[#argv + 1] = w end
  return argv, M.target(p, item)
end

-- The parameters every remote-capable action takes.
M.params = {
  host = { type = "string", doc = "host to run on (default: the step's item; none: run locally)" },
  user = { type = "string", doc = "remote user (default: the inventory's ansible_user, else ssh's)" },
  port = { type = "number", doc = "ssh port (default: the inventory's ansible_port, else 22)" },
  key = { type = "string", doc = "private key file (default: the inventory's, else ssh's)" },
  known_hosts = { type = "string", doc = "known_hosts file to check host keys against" },
  strict_host_keys = { type = "boolean", default = true,
                       doc = "refuse unknown host keys (false: accept new ones, never changed ones)" },
  connect_timeout = { type = "number", default = 10, doc = "seconds to wait for the connection" },
  alive_interval = { type = "number", default = 5,
                     doc = "seconds between keep-alive checks; 3 unanswered end the command (ssh exit 255)" },
  options = { type = "list", default = {}, doc = "more ssh -o options, as \"Name=value\"" },
  multiplex = { type = "boolean", default = false,
                doc = "share one connection among concurrent commands to the same host; the command "
                  .. "that opened it then lasts until the others finish" },
  control_dir = { type = "string",
                  doc = "with multiplex: where the sockets live, a directory only you can write to "
                    .. "(default: the run's private ctx.tmpdir())" },
  ssh = { type = "string", default = "ssh", doc = "the ssh program" },
  sudo = { type = "boolean", default = false,
           doc = "run the remote command with sudo -n (the remote user needs a sudoers rule; never prompts)" },
  sudo_user = { type = "string", doc = "with sudo: as this user (sudo -n -u USER) instead of root" },
}

local function with(common, own)
  local t = {}
  for k, v in pairs(common) do t[k] = v end
  for k, v in pairs(own) do t[k] = v end
  return t
end
M.with = with

M.doc = "Run commands on remote hosts over OpenSSH (BatchMode, strict host key "
  .. "checking, connection multiplexing), fanned out over an inventory with each."

M.actions = {
  run = {
    doc = "Run a command (a list of words, quoted for the remote shell) or a shell "
      .. "script on a host. The result: host, exit code, output.",
    params = with(M.params, {
      command = { type = "list", doc = "the command and its arguments" },
      script = { type = "string", doc = "a shell script, run by the remote shell" },
      check = { type = "boolean", default = true, doc = "fail the step on a non-zero exit" },
      timeout = { type = "string", default = "5m", doc = "limit for the command" },
    }),
    describe = function(p, item)
      local t = M.target(p, item)
      local what = p.script or table.concat(p.command or {}, " ")
      return ("ssh %s%s: %s"):format(t.user and (t.user .. "@") or "", t.name or "each host", what)
    end,
    run = function(ctx, p, item)
      if (p.command == nil) == (p.script == nil) then
        error("ssh.run: give command = { ... } or script = \"...\", one of them", 0)
      end
      local argv, t = M.argv(ctx, p, item, p.script or p.command)
      if not argv then error("ssh.run: no host (give host = or fan out over hosts with each)", 0) end
      argv.check = p.check
      argv.timeout = p.timeout
      local r = ctx.exec(argv)
      return { host = t.name, code = r.code, stdout = r.stdout, stderr = r.stderr }
    end,
  },
}

return M
