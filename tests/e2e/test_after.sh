#!/usr/bin/env bash
# `after`: dependencies between steps.
. "$(dirname "$0")/lib.sh"

starts() { jqs "$(journal)" '[.[] | select(.type == "step_start") | .step] | join(",")'; }
skip_reason() { jqs "$(journal)" "[.[] | select(.type == \"step_skipped\" and .step == \"$1\")][0].reason"; }

t after_orders_steps
cat >"$WORK/order.lua" <<'LUA'
runbook { id = "order", title = "Order", timeout = "30s" }
step "notify" { after = "isolate", run = function(ctx) return ctx.results.isolate end }
step "isolate" { after = { "evidence" }, run = function(ctx) return "isolated" end }
step "evidence" { run = function(ctx) return "kept" end }
step "report" { run = function(ctx) return "done" end }
LUA
assert_exit 0 bh run --plain "$WORK/order.lua"
assert_eq "evidence,isolate,notify,report" "$(starts)" "run order"
assert_jq "$(journal)" '[.[] | select(.type == "step_end" and .step == "notify")][0].result' isolated
assert_exit 0 bh plan "$WORK/order.lua"
assert_contains "$OUT" "after isolate" "plan"

t unknown_dependency_is_a_load_error
printf 'runbook { id = "u", title = "u", timeout = "1m" }\nstep "a" { run = function(ctx) end }\nstep "b" { after = "c", run = function(ctx) end }\n' >"$WORK/unknown.lua"
assert_exit 3 bh check "$WORK/unknown.lua"
assert_contains "$ERR" "unknown.lua:3: error: step 'b': 'after' names 'c', which is not a step"

t cycle_is_a_load_error
cat >"$WORK/cycle.lua" <<'LUA'
runbook { id = "cyc", title = "Cycle", timeout = "1m" }
step "a" { after = "c", run = function(ctx) end }
step "b" { after = "a", run = function(ctx) end }
step "c" { after = "b", run = function(ctx) end }
LUA
assert_exit 3 bh check "$WORK/cycle.lua"
assert_contains "$ERR" "dependency cycle: a -> c -> b -> a"
assert_exit 3 bh run --plain "$WORK/cycle.lua"

t failed_dependency_skips_dependents
cat >"$WORK/blocked.lua" <<'LUA'
runbook { id = "blk", title = "Blocked", timeout = "30s" }
step "restore-db" { on_failure = "continue", run = function(ctx) ctx.exec { "false" } end }
step "check-db" { after = "restore-db", run = function(ctx) return "checked" end }
step "open-db" { after = "check-db", run = function(ctx) return "opened" end }
step "optional" { when = false, run = function(ctx) end }
step "after-optional" { after = "optional", run = function(ctx) return "ran" end }
step "independent" { run = function(ctx) return "ran" end }
LUA
assert_exit 0 bh run --plain "$WORK/blocked.lua"
assert_eq "after: 'restore-db' did not succeed" "$(skip_reason check-db)" "direct dependent"
assert_eq "after: 'check-db' did not succeed" "$(skip_reason open-db)" "transitive dependent"
assert_jq "$(journal)" '[.[] | select(.type == "step_end" and .step == "after-optional")][0].result' ran
assert_jq "$(journal)" '[.[] | select(.type == "step_end" and .step == "independent")][0].result' ran

t plan_dot_shows_the_graph
assert_exit 0 bh plan --dot "$WORK/order.lua"
assert_contains "$OUT" 'digraph "order" {'
assert_contains "$OUT" '"isolate" -> "notify";' "after edge"
assert_contains "$OUT" '"evidence" -> "isolate";' "after edge"
assert_contains "$OUT" '"evidence" -> "isolate" [style=dotted' "run-order edge"
assert_eq "$(printf %s "$OUT" | grep -c '{')" "$(printf %s "$OUT" | grep -c '}')" "balanced braces"
