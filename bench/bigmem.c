/* LD_PRELOAD shim: makes the process it is loaded into hold
 * $BENCH_BIGMEM_MIB MiB of touched anonymous memory for its whole life, to
 * measure what a large engine pays per spawned command (a fork copies the
 * page tables of every touched page; posix_spawn/vfork does not).
 *
 * bench/run.sh makes the big engine from Lua strings when the engine takes
 * a runbook's max_memory; this shim is for builds from before that field,
 * whose Lua memory stops at 256 MiB, so that they can be measured too.
 *
 * The constructor removes LD_PRELOAD and BENCH_BIGMEM_MIB from the
 * environment before main, so the commands the engine starts do not load
 * the shim (and do not each allocate the same again).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

__attribute__((constructor)) static void bigmem_hold(void) {
    const char *mib = getenv("BENCH_BIGMEM_MIB");
    size_t len = mib ? (size_t)strtoul(mib, NULL, 10) << 20 : 0;
    unsetenv("BENCH_BIGMEM_MIB");
    unsetenv("LD_PRELOAD");
    if (!len) return;
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) abort();
    /* 4 KiB pages, like a heap of many small Lua objects: huge pages would
     * make a fork's page-table copy 512 times smaller than a real heap's. */
    madvise(p, len, MADV_NOHUGEPAGE);
    memset(p, 'x', len);
}
