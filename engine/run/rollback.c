#include "run/rollback.h"
#include "run/run.h"

#include "journal/schema.h"

#include <lauxlib.h>

void bh_rollback_begin(bh_run *run) {
    run->undoing = 1;
    run->undo_pos = run->ndone;
    size_t n = 0;
    for (size_t k = 0; k < run->ndone; k++)
        n += run->rb->steps[run->done_list[k].index].undo_ref != LUA_NOREF;
    cJSON *rec = bh_run_record(BH_REC_ROLLBACK_START, NULL);
    cJSON_AddNumberToObject(rec, "undos", (double)n);
    bh_run_append(run, rec);
    bh_events_phase(run->events, "rollback");
    if (n == 0) bh_events_notice(run->events, "rollback: no completed step has an undo");
}

int bh_rollback_next(bh_run *run) {
    if (run->running > 0) return 1;
    while (run->undo_pos > 0 && !run->stopping && !run->io_error) {
        const bh_done *d = &run->done_list[--run->undo_pos];
        if (run->rb->steps[d->index].undo_ref == LUA_NOREF) continue;
        if (run->sched->start_undo(run, d->index, d->item)) return 1;
    }
    return run->running > 0;
}

void bh_rollback_ended(bh_run *run, bh_attempt *a, bh_step_status status) {
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

void bh_rollback_push_result(bh_attempt *a) {
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
