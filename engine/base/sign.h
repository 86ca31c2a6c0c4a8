/* sign: Ed25519 checkpoints over the journal's hash chain (libsodium).
 *
 * The hash chain shows an edit but not a rewrite: whoever can write the
 * file can recompute every hash. A checkpoint record carries a signature
 * over (run id, seq, head hash) made with a key the engine holds and the
 * verifier does not need: `verify --key PUBLIC` then shows that the chain up
 * to that record existed when the key holder signed it. Checkpoints are
 * written every N records and after run_end.
 *
 * Key files are hex text: the secret key (64 bytes, "bulkhead-ed25519-secret
 * HEX") must not be readable by group or others; the public key (32 bytes,
 * "bulkhead-ed25519-public HEX") can go in the incident ticket. */
#ifndef BH_SIGN_H
#define BH_SIGN_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#define BH_SIGN_KEY_ID_LEN 16

typedef struct bh_signer bh_signer;

/* Write PREFIX.key (0600, O_EXCL) and PREFIX.pub. 0 or -errno; on an
 * error nothing is left half-written. */
int bh_sign_keygen(const char *prefix);
/* Load a secret key; NULL with a message in err (mode, format). */
bh_signer *bh_sign_load(const char *path, char *err, size_t errlen);
void bh_sign_free(bh_signer *s);
/* Fill a checkpoint record's fields: seq, head, key_id, sig. */
void bh_sign_checkpoint(const bh_signer *s, const char *run_id, uint64_t seq, const char *head,
                        cJSON *rec);

/* Load a public key file: 0, or -1 with a message. */
int bh_sign_load_public(const char *path, unsigned char pk[32], char *err, size_t errlen);
/* Check one checkpoint record against pk. 1 valid, 0 not (why in err). */
int bh_sign_check(const unsigned char pk[32], const char *run_id, const cJSON *rec, char *err,
                  size_t errlen);

#endif
