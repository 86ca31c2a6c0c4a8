/* secrets: where secret("NAME") finds its value.
 *
 * Two sources, asked in this order: a secrets file (`--secrets FILE` or
 * $BULKHEAD_SECRETS), then the engine's environment (the variable NAME).
 * The file holds one NAME=value per line (blank lines and lines starting
 * with '#' are ignored; the value is everything after the first '=', up to
 * the end of the line, CR stripped). It must be a regular file owned by the
 * user running the engine, with no permission for group or others (0600 or
 * 0400): anything else is refused, as ssh refuses a readable private key.
 * Children never inherit either source (the environment is scrubbed);
 * values reach them only where a step passes them. */
#ifndef BH_SECRETS_H
#define BH_SECRETS_H

#include <stddef.h>

typedef struct bh_secrets bh_secrets;

/* Read and check the file (NULL: the environment only). NULL with a
 * message in err when the file cannot be used. */
bh_secrets *bh_secrets_open(const char *file, char *err, size_t errlen);
void bh_secrets_free(bh_secrets *s);

/* Look NAME up. Returns 0 with *value (not a copy; valid while s lives)
 * and *len and *source ("file" or "env"), or -ENOENT. */
int bh_secrets_get(const bh_secrets *s, const char *name, const char **value, size_t *len,
                   const char **source);
/* Is NAME a valid secret name: [A-Za-z_][A-Za-z0-9_]*, at most 128 bytes? */
int bh_secrets_name_ok(const char *name);

#endif
