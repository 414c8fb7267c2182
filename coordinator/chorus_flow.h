/*  chorus_flow.h — the flow engine: a pure, deterministic state machine.
    (state, input) -> (new state, actions). Inputs are start, reply, timer,
    cancel and retry; actions are commands to send, timers to set and events
    to emit. No sockets, clocks, disk or globals: time comes in as `now`,
    so every path can be unit-tested and a saved state replayed.

    Work is done in tasks: one per step, or one per item of a for_each
    step. A task's key, "FLOW/STEP" or "FLOW/STEP/ITEM", is the idempotency
    key of its command (with ":rN" appended on the Nth run after a retry of
    a failed flow, so a re-run is not answered from a service's memory of
    the compensated run). A compensation's key is the task key + "/undo".
*/
#ifndef CHORUS_FLOW_H_INCLUDED
#define CHORUS_FLOW_H_INCLUDED

#include "chorus_flowdef.h"
#include "chorus_record.h"
#include "chorus_task_state.h"

typedef struct _chorus_flow_t chorus_flow_t;
typedef struct _chorus_flowset_t chorus_flowset_t;

//  Flow states
typedef enum {
    CHORUS_FLOW_RUNNING = 1,        //  steps running
    CHORUS_FLOW_COMPENSATING = 2,   //  a step failed or the flow was cancelled: undoing
    CHORUS_FLOW_COMPLETED = 3,      //  every step done (terminal)
    CHORUS_FLOW_FAILED = 4,         //  a step failed, completed steps undone (terminal)
    CHORUS_FLOW_CANCELLED = 5,      //  cancelled, completed steps undone (terminal)
    CHORUS_FLOW_STUCK = 6,          //  a compensation kept failing: needs an operator
} chorus_flow_state_t;


//  What the shell must do, in order
typedef enum {
    CHORUS_ACTION_SEND = 1,         //  send command to service, idempotency key = key
    CHORUS_ACTION_TIMER = 2,        //  call chorus_flow_timer (key) at `at`
    CHORUS_ACTION_EMIT = 3,         //  publish an event on topic
    //  A step that runs a flow (`flow:`): the child's id is made from
    //  `key`, the task key, so that starting it again finds it
    CHORUS_ACTION_START_FLOW = 4,   //  start (or find) the child flow `command` with the
                                    //  payload; tell chorus_flow_child_ended when it ends
    CHORUS_ACTION_CANCEL_FLOW = 5,  //  cancel the child flow of task `key`, if it runs
    CHORUS_ACTION_UNDO_FLOW = 6,    //  compensate the completed child flow of task `key`
                                    //  (chorus_flow_undo); tell chorus_flow_child_ended
} chorus_action_kind_t;

typedef struct {
    chorus_action_kind_t kind;      //  what to do
    char *flow;                     //  the flow's id
    char *key;                      //  task key (SEND) or timer key (TIMER)
    char *service;                  //  SEND: target service
    char *command;                  //  SEND: command name
    json_t *payload;                //  SEND, EMIT: the payload (may be NULL)
    void *encoded;                  //  SEND, EMIT: or the payload already encoded (then
                                    //  payload is NULL): a value passed on whole
    size_t encoded_size;            //  its size
    int attempt;                    //  SEND: which try, to match the reply
    uint64_t at;                    //  SEND: deadline of the try; TIMER: when
    char *topic;                    //  EMIT: the topic
} chorus_action_t;

//  A list of actions, filled by the engine, freed by the caller
typedef struct {
    chorus_action_t *items;         //  the actions
    size_t size;                    //  how many
    size_t max;                     //  allocated
} chorus_actions_t;

void
    chorus_actions_init (chorus_actions_t *self);
//  Frees the actions and empties the list
void
    chorus_actions_clear (chorus_actions_t *self);
//  A new action at the end of the list, zeroed; aborts when memory runs out
chorus_action_t *
    chorus_actions_push (chorus_actions_t *self);

//  The outcome of one try of a command
typedef struct {
    bool ok;                        //  the service replied with success
    bool timeout;                   //  no reply before the try's deadline
    const json_t *output;           //  the reply's payload (ok), may be NULL
    const char *code;               //  error code (not ok)
    const char *message;            //  error message (not ok)
    bool retryable;                 //  may a later try succeed (not ok)
    const void *encoded;            //  or the payload as it came (ok), one MessagePack
                                    //  value: kept as it is, decoded when it is read into
    size_t encoded_size;            //  its size
} chorus_result_t;

//  --------------------------------------------------------------------------
//  One flow

//  Starts a flow of the definition with this id and input (borrowed,
//  copied). The definition must outlive the flow.
chorus_flow_t *
    chorus_flow_start (chorus_flowdef_t *def, const char *id, const json_t *input,
                       uint64_t now, chorus_actions_t *out);
//  The same with the input as the payload it came as (one MessagePack
//  value, copied), or NULL for none; it is decoded when it is read into
chorus_flow_t *
    chorus_flow_start_encoded (chorus_flowdef_t *def, const char *id, const void *input,
                               size_t size, uint64_t now, chorus_actions_t *out);
void
    chorus_flow_destroy (chorus_flow_t **self_p);

//  The reply to try `attempt` of a task. A reply to anything but the
//  current try of a running task (late, duplicate, unknown) is ignored and
//  returns -1; otherwise 0.
int
    chorus_flow_reply (chorus_flow_t *self, const char *key, int attempt,
                       const chorus_result_t *result, uint64_t now, chorus_actions_t *out);

//  A timer the engine asked for has fired; an unknown or stale timer is
//  ignored and returns -1.
int
    chorus_flow_timer (chorus_flow_t *self, const char *key, uint64_t now, chorus_actions_t *out);

//  Cancels a running flow: no new task starts, running ones finish, and
//  completed ones are compensated. -1 if the flow is not running.
int
    chorus_flow_cancel (chorus_flow_t *self, uint64_t now, chorus_actions_t *out);

//  Re-runs a failed, cancelled or stuck flow: stuck compensations are tried
//  again; for a failed or cancelled flow every task that is not done runs
//  again from the failed step on, with new keys. -1 if not applicable.
int
    chorus_flow_retry (chorus_flow_t *self, uint64_t now, chorus_actions_t *out);

//  The child flow of the task `key` (a step with `flow:`) reached the
//  state `child_state`: COMPLETED completes the task with the child's
//  output (or output_json when it has no payload; NULL: null), FAILED or
//  CANCELLED fails it (error code "flow-failed" or "flow-cancelled", with
//  the child's error message); while the task is being undone, FAILED or
//  CANCELLED (its compensation done) undoes it and STUCK leaves it stuck.
//  -1 when it changes nothing (an unknown task, a state it does not wait
//  for): the call can be repeated safely.
int
    chorus_flow_child_ended (chorus_flow_t *self, const char *key, chorus_flow_state_t child_state,
                             const void *output, size_t output_size, const json_t *output_json,
                             const char *error_message, uint64_t now, chorus_actions_t *out);

//  Compensates a completed flow (its parent is being undone): it becomes
//  COMPENSATING and ends CANCELLED once its completed tasks are undone.
//  -1 if it did not complete.
int
    chorus_flow_undo (chorus_flow_t *self, uint64_t now, chorus_actions_t *out);

//  A child flow: the parent flow's id and the key of the parent's task
//  it runs for (both copied), journaled with the flow's snapshot; set
//  before its first snapshot is written
void
    chorus_flow_set_parent (chorus_flow_t *self, const char *parent, const char *key);
//  Its parent's id and task key, NULL for a flow started on its own
const char *
    chorus_flow_parent (chorus_flow_t *self);
const char *
    chorus_flow_parent_key (chorus_flow_t *self);
//  Why it failed: {"code", "message"[, "step"]}, or JSON null (new
//  reference)
json_t *
    chorus_flow_error_json (chorus_flow_t *self);
//  The flow's output (see FLOWS.md, output:): its payload in *size, or
//  NULL with *json the value when it has no payload (NULL: none)
const void *
    chorus_flow_output (chorus_flow_t *self, size_t *size, json_t **json);

//  --------------------------------------------------------------------------
//  Await steps: events and signals (chorus_await.c, FLOWS.md "Awaiting
//  events and signals")

//  Events and signals one flow keeps, taken or not, at most
#define CHORUS_FLOW_MAIL_MAX 1024

//  Whether a step of the definition awaits events on this topic
bool
    chorus_flow_awaits_topic (chorus_flowdef_t *def, const char *topic);

//  An event on a topic (its payload one MessagePack value as it came, or
//  NULL for none). It completes each running await step whose match it
//  meets, and is kept (journaled with the flow) for each await step not
//  started yet whose match it meets and that has no event kept; an event
//  id a step took before is ignored. Returns 1 when the flow took it
//  (journal the flow), 0 when it meets no await step that wants it, -1
//  when it meets one but the flow no longer runs (the event is dropped).
int
    chorus_flow_event (chorus_flow_t *self, const char *topic, const char *id,
                       const void *payload, size_t size, uint64_t now, chorus_actions_t *out);

//  A named signal with a payload (borrowed, NULL: null) and an id. It
//  completes the first running await step of that signal, or is kept
//  until a step takes it or the flow ends. Returns 0 when taken (*step_id
//  the step it completed, or NULL when kept), 1 when a signal of this id
//  came before (nothing changes; *step_id as it was then), -1 when the
//  flow does not run, -2 when it holds CHORUS_FLOW_MAIL_MAX already.
int
    chorus_flow_signal (chorus_flow_t *self, const char *name, const char *id,
                        const json_t *payload, uint64_t now, chorus_actions_t *out,
                        const char **step_id);

//  Whether a signal name is 1 to 64 of A-Z a-z 0-9 . _ -
bool
    chorus_flow_signal_name_ok (const char *name);

//  After a restart: the actions that re-arm every timer and re-send every
//  running task's command (same key, same attempt).
void
    chorus_flow_resume (chorus_flow_t *self, uint64_t now, chorus_actions_t *out);

//  --------------------------------------------------------------------------
//  Journal records (MessagePack, see chorus_flow_record.c): a snapshot of
//  the whole state, then one delta per transition, holding what changed.
//  A flow rebuilt from its snapshot and deltas, applied in order, is the
//  flow that wrote them, field for field.

//  Appends the whole state to record
void
    chorus_flow_snapshot (chorus_flow_t *self, chorus_record_t *record);
//  Appends what changed since the last snapshot or delta to record; call
//  it after every transition, a delta may only follow its predecessors
void
    chorus_flow_delta (chorus_flow_t *self, chorus_record_t *record);
//  A flow of the definition rebuilt from a snapshot (the reader must hold
//  nothing else); NULL with the reason in error
chorus_flow_t *
    chorus_flow_restore (chorus_flowdef_t *def, chorus_reader_t *reader, char *error,
                         size_t error_size);
//  Applies a delta (the reader must hold nothing else); 0, or -1 with the
//  reason in error, the flow then being of no further use
int
    chorus_flow_apply (chorus_flow_t *self, chorus_reader_t *reader, char *error,
                       size_t error_size);

//  The whole state as JSON (new reference), and a flow rebuilt from it:
//  what journals of earlier versions hold
json_t *
    chorus_flow_save (chorus_flow_t *self);
chorus_flow_t *
    chorus_flow_load (chorus_flowdef_t *def, const json_t *state, char *error, size_t error_size);
//  The whole state with the events and signals received for await steps,
//  which chorus_flow_save leaves out (journals of earlier versions had
//  none): to compare a flow with one rebuilt from its records
json_t *
    chorus_flow_save_all (chorus_flow_t *self);

const char *
    chorus_flow_id (chorus_flow_t *self);
chorus_flowdef_t *
    chorus_flow_def (chorus_flow_t *self);
chorus_flow_state_t
    chorus_flow_state (chorus_flow_t *self);
bool
    chorus_flow_finished (chorus_flow_t *self);
//  When it started, and when it reached a terminal state (0: not yet)
uint64_t
    chorus_flow_started_at (chorus_flow_t *self);
uint64_t
    chorus_flow_finished_at (chorus_flow_t *self);
//  The business key (the definition's key path resolved on the input),
//  NULL if the definition has none
const char *
    chorus_flow_business_key (chorus_flow_t *self);
//  Status for operators (new reference): id, flow, version, state, input,
//  started, finished, error, and per step: state, attempts, last error,
//  timestamps, output (for_each: per item)
json_t *
    chorus_flow_status (chorus_flow_t *self);

const char *
    chorus_flow_state_name (chorus_flow_state_t state);

//  What the coordinator's figures read (chorus_flow_figures.c): the tasks
//  that ended (done or failed) among those changed since the last journal
//  record, each told to fn with its step's id, the ms from its first try
//  to its end, and whether it is done; call it after a transition, before
//  chorus_flow_delta or chorus_flow_snapshot
typedef void (chorus_flow_ended_fn) (const char *step, uint64_t duration_ms, bool done,
                                     void *arg);
void
    chorus_flow_ended_tasks (chorus_flow_t *self, chorus_flow_ended_fn *fn, void *arg);
//  When something last happened to the flow: it started or ended, a task
//  was first tried or ended, an event or signal came for it
uint64_t
    chorus_flow_last_change (chorus_flow_t *self);

//  --------------------------------------------------------------------------
//  Start ids and business keys

//  Longest start id or business key, in bytes
#define CHORUS_FLOW_KEY_MAX 128
//  The characters a start id or business key is made of, besides letters
//  and digits: no '/' (task keys are FLOW/STEP/ITEM), no whitespace
#define CHORUS_FLOW_KEY_PUNCT "-_.:@+=~"

//  Checks a start id or business key (what names it in the message, e.g.
//  "id"): 1 to CHORUS_FLOW_KEY_MAX of A-Z a-z 0-9 and CHORUS_FLOW_KEY_PUNCT.
//  0, or -1 with the problem in error ("bad id 'a/b': '/' at 2 is not
//  allowed; use ...")
int
    chorus_flow_check_key (const char *what, const char *key, char *error, size_t error_size);

//  The canonical business key of a value taken from a flow's input, which
//  the caller frees: a string is itself, an integer its decimal digits (so
//  1 and "1" are the same key); NULL with *error_p NULL for null or no
//  value (no key); NULL with the problem in error for any other value or
//  a key that fails chorus_flow_check_key
char *
    chorus_flow_canonical_key (const json_t *value, char *error, size_t error_size);

//  --------------------------------------------------------------------------
//  A set of flows, with one live flow per (definition name, business key)
//  and a bounded number of finished flows kept for status queries

chorus_flowset_t *
    chorus_flowset_new (size_t keep_finished);
void
    chorus_flowset_destroy (chorus_flowset_t **self_p);

//  Starts a flow, or returns the live flow with the same definition name
//  and business key without starting anything (*existing set to true);
//  a flow with the same id is returned the same way. The input is JSON, or
//  (when encoded is not NULL) the payload it came as.
chorus_flow_t *
    chorus_flowset_start (chorus_flowset_t *self, chorus_flowdef_t *def, const char *id,
                          const json_t *input, const void *encoded, size_t encoded_size,
                          uint64_t now, chorus_actions_t *out, bool *existing);
//  Adds a flow loaded from a journal; the set takes it
void
    chorus_flowset_insert (chorus_flowset_t *self, chorus_flow_t *flow);
chorus_flow_t *
    chorus_flowset_lookup (chorus_flowset_t *self, const char *id);
//  Call after a flow finished: it moves to the bounded list of finished
//  flows; returns the id of a finished flow evicted (and destroyed) to
//  keep the bound (caller frees), or NULL
char *
    chorus_flowset_finished (chorus_flowset_t *self, chorus_flow_t *flow);
//  Call after any transition: a finished flow moves to the finished list
//  (as chorus_flowset_finished), and a retried one back to the live list
char *
    chorus_flowset_update (chorus_flowset_t *self, chorus_flow_t *flow);
//  Destroys the oldest finished flow beyond the bound and returns its id
//  (caller frees), or NULL when within the bound; after inserting flows
//  from a journal, call it until it returns NULL
char *
    chorus_flowset_evict (chorus_flowset_t *self);
//  All flows, live first then finished, oldest first
size_t
    chorus_flowset_size (chorus_flowset_t *self);
chorus_flow_t *
    chorus_flowset_first (chorus_flowset_t *self);
chorus_flow_t *
    chorus_flowset_next (chorus_flowset_t *self);

#endif
