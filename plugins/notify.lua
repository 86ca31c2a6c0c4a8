-- notify: tell people. Generic JSON webhooks, Slack and Mattermost incoming
-- webhooks, Microsoft Teams (an Adaptive Card, as Teams workflow webhooks
-- take it), and email over SMTP or SMTPS.
--
-- Text is a template: {{name}} is replaced when the step runs. Names:
--   incident      the runbook's `incident` parameter, if it has one
--   run_id, runbook, step, rep (a cadence's repetition), mode, now (UTC)
--   params.NAME   a parameter
--   results.STEP  what a step returned (results.STEP.FIELD for a field)
--   status.STEP   where a step stands: ok, failed, running, pending, ...
--   summary       "4 ok, 1 failed, 3 pending": every step's status counted
-- A name that is not one of these is an error where the runbook names it.
-- Webhook URLs are credentials: give them with secret("NAME").

local ROOTS = { incident = 1, run_id = 1, runbook = 1, step = 1, rep = 1, mode = 1, now = 1,
                params = 1, results = 1, status = 1, summary = 1 }

-- {{ name }}: what checking and rendering both look for
local TEMPLATE = "{{%s*([^}]-)%s*}}"

local function bad_names(text)
  for name in tostring(text):gmatch(TEMPLATE) do
    local root = name:match("^([%w_]+)")
    if not root or not ROOTS[root] then return name end
  end
end

-- Check every template in a value (a string, or a table of them).
local function check_templates(v)
  if type(v) == "string" then
    local bad = bad_names(v)
    if bad then return "unknown template name {{" .. bad .. "}}" end
  elseif type(v) == "table" then
    for _, x in pairs(v) do
      local why = check_templates(x)
      if why then return why end
    end
  end
end

local function text_of(v)
  if type(v) ~= "table" then return tostring(v) end
  local parts = {}
  if #v > 0 then
    for _, x in ipairs(v) do parts[#parts + 1] = text_of(x) end
  else
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = tostring(k) end
    table.sort(keys)
    for _, k in ipairs(keys) do parts[#parts + 1] = k .. "=" .. text_of(v[k]) end
  end
  return table.concat(parts, ", ")
end

local function summary(status)
  local counts, order = {}, { "ok", "failed", "timed_out", "cancelled", "unknown", "skipped",
                              "undone", "running", "pending" }
  for _, st in pairs(status or {}) do counts[st] = (counts[st] or 0) + 1 end
  local parts = {}
  for _, st in ipairs(order) do
    if counts[st] then parts[#parts + 1] = counts[st] .. " " .. st end
  end
  return table.concat(parts, ", ")
end

local function lookup(ctx, name)
  local root, rest = name:match("^([%w_]+)%.?(.*)$")
  local v
  if root == "incident" then return rawget(ctx.params, "incident") or ""
  elseif root == "run_id" then return ctx.run_id
  elseif root == "runbook" then return ctx.runbook
  elseif root == "step" then return ctx.step
  elseif root == "rep" then return ctx.rep or ""
  elseif root == "mode" then return ctx.mode
  elseif root == "now" then return os.date("!%Y-%m-%dT%H:%M:%SZ")
  elseif root == "summary" then return summary(ctx.status)
  elseif root == "params" then v = ctx.params
  elseif root == "results" then v = ctx.results
  elseif root == "status" then v = ctx.status
  end
  -- rawget: params and results raise on a name they do not have; status
  -- is a live view, read through its metatable
  local get = root == "status" and function(t, k) return t[k] end or rawget
  for part in rest:gmatch("[^%.]+") do
    if type(v) ~= "table" then return "" end
    v = get(v, part)
  end
  if v == nil then return "" end
  return text_of(v)
end

local function render(ctx, v)
  if type(v) == "string" then
    return (v:gsub(TEMPLATE, function(name) return lookup(ctx, name) end))
  elseif type(v) == "table" then
    local out = {}
    for k, x in pairs(v) do out[k] = render(ctx, x) end
    return out
  end
  return v
end

local function post(ctx, p, payload)
  local r = ctx.http { url = p.url, json = payload, headers = p.headers, timeout = p.timeout,
                       verify_tls = p.verify_tls, ca_file = p.ca_file }
  return { status = r.status }
end

local hook = {
  url = { type = "string", required = true, doc = "the incoming webhook URL (a secret: use secret(\"NAME\"))" },
  headers = { type = "map", default = {}, doc = "extra request headers" },
  timeout = { type = "string", default = "15s", doc = "limit for the request" },
  verify_tls = { type = "boolean", default = true, doc = "check the server's certificate" },
  ca_file = { type = "string", doc = "CA bundle (PEM) to check the server's certificate against" },
}
local function with(own)
  local t = {}
  for k, v in pairs(hook) do t[k] = v end
  for k, v in pairs(own) do t[k] = v end
  return t
end

local function preview(text)
  text = tostring(text or ""):gsub("%s+", " ")
  return #text > 80 and (text:sub(1, 77) .. "...") or text
end

local function checked(fields)
  return function(p)
    for _, f in ipairs(fields) do
      local why = check_templates(p[f])
      if why then return f .. ": " .. why end
    end
  end
end

return {
  doc = "Notifications: JSON webhooks, Slack, Mattermost, Microsoft Teams and email (SMTP/SMTPS), "
    .. "with {{templates}} filled from the run.",
  render = render, -- for other plugins and tests
  actions = {
    webhook = {
      doc = "POST a JSON document to a URL: `body` (a table whose strings are templates), or "
        .. "{text, runbook, run_id, step, incident} from `text`.",
      params = with({
        text = { type = "string", doc = "message template" },
        body = { type = "table", doc = "the JSON document to send (strings are templates)" },
      }),
      validate = function(p)
        if (p.text == nil) == (p.body == nil) then return "give text or body, one of them" end
        return checked({ "text", "body" })(p)
      end,
      describe = function(p) return "POST JSON to a webhook: " .. preview(p.text or "(document)") end,
      run = function(ctx, p)
        local payload = p.body and render(ctx, p.body) or {
          text = render(ctx, p.text), runbook = ctx.runbook, run_id = ctx.run_id, step = ctx.step,
          incident = rawget(ctx.params, "incident"),
        }
        return post(ctx, p, payload)
      end,
    },
    slack = {
      doc = "Post to a Slack incoming webhook: {text, channel, username, icon_emoji}.",
      params = with({
        text = { type = "string", required = true, doc = "message template" },
        channel = { type = "string", doc = "channel, if the webhook allows overriding it" },
        username = { type = "string", doc = "name shown as the sender" },
        icon_emoji = { type = "string", doc = "e.g. \":rotating_light:\"" },
      }),
      validate = checked({ "text" }),
      describe = function(p) return "Slack message: " .. preview(p.text) end,
      run = function(ctx, p)
        return post(ctx, p, { text = render(ctx, p.text), channel = p.channel,
                              username = p.username, icon_emoji = p.icon_emoji })
      end,
    },
    mattermost = {
      doc = "Post to a Mattermost incoming webhook: {text, channel, username, icon_url}.",
      params = with({
        text = { type = "string", required = true, doc = "message template (Markdown)" },
        channel = { type = "string", doc = "channel name, if the webhook allows it" },
        username = { type = "string", doc = "name shown as the sender" },
        icon_url = { type = "string", doc = "avatar URL" },
      }),
      validate = checked({ "text" }),
      describe = function(p) return "Mattermost message: " .. preview(p.text) end,
      run = function(ctx, p)
        return post(ctx, p, { text = render(ctx, p.text), channel = p.channel,
                              username = p.username, icon_url = p.icon_url })
      end,
    },
    teams = {
      doc = "Post to a Microsoft Teams workflow webhook: a message with one Adaptive Card "
        .. "(a bold title, then the text).",
      params = with({
        title = { type = "string", default = "{{runbook}}: {{incident}}", doc = "card title template" },
        text = { type = "string", required = true, doc = "message template" },
      }),
      validate = checked({ "title", "text" }),
      describe = function(p) return "Teams card: " .. preview(p.text) end,
      run = function(ctx, p)
        return post(ctx, p, {
          type = "message",
          attachments = { {
            contentType = "application/vnd.microsoft.card.adaptive",
            content = {
              ["$schema"] = "http://adaptivecards.io/schemas/adaptive-card.json",
              type = "AdaptiveCard", version = "1.4",
              body = {
                { type = "TextBlock", size = "Medium", weight = "Bolder", wrap = true,
                  text = render(ctx, p.title) },
                { type = "TextBlock", wrap = true, text = render(ctx, p.text) },
              },
            },
          } },
        })
      end,
    },
    email = {
      doc = "Send a plain-text email over SMTP (smtp://host:port, STARTTLS with starttls = true) "
        .. "or SMTPS (smtps://host:port).",
      params = {
        smtp = { type = "string", required = true, doc = "smtp://host:port or smtps://host:port" },
        from = { type = "string", required = true, doc = "sender address" },
        to = { type = "list", required = true, doc = "recipient addresses" },
        subject = { type = "string", required = true, doc = "subject template" },
        text = { type = "string", required = true, doc = "body template" },
        username = { type = "string", doc = "SMTP login" },
        password = { type = "string", doc = "SMTP password: use secret(\"NAME\")" },
        starttls = { type = "boolean", default = false,
                     doc = "require STARTTLS on smtp:// (always, when username or password is given)" },
        timeout = { type = "string", default = "30s", doc = "limit for the whole exchange" },
        verify_tls = { type = "boolean", default = true, doc = "check the server's certificate" },
        ca_file = { type = "string", doc = "CA bundle (PEM) to check the server's certificate against" },
      },
      validate = checked({ "subject", "text" }),
      describe = function(p)
        return ("email to %s: %s"):format(table.concat(p.to, ", "), preview(p.subject))
      end,
      run = function(ctx, p)
        local r = ctx.mail { url = p.smtp, from = p.from, to = p.to,
                             subject = render(ctx, p.subject), body = render(ctx, p.text),
                             username = p.username, password = p.password, starttls = p.starttls,
                             timeout = p.timeout, verify_tls = p.verify_tls, ca_file = p.ca_file }
        return { status = r.status, to = p.to }
      end,
    },
  },
}
