-- web-tier-compromise.lua: the public web tier was broken into (the
-- reference incident, on real hosts). Take the web hosts off the network
-- but keep mail and the meeting platform running, bring in the computing-
-- services provider and outside experts, keep the evidence before anything
-- is rebuilt, then bring the important services back one at a time, each
-- only once its health check passes, and lift the isolation last.
--
-- Reaches hosts over ssh (keys, known_hosts: see plugins/ssh.lua) listed in
-- an Ansible INI inventory. Webhook URLs and the SMTP password are secrets:
-- SLACK_WEBHOOK_URL, STATUS_WEBHOOK_URL, SMTP_PASSWORD (--secrets FILE).
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
    meet_group = { type = "string", default = "meet", doc = "inventory group of the meeting platform (stays up)" },
    mgmt = { type = "list", default = { "10.20.0.0/24" }, doc = "management networks still allowed into isolated hosts (CIDR)" },
    web_unit = { type = "string", default = "nginx.service", doc = "the web server's systemd unit" },
    priority = { type = "list", default = { "records", "archive", "publications" },
                 doc = "inventory groups restored first, in this order, each only once healthy" },
    unit_of = { type = "map", default = { records = "records-api.service", archive = "archive.service",
                                          publications = "publications.service" },
                doc = "systemd unit of each priority group" },
    health_path = { type = "string", default = "/healthz", doc = "path every priority service answers on when healthy" },
    smtp = { type = "string", default = "smtp://mx1.example.org:587", doc = "SMTP server for mail (smtps:// or STARTTLS)" },
    mail_from = { type = "string", default = "ir-team@example.org", doc = "sender of the runbook's mail" },
    partners = { type = "list", default = { "soc@provider.example", "oncall@experts.example" },
                 doc = "computing-services provider and outside experts (mail)" },
    staff = { type = "list", default = { "all-staff@example.org" }, doc = "staff mailing list" },
    slack = { type = "boolean", default = true, doc = "also post to the incident channel (SLACK_WEBHOOK_URL)" },
    update_every = { type = "string", default = "30m", doc = "how often partners get a status update" },
    known_hosts = { type = "string", doc = "known_hosts file for ssh (default: ssh's own)" },
    sudo = { type = "boolean", default = true, doc = "run remote commands with sudo -n (the inventory's user is not root)" },
  },
}

local inv = inventory(param.inventory)
local web = inv:hosts(param.web_group)
local mail_hosts = inv:hosts(param.keep_group)
local meet_hosts = inv:hosts(param.meet_group)
local ssh_opts = { known_hosts = param.known_hosts, sudo = param.sudo }
local function with(t) -- the ssh options, plus t
  local out = {}
  for k, v in pairs(ssh_opts) do out[k] = v end
  for k, v in pairs(t) do out[k] = v end
  return out
end
local function mail(subject, text, to)
  return notify.email { smtp = param.smtp, from = param.mail_from, to = to, subject = subject, text = text,
                        username = param.mail_from, password = secret("SMTP_PASSWORD"), starttls = true }
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
  -- undo (inferred): firewall.release, at the all-clear with
  -- `bulkhead undo RUN --step isolate-web`
}

step "stop-web" {
  doc = "Stop the web server on each isolated host",
  each = web, concurrency = 16, timeout = "2m", estimate = "30s",
  approve = "Stops the web server on every public web host",
  action = service.stop(with { unit = param.web_unit }),
}

parallel {
  step "mail-still-up" {
    doc = "Mail must still be accepted (it was never to be touched)",
    each = mail_hosts, timeout = "3m", estimate = "10s", undo = false,
    action = tcp.check { port = 25, timeout = "5s" },
  },
  step "meetings-still-up" {
    doc = "The meeting platform must still answer",
    each = meet_hosts, timeout = "3m", estimate = "10s", undo = false,
    action = tcp.check { port = 443, timeout = "5s" },
  },
}

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

step "channel" {
  doc = "Post to the incident channel",
  when = param.slack, timeout = "1m", estimate = "5s", on_failure = "continue",
  action = notify.slack { url = secret("SLACK_WEBHOOK_URL"),
                          text = ":rotating_light: *{{incident}}* web tier isolated ({{summary}})" },
}

step "status-updates" {
  doc = "Regular updates to partners for as long as the run lives",
  every = param.update_every, timeout = "1m", estimate = "5s", on_failure = "continue",
  action = notify.webhook { url = secret("STATUS_WEBHOOK_URL"),
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
  local unit = param.unit_of[group] or (group .. ".service")
  step("restore-" .. group) {
    doc = ("Priority %d: start %s on the %s hosts; healthy when %s answers 200"):format(i, unit, group, param.health_path),
    each = hosts, timeout = "15m", estimate = "10m", undo = false,
    action = service.start(with { unit = unit }),
    verify = function(ctx, _, host) -- by name: the certificate is for the name
      local r = ctx.http { url = "https://" .. host.name .. param.health_path, timeout = "10s", check = false }
      return r.status == 200, ("%s answered %s"):format(host.name, tostring(r.status or r.error))
    end,
    verify_timeout = "5m", verify_interval = "10s",
  }
end

step "reconnect-web" {
  doc = "Lift the isolation of the rebuilt web hosts, one at a time, each checked from outside",
  each = web, concurrency = 1, timeout = "5m", estimate = "2m",
  approve = "Puts the rebuilt public web tier back online",
  action = firewall.release(with {}),
  verify = tcp.check { port = 443, timeout = "5s" }, verify_timeout = "2m",
  undo = false, -- isolating again is a new decision, not an undo: run isolate-web again
}

step "all-clear" {
  doc = "Tell partners and staff the web tier is back",
  timeout = "2m", estimate = "1m", on_failure = "continue",
  action = mail("[{{incident}}] Web services restored",
    "The public web tier is back online, rebuilt and checked. Steps: {{summary}}.", param.partners),
}
