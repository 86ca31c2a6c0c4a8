runbook { id = "ye", title = "YE", timeout = "30s" }
step "iso" { each = { "h1", "h2" }, approve = "risky", run = function(ctx, h) return h end }
