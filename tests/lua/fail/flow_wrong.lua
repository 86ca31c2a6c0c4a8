-- expect: failed 1
-- A check that is wrong on purpose: the run must fail, naming it (the
-- layer can fail).
runbook { id = "api-wrong", title = "wrong", timeout = "30s" }
local function expect(cond, what, got)
  if not cond then error(("expected %s, got %s"):format(what, tostring(got)), 2) end
end
step "first" { run = function(ctx) return { n = 41 } end }
step "second" { run = function(ctx)
  expect(ctx.results.first.n == 42, "a result first never gave", ctx.results.first.n)
end }
