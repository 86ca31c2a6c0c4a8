#include "journal/journal.h"

#include "journal/schema.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/json.h"

static const char zero_hash[BH_SHA256_HEX_LEN + 1] =
    "0000000000000000000000000000000000000000000000000000000000000000";

struct bh_journal {
    int fd;
    uint64_t seq; /* of the next record */
    char head[BH_SHA256_HEX_LEN + 1];
    int err;    /* first negative errno, sticky */
    int dirty;  /* appended since the last sync */
    off_t size; /* bytes in the file: only this writer appends (the run's lock) */
    bh_journal_listener listener;
    void *listener_ud;
};

/* Keep the first error only: it is the cause, later ones are consequences. */
static int fail(bh_journal *j, int err) {
    if (j->err == 0) j->err = err;
    return j->err;
}

static bh_journal *journal_new(int fd, uint64_t seq, const char *head, off_t size) {
    bh_journal *j = bh_util_xcalloc(1, sizeof *j);
    j->fd = fd;
    j->size = size;
    j->seq = seq;
    memcpy(j->head, head, sizeof j->head);
    return j;
}

int bh_journal_create(const char *path, bh_journal **out) {
    *out = NULL;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) return -errno;

    /* The new directory entry is only durable once the directory itself is
     * synced; without it a crash could lose the whole journal. */
    char *dir = bh_util_xstrdup(path);
    char *slash = strrchr(dir, '/');
    int rc;
    if (!slash)
        rc = bh_util_fsync_dir(".");
    else if (slash == dir)
        rc = bh_util_fsync_dir("/");
    else {
        *slash = '\0';
        rc = bh_util_fsync_dir(dir);
    }
    free(dir);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    *out = journal_new(fd, 0, zero_hash, 0);
    return 0;
}

int bh_journal_open_append(const char *path, bh_journal **out) {
    *out = NULL;
    size_t len;
    char *buf = bh_util_read_file(path, &len);
    if (!buf) return errno ? -errno : -EIO;

    /* Check the whole chain, not just the last line: appending to a broken
     * journal would bury the break under records that look valid. This also
     * refuses a file whose last line is torn (no '\n'). */
    bh_journal_check chk;
    bh_journal_verify_buf(buf, len, &chk);
    free(buf);
    if (!chk.intact) return -EBADMSG;

    int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0) return -errno;
    *out = journal_new(fd, chk.records, chk.head, (off_t)len);
    return 0;
}

int bh_journal_recover_tail(const char *path, uint64_t *cut, uint64_t *offset) {
    *cut = 0;
    *offset = 0;
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) return -errno;
    struct stat st;
    int err = fstat(fd, &st) == 0 ? 0 : -errno;
    off_t size = err ? 0 : st.st_size;
    /* Walk back from the end to the last '\n': what follows it is a record
     * whose write never completed (the engine died inside write(2)). */
    off_t end = size;
    char c = '\n';
    while (!err && end > 0) {
        if (pread(fd, &c, 1, end - 1) != 1) {
            err = errno ? -errno : -EIO;
            break;
        }
        if (c == '\n') break;
        end--;
    }
    if (!err && end < size) {
        if (ftruncate(fd, end) != 0 || fsync(fd) != 0) err = -errno;
        *cut = (uint64_t)(size - end);
        *offset = (uint64_t)end;
    }
    close(fd);
    return err;
}

void bh_journal_set_listener(bh_journal *j, bh_journal_listener fn, void *ud) {
    j->listener = fn;
    j->listener_ud = ud;
}

/* The writer owns seq, ts and prev; a caller's copy would be a second,
 * conflicting value that parsers resolve differently (cJSON keeps the
 * first, jq the last). */
static int reserved_name(const char *name) {
    return strcmp(name, "seq") == 0 || strcmp(name, "ts") == 0 || strcmp(name, "prev") == 0;
}

int bh_journal_append(bh_journal *j, const cJSON *rec) {
    if (j->err) return j->err;
    /* A malformed record is an engine bug, but the run must still stop: a
     * journal that silently lacks a record is not a faithful record. So
     * -EINVAL sticks like an I/O error. */
    if (!cJSON_IsObject(rec) || !rec->child || !rec->child->string ||
        strcmp(rec->child->string, "type") != 0)
        return fail(j, -EINVAL);
    for (const cJSON *it = rec->child; it; it = it->next)
        if (!it->string || reserved_name(it->string)) return fail(j, -EINVAL);

    /* Strict JSON whatever bytes the strings hold (json.h): NUL and bytes
     * that are not UTF-8 escaped, so every line is valid UTF-8. */
    char *body = bh_json_print(rec, 0);
    if (!body) return fail(j, -ENOMEM);

    char ts[32];
    bh_util_iso8601(bh_util_now_ms(), ts);
    char prefix[160];
    int plen = snprintf(prefix, sizeof prefix,
                        "{\"seq\":%" PRIu64 ",\"ts\":\"%s\",\"prev\":\"%s\",", j->seq, ts, j->head);
    /* body is "{...}"; its '{' is replaced by the prefix, which opens the
     * object itself. */
    size_t blen = strlen(body) - 1;
    size_t len = (size_t)plen + blen;
    char *line = bh_util_xmalloc(len + 1);
    memcpy(line, prefix, (size_t)plen);
    memcpy(line + plen, body + 1, blen);
    line[len] = '\n';
    free(body);

    /* One write(2) for the whole line: with O_APPEND the line lands
     * contiguously, and a crash leaves at worst one torn last line, which
     * verify reports as such. */
    int rc = bh_util_write_all(j->fd, line, len + 1);
    if (rc < 0) {
        /* A part of the line may have landed (a full disk): cut it off so
         * the journal stays a verifiable run of whole records. If even that
         * fails, verify reports the torn last line. */
        if (ftruncate(j->fd, j->size) != 0) {
            /* nothing more to do: the error below stops the run */
        }
        free(line);
        return fail(j, rc);
    }
    j->size += (off_t)(len + 1);
    bh_util_sha256_hex(line, len, j->head);
    j->seq++;
    j->dirty = 1;
    /* Listeners get the line NUL-terminated as well as with its length. */
    line[len] = '\0';
    if (j->listener) j->listener(line, len, j->listener_ud);
    free(line);
    return 0;
}

int bh_journal_sync(bh_journal *j) {
    if (j->err) return j->err;
    if (!j->dirty) return 0;
    /* No retry on EINTR or anything else: after a failed fsync the kernel
     * may have dropped the dirty pages, so a second call that succeeds
     * would claim durability it does not have. */
    if (fdatasync(j->fd) < 0) return fail(j, -errno);
    j->dirty = 0;
    return 0;
}

uint64_t bh_journal_next_seq(const bh_journal *j) {
    return j->seq;
}

const char *bh_journal_head(const bh_journal *j) {
    return j->head;
}

int bh_journal_error(const bh_journal *j) {
    return j->err;
}

int bh_journal_close(bh_journal *j) {
    if (!j) return 0;
    bh_journal_sync(j);
    if (close(j->fd) < 0) fail(j, -errno);
    int err = j->err;
    free(j);
    return err;
}

/* ---- reading ---- */

/* Parse one line as a JSON object, and nothing after it (`{...}garbage` is
 * not a record), with the escapes the writer uses read back (json.h). */
static cJSON *parse_line(const char *line, size_t len) {
    cJSON *v = bh_json_parse(line, len);
    if (v && !cJSON_IsObject(v)) {
        cJSON_Delete(v);
        return NULL;
    }
    return v;
}

/* What verification needs of a record. */
typedef struct {
    double seq;
    char prev[BH_SHA256_HEX_LEN + 1];
    char type[32]; /* cut short if longer: only compared with "run_start" */
} record_head;

/* Parse a line as a record: an object with a whole, non-negative seq and a
 * string prev. Returns 1 and fills *h, or 0. */
static int parse_record(const char *line, size_t len, record_head *h) {
    cJSON *v = parse_line(line, len);
    if (!v) return 0;
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(v, "seq");
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(v, "prev");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(v, "type");
    int ok = cJSON_IsNumber(s) && cJSON_IsString(p) && s->valuedouble >= 0;
    if (ok) {
        h->seq = s->valuedouble;
        /* A prev of the wrong length cannot match any hash: "" stands for
         * it, so the caller's comparison fails without a bigger buffer. */
        if (strlen(p->valuestring) == BH_SHA256_HEX_LEN)
            memcpy(h->prev, p->valuestring, BH_SHA256_HEX_LEN + 1);
        else
            h->prev[0] = '\0';
        snprintf(h->type, sizeof h->type, "%s", cJSON_IsString(t) ? t->valuestring : "");
    }
    cJSON_Delete(v);
    return ok;
}

static void set_broken(bh_journal_check *out, uint64_t seq, uint64_t offset,
                       const char *last_good_hash) {
    out->intact = 0;
    out->records = seq;
    out->bad_seq = (int64_t)seq;
    out->bad_offset = offset;
    memcpy(out->head, last_good_hash, sizeof out->head);
}

/* Where verification is: the record expected next, and the hashes of the
 * last two lines read (when a link breaks and the earlier line is the one
 * named, the last intact line is the one before it). */
typedef struct {
    const char *buf;
    size_t len;
    uint64_t expected, prev_offset;
    char hash[BH_SHA256_HEX_LEN + 1], hash_before[BH_SHA256_HEX_LEN + 1];
} verifier;

/* The line at off (llen bytes, nl its end or NULL): whole, a record, the
 * seq expected, and a run_start first? Otherwise *out says why, 0. */
static int check_line(const verifier *v, size_t off, const char *nl, size_t llen, record_head *rh,
                      bh_journal_check *out) {
    uint64_t expected = v->expected;
    if (!nl) {
        set_broken(out, expected, off, v->hash);
        snprintf(out->message, sizeof out->message,
                 "unterminated last line (torn write) at byte %zu, where seq %" PRIu64
                 " was expected",
                 off, expected);
        return 0;
    }
    if (!parse_record(v->buf + off, llen, rh)) {
        set_broken(out, expected, off, v->hash);
        snprintf(out->message, sizeof out->message,
                 "line at byte %zu, where seq %" PRIu64
                 " was expected, is not a valid record (not a JSON object with a "
                 "numeric seq and a string prev)",
                 off, expected);
        return 0;
    }
    if (rh->seq != (double)expected) {
        set_broken(out, expected, off, v->hash);
        snprintf(out->message, sizeof out->message,
                 "expected seq %" PRIu64 ", found seq %.17g at byte %zu: a record is "
                 "missing or out of order",
                 expected, rh->seq, off);
        return 0;
    }
    /* A chain can be rebuilt from any record on (renumbered, rehashed):
     * only the run's own start says it is the whole story. */
    if (expected == 0 && !bh_rec_is(rh->type, BH_REC_RUN_START)) {
        set_broken(out, 0, off, zero_hash);
        snprintf(out->message, sizeof out->message,
                 "seq 0 at byte %zu is a '%s' record, not run_start: a journal begins with "
                 "its run's run_start, so records before this one are missing",
                 off, rh->type[0] ? rh->type : "(untyped)");
        return 0;
    }
    return 1;
}

/* The prev of the line at off (ending at nl, its own hash own) is not the
 * hash of the line before: say which line changed. */
static void broken_link(const verifier *v, size_t off, const char *nl, const char *own,
                        bh_journal_check *out) {
    uint64_t expected = v->expected;
    if (expected == 0) { /* no earlier line to blame */
        set_broken(out, 0, off, zero_hash);
        snprintf(out->message, sizeof out->message,
                 "seq 0 at byte %zu was changed: its prev is not 64 zeros", off);
        return;
    }
    /* The link earlier -> this is broken: either the earlier line's content
     * changed (its hash moved) or this line's prev did. If this line's own
     * hash is also rejected by its successor, this line's bytes changed;
     * otherwise the earlier line's did. */
    int this_changed = 0;
    const char *next = nl + 1;
    size_t rest = v->len - (size_t)(next - v->buf);
    if (rest > 0) {
        const char *nnl = memchr(next, '\n', rest);
        size_t nlen = nnl ? (size_t)(nnl - next) : rest;
        record_head nh;
        if (parse_record(next, nlen, &nh) && strcmp(nh.prev, own) != 0) this_changed = 1;
    }
    if (this_changed) {
        set_broken(out, expected, off, v->hash);
        snprintf(out->message, sizeof out->message,
                 "seq %" PRIu64 " at byte %zu was changed: the hash chain breaks between "
                 "seq %" PRIu64 " and seq %" PRIu64 " and between seq %" PRIu64 " and seq %" PRIu64,
                 expected, off, expected - 1, expected, expected, expected + 1);
    } else {
        set_broken(out, expected - 1, v->prev_offset, v->hash_before);
        snprintf(out->message, sizeof out->message,
                 "seq %" PRIu64 " at byte %" PRIu64
                 " was changed: the hash chain breaks between seq %" PRIu64 " and seq %" PRIu64
                 " (prev of seq %" PRIu64 " is not the hash of seq %" PRIu64 ")",
                 expected - 1, v->prev_offset, expected - 1, expected, expected, expected - 1);
    }
}

void bh_journal_verify_buf(const char *buf, size_t len, bh_journal_check *out) {
    memset(out, 0, sizeof *out);
    out->bad_seq = -1;
    out->bytes = len;
    verifier v = {.buf = buf, .len = len};
    memcpy(v.hash, zero_hash, sizeof v.hash);
    memcpy(v.hash_before, zero_hash, sizeof v.hash_before);
    size_t off = 0;
    while (off < len) {
        const char *nl = memchr(buf + off, '\n', len - off);
        size_t llen = nl ? (size_t)(nl - (buf + off)) : len - off;
        record_head rh;
        if (!check_line(&v, off, nl, llen, &rh, out)) return;
        char own[BH_SHA256_HEX_LEN + 1];
        bh_util_sha256_hex(buf + off, llen, own);
        if (strcmp(rh.prev, v.hash) != 0) {
            broken_link(&v, off, nl, own, out);
            return;
        }
        memcpy(v.hash_before, v.hash, sizeof v.hash);
        memcpy(v.hash, own, sizeof v.hash);
        v.prev_offset = off;
        v.expected++;
        off += llen + 1;
    }
    if (v.expected == 0) { /* emptied, or never written */
        set_broken(out, 0, 0, zero_hash);
        snprintf(out->message, sizeof out->message,
                 "the journal is empty: it has no run_start record, so nothing vouches for "
                 "the run");
        return;
    }
    out->intact = 1;
    out->records = v.expected;
    out->bad_seq = -1;
    memcpy(out->head, v.hash, sizeof out->head);
    snprintf(out->message, sizeof out->message, "hash chain intact: %" PRIu64 " records",
             v.expected);
}

int bh_journal_check_run(const char *buf, size_t len, const char *dir, bh_journal_check *chk) {
    if (!chk->intact) return 0;
    const char *nl = memchr(buf, '\n', len);
    cJSON *first = nl ? bh_json_parse(buf, (size_t)(nl - buf)) : NULL;
    const char *id = bh_journal_str(first, "run_id");
    const char *base = strrchr(dir, '/') ? strrchr(dir, '/') + 1 : dir;
    int ok = id && strcmp(id, base) == 0;
    if (!ok) {
        /* nothing in it vouches for this run: broken from its first record */
        chk->intact = 0;
        chk->bad_seq = 0;
        chk->bad_offset = 0;
        memcpy(chk->head, zero_hash, sizeof chk->head);
        snprintf(chk->message, sizeof chk->message,
                 "NOT THIS RUN'S JOURNAL: its run_start names run '%.100s', not this run folder "
                 "'%.100s'",
                 id ? id : "(none)", base);
    }
    cJSON_Delete(first);
    return ok;
}

int bh_journal_verify(const char *path, bh_journal_check *out) {
    size_t len;
    char *buf = bh_util_read_file(path, &len);
    if (!buf) return errno ? -errno : -EIO;
    bh_journal_verify_buf(buf, len, out);
    free(buf);
    return 0;
}

const char *bh_journal_str(const cJSON *rec, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

double bh_journal_num(const cJSON *rec, const char *key, double def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, key);
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}
