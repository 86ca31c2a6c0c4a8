-- booking-suspension.lua: an online booking service is suspended to
-- protect customers (the shipping line of the reference incident). Put the
-- booking sites behind a maintenance page and stop them, cut the back-
-- office service centres off the network, keep email and EDI flowing (and
-- check that they do), investigate what customer data was exposed, keep
-- customers informed on a schedule, then reconnect the service centres one
-- at a time, each checked, and reopen booking last.
--
-- The load balancer is driven through its REST API (param lb_url, token
-- LB_TOKEN: PUT LB_URL/maintenance {"enabled": true|false, "reason"}).
-- Hosts over ssh (key, known_hosts, options, sudo: the ssh_* parameters
-- and the inventory) from an Ansible INI inventory; units, ports and
-- health checks are parameters. Secrets: LB_TOKEN, STATUS_WEBHOOK_URL;
-- SMTP_PASSWORD unless smtp_auth = false.
--
--   bulkhead plan runbooks/booking-suspension.lua --params runbooks/examples/booking-suspension.json

runbook {
  id = "booking-suspension",
  title = "Booking service suspended, staged reconnection",
  severity = "high",
  owner = "ir-team",
  description = "Maintenance page and booking stopped, service centres cut off while mail and EDI "
    .. "keep flowing, customer updates on a schedule, centres reconnected one by one, booking reopened.",
  timeout = "15m",
  params = {
    incident = { type = "string", required = true, doc = "incident reference, used in every message" },
    inventory = { type = "string", required = true, doc = "Ansible INI inventory (relative to this file or absolute)" },
    booking_group = { type = "string", default = "booking", doc = "inventory group of the booking web servers" },
    centres_group = { type = "string", default = "service_centres", doc = "inventory group of the back-office service centres' gateways" },
    mail_group = { type = "string", default = "mail", doc = "inventory group of the mail relays (must keep working)" },
    mail_port = { type = "number", default = 25, doc = "the port the mail relays accept mail on (checked)" },
    edi_group = { type = "string", default = "edi", doc = "inventory group of the EDI gateways (must keep working)" },
    edi_port = { type = "number", default = 4080, doc = "the EDI (AS2) port partners connect to" },
    centre_port = { type = "number", default = 443, doc = "the port a reconnected service centre must answer on" },
    mgmt = { type = "list", default = { "10.20.0.0/24" }, doc = "management networks still allowed into isolated centres (CIDR): the engine's among them" },
    booking_unit = { type = "string", default = "booking-web.service", doc = "the booking application's unit" },
    lb_url = { type = "string", default = "https://lb.example.org/api/v2/pools/booking",
               doc = "load balancer API of the booking pool (maintenance on and off)" },
    health_url = { type = "string", default = "https://{name}/healthz",
                   doc = "the URL each booking server answers 200 on when healthy ({name}: its inventory name, "
                     .. "{addr}: its address)" },
    health_timeout = { type = "string", default = "5m",
                       doc = "how long a booking server may take to answer health_url once started; then the run stops there" },
    status_text = { type = "string",
                    default = "Online booking is suspended while we deal with a security incident. "
                      .. "Email and EDI bookings continue. Next update in {{params.update_every}}.",
                    doc = "what the status page says (a template)" },
    update_every = { type = "string", default = "2h", doc = "how often customers get an update" },
    smtp = { type = "string", default = "smtp://mx1.example.org:587",
             doc = "SMTP server: smtp://host:port (STARTTLS unless smtp_starttls = false) or smtps://host:port (TLS from the start)" },
    smtp_starttls = { type = "boolean", default = true,
                      doc = "on smtp://, require STARTTLS (the mail fails if the server does not offer it); false sends "
                        .. "in the clear, and is refused with smtp_auth: a password never goes out without TLS" },
    smtp_auth = { type = "boolean", default = true,
                  doc = "log in as smtp_user with the secret SMTP_PASSWORD, over TLS only; false sends without a "
                    .. "login (SMTP_PASSWORD is then not read)" },
    smtp_user = { type = "string", doc = "SMTP login (default: mail_from)" },
    ca_file = { type = "string", doc = "CA bundle (PEM) of the site's own CA, for the load balancer's, the status "
                  .. "page's, the SMTP server's certificates and the health checks (default: the system's)" },
    mail_from = { type = "string", default = "ir-team@example.org", doc = "sender" },
    edi_partners = { type = "list", default = { "edi-ops@partner-a.example", "edi-ops@partner-b.example" },
                     doc = "EDI partners told that EDI continues" },
    known_hosts = { type = "string", doc = "known_hosts file for ssh (default: ssh's own)" },
    ssh_key = { type = "string", doc = "private key for ssh (default: the inventory's ansible_ssh_private_key_file, else ssh's)" },
    ssh_options = { type = "list", default = {}, doc = "more ssh options, \"Name=value\" (e.g. ProxyJump=bastion)" },
    sudo = { type = "boolean", default = true, doc = "run remote commands with sudo -n" },
    systemctl = { type = "string", default = "systemctl", doc = "the systemctl program on the hosts" },
  },
}

local inv = inventory(param.inventory)
local booking = inv:hosts(param.booking_group)
local centres = inv:hosts(param.centres_group)
local mail_relays = inv:hosts(param.mail_group)
local edi = inv:hosts(param.edi_group)
local lb = { Authorization = "Bearer " .. secret("LB_TOKEN") }

-- How the hosts are reached, in one place for every remote action.
local ssh_opts = { known_hosts = param.known_hosts, key = param.ssh_key, options = param.ssh_options,
                   sudo = param.sudo }
local function on(t) -- the ssh options, plus t
  local out = {}
  for k, v in pairs(ssh_opts) do out[k] = v end
  for k, v in pairs(t) do out[k] = v end
  return out
end
local function unit(name) return on { unit = name, systemctl = param.systemctl } end

-- Mail. A password goes out over TLS only: smtps://, or smtp:// with
-- STARTTLS required. The engine refuses a login without TLS when it sends;
-- this runbook refuses the parameters that would ask for one, at load,
-- before anything runs. Without a login SMTP_PASSWORD is not read.
if param.smtp_auth and not (param.smtp:match("^smtps://") or param.smtp_starttls) then
  error(("smtp_auth = true with smtp_starttls = false on %s would send SMTP_PASSWORD in the clear: "
    .. "use smtps://, smtp_starttls = true, or smtp_auth = false"):format(param.smtp))
end
local login = param.smtp_auth and { user = param.smtp_user or param.mail_from, password = secret("SMTP_PASSWORD") } or {}

-- The health check URL of a booking server, checked here: a typo is an
-- error now, not a gate that never passes.
if not param.health_url:match("^https?://") then
  error(("health_url: an http:// or https:// URL, not %s"):format(param.health_url))
end
for k in param.health_url:gmatch("{([^}]*)}") do
  if k ~= "name" and k ~= "addr" then
    error(("health_url: unknown {%s} in %s (known: {name}, {addr})"):format(k, param.health_url))
  end
end

local function maintenance(enabled)
  return http.request { method = "PUT", url = param.lb_url .. "/maintenance", headers = lb, ca_file = param.ca_file,
                        json = { enabled = enabled, reason = param.incident }, expect = 200, timeout = "30s" }
end
local function status(text)
  return notify.webhook { url = secret("STATUS_WEBHOOK_URL"), ca_file = param.ca_file,
                          body = { incident = "{{incident}}", status = text, update = "{{rep}}" } }
end

------------------------------------------------------------------------------
phase "contain"

step "maintenance-page" {
  doc = "The load balancer shows the maintenance page instead of booking",
  timeout = "2m", estimate = "30s", retries = 2, backoff = "10s", idempotent = true,
  approve = "Customers can no longer book online",
  action = maintenance(true),
  undo = maintenance(false),
}

step "stop-booking" {
  doc = "Stop the booking application behind it",
  each = booking, concurrency = 8, timeout = "2m", estimate = "30s",
  approve = "Stops the booking application",
  action = service.stop(unit(param.booking_unit)),
}

step "disconnect-centres" {
  doc = "Cut each service centre off the network (management access only)",
  each = centres, concurrency = 8, timeout = "2m", estimate = "1m",
  approve = "The service centres lose the network until reconnected one by one",
  action = firewall.isolate(on { allow = {}, allow_from = param.mgmt }),
}

parallel {
  step "mail-flows" {
    doc = "Mail still flows (SMTP answers on every relay)",
    each = mail_relays, timeout = "1m", estimate = "10s", undo = false,
    action = tcp.check { port = param.mail_port, timeout = "5s" },
  },
  step "edi-flows" {
    doc = "EDI partners can still connect",
    each = edi, timeout = "1m", estimate = "10s", undo = false,
    action = tcp.check { port = param.edi_port, timeout = "5s" },
  },
}

------------------------------------------------------------------------------
phase "communicate"

step "status-page" {
  doc = "Tell customers on the status page",
  timeout = "1m", estimate = "10s", retries = 2, backoff = "10s",
  action = status(param.status_text),
}

step "customer-updates" {
  doc = "Regular customer updates while the run lives",
  every = param.update_every, timeout = "1m", estimate = "5s", on_failure = "continue",
  action = status("Update: " .. param.status_text),
}

step "tell-edi-partners" {
  doc = "EDI partners: EDI continues as usual",
  timeout = "2m", estimate = "1m", on_failure = "continue",
  action = notify.email { smtp = param.smtp, from = param.mail_from, to = param.edi_partners,
    subject = "[{{incident}}] Online booking suspended, EDI continues",
    text = "Our online booking is suspended for security reasons. EDI messages are processed as usual.",
    username = login.user, password = login.password, starttls = param.smtp_starttls, ca_file = param.ca_file },
}

------------------------------------------------------------------------------
phase "investigate"

step "booking-logs" {
  doc = "The booking servers' application and web logs",
  each = booking, concurrency = 8, timeout = "30m", estimate = "5m",
  action = evidence.command(on { name = "logs.tar", command = { "sh", "-c",
    "tar -C /var/log -cf - nginx booking 2>/dev/null" } }),
}

step "breach-scope" {
  doc = "How much customer data, of what kind, may have been exposed",
  manual = { "From the logs and the booking database, estimate the customers and the fields involved",
             "Decide with the DPO whether customers must be told (customer-data-breach runbook)",
             "Put the figures in the done note" },
  timeout = "24h", estimate = "4h",
}

------------------------------------------------------------------------------
phase "reconnect"

-- One centre at a time: each is released, checked from the management
-- network, and only then the next; a centre that fails its check stops
-- the reconnection (the ones before it stay connected).
step "reconnect-centres" {
  doc = "Reconnect the service centres one by one, each checked",
  after = "breach-scope",
  each = centres, concurrency = 1, timeout = "30m", estimate = "10m",
  approve = "Reconnects the service centres, one at a time",
  action = firewall.release(on {}),
  verify = tcp.check { port = param.centre_port, timeout = "5s" }, verify_timeout = "5m", verify_interval = "15s",
  undo = false, -- isolating again is a new decision: run disconnect-centres again
}

step "start-booking" {
  doc = "Start the booking application on each server, checked on that server (the public URL "
    .. "still shows the maintenance page)",
  each = booking, concurrency = 1, timeout = "10m", estimate = "3m", undo = false,
  action = service.start(unit(param.booking_unit)),
  verify = function(ctx, _, host)
    local url = param.health_url:gsub("{(%a+)}", { name = host.name, addr = host.host })
    local r = ctx.http { url = url, timeout = "10s", check = false, ca_file = param.ca_file }
    return r.status == 200, ("%s answered %s"):format(url, tostring(r.status or r.error))
  end,
  verify_timeout = param.health_timeout,
}

step "reopen-booking" {
  doc = "Take the maintenance page down",
  timeout = "2m", estimate = "30s", retries = 2, backoff = "10s", idempotent = true,
  approve = "Customers can book online again",
  action = maintenance(false),
  undo = false, -- `bulkhead undo` at the all-clear must not close booking again
}

step "all-clear" {
  doc = "Tell customers booking is back",
  timeout = "1m", estimate = "10s", on_failure = "continue",
  action = status("Online booking is available again. Thank you for your patience."),
}
