/* redact: secret values, and every place they could leak through.
 *
 * A run registers each secret it resolves (secret("NAME")). From then on
 * whatever the engine writes goes through here first: journal records (a
 * JSON tree, masked before it is serialized), the console, captured output
 * files of commands (a stream: a secret split across two reads is still
 * caught), messages on stderr. Reports are built from the journal.
 *
 * Forms masked, for a value v: v itself; v as a JSON string escapes it;
 * hex (lower and upper case); percent-encoding (upper and lower case, and
 * with '+' for spaces); base64, standard and URL-safe, at each of the three
 * byte alignments v can have inside a longer encoded text (the characters
 * that depend only on v's bits), so "Basic " base64("user:" v) is caught
 * too. Encoded forms shorter than BH_REDACT_MIN_FORM characters are left
 * alone (masking them would shred unrelated text); secrets shorter than
 * BH_REDACT_MIN_SECRET bytes are refused for the same reason.
 *
 * Each occurrence becomes "[masked:NAME]". The longest form wins where
 * forms overlap. */
#ifndef BH_REDACT_H
#define BH_REDACT_H

#include <cjson/cJSON.h>
#include <stddef.h>

#define BH_REDACT_MIN_SECRET 4
#define BH_REDACT_MIN_FORM 4

typedef struct bh_redact bh_redact;

bh_redact *bh_redact_new(void);
void bh_redact_free(bh_redact *r);

/* Register a secret. Returns 0, -EINVAL when it is too short to mask
 * safely. Registering the same name again replaces nothing: both values
 * stay masked. */
int bh_redact_add(bh_redact *r, const char *name, const char *value, size_t len);
/* How many secrets are registered (0 for NULL). */
size_t bh_redact_count(const bh_redact *r);

/* The name of the first secret s[0..len) holds in any form masked, or
 * NULL: what must not become a file name says which secret it holds
 * without showing it. */
const char *bh_redact_which(const bh_redact *r, const char *s, size_t len);
/* A malloc'd, NUL-terminated copy of s[0..len) with every form masked, and
 * its length in *outlen; NULL when r is NULL or nothing matched. */
char *bh_redact_text(const bh_redact *r, const char *s, size_t len, size_t *outlen);
/* The same for a C string: s itself when nothing matched (not a copy),
 * else a copy the caller frees; *copy says which. */
const char *bh_redact_str(const bh_redact *r, const char *s, char **copy);
/* snprintf into out, masked before it is cut to len: a secret cut in
 * half by a fixed-size buffer would no longer match. */
void bh_redact_snprintf(const bh_redact *r, char *out, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Mask a JSON tree in place: string values, object keys, and numbers whose
 * printed form contains a secret (they become the mask string). */
void bh_redact_json(const bh_redact *r, cJSON *item);

/* A stream: bytes in, masked bytes out through emit, holding back only as
 * much as the longest form needs. end() flushes and frees. */
typedef void (*bh_redact_emit)(const char *buf, size_t n, void *ud);
typedef struct bh_redact_stream bh_redact_stream;
bh_redact_stream *bh_redact_stream_new(const bh_redact *r, bh_redact_emit emit, void *ud);
void bh_redact_stream_feed(bh_redact_stream *s, const char *buf, size_t n);
void bh_redact_stream_end(bh_redact_stream *s);

#endif
