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
    assert_exit 0 bh run --plain "$rb" "${args[@]}"
    assert_exit 0 bh verify last
    assert_jq "$(journal)" '.[-1].status' ok
    assert_jq "$(journal)" '[.[] | select(.type == "step_end" and .status != "ok")] | length' 0
done

t last_is_newest_run
assert_exit 0 bh run --plain "$FIXTURES/three.lua"
first=$(jqs "$(journal)" '.[0].run_id')
assert_exit 0 bh run --plain "$FIXTURES/three.lua"
assert_exit 0 bh show last --json
assert_ne "$first" "$(printf %s "$OUT" | jq -r .id)" "show last after two runs"
assert_exit 0 bh runs --json
assert_eq "$(printf %s "$OUT" | jq -r '.[-1].id')" "$(bh show last --json | jq -r .id)" "runs order"
