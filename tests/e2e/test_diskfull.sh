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
