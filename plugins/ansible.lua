-- ansible: run an Ansible module or playbook as one step, for fleets too
-- large for one engine to reach host by host. Ansible itself fans out;
-- its output is captured like any command's.

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
          local keys, parts = {}, {}
          for k in pairs(p.extra_vars) do keys[#keys + 1] = k end
          table.sort(keys)
          for _, k in ipairs(keys) do
            local v = p.extra_vars[k]
            local s = type(v) == "string" and ('"' .. v:gsub('[\\"]', "\\%0") .. '"') or tostring(v)
            parts[#parts + 1] = ('"%s":%s'):format(k, s)
          end
          argv[#argv + 1] = "-e"
          argv[#argv + 1] = "{" .. table.concat(parts, ",") .. "}"
        end
        if p.check_mode then argv[#argv + 1] = "--check" end
        argv.timeout = p.timeout
        local r = ctx.exec(argv)
        return { code = r.code, stdout = r.stdout }
      end,
    },
  },
}
