#!/usr/bin/env bash
. "$(dirname "$0")/lib.sh"

t exec_captures_stdout_stderr
cat >"$WORK/cap.lua" <<'LUA'
runbook { id = "cap", title = "Capture" }
step "cap" {
  run = function(ctx)
    local r = ctx.sh("printf 'hello out\\n'; printf 'oops err\\n' >&2")
    local r2 = ctx.exec { "sh", "-c", "echo partial; exit 3", check = false }
    return { out = r.stdout, err = r.stderr, code = r2.code, ok2 = r2.ok }
  end,
}
LUA
assert_exit 0 bh run "$WORK/cap.lua"
J=$(journal); D=$(last_run_dir)
assert_jq "$J" '.[]|select(.type=="step_end")|.result.out' "hello out"
assert_jq "$J" '.[]|select(.type=="step_end")|.result.err' "oops err"
assert_jq "$J" '.[]|select(.type=="step_end")|.result.code' "3"
assert_jq "$J" '.[]|select(.type=="step_end")|.result.ok2' "false"
p=$(jqs "$J" '.[]|select(.type=="exec_end" and .n==1)|.stdout.path')
assert_file "$D/$p"
assert_eq "hello out" "$(cat "$D/$p")" "stdout file"
assert_jq "$J" '.[]|select(.type=="exec_end" and .n==1)|.stdout.size' "$(wc -c <"$D/$p" | tr -d ' ')"
assert_jq "$J" '.[]|select(.type=="exec_end" and .n==1)|.stdout.sha256' "$(sha256sum "$D/$p" | cut -d' ' -f1)"
pe=$(jqs "$J" '.[]|select(.type=="exec_end" and .n==1)|.stderr.path')
assert_ne "$p" "$pe" "stderr path"
assert_eq "oops err" "$(cat "$D/$pe")" "stderr file"
assert_jq "$J" '.[]|select(.type=="exec_end" and .n==1)|.stderr.sha256' "$(sha256sum "$D/$pe" | cut -d' ' -f1)"
assert_jq "$J" '.[]|select(.type=="exec_end" and .n==2)|.code' "3"

t exec_nonzero_fails_step
cat >"$WORK/bad.lua" <<'LUA'
runbook { id = "bad", title = "Bad exit" }
step "bad" { run = function(ctx) ctx.exec { "sh", "-c", "exit 7" } end }
LUA
assert_exit 1 bh run "$WORK/bad.lua"
J=$(journal)
assert_jq "$J" '.[]|select(.type=="step_end")|.status+":"+.error.code' "failed:exec_failed"
assert_jq "$J" '.[]|select(.type=="step_end")|.error.line' "2"

t exec_spawn_failed
cat >"$WORK/nf.lua" <<'LUA'
runbook { id = "nf", title = "Not found" }
step "nf" { run = function(ctx) ctx.exec { "/nonexistent/definitely-not-here" } end }
LUA
assert_exit 1 bh run "$WORK/nf.lua"
J=$(journal)
assert_jq "$J" '.[]|select(.type=="step_end")|.status+":"+.error.code' "failed:spawn_failed"
assert_jq "$J" '[.[]|select(.type=="exec_error")]|length' "1"
assert_jq "$J" '.[]|select(.type=="exec_error")|.argv[0]' "/nonexistent/definitely-not-here"

t env_scrubbed
cat >"$WORK/env.lua" <<'LUA'
runbook { id = "envs", title = "Env" }
step "plain" { run = function(ctx) return ctx.exec { "env" }.stdout end }
step "extra" { run = function(ctx) return ctx.exec { "env", env = { A = "1" } }.stdout end }
LUA
FOO_SECRET=x assert_exit 0 bh run "$WORK/env.lua"
J=$(journal)
plain=$(jqs "$J" '.[]|select(.type=="step_end" and .step=="plain")|.result')
extra=$(jqs "$J" '.[]|select(.type=="step_end" and .step=="extra")|.result')
assert_not_contains "$plain" "FOO_SECRET" "env of step"
assert_contains "$plain" "PATH=" "env of step"
assert_contains "$extra" "A=1" "env with env={A=1}"
assert_not_contains "$extra" "FOO_SECRET" "env with env={A=1}"

t params_shell_metachars_literal
MARK="/tmp/pwned-$$-$RANDOM"
cat >"$WORK/meta.lua" <<'LUA'
runbook { id = "meta", title = "Meta", params = { x = { type = "string", required = true } } }
step "echo" { run = function(ctx) return ctx.exec { "echo", param.x }.stdout end }
LUA
X='$(touch '"$MARK"'); `id`'
assert_exit 0 bh run "$WORK/meta.lua" -p "x=$X"
assert_no_file "$MARK"
assert_jq "$(journal)" '.[]|select(.type=="step_end")|.result' "$X"
assert_eq "$X" "$(cat "$(last_run_dir)"/out/echo.1.1.stdout)" "captured stdout"
rm -f "$MARK"

t exec_start_record_fields
cat >"$WORK/fields.lua" <<'LUA'
runbook { id = "fields", title = "Fields" }
step "one" { run = function(ctx) return ctx.exec { "true", cwd = "/" }.code end }
LUA
assert_exit 0 bh run "$WORK/fields.lua"
J=$(journal)
# docs/journal.md: exec_start has step, attempt, n, argv, cwd, pid, shell.
assert_jq "$J" '.[]|select(.type=="exec_start")|[has("step","attempt","n","argv","shell")]|all' "true"
assert_jq "$J" '.[]|select(.type=="exec_start")|has("pid")' "true"
assert_jq "$J" '.[]|select(.type=="exec_start")|.cwd' "/"
assert_jq "$J" '(.[]|select(.type=="exec_start")|.pid) == (.[]|select(.type=="exec_end")|.pid)' "true"

t run_timeout_option_overrides_default
cat >"$WORK/tmo.lua" <<'LUA'
runbook { id = "tmo", title = "Timeouts" }
step "dflt" { run = function(ctx) return 1 end }
step "own" { timeout = "10s", run = function(ctx) return 2 end }
LUA
assert_exit 0 bh run --timeout 42s "$WORK/tmo.lua"
J=$(journal)
assert_jq "$J" '.[]|select(.type=="step_start" and .step=="dflt")|.timeout_ms' "42000"
assert_jq "$J" '.[]|select(.type=="step_start" and .step=="own")|.timeout_ms' "10000"

t child_inherits_only_stdio
cat >"$WORK/fds.lua" <<'LUA'
runbook { id = "fds", title = "fds", timeout = "10s" }
-- No pipeline: while dash sets one up it holds pipe ends of its own, which
-- a listing of /proc/$$/fd would catch (a race, not a leak).
step "fds" { run = function(ctx)
  local fds = {}
  for n in ctx.sh('ls /proc/$$/fd').stdout:gmatch("%d+") do fds[#fds + 1] = tonumber(n) end
  table.sort(fds)
  return table.concat(fds, " ") .. " "
end }
LUA
assert_exit 0 bh run --plain "$WORK/fds.lua"
assert_eq "0 1 2 " "$(end_of fds result)" "descriptors of the child (journal, lock, socket, loop stay in the engine)"

t descendant_that_leaves_its_group_is_swept
cat >"$WORK/escape.lua" <<'LUA'
runbook { id = "escape", title = "escape", timeout = "10s" }
step "daemon" { run = function(ctx)
  -- setsid: a new session and group, out of reach of the group kill
  return tonumber(ctx.sh('setsid sleep 300 >/dev/null 2>&1 & echo $!; sleep 0.3').stdout)
end }
LUA
assert_exit 0 bh run --plain "$WORK/escape.lua"
pid=$(end_of daemon result)
assert_ne "" "$pid"
wait_dead "$pid" || fail "escaped process $pid still alive"
assert_jq "$(journal)" '[.[] | select(.type == "exec_end")][0].escaped_killed' 1
