/* plugins: what actions there are, and how to use them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmd.h"
#include "load/plugin.h"

static const char PLUGINS_HELP[] =
    "usage: bulkhead plugins [NAME] [--plugins DIR[:DIR]] [--json]\n"
    "\n"
    "Without NAME: every plugin found, with its actions. With NAME: that\n"
    "plugin's documentation: each action, what it does, its parameters (type,\n"
    "required or default), whether it is idempotent (safe to repeat after a\n"
    "crash), destructive (check asks for approve) or a health check, and the\n"
    "action that undoes it.\n"
    "\n"
    "Plugins are searched in --plugins DIR (colon-separated), then\n"
    "$BULKHEAD_PLUGINS, then the shipped plugins/; the first NAME.lua found wins.\n"
    "\n"
    "exit: 0, 2 usage, 3 NAME not found or broken\n";

static void print_one(const cJSON *p, int full) {
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(p, "error");
    const char *name = cJSON_GetObjectItemCaseSensitive(p, "name")->valuestring;
    if (cJSON_IsString(err)) {
        printf("%-10s BROKEN: %s\n", name, err->valuestring);
        return;
    }
    const char *doc = cJSON_GetObjectItemCaseSensitive(p, "doc")->valuestring;
    if (!full) {
        printf("%-10s %.*s\n", name, (int)strcspn(doc, "\n"), doc);
        printf("%-10s actions:", "");
        const cJSON *a;
        cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(p, "actions"))
            printf(" %s", a->string);
        printf("\n");
        return;
    }
    printf("%s  (%s)\n\n%s\n", name, cJSON_GetObjectItemCaseSensitive(p, "path")->valuestring, doc);
    const cJSON *a;
    cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(p, "actions")) {
        printf("\n%s.%s", name, a->string);
        const char *flags[] = {"idempotent", "destructive", "check"};
        for (int k = 0; k < 3; k++)
            if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, flags[k])))
                printf("  [%s]", flags[k]);
        if (cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(a, "changes")))
            printf("  [changes nothing]");
        const cJSON *undo = cJSON_GetObjectItemCaseSensitive(a, "undo");
        if (cJSON_IsString(undo)) printf("  [undo: %s.%s]", name, undo->valuestring);
        printf("\n  %s\n", cJSON_GetObjectItemCaseSensitive(a, "doc")->valuestring);
        const cJSON *pp;
        cJSON_ArrayForEach(pp, cJSON_GetObjectItemCaseSensitive(a, "params")) {
            const cJSON *def = cJSON_GetObjectItemCaseSensitive(pp, "default");
            char *d = def ? cJSON_PrintUnformatted(def) : NULL;
            const cJSON *pdoc = cJSON_GetObjectItemCaseSensitive(pp, "doc");
            printf("    %-16s %-9s %s%s%s  %s\n", pp->string,
                   cJSON_GetObjectItemCaseSensitive(pp, "type")->valuestring,
                   cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(pp, "required")) ? "required"
                                                                                  : (d ? "= " : ""),
                   d ? d : "", "", cJSON_IsString(pdoc) ? pdoc->valuestring : "");
            free(d);
        }
    }
}

int bh_cmd_plugins(int argc, char **argv, const bh_cli *g) {
    (void)g;
    const char *name = NULL, *dirs_arg = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (bh_cmd_is_help(argv[i])) {
            fputs(PLUGINS_HELP, stdout);
            return BH_EXIT_OK;
        } else if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else if (strcmp(argv[i], "--plugins") == 0) {
            if (i + 1 >= argc) return bh_cmd_usage_error("plugins", "--plugins needs a directory");
            dirs_arg = argv[++i];
        } else if (argv[i][0] == '-') {
            return bh_cmd_unknown_option("plugins", argv[i]);
        } else if (name) {
            return bh_cmd_usage_error("plugins", "one plugin at a time");
        } else {
            name = argv[i];
        }
    }
    char **dirs = bh_plugin_dirs(dirs_arg);
    char why[300];
    cJSON *list = bh_plugin_catalog(dirs, name, why, sizeof why);
    int rc = BH_EXIT_OK;
    if (!list) {
        fprintf(stderr, "bulkhead plugins: %s (searched:", why);
        for (char **d = dirs; *d; d++)
            fprintf(stderr, " %s", *d);
        fprintf(stderr, ")\n");
        rc = BH_EXIT_RUNBOOK;
    } else if (json) {
        char *s = cJSON_Print(name ? cJSON_GetArrayItem(list, 0) : list);
        puts(s);
        free(s);
    } else {
        if (!name) {
            printf("plugins (bulkhead plugins NAME for one):\n");
            if (cJSON_GetArraySize(list) == 0) printf("  none found\n");
        }
        const cJSON *p;
        cJSON_ArrayForEach(p, list) print_one(p, name != NULL);
        if (name && cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(list, 0), "error"))
            rc = BH_EXIT_RUNBOOK;
    }
    cJSON_Delete(list);
    bh_plugin_free_dirs(dirs);
    return rc;
}
