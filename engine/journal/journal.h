/* journal: the append-only, hash-chained record of a run.
 *
 * Format (docs/journal.md): one JSON object per line, '\n'-terminated. The
 * writer puts three fields in front of every record the caller builds:
 *   {"seq":N,"ts":"2026-11-23T09:24:25.123Z","prev":"<sha256 hex>", ...}
 * seq counts from 0 without gaps; prev is the SHA-256 of the previous
 * line's exact bytes without its '\n' (64 zeros for seq 0).
 *
 * Writing is two calls on purpose: bh_journal_append() write(2)s the line
 * (it survives the engine being killed, since it sits in the page cache),
 * bh_journal_sync() makes everything appended so far durable with one
 * fdatasync. The scheduler batches a step's end with the next step's start
 * under one sync. The first write or sync error is sticky: every later call
 * returns it, so a failed fsync is never retried silently. */
#ifndef BH_JOURNAL_H
#define BH_JOURNAL_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "base/util.h"

typedef struct bh_journal bh_journal;

/* Called with every line appended (without '\n'), e.g. for `run --json`. */
typedef void (*bh_journal_listener)(const char *line, size_t len, void *ud);

/* Create a new journal file (O_EXCL, mode 0600) and fsync its directory. */
int bh_journal_create(const char *path, bh_journal **out);
/* Open an existing, intact journal to append to it: the next seq and prev
 * hash are taken from its last line. Fails with -EBADMSG if the file does
 * not end in a complete record, or if it does not verify (the whole file is
 * checked with bh_journal_verify_buf: an empty one does not). */
int bh_journal_open_append(const char *path, bh_journal **out);
/* Cut a torn last line (bytes after the last '\n', left by an engine that
 * died inside a write) off the file and fsync it. *cut is how many bytes
 * went (0: the file ended cleanly), *offset where they started. A line
 * that ends in '\n' but does not parse is not touched: that is corruption,
 * which bh_journal_open_append refuses. */
int bh_journal_recover_tail(const char *path, uint64_t *cut, uint64_t *offset);
void bh_journal_set_listener(bh_journal *j, bh_journal_listener fn, void *ud);

/* Append one record. rec must be a JSON object whose first field is "type"
 * and which has no field named seq, ts or prev (the writer's); it is not
 * modified or freed. Returns 0 or the sticky negative errno; a record that
 * breaks these rules gives -EINVAL, which sticks like an I/O error. */
int bh_journal_append(bh_journal *j, const cJSON *rec);
/* fdatasync if anything was appended since the last sync. */
int bh_journal_sync(bh_journal *j);
/* Sequence number the next record will get. */
uint64_t bh_journal_next_seq(const bh_journal *j);
/* Hex SHA-256 of the last line written (64 zeros when empty). */
const char *bh_journal_head(const bh_journal *j);
/* The sticky error, 0 when none. */
int bh_journal_error(const bh_journal *j);
/* Syncs, closes, frees. Returns the first error seen over the journal's life. */
int bh_journal_close(bh_journal *j);

/* Outcome of checking a journal's chain. */
typedef struct {
    int intact;                       /* 1 when every check passed */
    uint64_t records;                 /* records read before the first problem */
    int64_t bad_seq;                  /* the record named as broken, -1 when intact */
    uint64_t bad_offset;              /* byte offset of that record's line */
    uint64_t bytes;                   /* the journal's length: 0 for an empty one */
    char message[320];                /* what is wrong, for people */
    char head[BH_SHA256_HEX_LEN + 1]; /* hash of the last intact line */
} bh_journal_check;

/* Check the chain of a journal held in memory: the first record is the
 * run's run_start (an empty journal, or one that begins with anything
 * else, is broken at seq 0: the start of the story is missing), every line
 * parses as a JSON object, seq runs 0,1,2,... and prev matches the previous
 * line's hash. Which run it is the journal of (run_start's run_id against
 * the run folder's name) is for the caller to check: bh_journal_check_run.
 * When a link breaks, the record named is the one whose bytes no longer
 * match: the earlier line of the link, unless the later line's own link to
 * its successor is broken too (then the later line was edited). */
void bh_journal_verify_buf(const char *buf, size_t len, bh_journal_check *out);
/* The same for a file; returns -errno when it cannot be read. */
int bh_journal_verify(const char *path, bh_journal_check *out);
/* After bh_journal_verify_buf: is the intact journal buf[0..len) the one
 * of run folder dir (its run_start's run_id is the folder's name)? One
 * run's journal copied into another's folder verifies by itself. When it
 * is not, *chk becomes broken at seq 0 saying so; returns 1 when it is. */
int bh_journal_check_run(const char *buf, size_t len, const char *dir, bh_journal_check *chk);

/* A field of a JSON object (a record's sub-object, or an entry a reader
 * made): the string at key (NULL when absent or not a string), the number
 * at key (def when absent or not a number). Records themselves are read
 * through history.h. */
const char *bh_journal_str(const cJSON *rec, const char *key);
double bh_journal_num(const cJSON *rec, const char *key, double def);

#endif
