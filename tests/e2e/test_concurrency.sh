#!/usr/bin/env bash
# Concurrency: parallel groups, schedule = "graph", each fan-out, caps.
. "$(dirname "$0")/lib.sh"

# Most attempts in flight at once, walking the journal in order.
max_inflight() {
    jqs "$(journal)" 'reduce (.[] | select(.type == "step_start" or .type == "step_end")) as $r
        ({n: 0, max: 0}; .n += (if $r.type == "step_start" then 1 else -1 end)
        | .max = ([.max, .n] | max)) | .max'
}
starts() { jqs "$(journal)" '[.[] | select(.type == "step_start") | .step] | join(",")'; }

t sequential_by_default
cat >"$WORK/seq.lua" <<'LUA'
runbook { id = "seq", title = "Seq", timeout = "30s" }
step "a" { run = function(ctx) ctx.sleep("100ms") end }
step "b" { run = function(ctx) ctx.sleep("100ms") end }
step "c" { run = function(ctx) ctx.sleep("100ms") end }
LUA
assert_exit 0 bh run --plain "$WORK/seq.lua"
assert_eq 1 "$(max_inflight)" "steps without a group never overlap"

t parallel_group_runs_together_then_waits
cat >"$WORK/par.lua" <<'LUA'
runbook { id = "par", title = "Par", timeout = "30s" }
step "first" { run = function(ctx) return 1 end }
parallel {
  step "a" { run = function(ctx) ctx.sleep("300ms") return "a" end },
  step "b" { run = function(ctx) ctx.sleep("300ms") return "b" end },
  step "c" { after = "a", run = function(ctx) return ctx.results.a .. "c" end },
}
step "last" { run = function(ctx) return ctx.results.b .. ctx.results.c end }
LUA
assert_exit 0 bh run --plain --concurrency 4 "$WORK/par.lua"
assert_eq 2 "$(max_inflight)" "a and b overlap"
assert_eq "first,a,b,c,last" "$(starts)" "order"
assert_eq bac "$(end_of last result)" "last waited for the whole group"
assert_exit 0 bh plan "$WORK/par.lua"
assert_contains "$OUT" "runs alongside: b c" "plan shows the group"

t graph_schedule_follows_after_only
cat >"$WORK/graph.lua" <<'LUA'
runbook { id = "graph", title = "Graph", timeout = "30s", schedule = "graph" }
step "a" { run = function(ctx) ctx.sleep("200ms") end }
step "b" { run = function(ctx) ctx.sleep("200ms") end }
step "c" { after = { "a", "b" }, run = function(ctx) ctx.sleep("200ms") end }
step "d" { run = function(ctx) ctx.sleep("200ms") end }
LUA
assert_exit 0 bh run --plain "$WORK/graph.lua" --concurrency 8
assert_eq 3 "$(max_inflight)" "a, b and d start together"
assert_jq "$(journal)" '[.[] | select(.type == "step_start") | .step] as $s | ($s | index("c")) > ($s | index("d"))' true

t each_fans_out_under_its_cap
cat >"$WORK/each.lua" <<'LUA'
runbook { id = "each", title = "Each", timeout = "30s",
          params = { hosts = { type = "list", default = { "h1", "h2", "h3", "h4", "h5", "h6", "h7" }, doc = "hosts" } } }
step "isolate" {
  each = param.hosts, concurrency = 3,
  run = function(ctx, host) ctx.sleep("150ms") return host .. ":" .. ctx.index end,
}
step "count" { run = function(ctx) return #ctx.results.isolate .. " " .. ctx.results.isolate[7] end }
LUA
assert_exit 0 bh run --plain "$WORK/each.lua"
assert_eq 3 "$(max_inflight)" "per-step cap reached and never exceeded"
assert_jq "$(journal)" '[.[] | select(.type == "step_end" and .step == "isolate")] | length' 7
assert_jq "$(journal)" '[.[] | select(.type == "step_start" and .step == "isolate") | .key] | sort | join(",")' "h1,h2,h3,h4,h5,h6,h7"
assert_jq "$(journal)" '[.[] | select(.type == "step_done" and .step == "isolate")][0] | "\(.status) \(.ok)"' "ok 7"
assert_eq "7 h7:7" "$(end_of count result)" "results of a fan-out, by item"
assert_contains "$OUT" "isolate[h3]" "console names the item"

t global_cap_wins_when_given
assert_exit 0 bh run --plain --concurrency 2 "$WORK/each.lua"
assert_eq 2 "$(max_inflight)" "--concurrency is a hard ceiling"
assert_jq "$(journal)" '.[0].concurrency' 2

t each_from_a_function_and_failures
cat >"$WORK/eachfn.lua" <<'LUA'
runbook { id = "eachfn", title = "Each fn", timeout = "30s" }
step "find" { run = function(ctx) return { "a", "bad", "c" } end }
step "act" {
  each = function(ctx) return ctx.results.find end, concurrency = 2,
  run = function(ctx, x) if x == "bad" then error("cannot act on " .. x) end return x end,
}
step "after-act" { run = function(ctx) return 1 end }
LUA
assert_exit 1 bh run --plain "$WORK/eachfn.lua"
assert_jq "$(journal)" '[.[] | select(.type == "step_end" and .step == "act") | .status] | sort | join(",")' "failed,ok,ok"
assert_jq "$(journal)" '[.[] | select(.type == "step_done" and .step == "act")][0].status' failed
assert_jq "$(journal)" '[.[] | select(.type == "step_skipped")][0].step' after-act

t each_of_wrong_type_fails_the_step
cat >"$WORK/eachbad.lua" <<'LUA'
runbook { id = "eachbad", title = "Each bad", timeout = "30s" }
step "act" { each = function(ctx) return 42 end, run = function(ctx, x) end }
LUA
assert_exit 1 bh run --plain "$WORK/eachbad.lua"
assert_eq bad_items "$(end_of act error.code)" "code"
assert_contains "$(end_of act error.message)" "gave a number, not a list"

t empty_fanout_is_ok
cat >"$WORK/eachempty.lua" <<'LUA'
runbook { id = "eachempty", title = "Each empty", timeout = "30s", params = { h = { type = "list", default = {}, doc = "none" } } }
step "act" { each = param.h, run = function(ctx, x) error("never") end }
step "next" { run = function(ctx) return "went on" end }
LUA
assert_exit 0 bh run --plain "$WORK/eachempty.lua"
assert_eq "went on" "$(end_of next result)"

t group_and_unit_errors_at_load
cat >"$WORK/grpbad.lua" <<'LUA'
runbook { id = "grpbad", title = "Bad groups", timeout = "30s" }
parallel {
  step "a" { run = function(ctx) end },
  step "c" { after = "b", run = function(ctx) end },
}
step "b" { after = "a", run = function(ctx) end }
step "d" { concurrency = 2, run = function(ctx) end }
step "e" { every = "1s", run = function(ctx) end }
step "f" { after = "e", run = function(ctx) end }
LUA
assert_exit 3 bh check "$WORK/grpbad.lua"
assert_contains "$ERR" "grpbad.lua:7: error: step 'd': 'concurrency' caps a fan-out: it needs 'each'"
assert_contains "$ERR" "grpbad.lua:9: error: step 'f' waits for 'e', a cadence"
sed -i '/^step "d"/d; /^step "f"/d' "$WORK/grpbad.lua"
assert_exit 3 bh check "$WORK/grpbad.lua"
assert_contains "$ERR" "grpbad.lua:3: error: the parallel group starting with step 'a' waits"

t sigint_cancels_every_running_attempt
cat >"$WORK/sigpar.lua" <<'LUA'
runbook { id = "sigpar", title = "Sig", timeout = "60s" }
step "fan" { each = { 1, 2, 3 }, concurrency = 3, run = function(ctx, i) ctx.exec { "sleep", "30" } end }
LUA
"$BULKHEAD" --state-dir "$STATE" run --plain "$WORK/sigpar.lua" >"$WORK/sp.out" 2>&1 &
pid=$!
wait_for sh -c "[ \$(grep -c exec_start $STATE/runs/*sigpar*/journal.jsonl) -ge 3 ]"
kill -INT $pid
wait $pid; rc=$?
assert_eq 130 "$rc" "exit"
assert_jq "$(journal)" '[.[] | select(.type == "step_end" and .step == "fan") | .status] | join(",")' "in_doubt,in_doubt,in_doubt"
assert_exit 0 bh verify last

t abort_cancels_pending_retries
cat >"$WORK/retryabort.lua" <<'LUA'
runbook { id = "retryabort", title = "Retry abort", timeout = "30s" }
parallel {
  step "b" { retries = 3, backoff = "300ms", run = function(ctx) ctx.sleep("50ms") error("flaky") end },
  step "a" { run = function(ctx) ctx.sleep("100ms") error("fatal") end },
}
LUA
assert_exit 1 bh run --plain "$WORK/retryabort.lua"
assert_jq "$(journal)" '[.[] | select(.type == "step_start" and .step == "b")] | length' 1
assert_jq "$(journal)" '[.[] | select(.type == "retry_cancelled")][0].step' b

t halted_fanout_counts_what_never_started
cat >"$WORK/halt.lua" <<'LUA'
runbook { id = "halt", title = "Halt", timeout = "30s" }
parallel {
  step "iso" { each = { 1, 2, 3, 4, 5 }, concurrency = 1, run = function(ctx, i) ctx.sleep("200ms") end },
  step "bad" { run = function(ctx) ctx.sleep("300ms") error("boom") end },
}
LUA
assert_exit 1 bh run --plain "$WORK/halt.lua"
assert_jq "$(journal)" '[.[] | select(.type == "step_done")][0] | "\(.status) \(.items) \(.ok) \(.failed) \(.not_started)"' "cancelled 5 2 0 3"

t saved_coroutine_loop_is_bounded_by_the_step_that_resumes_it
cat >"$WORK/co.lua" <<'LUA'
runbook { id = "co", title = "Saved coroutine", timeout = "5s" }
local saved
step "a" { run = function(ctx) saved = coroutine.wrap(function() coroutine.yield(1) while true do end end); saved() return 1 end }
step "b" { timeout = "500ms", run = function(ctx) saved() return 2 end }
LUA
assert_exit 1 timeout 20 "$BULKHEAD" --state-dir "$STATE" run --plain "$WORK/co.lua"
assert_eq timed_out "$(end_of b status)"
