runbook { id = "yv", title = "YV", timeout = "30s" }
step "upd" { every = "200ms", approve = "risky", run = function(ctx) return ctx.rep end }
step "work" { run = function(ctx) ctx.sleep("500ms") return 1 end }
