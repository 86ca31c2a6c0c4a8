-- service: systemd units, on this machine or on a host over ssh.

local ssh = require("ssh")

local function run_systemctl(ctx, p, item, verb, check)
  local argv = ssh.command(ctx, p, item, { p.systemctl, verb, p.unit })
  argv.check = check
  argv.timeout = p.timeout
  argv.acts = verb ~= "is-active" -- asking changes nothing
  return ctx.exec(argv)
end

local params = ssh.with(ssh.params, {
  unit = { type = "string", required = true, doc = "the unit, e.g. \"nginx.service\"" },
  systemctl = { type = "string", default = "systemctl", doc = "the systemctl program" },
  timeout = { type = "string", default = "2m", doc = "limit for systemctl" },
})

local function where(p, item, each)
  local t = ssh.target(p, item)
  return t.name and (" on " .. t.name) or (each and " on each host") or ""
end

local function verb_action(verb, doc, undo, destructive, effect)
  return {
    doc = doc,
    effect = effect,
    params = params,
    idempotent = true,
    destructive = destructive,
    undo = undo,
    describe = function(p, item, each) return ("systemctl %s %s%s"):format(verb, p.unit, where(p, item, each)) end,
    run = function(ctx, p, item)
      run_systemctl(ctx, p, item, verb, true)
      return { unit = p.unit, host = ssh.target(p, item).name, done = verb }
    end,
  }
end

return {
  doc = "systemd units: stop, start, restart and is-active (a health check), locally or over ssh "
    .. "(host =, or fan out over inventory hosts).",
  actions = {
    stop = verb_action("stop", "Stop a unit. Undo: start it again.", "start", true,
      function(p) return "without " .. p.unit end),
    start = verb_action("start", "Start a unit. Undo: stop it.", "stop", false,
      function(p) return "running " .. p.unit end),
    restart = verb_action("restart", "Restart a unit (no undo: it was running before and after).", nil, true),
    is_active = {
      doc = "Health check: healthy when `systemctl is-active UNIT` says active.",
      params = params,
      check = true,
      idempotent = true,
      describe = function(p, item, each) return ("systemctl is-active %s%s"):format(p.unit, where(p, item, each)) end,
      run = function(ctx, p, item)
        local r = run_systemctl(ctx, p, item, "is-active", false)
        if r.code == 0 then return true end
        return false, ("%s is %s%s"):format(p.unit, (r.stdout:gsub("%s+$", "")), where(p, item))
      end,
    },
  },
}
