#!/usr/bin/env bash
# Lua that can always be stopped: every call the engine makes into a
# runbook's Lua (bodies, each, when, verify, undo, cadences, plugin code,
# loading, finalizers) is bounded by a budget and a deadline, and Ctrl-C
# (SIGINT) or SIGTERM stops CPU-bound Lua at once: exit 130/143, an
# interrupt record, nothing new started. A long Lua call never shortens
# the next step's timeout.
. "$(dirname "$0")/lib.sh"

BG=""
cleanup() { [ -n "$BG" ] && kill -KILL "$BG" 2>/dev/null; _t_finish; }
trap cleanup EXIT

rb() { cat >"$WORK/$1.lua"; }
# start NAME [ARGS...]: bulkhead run NAME.lua in the background ($BG).
start() {
    local name=$1
    shift
    "$BULKHEAD" --state-dir "$STATE" run --plain "$@" "$WORK/$name.lua" >"$WORK/$name.out" 2>&1 &
    BG=$!
}
# marked FILE: wait until the runbook wrote FILE (its marker step ran).
marked() { wait_for test -e "$1" || fail "the run never got to $1"; }
# cpu PID: CPU time (clock ticks) the process used so far.
cpu() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# spinning PID: wait until it has spent 0.3 s of CPU from now: it is in the
# loop (everything before the loop is a few milliseconds of work).
spinning() {
    local t0 i
    t0=$(cpu "$1")
    for i in $(seq 1 100); do
        [ $(($(cpu "$1") - t0)) -ge $(($(getconf CLK_TCK) * 3 / 10)) ] && return 0
        sleep 0.1
    done
    fail "the engine never got busy in the loop"
}
# stop_with SIG: send SIG to $BG; its exit code in $RC and how long it took
# to exit in $MS (ms); fails if it is still there after 10 s.
stop_with() {
    local t0 i
    t0=$(date +%s%N)
    kill -"$1" "$BG"
    for i in $(seq 1 100); do kill -0 "$BG" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$BG" 2>/dev/null; then
        kill -KILL "$BG"
        fail "the engine did not stop within 10 s of SIG$1"
    fi
    wait "$BG"
    RC=$?
    MS=$((($(date +%s%N) - t0) / 1000000))
    BG=""
}
jfield() { jqs "$(journal)" "$1"; }

# A marker step first, so the test knows when the looping part began.
MARK='step "begin" { run = function(ctx) ctx.exec { "touch", param.mark } end }'
PARAMS='params = { mark = { type = "string", required = true, doc = "marker file" } }'

t each_function_that_loops_ends_at_the_step_timeout
rb eachloop <<LUA
runbook { id = "eachloop", title = "Each loops", $PARAMS }
$MARK
step "fan" { timeout = "1s", each = function(ctx) while true do end end, run = function(ctx, x) end }
step "later" { run = function(ctx) return 1 end }
LUA
assert_exit 1 timeout 20 "$BULKHEAD" --state-dir "$STATE" run --plain "$WORK/eachloop.lua" -p mark="$WORK/m0"
assert_eq failed "$(end_of fan status)"
assert_eq bad_items "$(end_of fan error.code)"
assert_contains "$(end_of fan error.message)" "the each function of step 'fan' did not finish in time"
assert_jq "$(journal)" '[.[] | select(.type == "step_start" and .step == "later")] | length' 0

t each_function_that_loops_ends_at_its_instruction_budget
rb eachbudget <<'LUA'
runbook { id = "eachbudget", title = "Each budget" }
step "fan" { max_instructions = 1e6, each = function(ctx) while true do end end, run = function(ctx, x) end }
LUA
assert_exit 1 timeout 20 "$BULKHEAD" --state-dir "$STATE" run --plain "$WORK/eachbudget.lua"
assert_contains "$(end_of fan error.message)" "the each function of step 'fan' ran more than 1000000 Lua instructions"

for sig in TERM INT; do
    t "sig${sig,,}_stops_a_looping_each_function"
    rm -f "$WORK/m1"
    start eachloop -p mark="$WORK/m1" --timeout 60s
    marked "$WORK/m1"
    spinning "$BG"
    stop_with $sig
    want=$([ $sig = TERM ] && echo 143 || echo 130)
    assert_eq "$want" "$RC" "exit after SIG$sig"
    assert_jq "$(journal)" '[.[] | select(.type == "interrupt")][0].signal' "SIG$sig"
    assert_eq cancelled "$(end_of fan status)"
    assert_contains "$(end_of fan error.message)" "was interrupted by SIG$sig"
    assert_jq "$(journal)" '[.[] | select(.type == "step_skipped" and .step == "later")][0].cause' halt
    assert_jq "$(journal)" '.[-1] | "\(.type) \(.status)"' "run_end interrupted"
done

t sigint_stops_a_looping_each_function_in_a_dry_run
rm -f "$WORK/m2"
rb eachdry <<'LUA'
runbook { id = "eachdry", title = "Each loops, dry" }
step "fan" { each = function(ctx) while true do end end, run = function(ctx, x) end }
LUA
start eachdry --dry-run --timeout 60s
spinning "$BG"
stop_with INT
assert_eq 130 "$RC" "exit of the dry run after SIGINT"
assert_jq "$(journal)" '[.[] | select(.type == "interrupt")] | length' 1

rb spin <<LUA
runbook { id = "spin", title = "CPU-bound body", $PARAMS }
$MARK
step "spin" { timeout = "60s", run = function(ctx) while true do pcall(function() while true do end end) end end }
step "later" { run = function(ctx) ctx.exec { "touch", param.mark .. ".later" } end }
LUA
for sig in INT TERM; do
    t "sig${sig,,}_stops_a_cpu_bound_body_at_once"
    rm -f "$WORK/m3" "$WORK/m3.later"
    start spin -p mark="$WORK/m3"
    marked "$WORK/m3"
    spinning "$BG"
    stop_with $sig
    want=$([ $sig = TERM ] && echo 143 || echo 130)
    assert_eq "$want" "$RC" "exit after SIG$sig, not 1"
    assert_jq "$(journal)" '[.[] | select(.type == "interrupt")][0] | "\(.signal) \(.action)"' "SIG$sig terminate"
    assert_eq "cancelled:cancelled" "$(end_of spin status):$(end_of spin error.code)"
    assert_contains "$(end_of spin error.message)" "was cancelled by SIG$sig"
    assert_jq "$(journal)" '[.[] | select(.type == "step_start" and .step == "later")] | length' 0
    assert_no_file "$WORK/m3.later"
    # stopped promptly, not at the step's 60 s timeout (how promptly is
    # bench/run.sh's to measure: no timing in tests)
    [ "$MS" -lt 5000 ] || fail "the engine took ${MS} ms to stop a CPU-bound body"
done

t a_long_lua_call_does_not_shorten_the_next_steps_timeout
rb long <<'LUA'
runbook { id = "long", title = "A long Lua call, then a healthy step" }
step "think" { timeout = "30s", run = function(ctx)
  local t = os.clock()
  while os.clock() - t < 2.5 do end
end }
step "next" { timeout = "2s", run = function(ctx) ctx.sleep("300ms") return "fine" end }
LUA
assert_exit 0 bh run --plain "$WORK/long.lua"
assert_eq ok "$(end_of next status)" "next was not cut short by the time think spent in Lua"
assert_eq fine "$(end_of next result)"

# --- every kind of callback, looping forever ----------------------------------

t when_that_loops_ends_at_the_step_timeout
rb whenloop <<'LUA'
runbook { id = "whenloop", title = "When loops" }
step "s" { timeout = "1s", when = function(ctx) while true do end end, run = function(ctx) end }
LUA
assert_exit 1 timeout 20 "$BULKHEAD" --state-dir "$STATE" run --plain "$WORK/whenloop.lua"
assert_eq "timed_out:step_timeout" "$(end_of s status):$(end_of s error.code)"

t verify_that_loops_ends_at_the_step_timeout
rb verifyloop <<'LUA'
runbook { id = "verifyloop", title = "Verify loops" }
step "s" { timeout = "1s", run = function(ctx) return 1 end, verify = function(ctx) while true do end end }
LUA
assert_exit 1 timeout 20 "$BULKHEAD" --state-dir "$STATE" run --plain "$WORK/verifyloop.lua"
assert_eq "timed_out:step_timeout" "$(end_of s status):$(end_of s error.code)"

t undo_that_loops_ends_at_the_step_timeout
rb undoloop <<'LUA'
runbook { id = "undoloop", title = "Undo loops" }
step "s" { timeout = "1s", run = function(ctx) return 1 end, undo = function(ctx) while true do end end }
LUA
assert_exit 0 bh run --plain "$WORK/undoloop.lua"
assert_exit 1 timeout 20 "$BULKHEAD" --state-dir "$STATE" undo last --plain
assert_jq "$(journal)" '[.[] | select(.type == "undo_end")][0] | "\(.status):\(.error.code)"' "timed_out:step_timeout"

t cadence_that_loops_ends_at_its_timeout
rb cadloop <<'LUA'
runbook { id = "cadloop", title = "Cadence loops" }
step "tick" { every = "100ms", timeout = "300ms", on_failure = "continue", run = function(ctx) while true do end end }
step "work" { run = function(ctx) ctx.sleep("1s") end }
LUA
assert_exit 0 timeout 20 "$BULKHEAD" --state-dir "$STATE" run --plain "$WORK/cadloop.lua"
assert_jq "$(journal)" '[.[] | select(.type == "step_end" and .step == "tick")][0] | "\(.status):\(.error.code)"' "timed_out:step_timeout"

mkdir -p "$WORK/plugins"
cat >"$WORK/plugins/spinner.lua" <<'LUA'
-- a plugin whose code can be made to loop, for the tests
local function loop(on) if on then while true do end end end
return {
  doc = "Loops where it is told to.",
  actions = {
    go = {
      doc = "Loops in run, describe, validate or effect.",
      params = { where = { type = "string", default = "none", doc = "where to loop" } },
      validate = function(p) loop(p.where == "validate") end,
      describe = function(p) loop(p.where == "describe") return "spin" end,
      effect = function(p) loop(p.where == "effect") return "spun" end,
      run = function(ctx, p) loop(p.where == "run") return true end,
    },
  },
}
LUA
spinbook() {
    rb "spin_$1" <<LUA
runbook { id = "spin-$1", title = "Plugin loops in $1" }
step "s" { timeout = "1s", action = spinner.go { where = "$1" } }
LUA
}

t plugin_run_that_loops_ends_at_the_step_timeout
spinbook run
assert_exit 1 timeout 20 "$BULKHEAD" --state-dir "$STATE" run --plain --plugins "$WORK/plugins" "$WORK/spin_run.lua"
assert_eq "timed_out:step_timeout" "$(end_of s status):$(end_of s error.code)"

for where in describe validate effect; do
    t "plugin_${where}_that_loops_ends_loading"
    spinbook "$where"
    assert_exit 3 timeout 30 "$BULKHEAD" check --plugins "$WORK/plugins" "$WORK/spin_$where.lua"
    assert_contains "$ERR" "loading the runbook ran more than 100000000 Lua instructions"
done

t sigint_stops_loading_a_runbook_that_loops
rb loadloop <<'LUA'
runbook { id = "loadloop", title = "Loops at load" }
while true do pcall(function() while true do end end) end
LUA
"$BULKHEAD" plan "$WORK/loadloop.lua" >"$WORK/ll.out" 2>&1 &
BG=$!
spinning "$BG"
stop_with INT
assert_eq 130 "$RC" "plan interrupted while loading"
assert_contains "$(cat "$WORK/ll.out")" "loading the runbook was interrupted by SIGINT"

t bulkhead_plugins_is_bounded_by_a_plugin_that_loops
mkdir -p "$WORK/badplugins"
printf 'while true do end\n' >"$WORK/badplugins/forever.lua"
assert_exit 0 timeout 30 "$BULKHEAD" plugins --plugins "$WORK/badplugins"
assert_contains "$OUT$ERR" "loading the plugin ran more than 100000000 Lua instructions"

t finalizers_are_refused_since_nothing_could_stop_them
# Lua runs __gc with hooks off: a finalizer that loops would hang the
# engine wherever the collector ran it
rb gcloop <<'LUA'
runbook { id = "gcloop", title = "A finalizer loops" }
local keep = setmetatable({}, { __gc = function() while true do end end })
step "s" { run = function(ctx) return 1 end }
LUA
assert_exit 3 timeout 30 "$BULKHEAD" plan "$WORK/gcloop.lua"
assert_contains "$ERR" "gcloop.lua:2: error: setmetatable: __gc (a finalizer) is not allowed"
rb gcstep <<'LUA'
runbook { id = "gcstep", title = "A finalizer made in a step" }
step "s" { run = function(ctx) setmetatable({}, { __gc = function() while true do end end }) end }
LUA
assert_exit 1 timeout 30 "$BULKHEAD" --state-dir "$STATE" run --plain "$WORK/gcstep.lua"
assert_contains "$(end_of s error.message)" "__gc (a finalizer) is not allowed"
rb mt <<'LUA'
runbook { id = "mt", title = "Other metatables are fine" }
step "s" { run = function(ctx) return setmetatable({}, { __index = { x = 1 } }).x end }
LUA
assert_exit 0 bh run --plain "$WORK/mt.lua"
assert_eq 1 "$(end_of s result)"

t three_signals_end_an_engine_stuck_where_nothing_can_stop_it
# C code that never returns (a plugin's C module): no Lua hook runs, nor
# the loop. The first two signals are for the run; a third that nobody
# acted on ends the process, as Ctrl-C always did.
mkdir -p "$WORK/cplugins"
cc -shared -fPIC $(pkg-config --cflags lua5.4) -o "$WORK/cplugins/stuck.so" -x c - <<'C'
#include <lua.h>
static int forever(lua_State *L) { (void)L; for (volatile int x = 0;; x++) {} return 0; }
int luaopen_stuck(lua_State *L) { lua_pushcfunction(L, forever); return 1; }
C
cat >"$WORK/cplugins/stuckp.lua" <<'LUA'
local forever = require("stuck")
return { doc = "Hangs in C.", actions = { hang = { doc = "Hangs.", params = {},
  run = function(ctx, p) forever() end } } }
LUA
rb stuck <<LUA
runbook { id = "stuck", title = "Stuck in C", $PARAMS }
$MARK
step "hang" { timeout = "60s", action = stuckp.hang {} }
LUA
rm -f "$WORK/m9"
"$BULKHEAD" --state-dir "$STATE" run --plain --plugins "$WORK/cplugins" "$WORK/stuck.lua" -p mark="$WORK/m9" \
    >"$WORK/stuck.out" 2>&1 &
BG=$!
marked "$WORK/m9"
spinning "$BG"
kill -INT "$BG"; sleep 0.3
kill -INT "$BG"; sleep 0.3
kill -0 "$BG" 2>/dev/null || fail "two signals should not have ended it yet (they are the run's)"
kill -INT "$BG"
wait_dead "$BG" 50 || fail "the third signal did not end the stuck engine"
wait "$BG"; RC=$?
BG=""
assert_eq 130 "$RC" "ended by SIGINT"

t an_engine_stuck_in_a_c_function_past_its_deadline_ends_itself
# A Lua string pattern that backtracks for hours runs inside C, where no
# hook runs: the watchdog ends the engine 5 s after the step's deadline,
# saying why, and resume takes the run up.
rb pattern <<'LUA'
runbook { id = "pattern", title = "A pattern that never ends" }
step "find" { timeout = "1s", run = function(ctx) return (string.rep("a", 5000):find(".-.-.-.-b")) end }
step "after" { run = function(ctx) return 1 end }
LUA
t0=$(date +%s)
assert_exit 143 timeout 60 "$BULKHEAD" --state-dir "$STATE" run --plain "$WORK/pattern.lua"
took=$(($(date +%s) - t0))
[ "$took" -lt 30 ] || fail "the stuck engine took ${took} s to end (want about 6)"
assert_contains "$ERR" "step 'find' is stuck inside a C function"
assert_contains "$ERR" "bulkhead resume RUN"
assert_jq "$(journal)" '[.[] | select(.type == "run_end")] | length' 0
assert_exit 0 bh verify last
assert_exit 0 bh resume last --skip-unknown --plain
assert_eq ok "$(end_of after status)" "resume went on after the stuck step"

t the_watchdog_armed_for_an_ended_step_does_not_end_the_engine
# The watchdog is armed lazily and never disarmed: armed for the first
# step's deadline (1 s + 5 s), it fires while the second step waits on the
# loop; that alarm must find nothing stuck and the run go on.
rb lazydog <<'LUA'
runbook { id = "lazydog", title = "An early alarm" }
step "quick" { timeout = "1s", run = function(ctx) return 1 end }
step "wait" { timeout = "20s", run = function(ctx) ctx.sleep("6500ms") return 2 end }
step "after" { run = function(ctx) return 3 end }
LUA
assert_exit 0 bh run --plain "$WORK/lazydog.lua"
assert_eq ok "$(end_of after status)" "the run went on past the early alarm"
