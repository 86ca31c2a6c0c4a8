#!/usr/bin/env bash
# The runbook API layer (tests/lua): each runbook checks its own steps'
# results and runs to the status its first line names; those in fail/
# hold a wrong check and must fail with it.
. "$(dirname "$0")/lib.sh"

for f in "$ROOT"/tests/lua/*.lua "$ROOT"/tests/lua/fail/*.lua; do
    name=$(basename "$f" .lua)
    case "$f" in */fail/*) name="fail_$name" ;; esac
    t "lua_$name"
    read -r _ _ want code <"$f"
    rm -rf "$STATE"
    assert_exit "${code:-0}" bh run --plain "$f"
    j=$(journal)
    assert_eq "${want:-ok}" "$(jqs "$j" '[.[] | select(.type == "run_end")][0].status')" "$name: run_end"
    # the steps' final failures (not the attempts a retry followed)
    errors=$(jqs "$j" '[.[] | select(.type == "step_end" and .status != "ok" and .status != "skipped" and .next != "retry") | "\(.step): \(.error.message)"] | join("; ")')
    case "$f" in
    */fail/*) assert_contains "$errors" "expected a result first never gave, got 41" "$name's failure" ;;
    */undo.lua) assert_eq "breaks: $f:23: broken on purpose" "$errors" "$name's failures" ;;
    *) assert_eq "" "$errors" "$name's failed steps" ;;
    esac
done
