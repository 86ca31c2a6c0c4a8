/* params: typed runbook parameters.
 *
 * A runbook declares each parameter's type (string, number, boolean, list,
 * map), whether it is required, a default and a doc string. Operators give
 * values with `-p name=value` (text, converted to the declared type) and
 * `--params FILE.json` (JSON values, which must already have the type).
 * Precedence: default < params file < -p. Resolution reports every problem
 * (unknown name, missing required, wrong type) with the name and the type
 * expected, not just the first one. */
#ifndef BH_PARAMS_H
#define BH_PARAMS_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "base/diag.h"

typedef enum {
    BH_PARAM_STRING,
    BH_PARAM_NUMBER,
    BH_PARAM_BOOLEAN,
    BH_PARAM_LIST,
    BH_PARAM_MAP
} bh_param_type;

typedef struct {
    char *name;
    bh_param_type type;
    int required;
    cJSON *def;    /* NULL when there is no default */
    char *doc;     /* may be NULL */
    char *pattern; /* a Lua pattern each string value must match (runbook.c checks), or NULL */
} bh_param_spec;

/* Values given on the command line and in a params file. */
typedef struct {
    cJSON *cli;  /* object: name -> string, as typed after '=' */
    cJSON *file; /* object: name -> JSON value, or NULL */
    char *file_path;
} bh_params_input;

const char *bh_params_type_name(bh_param_type t);
/* Returns 0 and sets *t, or -1 for an unknown type name. */
int bh_params_type_from_name(const char *name, bh_param_type *t);

void bh_params_input_init(bh_params_input *in);
void bh_params_input_free(bh_params_input *in);
/* Record "name=value". Returns 0, or -1 with a message in err. */
int bh_params_input_add(bh_params_input *in, const char *arg, char *err, size_t errlen);
/* Read a JSON object of name -> value. Returns 0, or -1 with a message. */
int bh_params_input_load_file(bh_params_input *in, const char *path, char *err, size_t errlen);

/* Convert text from `-p` into type t:
 *   number   strtod, whole string, finite
 *   boolean  true/false, yes/no, on/off, 1/0 (any case)
 *   list     a JSON array if it starts with '[', else comma-separated
 *            strings with surrounding blanks trimmed ("" is the empty list)
 *   map      a JSON object
 * Returns a new cJSON value, or NULL with a message in err. */
cJSON *bh_params_from_text(bh_param_type t, const char *text, char *err, size_t errlen);
/* 1 when v has type t (list: an array; map: an object). */
int bh_params_has_type(bh_param_type t, const cJSON *v);

/* Resolve values for specs[0..n). Problems go to diags (file/line point at
 * the runbook's declaration when given). With placeholders set, a missing
 * required parameter gets a typed stand-in instead of an error: `check`
 * validates a runbook without real values. Returns a new JSON object of
 * name -> value; it holds every declared parameter that has a value. */
cJSON *bh_params_resolve(const bh_param_spec *specs, size_t n, const bh_params_input *in,
                         int placeholders, const char *file, int line, bh_diag_list *diags);

#endif
