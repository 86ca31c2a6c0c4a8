#include "load/params.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/util.h"

/* Values quoted in messages are cut to about this many bytes: enough to
 * recognise the value, short enough to keep the message on one line. */
#define SHOWN_MAX 60

/* How far off an unknown name may be for "did you mean". */
#define SUGGEST_MAX 2

static const char *const type_names[] = {"string", "number", "boolean", "list", "map"};

const char *bh_params_type_name(bh_param_type t) {
    if ((unsigned)t < sizeof type_names / sizeof type_names[0]) return type_names[t];
    return "unknown";
}

int bh_params_type_from_name(const char *name, bh_param_type *t) {
    for (size_t i = 0; i < sizeof type_names / sizeof type_names[0]; i++) {
        if (strcmp(name, type_names[i]) == 0) {
            *t = (bh_param_type)i;
            return 0;
        }
    }
    return -1;
}

/* cJSON returns NULL only when malloc does; like bh_util_xmalloc, there is
 * nothing better to do than stop. */
static cJSON *must(cJSON *v) {
    if (!v) {
        fprintf(stderr, "bulkhead: out of memory\n");
        abort();
    }
    return v;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Copy s into out, cut to SHOWN_MAX bytes with "..." and never in the
 * middle of a UTF-8 sequence. */
static void shorten(const char *s, char *out, size_t outlen) {
    size_t n = strlen(s);
    if (n <= SHOWN_MAX) {
        snprintf(out, outlen, "%s", s);
        return;
    }
    size_t cut = SHOWN_MAX - 3;
    while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
        cut--;
    snprintf(out, outlen, "%.*s...", (int)cut, s);
}

/* Text as it will appear in a message: JSON-escaped (a value with a newline
 * or an escape sequence must not break the terminal or the line) and
 * shortened, in double quotes. */
static void show_text(const char *text, char *out, size_t outlen) {
    cJSON *s = must(cJSON_CreateString(text));
    char *printed = cJSON_PrintUnformatted(s);
    cJSON_Delete(s);
    if (!printed) {
        snprintf(out, outlen, "\"?\"");
        return;
    }
    size_t n = strlen(printed);
    printed[n - 1] = '\0'; /* drop the closing quote, then the opening one */
    char inner[SHOWN_MAX + 8];
    shorten(printed + 1, inner, sizeof inner);
    cJSON_free(printed);
    snprintf(out, outlen, "\"%s\"", inner);
}

/* Our name for the type of a JSON value, in the runbook's vocabulary. */
static const char *json_kind(const cJSON *v) {
    if (cJSON_IsNull(v)) return "null";
    if (cJSON_IsBool(v)) return "boolean";
    if (cJSON_IsNumber(v)) return "number";
    if (cJSON_IsString(v)) return "string";
    if (cJSON_IsArray(v)) return "list";
    if (cJSON_IsObject(v)) return "map";
    return "invalid value";
}

/* "string \"5\"", "list [1,2]": the kind and the value, shortened. */
static void show_json(const cJSON *v, char *out, size_t outlen) {
    char *printed = cJSON_PrintUnformatted(v);
    char shown[SHOWN_MAX + 8];
    shorten(printed ? printed : "?", shown, sizeof shown);
    cJSON_free(printed);
    snprintf(out, outlen, "%s %s", json_kind(v), shown);
}

void bh_params_input_init(bh_params_input *in) {
    in->cli = must(cJSON_CreateObject());
    in->file = NULL;
    in->file_path = NULL;
}

void bh_params_input_free(bh_params_input *in) {
    cJSON_Delete(in->cli);
    cJSON_Delete(in->file);
    free(in->file_path);
    in->cli = NULL;
    in->file = NULL;
    in->file_path = NULL;
}

/* [A-Za-z_][A-Za-z0-9_]*, spelled out rather than isalpha(): names must not
 * depend on the locale. */
static int valid_name(const char *s, size_t len) {
    if (len == 0) return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        int alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
        int digit = c >= '0' && c <= '9';
        if (!alpha && !(digit && i > 0)) return 0;
    }
    return 1;
}

int bh_params_input_add(bh_params_input *in, const char *arg, char *err, size_t errlen) {
    char shown[SHOWN_MAX + 16];
    const char *eq = strchr(arg, '=');
    if (!eq) {
        show_text(arg, shown, sizeof shown);
        set_err(err, errlen, "-p expects name=value, got %s", shown);
        return -1;
    }
    size_t nlen = (size_t)(eq - arg);
    if (!valid_name(arg, nlen)) {
        char *name = bh_util_xmalloc(nlen + 1);
        memcpy(name, arg, nlen);
        name[nlen] = '\0';
        show_text(name, shown, sizeof shown);
        free(name);
        set_err(err, errlen,
                "-p: invalid parameter name %s: letters, digits and '_', "
                "not starting with a digit",
                shown);
        return -1;
    }
    if (!in->cli) in->cli = must(cJSON_CreateObject());
    char *name = bh_util_xmalloc(nlen + 1);
    memcpy(name, arg, nlen);
    name[nlen] = '\0';
    /* The last -p for a name wins, as with most command-line options. */
    cJSON_DeleteItemFromObjectCaseSensitive(in->cli, name);
    cJSON_AddItemToObject(in->cli, name, must(cJSON_CreateString(eq + 1)));
    free(name);
    return 0;
}

/* 1-based line and column of pos in text, for parse errors. */
static void line_col(const char *text, const char *pos, int *line, int *col) {
    *line = 1;
    *col = 1;
    for (const char *p = text; p < pos && *p; p++) {
        if (*p == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

int bh_params_input_load_file(bh_params_input *in, const char *path, char *err, size_t errlen) {
    size_t len;
    char *buf = bh_util_read_file(path, &len);
    if (!buf) {
        set_err(err, errlen, "cannot read params file %s: %s", path,
                bh_util_strerror(errno ? errno : EIO));
        return -1;
    }
    if (strlen(buf) != len) {
        set_err(err, errlen, "%s: not a JSON file (contains a NUL byte)", path);
        free(buf);
        return -1;
    }
    const char *end = NULL;
    cJSON *v = cJSON_ParseWithOpts(buf, &end, 1);
    if (!v) {
        int line, col;
        line_col(buf, end ? end : buf, &line, &col);
        set_err(err, errlen, "%s:%d:%d: not valid JSON (error at byte %zu)", path, line, col,
                end ? (size_t)(end - buf) : 0);
        free(buf);
        return -1;
    }
    free(buf);
    if (!cJSON_IsObject(v)) {
        set_err(err, errlen, "%s: expected a JSON object of name -> value, found a %s", path,
                json_kind(v));
        cJSON_Delete(v);
        return -1;
    }
    /* JSON allows a name twice; which one counts differs between parsers,
     * so an operator's file that does it is ambiguous. */
    for (const cJSON *a = v->child; a; a = a->next) {
        for (const cJSON *b = a->next; b; b = b->next) {
            if (strcmp(a->string, b->string) == 0) {
                char shown[SHOWN_MAX + 16];
                show_text(a->string, shown, sizeof shown);
                set_err(err, errlen, "%s: parameter %s is given twice", path, shown);
                cJSON_Delete(v);
                return -1;
            }
        }
    }
    /* A second --params replaces the first rather than merging: one file
     * is what the operator will look at to know what was passed. */
    cJSON_Delete(in->file);
    free(in->file_path);
    in->file = v;
    in->file_path = bh_util_xstrdup(path);
    return 0;
}

static int is_blank(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Parse text as exactly one JSON value (blanks around it allowed). On
 * failure *where is the byte offset cJSON stopped at. */
static cJSON *parse_whole(const char *text, size_t *where) {
    const char *end = NULL;
    cJSON *v = cJSON_ParseWithOpts(text, &end, 1);
    if (!v) *where = end ? (size_t)(end - text) : 0;
    return v;
}

static cJSON *list_from_text(const char *text, char *err, size_t errlen) {
    char shown[SHOWN_MAX + 16];
    const char *p = text;
    while (is_blank(*p))
        p++;
    if (*p == '[') {
        size_t where;
        cJSON *v = parse_whole(text, &where);
        if (!v) {
            show_text(text, shown, sizeof shown);
            set_err(err, errlen,
                    "expected list (a,b,c or a JSON array), got %s: invalid JSON at byte %zu",
                    shown, where);
            return NULL;
        }
        if (!cJSON_IsArray(v)) {
            /* "[1] x" and the like: parse_whole already refuses; kept for
             * safety should cJSON ever return something else. */
            cJSON_Delete(v);
            show_text(text, shown, sizeof shown);
            set_err(err, errlen, "expected list (a,b,c or a JSON array), got %s", shown);
            return NULL;
        }
        return v;
    }
    cJSON *list = must(cJSON_CreateArray());
    if (*p == '\0') return list; /* "" is the empty list: how to pass one with -p */
    const char *start = text;
    for (;;) {
        const char *comma = strchr(start, ',');
        const char *stop = comma ? comma : start + strlen(start);
        const char *a = start, *b = stop;
        while (a < b && is_blank(*a))
            a++;
        while (b > a && is_blank(b[-1]))
            b--;
        size_t n = (size_t)(b - a);
        char *item = bh_util_xmalloc(n + 1);
        memcpy(item, a, n);
        item[n] = '\0';
        cJSON_AddItemToArray(list, must(cJSON_CreateString(item)));
        free(item);
        if (!comma) break;
        start = comma + 1;
    }
    return list;
}

static int parse_bool(const char *text, int *out) {
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (strcasecmp(text, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(text, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

cJSON *bh_params_from_text(bh_param_type t, const char *text, char *err, size_t errlen) {
    char shown[SHOWN_MAX + 16];
    switch (t) {
    case BH_PARAM_STRING:
        return must(cJSON_CreateString(text));
    case BH_PARAM_NUMBER: {
        /* strtod alone would skip leading blanks and stop at junk. */
        char *end = NULL;
        double d = 0;
        int ok = text[0] != '\0' && !is_blank(text[0]);
        if (ok) {
            errno = 0;
            d = strtod(text, &end);
            ok = *end == '\0' && isfinite(d);
        }
        if (!ok) {
            show_text(text, shown, sizeof shown);
            set_err(err, errlen, "expected number, got %s", shown);
            return NULL;
        }
        return must(cJSON_CreateNumber(d));
    }
    case BH_PARAM_BOOLEAN: {
        int b;
        if (parse_bool(text, &b) < 0) {
            show_text(text, shown, sizeof shown);
            set_err(err, errlen, "expected boolean (true/false, yes/no, on/off, 1/0), got %s",
                    shown);
            return NULL;
        }
        return must(cJSON_CreateBool(b));
    }
    case BH_PARAM_LIST:
        return list_from_text(text, err, errlen);
    case BH_PARAM_MAP: {
        size_t where;
        cJSON *v = parse_whole(text, &where);
        if (!v) {
            show_text(text, shown, sizeof shown);
            set_err(err, errlen, "expected map (a JSON object), got %s: invalid JSON at byte %zu",
                    shown, where);
            return NULL;
        }
        if (!cJSON_IsObject(v)) {
            show_text(text, shown, sizeof shown);
            set_err(err, errlen, "expected map (a JSON object), got %s, a JSON %s", shown,
                    json_kind(v));
            cJSON_Delete(v);
            return NULL;
        }
        return v;
    }
    }
    set_err(err, errlen, "unknown parameter type %d", (int)t);
    return NULL;
}

int bh_params_has_type(bh_param_type t, const cJSON *v) {
    switch (t) {
    case BH_PARAM_STRING:
        return cJSON_IsString(v) ? 1 : 0;
    case BH_PARAM_NUMBER:
        return cJSON_IsNumber(v) ? 1 : 0;
    case BH_PARAM_BOOLEAN:
        return cJSON_IsBool(v) ? 1 : 0;
    case BH_PARAM_LIST:
        return cJSON_IsArray(v) ? 1 : 0;
    case BH_PARAM_MAP:
        return cJSON_IsObject(v) ? 1 : 0;
    }
    return 0;
}

/* Optimal string alignment distance (Levenshtein plus swapping two
 * neighbours, the commonest typo), or limit + 1 once it exceeds limit. */
static size_t edit_distance(const char *a, const char *b, size_t limit) {
    size_t la = strlen(a), lb = strlen(b);
    if ((la > lb ? la - lb : lb - la) > limit) return limit + 1;
    size_t *rows = bh_util_xcalloc(3 * (lb + 1), sizeof *rows);
    size_t *before = rows, *prev = rows + lb + 1, *cur = rows + 2 * (lb + 1);
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t d = prev[j] + 1;
            if (cur[j - 1] + 1 < d) d = cur[j - 1] + 1;
            if (prev[j - 1] + cost < d) d = prev[j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                before[j - 2] + 1 < d)
                d = before[j - 2] + 1;
            cur[j] = d;
        }
        size_t *t = before;
        before = prev;
        prev = cur;
        cur = t;
    }
    size_t d = prev[lb];
    free(rows);
    return d > limit ? limit + 1 : d;
}

static const bh_param_spec *find_spec(const bh_param_spec *specs, size_t n, const char *name) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(specs[i].name, name) == 0) return &specs[i];
    return NULL;
}

/* "a, b, c" in declaration order, or "none". */
static char *declared_list(const bh_param_spec *specs, size_t n) {
    if (n == 0) return bh_util_xstrdup("none");
    size_t len = 1;
    for (size_t i = 0; i < n; i++)
        len += strlen(specs[i].name) + 2;
    char *s = bh_util_xmalloc(len);
    s[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (i > 0) strcat(s, ", ");
        strcat(s, specs[i].name);
    }
    return s;
}

/* Report every name in given (cli or file) that no spec declares. Names
 * also present in skip were already reported from there. */
static void report_unknown(const bh_param_spec *specs, size_t n, const cJSON *given,
                           const cJSON *skip, const char *source, const char *file, int line,
                           bh_diag_list *diags) {
    if (!given) return;
    char *declared = NULL;
    for (const cJSON *it = given->child; it; it = it->next) {
        const char *name = it->string;
        if (!name || find_spec(specs, n, name)) continue;
        if (skip && cJSON_GetObjectItemCaseSensitive(skip, name)) continue;
        if (!declared) declared = declared_list(specs, n);

        /* A very short name is within 2 edits of anything short: only
         * suggest when fewer edits are needed than the name has bytes. */
        const char *best = NULL;
        size_t best_d = SUGGEST_MAX + 1;
        for (size_t i = 0; i < n; i++) {
            size_t d = edit_distance(name, specs[i].name, SUGGEST_MAX);
            if (d < best_d && d < strlen(name)) {
                best = specs[i].name;
                best_d = d;
            }
        }
        char shown[SHOWN_MAX + 16];
        shorten(name, shown, sizeof shown);
        if (best)
            bh_diag_add(diags, BH_DIAG_ERROR, file, line,
                        "unknown parameter '%s' (declared: %s); did you mean '%s'? (given with %s)",
                        shown, declared, best, source);
        else
            bh_diag_add(diags, BH_DIAG_ERROR, file, line,
                        "unknown parameter '%s' (declared: %s), given with %s", shown, declared,
                        source);
    }
    free(declared);
}

/* The stand-in `check` uses for a required parameter it has no value for. */
static cJSON *placeholder(const bh_param_spec *spec) {
    char *text = bh_util_asprintf("<%s>", spec->name);
    cJSON *v = NULL;
    switch (spec->type) {
    case BH_PARAM_STRING:
        v = cJSON_CreateString(text);
        break;
    case BH_PARAM_NUMBER:
        v = cJSON_CreateNumber(0);
        break;
    case BH_PARAM_BOOLEAN:
        v = cJSON_CreateFalse();
        break;
    case BH_PARAM_LIST:
        v = cJSON_CreateArray();
        if (v) cJSON_AddItemToArray(v, must(cJSON_CreateString(text)));
        break;
    case BH_PARAM_MAP:
        v = cJSON_CreateObject();
        break;
    }
    free(text);
    return v ? v : must(cJSON_CreateNull());
}

cJSON *bh_params_resolve(const bh_param_spec *specs, size_t n, const bh_params_input *in,
                         int placeholders, const char *file, int line, bh_diag_list *diags) {
    cJSON *out = must(cJSON_CreateObject());
    const cJSON *cli = in ? in->cli : NULL;
    const cJSON *pfile = in ? in->file : NULL;
    const char *fsrc = in && in->file_path ? in->file_path : "the params file";

    /* Unknown names first: a misspelt name usually also explains a
     * "missing required" further down. */
    report_unknown(specs, n, cli, NULL, "-p", file, line, diags);
    report_unknown(specs, n, pfile, cli, fsrc, file, line, diags);

    for (size_t i = 0; i < n; i++) {
        const bh_param_spec *spec = &specs[i];
        const char *tname = bh_params_type_name(spec->type);
        /* A name declared twice is the loader's error to report; the first
         * declaration is the one that counts. */
        if (cJSON_GetObjectItemCaseSensitive(out, spec->name)) continue;

        const cJSON *c = cli ? cJSON_GetObjectItemCaseSensitive(cli, spec->name) : NULL;
        const cJSON *f = pfile ? cJSON_GetObjectItemCaseSensitive(pfile, spec->name) : NULL;
        char shown[SHOWN_MAX + 32];
        cJSON *val = NULL;

        /* A value that is given but wrong is an error; it does not fall
         * back to the file or the default, which the operator meant to
         * override. */
        if (c) {
            if (cJSON_IsString(c)) {
                char err[256];
                val = bh_params_from_text(spec->type, c->valuestring, err, sizeof err);
                if (!val)
                    bh_diag_add(diags, BH_DIAG_ERROR, file, line, "parameter '%s': %s (from -p)",
                                spec->name, err);
            } else if (bh_params_has_type(spec->type, c)) {
                val = must(cJSON_Duplicate(c, 1));
            } else {
                show_json(c, shown, sizeof shown);
                bh_diag_add(diags, BH_DIAG_ERROR, file, line,
                            "parameter '%s': expected %s, got %s (from -p)", spec->name, tname,
                            shown);
            }
        } else if (f) {
            if (bh_params_has_type(spec->type, f)) {
                val = must(cJSON_Duplicate(f, 1));
            } else {
                show_json(f, shown, sizeof shown);
                bh_diag_add(diags, BH_DIAG_ERROR, file, line,
                            "parameter '%s': expected %s, got %s (from %s)", spec->name, tname,
                            shown, fsrc);
            }
        } else if (spec->def) {
            if (bh_params_has_type(spec->type, spec->def)) {
                val = must(cJSON_Duplicate(spec->def, 1));
            } else {
                show_json(spec->def, shown, sizeof shown);
                bh_diag_add(diags, BH_DIAG_ERROR, file, line,
                            "parameter '%s': expected %s, got %s (the declared default)",
                            spec->name, tname, shown);
            }
        } else if (spec->required) {
            if (placeholders)
                val = placeholder(spec);
            else if (spec->doc && spec->doc[0])
                bh_diag_add(diags, BH_DIAG_ERROR, file, line,
                            "missing required parameter '%s' (%s): %s", spec->name, tname,
                            spec->doc);
            else
                bh_diag_add(diags, BH_DIAG_ERROR, file, line,
                            "missing required parameter '%s' (%s)", spec->name, tname);
        }
        if (val) cJSON_AddItemToObject(out, spec->name, val);
    }
    return out;
}
