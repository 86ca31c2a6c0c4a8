#!/usr/bin/env bash
# A journal that cannot be written stops the run: nothing new starts, the exit
# code says so, and what was written stays a verifiable run of whole records.
. "$(dirname "$0")/lib.sh"

t journal_write_error_stops_run
mnt="$WORK/full"
mkdir -p "$mnt"
if ! mount -t tmpfs -o size=48k tmpfs "$mnt" 2>/dev/null; then
    skip "cannot mount a small tmpfs here (needs root)"
else
    cat >"$WORK/many.lua" <<'LUA'
runbook { id = "many", title = "Fills the journal",
          params = { marker = { type = "string", required = true, doc = "touched by the last step" } } }
step "fill" { run = function(ctx) for i = 1, 2000 do ctx.log(string.rep("x", 100)) end end }
step "after" { run = function(ctx) ctx.exec { "touch", ctx.params.marker } end }
LUA
    assert_exit 6 "$BULKHEAD" --state-dir "$mnt/state" run --plain "$WORK/many.lua" -p marker="$WORK/after-ran"
    assert_contains "$ERR" "No space left on device" "stderr"
    assert_no_file "$WORK/after-ran"
    assert_exit 0 "$BULKHEAD" --state-dir "$mnt/state" verify last
    umount "$mnt"
fi

t captured_output_cut_by_a_full_disk_fails_the_step
# out/ full while the journal is not: a tmpfs of one page, filled, mounted
# over the run's out/ while the first step waits. The next command's output
# cannot be stored, so the step is not ok (check = false or not), and its
# exec_end says the stream was cut and why.
cat >"$WORK/outlost.lua" <<'LUA'
runbook { id = "outlost", title = "Output lost to a full disk", timeout = "20s",
          params = { go = { type = "string", required = true, doc = "made when out/ is full" } } }
step "wait" { run = function(ctx) ctx.sh('while [ ! -e "$GO" ]; do sleep 0.05; done', { env = { GO = ctx.params.go } }) end }
step "talk" { run = function(ctx)
  local r = ctx.exec { "sh", "-c", "head -c 20000 /dev/zero | tr '\\0' x", check = false }
  return "not reached: " .. tostring(r.ok)
end }
LUA
"$BULKHEAD" --state-dir "$STATE" run --plain "$WORK/outlost.lua" -p go="$WORK/go" >"$WORK/outlost.out" 2>&1 &
pid=$!
_waiting() { j=$(journal); [ -n "$j" ] && grep -q '"type":"exec_start","step":"wait"' "$j"; }
if ! wait_for _waiting; then
    fail "the first step never started"; kill $pid
elif ! mount -t tmpfs -o size=4k tmpfs "$(last_run_dir)/out" 2>/dev/null; then
    skip "cannot mount a small tmpfs here (needs root)"; touch "$WORK/go"; wait $pid
else
    head -c 1M /dev/zero >"$(last_run_dir)/out/filler" 2>/dev/null
    touch "$WORK/go"
    wait $pid; rc=$?
    umount "$(last_run_dir)/out"
    assert_eq 1 "$rc" "exit"
    j=$(journal)
    assert_eq failed "$(end_of talk status)" "talk's status"
    assert_eq output_lost "$(end_of talk error.code)" "talk's error"
    assert_contains "$(end_of talk error.message)" "'sh' ran, but its stdout could not be stored: No space left on device (20000 of 20000 bytes lost)"
    assert_jq "$j" '[.[] | select(.type == "exec_end" and .step == "talk")][0].stdout | "\(.truncated) \(.size) \(.stored)"' "true 20000 0"
    assert_jq "$j" '[.[] | select(.type == "exec_end" and .step == "talk")][0].stdout.truncated_reason' \
        "writing the file failed: No space left on device (0 of 20000 bytes stored)"
    assert_jq "$j" '[.[] | select(.type == "exec_end" and .step == "wait")][0].stdout.truncated' "false"
    assert_contains "$(cat "$WORK/outlost.out")" "FAIL talk"
    assert_exit 0 bh verify last
    assert_exit 0 bh show last
    assert_contains "$OUT" "truncated: writing the file failed: No space left on device"
fi

t console_never_says_ok_for_an_end_the_journal_lacks
# The step's own command fills the disk, so its step_end (with a result too
# big for what is left) cannot be written: the console must not say ok.
mnt="$WORK/full2"
mkdir -p "$mnt"
if ! mount -t tmpfs -o size=64k tmpfs "$mnt" 2>/dev/null; then
    skip "cannot mount a small tmpfs here (needs root)"
else
    cat >"$WORK/unrec.lua" <<'LUA'
runbook { id = "unrec", title = "An end the journal lacks", timeout = "20s",
          params = { dir = { type = "string", required = true, doc = "the small disk" } } }
step "first" { run = function(ctx) return 1 end }
step "fill" { run = function(ctx)
  ctx.sh('head -c 1M /dev/zero >"$DIR/filler" 2>/dev/null; true', { env = { DIR = ctx.params.dir } })
  return string.rep("r", 20000)
end }
step "after" { run = function(ctx) return 2 end }
LUA
    assert_exit 6 "$BULKHEAD" --state-dir "$mnt/state" run --plain "$WORK/unrec.lua" -p dir="$mnt"
    assert_contains "$ERR" "No space left on device"
    assert_contains "$OUT" "  ok   first  ok"
    assert_contains "$OUT" "  ??   fill  not recorded"
    assert_contains "$OUT" "it ended without error, but its end could not be written to the journal (No space left on device)"
    assert_eq "" "$(printf '%s\n' "$OUT" | grep -E '(ok|✓).*fill|fill.* ok( |$)')" "a line that says fill is ok"
    assert_contains "$OUT" "error in"
    assert_not_contains "$OUT" "2 ok" "the run's last line"
    j=$(ls "$mnt"/state/runs/*/journal.jsonl)
    assert_jq "$j" '[.[] | select(.type == "step_end") | .step] | join(",")' "first"
    assert_exit 0 "$BULKHEAD" --state-dir "$mnt/state" verify last
    # Room again: resume sees the end missing and treats the outcome as
    # unknown, as the console said it would; skipped, its command had run,
    # so it ends in doubt.
    rm -f "$mnt/filler"
    mount -o remount,size=1m "$mnt"
    assert_exit 0 "$BULKHEAD" --state-dir "$mnt/state" resume last --skip-unknown --plain
    assert_jq "$j" '[.[] | select(.type == "unknown_outcome") | "\(.step):\(.was):\(.decision)"] | join(",")' "fill:in_flight:skip"
    assert_jq "$j" '[.[] | select(.type == "step_end") | "\(.step):\(.status)"] | join(",")' "first:ok,fill:in_doubt,after:ok"
    umount "$mnt"
fi
