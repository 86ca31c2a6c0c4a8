#include "load/sim.h"

#include "journal/schema.h"

#include <math.h>
#include <signal.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "journal/history.h"
#include "journal/journal.h"
#include "base/util.h"

const char *bh_sim_mode(const bh_sim *sim) {
    return sim && sim->drill ? "drill" : "dry-run";
}

static int listed(const char **v, const char *id) {
    for (size_t k = 0; v && v[k]; k++)
        if (strcmp(v[k], id) == 0) return 1;
    return 0;
}

static const bh_sim_rule *rule(const bh_sim_rule *v, size_t n, const char *id) {
    for (size_t k = 0; k < n; k++)
        if (strcmp(v[k].step, id) == 0) return &v[k];
    return NULL;
}

void bh_sim_fault_fields(cJSON *rec, const bh_fault *f) {
    static const char *const kinds[] = {"none", "fail", "timeout", "slow"};
    cJSON_AddStringToObject(rec, "kind", kinds[f->kind]);
    if (f->kind == BH_FAULT_SLOW) cJSON_AddNumberToObject(rec, "factor", f->factor);
    cJSON_AddStringToObject(rec, "source", f->source);
}

double bh_sim_uniform(const bh_sim *sim, const char *what, const char *step, const char *key,
                      int attempt) {
    /* BLAKE2b of (seed, what, step, key, attempt): the same names give the
     * same number whatever order attempts happen to start in. */
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 8);
    uint64_t seed = sim ? sim->seed : 0;
    crypto_generichash_update(&st, (const unsigned char *)&seed, sizeof seed);
    crypto_generichash_update(&st, (const unsigned char *)what, strlen(what) + 1);
    crypto_generichash_update(&st, (const unsigned char *)step, strlen(step) + 1);
    if (!key) key = "";
    crypto_generichash_update(&st, (const unsigned char *)key, strlen(key) + 1);
    uint64_t n = (uint64_t)attempt;
    crypto_generichash_update(&st, (const unsigned char *)&n, sizeof n);
    unsigned char out[8];
    crypto_generichash_final(&st, out, sizeof out);
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | out[i];
    return (double)(v >> 11) / (double)(1ull << 53);
}

bh_fault bh_sim_fault(const bh_sim *sim, const bh_step *s, const char *key, int attempt) {
    bh_fault f = {BH_FAULT_NONE, 1.0, NULL};
    if (!sim || !sim->drill) return f;
    if (listed(sim->fail, s->id)) return (bh_fault){BH_FAULT_FAIL, 1.0, "--fail"};
    if (listed(sim->timeout, s->id)) return (bh_fault){BH_FAULT_TIMEOUT, 1.0, "--timeout"};
    const bh_sim_rule *r = rule(sim->flaky, sim->nflaky, s->id);
    if (r && bh_sim_uniform(sim, "flaky", s->id, key, attempt) < r->value)
        return (bh_fault){BH_FAULT_FAIL, 1.0, "--flaky"};
    if (sim->chaos > 0 && bh_sim_uniform(sim, "chaos", s->id, key, attempt) < sim->chaos) {
        double pick = bh_sim_uniform(sim, "chaos-kind", s->id, key, attempt);
        if (pick < 0.5) return (bh_fault){BH_FAULT_FAIL, 1.0, "--chaos"};
        if (pick < 0.75) return (bh_fault){BH_FAULT_TIMEOUT, 1.0, "--chaos"};
        return (bh_fault){BH_FAULT_SLOW, 3.0, "--chaos"};
    }
    r = rule(sim->slow, sim->nslow, s->id);
    if (r) return (bh_fault){BH_FAULT_SLOW, r->value, "--slow"};
    return f;
}

double bh_sim_estimate(const bh_sim *sim, const bh_step *s, const char **source) {
    *source = NULL;
    if (s->estimate_ms >= 0) {
        *source = "runbook";
        return s->estimate_ms;
    }
    const cJSON *h = sim ? cJSON_GetObjectItemCaseSensitive(sim->history, s->id) : NULL;
    if (h && cJSON_IsNumber(h)) {
        *source = "history";
        return h->valuedouble;
    }
    return 0;
}

const cJSON *bh_sim_script(const bh_sim *sim, const bh_step *s) {
    const cJSON *flag = sim ? cJSON_GetObjectItemCaseSensitive(sim->scripts, s->id) : NULL;
    return flag ? flag : s->simulate;
}

static cJSON *names(const char **v) {
    cJSON *a = cJSON_CreateArray();
    for (size_t k = 0; v && v[k]; k++)
        cJSON_AddItemToArray(a, cJSON_CreateString(v[k]));
    return a;
}

static cJSON *rules(const bh_sim_rule *v, size_t n) {
    cJSON *o = cJSON_CreateObject();
    for (size_t k = 0; k < n; k++)
        cJSON_AddNumberToObject(o, v[k].step, v[k].value);
    return o;
}

cJSON *bh_sim_to_json(const bh_sim *sim) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "mode", bh_sim_mode(sim));
    /* A seed is up to 2^64: as text, a double would round it. */
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)sim->seed);
    cJSON_AddStringToObject(j, "seed", seed);
    cJSON_AddItemToObject(j, "fail", names(sim->fail));
    cJSON_AddItemToObject(j, "timeout", names(sim->timeout));
    cJSON_AddItemToObject(j, "slow", rules(sim->slow, sim->nslow));
    cJSON_AddItemToObject(j, "flaky", rules(sim->flaky, sim->nflaky));
    cJSON_AddNumberToObject(j, "chaos", sim->chaos);
    cJSON_AddNumberToObject(j, "approval_wait_ms", sim->approval_wait_ms);
    cJSON_AddItemToObject(j, "simulate",
                          sim->scripts ? cJSON_Duplicate(sim->scripts, 1) : cJSON_CreateObject());
    cJSON_AddItemToObject(j, "history",
                          sim->history ? cJSON_Duplicate(sim->history, 1) : cJSON_CreateObject());
    return j;
}

static const char **names_from(const cJSON *a) {
    int n = cJSON_GetArraySize(a);
    const char **v = bh_util_xcalloc((size_t)n + 1, sizeof *v);
    size_t k = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, a) if (cJSON_IsString(x)) v[k++] = x->valuestring;
    return v;
}

static bh_sim_rule *rules_from(const cJSON *o, size_t *n) {
    *n = 0;
    bh_sim_rule *v = bh_util_xcalloc((size_t)cJSON_GetArraySize(o) + 1, sizeof *v);
    const cJSON *x;
    cJSON_ArrayForEach(x, o) if (cJSON_IsNumber(x) && x->string) v[(*n)++] =
        (bh_sim_rule){x->string, x->valuedouble};
    return v;
}

void bh_sim_from_json(bh_sim *sim, const cJSON *j) {
    memset(sim, 0, sizeof *sim);
    sim->drill = bh_journal_str(j, "mode") && strcmp(bh_journal_str(j, "mode"), "drill") == 0;
    const char *seed = bh_journal_str(j, "seed");
    sim->seed = seed ? strtoull(seed, NULL, 10) : 0;
    sim->fail = names_from(cJSON_GetObjectItemCaseSensitive(j, "fail"));
    sim->timeout = names_from(cJSON_GetObjectItemCaseSensitive(j, "timeout"));
    sim->slow = rules_from(cJSON_GetObjectItemCaseSensitive(j, "slow"), &sim->nslow);
    sim->flaky = rules_from(cJSON_GetObjectItemCaseSensitive(j, "flaky"), &sim->nflaky);
    sim->chaos = bh_journal_num(j, "chaos", 0);
    sim->approval_wait_ms = bh_journal_num(j, "approval_wait_ms", 0);
    const cJSON *sc = cJSON_GetObjectItemCaseSensitive(j, "simulate");
    sim->scripts = sc ? cJSON_Duplicate(sc, 1) : NULL;
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(j, "history");
    sim->history = h ? cJSON_Duplicate(h, 1) : NULL;
}

void bh_sim_free(bh_sim *sim) {
    if (!sim) return;
    free(sim->fail);
    free(sim->timeout);
    free(sim->slow);
    free(sim->flaky);
    cJSON_Delete(sim->scripts);
    cJSON_Delete(sim->history);
    memset(sim, 0, sizeof *sim);
}

/* --- history ------------------------------------------------------------ */

typedef struct {
    const char *id;
    int match;        /* this journal is a real run of the runbook */
    cJSON *durations; /* step -> [ms, ...] */
} history_ctx;

static int history_record(const bh_hrec *rec, void *ud) {
    history_ctx *h = ud;
    if (rec->type == BH_REC_RUN_START) {
        const cJSON *rb = bh_hrec_get(rec, "runbook");
        const char *mode = bh_hrec_str(rec, "mode");
        h->match = bh_journal_str(rb, "id") && strcmp(bh_journal_str(rb, "id"), h->id) == 0 &&
                   mode && strcmp(mode, "real") == 0;
        return h->match ? 0 : 1; /* not ours: stop reading */
    }
    if (!h->match || rec->type != BH_REC_STEP_END) return 0;
    const char *st = bh_hrec_str(rec, "status");
    const char *step = rec->step;
    if (!st || strcmp(st, "ok") != 0 || !step) return 0;
    cJSON *list = cJSON_GetObjectItemCaseSensitive(h->durations, step);
    if (!list) list = cJSON_AddArrayToObject(h->durations, step);
    cJSON_AddItemToArray(list, cJSON_CreateNumber(bh_hrec_num(rec, "duration_ms", 0)));
    return 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

cJSON *bh_sim_history(const char *state_dir, const char *id) {
    char *runs = bh_util_asprintf("%s/runs", state_dir);
    history_ctx h = {.id = id, .durations = cJSON_CreateObject()};
    size_t nruns = 0;
    char **names = bh_util_list_names(runs, &nruns); /* oldest first: ids start with the time */
    for (size_t i = 0; i < nruns; i++) {
        char *path = bh_util_asprintf("%s/%s/journal.jsonl", runs, names[i]);
        h.match = 0;
        bh_history_each(path, history_record, &h);
        free(path);
    }
    bh_util_free_names(names, nruns);
    free(runs);
    cJSON *out = NULL;
    const cJSON *list;
    cJSON_ArrayForEach(list, h.durations) {
        int n = cJSON_GetArraySize(list);
        double *v = bh_util_xcalloc((size_t)n, sizeof *v);
        for (int i = 0; i < n; i++)
            v[i] = cJSON_GetArrayItem(list, i)->valuedouble;
        qsort(v, (size_t)n, sizeof *v, cmp_double);
        double median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
        free(v);
        if (!out) out = cJSON_CreateObject();
        cJSON_AddNumberToObject(out, list->string, round(median));
    }
    cJSON_Delete(h.durations);
    return out;
}

/* --- simulated effects -------------------------------------------------- */

typedef struct {
    bh_fx fx;
    bh_clock *clock;
} sim_fx;

typedef struct {
    sim_fx *fx;
    bh_timer *timer;
    bh_exec_cb cb;
    void *ud;
    int exit_code, cancelled, hard;
    char *out[2];
    double started;
} sim_op;

static void stream_of(bh_exec_stream *s, char *data) {
    s->data = data;
    s->len = strlen(data);
    s->total = s->len;
    s->stored = 0; /* nothing is written to a file in a simulation */
    bh_util_sha256_hex(data, s->len, s->sha256);
}

static void sim_done(void *ud) {
    sim_op *op = ud;
    bh_timer_stop(op->timer);
    op->timer = NULL;
    bh_exec_result res;
    memset(&res, 0, sizeof res);
    res.pid = 0;
    res.cancelled = op->cancelled;
    if (op->cancelled) {
        res.term_signal = op->hard ? SIGKILL : SIGTERM;
        res.killed = op->hard;
    } else {
        res.exit_code = op->exit_code;
    }
    res.duration_ms = bh_clock_now_ms(op->fx->clock) - op->started;
    stream_of(&res.out[0], op->out[0]);
    stream_of(&res.out[1], op->out[1]);
    op->cb(&res, op->ud);
    free(op->out[0]);
    free(op->out[1]);
    free(op);
}

static char *script_text(const cJSON *script, const char *key) {
    const char *v = bh_journal_str(script, key);
    return bh_util_xstrdup(v ? v : "");
}

static int sim_exec(bh_fx *fx, const bh_exec_req *req, bh_exec_cb cb, void *ud, bh_fx_op **out) {
    sim_fx *sf = (sim_fx *)fx;
    sim_op *op = bh_util_xcalloc(1, sizeof *op);
    op->fx = sf;
    op->cb = cb;
    op->ud = ud;
    op->exit_code = (int)bh_journal_num(req->sim_script, "exit", 0);
    op->out[0] = script_text(req->sim_script, "stdout");
    op->out[1] = script_text(req->sim_script, "stderr");
    op->started = bh_clock_now_ms(sf->clock);
    /* Later, from the loop, never from inside this call (fx.h). */
    op->timer = bh_timer_start(sf->clock, 0, 0, sim_done, op);
    *out = (bh_fx_op *)op;
    return 0;
}

static void sim_cancel(bh_fx *fx, bh_fx_op *o, int hard) {
    (void)fx;
    sim_op *op = (sim_op *)o;
    if (!op) return;
    op->cancelled = 1;
    op->hard |= hard;
}

/* A request: nothing is sent; it succeeds (200, 250, connected) with the
 * step's scripted status and body, on the clock. */
typedef struct {
    sim_fx *fx;
    bh_timer *timer;
    bh_net_cb cb;
    void *ud;
    long status;
    int cancelled;
    char *body;
    double started;
} sim_req;

static void sim_req_done(void *ud) {
    sim_req *q = ud;
    bh_timer_stop(q->timer);
    bh_net_result res;
    memset(&res, 0, sizeof res);
    res.status = q->cancelled ? 0 : q->status;
    res.cancelled = q->cancelled;
    res.failed = q->cancelled;
    res.sent = 1; /* as if it had gone out: a drill shows what a cut-off request leaves */
    if (q->cancelled) snprintf(res.error, sizeof res.error, "cancelled");
    res.headers = (char *)"";
    res.body = q->body;
    res.body_len = strlen(q->body);
    res.total = res.body_len;
    bh_util_sha256_hex(q->body, res.body_len, res.sha256);
    res.duration_ms = bh_clock_now_ms(q->fx->clock) - q->started;
    q->cb(&res, q->ud);
    free(q->body);
    free(q);
}

static int sim_request(bh_fx *fx, const bh_net_req *req, bh_net_cb cb, void *ud, bh_fx_op **out) {
    sim_fx *sf = (sim_fx *)fx;
    sim_req *q = bh_util_xcalloc(1, sizeof *q);
    q->fx = sf;
    q->cb = cb;
    q->ud = ud;
    const cJSON *script = req->sim_script;
    long def = req->kind == BH_NET_HTTP ? 200 : req->kind == BH_NET_MAIL ? 250 : 0;
    q->status = (long)bh_journal_num(script, "status", (double)def);
    q->body = script_text(script, "body");
    q->started = bh_clock_now_ms(sf->clock);
    q->timer = bh_timer_start(sf->clock, 0, 0, sim_req_done, q);
    *out = (bh_fx_op *)q;
    return 0;
}

static void sim_cancel_request(bh_fx *fx, bh_fx_op *o) {
    (void)fx;
    if (o) ((sim_req *)o)->cancelled = 1;
}

static int64_t sim_pid(bh_fx *fx, const bh_fx_op *op) {
    (void)fx;
    (void)op;
    return 0;
}

static void sim_destroy(bh_fx *fx) {
    free(fx);
}

bh_fx *bh_fx_sim(uv_loop_t *loop, bh_clock *clock, const char *mode) {
    sim_fx *sf = bh_util_xcalloc(1, sizeof *sf);
    sf->fx.mode = mode;
    sf->fx.exec = sim_exec;
    sf->fx.cancel = sim_cancel;
    sf->fx.pid = sim_pid;
    sf->fx.destroy = sim_destroy;
    sf->fx.request = sim_request;
    sf->fx.cancel_request = sim_cancel_request;
    sf->fx.loop = loop;
    sf->clock = clock;
    return &sf->fx;
}
