/*  chorus_flowdef.h — a flow definition, loaded from YAML (libyaml): the
    steps of a saga, their dependencies, retries, timeouts, fan-out and
    compensation. Loading validates everything and reports the first
    problem as "file:line:column: what is wrong". The format is documented
    in coordinator/FLOWS.md.

    Values are jansson trees. An input template is any YAML value; a string
    that starts with "$." inside it is a path, resolved when the step runs:
    $.input..., $.steps.ID.output..., $.item... (see chorus_flowdef_resolve).
    A step may have a `when` condition (parsed into a chorus_cond_t, see
    chorus_cond.h), or be a `sleep` that sends no command.
*/
#ifndef CHORUS_FLOWDEF_H_INCLUDED
#define CHORUS_FLOWDEF_H_INCLUDED

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _chorus_flowdef_t chorus_flowdef_t;
typedef struct _chorus_cond_t chorus_cond_t;

//  One step of a flow
typedef struct {
    char *id;                   //  unique within the flow
    char *service;              //  the service group that runs it, NULL: a sub-flow
    char *command;              //  the command sent to it, NULL: a sub-flow
    char **depends_on;          //  ids of steps that must complete first
    size_t depends_size;        //  how many
    json_t *input;              //  input template, NULL: no payload
    int attempts;               //  tries in all (retry.attempts), at least 1
    uint64_t backoff_ms;        //  wait before the second try
    double factor;              //  backoff multiplier per further try
    uint64_t max_backoff_ms;    //  longest wait between tries
    uint64_t timeout_ms;        //  deadline of one try (default 30000)
    char *compensate;           //  command that undoes the step, NULL: none
    json_t *compensate_input;   //  its input template, NULL: the step's output
    char *for_each;             //  path of a list to fan out over, NULL: none
    int max_parallel;           //  items in flight at once, 0: no limit
    int line;                   //  where the step starts in its file
    int column;                 //  (1-based)
    chorus_cond_t *when;        //  runs only if this holds (chorus_cond.h), NULL: always
    char *when_text;            //  its text
    bool sleep;                 //  a sleep step: sends nothing, wakes at a time
    uint64_t sleep_ms;          //  sleep: how long, from when it starts
    char *sleep_until;          //  sleep: or the path of the time it wakes at, NULL: none
    char *flow;                 //  the flow it runs as a child (`flow:`), NULL: a command
    int flow_line;              //  where that name is in the file
    int flow_column;            //  (1-based)
    char *await_topic;          //  await: the topic of the event awaited, NULL: none
    char *await_signal;         //  await: the name of the signal awaited, NULL: none
    json_t *await_match;        //  await: {payload path: value or $.input path}, NULL: any
    uint64_t await_timeout_ms;  //  await: how long it waits, 0: no limit
} chorus_stepdef_t;

//  Whether a step awaits an event or a signal instead of sending a command
#define chorus_stepdef_awaits(step) ((step)->await_topic || (step)->await_signal)

//  Parses a definition from YAML text; `origin` names it in errors (the
//  file name). On failure returns NULL and writes "origin:line:column:
//  message" into error.
chorus_flowdef_t *
    chorus_flowdef_parse (const char *text, size_t size, const char *origin, char *error,
                          size_t error_size);

//  Reads and parses a file
chorus_flowdef_t *
    chorus_flowdef_load (const char *path, char *error, size_t error_size);

void
    chorus_flowdef_destroy (chorus_flowdef_t **self_p);

const char *
    chorus_flowdef_name (chorus_flowdef_t *self);
int
    chorus_flowdef_version (chorus_flowdef_t *self);
//  Topic whose events start the flow; NULL if only started by command
const char *
    chorus_flowdef_trigger (chorus_flowdef_t *self);
//  Path of the business key ($.input.order_id); NULL: no key
const char *
    chorus_flowdef_key (chorus_flowdef_t *self);
//  Deadline of a whole flow, 0: none
uint64_t
    chorus_flowdef_timeout (chorus_flowdef_t *self);
//  Topics emitted on completion and on failure; NULL: none
const char *
    chorus_flowdef_emit_completed (chorus_flowdef_t *self);
const char *
    chorus_flowdef_emit_failed (chorus_flowdef_t *self);
//  The flow's output template (`output:`), resolved when the flow
//  completes against its input and the outputs of its steps; NULL: none
const json_t *
    chorus_flowdef_output (chorus_flowdef_t *self);
//  The YAML text it was parsed from, so that a journal can keep the exact
//  definition a running flow started with
const char *
    chorus_flowdef_source (chorus_flowdef_t *self);

//  Steps, in the order of the file; a step's index is its position
size_t
    chorus_flowdef_steps (chorus_flowdef_t *self);
const chorus_stepdef_t *
    chorus_flowdef_step (chorus_flowdef_t *self, size_t index);
//  Index of the step with this id, or -1
int
    chorus_flowdef_step_index (chorus_flowdef_t *self, const char *id);

//  Resolves a template against a context object {"input": ..., "steps":
//  {"ID": {"output": ...}}, "item": ...}: strings starting with "$." are
//  replaced by the value at that path (JSON null when the path leads
//  nowhere), everything else is copied. Returns a new reference.
json_t *
    chorus_flowdef_resolve (const json_t *template_, const json_t *context);

//  The value at a path ("$.input.order_id") in the context, borrowed;
//  NULL when the path leads nowhere
const json_t *
    chorus_flowdef_lookup (const json_t *context, const char *path);

//  Checks the syntax of a path: "$." then segments of A-Z a-z 0-9 _ -
//  separated by dots, starting with input, item or steps.ID.output. Returns
//  0 when it is well formed, else -1 with "bad path '...': why" in error.
//  Whether the step exists is for the loader to check.
int
    chorus_flowdef_path_check (const char *path, char *error, size_t error_size);

//  A duration, an integer and a unit (250ms, 2s, 10m, 1h), in milliseconds;
//  at most a year. Returns 0, or -1 with "bad duration '...': why" in error.
int
    chorus_flowdef_duration (const char *text, uint64_t *ms, char *error, size_t error_size);

//  A YAML scalar as templates read it (YAML 1.2 core schema): a plain
//  scalar that reads as null, a boolean, an integer or a finite real
//  becomes one; any other scalar, and every quoted or block scalar, is a
//  string. Returns a new reference, NULL if the text is not UTF-8.
json_t *
    chorus_flowdef_scalar (const char *text, size_t size, bool plain);

#endif
