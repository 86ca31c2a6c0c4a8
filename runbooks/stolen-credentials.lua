-- stolen-credentials.lua: an account's credentials are in someone else's
-- hands (phished password, leaked token, stolen laptop). Lock the account
-- at the identity provider, end its sessions, stop what it runs on the
-- fleet and lock it there too; keep the sign-in trail; give the account
-- back only after its owner was reached on a known number and has new
-- credentials.
--
-- The identity provider is driven through its admin REST API (param
-- idp_url, token IDP_TOKEN: the paths below are those of a typical SCIM-
-- style API; adjust them to yours). Hosts over ssh from an Ansible INI
-- inventory. Secrets: IDP_TOKEN, SMTP_PASSWORD, SLACK_WEBHOOK_URL.
--
--   bulkhead plan runbooks/stolen-credentials.lua --params runbooks/examples/stolen-credentials.json

runbook {
  id = "stolen-credentials",
  title = "Stolen credentials",
  severity = "high",
  owner = "ir-team",
  description = "Suspend the account and its sessions, stop and lock it on every host, keep the "
    .. "sign-in trail, give it back after its owner is verified and re-enrolled.",
  timeout = "10m",
  params = {
    incident = { type = "string", required = true, doc = "incident reference, used in every message" },
    user = { type = "string", required = true, pattern = "[%w][%w%._%-]*",
             doc = "the account (login name at the identity provider and on the hosts)" },
    idp_url = { type = "string", default = "https://idp.example.org/api/v1", doc = "identity provider admin API base URL" },
    inventory = { type = "string", required = true, doc = "Ansible INI inventory (relative to this file or absolute)" },
    group = { type = "string", default = "linux", doc = "inventory group (or pattern) of hosts the account may log in to" },
    since = { type = "string", default = "-14d", doc = "how far back sign-in logs are kept (journalctl --since)" },
    smtp = { type = "string", default = "smtp://mx1.example.org:587", doc = "SMTP server" },
    mail_from = { type = "string", default = "ir-team@example.org", doc = "sender" },
    security = { type = "list", default = { "security@example.org" }, doc = "security team (mail)" },
    slack = { type = "boolean", default = true, doc = "also post to the incident channel (SLACK_WEBHOOK_URL)" },
    sudo = { type = "boolean", default = true, doc = "run remote commands with sudo -n" },
    known_hosts = { type = "string", doc = "known_hosts file for ssh (default: ssh's own)" },
  },
}

-- The account name goes into URLs and remote commands: its pattern above
-- keeps it a plain login name.
local hosts = inventory(param.inventory):hosts(param.group)
local api = { Authorization = "Bearer " .. secret("IDP_TOKEN"), Accept = "application/json" }
local user_url = param.idp_url .. "/users/" .. param.user
local function on(t)
  t.sudo, t.known_hosts = param.sudo, param.known_hosts
  return t
end
local function idp(method, path, expect, json)
  return http.request { method = method, url = user_url .. path, headers = api, expect = expect, json = json,
                        timeout = "30s" }
end

------------------------------------------------------------------------------
phase "contain"

step "suspend-account" {
  doc = "Suspend the account at the identity provider: no new sign-in anywhere",
  timeout = "2m", estimate = "10s", retries = 3, backoff = "5s", idempotent = true,
  approve = "Locks " .. param.user .. " out of every application",
  action = idp("POST", "/lifecycle/suspend", 200),
  undo = idp("POST", "/lifecycle/unsuspend", 200),
}

step "end-sessions" {
  doc = "End every session and revoke refresh tokens",
  timeout = "2m", estimate = "10s", retries = 3, backoff = "5s", idempotent = true,
  action = idp("DELETE", "/sessions?oauthTokens=true", 204),
  simulate = { status = 204 }, -- what the API answers, in a dry run or drill
  undo = false, -- sessions cannot come back; the owner signs in again
}

-- Lock first, then kill: killed sessions must not be able to log back in.
step "lock-on-hosts" {
  doc = "Lock the local account and expire it, so keys and cached passwords no longer work",
  each = hosts, concurrency = 32, timeout = "2m", estimate = "15s",
  approve = "Locks " .. param.user .. " on every host of " .. param.group,
  action = ssh.run(on { command = { "usermod", "--lock", "--expiredate", "1", param.user } }),
  undo = ssh.run(on { command = { "usermod", "--unlock", "--expiredate", "", param.user } }),
}

step "stop-processes" {
  doc = "Kill what the account runs on each host (nothing to kill is fine; a refused sudo is not)",
  each = hosts, concurrency = 32, timeout = "2m", estimate = "15s",
  -- pkill's 1 (no process) becomes 0 inside the sudo'd shell, so a 1 from
  -- sudo itself still fails the step
  action = ssh.run(on { script = ('pkill -KILL -u %s; s=$?; [ "$s" -le 1 ] && exit 0; exit "$s"'):format(param.user) }),
  undo = false,
}

------------------------------------------------------------------------------
phase "evidence"

step "idp-trail" {
  doc = "The identity provider's sign-in and change log for the account (the response is kept with its SHA-256)",
  timeout = "5m", estimate = "30s", retries = 2, backoff = "10s",
  action = http.request { url = param.idp_url .. "/logs?filter=actor.alternateId+eq+%22" .. param.user .. "%22",
                          headers = api, timeout = "2m" },
}

step "host-logins" {
  doc = "Logins of the account on each host, and sshd's log",
  each = hosts, concurrency = 16, timeout = "10m", estimate = "1m",
  action = evidence.command(on { name = "logins.txt", command = { "sh", "-c",
    'last -F -w "$1"; echo; journalctl --no-pager -o short-iso --since "$2" _COMM=sshd | { grep -F -- "$1" || true; }',
    "-", param.user, param.since } }),
}

------------------------------------------------------------------------------
phase "communicate"

step "tell-security" {
  doc = "Tell the security team what was done",
  timeout = "2m", estimate = "1m", retries = 2, backoff = "30s",
  action = notify.email { smtp = param.smtp, from = param.mail_from, to = param.security,
    subject = "[{{incident}}] Credentials of " .. param.user .. " contained",
    text = "Account " .. param.user .. " is suspended, its sessions ended, it is locked on the hosts of "
      .. param.group .. ". Evidence is in run {{run_id}}. Steps: {{summary}}.",
    username = param.mail_from, password = secret("SMTP_PASSWORD"), starttls = true },
}

step "channel" {
  doc = "Post to the incident channel",
  when = param.slack, timeout = "1m", estimate = "5s", on_failure = "continue",
  action = notify.slack { url = secret("SLACK_WEBHOOK_URL"),
                          text = "*{{incident}}*: credentials of " .. param.user .. " contained ({{summary}})" },
}

------------------------------------------------------------------------------
phase "recover"

step "verify-owner" {
  doc = "Reach the owner on a number from the HR record, never one from a message",
  manual = { "Call " .. param.user .. " on the number in the HR record (not one from an email or chat)",
             "Ask what they did and did not do in the sign-in trail (idp-trail, host-logins)",
             "Mark failed if the owner cannot be reached or does not recognise the activity" },
  timeout = "24h", estimate = "30m",
}

step "new-credentials" {
  doc = "New password and a new second factor, in person or by video with ID",
  manual = { "Reset the password with the owner present (in person, or video with ID)",
             "Remove every MFA factor and enrol a new one",
             "Revoke the owner's API tokens and SSH keys; they issue new ones" },
  timeout = "24h", estimate = "45m",
}

step "unlock-on-hosts" {
  doc = "Unlock the local account on each host",
  each = hosts, concurrency = 32, timeout = "2m", estimate = "15s",
  action = ssh.run(on { command = { "usermod", "--unlock", "--expiredate", "", param.user } }),
  undo = false,
}

step "resume-account" {
  doc = "Give the account back at the identity provider",
  timeout = "2m", estimate = "10s", retries = 3, backoff = "5s", idempotent = true,
  approve = "Gives " .. param.user .. " access again",
  action = idp("POST", "/lifecycle/unsuspend", 200),
  undo = false,
}
