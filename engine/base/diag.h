/* diag: a list of problems found while loading or checking a runbook, each
 * with a severity and, where known, the file and line it points at. The
 * loader keeps going after a problem it can describe, so that `check`
 * reports every problem at once instead of the first one only. */
#ifndef BH_DIAG_H
#define BH_DIAG_H

#include <stddef.h>
#include <stdio.h>

typedef enum { BH_DIAG_ERROR, BH_DIAG_WARNING } bh_diag_severity;

typedef struct {
    bh_diag_severity severity;
    char *file; /* may be NULL */
    int line;   /* 0 when unknown */
    char *message;
} bh_diag;

typedef struct {
    bh_diag *items;
    size_t count, cap;
} bh_diag_list;

void bh_diag_init(bh_diag_list *list);
void bh_diag_free(bh_diag_list *list);
void bh_diag_add(bh_diag_list *list, bh_diag_severity sev, const char *file, int line,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));
size_t bh_diag_errors(const bh_diag_list *list);
/* "file:line: error: message" lines, in the order they were added. */
void bh_diag_print(const bh_diag_list *list, FILE *out);

#endif
