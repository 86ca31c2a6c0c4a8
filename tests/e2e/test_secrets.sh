#!/usr/bin/env bash
# Secrets: secret("NAME") from the environment or a 0600 secrets file; a
# canary used in every way a runbook can use it appears in no form in
# anything the run wrote (journal, captured output, console, stderr).
. "$(dirname "$0")/lib.sh"

CANARY='c4n4ry-S3cr3t/with+sp ce"q&x=1'
export CANARY

# Every form of the canary that must not appear: raw, JSON-escaped, hex,
# URL-encoded, base64 (standard, URL-safe) at each alignment.
forms() {
    local c=$CANARY n=${#CANARY} k p enc
    printf '%s\n' "$c"
    jq -n --arg c "$c" '$c' | sed 's/^"//; s/"$//'
    printf %s "$c" | od -An -tx1 -v | tr -d ' \n'; echo
    printf %s "$c" | od -An -tx1 -v | tr -d ' \n' | tr a-f A-F; echo
    jq -rn --arg c "$c" '$c|@uri'
    jq -rn --arg c "$c" '$c|@uri' | sed 's/%[0-9A-F][0-9A-F]/\L&/g'
    for k in 0 1 2; do
        p=$(head -c "$k" /dev/zero | tr '\0' 'x')
        enc=$(printf '%s%s' "$p" "$c" | base64 -w0)
        local first=$(( (k * 8 + 5) / 6 )) last=$(( (k + n) * 8 / 6 ))
        printf '%s\n' "${enc:first:last-first}"
        printf '%s\n' "${enc:first:last-first}" | tr '+/' '-_'
    done
}
# leaks FILES...: every occurrence of any form, as "file: form".
leaks() {
    local f form
    while IFS= read -r form; do
        for f in "$@"; do
            grep -qF -e "$form" "$f" 2>/dev/null && echo "$f: $form"
        done
    done < <(forms)
    return 0
}

cat >"$WORK/canary.lua" <<'LUA'
runbook { id = "canary", title = "A secret used every way a runbook can", timeout = "30s" }
local tok = secret("CANARY")  -- at load time
local function b64(s)        -- base64 in Lua, as a runbook might do for Basic auth
  local a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
  return ((s:gsub(".", function(x)
    local r, b = "", x:byte()
    for i = 8, 1, -1 do r = r .. (b % 2 ^ i - b % 2 ^ (i - 1) > 0 and "1" or "0") end
    return r
  end) .. "0000"):gsub("%d%d%d?%d?%d?%d?", function(x)
    if #x < 6 then return "" end
    local c = 0
    for i = 1, 6 do c = c + (x:sub(i, i) == "1" and 2 ^ (6 - i) or 0) end
    return a:sub(c + 1, c + 1)
  end) .. ({ "", "==", "=" })[#s % 3 + 1])
end
local function hex(s) return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end)) end
step "log-and-print" { run = function(ctx)
  ctx.log("token", tok)
  print("print", tok, hex(tok))
  ctx.log("Authorization: Basic " .. b64("user:" .. tok))
end }
step "children" { run = function(ctx)
  -- argv, env, stdin, a shell script; the child echoes it in every form,
  -- on stdout and stderr, split across writes and across a 64 KiB read
  local r = ctx.exec { "sh", "-c", [[
    printf 'argv=%s\n' "$1"; printf 'env=%s\n' "$T" >&2
    printf %s "$T" | base64; printf "user:%s" "$T" | base64 -w0; echo
    printf %s "$T" | od -An -tx1 | tr -d ' \n'; echo
    jq -rn --arg c "$T" '$c|@uri'
    printf %s "$T" | cut -c1-9 | tr -d '\n'; sleep 0.2; printf %s "$T" | cut -c10-; echo
    head -c 65530 /dev/zero | tr '\0' 'y'; printf %s "$T"; echo
    cat; echo
    printf %s "$T" | sha256sum
  ]], "sh", tok, env = { T = tok }, stdin = tok }
  ctx.sh("echo shell '" .. tok .. "'")  -- the secret inside the script text
  return { got = r.stdout:match("(%x+)%s+%-%s*$") }
end }
step "results" { run = function(ctx) return { value = tok, [tok] = tok, list = { tok }, nested = { deep = tok } } end }
step "fanout" { each = { tok, "plain" }, run = function(ctx, item) return item end }
step "gate" { verify_timeout = "1s", verify_interval = "100ms", on_failure = "continue",
              verify = function(ctx) return false, "unhealthy: " .. tok end,
              run = function(ctx) return 1 end }
step "exec-fails" { on_failure = "continue", run = function(ctx)
  ctx.sh('echo "bad token $T" >&2; exit 3', { env = { T = tok } })
end }
step "raises" { on_failure = "continue", run = function(ctx) error({ code = "x", message = tok }) end }
step "runtime-secret" { run = function(ctx) return secret("CANARY2") .. "/" .. tok end }
step "last-words" { run = function(ctx) error("giving up with " .. tok) end }
LUA

t canary_secret_leaks_nowhere
export CANARY2="second-$CANARY"
assert_exit 1 bh run --plain "$WORK/canary.lua"
printf '%s' "$OUT" >"$WORK/console.out"; printf '%s' "$ERR" >"$WORK/console.err"
run=$(last_run_dir)
files=$(find "$run" "$WORK/console.out" "$WORK/console.err" -type f)
nfiles=$(echo "$files" | wc -l)
[ "$nfiles" -ge 6 ] || fail "expected the journal, output files and console, got $nfiles files"
found=$(leaks $files)
assert_eq "" "$found" "forms of the secret in what the run wrote"
# It was really used, and masking really happened.
want=$(printf %s "$CANARY" | sha256sum | cut -d' ' -f1)
assert_eq "$want" "$(end_of children result.got)" "the child received the real value"
assert_contains "$(cat "$(journal)")" "[masked:CANARY]"
assert_contains "$(cat "$run"/out/children.1.1.stdout)" "dXNlcjp[masked:CANARY]"
assert_contains "$(cat "$WORK/console.out")" "[masked:CANARY]"
assert_jq "$(journal)" '.[0].secrets | map("\(.name):\(.source)") | join(",")' "CANARY:env"
assert_jq "$(journal)" '[.[] | select(.type == "secret") | .name] | join(",")' "CANARY2"
assert_eq "[masked:CANARY2]" "$(end_of runtime-secret result | cut -d/ -f1)"
assert_eq "verify_failed" "$(end_of gate error.code)"
assert_exit 0 bh show last
printf '%s' "$OUT" >"$WORK/show.out"
assert_eq "" "$(leaks "$WORK/show.out")" "show"

t secrets_file_is_checked_and_wins_over_the_environment
printf 'runbook { id = "sf", title = "SF", timeout = "10s" }\nstep "s" { run = function(ctx) return #secret("API_TOKEN") end }\n' >"$WORK/sf.lua"
printf '# incident tokens\nAPI_TOKEN=from-the-file-1234\n' >"$WORK/secrets"
chmod 644 "$WORK/secrets"
API_TOKEN=from-env-abcd assert_exit 4 bh run --plain "$WORK/sf.lua" --secrets "$WORK/secrets"
assert_contains "$ERR" "open to group or others (mode 0644)"
chmod 600 "$WORK/secrets"
API_TOKEN=from-env-abcd assert_exit 0 bh run --plain "$WORK/sf.lua" --secrets "$WORK/secrets"
assert_eq 18 "$(end_of s result)" "the file's value"
assert_jq "$(journal)" '[.[] | select(.type == "secret")][0].source' file
API_TOKEN=from-env-abcd assert_exit 0 bh run --plain "$WORK/sf.lua"
assert_eq 13 "$(end_of s result)" "the environment's value"
BULKHEAD_SECRETS="$WORK/secrets" assert_exit 0 bh run --plain "$WORK/sf.lua"
assert_eq 18 "$(end_of s result)" "\$BULKHEAD_SECRETS"

t missing_or_short_secret_is_a_clear_error
printf 'runbook { id = "ms", title = "MS", timeout = "10s" }\nlocal t = secret("NOT_SET_ANYWHERE")\nstep "s" { run = function(ctx) end }\n' >"$WORK/ms.lua"
assert_exit 4 bh run --plain "$WORK/ms.lua"
assert_contains "$ERR" "ms.lua:2"
assert_contains "$ERR" "secret 'NOT_SET_ANYWHERE' is not set"
assert_exit 0 bh plan "$WORK/ms.lua"
assert_exit 0 bh check "$WORK/ms.lua"
printf 'runbook { id = "sh", title = "SH", timeout = "10s" }\nstep "s" { run = function(ctx) return secret("PIN") end }\n' >"$WORK/short.lua"
PIN=123 assert_exit 1 bh run --plain "$WORK/short.lua"
assert_eq secret_too_short "$(end_of s error.code)"
assert_not_contains "$(cat "$(journal)")" '"123"'

t resume_reads_secrets_again
cat >"$WORK/rs.lua" <<'LUA'
runbook { id = "rs", title = "Resume with a secret", timeout = "30s",
          params = { dir = { type = "string", required = true, doc = "flag folder" } } }
local tok = secret("CANARY")
step "wait" { run = function(ctx)
  ctx.sh('while [ ! -e "$D/go" ]; do sleep 0.05; done', { env = { D = param.dir } })
end }
step "use" { run = function(ctx) return ctx.exec { "sha256sum", stdin = tok }.stdout:sub(1, 64) end }
LUA
mkdir -p "$WORK/rs"
crash_when '"type":"exec_start","step":"wait"' run --plain "$WORK/rs.lua" -p dir="$WORK/rs"
touch "$WORK/rs/go"
env -u CANARY "$BULKHEAD" --state-dir "$STATE" resume last --retry-unknown >"$WORK/.out" 2>"$WORK/.err"
assert_eq 4 "$?" "resume without the secret's source"
assert_contains "$(cat "$WORK/.err")" "secret 'CANARY' is not set"
assert_exit 0 bh resume last --retry-unknown
assert_eq "$(printf %s "$CANARY" | sha256sum | cut -c1-64)" "$(end_of use result)"
assert_eq "" "$(leaks $(find "$(last_run_dir)" -type f))" "after resume"

t secrets_read_before_a_crash_stay_masked_after_resume
cat >"$WORK/late.lua" <<'LUA'
runbook { id = "late", title = "A secret read by a step", timeout = "30s",
          params = { dir = { type = "string", required = true, doc = "work folder" } } }
step "write" { run = function(ctx)
  ctx.exec { "tee", param.dir .. "/token", stdin = secret("LATE") }
end }
step "pause" { run = function(ctx)
  ctx.sh('while [ ! -e "$D/go" ]; do sleep 0.05; done', { env = { D = param.dir } })
end }
step "cat" { run = function(ctx) ctx.exec { "cat", param.dir .. "/token" } end }
LUA
mkdir -p "$WORK/late"
export LATE=LateSecretXYZ
crash_when '"type":"exec_start","step":"pause"' run --plain "$WORK/late.lua" -p dir="$WORK/late"
touch "$WORK/late/go"
env -u LATE "$BULKHEAD" --state-dir "$STATE" resume last --skip-unknown >"$WORK/.out" 2>"$WORK/.err"
assert_eq 4 "$?" "without the secret the run read before"
assert_contains "$(cat "$WORK/.err")" "read secret 'LATE' before it stopped"
assert_exit 0 bh resume last --skip-unknown
assert_eq "" "$(grep -rl LateSecretXYZ "$(last_run_dir)")" "the secret in files after resume"
assert_contains "$(cat "$(last_run_dir)"/out/cat.1.1.stdout)" "[masked:LATE]"

t secrets_masked_in_load_prints_long_messages_numbers_and_fanout_items
cat >"$WORK/odd.lua" <<'LUA'
runbook { id = "odd", title = "Odd places", timeout = "30s" }
local tok = secret("CANARY")
print("at load", tok)
step "gate" { verify_timeout = "300ms", verify_interval = "100ms", on_failure = "continue",
              verify = function(ctx) return false, ("x"):rep(290) .. tok end, run = function(ctx) end }
step "long" { on_failure = "continue", run = function(ctx) error(("y"):rep(385) .. tok) end }
step "num" { run = function(ctx) return { n = tonumber(secret("NUMSEC")) } end }
step "items" { each = { { host = "h1", token = tok } }, run = function(ctx, it) return it.host end }
LUA
NUMSEC=3.14159 assert_exit 0 bh run --plain "$WORK/odd.lua"
printf '%s\n%s' "$OUT" "$ERR" >"$WORK/odd.console"
assert_eq "" "$(leaks "$WORK/odd.console" $(find "$(last_run_dir)" -type f))" "forms of the canary"
assert_eq "" "$(grep -o 'c4n4ry-S3cr3t/w' "$WORK/odd.console" "$(journal)")" "a cut-short canary"
assert_not_contains "$(cat "$(journal)")" "3.14159" "a numeric secret"
assert_contains "$ERR" "print: at load [masked:CANARY]"

t secrets_never_become_file_names
# A run id is made from the runbook id, a step's output files from its id,
# an evidence file from ctx.collect's name: built from a secret, each is
# refused (at load for ids), naming the secret and the place, never the
# value. The canary has a '/', so a plain value would also fail the id
# rules: use one that passes them, as a real token might.
export IDTOKEN=tok3nLooksLikeAnId
cat >"$WORK/sid.lua" <<'LUA'
runbook { id = "incident-" .. secret("IDTOKEN"), title = "Run id from a secret", timeout = "10s" }
step "s" { run = function(ctx) end }
LUA
runs_before=$(ls "$STATE/runs" 2>/dev/null | wc -l)
assert_exit 3 bh run --plain "$WORK/sid.lua"
assert_contains "$ERR" "sid.lua:1: error: runbook: 'id' is built from secret(\"IDTOKEN\"): the run id, and with it the run folder's name"
cat >"$WORK/stepid.lua" <<'LUA'
runbook { id = "stepid", title = "Step id from a secret", timeout = "10s" }
local t = secret("IDTOKEN")
step "first" { run = function(ctx) end }
step("isolate-" .. t) { run = function(ctx) ctx.exec { "true" } end }
LUA
assert_exit 3 bh run --plain "$WORK/stepid.lua"
assert_contains "$ERR" "stepid.lua:4: error: step: its id is built from secret(\"IDTOKEN\"): a step's id names its files"
assert_eq "$runs_before" "$(ls "$STATE/runs" 2>/dev/null | wc -l)" "run folders made"
# plan and check have no values, only stand-ins: the same error.
assert_exit 3 bh check "$WORK/stepid.lua"
assert_contains "$ERR" "step: its id is built from secret(\"IDTOKEN\")"
assert_exit 3 bh plan "$WORK/sid.lua"
assert_contains "$ERR" "runbook: 'id' is built from secret(\"IDTOKEN\")"
for f in "$WORK/.out" "$WORK/.err"; do
    grep -q "tok3nLooksLikeAnId" "$f" && fail "the secret's value in $(basename "$f")"
done
cat >"$WORK/evname.lua" <<'LUA'
runbook { id = "evname", title = "Evidence named by a secret", timeout = "10s" }
step "keep" { run = function(ctx) ctx.collect { "echo", "x", name = "dump-" .. secret("IDTOKEN") } end }
LUA
assert_exit 1 bh run --plain "$WORK/evname.lua"
assert_contains "$(end_of keep error.message)" "ctx.collect: 'name' is built from secret(\"IDTOKEN\"): it names the evidence file"
assert_eq "" "$(find "$(last_run_dir)" -name '*tok3n*')" "files named by the secret"
assert_eq "" "$(grep -rl tok3nLooksLikeAnId "$(last_run_dir)" "$WORK/.out" "$WORK/.err")" "the secret's value anywhere"
unset IDTOKEN

# A secret that holds newlines (a key) is masked on the console too: the
# console makes each line from the run one line, after masking.
t multi_line_secret_is_masked_on_the_console
cat >"$WORK/pem.lua" <<'LUA'
runbook { id = "pem", title = "pem" }
step "s" { timeout = "5s", run = function(ctx) ctx.log("key is " .. secret("PEMKEY")) end }
LUA
PEMKEY=$'first-line-of-a-key-1234\nsecond-line-of-a-key-5678' assert_exit 0 bh run --plain "$WORK/pem.lua"
assert_contains "$OUT" "key is [masked:PEMKEY]" "console"
assert_not_contains "$OUT$ERR" "line-of-a-key" "console"
assert_not_contains "$(cat "$(journal)")" "line-of-a-key" "journal"
