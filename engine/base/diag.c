#include "base/diag.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

void bh_diag_init(bh_diag_list *list) {
    list->items = NULL;
    list->count = 0;
    list->cap = 0;
}

void bh_diag_free(bh_diag_list *list) {
    for (size_t i = 0; i < list->count; i++) {
        free(list->items[i].file);
        free(list->items[i].message);
    }
    free(list->items);
    bh_diag_init(list);
}

void bh_diag_add(bh_diag_list *list, bh_diag_severity sev, const char *file, int line,
                 const char *fmt, ...) {
    if (list->count == list->cap) {
        size_t ncap = list->cap ? list->cap * 2 : 8;
        bh_diag *items = realloc(list->items, ncap * sizeof *items);
        if (!items) {
            fprintf(stderr, "bulkhead: out of memory\n");
            abort();
        }
        list->items = items;
        list->cap = ncap;
    }

    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0) n = 0; /* an encoding error: keep the diagnostic, with no text */
    char *message = bh_util_xmalloc((size_t)n + 1);
    message[0] = '\0';
    vsnprintf(message, (size_t)n + 1, fmt, ap);
    va_end(ap);

    bh_diag *d = &list->items[list->count++];
    d->severity = sev;
    d->file = file ? bh_util_xstrdup(file) : NULL;
    d->line = line;
    d->message = message;
}

size_t bh_diag_errors(const bh_diag_list *list) {
    size_t n = 0;
    for (size_t i = 0; i < list->count; i++)
        if (list->items[i].severity == BH_DIAG_ERROR) n++;
    return n;
}

void bh_diag_print(const bh_diag_list *list, FILE *out) {
    for (size_t i = 0; i < list->count; i++) {
        const bh_diag *d = &list->items[i];
        const char *sev = d->severity == BH_DIAG_ERROR ? "error" : "warning";
        /* The "file:line: " prefix is what editors and CI annotators parse,
         * so its parts are left out rather than printed as "?" or 0. */
        if (d->file && d->line > 0)
            fprintf(out, "%s:%d: %s: %s\n", d->file, d->line, sev, d->message);
        else if (d->file)
            fprintf(out, "%s: %s: %s\n", d->file, sev, d->message);
        else
            fprintf(out, "%s: %s\n", sev, d->message);
    }
}
