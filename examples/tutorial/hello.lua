-- hello.lua: a first bulkhead runbook. Safe anywhere: it only runs `echo`,
-- `printf` and `wc` and writes nothing outside the run folder.
--
--   build/bulkhead plan examples/tutorial/hello.lua -p name=Ada
--   build/bulkhead run  examples/tutorial/hello.lua -p name=Ada
--   build/bulkhead show last
--   build/bulkhead verify last

-- runbook{} must come first, exactly once. It names the runbook, sets a
-- default step timeout and declares the parameters. Loading this file has no
-- side effects: nothing below runs until `bulkhead run`.
runbook {
  id = "tutorial-hello",
  title = "Tutorial: greet, count, wait, report",
  severity = "low",
  owner = "ir-team",
  description = "Shows runbook{}, params, phases, steps, ctx.exec, ctx.sh, "
    .. "ctx.sleep, ctx.log and passing results between steps.",
  timeout = "30s",            -- default timeout for every step below
  params = {
    -- every parameter has a type; a default must have that type.
    name  = { type = "string", default = "world", doc = "who to greet" },
    words = { type = "list", default = { "contain", "eradicate", "recover" },
              doc = "words to count (give as -p words=a,b,c)" },
    pause = { type = "number", default = 0.2, doc = "seconds to sleep in the 'wait' step" },
  },
}

-- After runbook{}, the global `param` holds the resolved values. Reading an
-- undeclared name (param.nmae) is an error at load time, with the line.

-- A phase groups the steps that follow it. Steps run one after another in
-- the order they are declared.
phase "hello"

step "greet" {
  doc = "Say hello to param.name with echo (no shell involved)",
  timeout = "5s",             -- this step's own wall-clock limit
  run = function(ctx)
    -- ctx.exec runs one program with an argv array: no shell, no quoting
    -- problems. A non-zero exit raises an error (check = true by default).
    local r = ctx.exec { "echo", "hello,", param.name }
    ctx.log("echo said: " .. r.stdout:gsub("\n$", ""))
    -- Whatever the body returns is stored in the journal as JSON and is
    -- available to later steps as ctx.results.greet.
    return { said = (r.stdout:gsub("\n$", "")) }
  end,
}

step "count" {
  doc = "Count the words with wc -l, feeding them on stdin",
  timeout = "5s",
  -- In a dry run (run --dry-run, drill) nothing is executed: wc's output is
  -- simulated. Without this the body would find no number in it.
  simulate = { stdout = "3\n" },
  run = function(ctx)
    local r = ctx.exec { "wc", "-l", stdin = table.concat(param.words, "\n") .. "\n" }
    local n = tonumber(r.stdout:match("%d+"))
    ctx.log(("%d words, the greeting was %q"):format(n, ctx.results.greet.said))
    return n
  end,
}

phase "wrap-up"

step "wait" {
  doc = "Wait a moment on the event loop (ctx.sleep does not block other work)",
  timeout = "10s",
  run = function(ctx)
    ctx.sleep(param.pause)
    return true
  end,
}

step "report" {
  doc = "Use a shell only where one is needed: here, a pipe",
  timeout = "5s",
  run = function(ctx)
    -- ctx.sh runs /bin/sh -c SCRIPT. Pass values through env, not by
    -- pasting them into the script text.
    local r = ctx.sh('printf "%s\\n" "$GREETING" | tr a-z A-Z',
                     { env = { GREETING = ctx.results.greet.said } })
    ctx.log("shouted: " .. r.stdout:gsub("\n$", ""))
    -- check = false: inspect a failure instead of failing the step.
    local probe = ctx.exec { "test", "-e", "/nonexistent/path", check = false }
    ctx.log("test -e /nonexistent/path exited " .. probe.code)
    return { words = ctx.results.count, shouted = (r.stdout:gsub("\n$", "")) }
  end,
}
