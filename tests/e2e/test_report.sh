#!/usr/bin/env bash
# After-action reports, from the journal alone: golden md and json for the
# fixture journals (tests/fixtures/reports/make.sh made them), the HTML
# report opened in headless Chromium with assertions on its DOM, and a
# screenshot kept in tests/out/ as an artifact.
# BH_UPDATE_GOLDEN=1 rewrites the goldens from the current output.
. "$(dirname "$0")/lib.sh"

FIX="$ROOT/tests/fixtures/reports"
for name in real drill resumed broken doubt; do
    for fmt in md json; do
        t "report_golden_${name}_$fmt"
        j="$FIX/$name/journal.jsonl"
        assert_exit 0 bh report "$j" --format "$fmt"
        printf '%s\n' "$OUT" >"$WORK/$name.$fmt"
        if [ "${BH_UPDATE_GOLDEN:-}" = 1 ]; then cp "$WORK/$name.$fmt" "$FIX/$name/report.$fmt"; fi
        if ! diff -u "$FIX/$name/report.$fmt" "$WORK/$name.$fmt" >"$WORK/diff" 2>&1; then
            fail "report differs from $FIX/$name/report.$fmt: $(head -c 600 "$WORK/diff" | tr '\n' '|')"
        fi
    done
done

t report_json_matches_the_journal
j="$FIX/real/journal.jsonl"
assert_exit 0 bh report "$j" --format json
printf '%s' "$OUT" >"$WORK/real.json"
assert_eq "$(jq -rs '.[0].run_id' "$j")" "$(jq -r .run.id "$WORK/real.json")" "run id"
assert_eq "$(line_sha "$j" "$(wc -l <"$j")")" "$(jq -r .journal.head "$WORK/real.json")" "head hash"
assert_eq "$(jq -rs '[.[] | select(.type == "step_start")] | length' "$j")" \
          "$(jq '[.phases[].steps[].attempts[]] | length' "$WORK/real.json")" "attempts"
assert_eq "$(jq -rs '[.[] | select(.type == "exec_start")] | length' "$j")" \
          "$(jq '.commands | length' "$WORK/real.json")" "commands"
assert_eq "approval:fixture:flag,manual task:alice:socket" \
          "$(jq -r '[.decisions[] | "\(.kind):\(.by):\(.how)"] | join(",")' "$WORK/real.json")" "decisions"
assert_eq "retry,continue" "$(jq -r '[.failures[].handled] | join(",")' "$WORK/real.json")" "failures"
assert_eq "contain,communicate,recover" "$(jq -r '[.phases[].name] | join(",")' "$WORK/real.json")" "phases"

t report_says_what_remains_in_doubt
# doubt/: isolate's commands cut off by its timeout (web2 ok on its retry,
# web3 in doubt twice, then undone), block-ip cut off with no undo (undo
# named it and exited 1), look read-only and cut off (timed out).
j="$FIX/doubt/journal.jsonl"
assert_exit 0 bh report "$j" --format json
printf '%s' "$OUT" >"$WORK/doubt.json"
assert_eq "block-ip:1:none" "$(jq -r '[.in_doubt.remaining[] | "\(.step):\(.attempt):\(.undo)"] | join(",")' "$WORK/doubt.json")" "what remains"
assert_eq "block-ip may still be blocking 203.0.113.7 at the edge" "$(jq -r '.in_doubt.remaining[0].may_remain' "$WORK/doubt.json")"
assert_eq "$(jq -rs '[.[] | select(.type == "step_end" and .step == "block-ip")][0].doubt' "$j")" \
          "$(jq -r '.in_doubt.remaining[0].doubt' "$WORK/doubt.json")" "why, as the journal says"
assert_eq "web2:a later attempt,web3:undo" "$(jq -r '[.in_doubt.resolved[] | "\(.key):\(.by)"] | join(",")' "$WORK/doubt.json")" "what no longer is"
assert_eq "$(jq -rs '[.[] | select(.type == "step_end" and .status == "in_doubt")] | length' "$j")" \
          "$(jq '[.phases[].steps[].attempts[] | select(.status == "in_doubt" and .may_remain and .doubt)] | length' "$WORK/doubt.json")" "in-doubt attempts"
assert_eq "2 1" "$(jq -r '.phases[0].steps[0].instances | "\(.ok) \(.in_doubt)"' "$WORK/doubt.json")" "step_done's counts"
assert_eq "false" "$(jq -r '.commands[] | select(.step == "look") | .acts' "$WORK/doubt.json")" "a read-only command"
assert_eq "4" "$(jq '[.commands[] | select(.in_doubt)] | length' "$WORK/doubt.json")" "commands cut off while acting"
assert_exit 0 bh report "$j"
md=$OUT
assert_contains "$md" "| In doubt | **1 may remain** (see below) |"
assert_contains "$md" "$(printf '## In doubt: may remain\n\nWhat attempts that did not succeed may have left')"
assert_contains "$md" "| block-ip #1 | block-ip may still be blocking 203.0.113.7 at the edge | 'sh' was cut off before it finished (the step's timeout) | none: its step has no undo |"
assert_contains "$md" "No longer in doubt: isolate[web2] (a later attempt succeeded), isolate[web3] (undone)."
assert_contains "$md" "| in doubt | step_timeout: step 'isolate\\[web3\\]' exceeded its timeout of 400ms; in doubt: web3 may still be isolated ('sh' was cut off before it finished (the step's timeout)) (next: retry) |"
assert_contains "$md" "| isolate | all | | | undone | 2 ok, 1 in doubt, 0 failed, 0 skipped |"
assert_contains "$md" "| look | 1 | "
assert_contains "$(printf '%s\n' "$md" | grep '| look | 1 |')" "| timed_out |" "a read-only command cut off is not in doubt"
assert_contains "$md" "\`sleep 5\` (read-only) | SIGTERM |"
assert_contains "$md" "| isolate[web3] #2 | in doubt | step_timeout: "
# the section comes before the events and the time line
assert_eq "Summary,In doubt: may remain,Events" "$(printf '%s\n' "$md" | sed -n 's/^## //p' | head -n3 | paste -sd,)" "section order"
assert_exit 0 bh report "$j" --format html
html=$OUT
assert_contains "$html" '<table id="in-doubt"><tr><th>Since</th><th>Step</th><th>What may remain</th><th>Why in doubt</th><th>Undo</th></tr>'
assert_contains "$html" '<b>block-ip may still be blocking 203.0.113.7 at the edge</b>'
assert_contains "$html" 'in doubt (may have acted)</span>' "the legend"
assert_contains "$html" 'svg .bar.status-in_doubt{fill:#bf3989'
assert_eq 4 "$(printf '%s' "$html" | grep -c '<rect class="bar status-in_doubt"')" "in-doubt bars"
assert_contains "$html" '<title>isolate[web3] attempt 2: in doubt: web3 may still be isolated, '
assert_contains "$html" '<td class="s-in_doubt">in doubt</td>'
# a run where nothing was ever in doubt says so
assert_exit 0 bh report "$FIX/real/journal.jsonl"
assert_contains "$OUT" "$(printf '## In doubt: may remain\n\nNothing: no attempt ended in doubt.')"
assert_not_contains "$OUT" "| In doubt |"

t report_of_a_broken_journal_says_so
# broken/ is real/ with seq 23 (the manual task's note) changed: the report
# opens with a banner naming that record, and everything read from it on
# is marked unverified, in each format; what came before is not.
j="$FIX/broken/journal.jsonl"
assert_exit 5 bh verify "$j"
assert_contains "$OUT" "BROKEN at seq 23 (byte offset 7350)"
assert_exit 0 bh report "$j" --format json
printf '%s' "$OUT" >"$WORK/broken.json"
assert_eq "false 23 7350 21" "$(jq -r '.journal | "\(.intact) \(.broken_at.seq) \(.broken_at.offset) \(.unverified_records)"' "$WORK/broken.json")" "journal"
assert_eq "true" "$(jq -r '.run.unverified' "$WORK/broken.json")" "the outcome (run_end is after the break)"
assert_eq "SOC has no IOCs:true" "$(jq -r '.decisions[] | select(.kind == "manual task") | "\(.why):\(.unverified)"' "$WORK/broken.json")" "the changed decision"
assert_eq "null" "$(jq -r '.decisions[] | select(.kind == "approval") | .unverified' "$WORK/broken.json")" "the approval before the break"
assert_eq "isolate:null snapshot:null call-soc:true page:true restore:true" \
    "$(jq -r '[.phases[].steps[] | "\(.id):\(.attempts | map(.unverified) | any // null | if . then true else null end)"] | join(" ")' "$WORK/broken.json")" "attempts by step"
assert_eq "4 4" "$(jq -r '"\([.commands[] | select(.unverified)] | length) \([.commands[] | select(.unverified | not)] | length)"' "$WORK/broken.json")" "commands after and before the break"
assert_exit 0 bh report "$j"
first=$(printf '%s\n' "$OUT" | sed -n '3p')
assert_contains "$first" "> **THE JOURNAL'S HASH CHAIN IS BROKEN at seq 23 (byte offset 7350):** seq 23 at byte 7350 was changed" "the line after the title"
assert_contains "$OUT" "Everything from that record on is unverified"
assert_contains "$OUT" "| Outcome | **ok** (unverified) |"
assert_contains "$OUT" "**CHAIN BROKEN**"
assert_contains "$OUT" "| **unverified** 2026-12-01T14:27:11.210Z (T+107ms) | call-soc | manual task: done | alice |"
assert_contains "$OUT" "| 2026-12-01T14:27:11.103Z (T+0ms) | isolate | approval: approve |"
assert_contains "$OUT" "| **unverified** restore | 1 |"
assert_contains "$OUT" "| isolate[web1] | 1 |"
assert_exit 0 bh report "$j" --format html
assert_contains "$OUT" "<div class=\"banner broken\" id=\"chain\">The journal's hash chain is broken at seq 23 (byte offset 7350)"
# rows: 5 attempts and undos, 1 decision, 4 commands, 1 failure, 3 files
assert_eq 14 "$(printf '%s' "$OUT" | grep -c '<tr class="unverified">')" "unverified rows in the HTML"
# bars: call-soc, page, restore and the two undos
assert_eq 5 "$(printf '%s' "$OUT" | grep -o '<rect class="[a-z-]* status-[a-z_]* unverified"' | wc -l)" "unverified bars"
# The banner comes before anything else in the body.
assert_eq "chain" "$(printf '%s' "$OUT" | grep -o 'id="[a-z]*"' | head -n1 | sed 's/id="//; s/"//')" "first element with an id"
# A journal whose first line does not parse: nothing is read, all of it is suspect.
mkdir -p "$WORK/unparsed"
sed '1s/^{/x/' "$FIX/real/journal.jsonl" >"$WORK/unparsed/journal.jsonl"
assert_exit 0 bh report "$WORK/unparsed/journal.jsonl"
assert_contains "$OUT" "THE JOURNAL'S HASH CHAIN IS BROKEN at seq 0 (byte offset 0)"
assert_contains "$OUT" "That line does not parse: nothing from it on is in this report"

# An empty journal: nothing to report, and said so.
mkdir -p "$WORK/empty"
: >"$WORK/empty/journal.jsonl"
assert_exit 0 bh report "$WORK/empty/journal.jsonl"
assert_contains "$OUT" "the journal is empty: it has no run_start record"
assert_contains "$OUT" "The journal holds no record: there is nothing to report."
assert_not_contains "$OUT" "That line does not parse"

t report_out_file_is_private_and_whole
assert_exit 0 bh report "$FIX/real/journal.jsonl" --format html --out "$WORK/r.html"
assert_eq 600 "$(stat -c %a "$WORK/r.html")" "mode"
assert_eq "" "$(ls "$WORK" | grep 'r.html.tmp')" "temporary left behind"
assert_exit 2 bh report "$FIX/real/journal.jsonl" --format pdf
assert_contains "$ERR" "use md, html or json"
assert_exit 6 bh report no-such-run

t report_html_is_self_contained
for name in real drill resumed broken doubt; do
    assert_exit 0 bh report "$FIX/$name/journal.jsonl" --format html --out "$WORK/$name.html"
    for bad in '<script' '<link' 'src=' '@import' 'url(' 'href="http'; do
        grep -qi -- "$bad" "$WORK/$name.html" && fail "$name.html has $bad"
    done
done

t report_escapes_what_the_journal_says
cat >"$WORK/esc.lua" <<'LUA'
runbook { id = "esc", title = "Escaping <b>bold</b> | `tick`", timeout = "1m" }
step "bad" { run = function(ctx)
  error('<script>alert(1)</script> [x](javascript:alert(2)) | ``` `x` *y*', 0) end }
LUA
assert_exit 1 bh run --plain "$WORK/esc.lua"
j=$(journal)
assert_exit 0 bh report "$j" --format html --out "$WORK/esc.html"
h=$(cat "$WORK/esc.html")
assert_contains "$h" '&lt;script&gt;alert(1)&lt;/script&gt;'
assert_contains "$h" 'Escaping &lt;b&gt;bold&lt;/b&gt;'
assert_contains "$h" "http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'"
grep -qi '<script\|<b>bold' "$WORK/esc.html" && fail "raw HTML from the journal in esc.html"
assert_exit 0 bh report "$j" --format md --out "$WORK/esc.md"
m=$(cat "$WORK/esc.md")
assert_contains "$m" '# After-action report: Escaping &lt;b>bold&lt;/b> \| \`tick\`'
assert_contains "$m" '&lt;script>alert(1)&lt;/script> \[x\](javascript:alert(2)) \| \`\`\` \`x\` \*y\*'
grep -q '<script' "$WORK/esc.md" && fail "raw HTML in esc.md"
# a row of a table keeps its columns: every unescaped '|' is a cell border
while IFS= read -r line; do
    n=$(printf %s "$line" | sed 's/\\|//g' | tr -cd '|' | wc -c)
    case $n in 6|7) ;; *) fail "a row with $n cell borders: $line" ;; esac
done < <(grep 'alert(1)' "$WORK/esc.md")
# an edited journal cannot break out of an attribute or a code span
mkdir -p "$WORK/edited"
sed 's/"status":"failed"/"status":"x\\" onmouseover=\\"alert(3)"/; s/"argv":\[/"argv":["``` | <i>",/' "$j" >"$WORK/edited/journal.jsonl"
assert_exit 0 bh report "$WORK/edited/journal.jsonl" --format html --out "$WORK/edited.html"
grep -q 'onmouseover="' "$WORK/edited.html" && fail "an attribute was opened"
assert_contains "$(cat "$WORK/edited.html")" 's-other'
assert_contains "$(cat "$WORK/edited.html")" "hash chain is broken"

t report_names_an_instance_the_same_in_every_table
# A fan-out whose second host fails, each host's log collected as
# evidence: every table names an instance as the console does
# (isolate-web[web2]), and each file is listed once, with its host.
cat >"$WORK/names.lua" <<'LUA'
runbook { id = "names", title = "Names", timeout = "30s" }
step "isolate-web" { each = { "web1", "web2" }, on_failure = "continue", run = function(ctx, h)
  ctx.collect { "echo", "log of " .. h, name = "access.log" }
  ctx.exec { "echo", "isolating", h }
  if h == "web2" then error("web2 refused") end
end }
LUA
assert_exit 0 bh run --plain "$WORK/names.lua"
assert_contains "$OUT" "isolate-web[web2]  failed" "the console's label"
assert_exit 0 bh report last
md=$OUT
for row in "| isolate-web[web1] | 1 |" "| isolate-web[web2] | 1 |" \
           "| isolate-web[web1] #1 | \`echo 'log of web1'\` | exit 0 |" \
           "| isolate-web[web2] #1 | failed | lua_error: " \
           "| isolate-web[web1] | collected | \`evidence/isolate-web.i1.1.1.access.log\` | 12 |" \
           "| isolate-web[web2] | collected | \`evidence/isolate-web.i2.1.1.access.log\` | 12 |" \
           "| isolate-web[web2] | captured output | \`out/isolate-web.i2.1.2.stdout\` |"; do
    assert_contains "$md" "$row"
done
assert_eq "" "$(printf '%s\n' "$md" | grep -E 'isolate-web\[[0-9]+\]')" "an instance named by its number"
assert_eq 1 "$(printf '%s\n' "$md" | grep -c 'evidence/isolate-web.i1.1.1.access.log')" "rows of web1's evidence file"
assert_exit 0 bh report last --format json
printf '%s' "$OUT" >"$WORK/names.json"
assert_eq "$(jq '[.evidence[].path] | unique | length' "$WORK/names.json")" "$(jq '.evidence | length' "$WORK/names.json")" "files listed once"
assert_eq "web1 web1 web2 web2" "$(jq -r '[.evidence[] | .key] | sort | join(" ")' "$WORK/names.json")" "the host of each file"
assert_eq "" "$(jq -r '.evidence[] | select((.path | test("\\.i1\\.")) != (.key == "web1")) | .path' "$WORK/names.json")" "a file listed with another host"
assert_eq "web2" "$(jq -r '.failures[0].key' "$WORK/names.json")" "the failure's host"
assert_exit 0 bh report last --format html
for id in steps commands failures evidence; do
    printf '%s\n' "$OUT" | sed -n "/<table [a-z]*=\"$id\"/,/<\/table>/p" >"$WORK/names.$id"
    grep -q 'isolate-web\[web2\]' "$WORK/names.$id" || fail "the $id table of the HTML does not name isolate-web[web2]"
    grep -qE 'isolate-web\[[0-9]+\]' "$WORK/names.$id" && fail "the $id table of the HTML names an instance by its number"
done
assert_eq 1 "$(printf '%s\n' "$OUT" | grep -c 'evidence/isolate-web.i2.1.1.access.log')" "rows of web2's evidence file in the HTML"

t report_lists_requests
"$BH_TOOLS/bh_peer" http "$WORK/rq.port" "$WORK/rq.log" &
RQ=$!
wait_for test -s "$WORK/rq.port"
cat >"$WORK/rq.lua" <<LUA
runbook { id = "rq", title = "Requests", timeout = "30s" }
step "post" { run = function(ctx) ctx.http { url = "http://127.0.0.1:$(cat "$WORK/rq.port")/hook", method = "POST", json = { a = 1 } } end }
step "refused" { on_failure = "continue", run = function(ctx) ctx.connect { host = "127.0.0.1", port = 9, timeout = "2s" } end }
LUA
assert_exit 0 bh run --plain "$WORK/rq.lua"
kill $RQ; wait $RQ 2>/dev/null
assert_exit 0 bh report last --format json
assert_eq "$(jqs "$(journal)" '[.[] | select(.type == "request_start")] | length')" "$(printf %s "$OUT" | jq '.requests | length')"
assert_eq "http POST 200 true" "$(printf %s "$OUT" | jq -r '.requests[0] | "\(.kind) \(.method) \(.status) \(.ok)"')"
assert_eq "connect false" "$(printf %s "$OUT" | jq -r '.requests[1] | "\(.kind) \(.ok)"')"
assert_exit 0 bh report last --format md
assert_contains "$OUT" "| post #1 | POST \`http://127.0.0.1:$(cat "$WORK/rq.port")/hook\` | status 200 |"
assert_contains "$OUT" "| refused #1 | connect \`127.0.0.1:9\` | failed: "
assert_exit 0 bh report last --format html
assert_contains "$OUT" '<table id="requests">'

CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
t report_html_in_headless_chromium
if [ -z "$CHROMIUM" ]; then skip "chromium not installed (make check installs Debian's chromium)"; else
    mkdir -p "$ROOT/tests/out"
    # Every request the browser makes goes to a silent peer on loopback.
    "$BH_TOOLS/bh_peer" silent "$WORK/port" "$WORK/proxy.log" &
    PEER=$!
    wait_for test -s "$WORK/port"
    chrome() {
        timeout 90 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
            --disable-background-networking --disable-component-update --disable-sync \
            --disable-default-apps --disable-extensions --user-data-dir="$WORK/chrome-profile" \
            --proxy-server="127.0.0.1:$(cat "$WORK/port")" --proxy-bypass-list='<-loopback>' "$@" \
            2>>"$WORK/chrome.err"
    }
    for name in real drill resumed broken doubt; do
        j="$FIX/$name/journal.jsonl"
        chrome --dump-dom "file://$WORK/$name.html" >"$WORK/$name.dom"
        [ -s "$WORK/$name.dom" ] || fail "$name: chromium rendered nothing: $(tail -n2 "$WORK/chrome.err" | tr '\n' '|')"
        assert_eq "$(jq -rs '[.[] | select(.type == "step_start")] | length' "$j")" \
                  "$(grep -o '<rect class="bar ' "$WORK/$name.dom" | wc -l)" "$name: one bar per step attempt"
        assert_eq "$(jq -rs '[.[] | select(.type == "undo_start")] | length' "$j")" \
                  "$(grep -o '<rect class="undo-bar ' "$WORK/$name.dom" | wc -l)" "$name: undo bars"
        assert_eq "$(jq -rs '[.[] | select(.type == "approval_wait")] | length' "$j")" \
                  "$(grep -o '<rect class="wait approval"' "$WORK/$name.dom" | wc -l)" "$name: approval waits"
        assert_eq "$(jq -rs '[.[] | select(.type == "retry")] | length' "$j")" \
                  "$(grep -o '<rect class="wait retry"' "$WORK/$name.dom" | wc -l)" "$name: backoffs"
        assert_eq "$(jq -rs '[.[0].plan[].phase] | join(",")' "$j")" \
                  "$(grep -o '<text class="phase-label"[^>]*>[^<]*' "$WORK/$name.dom" | sed 's/.*>//' | paste -sd,)" \
                  "$name: phase labels"
        for st in ok failed in_doubt timed_out; do
            want=$(jq -rs "[.[] | select(.type == \"step_end\" and .attempt > 0 and .status == \"$st\")] | length" "$j")
            assert_eq "$want" "$(grep -o "<rect class=\"bar status-$st[\" ]" "$WORK/$name.dom" | wc -l)" "$name: $st bars"
        done
    done
    chrome --hide-scrollbars --window-size=1200,1600 --screenshot="$ROOT/tests/out/report-real.png" \
        "file://$WORK/real.html" >/dev/null
    assert_file "$ROOT/tests/out/report-real.png"
    [ "$(stat -c %s "$ROOT/tests/out/report-real.png" 2>/dev/null || echo 0)" -gt 10000 ] || fail "screenshot too small"
    kill $PEER 2>/dev/null; wait $PEER 2>/dev/null
    # Chromium's own calls home (Google hosts) are not the page's; anything
    # else would be the report fetching something.
    others=$(grep -E '^(GET|POST|CONNECT|HEAD|PUT) ' "$WORK/proxy.log" | grep -vE ' (https?://)?[a-z0-9.-]*(google\.com|googleapis\.com|gstatic\.com|gvt1\.com)[:/]' || true)
    assert_eq "" "$others" "requests the report made"
fi
