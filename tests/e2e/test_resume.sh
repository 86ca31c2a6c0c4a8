#!/usr/bin/env bash
# Resume: an engine killed (SIGKILL) or interrupted goes on from its journal.
# Completed steps never run again, unknown outcomes are decided, leftovers
# of the dead engine are stopped, and the journal still verifies.
. "$(dirname "$0")/lib.sh"

# The runbook: a, then b (blocks until $D/go exists), then c, which uses
# a's result. Every step appends a marker to $D/log.
cat >"$WORK/three.lua" <<'LUA'
runbook { id = "three", title = "Three steps", timeout = "30s",
          params = { dir = { type = "string", required = true, doc = "markers" },
                     idem = { type = "boolean", default = false, doc = "b is idempotent" } } }
local function mark(ctx, text) ctx.exec { "tee", "-a", param.dir .. "/log", stdin = text .. "\n" } end
step "a" { run = function(ctx) mark(ctx, "a") return { token = "tok-" .. ctx.run_id:sub(-6) } end }
step "b" { idempotent = param.idem,
  run = function(ctx)
    ctx.sh('while [ ! -e "$D/go" ]; do sleep 0.05; done', { env = { D = param.dir } })
    mark(ctx, "b")
    return "b-done"
  end }
step "c" { after = "b", run = function(ctx) mark(ctx, "c " .. ctx.results.a.token) return ctx.results.b end }
LUA

# The newest run's journal (run ids sort by start time); "" before any.
newest() { local d; d=$(ls -d "$STATE"/runs/*/ 2>/dev/null | sort | tail -n1); [ -n "$d" ] && echo "${d}journal.jsonl"; }
# bg_run ARGS...: start `bulkhead run ARGS` in the background, wait for its
# run folder; $BG is its pid.
bg_run() {
    local before; before=$(newest)
    "$BULKHEAD" --state-dir "$STATE" run --plain "$@" >"$WORK/bg.out" 2>&1 &
    BG=$!
    new_run() { [ -n "$(newest)" ] && [ "$(newest)" != "$before" ] && [ -s "$(newest)" ]; }
    wait_for new_run || fail "no new run started"
}
# started PATTERN: the newest journal has a record matching PATTERN.
started() { grep -q "$1" "$(newest)"; }
# start_killed DIR [ARGS...]: run three.lua in the background, SIGKILL the
# engine once b's command is running (the command itself lives on).
start_killed() {
    local dir=$1; shift
    mkdir -p "$dir"
    bg_run "$WORK/three.lua" -p dir="$dir" "$@"
    wait_for started '"type":"exec_start","step":"b"' || fail "b never started"
    kill -KILL $BG
    wait $BG 2>/dev/null
}
count() { grep -c "^$2" "$1" 2>/dev/null || true; }
# Commands a killed engine left waiting for their go file, in tests where no
# resume stopped them (a refused resume), end with the test file.
release_leftovers() {
    local d; for d in "$WORK"/*/; do touch "$d/go" 2>/dev/null; done
    sleep 0.3 # they look every 50 ms; the folder is deleted once we exit
    _t_finish
}
trap release_leftovers EXIT

t completed_steps_never_run_again_and_results_carry_over
start_killed "$WORK/r1"
assert_eq "a" "$(cat "$WORK/r1/log")" "before resume"
touch "$WORK/r1/go"
assert_exit 0 bh resume last --retry-unknown
assert_eq 1 "$(count "$WORK/r1/log" a)" "a ran once"
assert_eq 1 "$(count "$WORK/r1/log" b)" "b once after its retry"
tok=$(jqs "$(newest)" '[.[] | select(.type == "step_end" and .step == "a")][0].result.token')
assert_eq "c $tok" "$(grep '^c' "$WORK/r1/log")" "c saw a's recorded result"
assert_jq "$(newest)" '[.[] | select(.type == "step_start" and .step == "a")] | length' 1
assert_jq "$(newest)" '[.[] | select(.type == "step_start" and .step == "b")] | map(.attempt) | join(",")' "1,2"
assert_jq "$(newest)" '[.[] | select(.type == "step_end" and .step == "b")] | map(.status) | join(",")' "unknown,ok"
assert_jq "$(newest)" '.[] | select(.type == "unknown_outcome") | "\(.step) \(.attempt) \(.was) \(.decision) \(.how)"' "b 1 in_flight retry flag"
assert_jq "$(newest)" '.[-1] | "\(.type) \(.status)"' "run_end ok"
assert_jq "$(newest)" '[.[] | select(.type == "run_resumed")][0].previous' "died"
assert_exit 0 bh verify last
assert_exit 0 bh show last
assert_contains "$OUT" "run $(basename "$(last_run_dir)"): ok"

t unknown_outcome_needs_a_decision_and_nothing_changes_without_one
start_killed "$WORK/r2"
before=$(sha256sum <"$(newest)")
assert_exit 2 bh resume last
assert_contains "$ERR" "b, attempt 1 (was running)"
assert_contains "$ERR" "--retry-unknown"
assert_eq "$before" "$(sha256sum <"$(newest)")" "journal untouched"
assert_exit 2 bh resume last --retry-unknown --skip-unknown
assert_exit 2 bh resume last --retry-unknown=nosuch
assert_contains "$ERR" "no such step"
assert_exit 2 bh resume last --retry-unknown --approve nosuch
assert_contains "$ERR" "--approve nosuch: the runbook has no such step"
assert_eq "$before" "$(sha256sum <"$(newest)")" "journal untouched by refused resumes"
touch "$WORK/r2/go"

t skipped_unknown_ends_unknown_and_the_run_goes_on
assert_exit 0 bh resume last --skip-unknown=b
assert_jq "$(newest)" '[.[] | select(.type == "step_start" and .step == "b")] | length' 1
# b had started its command: it may have acted, so it is in doubt (not
# merely unknown), with its undo registered, and the run goes on
assert_eq in_doubt "$(jqs "$(newest)" '[.[] | select(.type == "step_end" and .step == "b")][-1].status')"
assert_contains "$(jqs "$(newest)" '[.[] | select(.type == "step_end" and .step == "b")][-1].doubt')" \
    "the engine stopped after the attempt had started"
assert_contains "$(cat "$WORK/r2/log")" "c tok-" "c ran after b in doubt (the operator chose to go on)"
assert_jq "$(newest)" '[.[] | select(.type == "run_end")][-1].counts.in_doubt' 1
assert_jq "$(newest)" '[.[] | select(.type == "run_end")][-1].status' ok
assert_exit 0 bh show last
assert_contains "$OUT" "in doubt"
assert_exit 0 bh verify last

t idempotent_step_runs_again_by_itself
start_killed "$WORK/r3" -p idem=true
touch "$WORK/r3/go"
assert_exit 0 bh resume last
assert_jq "$(newest)" '.[] | select(.type == "unknown_outcome") | "\(.decision) \(.how)"' "retry idempotent"
assert_eq "$(printf 'a\nb\nc')" "$(sed 's/ tok-.*//' "$WORK/r3/log")"

t leftover_command_of_the_dead_engine_is_stopped
start_killed "$WORK/r4"
spid=$(jqs "$(newest)" '[.[] | select(.type == "exec_start" and .step == "b")][0].pid')
pid_dead "$spid" && fail "the command should have outlived the engine"
assert_exit 0 bh resume last --skip-unknown
wait_dead "$spid" || fail "leftover $spid still alive"
assert_jq "$(newest)" "[.[] | select(.type == \"run_resumed\")][0].leftovers_stopped | map(.pid) | index($spid) != null" true
assert_eq 0 "$(count "$WORK/r4/log" 'b$')" "the stopped command did not finish its work"

t interrupted_run_resumes_and_its_skipped_steps_run
mkdir -p "$WORK/r5"
bg_run "$WORK/three.lua" -p dir="$WORK/r5"
wait_for started '"type":"exec_start","step":"b"'
kill -INT $BG; wait $BG; rc=$?
assert_eq 130 "$rc"
assert_jq "$(newest)" '.[-1].status' interrupted
assert_jq "$(newest)" '.[] | select(.type == "step_skipped") | "\(.step) \(.cause)"' "c halt"
touch "$WORK/r5/go"
assert_exit 0 bh resume last --retry-unknown
assert_jq "$(newest)" '.[] | select(.type == "unknown_outcome") | .was' cancelled
assert_jq "$(newest)" '[.[] | select(.type == "run_end")] | map(.status) | join(",")' "interrupted,ok"
assert_eq 1 "$(count "$WORK/r5/log" c)"
assert_exit 0 bh runs
assert_contains "$OUT" "ok"
assert_exit 0 bh verify last

t answered_at_the_terminal_prompt
if ! command -v script >/dev/null; then skip "script(1) not installed"; else
    start_killed "$WORK/r6"
    touch "$WORK/r6/go"
    ( sleep 1; echo "retry" ) | script -qec "'$BULKHEAD' --state-dir '$STATE' resume last --plain" /dev/null >"$WORK/tty.out" 2>&1
    assert_contains "$(cat "$WORK/tty.out")" "retry or skip?"
    assert_jq "$(newest)" '.[] | select(.type == "unknown_outcome") | "\(.decision) \(.how)"' "retry prompt"
    assert_jq "$(newest)" '.[-1].status' ok
fi

t finished_run_and_changed_runbook_are_refused
mkdir -p "$WORK/r7"; touch "$WORK/r7/go"
assert_exit 0 bh run --plain "$WORK/three.lua" -p dir="$WORK/r7"
assert_exit 1 bh resume last
assert_contains "$ERR" "has finished (ok)"
cp "$WORK/three.lua" "$WORK/three.orig"
start_killed "$WORK/r8"
echo "-- edited" >>"$WORK/three.lua"
before=$(sha256sum <"$(newest)")
assert_exit 3 bh resume last --retry-unknown
assert_contains "$ERR" "has changed since the run"
assert_eq "$before" "$(sha256sum <"$(newest)")" "journal untouched"
cp "$WORK/three.orig" "$WORK/three.lua"
touch "$WORK/r8/go"
assert_exit 0 bh resume last --retry-unknown

t one_engine_per_run_and_torn_or_corrupt_journals
mkdir -p "$WORK/r9"
bg_run "$WORK/three.lua" -p dir="$WORK/r9"
wait_for started '"type":"exec_start","step":"b"'
assert_exit 1 bh resume last --retry-unknown
assert_contains "$ERR" "in use by another engine (pid $BG)"
kill -KILL $BG; wait $BG 2>/dev/null
printf '{"seq":99,"ty' >>"$(newest)"        # a record torn by the kill
touch "$WORK/r9/go"
assert_exit 0 bh resume last --retry-unknown
assert_jq "$(newest)" '.[] | select(.type == "journal_recovered") | .cut_bytes' 13
assert_exit 0 bh verify last
start_killed "$WORK/r10"
j=$(newest)
off=$(stat -c %s "$j")
echo '{"seq":1000,"not json' >>"$j"         # complete, but not a record
assert_exit 5 bh resume last --retry-unknown
assert_contains "$ERR" "at byte $off"

t fanout_resumes_with_the_items_it_had
cat >"$WORK/fan.lua" <<'LUA'
runbook { id = "fan", title = "Fan-out", timeout = "30s",
          params = { dir = { type = "string", required = true, doc = "markers" } } }
step "hosts" { each = { "h1", "h2", "h3", "h4", "h5", "h6" }, concurrency = 2, idempotent = true,
  run = function(ctx, h)
    if h == "h4" then ctx.sh('while [ ! -e "$D/go" ]; do sleep 0.05; done', { env = { D = param.dir } }) end
    -- idempotent: the marker is written once however often this runs
    ctx.sh('grep -qx "$H" "$D/log" 2>/dev/null || echo "$H" >>"$D/log"', { env = { D = param.dir, H = h } })
    return h
  end }
step "after" { run = function(ctx) return #ctx.results.hosts end }
LUA
mkdir -p "$WORK/f1"
bg_run "$WORK/fan.lua" -p dir="$WORK/f1"
wait_for started '"type":"exec_start","step":"hosts","item":4'
sleep 0.3
kill -KILL $BG; wait $BG 2>/dev/null
done_before=$(jqs "$(newest)" '[.[] | select(.type == "step_end" and .status == "ok") | .item] | sort | join(",")')
touch "$WORK/f1/go"
assert_exit 0 bh resume last
for h in 1 2 3 4 5 6; do assert_eq 1 "$(count "$WORK/f1/log" "h$h")" "marker h$h"; done
for i in ${done_before//,/ }; do
    assert_jq "$(newest)" "[.[] | select(.type == \"step_start\" and .item == $i)] | length" 1
done
assert_jq "$(newest)" '[.[] | select(.type == "step_end" and .step == "after")][0].result' 6
assert_jq "$(newest)" '[.[] | select(.type == "fanout")] | length' 1

t fanout_whose_items_changed_is_refused
cat >"$WORK/clock.lua" <<'LUA'
runbook { id = "clock", title = "Items from the clock", timeout = "30s",
          params = { dir = { type = "string", required = true, doc = "markers" } } }
step "each-second" { each = function() return { tostring(os.time()), "x" } end,
  run = function(ctx, v)
    ctx.sh('while [ ! -e "$D/go" ]; do sleep 0.05; done', { env = { D = param.dir } })
  end }
LUA
mkdir -p "$WORK/c1"
bg_run "$WORK/clock.lua" -p dir="$WORK/c1"
wait_for started '"type":"exec_start"'
kill -KILL $BG; wait $BG 2>/dev/null
sleep 1.1
assert_exit 3 bh resume last --retry-unknown
assert_contains "$ERR" "is not the one the run started"
touch "$WORK/c1/go"

t approvals_asked_again_only_when_not_given
cat >"$WORK/appr.lua" <<'LUA'
runbook { id = "appr", title = "Approvals", timeout = "30s",
          params = { dir = { type = "string", required = true, doc = "markers" } } }
step "risky" { approve = "Takes the site down", undo = false,
  run = function(ctx) ctx.sh('while [ ! -e "$D/go" ]; do sleep 0.05; done', { env = { D = param.dir } }) end }
step "riskier" { approve = "Wipes the disk", run = function(ctx) return "wiped" end }
LUA
mkdir -p "$WORK/a1"
bg_run --no-prompt --approve risky "$WORK/appr.lua" -p dir="$WORK/a1"
wait_for started '"type":"exec_start"'
kill -KILL $BG; wait $BG 2>/dev/null
touch "$WORK/a1/go"
assert_exit 0 bh resume last --retry-unknown --approve riskier
assert_jq "$(newest)" '[.[] | select(.type == "approval_wait") | .step] | join(",")' "risky,riskier"
assert_jq "$(newest)" '.[-1].status' ok

t rollback_cut_off_goes_on_after_resume
cat >"$WORK/rb.lua" <<'LUA'
runbook { id = "rollback", title = "Rollback", timeout = "30s",
          params = { dir = { type = "string", required = true, doc = "markers" } } }
local function mark(ctx, text) ctx.exec { "tee", "-a", param.dir .. "/log", stdin = text .. "\n" } end
step "one" { run = function(ctx) mark(ctx, "do one") end, undo = function(ctx) mark(ctx, "undo one") end }
step "two" { run = function(ctx) mark(ctx, "do two") end,
  undo = function(ctx)
    ctx.sh('while [ ! -e "$D/go" ]; do sleep 0.05; done', { env = { D = param.dir } })
    mark(ctx, "undo two")
  end }
step "three" { on_failure = "rollback", run = function(ctx) error("broken") end }
LUA
mkdir -p "$WORK/b1"
bg_run "$WORK/rb.lua" -p dir="$WORK/b1"
undo_two_running() { [ "$(jqs "$(newest)" '[.[] | select(.type == "exec_start" and .step == "two")] | length')" = 2 ]; }
wait_for undo_two_running
kill -KILL $BG; wait $BG 2>/dev/null
touch "$WORK/b1/go"
assert_exit 1 bh resume last --retry-unknown
assert_eq "$(printf 'do one\ndo two\nundo two\nundo one')" "$(cat "$WORK/b1/log")" "undone once each, newest first"
assert_jq "$(newest)" '.[-1] | "\(.status) \(.undone)"' "rolled_back 2"
assert_exit 0 bh verify last

t run_settings_and_signatures_carry_over
start_killed "$WORK/s1" --timeout 42s
touch "$WORK/s1/go"
assert_exit 0 "$BULKHEAD" keygen --out "$WORK/k"
assert_exit 0 bh resume last --retry-unknown --sign-key "$WORK/k.key"
assert_jq "$(newest)" '[.[] | select(.type == "step_start" and .step == "b")] | map(.timeout_ms) | join(",")' "42000,42000"
assert_exit 0 bh verify last --key "$WORK/k.pub"

t show_tells_the_resume
assert_exit 0 bh show last
assert_contains "$OUT" "resumed  "
assert_contains "$OUT" "(before: died"
assert_exit 0 bh show last --json
assert_eq run_resumed "$(printf %s "$OUT" | jq -r '.events[0].type')"

t approval_waived_on_timeout_is_not_asked_again
cat >"$WORK/waive.lua" <<'LUA'
runbook { id = "waive", title = "Waived approval", timeout = "30s",
          params = { dir = { type = "string", required = true, doc = "markers" } } }
local function mark(ctx, text) ctx.exec { "tee", "-a", param.dir .. "/log", stdin = text .. "\n" } end
step "a" { approve = "x", approve_timeout = "300ms", on_approval_timeout = "approve", undo = false,
           run = function(ctx) mark(ctx, "a") end }
step "b" { run = function(ctx)
  ctx.sh('while [ ! -e "$D/go" ]; do sleep 0.05; done', { env = { D = param.dir } })
end }
LUA
mkdir -p "$WORK/w1"
bg_run --no-prompt "$WORK/waive.lua" -p dir="$WORK/w1"
wait_for started '"type":"exec_start","step":"b"'
kill -KILL $BG; wait $BG 2>/dev/null
touch "$WORK/w1/go"
assert_exit 0 bh resume last --skip-unknown --no-prompt
assert_eq 1 "$(count "$WORK/w1/log" a)" "a ran once"
assert_jq "$(newest)" '[.[] | select(.type == "approval_wait")] | length' 1

t partial_approvals_stand_after_a_crash
cat >"$WORK/two.lua" <<'LUA'
runbook { id = "two", title = "Two approvers", timeout = "30s" }
step "wipe" { approve = "wipes the disk", approvers = 2, undo = false, run = function(ctx) return "wiped" end }
LUA
why=$(other_accounts_missing)
if [ -n "$why" ]; then skip "$why"; else
    mkdir -p "$STATE/runs"
    let_group_pass "$APPROVERS_GROUP" "$WORK" "$STATE" "$STATE/runs"
    bg_run --no-prompt --approvers-group "$APPROVERS_GROUP" "$WORK/two.lua"
    wait_for started '"type":"approval_wait"'
    wait_for sh -c "ls $STATE/runs/*/control.sock >/dev/null 2>&1"
    assert_exit 0 bh approve last wipe --as alice --reason "first"
    kill -KILL $BG; wait $BG 2>/dev/null
    dir=$(dirname "$(newest)")
    "$BULKHEAD" --state-dir "$STATE" resume last --no-prompt --plain >"$WORK/two.out" 2>&1 &
    pid=$!
    two_waiting() { [ "$(jqs "$(newest)" '[.[] | select(.type == "approval_wait")] | length')" = 2 ]; }
    wait_for two_waiting
    wait_for sh -c "[ -S $dir/control.sock ]"
    # the identities stand: alice's account, and her name
    assert_exit 1 bh approve last wipe --as alice --reason "again"
    assert_contains "$ERR" "alice (uid 0) already approved step 'wipe'"
    assert_exit 1 bh approve last wipe --as bob --reason "another name, the same account"
    assert_contains "$ERR" "uid 0 already approved step 'wipe' as alice"
    # the resumed engine kept the run's approvers group
    assert_exit 1 as_account 65534 "$APPROVERS_GROUP" "$BULKHEAD" approve "$dir" wipe --as Alice --reason "her name"
    assert_contains "$ERR" "an approval by alice already counts for step 'wipe'"
    assert_exit 0 as_account 65534 "$APPROVERS_GROUP" "$BULKHEAD" approve "$dir" wipe --as bob --reason "second"
    wait $pid; rc=$?
    assert_eq 0 "$rc" "the resumed run ends once the second person approved"
    assert_eq wiped "$(jqs "$(newest)" '[.[] | select(.type == "step_end" and .step == "wipe")][0].result')"
    assert_eq "0:alice:1,65534:bob:2" "$(jqs "$(newest)" '[.[] | select(.type == "approval") | "\(.uid):\(.by):\(.approvals)"] | join(",")')"
    assert_jq "$(newest)" '[.[] | select(.type == "run_resumed")][0].approvers_group.name' "$APPROVERS_GROUP"
fi

t retry_decision_survives_a_second_stop
cat >"$WORK/fc.lua" <<'LUA'
runbook { id = "fc", title = "Fan-out, cut twice", timeout = "30s",
          params = { dir = { type = "string", required = true, doc = "markers" } } }
step "hosts" { each = { "h1", "h2", "h3" }, concurrency = 3,
  run = function(ctx, h)
    ctx.sh('while [ ! -e "$D/go" ]; do sleep 0.05; done; echo "$H" >>"$D/log"',
           { env = { D = param.dir, H = h } })
  end }
LUA
mkdir -p "$WORK/fc"
bg_run "$WORK/fc.lua" -p dir="$WORK/fc"
three() { [ "$(grep -c '"type":"exec_start"' "$(newest)")" = 3 ]; }
wait_for three
kill -KILL $BG; wait $BG 2>/dev/null
"$BULKHEAD" --state-dir "$STATE" resume last --retry-unknown --concurrency 1 --plain >/dev/null 2>&1 &
pid=$!
one_again() { [ "$(grep -c '"type":"exec_start"' "$(newest)")" = 4 ]; }
wait_for one_again
kill -INT $pid; wait $pid
touch "$WORK/fc/go"
assert_exit 0 bh resume last --retry-unknown
for h in h1 h2 h3; do assert_eq 1 "$(count "$WORK/fc/log" "$h")" "$h ran to its end once"; done
assert_jq "$(newest)" '[.[] | select(.type == "run_end")][-1].counts.ok' 1

t rollback_resumed_after_an_interrupt_asks_and_counts_right
mkdir -p "$WORK/b2"
bg_run "$WORK/rb.lua" -p dir="$WORK/b2"
wait_for undo_two_running
kill -INT $BG; wait $BG
assert_exit 2 bh resume last
assert_contains "$ERR" "undo(s) of the rollback"
touch "$WORK/b2/go"
assert_exit 1 bh resume last --retry-unknown
assert_eq "$(printf 'do one\ndo two\nundo two\nundo one')" "$(cat "$WORK/b2/log")"
assert_jq "$(newest)" '.[-1] | "\(.status) \(.undone) \(.undo_failed) \(.counts.undone) \(.counts.failed) \(.counts.pending)"' "rolled_back 2 0 2 1 null"

t fanout_with_secret_items_resumes
cat >"$WORK/fos.lua" <<'LUA'
runbook { id = "fos", title = "Items holding a secret", timeout = "30s",
          params = { dir = { type = "string", required = true, doc = "markers" } } }
local tok = secret("FOS_TOKEN")
step "hosts" { each = { { host = "h1", token = tok }, { host = "h2", token = tok } }, concurrency = 1,
  run = function(ctx, it)
    if it.host == "h2" then ctx.sh('while [ ! -e "$D/go" ]; do sleep 0.05; done', { env = { D = param.dir } }) end
    return it.host
  end }
LUA
export FOS_TOKEN=fos-secret-value-1
mkdir -p "$WORK/fos"
bg_run "$WORK/fos.lua" -p dir="$WORK/fos"
wait_for started '"type":"exec_start","step":"hosts","item":2'
kill -KILL $BG; wait $BG 2>/dev/null
touch "$WORK/fos/go"
assert_exit 0 bh resume last --retry-unknown
assert_jq "$(newest)" '[.[] | select(.type == "step_end" and .status == "ok")] | map(.result) | join(",")' "h1,h2"
assert_eq "" "$(grep -l fos-secret-value-1 "$(newest)")" "the secret in the journal"
