#include "undo.h"

#include <errno.h>
#include <lauxlib.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "control.h"
#include "util.h"

/* --- inside a run ------------------------------------------------------ */

void bh_undo_begin_rollback(bh_run *run) {
    run->undoing = 1;
    run->undo_pos = run->ndone;
    size_t n = 0;
    for (size_t k = 0; k < run->ndone; k++)
        n += run->rb->steps[run->done_list[k].index].undo_ref != LUA_NOREF;
    cJSON *rec = bh_run_record("rollback_start", NULL);
    cJSON_AddNumberToObject(rec, "undos", (double)n);
    bh_run_append(run, rec);
    bh_console_phase(run->console, "rollback");
    if (n == 0) bh_console_notice(run->console, "rollback: no completed step has an undo");
}

int bh_undo_next(bh_run *run) {
    if (run->running > 0) return 1;
    while (run->undo_pos > 0 && !run->stopping && !run->io_error) {
        const bh_done *d = &run->done_list[--run->undo_pos];
        if (run->rb->steps[d->index].undo_ref == LUA_NOREF) continue;
        if (bh_sched_start_undo(run, d->index, d->item)) return 1;
    }
    return run->running > 0;
}

void bh_undo_ended(bh_run *run, bh_attempt *a, bh_step_status status) {
    bh_step_rt *rt = &run->rt[a->index];
    if (status == BH_STEP_OK) {
        run->undone++;
        /* undone only if every instance's undo went well */
        if (!rt->undo_failed) run->status[a->index] = BH_STEP_UNDONE;
    } else {
        run->undo_failed++;
        rt->undo_failed = 1;
        if (run->status[a->index] == BH_STEP_UNDONE) run->status[a->index] = BH_STEP_OK;
    }
}

void bh_undo_push_result(bh_attempt *a) {
    lua_State *co = a->co;
    bh_luax_checkstack(co, 4);
    lua_rawgeti(co, LUA_REGISTRYINDEX, a->run->results_ref);
    lua_pushstring(co, a->step->id);
    lua_rawget(co, -2);
    if (a->step->each_ref != LUA_NOREF) {
        if (lua_istable(co, -1))
            lua_rawgeti(co, -1, (lua_Integer)a->item + 1);
        else
            lua_pushnil(co);
        lua_remove(co, -2);
    }
    lua_remove(co, -2);
    /* stack: wrapper, undo, ctx, item, result */
    lua_pushvalue(co, -1);
    lua_setfield(co, -4, "result");
}

/* --- bulkhead undo RUN ------------------------------------------------- */

/* What the journal says about a run, for undo. */
typedef struct {
    const cJSON *start; /* run_start (in doc) */
    cJSON *doc;         /* array of every record */
    int ended;          /* a run_end is there */
} run_facts;

static int collect(const cJSON *rec, uint64_t offset, void *ud) {
    (void)offset;
    run_facts *f = ud;
    cJSON *copy = cJSON_Duplicate(rec, 1);
    cJSON_AddItemToArray(f->doc, copy);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(rec, "type");
    if (!cJSON_IsString(t)) return 0;
    if (strcmp(t->valuestring, "run_start") == 0) f->start = copy;
    if (strcmp(t->valuestring, "run_end") == 0) f->ended = 1;
    return 0;
}

static const char *jstr(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double jnum(const cJSON *o, const char *k, double def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}

static size_t step_index(const bh_runbook *rb, const char *id) {
    for (size_t i = 0; id && i < rb->nsteps; i++)
        if (strcmp(rb->steps[i].id, id) == 0) return i;
    return (size_t)-1;
}

/* An (index, item) state while reading the journal. */
enum { DONE_OK = 1, UNDONE = 2, UNDO_OPEN = 4 };

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

typedef struct {
    bh_run *run;
    run_facts *facts;
} fill_ctx;

/* Results and fan-out items as the run saw them, back into Lua
 * (protected: it allocates). */
static int fill_lua(lua_State *L) {
    fill_ctx *fc = lua_touserdata(L, 1);
    bh_run *run = fc->run;
    lua_rawgeti(L, LUA_REGISTRYINDEX, run->results_ref);
    int results = lua_gettop(L);
    const cJSON *rec;
    cJSON_ArrayForEach(rec, fc->facts->doc) {
        const char *type = jstr(rec, "type");
        size_t i = step_index(run->rb, jstr(rec, "step"));
        if (!type || i == (size_t)-1) continue;
        const bh_step *s = &run->rb->steps[i];
        size_t item = (size_t)jnum(rec, "item", 1) - 1;
        if (strcmp(type, "step_start") == 0 && s->each_ref != LUA_NOREF) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, "value");
            if (run->rt[i].items_ref == LUA_NOREF) {
                lua_newtable(L);
                run->rt[i].items_ref = luaL_ref(L, LUA_REGISTRYINDEX);
            }
            lua_rawgeti(L, LUA_REGISTRYINDEX, run->rt[i].items_ref);
            if (v)
                bh_luax_push_json(L, v);
            else
                lua_pushstring(L, jstr(rec, "key") ? jstr(rec, "key") : "?");
            lua_rawseti(L, -2, (lua_Integer)item + 1);
            lua_pop(L, 1);
        } else if (strcmp(type, "step_end") == 0 && jstr(rec, "status") &&
                   strcmp(jstr(rec, "status"), "ok") == 0) {
            const cJSON *r = cJSON_GetObjectItemCaseSensitive(rec, "result");
            if (s->each_ref != LUA_NOREF) {
                if (lua_getfield(L, results, s->id) != LUA_TTABLE) {
                    lua_pop(L, 1);
                    lua_newtable(L);
                    lua_pushvalue(L, -1);
                    lua_setfield(L, results, s->id);
                }
                if (r) {
                    bh_luax_push_json(L, r);
                    lua_rawseti(L, -2, (lua_Integer)item + 1);
                }
                lua_pop(L, 1);
            } else if (r) {
                bh_luax_push_json(L, r);
                lua_setfield(L, results, s->id);
            }
        }
    }
    return 0;
}

/* Is an engine still running this run? Its control socket answers. */
static int engine_alive(const char *dir) {
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "op", "status");
    cJSON *reply = NULL;
    int err = bh_control_call(dir, req, 2000, &reply);
    cJSON_Delete(req);
    cJSON_Delete(reply);
    return err == 0;
}

static int load_runbook(const cJSON *start, bh_runbook **rb) {
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(start, "runbook");
    const char *path = jstr(r, "realpath") ? jstr(r, "realpath") : jstr(r, "path");
    const char *sha = jstr(r, "sha256");
    if (!path || !sha) {
        fprintf(stderr, "bulkhead undo: the run's start record does not name its runbook\n");
        return 5;
    }
    bh_params_input in;
    bh_params_input_init(&in);
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(start, "params");
    in.file = params ? cJSON_Duplicate(params, 1) : cJSON_CreateObject();
    bh_runbook_opts o = {.path = path, .params = &in};
    bh_runbook_status st = bh_runbook_load(&o, rb);
    bh_params_input_free(&in);
    if (st != BH_RUNBOOK_OK) {
        bh_diag_print(&(*rb)->diags, stderr);
        fprintf(stderr, "bulkhead undo: cannot load the runbook %s again\n", path);
        return st == BH_RUNBOOK_UNREADABLE ? 6 : 3;
    }
    if (strcmp((*rb)->sha256, sha) != 0) {
        fprintf(stderr,
                "bulkhead undo: %s has changed since the run (sha256 then %.12s…, now %.12s…): "
                "undo runs the undo functions of the runbook that ran; restore that version "
                "first\n",
                path, sha, (*rb)->sha256);
        return 3;
    }
    return 0;
}

int bh_undo_run(const bh_undo_opts *uo) {
    /* One engine per run; only then is a torn last record (an engine that
     * died inside a write) safe to cut off: nobody is writing it. */
    int lock_fd;
    long holder = 0;
    int err = bh_run_lock(uo->run_dir, &lock_fd, &holder);
    if (err) {
        if (err == -EBUSY)
            fprintf(stderr, "bulkhead undo: %s is in use by another engine (pid %ld)\n",
                    uo->run_dir, holder);
        else
            fprintf(stderr, "bulkhead undo: cannot lock %s: %s\n", uo->run_dir,
                    bh_util_strerror(err));
        return err == -EBUSY ? 1 : 6;
    }
    char *jpath = bh_util_asprintf("%s/journal.jsonl", uo->run_dir);
    uint64_t cut = 0, cut_at = 0;
    bh_journal_check chk;
    /* Judge the journal as it will be once a torn last record is cut, but
     * cut nothing until undo is sure to append (and record the cut). */
    size_t len = 0;
    char *buf = bh_util_read_file(jpath, &len);
    err = buf ? 0 : (errno ? -errno : -EIO);
    size_t whole = len;
    memset(&chk, 0, sizeof chk);
    while (buf && len > 0 && buf[len - 1] != '\n')
        len--;
    if (buf) bh_journal_verify_buf(buf, len, &chk);
    if (err) {
        fprintf(stderr, "bulkhead undo: cannot read %s: %s\n", jpath, bh_util_strerror(err));
        free(jpath);
        close(lock_fd);
        return 6;
    }
    if (!chk.intact) {
        fprintf(stderr, "bulkhead undo: %s is damaged: %s; refusing to act on it\n", jpath,
                chk.message);
        free(buf);
        free(jpath);
        close(lock_fd);
        return 5;
    }
    run_facts facts = {.doc = cJSON_CreateArray()};
    bh_journal_each_buf(buf, len, collect, &facts);
    free(buf);
    int rc = 0;
    bh_runbook *rb = NULL;
    if (!facts.start) {
        fprintf(stderr, "bulkhead undo: %s has no run_start record\n", jpath);
        rc = 5;
    } else if (!facts.ended || engine_alive(uo->run_dir)) {
        fprintf(stderr,
                "bulkhead undo: run %s is %s; undo works on a finished run (stop it first, or "
                "let it finish)\n",
                jstr(facts.start, "run_id"),
                engine_alive(uo->run_dir) ? "still running" : "not finished (no run_end)");
        rc = 1;
    } else {
        rc = load_runbook(facts.start, &rb);
    }
    if (rc == 0 && uo->step && step_index(rb, uo->step) == (size_t)-1) {
        fprintf(stderr, "bulkhead undo: the runbook has no step '%s'\n", uo->step);
        rc = 2;
    } else if (rc == 0 && uo->step && rb->steps[step_index(rb, uo->step)].undo_ref == LUA_NOREF) {
        fprintf(stderr, "bulkhead undo: step '%s' has no undo\n", uo->step);
        rc = 1;
    }
    if (rc != 0) {
        bh_runbook_free(rb);
        cJSON_Delete(facts.doc);
        free(jpath);
        close(lock_fd);
        return rc;
    }

    /* What completed, in order, and what was undone already. */
    inst *v = NULL;
    size_t nv = 0;
    size_t *order = NULL;
    size_t norder = 0;
    const cJSON *rec;
    cJSON_ArrayForEach(rec, facts.doc) {
        const char *type = jstr(rec, "type");
        size_t i = step_index(rb, jstr(rec, "step"));
        if (!type || i == (size_t)-1) continue;
        size_t item = (size_t)jnum(rec, "item", 1) - 1;
        const char *status = jstr(rec, "status") ? jstr(rec, "status") : "";
        if (strcmp(type, "step_end") == 0 && strcmp(status, "ok") == 0) {
            inst *x = find_inst(&v, &nv, i, item);
            x->state |= DONE_OK;
            order = realloc(order, (norder + 1) * sizeof *order);
            if (!order) abort();
            order[norder++] = (size_t)(x - v);
        } else if (strcmp(type, "undo_start") == 0) {
            find_inst(&v, &nv, i, item)->state |= UNDO_OPEN;
        } else if (strcmp(type, "undo_end") == 0) {
            inst *x = find_inst(&v, &nv, i, item);
            x->state &= ~UNDO_OPEN;
            if (strcmp(status, "ok") == 0) x->state |= UNDONE;
        }
    }

    uv_loop_t loop;
    uv_loop_init(&loop);
    bh_run run_s;
    bh_run *run = &run_s;
    bh_sched_init(run, rb, uo->run_opts, &loop);
    run->id = bh_util_xstrdup(jstr(facts.start, "run_id") ? jstr(facts.start, "run_id") : "?");
    run->dir = bh_util_xstrdup(uo->run_dir);
    run->undo_only = 1;
    run->undoing = 1;
    run->lock_fd = lock_fd;
    err = whole > len ? bh_journal_recover_tail(jpath, &cut, &cut_at) : 0;
    if (!err) err = bh_journal_open_append(jpath, &run->journal);
    if (err) {
        fprintf(stderr, "bulkhead undo: cannot append to %s: %s\n", jpath, bh_util_strerror(err));
        rc = err == -EBADMSG ? 5 : 6;
    } else {
        bh_sched_listen(run);
        if (cut > 0) {
            cJSON *rr = bh_run_record("journal_recovered", NULL);
            cJSON_AddNumberToObject(rr, "cut_bytes", (double)cut);
            cJSON_AddNumberToObject(rr, "offset", (double)cut_at);
            bh_run_append(run, rr);
            fprintf(stderr,
                    "bulkhead undo: cut a torn last record (%llu bytes at offset %llu) off the "
                    "journal; recorded\n",
                    (unsigned long long)cut, (unsigned long long)cut_at);
        }
        fill_ctx fc = {.run = run, .facts = &facts};
        if (bh_run_protected(run, fill_lua, &fc) != LUA_OK) {
            fprintf(stderr, "bulkhead undo: the recorded results do not fit in the runbook's "
                            "Lua memory\n");
            rc = 1;
        }
        cJSON *skipped = cJSON_CreateArray();
        /* Instances to undo, in completion order; undone in reverse. */
        for (size_t k = 0; k < norder && rc == 0; k++) {
            const inst *x = &v[order[k]];
            const bh_step *s = &rb->steps[x->index];
            if (s->undo_ref == LUA_NOREF || (x->state & UNDONE)) continue;
            if (uo->step && strcmp(s->id, uo->step) != 0) continue;
            if ((x->state & UNDO_OPEN) && !s->idempotent && !uo->retry_unknown) {
                char key[80];
                snprintf(key, sizeof key, "%s#%zu", s->id, x->item + 1);
                cJSON_AddItemToArray(skipped, cJSON_CreateString(key));
                continue;
            }
            if (run->ndone == run->capdone) {
                run->capdone = run->capdone ? run->capdone * 2 : 64;
                run->done_list = realloc(run->done_list, run->capdone * sizeof *run->done_list);
                if (!run->done_list) abort();
            }
            run->done_list[run->ndone].index = x->index;
            run->done_list[run->ndone].item = x->item;
            run->ndone++;
        }
        run->undo_pos = run->ndone;
        cJSON *begin = bh_run_record("undo_begin", NULL);
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
        bh_run_append(run, begin);
        bh_console_run_start(run->console, run->id, rb->title, run->dir, run->ndone, "undo");
        if (run->ndone == 0) bh_console_notice(run->console, "nothing to undo");
        if (rc != 0) run->ndone = run->undo_pos = 0;
        bh_sched_pump(run);
        bh_run_outcome out = bh_sched_finish_run(run);
        if (rc == 0) {
            rc = out == BH_RUN_OK            ? 0
                 : out == BH_RUN_FAILED      ? 1
                 : out == BH_RUN_INTERRUPTED ? 128 + run->interrupt_signal
                                             : 6;
        }
    }
    bh_sched_cleanup(run);
    free(v);
    free(order);
    bh_runbook_free(rb);
    cJSON_Delete(facts.doc);
    free(jpath);
    return rc;
}
