/*  chorus_flow_task.h — private to the flow engine: the tasks of a flow's
    steps, their keys and outputs, how they are saved and loaded, and how
    operators see them. Not installed.
*/
#ifndef CHORUS_FLOW_TASK_H_INCLUDED
#define CHORUS_FLOW_TASK_H_INCLUDED

#include "chorus_flowdef.h"
#include "chorus_record.h"
#include "chorus_task_state.h"

//  A value the engine holds: JSON, and the payload it came as when it came
//  as one. What only passes a value on (the journal, a command whose input
//  is the whole value, the completion event) takes the bytes as they are;
//  the JSON is decoded from them when something first reads into it.
typedef struct {
    json_t *json;               //  the value; NULL: not decoded yet, or no value
    void *bytes;                //  its payload, NULL: none
    size_t size;                //  its size
} chorus__value_t;

//  Whether it holds a value
bool
    chorus__value_held (const chorus__value_t *value);
//  The value (borrowed), decoded now if it was not (a payload that does not
//  decode is null); NULL when it holds none
json_t *
    chorus__value_json (chorus__value_t *value);
//  The value as a new reference, decoded from its payload each time when
//  it has not been (nothing keeps the decoded copy: a fan-out's outputs,
//  read for a status or a template, are not kept twice); NULL when it
//  holds none
json_t *
    chorus__value_decode (const chorus__value_t *value);
//  Holds a copy of json, or of the payload (json may then be NULL), or,
//  with both NULL, no value
void
    chorus__value_set (chorus__value_t *value, const json_t *json, const void *bytes,
                       size_t size);
void
    chorus__value_clear (chorus__value_t *value);
//  The value's payload (borrowed, NULL when it has none) in *size
const void *
    chorus__value_bytes (const chorus__value_t *value, size_t *size);
//  Writes it into a record (nil when none), reads it back; 0 or -1
void
    chorus__value_write (chorus__value_t *value, chorus_record_t *record);
int
    chorus__value_read (chorus__value_t *value, chorus_reader_t *reader);

//  One unit of work: a step, or one item of a for_each step
typedef struct {
    size_t step;                //  index of its step
    int item;                   //  index of its item, -1: not fanned out
    chorus_task_state_t state;  //  where it is
    int run;                    //  run of the flow it belongs to, from 1
    int attempt;                //  current try of its command, from 1 (0: never sent)
    chorus__value_t output;     //  reply payload once done, none before
    char *error_code;           //  last error, NULL: none
    char *error_message;        //  its message
    uint64_t started;           //  first try sent, 0: not yet
    uint64_t finished;          //  done or failed, 0: not yet
    uint64_t timer_at;          //  when its backoff timer fires (WAITING, undo_waiting)
    uint64_t seq;               //  completion order, 0: not done
    int undo_attempt;           //  current try of its compensation, from 1
    int undo_tries;             //  compensation tries since it was (re)started
    bool undo_waiting;          //  UNDOING: waits for a backoff timer, no try in flight
    bool maybe_done;            //  its last try went unanswered: the service may have done
                                //  it, so it is compensated if the flow undoes
    bool dirty;                 //  changed since the last journal record
    bool cancel_sent;           //  a sub-flow's task: its child was asked to cancel (not
                                //  journaled: asked again after a restart)
} chorus__task_t;

//  The progress of one step
typedef struct {
    bool started;               //  its tasks exist
    json_t *items;              //  for_each: the list fanned out over, owned
    chorus__task_t *tasks;      //  its tasks, in item order
    size_t tasks_size;          //  how many
    char *error_code;           //  it failed before any task ran (bad for_each)
    char *error_message;        //  its message
    bool dirty;                 //  started or reset since the last journal record
    //  Kept from the tasks, never journaled, so that a reply costs the
    //  same whatever the number of items (see chorus__step_count)
    size_t counts [CHORUS_TASK_LAST + 1];   //  tasks in each state
    size_t next_pending;        //  no task before this one is PENDING
} chorus__step_t;

//  A new string, printf-style; aborts when memory runs out
char *
    chorus__format (const char *format, ...) __attribute__ ((format (printf, 1, 2)));
//  A copy, or NULL for NULL
char *
    chorus__strdup (const char *string);
//  Replaces *target with a copy of value
void
    chorus__set (char **target, const char *value);

//  The definition's key path resolved on {"input": input}: a string as
//  is, a number as its JSON text, anything else no key (NULL)
char *
    chorus__business_key (chorus_flowdef_t *def, const json_t *input);

//  Has the task completed, whatever happened since (undone, stuck)?
bool
    chorus__task_has_output (const chorus__task_t *task);
//  "FLOW/STEP[/ITEM][:rN]" + suffix, the idempotency key of its command
char *
    chorus__task_key (const char *flow, const char *step, const chorus__task_t *task,
                      const char *suffix);
//  Back to PENDING in run `run`, all else forgotten
void
    chorus__task_reset (chorus__task_t *task, int run);

//  Starts the step at `index` with one task, or with one per item of
//  `items` (taken) when not NULL
void
    chorus__step_start (chorus__step_t *step, size_t index, json_t *items, int run);
//  Back to never started
void
    chorus__step_reset (chorus__step_t *step);
//  Counts the step's tasks in each state again, and finds its first
//  PENDING task: after its tasks were changed other than through
//  chorus__step_set (started, reset, read, loaded)
void
    chorus__step_count (chorus__step_t *step);
//  Moves one of the step's tasks to a state, keeping the counts
void
    chorus__step_set (chorus__step_t *step, chorus__task_t *task, chorus_task_state_t state);
//  Whether the step is done: started, and every task of it done (or it
//  was skipped)
bool
    chorus__step_done (const chorus__step_t *step);
//  The step's output (new reference): its task's, or its items' in order
//  for a fan-out; NULL unless every task is done (or, with `held`, holds
//  an output: compensation reads them after some were undone)
json_t *
    chorus__step_output (chorus__step_t *step, bool fan_out, bool held);

//  {"code", "message"[, "step"]}, or JSON null without a code
json_t *
    chorus__error_json (const char *code, const char *message, const char *step);
//  Reads that back into the strings (step may be NULL); -1 if malformed
int
    chorus__error_load (const json_t *json, char **code, char **message, char **step);

//  The step's state as JSON, and the step rebuilt from it (-1 with a
//  reason in `why` when the state does not fit the definition or run)
json_t *
    chorus__step_save (chorus__step_t *step, const char *id);
int
    chorus__step_load (chorus__step_t *step, size_t index, const chorus_stepdef_t *def,
                       int run, const json_t *json, const char **why);

//  The step as a journal record (its tasks in full), and the step
//  rebuilt from one (-1 with the reason in `why`, or in the reader)
void
    chorus__step_write (chorus__step_t *step, const char *id, chorus_record_t *record);
int
    chorus__step_read (chorus__step_t *step, size_t index, const chorus_stepdef_t *def,
                       int run, chorus_reader_t *reader, const char **why);
//  The same for one task
void
    chorus__task_write (chorus__task_t *task, chorus_record_t *record);
int
    chorus__task_read (chorus__task_t *task, int run, chorus_reader_t *reader, const char **why);

//  The step as operators see it (see chorus_flow_status)
json_t *
    chorus__step_status (chorus__step_t *step, const chorus_stepdef_t *def, bool flow_running);

#endif
