/* libFuzzer target: the runbook loader (as `check` runs it) on arbitrary
 * bytes. Loading is bounded by its own instruction and memory budgets. */
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "load/runbook.h"
#include "base/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int fd = memfd_create("runbook", 0);
    if (fd < 0) return 0;
    if (bh_util_write_all(fd, data, size) == 0) {
        char path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        bh_runbook_opts o = {.path = path, .placeholders = 1};
        bh_runbook *rb = NULL;
        bh_runbook_load(&o, &rb);
        if (rb && rb->L) {
            cJSON *plan = bh_runbook_plan_json(rb);
            cJSON_Delete(plan);
        }
        bh_runbook_free(rb);
    }
    close(fd);
    return 0;
}
