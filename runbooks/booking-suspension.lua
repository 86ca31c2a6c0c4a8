-- booking-suspension.lua: an online booking service is suspended to
-- protect customers (the shipping line of the reference incident). Put the
-- booking sites behind a maintenance page and stop them, cut the back-
-- office service centres off the network, keep email and EDI flowing (and
-- check that they do), investigate what customer data was exposed, keep
-- customers informed on a schedule, then reconnect the service centres one
-- at a time, each checked, and reopen booking last.
--
-- The load balancer is driven through its REST API (param lb_url, token
-- LB_TOKEN; adjust the paths to yours). Hosts over ssh from an Ansible INI
-- inventory. Secrets: LB_TOKEN, STATUS_WEBHOOK_URL, SMTP_PASSWORD.
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
    edi_group = { type = "string", default = "edi", doc = "inventory group of the EDI gateways (must keep working)" },
    edi_port = { type = "number", default = 4080, doc = "the EDI (AS2) port partners connect to" },
    mgmt = { type = "list", default = { "10.20.0.0/24" }, doc = "management networks still allowed into isolated centres (CIDR)" },
    booking_unit = { type = "string", default = "booking-web.service", doc = "the booking application's unit" },
    lb_url = { type = "string", default = "https://lb.example.org/api/v2/pools/booking",
               doc = "load balancer API of the booking pool (maintenance on and off)" },
    health_path = { type = "string", default = "/healthz", doc = "path each booking server answers 200 on when healthy" },
    status_text = { type = "string",
                    default = "Online booking is suspended while we deal with a security incident. "
                      .. "Email and EDI bookings continue. Next update in {{params.update_every}}.",
                    doc = "what the status page says (a template)" },
    update_every = { type = "string", default = "2h", doc = "how often customers get an update" },
    smtp = { type = "string", default = "smtp://mx1.example.org:587", doc = "SMTP server" },
    mail_from = { type = "string", default = "ir-team@example.org", doc = "sender" },
    edi_partners = { type = "list", default = { "edi-ops@partner-a.example", "edi-ops@partner-b.example" },
                     doc = "EDI partners told that EDI continues" },
    sudo = { type = "boolean", default = true, doc = "run remote commands with sudo -n" },
    known_hosts = { type = "string", doc = "known_hosts file for ssh (default: ssh's own)" },
  },
}

local inv = inventory(param.inventory)
local booking = inv:hosts(param.booking_group)
local centres = inv:hosts(param.centres_group)
local mail_relays = inv:hosts(param.mail_group)
local edi = inv:hosts(param.edi_group)
local lb = { Authorization = "Bearer " .. secret("LB_TOKEN") }
local function on(t)
  t.sudo, t.known_hosts = param.sudo, param.known_hosts
  return t
end
local function maintenance(enabled)
  return http.request { method = "PUT", url = param.lb_url .. "/maintenance", headers = lb,
                        json = { enabled = enabled, reason = param.incident }, expect = 200, timeout = "30s" }
end
local function status(text)
  return notify.webhook { url = secret("STATUS_WEBHOOK_URL"),
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
  action = service.stop(on { unit = param.booking_unit }),
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
    action = tcp.check { port = 25, timeout = "5s" },
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
    username = param.mail_from, password = secret("SMTP_PASSWORD"), starttls = true },
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
  verify = tcp.check { port = 443, timeout = "5s" }, verify_timeout = "5m", verify_interval = "15s",
  undo = false, -- isolating again is a new decision: run disconnect-centres again
}

step "start-booking" {
  doc = "Start the booking application on each server, checked on that server (the public URL "
    .. "still shows the maintenance page)",
  each = booking, concurrency = 1, timeout = "10m", estimate = "3m", undo = false,
  action = service.start(on { unit = param.booking_unit }),
  verify = function(ctx, _, host)
    local r = ctx.http { url = ("https://%s%s"):format(host.name, param.health_path), timeout = "10s", check = false }
    return r.status == 200, ("%s answered %s"):format(host.name, tostring(r.status or r.error))
  end,
  verify_timeout = "5m",
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
