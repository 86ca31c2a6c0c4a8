#include "run/socket.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "base/util.h"
#include "effects/control.h"
#include "run/gate.h"

struct bh_socket {
    bh_control *control;
    bh_events *events;
    bh_run *run; /* for the gate; never read here */
    char *run_id;
    cJSON *awaiting;    /* step ids waiting for approval */
    cJSON *manual;      /* [{label, step}] manual tasks waiting for a person */
    cJSON *running;     /* labels of the attempts in flight */
    struct tail *tails; /* the end of each running attempt's output */
};

/* The last TAIL_MAX bytes a running attempt's commands wrote (masked, as
 * every output is): what a person following the run wants to see. */
#define TAIL_MAX 2048
struct tail {
    struct tail *next;
    char *label;
    size_t len;
    char buf[TAIL_MAX];
};

static struct tail **tail_of(bh_socket *s, const char *label) {
    struct tail **t = &s->tails;
    while (*t && strcmp((*t)->label, label) != 0)
        t = &(*t)->next;
    return t;
}

static void tail_add(bh_socket *s, const char *label, const char *buf, size_t n) {
    if (!label) return;
    struct tail **at = tail_of(s, label);
    if (!*at) {
        *at = bh_util_xcalloc(1, sizeof **at);
        (*at)->label = bh_util_xstrdup(label);
    }
    struct tail *t = *at;
    if (n >= TAIL_MAX) { /* only its end fits */
        memcpy(t->buf, buf + n - TAIL_MAX, TAIL_MAX);
        t->len = TAIL_MAX;
        return;
    }
    if (t->len + n > TAIL_MAX) { /* drop the oldest bytes */
        size_t drop = t->len + n - TAIL_MAX;
        memmove(t->buf, t->buf + drop, t->len - drop);
        t->len -= drop;
    }
    memcpy(t->buf + t->len, buf, n);
    t->len += n;
}

static void tail_drop(bh_socket *s, const char *label) {
    struct tail **at = label ? tail_of(s, label) : NULL;
    if (!at || !*at) return;
    struct tail *t = *at;
    *at = t->next;
    free(t->label);
    free(t);
}

/* --- what the events say --------------------------------------------- */

static void drop(cJSON *list, const char *key, const char *value) {
    cJSON *x;
    cJSON_ArrayForEach(x, list) {
        const cJSON *v = key ? cJSON_GetObjectItemCaseSensitive(x, key) : x;
        if (cJSON_IsString(v) && value && strcmp(v->valuestring, value) == 0) {
            cJSON_Delete(cJSON_DetachItemViaPointer(list, x));
            return;
        }
    }
}

static void add_label(cJSON *list, const char *label) {
    drop(list, NULL, label); /* once: an instance runs one attempt at a time */
    cJSON_AddItemToArray(list, cJSON_CreateString(label ? label : "?"));
}

static void on_event(void *ud, bh_event *ev) {
    bh_socket *s = ud;
    switch (ev->kind) {
    case BH_EV_APPROVAL_ASKED:
        add_label(s->awaiting, ev->name);
        break;
    case BH_EV_APPROVAL_CLOSED:
        drop(s->awaiting, NULL, ev->name);
        break;
    case BH_EV_MANUAL_ASKED: {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "label", ev->name ? ev->name : "?");
        cJSON_AddStringToObject(m, "step", ev->title ? ev->title : "?");
        cJSON_AddItemToArray(s->manual, m);
        break;
    }
    case BH_EV_MANUAL_ANSWERED:
        drop(s->manual, "label", ev->name);
        break;
    case BH_EV_ATTEMPT_START:
        add_label(s->running, ev->name);
        break;
    case BH_EV_ATTEMPT_END:
    case BH_EV_ATTEMPT_UNRECORDED: /* a task cut off (timed out, stopped) waits no more */
        drop(s->running, NULL, ev->name);
        drop(s->manual, "label", ev->name);
        tail_drop(s, ev->name);
        break;
    case BH_EV_OUTPUT:
        tail_add(s, ev->name, ev->line, ev->len);
        break;
    default:
        break;
    }
}

/* --- requests ---------------------------------------------------------- */

static cJSON *reply(int ok, const char *text) {
    cJSON *r = cJSON_CreateObject();
    cJSON_AddBoolToObject(r, "ok", ok);
    cJSON_AddStringToObject(r, ok ? "message" : "error", text);
    return r;
}

static cJSON *status_reply(const bh_socket *s) {
    char msg[300];
    snprintf(msg, sizeof msg, "run %s", s->run_id);
    cJSON *r = reply(1, msg);
    cJSON_AddItemToObject(r, "awaiting_approval", cJSON_Duplicate(s->awaiting, 1));
    cJSON *man = cJSON_AddArrayToObject(r, "manual");
    const cJSON *m;
    cJSON_ArrayForEach(m, s->manual)
        cJSON_AddItemToArray(man, cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(m, "step"), 0));
    cJSON_AddItemToObject(r, "running", cJSON_Duplicate(s->running, 1));
    cJSON *out = cJSON_AddObjectToObject(r, "output");
    for (const struct tail *t = s->tails; t; t = t->next) {
        char *text = bh_json_from_bytes(t->buf, t->len); /* bytes of any kind, escaped */
        cJSON_AddStringToObject(out, t->label, text);
        free(text);
    }
    return r;
}

static const char *str_field(const cJSON *req, const char *name) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(req, name);
    return cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : NULL;
}

static cJSON *handle(const cJSON *req, const bh_control_peer *peer, void *ud) {
    bh_socket *s = ud;
    const char *op = str_field(req, "op");
    if (!op) return reply(0, "the request has no \"op\"");
    if (strcmp(op, "status") == 0) return status_reply(s);
    char msg[600];
    int ok =
        bh_gate_answer(s->run, op, str_field(req, "step"), str_field(req, "as"),
                       str_field(req, "reason"), str_field(req, "note"), peer, msg, sizeof msg);
    return reply(ok, msg);
}

int bh_socket_start(uv_loop_t *loop, const char *dir, gid_t group, bh_events *events, bh_run *run,
                    const char *run_id, bh_socket **out) {
    bh_socket *s = bh_util_xcalloc(1, sizeof *s);
    s->events = events;
    s->run = run;
    s->run_id = bh_util_xstrdup(run_id ? run_id : "?");
    s->awaiting = cJSON_CreateArray();
    s->manual = cJSON_CreateArray();
    s->running = cJSON_CreateArray();
    int err = bh_control_start(loop, dir, group, handle, s, &s->control);
    if (err) {
        s->control = NULL;
        bh_socket_stop(s);
        *out = NULL;
        return err;
    }
    bh_events_subscribe(events, on_event, s);
    *out = s;
    return 0;
}

void bh_socket_stop(bh_socket *s) {
    if (!s) return;
    if (s->control) bh_events_unsubscribe(s->events, on_event, s);
    bh_control_stop(s->control);
    cJSON_Delete(s->awaiting);
    cJSON_Delete(s->manual);
    cJSON_Delete(s->running);
    while (s->tails)
        tail_drop(s, s->tails->label);
    free(s->run_id);
    free(s);
}
