#include "run/undo.h"
#include "run/run.h"

#include "journal/schema.h"

#include <errno.h>
#include <lauxlib.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "journal/remain.h"
#include "run/replay.h"
#include "load/sim.h"
#include "base/util.h"

/* --- bulkhead undo RUN ------------------------------------------------- */

/* An (index, item) state while reading the journal. UNDO_OPEN: its last
 * undo has no end, or was cancelled (an interrupt): its outcome is unknown.
 * DOUBT_RETRY: its last attempt ended in doubt with a retry due. */
enum { DONE_OK = 1, UNDONE = 2, UNDO_OPEN = 4, UNDO_FAILED = 8, DOUBT_RETRY = 16 };

typedef struct {
    size_t index, item;
    int state;
} inst;

static inst *find_inst(inst **v, size_t *n, size_t index, size_t item) {
    for (size_t k = 0; k < *n; k++)
        if ((*v)[k].index == index && (*v)[k].item == item) return &(*v)[k];
    *v = realloc(*v, (*n + 1) * sizeof **v);
    if (!*v) abort();
    (*v)[*n] = (inst){.index = index, .item = item, .state = 0};
    return &(*v)[(*n)++];
}

/* An undo of the instance ended with status: undone, failed, or (an
 * interrupt cancelled it) as uncertain as cut off. */
static void undo_ended(inst *u, const char *status) {
    u->state &= ~(UNDO_OPEN | UNDO_FAILED);
    if (status && strcmp(status, "ok") == 0)
        u->state |= UNDONE;
    else if (status && strcmp(status, "cancelled") == 0)
        u->state |= UNDO_OPEN;
    else
        u->state |= UNDO_FAILED;
}

void bh_undo_plan(const bh_runbook *rb, const bh_history *h, const char *only_step,
                  int retry_unknown, bh_run *run, cJSON *unknown_skipped, size_t history[2],
                  unsigned char *undone) {
    inst *v = NULL;
    size_t nv = 0;
    size_t *order = NULL;
    size_t norder = 0;
    history[0] = history[1] = 0;
    for (size_t k = 0; k < h->n; k++) {
        const bh_hrec *rec = &h->rec[k];
        size_t i = bh_model_step_index(rb, rec->step);
        if (i == (size_t)-1) continue;
        size_t item = bh_hrec_instance(rec);
        inst *x = NULL;
        if (rec->type == BH_REC_STEP_END) {
            /* an instance that may have acted has its undo run too; one
             * retried is not over yet (its last attempt decides), unless
             * the run stopped before that retry */
            const char *status = bh_hrec_str(rec, "status") ? bh_hrec_str(rec, "status") : "";
            const char *next = bh_hrec_str(rec, "next");
            int final = !next || strcmp(next, "retry") != 0;
            int doubt = strcmp(status, "in_doubt") == 0;
            x = find_inst(&v, &nv, i, item);
            x->state &= ~DOUBT_RETRY;
            if (doubt && !final) x->state |= DOUBT_RETRY;
            if (!final || (strcmp(status, "ok") != 0 && !doubt)) x = NULL;
        } else if (rec->type == BH_REC_RETRY_CANCELLED) {
            /* the run stopped before the retry of an in-doubt attempt: what
             * that attempt may have done stays, and so does its undo */
            x = find_inst(&v, &nv, i, item);
            if (!(x->state & DOUBT_RETRY)) x = NULL;
        }
        if (x) {
            x->state = (x->state & ~DOUBT_RETRY) | DONE_OK;
            order = bh_util_xrealloc(order, (norder + 1) * sizeof *order);
            order[norder++] = (size_t)(x - v);
        } else if (rec->type == BH_REC_UNDO_START) {
            find_inst(&v, &nv, i, item)->state |= UNDO_OPEN;
        } else if (rec->type == BH_REC_UNDO_END) {
            undo_ended(find_inst(&v, &nv, i, item), bh_hrec_str(rec, "status"));
        }
    }
    /* Where each instance stands now; a step is undone when every completed
     * instance of it is (its status, for a rollback that goes on). */
    for (size_t k = 0; k < nv; k++) {
        if (v[k].state & UNDONE) history[0]++;
        if (v[k].state & UNDO_FAILED) {
            history[1]++;
            run->rt[v[k].index].undo_failed = 1;
        }
    }
    for (size_t i = 0; i < rb->nsteps; i++) {
        int done = 0, all = 1;
        for (size_t k = 0; k < nv; k++) {
            if (v[k].index != i || !(v[k].state & DONE_OK)) continue;
            done = 1;
            all &= (v[k].state & UNDONE) != 0;
        }
        if (undone) undone[i] = done && all && rb->steps[i].undo_ref != LUA_NOREF;
    }
    /* Instances to undo, in completion order; undone in reverse. */
    for (size_t k = 0; k < norder; k++) {
        const inst *x = &v[order[k]];
        const bh_step *s = &rb->steps[x->index];
        if (s->undo_ref == LUA_NOREF || (x->state & UNDONE)) continue;
        if (only_step && strcmp(s->id, only_step) != 0) continue;
        if ((x->state & UNDO_OPEN) && !s->idempotent && !retry_unknown) {
            char key[80];
            snprintf(key, sizeof key, "%s#%zu", s->id, x->item + 1);
            cJSON_AddItemToArray(unknown_skipped, cJSON_CreateString(key));
            continue;
        }
        bh_run_remember_done(run, x->index, x->item);
    }
    run->undo_pos = run->ndone;
    free(v);
    free(order);
}

/* What in-doubt instances without an undo may have left ("web1 may still
 * be isolated"): undo cannot put it back, and must not say all is well. */
static cJSON *doubt_without_undo(const bh_runbook *rb, const bh_history *h, const char *only_step) {
    bh_remain remain;
    bh_remain_read(&remain, h);
    cJSON *out = cJSON_CreateArray();
    const cJSON *e;
    cJSON_ArrayForEach(e, remain.open) {
        size_t i = bh_model_step_index(rb, bh_journal_str(e, "step"));
        if (i == (size_t)-1 || rb->steps[i].undo_ref != LUA_NOREF ||
            (only_step && strcmp(rb->steps[i].id, only_step) != 0))
            continue;
        cJSON_AddItemToArray(out, cJSON_CreateString(bh_journal_str(e, "may_remain")));
    }
    bh_remain_free(&remain);
    return out;
}

/* Open the finished run and load its runbook; refuse (a message, an exit
 * code) what cannot be undone before anything is written. */
static int prepare(const bh_undo_opts *uo, bh_replay *r) {
    int rc = bh_replay_open(r, "undo", uo->run_dir);
    int alive = rc == 0 && bh_replay_engine_alive(r); /* asks its control socket */
    if (rc == 0 && (!r->end || alive)) {
        fprintf(stderr, "bulkhead undo: run %s is %s; undo works on a finished run (%s)\n",
                bh_hrec_str(r->start, "run_id"),
                alive ? "still running" : "not finished (no run_end)",
                alive ? "stop it first, or let it finish"
                      : "resume it first (bulkhead resume RUN), or end it here and undo it: "
                        "bulkhead undo RUN --abandon");
        rc = 1;
    }
    r->secrets = uo->secrets;
    bh_replay_plugins_from(r, uo->plugins);
    if (rc == 0) rc = bh_replay_load(r);
    const bh_runbook *rb = r->rb;
    size_t only = rc == 0 && uo->step ? bh_model_step_index(rb, uo->step) : 0;
    if (rc == 0 && only == (size_t)-1) {
        fprintf(stderr, "bulkhead undo: the runbook has no step '%s'\n", uo->step);
        rc = 2;
    } else if (rc == 0 && uo->step && rb->steps[only].undo_ref == LUA_NOREF) {
        fprintf(stderr, "bulkhead undo: step '%s' has no undo\n", uo->step);
        rc = 1;
    }
    return rc;
}

struct attached {
    uv_loop_t loop;
    bh_run run;
    bh_run_opts ro;
    bh_sim sim;
    int filled;
};

/* An engine on the run, appending to its journal: what undo and settle
 * both need. Returns 0 once it may append (a->filled: whether the recorded
 * results went back into Lua), or the exit code. */
static int attach(const bh_undo_opts *uo, bh_replay *r, struct attached *a) {
    bh_run *run = &a->run;
    a->ro = *uo->run_opts;
    memset(&a->sim, 0, sizeof a->sim);
    if (bh_replay_sim(r, &a->sim)) a->ro.sim = &a->sim; /* undoing a drill is simulated too */
    uv_loop_init(&a->loop);
    bh_sched_init(run, r->rb, &a->ro, &a->loop);
    bh_replay_continue_clock(r, run);
    run->started_ms = bh_clock_now_ms(run->clock); /* the undo's own duration */
    const char *id = bh_hrec_str(r->start, "run_id");
    run->id = bh_util_xstrdup(id ? id : "?");
    run->dir = bh_util_xstrdup(uo->run_dir);
    run->undo_only = 1;
    run->undoing = 1;
    int rc = bh_replay_attach(r, run);
    if (rc != 0) return rc;
    bh_sched_listen(run);
    bh_replay_record_cut(r, run);
    a->filled = bh_replay_fill(r, run);
    return 0;
}

static void detach(struct attached *a, bh_replay *r) {
    bh_sched_cleanup(&a->run);
    bh_replay_close(r);
    bh_sim_free(&a->sim);
}

static int exit_code(bh_run *run, bh_run_outcome out) {
    return out == BH_RUN_OK            ? 0
           : out == BH_RUN_FAILED      ? 1
           : out == BH_RUN_INTERRUPTED ? 128 + run->interrupt_signal
                                       : 6;
}

/* The in-doubt instances `--settle LABEL` names: STEP, or STEP[KEY] for an
 * item of a fan-out (as the console labels it). */
static cJSON *settle_matches(const bh_history *h, const char *label) {
    char step[200], key[200] = "";
    const char *br = strchr(label, '[');
    size_t n = br ? (size_t)(br - label) : strlen(label);
    snprintf(step, sizeof step, "%.*s", (int)(n < sizeof step ? n : sizeof step - 1), label);
    if (br) snprintf(key, sizeof key, "%.*s", (int)strcspn(br + 1, "]"), br + 1);
    bh_remain rm;
    bh_remain_read(&rm, h);
    cJSON *out = cJSON_CreateArray();
    const cJSON *e;
    cJSON_ArrayForEach(e, rm.open) {
        const char *k = bh_journal_str(e, "key");
        if (strcmp(bh_journal_str(e, "step"), step) != 0) continue;
        if (br && !(k && strcmp(k, key) == 0)) continue;
        cJSON_AddItemToArray(out, cJSON_Duplicate(e, 1));
    }
    bh_remain_free(&rm);
    return out;
}

int bh_undo_settle(const bh_undo_opts *uo) {
    if (!uo->note || !*uo->note) {
        fprintf(stderr, "bulkhead undo: --settle needs --note saying what was checked, and how\n");
        return 2;
    }
    bh_replay r;
    int rc = prepare(uo, &r);
    cJSON *matches = rc == 0 ? settle_matches(&r.h, uo->settle) : NULL;
    if (rc == 0 && cJSON_GetArraySize(matches) == 0) {
        fprintf(stderr,
                "bulkhead undo: nothing of '%s' is in doubt in run %s (bulkhead show RUN lists "
                "what is; a fan-out's item is STEP[KEY])\n",
                uo->settle, bh_hrec_str(r.start, "run_id"));
        rc = 2;
    }
    if (rc != 0) {
        cJSON_Delete(matches);
        bh_replay_close(&r);
        return rc;
    }
    struct attached a;
    bh_run *run = &a.run;
    rc = attach(uo, &r, &a);
    if (rc == 0) {
        cJSON *begin = bh_run_record(BH_REC_UNDO_BEGIN, NULL);
        cJSON_AddStringToObject(begin, "operator", run->operator_name);
        cJSON_AddNumberToObject(begin, "undos", 0);
        cJSON_AddStringToObject(begin, "settle", uo->settle);
        bh_run_append(run, begin);
        bh_events_run_start(run->events, run->id, r.rb->title, run->dir, 0, "settle");
        const cJSON *e;
        cJSON_ArrayForEach(e, matches) {
            /* the person's word for the record: checked by hand, settled */
            cJSON *rec = bh_run_record(BH_REC_SETTLED, NULL);
            static const char *const keep[] = {"step", "item", "rep", "key", "may_remain"};
            for (size_t k = 0; k < sizeof keep / sizeof keep[0]; k++) {
                const cJSON *v = cJSON_GetObjectItemCaseSensitive(e, keep[k]);
                if (v) cJSON_AddItemToObject(rec, keep[k], cJSON_Duplicate(v, 1));
            }
            cJSON_AddStringToObject(rec, "by", run->operator_name);
            cJSON_AddStringToObject(rec, "note", uo->note);
            bh_run_append(run, rec);
            char line[600];
            snprintf(line, sizeof line, "settled by %s: %s (%s)", run->operator_name,
                     bh_journal_str(e, "may_remain"), uo->note);
            bh_events_notice(run->events, line);
        }
        bh_sched_pump(run);
        rc = exit_code(run, bh_sched_finish_run(run));
    }
    cJSON_Delete(matches);
    detach(&a, &r);
    return rc;
}

int bh_undo_run(const bh_undo_opts *uo) {
    if (uo->settle) return bh_undo_settle(uo);
    bh_replay r;
    int rc = prepare(uo, &r);
    if (rc != 0) {
        bh_replay_close(&r);
        return rc;
    }
    struct attached a;
    bh_run *run = &a.run;
    rc = attach(uo, &r, &a);
    if (rc == 0) {
        rc = a.filled; /* without the results, no undo runs; the record says what was asked */
        cJSON *skipped = cJSON_CreateArray();
        size_t history[2]; /* this command counts its own undos only */
        bh_undo_plan(r.rb, &r.h, uo->step, uo->retry_unknown, run, skipped, history, NULL);
        cJSON *begin = bh_run_record(BH_REC_UNDO_BEGIN, NULL);
        cJSON_AddStringToObject(begin, "operator", run->operator_name);
        if (uo->step) cJSON_AddStringToObject(begin, "only_step", uo->step);
        cJSON_AddNumberToObject(begin, "undos", (double)run->ndone);
        if (cJSON_GetArraySize(skipped) > 0) {
            cJSON_AddItemToObject(begin, "unknown_skipped", skipped);
            fprintf(stderr,
                    "bulkhead undo: %d undo(s) were cut off before they ended and their outcome "
                    "is unknown; not repeating them (use --retry-unknown to run them again)\n",
                    cJSON_GetArraySize(skipped));
        } else {
            cJSON_Delete(skipped);
        }
        cJSON *stays = doubt_without_undo(r.rb, &r.h, uo->step);
        int nstays = cJSON_GetArraySize(stays);
        if (nstays > 0)
            cJSON_AddItemToObject(begin, "in_doubt_without_undo", cJSON_Duplicate(stays, 1));
        bh_run_append(run, begin);
        bh_events_run_start(run->events, run->id, r.rb->title, run->dir, run->ndone,
                            a.ro.sim ? (a.sim.drill ? "undo, drill" : "undo, dry-run") : "undo");
        const cJSON *m;
        cJSON_ArrayForEach(m, stays) {
            char line[400];
            snprintf(line, sizeof line,
                     "in doubt, and its step has no undo: %s (check it by hand, then: bulkhead "
                     "undo RUN --settle STEP[KEY] --note WHAT-YOU-FOUND)",
                     m->valuestring);
            bh_events_notice(run->events, line);
        }
        cJSON_Delete(stays);
        run->undo_left = (size_t)nstays; /* not all can be put back: run_status says so */
        if (run->ndone == 0 && nstays == 0) bh_events_notice(run->events, "nothing to undo");
        if (rc != 0) run->ndone = run->undo_pos = 0;
        bh_sched_pump(run);
        bh_run_outcome out = bh_sched_finish_run(run);
        if (rc == 0) rc = out == BH_RUN_OK && nstays > 0 ? 1 : exit_code(run, out);
    }
    detach(&a, &r);
    return rc;
}
