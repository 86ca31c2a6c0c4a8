/* keygen and verify: the commands about the journal as evidence. */

#include "journal/schema.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmd.h"
#include "journal/history.h"
#include "journal/journal.h"
#include "base/sign.h"
#include "base/util.h"

static const char KEYGEN_HELP[] =
    "usage: bulkhead keygen [--out PREFIX]\n"
    "\n"
    "Make an Ed25519 key pair for signing journals: PREFIX.key (the secret,\n"
    "mode 0600) and PREFIX.pub (the public key, for verifiers and the ticket).\n"
    "Existing files are never overwritten. Default PREFIX: bulkhead-journal.\n"
    "Run with `bulkhead run --sign-key PREFIX.key` (or $BULKHEAD_SIGN_KEY) to\n"
    "write signed checkpoints; check them with `bulkhead verify RUN --key\n"
    "PREFIX.pub`.\n";

static const char VERIFY_HELP[] =
    "usage: bulkhead verify RUN [--key PUBLIC] [--expect-head HASH]\n"
    "\n"
    "Recheck the journal: it begins with its run's run_start, whose run id is\n"
    "the run folder's name; every line is a record, seq runs without gaps, and\n"
    "each record's prev is the SHA-256 of the line before it. Prints the head\n"
    "hash when intact; otherwise names the first broken record and its byte\n"
    "offset.\n"
    "\n"
    "  --key PUBLIC        also check the signed checkpoints against this\n"
    "                      public key (from `bulkhead keygen`): each must\n"
    "                      verify and name the hash of the record it covers;\n"
    "                      a journal without one fails\n"
    "  --expect-head HASH  the head hash quoted earlier (in the ticket): it\n"
    "                      must be the hash of a record in this journal, so a\n"
    "                      journal cut short fails\n"
    "\n"
    "exit: 0 intact, 5 broken, truncated or badly signed, 6 cannot read, 2 usage\n";

int bh_cmd_keygen(int argc, char **argv, const bh_cli *g) {
    (void)g;
    const char *prefix = "bulkhead-journal";
    for (int i = 1; i < argc; i++) {
        if (bh_cmd_is_help(argv[i])) {
            fputs(KEYGEN_HELP, stdout);
            return BH_EXIT_OK;
        } else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
            prefix = argv[++i];
        } else {
            return bh_cmd_usage_error("keygen", "unexpected '%s'", argv[i]);
        }
    }
    int err = bh_sign_keygen(prefix);
    if (err) {
        fprintf(stderr, "bulkhead keygen: cannot write %s.key / %s.pub: %s\n", prefix, prefix,
                bh_util_strerror(err));
        return BH_EXIT_IO;
    }
    printf("secret key %s.key (keep it private)\npublic key %s.pub\n", prefix, prefix);
    return BH_EXIT_OK;
}

typedef struct {
    char (*hash)[BH_SHA256_HEX_LEN + 1]; /* per line */
    size_t nlines;
    const unsigned char *pk;
    char *run_id; /* of the first run_start (record 0 of an intact journal) */
    const char *expect;
    int checkpoints, bad, expect_found;
    uint64_t last_covered, last_cp_seq;
    char why[400];
} sig_state;

static int check_record(const bh_hrec *rec, void *ud) {
    sig_state *st = ud;
    const cJSON *seq = bh_hrec_get(rec, "seq");
    if (rec->type == BH_REC_RUN_START) {
        const char *id = bh_hrec_str(rec, "run_id");
        if (id && !st->run_id) st->run_id = bh_util_xstrdup(id);
    }
    if (!st->pk || rec->type != BH_REC_CHECKPOINT || st->bad) return 0;
    char err[300];
    const cJSON *cov = bh_hrec_get(rec, "covers_seq");
    const cJSON *head = bh_hrec_get(rec, "head");
    size_t k = cJSON_IsNumber(cov) ? (size_t)cov->valuedouble : (size_t)-1;
    /* The engine writes a checkpoint right after the record it covers; one
     * anywhere else could be a copy vouching for records it never saw. */
    if (!cJSON_IsNumber(seq) || k >= st->nlines || k + 1 != (size_t)seq->valuedouble ||
        !cJSON_IsString(head) || strcmp(head->valuestring, st->hash[k]) != 0) {
        snprintf(st->why, sizeof st->why,
                 "checkpoint at seq %.0f does not cover the record just before it",
                 cJSON_IsNumber(seq) ? seq->valuedouble : -1.0);
        st->bad = 1;
    } else if (!bh_sign_check(st->pk, st->run_id ? st->run_id : "", rec->json, err, sizeof err)) {
        snprintf(st->why, sizeof st->why, "checkpoint at seq %.0f: %s", seq->valuedouble, err);
        st->bad = 1;
    } else {
        st->checkpoints++;
        st->last_covered = k;
        st->last_cp_seq = (uint64_t)seq->valuedouble;
    }
    return 0;
}

/* The hash of every line of buf (st->hash), noting whether the head the
 * operator quoted is among them. */
static void hash_lines(const char *buf, size_t len, uint64_t records, sig_state *st) {
    st->hash = bh_util_xcalloc(records ? records : 1, sizeof *st->hash);
    for (size_t off = 0; off < len && st->nlines < records;) {
        const char *nl = memchr(buf + off, '\n', len - off);
        size_t n = nl ? (size_t)(nl - (buf + off)) : len - off;
        bh_util_sha256_hex(buf + off, n, st->hash[st->nlines]);
        if (st->expect && strcmp(st->expect, st->hash[st->nlines]) == 0) st->expect_found = 1;
        st->nlines++;
        off += n + 1;
    }
}

/* --expect-head: is the quoted head here? Returns the exit code. */
static int say_expected(const sig_state *st, const bh_journal_check *chk) {
    if (!st->expect) return BH_EXIT_OK;
    if (!st->expect_found) {
        printf("expected head %s is not the hash of any record here: the journal was cut "
               "short or is not the one quoted\n",
               st->expect);
        return BH_EXIT_BROKEN;
    }
    printf("expected head found%s\n", strcmp(st->expect, chk->head) == 0
                                          ? " (it is the head)"
                                          : " (records were appended after it)");
    return BH_EXIT_OK;
}

/* --key: do the signed checkpoints verify, and cover every record? Returns
 * the exit code. */
static int say_signatures(const sig_state *st, const bh_journal_check *chk) {
    if (st->bad) {
        printf("SIGNATURE FAILURE: %s\n", st->why);
        return BH_EXIT_BROKEN;
    }
    if (st->checkpoints == 0) {
        printf("no signed checkpoint in this journal: nothing vouches for it\n");
        return BH_EXIT_BROKEN;
    }
    printf("%d signed checkpoint%s verify; the last covers seq %llu\n", st->checkpoints,
           st->checkpoints == 1 ? "" : "s", (unsigned long long)st->last_covered);
    uint64_t after = chk->records - 1 - st->last_cp_seq;
    if (after == 0) return BH_EXIT_OK;
    /* An engine always ends with a checkpoint after its last record. */
    printf("UNSIGNED TAIL: the last %llu record%s no signature covers: the journal was cut "
           "short, or its engine is still running or died\n",
           (unsigned long long)after, after == 1 ? "" : "s");
    return BH_EXIT_BROKEN;
}

/* Verify the journal in buf of run folder dir (path, for messages). */
static int verify_journal(const char *dir, const char *path, const char *buf, size_t len,
                          const unsigned char *pk, const char *expect) {
    bh_journal_check chk;
    bh_journal_verify_buf(buf, len, &chk);
    if (!chk.intact) {
        printf("%s: BROKEN at seq %lld (byte offset %llu): %s\n", path, (long long)chk.bad_seq,
               (unsigned long long)chk.bad_offset, chk.message);
        return BH_EXIT_BROKEN;
    }
    sig_state st = {.pk = pk, .expect = expect};
    hash_lines(buf, len, chk.records, &st);
    bh_history_each_buf(buf, len, check_record, &st);
    int rc = BH_EXIT_OK;
    /* The journal must be this run's: its run_start names the folder. An
     * intact chain proves nothing about which run it is the record of: one
     * run's journal copied over another's verifies by itself. */
    if (!bh_journal_check_run(buf, len, dir, &chk)) {
        printf("%s: %s\n", path, chk.message);
        rc = BH_EXIT_BROKEN;
    } else {
        printf("%s: intact, %llu records\nhead %s\n", path, (unsigned long long)chk.records,
               chk.head);
        rc = say_expected(&st, &chk);
        if (pk && say_signatures(&st, &chk) != BH_EXIT_OK) rc = BH_EXIT_BROKEN;
    }
    free(st.run_id);
    free(st.hash);
    return rc;
}

int bh_cmd_verify(int argc, char **argv, const bh_cli *g) {
    const char *which = NULL, *keypath = NULL, *expect = NULL;
    for (int i = 1; i < argc; i++) {
        if (bh_cmd_is_help(argv[i])) {
            fputs(VERIFY_HELP, stdout);
            return BH_EXIT_OK;
        } else if ((strcmp(argv[i], "--key") == 0 || strcmp(argv[i], "--expect-head") == 0)) {
            if (i + 1 >= argc) return bh_cmd_usage_error("verify", "%s needs a value", argv[i]);
            if (strcmp(argv[i], "--key") == 0)
                keypath = argv[++i];
            else
                expect = argv[++i];
        } else if (argv[i][0] == '-') {
            return bh_cmd_unknown_option("verify", argv[i]);
        } else if (which) {
            return bh_cmd_usage_error("verify", "one run at a time");
        } else {
            which = argv[i];
        }
    }
    if (!which) return bh_cmd_usage_error("verify", "which run? (an id, a prefix, or 'last')");
    unsigned char pk[32];
    char err[400];
    if (keypath && bh_sign_load_public(keypath, pk, err, sizeof err) != 0) {
        fprintf(stderr, "bulkhead verify: %s\n", err);
        return BH_EXIT_USAGE;
    }
    char *dir = bh_cmd_find_run(g, which);
    if (!dir) return BH_EXIT_IO;
    char *path = bh_util_asprintf("%s/journal.jsonl", dir);
    size_t len;
    char *buf = bh_util_read_file(path, &len);
    int rc;
    if (!buf) {
        fprintf(stderr, "bulkhead verify: cannot read %s: %s\n", path, strerror(errno));
        rc = BH_EXIT_IO;
    } else {
        rc = verify_journal(dir, path, buf, len, keypath ? pk : NULL, expect);
    }
    free(buf);
    free(path);
    free(dir);
    return rc;
}
