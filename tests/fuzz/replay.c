/* Replays saved fuzz inputs through a target without libFuzzer, so that
 * `make check` (gcc, ASan, UBSan) runs the corpus and every crash ever
 * found. Usage: replay_TARGET DIR... ; prints "N inputs". */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int cmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv) {
    size_t total = 0;
    for (int i = 1; i < argc; i++) {
        DIR *d = opendir(argv[i]);
        if (!d) continue; /* no crashes saved yet: nothing to replay */
        char *names[4096];
        size_t n = 0;
        const struct dirent *e;
        while ((e = readdir(d)) && n < 4096)
            if (e->d_name[0] != '.') names[n++] = bh_util_asprintf("%s/%s", argv[i], e->d_name);
        closedir(d);
        qsort(names, n, sizeof *names, cmp);
        for (size_t k = 0; k < n; k++) {
            size_t len;
            char *buf = bh_util_read_file(names[k], &len);
            if (!buf) {
                fprintf(stderr, "replay: cannot read %s\n", names[k]);
                return 1;
            }
            fprintf(stderr, "replay: %s\n", names[k]); /* the culprit, if it crashes */
            LLVMFuzzerTestOneInput((const uint8_t *)buf, len);
            free(buf);
            free(names[k]);
            total++;
        }
    }
    printf("%zu inputs\n", total);
    return 0;
}
