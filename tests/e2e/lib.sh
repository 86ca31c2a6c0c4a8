# Helpers sourced by every tests/e2e/test_*.sh file.
# Environment from tests/run.sh: BULKHEAD (binary), WORK (fresh temp dir).
: "${BULKHEAD:?BULKHEAD must be set}"
: "${WORK:=$(mktemp -d)}"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
FIXTURES="$ROOT/tests/fixtures"
STATE="$WORK/state"
_T=""        # current test name
_TFAIL=""    # first failure reason of the current test

_t_finish() {
    [ -n "$_T" ] || return 0
    if [ -n "$_TSKIP" ]; then echo "SKIP $_T: $_TSKIP"
    elif [ -n "$_TFAIL" ]; then echo "FAIL $_T: $_TFAIL"; else echo "ok $_T"; fi
    _T=""; _TFAIL=""; _TSKIP=""
}

# skip REASON: the current test cannot run on this machine; said, not counted as passed.
skip() { _TSKIP="$*"; }
trap _t_finish EXIT

# t NAME: begin a test (ends the previous one).
t() { _t_finish; _T="$1"; _TFAIL=""; }

# fail REASON: record a failure of the current test (first reason wins).
fail() { [ -n "$_TFAIL" ] || _TFAIL="$*"; return 1; }

# bh ARGS...: run the binary against this test's state dir.
bh() { "$BULKHEAD" --state-dir "$STATE" "$@"; }

assert_eq() { # EXPECTED ACTUAL [WHAT]
    [ "$1" = "$2" ] || fail "${3:-value}: expected '$1', got '$2'"
}
assert_ne() { [ "$1" != "$2" ] || fail "${3:-value}: did not expect '$1'"; }
assert_contains() { # HAYSTACK NEEDLE [WHAT]
    case "$1" in *"$2"*) return 0 ;; esac
    fail "${3:-output} does not contain '$2': $(printf %s "$1" | head -c 400 | tr '\n' '|')"
}
assert_not_contains() {
    case "$1" in *"$2"*) fail "${3:-output} unexpectedly contains '$2'" ;; esac
    return 0
}
assert_file() { [ -e "$1" ] || fail "missing file $1"; }
assert_no_file() { [ ! -e "$1" ] || fail "file should not exist: $1"; }

# assert_exit CODE CMD...: run CMD, capture stdout/stderr in $OUT/$ERR, check the exit code.
assert_exit() {
    local want=$1; shift
    "$@" >"$WORK/.out" 2>"$WORK/.err"; RC=$?
    OUT=$(cat "$WORK/.out"); ERR=$(cat "$WORK/.err")
    [ "$RC" = "$want" ] || fail "exit of '$*': expected $want, got $RC; stderr: $(head -c 400 "$WORK/.err" | tr '\n' '|')"
}

# assert_jq FILE FILTER EXPECTED: jq -r output of FILTER (slurped when file is jsonl) equals EXPECTED.
jqs() { jq -rs "$2" "$1" 2>&1; }
assert_jq() {
    local got; got=$(jqs "$1" "$2")
    [ "$got" = "$3" ] || fail "jq '$2': expected '$3', got '$(printf %s "$got" | head -c 300 | tr '\n' '|')'"
}

# Journal of the last run in STATE.
# (newest journal by mtime: run ids sort by second, then by runbook id)
journal() { ls -t "$STATE"/runs/*/journal.jsonl 2>/dev/null | head -n1; }
last_run_dir() { dirname "$(journal)"; }
# end_of STEP FIELD: FIELD of STEP's first step_end record in the last run's journal.
end_of() { jqs "$(journal)" "[.[] | select(.type == \"step_end\" and .step == \"$1\")][0].$2"; }

# line_sha FILE K: sha256 of line K without its newline.
line_sha() { sed -n "${2}p" "$1" | tr -d '\n' | sha256sum | cut -d' ' -f1; }

# pid_dead PID: true if gone or zombie.
pid_dead() {
    [ -e "/proc/$1" ] || return 0
    local st; st=$(awk '/^State:/{print $2}' "/proc/$1/status" 2>/dev/null)
    [ -z "$st" ] || [ "$st" = Z ]
}
# wait_dead PID [TENTHS]: poll up to 2s.
wait_dead() {
    local i
    for i in $(seq 1 "${2:-20}"); do pid_dead "$1" && return 0; sleep 0.1; done
    pid_dead "$1"
}
# wait_for CMD... : poll up to 10s.
wait_for() {
    local i
    for i in $(seq 1 100); do "$@" && return 0; sleep 0.1; done
    return 1
}
# crash_when PATTERN ARGS...: run `bulkhead ARGS` in the background and
# SIGKILL it, as a crash would, once the newest journal has a line matching
# PATTERN (grep). Its output is left in $WORK/crashed.out.
crash_when() {
    local pattern=$1 pid
    shift
    "$BULKHEAD" --state-dir "$STATE" "$@" >"$WORK/crashed.out" 2>&1 &
    pid=$!
    _crash_due() { local j; j=$(journal); [ -n "$j" ] && grep -q "$pattern" "$j"; }
    wait_for _crash_due || fail "no record matching $pattern before the kill"
    kill -KILL $pid
    wait $pid 2>/dev/null
}

# Other accounts, for the two-person rule: no user account needs to exist.
# other_accounts_missing: why they cannot be used here ("" when they can).
APPROVERS_GROUP=users
other_accounts_missing() {
    [ "$(id -u)" = 0 ] || { echo "needs root (setpriv to another uid)"; return; }
    command -v setpriv >/dev/null || { echo "setpriv (util-linux) not installed"; return; }
    getent group "$APPROVERS_GROUP" >/dev/null || echo "no group $APPROVERS_GROUP"
}
# as_account UID GROUP CMD...: CMD as uid and gid UID, with GROUP (a name,
# or "" for none) as its only supplementary group.
as_account() {
    local uid=$1 group=$2; shift 2
    if [ -n "$group" ]; then
        setpriv --reuid="$uid" --regid="$uid" --groups="$(getent group "$group" | cut -d: -f3)" "$@"
    else
        setpriv --reuid="$uid" --regid="$uid" --clear-groups "$@"
    fi
}
# let_group_pass GROUP DIR...: members of GROUP may pass through each DIR
# (group-owned, 0710), as docs/cli.md tells an operator to do.
let_group_pass() { local g=$1; shift; chgrp "$g" "$@" && chmod 0710 "$@"; }
# rechain FILE: renumber seq from 0 and recompute every prev after an edit,
# as a forger who can write the file would: the chain alone then holds.
rechain() {
    python3 - "$1" <<'PY'
import hashlib, json, sys
lines = open(sys.argv[1], "rb").read().split(b"\n")[:-1]
out, prev = [], "0" * 64
for i, l in enumerate(lines):
    r = json.loads(l)
    r["seq"] = i
    r["prev"] = prev
    b = json.dumps(r, separators=(",", ":")).encode()
    out.append(b)
    prev = hashlib.sha256(b).hexdigest()
open(sys.argv[1], "wb").write(b"\n".join(out) + b"\n")
PY
}
