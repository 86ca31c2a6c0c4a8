#!/usr/bin/env bash
. "$(dirname "$0")/lib.sh"

t runs_and_show
assert_exit 0 bh run "$FIXTURES/three.lua"
id=$(jqs "$(journal)" '.[0].run_id')
assert_exit 0 bh runs
assert_contains "$OUT" "$id" "runs"
assert_exit 0 bh runs --json
assert_eq "$id" "$(printf %s "$OUT" | jq -r '.[-1].id')" "runs --json last id"
assert_exit 0 bh show "${id:0:20}"
assert_contains "$OUT" "$id" "show by prefix"
assert_exit 0 bh show last --json
printf %s "$OUT" | jq -e . >/dev/null 2>&1 || fail "show --json is not JSON"
assert_contains "$OUT" "$id" "show last --json"

t show_nope_exits_6
assert_exit 6 bh show nope

t unknown_command_exits_2
assert_exit 2 bh frobnicate

t unknown_option_exits_2
assert_exit 2 bh run --no-such-option "$FIXTURES/three.lua"

t version
assert_exit 0 "$BULKHEAD" --version
assert_contains "$OUT" "$(cat "$ROOT/VERSION")" "--version"

for c in plan check run runs show verify; do
    t "help_$c"
    assert_exit 0 "$BULKHEAD" "$c" --help
    assert_contains "$OUT$ERR" "usage" "$c --help"
    assert_contains "$OUT$ERR" "$c" "$c --help"
done
t help_global
assert_exit 0 "$BULKHEAD" --help
assert_contains "$OUT$ERR" "usage" "--help"
