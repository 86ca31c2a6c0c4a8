#!/usr/bin/env bash
# Whole-suite runner (make check): cmocka unit binaries, then tests/e2e/test_*.sh.
# With arguments, only the unit binaries and e2e files whose names contain one
# of them (tests/run.sh exec undo), for a loop while developing.
set -u
FILTER=("$@")
wanted() {
    [ ${#FILTER[@]} = 0 ] && return 0
    local f; for f in "${FILTER[@]}"; do case "$1" in *"$f"*) return 0 ;; esac; done
    return 1
}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export BULKHEAD="$ROOT/build/asan/bulkhead"
export BH_TOOLS="$ROOT/build/tools"   # test peers (tests/tools)
PASSED=0; FAILED=0; SKIPPED=0

if [ ! -x "$BULKHEAD" ]; then
    echo "FAIL build: $BULKHEAD missing (make asan)"; FAILED=$((FAILED+1))
fi

LOGDIR=$(mktemp -d)
trap 'rm -rf "$LOGDIR"' EXIT

# Unit tests.
for bin in "$ROOT"/build/asan/test_*; do
    [ -x "$bin" ] || continue
    name=$(basename "$bin")
    wanted "$name" || continue
    log="$LOGDIR/$name.log"
    (cd "$ROOT" && timeout 120 "$bin") >"$log" 2>&1; rc=$?
    p=$(sed -n 's/^\[  PASSED  \] \([0-9][0-9]*\) test(s)\..*/\1/p' "$log" | tail -n1)
    f=$(sed -n 's/^\[  FAILED  \] \([0-9][0-9]*\) test(s).*/\1/p' "$log" | tail -n1)
    if [ -z "$p" ] && [ -z "$f" ]; then
        echo "FAIL $name: exit $rc, no cmocka summary: $(tail -n3 "$log" | tr '\n' '|')"
        FAILED=$((FAILED+1)); continue
    fi
    p=${p:-0}; f=${f:-0}
    # Individual failed tests.
    grep '^\[  FAILED  \] [A-Za-z_]' "$log" | sed 's/^\[  FAILED  \] /FAIL '"$name"': /' | sort -u
    if [ "$f" = 0 ] && [ "$rc" != 0 ]; then
        echo "FAIL $name: exit $rc after $p passed: $(tail -n3 "$log" | tr '\n' '|')"; f=1
    fi
    echo "ok $name ($p passed, $f failed)"
    PASSED=$((PASSED+p)); FAILED=$((FAILED+f))
done

# Fuzz corpus and every crash found so far, replayed under ASan/UBSan.
for bin in "$ROOT"/build/asan/replay_*; do
    [ -x "$bin" ] || continue
    t=${bin##*/replay_}
    wanted "fuzz_replay_$t" || continue
    log="$LOGDIR/replay_$t.log"
    (cd "$ROOT" && timeout 300 "$bin" tests/fuzz/corpus/"$t" tests/fuzz/crashes/"$t") >"$log" 2>&1; rc=$?
    if [ "$rc" = 0 ]; then
        echo "ok fuzz_replay_$t ($(grep -o '^[0-9]* inputs' "$log"))"; PASSED=$((PASSED+1))
    else
        echo "FAIL fuzz_replay_$t: exit $rc: $(grep '^replay: ' "$log" | tail -n1) $(grep -m1 -E 'ERROR|runtime error' "$log")"
        FAILED=$((FAILED+1))
    fi
done

# End-to-end tests.
for file in "$ROOT"/tests/e2e/test_*.sh; do
    [ -f "$file" ] || continue
    name=$(basename "$file" .sh)
    wanted "$name" || continue
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/bulkhead-e2e.XXXXXX")
    out="$LOGDIR/$name.out"
    # a file may ask for more than 150 s with a "# timeout: N" line (the lab's)
    limit=$(sed -n 's/^# timeout: \([0-9][0-9]*\)$/\1/p' "$file" | head -n1)
    (cd "$WORK" && WORK="$WORK" timeout "${limit:-150}" bash "$file") >"$out" 2>"$LOGDIR/$name.err"; rc=$?
    grep -E '^(ok|FAIL|SKIP) ' "$out"
    p=$(grep -c '^ok ' "$out"); f=$(grep -c '^FAIL ' "$out")
    SKIPPED=$((SKIPPED + $(grep -c '^SKIP ' "$out")))
    if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
        echo "FAIL $name: exited $rc: $(tail -n3 "$LOGDIR/$name.err" | tr '\n' '|')"; f=1
    fi
    PASSED=$((PASSED+p)); FAILED=$((FAILED+f))
    rm -rf "$WORK"
done

echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
[ "$FAILED" -gt 0 ] && exit 1
exit 0
