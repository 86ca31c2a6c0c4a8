#include "base/redact.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "base/util.h"

typedef struct {
    char *bytes;
    size_t len;
    size_t secret; /* index into names */
} form;

struct bh_redact {
    form *forms; /* longest first */
    size_t nforms, capforms;
    char **masks; /* "[masked:NAME]" per secret */
    char **names; /* NAME per secret */
    size_t nsecrets;
    size_t maxlen;
    /* by first byte: does any form start with it? (a cheap filter) */
    unsigned char starts[256];
};

bh_redact *bh_redact_new(void) {
    return bh_util_xcalloc(1, sizeof(bh_redact));
}

void bh_redact_free(bh_redact *r) {
    if (!r) return;
    for (size_t i = 0; i < r->nforms; i++)
        free(r->forms[i].bytes);
    for (size_t i = 0; i < r->nsecrets; i++) {
        free(r->masks[i]);
        free(r->names[i]);
    }
    free(r->forms);
    free(r->masks);
    free(r->names);
    free(r);
}

size_t bh_redact_count(const bh_redact *r) {
    return r ? r->nsecrets : 0;
}

static void add_form(bh_redact *r, size_t secret, const char *bytes, size_t len, int raw) {
    if (len == 0 || (!raw && len < BH_REDACT_MIN_FORM)) return;
    for (size_t i = 0; i < r->nforms; i++)
        if (r->forms[i].len == len && memcmp(r->forms[i].bytes, bytes, len) == 0) return;
    if (r->nforms == r->capforms) {
        r->capforms = r->capforms ? r->capforms * 2 : 16;
        r->forms = realloc(r->forms, r->capforms * sizeof *r->forms);
        if (!r->forms) abort();
    }
    /* Keep longest first, so an encoded form that contains the raw value
     * (or a shorter form) is masked whole. */
    size_t at = 0;
    while (at < r->nforms && r->forms[at].len >= len)
        at++;
    memmove(&r->forms[at + 1], &r->forms[at], (r->nforms - at) * sizeof *r->forms);
    char *copy = bh_util_xmalloc(len);
    memcpy(copy, bytes, len);
    r->forms[at] = (form){.bytes = copy, .len = len, .secret = secret};
    r->nforms++;
    if (len > r->maxlen) r->maxlen = len;
    r->starts[(unsigned char)bytes[0]] = 1;
}

static void add_hex(bh_redact *r, size_t secret, const unsigned char *v, size_t n, int upper) {
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    char *h = bh_util_xmalloc(n * 2);
    for (size_t i = 0; i < n; i++) {
        h[2 * i] = digits[v[i] >> 4];
        h[2 * i + 1] = digits[v[i] & 15];
    }
    add_form(r, secret, h, n * 2, 0);
    free(h);
}

static void add_percent(bh_redact *r, size_t secret, const unsigned char *v, size_t n, int upper,
                        int plus, int slash) {
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    bh_buf b = {0};
    for (size_t i = 0; i < n; i++) {
        unsigned char c = v[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~' || (slash && c == '/')) {
            bh_buf_put(&b, &c, 1);
        } else if (c == ' ' && plus) {
            bh_buf_put(&b, "+", 1);
        } else {
            char e[3] = {'%', digits[c >> 4], digits[c & 15]};
            bh_buf_put(&b, e, 3);
        }
    }
    if (b.len) add_form(r, secret, b.p, b.len, 0);
    free(b.p);
}

/* v as cJSON writes it inside a string. */
static void add_json_escaped(bh_redact *r, size_t secret, const unsigned char *v, size_t n) {
    bh_buf b = {0};
    for (size_t i = 0; i < n; i++) {
        unsigned char c = v[i];
        char e[8];
        switch (c) {
        case '"':
            bh_buf_put(&b, "\\\"", 2);
            break;
        case '\\':
            bh_buf_put(&b, "\\\\", 2);
            break;
        case '\b':
            bh_buf_put(&b, "\\b", 2);
            break;
        case '\f':
            bh_buf_put(&b, "\\f", 2);
            break;
        case '\n':
            bh_buf_put(&b, "\\n", 2);
            break;
        case '\r':
            bh_buf_put(&b, "\\r", 2);
            break;
        case '\t':
            bh_buf_put(&b, "\\t", 2);
            break;
        default:
            if (c < 0x20) {
                snprintf(e, sizeof e, "\\u%04x", c);
                bh_buf_put(&b, e, 6);
            } else {
                bh_buf_put(&b, &c, 1);
            }
        }
    }
    if (b.len != n || memcmp(b.p, v, n) != 0) add_form(r, secret, b.p, b.len, 1);
    free(b.p);
}

/* base64 of (k zero bytes, v): the characters that depend on v alone. */
static void add_base64(bh_redact *r, size_t secret, const unsigned char *v, size_t n, size_t k,
                       int url) {
    const char *alpha = url ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                            : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t total = k + n;
    unsigned char *in = bh_util_xcalloc(total + 3, 1);
    memcpy(in + k, v, n);
    size_t nchars = (total * 8) / 6; /* characters made of input bits only */
    char *out = bh_util_xmalloc(nchars + 4);
    for (size_t c = 0; c < nchars; c++) {
        size_t bit = c * 6, byte = bit / 8, shift = bit % 8;
        unsigned int w = ((unsigned int)in[byte] << 8) | in[byte + 1];
        out[c] = alpha[(w >> (10 - shift)) & 63];
    }
    size_t first = (k * 8 + 5) / 6; /* the first character with no prefix bit */
    if (nchars > first) add_form(r, secret, out + first, nchars - first, 0);
    free(out);
    free(in);
}

int bh_redact_add(bh_redact *r, const char *name, const char *value, size_t len) {
    if (len < BH_REDACT_MIN_SECRET) return -EINVAL;
    r->masks = realloc(r->masks, (r->nsecrets + 1) * sizeof *r->masks);
    if (!r->masks) abort();
    r->names = realloc(r->names, (r->nsecrets + 1) * sizeof *r->names);
    if (!r->names) abort();
    r->masks[r->nsecrets] = bh_util_asprintf("[masked:%s]", name);
    r->names[r->nsecrets] = bh_util_xstrdup(name);
    size_t id = r->nsecrets++;
    const unsigned char *v = (const unsigned char *)value;
    add_form(r, id, value, len, 1);
    /* as the engine's JSON strings hold it (json.h), if a C0 byte makes
     * that differ: records are masked in that form */
    char *mem = bh_json_from_bytes(value, len);
    add_form(r, id, mem, strlen(mem), 1);
    free(mem);
    add_json_escaped(r, id, v, len);
    add_hex(r, id, v, len, 0);
    add_hex(r, id, v, len, 1);
    /* %XX in either case; spaces as %20 or '+' (forms); '/' escaped or
     * left alone (what most quote() functions do by default). */
    for (int upper = 0; upper < 2; upper++)
        for (int plus = 0; plus < 2; plus++)
            for (int slash = 0; slash < 2; slash++)
                add_percent(r, id, v, len, upper, plus, slash);
    for (size_t k = 0; k < 3; k++) {
        add_base64(r, id, v, len, k, 0);
        add_base64(r, id, v, len, k, 1);
    }
    return 0;
}

/* The longest form that matches at b[p] and fits before len. */
static const form *match_at(const bh_redact *r, const char *b, size_t len, size_t p) {
    if (!r->starts[(unsigned char)b[p]]) return NULL;
    for (size_t i = 0; i < r->nforms; i++) {
        const form *f = &r->forms[i];
        if (f->len <= len - p && b[p] == f->bytes[0] && memcmp(b + p, f->bytes, f->len) == 0)
            return f;
    }
    return NULL;
}

/* Mask b[0..len) into out while every form can be checked at the position
 * (all of them when final). Returns how many input bytes were consumed. */
static size_t scan(const bh_redact *r, const char *b, size_t len, int final, bh_buf *out,
                   int *matched) {
    size_t p = 0, lit = 0;
    while (p < len && (final || p + r->maxlen <= len)) {
        const form *f = match_at(r, b, len, p);
        if (!f) {
            p++;
            continue;
        }
        bh_buf_put(out, b + lit, p - lit);
        bh_buf_put(out, r->masks[f->secret], strlen(r->masks[f->secret]));
        p += f->len;
        lit = p;
        *matched = 1;
    }
    bh_buf_put(out, b + lit, p - lit);
    return p;
}

const char *bh_redact_which(const bh_redact *r, const char *s, size_t len) {
    if (!r || !r->nforms || !s) return NULL;
    for (size_t p = 0; p < len; p++) {
        const form *f = match_at(r, s, len, p);
        if (f) return r->names[f->secret];
    }
    return NULL;
}

char *bh_redact_text(const bh_redact *r, const char *s, size_t len, size_t *outlen) {
    if (!r || !r->nforms || !s) return NULL;
    bh_buf out = {0};
    int matched = 0;
    scan(r, s, len, 1, &out, &matched);
    if (!matched) {
        free(out.p);
        return NULL;
    }
    if (outlen) *outlen = out.len;
    return out.p;
}

void bh_redact_snprintf(const bh_redact *r, char *out, size_t len, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *full = NULL;
    int n = vasprintf(&full, fmt, ap);
    va_end(ap);
    if (n < 0 || !full) {
        if (len) out[0] = '\0';
        return;
    }
    char *masked = bh_redact_text(r, full, (size_t)n, NULL);
    snprintf(out, len, "%s", masked ? masked : full);
    free(masked);
    free(full);
}

const char *bh_redact_str(const bh_redact *r, const char *s, char **copy) {
    *copy = s ? bh_redact_text(r, s, strlen(s), NULL) : NULL;
    return *copy ? *copy : s;
}

static void mask_item(const bh_redact *r, cJSON *c) {
    if (c->string) {
        char *m = bh_redact_text(r, c->string, strlen(c->string), NULL);
        if (m) {
            /* cJSON frees a key it owns; a constant key is not owned. */
            if (!(c->type & cJSON_StringIsConst)) cJSON_free(c->string);
            c->type &= ~cJSON_StringIsConst;
            c->string = m;
        }
    }
    if (cJSON_IsString(c) && c->valuestring) {
        char *m = bh_redact_text(r, c->valuestring, strlen(c->valuestring), NULL);
        if (m) {
            cJSON_free(c->valuestring);
            c->valuestring = m;
        }
    } else if (cJSON_IsNumber(c)) {
        /* The number as cJSON will print it: an int, else the shortest of
         * %1.15g and %1.17g that reads back the same. */
        char text[64];
        double d = c->valuedouble;
        if (d == (double)c->valueint) {
            snprintf(text, sizeof text, "%d", c->valueint);
        } else {
            snprintf(text, sizeof text, "%1.15g", d);
            if (strtod(text, NULL) != d) snprintf(text, sizeof text, "%1.17g", d);
        }
        char *m = bh_redact_text(r, text, strlen(text), NULL);
        if (m) {
            c->type = cJSON_String | (c->type & cJSON_StringIsConst);
            c->valuestring = m;
        }
    }
    for (cJSON *k = c->child; k; k = k->next)
        mask_item(r, k);
}

void bh_redact_json(const bh_redact *r, cJSON *item) {
    if (r && r->nforms && item) mask_item(r, item);
}

struct bh_redact_stream {
    const bh_redact *r;
    bh_redact_emit emit;
    void *ud;
    bh_buf held; /* what may be the start of a secret cut by the chunk's end */
    bh_buf out;  /* reused for each chunk: output comes many small chunks at a time */
};

bh_redact_stream *bh_redact_stream_new(const bh_redact *r, bh_redact_emit emit, void *ud) {
    bh_redact_stream *s = bh_util_xcalloc(1, sizeof *s);
    s->r = r;
    s->emit = emit;
    s->ud = ud;
    return s;
}

/* Emit the masked text of what is held (final: all of it); returns how
 * much of it was used. */
static size_t drain(bh_redact_stream *s, int final) {
    int matched = 0;
    s->out.len = 0;
    size_t used = scan(s->r, s->held.p, s->held.len, final, &s->out, &matched);
    if (s->out.len) s->emit(s->out.p, s->out.len, s->ud);
    return used;
}

void bh_redact_stream_feed(bh_redact_stream *s, const char *data, size_t n) {
    if (!s->r || !s->r->nforms) {
        s->emit(data, n, s->ud);
        return;
    }
    bh_buf_put(&s->held, data, n);
    size_t used = drain(s, 0);
    memmove(s->held.p, s->held.p + used, s->held.len - used);
    s->held.len -= used;
}

void bh_redact_stream_end(bh_redact_stream *s) {
    if (!s) return;
    if (s->held.len) drain(s, 1);
    free(s->out.p);
    free(s->held.p);
    free(s);
}
