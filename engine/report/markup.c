#include "report/markup.h"

#include <stdlib.h>

#include "base/json.h"

void bh_markup_text(FILE *out, const char *s) {
    char *copy;
    s = bh_json_visible(s, &copy); /* NUL, bytes not UTF-8: as the journal writes them */
    for (; s && *s; s++) {
        switch (*s) {
        case '<':
            fputs("&lt;", out);
            break;
        case '>':
            fputs("&gt;", out);
            break;
        case '&':
            fputs("&amp;", out);
            break;
        case '"':
            fputs("&quot;", out);
            break;
        case '\'':
            fputs("&#39;", out);
            break;
        default:
            fputc(*s, out);
        }
    }
    free(copy);
}

const char *bh_markup_class(const char *s) {
    if (!s || !*s) return "other";
    for (const char *c = s; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || *c == '_')) return "other";
    return s;
}
