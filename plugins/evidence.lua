-- evidence: collect files or command output into the run's evidence/
-- folder, byte for byte (never masked), with SHA-256, size, source and time
-- in the journal: the chain of custody. Evidence files are made read-only.

local ssh = require("ssh")

-- A file name ctx.collect takes: letters, digits, . - _, not starting
-- with a dot (".bash_history" becomes "_bash_history").
local function safe(name) return (tostring(name):gsub("[^%w%.%-_]", "_"):gsub("^%.", "_")) end

-- Run cmd (here, or on the host over ssh) and keep its output as the
-- evidence file p.name, else the host's name and then default_name.
-- Returns the evidence record ({} when nothing was kept) and the target.
local function collect(ctx, p, item, cmd, default_name)
  local argv, t = ssh.command(ctx, p, item, cmd)
  argv.name = p.name or ((t.name and (safe(t.name) .. "_") or "") .. default_name)
  argv.timeout = p.timeout
  argv.acts = false -- collecting only reads: cut off, it leaves nothing in doubt
  return ctx.collect(argv).evidence or {}, t
end

local common = ssh.with(ssh.params, {
  name = { type = "string", doc = "file name under evidence/ (default: from the source)" },
  timeout = { type = "string", default = "10m", doc = "limit for the collection" },
})

return {
  doc = "Evidence with a chain of custody: files and command output copied into the run folder, "
    .. "hashed, recorded (evidence records), read-only. From this host or over ssh.",
  actions = {
    file = {
      doc = "Copy a file (locally, or from the host over ssh) into evidence/.",
      params = ssh.with(common, {
        path = { type = "string", required = true, doc = "the file to collect" },
      }),
      idempotent = true,
      changes = false,
      describe = function(p, item, each)
        local t = ssh.target(p, item)
        local from = t.name or (each and "each host")
        return ("collect %s%s"):format(from and (from .. ":") or "", p.path)
      end,
      run = function(ctx, p, item)
        local e, t = collect(ctx, p, item, { "cat", "--", p.path }, safe(p.path:match("[^/]+$") or p.path))
        return { path = e.path, sha256 = e.sha256, size = e.size,
                 source = (t.name or "local") .. ":" .. p.path }
      end,
    },
    command = {
      doc = "Run a command (locally, or on the host over ssh) and keep its output as evidence.",
      params = ssh.with(common, {
        command = { type = "list", required = true, doc = "the command and its arguments" },
      }),
      idempotent = true,
      changes = false,
      describe = function(p, item, each)
        local t = ssh.target(p, item)
        local on = t.name or (each and "each host")
        return ("collect the output of %s%s"):format(table.concat(p.command, " "),
          on and (" on " .. on) or "")
      end,
      run = function(ctx, p, item)
        local e = collect(ctx, p, item, p.command, safe(p.command[1]) .. ".out")
        return { path = e.path, sha256 = e.sha256, size = e.size }
      end,
    },
  },
}
