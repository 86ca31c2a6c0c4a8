/* history: the one reader of a journal's records.
 *
 * Everything that reads a run back (show, report, scorecard, drills,
 * resume, undo, verify's signature check, the simulation's past runs)
 * reads it here, so that a record means the same to all of them. A
 * history is the journal's records in order, each parsed once into a
 * bh_hrec: its type as a bh_rec (schema.h), where its line starts, and
 * what every record about an attempt carries (step, item, rep, attempt,
 * undo) already read out. The rest of a record's fields are read with
 * bh_hrec_str/num/get, which in the test build (BH_SCHEMA_STRICT) abort
 * on a field the record's type does not declare: a reader cannot look for
 * a field the writer never writes.
 *
 * Reading stops at the first line that does not parse (a torn last line,
 * or damage: bh_journal_verify says which); a last line without '\n' that
 * parses is read, since `show` wants every record there is. A record of a
 * type this engine does not know (a newer engine's) is kept, with type
 * BH_REC_COUNT, so that counts and positions stay those of the file. */
#ifndef BH_HISTORY_H
#define BH_HISTORY_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "journal/journal.h"
#include "journal/schema.h"

typedef struct {
    const cJSON *json; /* the record (owned by the history) */
    bh_rec type;       /* BH_REC_COUNT: none, or one this engine does not know */
    uint64_t offset;   /* where its line starts in the journal */
    const char *ts;    /* NULL when it has none */
    const char *step;  /* the step it is about, NULL when none */
    int item, rep;     /* 1-based fan-out item, cadence repetition; 0: none */
    int attempt;       /* 0 when it names none */
    int undo;          /* about an undo's attempt (undo: true) */
    double sim_ms;     /* simulated time, -1 outside a simulation */
} bh_hrec;

typedef struct {
    cJSON *doc;           /* every record, in order (owns them) */
    bh_hrec *rec;         /* rec[0..n): the same records, read */
    size_t n;             /* records read */
    const bh_hrec *start; /* the first run_start, or NULL */
    const bh_hrec *end;   /* the last run_end, or NULL */
    uint64_t read;        /* bytes read: up to the first line that does not parse */
    int unparsed;         /* reading stopped at a line that does not parse */
} bh_history;

/* Read the records of a journal held in memory into h (always initialised;
 * free it with bh_history_free). Returns 0, or -EBADMSG when a line does
 * not parse (the records before it are in h). */
int bh_history_read_buf(bh_history *h, const char *buf, size_t len);
/* The same for a file. With chk non-NULL the chain is checked too
 * (bh_journal_verify_buf). Returns -errno when the file cannot be read
 * (h is then empty), else what bh_history_read_buf returns. */
int bh_history_read(bh_history *h, const char *path, bh_journal_check *chk);
void bh_history_free(bh_history *h);

/* For a reader that wants only some records of many journals (the drills
 * of one runbook among all runs): each record of the journal at path in
 * turn, valid during the call only, until fn returns non-zero (returned)
 * or a line does not parse (-EBADMSG). -errno when it cannot be read. */
typedef int (*bh_history_fn)(const bh_hrec *r, void *ud);
int bh_history_each(const char *path, bh_history_fn fn, void *ud);
/* The same over a journal already in memory. */
int bh_history_each_buf(const char *buf, size_t len, bh_history_fn fn, void *ud);

/* The last record of type t, or NULL. */
const bh_hrec *bh_history_last(const bh_history *h, bh_rec t);

/* A field of the record: any JSON value, a string (NULL when absent or not
 * one), a number (def when absent or not one), a boolean (1 for true). */
const cJSON *bh_hrec_get(const bh_hrec *r, const char *field);
const char *bh_hrec_str(const bh_hrec *r, const char *field);
double bh_hrec_num(const bh_hrec *r, const char *field, double def);
int bh_hrec_true(const bh_hrec *r, const char *field);

/* The 0-based fan-out item or cadence repetition a record is about (0
 * for a step that is neither). */
size_t bh_hrec_instance(const bh_hrec *r);
/* Does an exec_start or request_start start something that may act? A
 * command unless it said acts = false; mail; HTTP but GET, HEAD and
 * OPTIONS; never a connect, and never an undo's. */
int bh_hrec_acts(const bh_hrec *r);

/* Are two records, or entries a reader made from them with the same field
 * names (step, item, rep, attempt, undo, n), about the same thing? what
 * says which fields count: */
enum {
    BH_SAME_STEP = 1,    /* step */
    BH_SAME_ITEM = 2,    /* item and rep: one instance of the step */
    BH_SAME_ATTEMPT = 4, /* attempt */
    BH_SAME_UNDO = 8,    /* an undo's or the step's own */
    BH_SAME_N = 16,      /* n: the command or request within an attempt */
};
#define BH_SAME_INSTANCE (BH_SAME_STEP | BH_SAME_ITEM)
int bh_history_same(const cJSON *a, const cJSON *b, unsigned what);

#endif
