#!/bin/sh
# examples/demo.sh: run the reference incident against local stand-ins.
# Used by `make demo`; run from the repository root.
set -u

BIN=build/bulkhead
RUNBOOK=examples/reference-incident/web-compromise.lua

if [ ! -x "$BIN" ]; then
    echo "demo: $BIN not found; run 'make all' first (from the repository root)" >&2
    exit 2
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/bulkhead-demo.XXXXXX") || exit 2
WORKDIR=$TMP/workdir
STATE=$TMP/state
mkdir -p "$WORKDIR" "$STATE" || exit 2

cat <<BANNER
==============================================================================
 bulkhead demo: the reference incident (agency web compromise)

 This runs examples/reference-incident/web-compromise.lua against local
 stand-ins in a temporary folder:
     $WORKDIR
 Hosts are folders with state files, "isolation" writes firewall-rule files,
 notifications go to outbox/*.txt. No real systems are touched.
 Run records go to $STATE.
 The run approves isolate-web up front (--approve) so the demo never waits.
==============================================================================
BANNER

step() { printf '\n---- %s\n' "$*"; }

step "$BIN plan $RUNBOOK -p workdir=$WORKDIR"
"$BIN" --state-dir "$STATE" plan "$RUNBOOK" -p "workdir=$WORKDIR" || exit $?

step "$BIN run $RUNBOOK -p workdir=$WORKDIR --approve isolate-web"
"$BIN" --state-dir "$STATE" run "$RUNBOOK" -p "workdir=$WORKDIR" --operator demo --approve isolate-web
rc=$?

step "$BIN show last"
"$BIN" --state-dir "$STATE" show last

step "$BIN verify last"
"$BIN" --state-dir "$STATE" verify last
vrc=$?

printf '\n---- what the run left behind (outbox/staff.txt, evidence/RUN_ID/MANIFEST.sha256)\n'
cat "$WORKDIR/outbox/staff.txt" 2>/dev/null
cat "$WORKDIR"/evidence/*/MANIFEST.sha256 2>/dev/null

printf '\nstand-ins and run records kept in %s (delete with: rm -rf %s)\n' "$TMP" "$TMP"
if [ "$rc" -ne 0 ]; then
    echo "demo: the run failed (exit $rc)" >&2
    exit "$rc"
fi
if [ "$vrc" -ne 0 ]; then
    echo "demo: journal verification failed (exit $vrc)" >&2
    exit "$vrc"
fi
echo "demo: ok"
