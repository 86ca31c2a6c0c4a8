-- web-tier-compromise.lua: the public web tier was broken into (the
-- reference incident, on real hosts). Take the web hosts off the network
-- but keep mail and the meeting platform running, bring in the computing-
-- services provider and outside experts, keep the evidence before anything
-- is rebuilt, then bring the important services back one at a time, each
-- only once its health check passes, and lift the isolation last.
--
-- Reaches hosts over ssh (key, known_hosts, options, sudo: the ssh_*
-- parameters and the inventory) listed in an Ansible INI inventory. Every
-- site-specific name is a parameter: groups, units, ports, health checks,
-- the SMTP server and how it is reached. Secrets: STATUS_WEBHOOK_URL;
-- SMTP_PASSWORD unless smtp_auth = false; SLACK_WEBHOOK_URL only when
-- slack = true (--secrets FILE).
--
--   bulkhead plan runbooks/web-tier-compromise.lua --params runbooks/examples/web-tier-compromise.json
--   bulkhead drill runbooks/web-tier-compromise.lua --params runbooks/examples/web-tier-compromise.json --chaos 0.2
--   bulkhead run runbooks/web-tier-compromise.lua -p inventory=/etc/ir/hosts.ini -p incident=IR-2026-041 ...

runbook {
  id = "web-tier-compromise",
  title = "Public web tier compromised",
  severity = "critical",
  owner = "ir-team",
  description = "Isolate the web tier (mail and meetings stay up), tell partners and staff, "
    .. "collect evidence, rebuild, restore priority services one at a time behind health checks.",
  timeout = "15m",
  params = {
    incident = { type = "string", required = true, doc = "incident reference, used in every message" },
    inventory = { type = "string", required = true, doc = "Ansible INI inventory (relative to this file or absolute)" },
    web_group = { type = "string", default = "web", doc = "inventory group of the compromised public web hosts" },
    keep_group = { type = "string", default = "mail", doc = "inventory group of the mail servers (must keep accepting mail)" },
    mail_port = { type = "number", default = 25, doc = "the port the mail servers accept mail on (checked, never touched)" },
    meet_group = { type = "string", default = "meet",
                   doc = "inventory group of the meeting platform (stays up, checked); a site without one leaves "
                     .. "the group out of the inventory or gives \"\", and the check is not declared" },
    meet_port = { type = "number", default = 443, doc = "the port the meeting platform answers on" },
    mgmt = { type = "list", default = { "10.20.0.0/24" }, doc = "management networks still allowed into isolated hosts (CIDR): the engine's among them" },
    web_unit = { type = "string", default = "nginx.service", doc = "the web server's systemd unit" },
    web_port = { type = "number", default = 443, doc = "the port a reconnected web host must answer on" },
    priority = { type = "list", default = { "records", "archive", "publications" },
                 doc = "inventory groups restored first, in this order, each only once healthy" },
    unit_of = { type = "map", default = { records = "records-api.service", archive = "archive.service",
                                          publications = "publications.service" },
                doc = "systemd unit of each priority group (default: GROUP.service)" },
    health_of = { type = "map", default = {},
                  doc = "the health check of each priority group: a URL that must answer 200 ({name}: the host's "
                    .. "inventory name, {addr}: its address), or a TCP port that must open; default: health_url" },
    health_url = { type = "string", default = "https://{name}/healthz",
                   doc = "the health check of a priority group health_of does not name ({name}, {addr} as there)" },
    health_timeout = { type = "string", default = "5m",
                       doc = "how long a restored service may take to pass its health check; then the run stops there" },
    smtp = { type = "string", default = "smtp://mx1.example.org:587",
             doc = "SMTP server: smtp://host:port (STARTTLS unless smtp_starttls = false) or smtps://host:port (TLS from the start)" },
    smtp_starttls = { type = "boolean", default = true,
                      doc = "on smtp://, require STARTTLS (the mail fails if the server does not offer it); false sends "
                        .. "in the clear, and is refused with smtp_auth: a password never goes out without TLS" },
    smtp_auth = { type = "boolean", default = true,
                  doc = "log in as smtp_user with the secret SMTP_PASSWORD, over TLS only; false sends without a "
                    .. "login (SMTP_PASSWORD is then not read)" },
    smtp_user = { type = "string", doc = "SMTP login (default: mail_from)" },
    ca_file = { type = "string", doc = "CA bundle (PEM) of the site's own CA, for the SMTP server's certificate and the "
                  .. "HTTPS health checks (default: the system's)" },
    mail_from = { type = "string", default = "ir-team@example.org", doc = "sender of the runbook's mail" },
    partners = { type = "list", default = { "soc@provider.example", "oncall@experts.example" },
                 doc = "computing-services provider and outside experts (mail)" },
    staff = { type = "list", default = { "all-staff@example.org" }, doc = "staff mailing list" },
    slack = { type = "boolean", default = true,
              doc = "also post to the incident channel (SLACK_WEBHOOK_URL, read only when true)" },
    update_every = { type = "string", default = "30m", doc = "how often partners get a status update (STATUS_WEBHOOK_URL)" },
    known_hosts = { type = "string", doc = "known_hosts file for ssh (default: ssh's own)" },
    ssh_key = { type = "string", doc = "private key for ssh (default: the inventory's ansible_ssh_private_key_file, else ssh's)" },
    ssh_options = { type = "list", default = {}, doc = "more ssh options, \"Name=value\" (e.g. ProxyJump=bastion)" },
    sudo = { type = "boolean", default = true, doc = "run remote commands with sudo -n (the inventory's user is not root)" },
    systemctl = { type = "string", default = "systemctl", doc = "the systemctl program on the hosts" },
  },
}

local inv = inventory(param.inventory)
local web = inv:hosts(param.web_group)
local mail_hosts = inv:hosts(param.keep_group)
local meet_hosts = (param.meet_group ~= "" and inv.groups[param.meet_group]) and inv:hosts(param.meet_group) or {}

-- How hosts are reached, in one place for every remote action.
local ssh_opts = { known_hosts = param.known_hosts, key = param.ssh_key, options = param.ssh_options,
                   sudo = param.sudo }
local function with(t) -- the ssh options, plus t
  local out = {}
  for k, v in pairs(ssh_opts) do out[k] = v end
  for k, v in pairs(t) do out[k] = v end
  return out
end
local function unit(name) return with { unit = name, systemctl = param.systemctl } end

-- Mail. A password goes out over TLS only: smtps://, or smtp:// with
-- STARTTLS required. The engine refuses a login without TLS when it sends;
-- this runbook refuses the parameters that would ask for one, at load,
-- before anything runs. Without a login SMTP_PASSWORD is not read.
if param.smtp_auth and not (param.smtp:match("^smtps://") or param.smtp_starttls) then
  error(("smtp_auth = true with smtp_starttls = false on %s would send SMTP_PASSWORD in the clear: "
    .. "use smtps://, smtp_starttls = true, or smtp_auth = false"):format(param.smtp))
end
local login = param.smtp_auth and { user = param.smtp_user or param.mail_from, password = secret("SMTP_PASSWORD") } or {}
local function mail(subject, text, to)
  return notify.email { smtp = param.smtp, from = param.mail_from, to = to, subject = subject, text = text,
                        username = login.user, password = login.password, starttls = param.smtp_starttls,
                        ca_file = param.ca_file }
end

-- Health checks of the priority groups: a URL template or a port, checked
-- here so that a typo is an error now, not a gate that never passes.
local function in_priority(group)
  for _, g in ipairs(param.priority) do if g == group then return true end end
end
local function check_template(what, url)
  if type(url) ~= "string" or not url:match("^https?://") then
    error(("%s: a URL (http:// or https://) or a TCP port (1-65535), not %s"):format(what, tostring(url)))
  end
  for k in url:gmatch("{([^}]*)}") do
    if k ~= "name" and k ~= "addr" then error(("%s: unknown {%s} in %s (known: {name}, {addr})"):format(what, k, url)) end
  end
end
for group, h in pairs(param.health_of) do
  if not in_priority(group) then
    error(("health_of names %q, which is not in priority (%s)"):format(group, table.concat(param.priority, ", ")))
  end
  if type(h) ~= "number" then check_template("health_of." .. group, h)
  elseif h % 1 ~= 0 or h < 1 or h > 65535 then error(("health_of.%s: port %s is not 1-65535"):format(group, h)) end
end
check_template("health_url", param.health_url)
local function healthy(group) -- the verify of a restore step, and what it checks
  local h = param.health_of[group] or param.health_url
  if type(h) == "number" then return tcp.check { port = h, timeout = "5s" }, ("port %d opens"):format(h) end
  return function(ctx, _, host)
    local url = h:gsub("{(%a+)}", { name = host.name, addr = host.host })
    local r = ctx.http { url = url, timeout = "10s", check = false, ca_file = param.ca_file }
    return r.status == 200, ("%s answered %s"):format(url, tostring(r.status or r.error))
  end, h .. " answers 200"
end

------------------------------------------------------------------------------
phase "scope"

step "reach-web" {
  doc = "Every web host answers over ssh: what cannot be reached cannot be contained",
  each = web, concurrency = 16, timeout = "1m", estimate = "20s", retries = 1, backoff = "5s",
  action = ssh.run(with { command = { "uname", "-n" }, check = true }),
}

step "volatile-state" {
  doc = "Before isolation cuts anything: open connections and processes of each web host",
  each = web, concurrency = 16, timeout = "5m", estimate = "1m",
  action = evidence.command(with { command = { "sh", "-c", "ss -tupan; echo; ps auxww" }, name = "volatile.txt" }),
}

------------------------------------------------------------------------------
phase "contain"

step "isolate-web" {
  doc = "nftables isolation of each web host: only ssh from the management networks stays",
  each = web, concurrency = 16, timeout = "2m", estimate = "1m",
  approve = "Takes the public website and web services offline", approve_timeout = "15m",
  action = firewall.isolate(with { allow_from = param.mgmt }),
  -- undo (inferred): firewall.release. reconnect-web lifts the isolation
  -- in the run; when the run stopped before it (a failed health check),
  -- `bulkhead undo RUN --step isolate-web` lifts it at the all-clear
}

step "stop-web" {
  doc = "Stop the web server on each isolated host",
  each = web, concurrency = 16, timeout = "2m", estimate = "30s",
  approve = "Stops the web server on every public web host",
  action = service.stop(unit(param.web_unit)),
}

-- Mail, and the meeting platform when the site has one, must still answer.
local still_up = {
  step "mail-still-up" {
    doc = "Mail must still be accepted (it was never to be touched)",
    each = mail_hosts, timeout = "3m", estimate = "10s", undo = false,
    action = tcp.check { port = param.mail_port, timeout = "5s" },
  },
}
if #meet_hosts > 0 then
  still_up[2] = step "meetings-still-up" {
    doc = "The meeting platform must still answer",
    each = meet_hosts, timeout = "3m", estimate = "10s", undo = false,
    action = tcp.check { port = param.meet_port, timeout = "5s" },
  }
  parallel(still_up)
end

------------------------------------------------------------------------------
phase "communicate"

step "engage-partners" {
  doc = "Ask the computing-services provider and the outside experts in",
  timeout = "2m", estimate = "1m", retries = 2, backoff = "30s",
  action = mail("[{{incident}}] Intrusion on the public web tier: assistance requested",
    "Incident {{incident}} (run {{run_id}}).\n\nThe public web tier is isolated; mail and the "
      .. "meeting platform stay up. Please join the bridge on the meeting platform.\n\n"
      .. "Steps so far: {{summary}}.", param.partners),
}

step "tell-staff" {
  doc = "Tell staff what is down and what still works",
  timeout = "2m", estimate = "1m", retries = 2, backoff = "30s", on_failure = "continue",
  action = mail("[{{incident}}] Website down, mail and meetings work",
    "The public website and web services are offline while we investigate. Mail and "
      .. "virtual meetings work normally. Updates follow.", param.staff),
}

-- Only when the site uses the channel: its webhook is not read otherwise.
if param.slack then
  step "channel" {
    doc = "Post to the incident channel",
    timeout = "1m", estimate = "5s", on_failure = "continue",
    action = notify.slack { url = secret("SLACK_WEBHOOK_URL"), ca_file = param.ca_file,
                            text = ":rotating_light: *{{incident}}* web tier isolated ({{summary}})" },
  }
end

step "status-updates" {
  doc = "Regular updates to partners for as long as the run lives",
  every = param.update_every, timeout = "1m", estimate = "5s", on_failure = "continue",
  action = notify.webhook { url = secret("STATUS_WEBHOOK_URL"), ca_file = param.ca_file,
                            text = "{{incident}} update {{rep}}: {{summary}}" },
}

------------------------------------------------------------------------------
phase "eradicate"

step "collect-logs" {
  doc = "Web and auth logs of each compromised host into the evidence folder (SHA-256 in the journal)",
  each = web, concurrency = 8, timeout = "30m", estimate = "5m",
  action = evidence.command(with { command = { "sh", "-c",
    "cd /var/log && exec tar --ignore-failed-read -cf - nginx auth.log* syslog* 2>/dev/null" },
    name = "logs.tar" }),
}

step "rebuild" {
  doc = "Rebuild the web hosts from the golden image (outside the engine: a person does it)",
  after = "collect-logs",
  manual = { "Reimage every host of the web group from the golden image, off the public network",
             "Rotate the TLS keys and every credential present on those hosts",
             "Put the rebuilt hosts' new ssh host keys in the known_hosts the engine uses",
             "Note the image version in the done note" },
  timeout = "8h", estimate = "3h",
}

step "isolate-rebuilt" {
  doc = "Isolate the rebuilt hosts again: a fresh image comes back without the engine's table",
  each = web, concurrency = 16, timeout = "2m", estimate = "1m",
  approve = "Applies the isolation to the rebuilt web hosts",
  action = firewall.isolate(with { allow_from = param.mgmt }),
}

------------------------------------------------------------------------------
phase "recover"

-- One step per priority service, declared in order: they run one at a
-- time, and a failed health check stops the run there (abort): nothing
-- after it is restored and the containment stays. Not rollback: undoing
-- everything would release the isolated hosts too. Their undo is false:
-- `bulkhead undo` at the all-clear must not stop what was restored.
for i, group in ipairs(param.priority) do
  local hosts = inv:hosts(group)
  local unit_name = param.unit_of[group] or (group .. ".service")
  local verify, what = healthy(group)
  step("restore-" .. group) {
    doc = ("Priority %d: start %s on the %s hosts; healthy when %s"):format(i, unit_name, group, what),
    each = hosts, timeout = "15m", estimate = "10m", undo = false,
    action = service.start(unit(unit_name)),
    verify = verify, verify_timeout = param.health_timeout, verify_interval = "10s",
  }
end

step "reconnect-web" {
  doc = "Lift the isolation of the rebuilt web hosts, one at a time, each checked from outside",
  each = web, concurrency = 1, timeout = "5m", estimate = "2m",
  approve = "Puts the rebuilt public web tier back online",
  action = firewall.release(with {}),
  verify = tcp.check { port = param.web_port, timeout = "5s" }, verify_timeout = "2m",
  undo = false, -- isolating again is a new decision, not an undo: run isolate-web again
}

step "all-clear" {
  doc = "Tell partners and staff the web tier is back",
  timeout = "2m", estimate = "1m", on_failure = "continue",
  action = mail("[{{incident}}] Web services restored",
    "The public web tier is back online, rebuilt and checked. Steps: {{summary}}.", param.partners),
}
