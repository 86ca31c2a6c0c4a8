/* libFuzzer target: the journal reader and verifier on arbitrary bytes, and
 * the JSON round trip of every record read. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "journal/history.h"
#include "journal/journal.h"
#include "base/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every record read can be written again, and what is written reads back
 * as itself: printing is the same after one round trip (json.h). */
static void round_trip(const cJSON *rec) {
    char *once = bh_json_print(rec, 0);
    cJSON *back = once ? bh_json_parse(once, strlen(once)) : NULL;
    char *twice = back ? bh_json_print(back, 0) : NULL;
    if (!twice || strcmp(once, twice) != 0) __builtin_trap();
    free(twice);
    cJSON_Delete(back);
    free(once);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    bh_journal_check chk;
    bh_journal_verify_buf((const char *)data, size, &chk);
    bh_history h;
    bh_history_read_buf(&h, (const char *)data, size);
    for (size_t k = 0; k < h.n; k++)
        round_trip(h.rec[k].json);
    /* An intact journal is one whose every line the reader also reads. */
    if (chk.intact && h.n != chk.records) __builtin_trap();
    bh_history_free(&h);
    return 0;
}
