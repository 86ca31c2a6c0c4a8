#include "report/render.h"

#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "base/util.h"
#include "journal/journal.h"
#include "report/scorecard.h"

#define S bh_journal_str
#define N bh_journal_num

static const cJSON *get(const cJSON *o, const char *key) {
    return cJSON_GetObjectItemCaseSensitive(o, key);
}

static int flag(const cJSON *o, const char *key) {
    return cJSON_IsTrue(get(o, key));
}

/* One walk: the emitter, what the report holds, and the parts of the
 * model every section looks at. */
typedef struct {
    const bh_render_emitter *em;
    const bh_render_shows *shows;
    FILE *out;
    const cJSON *m, *run, *jr;
} walk;

/* --- shared text -------------------------------------------------------- */

void bh_render_name(FILE *out, bh_render_text_fn esc, const char *step, const cJSON *x, int undo) {
    if (undo) fputs("undo ", out);
    esc(out, step);
    if (S(x, "key")) {
        fputc('[', out);
        esc(out, S(x, "key"));
        fputc(']', out);
    } else if (N(x, "item", 0) > 0) {
        fprintf(out, "[%.0f]", N(x, "item", 0));
    }
    if (N(x, "rep", 0) > 0) fprintf(out, "#%.0f", N(x, "rep", 0));
}

const char *bh_render_status(const char *status) {
    return bh_util_streq(status, "in_doubt") ? "in doubt" : status;
}

int bh_render_unverified(const cJSON *x) {
    return flag(x, "unverified");
}

static void when(const cJSON *run, double t_ms, const char *ts, char *out, size_t len) {
    char d[32];
    bh_util_format_duration(t_ms, d, sizeof d);
    if (flag(run, "simulated_time"))
        snprintf(out, len, "T+%s", d);
    else
        snprintf(out, len, "%s (T+%s)", ts && *ts ? ts : "?", d);
}

/* A command line as a shell would take it back: an argument with a
 * character the shell treats specially, or none at all, in single quotes. */
static char *argv_text(const cJSON *argv) {
    bh_buf b = {0};
    const cJSON *a;
    cJSON_ArrayForEach(a, argv) {
        const char *v = cJSON_IsString(a) ? a->valuestring : "?";
        int quote = strpbrk(v, " \t\"'\\$`|&;<>()*?") != NULL || !*v;
        if (b.len) bh_buf_put(&b, " ", 1);
        if (quote) bh_buf_put(&b, "'", 1);
        for (const char *c = v; *c; c++) {
            if (*c == '\'' && quote)
                bh_buf_put(&b, "'\\''", 4);
            else
                bh_buf_put(&b, c, 1);
        }
        if (quote) bh_buf_put(&b, "'", 1);
    }
    return b.p ? b.p : bh_util_xstrdup("");
}

/* What the banner of a report of a broken journal says after the
 * problem: which records the reader must not trust. */
static const char *broken_tail(const cJSON *jr) {
    if (N(jr, "records", 0) == 0 && !flag(jr, "unparsed_from_break"))
        return "The journal holds no record: there is nothing to report.";
    return flag(jr, "unparsed_from_break")
               ? "That line does not parse: nothing from it on is in this report, and the "
                 "report may not be the whole story."
               : "Everything from that record on is unverified: it may have been changed "
                 "after the run, and is marked unverified below.";
}

/* What the head hash of a broken journal is the hash of: "" when intact. */
static void head_note(const cJSON *jr, char *out, size_t len) {
    out[0] = '\0';
    if (flag(jr, "intact")) return;
    double seq = N(get(jr, "broken_at"), "seq", 0);
    if (seq >= 1)
        snprintf(out, len, " (of seq %.0f, the last record the chain vouches for)", seq - 1);
    else
        snprintf(out, len, " (the chain vouches for no record)");
}

static const char *mode_banner(const cJSON *run) {
    const char *mode = S(run, "mode");
    if (bh_util_streq(mode, "drill"))
        return "DRILL: nothing was executed or sent; times are simulated.";
    if (bh_util_streq(mode, "dry-run"))
        return "DRY RUN: nothing was executed or sent; times are simulated.";
    return NULL;
}

/* What an undo did for an instance still in doubt (remain.h's undo). */
static const char *undo_text(const cJSON *x) {
    if (bh_util_streq(S(x, "undo"), "failed")) return "failed";
    if (bh_util_streq(S(x, "undo"), "none")) return "none: its step has no undo";
    return "not run";
}

/* A command that said acts = false; a command or request whose end gave
 * no definite answer (exec_end, request_end in_doubt). */
static int read_only(const cJSON *c) {
    return cJSON_IsFalse(get(c, "acts"));
}

static const char IN_DOUBT_CMD[] = " (in doubt: it may have acted)";
static const char IN_DOUBT_REQ[] = " (in doubt: sent, no answer)";

/* The words over the in-doubt section, or what to say when it is empty. */
static const char DOUBT_INTRO[] =
    "What attempts that did not succeed may have left, as the journal ends: each may have "
    "acted (a command cut off, a request without an answer, an attempt cut off after it "
    "acted), and neither a later attempt nor an undo has settled it since. Check each by "
    "hand; ";
/* ... then the command as code, then this. */
static const char DOUBT_UNDO[] = " runs the undo of those whose step has one.";

static const char *doubt_none(const cJSON *doubt) {
    return cJSON_GetArraySize(get(doubt, "resolved")) > 0 ? "Nothing any more."
                                                          : "Nothing: no attempt ended in doubt.";
}

/* A request for people: "POST", "mail to 2", "connect"; and its outcome. */
static void request_text(const cJSON *q, char *what, size_t wlen, char *result, size_t rlen) {
    const char *kind = bh_util_or(S(q, "kind"), "?");
    if (bh_util_streq(kind, "http"))
        snprintf(what, wlen, "%.16s", bh_util_or(S(q, "method"), "GET"));
    else if (bh_util_streq(kind, "mail"))
        snprintf(what, wlen, "mail to %d", cJSON_GetArraySize(get(q, "to")));
    else
        snprintf(what, wlen, "%.16s", kind);
    const cJSON *ok = get(q, "ok");
    if (!ok)
        snprintf(result, rlen, "no end recorded");
    else if (flag(q, "timed_out"))
        snprintf(result, rlen, "timed out");
    else if (get(q, "status") && N(q, "status", 0) > 0)
        snprintf(result, rlen, "%s %.0f", bh_util_streq(kind, "mail") ? "reply" : "status",
                 N(q, "status", 0));
    else
        snprintf(result, rlen, "%s", cJSON_IsTrue(ok) ? "connected" : "failed");
}

/* --- pieces of sections ------------------------------------------------- */

static void text(const walk *w, const char *s) {
    w->em->text(w->out, s);
}

/* A value that may be missing: "?" then. */
static void value(const walk *w, const char *s) {
    w->em->text(w->out, bh_util_or(s, "?"));
}

static void name(const walk *w, const char *step, const cJSON *x, int undo) {
    bh_render_name(w->out, w->em->text, step, x, undo);
}

static void heading(const walk *w, int level, const char *words) {
    w->em->heading(w->out, level, 1);
    fputs(words, w->out);
    w->em->heading(w->out, level, 0);
}

static void para(const walk *w, const char *id, const char *words) {
    w->em->para(w->out, id, 1);
    fputs(words, w->out);
    w->em->para(w->out, id, 0);
}

/* What an in-doubt attempt may have left and why, after its error: "; in
 * doubt: web2 may still be isolated ('sh' was cut off ...)". */
static void doubt_note(const walk *w, const cJSON *x) {
    if (!S(x, "may_remain") && !S(x, "doubt")) return;
    fputs("; in doubt: ", w->out);
    text(w, bh_util_or(S(x, "may_remain"), "it may have acted"));
    if (S(x, "doubt")) {
        fputs(" (", w->out);
        text(w, S(x, "doubt"));
        fputc(')', w->out);
    }
}

/* The first cells of a row about a record of one attempt (a command, a
 * request, a failure, what is in doubt): when, and which attempt of which
 * step or undo. */
static void when_which(const walk *w, const cJSON *x) {
    char t[64];
    when(w->run, N(x, "t_ms", 0), S(x, "at"), t, sizeof t);
    w->em->row(w->out, bh_render_unverified(x));
    text(w, t);
    w->em->cell(w->out, NULL);
    name(w, S(x, "step"), x, flag(x, "undo"));
    fprintf(w->out, " #%.0f", N(x, "attempt", 0));
    w->em->cell(w->out, NULL);
}

/* A section of one table: its heading (and note), then, when the list is
 * empty and the report says so, `none`; else the table's header. Returns
 * whether the table is open. */
static int section(const walk *w, const char *title, const char *note, const cJSON *list,
                   const char *none, const char *id, const char *const *cols) {
    w->em->heading(w->out, 2, 1);
    fprintf(w->out, "%s%s", title, note ? note : "");
    w->em->heading(w->out, 2, 0);
    if (cJSON_GetArraySize(list) == 0 && w->shows->say_none) {
        para(w, NULL, none);
        return 0;
    }
    w->em->table(w->out, id, 0, cols);
    return 1;
}

/* --- the sections, in their order --------------------------------------- */

/* The title, and the banners over everything: a broken chain, a simulation. */
static void opening(const walk *w) {
    const bh_render_emitter *em = w->em;
    const cJSON *rb = get(w->run, "runbook");
    em->begin(w->out, bh_util_or(S(rb, "title"), "run"), ": after-action report");
    em->heading(w->out, 1, 1);
    fputs("After-action report: ", w->out);
    value(w, bh_util_or(S(rb, "title"), S(rb, "id")));
    em->heading(w->out, 1, 0);
    if (!flag(w->jr, "intact")) {
        const cJSON *b = get(w->jr, "broken_at");
        em->banner(w->out, "chain", 1, 1);
        em->warn(w->out, 1);
        em->shout(w->out, "The journal's hash chain is broken");
        fprintf(w->out, " at seq %.0f (byte offset %.0f):", N(b, "seq", 0), N(b, "offset", 0));
        em->warn(w->out, 0);
        fputc(' ', w->out);
        value(w, S(w->jr, "problem"));
        em->banner_break(w->out);
        fputs(broken_tail(w->jr), w->out);
        em->banner(w->out, "chain", 1, 0);
    }
    if (mode_banner(w->run)) {
        em->banner(w->out, "mode", 0, 1);
        em->warn(w->out, 1);
        fputs(mode_banner(w->run), w->out);
        em->warn(w->out, 0);
        em->banner(w->out, "mode", 0, 0);
    }
}

static void kv_code(const walk *w, const char *key, const char *s) {
    w->em->key(w->out, key, NULL);
    w->em->code(w->out, s);
    w->em->row_end(w->out);
}

static void kv_value(const walk *w, const char *key, const char *s) {
    w->em->key(w->out, key, NULL);
    value(w, s);
    w->em->row_end(w->out);
}

/* The summary's rows about the run: what ran, how it ended, who ran it. */
static void summary_run(const walk *w) {
    const bh_render_emitter *em = w->em;
    const cJSON *run = w->run, *rb = get(run, "runbook");
    int unv = bh_render_unverified(run);
    kv_code(w, "Run", S(run, "id"));
    em->key(w->out, "Outcome", bh_util_or(S(run, "status"), ""));
    em->strong(w->out, 1);
    value(w, S(run, "status"));
    em->strong(w->out, 0);
    if (unv) em->unverified(w->out);
    em->row_end(w->out);
    int nd = cJSON_GetArraySize(get(get(w->m, "in_doubt"), "remaining"));
    if (nd > 0) {
        em->key(w->out, "In doubt", "in_doubt");
        em->warn(w->out, 1);
        fprintf(w->out, "%d may remain", nd);
        em->warn(w->out, 0);
        fputs(" (", w->out);
        em->xref(w->out, "in-doubt", "below");
        fputc(')', w->out);
        em->row_end(w->out);
    }
    em->key(w->out, "Runbook", NULL);
    value(w, S(rb, "title"));
    fputs(" (", w->out);
    if (w->shows->id_as_code)
        em->code(w->out, bh_util_or(S(rb, "id"), "?"));
    else
        value(w, S(rb, "id"));
    fputs("), severity ", w->out);
    value(w, S(rb, "severity"));
    em->row_end(w->out);
    kv_code(w, "Runbook file", S(rb, "path"));
    kv_code(w, "Runbook SHA-256", S(rb, "sha256"));
    char *params = bh_json_print(get(run, "params"), 0);
    kv_code(w, "Parameters", params ? params : "{}");
    free(params);
    em->key(w->out, "Operator", NULL);
    value(w, S(run, "operator"));
    fputs(" on ", w->out);
    value(w, S(run, "host"));
    em->row_end(w->out);
    kv_value(w, "Mode", S(run, "mode"));
    kv_value(w, "Started (UTC)", S(run, "started"));
}

/* The summary's rows about the end of the run and its journal. */
static void summary_end(const walk *w) {
    const bh_render_emitter *em = w->em;
    const cJSON *run = w->run, *jr = w->jr;
    const char *unv = bh_render_unverified(run) ? " (unverified)" : "";
    if (S(run, "ended")) {
        char d[32];
        bh_util_format_duration(N(run, "duration_ms", 0), d, sizeof d);
        em->key(w->out, "Ended (UTC)", NULL);
        text(w, S(run, "ended"));
        fputs(unv, w->out);
        em->row_end(w->out);
        em->key(w->out, "Duration", NULL);
        fprintf(w->out, "%s%s%s", d,
                w->shows->detail && flag(run, "simulated_time") ? " (simulated)" : "", unv);
        em->row_end(w->out);
    }
    if (w->shows->detail) {
        const cJSON *eng = get(run, "engine");
        em->key(w->out, "Engine", NULL);
        value(w, S(eng, "name"));
        fputc(' ', w->out);
        value(w, S(eng, "version"));
        em->row_end(w->out);
    }
    char note[96];
    head_note(jr, note, sizeof note);
    em->key(w->out, "Journal head (SHA-256)", NULL);
    em->code(w->out, bh_util_or(S(jr, "head"), "?"));
    fputs(note, w->out);
    em->row_end(w->out);
    em->key(w->out, "Journal", NULL);
    fprintf(w->out, "%.0f records, ", N(jr, "records", 0));
    if (flag(jr, "intact")) {
        fputs("chain intact", w->out);
    } else {
        em->warn(w->out, 1);
        fputs("CHAIN BROKEN", w->out);
        em->warn(w->out, 0);
    }
    if (w->shows->detail && N(jr, "checkpoints", 0) > 0) fputs(", signed checkpoints", w->out);
    em->row_end(w->out);
}

static void summary(const walk *w) {
    heading(w, 2, "Summary");
    w->em->table(w->out, "summary", 0, NULL);
    summary_run(w);
    summary_end(w);
    w->em->table_end(w->out);
    if (!w->shows->detail) return;
    w->em->para(w->out, NULL, 1);
    fputs("Quote the journal head in the incident ticket; ", w->out);
    w->em->code(w->out, "bulkhead verify RUN --expect-head HASH");
    fputs(" checks it later.", w->out);
    w->em->para(w->out, NULL, 0);
}

/* The instances no longer in doubt, for the line under the section:
 * "isolate[web2] (a later attempt succeeded), ...". */
static void resolved_list(const walk *w, const cJSON *resolved) {
    const cJSON *x;
    int n = 0;
    cJSON_ArrayForEach(x, resolved) {
        if (n++) fputs(", ", w->out);
        name(w, bh_util_or(S(x, "step"), "?"), x, 0);
        const char *by = bh_util_or(S(x, "by"), "");
        if (strncmp(by, "settled", 7) == 0) { /* a person checked it: bulkhead undo --settle */
            fputs(" (", w->out);
            text(w, by);
            fputs(": ", w->out);
            text(w, bh_util_or(S(x, "note"), ""));
            fputs(")", w->out);
        } else {
            fputs(bh_util_streq(by, "undo") ? " (undone)" : " (a later attempt succeeded)", w->out);
        }
    }
}

/* The in-doubt section: what may remain, then what no longer does. It
 * comes first after the summary: it is what the reader must act on. */
static void in_doubt(const walk *w) {
    static const char *const cols[] = {"Since",        "Step", "What may remain",
                                       "Why in doubt", "Undo", NULL};
    const bh_render_emitter *em = w->em;
    const cJSON *doubt = get(w->m, "in_doubt");
    const cJSON *open = get(doubt, "remaining"), *resolved = get(doubt, "resolved");
    heading(w, 2, "In doubt: may remain");
    if (cJSON_GetArraySize(open) == 0) {
        para(w, "in-doubt", doubt_none(doubt));
    } else {
        em->para(w->out, NULL, 1);
        fputs(DOUBT_INTRO, w->out);
        em->code(w->out, "bulkhead undo RUN");
        fputs(DOUBT_UNDO, w->out);
        em->para(w->out, NULL, 0);
        em->table(w->out, "in-doubt", 0, cols);
        const cJSON *x;
        cJSON_ArrayForEach(x, open) {
            when_which(w, x);
            if (w->shows->stress_remains) em->strong(w->out, 1);
            value(w, S(x, "may_remain"));
            if (w->shows->stress_remains) em->strong(w->out, 0);
            em->cell(w->out, NULL);
            text(w, S(x, "doubt"));
            em->cell(w->out, NULL);
            fputs(undo_text(x), w->out);
            em->row_end(w->out);
        }
        em->table_end(w->out);
    }
    if (cJSON_GetArraySize(resolved) > 0) {
        em->para(w->out, NULL, 1);
        fputs("No longer in doubt: ", w->out);
        resolved_list(w, resolved);
        fputc('.', w->out);
        em->para(w->out, NULL, 0);
    }
}

/* Before an event's next detail: the cell they go in, or a space. */
static void next_detail(const walk *w, int *n) {
    if ((*n)++ == 0)
        w->em->cell(w->out, NULL);
    else
        fputc(' ', w->out);
}

/* An event's details: "operator: alice previous: ..." and the instances a
 * rollback left in doubt without an undo. An empty cell when it has none. */
static void event_detail(const walk *w, const cJSON *e) {
    static const char *const keys[] = {"operator", "previous", "signal", "action", "status", NULL};
    int n = 0;
    for (int i = 0; keys[i]; i++) {
        if (!S(e, keys[i])) continue;
        next_detail(w, &n);
        fprintf(w->out, "%s: ", keys[i]);
        text(w, S(e, keys[i]));
    }
    const cJSON *x;
    int stays = 0;
    cJSON_ArrayForEach(x, get(e, "in_doubt_without_undo")) if (cJSON_IsString(x)) {
        if (stays++ == 0) {
            next_detail(w, &n);
            fputs("in_doubt_without_undo: ", w->out);
        } else {
            fputs("; ", w->out);
        }
        text(w, x->valuestring);
    }
    if (n == 0) w->em->empty(w->out);
}

static void events(const walk *w) {
    static const char *const cols[] = {"When", "Event", "Detail", NULL};
    const cJSON *list = get(w->m, "events");
    if (!w->shows->events || cJSON_GetArraySize(list) == 0) return;
    heading(w, 2, "Events");
    w->em->table(w->out, "events", 0, cols);
    const cJSON *e;
    cJSON_ArrayForEach(e, list) {
        char t[64];
        when(w->run, N(e, "t_ms", 0), S(e, "at"), t, sizeof t);
        w->em->row(w->out, bh_render_unverified(e));
        text(w, t);
        w->em->cell(w->out, NULL);
        value(w, S(e, "event"));
        event_detail(w, e);
        w->em->row_end(w->out);
    }
    w->em->table_end(w->out);
}

/* A row of a phase's table: one attempt of a step, or one undo of it. */
static void attempt_row(const walk *w, const char *step, const cJSON *a, int undo) {
    const bh_render_emitter *em = w->em;
    char t[64], d[32];
    when(w->run, N(a, "start_ms", 0), S(a, "start"), t, sizeof t);
    bh_util_format_duration(N(a, "duration_ms", 0), d, sizeof d);
    em->row(w->out, bh_render_unverified(a));
    name(w, step, a, undo);
    em->cell(w->out, NULL);
    fprintf(w->out, "%.0f", N(a, "attempt", 0));
    em->cell(w->out, NULL);
    text(w, t);
    em->cell(w->out, NULL);
    fputs(d, w->out);
    em->cell(w->out, bh_util_or(S(a, "status"), ""));
    value(w, bh_render_status(S(a, "status")));
    em->cell(w->out, NULL);
    const cJSON *e = get(a, "error");
    if (e) {
        text(w, S(e, "code"));
        fputs(": ", w->out);
        text(w, S(e, "message"));
    }
    doubt_note(w, a);
    if (S(a, "next")) { /* only attempts have one */
        fputs(" (next: ", w->out);
        text(w, S(a, "next"));
        fputc(')', w->out);
    }
    em->row_end(w->out);
}

/* The first cells of a row about a step as a whole: its name, then `what`
 * where the attempt and times go (a step that never started has neither;
 * a fan-out's totals are of all its instances), then its status. */
static void step_cells(const walk *w, const cJSON *st, const char *what) {
    w->em->row(w->out, bh_render_unverified(st));
    text(w, S(st, "id"));
    w->em->cell(w->out, NULL);
    if (what) {
        fputs(what, w->out);
        w->em->empty(w->out);
        w->em->empty(w->out);
    } else {
        fputs("-", w->out);
        w->em->cell(w->out, NULL);
        fputs("-", w->out);
        w->em->cell(w->out, NULL);
        fputs("-", w->out);
    }
    w->em->cell(w->out, bh_util_or(S(st, "status"), ""));
    value(w, bh_render_status(S(st, "status")));
    w->em->cell(w->out, NULL);
}

/* A step's rows: each attempt and undo, or the step that never started;
 * then, for a fan-out, its instances' totals (step_done's counts). */
static void step_rows(const walk *w, const cJSON *st) {
    const cJSON *attempts = get(st, "attempts"), *a;
    if (cJSON_GetArraySize(attempts) == 0) {
        step_cells(w, st, NULL);
        text(w, S(st, "reason"));
        w->em->row_end(w->out);
        return;
    }
    cJSON_ArrayForEach(a, attempts) attempt_row(w, S(st, "id"), a, 0);
    cJSON_ArrayForEach(a, get(st, "undos")) attempt_row(w, S(st, "id"), a, 1);
    const cJSON *sum = get(st, "instances");
    if (!sum || !w->shows->detail) return;
    step_cells(w, st, "all");
    fprintf(w->out, "%.0f ok, ", N(sum, "ok", 0));
    if (N(sum, "in_doubt", 0) > 0) fprintf(w->out, "%.0f in doubt, ", N(sum, "in_doubt", 0));
    fprintf(w->out, "%.0f failed, %.0f skipped", N(sum, "failed", 0), N(sum, "skipped", 0));
    w->em->row_end(w->out);
}

/* The time line as a picture, where the format draws one. */
static void timeline(const walk *w) {
    if (!w->em->timeline) return;
    heading(w, 2, "Time line");
    w->em->timeline(w->out, w->m);
}

/* Steps by phase. Where the format draws the time line, these are the
 * steps' tables; else they are the time line. */
static void phases(const walk *w) {
    static const char *const cols[] = {"Step",   "Attempt", "Start", "Duration",
                                       "Status", "Notes",   NULL};
    int drawn = w->em->timeline != NULL;
    heading(w, 2, drawn ? "Steps by phase" : "Timeline by phase");
    const cJSON *p, *st;
    cJSON_ArrayForEach(p, get(w->m, "phases")) {
        w->em->heading(w->out, 3, 1);
        if (!drawn) fputs("Phase ", w->out);
        value(w, S(p, "name"));
        w->em->heading(w->out, 3, 0);
        w->em->table(w->out, "steps", 1, cols);
        cJSON_ArrayForEach(st, get(p, "steps")) step_rows(w, st);
        w->em->table_end(w->out);
    }
}

static void decisions(const walk *w) {
    static const char *const cols[] = {"When", "Step", "Decision", "By", "How", "Why", NULL};
    const cJSON *list = get(w->m, "decisions"), *x;
    if (!section(w, "Decisions", NULL, list, "None recorded.", "decisions", cols)) return;
    cJSON_ArrayForEach(x, list) {
        char t[64];
        when(w->run, N(x, "t_ms", 0), S(x, "at"), t, sizeof t);
        w->em->row(w->out, bh_render_unverified(x));
        text(w, t);
        w->em->cell(w->out, NULL);
        name(w, S(x, "step"), x, 0);
        w->em->cell(w->out, NULL);
        value(w, S(x, "kind"));
        fputs(": ", w->out);
        value(w, S(x, "decision"));
        w->em->cell(w->out, NULL);
        text(w, S(x, "by"));
        w->em->cell(w->out, NULL);
        value(w, S(x, "how"));
        if (w->shows->detail && N(x, "uid", -1) >= 0)
            fprintf(w->out, " (uid %.0f, pid %.0f)", N(x, "uid", 0), N(x, "pid", 0));
        w->em->cell(w->out, NULL);
        text(w, S(x, "why"));
        w->em->row_end(w->out);
    }
    w->em->table_end(w->out);
}

/* What a command or request shows after its result when its end gave no
 * definite answer. */
static void in_doubt_note(const walk *w, const cJSON *x, const char *words) {
    if (!flag(x, "in_doubt")) return;
    w->em->status(w->out, "in_doubt", 1);
    fputs(words, w->out);
    w->em->status(w->out, "in_doubt", 0);
}

/* How a command ended: could not start, a signal, an exit code. */
static void command_result(const walk *w, const cJSON *c) {
    int detail = w->shows->detail;
    if (S(c, "error")) {
        if (detail) fputs("could not start: ", w->out);
        text(w, S(c, "error"));
    } else if (S(c, "signal")) {
        text(w, S(c, "signal"));
        if (detail && flag(c, "timed_out")) fputs(" (timed out)", w->out);
    } else if (get(c, "code")) {
        fprintf(w->out, "exit %.0f", N(c, "code", 0));
    } else {
        fputs("no end recorded", w->out);
    }
    in_doubt_note(w, c, IN_DOUBT_CMD);
}

static void commands(const walk *w) {
    static const char *const cols[] = {"When", "Step", "Command", "Result", NULL};
    const cJSON *list = get(w->m, "commands"), *c;
    const char *note = mode_banner(w->run) ? " (simulated: not executed)" : NULL;
    if (!section(w, "Commands", note, list, "None.", "commands", cols)) return;
    cJSON_ArrayForEach(c, list) {
        when_which(w, c);
        char *args = argv_text(get(c, "argv"));
        w->em->code(w->out, args);
        free(args);
        fputs(read_only(c) ? " (read-only)" : "", w->out);
        w->em->cell(w->out, NULL);
        command_result(w, c);
        w->em->row_end(w->out);
    }
    w->em->table_end(w->out);
}

static void requests(const walk *w) {
    static const char *const cols[] = {"When", "Step", "Request", "Result", NULL};
    const cJSON *list = get(w->m, "requests"), *q;
    const char *note = mode_banner(w->run) ? " (simulated: not sent)" : NULL;
    if (!section(w, "Requests", note, list, "None.", "requests", cols)) return;
    cJSON_ArrayForEach(q, list) {
        char what[64], result[64];
        request_text(q, what, sizeof what, result, sizeof result);
        when_which(w, q);
        text(w, what);
        fputc(' ', w->out);
        w->em->code(w->out, S(q, "url"));
        w->em->cell(w->out, NULL);
        text(w, result);
        if (S(q, "error")) {
            fputs(": ", w->out);
            text(w, S(q, "error"));
        }
        in_doubt_note(w, q, IN_DOUBT_REQ);
        w->em->row_end(w->out);
    }
    w->em->table_end(w->out);
}

static void failures(const walk *w) {
    static const char *const cols[] = {"When", "Step", "Status", "Error", "Handled", NULL};
    const cJSON *list = get(w->m, "failures"), *f;
    if (!section(w, "Failures and how they were handled", NULL, list, "None.", "failures", cols))
        return;
    cJSON_ArrayForEach(f, list) {
        when_which(w, f);
        w->em->status(w->out, bh_util_or(S(f, "status"), ""), 1);
        value(w, bh_render_status(S(f, "status")));
        w->em->status(w->out, bh_util_or(S(f, "status"), ""), 0);
        w->em->cell(w->out, NULL);
        value(w, S(f, "code"));
        fputs(": ", w->out);
        text(w, S(f, "message"));
        doubt_note(w, f);
        w->em->cell(w->out, NULL);
        value(w, S(f, "handled"));
        w->em->row_end(w->out);
    }
    w->em->table_end(w->out);
}

static void evidence(const walk *w) {
    static const char *const cols[] = {"Step", "Kind", "File", "Size", "SHA-256", NULL};
    const cJSON *list = get(w->m, "evidence"), *e;
    if (!section(w, "Evidence and captured output", NULL, list, "None.", "evidence", cols)) return;
    cJSON_ArrayForEach(e, list) {
        w->em->row(w->out, bh_render_unverified(e));
        name(w, S(e, "step"), e, flag(e, "undo"));
        w->em->cell(w->out, NULL);
        value(w, S(e, "kind"));
        if (S(e, "truncated_reason")) {
            fputs(" (truncated: ", w->out);
            text(w, S(e, "truncated_reason"));
            fputc(')', w->out);
        }
        w->em->cell(w->out, NULL);
        w->em->code(w->out, S(e, "path"));
        w->em->cell(w->out, NULL);
        fprintf(w->out, "%.0f", N(e, "size", 0));
        w->em->cell(w->out, NULL);
        w->em->code(w->out, bh_util_or(S(e, "sha256"), "?"));
        w->em->row_end(w->out);
    }
    w->em->table_end(w->out);
}

/* The scorecard of a drill or dry run, as `bulkhead drill` printed it. */
static void scorecard(const walk *w) {
    const cJSON *sc = get(w->m, "scorecard");
    char *card = sc ? bh_scorecard_text(sc) : NULL;
    if (!card) return;
    w->em->heading(w->out, 2, 1);
    fputs("Scorecard", w->out);
    if (bh_render_unverified(sc)) w->em->unverified(w->out);
    w->em->heading(w->out, 2, 0);
    w->em->pre(w->out, "scorecard", card);
    free(card);
}

static void colophon(const walk *w) {
    if (!w->shows->colophon) return;
    w->em->para(w->out, NULL, 1);
    w->em->fine(w->out, 1);
    fputs("Made by ", w->out);
    value(w, S(get(w->m, "report"), "generator"));
    fputs(" from the run's journal alone.", w->out);
    w->em->fine(w->out, 0);
    w->em->para(w->out, NULL, 0);
}

void bh_render_report(const cJSON *m, const bh_render_emitter *em, const bh_render_shows *shows,
                      FILE *out) {
    walk w = {em, shows, out, m, get(m, "run"), get(m, "journal")};
    opening(&w);
    summary(&w);
    in_doubt(&w);
    events(&w);
    timeline(&w);
    phases(&w);
    decisions(&w);
    commands(&w);
    requests(&w);
    failures(&w);
    evidence(&w);
    scorecard(&w);
    colophon(&w);
    em->end(out);
}
