/* json: strict JSON text for strings that hold any bytes; the one place
 * where what a JSON string cannot hold as it is gets escaped, and read back.
 *
 * A cJSON string is a C string, so it cannot hold a NUL byte, and cJSON
 * writes bytes >= 0x80 as they are, well-formed UTF-8 or not. The engine's
 * strings come from Lua, commands and files, and may hold any bytes. So:
 *
 * - In memory (a cJSON string anywhere in the engine), the byte C0, which
 *   well-formed UTF-8 never contains, escapes the two that a C string
 *   cannot hold as they are: a NUL byte is C0 80 (NUL's overlong form, as
 *   Modified UTF-8 writes it), a C0 byte is C0 C0. Every other byte is
 *   itself, so text is untouched. bh_json_string() makes such a string from
 *   bytes (a Lua string), bh_json_bytes() gives the bytes back. A string
 *   made in C from C strings (a message, a -p value) is read the same way:
 *   a C0 in it stands for itself unless 80 or C0 follows, which is taken
 *   for the escape; so what can hold any bytes is converted, not copied.
 * - In JSON text (bh_json_print, bh_json_escape), a NUL is written \u0000,
 *   and every byte that is not part of a well-formed UTF-8 sequence is
 *   written \udcXX, XX its value in hex (80..ff): the lone low surrogates
 *   U+DC80..U+DCFF, which no UTF-8 text can hold, so the escape cannot be
 *   mistaken for text (Python's "surrogateescape"; a literal backslash is
 *   written \\ as always). The text is then valid UTF-8 and strict JSON.
 * - bh_json_parse() reads such text back into the in-memory form, byte
 *   for byte: a journal read and written again is the same, and the bytes
 *   a Lua string held come back whole.
 *
 * Secrets are masked on the in-memory form (redact.h), where their bytes
 * stand as they are, before any of this is written. */
#ifndef BH_JSON_H
#define BH_JSON_H

#include <cjson/cJSON.h>
#include <stddef.h>

/* The in-memory form of len bytes: a malloc'd C string. */
char *bh_json_from_bytes(const char *bytes, size_t len);
/* A cJSON string holding len bytes. */
cJSON *bh_json_string(const char *bytes, size_t len);
/* The bytes an in-memory string stands for, written to out, which has
 * room for strlen(s) bytes: how many. */
size_t bh_json_bytes(const char *s, char *out);

/* s[0..len), in memory form, with a NUL as \u0000 and every byte outside
 * well-formed UTF-8 as \udcXX: a malloc'd, NUL-terminated copy (its length
 * in *outlen if not NULL), or NULL when s needs none of it. For JSON text,
 * and for reports and the console, which show a string as the journal
 * writes it. */
char *bh_json_escape(const char *s, size_t len, size_t *outlen);
/* bh_json_escape, and what a terminal would act on (an escape sequence, a
 * carriage return, a backspace: C0 but newline and tab, DEL, C1) written
 * \u00XX too: a step's output or an item's name cannot move the cursor,
 * recolour or rewrite what a person reads. */
char *bh_json_escape_terminal(const char *s, size_t len, size_t *outlen);
/* bh_json_escape_terminal, and a newline too (\u000a): text that must stay
 * one line (a name, a log line) cannot start a line of its own. */
char *bh_json_escape_line(const char *s, size_t len, size_t *outlen);
/* s shown as the journal writes it (bh_json_escape): s itself, or the
 * escaped copy, which is then in *copy to free (else *copy is NULL). */
const char *bh_json_visible(const char *s, char **copy);
/* cJSON_Print (formatted) or cJSON_PrintUnformatted, then escaped: strict
 * JSON in valid UTF-8. malloc'd; NULL when out of memory. */
char *bh_json_print(const cJSON *item, int formatted);
/* Parse text[0..len) as one JSON value with nothing before or after it
 * (whitespace before it aside), reading \u0000 and \udcXX back; NULL when
 * it is not that. */
cJSON *bh_json_parse(const char *text, size_t len);

#endif
