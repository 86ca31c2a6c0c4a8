#!/usr/bin/env bash
. "$(dirname "$0")/lib.sh"

cat >"$WORK/p.lua" <<'LUA'
runbook {
  id = "params", title = "Params",
  params = {
    n = { type = "number", required = true, doc = "a number" },
    hosts = { type = "list", default = { "x" } },
    name = { type = "string", default = "world" },
  },
}
step "echo" { run = function(ctx) return { n = param.n, name = param.name, hosts = param.hosts } end }
LUA

t param_missing_required
assert_exit 4 bh plan "$WORK/p.lua"
assert_contains "$ERR" "'n'" "stderr of plan"
assert_contains "$ERR" "number" "stderr of plan"
assert_exit 4 bh run "$WORK/p.lua"
assert_contains "$ERR" "'n'" "stderr of run"
assert_contains "$ERR" "number" "stderr of run"
[ -z "$(ls -A "$STATE/runs" 2>/dev/null)" ] || fail "run folder created"

t param_unknown
assert_exit 4 bh run "$WORK/p.lua" -p n=1 -p nope=1
assert_contains "$ERR" "nope" "stderr"

t param_wrong_type
assert_exit 4 bh run "$WORK/p.lua" -p n=abc
assert_contains "$ERR" "expected number" "stderr"

t param_file_and_override
echo '{"n": 5, "name": "file"}' >"$WORK/params.json"
assert_exit 0 bh run "$WORK/p.lua" --params "$WORK/params.json"
assert_jq "$(journal)" '.[0].params.n' "5"
assert_jq "$(journal)" '.[]|select(.type=="step_end")|.result.name' "file"
assert_exit 0 bh run "$WORK/p.lua" --params "$WORK/params.json" -p n=7
assert_jq "$(journal)" '.[0].params.n' "7"
assert_jq "$(journal)" '.[0].params.name' "file"
assert_jq "$(journal)" '.[]|select(.type=="step_end")|.result.n' "7"

t param_list
assert_exit 0 bh run "$WORK/p.lua" -p n=1 -p hosts=a,b
assert_jq "$(journal)" '.[0].params.hosts|tojson' '["a","b"]'
assert_jq "$(journal)" '.[]|select(.type=="step_end")|.result.hosts|tojson' '["a","b"]'

t param_pattern_keeps_values_plain
cat >"$WORK/pat.lua" <<'LUA'
runbook { id = "pat", title = "Pattern", timeout = "10s",
  params = { user = { type = "string", required = true, pattern = "[%w][%w._-]*", doc = "a login name" },
             hosts = { type = "list", default = { "web1" }, pattern = "[%w.-]+", doc = "host names" } } }
step "s" { run = function(ctx) return param.user end }
LUA
assert_exit 0 bh run --plain "$WORK/pat.lua" -p user=jdoe -p hosts=a.example,b-2
assert_exit 4 bh run --plain "$WORK/pat.lua" -p 'user=x;rm -rf /'
assert_contains "$ERR" "pat.lua:1: error: parameter 'user': \"x;rm -rf /\" does not match its pattern [%w][%w._-]* (a login name)"
assert_exit 4 bh run --plain "$WORK/pat.lua" -p user=ok -p 'hosts=good,$(bad)'
assert_contains "$ERR" "parameter 'hosts': item 2 \"\$(bad)\" does not match"
assert_exit 0 bh check --strict "$WORK/pat.lua"   # check's stand-in "<user>" passes

t param_pattern_applies_to_every_list_item
# A list item that is not a string cannot match a pattern: a number or a
# table in the list is refused, named by its place, before anything runs.
runs_before=$(ls "$STATE/runs" 2>/dev/null | wc -l)
assert_exit 4 bh run --plain "$WORK/pat.lua" -p user=ok -p 'hosts=["web1",2]'
assert_contains "$ERR" "pat.lua:1: error: parameter 'hosts': item 2 is a number, but its pattern [%w.-]+ applies to strings only"
printf '{"user": "ok", "hosts": ["web1", "web2", {"name": "x;id"}]}\n' >"$WORK/pat.json"
assert_exit 4 bh run --plain "$WORK/pat.lua" --params "$WORK/pat.json"
assert_contains "$ERR" "parameter 'hosts': item 3 is a table, but its pattern"
printf '{"user": "ok", "hosts": [true]}\n' >"$WORK/pat.json"
assert_exit 4 bh plan "$WORK/pat.lua" --params "$WORK/pat.json"
assert_contains "$ERR" "parameter 'hosts': item 1 is a boolean"
assert_eq "$runs_before" "$(ls "$STATE/runs" 2>/dev/null | wc -l)" "run folders made"
# A default is held to the pattern too.
cat >"$WORK/patdef.lua" <<'LUA'
runbook { id = "patdef", title = "Pattern default", timeout = "10s",
  params = { ports = { type = "list", default = { "22", 443 }, pattern = "%d+", doc = "ports" } } }
step "s" { run = function(ctx) end }
LUA
assert_exit 4 bh run --plain "$WORK/patdef.lua"
assert_contains "$ERR" "parameter 'ports': item 2 is a number"
assert_exit 0 bh run --plain "$WORK/patdef.lua" -p ports=22,443
printf 'runbook { id = "p2", title = "P2", timeout = "1s", params = { n = { type = "number", pattern = "%%d+", doc = "n" } } }\nstep "s" { run = function() end }\n' >"$WORK/p2.lua"
assert_exit 3 bh check "$WORK/p2.lua"
assert_contains "$ERR" "'pattern' applies to a string or a list of strings"
