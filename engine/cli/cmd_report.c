/* report: the after-action report of a run (report.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cmd.h"
#include "journal/history.h"
#include "journal/journal.h"
#include "base/json.h"
#include "report/report.h"
#include "base/util.h"

static const char REPORT_HELP[] =
    "usage: bulkhead report RUN [--format md|html|json] [--out FILE]\n"
    "\n"
    "The after-action report of a run, built from its journal alone: summary\n"
    "(runbook and its SHA-256, parameters, operator, start, end, outcome), the\n"
    "time line by phase (UTC; simulated time for dry runs and drills), every\n"
    "decision (approvals, denials, manual tasks, with who, how and why), the\n"
    "commands that ran and the requests sent (HTTP, mail, connects), failures\n"
    "and how they were handled, evidence and captured output with SHA-256,\n"
    "the scorecard of a drill, and the journal's head hash to quote in the\n"
    "ticket.\n"
    "\n"
    "  --format md     Markdown (the default)\n"
    "  --format html   one self-contained HTML file (no fetches) with an SVG\n"
    "                  time line: a bar per step attempt, coloured by status,\n"
    "                  in phase bands; approval waits and backoffs shown\n"
    "  --format json   the report's data, for other tools\n"
    "  --out FILE      write FILE (mode 0600, replaced whole) instead of stdout\n"
    "\n"
    "RUN is a run id, a unique prefix, 'last', or a run folder or journal path.\n"
    "A journal whose chain is broken is still reported, and the report says so.\n"
    "exit: 0, 2 usage, 6 no such run or it cannot be read or written\n";

int bh_cmd_report(int argc, char **argv, const bh_cli *g) {
    const char *which = NULL, *format = "md", *outpath = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (bh_cmd_is_help(a)) {
            fputs(REPORT_HELP, stdout);
            return BH_EXIT_OK;
        }
        if (strcmp(a, "--format") == 0 || strcmp(a, "--out") == 0) {
            if (i + 1 >= argc) return bh_cmd_usage_error("report", "%s needs a value", a);
            if (strcmp(a, "--format") == 0)
                format = argv[++i];
            else
                outpath = argv[++i];
        } else if (strncmp(a, "--format=", 9) == 0) {
            format = a + 9;
        } else if (a[0] == '-' && a[1]) {
            return bh_cmd_unknown_option("report", a);
        } else if (which) {
            return bh_cmd_usage_error("report", "one run at a time");
        } else {
            which = a;
        }
    }
    if (strcmp(format, "md") != 0 && strcmp(format, "markdown") != 0 &&
        strcmp(format, "html") != 0 && strcmp(format, "json") != 0)
        return bh_cmd_usage_error("report", "--format: '%s'; use md, html or json", format);
    if (!which) return bh_cmd_usage_error("report", "which run? (an id, a prefix, or 'last')");
    char *dir = bh_cmd_find_run(g, which);
    if (!dir) return BH_EXIT_IO;
    char *path = bh_util_asprintf("%s/journal.jsonl", dir);
    free(dir);
    bh_journal_check chk;
    bh_history h;
    int err = bh_history_read(&h, path, &chk);
    if (err && !h.unparsed) {
        fprintf(stderr, "bulkhead report: cannot read %s: %s\n", path, bh_util_strerror(err));
        bh_history_free(&h);
        free(path);
        return BH_EXIT_IO;
    }
    cJSON *model = bh_report_model(&h, &chk);
    bh_history_free(&h);

    int rc = BH_EXIT_OK;
    FILE *out = stdout;
    char *tmp = NULL;
    if (outpath) {
        /* Written aside, then renamed: a reader never sees half a report. */
        tmp = bh_util_asprintf("%s.tmp-%ld", outpath, (long)getpid());
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        out = fd >= 0 ? fdopen(fd, "w") : NULL;
        if (!out) {
            fprintf(stderr, "bulkhead report: cannot write %s: %s\n", outpath, strerror(errno));
            if (fd >= 0) close(fd);
            free(tmp);
            cJSON_Delete(model);
            free(path);
            return BH_EXIT_IO;
        }
    }
    if (strcmp(format, "json") == 0) {
        char *s = bh_json_print(model, 1); /* strict JSON, as the journal's lines */
        fputs(s, out);
        fputc('\n', out);
        free(s);
    } else if (strcmp(format, "html") == 0) {
        bh_report_html(model, out);
    } else {
        bh_report_markdown(model, out);
    }
    if (outpath) {
        int bad = fflush(out) != 0 || fsync(fileno(out)) != 0;
        bad |= fclose(out) != 0;
        if (bad || rename(tmp, outpath) != 0) {
            fprintf(stderr, "bulkhead report: cannot write %s: %s\n", outpath, strerror(errno));
            unlink(tmp);
            rc = BH_EXIT_IO;
        }
        free(tmp);
    }
    cJSON_Delete(model);
    free(path);
    return rc;
}
