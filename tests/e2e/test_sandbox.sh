#!/usr/bin/env bash
# Table-driven sandbox escapes: each attempt fails with an error that says
# what is not available and why, at load time and inside a step, and nothing
# it tried to do happened.
. "$(dirname "$0")/lib.sh"

# name | Lua that tries to escape | what the error must say
CASES=$(cat <<'TXT'
os_execute|os.execute("touch MARK")|only os.time, os.clock, os.date and os.difftime are
os_remove|os.remove("MARK")|only os.time, os.clock, os.date and os.difftime are
io_open|io.open("MARK", "w")|io is not available in a runbook
io_popen|io.popen("touch MARK")|io is not available in a runbook
require_module|require("os")|require is not available in a runbook
load_bytecode|load("\27Lua", "x", "b")|load is not available in a runbook
load_text|load("return 1")|load is not available in a runbook
string_dump|string.dump(function() end)|string.dump is not available
string_dump_method|local _ = (""):dump()|attempt to call a nil value (method 'dump')
string_metatable|getmetatable("").__index.upper = nil|attempt to index a nil value (field '__index')
debug_lib|debug.getinfo(1)|debug is not available in a runbook
debug_sethook|debug.sethook()|debug is not available in a runbook
package_loaded|package.loaded.os.execute("touch MARK")|package is not available
dofile_any|dofile("/etc/passwd")|dofile is not available
loadfile_any|loadfile("/etc/passwd")|loadfile is not available
collectgarbage_stop|collectgarbage("stop")|collectgarbage is not available
TXT
)

while IFS='|' read -r name code want; do
    code=${code//MARK/$WORK/mark-$name}
    t "sandbox_load_$name"
    printf 'runbook { id = "sb", title = "SB", timeout = "5s" }\n%s\nstep "s" { run = function(ctx) end }\n' "$code" >"$WORK/$name.lua"
    assert_exit 3 bh check "$WORK/$name.lua"
    assert_contains "$ERR" "$name.lua:2:" "load error names the line"
    assert_contains "$ERR" "$want"

    t "sandbox_step_$name"
    printf 'runbook { id = "sb", title = "SB", timeout = "5s" }\nstep "s" { run = function(ctx)\n%s\nend }\nstep "after" { run = function(ctx) return ("ok"):upper() end }\n' "$code" >"$WORK/$name-run.lua"
    assert_exit 1 bh run --plain "$WORK/$name-run.lua"
    assert_contains "$(end_of s error.message)" "$want"
    assert_no_file "$WORK/mark-$name"
done <<<"$CASES"

t string_methods_survive_tampering_attempts
cat >"$WORK/strmeta.lua" <<'LUA'
runbook { id = "sm", title = "SM", timeout = "5s" }
step "s" { run = function(ctx)
  pcall(function() getmetatable("").__index.upper = nil end)
  pcall(setmetatable, "", {})
  return ("ok"):upper()
end }
LUA
assert_exit 0 bh run --plain "$WORK/strmeta.lua"
assert_eq OK "$(end_of s result)"
