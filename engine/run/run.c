#include "run/run.h"

#include "journal/schema.h"

#include <ctype.h>
#include <errno.h>
#include <lauxlib.h>
#include <pwd.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "journal/remain.h"
#include "base/sign.h"
#include "load/sim.h"
#include "base/util.h"

static const char *const STATUS_NAMES[BH_STEP_NSTATES] = {
    "pending", "running",   "ok",     "failed",  "timed_out",
    "skipped", "cancelled", "undone", "unknown", "in_doubt",
};

const char *bh_step_status_name(bh_step_status s) {
    return s < BH_STEP_NSTATES ? STATUS_NAMES[s] : "?";
}

cJSON *bh_run_record(bh_rec type, const bh_attempt *a) {
    cJSON *rec = cJSON_CreateObject();
    cJSON_AddStringToObject(rec, "type", bh_rec_name(type));
    if (a) {
        cJSON_AddStringToObject(rec, "step", a->step->id);
        if (a->run->rt[a->index].nitems > 1 || a->step->each_ref != LUA_NOREF)
            cJSON_AddNumberToObject(rec, "item", (double)a->item + 1);
        if (a->step->every_ms > 0) cJSON_AddNumberToObject(rec, "rep", (double)a->item + 1);
        cJSON_AddNumberToObject(rec, "attempt", a->number);
        /* what an undo did (its commands, logs) is told apart from the step's */
        if (a->kind == BH_RUN_UNDO) cJSON_AddBoolToObject(rec, "undo", 1);
    }
    return rec;
}

int bh_run_protected(bh_run *run, lua_CFunction fn, void *ud) {
    lua_State *L = run->L;
    lua_pushcfunction(L, fn); /* light C functions and pointers allocate nothing */
    lua_pushlightuserdata(L, ud);
    /* The engine's own work, but a runbook's metamethod can run inside it:
     * bounded too, though no signal stops it halfway. */
    bh_guard g;
    bh_guard_init(&g, "a metamethod of the runbook", BH_LOAD_MAX_INSTRUCTIONS, BH_LOAD_TIMEOUT_MS,
                  0);
    bh_guard_enter(&g, L);
    int st = lua_pcall(L, 1, 0, 0);
    bh_guard_leave(&g);
    if (st != LUA_OK) lua_pop(L, 1);
    return st;
}

bh_attempt *bh_run_attempt(bh_run *run, uint64_t serial) {
    for (bh_attempt *a = run->attempts; a; a = a->next)
        if (a->serial == serial) return a;
    return NULL;
}

#define DEFAULT_CHECKPOINT_EVERY 100

/* A record with a field its type does not declare (journal/schema.h):
 * the test build stops there, so that the schema, and the docs checked
 * against it, always say what the journal holds; BH_SCHEMA_LOG=FILE
 * lists such fields instead (how the schema was first filled in). A
 * check of the engine's own code: the release build does not pay for it
 * on every record. */
static void check_schema(const cJSON *rec) {
#ifndef BH_SCHEMA_STRICT
    (void)rec;
#else
    const char *field = bh_rec_undeclared(rec);
    if (!field) return;
    const char *type = bh_journal_str(rec, "type");
    const char *log = getenv("BH_SCHEMA_LOG");
    FILE *f = log ? fopen(log, "a") : NULL;
    if (f) {
        bh_rec r = bh_rec_of(type);
        const cJSON *x;
        cJSON_ArrayForEach(x, rec) if (!bh_rec_declares(r, x->string))
            fprintf(f, "%s %s\n", type ? type : "?", x->string);
        fclose(f);
    }
    if (!log) {
        fprintf(stderr,
                "bulkhead: journal schema: a '%s' record has field '%s', which "
                "engine/journal/schema.h does not declare\n",
                type ? type : "?", field);
        abort();
    }
#endif
}

static void journal_on_event(void *ud, bh_event *ev) {
    bh_run *run = ud;
    if (ev->kind == BH_EV_RECORD) ev->err = bh_journal_append(run->journal, ev->record);
}

void bh_run_subscribe_journal(bh_run *run) {
    bh_events_subscribe(run->events, journal_on_event, run);
}

void bh_run_append(bh_run *run, cJSON *rec) {
    check_schema(rec);
    /* Secrets never reach the journal, in any form (redact.h). */
    bh_redact_json(bh_keyring_mask(run->rb->keyring), rec);
    /* A simulation's own time line: what reports and scorecards use. */
    if (bh_clock_is_virtual(run->clock))
        cJSON_AddNumberToObject(rec, "sim_ms", bh_clock_now_ms(run->clock));
    if (!run->io_error) {
        bh_event ev = {.kind = BH_EV_RECORD, .record = rec};
        bh_events_emit(run->events, &ev); /* the journal writer appends it */
        int err = ev.err;
        if (err) {
            run->io_error = err;
            fprintf(stderr, "bulkhead: cannot write the journal of run %s: %s; stopping\n", run->id,
                    bh_util_strerror(err));
            if (run->on_io_error) run->on_io_error(run);
        }
    }
    cJSON_Delete(rec);
    int every =
        run->opts->checkpoint_every > 0 ? run->opts->checkpoint_every : DEFAULT_CHECKPOINT_EVERY;
    if (run->opts->signer && !run->checkpointing && ++run->since_checkpoint >= every)
        bh_run_checkpoint(run);
}

void bh_run_checkpoint(bh_run *run) {
    if (!run->opts->signer || run->io_error || bh_journal_next_seq(run->journal) == 0) return;
    run->checkpointing = 1;
    cJSON *rec = bh_run_record(BH_REC_CHECKPOINT, NULL);
    bh_sign_checkpoint(run->opts->signer, run->id, bh_journal_next_seq(run->journal) - 1,
                       bh_journal_head(run->journal), rec);
    bh_run_append(run, rec);
    run->since_checkpoint = 0;
    run->checkpointing = 0;
}

int bh_run_sync(bh_run *run) {
    if (run->io_error) return run->io_error;
    int err = bh_journal_sync(run->journal);
    if (err) {
        run->io_error = err;
        fprintf(stderr, "bulkhead: cannot sync the journal of run %s: %s; stopping\n", run->id,
                bh_util_strerror(err));
        if (run->on_io_error) run->on_io_error(run);
    }
    return err;
}

static int blank(const char *s) {
    while (isspace((unsigned char)*s))
        s++;
    return *s == '\0';
}

int bh_run_operator(const char *given, const char *flag, char out[BH_UTIL_NAME_MAX + 1], char *why,
                    size_t whylen) {
    const char *from = flag, *name = given;
    if (!name) {
        from = "$BULKHEAD_OPERATOR";
        name = getenv("BULKHEAD_OPERATOR");
        if (name && blank(name)) name = NULL; /* "" or "  ": as if unset */
    }
    if (!name) {
        from = "the login name";
        struct passwd *pw = getpwuid(geteuid());
        name = pw ? pw->pw_name : "unknown";
    }
    /* the name itself is not echoed: it may hold terminal escapes */
    const char *bad = bh_util_clean_name(name, out);
    if (bad) snprintf(why, whylen, "%s cannot name a person: %s", from, bad);
    return bad ? -1 : 0;
}

char *bh_run_make_id(const char *runbook_id) {
    int64_t now = bh_util_now_ms();
    time_t secs = (time_t)(now / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%S", &tm);
    unsigned char rnd[3];
    randombytes_buf(rnd, sizeof rnd);
    /* Milliseconds in the id so that ids sort by start time ("last"). */
    return bh_util_asprintf("%s.%03dZ-%s-%02x%02x%02x", stamp, (int)(now % 1000), runbook_id,
                            rnd[0], rnd[1], rnd[2]);
}

int bh_run_create_dir(bh_run *run) {
    char *runs = bh_util_asprintf("%s/runs", run->opts->state_dir);
    int err = bh_util_mkdir_p(runs);
    if (err == 0) {
        run->dir = bh_util_asprintf("%s/%s", runs, run->id);
        if (mkdir(run->dir, 0700) != 0) err = -errno;
    }
    if (err == 0) err = bh_util_fsync_dir(runs);
    if (err == 0) {
        char *out = bh_util_asprintf("%s/out", run->dir);
        if (mkdir(out, 0700) != 0) err = -errno;
        free(out);
    }
    if (err == 0) {
        char *path = bh_util_asprintf("%s/journal.jsonl", run->dir);
        err = bh_journal_create(path, &run->journal);
        free(path);
    }
    if (err)
        fprintf(stderr, "bulkhead: cannot create the run folder under %s: %s\n", runs,
                bh_util_strerror(err));
    free(runs);
    return err;
}

/* Who runs the run, where, with which engine: in run_start and in each
 * run_resumed (a resume may be another operator on another host). */
void bh_run_add_who(const bh_run *run, cJSON *rec) {
    cJSON_AddStringToObject(rec, "operator", run->operator_name);
    /* the account the operator's own approvals (prompt, flags) count as */
    cJSON_AddNumberToObject(rec, "uid", (double)getuid());
    if (run->opts->approvers_group) {
        cJSON *g = cJSON_AddObjectToObject(rec, "approvers_group");
        cJSON_AddStringToObject(g, "name", run->opts->approvers_group);
        cJSON_AddNumberToObject(g, "gid", (double)run->opts->approvers_gid);
    }
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    cJSON_AddStringToObject(rec, "host", host);
    cJSON_AddNumberToObject(rec, "pid", getpid());
    cJSON *eng = cJSON_AddObjectToObject(rec, "engine");
    cJSON_AddStringToObject(eng, "name", "bulkhead");
    cJSON_AddStringToObject(eng, "version", BH_VERSION);
}

void bh_run_write_start(bh_run *run) {
    const bh_runbook *rb = run->rb;
    cJSON *rec = bh_run_record(BH_REC_RUN_START, NULL);
    cJSON_AddStringToObject(rec, "run_id", run->id);
    cJSON *r = cJSON_AddObjectToObject(rec, "runbook");
    cJSON_AddStringToObject(r, "path", rb->path);
    char *abs = realpath(rb->path, NULL);
    if (abs) cJSON_AddStringToObject(r, "realpath", abs);
    free(abs);
    cJSON_AddStringToObject(r, "sha256", rb->sha256);
    cJSON_AddStringToObject(r, "id", rb->id);
    cJSON_AddStringToObject(r, "title", rb->title);
    cJSON_AddStringToObject(r, "severity", rb->severity);
    if (rb->owner) cJSON_AddStringToObject(r, "owner", rb->owner);
    cJSON_AddItemToObject(rec, "params", cJSON_Duplicate(rb->param_values, 1));
    /* Which secrets it resolved and where from; never their values. */
    cJSON_AddItemToObject(rec, "secrets", cJSON_Duplicate(bh_keyring_used(rb->keyring), 1));
    /* The plugins it loaded, with their hashes (resume and undo refuse
     * changed ones), and where they were looked up. */
    cJSON_AddItemToObject(rec, "plugins", cJSON_Duplicate(rb->plugins_used, 1));
    cJSON *dirs = cJSON_AddArrayToObject(rec, "plugin_dirs");
    for (char *const *d = rb->plugin_dirs; d && *d; d++)
        cJSON_AddItemToArray(dirs, cJSON_CreateString(*d));
    bh_run_add_who(run, rec);
    cJSON_AddStringToObject(rec, "mode", run->fx->mode);
    if (run->opts->sim) cJSON_AddItemToObject(rec, "simulation", bh_sim_to_json(run->opts->sim));
    cJSON_AddNumberToObject(rec, "concurrency", run->cap);
    cJSON_AddBoolToObject(rec, "concurrency_hard", run->cap_hard);
    if (run->opts->timeout_override_ms > 0)
        cJSON_AddNumberToObject(rec, "timeout_override_ms", run->opts->timeout_override_ms);
    cJSON *steps = cJSON_AddArrayToObject(rec, "steps");
    for (size_t i = 0; i < rb->nsteps; i++)
        cJSON_AddItemToArray(steps, cJSON_CreateString(rb->steps[i].id));
    /* Phases and their steps: a report shows a step that never ran in its
     * phase, from the journal alone. */
    cJSON *plan = cJSON_AddArrayToObject(rec, "plan");
    for (size_t k = 0; k < rb->nphases; k++) {
        cJSON *ph = cJSON_CreateObject();
        cJSON_AddStringToObject(ph, "phase", rb->phases[k]);
        cJSON *ids = cJSON_AddArrayToObject(ph, "steps");
        for (size_t i = 0; i < rb->nsteps; i++)
            if (strcmp(rb->steps[i].phase, rb->phases[k]) == 0)
                cJSON_AddItemToArray(ids, cJSON_CreateString(rb->steps[i].id));
        cJSON_AddItemToArray(plan, ph);
    }
    bh_run_append(run, rec);
}

void bh_run_remember_done(bh_run *run, size_t index, size_t item) {
    /* Once per instance, where it last completed: an instance in doubt that
     * a resumed run repeats and completes must not be undone twice. */
    for (size_t k = 0; k < run->ndone; k++) {
        if (run->done_list[k].index != index || run->done_list[k].item != item) continue;
        memmove(&run->done_list[k], &run->done_list[k + 1],
                (run->ndone - k - 1) * sizeof *run->done_list);
        run->ndone--;
        break;
    }
    if (run->ndone == run->capdone) {
        run->capdone = run->capdone ? run->capdone * 2 : 64;
        run->done_list = realloc(run->done_list, run->capdone * sizeof *run->done_list);
        if (!run->done_list) abort();
    }
    run->done_list[run->ndone].index = index;
    run->done_list[run->ndone].item = item;
    run->ndone++;
}

/* "failed, 3 ok, 1 skipped": counts of step statuses, into rec and text. */
void bh_run_effect_ended(bh_attempt *a, int acts, bh_effect e, const char *why) {
    if (!acts || e == BH_EFFECT_NONE) return;
    bh_doubt *d = &a->doubt;
    if (e == BH_EFFECT_DONE) {
        if (!d->acted && !d->unsure) snprintf(d->why, sizeof d->why, "%s", why);
        d->acted = 1;
        return;
    }
    /* the first uncertainty is what a person needs to check */
    if (!d->unsure) snprintf(d->why, sizeof d->why, "%s", why);
    d->unsure = 1;
}

void bh_run_counts(const bh_run *run, cJSON *counts, char *summary, size_t len) {
    size_t n[BH_STEP_NSTATES] = {0};
    for (size_t i = 0; i < run->rb->nsteps; i++)
        n[run->status[i]]++;
    summary[0] = '\0';
    for (int s = 0; s < BH_STEP_NSTATES; s++) {
        if (!n[s]) continue;
        cJSON_AddNumberToObject(counts, STATUS_NAMES[s], (double)n[s]);
        size_t used = strlen(summary);
        snprintf(summary + used, len - used, "%s%zu %s", used ? ", " : "", n[s],
                 s == BH_STEP_IN_DOUBT ? "in doubt" : STATUS_NAMES[s]); /* for people */
    }
}

int bh_run_lock(const char *dir, int *fd_out, long *holder) {
    *fd_out = -1;
    *holder = 0;
    char *path = bh_util_asprintf("%s/lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    free(path);
    if (fd < 0) return -errno;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int err = -errno;
        char text[32] = "";
        ssize_t n = pread(fd, text, sizeof text - 1, 0);
        if (n > 0) *holder = strtol(text, NULL, 10);
        close(fd);
        return err == -EWOULDBLOCK ? -EBUSY : err;
    }
    /* Who holds it, for the error the next one gets (the lock is the
     * flock, not this text). */
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
        int err = -errno;
        close(fd);
        return err;
    }
    *fd_out = fd;
    return 0;
}

/* --- what the step primitives share ---------------------------------- */

void bh_run_item_key(bh_run *run, size_t index, size_t item, char *out, size_t len) {
    lua_State *L = run->L;
    snprintf(out, len, "%zu", item + 1);
    const bh_redact *mask =
        bh_keyring_mask(run->rb->keyring); /* keys end up in labels and records */
    int items = run->rt[index].items_ref;
    if (items == LUA_NOREF) return;
    lua_rawgeti(L, LUA_REGISTRYINDEX, items);
    int t = lua_rawgeti(L, -1, (lua_Integer)item + 1);
    if (t == LUA_TTABLE) { /* a host record: its name */
        static const char *const names[] = {"name", "host", "id", NULL};
        for (int k = 0; names[k]; k++) {
            lua_pushstring(L, names[k]);
            if (lua_rawget(L, -2) == LUA_TSTRING) {
                bh_redact_snprintf(mask, out, len, "%s", lua_tostring(L, -1));
                lua_pop(L, 1);
                break;
            }
            lua_pop(L, 1);
        }
    } else if (t == LUA_TSTRING || t == LUA_TNUMBER) {
        bh_redact_snprintf(mask, out, len, "%s", lua_tostring(L, -1));
    }
    lua_pop(L, 2);
}

/* "web1 may still be isolated": the item (or step) and the effect the
 * step or its action declares, else that it may have acted. */
void bh_run_may_remain(bh_run *run, size_t index, size_t item, char *out, size_t len) {
    const bh_step *s = &run->rb->steps[index];
    char who[80];
    if (s->each_ref != LUA_NOREF)
        bh_run_item_key(run, index, item, who, sizeof who);
    else
        snprintf(who, sizeof who, "%s", s->id);
    bh_remain_text(who, s->id, s->effect, out, len);
}

bh_fault bh_run_draw_fault(bh_attempt *a) {
    char key[64];
    bh_run_item_key(a->run, a->index, a->item, key, sizeof key);
    bh_fault f = bh_sim_fault(a->run->opts->sim, a->step, key, a->number);
    if (f.kind != BH_FAULT_NONE) {
        cJSON *rec = bh_run_record(BH_REC_FAULT_INJECTED, a);
        bh_sim_fault_fields(rec, &f);
        bh_run_append(a->run, rec);
    }
    return f;
}

double bh_run_hang_ms(const bh_attempt *a) {
    return a->timeout_ms * 2 + 3600e3;
}
