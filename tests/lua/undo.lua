-- expect: rolled_back 1
-- A failure with on_failure = "rollback" undoes what completed, newest
-- first, each undo seeing what its step returned.
runbook { id = "api-undo", title = "undo", timeout = "30s" }

local function expect(cond, what, got)
  if not cond then error(("expected %s, got %s"):format(what, tostring(got)), 2) end
end

local order = {}
phase "change"
step "one" { run = function(ctx) return { n = 1 } end,
  undo = function(ctx)
    expect(ctx.undoing == true and ctx.result.n == 1, "one's result in its undo", ctx.result and ctx.result.n)
    order[#order + 1] = "one"
    expect(table.concat(order, ",") == "two,one", "newest first", table.concat(order, ","))
  end }
step "two" { run = function(ctx) return { n = 2 } end,
  undo = function(ctx)
    expect(ctx.result.n == 2, "two's result", ctx.result and ctx.result.n)
    order[#order + 1] = "two"
  end }
step "breaks" { on_failure = "rollback", run = function(ctx) error("broken on purpose") end,
  undo = function(ctx) error("a step that failed is not undone") end }
