#!/usr/bin/env bash
# Dry runs: the runbook's logic runs, nothing with a side effect does. Every
# shipped runbook is dry-run with a PATH of commands that fail loudly and a
# loopback listener that must stay silent.
. "$(dirname "$0")/lib.sh"

# Commands that record that they ran, then fail: a dry run must call none.
LOUD="$WORK/loud-bin"
mkdir -p "$LOUD"
for c in sh bash echo tee cat cp mv rm mkdir test ls wc sha256sum sleep true false tr sed grep \
         ssh scp curl wget nft iptables systemctl service ansible ansible-playbook mail sendmail \
         isolate-host release snapshot notify logger nc ncat socat python3 perl env xargs; do
    printf '#!/bin/sh\necho "%s $*" >>"%s"\nexit 99\n' "$c" "$WORK/executed" >"$LOUD/$c"
    chmod +x "$LOUD/$c"
done

# A loopback listener: anything sent to it is logged.
"$BH_TOOLS/bh_peer" silent "$WORK/port" "$WORK/peer.log" &
PEER=$!
trap 'kill $PEER 2>/dev/null; _t_finish' EXIT
wait_for test -s "$WORK/port"
PORT=$(cat "$WORK/port")
URL="http://127.0.0.1:$PORT/hook"

for rb in "$ROOT"/examples/*/*.lua "$ROOT"/runbooks/*.lua; do
    [ -f "$rb" ] || continue
    name=$(basename "$rb" .lua)
    t "dry_run_executes_nothing_$name"
    rm -f "$WORK/executed"
    args=()
    grep -q '^ *workdir *=' "$rb" && args+=(-p workdir="$WORK/nowhere-$name")
    # a shipped runbook's example parameters (runbooks/examples/NAME.json)
    ex="$(dirname "$rb")/examples/$name.json"
    [ -f "$ex" ] && args+=(--params "$ex")
    # every parameter that takes a URL or host points at the silent listener
    for p in $(grep -oE '^ *[a-z_]*(url|webhook|endpoint)[a-z_]* *=' "$rb" | tr -d ' ='); do
        args+=(-p "$p=$URL")
    done
    assert_exit 0 env PATH="$LOUD" "$BULKHEAD" --state-dir "$STATE" run --dry-run --plain "$rb" "${args[@]}"
    assert_no_file "$WORK/executed"
    assert_eq "" "$(cat "$WORK/peer.log" 2>/dev/null)" "bytes that reached the listener"
    assert_no_file "$WORK/nowhere-$name"
    assert_jq "$(journal)" '.[0].mode' dry-run
    assert_jq "$(journal)" '[.[] | select(.type == "exec_start" and (.simulated != true or .pid != 0))] | length' 0
    assert_jq "$(journal)" '[.[] | select(.type == "exec_start")] | length > 0' true
    assert_jq "$(journal)" '[.[] | select(.type == "approval" and .how != "simulated")] | length' 0
    assert_exit 0 bh verify last
done

t shipped_runbooks_pass_check_strict
n=0
for rb in "$ROOT"/runbooks/*.lua; do
    assert_exit 0 bh check --strict "$rb"
    n=$((n + 1))
    grep -q "^-- " "$rb" || fail "$(basename "$rb") has no header comment saying what it is for"
    [ -f "$(dirname "$rb")/examples/$(basename "$rb" .lua).json" ] || fail "$(basename "$rb"): no example parameters"
done
[ "$n" -ge 5 ] || fail "only $n runbooks in runbooks/"

t shipped_runbooks_survive_a_chaos_drill
for rb in "$ROOT"/runbooks/*.lua; do
    name=$(basename "$rb" .lua)
    env PATH="$LOUD" "$BULKHEAD" --state-dir "$STATE" drill --plain "$rb" --params "$(dirname "$rb")/examples/$name.json" \
        --chaos 0.3 --seed 7 >"$WORK/drill.out" 2>&1
    rc=$?
    [ "$rc" = 0 ] || [ "$rc" = 1 ] || fail "drill of $name exited $rc: $(tail -n3 "$WORK/drill.out" | tr '\n' '|')"
    assert_no_file "$WORK/executed"
    assert_exit 0 bh verify last
    assert_jq "$(journal)" '[.[] | select(.type == "scorecard")] | length' 1
done

cat >"$WORK/sim.lua" <<'LUA'
runbook { id = "sim", title = "Scripted simulation", timeout = "5m",
          params = { host = { type = "string", default = "web1", doc = "host" } } }
local token = secret("NOT_ON_THIS_LAPTOP")
phase "contain"
step "isolate" { approve = "takes web1 down", approvers = 2, estimate = "2m",
  undo = function(ctx) ctx.exec { "release", param.host } end,
  run = function(ctx) return ctx.exec { "isolate-host", param.host, "--token", token }.code end }
step "check" { estimate = "10s", undo = false, simulate = { stdout = "active\n" },
  run = function(ctx) return (ctx.exec { "systemctl", "is-active", "web" }.stdout:gsub("\n", "")) end }
step "count" { undo = false, simulate = { result = 42 },
  run = function(ctx) error("not run in a simulation: the scripted result stands in") end }
step "exit3" { on_failure = "continue", undo = false,
  run = function(ctx) return ctx.exec { "probe" }.code end }
phase "talk"
step "call" { manual = "phone the partner SOC", timeout = "1h", estimate = "5m" }
LUA

t dry_run_results_are_scripted_and_marked_as_such
assert_exit 0 bh run --dry-run --plain "$WORK/sim.lua" --simulate 'exit3={"exit":3,"stderr":"refused"}'
assert_contains "$OUT" "DRY RUN: nothing is executed or sent"
assert_eq 0 "$(end_of isolate result)" "a simulated success"
assert_eq active "$(end_of check result)" "the step's simulate stdout"
assert_eq 42 "$(end_of count result)" "a scripted result stands in for the body"
assert_eq failed "$(end_of exit3 status)" "the flag's exit code"
assert_eq exec_failed "$(end_of exit3 error.code)"
assert_jq "$(journal)" '[.[] | select(.type == "approval") | "\(.by):\(.how)"] | join(",")' "simulation:simulated,simulation-2:simulated"
assert_jq "$(journal)" '[.[] | select(.type == "manual")][0] | "\(.outcome) \(.how)"' "done simulated"
assert_jq "$(journal)" '[.[] | select(.type == "exec_start" and .step == "isolate")][0].argv | join(" ")' "isolate-host web1 --token <secret:NOT_ON_THIS_LAPTOP>"
assert_jq "$(journal)" '.[-1] | "\(.type) \(.duration_ms)"' "run_end 430000"
assert_exit 0 bh runs
assert_contains "$OUT" "dry-run"
assert_exit 0 bh show last
assert_contains "$OUT" "DRY RUN: nothing was executed"
assert_exit 0 bh report last
assert_contains "$OUT" "DRY RUN: nothing was executed or sent"

t undo_of_a_dry_run_is_simulated
rm -f "$WORK/executed"
assert_exit 0 env PATH="$LOUD" "$BULKHEAD" --state-dir "$STATE" undo last
assert_no_file "$WORK/executed"
assert_jq "$(journal)" '[.[] | select(.type == "exec_start" and .step == "isolate")] | map(.simulated) | all' true

t dry_run_flags_are_checked
assert_exit 2 bh run --plain "$WORK/sim.lua" --simulate 'check={}'
assert_contains "$ERR" "only makes sense with --dry-run"
assert_exit 2 bh run --dry-run --plain "$WORK/sim.lua" --simulate 'nosuch={}'
assert_contains "$ERR" "no such step"
assert_exit 2 bh run --dry-run --plain "$WORK/sim.lua" --simulate 'check=notjson'
assert_contains "$ERR" "JSON object"
printf 'runbook { id = "bs", title = "BS" }\nstep "s" { simulate = { exit = "x" }, run = function() end }\n' >"$WORK/badsim.lua"
assert_exit 3 bh check "$WORK/badsim.lua"
assert_contains "$ERR" "'simulate': exit is a number"
