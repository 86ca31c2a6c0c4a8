/* render: the one walk of a report model (report.h) that both formats
 * share, and the emitter it writes through.
 *
 * The walker visits the model's sections in their order (title and
 * banners, summary, what is still in doubt, events, the time line, steps
 * by phase, decisions, commands, requests, failures, evidence, scorecard)
 * and makes every decision about them: which rows, which notes, the words
 * around the data, what a missing value reads as. It writes through an
 * emitter, a table of functions that knows only a format's syntax:
 * headings, paragraphs, banners, tables and their cells, code, emphasis,
 * escaping, links. md.c and html.c are the two; a third format is a third
 * table, not a third walk.
 *
 * The two reports do not hold quite the same things: the Markdown is the
 * full record, the HTML page draws the time line (svg.c) and leaves some of
 * the finer detail out. A bh_render_shows says which parts a report
 * holds, so the walker decides from it and not from which emitter it has;
 * the golden files (tests/fixtures/reports) fix what each one holds. */
#ifndef BH_RENDER_H
#define BH_RENDER_H

#include <cjson/cJSON.h>
#include <stdio.h>

/* Writes s in the format: journal text, escaped (NULL writes nothing). */
typedef void (*bh_render_text_fn)(FILE *out, const char *s);

/* A format's syntax. The paired operations open with open = 1 and close
 * with open = 0. An id names an element for links (NULL: none); a format
 * that has no such thing drops it, as it drops a status's class. The
 * walker's own words (headings, labels, notes) it writes itself: they
 * need no escaping in any format. */
typedef struct {
    /* The document: its title (name, escaped, then the walker's words),
     * and its end. Markdown has neither. */
    void (*begin)(FILE *out, const char *name, const char *words);
    void (*end)(FILE *out);
    /* Blocks. A banner is a boxed notice, alarm for one that warns (a
     * broken chain); banner_break starts a second paragraph inside it.
     * pre: text verbatim, as a block. */
    void (*heading)(FILE *out, int level, int open);
    void (*para)(FILE *out, const char *id, int open);
    void (*banner)(FILE *out, const char *id, int alarm, int open);
    void (*banner_break)(FILE *out);
    void (*pre)(FILE *out, const char *id, const char *text);
    /* The model's time line as a picture; NULL for a format without one. */
    void (*timeline)(FILE *out, const cJSON *model);
    /* Tables. cols: the header, NULL-terminated; NULL for a table of
     * key/value rows. A table that repeats (one per phase) is named as a
     * kind (repeated = 1), one of its kind by id. row opens a row and its
     * first cell (marked when the chain does not vouch for it), key a
     * key/value row up to its value. cell ends a cell and opens the next;
     * status, when not NULL, is the status the next one shows ("" for
     * one the journal does not give). empty ends a cell and writes an
     * empty one after it. */
    void (*table)(FILE *out, const char *name, int repeated, const char *const *cols);
    void (*table_end)(FILE *out);
    void (*row)(FILE *out, int unverified);
    void (*key)(FILE *out, const char *key, const char *status);
    void (*cell)(FILE *out, const char *status);
    void (*empty)(FILE *out);
    void (*row_end)(FILE *out);
    /* Inline. text: journal text. code: journal text as code; NULL is
     * "?" where code cannot be empty. strong: emphasis; warn: what must
     * not be missed (a format that boxes or colours it may do nothing);
     * shout: the walker's words for an alarm, in capitals where there is
     * no colour; status: text showing a status; unverified: the mark
     * after a value the chain does not vouch for; xref: a reference to
     * the element id, in the walker's words; fine: small print. */
    bh_render_text_fn text;
    bh_render_text_fn code;
    void (*strong)(FILE *out, int open);
    void (*warn)(FILE *out, int open);
    void (*shout)(FILE *out, const char *words);
    void (*status)(FILE *out, const char *status, int open);
    void (*unverified)(FILE *out);
    void (*xref)(FILE *out, const char *id, const char *words);
    void (*fine)(FILE *out, int open);
} bh_render_emitter;

/* What a report holds beyond the sections both have. */
typedef struct {
    int events;         /* the Events section: resumes, interrupts, undos */
    int detail;         /* the finer facts: the engine, signed checkpoints, how
                         * to check the head later, simulated durations, a
                         * fan-out step's totals, a decision's uid and pid,
                         * why a command could not start, a timeout's kill */
    int say_none;       /* an empty section says so (else: its empty table) */
    int id_as_code;     /* the runbook's id in the summary as code */
    int stress_remains; /* what may remain, strong, in the in-doubt table */
    int colophon;       /* "Made by ... from the run's journal alone." */
} bh_render_shows;

/* The report of model m in the emitter's format. */
void bh_render_report(const cJSON *m, const bh_render_emitter *em, const bh_render_shows *shows,
                      FILE *out);

/* "undo isolate-web[web1]#3": the step, the key of its fan-out item as
 * the console's label shows it (make_label in sched.c), or the item's
 * number when the journal has no key, and a cadence's repetition. Every
 * table (and the time line) names an instance this way; esc writes the
 * journal's parts. */
void bh_render_name(FILE *out, bh_render_text_fn esc, const char *step, const cJSON *x, int undo);
/* A status for people: "in doubt" for in_doubt; the others as recorded. */
const char *bh_render_status(const char *status);
/* Whether the chain vouches for what entry x shows (its "unverified"). */
int bh_render_unverified(const cJSON *x);

#endif
