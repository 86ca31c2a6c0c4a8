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

# A fan-out's instances interleave in the journal: show pairs each exec's
# end with its own start (item, attempt, number) and names the item.
t show_fanout_pairs_execs
cat >"$WORK/fan.lua" <<'LUA'
runbook { id = "fan", title = "fan" }
phase "p"
local d = { a = "0.4", b = "0.05", c = "0.2" }
step "s" { each = { "a", "b", "c" }, timeout = "10s",
  run = function(ctx, item)
    ctx.exec { "sh", "-c", "sleep " .. d[item] .. "; echo first " .. item }
    ctx.exec { "sh", "-c", "echo second " .. item .. "; exit " .. (item == "c" and 3 or 0) }
  end }
LUA
assert_exit 1 bh run "$WORK/fan.lua"
j=$(journal)
# the journal does interleave: a's first exec ends after b's second started
assert_eq "true" "$(jqs "$j" '(map(.type == "exec_end" and .item == 1 and .n == 1) | index(true)) > (map(.type == "exec_start" and .item == 2 and .n == 2) | index(true))')" "interleaved"
assert_exit 0 bh show last
assert_not_contains "$OUT" "no end recorded" "show"
for it in a b c; do
    line=$(printf '%s\n' "$OUT" | grep -A1 -F "[$it] \$ [\"sh\",\"-c\",\"sleep")
    assert_contains "$line" "-> exit 0" "$it's first exec"
    # its stdout file is its own (the file holds its own first line)
    f=$(printf '%s\n' "$line" | sed -n 's/.*stdout: \([^ ]*\) .*/\1/p')
    assert_eq "first $it" "$(cat "$(dirname "$j")/$f")" "$it's stdout file"
done
assert_contains "$OUT" '[c] $ ["sh","-c","echo second c; exit 3"]  -> exit 3' "c's second"
assert_contains "$OUT" '[a] $ ["sh","-c","echo second a; exit 0"]  -> exit 0' "a's second"

# What runbooks, items and commands say cannot drive the terminal: escape
# sequences, carriage returns and other controls are shown as \u00XX by
# the console, show and runs; the journal keeps them as they were.
t terminal_controls_escaped
cat >"$WORK/esc.lua" <<'LUA'
runbook { id = "esc", title = "esc" }
phase "p"
step "s" { each = { "a\27]0;pwned\7", "b\rok" }, timeout = "5s",
  run = function(ctx, item) ctx.log("x\27[2J" .. item); error("bad\27[31m\8") end }
LUA
assert_exit 1 bh run --plain "$WORK/esc.lua"
all="$OUT$ERR"
assert_contains "$OUT" 's[a\u001b]0;pwned\u0007]  failed' "console label"
assert_contains "$OUT" 'x\u001b[2Jb\u000dok' "console log line"
assert_contains "$OUT" 'bad\u001b[31m\u0008' "console error"
assert_exit 0 bh show last
all="$all$OUT"
assert_contains "$OUT" 'bad\u001b[31m\u0008' "show error"
assert_exit 0 bh runs
all="$all$OUT"
case "$all" in *$'\e'* | *$'\r'* | *$'\b'* | *$'\a'*) fail "a control character reached the terminal" ;; esac
assert_eq "a"$'\e'"]0;pwned"$'\a' "$(jqs "$(journal)" '[.[] | select(.type == "step_start")][0].key')" "journal keeps the key"

# A newline in what a runbook or an item says cannot add a console line
# that looks like the engine's.
t newline_cannot_fake_a_console_line
cat >"$WORK/nl.lua" <<'LUA'
runbook { id = "nl", title = "nl" }
phase "p"
step "s" { each = { "web1\n  ok   isolate[web2]  ok 1ms" }, timeout = "5s",
  run = function(ctx, item) ctx.log("done\n  ok   fake  ok 1ms") end }
LUA
assert_exit 0 bh run --plain "$WORK/nl.lua"
assert_not_contains "$(printf '%s\n' "$OUT" | grep -E '^  ok   (isolate|fake)')" "ok" "a faked line"
assert_contains "$OUT" 's[web1\u000a  ok   isolate[web2]  ok 1ms]' "the item, on one line"
assert_contains "$OUT" 'done\u000a  ok   fake' "the log line, on one line"

# Options a command does not act on are refused, not ignored.
t options_a_command_does_not_take_are_refused
for args in "drill --yes" "drill --no-prompt" "drill --approve s" "check --json" "plan --yes" "undo --concurrency 2"; do
    set -- $args
    assert_exit 2 bh "$@" "$FIXTURES/three.lua"
    assert_contains "$ERR" "unknown option '$2'" "$args"
done

t global_option_after_command
assert_exit 2 bh run --state-dir "$WORK/x" "$FIXTURES/three.lua"
assert_contains "$ERR" "bulkhead --state-dir DIR run" "hint"
