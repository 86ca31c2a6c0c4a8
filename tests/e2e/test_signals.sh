#!/usr/bin/env bash
. "$(dirname "$0")/lib.sh"

sig_test() { # SIGNAL EXPECTED_EXIT
    local sig=$1 want=$2 mark="30.$$$RANDOM"
    rm -rf "$STATE"
    cat >"$WORK/sig.lua" <<LUA
runbook { id = "sig", title = "Signals", kill_grace = "1s" }
step "wait" { run = function(ctx) ctx.sh("sleep $mark") end }
step "later" { run = function(ctx) return 1 end }
LUA
    "$BULKHEAD" --state-dir "$STATE" run "$WORK/sig.lua" >"$WORK/sig.out" 2>&1 &
    local pid=$!
    wait_for jq_has_exec_start || fail "no exec_start in journal within 10s"
    kill -"$sig" "$pid"
    local i rc
    for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; fail "engine did not exit within 10s of SIG$sig"; fi
    wait "$pid"; rc=$?
    assert_eq "$want" "$rc" "exit code after SIG$sig"
    local J; J=$(journal)
    assert_jq "$J" '[.[]|select(.type=="interrupt")]|length>0' "true"
    # its command was cut off: it may have acted, so it is in doubt
    assert_jq "$J" '.[]|select(.type=="step_end" and .step=="wait")|.status+":"+.error.code' "in_doubt:cancelled"
    assert_jq "$J" '.[]|select(.type=="step_end" and .step=="wait")|.doubt' "'sh' was cut off before it finished (the run stopped)"
    assert_jq "$J" '[.[]|select(.type=="step_skipped")|.step]|join(",")' "later"
    assert_jq "$J" '.[-1].type+":"+.[-1].status' "run_end:interrupted"
    local sp; sp=$(jqs "$J" '.[]|select(.type=="exec_end")|.pid')
    [ -n "$sp" ] && [ "$sp" != null ] && { wait_dead "$sp" || fail "sh $sp still alive"; }
    for i in $(seq 1 20); do pgrep -f "sleep $mark" >/dev/null || break; sleep 0.1; done
    pgrep -f "sleep $mark" >/dev/null && fail "sleep $mark still running"
    return 0
}
jq_has_exec_start() { local J; J=$(journal); [ -n "$J" ] && grep -q '"type":"exec_start"' "$J"; }

t sigint_interrupts_run
sig_test INT 130

t sigterm_interrupts_run
sig_test TERM 143
