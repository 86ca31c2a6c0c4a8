#!/usr/bin/env bash
# Retries with exponential backoff, and on_failure = "continue".
. "$(dirname "$0")/lib.sh"

ends() { jqs "$(journal)" "[.[] | select(.type == \"step_end\" and .step == \"$1\")] | $2"; }

cat >"$WORK/flaky.lua" <<'LUA'
runbook { id = "flaky", title = "Flaky",
          params = { dir = { type = "string", required = true, doc = "attempt counter" },
                     ok_at = { type = "number", default = 3, doc = "attempt that succeeds" } } }
step "flaky" { retries = 3, backoff = "100ms", run = function(ctx)
  ctx.sh('n=$(cat "$D/n" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$D/n"; [ $n -ge "$OK" ]',
         { env = { D = param.dir, OK = tostring(param.ok_at) } })
  return ctx.attempt
end }
step "after" { run = function(ctx) return "reached" end }
LUA

t retry_succeeds_on_third_attempt
mkdir -p "$WORK/c1"
assert_exit 0 bh run --plain "$WORK/flaky.lua" -p dir="$WORK/c1"
assert_eq 3 "$(cat "$WORK/c1/n")" "attempts made"
assert_eq "1,2,3" "$(ends flaky 'map(.attempt) | join(",")')" "attempts recorded"
assert_eq "failed,failed,ok" "$(ends flaky 'map(.status) | join(",")')" "statuses"
assert_eq "retry,retry" "$(ends flaky 'map(.next // empty) | join(",")')" "next"
assert_eq 3 "$(ends flaky '.[-1].result')" "result is the attempt number"
# backoff: base 100ms doubling, jitter in [0.5, 1): 50..100 then 100..200
assert_jq "$(journal)" '[.[] | select(.type == "retry")] | map(.attempt) | join(",")' "2,3"
assert_jq "$(journal)" '[.[] | select(.type == "retry")][0].delay_ms | (. >= 50 and . < 100)' true
assert_jq "$(journal)" '[.[] | select(.type == "retry")][1].delay_ms | (. >= 100 and . < 200)' true
assert_jq "$(journal)" '.[-1].status' ok

t retries_exhausted_abort_the_run
mkdir -p "$WORK/c2"
assert_exit 1 bh run --plain "$WORK/flaky.lua" -p dir="$WORK/c2" -p ok_at=10
assert_eq 4 "$(cat "$WORK/c2/n")" "attempts made (1 + 3 retries)"
assert_eq "retry,retry,retry,abort" "$(ends flaky 'map(.next) | join(",")')" "next"
assert_jq "$(journal)" '[.[] | select(.type == "step_skipped")][0].step' after
assert_jq "$(journal)" '.[-1].status' failed

t on_failure_continue_lets_the_run_go_on
cat >"$WORK/cont.lua" <<'LUA'
runbook { id = "cont", title = "Continue" }
step "notify" { on_failure = "continue", run = function(ctx) ctx.exec { "false" } end }
step "contain" { run = function(ctx) return "done" end }
LUA
assert_exit 0 bh run --plain "$WORK/cont.lua"
assert_eq "failed" "$(ends notify '.[0].status')" "notify status"
assert_eq "continue" "$(ends notify '.[0].next')" "notify next"
assert_eq "done" "$(ends contain '.[0].result')" "later step ran"
assert_jq "$(journal)" '.[-1].counts.failed' 1

t bad_retry_fields_are_load_errors
cat >"$WORK/badretry.lua" <<'LUA'
runbook { id = "badretry", title = "Bad" }
step "a" { retries = -1, run = function(ctx) end }
step "b" { on_failure = "shrug", run = function(ctx) end }
step "c" { on_failure = "rollback", run = function(ctx) end }
step "d" { backoff = "later", run = function(ctx) end }
LUA
assert_exit 3 bh check "$WORK/badretry.lua"
assert_contains "$ERR" "badretry.lua:2: error: step 'a': 'retries' must be a whole number"
assert_contains "$ERR" "badretry.lua:3: error: step 'b': on_failure must be \"abort\", \"continue\" or \"rollback\", not \"shrug\""
assert_not_contains "$ERR" "badretry.lua:4: error"
assert_contains "$ERR" "badretry.lua:5: error: step 'd': 'backoff' is not a positive duration"

t interrupt_during_backoff_stops_retrying
mkdir -p "$WORK/c3"
sed 's/backoff = "100ms"/backoff = "20s"/' "$WORK/flaky.lua" >"$WORK/slowretry.lua"
"$BULKHEAD" --state-dir "$STATE" run --plain "$WORK/slowretry.lua" -p dir="$WORK/c3" >"$WORK/sr.out" 2>&1 &
pid=$!
for _ in $(seq 1 100); do grep -q '"type":"retry"' "$(journal)" 2>/dev/null && break; sleep 0.05; done
kill -INT "$pid"
wait "$pid"; rc=$?
assert_eq 130 "$rc" "exit code"
assert_eq 1 "$(cat "$WORK/c3/n")" "attempts made"
assert_jq "$(journal)" '[.[] | select(.type == "retry_cancelled")][0].attempt' 2
assert_jq "$(journal)" '.[-1].status' interrupted
assert_jq "$(journal)" '[.[] | select(.type == "step_skipped")][0].step' after

t plan_shows_retry_policy
assert_exit 0 bh plan "$WORK/cont.lua"
assert_contains "$OUT" "on failure continue" "plan"
assert_exit 0 bh plan "$WORK/flaky.lua" -p dir=x --json
assert_eq 3 "$(printf %s "$OUT" | jq '.phases[0].steps[0].retries')" "plan --json retries"

t show_reports_the_last_attempt
mkdir -p "$WORK/c4"
assert_exit 0 bh run --plain "$WORK/flaky.lua" -p dir="$WORK/c4"
assert_exit 0 bh show last
assert_contains "$OUT" "(3 attempts)" "show"
assert_not_contains "$OUT" "error:" "show of a step that succeeded in the end"
assert_exit 0 bh show last --json
assert_eq "ok|null|3" "$(printf %s "$OUT" | jq -r '.steps[0] | "\(.status)|\(.error)|\(.attempts)"')" "show --json"
