#!/usr/bin/env bash
# After-action reports, from the journal alone: golden md and json for the
# fixture journals (tests/fixtures/reports/make.sh made them), the HTML
# report opened in headless Chromium with assertions on its DOM, and a
# screenshot kept in tests/out/ as an artifact.
# BH_UPDATE_GOLDEN=1 rewrites the goldens from the current output.
. "$(dirname "$0")/lib.sh"

FIX="$ROOT/tests/fixtures/reports"
for name in real drill resumed; do
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
assert_eq "$("$BULKHEAD" verify "$j" | sed -n 's/^head //p')" "$(jq -r .journal.head "$WORK/real.json")" "head hash"
assert_eq "$(jq -rs '[.[] | select(.type == "step_start")] | length' "$j")" \
          "$(jq '[.phases[].steps[].attempts[]] | length' "$WORK/real.json")" "attempts"
assert_eq "$(jq -rs '[.[] | select(.type == "exec_start")] | length' "$j")" \
          "$(jq '.commands | length' "$WORK/real.json")" "commands"
assert_eq "approval:fixture:flag,manual task:alice:socket" \
          "$(jq -r '[.decisions[] | "\(.kind):\(.by):\(.how)"] | join(",")' "$WORK/real.json")" "decisions"
assert_eq "retry,continue" "$(jq -r '[.failures[].handled] | join(",")' "$WORK/real.json")" "failures"
assert_eq "contain,communicate,recover" "$(jq -r '[.phases[].name] | join(",")' "$WORK/real.json")" "phases"

t report_of_a_broken_journal_says_so
mkdir -p "$WORK/broken"
sed '5s/"contain"/"Contain"/' "$FIX/real/journal.jsonl" >"$WORK/broken/journal.jsonl"
assert_exit 0 bh report "$WORK/broken/journal.jsonl"
assert_contains "$OUT" "**CHAIN BROKEN**"
assert_exit 0 bh report "$WORK/broken/journal.jsonl" --format html
assert_contains "$OUT" "hash chain is broken"

t report_out_file_is_private_and_whole
assert_exit 0 bh report "$FIX/real/journal.jsonl" --format html --out "$WORK/r.html"
assert_eq 600 "$(stat -c %a "$WORK/r.html")" "mode"
assert_eq "" "$(ls "$WORK" | grep 'r.html.tmp')" "temporary left behind"
assert_exit 2 bh report "$FIX/real/journal.jsonl" --format pdf
assert_contains "$ERR" "use md, html or json"
assert_exit 6 bh report no-such-run

t report_html_is_self_contained
for name in real drill resumed; do
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
    for name in real drill resumed; do
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
        for st in ok failed; do
            want=$(jq -rs "[.[] | select(.type == \"step_end\" and .attempt > 0 and .status == \"$st\")] | length" "$j")
            assert_eq "$want" "$(grep -o "<rect class=\"bar status-$st\"" "$WORK/$name.dom" | wc -l)" "$name: $st bars"
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
