/* gate: where a run waits for people. Approvals before risky steps and
 * manual tasks, answered at the terminal prompt, through the control socket
 * (bulkhead approve / deny / done from another terminal), or up front with
 * --approve STEP / --yes. Every decision is a journal record saying who,
 * when, why and how (prompt, socket, flag, timeout). */
#ifndef BH_GATE_H
#define BH_GATE_H

#include "control.h"
#include "run.h"

/* The step's turn came and it needs approval: record the request, apply
 * --yes / --approve, else wait (with its timeout) for people. */
void bh_gate_ask(bh_run *run, size_t index);
/* A manual task's attempt started: show the checklist, wait for a person. */
void bh_gate_manual(bh_attempt *a);
/* An attempt is ending: forget any prompt about it. */
void bh_gate_forget(bh_attempt *a);
/* The run is stopping: every approval still awaited ends the step as
 * cancelled, with the reason. */
void bh_gate_cancel_all(bh_run *run, const char *reason);
/* The control socket's handler (approve, deny, done, fail, status). */
cJSON *bh_gate_control(const cJSON *req, const bh_control_peer *peer, void *ud);
/* Stop asking at the terminal (the run is over). */
void bh_gate_close(bh_run *run);
/* Free the approvals remembered per step, once the run is over. */
void bh_gate_free_all(bh_run *run);

#endif
