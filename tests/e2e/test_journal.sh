#!/usr/bin/env bash
. "$(dirname "$0")/lib.sh"

t journal_three_steps_chain
assert_exit 0 bh run "$FIXTURES/three.lua"
J=$(journal)
assert_jq "$J" '[.[]|select(.type!="log")|.type]|join(",")' "run_start,step_start,step_end,step_start,step_end,step_start,step_end,run_end"
assert_jq "$J" '[.[]|select(.type=="step_start" or .type=="step_end")|.type+":"+.step]|join(",")' \
  "step_start:first,step_end:first,step_start:second,step_end:second,step_start:third,step_end:third"
assert_jq "$J" '[.[]|select(.type=="step_end")|.status]|unique|join(",")' "ok"
assert_jq "$J" '.[-1].type+":"+.[-1].status' "run_end:ok"
assert_jq "$J" '[.[].seq] == [range(length)]' "true"
assert_jq "$J" '.[0].prev' "$(printf '0%.0s' $(seq 64))"
n=$(wc -l <"$J")
for k in $(seq 2 "$n"); do
    want=$(line_sha "$J" $((k-1)))
    got=$(sed -n "${k}p" "$J" | jq -r .prev)
    [ "$want" = "$got" ] || { fail "line $k prev $got != sha256 of line $((k-1)) $want"; break; }
done
assert_exit 0 bh verify last
assert_contains "$OUT$ERR" "$(line_sha "$J" "$n")" "verify output (head hash)"

t journal_step_results
assert_jq "$J" '[.[]|select(.type=="step_end")|.result] == [{"n":20,"tag":"a"},{"n":42,"tag":"ab"},42]' "true"
assert_jq "$J" '.[]|select(.type=="log")|.message' "second said ab"

# Tampering: copies of the journal of the three-step run, each in a folder
# named after the run (verify checks that the journal is that run's).
RUN_ID=$(basename "$(dirname "$J")")
# copy_to NAME: a copy of the journal in $WORK/NAME/RUN_ID/; its path in $T.
copy_to() { mkdir -p "$WORK/$1/$RUN_ID"; T="$WORK/$1/$RUN_ID/journal.jsonl"; cp "$ORIG" "$T"; }
mkdir -p "$WORK/orig/$RUN_ID"; cp "$J" "$WORK/orig/$RUN_ID/journal.jsonl"; ORIG="$WORK/orig/$RUN_ID/journal.jsonl"
# line L holds seq L-1; offset of line L = bytes of lines 1..L-1.
off() { head -n "$(($2-1))" "$1" | wc -c | tr -d ' '; }

t verify_tamper_changed_byte
copy_to t1
# seq 3 is step_start of "second": change one letter of the step id.
sed -i '4s/"step":"second"/"step":"secxnd"/' "$T"
cmp -s "$T" "$ORIG" && fail "sed did not tamper"
assert_exit 5 bh verify "$T"
assert_contains "$OUT$ERR" "seq 3" "verify output"
assert_contains "$OUT$ERR" "$(off "$ORIG" 4)" "verify output (offset)"

t verify_tamper_changed_digit
copy_to t1b
# seq 2 is step_end of "first": change the first digit of duration_ms.
sed -i -E '3s/"duration_ms":([0-9])/"duration_ms":X\1/; 3s/"duration_ms":X0/"duration_ms":1/; 3s/"duration_ms":X[1-9]/"duration_ms":0/' "$T"
[ "$(wc -c <"$T")" = "$(wc -c <"$ORIG")" ] || fail "size changed"
cmp -s "$T" "$ORIG" && fail "sed did not tamper"
assert_exit 5 bh verify "$T"
assert_contains "$OUT$ERR" "seq 2" "verify output"
assert_contains "$OUT$ERR" "$(off "$ORIG" 3)" "verify output (offset)"

t verify_tamper_deleted_line
copy_to t2
sed -i '5d' "$T"   # delete seq 4
assert_exit 5 bh verify "$T"
assert_contains "$OUT$ERR" "expected seq 4" "verify output"
assert_contains "$OUT$ERR" "$(off "$ORIG" 5)" "verify output (offset)"

t verify_tamper_swapped_lines
copy_to t3
# swap lines 4 and 5 (seq 3 and seq 4)
awk 'NR==4{h=$0;next} NR==5{print;print h;next} {print}' "$ORIG" >"$T"
assert_exit 5 bh verify "$T"
assert_contains "$OUT$ERR" "expected seq 3" "verify output"
assert_contains "$OUT$ERR" "$(off "$ORIG" 4)" "verify output (offset)"

t verify_torn_last_line
copy_to t4; head -c -1 "$ORIG" >"$T"
assert_exit 5 bh verify "$T"

t verify_original_copy_intact
assert_exit 0 bh verify "$ORIG"

t verify_empty_journal_is_not_intact
copy_to empty; : >"$T"
assert_exit 5 bh verify "$T"
assert_contains "$OUT" "BROKEN at seq 0 (byte offset 0)"
assert_contains "$OUT" "the journal is empty: it has no run_start record"
assert_exit 0 bh show "$T"
assert_contains "$OUT" "JOURNAL BROKEN"

t verify_journal_without_its_run_start_is_not_intact
# The first record cut off and the rest renumbered and rehashed: every
# link holds, but the run's own start is gone.
copy_to headless; sed -i '1d' "$T"; rechain "$T"
assert_eq step_start "$(head -n1 "$T" | jq -r .type)" "first record of the edited copy"
assert_exit 5 bh verify "$T"
assert_contains "$OUT" "BROKEN at seq 0 (byte offset 0)"
assert_contains "$OUT" "is a 'step_start' record, not run_start"
# The first record turned into another type.
copy_to retyped; sed -i '1s/"type":"run_start"/"type":"log"/' "$T"
assert_exit 5 bh verify "$T"
assert_contains "$OUT" "BROKEN at seq 0 (byte offset 0): seq 0 at byte 0 is a 'log' record, not run_start"
# resume and undo refuse to append to it.
assert_exit 5 bh resume "$T" --skip-unknown --plain
assert_contains "$ERR" "is damaged: seq 0 at byte 0 is a 'log' record, not run_start"
assert_exit 5 bh undo "$T"
assert_contains "$ERR" "not run_start"

t verify_journal_of_another_run_is_refused_without_a_key
# Intact by itself, but its run_start names another run than the folder
# it is in: one run's journal copied over another's.
mkdir -p "$WORK/swap/20990101T000000.000Z-three-abcdef"
cp "$ORIG" "$WORK/swap/20990101T000000.000Z-three-abcdef/journal.jsonl"
assert_exit 5 bh verify "$WORK/swap/20990101T000000.000Z-three-abcdef"
assert_contains "$OUT" "NOT THIS RUN'S JOURNAL: its run_start names run '$RUN_ID', not this run folder '20990101T000000.000Z-three-abcdef'"
assert_not_contains "$OUT" "intact"
# show and runs of such a run in the state dir say the same
mkdir -p "$STATE/runs/20990101T000000.000Z-three-abcdef"
cp "$ORIG" "$STATE/runs/20990101T000000.000Z-three-abcdef/journal.jsonl"
assert_exit 0 bh show 20990101T000000.000Z-three-abcdef
assert_contains "$OUT" "JOURNAL BROKEN at seq 0 (byte offset 0): NOT THIS RUN'S JOURNAL: its run_start names run '$RUN_ID'"
assert_not_contains "$OUT" "journal intact"
assert_exit 0 bh runs
assert_contains "$(printf '%s\n' "$OUT" | grep 20990101T000000.000Z-three-abcdef)" "JOURNAL BROKEN"
assert_exit 0 bh show 20990101T000000.000Z-three-abcdef --json
assert_eq false "$(printf %s "$OUT" | jq .intact)" "show --json intact"
rm -rf "$STATE/runs/20990101T000000.000Z-three-abcdef"

t run_json_stdout_equals_journal
rm -rf "$STATE"
bh run --json "$FIXTURES/three.lua" >"$WORK/json.out" 2>"$WORK/json.err"; rc=$?
assert_eq 0 "$rc" "exit"
while IFS= read -r line; do
    printf '%s' "$line" | jq -e . >/dev/null 2>&1 || { fail "stdout line is not JSON: $line"; break; }
done <"$WORK/json.out"
cmp -s "$WORK/json.out" "$(journal)" || fail "run --json stdout differs from journal: $(diff "$WORK/json.out" "$(journal)" | head -c 300)"

t failed_step_skips_later
rm -rf "$STATE"
cat >"$WORK/fail.lua" <<'LUA'
runbook { id = "failing", title = "Fails in the middle" }
step "good" { run = function(ctx) return 1 end }
step "bad" { run = function(ctx) error("nope") end }
step "later1" { run = function(ctx) return 2 end }
step "later2" { run = function(ctx) return 3 end }
LUA
assert_exit 1 bh run "$WORK/fail.lua"
J=$(journal)
assert_jq "$J" '.[]|select(.type=="step_end" and .step=="bad")|.status+":"+.error.code+":"+(.error.line|tostring)' "failed:lua_error:3"
assert_jq "$J" '[.[]|select(.type=="step_skipped")|.step]|join(",")' "later1,later2"
assert_jq "$J" '[.[]|select(.type=="step_skipped")|(.reason|length>0)]|all' "true"
assert_jq "$J" '[.[]|select(.type=="step_start")|.step]|join(",")' "good,bad"
assert_jq "$J" '.[-1].type+":"+.[-1].status' "run_end:failed"
assert_exit 0 bh show last
assert_contains "$(printf %s "$OUT" | grep later1)" "skipped" "show line of later1"
assert_contains "$(printf %s "$OUT" | grep later2)" "skipped" "show line of later2"
