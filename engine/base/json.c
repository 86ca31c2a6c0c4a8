#include "base/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

/* In memory, C0 (never in well-formed UTF-8) escapes the two bytes a C
 * string cannot hold as they are: NUL as C0 80, C0 itself as C0 C0. */
#define MARK ((char)0xC0)
#define NUL_MARK ((char)0x80)

char *bh_json_from_bytes(const char *bytes, size_t len) {
    size_t extra = 0;
    for (size_t i = 0; i < len; i++)
        extra += bytes[i] == '\0' || bytes[i] == MARK;
    char *s = bh_util_xmalloc(len + extra + 1);
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (bytes[i] == '\0' || bytes[i] == MARK) {
            s[o++] = MARK;
            s[o++] = bytes[i] == '\0' ? NUL_MARK : MARK;
        } else {
            s[o++] = bytes[i];
        }
    }
    s[o] = '\0';
    return s;
}

cJSON *bh_json_string(const char *bytes, size_t len) {
    char *s = bh_json_from_bytes(bytes, len);
    cJSON *v = cJSON_CreateString(s);
    free(s);
    return v;
}

size_t bh_json_bytes(const char *s, char *out) {
    size_t o = 0;
    for (size_t i = 0; s[i]; i++) {
        if (s[i] == MARK && (s[i + 1] == NUL_MARK || s[i + 1] == MARK)) {
            out[o++] = s[i + 1] == NUL_MARK ? '\0' : MARK;
            i++;
        } else { /* a C0 from a C string, not from bytes: itself */
            out[o++] = s[i];
        }
    }
    return o;
}

/* The length of the well-formed UTF-8 sequence at s (n bytes left), or 0:
 * no overlong forms, no surrogates, nothing above U+10FFFF (RFC 3629). */
static size_t utf8_seq(const unsigned char *s, size_t n) {
    unsigned char c = s[0], lo = 0x80, hi = 0xBF;
    size_t len;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4;
    else
        return 0;
    if (c == 0xE0) lo = 0xA0; /* overlong */
    if (c == 0xED) hi = 0x9F; /* surrogates */
    if (c == 0xF0) lo = 0x90; /* overlong */
    if (c == 0xF4) hi = 0x8F; /* above U+10FFFF */
    if (n < len || s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF) return 0;
    return len;
}

/* What is escaped besides a NUL and bytes that are not UTF-8. */
enum { FOR_JSON, FOR_TERMINAL, FOR_ONE_LINE };

/* A character a terminal acts on instead of showing: C0 controls but a
 * newline (unless the text must stay on one line) or a tab, DEL, and C1
 * (U+0080..U+009F, C2 80..C2 9F in UTF-8). */
static int is_control(const unsigned char *u, size_t k, int mode) {
    if (k == 1)
        return (u[0] < 0x20 && u[0] != '\t' && (u[0] != '\n' || mode == FOR_ONE_LINE)) ||
               u[0] == 0x7f;
    return k == 2 && u[0] == 0xC2 && u[1] < 0xA0;
}

static size_t plain_seq(const unsigned char *u, size_t n, int mode) {
    size_t k = utf8_seq(u, n);
    return k && mode != FOR_JSON && is_control(u, k, mode) ? 0 : k;
}

static char *escape(const char *s, size_t len, size_t *outlen, int mode) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, k;
    while (i < len && (k = plain_seq(u + i, len - i, mode)) > 0)
        i += k;
    if (i == len) return NULL; /* the common case: nothing to do */
    bh_buf b = {0};
    bh_buf_put(&b, s, i);
    while (i < len) {
        k = plain_seq(u + i, len - i, mode);
        char e[8];
        if (k) {
            bh_buf_put(&b, s + i, k);
            i += k;
        } else if (s[i] == MARK && i + 1 < len && (s[i + 1] == NUL_MARK || s[i + 1] == MARK)) {
            bh_buf_put(&b, s[i + 1] == NUL_MARK ? "\\u0000" : "\\udcc0", 6);
            i += 2;
        } else if ((k = utf8_seq(u + i, len - i)) > 0) { /* a control, as JSON writes it */
            snprintf(e, sizeof e, "\\u%04x", k == 1 ? u[i] : u[i + 1]);
            bh_buf_put(&b, e, 6);
            i += k;
        } else {
            snprintf(e, sizeof e, "\\udc%02x", u[i]);
            bh_buf_put(&b, e, 6);
            i++;
        }
    }
    if (outlen) *outlen = b.len;
    return b.p;
}

char *bh_json_escape(const char *s, size_t len, size_t *outlen) {
    return escape(s, len, outlen, FOR_JSON);
}

char *bh_json_escape_terminal(const char *s, size_t len, size_t *outlen) {
    return escape(s, len, outlen, FOR_TERMINAL);
}

char *bh_json_escape_line(const char *s, size_t len, size_t *outlen) {
    return escape(s, len, outlen, FOR_ONE_LINE);
}

const char *bh_json_visible(const char *s, char **copy) {
    *copy = s ? bh_json_escape(s, strlen(s), NULL) : NULL;
    return *copy ? *copy : s;
}

char *bh_json_print(const cJSON *item, int formatted) {
    char *text = formatted ? cJSON_Print(item) : cJSON_PrintUnformatted(item);
    if (!text) return NULL;
    char *esc = bh_json_escape(text, strlen(text), NULL);
    if (!esc) return text;
    cJSON_free(text);
    return esc;
}

static int hex4(const char *s, unsigned *out) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        unsigned d = c >= '0' && c <= '9'   ? (unsigned)(c - '0')
                     : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                     : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10)
                                            : 16;
        if (d == 16) return 0;
        v = v * 16 + d;
    }
    *out = v;
    return 1;
}

/* text with \u0000 and \udcc0 in their in-memory forms and \udcXX as the
 * byte XX, inside strings (where a backslash can only start an escape):
 * NULL when there is none, which cJSON then reads as it is. */
static char *unescape(const char *text, size_t len, size_t *outlen) {
    if (!memmem(text, len, "\\u", 2)) return NULL;
    bh_buf b = {0};
    int in_string = 0, changed = 0;
    size_t i = 0;
    while (i < len) {
        char c = text[i];
        if (c == '"') in_string = !in_string;
        if (!in_string || c != '\\' || i + 1 >= len) {
            bh_buf_put(&b, &c, 1);
            i++;
            continue;
        }
        unsigned cp;
        if (text[i + 1] == 'u' && i + 6 <= len && hex4(text + i + 2, &cp)) {
            if (cp == 0 || cp == 0xDCC0) {
                char pair[2] = {MARK, cp == 0 ? NUL_MARK : MARK};
                bh_buf_put(&b, pair, 2);
                changed = 1;
            } else if (cp >= 0xDC80 && cp <= 0xDCFF) {
                char byte = (char)(cp & 0xFF);
                bh_buf_put(&b, &byte, 1);
                changed = 1;
            } else {
                bh_buf_put(&b, text + i, 6);
            }
            i += 6;
        } else { /* any other escape, \" and \\ among them: as it is */
            bh_buf_put(&b, text + i, 2);
            i += 2;
        }
    }
    if (!changed) {
        free(b.p);
        return NULL;
    }
    *outlen = b.len;
    return b.p;
}

cJSON *bh_json_parse(const char *text, size_t len) {
    size_t n = len;
    char *u = unescape(text, len, &n);
    const char *src = u ? u : text;
    const char *end = NULL;
    cJSON *v = cJSON_ParseWithLengthOpts(src, n, &end, 0);
    if (v && end != src + n) {
        cJSON_Delete(v);
        v = NULL;
    }
    free(u);
    return v;
}
