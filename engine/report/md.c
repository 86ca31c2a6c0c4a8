#include "report/md.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"

/* Text from the journal in Markdown: nothing in it can end a table row,
 * open a link or an HTML tag, or start a code span; it reads as written. */
static void md_text(FILE *out, const char *s) {
    char *copy;
    s = bh_json_visible(s, &copy); /* NUL, bytes not UTF-8: as the journal writes them */
    for (; s && *s; s++) {
        switch (*s) {
        case '\\':
        case '|':
        case '`':
        case '*':
        case '[':
        case ']':
            fputc('\\', out);
            fputc(*s, out);
            break;
        case '<':
            fputs("&lt;", out);
            break;
        case '\n':
        case '\r':
            fputc(' ', out);
            break;
        default:
            fputc(*s, out);
        }
    }
    free(copy);
}

/* A fence of backticks nothing in s can close: one longer than the
 * longest run in s, and at least min long. */
static void md_fence(FILE *out, const char *s, size_t min) {
    size_t run = 0, longest = min - 1;
    for (const char *c = s; *c; c++) {
        run = *c == '`' ? run + 1 : 0;
        if (run > longest) longest = run;
    }
    for (size_t k = 0; k <= longest; k++)
        fputc('`', out);
}

/* A code span holding s verbatim, in a fence of md_fence. Only '|' is
 * escaped (a table would end the cell on it; GFM takes "\|" back out of
 * the span). A span cannot be empty: a missing s is "?". */
static void md_code(FILE *out, const char *s) {
    char *copy;
    s = bh_json_visible(s ? s : "?", &copy);
    size_t len = strlen(s);
    int pad = len > 0 && (s[0] == '`' || s[len - 1] == '`' || s[0] == ' ');
    md_fence(out, s, 1);
    if (pad) fputc(' ', out);
    for (const char *c = s; *c; c++) {
        if (*c == '|')
            fputs("\\|", out);
        else if (*c == '\n' || *c == '\r')
            fputc(' ', out);
        else
            fputc(*c, out);
    }
    if (pad) fputc(' ', out);
    md_fence(out, s, 1);
    free(copy);
}

/* A fenced block: at least ```, longer than any run of backticks in it. */
static void md_pre(FILE *out, const char *id, const char *text) {
    md_fence(out, text, 3);
    fprintf(out, "\n%s", text);
    md_fence(out, text, 3);
    fputc('\n', out);
}

/* Markdown has no document around the text, no anchors and no classes:
 * what takes them ignores them. */
static void md_nothing(FILE *out) {}

static void md_begin(FILE *out, const char *name, const char *words) {}

static void md_heading(FILE *out, int level, int open) {
    if (open)
        fprintf(out, "%.*s ", level, "######");
    else
        fputs("\n\n", out);
}

static void md_para(FILE *out, const char *id, int open) {
    if (!open) fputs("\n\n", out);
}

/* A banner is a block quote; a second paragraph in it, a quoted blank line. */
static void md_banner(FILE *out, const char *id, int alarm, int open) {
    fputs(open ? "> " : "\n\n", out);
}

static void md_banner_break(FILE *out) {
    fputs("\n>\n> ", out);
}

/* A table of key/value rows has a header of empty cells: GFM needs one. */
static void md_table(FILE *out, const char *name, int repeated, const char *const *cols) {
    if (!cols) {
        fputs("| | |\n|---|---|\n", out);
        return;
    }
    fputc('|', out);
    for (const char *const *c = cols; *c; c++)
        fprintf(out, " %s |", *c);
    fputs("\n|", out);
    for (const char *const *c = cols; *c; c++)
        fputs("---|", out);
    fputc('\n', out);
}

static void md_table_end(FILE *out) {
    fputc('\n', out);
}

/* The start of a row's first cell: whether the chain vouches for it. */
static void md_row(FILE *out, int unverified) {
    fputs(unverified ? "| **unverified** " : "| ", out);
}

static void md_key(FILE *out, const char *key, const char *status) {
    fprintf(out, "| %s | ", key);
}

static void md_cell(FILE *out, const char *status) {
    fputs(" | ", out);
}

static void md_empty(FILE *out) {
    fputs(" |", out);
}

static void md_row_end(FILE *out) {
    fputs(" |\n", out);
}

/* Strong, and a warning: Markdown has nothing else to make text stand out. */
static void md_strong(FILE *out, int open) {
    fputs("**", out);
}

/* Capitals, where HTML has a red box. */
static void md_shout(FILE *out, const char *words) {
    for (const char *c = words; *c; c++)
        fputc(toupper((unsigned char)*c), out);
}

static void md_status(FILE *out, const char *status, int open) {}

static void md_unverified(FILE *out) {
    fputs(" (unverified)", out);
}

/* No links: the reader finds the section by its heading. */
static void md_xref(FILE *out, const char *id, const char *words) {
    fprintf(out, "see %s", words);
}

static void md_fine(FILE *out, int open) {}

const bh_render_emitter bh_md_emitter = {
    .begin = md_begin,
    .end = md_nothing,
    .heading = md_heading,
    .para = md_para,
    .banner = md_banner,
    .banner_break = md_banner_break,
    .pre = md_pre,
    .timeline = NULL,
    .table = md_table,
    .table_end = md_table_end,
    .row = md_row,
    .key = md_key,
    .cell = md_cell,
    .empty = md_empty,
    .row_end = md_row_end,
    .text = md_text,
    .code = md_code,
    .strong = md_strong,
    .warn = md_strong,
    .shout = md_shout,
    .status = md_status,
    .unverified = md_unverified,
    .xref = md_xref,
    .fine = md_fine,
};
