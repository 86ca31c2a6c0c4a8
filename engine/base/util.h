/* util: small helpers shared by every module: wall-clock time, SHA-256,
 * durations, files and directories. No Lua, no libuv here, so the unit
 * tests can link it alone.
 *
 * Functions that can fail return 0 on success and a negative errno value
 * on failure, like libuv; bh_util_strerror turns that into text. */
#ifndef BH_UTIL_H
#define BH_UTIL_H

#include <stddef.h>
#include <string.h>
#include <stdint.h>

#define BH_SHA256_HEX_LEN 64

/* Milliseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t bh_util_now_ms(void);

/* "2026-11-23T09:24:25.123Z" into out (at least 25 bytes). */
void bh_util_iso8601(int64_t epoch_ms, char out[32]);
/* The reverse, for exactly that form. Returns 0, or -1 when text is not it. */
int bh_util_parse_iso8601(const char *text, int64_t *epoch_ms);

/* Lower-case hex SHA-256 of len bytes, NUL-terminated into out. */
void bh_util_sha256_hex(const void *data, size_t len, char out[BH_SHA256_HEX_LEN + 1]);

/* Hex-encode a raw 32-byte digest. */
void bh_util_digest_hex(const unsigned char digest[32], char out[BH_SHA256_HEX_LEN + 1]);

/* Parse a duration: a number with a unit ("250ms", "30s", "5m", "2h", "1.5s")
 * or a bare number of seconds. Returns 0 and sets *ms, or -1 when the text
 * is not a duration or is negative. */
int bh_util_parse_duration(const char *text, double *ms);

/* "830ms", "12.4s", "3m05s", "2h10m" into out. */
void bh_util_format_duration(double ms, char *out, size_t outlen);

/* Read a whole file into a malloc'd, NUL-terminated buffer. Returns NULL
 * and sets errno on failure. *len excludes the terminator. */
char *bh_util_read_file(const char *path, size_t *len);

/* mkdir -p with mode 0700 for each directory created. */
int bh_util_mkdir_p(const char *path);
/* Remove path and everything under it (symlinks are removed, not
 * followed). 0 or -errno of the first failure. */
int bh_util_rmtree(const char *path);

/* fsync a directory so that entries created in it are durable. */
int bh_util_fsync_dir(const char *path);

/* Write len bytes, retrying short writes and EINTR. */
int bh_util_write_all(int fd, const void *buf, size_t len);

/* The sorted names in a directory, leaving out those that start with '.'
 * (*n of them; NULL and 0 when it cannot be read), and their free. */
char **bh_util_list_names(const char *dir, size_t *n);
void bh_util_free_names(char **names, size_t n);
/* path without its leading "dir/" when it lies under dir, else path. */
const char *bh_util_relative_to(const char *path, const char *dir);
/* snprintf into a malloc'd string; aborts on out-of-memory. */
char *bh_util_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Both given and equal: journal fields and options are often absent, and
 * absent equals nothing. */
static inline int bh_util_streq(const char *a, const char *b) {
    return a && b && strcmp(a, b) == 0;
}
/* s, or def when s is absent. */
static inline const char *bh_util_or(const char *s, const char *def) {
    return s ? s : def;
}

/* malloc/strdup that abort with a message instead of returning NULL: the
 * engine cannot do anything useful without a few hundred bytes. */
void *bh_util_xmalloc(size_t n);
void *bh_util_xcalloc(size_t n, size_t size);
void *bh_util_xrealloc(void *p, size_t n);
char *bh_util_xstrdup(const char *s);

/* A person's name as given (--as, --operator, $BULKHEAD_OPERATOR, a
 * control socket request): leading and trailing white space removed, into
 * out. Returns NULL, or why it names no one: blank, a control character
 * (a name must not forge console lines), longer than BH_UTIL_NAME_MAX. */
#define BH_UTIL_NAME_MAX 100
const char *bh_util_clean_name(const char *in, char out[BH_UTIL_NAME_MAX + 1]);

/* Text for a negative errno value. */
const char *bh_util_strerror(int err);

/* A growing byte buffer, always NUL-terminated once anything is in it
 * ({0} is an empty one; free p when done). */
typedef struct {
    char *p;
    size_t len, cap;
} bh_buf;
void bh_buf_put(bh_buf *b, const void *data, size_t n);

#endif
