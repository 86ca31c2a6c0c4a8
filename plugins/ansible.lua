-- ansible: run an Ansible module or playbook as one step, for fleets too
-- large for one engine to reach host by host. Ansible itself fans out;
-- its output is captured like any command's.

-- JSON for -e: strings escaped (control characters included), numbers,
-- booleans, lists and maps (keys sorted, so the argv is the same each run).
local function json(v, depth)
  depth = depth or 0
  if depth > 20 then error("ansible: extra_vars nested too deeply", 0) end
  local t = type(v)
  if t == "string" then
    return '"' .. v:gsub('[%c"\\]', function(c)
      local named = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }
      return named[c] or ("\\u%04x"):format(c:byte())
    end) .. '"'
  elseif t == "number" then
    if v ~= v or v == math.huge or v == -math.huge then error("ansible: extra_vars has a number JSON cannot hold", 0) end
    return math.type(v) == "integer" and tostring(v) or ("%.17g"):format(v)
  elseif t == "boolean" then
    return tostring(v)
  elseif t == "table" then
    if #v > 0 or next(v) == nil then
      local parts = {}
      for i, x in ipairs(v) do parts[i] = json(x, depth + 1) end
      return "[" .. table.concat(parts, ",") .. "]"
    end
    local keys, parts = {}, {}
    for k in pairs(v) do keys[#keys + 1] = tostring(k) end
    table.sort(keys)
    for _, k in ipairs(keys) do parts[#parts + 1] = json(k) .. ":" .. json(v[k], depth + 1) end
    return "{" .. table.concat(parts, ",") .. "}"
  end
  error("ansible: extra_vars cannot hold a " .. t, 0)
end

return {
  doc = "Ansible from a step: an ad-hoc module over a host pattern, or a playbook.",
  actions = {
    module = {
      doc = "Run an Ansible module over a host pattern (ansible PATTERN -i INVENTORY -m MODULE -a ARGS).",
      params = {
        pattern = { type = "string", required = true, doc = "hosts or groups, e.g. \"web\"" },
        module = { type = "string", required = true, doc = "the module, e.g. \"ansible.builtin.service\"" },
        args = { type = "string", doc = "the module's arguments, e.g. \"name=nginx state=stopped\"" },
        inventory = { type = "string", required = true, doc = "inventory file (relative to the engine's folder)" },
        become = { type = "boolean", default = false, doc = "run with privilege escalation (--become)" },
        forks = { type = "number", doc = "hosts in parallel (--forks)" },
        ansible = { type = "string", default = "ansible", doc = "the ansible program" },
        timeout = { type = "string", default = "30m", doc = "limit for the whole run" },
      },
      describe = function(p)
        return ("ansible %s -m %s%s"):format(p.pattern, p.module, p.args and (" -a '" .. p.args .. "'") or "")
      end,
      run = function(ctx, p)
        local argv = { p.ansible, p.pattern, "-i", p.inventory, "-m", p.module }
        if p.args then argv[#argv + 1] = "-a"; argv[#argv + 1] = p.args end
        if p.become then argv[#argv + 1] = "--become" end
        if p.forks then argv[#argv + 1] = "--forks"; argv[#argv + 1] = tostring(math.floor(p.forks)) end
        argv.timeout = p.timeout
        local r = ctx.exec(argv)
        return { code = r.code, stdout = r.stdout }
      end,
    },
    playbook = {
      doc = "Run a playbook (ansible-playbook -i INVENTORY PLAYBOOK [--limit] [-e JSON] [--check]).",
      params = {
        playbook = { type = "string", required = true, doc = "the playbook file" },
        inventory = { type = "string", required = true, doc = "inventory file" },
        limit = { type = "string", doc = "restrict to these hosts or groups (--limit)" },
        extra_vars = { type = "map", default = {}, doc = "variables, passed as JSON with -e" },
        check_mode = { type = "boolean", default = false, doc = "dry run on Ansible's side (--check)" },
        ansible_playbook = { type = "string", default = "ansible-playbook", doc = "the program" },
        timeout = { type = "string", default = "1h", doc = "limit for the whole run" },
      },
      describe = function(p)
        return ("ansible-playbook %s%s%s"):format(p.playbook, p.limit and (" --limit " .. p.limit) or "",
          p.check_mode and " --check" or "")
      end,
      run = function(ctx, p)
        local argv = { p.ansible_playbook, "-i", p.inventory, p.playbook }
        if p.limit then argv[#argv + 1] = "--limit"; argv[#argv + 1] = p.limit end
        if next(p.extra_vars) then
          argv[#argv + 1] = "-e"
          argv[#argv + 1] = json(p.extra_vars)
        end
        if p.check_mode then argv[#argv + 1] = "--check" end
        argv.timeout = p.timeout
        local r = ctx.exec(argv)
        return { code = r.code, stdout = r.stdout }
      end,
    },
  },
}
