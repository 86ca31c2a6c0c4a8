#!/usr/bin/env bash
# Runbook code that misbehaves in odd ways must not crash the engine, escape
# its timeout, or leave a step's end out of the journal. (Found in review;
# each crashed or hung the engine before it was fixed.)
. "$(dirname "$0")/lib.sh"

rb() { # NAME BODY...: write a runbook to $WORK/NAME.lua
    local name=$1; shift
    printf 'runbook { id = "%s", title = "robustness" }\n%s\n' "$name" "$*" >"$WORK/$name.lua"
}

t loop_in_nested_coroutine_times_out
rb nested 'step "spin" { timeout = "1s", run = function(ctx) coroutine.wrap(function() while true do end end)() end }'
assert_exit 1 bh run --plain "$WORK/nested.lua"
assert_eq timed_out "$(end_of spin status)" "status"

t timeout_caught_in_unyieldable_code_is_still_a_timeout
rb sortok 'step "s" { timeout = "1s", run = function(ctx)
  pcall(table.sort, {3,2,1,4,5,6,7}, function(a, b) while true do end end)
  ctx.exec { "sleep", "20" }
  return "done"
end }'
start=$(date +%s)
assert_exit 1 bh run --plain "$WORK/sortok.lua"
assert_eq timed_out "$(end_of s status)" "status"
[ $(($(date +%s) - start)) -lt 10 ] || fail "the exec after the timeout was not stopped"

t ctx_dropped_and_collected
rb gc 'step "s" { run = function(ctx) ctx = nil; local t = {} for i = 1, 200000 do t[i] = {} end return 1 end }'
assert_exit 0 bh run --plain "$WORK/gc.lua"

t error_object_whose_tostring_raises
rb errobj 'step "s" { run = function(ctx) error(setmetatable({}, { __tostring = function() error("boom") end })) end }
step "after" { run = function(ctx) return 1 end }'
assert_exit 1 bh run --plain "$WORK/errobj.lua"
assert_eq failed "$(end_of s status)" "status"
assert_contains "$(end_of s error.message)" "without a message field" "error message"
assert_jq "$(journal)" '.[-1].type' run_end

t results_table_with_hostile_newindex
rb res 'step "a" { run = function(ctx) setmetatable(ctx.results, { __newindex = function() error("nope") end }) return 1 end }
step "b" { run = function(ctx) return ctx.results.a + 1 end }'
assert_exit 0 bh run --plain "$WORK/res.lua"
assert_eq 2 "$(end_of b result)" "result of b"

t spawn_failure_leaves_argv_table_alone
rb spawn 'step "s" { run = function(ctx)
  local cmd = { "/nonexistent/prog" }
  local ok, e = pcall(ctx.exec, cmd)
  assert(not ok and e.code == "spawn_failed" and not rawequal(e, cmd) and cmd.message == nil)
  cmd[1] = "true"
  ctx.exec(cmd)
  return "reused"
end }'
assert_exit 0 bh run --plain "$WORK/spawn.lua"
assert_eq reused "$(end_of s result)" "result"

t result_with_shared_subtables_is_refused
rb shared 'step "s" { run = function(ctx)
  local x = {}
  for i = 1, 40 do x = { a = x, b = x } end
  return x
end }'
start=$(date +%s)
assert_exit 1 bh run --plain "$WORK/shared.lua"
assert_eq bad_result "$(end_of s error.code)" "error code"
[ $(($(date +%s) - start)) -lt 20 ] || fail "took too long"

t lua_memory_exhausted_between_steps
rb mem 'step "fill" { run = function(ctx)
  -- fill the Lua memory cap and keep it full (globals outlive the step)
  keep = {}; kept_ctx = ctx
  pcall(function() local i = 0 while true do i = i + 1; keep[i] = {} end end)
  return #keep
end }
step "next" { run = function(ctx) local t = {} for i = 1, 1e6 do t[i] = { i } end return #t end }'
assert_exit 1 bh run --plain "$WORK/mem.lua"
assert_eq memory "$(end_of next error.code)" "error code of the step that ran out of memory"
assert_jq "$(journal)" '.[-1].status' failed
assert_exit 0 bh verify last

t runaway_lua_is_each_step_failure_and_the_engine_survives
cat >"$WORK/lim.lua" <<'LUA'
runbook { id = "lim", title = "Limits", timeout = "20s" }
step "spin" { max_instructions = 1e6, on_failure = "continue",
              run = function(ctx) while true do pcall(function() end) end end }
step "grow" { on_failure = "continue",
              run = function(ctx) local t, i = {}, 0 while true do i = i + 1 t[i] = { i } end end }
step "rep" { on_failure = "continue", run = function(ctx) return #string.rep("x", 1e12) end }
step "double" { on_failure = "continue",
                run = function(ctx) local s = "x" for i = 1, 64 do s = s .. s end return #s end }
step "forever" { timeout = "300ms", on_failure = "continue", run = function(ctx) while true do end end }
step "fine" { run = function(ctx) return "alive" end }
LUA
assert_exit 0 bh run --plain "$WORK/lim.lua"
assert_eq instruction_budget "$(end_of spin error.code)" "spin"
assert_contains "$(end_of spin error.message)" "ran more than 1000000 Lua instructions"
assert_eq memory "$(end_of grow error.code)" "grow"
assert_eq failed "$(end_of rep status)" "string.rep bomb"
assert_eq memory "$(end_of double error.code)" "doubling bomb"
assert_eq step_timeout "$(end_of forever error.code)" "wall clock"
assert_eq alive "$(end_of fine result)" "the engine went on"

t instruction_budget_is_a_load_checked_field
printf 'runbook { id = "b", title = "B", max_instructions = 10 }\nstep "s" { run = function(ctx) end }\n' >"$WORK/badbudget.lua"
assert_exit 3 bh check "$WORK/badbudget.lua"
assert_contains "$ERR" "'max_instructions' must be a number from 1000"

t max_memory_raises_and_is_a_load_checked_field
# 300 MiB of strings: over the default 256 MiB, within max_memory = "512MiB"
cat >"$WORK/bigmem.lua" <<'LUA'
runbook { id = "bigmem", title = "Big", max_memory = "512MiB" }
local held = {}
for i = 1, 300 do held[i] = string.rep("x", (1 << 20) - 32) .. i end
step "s" { run = function(ctx) return #held end }
LUA
assert_exit 0 bh run --plain "$WORK/bigmem.lua"
assert_eq 300 "$(end_of s result)" "the held strings"
sed 's/, max_memory = "512MiB"//' "$WORK/bigmem.lua" >"$WORK/smallmem.lua"
assert_exit 3 bh check "$WORK/smallmem.lua"
assert_contains "$ERR" "not enough memory" "without max_memory"
sed 's/"512MiB"/"1TB"/' "$WORK/bigmem.lua" >"$WORK/badmem.lua"
assert_exit 3 bh check "$WORK/badmem.lua"
assert_contains "$ERR" 'badmem.lua:1: error: runbook: max_memory must be a size from "16MiB" to "64GiB", such as "1GiB", not "1TB"'

t coroutine_made_at_load_time_obeys_the_step_deadline
cat >"$WORK/loadco.lua" <<'LUA'
runbook { id = "loadco", title = "Load-time coroutine", timeout = "30s" }
local spin = coroutine.create(function() local n = 0 while true do n = n + 1 end end)
local count = coroutine.wrap(function() for i = 1, 3 do coroutine.yield(i) end end)
step "counts" { run = function(ctx) return count() + count() end }
step "spins" { timeout = "500ms", on_failure = "continue", run = function(ctx) coroutine.resume(spin) end }
step "after" { run = function(ctx) return "alive" end }
LUA
assert_exit 0 bh run --plain "$WORK/loadco.lua"
assert_eq 3 "$(end_of counts result)" "a load-time coroutine works in a step"
assert_eq step_timeout "$(end_of spins error.code)" "its loop ends at the step's timeout"
assert_eq alive "$(end_of after result)"
