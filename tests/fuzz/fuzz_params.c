/* libFuzzer target: parameter values as typed after -p, and params files. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "load/params.h"
#include "base/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    char err[512];
    for (int t = BH_PARAM_STRING; t <= BH_PARAM_MAP; t++) {
        cJSON *v = bh_params_from_text((bh_param_type)t, text, err, sizeof err);
        if (v && !bh_params_has_type((bh_param_type)t, v)) __builtin_trap();
        cJSON_Delete(v);
    }
    bh_params_input in;
    bh_params_input_init(&in);
    bh_params_input_add(&in, text, err, sizeof err);
    /* The same bytes as a params file. */
    int fd = memfd_create("params", 0);
    if (fd >= 0) {
        if (bh_util_write_all(fd, data, size) == 0) {
            char path[64];
            snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
            bh_params_input_load_file(&in, path, err, sizeof err);
        }
        close(fd);
    }
    bh_params_input_free(&in);
    free(text);
    return 0;
}
