#include "journal/schema.h"

#include <string.h>

static const struct {
    const char *name, *fields;
} TYPES[] = {
#define BH_REC_ROW(id, name, fields) {name, fields},
    BH_RECORD_TYPES(BH_REC_ROW)
#undef BH_REC_ROW
};

const char *bh_rec_name(bh_rec r) {
    return r < BH_REC_COUNT ? TYPES[r].name : "?";
}

const char *bh_rec_fields(bh_rec r) {
    return r < BH_REC_COUNT ? TYPES[r].fields : "";
}

bh_rec bh_rec_of(const char *name) {
    for (int r = 0; name && r < BH_REC_COUNT; r++)
        if (strcmp(name, TYPES[r].name) == 0) return (bh_rec)r;
    return BH_REC_COUNT;
}

int bh_rec_is(const char *type, bh_rec r) {
    return type && r < BH_REC_COUNT && strcmp(type, TYPES[r].name) == 0;
}

/* Is word one of the space-separated words of list? */
static int listed(const char *list, const char *word) {
    size_t n = strlen(word);
    if (n == 0) return 0; /* an empty name is no field's */
    for (const char *p = list; (p = strstr(p, word)) != NULL; p += n)
        if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0')) return 1;
    return 0;
}

int bh_rec_declares(bh_rec r, const char *field) {
    return listed(BH_SCHEMA_COMMON, field) || listed(BH_SCHEMA_ATTEMPT, field) ||
           (r < BH_REC_COUNT && listed(TYPES[r].fields, field));
}

const char *bh_rec_undeclared(const cJSON *rec) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(rec, "type");
    bh_rec r = bh_rec_of(cJSON_IsString(t) ? t->valuestring : NULL);
    if (r == BH_REC_COUNT) return "type";
    const cJSON *f;
    cJSON_ArrayForEach(f, rec) if (!bh_rec_declares(r, f->string)) return f->string;
    return NULL;
}
