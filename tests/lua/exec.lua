-- expect: ok 0
-- ctx.exec and ctx.sh: results, options, errors and what a child inherits.
runbook { id = "api-exec", title = "exec and sh", timeout = "30s" }

local function expect(cond, what, got)
  if not cond then error(("expected %s, got %s"):format(what, tostring(got)), 2) end
end

phase "exec"
step "result" { run = function(ctx)
  local r = ctx.exec { "sh", "-c", "printf 'out'; printf 'err' >&2; exit 0" }
  expect(r.ok == true and r.code == 0, "ok and code 0", r.code)
  expect(r.stdout == "out", "stdout 'out'", r.stdout)
  expect(r.stderr == "err", "stderr 'err'", r.stderr)
  expect(r.timed_out == false and r.signal == nil, "not timed out, no signal", r.signal)
  expect(type(r.pid) == "number" and r.pid > 0, "a pid", r.pid)
  expect(type(r.duration_ms) == "number", "a duration", r.duration_ms)
end }

step "check_false" { run = function(ctx)
  local r = ctx.exec { "sh", "-c", "exit 7", check = false }
  expect(r.ok == false and r.code == 7, "code 7 without raising", r.code)
end }

step "raises_with_code" { run = function(ctx)
  local ok, err = pcall(ctx.exec, { "sh", "-c", "exit 3" })
  expect(not ok, "an error", ok)
  expect(type(err) == "table" and err.code == "exec_failed", "exec_failed", type(err) == "table" and err.code or err)
  expect(err.exit == 3, "exit 3", err.exit)
  local ok2, err2 = pcall(ctx.exec, { "/no/such/program" })
  expect(not ok2 and err2.code == "spawn_failed", "spawn_failed", err2 and err2.code)
end }

step "options" { run = function(ctx)
  local dir = ctx.tmpdir()
  local r = ctx.exec { "sh", "-c", "pwd; cat; echo \"$ONE\"", cwd = dir, stdin = "fed\n",
                       env = { ONE = "1" } }
  expect(r.stdout == dir .. "\nfed\n1\n", "cwd, stdin and env", r.stdout)
  local t = ctx.exec { "sleep", "5", timeout = "200ms", check = false }
  expect(t.timed_out == true and not t.ok, "timed out", t.timed_out)
end }

step "environment_is_scrubbed" { run = function(ctx)
  local r = ctx.exec { "sh", "-c", "echo \"${BULKHEAD_API_SECRET:-absent} $BULKHEAD_RUN_ID\"" }
  expect(r.stdout == "absent " .. ctx.run_id .. "\n", "no inherited variable, the run id", r.stdout)
end }

step "nul_is_refused" { run = function(ctx)
  local ok, err = pcall(ctx.exec, { "echo", "a\0b" })
  expect(not ok and tostring(err):find("NUL", 1, true), "a refusal naming the NUL", err)
end }

step "sh" { run = function(ctx)
  local r = ctx.sh("a=2; echo $((a * 21)) | tr -d '\\n'")
  expect(r.stdout == "42", "the shell's answer", r.stdout)
end }
