/*  chorus_flow_task.c — the tasks of a flow's steps: keys, outputs, saving
    and loading, and the view operators get. The flow engine decides what
    they do; this file only keeps them.
*/
#include "chorus_flow_task.h"
#include "chorus_value.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  --------------------------------------------------------------------------
//  Strings

char *
chorus__format (const char *format, ...)
{
    va_list args;
    va_start (args, format);
    int size = vsnprintf (NULL, 0, format, args);
    va_end (args);
    char *string = size >= 0? malloc ((size_t) size + 1): NULL;
    if (!string)
        abort ();
    va_start (args, format);
    vsnprintf (string, (size_t) size + 1, format, args);
    va_end (args);
    return string;
}

char *
chorus__strdup (const char *string)
{
    return string? chorus__format ("%s", string): NULL;
}

void
chorus__set (char **target, const char *value)
{
    char *copy = chorus__strdup (value);
    free (*target);
    *target = copy;
}

char *
chorus__business_key (chorus_flowdef_t *def, const json_t *input)
{
    const char *path = chorus_flowdef_key (def);
    if (!path)
        return NULL;
    json_t *context = json_pack ("{s:O}", "input", (json_t *) input);
    const json_t *value = chorus_flowdef_lookup (context, path);
    char *key = NULL;
    if (json_is_string (value))
        key = chorus__strdup (json_string_value (value));
    else
    if (json_is_number (value))
        key = json_dumps (value, JSON_ENCODE_ANY);
    json_decref (context);
    return key;
}

//  --------------------------------------------------------------------------
//  Values

bool
chorus__value_held (const chorus__value_t *value)
{
    return value->json || value->bytes;
}

json_t *
chorus__value_json (chorus__value_t *value)
{
    if (!value->json && value->bytes) {
        value->json = chorus_value_unpack (value->bytes, value->size);
        if (!value->json)
            value->json = json_null ();
    }
    return value->json;
}

json_t *
chorus__value_decode (const chorus__value_t *value)
{
    if (value->json)
        return json_incref (value->json);
    if (!value->bytes)
        return NULL;
    json_t *json = chorus_value_unpack (value->bytes, value->size);
    return json? json: json_null ();
}

void
chorus__value_set (chorus__value_t *value, const json_t *json, const void *bytes, size_t size)
{
    chorus__value_clear (value);
    if (bytes) {
        value->bytes = malloc (size? size: 1);
        if (!value->bytes)
            abort ();
        memcpy (value->bytes, bytes, size);
        value->size = size;
    }
    else
    if (json)
        value->json = json_deep_copy (json);
}

void
chorus__value_clear (chorus__value_t *value)
{
    json_decref (value->json);
    free (value->bytes);
    memset (value, 0, sizeof *value);
}

const void *
chorus__value_bytes (const chorus__value_t *value, size_t *size)
{
    *size = value->size;
    return value->bytes;
}

void
chorus__value_write (chorus__value_t *value, chorus_record_t *record)
{
    chorus_value_write (record, value->json, value->bytes, value->size);
}

int
chorus__value_read (chorus__value_t *value, chorus_reader_t *reader)
{
    chorus__value_clear (value);
    if (chorus_reader_nil (reader))
        return 0;
    //  A payload is kept as it is, and decoded when it is read into
    if (!chorus_reader_is_str (reader)) {
        size_t size;
        const void *bytes = chorus_reader_bin (reader, &size, false);
        if (!bytes)
            return -1;
        if (!chorus_value_is_payload (bytes, size)) {
            chorus_reader_fail (reader, "a value's payload does not decode");
            return -1;
        }
        chorus__value_set (value, NULL, bytes, size);
        return 0;
    }
    return chorus_value_read (reader, &value->json);
}

//  --------------------------------------------------------------------------
//  Tasks

bool
chorus__task_has_output (const chorus__task_t *task)
{
    return task->state == CHORUS_TASK_DONE || task->state == CHORUS_TASK_UNDOING
        || task->state == CHORUS_TASK_UNDONE || task->state == CHORUS_TASK_STUCK;
}

char *
chorus__task_key (const char *flow, const char *step, const chorus__task_t *task,
                  const char *suffix)
{
    char item [24] = "";
    char run [24] = "";
    if (task->item >= 0)
        snprintf (item, sizeof item, "/%d", task->item);
    if (task->run > 1)
        snprintf (run, sizeof run, ":r%d", task->run);
    return chorus__format ("%s/%s%s%s%s", flow, step, item, run, suffix? suffix: "");
}

void
chorus__task_reset (chorus__task_t *task, int run)
{
    chorus__value_clear (&task->output);
    free (task->error_code);
    free (task->error_message);
    size_t step = task->step;
    int item = task->item;
    memset (task, 0, sizeof *task);
    task->step = step;
    task->item = item;
    task->state = CHORUS_TASK_PENDING;
    task->run = run;
    task->dirty = true;
}

//  --------------------------------------------------------------------------
//  Steps

void
chorus__step_start (chorus__step_t *step, size_t index, json_t *items, int run)
{
    size_t size = items? json_array_size (items): 1;
    step->started = true;
    step->dirty = true;
    step->items = items;
    step->tasks = calloc (size? size: 1, sizeof (chorus__task_t));
    if (!step->tasks)
        abort ();
    step->tasks_size = size;
    for (size_t t = 0; t < size; t++) {
        step->tasks [t].step = index;
        step->tasks [t].item = items? (int) t: -1;
        chorus__task_reset (&step->tasks [t], run);
    }
    chorus__step_count (step);
}

void
chorus__step_reset (chorus__step_t *step)
{
    for (size_t t = 0; t < step->tasks_size; t++)
        chorus__task_reset (&step->tasks [t], 0);
    free (step->tasks);
    json_decref (step->items);
    free (step->error_code);
    free (step->error_message);
    memset (step, 0, sizeof *step);
    step->dirty = true;
}

void
chorus__step_count (chorus__step_t *step)
{
    memset (step->counts, 0, sizeof step->counts);
    step->next_pending = step->tasks_size;
    for (size_t t = step->tasks_size; t > 0; t--) {
        chorus_task_state_t state = step->tasks [t - 1].state;
        if (state >= CHORUS_TASK_PENDING && state <= CHORUS_TASK_LAST)
            step->counts [state]++;
        if (state == CHORUS_TASK_PENDING)
            step->next_pending = t - 1;
    }
}

void
chorus__step_set (chorus__step_t *step, chorus__task_t *task, chorus_task_state_t state)
{
    if (task->state >= CHORUS_TASK_PENDING && task->state <= CHORUS_TASK_LAST)
        step->counts [task->state]--;
    task->state = state;
    step->counts [state]++;
    size_t index = (size_t) (task - step->tasks);
    if (state == CHORUS_TASK_PENDING && index < step->next_pending)
        step->next_pending = index;
}

bool
chorus__step_done (const chorus__step_t *step)
{
    return step->started && !step->error_code
        && step->counts [CHORUS_TASK_DONE] + step->counts [CHORUS_TASK_SKIPPED]
           == step->tasks_size;
}

json_t *
chorus__step_output (chorus__step_t *step, bool fan_out, bool held)
{
    if (!step->started || step->error_code)
        return NULL;
    if (step->counts [CHORUS_TASK_SKIPPED])
        return json_null ();        //  a skipped step's output, fanned out or not
    size_t ready = step->counts [CHORUS_TASK_DONE];
    if (held)
        ready += step->counts [CHORUS_TASK_UNDOING] + step->counts [CHORUS_TASK_UNDONE]
               + step->counts [CHORUS_TASK_STUCK];
    if (ready != step->tasks_size)
        return NULL;
    if (!fan_out)
        return chorus__value_decode (&step->tasks [0].output);
    json_t *list = json_array ();
    for (size_t t = 0; t < step->tasks_size; t++) {
        json_t *output = chorus__value_decode (&step->tasks [t].output);
        json_array_append_new (list, output? output: json_null ());
    }
    return list;
}

//  --------------------------------------------------------------------------
//  Errors

json_t *
chorus__error_json (const char *code, const char *message, const char *step)
{
    if (!code)
        return json_null ();
    json_t *error = json_pack ("{s:s, s:s?}", "code", code, "message", message);
    if (step)
        json_object_set_new (error, "step", json_string (step));
    return error;
}

int
chorus__error_load (const json_t *json, char **code, char **message, char **step)
{
    if (!json || json_is_null (json))
        return 0;
    const char *c = NULL, *m = NULL, *s = NULL;
    if (json_unpack ((json_t *) json, "{s:s, s?:s, s?:s}", "code", &c, "message", &m,
                     "step", &s))
        return -1;
    chorus__set (code, c);
    chorus__set (message, m);
    if (step)
        chorus__set (step, s);
    return 0;
}

//  --------------------------------------------------------------------------
//  Saving and loading

static json_t *
s_task_save (chorus__task_t *task)
{
    json_t *json = json_pack (
        "{s:s, s:i, s:i, s:o, s:I, s:I, s:I, s:I, s:i, s:i, s:b}",
        "state", chorus_task_state_name (task->state), "run", task->run,
        "attempt", task->attempt,
        "error", chorus__error_json (task->error_code, task->error_message, NULL),
        "started", (json_int_t) task->started, "finished", (json_int_t) task->finished,
        "timer", (json_int_t) task->timer_at, "seq", (json_int_t) task->seq,
        "undo_attempt", task->undo_attempt, "undo_tries", task->undo_tries,
        "undo_waiting", task->undo_waiting);
    if (task->maybe_done)
        json_object_set_new (json, "maybe_done", json_true ());
    if (chorus__value_held (&task->output))
        json_object_set_new (json, "output", chorus__value_decode (&task->output));
    return json;
}

json_t *
chorus__step_save (chorus__step_t *step, const char *id)
{
    json_t *tasks = json_array ();
    for (size_t t = 0; t < step->tasks_size; t++)
        json_array_append_new (tasks, s_task_save (&step->tasks [t]));
    json_t *json = json_pack ("{s:s, s:b, s:o}", "id", id, "started", step->started,
                              "tasks", tasks);
    if (step->items)
        json_object_set (json, "items", step->items);
    if (step->error_code)
        json_object_set_new (json, "error",
                             chorus__error_json (step->error_code, step->error_message, NULL));
    return json;
}

static int
s_task_load (chorus__task_t *task, const json_t *json, int run)
{
    const char *state = NULL;
    json_t *error = NULL, *output = NULL;
    json_int_t started, finished, timer, seq;
    int undo_waiting = 0, maybe_done = 0;
    if (json_unpack ((json_t *) json,
                     "{s:s, s:i, s:i, s:o, s:I, s:I, s:I, s:I, s:i, s:i, s:b, s?:o, s?:b}",
                     "state", &state, "run", &task->run, "attempt", &task->attempt,
                     "error", &error, "started", &started, "finished", &finished,
                     "timer", &timer, "seq", &seq, "undo_attempt", &task->undo_attempt,
                     "undo_tries", &task->undo_tries, "undo_waiting", &undo_waiting,
                     "output", &output, "maybe_done", &maybe_done))
        return -1;
    task->state = 0;
    for (int value = CHORUS_TASK_PENDING; value <= CHORUS_TASK_LAST; value++)
        if (strcmp (state, chorus_task_state_name ((chorus_task_state_t) value)) == 0)
            task->state = (chorus_task_state_t) value;
    if (!task->state || task->run < 1 || task->run > run
    ||  chorus__error_load (error, &task->error_code, &task->error_message, NULL))
        return -1;
    task->started = (uint64_t) started;
    task->finished = (uint64_t) finished;
    task->timer_at = (uint64_t) timer;
    task->seq = (uint64_t) seq;
    task->undo_waiting = undo_waiting;
    task->maybe_done = maybe_done;
    chorus__value_set (&task->output, output, NULL, 0);
    return 0;
}

int
chorus__step_load (chorus__step_t *step, size_t index, const chorus_stepdef_t *def, int run,
                   const json_t *json, const char **why)
{
    const char *id = NULL;
    int started = 0;
    json_t *tasks = NULL, *items = NULL, *error = NULL;
    *why = "a step is malformed";
    if (json_unpack ((json_t *) json, "{s:s, s:b, s:o, s?:o, s?:o}", "id", &id,
                     "started", &started, "tasks", &tasks, "items", &items, "error", &error)
    ||  !json_is_array (tasks) || (items && !json_is_array (items)))
        return -1;
    if (strcmp (id, def->id) != 0) {
        *why = "the steps differ from the definition's";
        return -1;
    }
    if (chorus__error_load (error, &step->error_code, &step->error_message, NULL))
        return -1;
    //  A fan-out that was skipped has no items and one task
    bool fan_out = started && !step->error_code && def->for_each && items;
    size_t expected = fan_out? json_array_size (items): started && !step->error_code;
    if (json_array_size (tasks) != expected)
        return -1;
    if (started && !step->error_code)
        chorus__step_start (step, index, fan_out? json_deep_copy (items): NULL, run);
    step->started = started;
    for (size_t t = 0; t < expected; t++) {
        chorus__task_reset (&step->tasks [t], run);
        if (s_task_load (&step->tasks [t], json_array_get (tasks, t), run)
        ||  (def->for_each && !fan_out && step->tasks [t].state != CHORUS_TASK_SKIPPED)) {
            *why = "a task is malformed";
            return -1;
        }
    }
    chorus__step_count (step);
    return 0;
}

//  --------------------------------------------------------------------------
//  Journal records: a task is [state, run, attempt, error, started,
//  finished, timer, seq, undo_attempt, undo_tries, undo_waiting, output,
//  maybe_done] (journals written before maybe_done have 12 values: false),
//  a step [id, started, items, error, tasks], an error nil or [code,
//  message]; values as chorus_value_write puts them

#define S_TASK_FIELDS 13
#define S_TASK_FIELDS_OLD 12     //  before maybe_done
#define S_STEP_FIELDS 5

static void
s_error_write (chorus_record_t *record, const char *code, const char *message)
{
    if (!code)
        chorus_record_nil (record);
    else {
        chorus_record_array (record, 2);
        chorus_record_str (record, code);
        chorus_record_str (record, message);
    }
}

//  Replaces *code and *message by what the record holds
static void
s_error_read (chorus_reader_t *reader, char **code, char **message)
{
    char *new_code = NULL, *new_message = NULL;
    if (!chorus_reader_nil (reader) && chorus_reader_tuple (reader, 2)) {
        new_code = chorus_reader_str (reader, false);
        new_message = chorus_reader_str (reader, true);
    }
    free (*code);
    free (*message);
    *code = new_code;
    *message = new_message;
}

void
chorus__task_write (chorus__task_t *task, chorus_record_t *record)
{
    chorus_record_array (record, S_TASK_FIELDS);
    chorus_record_uint (record, (uint64_t) task->state);
    chorus_record_uint (record, (uint64_t) task->run);
    chorus_record_uint (record, (uint64_t) task->attempt);
    s_error_write (record, task->error_code, task->error_message);
    chorus_record_uint (record, task->started);
    chorus_record_uint (record, task->finished);
    chorus_record_uint (record, task->timer_at);
    chorus_record_uint (record, task->seq);
    chorus_record_uint (record, (uint64_t) task->undo_attempt);
    chorus_record_uint (record, (uint64_t) task->undo_tries);
    chorus_record_bool (record, task->undo_waiting);
    chorus__value_write (&task->output, record);
    chorus_record_bool (record, task->maybe_done);
    task->dirty = false;
}

int
chorus__task_read (chorus__task_t *task, int run, chorus_reader_t *reader, const char **why)
{
    *why = "a task is malformed";
    size_t fields = chorus_reader_array (reader);
    if (reader->error || (fields != S_TASK_FIELDS && fields != S_TASK_FIELDS_OLD)) {
        chorus_reader_fail (reader, "an array has the wrong number of values");
        return -1;
    }
    task->state = (chorus_task_state_t) chorus_reader_uint (reader, CHORUS_TASK_LAST);
    task->run = (int) chorus_reader_uint (reader, INT_MAX);
    task->attempt = (int) chorus_reader_uint (reader, INT_MAX);
    s_error_read (reader, &task->error_code, &task->error_message);
    task->started = chorus_reader_uint (reader, UINT64_MAX);
    task->finished = chorus_reader_uint (reader, UINT64_MAX);
    task->timer_at = chorus_reader_uint (reader, UINT64_MAX);
    task->seq = chorus_reader_uint (reader, UINT64_MAX);
    task->undo_attempt = (int) chorus_reader_uint (reader, INT_MAX);
    task->undo_tries = (int) chorus_reader_uint (reader, INT_MAX);
    task->undo_waiting = chorus_reader_bool (reader);
    chorus__value_read (&task->output, reader);
    task->maybe_done = fields == S_TASK_FIELDS && chorus_reader_bool (reader);
    task->dirty = false;
    if (reader->error)
        return -1;
    if (task->state < CHORUS_TASK_PENDING || task->run < 1 || task->run > run)
        return -1;
    return 0;
}

void
chorus__step_write (chorus__step_t *step, const char *id, chorus_record_t *record)
{
    chorus_record_array (record, S_STEP_FIELDS);
    chorus_record_str (record, id);
    chorus_record_bool (record, step->started);
    chorus_value_write (record, step->items, NULL, 0);
    s_error_write (record, step->error_code, step->error_message);
    chorus_record_array (record, step->tasks_size);
    for (size_t t = 0; t < step->tasks_size; t++)
        chorus__task_write (&step->tasks [t], record);
    step->dirty = false;
}

int
chorus__step_read (chorus__step_t *step, size_t index, const chorus_stepdef_t *def, int run,
                   chorus_reader_t *reader, const char **why)
{
    *why = "a step is malformed";
    chorus__step_reset (step);
    step->dirty = false;
    if (!chorus_reader_tuple (reader, S_STEP_FIELDS))
        return -1;
    char *id = chorus_reader_str (reader, false);
    bool same = id && strcmp (id, def->id) == 0;
    free (id);
    if (!same) {
        if (!reader->error)
            *why = "the steps differ from the definition's";
        return -1;
    }
    bool started = chorus_reader_bool (reader);
    json_t *items = NULL;
    chorus_value_read (reader, &items);
    s_error_read (reader, &step->error_code, &step->error_message);
    size_t tasks = chorus_reader_array (reader);
    //  A fan-out that was skipped has no items and one task
    bool fan_out = started && !step->error_code && def->for_each && items;
    size_t expected = fan_out? json_array_size (items): started && !step->error_code;
    if (reader->error || (fan_out && !json_is_array (items)) || (!fan_out && items)
    ||  tasks != expected) {
        json_decref (items);
        return -1;
    }
    if (started && !step->error_code)
        chorus__step_start (step, index, items, run);
    step->started = started;
    step->dirty = false;
    for (size_t t = 0; t < expected; t++) {
        if (chorus__task_read (&step->tasks [t], run, reader, why))
            return -1;
        if (def->for_each && !fan_out && step->tasks [t].state != CHORUS_TASK_SKIPPED) {
            chorus_reader_fail (reader, "a fan-out without items was not skipped");
            return -1;
        }
    }
    chorus__step_count (step);
    return 0;
}

//  --------------------------------------------------------------------------
//  The view of operators

static json_t *
s_time (uint64_t time)
{
    return time? json_integer ((json_int_t) time): json_null ();
}

static json_t *
s_task_status (chorus__task_t *task)
{
    json_t *json = json_pack ("{s:i, s:s, s:i, s:o, s:o, s:o, s:o?}", "item", task->item,
                              "state", chorus_task_state_name (task->state),
                              "attempts", task->attempt,
                              "error", chorus__error_json (task->error_code,
                                                           task->error_message, NULL),
                              "started", s_time (task->started),
                              "finished", s_time (task->finished),
                              "output", chorus__value_decode (&task->output));
    if (task->maybe_done)
        json_object_set_new (json, "maybe_done", json_true ());
    return json;
}

//  One name for a step's tasks: theirs when they agree, else the state
//  that matters most to an operator
static const char *
s_step_state (const chorus__step_t *step, bool flow_running)
{
    if (!step->started)
        return "pending";
    if (step->error_code)
        return "failed";
    if (step->tasks_size == 0)
        return "done";
    size_t count [CHORUS_TASK_LAST + 1] = { 0 };
    for (size_t t = 0; t < step->tasks_size; t++)
        count [step->tasks [t].state]++;
    for (int state = CHORUS_TASK_PENDING; state <= CHORUS_TASK_LAST; state++)
        if (count [state] == step->tasks_size)
            return chorus_task_state_name ((chorus_task_state_t) state);
    if (count [CHORUS_TASK_STUCK])
        return "stuck";
    if (count [CHORUS_TASK_UNDOING] || (count [CHORUS_TASK_DONE] && count [CHORUS_TASK_UNDONE]))
        return "undoing";
    if (count [CHORUS_TASK_RUNNING] || count [CHORUS_TASK_WAITING] || flow_running)
        return "running";
    if (count [CHORUS_TASK_FAILED])
        return "failed";
    return count [CHORUS_TASK_DONE]? "done": "undone";
}

json_t *
chorus__step_status (chorus__step_t *step, const chorus_stepdef_t *def, bool flow_running)
{
    int attempts = 0;
    uint64_t started = 0, finished = 0;
    bool all_finished = step->tasks_size > 0;
    const chorus__task_t *failed = NULL;
    for (size_t t = 0; t < step->tasks_size; t++) {
        const chorus__task_t *task = &step->tasks [t];
        attempts += task->attempt;
        if (task->started && (!started || task->started < started))
            started = task->started;
        if (task->finished > finished)
            finished = task->finished;
        all_finished = all_finished && task->finished;
        if (!failed && task->error_code
        &&  (task->state == CHORUS_TASK_FAILED || task->state == CHORUS_TASK_STUCK
             || !def->for_each))
            failed = task;
    }
    json_t *error = step->error_code
                  ? chorus__error_json (step->error_code, step->error_message, NULL)
                  : failed? chorus__error_json (failed->error_code, failed->error_message, NULL)
                  : json_null ();
    //  A fan-out's outputs are its items': each is in the status once
    json_t *output = def->for_each? NULL: chorus__step_output (step, false, true);
    json_t *status = json_pack ("{s:s, s:s, s:i, s:o, s:o, s:o, s:o}", "id", def->id,
                                "state", s_step_state (step, flow_running),
                                "attempts", attempts, "error", error,
                                "started", s_time (started),
                                "finished", s_time (all_finished? finished: 0),
                                "output", output? output: json_null ());
    //  Told only when true: some task's last try went unanswered
    for (size_t t = 0; t < step->tasks_size; t++)
        if (step->tasks [t].maybe_done) {
            json_object_set_new (status, "maybe_done", json_true ());
            break;
        }
    //  A sleep shows when it wakes
    if (def->sleep && step->tasks_size == 1 && step->tasks [0].state == CHORUS_TASK_WAITING) {
        json_object_set_new (status, "state", json_string ("sleeping"));
        json_object_set_new (status, "wakes", s_time (step->tasks [0].timer_at));
    }
    if (def->for_each) {
        json_object_del (status, "output");
        json_t *items = json_array ();
        //  A skipped fan-out read no items
        for (size_t t = 0; t < step->tasks_size && step->tasks [t].item >= 0; t++)
            json_array_append_new (items, s_task_status (&step->tasks [t]));
        json_object_set_new (status, "items", items);
    }
    return status;
}

//  --------------------------------------------------------------------------
//  Task states

static const char *s_task_states [] = {
    NULL, "pending", "running", "waiting", "done", "failed", "undoing", "undone", "stuck",
    "skipped"
};

const char *
chorus_task_state_name (chorus_task_state_t state)
{
    return state >= CHORUS_TASK_PENDING && state <= CHORUS_TASK_LAST
         ? s_task_states [state]: "unknown";
}
