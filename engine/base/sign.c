#include "base/sign.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"

#define SECRET_TAG "bulkhead-ed25519-secret "
#define PUBLIC_TAG "bulkhead-ed25519-public "

struct bh_signer {
    unsigned char sk[crypto_sign_SECRETKEYBYTES];
    char key_id[BH_SIGN_KEY_ID_LEN + 1];
};

static void key_id_of(const unsigned char pk[32], char out[BH_SIGN_KEY_ID_LEN + 1]) {
    char hex[65];
    sodium_bin2hex(hex, sizeof hex, pk, 32);
    memcpy(out, hex, BH_SIGN_KEY_ID_LEN);
    out[BH_SIGN_KEY_ID_LEN] = '\0';
}

/* What is signed: a fixed label, so a checkpoint signature cannot be
 * passed off as a signature over anything else. */
static char *message(const char *run_id, uint64_t seq, const char *head) {
    return bh_util_asprintf("bulkhead-checkpoint\n%s\n%llu\n%s", run_id, (unsigned long long)seq,
                            head);
}

static int write_new(const char *path, mode_t mode, const char *text) {
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) return -errno;
    int err = bh_util_write_all(fd, text, strlen(text));
    if (!err && fsync(fd) != 0) err = -errno;
    close(fd);
    if (err) unlink(path);
    return err;
}

int bh_sign_keygen(const char *prefix) {
    if (sodium_init() < 0) return -EIO;
    unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
    crypto_sign_keypair(pk, sk);
    char skhex[2 * sizeof sk + 1], pkhex[2 * sizeof pk + 1];
    sodium_bin2hex(skhex, sizeof skhex, sk, sizeof sk);
    sodium_bin2hex(pkhex, sizeof pkhex, pk, sizeof pk);
    sodium_memzero(sk, sizeof sk);
    char *kpath = bh_util_asprintf("%s.key", prefix);
    char *ppath = bh_util_asprintf("%s.pub", prefix);
    char *ktext = bh_util_asprintf(SECRET_TAG "%s\n", skhex);
    char *ptext = bh_util_asprintf(PUBLIC_TAG "%s\n", pkhex);
    sodium_memzero(skhex, sizeof skhex);
    int err = write_new(kpath, 0600, ktext);
    if (!err) {
        err = write_new(ppath, 0644, ptext);
        if (err) unlink(kpath);
    }
    sodium_memzero(ktext, strlen(ktext));
    free(ktext);
    free(ptext);
    free(kpath);
    free(ppath);
    return err;
}

/* The hex after tag in the file at path, into bin (exactly n bytes). */
static int read_key(const char *path, const char *tag, unsigned char *bin, size_t n, char *err,
                    size_t errlen) {
    size_t len;
    char *text = bh_util_read_file(path, &len);
    if (!text) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    size_t tl = strlen(tag);
    size_t got = 0;
    int bad = strncmp(text, tag, tl) != 0 ||
              sodium_hex2bin(bin, n, text + tl, len - tl, " \n", &got, NULL) != 0 || got != n;
    sodium_memzero(text, len);
    free(text);
    if (bad) {
        snprintf(err, errlen, "%s is not a bulkhead %s key (make one with `bulkhead keygen`)", path,
                 strstr(tag, "secret") ? "secret" : "public");
        return -1;
    }
    return 0;
}

bh_signer *bh_sign_load(const char *path, char *err, size_t errlen) {
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        snprintf(err, errlen,
                 "%s is readable by group or others (mode %03o): the signing key must be "
                 "private (chmod 600)",
                 path, (unsigned)(st.st_mode & 0777));
        return NULL;
    }
    if (sodium_init() < 0) {
        snprintf(err, errlen, "libsodium failed to initialise");
        return NULL;
    }
    bh_signer *s = bh_util_xcalloc(1, sizeof *s);
    if (read_key(path, SECRET_TAG, s->sk, sizeof s->sk, err, errlen) != 0) {
        bh_sign_free(s);
        return NULL;
    }
    unsigned char pk[crypto_sign_PUBLICKEYBYTES];
    crypto_sign_ed25519_sk_to_pk(pk, s->sk);
    key_id_of(pk, s->key_id);
    return s;
}

void bh_sign_free(bh_signer *s) {
    if (!s) return;
    sodium_memzero(s, sizeof *s);
    free(s);
}

void bh_sign_checkpoint(const bh_signer *s, const char *run_id, uint64_t seq, const char *head,
                        cJSON *rec) {
    char *msg = message(run_id, seq, head);
    unsigned char sig[crypto_sign_BYTES];
    crypto_sign_detached(sig, NULL, (const unsigned char *)msg, strlen(msg), s->sk);
    free(msg);
    char hex[2 * crypto_sign_BYTES + 1];
    sodium_bin2hex(hex, sizeof hex, sig, sizeof sig);
    cJSON_AddNumberToObject(rec, "covers_seq", (double)seq);
    cJSON_AddStringToObject(rec, "head", head);
    cJSON_AddStringToObject(rec, "key_id", s->key_id);
    cJSON_AddStringToObject(rec, "sig", hex);
}

int bh_sign_load_public(const char *path, unsigned char pk[32], char *err, size_t errlen) {
    if (sodium_init() < 0) {
        snprintf(err, errlen, "libsodium failed to initialise");
        return -1;
    }
    return read_key(path, PUBLIC_TAG, pk, 32, err, errlen);
}

int bh_sign_check(const unsigned char pk[32], const char *run_id, const cJSON *rec, char *err,
                  size_t errlen) {
    const cJSON *seq = cJSON_GetObjectItemCaseSensitive(rec, "covers_seq");
    const cJSON *head = cJSON_GetObjectItemCaseSensitive(rec, "head");
    const cJSON *kid = cJSON_GetObjectItemCaseSensitive(rec, "key_id");
    const cJSON *sig = cJSON_GetObjectItemCaseSensitive(rec, "sig");
    if (!cJSON_IsNumber(seq) || !cJSON_IsString(head) || !cJSON_IsString(kid) ||
        !cJSON_IsString(sig)) {
        snprintf(err, errlen, "checkpoint lacks covers_seq, head, key_id or sig");
        return 0;
    }
    char want[BH_SIGN_KEY_ID_LEN + 1];
    key_id_of(pk, want);
    if (strcmp(want, kid->valuestring) != 0) {
        snprintf(err, errlen, "checkpoint signed by key %s, not by the given key %s",
                 kid->valuestring, want);
        return 0;
    }
    unsigned char bin[crypto_sign_BYTES];
    size_t got = 0;
    if (sodium_hex2bin(bin, sizeof bin, sig->valuestring, strlen(sig->valuestring), NULL, &got,
                       NULL) != 0 ||
        got != sizeof bin) {
        snprintf(err, errlen, "checkpoint signature is not %d hex bytes", crypto_sign_BYTES);
        return 0;
    }
    char *msg = message(run_id, (uint64_t)seq->valuedouble, head->valuestring);
    int ok = crypto_sign_verify_detached(bin, (const unsigned char *)msg, strlen(msg), pk) == 0;
    free(msg);
    if (!ok) snprintf(err, errlen, "checkpoint signature does not verify");
    return ok;
}
