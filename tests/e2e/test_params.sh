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
