#!/usr/bin/env bash
# Plugins: the model (user directories, schemas checked at load, undo and
# flags from the action, a C module), and the shipped plugins against real
# peers the test starts on loopback or in network namespaces it creates:
# HTTP and TLS, notify's exact payloads, SMTP, sshd with generated keys and
# an Ansible inventory, nftables isolation, systemd units, evidence.
. "$(dirname "$0")/lib.sh"

PIDS=()
NETNS=()
cleanup() {
    local p n
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    for n in "${NETNS[@]}"; do ip netns del "$n" 2>/dev/null; done
    _t_finish
}
trap cleanup EXIT

# peer MODE NAME [STATUS]: start bh_peer; its port in $PORT, its log in
# $WORK/NAME.log. Extra environment (BH_PEER_ADDR, ...) passes through.
peer() {
    rm -f "$WORK/$2.port"
    "$BH_TOOLS/bh_peer" "$1" "$WORK/$2.port" "$WORK/$2.log" ${3:+"$3"} &
    PIDS+=($!)
    wait_for test -s "$WORK/$2.port" || fail "bh_peer $1 did not start"
    PORT=$(cat "$WORK/$2.port")
}
# free_port NAME: a loopback port nothing listens on now, in $PORT
# (bh_peer picks it and is stopped).
free_port() { peer silent "$1"; kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null; }
# port_up PORT: something accepts connections on 127.0.0.1:PORT.
port_up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# --- the plugin model --------------------------------------------------------

mkdir -p "$WORK/myplugins"
cat >"$WORK/myplugins/lamp.lua" <<'LUA'
-- a test plugin: switches a "lamp" (a file) through ctx.exec
local calc = require("bhcalc")          -- a C module next to it
return {
  doc = "A lamp for tests.",
  actions = {
    on = {
      doc = "Switch the lamp on.",
      params = {
        dir = { type = "string", required = true, doc = "where the lamp is" },
        watts = { type = "number", default = 40, doc = "power" },
        tags = { type = "list", default = {}, doc = "labels" },
      },
      undo = "off", idempotent = true, destructive = true,
      validate = function(p) if p.watts > 100 then return "watts: at most 100" end end,
      describe = function(p) return ("lamp on in %s at %dW"):format(p.dir, p.watts) end,
      run = function(ctx, p)
        ctx.exec { "sh", "-c", 'echo on >"$1/lamp"', "-", p.dir }
        return { watts = calc.add(p.watts, 2) }
      end,
    },
    off = {
      doc = "Switch the lamp off.",
      params = { dir = { type = "string", required = true, doc = "where the lamp is" },
                 watts = { type = "number", default = 40, doc = "power" },
                 tags = { type = "list", default = {}, doc = "labels" } },
      idempotent = true,
      run = function(ctx, p) ctx.exec { "sh", "-c", 'echo off >"$1/lamp"', "-", p.dir } end,
    },
    lit = {
      doc = "Is it on?", check = true,
      params = { dir = { type = "string", required = true, doc = "where" } },
      run = function(ctx, p)
        local r = ctx.exec { "cat", p.dir .. "/lamp", check = false }
        return r.stdout == "on\n", "the lamp is " .. (r.stdout:gsub("%s+$", ""))
      end,
    },
  },
}
LUA
cc -shared -fPIC $(pkg-config --cflags lua5.4) -o "$WORK/myplugins/bhcalc.so" -x c - <<'C'
#include <lauxlib.h>
#include <lua.h>
static int add(lua_State *L) {
    lua_pushinteger(L, luaL_checkinteger(L, 1) + luaL_checkinteger(L, 2));
    return 1;
}
int luaopen_bhcalc(lua_State *L) {
    lua_newtable(L);
    lua_pushcfunction(L, add);
    lua_setfield(L, -2, "add");
    return 1;
}
C
mkdir -p "$WORK/lampdir"
cat >"$WORK/lamp.lua" <<'LUA'
runbook { id = "lamp", title = "Lamp", timeout = "1m",
  params = { dir = { type = "string", required = true, doc = "lamp dir" },
             fail = { type = "boolean", default = false, doc = "fail the last step" } } }
phase "contain"
step "light" { action = lamp.on { dir = param.dir, watts = 60 }, verify = lamp.lit { dir = param.dir } }
phase "recover"
step "after" { on_failure = "rollback", run = function(ctx) if param.fail then error("no", 0) end end }
LUA

t plugins_lists_and_documents
assert_exit 0 bh plugins
names=$(printf %s "$OUT" | awk 'NR > 1 && /^[a-z]/ {print $1}' | tr '\n' ' ')
assert_eq "ansible evidence firewall http notify service ssh tcp " "$names" "the shipped plugins, sorted"
assert_exit 0 bh plugins firewall
assert_contains "$OUT" "firewall.isolate  [idempotent]  [destructive]  [undo: firewall.release]"
assert_contains "$OUT" "allow_from"
assert_exit 0 bh plugins notify --json
assert_eq "email mattermost slack teams webhook" "$(printf %s "$OUT" | jq -r '.actions | keys | join(" ")')"
assert_exit 3 bh plugins nosuch
assert_contains "$ERR" "no plugin 'nosuch'"
assert_exit 0 bh plugins --plugins "$WORK/myplugins" lamp
assert_contains "$OUT" "lamp.on  [idempotent]  [destructive]  [undo: lamp.off]"
BULKHEAD_PLUGINS="$WORK/myplugins" assert_exit 0 bh plugins
assert_contains "$OUT" "lamp "
assert_exit 0 bh plugins --help
assert_contains "$OUT" "--plugins DIR"

t action_runs_and_its_undo_is_inferred
assert_exit 0 bh run --plain --plugins "$WORK/myplugins" "$WORK/lamp.lua" -p dir="$WORK/lampdir"
assert_eq on "$(cat "$WORK/lampdir/lamp")"
assert_eq 62 "$(end_of light result.watts)" "60 + 2 from the C module"
assert_jq "$(journal)" '[.[] | select(.type == "action")][0] | "\(.plugin).\(.action) \(.description) \(.params.watts)"' \
    "lamp.on lamp on in $WORK/lampdir at 60W 60"
assert_jq "$(journal)" '.[0].plugins | map(.name) | sort | join(",")' "bhcalc,lamp" "the plugin and the C module it requires"
assert_jq "$(journal)" '.[0].plugins[] | select(.name == "lamp") | .sha256' "$(sha256sum "$WORK/myplugins/lamp.lua" | cut -d' ' -f1)"
assert_jq "$(journal)" '.[0].plugins[] | select(.name == "bhcalc") | .sha256' "$(sha256sum "$WORK/myplugins/bhcalc.so" | cut -d' ' -f1)"
assert_jq "$(journal)" '[.[] | select(.type == "verify")][0].healthy' true
assert_exit 1 bh run --plain --plugins "$WORK/myplugins" "$WORK/lamp.lua" -p dir="$WORK/lampdir" -p fail=true
assert_eq off "$(cat "$WORK/lampdir/lamp")" "rollback ran lamp.off, the action's undo"
assert_jq "$(journal)" '[.[] | select(.type == "action")] | map(.action) | join(",")' "on,off"

t undo_finds_plugins_that_moved
assert_exit 0 bh run --plain --plugins "$WORK/myplugins" "$WORK/lamp.lua" -p dir="$WORK/lampdir"
assert_eq on "$(cat "$WORK/lampdir/lamp")"
mv "$WORK/myplugins" "$WORK/moved"
assert_exit 3 bh undo last --plain
assert_contains "$ERR" "is in none of the plugin directories"
assert_contains "$ERR" "give its directory with --plugins DIR"
echo "-- edited" >>"$WORK/moved/lamp.lua"
assert_exit 3 bh undo last --plain --plugins "$WORK/moved"
assert_contains "$ERR" "changed"
sed -i '$d' "$WORK/moved/lamp.lua"
assert_exit 0 bh undo last --plain --plugins "$WORK/moved"
assert_eq off "$(cat "$WORK/lampdir/lamp")" "undone with the plugin from its new place"
mv "$WORK/moved" "$WORK/myplugins"

t modules_are_pinned_and_plugins_found_where_installed
printf 'runbook { id = "fw", title = "FW", timeout = "1m" }\nphase "contain"\nstep "iso" { approve = "x", action = firewall.isolate { wrap = { "true" } } }\n' >"$WORK/fw.lua"
assert_exit 0 bh run --plain --yes "$WORK/fw.lua"
assert_jq "$(journal)" '.[0].plugins | map("\(.name):\(.file):\(.module // false)") | sort | join(",")' \
    "firewall:firewall.lua:false,ssh:ssh.lua:true"
assert_jq "$(journal)" '.[0].plugins | map(.sha256 | length) | unique | join(",")' 64
assert_exit 0 bh run --plain --plugins "$WORK/myplugins" "$WORK/lamp.lua" -p dir="$WORK/lampdir"
assert_jq "$(journal)" '.[0].plugins | map(.file) | sort | join(",")' "bhcalc.so,lamp.lua"
assert_jq "$(journal)" '.[0].plugin_dirs[0]' "$WORK/myplugins"
# a binary installed under PREFIX/bin finds PREFIX/share/bulkhead/plugins
mkdir -p "$WORK/prefix/bin" "$WORK/prefix/share/bulkhead/plugins"
cp "$BULKHEAD" "$WORK/prefix/bin/bulkhead"
cp "$ROOT"/plugins/*.lua "$WORK/prefix/share/bulkhead/plugins/"
(cd / && env -u BULKHEAD_PLUGINS "$WORK/prefix/bin/bulkhead" plugins tcp) >"$WORK/inst.out" 2>&1 || fail "installed binary: $(cat "$WORK/inst.out")"
assert_contains "$(cat "$WORK/inst.out")" "($WORK/prefix/share/bulkhead/plugins/tcp.lua)"

t plan_and_dry_run_describe_the_action
assert_exit 0 bh plan --plugins "$WORK/myplugins" "$WORK/lamp.lua" -p dir=/srv/x
assert_contains "$OUT" "lamp on in /srv/x at 60W"
assert_exit 0 bh plan --json --plugins "$WORK/myplugins" "$WORK/lamp.lua" -p dir=/srv/x
assert_eq "lamp.on" "$(printf %s "$OUT" | jq -r '[.. | objects | select(.id? == "light")][0].action')"
rm -f "$WORK/lampdir/lamp"
assert_exit 0 bh run --dry-run --plain --plugins "$WORK/myplugins" "$WORK/lamp.lua" -p dir="$WORK/lampdir"
assert_no_file "$WORK/lampdir/lamp"
assert_jq "$(journal)" '[.[] | select(.type == "action")][0].simulated' true

t action_parameters_are_checked_at_load
bad() { # BODY: a runbook whose step uses BODY; load errors in $ERR
    printf 'runbook { id = "bad", title = "Bad" }\nstep "s" { action = %s }\n' "$1" >"$WORK/bad.lua"
    assert_exit 3 bh check --plugins "$WORK/myplugins" "$WORK/bad.lua"
}
bad 'lamp.on { watts = 50 }'
assert_contains "$ERR" "bad.lua:2:"
assert_contains "$ERR" "lamp.on: parameter 'dir' is required (string)"
bad 'lamp.on { dir = "/x", watts = "many" }'
assert_contains "$ERR" "parameter 'watts' must be a number, not a string"
bad 'lamp.on { dir = "/x", colour = "red" }'
assert_contains "$ERR" "unknown parameter 'colour'"
bad 'lamp.on { dir = "/x", watts = 500 }'
assert_contains "$ERR" "watts: at most 100"
bad 'lamp.dim { dir = "/x" }'
assert_contains "$ERR" "plugin lamp has no action 'dim' (it has: lit, off, on)"
bad 'firewall.isolate { allow = "ssh" }'
assert_contains "$ERR" "parameter 'allow' must be a list"
bad 'notify.slack { url = "http://127.0.0.1:9/", text = "{{incidnet}} is open" }'
assert_contains "$ERR" "unknown template name {{incidnet}}"
bad 'tcp.check { host = "h", port = 22, expect = "shut" }'
assert_contains "$ERR" "tcp.check: expect is \"open\" or \"closed\""
bad 'firewall.isolate { allow = { "smtp/sctp" } }'
assert_contains "$ERR" "allow: protocol is tcp or udp: smtp/sctp"
# addresses as nft reads them, checked at load rather than on the host
for c in 10.20.0/24 10.0.0.0/33 999.1.1.1 10.0.0.0/ 2001:db8::/129 1:2:3:4:5:6:7:8:9 fe80::1%eth0 \
    010.20.0.1 ::: 1::2::3 1:2:3:4:5:6:7:8:: :1::2 1:2 12345::1; do
    bad "firewall.isolate { allow_to = { \"$c\" } }"
    assert_contains "$ERR" "allow_to: not an address or CIDR: $c"
done
printf 'runbook { id = "ok", title = "Ok" }\nstep "s" { action = firewall.isolate { allow_from = { "10.20.0.7", "10.0.0.0/8", "2001:db8::/32", "::1", "0.0.0.0/0", "::", "1:2:3:4:5:6:7:8", "fe80::1:2", "::ffff:10.1.2.3", "10.0.0.0/0" } } }\n' >"$WORK/ok.lua"
assert_exit 0 bh check "$WORK/ok.lua"
# check without values: stand-ins are not judged by an action's own checks
printf 'runbook { id = "sv", title = "SV", timeout = "1m", params = { mgmt = { type = "list", required = true, doc = "CIDRs" } } }\nphase "contain"\nstep "iso" { approve = "x", action = firewall.isolate { allow = {}, allow_from = param.mgmt } }\n' >"$WORK/sv.lua"
assert_exit 0 bh check --strict "$WORK/sv.lua"
assert_exit 3 bh plan "$WORK/sv.lua" -p mgmt=nope
assert_contains "$ERR" "allow_from: not an address or CIDR: nope"

t broken_and_sandboxed_plugins
mkdir -p "$WORK/broken"
printf 'return { doc = "x", actions = { go = { doc = "y", run = function( } } }\n' >"$WORK/broken/syn.lua"
cat >"$WORK/broken/sneaky.lua" <<'LUA'
local f = io.open("/etc/passwd")
return { doc = "reads files", actions = {} }
LUA
printf 'return { doc = "no actions" }\n' >"$WORK/broken/empty.lua"
printf 'return { doc = "d", actions = { go = { doc = "g", run = function() end, colour = 1 } } }\n' >"$WORK/broken/odd.lua"
assert_exit 0 bh plugins --plugins "$WORK/broken"
assert_contains "$OUT" "syn        BROKEN:"
assert_contains "$OUT" "sneaky     BROKEN:"
assert_contains "$OUT" "empty      BROKEN: its table needs actions"
assert_contains "$OUT" "odd        BROKEN:"
assert_exit 3 bh plugins --plugins "$WORK/broken" syn
for name in syn sneaky; do
    printf 'runbook { id = "b", title = "B" }\nstep "s" { action = %s.go {} }\n' "$name" >"$WORK/b.lua"
    assert_exit 3 bh check --plugins "$WORK/broken" "$WORK/b.lua"
    assert_contains "$ERR" "plugin $name ($WORK/broken/$name.lua)"
done
# a plugin's require finds only the plugin directories
printf 'local x = require("os")\nreturn { doc = "d", actions = {} }\n' >"$WORK/broken/req.lua"
printf 'runbook { id = "b", title = "B" }\nstep "s" { action = req.go {} }\n' >"$WORK/b.lua"
assert_exit 3 bh check --plugins "$WORK/broken" "$WORK/b.lua"
assert_contains "$ERR" "req"
# the user's directory comes first: a plugin of the same name wins
mkdir -p "$WORK/mine"
printf 'return { doc = "my own tcp", actions = { check = { doc = "c", check = true, run = function() return true end } } }\n' >"$WORK/mine/tcp.lua"
assert_exit 0 bh plugins --plugins "$WORK/mine" tcp
assert_contains "$OUT" "my own tcp"

# --- http ------------------------------------------------------------------------

cat >"$WORK/web.lua" <<'LUA'
runbook { id = "web", title = "Web", timeout = "1m",
  params = { url = { type = "string", required = true, doc = "base URL" },
             ca = { type = "string", doc = "CA file" },
             insecure = { type = "boolean", default = false, doc = "skip TLS checks" } } }
step "post" { run = function(ctx)
  local r = ctx.http { url = param.url .. "/api/block?src=bh", method = "POST",
    json = { ip = "203.0.113.7", ttl = 3600, tags = { "web", "edge" } },
    headers = { Authorization = "Bearer " .. secret("API_TOKEN"), ["X-Trace"] = "t1" } }
  return { status = r.status, answer = r.json }
end }
step "get" { action = http.request { url = param.url .. "/health", ca_file = param.ca,
                                     verify_tls = not param.insecure } }
LUA

t http_request_sends_what_the_runbook_says
peer http web
export API_TOKEN=s3cr3t-token-value
assert_exit 0 bh run --plain "$WORK/web.lua" -p url="http://127.0.0.1:$PORT"
assert_eq "POST /api/block?src=bh HTTP/1.1" "$(head -n1 "$WORK/web.log.1.head" | tr -d '\r')"
h=$(tr -d '\r' <"$WORK/web.log.1.head")
assert_contains "$h" "Authorization: Bearer s3cr3t-token-value"
assert_contains "$h" "Content-Type: application/json"
assert_contains "$h" "X-Trace: t1"
assert_eq '{"ip":"203.0.113.7","tags":["web","edge"],"ttl":3600}' "$(jq -cS . "$WORK/web.log.1.body")"
assert_eq "GET /health HTTP/1.1" "$(head -n1 "$WORK/web.log.2.head" | tr -d '\r')"
assert_eq 200 "$(end_of post result.status)"
assert_eq true "$(end_of post result.answer.ok)" "the JSON answer, parsed"
assert_jq "$(journal)" '[.[] | select(.type == "request_start")][0] | (.headers | map({(.name): .value}) | add) as $h | "\(.method) \($h.Authorization) \($h["X-Trace"])"' \
    "POST [redacted] t1"
assert_jq "$(journal)" '[.[] | select(.type == "request_end")][0] | "\(.status) \(.response.sha256 | length)"' "200 64"
grep -rq "s3cr3t-token-value" "$(last_run_dir)" && fail "the token is in the run folder"
assert_not_contains "$OUT" "s3cr3t-token-value"
unset API_TOKEN

t http_failures_fail_the_step
peer http web500 500
export API_TOKEN=not-the-real-token
assert_exit 1 bh run --plain "$WORK/web.lua" -p url="http://127.0.0.1:$PORT"
assert_eq "failed http_status" "$(end_of post status) $(end_of post error.code)"
assert_contains "$(end_of post error.message)" "500"
peer silent web-silent
t0=$(date +%s)
cat >"$WORK/slow.lua" <<'LUA'
runbook { id = "slow", title = "Slow", timeout = "1m", params = { url = { type = "string", required = true, doc = "URL" } } }
step "get" { run = function(ctx) ctx.http { url = param.url, timeout = "1s" } end }
LUA
assert_exit 1 bh run --plain "$WORK/slow.lua" -p url="http://127.0.0.1:$PORT/"
assert_eq "failed http_failed" "$(end_of get status) $(end_of get error.code)"
assert_contains "$(end_of get error.message)" "imed out"
[ $(( $(date +%s) - t0 )) -lt 20 ] || fail "a 1s request timeout took over 20s"
unset API_TOKEN

t without_libcurl_a_request_fails_and_says_why
# libcurl is opened at the first request: a broken one is that request's
# failure, recorded, and nothing else
mkdir -p "$WORK/badlib"; echo "not a library" >"$WORK/badlib/libcurl.so.4"
printf 'runbook { id = "nolib", title = "No libcurl", timeout = "30s" }\nstep "a" { run = function(ctx) return 1 end }\nstep "get" { run = function(ctx) ctx.http { url = "http://127.0.0.1:9/" } end }\n' >"$WORK/nolib.lua"
assert_exit 1 env LD_LIBRARY_PATH="$WORK/badlib" "$BULKHEAD" --state-dir "$STATE" run --plain "$WORK/nolib.lua"
assert_eq ok "$(end_of a status)"
assert_eq request_failed "$(end_of get error.code)"
assert_contains "$(end_of get error.message)" "cannot load libcurl (Debian: libcurl4)"

OPENSSL=$(command -v openssl || true)
t https_verifies_certificates_by_default
if [ -z "$OPENSSL" ]; then skip "openssl not installed (make check installs it)"; else
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
        -addext subjectAltName=IP:127.0.0.1 -keyout "$WORK/tls.key" -out "$WORK/tls.crt" 2>/dev/null
    free_port portpick
    openssl s_server -quiet -accept "127.0.0.1:$PORT" -cert "$WORK/tls.crt" -key "$WORK/tls.key" -www \
        </dev/null >/dev/null 2>&1 &
    PIDS+=($!)
    wait_for port_up "$PORT" || fail "s_server did not start"
    export API_TOKEN=not-the-real-token
    cat >"$WORK/tls.lua" <<'LUA'
runbook { id = "tls", title = "TLS", timeout = "1m",
  params = { url = { type = "string", required = true, doc = "URL" }, ca = { type = "string", doc = "CA" },
             insecure = { type = "boolean", default = false, doc = "no checks" } } }
step "get" { action = http.request { url = param.url, ca_file = param.ca, verify_tls = not param.insecure } }
LUA
    assert_exit 1 bh run --plain "$WORK/tls.lua" -p url="https://127.0.0.1:$PORT/"
    assert_eq http_failed "$(end_of get error.code)"
    assert_contains "$(end_of get error.message)" "certificate"
    assert_exit 0 bh run --plain "$WORK/tls.lua" -p url="https://127.0.0.1:$PORT/" -p ca="$WORK/tls.crt"
    assert_eq 200 "$(end_of get result.status)"
    assert_exit 0 bh run --plain "$WORK/tls.lua" -p url="https://127.0.0.1:$PORT/" -p insecure=true
    assert_jq "$(journal)" '[.[] | select(.type == "request_start")][0].verify_tls' false
    unset API_TOKEN
fi

# --- notify -----------------------------------------------------------------------

cat >"$WORK/tell.lua" <<'LUA'
runbook { id = "tell", title = "Tell", timeout = "1m",
  params = { incident = { type = "string", required = true, doc = "incident id" },
             url = { type = "string", required = true, doc = "webhook base URL" },
             smtp = { type = "string", required = true, doc = "smtp://host:port" } } }
step "isolate" { run = function(ctx) return { hosts = 3 } end }
step "webhook" { action = notify.webhook { url = param.url .. "/hook", text = "{{incident}}: {{results.isolate.hosts}} hosts isolated ({{summary}})" } }
step "slack" { action = notify.slack { url = param.url .. "/slack", text = "*{{incident}}* isolate is {{status.isolate}}", channel = "#ir", username = "bulkhead" } }
step "mattermost" { action = notify.mattermost { url = param.url .. "/mm", text = "{{runbook}} {{mode}} {{params.incident}}" } }
step "teams" { action = notify.teams { url = param.url .. "/teams", text = "Step {{step}}" } }
step "custom" { action = notify.webhook { url = param.url .. "/custom", body = { event = "contained", id = "{{incident}}", count = 3, nested = { who = "{{step}}" } } } }
step "mail" { action = notify.email { smtp = param.smtp, from = "bulkhead@example.test", to = { "soc@example.test", "ciso@example.test" },
  subject = "[{{incident}}] contained", text = "Run {{run_id}}\n.\nDone: {{summary}}" } }
LUA

# body N: request N's body, keys sorted
body() { jq -cS . "$WORK/hooks.log.$1.body"; }
path_of() { sed -n "1p" "$WORK/hooks.log.$1.head" | cut -d' ' -f2; }

t notify_sends_each_format_exactly
peer http hooks; HPORT=$PORT
peer smtp mail; MPORT=$PORT
assert_exit 0 bh run --plain "$WORK/tell.lua" -p incident=INC-42 -p url="http://127.0.0.1:$HPORT" -p smtp="smtp://127.0.0.1:$MPORT"
id=$(jqs "$(journal)" '.[0].run_id')
assert_eq "/hook /slack /mm /teams /custom" "$(for n in 1 2 3 4 5; do path_of $n; done | tr '\n' ' ' | sed 's/ $//')"
assert_eq "{\"incident\":\"INC-42\",\"run_id\":\"$id\",\"runbook\":\"tell\",\"step\":\"webhook\",\"text\":\"INC-42: 3 hosts isolated (1 ok, 1 running, 5 pending)\"}" "$(body 1)" "webhook"
assert_eq '{"channel":"#ir","text":"*INC-42* isolate is ok","username":"bulkhead"}' "$(body 2)" "slack"
assert_eq '{"text":"tell real INC-42"}' "$(body 3)" "mattermost"
assert_eq '{"attachments":[{"content":{"$schema":"http://adaptivecards.io/schemas/adaptive-card.json","body":[{"size":"Medium","text":"tell: INC-42","type":"TextBlock","weight":"Bolder","wrap":true},{"text":"Step teams","type":"TextBlock","wrap":true}],"type":"AdaptiveCard","version":"1.4"},"contentType":"application/vnd.microsoft.card.adaptive"}],"type":"message"}' "$(body 4)" "teams"
assert_eq '{"count":3,"event":"contained","id":"INC-42","nested":{"who":"custom"}}' "$(body 5)" "a custom document"
for n in 1 2 3 4 5; do
    assert_contains "$(tr -d '\r' <"$WORK/hooks.log.$n.head")" "Content-Type: application/json"
done
m=$(tr -d '\r' <"$WORK/mail.log.1.mail")
assert_eq "MAIL FROM:<bulkhead@example.test>
RCPT TO:<soc@example.test>
RCPT TO:<ciso@example.test>" "$(printf %s "$m" | sed -n 1,3p)" "the envelope"
assert_contains "$m" "Subject: [INC-42] contained"
assert_contains "$m" "From: bulkhead@example.test"
assert_contains "$m" "To: soc@example.test, ciso@example.test"
assert_contains "$m" "Content-Type: text/plain; charset=utf-8"
assert_eq "Run $id
..
Done: 6 ok, 1 running" "$(printf %s "$m" | sed '1,/^$/d' | sed '1,/^$/d')" "the body, dot-stuffed on the wire"
assert_jq "$(journal)" '[.[] | select(.type == "request_end" and .kind == "mail")][0].status' 250

t notify_failures_and_dry_runs
peer http hooks-down 503
assert_exit 1 bh run --plain "$WORK/tell.lua" -p incident=INC-43 -p url="http://127.0.0.1:$PORT" -p smtp=smtp://127.0.0.1:9
assert_eq "failed http_status" "$(end_of webhook status) $(end_of webhook error.code)"
peer silent quiet
assert_exit 0 bh run --dry-run --plain "$WORK/tell.lua" -p incident=INC-44 -p url="http://127.0.0.1:$PORT" -p smtp="smtp://127.0.0.1:$PORT"
assert_eq "" "$(cat "$WORK/quiet.log" 2>/dev/null)" "a dry run sends nothing"
assert_jq "$(journal)" '[.[] | select(.type == "request_start")] | length' 6
assert_jq "$(journal)" '[.[] | select(.type == "request_start" and .simulated != true)] | length' 0

t notify_from_a_cadence
peer http updates
cat >"$WORK/cad.lua" <<'LUA'
runbook { id = "cad", title = "Cadence", timeout = "1m",
  params = { url = { type = "string", required = true, doc = "URL" }, incident = { type = "string", default = "INC-9", doc = "id" } } }
step "update" { every = "250ms", action = notify.slack { url = param.url, text = "{{incident}} update {{rep}}" } }
step "work" { run = function(ctx) ctx.sleep("900ms") end }
LUA
assert_exit 0 bh run --plain "$WORK/cad.lua" -p url="http://127.0.0.1:$PORT/u"
n=$(wc -l <"$WORK/updates.log")
[ "$n" -ge 3 ] || fail "only $n updates in 900ms at one per 250ms"
assert_eq '{"text":"INC-9 update 1"}' "$(jq -cS . "$WORK/updates.log.1.body")"
assert_eq '{"text":"INC-9 update 3"}' "$(jq -cS . "$WORK/updates.log.3.body")"

# --- ssh, inventories, evidence, services ----------------------------------------

SSHD=$(command -v sshd || echo /usr/sbin/sshd)
# start_sshd: sshd on a free loopback port with a host key and a user key
# made here; sets $SPORT, $WORK/ssh/{user_key,known_hosts}.
start_sshd() {
    mkdir -p "$WORK/ssh" /run/sshd
    ssh-keygen -q -t ed25519 -N '' -f "$WORK/ssh/host_key"
    ssh-keygen -q -t ed25519 -N '' -f "$WORK/ssh/user_key"
    cp "$WORK/ssh/user_key.pub" "$WORK/ssh/authorized_keys"
    free_port sshport
    SPORT=$PORT
    cat >"$WORK/ssh/sshd_config" <<CONF
Port $SPORT
ListenAddress 127.0.0.1
HostKey $WORK/ssh/host_key
PidFile $WORK/ssh/sshd.pid
AuthorizedKeysFile $WORK/ssh/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PermitRootLogin prohibit-password
StrictModes no
LogLevel ERROR
CONF
    "$SSHD" -D -e -f "$WORK/ssh/sshd_config" 2>"$WORK/ssh/sshd.err" &
    PIDS+=($!)
    echo "[127.0.0.1]:$SPORT $(cut -d' ' -f1,2 "$WORK/ssh/host_key.pub")" >"$WORK/ssh/known_hosts"
    wait_for port_up "$SPORT" || fail "sshd did not start: $(cat "$WORK/ssh/sshd.err")"
}

SSH_OK=""
if [ "$(id -u)" != 0 ]; then SSH_OK="sshd needs root here (sudo make check runs it)"
elif [ ! -x "$SSHD" ] || ! command -v ssh >/dev/null; then SSH_OK="openssh-server/openssh-client not installed (make check installs them)"
else start_sshd; fi

# The fleet: two "hosts", both this machine's sshd, reached by an inventory.
cat >"$WORK/hosts.ini" <<INI
# a fleet of two web servers and a database
[web]
web1 ansible_host=127.0.0.1
web2 ansible_host=127.0.0.1 ansible_port=$SPORT

[web:vars]
ansible_port=$SPORT
ansible_user=$(id -un)
ansible_ssh_private_key_file=$WORK/ssh/user_key

[db]
db1 ansible_host=127.0.0.1 ansible_port=1

[prod:children]
web
db
INI
# A stand-in for systemctl: units are files under $WORK/units.
mkdir -p "$WORK/units"
cat >"$WORK/systemctl" <<SH
#!/bin/sh
# systemctl stand-in for the tests: VERB UNIT, state in $WORK/units/UNIT
echo "\$*" >>"$WORK/units/calls"
case \$1 in
  start|restart) echo active >"$WORK/units/\$2" ;;
  stop) echo inactive >"$WORK/units/\$2" ;;
  is-active) s=\$(cat "$WORK/units/\$2" 2>/dev/null || echo inactive); echo "\$s"; [ "\$s" = active ] ;;
  *) echo "unknown verb \$1" >&2; exit 1 ;;
esac
SH
chmod +x "$WORK/systemctl"
echo active >"$WORK/units/nginx.service"
mkdir -p "$WORK/remote"
printf 'GET /wp-admin 200\nPOST /xmlrpc.php 500\n' >"$WORK/remote/access.log"
cat >"$WORK/fleet.lua" <<'LUA'
runbook { id = "fleet", title = "Fleet", timeout = "2m",
  params = { inv = { type = "string", required = true, doc = "inventory" },
             known = { type = "string", required = true, doc = "known_hosts" },
             systemctl = { type = "string", required = true, doc = "the stand-in" },
             log = { type = "string", required = true, doc = "a log file on the hosts" } } }
local web = inventory(param.inv):hosts("web")
local s = { known_hosts = param.known }
phase "scope"
step "who" { each = web, concurrency = 2,
  action = ssh.run { known_hosts = param.known, multiplex = true,
                     script = 'echo "$(id -un) via ${SSH_CONNECTION%% *}"' } }
phase "contain"
step "stop-web" { each = web, after = "who",
  action = service.stop { unit = "nginx.service", systemctl = param.systemctl, known_hosts = param.known },
  verify = function(ctx, r) return r.done == "stop" end }
phase "evidence"
step "logs" { each = web, after = "stop-web",
  action = evidence.file { path = param.log, known_hosts = param.known } }
step "procs" { each = web, after = "stop-web",
  action = evidence.command { command = { "cat", param.log }, known_hosts = param.known, name = "copy.txt" } }
LUA

t ssh_runs_over_an_inventory
if [ -n "$SSH_OK" ]; then skip "$SSH_OK"; else
    assert_exit 0 bh run --plain "$WORK/fleet.lua" -p inv="$WORK/hosts.ini" -p known="$WORK/ssh/known_hosts" \
        -p systemctl="$WORK/systemctl" -p log="$WORK/remote/access.log"
    j=$(journal)
    assert_jq "$j" '[.[] | select(.type == "step_end" and .step == "who")] | map("\(.result.host)=\(.result.code):\(.result.stdout | rtrimstr("\n"))") | sort | join(",")' \
        "web1=0:$(id -un) via 127.0.0.1,web2=0:$(id -un) via 127.0.0.1"
    argv=$(jqs "$j" '[.[] | select(.type == "exec_start" and .step == "who")][0].argv | join(" ")')
    for want in "BatchMode=yes" "StrictHostKeyChecking=yes" "ControlMaster=auto" "-p $SPORT" "-i $WORK/ssh/user_key" "-l $(id -un) -- 127.0.0.1 "; do
        assert_contains "$argv" "$want"
    done
    argv2=$(jqs "$j" '[.[] | select(.type == "exec_start" and .step == "stop-web")][0].argv | join(" ")')
    assert_contains "$argv2" "ControlMaster=no -o ControlPath=none" "no sharing unless asked"
    assert_contains "$argv" "ControlPath=/tmp/bulkhead-"
    cp=$(printf %s "$argv" | grep -o 'ControlPath=[^ ]*' | sed 's/ControlPath=//; s|/%C||')
    assert_no_file "$cp"   # the run's private directory is gone once it ended
    assert_eq "stop nginx.service
stop nginx.service" "$(cat "$WORK/units/calls")" "systemctl stop, once per host, over ssh"
    assert_eq inactive "$(cat "$WORK/units/nginx.service")"
fi

t evidence_has_a_chain_of_custody
if [ -n "$SSH_OK" ]; then skip "$SSH_OK"; else
    j=$(journal); dir=$(last_run_dir)
    assert_jq "$j" '[.[] | select(.type == "evidence")] | length' 4
    for rec in $(jqs "$j" '[.[] | select(.type == "evidence")] | map(@base64) | .[]'); do
        e=$(printf %s "$rec" | base64 -d)
        path=$(printf %s "$e" | jq -r .path)
        f="$dir/$path"
        assert_file "$f"
        assert_eq "$(printf %s "$e" | jq -r .sha256)" "$(sha256sum "$f" | cut -d' ' -f1)" "sha256 of $path"
        assert_eq "$(printf %s "$e" | jq -r .size)" "$(stat -c %s "$f")" "size of $path"
        assert_eq 400 "$(stat -c %a "$f")" "$path is read-only"
        cmp -s "$f" "$WORK/remote/access.log" || fail "$path is not the host's file byte for byte"
        [ -n "$(printf %s "$e" | jq -r '.collected // .ts')" ] || fail "no collection time"
    done
    assert_jq "$j" '[.[] | select(.type == "evidence" and .step == "logs")] | map(.path) | sort | join(",")' \
        "evidence/logs.i1.1.1.web1_access.log,evidence/logs.i2.1.1.web2_access.log"
    assert_jq "$j" '[.[] | select(.type == "evidence" and .step == "procs")][0].source[0]' ssh
    assert_jq "$j" '[.[] | select(.type == "evidence")] | map("\(.key) \(.complete) \(.truncated) \(.collected_by)") | unique | sort | join(",")' \
        "web1 true false $(id -un),web2 true false $(id -un)"
fi

t evidence_collected_here
mkdir -p "$WORK/here"
printf 'secret-looking \x00 bytes\n' >"$WORK/here/.bash_history"
cat >"$WORK/here.lua" <<'LUA'
runbook { id = "here", title = "Here", timeout = "30s", params = { dir = { type = "string", required = true, doc = "dir" } } }
step "file" { action = evidence.file { path = param.dir .. "/.bash_history" } }
step "cmd" { action = evidence.command { command = { "ls", "-la", param.dir } } }
LUA
assert_exit 0 bh run --plain "$WORK/here.lua" -p dir="$WORK/here"
d=$(last_run_dir)
f=$(jqs "$(journal)" '[.[] | select(.type == "evidence" and .step == "file")][0].path')
assert_eq "evidence/file.1.1._bash_history" "$f" "a dotfile's evidence name does not start with a dot"
cmp -s "$d/$f" "$WORK/here/.bash_history" || fail "not byte for byte"
assert_eq 400 "$(stat -c %a "$d/$f")"
assert_eq "$(sha256sum "$d/$f" | cut -d' ' -f1)" "$(jqs "$(journal)" '[.[] | select(.type == "evidence")][0].sha256')"
assert_jq "$(journal)" '[.[] | select(.type == "evidence")] | map("\(.step) \(.complete) \(.source[0])") | join(",")' "file true cat,cmd true ls"

t ssh_refuses_unknown_host_keys
if [ -n "$SSH_OK" ]; then skip "$SSH_OK"; else
    : >"$WORK/ssh/empty_known_hosts"
    assert_exit 1 bh run --plain "$WORK/fleet.lua" -p inv="$WORK/hosts.ini" -p known="$WORK/ssh/empty_known_hosts" \
        -p systemctl="$WORK/systemctl" -p log="$WORK/remote/access.log"
    assert_jq "$(journal)" '[.[] | select(.type == "step_end" and .step == "who")] | map(.status) | unique | join(",")' failed
    assert_contains "$(jqs "$(journal)" '[.[] | select(.type == "step_end" and .step == "who")][0].error.message')" "Host key verification failed"
    assert_jq "$(journal)" '[.[] | select(.type == "step_start" and .step == "stop-web")] | length' 0
fi

t hostile_names_and_credentials
# a host name that is an ssh option runs nothing locally (no ssh needed:
# the argv is refused before anything starts)
cat >"$WORK/hostile.lua" <<'LUA'
runbook { id = "hostile", title = "Hostile", timeout = "30s",
  params = { host = { type = "string", required = true, doc = "a host" } } }
step "s" { action = ssh.run { host = param.host, command = { "true" } } }
LUA
assert_exit 1 bh run --plain "$WORK/hostile.lua" -p "host=-oProxyCommand=touch $WORK/pwned"
assert_no_file "$WORK/pwned"
assert_contains "$(end_of s error.message)" "is not a host or user name"
# passwords in an inventory never reach the run's records
printf '[web]\nw1 ansible_host=127.0.0.1 ansible_password=hunter2hunter2 ansible_become_pass=s3cr3tpass api_token=tok123456789\n' >"$WORK/creds.ini"
cat >"$WORK/creds.lua" <<'LUA'
runbook { id = "creds", title = "Creds", timeout = "30s", params = { inv = { type = "string", required = true, doc = "inventory" } } }
step "s" { each = inventory(param.inv):hosts("web"), run = function(ctx, h) return h.vars end }
LUA
assert_exit 0 bh run --plain "$WORK/creds.lua" -p inv="$WORK/creds.ini"
for v in hunter2hunter2 s3cr3tpass tok123456789; do
    grep -rq "$v" "$(last_run_dir)" && fail "$v is in the run folder"
done
assert_eq "[redacted]" "$(jqs "$(journal)" '[.[] | select(.type == "step_end")][0].result.ansible_password')"
# a login is never sent over SMTP in the clear: no STARTTLS, no mail
peer smtp plainsmtp
cat >"$WORK/login.lua" <<'LUA'
runbook { id = "login", title = "Login", timeout = "30s", params = { smtp = { type = "string", required = true, doc = "smtp URL" } } }
step "s" { action = notify.email { smtp = param.smtp, from = "a@example.test", to = { "b@example.test" },
                                   subject = "s", text = "t", username = "a", password = "pw-never-in-clear" } }
LUA
assert_exit 1 bh run --plain "$WORK/login.lua" -p smtp="smtp://127.0.0.1:$PORT"
assert_eq mail_failed "$(end_of s error.code)"
assert_no_file "$WORK/plainsmtp.log.1.mail"
grep -rqa "pw-never-in-clear" "$WORK/plainsmtp.log"* 2>/dev/null && fail "the password reached the server"
# plugin directories others can write to are not used
mkdir -p "$WORK/open-plugins"; chmod 0777 "$WORK/open-plugins"
cp "$WORK/myplugins/lamp.lua" "$WORK/open-plugins/opened.lua"
assert_exit 3 bh plugins --plugins "$WORK/open-plugins" opened
assert_contains "$ERR" "plugin directory $WORK/open-plugins is writable by group or others (mode 0777): not used"

# --- firewall: isolation between two network namespaces ---------------------------

FW_OK=""
if [ "$(id -u)" != 0 ]; then FW_OK="network namespaces need root (sudo make check runs it)"
elif ! command -v nft >/dev/null || ! command -v ip >/dev/null; then FW_OK="nftables/iproute2 not installed (make check installs them)"
elif ! ip netns add "bh-probe-$$" 2>/dev/null; then FW_OK="this machine does not allow network namespaces (a container without CAP_SYS_ADMIN?)"
else ip netns del "bh-probe-$$"; fi

# Host A runs the engine, host B is the one isolated; veth between them.
NA="bh-a-$$"; NB="bh-b-$$"; IPA=10.231.0.1; IPB=10.231.0.2
cat >"$WORK/iso.lua" <<'LUA'
runbook { id = "iso", title = "Isolation", timeout = "2m",
  params = { ns = { type = "string", required = true, doc = "the isolated host's network namespace" },
             ip = { type = "string", required = true, doc = "its address" },
             log = { type = "string", required = true, doc = "what the engine's listener received" },
             flag = { type = "string", required = true, doc = "made once isolated" },
             engine_ip = { type = "string", required = true, doc = "the engine's address" } } }
local wrap = { "ip", "netns", "exec", param.ns }
local function probe(ctx)
  local open = {}
  for _, port in ipairs { 25, 8080 } do
    open[tostring(port)] = ctx.connect { host = param.ip, port = port, timeout = "1s", check = false }.ok
  end
  -- smtp is the host's service (allow): isolated, it may not open mail
  -- connections itself (exit 0: it could)
  open.out25 = ctx.exec { "ip", "netns", "exec", param.ns, "timeout", "2", "bash", "-c",
                          'exec 3<>"/dev/tcp/$1/25"', "-", param.engine_ip, check = false }.code
  return open
end
phase "before"
step "before" { run = probe }
phase "contain"
step "isolate" { action = firewall.isolate { allow = { "smtp" }, wrap = wrap } }
step "twice" { action = firewall.isolate { allow = { "smtp" }, wrap = wrap } }   -- idempotent
step "during" { run = function(ctx)
  local open = probe(ctx)
  ctx.exec { "touch", param.flag }      -- the "reverse shell" writes again now
  ctx.sleep("1500ms")
  open.shell = ctx.exec { "cat", param.log }.stdout
  return open
end }
step "mail-ok" { action = tcp.check { host = param.ip, port = 25, timeout = "1s" } }
step "web-closed" { action = tcp.check { host = param.ip, port = 8080, timeout = "1s", expect = "closed" } }
phase "recover"
step "release" { action = firewall.release { wrap = wrap } }
step "release-again" { action = firewall.release { wrap = wrap } }
step "after" { run = probe }
LUA

t firewall_isolates_and_releases_a_host
if [ -n "$FW_OK" ]; then skip "$FW_OK"; else
    NETNS+=("$NA" "$NB")
    ip netns add "$NA" && ip netns add "$NB" &&
    ip link add "bhva$$" netns "$NA" type veth peer name "bhvb$$" netns "$NB" &&
    ip -n "$NA" addr add "$IPA/24" dev "bhva$$" && ip -n "$NB" addr add "$IPB/24" dev "bhvb$$" &&
    ip -n "$NA" link set "bhva$$" up && ip -n "$NB" link set "bhvb$$" up &&
    ip -n "$NA" link set lo up && ip -n "$NB" link set lo up || fail "could not build the namespaces"
    # B serves mail (25) and web (8080); A listens for B's "reverse shell" (4444)
    # ns_peer NS ADDR PORT LOG: bh_peer silent on ADDR:PORT in namespace NS
    ns_peer() {
        local pf="$WORK/$1.$3.port"
        rm -f "$pf"
        ip netns exec "$1" env BH_PEER_ADDR="$2" BH_PEER_PORT="$3" "$BH_TOOLS/bh_peer" silent "$pf" "$4" &
        PIDS+=($!)
        wait_for test -s "$pf" || fail "no listener on $2:$3"
    }
    ns_peer "$NB" $IPB 25 "$WORK/b25.log"
    ns_peer "$NB" $IPB 8080 "$WORK/b8080.log"
    ns_peer "$NA" $IPA 4444 "$WORK/shell.log"
    ns_peer "$NA" $IPA 25 "$WORK/a25.log"
    # an attacker's connection from B, open before the isolation
    ip netns exec "$NB" bash -c 'exec 3<>/dev/tcp/'$IPA'/4444; echo before >&3
        while [ ! -e "$1" ]; do sleep 0.05; done; echo after >&3; sleep 5' - "$WORK/isolated" &
    PIDS+=($!)
    wait_for grep -q before "$WORK/shell.log" || fail "the shell did not connect"
    # the engine runs in A
    nsbh() { ip netns exec "$NA" "$BULKHEAD" --state-dir "$STATE" "$@"; }
    assert_exit 0 nsbh run --plain "$WORK/iso.lua" \
        -p ns="$NB" -p ip=$IPB -p log="$WORK/shell.log" -p flag="$WORK/isolated" -p engine_ip=$IPA
    [ -z "$_TFAIL" ] || printf '%s\n' "$OUT" | tail -20 | sed 's/^/  | /'
    j=$(journal)
    assert_eq "true true" "$(end_of before result.\"25\") $(end_of before result.\"8080\")" "both open before"
    assert_eq "true false" "$(end_of during result.\"25\") $(end_of during result.\"8080\")" "only mail while isolated"
    assert_eq "0 0" "$(end_of before result.out25) $(end_of after result.out25)" "out to port 25 before and after"
    [ "$(end_of during result.out25)" != 0 ] || fail "the isolated host opened a connection out to port 25"
    assert_eq "true true" "$(end_of after result.\"25\") $(end_of after result.\"8080\")" "both open after release"
    shell=$(end_of during result.shell)
    assert_contains "$shell" "before"
    assert_not_contains "$shell" "after" "the established connection was cut"
    assert_jq "$j" '[.[] | select(.type == "step_end")] | map(.status) | unique | join(",")' ok
    assert_eq "" "$(ip netns exec "$NB" nft list tables | grep bulkhead_isolation)" "no table left after release"
    # the undo of isolate is release: bulkhead undo lifts an isolation left in place
    printf 'runbook { id = "iso2", title = "Iso", timeout = "1m", params = { ns = { type = "string", required = true, doc = "ns" } } }\nphase "contain"\nstep "isolate" { action = firewall.isolate { allow = { "smtp" }, wrap = { "ip", "netns", "exec", param.ns } } }\n' >"$WORK/iso2.lua"
    assert_exit 0 nsbh run --plain "$WORK/iso2.lua" -p ns="$NB"
    ip netns exec "$NB" nft list tables | grep -q bulkhead_isolation || fail "isolate left no table"
    assert_exit 0 nsbh undo last --plain
    assert_eq "" "$(ip netns exec "$NB" nft list tables | grep bulkhead_isolation)" "undo released the host"
fi

# --- services ---------------------------------------------------------------------

cat >"$WORK/svc.lua" <<'LUA'
runbook { id = "svc", title = "Services", timeout = "1m",
  params = { unit = { type = "string", required = true, doc = "the unit" },
             systemctl = { type = "string", default = "systemctl", doc = "the program" },
             fail = { type = "boolean", default = false, doc = "fail at the end" } } }
local u = { unit = param.unit, systemctl = param.systemctl }
phase "contain"
step "stop" { action = service.stop(u) }
step "down" { action = service.is_active(u), on_failure = "continue" }
phase "recover"
step "end" { run = function(ctx) if param.fail then error("the drill wants a rollback", 0) end end,
             on_failure = "rollback" }
LUA
if [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ] && command -v systemd-run >/dev/null; then
    t service_stops_a_transient_systemd_unit
    unit="bh-test-$$.service"
    systemd-run --quiet --unit="$unit" sleep 600 || fail "systemd-run failed"
    assert_eq active "$(systemctl is-active "$unit")"
    assert_exit 0 bh run --plain "$WORK/svc.lua" -p unit="$unit"
    assert_eq "failed" "$(end_of down status)" "is_active says the unit is down"
    systemctl is-active -q "$unit" && fail "the unit still runs"
    systemctl stop "$unit" 2>/dev/null
else
    # Said plainly: this machine's PID 1 is not systemd (a container), so a
    # stand-in systemctl keeps unit states in files; the plugin's argv,
    # verbs, health check and undo are what is tested.
    t service_units_with_a_stand_in_systemctl_as_systemd_is_not_pid_1_here
    : >"$WORK/units/calls"
    echo active >"$WORK/units/db.service"
    assert_exit 0 bh run --plain "$WORK/svc.lua" -p unit=db.service -p systemctl="$WORK/systemctl"
    assert_eq inactive "$(cat "$WORK/units/db.service")"
    assert_eq "failed" "$(end_of down status)" "is_active says the unit is down"
    assert_contains "$(end_of down error.message)" "db.service is inactive"
    assert_exit 1 bh run --plain "$WORK/svc.lua" -p unit=db.service -p systemctl="$WORK/systemctl" -p fail=true
    assert_eq active "$(cat "$WORK/units/db.service")" "the rollback started it again (stop's undo)"
    assert_eq "stop db.service,is-active db.service,stop db.service,is-active db.service,start db.service" \
        "$(paste -sd, "$WORK/units/calls")"
fi

# --- ansible and inventories -----------------------------------------------------

t ansible_runs_modules_and_playbooks
FAKE_LOG="$WORK/ansible.log"   # steps run with a clean environment: the path is written in
cat >"$WORK/fake-ansible" <<SH
#!/bin/sh
# records its argv, one word per line, then a blank line
for a in "\$@"; do printf '%s\\n' "\$a"; done >>"$FAKE_LOG"; echo >>"$FAKE_LOG"
echo "web1 | CHANGED"
SH
chmod +x "$WORK/fake-ansible"
cat >"$WORK/ans.lua" <<'LUA'
runbook { id = "ans", title = "Ansible", timeout = "1m",
  params = { inv = { type = "string", required = true, doc = "inventory" },
             bin = { type = "string", required = true, doc = "stand-in" } } }
step "mod" { action = ansible.module { pattern = "web", module = "ansible.builtin.service",
  args = "name=nginx state=stopped", inventory = param.inv, become = true, forks = 5, ansible = param.bin } }
step "play" { action = ansible.playbook { playbook = "isolate.yml", inventory = param.inv, limit = "web1",
  extra_vars = { ticket = "INC-7", dry = false, note = 'say "hi"\tnow' }, check_mode = true,
  ansible_playbook = param.bin } }
LUA
assert_exit 0 bh run --plain "$WORK/ans.lua" -p inv="$WORK/hosts.ini" -p bin="$WORK/fake-ansible"
assert_eq "web
-i
$WORK/hosts.ini
-m
ansible.builtin.service
-a
name=nginx state=stopped
--become
--forks
5

-i
$WORK/hosts.ini
isolate.yml
--limit
web1
-e
{\"dry\":false,\"note\":\"say \\\"hi\\\"\\tnow\",\"ticket\":\"INC-7\"}
--check" "$(cat "$FAKE_LOG")" "the argv of each"
ev=$(sed -n '/^-e$/{n;p}' "$FAKE_LOG")
assert_eq '{"dry":false,"note":"say \"hi\"\tnow","ticket":"INC-7"}' "$(printf %s "$ev" | jq -cS .)" "-e is JSON"
assert_eq "web1 | CHANGED" "$(end_of mod result.stdout | tr -d '\n')"

t inventories_in_ansible_ini_format
cat >"$WORK/big.ini" <<'INI'
; comments both ways
# groups, ranges, children, vars
lb.example.com
[web]
web[01:03].example.com ansible_user=deploy http_port=8080
web-x.example.com ansible_host=10.0.0.9 ansible_ssh_port=2222 note="two words"
[db]
db-[a:b].example.com
[db:vars]
ansible_user=postgres
[prod:children]
web
db
[prod:vars]
env=prod
INI
cat >"$WORK/inv.lua" <<'LUA'
runbook { id = "inv", title = "Inventory", timeout = "1m", params = { file = { type = "string", required = true, doc = "inventory" } } }
local inv = inventory(param.file)
local function names(list) local t = {} for _, h in ipairs(list) do t[#t + 1] = h.name end return table.concat(t, " ") end
step "show" { run = function(ctx)
  local x = inv.host["web-x.example.com"]
  return { web = names(inv:hosts("web")), db = names(inv:hosts("db")), prod = names(inv:hosts("prod")),
           mix = names(inv:hosts("db,web02.example.com")), all = #inv:hosts("all"),
           ungrouped = names(inv:hosts("ungrouped")),
           x = { host = x.host, port = x.port, note = x.vars.note, env = x.vars.env },
           w1 = { user = inv.host["web01.example.com"].user, http = inv.host["web01.example.com"].vars.http_port },
           dbuser = inv.host["db-a.example.com"].user }
end }
LUA
assert_exit 0 bh run --plain "$WORK/inv.lua" -p file="$WORK/big.ini"
assert_eq "web01.example.com web02.example.com web03.example.com web-x.example.com" "$(end_of show result.web)"
assert_eq "db-a.example.com db-b.example.com" "$(end_of show result.db)"
assert_eq "web01.example.com web02.example.com web03.example.com web-x.example.com db-a.example.com db-b.example.com" "$(end_of show result.prod)"
assert_eq "web02.example.com db-a.example.com db-b.example.com" "$(end_of show result.mix)" "inventory order"
assert_eq 7 "$(end_of show result.all)"
assert_eq "lb.example.com" "$(end_of show result.ungrouped)"
assert_eq '{"env":"prod","host":"10.0.0.9","note":"two words","port":2222}' "$(end_of show result.x | jq -cS .)"
assert_eq '{"http":"8080","user":"deploy"}' "$(end_of show result.w1 | jq -cS .)"
assert_eq postgres "$(end_of show result.dbuser)"
# errors name the file and line
bad_inv() { printf '%s\n' "$@" >"$WORK/bad.ini"; assert_exit 3 bh check "$WORK/inv.lua" -p file="$WORK/bad.ini"; }
bad_inv "[web" "a"
assert_contains "$ERR" "inv.lua:2: error: $WORK/bad.ini:1: a section is [group], [group:vars] or [group:children]"
bad_inv "[web]" "a b c"
assert_contains "$ERR" "bad.ini:2: expected key=value"
bad_inv "[web]" "w[9:1]"
assert_contains "$ERR" "bad.ini:2: range 9:1 runs backwards"
bad_inv "[a:children]" "b" "[b:children]" "a"
assert_contains "$ERR" "groups a contain each other"
assert_exit 3 bh check "$WORK/inv.lua" -p file="$WORK/nope.ini"
assert_contains "$ERR" "inventory: cannot read $WORK/nope.ini"
printf 'runbook { id = "i", title = "I" }\nlocal w = inventory("%s"):hosts("nosuch")\nstep "s" { run = function() end }\n' "$WORK/big.ini" >"$WORK/inv2.lua"
assert_exit 3 bh check "$WORK/inv2.lua"
assert_contains "$ERR" "inv2.lua:2: error: $WORK/big.ini has no group or host \"nosuch\""
