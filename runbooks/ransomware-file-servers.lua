-- ransomware-file-servers.lua: files on the headquarters file servers are
-- being encrypted. Cut the servers off before the encryption spreads or
-- reaches the backups, keep what shows how it happened, restore from the
-- second site only once a person has confirmed the restore point predates
-- the encryption, and reconnect the servers one at a time.
--
-- Reaches the servers over ssh (key, known_hosts, options, sudo -n for
-- nft, systemctl and find: the ssh_* parameters and the inventory) listed
-- in an Ansible INI inventory; the restore is an Ansible playbook of your
-- own (param playbook) run against the same inventory, with the site's
-- ansible configuration. Units, ports and paths are parameters. Secrets:
-- SMTP_PASSWORD unless smtp_auth = false; TEAMS_WEBHOOK_URL only when
-- teams = true.
--
--   bulkhead plan runbooks/ransomware-file-servers.lua --params runbooks/examples/ransomware-file-servers.json

runbook {
  id = "ransomware-file-servers",
  title = "Ransomware on the file servers",
  severity = "critical",
  owner = "ir-team",
  description = "Isolate the file servers and stop SMB and backup sync, keep the ransom notes and the "
    .. "list of encrypted files, restore from the second site after a person confirms the restore point.",
  timeout = "15m",
  params = {
    incident = { type = "string", required = true, doc = "incident reference, used in every message" },
    inventory = { type = "string", required = true, doc = "Ansible INI inventory (relative to this file or absolute)" },
    group = { type = "string", default = "fileservers", doc = "inventory group of the file servers" },
    mgmt = { type = "list", default = { "10.20.0.0/24" }, doc = "management networks still allowed in (CIDR)" },
    smb_unit = { type = "string", default = "smbd.service", doc = "the file-sharing service's unit" },
    smb_port = { type = "number", default = 445, doc = "the port file sharing answers on once restored" },
    backup_unit = { type = "string", default = "backup-sync.timer",
                    doc = "the unit that syncs to the second site: stopped so encrypted files do not overwrite clean backups" },
    shares = { type = "string", default = "/srv/shares", doc = "root of the shared folders" },
    note_pattern = { type = "string", default = "*DECRYPT*", doc = "file name pattern of the ransom notes (find -iname)" },
    since_minutes = { type = "number", default = 1440, doc = "files changed in the last N minutes are listed as possibly encrypted" },
    restore_point = { type = "string", required = true, doc = "backup snapshot to restore (confirmed by a person before use)" },
    playbook = { type = "string", default = "/etc/ir/playbooks/restore-fileserver.yml",
                 doc = "Ansible playbook that wipes a server's shares and restores a snapshot (vars: snapshot, incident)" },
    ansible_playbook = { type = "string", default = "ansible-playbook",
                         doc = "the ansible-playbook program (it reads the site's ansible.cfg: ssh and become settings)" },
    smtp = { type = "string", default = "smtp://mx1.example.org:587",
             doc = "SMTP server: smtp://host:port (STARTTLS unless smtp_starttls = false) or smtps://host:port (TLS from the start)" },
    smtp_starttls = { type = "boolean", default = true,
                      doc = "on smtp://, require STARTTLS (the mail fails if the server does not offer it); false sends "
                        .. "in the clear, and is refused with smtp_auth: a password never goes out without TLS" },
    smtp_auth = { type = "boolean", default = true,
                  doc = "log in as smtp_user with the secret SMTP_PASSWORD, over TLS only; false sends without a "
                    .. "login (SMTP_PASSWORD is then not read)" },
    smtp_user = { type = "string", doc = "SMTP login (default: mail_from)" },
    ca_file = { type = "string", doc = "CA bundle (PEM) of the site's own CA, for the SMTP server's and the Teams "
                  .. "webhook's certificates (default: the system's)" },
    mail_from = { type = "string", default = "ir-team@example.org", doc = "sender" },
    management = { type = "list", default = { "cio@example.org", "legal@example.org" }, doc = "who is told first (mail)" },
    staff = { type = "list", default = { "all-staff@example.org" }, doc = "staff mailing list" },
    teams = { type = "boolean", default = true,
              doc = "also post cards to the crisis channel (TEAMS_WEBHOOK_URL, read only when true)" },
    update_every = { type = "string", default = "1h", doc = "how often management gets an update" },
    known_hosts = { type = "string", doc = "known_hosts file for ssh (default: ssh's own)" },
    ssh_key = { type = "string", doc = "private key for ssh (default: the inventory's ansible_ssh_private_key_file, else ssh's)" },
    ssh_options = { type = "list", default = {}, doc = "more ssh options, \"Name=value\" (e.g. ProxyJump=bastion)" },
    sudo = { type = "boolean", default = true, doc = "run remote commands with sudo -n" },
    systemctl = { type = "string", default = "systemctl", doc = "the systemctl program on the servers" },
  },
}

local inv = inventory(param.inventory)
local servers = inv:hosts(param.group)

-- How the servers are reached, in one place for every remote action.
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
local function mail(to, subject, text)
  return notify.email { smtp = param.smtp, from = param.mail_from, to = to, subject = subject, text = text,
                        username = login.user, password = login.password, starttls = param.smtp_starttls,
                        ca_file = param.ca_file }
end

------------------------------------------------------------------------------
phase "contain"

step "isolate" {
  doc = "Cut each file server off (nftables): only the management networks reach it",
  each = servers, concurrency = 16, timeout = "2m", estimate = "1m",
  approve = "Users lose their shared folders until the restore", approve_timeout = "10m",
  action = firewall.isolate(on { allow = {}, allow_from = param.mgmt }),
  -- undo (inferred): firewall.release. reconnect lifts the isolation in
  -- the run; when the run stopped before it (no clean restore point),
  -- `bulkhead undo RUN` at the all-clear releases the servers and starts
  -- sharing and backup sync again (their undo)
}

step "stop-backup-sync" {
  doc = "Stop the sync to the second site, so encrypted files do not replace clean backups",
  each = servers, concurrency = 16, timeout = "2m", estimate = "20s",
  approve = "Backups stop until the all-clear",
  action = service.stop(unit(param.backup_unit)),
}

step "stop-smb" {
  doc = "Stop file sharing on each server",
  each = servers, concurrency = 16, timeout = "2m", estimate = "20s",
  approve = "Stops file sharing on every file server",
  action = service.stop(unit(param.smb_unit)),
}

------------------------------------------------------------------------------
phase "evidence"

step "ransom-notes" {
  doc = "The ransom notes (names and contents), for the investigators and the insurer",
  each = servers, concurrency = 8, timeout = "20m", estimate = "5m",
  action = evidence.command(on { name = "ransom-notes.txt", command = {
    "find", param.shares, "-xdev", "-type", "f", "-iname", param.note_pattern,
    "-exec", "sh", "-c", 'for f; do echo "== $f"; head -c 65536 "$f"; echo; done', "-", "{}", "+" } }),
}

step "changed-files" {
  doc = "Every file changed recently (time, size, path): how far the encryption got",
  each = servers, concurrency = 8, timeout = "1h", estimate = "15m",
  action = evidence.command(on { name = "changed-files.txt", command = {
    "find", param.shares, "-xdev", "-type", "f", "-mmin", "-" .. math.floor(param.since_minutes),
    "-printf", "%TY-%Tm-%Td %TH:%TM %s %p\n" } }),
}

------------------------------------------------------------------------------
phase "communicate"

step "tell-management" {
  doc = "Management and legal hear first: what is down, what is kept, what comes next",
  timeout = "2m", estimate = "1m", retries = 2, backoff = "30s",
  action = mail(param.management, "[{{incident}}] Ransomware on the file servers: servers isolated",
    "Incident {{incident}} (run {{run_id}}).\n\nThe file servers are cut off, file sharing and backup "
      .. "sync are stopped so that the backups stay clean. Evidence is being kept. The restore waits "
      .. "for a confirmed restore point.\n\nSteps: {{summary}}."),
}

step "tell-staff" {
  doc = "Staff: shares are down, do not open unexpected files, report ransom notes",
  timeout = "2m", estimate = "1m", on_failure = "continue",
  action = mail(param.staff, "[{{incident}}] Shared folders unavailable",
    "The shared folders are offline while we deal with a security incident. Do not open unexpected "
      .. "attachments; report any file asking for payment to the service desk. Updates follow."),
}

-- Only when the site uses the channel: its webhook is not read otherwise.
if param.teams then
  step "crisis-channel" {
    doc = "A card in the crisis channel",
    timeout = "1m", estimate = "5s", on_failure = "continue",
    action = notify.teams { url = secret("TEAMS_WEBHOOK_URL"), ca_file = param.ca_file, title = "{{incident}}: ransomware",
                            text = "File servers isolated; sharing and backup sync stopped. {{summary}}" },
  }
end

step "updates" {
  doc = "Regular updates to management while the run lives",
  every = param.update_every, timeout = "2m", estimate = "5s", on_failure = "continue",
  action = mail(param.management, "[{{incident}}] Update {{rep}}", "Where the response stands: {{summary}}."),
}

------------------------------------------------------------------------------
phase "recover"

step "confirm-restore-point" {
  doc = "A person confirms the restore point is clean",
  after = { "ransom-notes", "changed-files" },
  manual = { "Find the earliest encrypted file in the changed-files evidence",
             "Check that snapshot " .. param.restore_point .. " was taken before it",
             "Check that the second site shows no encrypted files in that snapshot",
             "Mark done with the snapshot's time in the note; mark failed to stop here" },
  timeout = "12h", estimate = "1h",
}

step "restore" {
  doc = "Wipe the shares and restore snapshot " .. param.restore_point .. " (Ansible playbook)",
  timeout = "8h", estimate = "4h",
  approve = "Wipes the shares on every file server and restores " .. param.restore_point,
  action = ansible.playbook { playbook = param.playbook, inventory = inv.file, limit = param.group,
                              ansible_playbook = param.ansible_playbook,
                              extra_vars = { snapshot = param.restore_point, incident = param.incident } },
  undo = false, -- a wipe cannot be undone; the evidence was kept before it
}

step "start-smb" {
  doc = "File sharing back on each server, checked from the management network",
  each = servers, timeout = "5m", estimate = "1m",
  action = service.start(unit(param.smb_unit)),
  verify = tcp.check { port = param.smb_port, timeout = "5s" }, verify_timeout = "3m",
  undo = false, -- `bulkhead undo` at the all-clear must not stop what was restored
}

step "reconnect" {
  doc = "Lift the isolation one server at a time",
  each = servers, concurrency = 1, timeout = "5m", estimate = "2m",
  approve = "Reconnects the restored file servers",
  action = firewall.release(on {}),
  undo = false, -- isolating again is a new decision: run isolate again
}

step "resume-backup-sync" {
  doc = "Backups to the second site again",
  each = servers, timeout = "2m", estimate = "20s",
  action = service.start(unit(param.backup_unit)),
  undo = false,
}

step "all-clear" {
  doc = "Tell everyone the shares are back",
  timeout = "2m", estimate = "1m", on_failure = "continue",
  action = mail(param.staff, "[{{incident}}] Shared folders restored",
    "The shared folders are back, restored from " .. param.restore_point .. ". Work saved after "
      .. "that point may need to be redone; the service desk can help."),
}
