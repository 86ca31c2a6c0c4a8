#!/usr/bin/env bash
. "$(dirname "$0")/lib.sh"

no_runs() { [ -z "$(ls -A "$STATE/runs" 2>/dev/null)" ] || fail "a run folder was created: $(ls "$STATE/runs")"; }

t syntax_error_check_and_run
printf 'runbook { id = "syn", title = "Syntax" }\nstep "a" {\n  run = function(ctx) return 1 +\nend }\n' >"$WORK/syn.lua"
assert_exit 3 bh check "$WORK/syn.lua"
assert_contains "$ERR" "syn.lua:4:" "stderr of check"
assert_exit 3 bh run "$WORK/syn.lua"
assert_contains "$ERR" "syn.lua:4:" "stderr of run"
no_runs

t load_time_runtime_error
printf 'runbook { id = "rt", title = "Runtime" }\nlocal x = 1\nerror("boom")\nstep "a" { run = function(ctx) end }\n' >"$WORK/rt.lua"
assert_exit 3 bh run "$WORK/rt.lua"
assert_contains "$ERR" "rt.lua:3:" "stderr"
assert_contains "$ERR" "boom" "stderr"
assert_contains "$ERR" "stack traceback" "stderr"
no_runs
assert_exit 3 bh check "$WORK/rt.lua"
assert_contains "$ERR" "rt.lua:3:" "stderr of check"

t unknown_step_field_and_multiple_problems
cat >"$WORK/uf.lua" <<'LUA'
runbook { id = "uf", title = "Unknown field" }
step "a" { timout = "1s", run = function(ctx) end }
step "b" { run = 5 }
step "a" { run = function(ctx) end }
LUA
assert_exit 3 bh check "$WORK/uf.lua"
assert_contains "$ERR" "uf.lua:2:" "stderr"
assert_contains "$ERR" "timout" "stderr"
assert_contains "$ERR" "uf.lua:3:" "stderr (second problem)"
assert_contains "$ERR" "uf.lua:4:" "stderr (third problem)"

t load_has_no_side_effects
MARK="$WORK/touched"
cat >"$WORK/se.lua" <<LUA
runbook { id = "se", title = "Side effects" }
ctx.exec { "touch", "$MARK" }
step "a" { run = function(ctx) end }
LUA
assert_exit 3 bh run "$WORK/se.lua"
assert_no_file "$MARK"
assert_contains "$ERR" "only available inside a step" "stderr"
no_runs

t sandbox_io_open_at_load_fails
printf 'runbook { id = "sb", title = "SB" }\nio.open("%s/x", "w")\n' "$WORK" >"$WORK/sb.lua"
assert_exit 3 bh check "$WORK/sb.lua"
assert_contains "$ERR" "sb.lua:2:" "stderr"
assert_no_file "$WORK/x"

t check_warns_and_strict_fails
cat >"$WORK/lintme.lua" <<'LUA'
runbook { id = "lintme", title = "Lint",
          params = { host = { type = "string", default = "web1" } } }
step "a" { run = function(ctx) end }
step "b" { timeout = "10s", run = function(ctx) end }
step "c" { timeout = "10s", estimate = "1m", run = function(ctx) end }
LUA
assert_exit 0 bh check "$WORK/lintme.lua"
assert_contains "$ERR" "lintme.lua:1: warning: parameter 'host' has no doc string"
assert_contains "$ERR" "lintme.lua:3: warning: step 'a' has no explicit timeout"
assert_contains "$ERR" "lintme.lua:5: warning: step 'c' usually takes 1m00s (estimate) but times out after 10.0s"
assert_not_contains "$ERR" "step 'b'"
assert_contains "$OUT" "with warnings"
assert_exit 3 bh check --strict "$WORK/lintme.lua"
assert_contains "$OUT" "failed --strict: 3 warnings"

t shipped_runbooks_pass_strict_check
for f in "$ROOT"/examples/*/*.lua "$ROOT"/runbooks/*.lua; do
    assert_exit 0 bh check --strict "$f"
done

t too_many_steps_is_a_load_error
printf 'runbook { id = "big", title = "big", timeout = "1s" }\nfor i = 1, 10001 do step ("s" .. i) { run = function() end } end\n' >"$WORK/big.lua"
assert_exit 3 bh check "$WORK/big.lua"
assert_contains "$ERR" "big.lua:2: error: step 's10001': a runbook may declare at most 10000 steps"

t endless_loop_at_load_time_is_an_error
printf 'runbook { id = "h", title = "h" }\nwhile true do pcall(function() while true do end end) end\n' >"$WORK/hang.lua"
assert_exit 3 timeout 30 "$BULKHEAD" check "$WORK/hang.lua"
assert_contains "$ERR" "hang.lua:2: error: loading the runbook ran more than 100000000 Lua instructions (an endless loop at load time?)"
