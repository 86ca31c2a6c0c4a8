#!/usr/bin/env bash
# Signed checkpoints: keygen, run --sign-key, verify --key / --expect-head.
. "$(dirname "$0")/lib.sh"

cat >"$WORK/sig.lua" <<'LUA'
runbook { id = "sig", title = "Signed", timeout = "30s" }
for i = 1, 12 do step("s" .. i) { run = function(ctx) return i end } end
LUA

t keygen_makes_a_private_pair_and_never_overwrites
assert_exit 0 bh keygen --out "$WORK/k"
assert_eq 600 "$(stat -c %a "$WORK/k.key")" "secret key mode"
assert_contains "$(cat "$WORK/k.pub")" "bulkhead-ed25519-public "
cp "$WORK/k.key" "$WORK/k.key.orig"
assert_exit 6 bh keygen --out "$WORK/k"
assert_contains "$ERR" "File exists"
assert_eq "$(cat "$WORK/k.key.orig")" "$(cat "$WORK/k.key")" "untouched"

t signed_run_verifies_with_the_public_key
assert_exit 0 bh run --plain --sign-key "$WORK/k.key" --checkpoint-every 10 "$WORK/sig.lua"
assert_jq "$(journal)" '[.[] | select(.type == "checkpoint")] | length' 3
assert_jq "$(journal)" '.[-1].type' checkpoint
assert_jq "$(journal)" '.[-2].type' run_end
assert_exit 0 bh verify last --key "$WORK/k.pub"
assert_contains "$OUT" "3 signed checkpoints verify"
head=$(printf %s "$OUT" | sed -n 's/^head //p')
assert_exit 0 bh verify last --expect-head "$head"

t env_key_and_other_key
BULKHEAD_SIGN_KEY="$WORK/k.key" assert_exit 0 bh run --plain "$WORK/sig.lua"
assert_jq "$(journal)" '[.[] | select(.type == "checkpoint")] | length' 1
assert_exit 0 bh keygen --out "$WORK/other"
assert_exit 5 bh verify last --key "$WORK/other.pub"
assert_contains "$OUT" "not by the given key"

t forged_rewrite_passes_the_chain_but_not_the_signature
assert_exit 0 bh run --plain --sign-key "$WORK/k.key" "$WORK/sig.lua"
J=$(journal)
sed -i 's/"result":7/"result":700/' "$J"
rechain "$J"
assert_exit 0 bh verify last
assert_exit 5 bh verify last --key "$WORK/k.pub"
assert_contains "$OUT" "SIGNATURE FAILURE"

t truncation_is_caught
assert_exit 0 bh run --plain --sign-key "$WORK/k.key" --checkpoint-every 5 "$WORK/sig.lua"
assert_exit 0 bh verify last
head=$(printf %s "$OUT" | sed -n 's/^head //p')
J=$(journal)
head -n 20 "$J" >"$WORK/t" && cp "$WORK/t" "$J"
assert_exit 0 bh verify last
assert_exit 5 bh verify last --expect-head "$head"
assert_contains "$OUT" "cut short"
assert_exit 5 bh verify last --key "$WORK/k.pub"
assert_contains "$OUT" "UNSIGNED TAIL"

t readable_secret_key_is_refused
cp "$WORK/k.key" "$WORK/open.key"; chmod 644 "$WORK/open.key"
assert_exit 2 bh run --plain --sign-key "$WORK/open.key" "$WORK/sig.lua"
assert_contains "$ERR" "readable by group or others (mode 644)"
printf 'junk\n' >"$WORK/junk.key"; chmod 600 "$WORK/junk.key"
assert_exit 2 bh run --plain --sign-key "$WORK/junk.key" "$WORK/sig.lua"
assert_contains "$ERR" "is not a bulkhead secret key"

t moved_checkpoint_and_swapped_journal_are_caught
assert_exit 0 bh run --plain --sign-key "$WORK/k.key" --checkpoint-every 5 "$WORK/sig.lua"
J=$(journal)
first_cp=$(grep -m1 '"type":"checkpoint"' "$J")
grep -v '"type":"checkpoint"' "$J" >"$WORK/t"
printf '%s\n' "$first_cp" >>"$WORK/t"
cp "$WORK/t" "$J"
rechain "$J"
assert_exit 5 bh verify last --key "$WORK/k.pub"
assert_contains "$OUT" "does not cover the record just before it"
assert_exit 0 bh run --plain --sign-key "$WORK/k.key" "$WORK/sig.lua"
A=$(journal)
assert_exit 0 bh run --plain --sign-key "$WORK/k.key" "$WORK/sig.lua"
B=$(journal)
cp "$A" "$B"
assert_exit 5 bh verify last --key "$WORK/k.pub"
assert_contains "$OUT" "not this run folder"
