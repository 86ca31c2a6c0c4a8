#include "base/secrets.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"

typedef struct {
    char *name, *value;
    size_t len;
} entry;

struct bh_secrets {
    entry *v;
    size_t n;
};

int bh_secrets_name_ok(const char *name) {
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > 128) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        int alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
        if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return 0;
    }
    return 1;
}

void bh_secrets_free(bh_secrets *s) {
    if (!s) return;
    for (size_t i = 0; i < s->n; i++) {
        free(s->v[i].name);
        /* Values do not linger in freed memory. */
        if (s->v[i].value) memset(s->v[i].value, 0, s->v[i].len);
        free(s->v[i].value);
    }
    free(s->v);
    free(s);
}

static bh_secrets *refuse(bh_secrets *s, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static bh_secrets *refuse(bh_secrets *s, char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    bh_secrets_free(s);
    return NULL;
}

bh_secrets *bh_secrets_open(const char *file, char *err, size_t errlen) {
    bh_secrets *s = bh_util_xcalloc(1, sizeof *s);
    if (!file || !*file) return s;
    /* Checked on the descriptor that is read: no swap between stat and read. */
    int fd = open(file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return refuse(s, err, errlen, "secrets file %s: %s", file, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return refuse(s, err, errlen, "secrets file %s: not a regular file", file);
    }
    if (st.st_mode & 077) {
        close(fd);
        return refuse(s, err, errlen,
                      "secrets file %s is open to group or others (mode %04o); it must be "
                      "0600: chmod 600 %s",
                      file, (unsigned)(st.st_mode & 07777), file);
    }
    if (st.st_uid != geteuid()) {
        close(fd);
        return refuse(s, err, errlen, "secrets file %s belongs to uid %u, not to this user (%u)",
                      file, (unsigned)st.st_uid, (unsigned)geteuid());
    }
    if (st.st_size > (1 << 20)) {
        close(fd);
        return refuse(s, err, errlen, "secrets file %s is larger than 1 MiB", file);
    }
    char *text = bh_util_xmalloc((size_t)st.st_size + 1);
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fd, text + len, (size_t)st.st_size - len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        len += (size_t)n;
        if (len == (size_t)st.st_size) break;
    }
    close(fd);
    text[len] = '\0';
    int line = 0;
    const char *bad = NULL;
    for (char *p = text, *next; p && *p && !bad; p = next) {
        line++;
        next = strchr(p, '\n');
        if (next) *next++ = '\0';
        size_t l = strlen(p);
        if (l && p[l - 1] == '\r') p[--l] = '\0';
        const char *q = p;
        while (*q == ' ' || *q == '\t')
            q++;
        if (*q == '\0' || *q == '#') continue;
        char *eq = strchr(p, '=');
        if (!eq) {
            bad = "expected NAME=value";
            break;
        }
        *eq = '\0';
        if (!bh_secrets_name_ok(p)) {
            bad = "the name must be letters, digits and _ (not starting with a digit)";
            break;
        }
        s->v = realloc(s->v, (s->n + 1) * sizeof *s->v);
        if (!s->v) abort();
        s->v[s->n].name = bh_util_xstrdup(p);
        s->v[s->n].len = strlen(eq + 1);
        s->v[s->n].value = bh_util_xstrdup(eq + 1);
        s->n++;
    }
    memset(text, 0, len);
    free(text);
    if (bad) return refuse(s, err, errlen, "%s:%d: %s", file, line, bad);
    return s;
}

int bh_secrets_get(const bh_secrets *s, const char *name, const char **value, size_t *len,
                   const char **source) {
    /* The last definition in the file wins, as in a shell. */
    for (size_t i = s ? s->n : 0; i-- > 0;) {
        if (strcmp(s->v[i].name, name) == 0) {
            *value = s->v[i].value;
            *len = s->v[i].len;
            *source = "file";
            return 0;
        }
    }
    const char *env = getenv(name);
    if (!env) return -ENOENT;
    *value = env;
    *len = strlen(env);
    *source = "env";
    return 0;
}
