#include "load/model.h"

#include <string.h>

size_t bh_model_step_index(const bh_runbook *rb, const char *id) {
    if (!id) return (size_t)-1;
    for (size_t i = 0; i < rb->nsteps; i++)
        if (strcmp(rb->steps[i].id, id) == 0) return i;
    return (size_t)-1;
}

const char *bh_model_policy_name(bh_fail_policy p) {
    return p == BH_FAIL_CONTINUE ? "continue" : p == BH_FAIL_ROLLBACK ? "rollback" : "abort";
}
