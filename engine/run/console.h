/* console: what a person watching `bulkhead run` sees.
 *
 * Three modes: on a terminal a live line for the running step (status and
 * elapsed time, redrawn a few times a second) that becomes a final line when
 * the step ends; when piped, plain lines as steps end; with --json nothing
 * but the journal's records, one per line, so a program can follow a run.
 * Human text goes to `out`; the journal is the record, this is only a view:
 * a subscriber of the run's events. */
#ifndef BH_CONSOLE_H
#define BH_CONSOLE_H

#include <stdio.h>
#include <uv.h>

#include "base/redact.h"
#include "run/events.h"

typedef enum { BH_CONSOLE_TTY, BH_CONSOLE_PLAIN, BH_CONSOLE_JSON } bh_console_mode;

typedef struct bh_console bh_console;

bh_console *bh_console_new(uv_loop_t *loop, bh_console_mode mode, FILE *out);
/* Mask these secrets in everything shown (also on stderr). */
void bh_console_set_redact(bh_console *c, const bh_redact *r);
/* Stops the redraw timer; the console is freed from its close callback. */
void bh_console_close(bh_console *c);

/* Show the run's events (events.h) from now on. */
void bh_console_subscribe(bh_console *c, bh_events *events);

#endif
