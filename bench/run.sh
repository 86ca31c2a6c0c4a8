#!/usr/bin/env bash
# Per-step overhead of `bulkhead run` against a plain bash loop running the
# same 1,000 /bin/true commands, measured in the same run (the machines are
# shared and noisy: only medians and ratios measured together mean much).
# Also: peak RSS of the run, and the time `plan` takes on the same runbook.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BULKHEAD:-build/bulkhead}
N=${BENCH_STEPS:-1000}
REPS=${BENCH_REPS:-5}
OUT=bench/out
rm -rf "$OUT" && mkdir -p "$OUT"
RB="$OUT/steps-$N.lua"
{
    echo 'runbook { id = "bench", title = "1000 sequential /bin/true steps", timeout = "30s" }'
    for i in $(seq 1 "$N"); do
        echo "step \"s$i\" { run = function(ctx) ctx.exec { \"/bin/true\" } end }"
    done
} >"$RB"

# The same N commands as a fan-out, 8 in flight, against xargs -P8.
FAN="$OUT/fanout-$N.lua"
cat >"$FAN" <<LUA
runbook { id = "benchfan", title = "fan-out of $N /bin/true, 8 at once", timeout = "30s" }
local items = {} for i = 1, $N do items[i] = i end
step "fan" { each = items, concurrency = 8, run = function(ctx, i) ctx.exec { "/bin/true" } end }
LUA

# Ctrl-C: from SIGINT to the engine's exit while a step's body computes in
# Lua (the signal has to reach Lua), against the same while the body waits
# on the loop (ctx.sleep: the loop wakes at once).
for kind in spin idle; do
    body='while true do end'
    [ $kind = idle ] && body='ctx.sleep("60s")'
    cat >"$OUT/sig-$kind.lua" <<LUA
runbook { id = "sig$kind", title = "Ctrl-C while the body is $kind" }
step "begin" { run = function(ctx) ctx.exec { "touch", "$OUT/sig-$kind.go" } end }
step "wait" { timeout = "60s", run = function(ctx) $body end }
LUA
done
# sigint_ms KIND: one measurement, in ms
sigint_ms() {
    rm -f "$OUT/sig-$1.go"
    "$BIN" --state-dir "$OUT/sigstate" run --plain "$OUT/sig-$1.lua" >/dev/null 2>&1 &
    local pid=$! i
    for i in $(seq 1 200); do [ -e "$OUT/sig-$1.go" ] && break; sleep 0.01; done
    sleep 0.2 # in the second step's body by now
    local t0 t1
    t0=$(now_ms)
    kill -INT "$pid"
    wait "$pid" || true
    t1=$(now_ms)
    echo "$t1 - $t0" | bc -l
}

now_ms() { date +%s%N | awk '{ printf "%.3f", $1 / 1e6 }'; }
median() { sort -n | awk '{ a[NR] = $1 } END { m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; printf "%.3f", m }'; }

: >"$OUT/bash.ms"; : >"$OUT/run.ms"; : >"$OUT/plan.ms"; : >"$OUT/rss.kb"
: >"$OUT/xargs.ms"; : >"$OUT/fan.ms"; : >"$OUT/sigspin.ms"; : >"$OUT/sigidle.ms"
for r in $(seq 1 "$REPS"); do
    t0=$(now_ms)
    for ((i = 0; i < N; i++)); do /bin/true; done
    t1=$(now_ms)
    echo "$t1 - $t0" | bc -l >>"$OUT/bash.ms"

    state="$OUT/state-$r"
    t0=$(now_ms)
    /usr/bin/time -f %M -o "$OUT/rss.$r" "$BIN" --state-dir "$state" run --plain "$RB" >/dev/null
    t1=$(now_ms)
    echo "$t1 - $t0" | bc -l >>"$OUT/run.ms"
    cat "$OUT/rss.$r" >>"$OUT/rss.kb"
    "$BIN" --state-dir "$state" verify last >/dev/null
    rm -rf "$state"

    t0=$(now_ms)
    seq 1 "$N" | xargs -P8 -n1 /bin/true
    t1=$(now_ms)
    echo "$t1 - $t0" | bc -l >>"$OUT/xargs.ms"
    t0=$(now_ms)
    "$BIN" --state-dir "$state" run --plain "$FAN" >/dev/null
    t1=$(now_ms)
    echo "$t1 - $t0" | bc -l >>"$OUT/fan.ms"
    rm -rf "$state"

    t0=$(now_ms)
    "$BIN" plan "$RB" >/dev/null
    t1=$(now_ms)
    echo "$t1 - $t0" | bc -l >>"$OUT/plan.ms"

    sigint_ms spin >>"$OUT/sigspin.ms"
    sigint_ms idle >>"$OUT/sigidle.ms"
done
rm -rf "$OUT/sigstate"

bash_ms=$(median <"$OUT/bash.ms")
run_ms=$(median <"$OUT/run.ms")
plan_ms=$(median <"$OUT/plan.ms")
rss_kb=$(sort -n "$OUT/rss.kb" | tail -1)
xargs_ms=$(median <"$OUT/xargs.ms")
fan_ms=$(median <"$OUT/fan.ms")
fan_ratio=$(echo "$fan_ms / $xargs_ms" | bc -l)
sigspin_ms=$(median <"$OUT/sigspin.ms")
sigidle_ms=$(median <"$OUT/sigidle.ms")
per_bash=$(echo "$bash_ms / $N" | bc -l)
per_run=$(echo "$run_ms / $N" | bc -l)
ratio=$(echo "$run_ms / $bash_ms" | bc -l)
printf 'bench: %d sequential /bin/true steps, median of %d runs\n' "$N" "$REPS"
printf '  bash loop        %8.1f ms  (%.3f ms/step)\n' "$bash_ms" "$per_bash"
printf '  bulkhead run     %8.1f ms  (%.3f ms/step, journal fsync per step)\n' "$run_ms" "$per_run"
printf '  ratio            %8.2fx  (target <= 2x)\n' "$ratio"
printf '  peak RSS         %8.1f MB  (target < 16 MB)\n' "$(echo "$rss_kb / 1024" | bc -l)"
printf '  plan             %8.1f ms  (target < 20 ms)\n' "$plan_ms"
printf '  xargs -P8        %8.1f ms  (%.3f ms/command)\n' "$xargs_ms" "$(echo "$xargs_ms / $N" | bc -l)"
printf '  each, 8 at once  %8.1f ms  (%.3f ms/item; %.2fx xargs -P8, target <= 3x)\n' "$fan_ms" "$(echo "$fan_ms / $N" | bc -l)" "$fan_ratio"
printf '  Ctrl-C, body idle  %6.1f ms  (SIGINT to exit, the body in ctx.sleep)\n' "$sigidle_ms"
printf '  Ctrl-C, body busy  %6.1f ms  (the body looping in Lua; %.2fx idle, target <= 100 ms)\n' \
    "$sigspin_ms" "$(echo "$sigspin_ms / $sigidle_ms" | bc -l)"
fail=0
awk -v r="$ratio" 'BEGIN { exit !(r > 2) }' && { echo "  OVER TARGET: ratio"; fail=1; }
[ "$rss_kb" -ge 16384 ] && { echo "  OVER TARGET: peak RSS"; fail=1; }
awk -v p="$plan_ms" 'BEGIN { exit !(p >= 20) }' && { echo "  OVER TARGET: plan"; fail=1; }
awk -v r="$fan_ratio" 'BEGIN { exit !(r > 3) }' && { echo "  OVER TARGET: fan-out"; fail=1; }
awk -v s="$sigspin_ms" 'BEGIN { exit !(s > 100) }' && { echo "  OVER TARGET: Ctrl-C"; fail=1; }
exit $fail
