#include "run/resume.h"
#include "run/run.h"

#include "journal/schema.h"

#include <ctype.h>
#include <dirent.h>
#include <lauxlib.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "effects/control.h"
#include "run/replay.h"
#include "run/sched.h"
#include "load/sim.h"
#include "run/undo.h"
#include "base/util.h"

#define S bh_journal_str
#define N bh_journal_num

/* --- what the journal says, per instance and per step ------------------ */

typedef struct {
    int attempt;       /* the last attempt started */
    int open;          /* started, and no end recorded */
    int outcome_seen;  /* an attempt of it ended with a known outcome */
    int retry_number;  /* a retry of this number was scheduled, not started */
    const char *end;   /* status of the last end of an attempt */
    int unknown_retry; /* an earlier resume decided to repeat it (end "unknown") */
    int undo_open;     /* its undo started and ended neither ok nor failed */
    int effects;       /* acting commands and requests the last attempt started */
    const char *what;  /* the first of them: argv[0] or the URL */
    const char *doubt; /* an attempt ended in doubt: why (its record), until one succeeds */
    int skip_decided;  /* an unknown_outcome said skip: the step_end after it is the operator's */
    int waived;        /* ended in doubt at the operator's word: the run went on */
    int cut_in_doubt;  /* in doubt because an interrupt cancelled it (judged as cancelled) */
} inst_facts;

typedef struct {
    inst_facts *v;
    size_t n, cap;
    bh_restored_step r;
    cJSON *approvers; /* who approved ({by, uid, how}), before all that were needed had */
    int halted;       /* skipped because the run stopped before its turn */
} step_facts;

/* What the operator (or the step's nature) decides for an unknown outcome. */
typedef struct {
    size_t index, item;
    int attempt;
    int open;        /* no step_end yet: resume writes one */
    int ask_when;    /* no attempt of it had an outcome */
    const char *was; /* "in_flight" or "cancelled" */
    const char *decision, *how;
    int effects; /* see inst_facts */
    const char *what, *doubt;
    int cut_in_doubt;
} unknown_inst;

typedef struct {
    step_facts *steps;
    unknown_inst *unknown;
    size_t nunknown;
    int rolling_back; /* a rollback_start is recorded */
    int run_failed;   /* a step's failure already stopped the run */
    int open_undos;   /* undos cut off or cancelled, of steps that are not idempotent */
} facts;

static inst_facts *instance(step_facts *f, size_t item) {
    if (item >= 1000000) item = 999999; /* a forged item number must not allocate the world */
    while (f->n <= item) {
        if (f->n == f->cap) {
            f->cap = f->cap ? f->cap * 2 : 4;
            f->v = realloc(f->v, f->cap * sizeof *f->v);
            if (!f->v) abort();
        }
        memset(&f->v[f->n++], 0, sizeof *f->v);
    }
    return &f->v[item];
}

static const char *first_word(const bh_hrec *rec) {
    const cJSON *argv = bh_hrec_get(rec, "argv");
    const cJSON *w = cJSON_IsArray(argv) ? argv->child : NULL;
    return w && cJSON_IsString(w) ? w->valuestring : "?";
}

/* An attempt's step_end, into its instance's facts. */
static void read_end(bh_run *run, size_t i, inst_facts *x, const bh_hrec *rec) {
    const char *st = bh_hrec_str(rec, "status");
    const cJSON *err = bh_hrec_get(rec, "error");
    x->open = 0;
    x->end = st;
    x->waived =
        bh_util_streq(st, "in_doubt") && x->skip_decided; /* the operator's word, at a resume */
    x->skip_decided = 0;
    /* In doubt because an interrupt cancelled it: an unknown outcome to
     * decide, as a cancelled attempt is (and one that may have acted). */
    x->cut_in_doubt =
        bh_util_streq(st, "in_doubt") && bh_util_streq(S(err, "code"), "cancelled") && !x->waived;
    if (x->cut_in_doubt) x->end = "cancelled";
    if (!bh_util_streq(x->end, "cancelled") && !bh_util_streq(st, "unknown")) x->outcome_seen = 1;
    /* in doubt: it may have acted, so its undo is registered too */
    if ((bh_util_streq(st, "ok") || bh_util_streq(st, "in_doubt")) &&
        !bh_util_streq(bh_hrec_str(rec, "next"), "retry"))
        bh_run_remember_done(run, i, bh_hrec_instance(rec));
    if (bh_util_streq(st, "in_doubt"))
        x->doubt = bh_hrec_str(rec, "doubt") ? bh_hrec_str(rec, "doubt") : "in doubt";
    if (bh_util_streq(st, "ok")) x->doubt = NULL;
}

/* Who an approval record says approved: name, account, path (gate.c
 * counts them again). */
static cJSON *approver_of(const bh_hrec *rec) {
    cJSON *o = cJSON_CreateObject();
    static const char *const fields[] = {"by", "uid", "how"};
    for (size_t k = 0; k < sizeof fields / sizeof fields[0]; k++) {
        const cJSON *v = bh_hrec_get(rec, fields[k]);
        if (v) cJSON_AddItemToObject(o, fields[k], cJSON_Duplicate(v, 0));
    }
    return o;
}

static void read_start(step_facts *f, inst_facts *x, const bh_hrec *rec, size_t item) {
    x->attempt = rec->attempt;
    x->open = 1;
    x->end = NULL;
    x->retry_number = 0;
    x->unknown_retry = 0;
    x->effects = 0;
    x->what = NULL;
    f->r.began = 1;
    if (item + 1 > f->r.started) f->r.started = item + 1;
}

static void read_skipped(step_facts *f, const bh_hrec *rec) {
    const char *cause = bh_hrec_str(rec, "cause");
    const char *reason = bh_hrec_str(rec, "reason") ? bh_hrec_str(rec, "reason") : "";
    if (!cause) /* written before records said why */
        cause = strncmp(reason, "after:", 6) == 0       ? "after"
                : bh_util_streq(reason, "when = false") ? "when"
                                                        : "halt";
    if (!bh_util_streq(cause, "halt")) {
        f->r.skipped = 1;
        f->r.blocked = bh_util_streq(cause, "after");
    } else {
        f->halted = 1;
    }
}

static void read_approval(step_facts *f, const bh_hrec *rec) {
    if (!bh_util_streq(bh_hrec_str(rec, "decision"), "approve")) return;
    /* A waiver on timeout (on_approval_timeout = "approve") counts no
     * person but approves the step all the same. */
    if (bh_hrec_num(rec, "approvals", 0) >= bh_hrec_num(rec, "needed", 1) ||
        bh_util_streq(bh_hrec_str(rec, "how"), "timeout"))
        f->r.approved = 1;
    else if (f->approvers)
        cJSON_AddItemToArray(f->approvers, approver_of(rec));
}

/* One record about step i, into its facts. */
static void read_fact(bh_run *run, size_t i, step_facts *f, const bh_hrec *rec) {
    size_t item = bh_hrec_instance(rec);
    switch (rec->type) {
    case BH_REC_STEP_START:
        read_start(f, instance(f, item), rec, item);
        break;
    case BH_REC_STEP_END:
        if (rec->attempt != 0)
            read_end(run, i, instance(f, item), rec);
        else if (bh_util_streq(bh_hrec_str(rec, "status"), "cancelled"))
            f->r.began = 0; /* stopped before it started: its turn comes again */
        else
            f->r.failed_early = 1;
        break;
    case BH_REC_EXEC_START:
    case BH_REC_REQUEST_START:
        if (bh_hrec_acts(rec)) {
            inst_facts *x = instance(f, item);
            if (!x->effects++)
                x->what =
                    rec->type == BH_REC_EXEC_START ? first_word(rec) : bh_hrec_str(rec, "url");
        }
        break;
    case BH_REC_RETRY:
    case BH_REC_RETRY_CANCELLED:
        instance(f, item)->retry_number = rec->attempt;
        break;
    case BH_REC_STEP_SKIPPED:
        read_skipped(f, rec);
        break;
    case BH_REC_FANOUT:
        f->r.listed = 1;
        f->r.began = 1;
        f->r.nitems = (size_t)bh_hrec_num(rec, "items", 0);
        break;
    case BH_REC_APPROVAL_WAIT:
        f->r.began = 1;
        f->r.approved = 0; /* approvals given before (a resumed run) still count */
        if (!f->approvers) f->approvers = cJSON_CreateArray();
        break;
    case BH_REC_APPROVAL:
        read_approval(f, rec);
        break;
    case BH_REC_STEP_DONE:
        f->r.done = bh_hrec_str(rec, "status");
        break;
    case BH_REC_UNKNOWN_OUTCOME: {
        inst_facts *x = instance(f, item);
        x->end = "unknown"; /* decided: not unknown any more */
        x->open = 0;
        x->unknown_retry = bh_util_streq(bh_hrec_str(rec, "decision"), "retry");
        x->skip_decided = bh_util_streq(bh_hrec_str(rec, "decision"), "skip");
        break;
    }
    case BH_REC_UNDO_START:
        instance(f, item)->undo_open = 1;
        break;
    case BH_REC_UNDO_END: /* cancelled by an interrupt: as uncertain as cut off */
        instance(f, item)->undo_open = bh_util_streq(bh_hrec_str(rec, "status"), "cancelled");
        break;
    default:
        break;
    }
}

/* Read the records in order: the state each step and instance was left in. */
static void read_facts(const bh_runbook *rb, const bh_history *h, facts *fx, bh_run *run) {
    for (size_t k = 0; k < h->n; k++) {
        const bh_hrec *rec = &h->rec[k];
        if (rec->type == BH_REC_ROLLBACK_START) fx->rolling_back = 1;
        size_t i = bh_model_step_index(rb, rec->step);
        if (i != (size_t)-1) read_fact(run, i, &fx->steps[i], rec);
    }
}

/* Did an instance end in doubt as a failure of its own? Not one an
 * interrupt cut off (an unknown outcome, decided now), nor one the
 * operator went on without at a resume. */
static int doubt_failed(const step_facts *f) {
    for (size_t k = 0; k < f->n; k++)
        if (bh_util_streq(f->v[k].end, "in_doubt") && !f->v[k].waived) return 1;
    return 0;
}

/* From the facts: counters, reruns and the unknown outcomes to decide. */
static void judge(const bh_runbook *rb, facts *fx) {
    for (size_t i = 0; i < rb->nsteps; i++) {
        const step_facts *f = &fx->steps[i];
        for (size_t k = 0; k < f->n; k++)
            fx->open_undos += f->v[k].undo_open && !rb->steps[i].idempotent;
    }
    for (size_t i = 0; i < rb->nsteps; i++) {
        step_facts *f = &fx->steps[i];
        const bh_step *s = &rb->steps[i];
        /* A rollback goes on where it was: what the stop skipped stays so. */
        if (fx->rolling_back && f->halted && !f->r.began) f->r.skipped = 1;
        if (f->r.skipped || f->r.failed_early) {
            if (f->r.failed_early && s->on_failure != BH_FAIL_CONTINUE) fx->run_failed = 1;
            continue;
        }
        if (!f->r.began) continue;
        f->r.reruns = bh_util_xcalloc(f->n ? f->n : 1, sizeof *f->r.reruns);
        for (size_t k = 0; k < f->n && k < f->r.started; k++) {
            inst_facts *x = &f->v[k];
            int unknown = x->open || bh_util_streq(x->end, "cancelled");
            if (!unknown && x->retry_number > x->attempt) {
                /* a retry was due (or cancelled by a stop): it runs now */
                f->r.reruns[f->r.nreruns++] =
                    (bh_rerun){k, x->retry_number, !x->outcome_seen && x->unknown_retry, x->doubt};
                continue;
            }
            if (!unknown && bh_util_streq(x->end, "unknown") && x->unknown_retry) {
                /* an earlier resume said to repeat it; it never started */
                f->r.reruns[f->r.nreruns++] = (bh_rerun){k, x->attempt + 1, !x->outcome_seen, NULL};
                continue;
            }
            if (!unknown && x->waived) { /* a resume went on without it: so does this one */
                f->r.in_doubt++;
                f->r.waived++;
                continue;
            }
            if (!unknown &&
                (bh_util_streq(x->end, "failed") || bh_util_streq(x->end, "timed_out") ||
                 bh_util_streq(x->end, "in_doubt"))) {
                if (x->attempt <= s->retries) { /* it would have been retried */
                    f->r.reruns[f->r.nreruns++] = (bh_rerun){k, x->attempt + 1, 0, x->doubt};
                    continue;
                }
                if (bh_util_streq(x->end, "failed"))
                    f->r.failed++;
                else if (bh_util_streq(x->end, "in_doubt"))
                    f->r.in_doubt++;
                else
                    f->r.timed_out++;
                if (s->each_ref == LUA_NOREF && s->every_ms <= 0 &&
                    s->on_failure != BH_FAIL_CONTINUE)
                    fx->run_failed = 1;
                continue;
            }
            if (!unknown) {
                if (bh_util_streq(x->end, "ok")) f->r.ok++;
                if (bh_util_streq(x->end, "skipped")) f->r.skipped_items++;
                if (bh_util_streq(x->end, "unknown")) f->r.unknown++;
                continue;
            }
            fx->unknown = realloc(fx->unknown, (fx->nunknown + 1) * sizeof *fx->unknown);
            if (!fx->unknown) abort();
            fx->unknown[fx->nunknown++] = (unknown_inst){
                .index = i,
                .item = k,
                .attempt = x->attempt,
                .open = x->open,
                .ask_when = !x->outcome_seen,
                .was = x->open ? "in_flight" : "cancelled",
                .effects = x->effects,
                .what = x->what,
                .doubt = x->doubt,
                .cut_in_doubt = x->cut_in_doubt,
            };
        }
        if (fx->rolling_back) {
            /* A rollback starts nothing new: a retry that was due is a failure. */
            f->r.failed += f->r.nreruns;
            f->r.nreruns = 0;
        }
        if (s->every_ms <= 0 &&
            (bh_util_streq(f->r.done, "failed") || bh_util_streq(f->r.done, "timed_out") ||
             (bh_util_streq(f->r.done, "in_doubt") && doubt_failed(f))) &&
            s->on_failure != BH_FAIL_CONTINUE)
            fx->run_failed = 1;
    }
}

/* --- decisions ---------------------------------------------------------- */

static int listed(const char **steps, const char *id) {
    for (size_t k = 0; steps && steps[k]; k++)
        if (strcmp(steps[k], id) == 0) return 1;
    return 0;
}

static void label_of(bh_run *run, const unknown_inst *u, char *out, size_t len) {
    const bh_step *s = &run->rb->steps[u->index];
    if (s->each_ref != LUA_NOREF) {
        char key[64];
        bh_run_item_key(run, u->index, u->item, key, sizeof key);
        snprintf(out, len, "%s[%s]", s->id, key);
    } else {
        snprintf(out, len, "%s", s->id);
    }
}

/* Read "retry" or "skip" from the terminal. 1 retry, 0 skip, -1 no answer. */
static int ask_operator(const char *what) {
    for (;;) {
        fprintf(stderr,
                "%s\n  retry: run it again   skip: do not repeat it, go on\n  retry or skip? ",
                what);
        fflush(stderr);
        char line[128];
        if (!fgets(line, sizeof line, stdin)) {
            fputc('\n', stderr);
            return -1;
        }
        char *p = line;
        while (isspace((unsigned char)*p))
            p++;
        size_t n = strlen(p);
        while (n && isspace((unsigned char)p[n - 1]))
            p[--n] = '\0';
        if (strcmp(p, "retry") == 0 || strcmp(p, "r") == 0) return 1;
        if (strcmp(p, "skip") == 0 || strcmp(p, "s") == 0) return 0;
        fprintf(stderr, "  please answer retry or skip\n");
    }
}

/* Decide every unknown outcome. Returns 0, or an exit code after saying
 * what is missing (nothing has been written yet). */
static int decide(bh_run *run, facts *fx, const bh_resume_opts *o, int *retry_undos) {
    const bh_runbook *rb = run->rb;
    size_t undecided = 0;
    for (size_t k = 0; k < fx->nunknown; k++) {
        unknown_inst *u = &fx->unknown[k];
        const bh_step *s = &rb->steps[u->index];
        if (o->abandon) {
            u->decision = "skip";
            u->how = "abandon"; /* the operator ends the run here and undoes it */
        } else if (fx->run_failed || fx->rolling_back) {
            u->decision = "skip";
            u->how = "run_failed"; /* nothing new starts in a failed run */
        } else if (s->every_ms > 0) {
            u->decision = "skip";
            u->how = "cadence";
        } else if (s->manual) {
            u->decision = "retry";
            u->how = "manual";
        } else if (s->idempotent) {
            u->decision = "retry";
            u->how = "idempotent";
        } else if (listed(o->retry_steps, s->id) ||
                   (o->retry_all && !listed(o->skip_steps, s->id))) {
            u->decision = "retry";
            u->how = "flag";
        } else if (listed(o->skip_steps, s->id) || o->skip_all) {
            u->decision = "skip";
            u->how = "flag";
        } else {
            undecided++;
        }
    }
    int undos_undecided = fx->rolling_back && fx->open_undos > 0 && !o->retry_all && !o->skip_all &&
                          !o->abandon; /* bulkhead undo decides those itself */
    *retry_undos = o->retry_all;
    if (!undecided && !undos_undecided) return 0;
    if (!o->ask) {
        fprintf(stderr,
                "bulkhead resume: the outcome of %zu step attempt(s) is unknown (the engine "
                "stopped while they ran) and nothing says whether to repeat them:\n",
                undecided + (size_t)(undos_undecided ? fx->open_undos : 0));
        for (size_t k = 0; k < fx->nunknown; k++) {
            const unknown_inst *u = &fx->unknown[k];
            if (u->decision) continue;
            char label[200];
            label_of(run, u, label, sizeof label);
            fprintf(stderr, "  %s, attempt %d (%s)\n", label, u->attempt,
                    strcmp(u->was, "in_flight") == 0 ? "was running" : "was cancelled");
        }
        if (undos_undecided) fprintf(stderr, "  %d undo(s) of the rollback\n", fx->open_undos);
        fprintf(stderr,
                "Check what they did, then resume with --retry-unknown (run them again) or "
                "--skip-unknown (do not, go on), either for all or as =STEP,STEP; or resume on a "
                "terminal to be asked one by one. Nothing was changed.\n");
        return 2;
    }
    for (size_t k = 0; k < fx->nunknown; k++) {
        unknown_inst *u = &fx->unknown[k];
        if (u->decision) continue;
        char label[200], what[400];
        label_of(run, u, label, sizeof label);
        snprintf(what, sizeof what,
                 "step %s, attempt %d, %s when the engine stopped: its outcome is unknown.", label,
                 u->attempt, strcmp(u->was, "in_flight") == 0 ? "was running" : "was cancelled");
        int a = ask_operator(what);
        if (a < 0) {
            fprintf(stderr, "bulkhead resume: no answer; nothing was changed\n");
            return 2;
        }
        u->decision = a ? "retry" : "skip";
        u->how = "prompt";
    }
    if (undos_undecided) {
        char what[200];
        snprintf(what, sizeof what, "%d undo(s) of the rollback were cut off: outcome unknown.",
                 fx->open_undos);
        int a = ask_operator(what);
        if (a < 0) {
            fprintf(stderr, "bulkhead resume: no answer; nothing was changed\n");
            return 2;
        }
        *retry_undos = a;
    }
    return 0;
}

/* --- commands a dead engine left running ------------------------------- */

static int alive(pid_t pid) {
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the state follows the command name */
    return p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}

/* Does the process carry BULKHEAD_RUN_ID=<id> in its environment? */
static int carries(pid_t pid, const char *needle, size_t nlen) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/environ", (int)pid);
    size_t len;
    char *env = bh_util_read_file(path, &len);
    if (!env) return 0;
    int found = 0;
    for (size_t off = 0; off < len && !found;) {
        size_t l = strnlen(env + off, len - off);
        found = l == nlen && memcmp(env + off, needle, nlen) == 0;
        off += l + 1;
    }
    free(env);
    return found;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* SIGTERM, then SIGKILL after grace_ms, to every process of this run left
 * behind; recorded into out. */
static void stop_leftovers(const char *run_id, double grace_ms, cJSON *out) {
    char *needle = bh_util_asprintf("BULKHEAD_RUN_ID=%s", run_id);
    size_t nlen = strlen(needle);
    pid_t self = getpid(), parent = getppid();
    pid_t *pids = NULL;
    size_t n = 0;
    DIR *d = opendir("/proc");
    const struct dirent *e;
    while (d && (e = readdir(d))) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        /* Never anything at or below 1, nor this engine or its caller. */
        if (*end || pid <= 1 || pid == self || pid == parent) continue;
        if (!carries((pid_t)pid, needle, nlen) || !alive((pid_t)pid)) continue;
        pids = realloc(pids, (n + 1) * sizeof *pids);
        if (!pids) abort();
        pids[n++] = (pid_t)pid;
    }
    if (d) closedir(d);
    free(needle);
    for (size_t k = 0; k < n; k++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "pid", pids[k]);
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/comm", (int)pids[k]);
        size_t len;
        char *comm = bh_util_read_file(path, &len);
        if (comm) {
            comm[strcspn(comm, "\n")] = '\0';
            cJSON_AddStringToObject(o, "comm", comm);
            free(comm);
        }
        kill(pids[k], SIGTERM);
        cJSON_AddItemToArray(out, o);
    }
    for (long waited = 0; n && waited < (long)grace_ms; waited += 50) {
        size_t left = 0;
        for (size_t k = 0; k < n; k++)
            left += alive(pids[k]);
        if (!left) break;
        sleep_ms(50);
    }
    for (size_t k = 0; k < n; k++) {
        int killed = alive(pids[k]);
        if (killed) kill(pids[k], SIGKILL);
        cJSON_AddStringToObject(cJSON_GetArrayItem(out, (int)k), "signal",
                                killed ? "SIGKILL" : "SIGTERM");
    }
    free(pids);
}

/* --- the records resume writes ----------------------------------------- */

static void add_instance(cJSON *rec, const bh_step *s, size_t item, int attempt) {
    cJSON_AddStringToObject(rec, "step", s->id);
    if (s->each_ref != LUA_NOREF) cJSON_AddNumberToObject(rec, "item", (double)item + 1);
    if (s->every_ms > 0) cJSON_AddNumberToObject(rec, "rep", (double)item + 1);
    cJSON_AddNumberToObject(rec, "attempt", attempt);
}

static void write_decisions(bh_run *run, facts *fx) {
    for (size_t k = 0; k < fx->nunknown; k++) {
        const unknown_inst *u = &fx->unknown[k];
        const bh_step *s = &run->rb->steps[u->index];
        int retry = strcmp(u->decision, "retry") == 0;
        cJSON *rec = bh_run_record(BH_REC_UNKNOWN_OUTCOME, NULL);
        add_instance(rec, s, u->item, u->attempt);
        cJSON_AddStringToObject(rec, "was", u->was);
        cJSON_AddStringToObject(rec, "decision", u->decision);
        cJSON_AddStringToObject(rec, "how", u->how);
        cJSON_AddStringToObject(rec, "by", run->operator_name);
        bh_run_append(run, rec);
        /* Not repeated, after it had started something that acts: it may
         * have acted, so it is in doubt and its undo is registered. */
        int doubt = !retry && (u->open ? u->effects > 0 || u->doubt : u->cut_in_doubt);
        if (u->open) { /* every step_start gets its step_end */
            rec = bh_run_record(BH_REC_STEP_END, NULL);
            add_instance(rec, s, u->item, u->attempt);
            cJSON_AddStringToObject(rec, "status", doubt ? "in_doubt" : "unknown");
            cJSON_AddNumberToObject(rec, "duration_ms", 0);
            cJSON *e = cJSON_AddObjectToObject(rec, "error");
            cJSON_AddStringToObject(e, "code", "unknown_outcome");
            cJSON_AddStringToObject(e, "message",
                                    "the engine stopped while this attempt ran; its outcome is "
                                    "unknown");
            cJSON_AddStringToObject(rec, "next", retry ? "retry" : "continue");
            if (doubt) {
                char why[240], remain[200];
                if (u->effects > 0)
                    snprintf(why, sizeof why,
                             "the engine stopped after the attempt had started '%s'",
                             u->what ? u->what : "?");
                else
                    snprintf(why, sizeof why, "%s", u->doubt);
                bh_run_may_remain(run, u->index, u->item, remain, sizeof remain);
                cJSON_AddStringToObject(rec, "doubt", why);
                cJSON_AddStringToObject(rec, "may_remain", remain);
                bh_run_remember_done(run, u->index, u->item);
            }
            bh_run_append(run, rec);
        }
        char label[200], msg[300];
        label_of(run, u, label, sizeof label);
        snprintf(msg, sizeof msg, "%s: outcome of attempt %d unknown: %s (%s)", label, u->attempt,
                 retry   ? "running it again"
                 : doubt ? "not repeated; in doubt, its undo stays registered"
                         : "not repeated",
                 u->how);
        bh_events_notice(run->events, msg);
        step_facts *f = &fx->steps[u->index];
        if (retry)
            f->r.reruns[f->r.nreruns++] =
                (bh_rerun){u->item, u->attempt + 1, u->ask_when, u->effects ? NULL : u->doubt};
        else if (doubt)
            f->r.in_doubt++, f->r.waived++; /* the operator chose to go on */
        else
            f->r.unknown++;
    }
}

static void write_resumed(bh_run *run, const bh_replay *r, cJSON *leftovers, cJSON *undos_skipped) {
    cJSON *rec = bh_run_record(BH_REC_RUN_RESUMED, NULL);
    bh_run_add_who(run, rec);
    cJSON_AddStringToObject(rec, "previous",
                            r->end && bh_hrec_str(r->end, "status") ? bh_hrec_str(r->end, "status")
                                                                    : "died");
    cJSON_AddNumberToObject(rec, "concurrency", run->cap);
    cJSON_AddBoolToObject(rec, "concurrency_hard", run->cap_hard);
    int stopped = cJSON_GetArraySize(leftovers);
    cJSON_AddItemToObject(rec, "leftovers_stopped", leftovers);
    if (undos_skipped) cJSON_AddItemToObject(rec, "unknown_undos_skipped", undos_skipped);
    bh_run_append(run, rec); /* frees rec and what it holds */
    if (stopped > 0) {
        char msg[200];
        snprintf(msg, sizeof msg,
                 "stopped %d command(s) the previous engine left running (listed in the "
                 "journal)",
                 stopped);
        bh_events_notice(run->events, msg);
    }
}

/* --- the command -------------------------------------------------------- */

static int resumable(const bh_replay *r) {
    const char *id = bh_hrec_str(r->start, "run_id") ? bh_hrec_str(r->start, "run_id") : "?";
    if (r->undo_begin) {
        fprintf(stderr,
                "bulkhead resume: run %s was undone after it stopped (bulkhead undo%s); start a "
                "new run instead\n",
                id,
                r->undo_finished ? "" : ", interrupted: run `bulkhead undo` again to finish it");
        return 1;
    }
    const char *st = r->end ? bh_hrec_str(r->end, "status") : NULL;
    if (r->end && !bh_util_streq(st, "interrupted") && !bh_util_streq(st, "error")) {
        fprintf(stderr, "bulkhead resume: run %s has finished (%s); there is nothing to resume\n",
                id, st ? st : "?");
        return 1;
    }
    return 0;
}

/* Every secret the run read before it stopped is read again, so that it
 * stays masked in what this engine writes (earlier steps may have put it
 * in files that later steps print). */
static int reread_secrets(const bh_replay *r, int sim) {
    for (size_t k = 0; k < r->h.n; k++) {
        const bh_hrec *rec = &r->h.rec[k];
        const cJSON *list = NULL;
        if (rec->type == BH_REC_RUN_START) list = bh_hrec_get(rec, "secrets");
        const cJSON *one = rec->type == BH_REC_SECRET ? rec->json : NULL;
        const cJSON *x = one ? one : (list ? list->child : NULL);
        for (; x; x = one ? NULL : x->next) {
            const char *name = S(x, "name");
            const char *value, *code;
            size_t len;
            char why[400];
            if (!name || !bh_secrets_name_ok(name)) continue;
            if (bh_keyring_get(r->rb->keyring, name, &value, &len, &code, why, sizeof why) != 0 &&
                !sim) {
                fprintf(stderr,
                        "bulkhead resume: the run read secret '%s' before it stopped and it must "
                        "stay masked: %s\n",
                        name, why);
                return 4;
            }
        }
    }
    return 0;
}

static int check_flag_steps(const bh_runbook *rb, const char **steps, const char *flag) {
    for (size_t k = 0; steps && steps[k]; k++) {
        if (bh_model_step_index(rb, steps[k]) == (size_t)-1) {
            fprintf(stderr, "bulkhead resume: %s=%s: the runbook has no such step\n", flag,
                    steps[k]);
            return 2;
        }
    }
    return 0;
}

/* The approvers group the run had: the last one its run_start or a
 * run_resumed named (each engine records what it used). */
static const char *recorded_group(const bh_history *h) {
    const char *group = NULL;
    for (size_t k = 0; k < h->n; k++)
        if (h->rec[k].type == BH_REC_RUN_START || h->rec[k].type == BH_REC_RUN_RESUMED)
            group = S(bh_hrec_get(&h->rec[k], "approvers_group"), "name");
    return group;
}

/* The group's members must reach this run folder (resume makes it theirs
 * to pass, as run did). */
static int approvers_reach(const char *run_dir, int inherited, bh_run_opts *ro) {
    char *parent = bh_util_asprintf("%s/..", run_dir);
    char why[2048];
    int rc =
        bh_control_check_group(ro->approvers_group, parent, &ro->approvers_gid, why, sizeof why);
    if (rc != 0)
        fprintf(stderr, "bulkhead resume: %s %s: %s; nothing was changed\n",
                inherited ? "the run's approvers group" : "--approvers-group", ro->approvers_group,
                why);
    free(parent);
    return rc;
}

static void free_facts(facts *fx, size_t nsteps) {
    for (size_t i = 0; fx->steps && i < nsteps; i++) {
        free(fx->steps[i].v);
        free(fx->steps[i].r.reruns);
        cJSON_Delete(fx->steps[i].approvers);
    }
    free(fx->steps);
    free(fx->unknown);
}

/* Open the run and load what it ran: runbook, secrets, the steps the
 * flags name. 0, or the exit code after saying why. */
static int open_run(const bh_resume_opts *o, bh_replay *r) {
    int rc = bh_replay_open(r, "resume", o->run_dir);
    if (rc == 0) rc = resumable(r);
    r->secrets = o->secrets;
    bh_replay_plugins_from(r, o->plugins);
    if (rc == 0) rc = bh_replay_load(r);
    if (rc == 0) rc = reread_secrets(r, cJSON_IsObject(bh_hrec_get(r->start, "simulation")));
    if (rc == 0) rc = check_flag_steps(r->rb, o->retry_steps, "--retry-unknown");
    if (rc == 0) rc = check_flag_steps(r->rb, o->skip_steps, "--skip-unknown");
    for (size_t k = 0; rc == 0 && o->run_opts->approve && o->run_opts->approve[k]; k++) {
        if (bh_model_step_index(r->rb, o->run_opts->approve[k]) == (size_t)-1) {
            fprintf(stderr, "bulkhead resume: --approve %s: the runbook has no such step\n",
                    o->run_opts->approve[k]);
            rc = 2;
        }
    }
    return rc;
}

/* What the run was started with, unless the operator says otherwise. 0, or
 * the exit code after saying why. */
static int inherit_opts(const bh_resume_opts *o, bh_replay *r, bh_run_opts *ro, bh_sim *sim) {
    *ro = *o->run_opts;
    memset(sim, 0, sizeof *sim);
    if (bh_replay_sim(r, sim)) {
        ro->sim = sim; /* a drill goes on as a drill: nothing real happens */
        ro->prompt = 0;
    }
    if (ro->concurrency == 0 && bh_hrec_true(r->start, "concurrency_hard"))
        ro->concurrency = (int)bh_hrec_num(r->start, "concurrency", 0);
    if (ro->timeout_override_ms <= 0)
        ro->timeout_override_ms = bh_hrec_num(r->start, "timeout_override_ms", 0);
    int inherited = !ro->approvers_group && !ro->sim;
    if (inherited) ro->approvers_group = recorded_group(&r->h);
    if (ro->sim && ro->approvers_group)
        fprintf(stderr, "bulkhead resume: --approvers-group: a dry run or drill asks nobody\n");
    if (ro->approvers_group && (ro->sim || approvers_reach(o->run_dir, inherited, ro) != 0))
        return 2;
    return 0;
}

/* The run's clock goes on: run_end's duration is the run's, from its
 * start, time spent dead included; a simulation's is on its own clock,
 * which goes on where it stopped. */
static void continue_time(bh_replay *r, bh_run *run) {
    int64_t started_ms;
    if (run->opts->sim)
        bh_replay_continue_clock(r, run);
    else if (bh_util_parse_iso8601(r->start->ts, &started_ms) == 0 &&
             started_ms <= bh_util_now_ms())
        run->earlier_ms = (double)(bh_util_now_ms() - started_ms);
}

/* The items of a fan-out that had begun must be the ones it started. */
static int relist_fanouts(bh_run *run, const facts *fx) {
    const bh_runbook *rb = run->rb;
    for (size_t i = 0; i < rb->nsteps; i++) {
        const bh_restored_step *p = &fx->steps[i].r;
        if (rb->steps[i].each_ref == LUA_NOREF || !p->listed || p->skipped || p->failed_early)
            continue;
        char why[400];
        if (bh_sched_relist(run, i, p->nitems, p->started, why, sizeof why) != 0) {
            fprintf(stderr, "bulkhead resume: %s; refusing to go on with other items\n", why);
            return 3;
        }
    }
    return 0;
}

/* Put each step's state back, and the rollback's if one was under way. */
static void restore_steps(bh_run *run, const facts *fx, const unsigned char *undone) {
    const bh_runbook *rb = run->rb;
    bh_restored_step *restored = bh_util_xcalloc(rb->nsteps ? rb->nsteps : 1, sizeof *restored);
    for (size_t i = 0; i < rb->nsteps; i++) {
        restored[i] = fx->steps[i].r;
        restored[i].approvers = fx->steps[i].approvers;
    }
    bh_sched_restore(run, restored);
    free(restored);
    if (fx->rolling_back) {
        run->failed = run->rollback = run->undoing = 1;
        run->undo_pos = run->ndone;
        for (size_t i = 0; i < rb->nsteps; i++)
            if (undone[i]) run->status[i] = BH_STEP_UNDONE;
    }
}

/* The journal is ours: record the resume and its decisions, put the state
 * back, and let the scheduler go on. Returns the exit code. */
static int go_on(bh_run *run, bh_replay *r, facts *fx, const bh_resume_opts *o, int retry_undos) {
    const bh_runbook *rb = run->rb;
    bh_sched_listen(run);
    char mode[64];
    snprintf(mode, sizeof mode, "resumed, %s", run->fx->mode);
    bh_events_run_start(run->events, run->id, rb->title, run->dir, rb->nsteps, mode);
    bh_replay_record_cut(r, run);
    cJSON *leftovers = cJSON_CreateArray();
    stop_leftovers(run->id, rb->kill_grace_ms, leftovers);
    cJSON *undos_skipped = NULL;
    unsigned char *undone = bh_util_xcalloc(rb->nsteps ? rb->nsteps : 1, 1);
    if (fx->rolling_back) {
        /* Go on undoing: what completed and is not undone yet. */
        size_t history[2];
        run->ndone = 0;
        undos_skipped = cJSON_CreateArray();
        bh_undo_plan(rb, &r->h, NULL, retry_undos, run, undos_skipped, history, undone);
        run->undone = history[0];
        run->undo_failed = history[1];
    }
    write_resumed(run, r, leftovers, undos_skipped);
    write_decisions(run, fx);
    restore_steps(run, fx, undone);
    free(undone);
    if (o->abandon) {
        /* nothing new: what had not started is skipped, the end says why */
        run->abandoned = 1;
        run->stopping = 1;
    }
    bh_sched_pump(run);
    bh_run_outcome out = bh_sched_finish_run(run);
    return out == BH_RUN_OK            ? 0
           : out == BH_RUN_FAILED      ? 1
           : out == BH_RUN_INTERRUPTED ? 128 + run->interrupt_signal
                                       : 6;
}

int bh_resume_run(const bh_resume_opts *o) {
    bh_replay r;
    bh_run_opts ro;
    bh_sim sim;
    memset(&sim, 0, sizeof sim);
    int rc = open_run(o, &r);
    if (rc == 0) rc = inherit_opts(o, &r, &ro, &sim);
    if (rc != 0) {
        bh_replay_close(&r);
        bh_sim_free(&sim);
        return rc;
    }
    const bh_runbook *rb = r.rb;
    uv_loop_t loop;
    uv_loop_init(&loop);
    bh_run run_s;
    bh_run *run = &run_s;
    bh_sched_init(run, rb, &ro, &loop);
    run->id =
        bh_util_xstrdup(bh_hrec_str(r.start, "run_id") ? bh_hrec_str(r.start, "run_id") : "?");
    continue_time(&r, run);
    run->dir = bh_util_xstrdup(o->run_dir);
    facts fx = {.steps = bh_util_xcalloc(rb->nsteps ? rb->nsteps : 1, sizeof *fx.steps)};
    rc = bh_replay_fill(&r, run);
    if (rc == 0) {
        read_facts(rb, &r.h, &fx, run);
        judge(rb, &fx);
        if (o->abandon) fx.rolling_back = 0; /* what the rollback left, undo does */
        rc = relist_fanouts(run, &fx);
    }
    int retry_undos = 0;
    if (rc == 0) rc = decide(run, &fx, o, &retry_undos);
    if (rc == 0) rc = bh_replay_attach(&r, run);
    if (rc == 0) rc = go_on(run, &r, &fx, o, retry_undos);
    bh_sched_cleanup(run);
    free_facts(&fx, rb->nsteps);
    bh_replay_close(&r);
    bh_sim_free(&sim);
    return rc;
}
