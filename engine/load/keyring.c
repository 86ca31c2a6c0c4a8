#include "load/keyring.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

struct bh_keyring {
    const bh_secrets *src;
    bh_redact *mask;
    cJSON *used;
    bh_keyring_fn listen;
    void *listen_ud;
};

bh_keyring *bh_keyring_new(const bh_secrets *src) {
    bh_keyring *k = bh_util_xcalloc(1, sizeof *k);
    k->src = src;
    k->mask = bh_redact_new();
    k->used = cJSON_CreateArray();
    return k;
}

void bh_keyring_free(bh_keyring *k) {
    if (!k) return;
    bh_redact_free(k->mask);
    cJSON_Delete(k->used);
    free(k);
}

static int known(const bh_keyring *k, const char *name) {
    const cJSON *u;
    cJSON_ArrayForEach(u, k->used) {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(u, "name");
        if (cJSON_IsString(n) && strcmp(n->valuestring, name) == 0) return 1;
    }
    return 0;
}

int bh_keyring_get(bh_keyring *k, const char *name, const char **value, size_t *len,
                   const char **code, char *why, size_t whylen) {
    const char *source;
    if (bh_secrets_get(k->src, name, value, len, &source) != 0) {
        *code = "secret_missing";
        snprintf(why, whylen,
                 "secret '%s' is not set: put it in the environment (%s=...) or in the secrets "
                 "file (--secrets FILE, mode 0600)",
                 name, name);
        return -1;
    }
    if (known(k, name)) return 0;
    if (bh_redact_add(k->mask, name, *value, *len) != 0) {
        *code = "secret_too_short";
        snprintf(why, whylen,
                 "secret '%s' is shorter than %d bytes: too short to be masked reliably in what "
                 "the run writes",
                 name, BH_REDACT_MIN_SECRET);
        return -1;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddStringToObject(o, "source", source);
    cJSON_AddItemToArray(k->used, o);
    if (k->listen) k->listen(k->listen_ud, name, source);
    return 0;
}

const bh_redact *bh_keyring_mask(const bh_keyring *k) {
    return k->mask;
}

const cJSON *bh_keyring_used(const bh_keyring *k) {
    return k->used;
}

void bh_keyring_listen(bh_keyring *k, bh_keyring_fn fn, void *ud) {
    k->listen = fn;
    k->listen_ud = ud;
}
