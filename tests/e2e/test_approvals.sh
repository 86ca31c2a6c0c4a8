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

t one_account_cannot_be_two_approvers
sed 's/approve_timeout = "20s",/approve_timeout = "20s", approvers = 2,/' "$WORK/appr.lua" >"$WORK/appr2.lua"
rm -rf "$STATE"
start_bg "$WORK/appr2.lua" --approve isolate --operator carol
wait_for waiting_for approval_wait
wait_for grep -q "1 of 2 approvals" "$WORK/bg.out" || fail "the flag's approval was not counted"
# the socket caller is root, as the operator: one account, whatever the name
assert_exit 1 bh approve last isolate --as erin --reason "a second name"
assert_contains "$ERR" "uid 0 already approved step 'isolate' as carol: one account is one person"
assert_exit 1 bh approve last isolate --as carol --reason "me again"
assert_contains "$ERR" "carol (uid 0) already approved step 'isolate'; it needs 2 approvals from different people"
assert_eq 1 "$(jqs "$(journal)" '[.[] | select(.type == "approval")] | length')" "nothing recorded for a refusal"
assert_eq "waiting" "$(jqs "$(journal)" 'if any(.[]; .type == "step_start" and .step == "isolate") then "started" else "waiting" end')"
# the same account may still deny: one denial is enough
assert_exit 0 bh deny last isolate --as carol --reason "called off"
finish_bg
assert_eq 1 "$BGRC" "run exit"
assert_eq "approve:carol:flag,deny:carol:socket" "$(decisions)"
assert_eq "0,0" "$(jqs "$(journal)" '[.[] | select(.type == "approval") | .uid] | join(",")')" "uids"

t two_accounts_are_two_approvers
why=$(other_accounts_missing)
if [ -n "$why" ]; then skip "$why"; else
    rm -rf "$STATE"
    assert_exit 2 bh run --plain --approvers-group no-such-group-bh "$WORK/appr2.lua"
    assert_contains "$ERR" "--approvers-group no-such-group-bh: there is no group 'no-such-group-bh' on this host"
    # WORK (mktemp) and the state folders the engine makes are 0700: refused, each named
    assert_exit 2 bh run --plain --approvers-group "$APPROVERS_GROUP" "$WORK/appr2.lua"
    assert_contains "$ERR" "members of group '$APPROVERS_GROUP' could not reach the control socket: they may not pass $WORK (mode 0700, owner root, group root), $STATE (mode 0700"
    assert_contains "$ERR" "$STATE/runs (mode 0700"
    assert_eq "" "$(ls "$STATE/runs")" "nothing was run"
    let_group_pass "$APPROVERS_GROUP" "$WORK" "$STATE" "$STATE/runs"
    start_bg "$WORK/appr2.lua" --approvers-group "$APPROVERS_GROUP" --approve isolate --operator carol
    wait_for waiting_for approval_wait
    wait_for grep -q "from another account" "$WORK/bg.out"
    dir=$(last_run_dir)
    assert_contains "$(cat "$WORK/bg.out")" "from another account in group $APPROVERS_GROUP: bulkhead approve $dir isolate --as NAME"
    # the group may pass through the folder to the socket, and nothing more
    assert_eq "710 $APPROVERS_GROUP" "$(stat -c '%a %G' "$dir")" "run folder"
    assert_eq "660 $APPROVERS_GROUP" "$(stat -c '%a %G' "$dir/control.sock")" "socket"
    assert_eq "600 root" "$(stat -c '%a %G' "$dir/journal.jsonl")" "journal"
    as_account 65534 "$APPROVERS_GROUP" ls "$dir" >/dev/null 2>&1 && fail "a member could list the run folder"
    as_account 65534 "$APPROVERS_GROUP" cat "$dir/journal.jsonl" >/dev/null 2>&1 && fail "a member could read the journal"
    # outside the group: not even the folder
    assert_exit 6 as_account 65533 "" "$BULKHEAD" approve "$dir" isolate --as mallory --reason "let me"
    assert_contains "$ERR" "cannot reach run folder $dir: Permission denied"
    # another account, under a name already counted (case and blanks aside)
    assert_exit 1 as_account 65534 "$APPROVERS_GROUP" "$BULKHEAD" approve "$dir" isolate --as " CAROL " --reason "me, from my own account"
    assert_contains "$ERR" "an approval by carol already counts for step 'isolate'; the same name from another account (uid 65534) is not another person"
    assert_exit 0 as_account 65534 "$APPROVERS_GROUP" "$BULKHEAD" approve "$dir" isolate --as erin --reason "second pair of eyes"
    assert_contains "$OUT" "isolate: approved by erin (uid 65534)"
    finish_bg
    assert_eq 0 "$BGRC" "run exit"
    assert_eq "approve:carol:flag,approve:erin:socket" "$(decisions)"
    assert_eq "0:carol:1,65534:erin:2" "$(jqs "$(journal)" '[.[] | select(.type == "approval") | "\(.uid):\(.by):\(.approvals)"] | join(",")')"
    assert_jq "$(journal)" '.[0] | "\(.uid) \(.approvers_group.name) \(.approvers_group.gid)"' "0 $APPROVERS_GROUP $(getent group "$APPROVERS_GROUP" | cut -d: -f3)"
    assert_eq isolated "$(end_of after result)"
    # without --approvers-group the folder stays the engine's alone
    start_bg "$WORK/appr2.lua" --approve isolate --operator carol
    wait_for waiting_for approval_wait
    wait_for sh -c "ls $STATE/runs/*/control.sock >/dev/null 2>&1"
    dir=$(ls -d "$STATE"/runs/* | sort | tail -n1)
    assert_eq "700 600" "$(stat -c '%a' "$dir") $(stat -c '%a' "$dir/control.sock")" "default modes"
    assert_exit 6 as_account 65534 "$APPROVERS_GROUP" "$BULKHEAD" approve "$dir" isolate --as erin --reason "let me"
    assert_contains "$ERR" "cannot reach the engine of $dir: Permission denied"
    assert_exit 0 bh deny "$dir" isolate --as carol --reason "done testing"
    finish_bg
    # an engine whose user is not in the group cannot give the folder to it
    own=$(mktemp -d /tmp/bulkhead-nobody.XXXXXX)
    cp "$WORK/appr2.lua" "$own/"
    chown -R 65534:65534 "$own"
    assert_exit 2 as_account 65534 "" "$BULKHEAD" --state-dir "$own/state" run --plain --approvers-group "$APPROVERS_GROUP" "$own/appr2.lua"
    assert_contains "$ERR" "you (uid 65534) are not a member of group '$APPROVERS_GROUP', so the run folder cannot be given to it"
    rm -rf "$own"
fi

t names_are_trimmed_and_never_blank
rm -rf "$STATE"
start_bg "$WORK/appr2.lua" --operator "  Dana "
wait_for waiting_for approval_wait
assert_exit 2 bh approve last isolate --as "   " --reason "x"
assert_contains "$ERR" "--as cannot name a person: it is blank"
assert_exit 2 bh approve last isolate --as "$(printf 'eve\033[2J')" --reason "x"
assert_contains "$ERR" "--as cannot name a person: it holds a control character"
assert_exit 2 bh done last isolate --as "" --note "x"
assert_contains "$ERR" "--as cannot name a person: it is blank"
# the engine refuses it too, whatever client sends it
reply=$(python3 - "$(last_run_dir)" <<'PY'
import os, socket, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
s = socket.socket(socket.AF_UNIX)
s.connect("/proc/self/fd/%d/control.sock" % fd)
s.sendall(b'{"op":"approve","step":"isolate","as":" \\t ","reason":"x"}\n')
print(s.makefile().readline().strip())
PY
)
assert_eq '{"ok":false,"error":"--as: the name cannot be used: it is blank"}' "$reply" "socket reply"
assert_exit 0 bh approve last isolate --as "  alice  " --reason "padded"
assert_contains "$OUT" "isolate: approved by alice (uid 0)"
assert_exit 1 bh approve last isolate --as "ALICE" --reason "shouting"
assert_contains "$ERR" "alice (uid 0) already approved step 'isolate'"
assert_exit 0 bh deny last isolate --as alice --reason "called off"
finish_bg
assert_eq 1 "$BGRC" "run exit"
assert_eq "approve:alice:socket,deny:alice:socket" "$(decisions)"
assert_jq "$(journal)" '.[0].operator' "Dana"
before=$(ls "$STATE/runs" | wc -l)
assert_exit 2 bh run --plain --operator " " "$WORK/appr.lua"
assert_contains "$ERR" "--operator cannot name a person: it is blank"
assert_eq "$before" "$(ls "$STATE/runs" | wc -l)" "nothing was run"
# a blank $BULKHEAD_OPERATOR is as if unset: the login name
assert_exit 0 env BULKHEAD_OPERATOR="  " "$BULKHEAD" --state-dir "$STATE" run --plain --approve isolate "$WORK/appr.lua"
assert_eq "approve:$(id -un):flag" "$(decisions)"

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

t status_says_what_a_live_run_waits_on
# the control socket answers from the run's events: what runs, what waits
cat >"$WORK/live.lua" <<'LUA'
runbook { id = "live", title = "Live", timeout = "30s" }
parallel {
  step "watch" { run = function(ctx)
    -- masking holds back the last few bytes (a secret may go on in the next
    -- chunk) until more comes: the filler pushes the lines out
    ctx.sh("echo hello-live; echo token=" .. secret("LIVE_TOKEN") ..
           "; printf '%0300d\\n' 0; sleep 20")
  end },
  step "isolate" { approve = "Takes the website offline", approve_timeout = "20s",
                   run = function(ctx) return "isolated" end },
  step "call-soc" { manual = { "Call the partner's SOC" }, timeout = "20s" },
}
LUA
rm -rf "$STATE"
LIVE_TOKEN=s3cr3t-live-value start_bg "$WORK/live.lua"
wait_for grep -q "bulkhead done" "$WORK/bg.out"
wait_for waiting_for approval_wait
assert_exit 0 bh status last --json
printf '%s' "$OUT" >"$WORK/status.json"
assert_jq "$WORK/status.json" '.[0].awaiting_approval | join(",")' "isolate"
assert_jq "$WORK/status.json" '.[0].manual | join(",")' "call-soc"
assert_jq "$WORK/status.json" '.[0].running | sort | join(",")' "call-soc,watch"
# the output of what runs, as it arrives, masked like everything else
wait_for sh -c "'$BULKHEAD' --state-dir '$STATE' status last --json | grep -q masked:LIVE_TOKEN"
assert_exit 0 bh status last --json
printf '%s' "$OUT" >"$WORK/status.json"
assert_jq "$WORK/status.json" '.[0].output.watch | startswith("hello-live\ntoken=[masked:LIVE_TOKEN]\n000")' true
assert_not_contains "$OUT" "s3cr3t-live-value"
assert_exit 0 bh status last
assert_contains "$OUT" "awaiting approval  isolate"
assert_contains "$OUT" "manual tasks       call-soc"
assert_exit 0 bh approve last isolate --as alice --reason "IC said so"
assert_exit 0 bh done last call-soc --as frank --note "called"
wait_for sh -c "'$BULKHEAD' --state-dir '$STATE' status last --json | jq -e '.running == [\"watch\"]' >/dev/null"
assert_exit 0 bh status last --json
printf '%s' "$OUT" >"$WORK/status.json"
assert_jq "$WORK/status.json" '.[0] | [.awaiting_approval, .manual, .running] | map(length | tostring) | join(",")' "0,0,1"
kill -INT "$BG"
finish_bg
assert_eq 130 "$BGRC" "interrupted"
assert_exit 6 bh status last
assert_contains "$ERR" "no engine is running"

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

t the_prompt_does_not_ask_an_account_that_already_counts
if ! command -v script >/dev/null; then skip "script(1) not installed"; else
    rm -rf "$STATE"
    ( sleep 1; echo "yes from the console"; sleep 4 ) |
        script -qec "'$BULKHEAD' --state-dir '$STATE' run --operator gina '$WORK/appr2.lua'" /dev/null >"$WORK/tty2.out" 2>&1 &
    tty_pid=$!
    one_approval() { [ "$(decisions)" = "approve:gina:prompt" ]; }
    wait_for one_approval || fail "the prompt's approval was not recorded"
    assert_exit 1 bh approve last isolate --as hugo --reason "same account"
    assert_contains "$ERR" "uid 0 already approved step 'isolate' as gina"
    assert_exit 0 bh deny last isolate --as gina --reason "no second person around"
    wait $tty_pid
    assert_eq 1 "$(grep -c "approve 'isolate'" "$WORK/tty2.out")" "times the prompt asked"
    assert_eq "approve:gina:prompt,deny:gina:socket" "$(decisions)"
    assert_jq "$(journal)" '[.[] | select(.type == "approval")][0].uid' 0
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
