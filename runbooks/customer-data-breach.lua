-- customer-data-breach.lua: customer data may have left the building.
-- Keep the trail first (database audit log, connections, application
-- logs), then fence the database in so that only the application servers
-- and the management network reach it and it reaches nothing; measure how
-- much and what kind of data is involved; let the DPO and legal decide,
-- within the regulator's 72 hours, whether to notify the regulator and the
-- customers, and send those notices only on their recorded word (the
-- "decide" task: who marked it done, and when, is in the journal).
--
-- Hosts over ssh (key, known_hosts, options, sudo: the ssh_* parameters
-- and the inventory) from an Ansible INI inventory. Secrets: SMTP_PASSWORD
-- unless smtp_auth = false. The scope query is a file of your own on the
-- database host (param scope_sql), run read-only with psql as the
-- database's own account (db_user, through sudo -n -u).
--
--   bulkhead plan runbooks/customer-data-breach.lua --params runbooks/examples/customer-data-breach.json

runbook {
  id = "customer-data-breach",
  title = "Suspected customer-data breach",
  severity = "critical",
  owner = "ir-team",
  description = "Preserve the trail, fence the database in, measure the scope, and notify the "
    .. "regulator and customers when the DPO's recorded decision says so.",
  timeout = "15m",
  params = {
    incident = { type = "string", required = true, doc = "incident reference, used in every message" },
    inventory = { type = "string", required = true, doc = "Ansible INI inventory (relative to this file or absolute)" },
    db_group = { type = "string", default = "db", doc = "inventory group of the customer database hosts" },
    app_group = { type = "string", default = "app", doc = "inventory group of the application servers (still allowed to the database)" },
    mgmt = { type = "list", default = { "10.20.0.0/24" }, doc = "management networks (CIDR)" },
    db_port = { type = "number", default = 5432, doc = "the database's port" },
    audit_log = { type = "string", default = "/var/log/postgresql/audit.log", doc = "the database's audit log" },
    app_logs = { type = "string", default = "/var/log/app", doc = "application log folder on the app servers" },
    scope_sql = { type = "string", default = "/etc/ir/breach-scope.sql",
                  doc = "SQL file on the database host that counts the records involved, by kind (read-only)" },
    database = { type = "string", default = "customers", doc = "database name for psql" },
    db_user = { type = "string", default = "postgres", doc = "the system user psql runs as (sudo -u)" },
    psql = { type = "string", default = "psql", doc = "the psql program on the database host" },
    smtp = { type = "string", default = "smtp://mx1.example.org:587",
             doc = "SMTP server: smtp://host:port (STARTTLS unless smtp_starttls = false) or smtps://host:port (TLS from the start)" },
    smtp_starttls = { type = "boolean", default = true,
                      doc = "on smtp://, require STARTTLS (the mail fails if the server does not offer it); false sends "
                        .. "in the clear, and is refused with smtp_auth: a password never goes out without TLS" },
    smtp_auth = { type = "boolean", default = true,
                  doc = "log in as smtp_user with the secret SMTP_PASSWORD, over TLS only; false sends without a "
                    .. "login (SMTP_PASSWORD is then not read)" },
    smtp_user = { type = "string", doc = "SMTP login (default: mail_from)" },
    ca_file = { type = "string", doc = "CA bundle (PEM) of the site's own CA, for the SMTP server's certificate (default: the system's)" },
    mail_from = { type = "string", default = "ir-team@example.org", doc = "sender" },
    dpo = { type = "list", default = { "dpo@example.org", "legal@example.org" }, doc = "data protection officer and legal (mail)" },
    leadership = { type = "list", default = { "ceo@example.org", "ciso@example.org" }, doc = "who gets the regular updates" },
    regulator = { type = "list", default = { "breach-reports@dpa.example" }, doc = "the supervisory authority's address" },
    customers = { type = "list", default = { "customers-affected@lists.example.org" }, doc = "mailing list of the customers involved" },
    update_every = { type = "string", default = "2h", doc = "how often leadership gets an update" },
    known_hosts = { type = "string", doc = "known_hosts file for ssh (default: ssh's own)" },
    ssh_key = { type = "string", doc = "private key for ssh (default: the inventory's ansible_ssh_private_key_file, else ssh's)" },
    ssh_options = { type = "list", default = {}, doc = "more ssh options, \"Name=value\" (e.g. ProxyJump=bastion)" },
    sudo = { type = "boolean", default = true, doc = "run remote commands with sudo -n" },
  },
}

local inv = inventory(param.inventory)
local db = inv:hosts(param.db_group)
local app = inv:hosts(param.app_group)
local allowed = {}
for _, cidr in ipairs(param.mgmt) do allowed[#allowed + 1] = cidr end
for _, h in ipairs(app) do allowed[#allowed + 1] = h.host end

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
local function mail(to, subject, text)
  return notify.email { smtp = param.smtp, from = param.mail_from, to = to, subject = subject, text = text,
                        username = login.user, password = login.password, starttls = param.smtp_starttls,
                        ca_file = param.ca_file }
end

-- The DPO's decision, from the done note of "decide": NOTIFY or NO-NOTIFY.
local function notify_decided(ctx)
  local d = ctx.results["decide"]
  return type(d) == "table" and type(d.note) == "string" and d.note:match("^%s*NOTIFY") ~= nil
end

------------------------------------------------------------------------------
phase "preserve"

step "db-audit-log" {
  doc = "The database's audit log, before anything rotates it",
  each = db, timeout = "30m", estimate = "5m",
  action = evidence.file(on { path = param.audit_log }),
}

step "db-connections" {
  doc = "Who is connected to the database right now",
  each = db, timeout = "5m", estimate = "30s",
  action = evidence.command(on { name = "connections.txt", command = { "ss", "-tnp" } }),
}

step "app-logs" {
  doc = "The application servers' logs",
  each = app, concurrency = 8, timeout = "30m", estimate = "5m",
  action = evidence.command(on { name = "app-logs.tar", command = { "tar", "-C", param.app_logs, "-cf", "-", "." } }),
}

------------------------------------------------------------------------------
phase "contain"

step "fence-db" {
  doc = "Only the application servers and management reach the database; it reaches nothing",
  each = db, timeout = "2m", estimate = "1m",
  approve = "Cuts every other client (reports, analysts, backups) off the customer database",
  action = firewall.isolate(on { allow = {}, allow_from = allowed }),
}

step "app-still-works" {
  doc = "The application servers still reach the database",
  each = app, timeout = "2m", estimate = "10s", undo = false,
  action = ssh.run(on { command = { "timeout", "10", "bash", "-c", 'exec 3<>"/dev/tcp/$1/$2"', "-",
                                    db[1] and db[1].host or "db",
                                    tostring(math.floor(param.db_port)) } }),
}

step "rotate-db-credentials" {
  doc = "New credentials for every database account the application or people use",
  manual = { "Rotate the application's database password and deploy it",
             "Rotate every personal and service account that can read customer tables",
             "Note in the done note which accounts were rotated" },
  timeout = "8h", estimate = "2h", undo = false,
}

------------------------------------------------------------------------------
phase "assess"

step "scope" {
  doc = "How many records, of which kinds, are involved (read-only query)",
  each = db, timeout = "30m", estimate = "10m",
  -- as the database's own user, in read-only transactions: the SET runs
  -- first in the same session, so a mistake in the file (an UPDATE, a
  -- DELETE) fails instead of changing the evidence; -q keeps psql's
  -- command tags out of the result
  action = ssh.run(on { sudo_user = param.db_user, command = { param.psql, "-XAqt", "-v", "ON_ERROR_STOP=1",
    "-d", param.database, "-c", "SET default_transaction_read_only = on", "-f", param.scope_sql } }),
}

step "tell-dpo" {
  doc = "The DPO and legal hear at once: the 72 hours run from now",
  timeout = "2m", estimate = "1m", retries = 3, backoff = "30s",
  action = mail(param.dpo, "[{{incident}}] Suspected customer-data breach: 72h clock started {{now}}",
    "Incident {{incident}} (run {{run_id}}). Evidence is preserved, the database is fenced in.\n\n"
      .. "Scope so far: {{results.scope}}\n\nPlease decide whether this must be notified."),
}

step "decide" {
  doc = "The DPO decides: notify the regulator and the customers or not",
  after = { "scope", "tell-dpo" },
  manual = { "Read the scope result and the evidence with legal",
             "Decide under GDPR art. 33/34 whether the breach must be notified",
             "Mark done with a note starting NOTIFY (notices are sent, after approval) or NO-NOTIFY (with the reason)" },
  timeout = "48h", estimate = "6h",
}

step "updates" {
  doc = "Regular updates to leadership while the run lives",
  every = param.update_every, timeout = "2m", estimate = "5s", on_failure = "continue",
  action = mail(param.leadership, "[{{incident}}] Update {{rep}}", "Where the response stands: {{summary}}."),
}

------------------------------------------------------------------------------
phase "notify"

step "notify-regulator" {
  doc = "Report to the supervisory authority, if the DPO decided so",
  -- the DPO's decision is the approval: nobody is asked again (an approval
  -- is asked before `when` is looked at, so it would be asked even for
  -- NO-NOTIFY)
  when = notify_decided, timeout = "5m", estimate = "1m", retries = 3, backoff = "1m",
  action = mail(param.regulator, "Personal data breach notification: {{incident}}",
    "Notification under Art. 33 GDPR.\nReference: {{incident}}\nNature and approximate scope: "
      .. "{{results.scope}}\nDecision and contact: {{results.decide.note}} ({{results.decide.by}})"),
}

step "notify-customers" {
  doc = "Tell the customers involved, if the DPO decided so",
  when = notify_decided, after = "notify-regulator", timeout = "5m", estimate = "2m",
  action = mail(param.customers, "Important information about your data",
    "We have found that some of your personal data may have been accessed without authorisation. "
      .. "We have contained the incident and informed the authorities. Reference {{incident}}."),
}

------------------------------------------------------------------------------
phase "recover"

step "lift-fence" {
  doc = "Open the database to its usual clients again",
  after = "rotate-db-credentials",
  each = db, timeout = "2m", estimate = "1m",
  approve = "Reopens the customer database to every client",
  action = firewall.release(on {}),
  undo = false,
}
