/* gate: where a run waits for people. Approvals before risky steps and
 * manual tasks, answered at the terminal prompt, through the control socket
 * (bulkhead approve / deny / done from another terminal), or up front with
 * --approve STEP / --yes. Every decision is a journal record saying who
 * (name and uid), when, why and how (prompt, socket, flag, timeout,
 * simulated).
 *
 * Who is an account: a socket caller is its uid (SO_PEERCRED); the prompt
 * and the flags are the engine's own uid, under the operator's name. A
 * step with approvers = N starts after N approvals from N different
 * accounts and N different names (trimmed, compared without case); an
 * approval from an account or under a name already counted is refused and
 * not recorded. Simulated approvers (dry runs, drills) have no account of
 * their own and are told apart by name. */
#ifndef BH_GATE_H
#define BH_GATE_H

#include "effects/control.h"
#include "run/handle.h"

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
/* A person's answer through the control socket (socket.c): op approve or
 * deny step (why: the reason, required), or done or fail the manual task
 * step (note: optional); as: the name they sign with, peer: their account.
 * Returns 1 with what was done in msg, or 0 with why nothing was. */
int bh_gate_answer(bh_run *run, const char *op, const char *step, const char *as, const char *why,
                   const char *note, const bh_control_peer *peer, char *msg, size_t len);
/* Stop asking at the terminal (the run is over). */
void bh_gate_close(bh_run *run);
/* Resume: the approvals step index had before the engine stopped, as the
 * journal's approval records ({by, uid, how}); they count again. */
void bh_gate_restore(bh_run *run, size_t index, const cJSON *approvals);
/* Free the approvals remembered per step, once the run is over. */
void bh_gate_free_all(bh_run *run);

#endif
