#!/usr/bin/env bash
# `when`: a condition on a step, from parameters or earlier results.
. "$(dirname "$0")/lib.sh"


cat >"$WORK/when.lua" <<'LUA'
runbook { id = "when", title = "Conditions",
          params = { breach = { type = "boolean", default = false, doc = "data left the building" } } }
step "probe" { run = function(ctx) return { exposed = 3 } end }
step "notify-regulator" {
  when = function(ctx) return param.breach or ctx.results.probe.exposed > 5 end,
  run = function(ctx) return "notified" end,
}
step "count" {
  -- a condition may wait on a command too
  when = function(ctx) return ctx.exec { "true" }.ok end,
  run = function(ctx) return ctx.results.probe.exposed end,
}
step "never" { when = false, run = function(ctx) return "ran" end }
step "last" { run = function(ctx) return ctx.results["notify-regulator"] or "skipped" end }
LUA

t when_false_skips_with_reason
assert_exit 0 bh run --plain "$WORK/when.lua"
assert_eq skipped "$(end_of notify-regulator status)" "status"
assert_eq "when: the condition is false" "$(end_of notify-regulator reason)" "reason"
assert_eq 3 "$(end_of count result)" "count ran after its condition waited on exec"
assert_jq "$(journal)" '[.[] | select(.type == "step_skipped" and .step == "never")][0].reason' "when = false"
assert_eq skipped "$(end_of last result)" "later steps see no result for a skipped step"
assert_jq "$(journal)" '.[-1].status' ok

t when_true_from_parameter_runs
assert_exit 0 bh run --plain "$WORK/when.lua" -p breach=true
assert_eq ok "$(end_of notify-regulator status)" "status"
assert_eq notified "$(end_of last result)" "result seen later"

t when_that_raises_fails_the_step
cat >"$WORK/whenerr.lua" <<'LUA'
runbook { id = "whenerr", title = "Bad condition" }
step "a" { when = function(ctx) return ctx.results.nothing.here end, run = function(ctx) end }
LUA
assert_exit 1 bh run --plain "$WORK/whenerr.lua"
assert_eq failed "$(end_of a status)" "status"
assert_eq 2 "$(end_of a error.line)" "error line"

t when_of_wrong_type_is_a_load_error
printf 'runbook { id = "w", title = "w" }\nstep "a" { when = "yes", run = function(ctx) end }\n' >"$WORK/wt.lua"
assert_exit 3 bh check "$WORK/wt.lua"
assert_contains "$ERR" "wt.lua:2: error: step 'a': 'when' must be a boolean or a function"

t when_is_asked_once_not_on_retries
cat >"$WORK/whenretry.lua" <<'LUA'
runbook { id = "wr", title = "when and retries", timeout = "10s" }
step "g" { retries = 2, backoff = "10ms",
           when = function(ctx) return ctx.attempt == 1 end,
           run = function(ctx) error("still broken") end }
step "h" { after = "g", run = function(ctx) return "ran" end }
LUA
assert_exit 1 bh run --plain "$WORK/whenretry.lua"
assert_jq "$(journal)" '[.[] | select(.type == "step_end" and .step == "g") | .status] | join(",")' "failed,failed,failed"
assert_jq "$(journal)" '[.[] | select(.type == "step_end" and .step == "h")] | length' 0

t when_skip_reason_is_shown
assert_exit 0 bh run --plain "$WORK/when.lua"
assert_contains "$OUT" "when: the condition is false" "console"
assert_exit 0 bh show last
assert_contains "$OUT" "reason: when: the condition is false" "show"
