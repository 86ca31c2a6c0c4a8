#include "report/html.h"

#include "report/markup.h"
#include "report/svg.h"

static const char CSS[] =
    "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px auto;"
    "max-width:1100px;color:#1d2329;padding:0 16px}"
    "h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;"
    "border-bottom:1px solid #d8dee4;padding-bottom:4px}"
    "table{border-collapse:collapse;width:100%;margin:6px 0 12px}"
    "th,td{border:1px solid #d8dee4;padding:4px 8px;text-align:left;vertical-align:top}"
    "th{background:#f3f5f7;font-weight:600}td.k{width:220px;color:#57606a}"
    "code{font:12px ui-monospace,Menlo,Consolas,monospace;word-break:break-all}"
    ".banner{background:#fff4ce;border:1px solid #d4a72c;padding:8px 12px;margin:10px 0;"
    "font-weight:600}"
    ".broken{background:#ffebe9;border-color:#cf222e}"
    "tr.unverified td{background:#fff8f7}"
    ".unv{color:#cf222e;font-weight:700;font-size:11px;text-transform:uppercase}"
    "svg .unverified{fill-opacity:.4;stroke:#cf222e;stroke-dasharray:2 2}"
    ".s-ok{color:#1a7f37}.s-failed,.s-timed_out{color:#cf222e}.s-cancelled,.s-unknown{color:"
    "#9a6700}.s-skipped{color:#6e7781}.s-undone{color:#8250df}"
    ".s-in_doubt{color:#bf3989;font-weight:600}"
    "table#in-doubt td{background:#fff0f7}"
    "svg{border:1px solid #d8dee4;background:#fff}"
    "svg text{font:11px system-ui,sans-serif;fill:#1d2329}"
    "svg .phase-band{fill:#f6f8fa}svg .phase-band.alt{fill:#eef1f4}"
    "svg .phase-label{font-weight:700;fill:#57606a}"
    "svg .bar.status-ok{fill:#2da44e}svg .bar.status-failed{fill:#cf222e}"
    "svg .bar.status-timed_out{fill:#bc4c00}svg .bar.status-cancelled{fill:#bf8700}"
    "svg .bar.status-unknown{fill:#9a6700}svg .bar.status-running{fill:#0969da}"
    "svg .bar.status-skipped{fill:#8c959f}"
    /* in doubt: a colour of its own, and an outline, so it reads as neither
     * failed nor done */
    "svg .bar.status-in_doubt{fill:#bf3989;stroke:#6b1f4a;stroke-width:1.5}"
    "svg .undo-bar{fill:#8250df}svg .undo-bar.status-failed{fill:#cf222e}"
    "svg .wait.approval{fill:#8250df;fill-opacity:.35;stroke:#8250df;stroke-dasharray:3 2}"
    "svg .wait.retry{fill:#bf8700;fill-opacity:.25;stroke:#bf8700;stroke-dasharray:2 2}"
    "svg .grid{stroke:#d8dee4}svg .axis{fill:#57606a}"
    ".legend span{display:inline-block;margin-right:14px}"
    ".legend i{display:inline-block;width:12px;height:10px;margin-right:4px;"
    "vertical-align:middle}";

static void html_begin(FILE *out, const char *name, const char *words) {
    fprintf(out, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
                 "<meta name=\"viewport\" content=\"width=device-width\">\n"
                 /* The report is a file people open from an evidence store:
                  * no script runs and nothing is fetched, whatever the
                  * journal says. */
                 "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
                 "style-src 'unsafe-inline'; img-src data:\">\n<title>");
    bh_markup_text(out, name);
    fprintf(out, "%s</title>\n<style>%s</style></head><body>\n", words, CSS);
}

static void html_end(FILE *out) {
    fputs("</body></html>\n", out);
}

static void html_heading(FILE *out, int level, int open) {
    fprintf(out, open ? "<h%d>" : "</h%d>\n", level);
}

/* An element's id attribute, when it has one. */
static void html_id(FILE *out, const char *id) {
    if (id) fprintf(out, " id=\"%s\"", id);
}

static void html_para(FILE *out, const char *id, int open) {
    if (!open) {
        fputs("</p>\n", out);
        return;
    }
    fputs("<p", out);
    html_id(out, id);
    fputc('>', out);
}

static void html_banner(FILE *out, const char *id, int alarm, int open) {
    if (!open) {
        fputs("</div>\n", out);
        return;
    }
    fprintf(out, "<div class=\"banner%s\"", alarm ? " broken" : "");
    html_id(out, id);
    fputc('>', out);
}

static void html_banner_break(FILE *out) {
    fputs("<br>", out);
}

static void html_pre(FILE *out, const char *id, const char *text) {
    fputs("<pre", out);
    html_id(out, id);
    fputc('>', out);
    bh_markup_text(out, text);
    fputs("</pre>\n", out);
}

/* The key to the time line's colours, then the picture. */
static void html_timeline(FILE *out, const cJSON *m) {
    const cJSON *jr = cJSON_GetObjectItemCaseSensitive(m, "journal");
    const cJSON *run = cJSON_GetObjectItemCaseSensitive(m, "run");
    fprintf(out,
            "<p class=\"legend\">"
            "<span><i style=\"background:#2da44e\"></i>ok</span>"
            "<span><i style=\"background:#cf222e\"></i>failed</span>"
            "<span><i style=\"background:#bc4c00\"></i>timed out</span>"
            "<span><i style=\"background:#bf8700\"></i>cancelled</span>"
            "<span><i style=\"background:#9a6700\"></i>unknown</span>"
            "<span><i style=\"background:#bf3989;outline:1.5px solid #6b1f4a\"></i>in doubt "
            "(may have acted)</span>"
            "<span><i style=\"background:#8250df;opacity:.45\"></i>waiting for "
            "approval</span>"
            "<span><i style=\"background:#bf8700;opacity:.35\"></i>retry backoff</span>"
            "%s%s</p>\n",
            cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(jr, "intact"))
                ? ""
                : "<span><i style=\"border:1px dashed #cf222e;opacity:.6\"></i>unverified (after "
                  "the break)</span>",
            cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(run, "simulated_time"))
                ? "<span>(simulated time)</span>"
                : "");
    bh_svg_timeline(m, out);
}

/* A table of which there is one has an id; one per phase, a class. */
static void html_table(FILE *out, const char *name, int repeated, const char *const *cols) {
    fprintf(out, "<table %s=\"%s\">", repeated ? "class" : "id", name);
    if (!cols) {
        fputc('\n', out);
        return;
    }
    fputs("<tr>", out);
    for (const char *const *c = cols; *c; c++)
        fprintf(out, "<th>%s</th>", *c);
    fputs("</tr>\n", out);
}

static void html_table_end(FILE *out) {
    fputs("</table>\n", out);
}

/* A table row and its first cell, opened: marked when the chain does not
 * vouch for what it shows. */
static void html_row(FILE *out, int unverified) {
    if (unverified)
        fputs("<tr class=\"unverified\"><td><span class=\"unv\">unverified</span> ", out);
    else
        fputs("<tr><td>", out);
}

/* A cell's opening tag, coloured by the status it shows. */
static void html_td(FILE *out, const char *status) {
    if (status)
        fprintf(out, "<td class=\"s-%s\">", bh_markup_class(status));
    else
        fputs("<td>", out);
}

static void html_key(FILE *out, const char *key, const char *status) {
    fprintf(out, "<tr><td class=\"k\">%s</td>", key);
    html_td(out, status);
}

static void html_cell(FILE *out, const char *status) {
    fputs("</td>", out);
    html_td(out, status);
}

static void html_empty(FILE *out) {
    fputs("</td><td>", out);
}

static void html_row_end(FILE *out) {
    fputs("</td></tr>\n", out);
}

static void html_code(FILE *out, const char *s) {
    fputs("<code>", out);
    bh_markup_text(out, s);
    fputs("</code>", out);
}

static void html_strong(FILE *out, int open) {
    fputs(open ? "<b>" : "</b>", out);
}

/* A warning's box or colour is its banner's or its cell's. */
static void html_warn(FILE *out, int open) {}

static void html_shout(FILE *out, const char *words) {
    fputs(words, out);
}

static void html_status(FILE *out, const char *status, int open) {
    if (open)
        fprintf(out, "<span class=\"s-%s\">", bh_markup_class(status));
    else
        fputs("</span>", out);
}

static void html_unverified(FILE *out) {
    fputs(" <span class=\"unv\">unverified</span>", out);
}

static void html_xref(FILE *out, const char *id, const char *words) {
    fprintf(out, "<a href=\"#%s\">%s</a>", id, words);
}

static void html_fine(FILE *out, int open) {
    fputs(open ? "<small>" : "</small>", out);
}

const bh_render_emitter bh_html_emitter = {
    .begin = html_begin,
    .end = html_end,
    .heading = html_heading,
    .para = html_para,
    .banner = html_banner,
    .banner_break = html_banner_break,
    .pre = html_pre,
    .timeline = html_timeline,
    .table = html_table,
    .table_end = html_table_end,
    .row = html_row,
    .key = html_key,
    .cell = html_cell,
    .empty = html_empty,
    .row_end = html_row_end,
    .text = bh_markup_text,
    .code = html_code,
    .strong = html_strong,
    .warn = html_warn,
    .shout = html_shout,
    .status = html_status,
    .unverified = html_unverified,
    .xref = html_xref,
    .fine = html_fine,
};
