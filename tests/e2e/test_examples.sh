#!/usr/bin/env bash
# The shipped examples: every one is valid, and each runs to the end against
# local stand-ins in a temporary folder, leaving a journal that verifies.
. "$(dirname "$0")/lib.sh"

for rb in "$ROOT"/examples/*/*.lua; do
    name=$(basename "$rb" .lua)
    t "example_check_$name"
    assert_exit 0 bh check "$rb"

    t "example_run_$name"
    wd="$WORK/wd-$name"
    mkdir -p "$wd"
    args=()
    # The reference incident acts on stand-ins under a workdir; the tutorial has none.
    grep -q '^ *workdir *=' "$rb" && args=(-p workdir="$wd")
    # --yes: approvals are given up front (recorded as given by flag)
    assert_exit 0 bh run --plain --yes "$rb" "${args[@]}"
    assert_exit 0 bh verify last
    assert_jq "$(journal)" '.[-1].status' ok
    assert_jq "$(journal)" '[.[] | select(.type == "step_end" and .status != "ok")] | length' 0
done

t reference_incident_undo_lifts_containment
wd="$WORK/wd-undo"
mkdir -p "$wd"
assert_exit 0 bh run --plain --approve isolate-web "$ROOT/examples/reference-incident/web-compromise.lua" -p workdir="$wd"
assert_jq "$(journal)" '[.[] | select(.type == "approval")][0] | "\(.decision) \(.how)"' "approve flag"
# the run restored everything; isolate the hosts again by hand, then undo
for h in www1 www2 api1; do echo isolated >"$wd/hosts/$h/state"; done
assert_exit 0 bh undo last --step isolate-web
for h in www1 www2 api1; do assert_eq running "$(cat "$wd/hosts/$h/state")" "$h after undo"; done
assert_jq "$(journal)" '[.[] | select(.type == "undo_end") | .status] | join(",")' "ok,ok,ok"
assert_exit 0 bh verify last
assert_exit 0 bh undo last --step isolate-web
assert_contains "$OUT" "nothing to undo" "undo never repeats"

t last_is_newest_run
assert_exit 0 bh run --plain "$FIXTURES/three.lua"
first=$(jqs "$(journal)" '.[0].run_id')
assert_exit 0 bh run --plain "$FIXTURES/three.lua"
assert_exit 0 bh show last --json
assert_ne "$first" "$(printf %s "$OUT" | jq -r .id)" "show last after two runs"
assert_exit 0 bh runs --json
assert_eq "$(printf %s "$OUT" | jq -r '.[-1].id')" "$(bh show last --json | jq -r .id)" "runs order"
