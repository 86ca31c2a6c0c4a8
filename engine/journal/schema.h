/* schema: the journal's record types and their fields, declared once.
 *
 * Every record has seq, ts, prev and type (journal.h), and sim_ms in a
 * simulation; a record about an attempt also step, item or rep, attempt,
 * undo (run/run.c). BH_RECORD_TYPES lists each type with the rest of its
 * top-level fields. The writer names a type only through its bh_rec
 * value; readers compare with bh_rec_is; a record with a field its type
 * does not declare is refused in the test build (BH_SCHEMA_STRICT), so
 * this table cannot fall behind what is written, and docs/journal.md is
 * checked against it (tests/unit/test_schema.c). */
#ifndef BH_SCHEMA_H
#define BH_SCHEMA_H

#include <cjson/cJSON.h>

/* X(ID, "name", "fields separated by spaces") */
#define BH_RECORD_TYPES(X)                                                                         \
    X(RUN_START, "run_start",                                                                      \
      "approvers_group concurrency concurrency_hard engine host mode operator params pid plan "    \
      "plugin_dirs plugins run_id runbook secrets simulation steps timeout_override_ms uid")       \
    X(RUN_RESUMED, "run_resumed",                                                                  \
      "approvers_group concurrency concurrency_hard engine host leftovers_stopped operator pid "   \
      "previous uid unknown_undos_skipped")                                                        \
    X(RUN_END, "run_end", "counts duration_ms in_doubt_without_undo status undo_failed undone")    \
    X(JOURNAL_RECOVERED, "journal_recovered", "cut_bytes offset")                                  \
    X(CHECKPOINT, "checkpoint", "covers_seq head key_id sig")                                      \
    X(SECRET, "secret", "name source")                                                             \
    X(STEP_START, "step_start", "effect key phase timeout_ms value")                               \
    X(STEP_END, "step_end", "doubt duration_ms error halted may_remain next reason result status") \
    X(STEP_DONE, "step_done",                                                                      \
      "failed in_doubt items next not_started ok reps skipped status unknown")                     \
    X(STEP_SKIPPED, "step_skipped", "cause reason")                                                \
    X(FANOUT, "fanout", "concurrency items")                                                       \
    X(FANOUT_STOPPED, "fanout_stopped", "not_started reason")                                      \
    X(CADENCE_SKIPPED, "cadence_skipped", "reason")                                                \
    X(RETRY, "retry", "delay_ms")                                                                  \
    X(RETRY_CANCELLED, "retry_cancelled", "")                                                      \
    X(UNKNOWN_OUTCOME, "unknown_outcome", "by decision how was")                                   \
    X(EXEC_START, "exec_start", "acts argv cwd n pid shell simulated timeout_ms")                  \
    X(EXEC_END, "exec_end",                                                                        \
      "cancelled code duration_ms escaped_killed in_doubt killed n pid signal simulated stderr "   \
      "stdout swept timed_out")                                                                    \
    X(EXEC_ERROR, "exec_error", "argv error n")                                                    \
    X(REQUEST_START, "request_start",                                                              \
      "body body_sha256 body_size from headers kind method n simulated starttls subject "          \
      "timeout_ms to url username verify_tls")                                                     \
    X(REQUEST_END, "request_end",                                                                  \
      "cancelled duration_ms error in_doubt kind n ok response simulated status timed_out")        \
    X(ACTION, "action", "action description params plugin simulated")                              \
    X(LOG, "log", "message")                                                                       \
    X(EVIDENCE, "evidence",                                                                        \
      "collected_by complete key n name path sha256 simulated size source truncated "              \
      "truncated_reason")                                                                          \
    X(VERIFY, "verify", "healthy message try")                                                     \
    X(FAULT_INJECTED, "fault_injected", "factor kind source")                                      \
    X(APPROVAL_WAIT, "approval_wait", "needed on_timeout reason timeout_ms")                       \
    X(APPROVAL, "approval", "approvals by decision how needed pid reason uid")                     \
    X(MANUAL, "manual", "by how note outcome pid uid")                                             \
    X(INTERRUPT, "interrupt", "action signal")                                                     \
    X(ROLLBACK_START, "rollback_start", "undos")                                                   \
    X(UNDO_BEGIN, "undo_begin",                                                                    \
      "in_doubt_without_undo only_step operator settle undos unknown_skipped")                     \
    X(UNDO_START, "undo_start", "key value")                                                       \
    X(UNDO_END, "undo_end", "doubt duration_ms error halted may_remain next reason result status") \
    X(UNDO_FINISH, "undo_finish", "duration_ms in_doubt_without_undo status undo_failed undone")   \
    X(SETTLED, "settled", "by key may_remain note")                                                \
    X(SCORECARD, "scorecard",                                                                      \
      "approval_wait_ms approvals contained containment_in_doubt containment_ms containment_note " \
      "faults faults_absorbed faults_stopped_run in_doubt may_remain mode no_estimate no_timeout " \
      "no_undo seed status total_ms")

typedef enum {
#define BH_REC_ENUM(id, name, fields) BH_REC_##id,
    BH_RECORD_TYPES(BH_REC_ENUM)
#undef BH_REC_ENUM
        BH_REC_COUNT
} bh_rec;

/* Fields every record may carry, and those of a record about an attempt. */
#define BH_SCHEMA_COMMON "seq ts prev type sim_ms"
#define BH_SCHEMA_ATTEMPT "step item rep attempt undo"

/* "step_end" */
const char *bh_rec_name(bh_rec r);
/* Its own fields, separated by spaces. */
const char *bh_rec_fields(bh_rec r);
/* The type named name, or BH_REC_COUNT when there is none. */
bh_rec bh_rec_of(const char *name);
/* Is type (a record's "type" string, may be NULL) r? */
int bh_rec_is(const char *type, bh_rec r);
/* May a record of type r have this top-level field? */
int bh_rec_declares(bh_rec r, const char *field);
/* The first top-level field of rec its type does not declare (nor the
 * common ones), or NULL when all are declared; an unknown type is its own
 * answer ("type"). */
const char *bh_rec_undeclared(const cJSON *rec);

#endif
