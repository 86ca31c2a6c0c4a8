#!/usr/bin/env bash
# Health gates (verify), cadences (every), and what plan and check say.
. "$(dirname "$0")/lib.sh"

t health_gate_passes_on_third_try
cat >"$WORK/gate.lua" <<'LUA'
runbook { id = "gate", title = "Gate", timeout = "30s",
          params = { dir = { type = "string", required = true, doc = "counter" },
                     need = { type = "number", default = 3, doc = "tries until healthy" } } }
step "restore" {
  run = function(ctx) return "started" end,
  verify = function(ctx, result)
    local r = ctx.sh('n=$(cat "$D/n" 2>/dev/null || echo 0); n=$((n+1)); echo $n >"$D/n"; echo $n',
                     { env = { D = param.dir } })
    local n = tonumber(r.stdout)
    return n >= param.need and result == "started", "only " .. n .. " tries"
  end,
  verify_interval = "100ms", verify_timeout = "2s",
  on_failure = "rollback",
}
LUA
mkdir -p "$WORK/g1"
assert_exit 0 bh run --plain "$WORK/gate.lua" -p dir="$WORK/g1"
assert_jq "$(journal)" '[.[] | select(.type == "verify") | "\(.try):\(.healthy)"] | join(",")' "1:false,2:false,3:true"
assert_jq "$(journal)" '[.[] | select(.type == "verify")][0].message' "only 1 tries"
assert_eq ok "$(end_of restore status)"

t failed_health_gate_fails_the_step
mkdir -p "$WORK/g2"
assert_exit 1 bh run --plain "$WORK/gate.lua" -p dir="$WORK/g2" -p need=1000
assert_eq verify_failed "$(end_of restore error.code)"
assert_contains "$(end_of restore error.message)" "still failing after"
tries=$(jqs "$(journal)" '[.[] | select(.type == "verify")] | length')
[ "$tries" -ge 5 ] && [ "$tries" -le 25 ] || fail "gate tried $tries times in 2s at 100ms"
assert_jq "$(journal)" '.[-1].status' rolled_back

t cadence_fires_while_the_run_lives
cat >"$WORK/every.lua" <<'LUA'
runbook { id = "every", title = "Every", timeout = "30s" }
step "updates" { every = "200ms", run = function(ctx) return ctx.rep end }
step "work" { run = function(ctx) ctx.sleep("1100ms") return "done" end }
LUA
assert_exit 0 bh run --plain "$WORK/every.lua"
reps=$(jqs "$(journal)" '[.[] | select(.type == "step_end" and .step == "updates")] | length')
# at 0, 200, ..., 1000 ms: 6 while `work` runs (5 to 7 on a busy machine)
[ "$reps" -ge 5 ] && [ "$reps" -le 7 ] || fail "cadence fired $reps times in 1.1s at 200ms"
assert_jq "$(journal)" '[.[] | select(.type == "step_done" and .step == "updates")][0] | "\(.status) \(.reps)"' "ok $reps"
assert_jq "$(journal)" '[.[] | select(.type == "step_end" and .step == "updates")][-1].result' "$reps"
last_update=$(jqs "$(journal)" '[.[] | select(.type == "step_start" and .step == "updates")][-1].seq')
work_end=$(jqs "$(journal)" '[.[] | select(.type == "step_end" and .step == "work")][0].seq')
[ "$last_update" -lt "$work_end" ] || fail "a repetition started after the run's work ended"

t plan_shows_the_graph
cat >"$WORK/planned.lua" <<'LUA'
runbook { id = "planned", title = "Planned", timeout = "30s",
          params = { hosts = { type = "list", default = { "a", "b" }, doc = "hosts" } } }
phase "contain"
parallel {
  step "isolate" { each = param.hosts, concurrency = 2, approve = "Cuts the hosts off",
                   approvers = 2, destructive = true,
                   run = function(ctx, h) end, undo = function(ctx, h) end },
  step "snapshot" { run = function(ctx) end, undo = false },
}
phase "communicate"
step "brief-legal" { manual = { "Brief legal", "Log the call" }, timeout = "1h" }
step "updates" { every = "30m", run = function(ctx) end }
phase "recover"
step "restore" { after = "isolate", run = function(ctx) end,
                 verify = function(ctx) return true end, on_failure = "rollback" }
LUA
assert_exit 0 bh check --strict "$WORK/planned.lua"
assert_exit 0 bh plan "$WORK/planned.lua"
assert_contains "$OUT" "runs alongside: snapshot"
assert_contains "$OUT" "each: 2 items, at most 2 at once"
assert_contains "$OUT" "approve (2 approvers): Cuts the hosts off"
assert_contains "$OUT" "[ ] Brief legal"
assert_contains "$OUT" "every 30m00s while the run lives"
assert_contains "$OUT" "verify: health gate"
assert_contains "$OUT" "on failure rollback"
assert_exit 0 bh plan --json "$WORK/planned.lua"
p=$(printf %s "$OUT")
assert_eq "2 2 true" "$(printf %s "$p" | jq -r '.phases[0].steps[0] | "\(.each.count) \(.approve.approvers) \(.undo)"')" "json"
assert_eq "Brief legal" "$(printf %s "$p" | jq -r '.phases[1].steps[0].manual[0]')"
assert_eq 1800000 "$(printf %s "$p" | jq -r '.phases[1].steps[1].every_ms')"
assert_eq false "$(printf %s "$p" | jq -r '.phases[0].steps[1].undo')" "undo = false"
assert_exit 0 bh plan --dot "$WORK/planned.lua"
assert_contains "$OUT" 'shape=octagon'
assert_contains "$OUT" 'shape=note'
assert_contains "$OUT" '"isolate" -> "restore";'
assert_not_contains "$OUT" '"isolate" -> "snapshot" [style=dotted' "no order edge inside a group"

t check_warns_about_risky_steps
cat >"$WORK/risky.lua" <<'LUA'
runbook { id = "risky", title = "Risky", timeout = "30s",
          params = { x = { type = "string", default = "y" } } }
phase "containment"
step "wipe" { destructive = true, run = function(ctx) end, undo = function(ctx) end }
step "block" { run = function(ctx) end }
step "call" { manual = "Call the SOC" }
step "never" { when = false, run = function(ctx) end, undo = false }
LUA
assert_exit 0 bh check "$WORK/risky.lua"
assert_contains "$ERR" "risky.lua:4: warning: step 'wipe' is marked destructive but asks no approval"
assert_contains "$ERR" "risky.lua:5: warning: step 'block' contains (phase 'containment') but has no undo"
assert_contains "$ERR" "risky.lua:6: warning: manual task 'call' has no explicit timeout"
assert_contains "$ERR" "risky.lua:7: warning: step 'never' can never run"
assert_contains "$ERR" "parameter 'x' has no doc string"
assert_exit 3 bh check --strict "$WORK/risky.lua"

t bad_semantics_fields_are_load_errors
cat >"$WORK/badsem.lua" <<'LUA'
runbook { id = "badsem", title = "Bad", timeout = "30s", schedule = "chaos" }
step "a" { each = 5, run = function(ctx) end }
step "b" { approvers = 2, run = function(ctx) end }
step "c" { manual = {}, timeout = "1m" }
step "d" { manual = "x", run = function(ctx) end }
step "e" { every = "1s", each = { 1 }, run = function(ctx) end }
step "f" { verify_timeout = "1s", run = function(ctx) end }
step "g" { undo = "yes", run = function(ctx) end }
LUA
assert_exit 3 bh check "$WORK/badsem.lua"
assert_contains "$ERR" "badsem.lua:1: error: runbook: schedule must be"
assert_contains "$ERR" "badsem.lua:2: error: step 'a': 'each' must be a list"
assert_contains "$ERR" "badsem.lua:3: error: step 'b': approvers, approve_timeout and on_approval_timeout need"
assert_contains "$ERR" "badsem.lua:4: error: step 'c': 'manual' needs at least one checklist item"
assert_contains "$ERR" "badsem.lua:5: error: step 'd': a manual task has no 'run' function"
assert_contains "$ERR" "badsem.lua:6: error: step 'e': a step cannot both repeat"
assert_contains "$ERR" "badsem.lua:7: error: step 'f': verify_timeout and verify_interval need"
assert_contains "$ERR" "badsem.lua:8: error: step 'g': 'undo' must be a function"
