-- stolen-credentials.lua: an account's credentials are in someone else's
-- hands (phished password, leaked token, stolen laptop). Lock the account
-- at the identity provider, end its sessions, stop what it runs on the
-- fleet and lock it there too; keep the sign-in trail; give the account
-- back only after its owner was reached on a known number and has new
-- credentials.
--
-- The identity provider is driven through its admin REST API (param
-- idp_url, token IDP_TOKEN) on the paths and answers of Okta's: GET
-- users/U, POST users/U/lifecycle/suspend and unsuspend (refused with
-- 400 for a user not in the state they need: the runbook reads the state
-- first, so that running a step again does no harm), DELETE
-- users/U/sessions, GET logs?filter=... Hosts over ssh from an Ansible INI
-- inventory. Secrets: IDP_TOKEN; SMTP_PASSWORD unless smtp_auth = false;
-- SLACK_WEBHOOK_URL only when slack = true.
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
    idp_auth = { type = "string", default = "Bearer", pattern = "[%a]+",
                 doc = "the Authorization scheme of IDP_TOKEN: Bearer (an OAuth access token) or SSWS (an Okta API token)" },
    inventory = { type = "string", required = true, doc = "Ansible INI inventory (relative to this file or absolute)" },
    group = { type = "string", default = "linux", doc = "inventory group (or pattern) of hosts the account may log in to" },
    since = { type = "string", default = "-14d", doc = "how far back sign-in logs are kept (journalctl --since)" },
    login_log = { type = "string", default = "journal",
                  doc = "where the hosts' sshd logs sign-ins: \"journal\" (journalctl, from since) or a log file" },
    smtp = { type = "string", default = "smtp://mx1.example.org:587",
             doc = "SMTP server: smtp://host:port (STARTTLS unless smtp_starttls = false) or smtps://host:port (TLS from the start)" },
    smtp_starttls = { type = "boolean", default = true,
                      doc = "on smtp://, require STARTTLS (the mail fails if the server does not offer it); false sends "
                        .. "in the clear, and is refused with smtp_auth: a password never goes out without TLS" },
    smtp_auth = { type = "boolean", default = true,
                  doc = "log in as smtp_user with the secret SMTP_PASSWORD, over TLS only; false sends without a "
                    .. "login (SMTP_PASSWORD is then not read)" },
    smtp_user = { type = "string", doc = "SMTP login (default: mail_from)" },
    ca_file = { type = "string", doc = "CA bundle (PEM) of the site's own CA, for the identity provider's, the SMTP "
                  .. "server's and the Slack webhook's certificates (default: the system's)" },
    mail_from = { type = "string", default = "ir-team@example.org", doc = "sender" },
    security = { type = "list", default = { "security@example.org" }, doc = "security team (mail)" },
    slack = { type = "boolean", default = true,
              doc = "also post to the incident channel (SLACK_WEBHOOK_URL, read only when true)" },
    known_hosts = { type = "string", doc = "known_hosts file for ssh (default: ssh's own)" },
    ssh_key = { type = "string", doc = "private key for ssh (default: the inventory's ansible_ssh_private_key_file, else ssh's)" },
    ssh_options = { type = "list", default = {}, doc = "more ssh options, \"Name=value\" (e.g. ProxyJump=bastion)" },
    sudo = { type = "boolean", default = true, doc = "run remote commands with sudo -n" },
  },
}

-- The account name goes into URLs and remote commands: its pattern above
-- keeps it a plain login name.
local hosts = inventory(param.inventory):hosts(param.group)
local api = { Authorization = param.idp_auth .. " " .. secret("IDP_TOKEN"), Accept = "application/json" }
local user_url = param.idp_url .. "/users/" .. param.user

-- How the hosts are reached, in one place for every remote action.
local ssh_opts = { known_hosts = param.known_hosts, key = param.ssh_key, options = param.ssh_options,
                   sudo = param.sudo }
local function on(t) -- the ssh options, plus t
  local out = {}
  for k, v in pairs(ssh_opts) do out[k] = v end
  for k, v in pairs(t) do out[k] = v end
  return out
end

-- Mail. A password goes out over TLS only: smtps://, or smtp:// with
-- STARTTLS required. The engine refuses a login without TLS when it sends;
-- this runbook refuses the parameters that would ask for one, at load,
-- before anything runs. Without a login SMTP_PASSWORD is not read.
if param.smtp_auth and not (param.smtp:match("^smtps://") or param.smtp_starttls) then
  error(("smtp_auth = true with smtp_starttls = false on %s would send SMTP_PASSWORD in the clear: "
    .. "use smtps://, smtp_starttls = true, or smtp_auth = false"):format(param.smtp))
end
local login = param.smtp_auth and { user = param.smtp_user or param.mail_from, password = secret("SMTP_PASSWORD") } or {}

-- One call to the identity provider; any other status than expect fails
-- the step with what the API said (Okta's errorCode and errorSummary).
local function idp_call(ctx, method, path, expect)
  local url = user_url .. path
  local r = ctx.http { method = method, url = url, headers = api, timeout = "30s", check = false,
                       ca_file = param.ca_file }
  if r.status == expect then return r end
  local j, why = type(r.json) == "table" and r.json or {}, r.error or ""
  if j.errorCode then
    why = j.errorCode .. " " .. tostring(j.errorSummary)
    for _, c in ipairs(type(j.errorCauses) == "table" and j.errorCauses or {}) do
      why = why .. "; " .. tostring(c.errorSummary)
    end
  end
  error(("%s %s answered %s, expected %d: %s"):format(method, url, tostring(r.status), expect, why), 0)
end
-- Put the account in state `want` (ACTIVE, SUSPENDED) with lifecycle/verb,
-- unless it is there already: the API refuses to suspend a suspended
-- account, so this is what makes a second run of the step harmless.
local function set_status(want, verb)
  return function(ctx)
    local now = idp_call(ctx, "GET", "", 200).json
    local was = type(now) == "table" and now.status or nil
    if was == want then return { user = param.user, status = want, changed = false } end
    idp_call(ctx, "POST", "/lifecycle/" .. verb, 200)
    return { user = param.user, status = want, was = was, changed = true }
  end
end

------------------------------------------------------------------------------
phase "contain"

step "suspend-account" {
  doc = "Suspend the account at the identity provider: no new sign-in anywhere",
  timeout = "2m", estimate = "10s", retries = 3, backoff = "5s", idempotent = true,
  approve = "Locks " .. param.user .. " out of every application",
  run = set_status("SUSPENDED", "suspend"),
  undo = set_status("ACTIVE", "unsuspend"),
  simulate = { body = '{"status": "ACTIVE"}' }, -- what GET users/U answers, in a dry run or drill
}

step "end-sessions" {
  doc = "End every session and revoke refresh tokens",
  timeout = "2m", estimate = "10s", retries = 3, backoff = "5s", idempotent = true,
  action = http.request { method = "DELETE", url = user_url .. "/sessions?oauthTokens=true", headers = api,
                          expect = 204, timeout = "30s", ca_file = param.ca_file },
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
                          headers = api, timeout = "2m", ca_file = param.ca_file },
}

local logins = param.login_log == "journal"
  and 'journalctl --no-pager -o short-iso --since "$2" _COMM=sshd | { grep -F -- "$1" || true; }'
  or '{ grep -F -- "$1" "$3" || [ "$?" = 1 ]; }'
step "host-logins" {
  doc = "Logins of the account on each host, and sshd's log (" .. param.login_log .. ")",
  each = hosts, concurrency = 16, timeout = "10m", estimate = "1m",
  action = evidence.command(on { name = "logins.txt", command = { "sh", "-c",
    'last -F -w "$1"; echo; ' .. logins, "-", param.user, param.since, param.login_log } }),
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
    username = login.user, password = login.password, starttls = param.smtp_starttls, ca_file = param.ca_file },
}

-- Only when the site uses the channel: its webhook is not read otherwise.
if param.slack then
  step "channel" {
    doc = "Post to the incident channel",
    timeout = "1m", estimate = "5s", on_failure = "continue",
    action = notify.slack { url = secret("SLACK_WEBHOOK_URL"), ca_file = param.ca_file,
                            text = "*{{incident}}*: credentials of " .. param.user .. " contained ({{summary}})" },
  }
end

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
  run = set_status("ACTIVE", "unsuspend"),
  simulate = { body = '{"status": "SUSPENDED"}' },
  undo = false,
}
