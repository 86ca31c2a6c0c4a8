/* keyring: the secrets a runbook has resolved, and the mask they make.
 *
 * secret("NAME") in a runbook resolves NAME from its source (secrets.h:
 * the secrets file, then the environment) and registers the value for
 * masking before the runbook sees it, so that no output the run writes
 * (journal, console, files, reports) can show it. Loading resolves some;
 * a step may resolve one the first time it runs. The keyring is therefore
 * the one part of a loaded runbook that grows while the run goes on: the
 * plan (model.h) stays as loading left it, and holds a keyring.
 *
 * Whoever must hear of a secret resolved from now on (the run, to record
 * it) listens; loading has no listener, so secrets it resolved are read
 * from bh_keyring_used (run_start lists them). */
#ifndef BH_KEYRING_H
#define BH_KEYRING_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "base/redact.h"
#include "base/secrets.h"

typedef struct bh_keyring bh_keyring;
typedef void (*bh_keyring_fn)(void *ud, const char *name, const char *source);

/* src: where values come from (NULL: the environment); not owned. */
bh_keyring *bh_keyring_new(const bh_secrets *src);
void bh_keyring_free(bh_keyring *k);
/* Resolve secret NAME and register it for masking (once). Returns 0 with
 * *value (owned by the source), or -1 with an error code
 * ("secret_missing", "secret_too_short") and a message. */
int bh_keyring_get(bh_keyring *k, const char *name, const char **value, size_t *len,
                   const char **code, char *why, size_t whylen);
/* Every value resolved so far, to mask output with. */
const bh_redact *bh_keyring_mask(const bh_keyring *k);
/* [{name, source}], in the order first resolved. */
const cJSON *bh_keyring_used(const bh_keyring *k);
/* fn(ud, name, source) for each secret resolved from now on (NULL: none). */
void bh_keyring_listen(bh_keyring *k, bh_keyring_fn fn, void *ud);

#endif
