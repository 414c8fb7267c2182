/*  chorus_flow_record.c — a flow saved and rebuilt. The journal keeps a
    flow as records in MessagePack: a snapshot of its whole state when it
    starts (and when the journal compacts it), then one delta per
    transition, which holds the flow's own fields and only the steps and
    tasks that changed, so that a transition costs the journal what it
    changed, not what the flow holds. The whole state as JSON is what
    journals of earlier versions hold; it is read when they are migrated.
*/
#include "chorus_flow_private.h"
#include "chorus_await.h"
#include "chorus_value.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const chorus_stepdef_t *
s_stepdef (chorus_flow_t *self, size_t index)
{
    return chorus_flowdef_step (self->def, index);
}

//  --------------------------------------------------------------------------
//  Journal records. A snapshot is [header..., id, input, steps]; a delta
//  [header..., steps, tasks]: the steps started or reset, each [index,
//  step], and the other tasks that changed, each [step, item, task]. The
//  header is the flow's own fields: state, cancelled, run, started,
//  finished, timeout_at, seq, error (nil or [code, message, step]).
//  Values may follow, each written only when it or a later one is needed
//  (records written before they existed end without them):
//  - in a snapshot: the flow's output (its definition's `output:`, made
//    when it completed; nil: none), then a child flow's parent, [parent
//    id, task key] (nil: none), then the events and signals received for
//    await steps (see chorus__mail_write);
//  - in a delta: the flow's output (when it was made or cleared since the
//    last record, or when the mail follows: the value it has, nil: none),
//    then the events and signals received since the last record.

#define S_HEADER_FIELDS 8
#define S_SNAPSHOT_FIELDS (S_HEADER_FIELDS + 3)
#define S_DELTA_FIELDS (S_HEADER_FIELDS + 2)

static void
s_header_write (chorus_flow_t *self, chorus_record_t *record, size_t fields)
{
    chorus_record_array (record, fields);
    chorus_record_uint (record, (uint64_t) self->state);
    chorus_record_bool (record, self->cancelled);
    chorus_record_uint (record, (uint64_t) self->run);
    chorus_record_uint (record, self->started);
    chorus_record_uint (record, self->finished);
    chorus_record_uint (record, self->timeout_at);
    chorus_record_uint (record, self->seq);
    if (!self->error_code)
        chorus_record_nil (record);
    else {
        chorus_record_array (record, 3);
        chorus_record_str (record, self->error_code);
        chorus_record_str (record, self->error_message);
        chorus_record_str (record, self->error_step);
    }
}

//  Reads the header into the flow, from a record of `fields` values or up
//  to `extra` more (read by the caller, who is told how many in *more);
//  false on a problem (in the reader, or in *why)
static bool
s_header_read (chorus_flow_t *self, chorus_reader_t *reader, size_t fields, size_t extra,
               size_t *more, const char **why)
{
    *why = "the flow's fields are malformed";
    size_t count = chorus_reader_array (reader);
    if (!reader->error && (count < fields || count > fields + extra))
        chorus_reader_fail (reader, "an array has the wrong number of values");
    *more = count - fields;
    if (reader->error)
        return false;
    self->state = (chorus_flow_state_t) chorus_reader_uint (reader, CHORUS_FLOW_STUCK);
    self->cancelled = chorus_reader_bool (reader);
    self->run = (int) chorus_reader_uint (reader, INT_MAX);
    self->started = chorus_reader_uint (reader, UINT64_MAX);
    self->finished = chorus_reader_uint (reader, UINT64_MAX);
    self->timeout_at = chorus_reader_uint (reader, UINT64_MAX);
    self->seq = chorus_reader_uint (reader, UINT64_MAX);
    char *code = NULL, *message = NULL, *step = NULL;
    if (!chorus_reader_nil (reader) && chorus_reader_tuple (reader, 3)) {
        code = chorus_reader_str (reader, false);
        message = chorus_reader_str (reader, true);
        step = chorus_reader_str (reader, true);
    }
    free (self->error_code);
    free (self->error_message);
    free (self->error_step);
    self->error_code = code;
    self->error_message = message;
    self->error_step = step;
    if (reader->error)
        return false;
    if (self->state < CHORUS_FLOW_RUNNING) {
        *why = "unknown flow state";
        return false;
    }
    return self->run >= 1 || chorus_reader_fail (reader, "the flow's run is not a positive number");
}

//  The mail of a record, no more of it than a flow keeps; 0 or -1
static int
s_mail_read (chorus_flow_t *self, chorus_reader_t *reader)
{
    if (chorus__mail_read (self, reader))
        return -1;
    if (self->mail_size > CHORUS_FLOW_MAIL_MAX) {
        chorus_reader_fail (reader, "too many received events and signals");
        return -1;
    }
    return 0;
}

void
chorus_flow_snapshot (chorus_flow_t *self, chorus_record_t *record)
{
    size_t extra = chorus__mail_pending (self, true)? 3: self->parent? 2:
                   chorus__value_held (&self->output)? 1: 0;
    s_header_write (self, record, S_SNAPSHOT_FIELDS + extra);
    chorus_record_str (record, self->id);
    chorus__value_write (&self->input, record);
    chorus_record_array (record, self->steps_size);
    for (size_t index = 0; index < self->steps_size; index++)
        chorus__step_write (&self->steps [index], s_stepdef (self, index)->id, record);
    if (extra >= 1)
        chorus__value_write (&self->output, record);
    if (extra >= 2 && !self->parent)
        chorus_record_nil (record);
    else
    if (extra >= 2) {
        chorus_record_array (record, 2);
        chorus_record_str (record, self->parent);
        chorus_record_str (record, self->parent_key);
    }
    if (extra >= 3)
        chorus__mail_write (self, record, true);
    self->output_dirty = false;
    self->touched_size = 0;     //  every task is written, and clean
}

//  The tasks of a delta are those the engine touched since the last
//  record (its list, not a pass over every task: a reply to one item of a
//  fan-out costs the same whatever the number of items). A task of a step
//  written whole, or listed twice, is written once.
void
chorus_flow_delta (chorus_flow_t *self, chorus_record_t *record)
{
    size_t extra = chorus__mail_pending (self, false)? 2: self->output_dirty? 1: 0;
    s_header_write (self, record, S_DELTA_FIELDS + extra);
    size_t steps = 0;
    for (size_t index = 0; index < self->steps_size; index++)
        steps += self->steps [index].dirty;
    //  The tasks after their steps: a step written whole is clean after
    chorus_record_t tasks;
    chorus_record_init (&tasks);
    size_t count = 0;
    for (size_t i = 0; i < self->touched_size; i++) {
        chorus__touched_t *touched = &self->touched [i];
        chorus__step_t *step = touched->step < self->steps_size? &self->steps [touched->step]
                                                                : NULL;
        if (!step || step->dirty || touched->task >= step->tasks_size
        ||  !step->tasks [touched->task].dirty)
            continue;
        chorus_record_array (&tasks, 3);
        chorus_record_uint (&tasks, touched->step);
        chorus_record_uint (&tasks, touched->task);
        chorus__task_write (&step->tasks [touched->task], &tasks);
        count++;
    }
    self->touched_size = 0;
    chorus_record_array (record, steps);
    for (size_t index = 0; index < self->steps_size && steps; index++)
        if (self->steps [index].dirty) {
            chorus_record_array (record, 2);
            chorus_record_uint (record, index);
            chorus__step_write (&self->steps [index], s_stepdef (self, index)->id, record);
        }
    chorus_record_array (record, count);
    if (tasks.size)
        chorus_record_raw (record, tasks.data, tasks.size);
    chorus_record_clear (&tasks);
    if (extra >= 1)
        chorus__value_write (&self->output, record);
    self->output_dirty = false;
    if (extra >= 2)
        chorus__mail_write (self, record, false);
}

//  The reason for a failed read: the reader's problem, or what was found
//  wrong in what it read
static void
s_why (chorus_reader_t *reader, const char *why, char *error, size_t error_size)
{
    if (error && error_size)
        snprintf (error, error_size, "%s", reader->error? reader->error: why);
}

chorus_flow_t *
chorus_flow_restore (chorus_flowdef_t *def, chorus_reader_t *reader, char *error,
                     size_t error_size)
{
    chorus_flow_t probe;
    memset (&probe, 0, sizeof probe);
    const char *why = "not a snapshot";
    chorus_flow_t *self = NULL;
    size_t extra = 0;
    if (s_header_read (&probe, reader, S_SNAPSHOT_FIELDS, 3, &extra, &why)) {
        char *id = chorus_reader_str (reader, false);
        chorus__value_t input = {NULL, NULL, 0};
        chorus__value_read (&input, reader);
        size_t steps = chorus_reader_array (reader);
        if (!reader->error && steps != chorus_flowdef_steps (def))
            why = "the steps differ from the definition's";
        else
        if (!reader->error && !chorus__value_held (&input))
            why = "the flow has no input";
        else
        if (!reader->error)
            self = chorus__flow_new (def, id, input.json, input.bytes, input.size);
        free (id);
        chorus__value_clear (&input);
    }
    if (self) {
        self->state = probe.state;
        self->cancelled = probe.cancelled;
        self->run = probe.run;
        self->started = probe.started;
        self->finished = probe.finished;
        self->timeout_at = probe.timeout_at;
        self->seq = probe.seq;
        self->error_code = probe.error_code;
        self->error_message = probe.error_message;
        self->error_step = probe.error_step;
        probe.error_code = probe.error_message = probe.error_step = NULL;
        for (size_t index = 0; self && index < self->steps_size; index++)
            if (chorus__step_read (&self->steps [index], index, s_stepdef (self, index),
                                   self->run, reader, &why))
                chorus_flow_destroy (&self);
    }
    if (self && extra >= 1)
        chorus__value_read (&self->output, reader);
    if (self && extra >= 2 && !chorus_reader_nil (reader) && chorus_reader_tuple (reader, 2)) {
        self->parent = chorus_reader_str (reader, false);
        self->parent_key = chorus_reader_str (reader, false);
    }
    if (self && extra >= 3 && !reader->error && s_mail_read (self, reader))
        chorus_flow_destroy (&self);
    if (self && !chorus_reader_done (reader))
        chorus_flow_destroy (&self);
    free (probe.error_code);
    free (probe.error_message);
    free (probe.error_step);
    if (!self)
        s_why (reader, why, error, error_size);
    return self;
}

int
chorus_flow_apply (chorus_flow_t *self, chorus_reader_t *reader, char *error, size_t error_size)
{
    const char *why = "not a delta";
    size_t extra = 0;
    if (!s_header_read (self, reader, S_DELTA_FIELDS, 2, &extra, &why)) {
        s_why (reader, why, error, error_size);
        return -1;
    }
    why = "a step of the delta is not one of the flow's";
    size_t steps = chorus_reader_array (reader);
    for (size_t i = 0; i < steps && !reader->error; i++) {
        chorus_reader_tuple (reader, 2);
        size_t index = (size_t) chorus_reader_uint (reader, self->steps_size - 1);
        if (!reader->error
        &&  chorus__step_read (&self->steps [index], index, s_stepdef (self, index), self->run,
                               reader, &why)) {
            s_why (reader, why, error, error_size);
            return -1;
        }
    }
    size_t tasks = chorus_reader_array (reader);
    for (size_t i = 0; i < tasks && !reader->error; i++) {
        chorus_reader_tuple (reader, 3);
        size_t index = (size_t) chorus_reader_uint (reader, self->steps_size - 1);
        chorus__step_t *step = reader->error? NULL: &self->steps [index];
        size_t t = step && step->tasks_size
                 ? (size_t) chorus_reader_uint (reader, step->tasks_size - 1): 0;
        if (step && !step->tasks_size)
            chorus_reader_fail (reader, "a task of the delta is not one of the flow's");
        chorus_task_state_t before = step && step->tasks_size? step->tasks [t].state: 0;
        if (!reader->error && chorus__task_read (&step->tasks [t], self->run, reader, &why)) {
            s_why (reader, why, error, error_size);
            return -1;
        }
        if (!reader->error) {
            //  The step's counts follow the task
            chorus_task_state_t after = step->tasks [t].state;
            step->tasks [t].state = before;
            chorus__step_set (step, &step->tasks [t], after);
        }
    }
    if (extra >= 1 && !reader->error)
        chorus__value_read (&self->output, reader);
    if ((extra >= 2 && !reader->error && s_mail_read (self, reader))
    ||  !chorus_reader_done (reader)) {
        s_why (reader, why, error, error_size);
        return -1;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  The whole state as JSON: what journals of earlier versions hold

json_t *
chorus_flow_save (chorus_flow_t *self)
{
    json_t *steps = json_array ();
    for (size_t index = 0; index < self->steps_size; index++)
        json_array_append_new (steps, chorus__step_save (&self->steps [index],
                                                         s_stepdef (self, index)->id));
    json_t *saved = json_pack (
        "{s:s, s:s, s:i, s:O, s:s, s:b, s:i, s:I, s:I, s:I, s:I, s:o, s:o}",
        "id", self->id, "flow", chorus_flowdef_name (self->def),
        "version", chorus_flowdef_version (self->def), "input", chorus__value_json (&self->input),
        "state", chorus_flow_state_name (self->state), "cancelled", self->cancelled,
        "run", self->run, "started", (json_int_t) self->started,
        "finished", (json_int_t) self->finished, "timeout_at", (json_int_t) self->timeout_at,
        "seq", (json_int_t) self->seq,
        "error", chorus__error_json (self->error_code, self->error_message, self->error_step),
        "steps", steps);
    //  Only a flow with an output has the field, as in the records
    json_t *output = chorus__value_decode (&self->output);
    if (output)
        json_object_set_new (saved, "output", output);
    if (self->parent)
        json_object_set_new (saved, "parent", json_pack ("{s:s, s:s}", "id", self->parent,
                                                         "task", self->parent_key));
    return saved;
}

//  The whole state as JSON with what a journal of earlier versions could
//  not hold (the received events and signals): what a test compares
json_t *
chorus_flow_save_all (chorus_flow_t *self)
{
    json_t *state = chorus_flow_save (self);
    json_t *received = chorus__mail_json (self);
    if (received)
        json_object_set_new (state, "received", received);
    return state;
}

chorus_flow_t *
chorus_flow_load (chorus_flowdef_t *def, const json_t *state, char *error, size_t error_size)
{
    const char *id = NULL, *name = NULL, *state_name = NULL;
    int version = 0, cancelled = 0, run = 0;
    json_t *input = NULL, *flow_error = NULL, *steps = NULL;
    json_int_t started, finished, timeout_at, seq;
    const char *why = NULL;
    if (!def || !state
    ||  json_unpack ((json_t *) state,
                     "{s:s, s:s, s:i, s:o, s:s, s:b, s:i, s:I, s:I, s:I, s:I, s:o, s:o}",
                     "id", &id, "flow", &name, "version", &version, "input", &input,
                     "state", &state_name, "cancelled", &cancelled, "run", &run,
                     "started", &started, "finished", &finished, "timeout_at", &timeout_at,
                     "seq", &seq, "error", &flow_error, "steps", &steps)
    ||  !json_is_array (steps) || run < 1)
        why = "not a saved flow";
    else
    if (strcmp (name, chorus_flowdef_name (def)) != 0 || version != chorus_flowdef_version (def))
        why = "saved from another definition";
    else
    if (json_array_size (steps) != chorus_flowdef_steps (def))
        why = "the steps differ from the definition's";
    else
    if (chorus__flow_state_from_name (state_name) == 0)
        why = "unknown flow state";
    chorus_flow_t *self = why? NULL: chorus__flow_new (def, id, input, NULL, 0);
    if (self) {
        self->state = chorus__flow_state_from_name (state_name);
        self->cancelled = cancelled;
        self->run = run;
        self->started = (uint64_t) started;
        self->finished = (uint64_t) finished;
        self->timeout_at = (uint64_t) timeout_at;
        self->seq = (uint64_t) seq;
        if (chorus__error_load (flow_error, &self->error_code, &self->error_message,
                                &self->error_step))
            why = "the flow's error is malformed";
        json_t *output = json_object_get (state, "output");
        if (output)
            chorus__value_set (&self->output, output, NULL, 0);
        for (size_t index = 0; index < self->steps_size && !why; index++) {
            const char *reason = NULL;
            if (chorus__step_load (&self->steps [index], index, s_stepdef (self, index), run,
                                   json_array_get (steps, index), &reason))
                why = reason;
        }
        if (why)
            chorus_flow_destroy (&self);
    }
    if (why && error && error_size)
        snprintf (error, error_size, "%s", why);
    return self;
}
