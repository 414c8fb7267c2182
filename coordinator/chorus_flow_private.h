/*  chorus_flow_private.h — private to the flow engine: a flow's fields,
    which the engine (chorus_flow.c) moves on and its records
    (chorus_flow_record.c) save and rebuild. Not installed.
*/
#ifndef CHORUS_FLOW_PRIVATE_H_INCLUDED
#define CHORUS_FLOW_PRIVATE_H_INCLUDED

#include "chorus_flow.h"
#include "chorus_flow_task.h"

//  A task changed since the last journal record: its step and index
typedef struct {
    size_t step;
    size_t task;
} chorus__touched_t;

//  An event or signal the flow received for its await steps (chorus_await.c)
typedef struct {
    bool signal;                //  a signal, else an event
    char *name;                 //  the event's topic, or the signal's name
    char *id;                   //  the event's id, or the signal's id: each is taken once
    chorus__value_t payload;    //  its payload while it is kept; none once a step took it
    int step;                   //  the await step it is kept for or went to, -1: none yet
    uint64_t at;                //  when it came
    bool dirty;                 //  changed since the last journal record
} chorus__mail_t;

struct _chorus_flow_t {
    chorus_flowdef_t *def;      //  its definition, not owned
    char *id;                   //  unique flow id
    chorus__value_t input;      //  the flow's input
    char *business_key;         //  the definition's key path on the input, or NULL
    chorus_flow_state_t state;  //  where it is
    bool cancelled;             //  the failure is a cancel: it ends CANCELLED
    int run;                    //  1, then +1 per retry of a failed flow
    uint64_t started;           //  when it started
    uint64_t finished;          //  when it reached a terminal state, 0: not yet
    uint64_t timeout_at;        //  pending flow-timeout timer, 0: none
    uint64_t seq;               //  last completion number handed out
    char *error_code;           //  why it failed, NULL: it did not
    char *error_message;        //  the message
    char *error_step;           //  the step that failed, NULL: none
    chorus__step_t *steps;      //  one per step of the definition
    size_t steps_size;          //  how many
    chorus__value_t output;     //  the definition's output, made when it completed
    bool output_dirty;          //  output made or cleared since the last journal record
    char *parent;               //  a child flow: its parent's id, NULL: none
    char *parent_key;           //  and the key of the parent's task it runs for
    chorus__touched_t *touched; //  the tasks changed since the last record, for its delta
    size_t touched_size;        //  how many
    size_t touched_max;         //  allocated
    chorus__mail_t *mail;       //  events and signals received for its await steps
    size_t mail_size;           //  how many
    size_t mail_max;            //  allocated
};

//  A new flow of the definition with this id and input (copied: JSON, its
//  payload, or both; an empty object when neither), in no state yet; NULL
//  when memory runs out
chorus_flow_t *
    chorus__flow_new (chorus_flowdef_t *def, const char *id, const json_t *input,
                      const void *encoded, size_t size);
//  Starts a flow of such an input
chorus_flow_t *
    chorus__flow_start (chorus_flowdef_t *def, const char *id, const json_t *input,
                        const void *encoded, size_t size, uint64_t now, chorus_actions_t *out);
//  The task whose command (or compensation: *undo) has this key, or NULL
chorus__task_t *
    chorus__flow_find (chorus_flow_t *self, const char *key, bool *undo);
//  Starts what may start, completes or compensates the flow
void
    chorus__flow_advance (chorus_flow_t *self, uint64_t now, chorus_actions_t *out);
//  The timer of an await's timeout is CHORUS__AWAIT_TIMER + its task key
#define CHORUS__AWAIT_TIMER "await:"

//  Its state from its name, 0 if unknown
chorus_flow_state_t
    chorus__flow_state_from_name (const char *name);

#endif
