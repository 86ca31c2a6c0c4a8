/* runbook: load a runbook file into its own Lua state and collect what it
 * declares (metadata, typed parameters, phases, steps) without running any
 * step. This is all that `plan` and `check` need, and loading can have no
 * side effects: the load-time environment cannot act on the world.
 *
 * The loader keeps going after a problem it can describe (an unknown step
 * field, a bad timeout, a duplicate id), so that every problem is reported
 * at once with file:line. A Lua error stops loading: it is reported with
 * its location and a traceback. Parameter problems also stop loading right
 * after runbook{...}, so they are not buried under errors they cause. */
#ifndef BH_RUNBOOK_H
#define BH_RUNBOOK_H

#include <cjson/cJSON.h>

#include "load/model.h"

typedef struct {
    const char *path;
    const bh_params_input *params; /* may be NULL: no values given */
    int placeholders;              /* `check`: stand-ins for missing required params */
    const bh_secrets *secrets;     /* where secret("NAME") looks; NULL: the environment */
    int secret_standins;           /* plan/check: secret() gives "<secret:NAME>" */
    int secrets_optional;          /* dry run/drill: a secret not set gets the stand-in */
    char *const *plugin_dirs;      /* bh_plugin_dirs(); NULL: no plugins */
} bh_runbook_opts;

typedef enum {
    BH_RUNBOOK_OK = 0,
    BH_RUNBOOK_INVALID,    /* syntax, load-time error or bad declaration */
    BH_RUNBOOK_BAD_PARAMS, /* unknown, missing or mistyped parameters */
    BH_RUNBOOK_UNREADABLE  /* the file cannot be read */
} bh_runbook_status;

/* Always sets *out (diagnostics live in it); free it with bh_runbook_free. */
bh_runbook_status bh_runbook_load(const bh_runbook_opts *opts, bh_runbook **out);
void bh_runbook_free(bh_runbook *rb);
/* The plan as JSON: runbook metadata, parameters with values, phases with
 * their steps. */
cJSON *bh_runbook_plan_json(const bh_runbook *rb);

#endif
