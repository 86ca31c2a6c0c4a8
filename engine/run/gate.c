#include "run/gate.h"
#include "run/run.h"

#include "journal/schema.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "load/sim.h"
#include "base/util.h"

/* The terminal prompt: one question at a time, answered by a line. */
struct bh_gate {
    uv_tty_t tty;
    int reading;
    char line[1024];
    size_t len;
    uint64_t asked; /* what the question on screen is about: ... */
    int asked_kind; /* 0 none, 1 approval of step `asked`, 2 manual attempt serial `asked` */
};

/* Who decided. An OS account is one person: approvals count distinct
 * uids. A simulated approver has no account of its own (every one of them
 * is the engine's), nor has one read back from a journal written before
 * uids were recorded for every path: those are told apart by name only. */
struct bh_approver {
    uid_t uid; /* recorded; the identity only when has_uid */
    int has_uid;
    char name[BH_UTIL_NAME_MAX + 1]; /* trimmed (bh_util_clean_name) */
};

static struct bh_approver person(const char *name, uid_t uid, int has_uid) {
    struct bh_approver p = {.uid = uid, .has_uid = has_uid};
    snprintf(p.name, sizeof p.name, "%s", name);
    return p;
}

/* The operator at the terminal or with --approve/--yes: the engine's own
 * (real) uid, under the operator's name. */
static struct bh_approver operator_person(const bh_run *run) {
    return person(run->operator_name, getuid(), 1);
}

static void stop_approval_timer(bh_step_rt *rt) {
    bh_timer_stop(rt->approval_timer);
    rt->approval_timer = NULL;
}

/* Who decided and how, on every record of a person's decision: the name,
 * the account (uid) whatever the path, and the caller's pid when it came
 * through the socket. */
static void add_person(cJSON *rec, const struct bh_approver *who, const char *how,
                       const bh_control_peer *peer) {
    cJSON_AddStringToObject(rec, "by", who->name);
    cJSON_AddStringToObject(rec, "how", how);
    cJSON_AddNumberToObject(rec, "uid", (double)who->uid);
    if (peer) cJSON_AddNumberToObject(rec, "pid", (double)peer->pid);
}

static void record_decision(bh_run *run, size_t index, const char *decision,
                            const struct bh_approver *who, const char *reason, const char *how,
                            const bh_control_peer *peer) {
    const bh_step *s = &run->rb->steps[index];
    cJSON *rec = bh_run_record(BH_REC_APPROVAL, NULL);
    cJSON_AddStringToObject(rec, "step", s->id);
    cJSON_AddStringToObject(rec, "decision", decision);
    add_person(rec, who, how, peer);
    cJSON_AddStringToObject(rec, "reason", reason ? reason : "");
    cJSON_AddNumberToObject(rec, "approvals", run->rt[index].napprovers);
    cJSON_AddNumberToObject(rec, "needed", s->approvers);
    bh_run_append(run, rec);
    bh_events_approval_given(run->events, s->id, decision, who->name,
                             (size_t)run->rt[index].napprovers);
    char msg[600];
    bh_redact_snprintf(
        bh_keyring_mask(run->rb->keyring), msg, sizeof msg, "%s: %s by %s, uid %u (%s%s%s)", s->id,
        strcmp(decision, "approve") == 0 ? "approved" : "denied", who->name, (unsigned)who->uid,
        how, reason && *reason ? ": " : "", reason ? reason : "");
    bh_events_notice(run->events, msg);
}

/* The approval already counted that one by `who` would repeat, or NULL.
 * The account decides (one uid is one person, whatever name it gives);
 * a name counts once too, compared without regard to case, so that one
 * person holding two accounts (their own, and root through sudo) does not
 * pass for two under one name. */
static const struct bh_approver *counted(const bh_step_rt *rt, const struct bh_approver *who) {
    for (int k = 0; k < rt->napprovers; k++) {
        const struct bh_approver *a = &rt->approvers[k];
        if ((a->has_uid && who->has_uid && a->uid == who->uid) ||
            strcasecmp(a->name, who->name) == 0)
            return a;
    }
    return NULL;
}

/* Why an approval by `who` does not count, `was` being the one it repeats. */
static void not_again(const struct bh_approver *was, const struct bh_approver *who,
                      const bh_step *s, char *err, size_t errlen) {
    if (was->has_uid && who->has_uid && was->uid == who->uid &&
        strcasecmp(was->name, who->name) != 0)
        snprintf(err, errlen,
                 "uid %u already approved step '%s' as %s: one account is one person, whatever "
                 "name it gives; not counted as %s",
                 (unsigned)who->uid, s->id, was->name, who->name);
    else if (was->has_uid && who->has_uid && was->uid == who->uid)
        snprintf(err, errlen,
                 "%s (uid %u) already approved step '%s'; it needs %d approvals from different "
                 "people (different accounts)",
                 was->name, (unsigned)was->uid, s->id, s->approvers);
    else
        snprintf(err, errlen,
                 "an approval by %s already counts for step '%s'; the same name from another "
                 "account (uid %u) is not another person",
                 was->name, s->id, (unsigned)who->uid);
}

static void prompt_next(bh_run *run);

/* A decision on step index. Returns 0, or -1 with why it cannot be taken
 * (then nothing is recorded or counted). */
static int decide(bh_run *run, size_t index, int approve, const struct bh_approver *who,
                  const char *reason, const char *how, const bh_control_peer *peer, char *err,
                  size_t errlen) {
    bh_step_rt *rt = &run->rt[index];
    const bh_step *s = &run->rb->steps[index];
    if (!rt->awaiting) {
        snprintf(err, errlen, "step '%s' is no longer waiting for approval", s->id);
        return -1;
    }
    if (approve) {
        const struct bh_approver *was = counted(rt, who);
        if (was) {
            not_again(was, who, s, err, errlen);
            return -1;
        }
        rt->approvers =
            realloc(rt->approvers, ((size_t)rt->napprovers + 1) * sizeof *rt->approvers);
        if (!rt->approvers) abort();
        rt->approvers[rt->napprovers++] = *who;
    }
    record_decision(run, index, approve ? "approve" : "deny", who, reason, how, peer);
    if (!approve) {
        stop_approval_timer(rt);
        char msg[600];
        bh_redact_snprintf(bh_keyring_mask(run->rb->keyring), msg, sizeof msg,
                           "approval for step '%s' was denied by %s (%s)%s%s", s->id, who->name,
                           how, reason && *reason ? ": " : "", reason ? reason : "");
        run->sched->end_step(run, index, BH_STEP_FAILED, "denied", msg);
    } else if (rt->napprovers >= s->approvers) {
        stop_approval_timer(rt);
        run->sched->approved(run, index);
    } else {
        char msg[300];
        snprintf(msg, sizeof msg,
                 "%s: %d of %d approvals; another person must approve, from another account", s->id,
                 rt->napprovers, s->approvers);
        bh_events_notice(run->events, msg);
    }
    if (run->gate && run->gate->asked_kind == 1 && run->gate->asked == index && !rt->awaiting)
        run->gate->asked_kind = 0;
    prompt_next(run);
    return 0;
}

/* The step is no longer asked about: a question about it on the terminal
 * is stale. */
static void forget_question(bh_run *run, size_t index) {
    if (run->gate && run->gate->asked_kind == 1 && run->gate->asked == index)
        run->gate->asked_kind = 0;
}

static void approval_timed_out(void *ud) {
    bh_run *run = ((bh_step_ref *)ud)->run;
    size_t index = ((bh_step_ref *)ud)->index;
    const bh_step *s = &run->rb->steps[index];
    char t_text[32], why[128], err[300];
    bh_util_format_duration(s->approve_timeout_ms, t_text, sizeof t_text);
    snprintf(why, sizeof why, "no decision within %s", t_text);
    stop_approval_timer(&run->rt[index]);
    /* The engine decides, as the runbook said: its account, no person. */
    struct bh_approver engine = person("timeout", getuid(), 0);
    if (s->approve_on_timeout) {
        /* The runbook said so: approvals still missing are waived. */
        record_decision(run, index, "approve", &engine, why, "timeout", NULL);
        forget_question(run, index);
        run->sched->approved(run, index);
        prompt_next(run);
    } else {
        decide(run, index, 0, &engine, why, "timeout", NULL, err, sizeof err);
    }
}

/* A dry run or drill: every approval a step needs is given, by the
 * simulation, after the drill's --approval-wait. Simulated approvers stand
 * for different people (all are the engine's uid): told apart by name,
 * skipping names a resumed drill had already counted. */
static void simulated_approvals(void *ud) {
    bh_run *run = ((bh_step_ref *)ud)->run;
    size_t index = ((bh_step_ref *)ud)->index;
    bh_step_rt *rt = &run->rt[index];
    stop_approval_timer(rt);
    int tries = run->rb->steps[index].approvers + rt->napprovers;
    for (int k = 1; rt->awaiting && k <= tries; k++) {
        char by[32], err[300];
        snprintf(by, sizeof by, k == 1 ? "simulation" : "simulation-%d", k);
        struct bh_approver sim = person(by, getuid(), 0);
        decide(run, index, 1, &sim, "a dry run or drill approves every step it reaches",
               "simulated", NULL, err, sizeof err);
    }
}

static int flagged(const bh_run *run, const char *id) {
    if (run->opts->yes) return 1;
    for (const char **p = run->opts->approve; p && *p; p++)
        if (strcmp(*p, id) == 0) return 1;
    return 0;
}

void bh_gate_ask(bh_run *run, size_t index) {
    const bh_step *s = &run->rb->steps[index];
    bh_step_rt *rt = &run->rt[index];
    rt->awaiting = 1;
    cJSON *rec = bh_run_record(BH_REC_APPROVAL_WAIT, NULL);
    cJSON_AddStringToObject(rec, "step", s->id);
    cJSON_AddStringToObject(rec, "reason", s->approve);
    cJSON_AddNumberToObject(rec, "needed", s->approvers);
    cJSON_AddNumberToObject(rec, "timeout_ms", s->approve_timeout_ms);
    cJSON_AddStringToObject(rec, "on_timeout", s->approve_on_timeout ? "approve" : "deny");
    bh_run_append(run, rec);
    bh_events_approval_asked(run->events, s->id, s->approve, (size_t)s->approvers);
    if (run->opts->sim) {
        /* Approvers slower than the step's approve_timeout: the timeout
         * decides, as it would in a real run (on_approval_timeout). */
        double wait = run->opts->sim->approval_wait_ms;
        int late = s->approve_timeout_ms > 0 && wait >= s->approve_timeout_ms;
        rt->approval_timer =
            bh_timer_start(run->clock, late ? s->approve_timeout_ms : wait, 0,
                           late ? approval_timed_out : simulated_approvals, &run->refs[index]);
        return;
    }
    if (flagged(run, s->id)) {
        struct bh_approver op = operator_person(run);
        char err[300];
        /* refused only when a resumed run already counts the operator */
        if (decide(run, index, 1, &op,
                   run->opts->yes ? "--yes given when the run started"
                                  : "--approve given when the run started",
                   "flag", NULL, err, sizeof err) != 0)
            bh_events_notice(run->events, err);
        if (!rt->awaiting) return;
    }
    char t[32], msg[2048];
    bh_util_format_duration(s->approve_timeout_ms, t, sizeof t);
    int used = snprintf(msg, sizeof msg,
                        "approval needed for '%s': %s\n"
                        "      approve: bulkhead approve %s %s --as NAME --reason TEXT\n"
                        "      deny:    bulkhead deny %s %s --as NAME --reason TEXT\n",
                        s->id, s->approve, run->id, s->id, run->id, s->id);
    /* Other accounts cannot list the state directory: they name the folder. */
    char *folder = run->opts->approvers_group ? realpath(run->dir, NULL) : NULL;
    if (folder && used > 0 && (size_t)used < sizeof msg)
        used += snprintf(msg + used, sizeof msg - (size_t)used,
                         "      from another account in group %s: bulkhead approve %s %s --as "
                         "NAME --reason TEXT\n",
                         run->opts->approvers_group, folder, s->id);
    free(folder);
    if (used > 0 && (size_t)used < sizeof msg)
        snprintf(msg + used, sizeof msg - (size_t)used,
                 "      (%d approver%s; no decision within %s counts as %s)", s->approvers,
                 s->approvers > 1 ? "s, each from a different account" : "", t,
                 s->approve_on_timeout ? "approval" : "a denial");
    bh_events_notice(run->events, msg);
    rt->approval_timer =
        bh_timer_start(run->clock, s->approve_timeout_ms, 0, approval_timed_out, &run->refs[index]);
    prompt_next(run);
}

/* --- manual tasks ------------------------------------------------------ */

static void finish_manual(bh_attempt *a, int ok, const struct bh_approver *who, const char *note,
                          const char *how, const bh_control_peer *peer);

/* A simulated person: done (or failed, as the drill says) once the step's
 * estimate has passed. */
static void simulated_manual(void *ud) {
    bh_attempt *a = ud;
    bh_timer_stop(a->sleep_timer);
    a->sleep_timer = NULL;
    int ok = a->sim_factor >= 0;
    struct bh_approver sim = person("simulation", getuid(), 0);
    finish_manual(a, ok, &sim,
                  ok ? "simulated: the checklist is taken as done" : "drill: injected failure",
                  "simulated", NULL);
}

static void simulate_manual(bh_attempt *a) {
    bh_run *run = a->run;
    const bh_sim *sim = run->opts->sim;
    bh_fault f = bh_run_draw_fault(a);
    const char *src;
    double ms = bh_sim_estimate(sim, a->step, &src) * (f.kind == BH_FAULT_SLOW ? f.factor : 1);
    a->sim_factor = f.kind == BH_FAULT_FAIL ? -1 : 1;
    /* A timeout: nobody ever answers, the step's timeout ends it. */
    if (f.kind == BH_FAULT_TIMEOUT) ms = bh_run_hang_ms(a);
    a->waiting = BH_WAIT_SLEEP; /* interrupting it stops the timer (sched.c) */
    a->sleep_timer = bh_timer_start(run->clock, ms, 0, simulated_manual, a);
}

void bh_gate_manual(bh_attempt *a) {
    bh_run *run = a->run;
    if (run->opts->sim) {
        simulate_manual(a);
        return;
    }
    a->waiting = BH_WAIT_PERSON;
    bh_events_manual_asked(run->events, a->label, a->step->id);
    char msg[2048];
    size_t used = (size_t)snprintf(msg, sizeof msg, "manual task '%s':", a->step->id);
    for (size_t k = 0; k < a->step->nchecklist && used < sizeof msg; k++)
        used += (size_t)snprintf(msg + used, sizeof msg - used, "\n      [ ] %s",
                                 a->step->checklist[k]);
    if (used < sizeof msg)
        snprintf(msg + used, sizeof msg - used,
                 "\n      when done: bulkhead done %s %s --note TEXT (--failed if it could not "
                 "be done)",
                 run->id, a->step->id);
    bh_events_notice(run->events, msg);
    prompt_next(run);
}

static void finish_manual(bh_attempt *a, int ok, const struct bh_approver *who, const char *note,
                          const char *how, const bh_control_peer *peer) {
    bh_run *run = a->run;
    const char *by = who->name;
    cJSON *rec = bh_run_record(BH_REC_MANUAL, a);
    cJSON_AddStringToObject(rec, "outcome", ok ? "done" : "failed");
    add_person(rec, who, how, peer);
    cJSON_AddStringToObject(rec, "note", note ? note : "");
    bh_run_append(run, rec);
    bh_events_manual_answered(run->events, a->label, ok ? "done" : "failed", by);
    a->waiting = BH_WAIT_NONE;
    cJSON *result = cJSON_CreateObject();
    cJSON_AddStringToObject(result, "by", by);
    cJSON_AddStringToObject(result, "note", note ? note : "");
    char msg[600];
    bh_redact_snprintf(bh_keyring_mask(run->rb->keyring), msg, sizeof msg,
                       "manual task '%s' marked failed by %s: %s", a->step->id, by,
                       note ? note : "");
    a->run->sched->finish(a, ok, result, "manual_failed", msg);
}

static bh_attempt *manual_waiting(bh_run *run, const char *id) {
    for (bh_attempt *a = run->attempts; a; a = a->next)
        if (a->kind == BH_RUN_MANUAL && a->waiting == BH_WAIT_PERSON &&
            (!id || strcmp(a->step->id, id) == 0))
            return a;
    return NULL;
}

void bh_gate_forget(bh_attempt *a) {
    bh_run *run = a->run;
    if (run->gate && run->gate->asked_kind == 2 && run->gate->asked == a->serial) {
        run->gate->asked_kind = 0;
        /* Asked from elsewhere (the socket, a timeout): the next question. */
        prompt_next(run);
    }
}

void bh_gate_cancel_all(bh_run *run, const char *reason) {
    for (size_t i = 0; i < run->rb->nsteps; i++) {
        bh_step_rt *rt = &run->rt[i];
        if (!rt->awaiting) continue;
        stop_approval_timer(rt);
        forget_question(run, i);
        char msg[400];
        snprintf(msg, sizeof msg, "step '%s' was waiting for approval when %s",
                 run->rb->steps[i].id, reason);
        run->sched->end_step(run, i, BH_STEP_CANCELLED, "cancelled", msg);
    }
}

void bh_gate_restore(bh_run *run, size_t index, const cJSON *approvals) {
    bh_step_rt *rt = &run->rt[index];
    const cJSON *rec;
    cJSON_ArrayForEach(rec, approvals) {
        const cJSON *by = cJSON_GetObjectItemCaseSensitive(rec, "by");
        const cJSON *uid = cJSON_GetObjectItemCaseSensitive(rec, "uid");
        const cJSON *how = cJSON_GetObjectItemCaseSensitive(rec, "how");
        char name[BH_UTIL_NAME_MAX + 1];
        if (!cJSON_IsString(by) || bh_util_clean_name(by->valuestring, name)) name[0] = '\0';
        /* a simulated approver's uid is the engine's: its name is who it is */
        int has_uid = cJSON_IsNumber(uid) && uid->valuedouble >= 0 &&
                      !(cJSON_IsString(how) && strcmp(how->valuestring, "simulated") == 0);
        struct bh_approver p = person(name, has_uid ? (uid_t)uid->valuedouble : 0, has_uid);
        if (!p.name[0] && !p.has_uid) continue; /* names no one: counts for no one */
        rt->approvers =
            realloc(rt->approvers, ((size_t)rt->napprovers + 1) * sizeof *rt->approvers);
        if (!rt->approvers) abort();
        rt->approvers[rt->napprovers++] = p;
    }
}

void bh_gate_free_all(bh_run *run) {
    for (size_t i = 0; i < run->rb->nsteps; i++) {
        bh_step_rt *rt = &run->rt[i];
        free(rt->approvers);
        rt->approvers = NULL;
        rt->napprovers = 0;
    }
}

/* --- answers from the control socket ----------------------------------- */

static int say(char *msg, size_t len, int ok, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int say(char *msg, size_t len, int ok, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, len, fmt, ap);
    va_end(ap);
    return ok;
}

static int answer_approval(bh_run *run, const char *op, const char *step,
                           const struct bh_approver *who, const char *why,
                           const bh_control_peer *peer, char *msg, size_t len) {
    if (!why) return say(msg, len, 0, "give a reason (--reason TEXT): it goes in the record");
    size_t index = bh_model_step_index(run->rb, step);
    if (index == (size_t)-1) return say(msg, len, 0, "run %s has no step '%s'", run->id, step);
    if (!run->rt[index].awaiting)
        return say(msg, len, 0, "step '%s' is not waiting for approval (status %s)", step,
                   bh_step_status_name(run->status[index]));
    int approve = strcmp(op, "approve") == 0;
    char err[400];
    if (decide(run, index, approve, who, why, "socket", peer, err, sizeof err) != 0)
        return say(msg, len, 0, "%s", err);
    return say(msg, len, 1, "%s: %s by %s (uid %u)", step, approve ? "approved" : "denied",
               who->name, (unsigned)who->uid);
}

int bh_gate_answer(bh_run *run, const char *op, const char *step, const char *as, const char *why,
                   const char *note, const bh_control_peer *peer, char *msg, size_t len) {
    if (!step) return say(msg, len, 0, "name the step");
    if (!as) return say(msg, len, 0, "say who you are (--as NAME)");
    char name[BH_UTIL_NAME_MAX + 1];
    const char *bad = bh_util_clean_name(as, name);
    if (bad) return say(msg, len, 0, "--as: the name cannot be used: %s", bad);
    /* the caller's account is who they are; the name is how they sign */
    struct bh_approver who = person(name, peer->uid, 1);
    if (run->done || run->stopping) return say(msg, len, 0, "run %s is stopping", run->id);
    if (strcmp(op, "approve") == 0 || strcmp(op, "deny") == 0)
        return answer_approval(run, op, step, &who, why, peer, msg, len);
    if (strcmp(op, "done") == 0 || strcmp(op, "fail") == 0) {
        bh_attempt *a = manual_waiting(run, step);
        if (!a)
            return say(msg, len, 0, "step '%s' is not a manual task waiting for a person", step);
        int ok = strcmp(op, "done") == 0;
        finish_manual(a, ok, &who, note, "socket", peer);
        return say(msg, len, 1, "%s: marked %s by %s", step, ok ? "done" : "failed", who.name);
    }
    return say(msg, len, 0, "unknown op '%s' (approve, deny, done, fail, status)", op);
}

/* --- the terminal prompt ----------------------------------------------- */

static void on_tty_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    (void)h;
    buf->base = bh_util_xmalloc(suggested);
    buf->len = suggested;
}

static void answer_line(bh_run *run, char *line) {
    struct bh_gate *g = run->gate;
    while (*line == ' ')
        line++;
    char *rest = line;
    while (*rest && *rest != ' ')
        rest++;
    if (*rest) *rest++ = '\0';
    while (*rest == ' ')
        rest++;
    int yes = strcmp(line, "y") == 0 || strcmp(line, "yes") == 0;
    int no = strcmp(line, "n") == 0 || strcmp(line, "no") == 0;
    int kind = g->asked_kind;
    uint64_t asked = g->asked;
    if (!yes && !no) {
        bh_events_notice(run->events, "answer yes or no, optionally followed by a reason");
        g->asked_kind = 0;
        prompt_next(run);
        return;
    }
    g->asked_kind = 0;
    struct bh_approver op = operator_person(run);
    if (kind == 1) {
        char err[400];
        if (decide(run, (size_t)asked, yes, &op, *rest ? rest : "answered at the terminal",
                   "prompt", NULL, err, sizeof err) != 0)
            bh_events_notice(run->events, err);
    } else if (kind == 2) {
        bh_attempt *a = bh_run_attempt(run, asked);
        if (a && a->waiting == BH_WAIT_PERSON) finish_manual(a, yes, &op, rest, "prompt", NULL);
    }
    prompt_next(run);
}

static void on_tty_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
    bh_run *run = s->data;
    struct bh_gate *g = run->gate;
    for (ssize_t i = 0; i < n; i++) {
        char c = buf->base[i];
        if (c == '\n') {
            g->line[g->len] = '\0';
            g->len = 0;
            if (g->asked_kind) answer_line(run, g->line);
        } else if (g->len + 1 < sizeof g->line) {
            g->line[g->len++] = c;
        }
    }
    free(buf->base);
    if (n < 0) { /* end of input: no more answers from here */
        uv_read_stop(s);
        g->reading = 0;
    }
}

/* Ask the next open question at the terminal, if there is one. */
static void prompt_next(bh_run *run) {
    if (!run->opts->prompt || run->done) return;
    if (!run->gate) {
        run->gate = bh_util_xcalloc(1, sizeof *run->gate);
        if (uv_tty_init(run->loop, &run->gate->tty, 0, 1) != 0) {
            free(run->gate);
            run->gate = NULL;
            return;
        }
        run->gate->tty.data = run;
    }
    struct bh_gate *g = run->gate;
    if (g->asked_kind) return;
    char q[600] = "";
    struct bh_approver op = operator_person(run);
    for (size_t i = 0; i < run->rb->nsteps && !g->asked_kind; i++) {
        /* once the operator's account counts, a yes from it cannot: the
         * rest must come from other accounts */
        if (!run->rt[i].awaiting || counted(&run->rt[i], &op)) continue;
        g->asked_kind = 1;
        g->asked = i;
        snprintf(q, sizeof q, "approve '%s' (%s)? [yes/no, then an optional reason] ",
                 run->rb->steps[i].id, run->rb->steps[i].approve);
    }
    bh_attempt *a = g->asked_kind ? NULL : manual_waiting(run, NULL);
    if (a) {
        g->asked_kind = 2;
        g->asked = a->serial;
        snprintf(q, sizeof q, "is manual task '%s' done? [yes/no, then a note] ", a->step->id);
    }
    if (!g->asked_kind) {
        if (g->reading) uv_read_stop((uv_stream_t *)&g->tty);
        g->reading = 0;
        return;
    }
    bh_events_notice(run->events, q);
    if (!g->reading && uv_read_start((uv_stream_t *)&g->tty, on_tty_alloc, on_tty_read) == 0)
        g->reading = 1;
}

static void tty_closed(uv_handle_t *h) {
    free(h); /* the tty is the first member of struct bh_gate */
}

void bh_gate_close(bh_run *run) {
    if (!run->gate) return;
    uv_read_stop((uv_stream_t *)&run->gate->tty);
    uv_tty_reset_mode();
    uv_close((uv_handle_t *)&run->gate->tty, tty_closed);
    run->gate = NULL;
}
