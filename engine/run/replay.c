#include "run/replay.h"
#include "run/run.h"

#include "journal/schema.h"

#include <errno.h>
#include <stdarg.h>
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "effects/control.h"
#include "lua/luax.h"
#include "load/plugin.h"
#include "load/sim.h"
#include "base/util.h"

#define S bh_journal_str

int bh_replay_sim(const bh_replay *r, bh_sim *sim) {
    const cJSON *j = bh_hrec_get(r->start, "simulation");
    if (!cJSON_IsObject(j)) return 0;
    bh_sim_from_json(sim, j);
    return 1;
}

void bh_replay_continue_clock(const bh_replay *r, bh_run *run) {
    if (!bh_clock_is_virtual(run->clock)) return;
    double last = 0;
    for (size_t i = 0; i < r->h.n; i++)
        if (r->h.rec[i].sim_ms > last) last = r->h.rec[i].sim_ms;
    bh_clock_set_now(run->clock, last);
}

/* The last undo_begin, and whether an undo_finish follows it. */
static void find_undo(bh_replay *r) {
    for (size_t i = 0; i < r->h.n; i++) {
        if (r->h.rec[i].type == BH_REC_UNDO_BEGIN) {
            r->undo_begin = &r->h.rec[i];
            r->undo_finished = 0;
        }
        if (r->h.rec[i].type == BH_REC_UNDO_FINISH) r->undo_finished = 1;
    }
}

static int fail(bh_replay *r, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(bh_replay *r, int rc, const char *fmt, ...) {
    fprintf(stderr, "bulkhead %s: ", r->cmd);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return rc;
}

int bh_replay_open(bh_replay *r, const char *cmd, const char *dir) {
    memset(r, 0, sizeof *r);
    r->cmd = cmd;
    r->lock_fd = -1;
    r->dir = bh_util_xstrdup(dir);
    r->jpath = bh_util_asprintf("%s/journal.jsonl", dir);
    /* One engine per run; only under the lock is a torn last record (an
     * engine that died inside a write) safe to cut off: nobody writes it. */
    long holder = 0;
    int err = bh_run_lock(dir, &r->lock_fd, &holder);
    if (err == -EBUSY) return fail(r, 1, "%s is in use by another engine (pid %ld)", dir, holder);
    if (err) return fail(r, 6, "cannot lock %s: %s", dir, bh_util_strerror(err));
    size_t len = 0;
    char *buf = bh_util_read_file(r->jpath, &len);
    if (!buf) {
        err = errno ? -errno : -EIO;
        return fail(r, 6, "cannot read %s: %s", r->jpath, bh_util_strerror(err));
    }
    r->whole = len;
    /* Judged as it will be once a torn last record is cut; nothing is cut
     * until the engine is sure to append (and records the cut). */
    while (len > 0 && buf[len - 1] != '\n')
        len--;
    r->len = len;
    bh_journal_check chk;
    memset(&chk, 0, sizeof chk);
    bh_journal_verify_buf(buf, len, &chk);
    if (!chk.intact) {
        free(buf);
        return fail(r, 5, "%s is damaged: %s; refusing to act on it", r->jpath, chk.message);
    }
    bh_history_read_buf(&r->h, buf, len);
    free(buf);
    r->start = r->h.start;
    r->end = r->h.end;
    find_undo(r);
    if (!r->start) return fail(r, 5, "%s has no run_start record", r->jpath);
    return 0;
}

int bh_replay_engine_alive(const bh_replay *r) {
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "op", "status");
    cJSON *reply = NULL;
    int err = bh_control_call(r->dir, req, 2000, &reply);
    cJSON_Delete(req);
    cJSON_Delete(reply);
    return err == 0;
}

/* The plugin directories the run used, unless the caller set others. */
void bh_replay_plugins_from(bh_replay *r, const char *dirs) {
    if (!dirs) return;
    if (r->owns_dirs) bh_plugin_free_dirs(r->plugin_dirs);
    r->plugin_dirs = bh_plugin_dirs(dirs);
    r->owns_dirs = 1;
}

static void plugin_dirs_of(bh_replay *r) {
    if (r->plugin_dirs) return;
    const cJSON *dirs = bh_hrec_get(r->start, "plugin_dirs");
    size_t n = 0;
    r->plugin_dirs = bh_util_xcalloc((size_t)cJSON_GetArraySize(dirs) + 1, sizeof(char *));
    const cJSON *d;
    cJSON_ArrayForEach(d, dirs) if (cJSON_IsString(d)) r->plugin_dirs[n++] =
        bh_util_xstrdup(d->valuestring);
    r->owns_dirs = 1;
}

/* Before anything is loaded (a plugin's code runs when it loads): each
 * plugin the run used is found where the runbook will look, and is the
 * same file (SHA-256). */
static int plugins_present(bh_replay *r) {
    const cJSON *then;
    cJSON_ArrayForEach(then, bh_hrec_get(r->start, "plugins")) {
        const char *name = S(then, "name");
        if (!name) continue;
        /* the file it was (NAME.lua, or a module's NAME.so) */
        const char *file = S(then, "file");
        char *fallback = file ? NULL : bh_util_asprintf("%s.lua", name);
        if (!file) file = fallback;
        char *found = NULL;
        for (char **d = r->plugin_dirs; d && *d && !found; d++) {
            char *p = bh_util_asprintf("%s/%s", *d, file);
            if (access(p, F_OK) == 0)
                found = p;
            else
                free(p);
        }
        free(fallback);
        if (!found)
            return fail(r, 3,
                        "plugin %s is in none of the plugin directories (it was %s when the run "
                        "started): give its directory with --plugins DIR",
                        name, S(then, "path") ? S(then, "path") : "?");
        size_t len;
        char *text = bh_util_read_file(found, &len);
        char sha[BH_SHA256_HEX_LEN + 1] = "";
        if (text) bh_util_sha256_hex(text, len, sha);
        free(text);
        int rc = 0;
        if (!S(then, "sha256") || strcmp(sha, S(then, "sha256")) != 0)
            rc = fail(r, 3,
                      "plugin %s (%s) has changed since the run (sha256 then %.12s…, now %.12s…): "
                      "restore that version first",
                      name, found, S(then, "sha256") ? S(then, "sha256") : "?",
                      sha[0] ? sha : "unreadable");
        free(found);
        if (rc) return rc;
    }
    return 0;
}

/* Every plugin the run loaded must be the same file now (SHA-256). */
static int same_plugins(bh_replay *r) {
    const cJSON *then;
    cJSON_ArrayForEach(then, bh_hrec_get(r->start, "plugins")) {
        const cJSON *now;
        cJSON_ArrayForEach(now, r->rb->plugins_used) {
            if (!S(now, "name") || !S(then, "name") || strcmp(S(now, "name"), S(then, "name")) != 0)
                continue;
            if (!S(then, "sha256") || strcmp(S(now, "sha256"), S(then, "sha256")) != 0)
                return fail(r, 3,
                            "plugin %s (%s) has changed since the run (sha256 then %.12s…, now "
                            "%.12s…): restore that version first",
                            S(now, "name"), S(now, "path"),
                            S(then, "sha256") ? S(then, "sha256") : "?", S(now, "sha256"));
        }
    }
    return 0;
}

int bh_replay_load(bh_replay *r) {
    plugin_dirs_of(r);
    int prc = plugins_present(r);
    if (prc) return prc;
    const cJSON *rbj = bh_hrec_get(r->start, "runbook");
    const char *path = S(rbj, "realpath") ? S(rbj, "realpath") : S(rbj, "path");
    const char *sha = S(rbj, "sha256");
    if (!path || !sha) return fail(r, 5, "the run's start record does not name its runbook");
    bh_params_input in;
    bh_params_input_init(&in);
    const cJSON *params = bh_hrec_get(r->start, "params");
    in.file = params ? cJSON_Duplicate(params, 1) : cJSON_CreateObject();
    bh_runbook_opts o = {
        .path = path,
        .params = &in,
        .secrets = r->secrets,
        .plugin_dirs = r->plugin_dirs,
        /* a drill ran with stand-ins for secrets it did not have */
        .secrets_optional = cJSON_IsObject(bh_hrec_get(r->start, "simulation")),
    };
    bh_runbook_status st = bh_runbook_load(&o, &r->rb);
    bh_params_input_free(&in);
    if (st != BH_RUNBOOK_OK) {
        bh_diag_print(&r->rb->diags, stderr);
        return fail(r,
                    st == BH_RUNBOOK_UNREADABLE   ? 6
                    : st == BH_RUNBOOK_BAD_PARAMS ? 4
                                                  : 3,
                    "cannot load the runbook %s again", path);
    }
    if (strcmp(r->rb->sha256, sha) != 0)
        return fail(r, 3,
                    "%s has changed since the run (sha256 then %.12s…, now %.12s…): the engine "
                    "must go on with the runbook that ran; restore that version first",
                    path, sha, r->rb->sha256);
    return same_plugins(r);
}

typedef struct {
    bh_replay *r;
    bh_run *run;
} fill_ctx;

/* Protected: pushing recorded values allocates. */
static int fill_lua(lua_State *L) {
    fill_ctx *fc = lua_touserdata(L, 1);
    bh_run *run = fc->run;
    lua_rawgeti(L, LUA_REGISTRYINDEX, run->results_ref);
    int results = lua_gettop(L);
    for (size_t k = 0; k < fc->r->h.n; k++) {
        const bh_hrec *rec = &fc->r->h.rec[k];
        size_t i = bh_model_step_index(run->rb, rec->step);
        if (i == (size_t)-1) continue;
        const bh_step *s = &run->rb->steps[i];
        size_t item = bh_hrec_instance(rec);
        if (rec->type == BH_REC_STEP_START && s->each_ref != LUA_NOREF) {
            const cJSON *v = bh_hrec_get(rec, "value");
            if (run->rt[i].items_ref == LUA_NOREF) {
                lua_newtable(L);
                run->rt[i].items_ref = luaL_ref(L, LUA_REGISTRYINDEX);
            }
            lua_rawgeti(L, LUA_REGISTRYINDEX, run->rt[i].items_ref);
            if (v)
                bh_luax_push_json(L, v);
            else
                lua_pushstring(L, bh_hrec_str(rec, "key") ? bh_hrec_str(rec, "key") : "?");
            lua_rawseti(L, -2, (lua_Integer)item + 1);
            lua_pop(L, 1);
        } else if (rec->type == BH_REC_STEP_END && bh_hrec_str(rec, "status") &&
                   strcmp(bh_hrec_str(rec, "status"), "ok") == 0) {
            const cJSON *res = bh_hrec_get(rec, "result");
            if (s->each_ref != LUA_NOREF) {
                if (lua_getfield(L, results, s->id) != LUA_TTABLE) {
                    lua_pop(L, 1);
                    lua_newtable(L);
                    lua_pushvalue(L, -1);
                    lua_setfield(L, results, s->id);
                }
                if (res) {
                    bh_luax_push_json(L, res);
                    lua_rawseti(L, -2, (lua_Integer)item + 1);
                }
                lua_pop(L, 1);
            } else if (res) {
                bh_luax_push_json(L, res);
                lua_setfield(L, results, s->id);
            }
        }
    }
    return 0;
}

int bh_replay_fill(bh_replay *r, bh_run *run) {
    fill_ctx fc = {.r = r, .run = run};
    if (bh_run_protected(run, fill_lua, &fc) != LUA_OK)
        return fail(r, 1, "the recorded results do not fit in the runbook's Lua memory");
    return 0;
}

int bh_replay_attach(bh_replay *r, bh_run *run) {
    run->lock_fd = r->lock_fd;
    r->lock_fd = -1;
    int err = r->whole > r->len ? bh_journal_recover_tail(r->jpath, &r->cut, &r->cut_at) : 0;
    if (!err) err = bh_journal_open_append(r->jpath, &run->journal);
    if (err)
        return fail(r, err == -EBADMSG ? 5 : 6, "cannot append to %s: %s", r->jpath,
                    bh_util_strerror(err));
    return 0;
}

void bh_replay_record_cut(bh_replay *r, bh_run *run) {
    if (r->cut == 0) return;
    cJSON *rec = bh_run_record(BH_REC_JOURNAL_RECOVERED, NULL);
    cJSON_AddNumberToObject(rec, "cut_bytes", (double)r->cut);
    cJSON_AddNumberToObject(rec, "offset", (double)r->cut_at);
    bh_run_append(run, rec);
    fprintf(stderr,
            "bulkhead %s: cut a torn last record (%llu bytes at offset %llu) off the journal; "
            "recorded\n",
            r->cmd, (unsigned long long)r->cut, (unsigned long long)r->cut_at);
}

void bh_replay_close(bh_replay *r) {
    if (r->lock_fd >= 0) close(r->lock_fd);
    if (r->owns_dirs) bh_plugin_free_dirs(r->plugin_dirs);
    bh_runbook_free(r->rb);
    bh_history_free(&r->h);
    free(r->jpath);
    free(r->dir);
    memset(r, 0, sizeof *r);
    r->lock_fd = -1;
}
