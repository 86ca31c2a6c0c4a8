runbook { id = "par", title = "Par", timeout = "30s" }
parallel {
  step "a" { each = { "w1", "w2", "w3" }, concurrency = 2, run = function(ctx, h) ctx.sleep("300ms") return h end, undo = function(ctx, h) ctx.log("release " .. h) end },
  step "b" { run = function(ctx) ctx.sleep("200ms") end },
}
step "call" { manual = { "Call legal" }, timeout = "10s" }
step "c" { on_failure = "rollback", run = function(ctx) error("restore failed") end }
