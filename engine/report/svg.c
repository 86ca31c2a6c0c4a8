#include "report/svg.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "journal/journal.h"
#include "report/markup.h"
#include "report/render.h"

#define S bh_journal_str
#define N bh_journal_num

/* The picture's geometry, in pixels: the labels left of the plot. */
enum { LEFT = 230, WIDTH = 1040, PLOT = WIDTH - LEFT - 20, ROW_H = 18, TOP = 28 };

/* One row of the time line: an attempt, an undo, or a step that never
 * started (attempt NULL). */
typedef struct {
    const cJSON *step, *attempt, *phase;
    int undo;
} row;

typedef struct {
    row *v;
    size_t n, cap;
} row_list;

/* Where time t falls on the plot: inside it whatever a journal says (a
 * NaN or a time past the end would draw off the page or not at all). */
static double at_x(double t, double span) {
    double f = t / span;
    if (!isfinite(f) || f < 0) f = 0;
    if (f > 1) f = 1;
    return LEFT + PLOT * f;
}

/* A bar at least 2 pixels wide, so that an instant still shows. */
static double bar_width(double x0, double x1) {
    return x1 - x0 < 2 ? 2 : x1 - x0;
}

static void add_row(row_list *r, row x) {
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        r->v = realloc(r->v, r->cap * sizeof *r->v);
        if (!r->v) abort();
    }
    r->v[r->n++] = x;
}

/* The rows, phase by phase: each step's attempts (or one row for a step
 * that has none), then its undos. */
static row_list rows_of(const cJSON *phases) {
    row_list r = {NULL, 0, 0};
    const cJSON *p, *st, *a;
    cJSON_ArrayForEach(p, phases) {
        cJSON_ArrayForEach(st, cJSON_GetObjectItemCaseSensitive(p, "steps")) {
            const cJSON *attempts = cJSON_GetObjectItemCaseSensitive(st, "attempts");
            if (cJSON_GetArraySize(attempts) == 0) add_row(&r, (row){st, NULL, p, 0});
            cJSON_ArrayForEach(a, attempts) add_row(&r, (row){st, a, p, 0});
            cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(st, "undos"))
                add_row(&r, (row){st, a, p, 1});
        }
    }
    return r;
}

/* The time the plot spans: the run's, or the end of a wait past it. */
static double span_of(const cJSON *run, const cJSON *waits) {
    double span = N(run, "span_ms", 0);
    const cJSON *a;
    cJSON_ArrayForEach(a, waits) if (N(a, "end_ms", 0) > span) span = N(a, "end_ms", 0);
    if (!(span > 0) || !isfinite(span)) span = 1;
    return span;
}

/* The axis: 5 ticks, from "start" to the span. */
static void axis(FILE *out, double span, int height) {
    for (int k = 0; k <= 5; k++) {
        double t = span * k / 5;
        double x = LEFT + PLOT * (double)k / 5;
        char d[32];
        bh_util_format_duration(t, d, sizeof d);
        fprintf(out,
                "<line class=\"grid\" x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\"/>"
                "<text class=\"axis\" x=\"%.1f\" y=\"16\" text-anchor=\"middle\">%s%s</text>\n",
                x, TOP - 4, x, height - 16, x, k ? "+" : "", k ? d : "start");
    }
}

/* A band behind each phase's rows, shaded in turn, with the phase's name. */
static void phase_bands(FILE *out, const row_list *r) {
    size_t i = 0;
    int alt = 0;
    while (i < r->n) {
        size_t from = i;
        while (i < r->n && r->v[i].phase == r->v[from].phase)
            i++;
        double y = TOP + (double)from * ROW_H;
        fprintf(out,
                "<rect class=\"phase-band%s\" x=\"0\" y=\"%.1f\" width=\"%d\" height=\"%.1f\"/>"
                "<text class=\"phase-label\" x=\"6\" y=\"%.1f\">",
                alt ? " alt" : "", y, WIDTH, (double)(i - from) * ROW_H, y + 13);
        bh_markup_text(out, S(r->v[from].phase, "name"));
        fprintf(out, "</text>\n");
        alt = !alt;
    }
}

/* The step's approval waits, drawn on its first row. */
static void approval_waits(FILE *out, const cJSON *waits, const char *sid, double y, double span) {
    const cJSON *a;
    cJSON_ArrayForEach(a, waits) {
        if (!bh_util_streq(S(a, "kind"), "approval") || !bh_util_streq(S(a, "step"), sid)) continue;
        double x0 = at_x(N(a, "start_ms", 0), span), x1 = at_x(N(a, "end_ms", 0), span);
        fprintf(out, "<rect class=\"wait approval\" data-step=\"");
        bh_markup_text(out, sid);
        fprintf(out,
                "\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%d\"><title>"
                "approval wait: ",
                x0, y + 3, bar_width(x0, x1), ROW_H - 6);
        bh_markup_text(out, S(a, "reason"));
        fprintf(out, "</title></rect>\n");
    }
}

/* The attempt's (or undo's) bar, its title what a pointer shows on it. */
static void bar(FILE *out, const row *x, double y, double span) {
    const cJSON *at = x->attempt;
    const char *sid = S(x->step, "id");
    double s0 = N(at, "start_ms", 0), s1 = N(at, "end_ms", span);
    double x0 = at_x(s0, span), x1 = at_x(s1, span);
    const char *status = S(at, "status") ? S(at, "status") : "running";
    int unv = bh_render_unverified(at);
    char d[32];
    bh_util_format_duration(s1 - s0, d, sizeof d);
    /* "bar" is a step attempt, one each; an undo is an "undo-bar" */
    fprintf(out, "<rect class=\"%s status-%s%s", x->undo ? "undo-bar" : "bar",
            bh_markup_class(status), unv ? " unverified" : "");
    fprintf(out, "\" data-step=\"");
    bh_markup_text(out, sid);
    fprintf(out,
            "\" data-attempt=\"%.0f\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
            "height=\"%d\"><title>",
            N(at, "attempt", 0), x0, y + 3, bar_width(x0, x1), ROW_H - 6);
    bh_render_name(out, bh_markup_text, sid, at, x->undo);
    fprintf(out, " attempt %.0f: ", N(at, "attempt", 0));
    bh_markup_text(out, bh_render_status(status));
    if (S(at, "may_remain")) {
        fputs(": ", out);
        bh_markup_text(out, S(at, "may_remain"));
    }
    fprintf(out, ", %s%s</title></rect>\n", d,
            unv ? " (unverified: the journal's chain is broken before it)" : "");
}

/* The backoffs after an attempt; one follows an attempt, never an undo of
 * the same number. */
static void backoffs(FILE *out, const cJSON *waits, const row *x, double y, double span) {
    const cJSON *at = x->attempt, *a;
    const char *sid = S(x->step, "id");
    cJSON_ArrayForEach(a, waits) {
        if (x->undo || !bh_util_streq(S(a, "kind"), "retry") || !bh_util_streq(S(a, "step"), sid) ||
            N(a, "attempt", 0) != N(at, "attempt", 0) || N(a, "item", 0) != N(at, "item", 0))
            continue;
        double w0 = at_x(N(a, "start_ms", 0), span), w1 = at_x(N(a, "end_ms", 0), span);
        fprintf(out,
                "<rect class=\"wait retry\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                "height=\"%d\"><title>backoff before the next attempt</title></rect>\n",
                w0, y + 5, bar_width(w0, w1), ROW_H - 10);
    }
}

/* Row i: its label, the step's approval waits on its first row, the bar,
 * the backoffs that follow it. */
static void draw_row(FILE *out, const row_list *r, size_t i, const cJSON *waits, double span) {
    const row *x = &r->v[i];
    const cJSON *at = x->attempt;
    const char *sid = S(x->step, "id");
    double y = TOP + (double)i * ROW_H;
    fprintf(out, "<text x=\"96\" y=\"%.1f\">", y + 13);
    bh_render_name(out, bh_markup_text, sid, at, x->undo);
    if (at && N(at, "attempt", 0) > 1) fprintf(out, " (%.0f)", N(at, "attempt", 0));
    fprintf(out, "</text>\n");
    if (i == 0 || r->v[i - 1].step != x->step) approval_waits(out, waits, sid, y, span);
    if (!at) return;
    bar(out, x, y, span);
    backoffs(out, waits, x, y, span);
}

void bh_svg_timeline(const cJSON *m, FILE *out) {
    const cJSON *waits = cJSON_GetObjectItemCaseSensitive(m, "waits");
    row_list r = rows_of(cJSON_GetObjectItemCaseSensitive(m, "phases"));
    double span = span_of(cJSON_GetObjectItemCaseSensitive(m, "run"), waits);
    int height = TOP + (int)r.n * ROW_H + 20;
    fprintf(out,
            "<svg id=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
            "height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"time line\">\n",
            WIDTH, height, WIDTH, height);
    axis(out, span, height);
    phase_bands(out, &r);
    for (size_t i = 0; i < r.n; i++)
        draw_row(out, &r, i, waits, span);
    fprintf(out, "</svg>\n");
    free(r.v);
}
