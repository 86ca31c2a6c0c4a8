/* libFuzzer target: the journal reader and verifier on arbitrary bytes, and
 * the JSON round trip of every record read. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "journal/journal.h"
#include "base/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every record read can be written again, and what is written reads back
 * as itself: printing is the same after one round trip (json.h). */
static int count(const cJSON *rec, uint64_t offset, void *ud) {
    (void)offset;
    ++*(size_t *)ud;
    char *once = bh_json_print(rec, 0);
    cJSON *back = once ? bh_json_parse(once, strlen(once)) : NULL;
    char *twice = back ? bh_json_print(back, 0) : NULL;
    if (!twice || strcmp(once, twice) != 0) __builtin_trap();
    free(twice);
    cJSON_Delete(back);
    free(once);
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
