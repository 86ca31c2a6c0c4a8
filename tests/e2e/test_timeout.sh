#!/usr/bin/env bash
. "$(dirname "$0")/lib.sh"

t step_timeout_kills_group
PF="$WORK/bg.pid"
cat >"$WORK/to.lua" <<LUA
runbook { id = "to", title = "Timeout", kill_grace = "500ms" }
step "slow" {
  timeout = "1s",
  run = function(ctx) ctx.sh("sleep 30 & echo \$! > $PF; sleep 30") end,
}
step "after" { run = function(ctx) return 1 end }
LUA
start=$(date +%s%N)
assert_exit 1 bh run "$WORK/to.lua"
el=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$el" -lt 10000 ] || fail "run took ${el}ms"
J=$(journal)
# its command was cut off while it ran: in doubt, not merely timed out
assert_jq "$J" '.[]|select(.type=="step_end" and .step=="slow")|.status+":"+.error.code' "in_doubt:step_timeout"
assert_jq "$J" '.[-1].type' "run_end"
shpid=$(jqs "$J" '.[]|select(.type=="exec_end")|.pid')
bgpid=$(cat "$PF" 2>/dev/null)
[ -n "$bgpid" ] || fail "no background pid recorded"
[ -n "$shpid" ] && [ "$shpid" != null ] || fail "no exec_end pid"
[ -n "$bgpid" ] && { wait_dead "$bgpid" || fail "background sleep $bgpid still alive"; }
[ -n "$shpid" ] && [ "$shpid" != null ] && { wait_dead "$shpid" || fail "sh $shpid still alive"; }

t sigterm_ignoring_child_killed
cat >"$WORK/ign.lua" <<'LUA'
runbook { id = "ign", title = "Ignores TERM", kill_grace = "500ms" }
step "stubborn" {
  timeout = "1s",
  run = function(ctx) ctx.sh("trap '' TERM; sleep 30") end,
}
LUA
start=$(date +%s%N)
assert_exit 1 bh run "$WORK/ign.lua"
el=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$el" -lt 10000 ] || fail "run took ${el}ms"
J=$(journal)
assert_jq "$J" '.[]|select(.type=="exec_end")|.killed' "true"
assert_jq "$J" '.[]|select(.type=="step_end")|.status' "in_doubt"
p=$(jqs "$J" '.[]|select(.type=="exec_end")|.pid')
wait_dead "$p" || fail "child $p still alive"

t lua_infinite_loop_timeout
cat >"$WORK/loop.lua" <<'LUA'
runbook { id = "loop", title = "Loop" }
step "spin" {
  timeout = "500ms",
  run = function(ctx) while true do pcall(function() while true do end end) end end,
}
step "next" { run = function(ctx) return 1 end }
LUA
start=$(date +%s%N)
assert_exit 1 bh run "$WORK/loop.lua"
el=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$el" -lt 10000 ] || fail "run took ${el}ms"
J=$(journal)
assert_jq "$J" '.[]|select(.type=="step_end" and .step=="spin")|.status+":"+.error.code' "timed_out:step_timeout"
assert_jq "$J" '.[-1].type+":"+.[-1].status' "run_end:failed"

t cli_timeout_applies_and_is_named
cat >"$WORK/clitmo.lua" <<'LUA'
runbook { id = "clitmo", title = "CLI timeout", kill_grace = "200ms" }
step "wait" { run = function(ctx) ctx.exec { "sleep", "30" } end }
LUA
assert_exit 1 bh run --plain --timeout 1s "$WORK/clitmo.lua"
assert_jq "$(journal)" '[.[] | select(.type == "step_start")][0].timeout_ms' 1000
assert_jq "$(journal)" '[.[] | select(.type == "step_end")][0].status' in_doubt
assert_jq "$(journal)" '[.[] | select(.type == "step_end")][0].error.message' "step 'wait' exceeded its timeout of 1.0s"
assert_jq "$(journal)" '[.[] | select(.type == "step_end")][0].doubt' "'sleep' was cut off before it finished (the step's timeout)"

t read_only_command_cut_off_is_timed_out_not_in_doubt
cat >"$WORK/ro.lua" <<'LUA'
runbook { id = "ro", title = "Read-only", kill_grace = "200ms" }
step "look" { timeout = "500ms", run = function(ctx) ctx.exec { "sleep", "30", acts = false } end }
LUA
assert_exit 1 bh run --plain "$WORK/ro.lua"
assert_jq "$(journal)" '[.[] | select(.type == "step_end")][0].status' timed_out
assert_jq "$(journal)" '[.[] | select(.type == "exec_start")][0].acts' false
assert_jq "$(journal)" '[.[] | select(.type == "exec_end")][0].in_doubt // "absent"' absent
cat >"$WORK/badopt.lua" <<'LUA'
runbook { id = "badopt", title = "Bad option" }
step "s" { run = function(ctx) ctx.exec { "true", doubt_exit = { 300 } } end }
LUA
assert_exit 1 bh run --plain "$WORK/badopt.lua"
assert_contains "$(end_of s error.message)" "'doubt_exit' holds at most 8 exit codes, each 1-255"
assert_jq "$(journal)" '[.[] | select(.type == "exec_start")] | length' 0
