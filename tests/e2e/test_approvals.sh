#!/usr/bin/env bash
# Approvals and manual tasks: flags, the control socket from a second
# process, timeouts, the two-person rule.
. "$(dirname "$0")/lib.sh"

decisions() { jqs "$(journal)" '[.[] | select(.type == "approval") | "\(.decision):\(.by):\(.how)"] | join(",")'; }
# start_bg FILE ARGS...: the engine in the background; its pid in $BG.
start_bg() { local rb=$1; shift; "$BULKHEAD" --state-dir "$STATE" run --plain "$rb" "$@" >"$WORK/bg.out" 2>&1 & BG=$!; }
waiting_for() { grep -q "\"type\":\"$1\"" "$STATE"/runs/*/journal.jsonl 2>/dev/null; }
finish_bg() { local i; for i in $(seq 1 100); do kill -0 "$BG" 2>/dev/null || break; sleep 0.1; done
              kill -0 "$BG" 2>/dev/null && { kill -KILL "$BG"; fail "engine still running"; }
              wait "$BG"; BGRC=$?; }

cat >"$WORK/appr.lua" <<'LUA'
runbook { id = "appr", title = "Approvals", timeout = "30s" }
step "look" { run = function(ctx) return 1 end }
step "isolate" {
  approve = "Takes the public website offline", approve_timeout = "20s",
  run = function(ctx) return "isolated" end,
}
step "after" { run = function(ctx) return ctx.results.isolate end }
LUA

t approval_from_second_process_through_socket
rm -rf "$STATE"
start_bg "$WORK/appr.lua"
wait_for waiting_for approval_wait || fail "no approval_wait"
assert_exit 1 bh approve last look --as alice --reason "wrong step"
assert_contains "$ERR" "step 'look' is not waiting for approval"
assert_exit 2 bh approve last isolate --as alice
assert_contains "$ERR" "--reason TEXT is required"
assert_exit 0 bh approve last isolate --as alice --reason "IC approved on the bridge"
assert_contains "$OUT" "isolate: approved by alice"
finish_bg
assert_eq 0 "$BGRC" "run exit"
assert_eq "approve:alice:socket" "$(decisions)"
assert_jq "$(journal)" '[.[] | select(.type == "approval")][0] | (.uid|type) + " " + .reason' "number IC approved on the bridge"
assert_eq isolated "$(end_of after result)"
assert_no_file "$(last_run_dir)/control.sock"

t denial_from_socket_fails_the_step
rm -rf "$STATE"
start_bg "$WORK/appr.lua"
wait_for waiting_for approval_wait
assert_exit 0 bh deny last isolate --as bob --reason "not during the board meeting"
finish_bg
assert_eq 1 "$BGRC" "run exit"
assert_eq denied "$(end_of isolate error.code)"
assert_contains "$(end_of isolate error.message)" "denied by bob (socket): not during the board meeting"
assert_jq "$(journal)" '[.[] | select(.type == "step_skipped")][0].step' after

t approval_timeout_is_a_denial
sed 's/approve_timeout = "20s"/approve_timeout = "300ms"/' "$WORK/appr.lua" >"$WORK/apprto.lua"
assert_exit 1 bh run --plain "$WORK/apprto.lua"
assert_eq "deny:timeout:timeout" "$(decisions)"
assert_eq denied "$(end_of isolate error.code)"

t approval_timeout_can_approve
sed 's/approve_timeout = "20s"/approve_timeout = "300ms", on_approval_timeout = "approve"/' "$WORK/appr.lua" >"$WORK/apprto2.lua"
assert_exit 0 bh run --plain "$WORK/apprto2.lua"
assert_eq "approve:timeout:timeout" "$(decisions)"

t approve_flags_up_front
assert_exit 0 bh run --plain --approve isolate --operator carol "$WORK/appr.lua"
assert_eq "approve:carol:flag" "$(decisions)"
assert_exit 0 bh run --plain --yes --operator dan "$WORK/appr.lua"
assert_eq "approve:dan:flag" "$(decisions)"
assert_exit 2 bh run --plain --approve nosuch "$WORK/appr.lua"
assert_contains "$ERR" "--approve nosuch: the runbook has no such step"

t two_person_rule
sed 's/approve_timeout = "20s",/approve_timeout = "20s", approvers = 2,/' "$WORK/appr.lua" >"$WORK/appr2.lua"
rm -rf "$STATE"
start_bg "$WORK/appr2.lua" --approve isolate --operator carol
wait_for waiting_for approval_wait
sleep 0.2
assert_exit 1 bh approve last isolate --as carol --reason "me again"
assert_contains "$ERR" "already approved by this person"
assert_exit 0 bh approve last isolate --as erin --reason "second pair of eyes"
finish_bg
assert_eq 0 "$BGRC" "run exit"
assert_eq "approve:carol:flag,approve:erin:socket" "$(decisions)"

t interrupt_while_waiting_for_approval
rm -rf "$STATE"
start_bg "$WORK/appr.lua"
wait_for waiting_for approval_wait
kill -TERM "$BG"
finish_bg
assert_eq 143 "$BGRC" "exit"
assert_eq cancelled "$(end_of isolate status)"

t no_engine_means_a_clear_error
assert_exit 6 bh approve last isolate --as x --reason y
assert_contains "$ERR" "no engine is running"

t manual_task_done_from_second_process
cat >"$WORK/manual.lua" <<'LUA'
runbook { id = "manual", title = "Manual", timeout = "30s" }
step "call-soc" {
  manual = { "Call the partner's SOC on the bridge line", "Agree on the indicator exchange" },
  timeout = "20s",
}
step "next" { run = function(ctx) return ctx.results["call-soc"].note end }
LUA
rm -rf "$STATE"
start_bg "$WORK/manual.lua"
wait_for grep -q "bulkhead done" "$WORK/bg.out"
assert_contains "$(cat "$WORK/bg.out")" "[ ] Call the partner's SOC on the bridge line" "checklist shown"
assert_exit 0 bh done last call-soc --as frank --note "SOC on the bridge, IOCs shared"
finish_bg
assert_eq 0 "$BGRC" "run exit"
assert_jq "$(journal)" '[.[] | select(.type == "manual")][0] | "\(.outcome) \(.by) \(.how)"' "done frank socket"
assert_eq "SOC on the bridge, IOCs shared" "$(end_of next result)"

t manual_task_failed_and_timed_out
rm -rf "$STATE"
start_bg "$WORK/manual.lua"
wait_for grep -q "bulkhead done" "$WORK/bg.out"
assert_exit 0 bh done last call-soc --failed --note "no answer" --as frank
finish_bg
assert_eq 1 "$BGRC"
assert_eq manual_failed "$(end_of call-soc error.code)"
sed 's/timeout = "20s"/timeout = "300ms"/' "$WORK/manual.lua" >"$WORK/manualto.lua"
assert_exit 1 bh run --plain "$WORK/manualto.lua"
assert_eq timed_out "$(end_of call-soc status)"

t approval_at_the_terminal_prompt
if ! command -v script >/dev/null; then skip "script(1) not installed"; else
    rm -rf "$STATE"
    # script gives the engine a terminal; the answer arrives once it asks
    ( sleep 1; echo "yes the IC said so" ) | script -qec "'$BULKHEAD' --state-dir '$STATE' run --operator gina '$WORK/appr.lua'" /dev/null >"$WORK/tty.out" 2>&1
    assert_eq "approve:gina:prompt" "$(decisions)"
    assert_jq "$(journal)" '[.[] | select(.type == "approval")][0].reason' "the IC said so"
fi

t yes_with_a_cadence_and_a_fanout_starts_each_once
cat >"$WORK/yescad.lua" <<'LUA'
runbook { id = "yescad", title = "Yes cadence", timeout = "30s" }
step "upd" { every = "200ms", approve = "risky", run = function(ctx) return ctx.rep end }
step "fan" { each = { 1, 2 }, approve = "risky", run = function(ctx, i) return i end }
step "work" { run = function(ctx) ctx.sleep("500ms") return 1 end }
LUA
assert_exit 0 timeout 20 "$BULKHEAD" --state-dir "$STATE" run --plain --yes "$WORK/yescad.lua"
assert_jq "$(journal)" '[.[] | select(.type == "fanout")] | length' 1
reps=$(jqs "$(journal)" '[.[] | select(.type == "step_start" and .step == "upd")] | length')
[ "$reps" -ge 2 ] && [ "$reps" -le 5 ] || fail "cadence ran $reps times in ~0.5s at 200ms"

t a_client_holding_the_socket_does_not_hold_the_run
cat >"$WORK/slow.lua" <<'LUA'
runbook { id = "slow", title = "Slow", timeout = "30s" }
step "s" { run = function(ctx) ctx.sleep("1500ms") end }
LUA
rm -rf "$STATE"
start_bg "$WORK/slow.lua"
wait_for sh -c "ls $STATE/runs/*/control.sock >/dev/null 2>&1"
# A client sends half a request and then holds the connection for 6s; the
# run (1.5s) must end without waiting for it.
python3 - "$(last_run_dir)" "$WORK/connected" <<'PY' &
import os, socket, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
s = socket.socket(socket.AF_UNIX)
s.connect("/proc/self/fd/%d/control.sock" % fd)
s.send(b'{"op":"sta')          # half a request, then silence
open(sys.argv[2], "w").write("yes")
time.sleep(6)
try:
    s.send(b'tus"}\n'); s.recv(100)
except OSError:
    pass
PY
py=$!
finish_bg
assert_eq 0 "$BGRC" "run exit"
assert_file "$WORK/connected"
assert_jq "$(journal)" '.[-1].type' run_end
dur=$(jqs "$(journal)" '.[-1].duration_ms | floor')
[ "$dur" -lt 5000 ] || fail "the run waited for the client: $dur ms"
kill $py 2>/dev/null
wait $py 2>/dev/null || true
