/* model: what a loaded runbook is, as data: its metadata, parameters,
 * phases, steps with their policies, and the units and order the
 * scheduler runs them in (graph.c). The loader (runbook.c) fills it; the
 * pieces of loading (graph, inventory, plugins) and everything above read
 * it through this header alone. */
#ifndef BH_MODEL_H
#define BH_MODEL_H

#include <cjson/cJSON.h>
#include <lua.h>
#include <stddef.h>

#include "base/diag.h"
#include "load/params.h"
#include "base/redact.h"
#include "base/secrets.h"
#include "load/keyring.h"

#define BH_DEFAULT_STEP_TIMEOUT_MS (5.0 * 60 * 1000)
#define BH_DEFAULT_KILL_GRACE_MS 5000.0
#define BH_DEFAULT_BACKOFF_MS 1000.0
#define BH_MAX_BACKOFF_MS (5.0 * 60 * 1000)
#define BH_MAX_RETRIES 100
#define BH_MAX_CONCURRENCY 1024
/* Lua instructions one attempt may run (about 10 s of pure Lua): steps
 * orchestrate, they do not compute. */
#define BH_DEFAULT_MAX_INSTRUCTIONS 1e9
#define BH_LOAD_MAX_INSTRUCTIONS 1e8
#define BH_LOAD_TIMEOUT_MS (60.0 * 1000) /* wall clock for loading (and for finalizers) */
#define BH_DEFAULT_APPROVE_TIMEOUT_MS (30.0 * 60 * 1000)
#define BH_DEFAULT_VERIFY_TIMEOUT_MS (60.0 * 1000)
#define BH_DEFAULT_VERIFY_INTERVAL_MS 2000.0
/* Dependency checks recurse once per step of a chain: keep the C stack and
 * the quadratic ordering well inside their limits. */
#define BH_MAX_STEPS 10000
#define BH_LUA_MEMORY_LIMIT ((size_t)256 << 20)

/* What a failure does once a step's retries are used up. */
typedef enum { BH_FAIL_ABORT, BH_FAIL_CONTINUE, BH_FAIL_ROLLBACK } bh_fail_policy;

typedef struct {
    char *id;
    char *phase;
    char *doc;  /* may be NULL */
    char *file; /* where it is declared */
    int line;
    double timeout_ms; /* the step's own or the runbook's default */
    int timeout_set;   /* the step gave its own */
    int run_ref;       /* registry reference to the body, LUA_NOREF if none */
    int retries;       /* further attempts after a failure or timeout */
    double backoff_ms; /* delay before the first retry; doubles, with jitter */
    bh_fail_policy on_failure;
    int when_ref;   /* when = function(ctx): registry ref, else LUA_NOREF */
    int when_false; /* when = false: never runs */
    char **after;   /* ids this step waits for */
    size_t nafter;
    size_t *deps; /* the same as step indices, once resolved */
    /* fan-out: one instance per item of a list */
    int each_ref;    /* registry: the list, or a function returning it; LUA_NOREF */
    int each_fn;     /* each_ref is a function(ctx) evaluated when the step starts */
    int concurrency; /* at most this many instances at once (0: the run's cap) */
    size_t unit;     /* index into bh_runbook.units */
    int undo_ref;    /* undo = function(ctx, item): registry ref or LUA_NOREF */
    int no_undo;     /* undo = false: declared to change nothing that needs undoing */
    /* approval before the step starts */
    char *approve;             /* why it is risky; NULL: no approval needed */
    int approvers;             /* distinct people who must approve (default 1) */
    double approve_timeout_ms; /* waiting longer is a denial ... */
    int approve_on_timeout;    /* ... unless this is set (on_approval_timeout = "approve") */
    /* a task for a person: no body, done when the operator says so */
    char **checklist;
    size_t nchecklist;
    int manual;
    /* health gate after the body */
    int verify_ref;
    double verify_timeout_ms, verify_interval_ms;
    double every_ms;         /* cadence: repeat while the run lives (0: once) */
    int destructive;         /* declared to change things in a way that hurts */
    int idempotent;          /* safe to run again after an unknown outcome */
    double max_instructions; /* Lua instruction budget of one attempt */
    double estimate_ms;      /* how long it usually takes, for drills (-1: not given) */
    char *action;            /* action = plugin.action {...}: "plugin.action", or NULL */
    char *action_desc;       /* what the action says it does (describe), or NULL */
    char *effect;            /* what it leaves on its target ("isolated"), for in-doubt lines */
    cJSON *simulate;         /* dry run/drill: {exit, stdout, stderr, result}, or NULL */
} bh_step;

/* A unit is what runs as a whole before the next unit starts: one step, a
 * parallel{} group, or (schedule = "graph") every step of the runbook.
 * Inside a unit steps start as soon as their `after` steps are done. */
typedef struct {
    size_t *steps; /* in order */
    size_t nsteps;
    int concurrency; /* the group's cap (0: none beyond the run's) */
    int parallel;    /* more than one step may run at once */
} bh_unit;

/* The loaded runbook: the plan the scheduler runs. Loading fills it and
 * nothing changes it afterwards (the scheduler reads it const); what
 * grows while the run goes on lives in the Lua state it keeps (the
 * values its references point to, the modules a step first requires) and
 * in its keyring (the secrets resolved so far). */
typedef struct {
    lua_State *L;
    char *path;   /* as given */
    char *sha256; /* of the file's exact bytes */
    char *id, *title, *severity, *owner, *description;
    int decl_line;   /* line of runbook{...} */
    int timeout_set; /* runbook{ timeout = ... } given */
    double timeout_ms, kill_grace_ms;
    double max_instructions; /* default budget of every step */
    bh_param_spec *params;
    size_t nparams;
    cJSON *param_values; /* resolved, name -> value */
    char **phases;
    size_t nphases;
    bh_step *steps;
    size_t nsteps;
    size_t *order;  /* step indices in the order they run: dependencies first,
                       otherwise declaration order; units are contiguous */
    bh_unit *units; /* in the order they run */
    size_t nunits;
    int graph; /* schedule = "graph": one unit, ordered by `after` alone */
    bh_diag_list diags;
    char *traceback; /* of the Lua error that stopped loading, if any */
    int param_errors;
    int params_ref; /* registry reference to the `param` table */
    int env_ref;    /* registry reference to the runbook's _ENV */
    size_t mem_used, mem_limit;
    bh_keyring *keyring;      /* secret("NAME"): resolved, masked (keyring.h) */
    int placeholders;         /* check: stand-ins for missing required params */
    int secret_standins;      /* plan, check: no values, stand-ins "<secret:NAME>" */
    int secrets_optional;     /* dry run, drill: stand-ins for secrets that are not set */
    char *const *plugin_dirs; /* where plugins are looked up (plugin.h), not owned */
    cJSON *plugins_used;      /* [{name, path, sha256}] in the order first used */
    struct bh_loader *loader; /* runbook.c's, while the file runs; NULL after */
} bh_runbook;

/* The index of step id in rb, or (size_t)-1 (also for a NULL id). */
size_t bh_model_step_index(const bh_runbook *rb, const char *id);
/* "abort", "continue", "rollback" */
const char *bh_model_policy_name(bh_fail_policy p);

#endif
