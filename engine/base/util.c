#include "base/util.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int64_t bh_util_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void bh_util_iso8601(int64_t epoch_ms, char out[32]) {
    /* Floor division, so that times before 1970 still get 0..999 ms. */
    int64_t secs = epoch_ms / 1000;
    int64_t ms = epoch_ms % 1000;
    if (ms < 0) {
        ms += 1000;
        secs -= 1;
    }
    time_t t = (time_t)secs;
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        snprintf(out, 32, "invalid-time");
        return;
    }
    char date[24];
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, 32, "%s.%03dZ", date, (int)ms);
}

int bh_util_parse_iso8601(const char *text, int64_t *epoch_ms) {
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int ms = 0, used = 0;
    if (!text ||
        sscanf(text, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
               &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms, &used) != 7 ||
        used != 24 || text[used] != '\0')
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    if (t == (time_t)-1) return -1;
    *epoch_ms = (int64_t)t * 1000 + ms;
    return 0;
}

void bh_util_digest_hex(const unsigned char digest[32], char out[BH_SHA256_HEX_LEN + 1]) {
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < 32; i++) {
        out[2 * i] = hex[digest[i] >> 4];
        out[2 * i + 1] = hex[digest[i] & 0x0f];
    }
    out[BH_SHA256_HEX_LEN] = '\0';
}

void bh_util_sha256_hex(const void *data, size_t len, char out[BH_SHA256_HEX_LEN + 1]) {
    /* libsodium wants sodium_init() before first use (it picks the fastest
     * implementation). Doing it here, once, spares every caller and every
     * test from having to remember it. sodium_init is itself thread-safe;
     * the flag only avoids taking its lock on each call. */
    static atomic_int ready;
    if (!atomic_load_explicit(&ready, memory_order_acquire)) {
        if (sodium_init() < 0) {
            fprintf(stderr, "bulkhead: libsodium failed to initialise\n");
            abort();
        }
        atomic_store_explicit(&ready, 1, memory_order_release);
    }
    unsigned char digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(digest, data, (unsigned long long)len);
    bh_util_digest_hex(digest, out);
}

int bh_util_parse_duration(const char *text, double *ms) {
    if (!text) return -1;
    /* Hand-written rather than strtod: strtod accepts blanks, signs, hex,
     * exponents, "inf" and "nan", and follows the locale's decimal point,
     * none of which belong in a runbook's "30s". */
    const char *p = text;
    double mant = 0;
    int digits = 0, frac_digits = 0;
    while (*p >= '0' && *p <= '9') {
        mant = mant * 10 + (*p - '0');
        digits++;
        p++;
    }
    if (digits == 0) return -1; /* empty, sign, blank, ".5" or a letter first */
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9') {
            mant = mant * 10 + (*p - '0');
            frac_digits++;
            p++;
        }
        if (frac_digits == 0) return -1; /* "5." */
    }
    double scale;
    if (strcmp(p, "") == 0 || strcmp(p, "s") == 0)
        scale = 1000;
    else if (strcmp(p, "ms") == 0)
        scale = 1;
    else if (strcmp(p, "m") == 0)
        scale = 60 * 1000;
    else if (strcmp(p, "h") == 0)
        scale = 3600 * 1000;
    else
        return -1;

    /* Scale before dividing out the fraction digits: "0.25s" is then
     * 25000 / 100, exactly 250, where 0.25 * 1000 could be off by an ulp. */
    double value = mant * scale;
    if (frac_digits > 0) value /= pow(10, frac_digits);
    if (!isfinite(value)) return -1; /* absurdly many digits */
    *ms = value;
    return 0;
}

void bh_util_format_duration(double ms, char *out, size_t outlen) {
    if (!out || outlen == 0) return;
    if (!isfinite(ms)) {
        snprintf(out, outlen, "?");
        return;
    }
    const char *sign = "";
    if (ms < 0) {
        sign = "-";
        ms = -ms;
    }
    /* Each branch rounds at its own precision first and moves up a unit
     * when rounding reaches the next one, so 59.96s prints as "1m00s"
     * rather than "60.0s". */
    if (ms > 3.6e15) { /* a million hours: past anything llround can hold */
        snprintf(out, outlen, "%s>1000000h", sign);
        return;
    }
    if (ms < 999.5) {
        snprintf(out, outlen, "%s%.0fms", sign, ms);
        return;
    }
    long long tenths = llround(ms / 100);
    if (tenths < 600) {
        snprintf(out, outlen, "%s%lld.%llds", sign, tenths / 10, tenths % 10);
        return;
    }
    long long secs = llround(ms / 1000);
    if (secs < 3600) {
        snprintf(out, outlen, "%s%lldm%02llds", sign, secs / 60, secs % 60);
        return;
    }
    long long mins = llround(ms / 60000);
    snprintf(out, outlen, "%s%lldh%02lldm", sign, mins / 60, mins % 60);
}

char *bh_util_read_file(const char *path, size_t *len) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return NULL;
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        errno = EISDIR;
        return NULL;
    }
    /* st_size is only a hint: the file may grow while we read it, and
     * files under /proc report 0. Read until EOF whatever it says. */
    size_t cap = st.st_size > 0 ? (size_t)st.st_size + 1 : 4096;
    size_t used = 0;
    char *buf = malloc(cap);
    if (!buf) {
        close(fd);
        errno = ENOMEM;
        return NULL;
    }
    for (;;) {
        if (used + 1 >= cap) {
            size_t ncap = cap * 2;
            char *nbuf = realloc(buf, ncap);
            if (!nbuf) {
                free(buf);
                close(fd);
                errno = ENOMEM;
                return NULL;
            }
            buf = nbuf;
            cap = ncap;
        }
        ssize_t n = read(fd, buf + used, cap - used - 1);
        if (n < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            free(buf);
            close(fd);
            errno = e;
            return NULL;
        }
        if (n == 0) break;
        used += (size_t)n;
    }
    close(fd);
    buf[used] = '\0';
    if (len) *len = used;
    return buf;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) == 0 ? 0 : -errno;
}

int bh_util_rmtree(const char *path) {
    int rc = nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return rc > 0 ? -rc : rc;
}

int bh_util_mkdir_p(const char *path) {
    if (!path || !*path) return -EINVAL;
    char *copy = bh_util_xstrdup(path);
    int rc = 0;
    /* Create each prefix ending before a '/', then the whole path. The
     * leading '/' of an absolute path is skipped: "/" always exists. */
    for (char *p = copy + 1;; p++) {
        if (*p != '/' && *p != '\0') continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(copy, 0700) < 0) {
            int e = errno;
            struct stat st;
            if (e != EEXIST) {
                rc = -e;
            } else if (stat(copy, &st) < 0) {
                rc = -errno;
            } else if (!S_ISDIR(st.st_mode)) {
                rc = -ENOTDIR;
            }
        }
        *p = saved;
        if (rc < 0 || saved == '\0') break;
    }
    free(copy);
    return rc;
}

int bh_util_fsync_dir(const char *path) {
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -errno;
    int rc = 0;
    while (fsync(fd) < 0) {
        if (errno != EINTR) {
            rc = -errno;
            break;
        }
    }
    close(fd);
    return rc;
}

int bh_util_write_all(int fd, const void *buf, size_t len) {
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        if (n == 0) return -EIO; /* would loop forever otherwise */
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static char *vformat(const char *fmt, va_list ap) {
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0) {
        fprintf(stderr, "bulkhead: bad format string \"%s\"\n", fmt);
        abort();
    }
    char *s = bh_util_xmalloc((size_t)n + 1);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    return s;
}

char *bh_util_asprintf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *s = vformat(fmt, ap);
    va_end(ap);
    return s;
}

static void out_of_memory(size_t n) {
    fprintf(stderr, "bulkhead: out of memory (allocating %zu bytes)\n", n);
    abort();
}

void *bh_util_xmalloc(size_t n) {
    /* malloc(0) may legitimately return NULL; ask for a byte instead so
     * that NULL always means failure. */
    void *p = malloc(n ? n : 1);
    if (!p) out_of_memory(n);
    return p;
}

void *bh_util_xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) out_of_memory(n * size);
    return p;
}

void *bh_util_xrealloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) out_of_memory(n);
    return q;
}

char *bh_util_xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = bh_util_xmalloc(n);
    memcpy(p, s, n);
    return p;
}

#define TEXT_OF(x) #x
#define TEXT_OF_VALUE(x) TEXT_OF(x)
#define NAME_MAX_TEXT TEXT_OF_VALUE(BH_UTIL_NAME_MAX)

const char *bh_util_clean_name(const char *in, char out[BH_UTIL_NAME_MAX + 1]) {
    out[0] = '\0';
    while (isspace((unsigned char)*in))
        in++;
    size_t n = strlen(in);
    while (n && isspace((unsigned char)in[n - 1]))
        n--;
    if (n == 0) return "it is blank";
    if (n > BH_UTIL_NAME_MAX) return "it is longer than " NAME_MAX_TEXT " bytes";
    for (size_t k = 0; k < n; k++)
        if ((unsigned char)in[k] < 0x20 || in[k] == 0x7f) return "it holds a control character";
    memcpy(out, in, n);
    out[n] = '\0';
    return NULL;
}

const char *bh_util_strerror(int err) {
    return strerror(err < 0 ? -err : err);
}

const char *bh_util_relative_to(const char *path, const char *dir) {
    size_t n = strlen(dir);
    return strncmp(path, dir, n) == 0 && path[n] == '/' ? path + n + 1 : path;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char **bh_util_list_names(const char *dir, size_t *n) {
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) return NULL;
    size_t cap = 16;
    char **names = bh_util_xcalloc(cap, sizeof *names);
    const struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        if (*n == cap) {
            cap *= 2;
            names = realloc(names, cap * sizeof *names);
            if (!names) abort();
        }
        names[(*n)++] = bh_util_xstrdup(e->d_name);
    }
    closedir(d);
    qsort(names, *n, sizeof *names, cmp_str);
    return names;
}

void bh_util_free_names(char **names, size_t n) {
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

void bh_buf_put(bh_buf *b, const void *data, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->p = realloc(b->p, cap);
        if (!b->p) abort();
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
}
