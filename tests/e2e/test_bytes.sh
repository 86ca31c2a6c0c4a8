#!/usr/bin/env bash
# Strings that hold any bytes: a NUL byte in a Lua string is kept in the
# journal (\u0000), bytes that are not UTF-8 are escaped (\udcXX), every
# line is strict JSON in valid UTF-8; the chain, verify, show, reports and
# resume work on such journals, secrets in such strings are still masked,
# and an exec argument with a NUL is refused (execve would cut it).
. "$(dirname "$0")/lib.sh"

# strict_json FILE: every line parses as JSON, the file read as UTF-8 with
# no replacement, by Python and by jq; prints why not.
strict_json() {
    python3 -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]' "$1" 2>&1 | tail -n1
    jq -c . "$1" >/dev/null 2>"$WORK/jq.err" || head -c 200 "$WORK/jq.err"
}
# field_bytes FILE JQ-PATH-IN-PYTHON: the bytes a string of the journal
# stands for, hex (\udcXX read back as the byte XX: surrogateescape).
field_bytes() {
    python3 - "$1" "$2" <<'PY'
import json, sys
for line in open(sys.argv[1], encoding="utf-8"):
    r = json.loads(line)
    v = eval(sys.argv[2], {}, {"r": r})
    if v is not None:
        print(v.encode("utf-8", "surrogateescape").hex())
        break
PY
}

cat >"$WORK/bytes.lua" <<'LUA'
runbook { id = "bytes", title = "Bytes", timeout = "20s" }
local odd = "a\0b\255\195(\192\128z"  -- NUL, a lone 0xff, a cut sequence, C0 80 (not a NUL)
step "result" { run = function(ctx)
  ctx.log("log\0line\254")
  return { text = odd, ["key\0k"] = 1, list = { "\0", "ok \226\130\172" } }
end }
step "err" { on_failure = "continue", run = function(ctx) error("bad\0tail\254", 0) end }
step "same" { run = function(ctx)
  local r = ctx.results.result
  return r.text == odd and r["key\0k"] == 1 and r.list[1] == "\0"
end }
LUA

t nul_and_invalid_utf8_are_kept_and_escaped
assert_exit 0 bh run --plain "$WORK/bytes.lua"
J=$(journal)
assert_eq "" "$(strict_json "$J")" "strict JSON"
assert_contains "$(grep '"type":"step_end","step":"result"' "$J")" '"text":"a\u0000b\udcff\udcc3(\udcc0\udc80z"'
assert_contains "$(grep '"type":"step_end","step":"result"' "$J")" '"key\u0000k":1'
assert_contains "$(grep '"type":"step_end","step":"result"' "$J")" '"list":["\u0000","ok €"]'
assert_eq "610062ffc328c0807a" "$(field_bytes "$J" 'r.get("result", {}).get("text") if r["type"] == "step_end" else None')" "the result's bytes"
assert_eq "6c6f67006c696e65fe" "$(field_bytes "$J" 'r.get("message") if r["type"] == "log" else None')" "the log message's bytes"
assert_contains "$(grep '"type":"step_end","step":"err"' "$J")" '"message":"bad\u0000tail\udcfe"'
assert_eq true "$(end_of same result)" "the result as a later step saw it"
assert_exit 0 bh verify last
assert_exit 0 bh show last
assert_contains "$OUT" 'bad\u0000tail\udcfe'
assert_exit 0 bh show last --json
printf '%s\n' "$OUT" | python3 -c 'import json,sys; json.loads(sys.stdin.read())' 2>&1 || fail "show --json is not strict JSON"

t report_of_such_a_journal
assert_exit 0 bh report last --format json --out "$WORK/bytes.json"
python3 -c 'import json,sys; json.load(open(sys.argv[1], encoding="utf-8"))' "$WORK/bytes.json" || fail "report json is not strict JSON"
assert_eq "610062ffc328c0807a" "$(python3 -c 'import json,sys; m = json.load(open(sys.argv[1], encoding="utf-8")); print([s for p in m["phases"] for s in p["steps"] if s["id"] == "result"][0]["attempts"][0]["result"]["text"].encode("utf-8", "surrogateescape").hex())' "$WORK/bytes.json")" "the result in the report's JSON"
for fmt in md html; do
    assert_exit 0 bh report last --format $fmt --out "$WORK/bytes.$fmt"
    python3 -c 'import sys; open(sys.argv[1], encoding="utf-8").read()' "$WORK/bytes.$fmt" || fail "the $fmt report is not valid UTF-8"
done
assert_contains "$(cat "$WORK/bytes.md")" 'bad\\u0000tail\\udcfe'     # md escapes the backslash
assert_contains "$(cat "$WORK/bytes.html")" 'bad\u0000tail\udcfe'

t resume_of_such_a_journal
cat >"$WORK/bytes2.lua" <<'LUA'
runbook { id = "bytes2", title = "Bytes across a crash", timeout = "20s",
          params = { go = { type = "string", required = true, doc = "marker" } } }
local odd = "x\0y\255\192\128"  -- C0 80 too: it must come back as it was, not as a NUL
step "first" { run = function(ctx) return { a = odd, ["k\0"] = odd } end }
step "wait" { idempotent = true, run = function(ctx)
  ctx.sh('while [ ! -e "$GO" ]; do sleep 0.05; done', { env = { GO = ctx.params.go } }) end }
step "check" { run = function(ctx)
  local r = ctx.results.first
  return { same = r.a == odd and r["k\0"] == odd, len = #r.a }
end }
LUA
crash_when '"type":"exec_start","step":"wait"' run --plain "$WORK/bytes2.lua" -p go="$WORK/go"
touch "$WORK/go"
assert_exit 0 bh resume last --plain
J=$(journal)
assert_eq "" "$(strict_json "$J")" "strict JSON after resume"
assert_eq "true 6" "$(jqs "$J" '[.[] | select(.type == "step_end" and .step == "check")][0].result | "\(.same) \(.len)"')" "the result restored by resume"
assert_exit 0 bh verify last

t secrets_in_such_strings_are_masked
export BYTESECRET=s3cr3t-T0ken-42
cat >"$WORK/bytes3.lua" <<'LUA'
runbook { id = "bytes3", title = "Secrets among odd bytes", timeout = "20s" }
local tok = secret("BYTESECRET")
step "r" { run = function(ctx)
  ctx.log("log\0" .. tok .. "\255")
  return "pre\0" .. tok .. "\255post"
end }
step "e" { on_failure = "continue", run = function(ctx) error("e\0" .. tok .. "\254", 0) end }
LUA
assert_exit 0 bh run --plain "$WORK/bytes3.lua"
J=$(journal)
assert_eq "" "$(strict_json "$J")" "strict JSON"
assert_eq "" "$(grep -rl 's3cr3t-T0ken-42' "$(last_run_dir)" "$WORK/.out" "$WORK/.err")" "the secret anywhere"
assert_contains "$(grep '"type":"step_end","step":"r"' "$J")" '"result":"pre\u0000[masked:BYTESECRET]\udcffpost"'
assert_contains "$(grep '"type":"log"' "$J")" '"message":"log\u0000[masked:BYTESECRET]\udcff"'
assert_contains "$(grep '"type":"step_end","step":"e"' "$J")" '"message":"e\u0000[masked:BYTESECRET]\udcfe"'
assert_contains "$OUT" 'log\u0000[masked:BYTESECRET]\udcff' "the console"
unset BYTESECRET

t exec_argument_with_a_nul_is_refused
cat >"$WORK/argnul.lua" <<'LUA'
runbook { id = "argnul", title = "NUL in argv", timeout = "20s" }
step "argv" { on_failure = "continue", run = function(ctx) ctx.exec { "touch", "safe\0../../etc/x" } end }
step "script" { on_failure = "continue", run = function(ctx) ctx.sh("true\0; rm -rf /") end }
step "env" { on_failure = "continue", run = function(ctx) ctx.exec { "true", env = { X = "a\0b" } } end }
LUA
assert_exit 0 bh run --plain "$WORK/argnul.lua"
J=$(journal)
assert_contains "$(end_of argv error.message)" "ctx.exec: argument 2 holds a NUL byte (at byte 5): a program's arguments, environment and directory cannot, so it would be cut short there"
assert_contains "$(end_of script error.message)" "ctx.sh: the script holds a NUL byte"
assert_contains "$(end_of env error.message)" "ctx.exec: 'env' value X holds a NUL byte"
assert_jq "$J" '[.[] | select(.type == "exec_start")] | length' 0
assert_no_file "$WORK/safe"
