#!/usr/bin/env bash
# timeout: 600
# The shipped runbooks on a site they were not written for, unedited: the
# lab (tests/lab/lab) is that site, and everything it differs in (groups,
# units, ports, health checks, how ssh and SMTP are reached) is given as
# parameters. Each runbook runs for real over ssh as the lab's automation
# account with sudo, a person's tasks answered with `bulkhead done`, and
# is checked from outside: the hosts' firewalls and services, ports from
# another host, the SMTP sink, the webhook receiver, the stand-ins of the
# SaaS and the load balancer the lab cannot run (tests/lab/standins.py),
# the evidence against the hosts' own files. Then `bulkhead undo` at the
# all-clear, and a drill of each with the same parameters, which must
# leave every one of those untouched.
. "$(dirname "$0")/lib.sh"

LABCTL="$ROOT/tests/lab/lab"
LAB="$WORK/lab"
BG=()
cleanup() {
    local p
    for p in "${BG[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${BG[@]}"; do wait "$p" 2>/dev/null; done
    "$LABCTL" down "$LAB" >/dev/null 2>&1
    _t_finish
}
trap cleanup EXIT

# The site: one lab for the five runbooks.
SITE=(web1=http web2=http mail1=smtp meet1=https rec1=tcp arc1=https
      fs1=http,tcp fs2=http,tcp db1=postgres app1=http
      book1=http book2=http sc1=http sc2=http edi1=tcp lb=lb hooks=webhook saas=saas)
LAB_OK=""
if [ "$(id -u)" != 0 ]; then
    LAB_OK="the lab needs root for network and mount namespaces (sudo make check runs it)"
elif ! command -v ansible-playbook >/dev/null; then
    LAB_OK="ransomware-file-servers restores with ansible-playbook: needs ansible-core (make check installs it)"
elif ! "$LABCTL" up "$LAB" "${SITE[@]}" >"$WORK/lab.up" 2>&1; then
    LAB_OK="the lab did not come up: $(tail -n 3 "$WORK/lab.up" | tr '\n' '|')"
fi
if [ -n "$LAB_OK" ]; then
    t runbooks_lab; skip "$LAB_OK"
    exit 0
fi
. "$LAB/lab.env"
TOKEN=$(cat "$LAB_API_TOKEN")
SMTP_PASS=$(cat "$LAB/smtp.pass")
RB="$ROOT/runbooks"
MGMT="$LAB_ENGINE_ADDR/32"
mkdir -p "$WORK/home"

# lbh ARGS: bulkhead on the lab's engine side, with this test's state dir
# (HOME: where ansible finds its configuration, below).
lbh() { "$LABCTL" run "$LAB" env HOME="$WORK/home" "$BULKHEAD" --state-dir "$STATE" "$@"; }
# on HOST CMD...: a command on a lab host, as root.
on() { local h=$1; shift; "$LABCTL" exec "$LAB" "$h" "$@"; }
# reach FROM HOST PORT: a TCP connection from host FROM to HOST:PORT opens (2 s).
reach() { on "$1" timeout 2 bash -c "exec 3<>/dev/tcp/$2/$3" 2>/dev/null; }
isolated() { on "$1" nft list tables 2>/dev/null | grep -q 'inet bulkhead_isolation'; }
active() { [ "$(on "$1" systemctl is-active "$2")" = active ]; }
addr() { awk -v n="$1" '$1 == n { print $2 }' "$LAB/hosts.tsv"; }
srv() { echo "$LAB/hosts/$1/srv"; }
# count DIR: the files a sink or receiver kept there (N.eml, N.json)
count() { find "$1" -maxdepth 1 -name '[0-9]*.*' ! -name '*.tmp' 2>/dev/null | wc -l; }
# mail_to ADDRESS: the sink's messages with that recipient, whole
mail_to() { grep -l -F "RCPT TO:<$1>" "$(srv mail1)/mail"/*.eml 2>/dev/null | xargs -r cat; }
# hook_bodies DIR: the bodies of every request kept there, one per line
bodies() { local f; for f in $(ls "$1"/[0-9]*.json 2>/dev/null | sort -V); do jq -r .body "$f"; done; }
step_field() { jqs "$RUN_DIR/journal.jsonl" "[.[] | select(.type == \"step_end\" and .step == \"$1\")] | map(.$2) | join(\",\")"; }

# inventory FILE GROUP=HOST,HOST... [-- VAR=VALUE...]: the lab's hosts in
# the groups a runbook expects, reached as the automation account with
# sudo and (unless a VAR says otherwise) the lab's key.
inventory() {
    local f=$1 g h
    shift
    {
        echo "# the lab at $LAB, for a shipped runbook"
        while [ $# -gt 0 ] && [ "$1" != -- ]; do
            g=$1
            shift
            echo "[${g%%=*}]"
            for h in $(tr , ' ' <<<"${g#*=}"); do printf '%s ansible_host=%s\n' "$h" "$(addr "$h")"; done
        done
        [ "${1:-}" = -- ] && shift
        echo "[all:vars]"
        echo "ansible_user=ir-automation"
        printf '%s\n' "$@"
    } >"$f"
}

umask 077
cat >"$WORK/secrets" <<SECRETS
SMTP_PASSWORD=$SMTP_PASS
STATUS_WEBHOOK_URL=http://hooks:8080/status
SLACK_WEBHOOK_URL=https://saas/services/T0BHLAB/B0BHLAB/$TOKEN
TEAMS_WEBHOOK_URL=https://saas/workflows/bhlab/triggers/manual/paths/invoke?api-version=1&sig=$TOKEN
IDP_TOKEN=$TOKEN
LB_TOKEN=$TOKEN
SECRETS
umask 022
# without the channels' webhooks: a run that says slack = false, teams = false must not need them
grep -v -e SLACK -e TEAMS "$WORK/secrets" >"$WORK/secrets.nochat"
chmod 600 "$WORK/secrets.nochat"

# site_state: what a drill must not change, from outside: each host's
# nftables tables and units, its sshd log (every connection is a line),
# and what every sink, receiver and stand-in kept.
site_state() {
    local name a u
    while read -r name a; do
        printf '%s nft: %s\n' "$name" "$(on "$name" nft list tables 2>/dev/null | tr '\n' ' ')"
        for u in "$LAB/hosts/$name/etc.units"/*; do
            [ -f "$u" ] && printf '%s %s: %s\n' "$name" "${u##*/}" "$(on "$name" systemctl is-active "${u##*/}")"
        done
        printf '%s sshd: %s lines\n' "$name" "$(wc -l <"$LAB/hosts/$name/log/sshd.log")"
        printf '%s srv: %s\n' "$name" "$(cd "$(srv "$name")" && find mail hooks saas lb -type f 2>/dev/null |
            sort | xargs -r sha256sum | sha256sum | cut -c1-16)"
    done <"$LAB/hosts.tsv"
}

# drill_touches_nothing RUNBOOK ARGS...: a drill with the run's parameters
# ends with a scorecard, simulated through and through, and the site is
# as it was.
drill_touches_nothing() {
    local rb=$1
    shift
    site_state >"$WORK/state.before"
    assert_exit 0 lbh drill --plain "$RB/$rb.lua" --seed 1 "$@"
    local j
    j=$(journal)
    assert_jq "$j" '.[0].mode' drill
    assert_jq "$j" '[.[] | select(.type == "exec_start" and (.simulated != true or .pid != 0))] | length' 0
    assert_jq "$j" '[.[] | select(.type == "exec_start")] | length > 0' true
    assert_jq "$j" '[.[] | select(.type == "scorecard")] | length' 1
    site_state >"$WORK/state.after"
    diff "$WORK/state.before" "$WORK/state.after" >"$WORK/state.diff" ||
        fail "the drill of $rb changed the site: $(tr '\n' '|' <"$WORK/state.diff")"
}

# start_run RUNBOOK ARGS...: a real run in the background, every approval
# given up front; RUN_DIR is its folder once it exists.
start_run() {
    local rb=$1 before
    shift
    before=$(ls "$STATE/runs" 2>/dev/null)
    lbh run --plain --yes "$RB/$rb.lua" "$@" >"$WORK/$rb.out" 2>&1 &
    RUN_PID=$!
    BG+=("$RUN_PID")
    RUN_ID=""
    local i
    for i in $(seq 1 100); do
        RUN_ID=$(ls "$STATE/runs" 2>/dev/null | grep -vxF -- "$before" | head -n 1)
        [ -n "$RUN_ID" ] && [ -s "$STATE/runs/$RUN_ID/journal.jsonl" ] && break
        sleep 0.1
    done
    RUN_DIR=$STATE/runs/$RUN_ID
}
# finish_run: wait for it; RC is its exit code.
finish_run() { wait "$RUN_PID"; RC=$?; }
# started STEP: the run has begun STEP (or ended: false)
started() {
    jq -c --arg s "$1" 'select(.type == "step_start" and .step == $s)' "$RUN_DIR/journal.jsonl" 2>/dev/null | grep -q .
}
# at_task STEP: wait (60 s) until the run waits on manual task STEP
at_task() {
    local i
    for i in $(seq 1 600); do
        started "$1" && return 0
        kill -0 "$RUN_PID" 2>/dev/null || break
        sleep 0.1
    done
    fail "the run never reached '$1': $(tail -n 5 "$WORK"/*.out 2>/dev/null | tr '\n' '|' | tail -c 600)"
    return 1
}
# answer STEP NOTE [--failed]: mark the manual task done, as its person would
answer() {
    local i
    for i in $(seq 1 100); do
        bh done "$RUN_DIR" "$1" --note "$2" "${@:3}" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    fail "could not answer '$1'"
}
# evidence_of STEP: the evidence files of a step, "HOST PATH" a line
evidence_of() {
    jqs "$RUN_DIR/journal.jsonl" "[.[] | select(.type == \"evidence\" and .step == \"$1\")] | .[] | \"\\(.key) $RUN_DIR/\\(.path)\""
}
# same_tar_member TAR MEMBER FILE: MEMBER of TAR is FILE, byte for byte
same_in_tar() {
    tar -xOf "$1" "$2" 2>/dev/null | cmp -s - "$3" || fail "$2 in $(basename "$1") is not $3 byte for byte"
}
no_secret_in_run() {
    local v
    for v in "$SMTP_PASS" "$TOKEN"; do
        grep -rqF -- "$v" "$RUN_DIR" && fail "a secret is in the run folder $(grep -rlF -- "$v" "$RUN_DIR" | head -n 1)"
    done
    return 0
}

# =============================================================================
# web-tier-compromise: web1, web2 isolated and stopped; mail1 and meet1 stay
# up; records (rec1, a TCP service) and archive (arc1, HTTPS signed by the
# lab's CA) restored in that order behind their health checks; mail over
# 587 with STARTTLS, verified against the lab's CA, and a login.

inventory "$WORK/web.ini" web=web1,web2 mail=mail1 meet=meet1 records=rec1 archive=arc1 -- \
    "ansible_ssh_private_key_file=$LAB_KEY"
cat >"$WORK/web.json" <<JSON
{
  "incident": "IR-LAB-001",
  "inventory": "$WORK/web.ini",
  "known_hosts": "$LAB_KNOWN_HOSTS",
  "ssh_options": ["ConnectionAttempts=2"],
  "systemctl": "/usr/local/sbin/systemctl",
  "mgmt": ["$MGMT"],
  "web_port": 80,
  "priority": ["records", "archive"],
  "unit_of": { "records": "records.service", "archive": "https.service" },
  "health_of": { "records": 5432 },
  "smtp": "smtp://mail1:587",
  "smtp_user": "$LAB_SMTP_USER",
  "ca_file": "$LAB_CA",
  "mail_from": "ir@lab.example",
  "partners": ["soc@provider.example", "oncall@experts.example"],
  "staff": ["staff@lab.example"],
  "slack": false,
  "update_every": "1h"
}
JSON
WEB=(--params "$WORK/web.json" --secrets "$WORK/secrets.nochat")
for h in web1 web2; do
    on "$h" bash -c 'mkdir -p /var/log/nginx && printf "GET /wp-login.php 200\nPOST /xmlrpc.php 500\n\x00\xff raw\n%s\n" "$(hostname)" >/var/log/nginx/access.log && echo "sshd[1]: Accepted publickey for root" >/var/log/auth.log'
done
# after the intrusion the priority services are down: the runbook starts them
on rec1 systemctl stop records.service
on arc1 systemctl stop https.service

t web_tier_drill_touches_nothing
drill_touches_nothing web-tier-compromise "${WEB[@]}"

t web_tier_runs_for_real_and_is_checked_from_outside
start_run web-tier-compromise "${WEB[@]}"
at_task rebuild
# contained: the web hosts are cut off and stopped, mail and meetings are not
for h in web1 web2; do
    isolated "$h" || fail "$h is not isolated while the rebuild waits"
    active "$h" nginx.service && fail "nginx still runs on $h"
    reach hooks "$h" 22 && fail "$h:22 reachable from a host outside mgmt"
done
reach hooks mail1 25 || fail "mail1 stopped accepting mail"
reach hooks meet1 443 || fail "the meeting platform stopped answering"
isolated mail1 && fail "mail1 was isolated"
partners=$(mail_to soc@provider.example)
assert_contains "$partners" "RCPT TO:<oncall@experts.example>"
assert_contains "$partners" "MAIL FROM:<ir@lab.example>"
assert_contains "$partners" "TLS: yes" "partners' mail (STARTTLS on 587)"
assert_contains "$partners" "AUTH: $LAB_SMTP_USER"
assert_contains "$partners" "Subject: [IR-LAB-001] Intrusion on the public web tier"
assert_contains "$(mail_to staff@lab.example)" "Website down, mail and meetings work"
assert_contains "$(bodies "$(srv hooks)/hooks")" "IR-LAB-001 update 1"
# the evidence, before the rebuild: the hosts' logs byte for byte
evidence_of collect-logs >"$WORK/ev"
while read -r h f; do
    same_in_tar "$f" nginx/access.log "$LAB/hosts/$h/log/nginx/access.log"
    same_in_tar "$f" auth.log "$LAB/hosts/$h/log/auth.log"
done <"$WORK/ev"
assert_eq "web1 web2" "$(cut -d' ' -f1 "$WORK/ev" | sort | tr '\n' ' ' | sed 's/ $//')" "one logs.tar per web host"
while read -r h f; do
    assert_contains "$(cat "$f")" "$(addr "$h"):22" "$h's open connections (its ssh session)"
done < <(evidence_of volatile-state)
# the rebuild, as its person does it: a fresh image (no table) with its web server
for h in web1 web2; do
    on "$h" nft delete table inet bulkhead_isolation
    on "$h" systemctl start nginx.service
done
answer rebuild "golden image 2026.12, TLS keys rotated"
finish_run
assert_eq 0 "$RC" "the run's exit: $(tail -n 5 "$WORK/web-tier-compromise.out" | tr '\n' '|')"
assert_jq "$RUN_DIR/journal.jsonl" '.[-1].status' ok
assert_eq "ok,ok" "$(step_field isolate-rebuilt status)" "the rebuilt hosts isolated again"
for h in web1 web2; do
    isolated "$h" && fail "$h is still isolated after reconnect-web"
    reach hooks "$h" 80 || fail "$h:80 not reachable from another host after the run"
done
active rec1 records.service || fail "records was not restored"
active arc1 https.service || fail "archive was not restored"
reach hooks rec1 5432 || fail "records does not answer"
# the gates checked what the parameters said: a port, and HTTPS verified with the lab's CA
assert_jq "$RUN_DIR/journal.jsonl" '[.[] | select(.type == "request_start" and .step == "restore-archive")][0].url' "https://arc1/healthz"
assert_jq "$RUN_DIR/journal.jsonl" '[.[] | select(.type == "request_start" and .step == "restore-records")][0].url' "$(addr rec1):5432"
assert_jq "$RUN_DIR/journal.jsonl" '[.[] | select(.type == "request_start" and .verify_tls == false)] | length' 0
assert_contains "$(mail_to soc@provider.example)" "Web services restored"
argv=$(jqs "$RUN_DIR/journal.jsonl" '[.[] | select(.type == "exec_start" and .step == "stop-web")][0].argv | join(" ")')
assert_contains "$argv" "-o ConnectionAttempts=2"
assert_contains "$argv" "UserKnownHostsFile=$LAB_KNOWN_HOSTS"
assert_contains "$argv" "-l ir-automation"
assert_contains "$argv" "sudo -n /usr/local/sbin/systemctl stop nginx.service"
assert_jq "$RUN_DIR/journal.jsonl" '[.[] | select(.type == "step_end" and .step == "channel")] | length' 0
no_secret_in_run
WEB_RUN=$RUN_ID

t web_tier_undo_at_the_all_clear_keeps_what_was_restored
assert_exit 0 lbh undo "$WEB_RUN" --plain --secrets "$WORK/secrets.nochat"
for h in web1 web2; do
    isolated "$h" && fail "$h isolated after the undo"
    active "$h" nginx.service || fail "nginx not running on $h after the undo"
done
active rec1 records.service || fail "the undo stopped records"
active arc1 https.service || fail "the undo stopped archive"
assert_jq "$RUN_DIR/journal.jsonl" '[.[] | select(.type == "undo_end")] | map(.status) | unique | join(",")' ok

# =============================================================================
# ransomware-file-servers: fs1 and fs2 share files over HTTP (nginx.service,
# port 80) and sync backups with records.service; the restore is a real
# ansible-playbook run against the lab, as the automation account with
# become; mail over 587 with STARTTLS, without a login; a card to the Teams
# stand-in.

inventory "$WORK/fs.ini" fileservers=fs1,fs2 -- "ansible_ssh_private_key_file=$LAB_KEY" ansible_become=true
# the site's ansible configuration: the lab's known hosts; pipelining and
# ansible's own connection sharing (the masters it leaves are the
# engine's to stop, and the test checks it does)
cat >"$WORK/home/.ansible.cfg" <<CFG
[defaults]
host_key_checking = True
interpreter_python = /usr/bin/python3
[ssh_connection]
pipelining = True
ssh_args = -o ControlMaster=auto -o ControlPersist=60s -o UserKnownHostsFile=$LAB_KNOWN_HOSTS -o StrictHostKeyChecking=yes
CFG
# the site's restore playbook: the snapshot comes from the second site's copy on the server
cat >"$WORK/restore.yml" <<'YML'
- hosts: all
  become: true
  gather_facts: false
  tasks:
    - name: the snapshot is on the second site
      ansible.builtin.command: test -d "/srv/backup/{{ snapshot }}"
      changed_when: false
    - name: wipe the shares
      ansible.builtin.command: find /srv/shares -mindepth 1 -delete
    - name: restore the snapshot
      ansible.builtin.copy:
        src: "/srv/backup/{{ snapshot }}/"
        dest: /srv/shares/
        remote_src: true
    - name: say what was restored
      ansible.builtin.copy:
        content: "{{ snapshot }} for {{ incident }}\n"
        dest: /srv/restored-from
YML
cat >"$WORK/fs.json" <<JSON
{
  "incident": "IR-LAB-002",
  "inventory": "$WORK/fs.ini",
  "known_hosts": "$LAB_KNOWN_HOSTS",
  "mgmt": ["$MGMT"],
  "smb_unit": "nginx.service",
  "smb_port": 80,
  "backup_unit": "records.service",
  "restore_point": "fs-nightly-lab",
  "playbook": "$WORK/restore.yml",
  "smtp": "smtp://mail1:587",
  "smtp_auth": false,
  "ca_file": "$LAB_CA",
  "mail_from": "ir@lab.example",
  "management": ["cio@lab.example"],
  "staff": ["all@lab.example"],
  "update_every": "1h"
}
JSON
FS=(--params "$WORK/fs.json" --secrets "$WORK/secrets")
# encrypted this morning, a ransom note, and what the encryption did not reach
for h in fs1 fs2; do
    on "$h" bash -c 'mkdir -p /srv/shares/finance /srv/shares/old /srv/backup/fs-nightly-lab/finance &&
        echo "budget 2027" >/srv/backup/fs-nightly-lab/finance/budget.ods &&
        printf "\x8f\x01 locked" >/srv/shares/finance/budget.ods.locked &&
        printf "Your files are encrypted. Pay 3 BTC to %s.\n" "$(hostname)" >/srv/shares/finance/README_DECRYPT.txt &&
        echo minutes >/srv/shares/old/2019.txt && touch -d "3 days ago" /srv/shares/old/2019.txt'
done

t ransomware_drill_touches_nothing
drill_touches_nothing ransomware-file-servers "${FS[@]}"

t ransomware_stopped_before_the_restore_then_undo_lifts_containment
start_run ransomware-file-servers "${FS[@]}"
at_task confirm-restore-point
for h in fs1 fs2; do
    isolated "$h" || fail "$h not isolated"
    active "$h" nginx.service && fail "file sharing still runs on $h"
    active "$h" records.service && fail "backup sync still runs on $h"
    reach hooks "$h" 80 && fail "$h:80 reachable from another host"
done
answer confirm-restore-point "the snapshot has encrypted files too" --failed
finish_run
assert_eq 1 "$RC" "a restore point nobody confirms stops the run"
assert_eq skipped "$(step_field restore status)"
assert_contains "$(on fs1 ls /srv/shares/finance)" "budget.ods.locked" "nothing was restored"
isolated fs1 || fail "the containment did not stay after the stop"
assert_exit 0 lbh undo "$RUN_ID" --plain --secrets "$WORK/secrets"
for h in fs1 fs2; do
    isolated "$h" && fail "$h still isolated after the undo"
    active "$h" nginx.service || fail "file sharing not started again on $h by the undo"
    active "$h" records.service || fail "backup sync not started again on $h by the undo"
    reach hooks "$h" 80 || fail "$h:80 not reachable after the undo"
done

t ransomware_runs_for_real_with_an_ansible_restore
mails=$(count "$(srv mail1)/mail")
start_run ransomware-file-servers "${FS[@]}"
at_task confirm-restore-point
isolated fs2 || fail "fs2 not isolated"
mgmt_mail=$(mail_to cio@lab.example)
assert_contains "$mgmt_mail" "Subject: [IR-LAB-002] Ransomware on the file servers"
assert_contains "$mgmt_mail" "TLS: yes"
assert_contains "$mgmt_mail" "AUTH: none" "smtp_auth = false: no login"
card=$(ls "$(srv saas)/saas"/[0-9]*.json 2>/dev/null | sort -V | tail -n 1)
assert_eq teams "$(jq -r .service "$card")" "the last request to the stand-ins"
assert_eq "202 true" "$(jq -r '"\(.status) \(.posted)"' "$card")" "Teams took the card: $(jq -r .not_posted "$card")"
assert_contains "$(jq -r .body "$card")" "IR-LAB-002: ransomware"
while read -r h f; do
    assert_contains "$(cat "$f")" "Pay 3 BTC to $h" "$h's ransom note"
done < <(evidence_of ransom-notes)
while read -r h f; do
    assert_contains "$(cat "$f")" "/srv/shares/finance/budget.ods.locked" "$h's changed files"
    assert_not_contains "$(cat "$f")" "2019.txt" "$h's changed files"
done < <(evidence_of changed-files)
answer confirm-restore-point "fs-nightly-lab is from 02:00, before the first encrypted file"
finish_run
assert_eq 0 "$RC" "the run's exit: $(tail -n 5 "$WORK/ransomware-file-servers.out" | tr '\n' '|')"
for h in fs1 fs2; do
    assert_eq "budget.ods" "$(on "$h" ls /srv/shares/finance)" "$h's shares after the restore"
    [ -e "$LAB/hosts/$h/srv/shares/old" ] && fail "the wipe left $h's old files"
    assert_eq "fs-nightly-lab for IR-LAB-002" "$(cat "$LAB/hosts/$h/srv/restored-from")" "the playbook's vars"
    isolated "$h" && fail "$h still isolated"
    active "$h" nginx.service || fail "sharing not back on $h"
    active "$h" records.service || fail "backup sync not back on $h"
    reach hooks "$h" 80 || fail "$h:80 not reachable after the run"
done
argv=$(jqs "$RUN_DIR/journal.jsonl" '[.[] | select(.type == "exec_start" and .step == "restore")][0].argv | join(" ")')
assert_eq "ansible-playbook -i $WORK/fs.ini $WORK/restore.yml --limit fileservers -e {\"incident\":\"IR-LAB-002\",\"snapshot\":\"fs-nightly-lab\"}" "$argv"
assert_contains "$(mail_to all@lab.example)" "Shared folders restored"
assert_eq $((mails + 4)) "$(count "$(srv mail1)/mail")" "management, staff, an update, the all-clear"
no_secret_in_run
assert_eq "$(cat "$LAB/engine/holder.pid")" "$(ip netns pids "$LAB_ENGINE_NS" | tr '\n' ' ' | sed 's/ $//')" \
    "the engine side after the run: its holder alone (ansible's ssh masters stopped)"
FS_RUN=$RUN_ID

t ransomware_undo_at_the_all_clear_stops_nothing_restored
assert_exit 0 lbh undo "$FS_RUN" --plain --secrets "$WORK/secrets"
for h in fs1 fs2; do
    active "$h" nginx.service || fail "the undo stopped sharing on $h"
    active "$h" records.service || fail "the undo stopped backup sync on $h"
    isolated "$h" && fail "$h isolated after the undo"
done
