-- expect: ok 0
-- ctx.collect keeps evidence byte for byte; ctx.log; ctx.tmpdir.
runbook { id = "api-evidence", title = "evidence", timeout = "30s" }

local function expect(cond, what, got)
  if not cond then error(("expected %s, got %s"):format(what, tostring(got)), 2) end
end

phase "collect"
step "collect" { run = function(ctx)
  local r = ctx.collect { "printf", "a\\0b\\377", name = "bytes.bin" }
  expect(r.evidence and r.evidence.size == 4, "4 bytes kept", r.evidence and r.evidence.size)
  expect(r.evidence.path == "evidence/collect.1.1.bytes.bin", "its place in the run folder",
         r.evidence.path)
  local s = ctx.exec { "sha256sum", stdin = "a\0b\255" }
  expect(s.stdout:sub(1, 64) == r.evidence.sha256, "the sha256 of the bytes", r.evidence.sha256)
end }

step "tmpdir" { run = function(ctx)
  local d = ctx.tmpdir()
  expect(d == ctx.tmpdir(), "the same directory", d)
  local m = ctx.exec { "stat", "-c", "%a", d }
  expect(m.stdout == "700\n", "0700", m.stdout)
  ctx.log("a line", 42)
end }
