/* console: what a person watching `bulkhead run` sees.
 *
 * Three modes: on a terminal a live line for the running step (status and
 * elapsed time, redrawn a few times a second) that becomes a final line when
 * the step ends; when piped, plain lines as steps end; with --json nothing
 * but the journal's records, one per line, so a program can follow a run.
 * Human text goes to `out`; the journal is the record, this is only a view. */
#ifndef BH_CONSOLE_H
#define BH_CONSOLE_H

#include <stdio.h>
#include <uv.h>

#include "base/redact.h"

typedef enum { BH_CONSOLE_TTY, BH_CONSOLE_PLAIN, BH_CONSOLE_JSON } bh_console_mode;

typedef struct bh_console bh_console;

bh_console *bh_console_new(uv_loop_t *loop, bh_console_mode mode, FILE *out);
/* Mask these secrets in everything shown (also on stderr). */
void bh_console_set_redact(bh_console *c, const bh_redact *r);
/* Stops the redraw timer; the console is freed from its close callback. */
void bh_console_close(bh_console *c);

void bh_console_run_start(bh_console *c, const char *run_id, const char *title, const char *dir,
                          size_t nsteps, const char *mode);
void bh_console_phase(bh_console *c, const char *phase);
/* An attempt started; label names it ("isolate[web-2]"). */
void bh_console_step_start(bh_console *c, const char *label);
void bh_console_step_end(bh_console *c, const char *id, const char *status, double ms,
                         const char *detail);
/* An attempt ended but its end record did not reach the journal (err, a
 * negative errno): never shown as ok, since the record does not say so. */
void bh_console_step_unrecorded(bh_console *c, const char *id, const char *status, double ms,
                                int err);
void bh_console_step_skipped(bh_console *c, const char *id, const char *reason);
void bh_console_log(bh_console *c, const char *step, const char *text);
void bh_console_notice(bh_console *c, const char *text);
void bh_console_run_end(bh_console *c, const char *run_id, const char *status, double ms,
                        const char *counts);
/* Lines of text as they are (a scorecard), in the human modes. */
void bh_console_text(bh_console *c, const char *text);
/* A journal line, for --json mode (ignored in the other modes). */
void bh_console_record(bh_console *c, const char *line, size_t len);

#endif
