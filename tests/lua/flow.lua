-- expect: ok 0
-- How steps follow each other: results, params, fan-outs, when, after,
-- retries and health gates.
runbook { id = "api-flow", title = "flow", timeout = "30s",
  params = { who = { type = "string", default = "web", doc = "a name" },
             hosts = { type = "list", default = { "a", "b", "c" }, doc = "items" } } }

local function expect(cond, what, got)
  if not cond then error(("expected %s, got %s"):format(what, tostring(got)), 2) end
end

phase "flow"
step "first" { run = function(ctx)
  expect(ctx.params.who == "web" and param.who == "web", "the param", ctx.params.who)
  expect(ctx.step == "first" and ctx.phase == "flow" and ctx.attempt == 1, "where we are", ctx.step)
  expect(ctx.mode == "real", "a real run", ctx.mode)
  return { n = 41, name = ctx.params.who }
end }

step "second" { run = function(ctx)
  expect(ctx.results.first.n == 41 and ctx.results.first.name == "web", "first's result",
         ctx.results.first and ctx.results.first.n)
  expect(ctx.status.first == "ok" and ctx.status.second == "running", "the live status",
         ctx.status.first)
  return ctx.results.first.n + 1
end }

step "fan" { each = param.hosts, run = function(ctx, item)
  expect(param.hosts[ctx.index] == item, "item at ctx.index", item)
  return item .. "!"
end }

step "fan_results" { run = function(ctx)
  local r = ctx.results.fan
  expect(#r == 3 and r[1] == "a!" and r[3] == "c!", "a list of the items' results", #r)
end }

step "never" { when = function(ctx) return false end, run = function(ctx) error("ran") end }

step "after_skip" { after = "never", run = function(ctx)
  expect(ctx.status.never == "skipped", "never skipped", ctx.status.never)
end }

local tries = 0
step "retried" { retries = 2, backoff = "10ms", run = function(ctx)
  tries = tries + 1
  expect(ctx.attempt == tries, "attempt counts tries", ctx.attempt)
  if ctx.attempt < 3 then error("not yet") end
  return ctx.attempt
end }

local checks = 0
step "gated" { verify_interval = "20ms", verify_timeout = "5s",
  run = function(ctx) return "up" end,
  verify = function(ctx, result)
    checks = checks + 1
    if result ~= "up" then return false, "wrong result" end
    return checks >= 3, "warming up"
  end }

step "last" { run = function(ctx)
  expect(ctx.results.retried == 3, "the third attempt's result", ctx.results.retried)
  expect(checks == 3, "three health checks", checks)
  ctx.sleep("50ms")
end }

-- The plan is fixed once loaded: a step cannot declare more of it.
step "plan_is_fixed" { run = function(ctx)
  for _, declare in ipairs { function() phase "late" end,
                             function() step "late" { run = function() end } end,
                             function() parallel { } end,
                             function() runbook { id = "again", title = "again" } end } do
    local ok, err = pcall(declare)
    expect(not ok and tostring(err):find("only while it loads, not from a step", 1, true),
           "a refusal", err)
  end
  expect(ctx.status.late == nil, "no step 'late'", ctx.status.late)
end }
