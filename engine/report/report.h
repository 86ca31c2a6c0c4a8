/* report: the after-action report of a run, built from its journal alone.
 *
 * bh_report_model reads the records into one JSON document (what
 * `report --format json` prints; the other formats render it):
 *   run        runbook and its hash, parameters, operator, host, mode,
 *              start, end, duration, outcome, resumes and interrupts
 *   journal    records, head hash to quote in the ticket, whether the
 *              chain is intact (if not: where it breaks, and how many
 *              records were read from there on), signed checkpoints
 *   in_doubt   remaining: what in-doubt instances may have left as the
 *              journal ends (remain.h: neither a later attempt nor an undo
 *              settled it), with why and whether an undo failed or there is
 *              none; resolved: what was in doubt and no longer is, and how
 *   phases     each phase with its steps and every attempt of each step
 *              (start, end, duration, status, error, what came next), on a
 *              time line in ms from the run's start (simulated time for
 *              dry runs and drills)
 *   waits      approval waits and retry backoffs on the same time line
 *   decisions  approvals, denials, manual tasks, unknown-outcome choices,
 *              undo requests: who, how, why, when
 *   commands   every command run (or, in a simulation, that would have
 *              run): argv, exit, duration, captured output with SHA-256;
 *              acts = false for a read-only one, in_doubt for one whose end
 *              gave no definite answer (requests likewise)
 *   failures   every attempt that did not succeed and how it was handled
 *              (an in-doubt one with doubt and may_remain, as its attempt)
 *   evidence   collected evidence and captured output, with hashes
 *   scorecard  for dry runs and drills
 * Every entry names its step instance the same way (item, and its key
 * as the console's label shows it: isolate[web1]). An entry built from a
 * record at or after the place where the chain breaks has "unverified":
 * true (also run, when its outcome comes from there, and the scorecard),
 * and Markdown and HTML open with a banner naming the broken record and
 * mark each such row.
 * Markdown and HTML are for people, and say "in doubt" for in_doubt; they
 * open (after the summary) with what is still in doubt. The HTML file is
 * self-contained (no fetches) with an SVG time line: a bar per step
 * attempt coloured by status (in doubt has a colour and outline of its
 * own), in phase bands, approval waits and backoffs drawn too.
 * Both are one walk of the model (render.h) through an emitter of the
 * format's syntax (md.h, html.h; the time line is svg.h's). */
#ifndef BH_REPORT_H
#define BH_REPORT_H

#include <cjson/cJSON.h>
#include <stdio.h>

#include "journal/history.h"

/* h: the journal's records; chk: its chain check. */
cJSON *bh_report_model(const bh_history *h, const bh_journal_check *chk);
void bh_report_markdown(const cJSON *model, FILE *out);
void bh_report_html(const cJSON *model, FILE *out);

#endif
