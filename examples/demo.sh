#!/bin/sh
# examples/demo.sh: the reference incident as a drill. Used by `make demo`;
# run from the repository root. Nothing is executed: a drill runs the
# runbook's logic on simulated time with every action simulated.
set -u

BIN=build/bulkhead
RUNBOOK=examples/reference-incident/web-compromise.lua

if [ ! -x "$BIN" ]; then
    echo "demo: $BIN not found; run 'make all' first (from the repository root)" >&2
    exit 2
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/bulkhead-demo.XXXXXX") || exit 2
STATE=$TMP/state
WORKDIR=$TMP/workdir  # named by the runbook; a drill creates nothing in it
mkdir -p "$STATE" || exit 2

cat <<BANNER
==============================================================================
 bulkhead demo: drilling the reference incident (agency web compromise)

 A drill runs $RUNBOOK
 without executing anything: each command records what it would have run,
 approvals are granted (after a simulated wait), and time is simulated from
 each step's estimate. Faults are injected on purpose; a scorecard says
 what the runbook absorbed. Run records go to $STATE.
==============================================================================
BANNER

step() { printf '\n---- %s\n' "$*"; }
B() { "$BIN" --state-dir "$STATE" "$@"; }

step "$BIN plan $RUNBOOK (abridged)"
B plan "$RUNBOOK" -p "workdir=$WORKDIR" | head -n 24 || exit $?
echo "  ..."

step "drill 1: inform-staff fails 60% of the time (seed 4), approvals take 5 minutes"
B drill --plain "$RUNBOOK" -p "workdir=$WORKDIR" --flaky inform-staff=0.6 --seed 4 \
    --approval-wait 5m --operator demo
rc1=$?

step "drill 2: the key systems cannot be shut down, the web isolation is slow (x4)"
B drill --plain "$RUNBOOK" -p "workdir=$WORKDIR" --fail shut-key-systems \
    --slow isolate-web=4 --seed 5 --operator demo | sed -n '/^drill scorecard/,$p'
rc2=$?
echo "(the drill found it: without the key systems down the run stops, not contained)"

step "$BIN drills web-compromise (the history, with the trend)"
B drills "$RUNBOOK"

step "$BIN report (of drill 2: markdown summary; HTML next to it)"
second=$(ls "$STATE/runs" | sort | tail -n 1)
B report "$second" --format html --out "$TMP/report.html"
B report "$second" | sed -n '/^## Summary/,/^## Events/p' | head -n 22

step "$BIN verify (the journal's hash chain)"
B verify "$second"
vrc=$?

cat <<END

The HTML report (open it in a browser; it is one self-contained file):
    $TMP/report.html
To run the same incident for real against local stand-ins (folders under a
temporary workdir; no real system is touched):
    wd=\$(mktemp -d); $BIN run $RUNBOOK -p workdir=\$wd --approve isolate-web
Run records and reports kept in $TMP (delete with: rm -rf $TMP)
END
if [ "$rc1" -ne 0 ]; then
    echo "demo: drill 1 failed (exit $rc1)" >&2
    exit "$rc1"
fi
if [ "$vrc" -ne 0 ]; then
    echo "demo: the journal check failed (exit $vrc)" >&2
    exit 1
fi
echo "demo: ok"
