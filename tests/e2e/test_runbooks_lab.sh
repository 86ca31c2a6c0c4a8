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
. "$(dirname "$0")/lab.sh"

# The site: one lab for the five runbooks.
SITE=(web1=http web2=http mail1=smtp meet1=https rec1=tcp arc1=https
      fs1=http,tcp fs2=http,tcp db1=postgres app1=http
      book1=http book2=http sc1=http sc2=http edi1=tcp lb=lb hooks=webhook saas=saas)
lab_up runbooks_lab ansible-playbook "${SITE[@]}"
TOKEN=$(cat "$LAB_API_TOKEN")
SMTP_PASS=$(cat "$LAB/smtp.pass")
RB="$ROOT/runbooks"
MGMT="$LAB_ENGINE_ADDR/32"
mkdir -p "$WORK/home"

# lbh ARGS: bulkhead on the lab's engine side, with this test's state dir
# (HOME: where ansible finds its configuration, below).
lbh() { "$LABCTL" run "$LAB" env HOME="$WORK/home" "$BULKHEAD" --state-dir "$STATE" "$@"; }
active() { [ "$(on "$1" systemctl is-active "$2")" = active ]; }
addr() { awk -v n="$1" '$1 == n { print $2 }' "$LAB/hosts.tsv"; }
srv() { echo "$LAB/hosts/$1/srv"; }
# count DIR: the files a sink or receiver kept there (N.eml, N.json)
count() { find "$1" -maxdepth 1 -name '[0-9]*.*' ! -name '*.tmp' 2>/dev/null | wc -l; }
# mail_to ADDRESS: the sink's messages with that recipient, whole
mail_to() { grep -l -F "RCPT TO:<$1>" "$(srv mail1)/mail"/*.eml 2>/dev/null | xargs -r cat; }
# bodies DIR: the bodies of every request kept there, in order, one per line
bodies() { local f; for f in $(ls "$1"/[0-9]*.json 2>/dev/null | sort -V); do jq -r .body "$f"; done; }
step_field() { jqs "$RUN_DIR/journal.jsonl" "[.[] | select(.type == \"step_end\" and .step == \"$1\")] | map(.$2) | join(\",\")"; }

# inventory FILE GROUP=HOST,HOST... [-- VAR=VALUE...]: the lab's hosts in
# the groups a runbook expects, reached as the automation account (which
# has sudo on every host), with the VARs for all of them (the lab's key,
# unless the runbook is to get it as a parameter).
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
    local name u
    while read -r name _; do
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
    assert_jq "$j" '[.[] | select(.type == "request_start" and .simulated != true)] | length' 0
    assert_jq "$j" '[.[] | select(.type == "scorecard")] | length' 1
    site_state >"$WORK/state.after"
    diff "$WORK/state.before" "$WORK/state.after" >"$WORK/state.diff" ||
        fail "the drill of $rb changed the site: $(tr '\n' '|' <"$WORK/state.diff")"
}

# start_run RUNBOOK ARGS...: a real run in the background, every approval
# given up front; RUN_DIR is its folder once it exists, RUN_OUT its console.
start_run() {
    local rb=$1 before
    shift
    before=$(ls "$STATE/runs" 2>/dev/null)
    # not through lbh: a function in the background is a subshell, and
    # its pid would not be the engine's (lab run execs into it)
    "$LABCTL" run "$LAB" env HOME="$WORK/home" "$BULKHEAD" --state-dir "$STATE" \
        run --plain --yes "$RB/$rb.lua" "$@" >"$WORK/$rb.out" 2>&1 &
    RUN_OUT=$WORK/$rb.out
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
# started STEP: the run has begun STEP
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
    fail "the run never reached '$1': $(tail -n 5 "$RUN_OUT" | tr '\n' '|')"
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
# same_in_tar TAR MEMBER FILE: MEMBER of TAR is FILE, byte for byte
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
assert_eq 0 "$RC" "the run's exit: $(tail -n 5 "$RUN_OUT" | tr '\n' '|')"
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
assert_jq "$RUN_DIR/journal.jsonl" '[.[0].secrets[].name] | sort | join(",")' "SMTP_PASSWORD,STATUS_WEBHOOK_URL"
no_secret_in_run
WEB_RUN=$RUN_ID

t web_tier_without_a_meeting_platform_plans_and_drills
inventory "$WORK/web-nomeet.ini" web=web1,web2 mail=mail1 records=rec1 archive=arc1 -- \
    "ansible_ssh_private_key_file=$LAB_KEY"
assert_exit 0 bh plan "$RB/web-tier-compromise.lua" --params "$WORK/web.json" -p inventory="$WORK/web-nomeet.ini"
assert_not_contains "$OUT" "meetings-still-up"
assert_contains "$OUT" "mail-still-up"
drill_touches_nothing web-tier-compromise "${WEB[@]}" -p inventory="$WORK/web-nomeet.ini"

t web_tier_undo_at_the_all_clear_keeps_what_was_restored
assert_exit 0 lbh undo "$WEB_RUN" --plain --secrets "$WORK/secrets.nochat"
for h in web1 web2; do
    isolated "$h" && fail "$h isolated after the undo"
    active "$h" nginx.service || fail "nginx not running on $h after the undo"
done
active rec1 records.service || fail "the undo stopped records"
active arc1 https.service || fail "the undo stopped archive"
assert_jq "$RUN_DIR/journal.jsonl" '[.[] | select(.type == "undo_end")] | map(.status) | unique | join(",")' ok

t web_tier_failed_health_check_keeps_containment_until_the_undo
# archive comes back without its health page: its gate never passes
on arc1 systemctl stop https.service
mv "$(srv arc1)/www/healthz" "$(srv arc1)/www/healthz.away"
start_run web-tier-compromise "${WEB[@]}" -p health_timeout=3s
at_task rebuild
for h in web1 web2; do
    on "$h" nft delete table inet bulkhead_isolation
    on "$h" systemctl start nginx.service
done
answer rebuild "golden image 2026.12"
finish_run
assert_eq 1 "$RC" "a health check that never passes fails the run"
assert_eq verify_failed "$(step_field restore-archive error.code)"
assert_contains "$(step_field restore-archive error.message)" "https://arc1/healthz answered 404"
assert_jq "$RUN_DIR/journal.jsonl" '[.[] | select(.step == "reconnect-web")] | map(.type) | unique | join(",")' step_skipped
for h in web1 web2; do
    isolated "$h" || fail "$h was released although a restore failed"
    reach hooks "$h" 80 && fail "$h:80 reachable after the failed restore"
done
active rec1 records.service || fail "records, restored before, is down"
assert_exit 0 lbh undo "$RUN_ID" --step isolate-web --plain --secrets "$WORK/secrets.nochat"
for h in web1 web2; do
    isolated "$h" && fail "$h still isolated after undo --step isolate-web"
    reach hooks "$h" 80 || fail "$h:80 not reachable after the undo"
done
mv "$(srv arc1)/www/healthz.away" "$(srv arc1)/www/healthz"

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
assert_jq "$RUN_DIR/journal.jsonl" '[.[] | select(.step == "restore")] | map(.type) | join(",")' step_skipped
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
assert_eq 0 "$RC" "the run's exit: $(tail -n 5 "$RUN_OUT" | tr '\n' '|')"
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

# =============================================================================
# stolen-credentials: jdoe, phished, is suspended at the identity provider
# (the stand-in of an Okta-style admin API on saas, over HTTPS signed by
# the lab's CA, an SSWS token), locked out of web1, fs1 and db1 with its
# attacker's session killed, and given back after the owner is verified.
# The lab's key comes as a parameter (the inventory has none); sshd logs
# to a file (no journald); a post to the Slack stand-in.

inventory "$WORK/creds.ini" linux=web1,fs1,db1
cat >"$WORK/creds.json" <<JSON
{
  "incident": "IR-LAB-003",
  "user": "jdoe",
  "inventory": "$WORK/creds.ini",
  "group": "linux",
  "ssh_key": "$LAB_KEY",
  "known_hosts": "$LAB_KNOWN_HOSTS",
  "idp_url": "https://saas/api/v1",
  "idp_auth": "SSWS",
  "login_log": "/var/log/sshd.log",
  "smtp": "smtp://mail1:587",
  "smtp_user": "$LAB_SMTP_USER",
  "ca_file": "$LAB_CA",
  "mail_from": "ir@lab.example",
  "security": ["security@lab.example"],
  "slack": true
}
JSON
CREDS=(--params "$WORK/creds.json" --secrets "$WORK/secrets")
ssh-keygen -q -t ed25519 -N '' -C jdoe -f "$WORK/jdoe_key"
for h in web1 fs1 db1; do
    on "$h" bash -c 'useradd -m -d /run/home/jdoe -s /bin/bash jdoe && usermod -p "*" jdoe &&
        cat >/etc/ssh/authorized_keys/jdoe && chmod 0644 /etc/ssh/authorized_keys/jdoe' <"$WORK/jdoe_key.pub"
done
# as_jdoe HOST CMD...: jdoe's key, from the engine side
as_jdoe() {
    local h=$1
    shift
    "$LABCTL" run "$LAB" ssh -o BatchMode=yes -o ConnectTimeout=5 -o UserKnownHostsFile="$LAB_KNOWN_HOSTS" \
        -i "$WORK/jdoe_key" -o IdentitiesOnly=yes -l jdoe -- "$h" "$@"
}
for h in web1 fs1 db1; do as_jdoe "$h" true || fail "jdoe cannot log in to $h before the incident"; done
cat >"$(srv saas)/saas/users.json" <<'JSON'
{ "jdoe": { "status": "ACTIVE" }, "asmith": { "status": "ACTIVE" } }
JSON
cat >"$(srv saas)/saas/events.json" <<'JSON'
[ { "eventType": "user.session.start", "published": "2026-12-01T03:12:44.000Z",
    "actor": { "alternateId": "jdoe", "type": "User" }, "client": { "ipAddress": "203.0.113.66" },
    "outcome": { "result": "SUCCESS" } },
  { "eventType": "user.session.start", "published": "2026-12-01T08:00:00.000Z",
    "actor": { "alternateId": "asmith", "type": "User" }, "client": { "ipAddress": "198.51.100.7" },
    "outcome": { "result": "SUCCESS" } } ]
JSON
# call METHOD URL [AUTH [BODY]]: what a client on hooks gets ("STATUS BODY")
call() {
    local args=(-s -m 5 --cacert "$LAB_CA" -X "$1" -w ' %{http_code}')
    [ -n "${3:-}" ] && args+=(-H "Authorization: $3")
    [ -n "${4:-}" ] && args+=(-H 'Content-Type: application/json' --data-binary "$4")
    on hooks curl "${args[@]}" "$2" | sed 's/^\(.*\) \([0-9]*\)$/\2 \1/'
}

t standins_answer_as_the_services_do_errors_included
echo '{ "booking": ["book1:80", "book2:80"] }' >"$(srv lb)/lb/pools.json"
api=https://saas/api/v1
assert_contains "$(call GET "$api/users/jdoe" "SSWS $TOKEN")" '200 {"id": "00ujdoe", "status": "ACTIVE"'
assert_contains "$(call GET "$api/users/jdoe" "Bearer $TOKEN")" '200 '
assert_contains "$(call GET "$api/users/jdoe" "SSWS wrong")" '401 {"errorCode": "E0000011", "errorSummary": "Invalid token provided"'
assert_contains "$(call GET "$api/users/jdoe")" '401 '
assert_contains "$(call POST "$api/users/nobody/lifecycle/suspend" "SSWS $TOKEN")" '404 {"errorCode": "E0000007", "errorSummary": "Not found: Resource not found: nobody (User)"'
assert_contains "$(call POST "$api/users/asmith/lifecycle/unsuspend" "SSWS $TOKEN")" '400 {"errorCode": "E0000001"'
assert_contains "$(call PUT "$api/users/asmith/lifecycle/suspend" "SSWS $TOKEN")" '405 {"errorCode": "E0000022"'
assert_contains "$(call GET "$api/logs?filter=bogus" "SSWS $TOKEN")" '400 {"errorCode": "E0000031"'
slack=https://saas/services/T0BHLAB/B0BHLAB
assert_eq "403 invalid_token" "$(call POST "$slack/wrong" "" '{"text":"x"}')"
assert_eq "404 no_service" "$(call POST "https://saas/services/T0OTHER/B0OTHER/$TOKEN" "" '{"text":"x"}')"
assert_eq "400 invalid_payload" "$(call POST "$slack/$TOKEN" "" 'not json')"
assert_eq "400 no_text" "$(call POST "$slack/$TOKEN" "" '{"channel":"#ir"}')"
teams=https://saas/workflows/bhlab/triggers/manual/paths/invoke
assert_contains "$(call POST "$teams?api-version=1&sig=wrong" "" '{}')" '401 {"error": {"code": "DirectApiInvalidAuthorizationSignature"'
assert_contains "$(call POST "https://saas/workflows/other/triggers/manual/paths/invoke?sig=$TOKEN" "" '{}')" '404 {"error": {"code": "WorkflowNotFound"'
assert_contains "$(call POST "$teams?api-version=1&sig=$TOKEN" "" 'not json')" '400 {"error": {"code": "InvalidRequestContent"'
assert_eq "202 " "$(call POST "$teams?api-version=1&sig=$TOKEN" "" '{"type":"message"}')" "the trigger takes any JSON"
assert_eq "no attachments" "$(jq -r .not_posted "$(ls "$(srv saas)/saas"/[0-9]*.json | sort -V | tail -n 1)")" "what Teams did with it"
assert_contains "$(call PUT http://lb/api/v2/pools/booking/maintenance "Bearer wrong" '{"enabled":true}')" '401 '
assert_contains "$(call PUT http://lb/api/v2/pools/nope/maintenance "Bearer $TOKEN" '{"enabled":true}')" '404 '
assert_contains "$(call PUT http://lb/api/v2/pools/booking/maintenance "Bearer $TOKEN" '{"enabled":"yes"}')" '400 '
assert_eq ACTIVE "$(jq -r .asmith.status "$(srv saas)/saas/users.json")" "nothing changed by the refused calls"

# the identity provider's answers, as a run meets them: one attempt, then stop the run
first_attempt_of_suspend() {
    start_run stolen-credentials "$@"
    local i
    for i in $(seq 1 100); do
        jq -c 'select(.type == "step_end" and .step == "suspend-account")' "$RUN_DIR/journal.jsonl" 2>/dev/null |
            grep -q . && break
        sleep 0.1
    done
    kill -TERM "$RUN_PID"
    finish_run
}

t stolen_credentials_identity_provider_errors_stop_the_run
sshd_lines=$(wc -l <"$LAB/hosts/web1/log/sshd.log")
first_attempt_of_suspend "${CREDS[@]}" -p user=ghost
assert_eq failed "$(step_field suspend-account status)"
assert_eq retry "$(step_field suspend-account next)" "a failed attempt is retried, as the runbook says"
assert_eq 143 "$RC" "the run, stopped after the first attempt"
assert_contains "$(step_field suspend-account error.message)" "GET https://saas/api/v1/users/ghost answered 404, expected 200: E0000007 Not found: Resource not found: ghost (User)"
sed 's/^IDP_TOKEN=.*/IDP_TOKEN=not-the-token/' "$WORK/secrets" >"$WORK/secrets.badtoken"
chmod 600 "$WORK/secrets.badtoken"
first_attempt_of_suspend --params "$WORK/creds.json" --secrets "$WORK/secrets.badtoken"
assert_contains "$(step_field suspend-account error.message)" "answered 401, expected 200: E0000011 Invalid token provided"
assert_eq "$sshd_lines" "$(wc -l <"$LAB/hosts/web1/log/sshd.log")" "a host was reached after the identity provider refused"
assert_eq ACTIVE "$(jq -r .jdoe.status "$(srv saas)/saas/users.json")"

t stolen_credentials_drill_touches_nothing
drill_touches_nothing stolen-credentials "${CREDS[@]}"

t stolen_credentials_runs_for_real_and_is_checked_from_outside
# the attacker's session, open on web1
"$LABCTL" run "$LAB" ssh -o BatchMode=yes -o UserKnownHostsFile="$LAB_KNOWN_HOSTS" -i "$WORK/jdoe_key" \
    -o IdentitiesOnly=yes -l jdoe -- web1 sleep 300 >/dev/null 2>&1 &
ATTACKER=$!
BG+=("$ATTACKER")
wait_for on web1 pgrep -u jdoe sleep >/dev/null || fail "the attacker's session did not start"
saas_before=$(count "$(srv saas)/saas")
start_run stolen-credentials "${CREDS[@]}"
at_task verify-owner
assert_eq SUSPENDED "$(jq -r .jdoe.status "$(srv saas)/saas/users.json")" "jdoe at the identity provider"
assert_eq "0 0" "$(jq -r '"\(.jdoe.sessions) \(.jdoe.oauth_tokens)"' "$(srv saas)/saas/users.json")" "sessions and tokens"
assert_eq ACTIVE "$(jq -r .asmith.status "$(srv saas)/saas/users.json")" "another user"
for h in web1 fs1 db1; do
    shadow=$(on "$h" getent shadow jdoe)
    assert_eq '!*:1' "$(echo "$shadow" | cut -d: -f2,8)" "jdoe's password and expiry on $h"
    as_jdoe "$h" true 2>/dev/null && fail "jdoe can still log in to $h"
done
wait_dead "$ATTACKER" 50 || fail "the attacker's session on web1 survived"
# (what was killed may wait a while as a zombie for this machine's PID 1 to reap it)
[ -z "$(on web1 ps -u jdoe -o stat= | grep -v '^Z')" ] || fail "jdoe still runs something on web1"
trail=$(jqs "$RUN_DIR/journal.jsonl" '[.[] | select(.type == "step_end" and .step == "idp-trail")][0].result.body')
assert_contains "$trail" "203.0.113.66" "the identity provider's trail of jdoe"
assert_not_contains "$trail" "asmith"
while read -r h f; do
    assert_contains "$(cat "$f")" "Accepted publickey for jdoe" "$h's sign-ins of jdoe"
done < <(evidence_of host-logins)
assert_eq 3 "$(evidence_of host-logins | wc -l)"
sec=$(mail_to security@lab.example)
assert_contains "$sec" "Credentials of jdoe contained"
assert_contains "$sec" "TLS: yes"
assert_contains "$sec" "AUTH: $LAB_SMTP_USER"
post=$(grep -l '"service": "slack"' "$(srv saas)/saas"/[0-9]*.json | tail -n 1)
assert_eq "200 true" "$(jq -r '"\(.status) \(.posted)"' "$post" 2>/dev/null)" "the Slack stand-in's answer"
assert_contains "$(jq -r .body "$post")" "*IR-LAB-003*: credentials of jdoe contained"
answer verify-owner "reached on the HR number; the 03:12 sign-in was not theirs"
at_task new-credentials
answer new-credentials "password reset in person, new FIDO key, API tokens revoked"
finish_run
assert_eq 0 "$RC" "the run's exit: $(tail -n 5 "$RUN_OUT" | tr '\n' '|')"
assert_eq ACTIVE "$(jq -r .jdoe.status "$(srv saas)/saas/users.json")" "jdoe given back"
for h in web1 fs1 db1; do
    assert_eq '*:' "$(on "$h" getent shadow jdoe | cut -d: -f2,8)" "jdoe unlocked on $h"
done
as_jdoe fs1 true || fail "jdoe cannot log in again after the run"
# what the identity provider was asked, in order, and answered
calls=$(for f in $(ls "$(srv saas)/saas"/[0-9]*.json | sort -V | tail -n +$((saas_before + 1))); do
    jq -r 'select(.service == "idp") | "\(.method) \(.path | sub("\\?.*"; "")) \(.status)"' "$f"; done | tr '\n' ',')
assert_eq "GET /api/v1/users/jdoe 200,POST /api/v1/users/jdoe/lifecycle/suspend 200,DELETE /api/v1/users/jdoe/sessions 204,GET /api/v1/logs 200,GET /api/v1/users/jdoe 200,POST /api/v1/users/jdoe/lifecycle/unsuspend 200," "$calls"
argv=$(jqs "$RUN_DIR/journal.jsonl" '[.[] | select(.type == "exec_start" and .step == "lock-on-hosts")][0].argv | join(" ")')
assert_contains "$argv" "-i $LAB_KEY -o IdentitiesOnly=yes"
no_secret_in_run
CREDS_RUN=$RUN_ID

t stolen_credentials_undo_after_the_all_clear_changes_nothing_back
saas_before=$(count "$(srv saas)/saas")
assert_exit 0 lbh undo "$CREDS_RUN" --plain --secrets "$WORK/secrets"
assert_eq ACTIVE "$(jq -r .jdoe.status "$(srv saas)/saas/users.json")"
assert_jq "$RUN_DIR/journal.jsonl" '[.[] | select(.type == "undo_end" and .step == "suspend-account")][0].result.changed' false
new=$(ls "$(srv saas)/saas"/[0-9]*.json | sort -V | tail -n +$((saas_before + 1)) | xargs -r jq -r '"\(.method) \(.path)"' | tr '\n' ',')
assert_eq "GET /api/v1/users/jdoe," "$new" "what the undo asked the identity provider: the state, no change"
as_jdoe db1 true || fail "jdoe locked out by the undo"

# =============================================================================
# customer-data-breach: a real PostgreSQL on db1 (its own cluster), the
# application on app1; the scope is counted read-only with psql as
# postgres; the DPO's NOTIFY decision sends the notices.

inventory "$WORK/breach.ini" db=db1 app=app1 -- "ansible_ssh_private_key_file=$LAB_KEY"
cat >"$WORK/breach.json" <<JSON
{
  "incident": "IR-LAB-004",
  "inventory": "$WORK/breach.ini",
  "known_hosts": "$LAB_KNOWN_HOSTS",
  "mgmt": ["$MGMT"],
  "audit_log": "/var/log/bhlab/postgresql.service.log",
  "app_logs": "/var/log/app",
  "smtp": "smtp://mail1:587",
  "smtp_user": "$LAB_SMTP_USER",
  "ca_file": "$LAB_CA",
  "mail_from": "ir@lab.example",
  "dpo": ["dpo@lab.example"],
  "leadership": ["ceo@lab.example"],
  "regulator": ["reports@dpa.example"],
  "customers": ["affected@lists.lab.example"],
  "update_every": "1h"
}
JSON
BREACH=(--params "$WORK/breach.json" --secrets "$WORK/secrets")
pg() { on db1 setpriv --reuid=postgres --regid=postgres --init-groups psql -XAtq -v ON_ERROR_STOP=1 "$@"; }
pg -c "CREATE DATABASE customers" || fail "no database"
pg -d customers -c "CREATE TABLE customers (id serial PRIMARY KEY, name text, email text, phone text);
    INSERT INTO customers (name, email, phone) VALUES ('A', 'a@x.example', '+31 1'), ('B', 'b@x.example', NULL),
    ('C', 'c@x.example', '+31 3'), ('D', 'd@x.example', NULL), ('E', 'e@x.example', '+31 5')"
on db1 bash -c 'mkdir -p /etc/ir && cat >/etc/ir/breach-scope.sql' <<'SQL'
SELECT 'email', count(*) FROM customers WHERE email IS NOT NULL;
SELECT 'phone', count(*) FROM customers WHERE phone IS NOT NULL;
SQL
on app1 bash -c 'mkdir -p /var/log/app && printf "GET /export?all=1 200 8123456\n" >/var/log/app/access.log && printf "export by svc-report\n" >/var/log/app/app.log'
reach hooks db1 5432 || fail "the database does not answer before the incident"

t customer_data_breach_drill_touches_nothing
drill_touches_nothing customer-data-breach "${BREACH[@]}"

t customer_data_breach_runs_for_real_and_is_checked_from_outside
start_run customer-data-breach "${BREACH[@]}"
at_task rotate-db-credentials
isolated db1 || fail "the database is not fenced in"
reach app1 db1 5432 || fail "the application lost the database"
reach hooks db1 5432 && fail "another client still reaches the database"
reach db1 hooks 8080 && fail "the database can still connect out"
read -r _ f < <(evidence_of db-audit-log)
size=$(stat -c %s "$f")
[ "$size" -gt 0 ] || fail "an empty audit log"
head -c "$size" "$LAB/hosts/db1/log/bhlab/postgresql.service.log" | cmp -s - "$f" ||
    fail "the audit log evidence is not the host's file byte for byte"
assert_contains "$(cat "$f")" "INSERT INTO customers" "the audit log"
read -r _ f < <(evidence_of db-connections)
assert_contains "$(cat "$f")" "$(addr db1):22" "who was connected (the engine's ssh at least)"
read -r _ f < <(evidence_of app-logs)
same_in_tar "$f" ./access.log "$LAB/hosts/app1/log/app/access.log"
same_in_tar "$f" ./app.log "$LAB/hosts/app1/log/app/app.log"
answer rotate-db-credentials "svc-app and svc-report rotated"
at_task decide
assert_eq "$(printf 'email|5\nphone|3\n')" "$(jqs "$RUN_DIR/journal.jsonl" '[.[] | select(.type == "step_end" and .step == "scope")][0].result.stdout')" "the scope, counted"
assert_contains "$(cat "$LAB/hosts/db1/log/bhlab/postgresql.service.log")" "SET default_transaction_read_only = on" "the scope's session"
dpo=$(mail_to dpo@lab.example)
assert_contains "$dpo" "72h clock started"
assert_contains "$dpo" "email|5"
assert_contains "$dpo" "TLS: yes"
answer decide "NOTIFY: 5 customers' e-mail addresses and 3 phone numbers (DPO, legal agree)"
finish_run
assert_eq 0 "$RC" "the run's exit: $(tail -n 5 "$RUN_OUT" | tr '\n' '|')"
reg=$(mail_to reports@dpa.example)
assert_contains "$reg" "Subject: Personal data breach notification: IR-LAB-004"
assert_contains "$reg" "NOTIFY: 5 customers' e-mail addresses and 3 phone numbers"
assert_contains "$reg" "AUTH: $LAB_SMTP_USER"
assert_contains "$(mail_to affected@lists.lab.example)" "Important information about your data"
assert_contains "$(mail_to ceo@lab.example)" "[IR-LAB-004] Update 1"
isolated db1 && fail "the fence was not lifted"
reach hooks db1 5432 || fail "the database's other clients are still cut off"
no_secret_in_run
BREACH_RUN=$RUN_ID

t customer_data_breach_undo_after_the_all_clear_keeps_the_database_open
assert_exit 0 lbh undo "$BREACH_RUN" --plain --secrets "$WORK/secrets"
isolated db1 && fail "the undo fenced the database in again"
reach hooks db1 5432 || fail "the database is cut off after the undo"
assert_eq 5 "$(pg -d customers -c 'SELECT count(*) FROM customers')" "the customers table"

# =============================================================================
# booking-suspension: the booking pool (book1, book2) behind the load
# balancer stand-in on lb, service centres sc1 and sc2, mail on mail1,
# EDI on edi1 (port 5432), the status page on hooks; mail in the clear on
# port 25 without a login, as the parameters say.

inventory "$WORK/booking.ini" booking=book1,book2 service_centres=sc1,sc2 mail=mail1 edi=edi1 -- \
    "ansible_ssh_private_key_file=$LAB_KEY"
cat >"$WORK/booking.json" <<JSON
{
  "incident": "IR-LAB-005",
  "inventory": "$WORK/booking.ini",
  "known_hosts": "$LAB_KNOWN_HOSTS",
  "systemctl": "/usr/local/sbin/systemctl",
  "mgmt": ["$MGMT"],
  "edi_port": 5432,
  "centre_port": 80,
  "booking_unit": "nginx.service",
  "lb_url": "http://lb/api/v2/pools/booking",
  "health_url": "http://{name}/healthz",
  "update_every": "1h",
  "smtp": "smtp://mail1:25",
  "smtp_starttls": false,
  "smtp_auth": false,
  "mail_from": "ir@lab.example",
  "edi_partners": ["edi@partner.example"]
}
JSON
BOOK=(--params "$WORK/booking.json" --secrets "$WORK/secrets")
for h in book1 book2; do
    on "$h" bash -c 'mkdir -p /var/log/nginx /var/log/booking && echo "GET /book?from=RTM 200" >/var/log/nginx/access.log && printf "booking %s\n" "$(hostname)" >/var/log/booking/app.log'
done
# lb_get: what a customer gets from the load balancer (status, then the page)
lb_get() { on hooks curl -s -m 5 -w ' %{http_code}' http://lb/; }
assert_contains "$(lb_get)" " 200" "booking before the incident"

t booking_login_without_tls_is_refused_before_anything_runs
before=$(ls "$STATE/runs" | wc -l)
assert_exit 3 lbh run --plain --yes "$RB/booking-suspension.lua" "${BOOK[@]}" -p smtp_auth=true
assert_contains "$ERR" "smtp_auth = true with smtp_starttls = false on smtp://mail1:25 would send SMTP_PASSWORD in the clear"
assert_contains "$ERR" "booking-suspension.lua:"
assert_eq "$before" "$(ls "$STATE/runs" | wc -l)" "run folders after a refused load"

t booking_drill_touches_nothing
drill_touches_nothing booking-suspension "${BOOK[@]}"

t booking_runs_for_real_and_is_checked_from_outside
hooks_before=$(count "$(srv hooks)/hooks")
lb_before=$(count "$(srv lb)/lb")
start_run booking-suspension "${BOOK[@]}"
at_task breach-scope
page=$(lb_get)
assert_contains "$page" " 503" "booking while suspended"
assert_contains "$page" "IR-LAB-005"
assert_eq true "$(jq -r .booking.maintenance "$(srv lb)/lb/state.json")"
for h in book1 book2; do active "$h" nginx.service && fail "booking still runs on $h"; done
for h in sc1 sc2; do
    isolated "$h" || fail "$h not cut off"
    reach hooks "$h" 80 && fail "$h reachable from another host"
done
reach hooks mail1 25 || fail "mail stopped flowing"
reach hooks edi1 5432 || fail "EDI stopped"
assert_contains "$(bodies "$(srv hooks)/hooks" | tail -n +$((hooks_before + 1)))" "Email and EDI bookings continue. Next update in 1h."
edi=$(mail_to edi@partner.example)
assert_contains "$edi" "Online booking suspended, EDI continues"
assert_contains "$edi" "TLS: no" "mail on port 25 in the clear, as asked"
assert_contains "$edi" "AUTH: none"
while read -r h f; do
    same_in_tar "$f" nginx/access.log "$LAB/hosts/$h/log/nginx/access.log"
    same_in_tar "$f" booking/app.log "$LAB/hosts/$h/log/booking/app.log"
done < <(evidence_of booking-logs)
answer breach-scope "no customer data exposed: the booking database was not reached"
finish_run
assert_eq 0 "$RC" "the run's exit: $(tail -n 5 "$RUN_OUT" | tr '\n' '|')"
page=$(lb_get)
assert_contains "$page" " 200" "booking after the run"
assert_contains "$page" "<h1>book"
assert_eq false "$(jq -r .booking.maintenance "$(srv lb)/lb/state.json")"
for h in sc1 sc2; do
    isolated "$h" && fail "$h still cut off"
    reach hooks "$h" 80 || fail "$h not reachable after the run"
done
for h in book1 book2; do active "$h" nginx.service || fail "booking not started on $h"; done
assert_contains "$(bodies "$(srv hooks)/hooks" | tail -n 1)" "Online booking is available again"
puts=$(for f in $(ls "$(srv lb)/lb"/[0-9]*.json | sort -V | tail -n +$((lb_before + 1))); do jq -r 'select(.path | startswith("/api/")) | "\(.method) \(.body | fromjson | .enabled) \(.status) \(.headers.authorization)"' "$f"; done | tr '\n' ',')
assert_eq "PUT true 200 [present],PUT false 200 [present]," "$puts" "what the load balancer was asked"
no_secret_in_run
BOOK_RUN=$RUN_ID

t booking_undo_at_the_all_clear_does_not_close_booking
assert_exit 0 lbh undo "$BOOK_RUN" --plain --secrets "$WORK/secrets"
assert_contains "$(lb_get)" " 200" "booking after the undo"
for h in book1 book2; do active "$h" nginx.service || fail "the undo stopped booking on $h"; done
for h in sc1 sc2; do
    if isolated "$h"; then fail "$h cut off by the undo"; fi
done
