#include "run/console.h"

#include <stdlib.h>
#include <string.h>

#include <stdarg.h>

#include "base/json.h"
#include "base/util.h"

#define REDRAW_MS 200

struct bh_console {
    bh_console_mode mode;
    FILE *out;
    uv_timer_t timer;
    int timer_on;
    char *step;     /* the step shown on the live line: the latest started */
    size_t running; /* attempts in flight */
    uint64_t step_started;
    const bh_redact *redact; /* secrets masked in everything shown */
};

/* Every line a person sees goes through here: raw, the console's own
 * colours and line control, as it is; then the text, formatted, masked
 * and made safe for a terminal (what it holds comes from runbooks, items
 * and commands' output, which must not drive the terminal). */
static void say(bh_console *c, FILE *out, const char *raw, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void say(bh_console *c, FILE *out, const char *raw, const char *fmt, ...) {
    char stack[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(stack, sizeof stack, fmt, ap);
    va_end(ap);
    char *text = stack;
    if (n < 0) return;
    if ((size_t)n >= sizeof stack) {
        text = bh_util_xmalloc((size_t)n + 1);
        va_start(ap, fmt);
        vsnprintf(text, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    char *masked = bh_redact_text(c->redact, text, (size_t)n, NULL);
    /* a NUL, bytes that are not UTF-8, controls: shown as JSON writes them */
    const char *shown = masked ? masked : text;
    char *escaped = bh_json_escape_terminal(shown, strlen(shown), NULL);
    if (raw) fputs(raw, out);
    fputs(escaped ? escaped : shown, out);
    free(escaped);
    free(masked);
    if (text != stack) free(text);
}

void bh_console_set_redact(bh_console *c, const bh_redact *r) {
    c->redact = r;
}

bh_console *bh_console_new(uv_loop_t *loop, bh_console_mode mode, FILE *out) {
    bh_console *c = bh_util_xcalloc(1, sizeof *c);
    c->mode = mode;
    c->out = out;
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    /* The redraw timer must not keep the loop alive on its own. */
    uv_unref((uv_handle_t *)&c->timer);
    return c;
}

static void console_closed(uv_handle_t *h) {
    bh_console *c = h->data;
    free(c->step);
    free(c);
}

void bh_console_close(bh_console *c) {
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, console_closed);
}

static int human(const bh_console *c) {
    return c->mode != BH_CONSOLE_JSON;
}

static void clear_live(bh_console *c) {
    if (c->mode == BH_CONSOLE_TTY && c->running) fputs("\r\033[K", c->out);
}

static void draw_live(bh_console *c) {
    if (c->mode != BH_CONSOLE_TTY || !c->running || !c->step) return;
    char el[32];
    bh_util_format_duration((double)(uv_hrtime() - c->step_started) / 1e6, el, sizeof el);
    if (c->running > 1)
        say(c, c->out, "\r\033[K  \033[36m…\033[0m ", "%zu running, latest %s  %s", c->running,
            c->step, el);
    else
        say(c, c->out, "\r\033[K  \033[36m…\033[0m ", "%s  running %s", c->step, el);
    fflush(c->out);
}

static void redraw(uv_timer_t *t) {
    draw_live(t->data);
}

static void on_run_start(bh_console *c, const char *run_id, const char *title, const char *dir,
                         size_t nsteps, const char *mode) {
    if (!human(c)) return;
    say(c, c->out, NULL, "run %s: %s (%zu steps, %s)\n  journal: %s/journal.jsonl\n", run_id, title,
        nsteps, mode, dir);
    if (strstr(mode, "dry-run") || strstr(mode, "drill"))
        say(c, c->out, NULL,
            "  %s: nothing is executed or sent; approvals are granted; time is simulated\n",
            strstr(mode, "drill") ? "DRILL" : "DRY RUN");
    fflush(c->out);
}

static void on_phase(bh_console *c, const char *phase) {
    if (!human(c)) return;
    clear_live(c);
    say(c, c->out, NULL, "phase %s\n", phase);
    draw_live(c);
    fflush(c->out);
}

static void on_step_start(bh_console *c, const char *label) {
    free(c->step);
    c->step = bh_util_xstrdup(label);
    c->running++;
    c->step_started = uv_hrtime();
    if (c->mode == BH_CONSOLE_TTY) {
        draw_live(c);
        uv_timer_start(&c->timer, redraw, REDRAW_MS, REDRAW_MS);
    }
}

static const char *mark(const bh_console *c, const char *status) {
    int tty = c->mode == BH_CONSOLE_TTY;
    if (strcmp(status, "ok") == 0) return tty ? "  \033[32m✓\033[0m" : "  ok  ";
    if (strcmp(status, "skipped") == 0) return tty ? "  \033[2m-\033[0m" : "  skip";
    if (strcmp(status, "in_doubt") == 0) return tty ? "  \033[33m✗\033[0m" : "  FAIL";
    return tty ? "  \033[31m✗\033[0m" : "  FAIL";
}

/* For people: "in doubt", not the record's in_doubt. */
static const char *said(const char *status) {
    return strcmp(status, "in_doubt") == 0 ? "in doubt" : status;
}

static void on_step_end(bh_console *c, const char *id, const char *status, double ms,
                        const char *detail) {
    if (c->running) c->running--;
    if (!c->running) uv_timer_stop(&c->timer);
    if (human(c)) {
        clear_live(c);
        char el[32];
        bh_util_format_duration(ms, el, sizeof el);
        say(c, c->out, mark(c, status), " %s  %s %s\n", id, said(status), el);
        if (detail && *detail) say(c, c->out, NULL, "      %s\n", detail);
        draw_live(c);
        fflush(c->out);
    }
}

static void on_step_unrecorded(bh_console *c, const char *id, const char *status, double ms,
                               int err) {
    if (c->running) c->running--;
    if (!c->running) uv_timer_stop(&c->timer);
    if (!human(c)) return;
    clear_live(c);
    char el[32];
    bh_util_format_duration(ms, el, sizeof el);
    const char *mark = c->mode == BH_CONSOLE_TTY ? "  \033[33m?\033[0m" : "  ??  ";
    say(c, c->out, mark, " %s  not recorded %s\n", id, el);
    /* What it did matters to whoever resumes it; the journal has no word. */
    say(c, c->out, NULL,
        "      it ended %s, but its end could not be written to the journal (%s): for the "
        "record its outcome is unknown, and `bulkhead resume` asks whether to run it again\n",
        strcmp(status, "ok") == 0 ? "without error" : status, bh_util_strerror(err));
    draw_live(c);
    fflush(c->out);
}

static void on_step_skipped(bh_console *c, const char *id, const char *reason) {
    if (!human(c)) return;
    clear_live(c);
    say(c, c->out, mark(c, "skipped"), " %s  skipped (%s)\n", id, reason);
    draw_live(c);
    fflush(c->out);
}

static void on_log(bh_console *c, const char *step, const char *text) {
    if (!human(c)) return;
    clear_live(c);
    say(c, c->out, NULL, "    %s | %s\n", step, text);
    draw_live(c);
    fflush(c->out);
}

static void on_text(bh_console *c, const char *text) {
    if (!human(c)) return;
    clear_live(c);
    say(c, c->out, NULL, "%s", text);
    draw_live(c);
    fflush(c->out);
}

static void on_notice(bh_console *c, const char *text) {
    if (!human(c)) {
        say(c, stderr, NULL, "bulkhead: %s\n", text);
        return;
    }
    clear_live(c);
    say(c, c->out, NULL, "  ! %s\n", text);
    draw_live(c);
    fflush(c->out);
}

static void on_run_end(bh_console *c, const char *run_id, const char *status, double ms,
                       const char *counts) {
    if (!human(c)) return;
    char el[32];
    bh_util_format_duration(ms, el, sizeof el);
    say(c, c->out, NULL, "run %s %s in %s: %s\n", run_id, status, el, counts);
    fflush(c->out);
}

static void on_record(bh_console *c, const char *line, size_t len) {
    if (c->mode != BH_CONSOLE_JSON) return;
    fwrite(line, 1, len, c->out);
    fputc('\n', c->out);
    fflush(c->out);
}

/* s as one line of the console (NULL for NULL): its secrets masked first
 * (a secret may hold newlines: a key), then a newline written \u000a, so
 * that what a runbook, an item or a command says cannot add a line that
 * looks like the engine's ("  ok   isolate[web2]"). *copy holds what to
 * free, NULL when s needed nothing. */
static const char *one_line(const bh_console *c, const char *s, char **copy) {
    *copy = NULL;
    if (!s) return NULL;
    char *masked = bh_redact_text(c->redact, s, strlen(s), NULL);
    const char *m = masked ? masked : s;
    char *lined = bh_json_escape_line(m, strlen(m), NULL);
    if (lined) {
        free(masked);
        *copy = lined;
    } else {
        *copy = masked;
    }
    return *copy ? *copy : s;
}

static void show(bh_console *c, bh_event *ev);

/* The console's view of the run's events (events.h): every text from the
 * run made one line, but the engine's own multi-line text (a scorecard). */
static void on_event(void *ud, bh_event *ev) {
    bh_console *c = ud;
    if (ev->kind == BH_EV_TEXT || ev->kind == BH_EV_LINE || ev->kind == BH_EV_RECORD) {
        show(c, ev);
        return;
    }
    char *copies[3];
    bh_event safe = *ev;
    safe.name = one_line(c, ev->name, &copies[0]);
    safe.text = one_line(c, ev->text, &copies[1]);
    safe.title = one_line(c, ev->title, &copies[2]);
    show(c, &safe);
    for (size_t k = 0; k < 3; k++)
        free(copies[k]);
}

static void show(bh_console *c, bh_event *ev) {
    switch (ev->kind) {
    case BH_EV_RUN_START:
        on_run_start(c, ev->name, ev->title, ev->dir, ev->count, ev->mode);
        break;
    case BH_EV_PHASE:
        on_phase(c, ev->name);
        break;
    case BH_EV_ATTEMPT_START:
        on_step_start(c, ev->name);
        break;
    case BH_EV_ATTEMPT_END:
        on_step_end(c, ev->name, ev->status, ev->ms, ev->text);
        break;
    case BH_EV_ATTEMPT_UNRECORDED:
        on_step_unrecorded(c, ev->name, ev->status, ev->ms, ev->err);
        break;
    case BH_EV_STEP_SKIPPED:
        on_step_skipped(c, ev->name, ev->text);
        break;
    case BH_EV_LOG:
        on_log(c, ev->name, ev->text);
        break;
    case BH_EV_NOTICE:
        on_notice(c, ev->text);
        break;
    case BH_EV_TEXT:
        on_text(c, ev->text);
        break;
    case BH_EV_RUN_END:
        on_run_end(c, ev->name, ev->status, ev->ms, ev->text);
        break;
    case BH_EV_LINE:
        on_record(c, ev->line, ev->len);
        break;
    case BH_EV_RECORD: /* the journal's: the console shows the line once written */
    case BH_EV_APPROVAL_ASKED:
    case BH_EV_APPROVAL_GIVEN:
    case BH_EV_APPROVAL_CLOSED:
    case BH_EV_MANUAL_ASKED:
    case BH_EV_MANUAL_ANSWERED:
    case BH_EV_GATE_TRY:
    case BH_EV_INTERRUPT:
    case BH_EV_OUTPUT: /* in the step's output files; `show` points at them */
        break;         /* people read these in the notices and log lines said with them */
    }
}

void bh_console_subscribe(bh_console *c, bh_events *events) {
    bh_events_subscribe(events, on_event, c);
}
