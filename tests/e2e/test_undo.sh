#!/usr/bin/env bash
# Undo: rollback after a failure, `bulkhead undo` after a finished run,
# resuming an interrupted undo without undoing anything twice.
. "$(dirname "$0")/lib.sh"

undos() { jqs "$(journal)" '[.[] | select(.type == "undo_end") | "\(.step)\(if .item then "[\(.item)]" else "" end):\(.status)"] | join(",")'; }

cat >"$WORK/undo.lua" <<'LUA'
runbook { id = "undo", title = "Undo", timeout = "30s",
          params = { dir = { type = "string", required = true, doc = "where markers go" },
                     fail = { type = "boolean", default = false, doc = "make 'restore' fail" } } }
local function mark(ctx, text) ctx.exec { "tee", "-a", param.dir .. "/log", stdin = text .. "\n" } end
step "a" { run = function(ctx) mark(ctx, "do a") return "a-token" end,
           undo = function(ctx, _, result) mark(ctx, "undo a " .. result .. " " .. ctx.result) end }
step "b" { each = { "h1", "h2" }, concurrency = 1,
           run = function(ctx, h) mark(ctx, "do b " .. h) return h end,
           undo = function(ctx, h) mark(ctx, "undo b " .. h) end }
step "c" { run = function(ctx) mark(ctx, "do c") end }  -- nothing to undo
step "restore" {
  on_failure = "rollback",
  run = function(ctx) if param.fail then error("restore failed") end mark(ctx, "do restore") end,
  undo = function(ctx) mark(ctx, "undo restore") end,
}
LUA

t rollback_undoes_in_reverse_completion_order
mkdir -p "$WORK/r1"
assert_exit 1 bh run --plain "$WORK/undo.lua" -p dir="$WORK/r1" -p fail=true
assert_eq "$(printf 'do a\ndo b h1\ndo b h2\ndo c\nundo b h2\nundo b h1\nundo a a-token a-token')" "$(cat "$WORK/r1/log")" "effects"
assert_eq "b[2]:ok,b[1]:ok,a:ok" "$(undos)" "undo records"
assert_jq "$(journal)" '.[-1] | "\(.type) \(.status) \(.undone)"' "run_end rolled_back 3"
assert_eq rollback "$(end_of restore next)" "the failure says what happens next"
assert_exit 0 bh show last
assert_contains "$OUT" "undone" "show"
assert_exit 0 bh verify last

t undo_after_finished_run
mkdir -p "$WORK/r2"
assert_exit 0 bh run --plain "$WORK/undo.lua" -p dir="$WORK/r2"
id=$(jqs "$(journal)" '.[0].run_id')
assert_exit 0 bh undo "$id" --step b
assert_eq "$(printf 'undo b h2\nundo b h1')" "$(grep undo "$WORK/r2/log")" "only b"
assert_exit 0 bh undo "$id"
assert_eq "$(printf 'undo b h2\nundo b h1\nundo restore\nundo a a-token a-token')" "$(grep undo "$WORK/r2/log")" "the rest, never b twice"
assert_exit 0 bh undo "$id"
assert_contains "$OUT" "nothing to undo"
assert_exit 0 bh verify "$id"
assert_jq "$(journal)" '[.[] | select(.type == "undo_begin")] | length' 3

t interrupted_undo_resumes
cat >"$WORK/slowundo.lua" <<'LUA'
runbook { id = "slowundo", title = "Slow undo", timeout = "30s",
          params = { dir = { type = "string", required = true, doc = "markers" } } }
local function mark(ctx, text) ctx.exec { "tee", "-a", param.dir .. "/log", stdin = text .. "\n" } end
step "first" { run = function(ctx) end, undo = function(ctx) mark(ctx, "undo first") end }
step "second" { run = function(ctx) end,
  undo = function(ctx)
    ctx.sh('[ ! -e "$D/slow" ] || sleep 20', { env = { D = param.dir } })  -- slow while the file exists
    mark(ctx, "undo second")
  end }
LUA
mkdir -p "$WORK/r3"
assert_exit 0 bh run --plain "$WORK/slowundo.lua" -p dir="$WORK/r3"
touch "$WORK/r3/slow"
"$BULKHEAD" --state-dir "$STATE" undo last >"$WORK/u.out" 2>&1 &
pid=$!
wait_for grep -q '"type":"exec_start"' "$(journal)"
kill -INT $pid; wait $pid; rc=$?
assert_eq 130 "$rc" "interrupted undo"
assert_eq "second:cancelled" "$(undos)"
rm "$WORK/r3/slow"
# Cancelled half-way, the undo of 'second' has an unknown outcome: it is not
# repeated without --retry-unknown; the others go on.
assert_exit 0 bh undo last
assert_contains "$ERR" "--retry-unknown"
assert_eq "undo first" "$(cat "$WORK/r3/log")" "only the undo whose outcome is known"
assert_exit 0 bh undo last --retry-unknown
assert_eq "$(printf 'undo first\nundo second')" "$(cat "$WORK/r3/log")" "each undone once"
assert_exit 0 bh undo last
assert_contains "$OUT" "nothing to undo"
assert_exit 0 bh verify last

t undo_cut_off_by_a_crash_is_not_repeated_blindly
mkdir -p "$WORK/r4"
assert_exit 0 bh run --plain "$WORK/slowundo.lua" -p dir="$WORK/r4"
touch "$WORK/r4/slow"
crash_when '"type":"exec_start"' undo last
pkill -f "sleep 20" 2>/dev/null
rm "$WORK/r4/slow"
assert_exit 0 bh undo last
assert_contains "$ERR" "outcome is unknown; not repeating them (use --retry-unknown"
assert_eq "undo first" "$(cat "$WORK/r4/log")" "only the undo that was never started"
assert_exit 0 bh undo last --retry-unknown
assert_eq "$(printf 'undo first\nundo second')" "$(cat "$WORK/r4/log")" "the unknown one, when asked"

t undo_refuses_bad_requests
assert_exit 2 bh undo last --step nothing-here
assert_contains "$ERR" "the runbook has no step 'nothing-here'"
assert_exit 2 bh undo
assert_contains "$ERR" "which run?"
assert_exit 6 bh undo no-such-run

t one_engine_per_run
mkdir -p "$WORK/r5"
assert_exit 0 bh run --plain "$WORK/slowundo.lua" -p dir="$WORK/r5"
touch "$WORK/r5/slow"
"$BULKHEAD" --state-dir "$STATE" undo last >"$WORK/u.out" 2>&1 &
pid=$!
wait_for grep -q '"type":"exec_start"' "$(journal)"
assert_exit 1 bh undo last
assert_contains "$ERR" "is in use by another engine (pid $pid)"
kill -INT $pid; wait $pid
rm "$WORK/r5/slow"

t torn_last_record_is_cut_and_recorded
printf '{"seq":999,"ts":"2026-11-2' >>"$(journal)"
assert_exit 5 bh verify last
assert_exit 0 bh undo last --retry-unknown  # the undo Ctrl-C cancelled above
assert_contains "$ERR" "cut a torn last record (26 bytes"
assert_jq "$(journal)" '[.[] | select(.type == "journal_recovered")][0].cut_bytes' 26
assert_exit 0 bh verify last
assert_eq "$(printf 'undo second\nundo first')" "$(cat "$WORK/r5/log")" "the undo went on after the cut"

t corrupt_line_is_refused_with_its_offset
lines=$(wc -l <"$(journal)")
sed -i '3s/"type"/"tyqe"/' "$(journal)"
assert_exit 5 bh undo last
assert_contains "$ERR" "is damaged"
assert_contains "$ERR" "seq 2 at byte"
assert_eq "$lines" "$(wc -l <"$(journal)")" "nothing appended to a damaged journal"

t refused_undo_cuts_nothing
mkdir -p "$WORK/r6"
cat >"$WORK/unfinished.lua" <<'LUA'
runbook { id = "unf", title = "unf", timeout = "5s" }
step "a" { run = function(ctx) end, undo = function(ctx) end }
LUA
assert_exit 0 bh run --plain "$WORK/unfinished.lua"
J=$(journal)
head -n 3 "$J" >"$WORK/t" && cp "$WORK/t" "$J"
printf '{"seq":3,"ts":"x' >>"$J"
size=$(stat -c %s "$J")
assert_exit 1 bh undo last
assert_eq "$size" "$(stat -c %s "$J")" "a refused undo leaves the journal as it was"

cat >"$WORK/doubt.lua" <<'LUA'
runbook { id = "doubt", title = "In doubt", timeout = "30s", kill_grace = "100ms",
          params = { dir = { type = "string", required = true, doc = "where markers go" } } }
step "iso" { timeout = "300ms", retries = 1, backoff = "20s", effect = "isolated",
  run = function(ctx) ctx.exec { "sleep", "5" } end,
  undo = function(ctx) ctx.exec { "tee", "-a", param.dir .. "/log", stdin = "release\n" } end }
LUA

t in_doubt_instance_whose_retry_was_cancelled_is_undone
# iso is cut off by its timeout (in doubt), then the run is interrupted
# during the backoff: the retry never comes, so iso may still be isolated;
# show and runs say so, and undo runs its undo.
mkdir -p "$WORK/d1"
"$BULKHEAD" --state-dir "$STATE" run --plain "$WORK/doubt.lua" -p dir="$WORK/d1" >"$WORK/d1/out" 2>&1 &
pid=$!
wait_for grep -qs '"type":"retry"' "$STATE"/runs/*-doubt-*/journal.jsonl
kill -INT $pid
wait $pid; rc=$?
assert_eq 130 "$rc" "exit after SIGINT"
assert_jq "$(journal)" '[.[] | select(.type == "retry_cancelled")] | length' 1
assert_eq in_doubt "$(end_of iso status)"
assert_jq "$(journal)" '[.[] | select(.type == "run_end")][-1].counts.in_doubt' 1 "the run's own count: in doubt, not cancelled"
assert_exit 0 bh show last
assert_contains "$OUT" "in doubt: these may have acted, and are not undone (bulkhead undo "
assert_contains "$OUT" "$(printf '\n  iso may still be isolated\n')"
assert_exit 0 bh runs
assert_contains "$(printf '%s\n' "$OUT" | grep -- '-doubt-')" "IN DOUBT: iso may still be isolated"
assert_exit 0 bh runs --json
assert_eq '["iso may still be isolated"]' "$(printf %s "$OUT" | jq -c '[.[] | select(.runbook == "doubt")][-1].may_remain')"
assert_exit 0 bh undo last
assert_eq release "$(cat "$WORK/d1/log")" "the undo of the in-doubt instance ran"
assert_eq "iso:ok" "$(undos)"
assert_exit 0 bh show last
assert_not_contains "$OUT" "in doubt: these may have acted"
assert_exit 0 bh runs --json
assert_eq '[]' "$(printf %s "$OUT" | jq -c '[.[] | select(.runbook == "doubt")][-1].may_remain')"
assert_exit 0 bh undo last
assert_contains "$OUT" "nothing to undo"

t in_doubt_without_an_undo_makes_undo_exit_1
cat >"$WORK/noundo.lua" <<'LUA'
runbook { id = "noundo", title = "No undo", timeout = "30s", kill_grace = "100ms" }
step "block" { timeout = "300ms", undo = false, effect = "blocking 203.0.113.7", on_failure = "continue",
  run = function(ctx) ctx.exec { "sleep", "5" } end }
LUA
assert_exit 0 bh run --plain "$WORK/noundo.lua"
assert_eq "in_doubt continue" "$(end_of block status) $(end_of block next)"
for k in 1 2; do  # never "nothing to undo" while it may remain
    assert_exit 1 bh undo last
    assert_contains "$OUT" "in doubt, and its step has no undo: block may still be blocking 203.0.113.7 (check it by hand"
    assert_not_contains "$OUT" "nothing to undo"
    assert_contains "$OUT" "incomplete"
done
assert_jq "$(journal)" '[.[] | select(.type == "undo_begin")][-1].in_doubt_without_undo | join(",")' "block may still be blocking 203.0.113.7"
assert_jq "$(journal)" '[.[] | select(.type == "undo_finish")][-1] | "\(.status) \(.in_doubt_without_undo)"' "incomplete 1"
assert_exit 0 bh show last
assert_contains "$OUT" "block may still be blocking 203.0.113.7"
assert_exit 0 bh verify last

t a_person_settles_what_no_undo_can
# checked by hand: the person says so, for the record, and it is no
# longer in doubt
assert_exit 2 bh undo last --settle block
assert_contains "$ERR" "--settle needs --note"
assert_exit 2 bh undo last --settle nosuch --note "x"
assert_contains "$ERR" "nothing of 'nosuch' is in doubt"
assert_exit 0 bh undo last --settle block --note "no rule for 203.0.113.7 on the edge router" --operator carol --plain
assert_contains "$OUT" "settled by carol: block may still be blocking 203.0.113.7"
assert_jq "$(journal)" '[.[] | select(.type == "settled")][0] | "\(.step) \(.by) \(.note)"' \
    "block carol no rule for 203.0.113.7 on the edge router"
assert_exit 0 bh show last
assert_not_contains "$OUT" "in doubt: these may have acted"
assert_exit 0 bh undo last
assert_contains "$OUT" "nothing to undo"
assert_exit 0 bh report last
assert_contains "$OUT" "settled by carol"
assert_exit 0 bh verify last

t engine_died_mid_effect_in_doubt_and_undo_abandon_puts_it_back
# The engine is killed while a step's command acts: the run has no end.
# runs and show say what may remain; undo refuses to go on with a run that
# has no end unless told to abandon it; then it stops what the dead engine
# left running, ends the run (nothing new starts) and runs the undo.
cat >"$WORK/dead.lua" <<'LUA'
runbook { id = "dead", title = "Dies mid-step", timeout = "1m",
  params = { dir = { type = "string", required = true, doc = "d" } } }
step "isolate" { effect = "isolated",
  run = function(ctx) ctx.sh('echo on >"$D/state"; touch "$D/go"; sleep 30', { env = { D = param.dir } }) end,
  undo = function(ctx) ctx.sh('echo off >"$D/state"', { env = { D = param.dir } }) end }
step "later" { run = function(ctx) ctx.sh('touch "$D/later"', { env = { D = param.dir } }) end }
LUA
mkdir -p "$WORK/dd"
"$BULKHEAD" --state-dir "$STATE" run --plain "$WORK/dead.lua" -p dir="$WORK/dd" >/dev/null 2>&1 &
pid=$!
wait_for test -e "$WORK/dd/go" || fail "the step never acted"
kill -KILL $pid; wait $pid 2>/dev/null
spid=$(jqs "$(journal)" '[.[] | select(.type == "exec_start")][0].pid')
assert_exit 0 bh runs
assert_contains "$(printf '%s\n' "$OUT" | grep -- '-dead-')" "IN DOUBT: isolate may still be isolated"
assert_exit 0 bh show last
assert_contains "$OUT" "if its engine died: bulkhead undo RUN --abandon"
assert_exit 1 bh undo last --plain
assert_contains "$ERR" "bulkhead undo RUN --abandon"
assert_eq on "$(cat "$WORK/dd/state")" "refused: nothing changed"
assert_exit 0 bh undo last --abandon --plain
assert_eq off "$(cat "$WORK/dd/state")" "the undo of the step in doubt ran"
assert_no_file "$WORK/dd/later"
wait_dead "$spid" || fail "the dead engine's command $spid was left running"
assert_jq "$(journal)" '[.[] | select(.type == "run_end")][-1].status' abandoned
assert_jq "$(journal)" '[.[] | select(.type == "unknown_outcome")][0] | "\(.decision) \(.how)"' "skip abandon"
assert_jq "$(journal)" '[.[] | select(.type == "step_end" and .step == "isolate")][-1].status' in_doubt
assert_jq "$(journal)" '[.[] | select(.type == "step_skipped" and .step == "later")][0].cause' halt
assert_jq "$(journal)" '[.[] | select(.type == "undo_end")] | map(.status) | join(",")' ok
assert_exit 0 bh runs
assert_not_contains "$(printf '%s\n' "$OUT" | grep -- '-dead-')" "IN DOUBT"
assert_exit 1 bh resume last
assert_contains "$ERR" "undone"
assert_exit 0 bh verify last
