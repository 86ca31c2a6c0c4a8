#!/usr/bin/env bash
# Crash test: a 50-step runbook whose steps each append a marker to a file;
# the engine (run or resume) is SIGKILLed at random moments, at least 100
# times, and resumed after each kill. Afterwards, for every run: its journal
# verifies and ends ok, every completed step's marker is there exactly once,
# and no step's marker is there twice (odd steps are idempotent and check
# before they write; even ones are not and are never repeated blindly).
. "$(dirname "$0")/lib.sh"

KILLS=${CRASH_KILLS:-110}
BUDGET=${CRASH_SECONDS:-75}
SEED=${CRASH_SEED:-$$}
RANDOM=$SEED

cat >"$WORK/crash.lua" <<'LUA'
runbook { id = "crash", title = "Crash test: 50 markers", timeout = "20s",
          params = { dir = { type = "string", required = true, doc = "marker folder" } } }
for i = 1, 50 do
  local marker = "s" .. i
  step(marker) {
    idempotent = i % 2 == 1,
    undo = false,
    run = function(ctx)
      if i % 2 == 1 then -- idempotent: writes its marker only if it is not there
        ctx.sh('grep -qx "$M" "$D/log" 2>/dev/null || echo "$M" >>"$D/log"',
               { env = { D = param.dir, M = marker } })
      else
        ctx.exec { "tee", "-a", param.dir .. "/log", stdin = marker .. "\n" }
      end
      return i
    end,
  }
end
LUA

newest_dir() { ls -d "$STATE"/runs/*/ 2>/dev/null | sort | tail -n1; }
has_start() { [ -s "$1/journal.jsonl" ] && head -n1 "$1/journal.jsonl" | grep -q '"type":"run_start"'; }
# Finished: the last complete line is a run_end, or a checkpoint after one.
finished() { tail -n1 "$1/journal.jsonl" | grep -q '"type":"run_end"'; }

t crash_kill_resume_keeps_markers_exact
kills=0 runs=0 resumes=0 abandoned=0 current="" n=0
start=$SECONDS
while [ $kills -lt "$KILLS" ] && [ $((SECONDS - start)) -lt "$BUDGET" ]; do
    if [ -z "$current" ]; then
        n=$((n + 1)); mkdir -p "$WORK/m/$n"
        before=$(newest_dir)
        "$BULKHEAD" --state-dir "$STATE" run --plain "$WORK/crash.lua" -p dir="$WORK/m/$n" >/dev/null 2>&1 &
        pid=$!; runs=$((runs + 1))
    else
        "$BULKHEAD" --state-dir "$STATE" resume "$current" --skip-unknown --plain >/dev/null 2>>"$WORK/resume.err" &
        pid=$!; resumes=$((resumes + 1))
    fi
    # 0-150 ms: before the folder exists, inside a write, between steps,
    # while a command runs, during a resume's own records.
    sleep "0.$(printf %03d $((RANDOM % 150)))"
    if kill -KILL $pid 2>/dev/null; then kills=$((kills + 1)); fi
    wait $pid 2>/dev/null
    if [ -z "$current" ]; then
        d=$(newest_dir)
        if [ -n "$d" ] && [ "$d" != "$before" ] && has_start "$d"; then
            current=${d%/}
        else
            abandoned=$((abandoned + 1)) # killed before its first record: nothing ran
            [ -n "$d" ] && [ "$d" != "$before" ] && rm -rf "$d"
        fi
    fi
    if [ -n "$current" ] && finished "$current"; then current=""; fi
done
# The last one runs to its end.
if [ -n "$current" ]; then
    "$BULKHEAD" --state-dir "$STATE" resume "$current" --skip-unknown --plain >/dev/null 2>>"$WORK/resume.err" \
        || fail "final resume of $current failed: $(tail -n3 "$WORK/resume.err" | tr '\n' '|')"
fi
[ "$kills" -ge 100 ] || fail "only $kills kills in ${BUDGET}s (wanted 100)"

checked=0 unknowns=0 retried=0
for d in "$STATE"/runs/*/; do
    d=${d%/}; j="$d/journal.jsonl"
    "$BULKHEAD" verify "$j" >/dev/null 2>&1 || fail "verify failed for $j: $("$BULKHEAD" verify "$j" 2>&1 | tail -n1)"
    # one read of the journal: status, marker folder, unknowns skipped and
    # retried, the steps that completed
    IFS=$'\t' read -r status mdir nskip nretry completed < <(jq -rs '[
        ([.[] | select(.type == "run_end")][-1].status),
        .[0].params.dir,
        ([.[] | select(.type == "unknown_outcome" and .decision == "skip")] | length),
        ([.[] | select(.type == "unknown_outcome" and .decision == "retry")] | length),
        ([.[] | select(.type == "step_end" and .status == "ok") | .step] | join(" "))
      ] | map(tostring) | join("\t")' "$j")
    [ "$status" = ok ] || fail "$j ended '$status'"
    # how many times each marker line appears, from one read of the log
    declare -A seen=()
    while read -r c m; do [ -n "$m" ] && seen[$m]=$c; done < <(sort "$mdir/log" 2>/dev/null | uniq -c)
    for k in $(seq 1 50); do
        c=${seen[s$k]:-0}
        [ "$c" -le 1 ] || fail "$j: marker s$k appears $c times"
    done
    for s in $completed; do
        c=${seen[$s]:-0}
        [ "$c" = 1 ] || fail "$j: completed step $s has its marker $c times"
    done
    unset seen
    unknowns=$((unknowns + nskip))
    retried=$((retried + nretry))
    checked=$((checked + 1))
done
echo "crash: seed $SEED, $kills kills, $runs runs ($abandoned killed before their first record), $resumes resumes, $checked journals checked, $unknowns unknown outcomes skipped, $retried retried, $((SECONDS - start))s" >&2
[ "$checked" -ge 1 ] || fail "no journal to check"
