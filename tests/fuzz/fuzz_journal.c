/* libFuzzer target: the journal reader and verifier on arbitrary bytes. */
#include <stddef.h>
#include <stdint.h>

#include "journal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int count(const cJSON *rec, uint64_t offset, void *ud) {
    (void)rec;
    (void)offset;
    ++*(size_t *)ud;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    bh_journal_check chk;
    bh_journal_verify_buf((const char *)data, size, &chk);
    size_t n = 0;
    bh_journal_each_buf((const char *)data, size, count, &n);
    /* An intact journal is one whose every line the iterator also reads. */
    if (chk.intact && n != chk.records) __builtin_trap();
    return 0;
}
