/*  chorus_flow.c — the flow engine: one flow's tasks, moved on by replies,
    timers, cancel and retry, answering with the commands, timers and events
    the shell must carry out. Nothing comes in but the calls and `now`.
*/
#include "chorus_flow_private.h"
#include "chorus_await.h"
#include "chorus_cond.h"
#include "chorus_sleep.h"
#include "chorus_value.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_UNDO_TRIES_MIN    5               //  a compensation is tried at least this often
#define S_FLOW_TIMER        "flow-timeout"  //  the flow's deadline timer (":rN" after a retry)
#define S_RETRY_TIMER       "retry:"        //  prefix of a task's backoff timer
#define S_UNDO_SUFFIX       "/undo"         //  a compensation's key: task key + this


static const char *s_flow_states [] = {
    NULL, "running", "compensating", "completed", "failed", "cancelled", "stuck"
};

//  --------------------------------------------------------------------------
//  Small helpers

static const chorus_stepdef_t *
s_stepdef (chorus_flow_t *self, size_t index)
{
    return chorus_flowdef_step (self->def, index);
}

static char *
s_task_key (chorus_flow_t *self, const chorus__task_t *task, const char *suffix)
{
    return chorus__task_key (self->id, s_stepdef (self, task->step)->id, task, suffix);
}

static char *
s_flow_timer_key (chorus_flow_t *self)
{
    return self->run > 1? chorus__format ("%s:r%d", S_FLOW_TIMER, self->run)
                        : chorus__strdup (S_FLOW_TIMER);
}

//  Wait before the try after `try_`: backoff * factor^(try-1), capped
static uint64_t
s_backoff (const chorus_stepdef_t *def, int try_)
{
    double wait = (double) def->backoff_ms;
    double cap = def->max_backoff_ms? (double) def->max_backoff_ms: 1e15;
    for (int i = 1; i < try_ && wait < cap; i++)
        wait *= def->factor > 0? def->factor: 1;
    return (uint64_t) (wait < cap? wait: cap);
}

//  A task changed: it goes in the next delta, which reads the list of
//  touched tasks rather than every task of the flow
static void
s_touch (chorus_flow_t *self, chorus__task_t *task)
{
    if (task->dirty)
        return;
    task->dirty = true;
    if (self->touched_size == self->touched_max) {
        size_t max = self->touched_max? self->touched_max * 2: 16;
        chorus__touched_t *touched = realloc (self->touched, max * sizeof *touched);
        if (!touched)
            abort ();
        self->touched = touched;
        self->touched_max = max;
    }
    chorus__step_t *step = &self->steps [task->step];
    chorus__touched_t entry = {task->step, (size_t) (task - step->tasks)};
    self->touched [self->touched_size++] = entry;
}

//  A task moves to a state: its step's counts follow, and the delta has it
static void
s_set (chorus_flow_t *self, chorus__task_t *task, chorus_task_state_t state)
{
    chorus__step_set (&self->steps [task->step], task, state);
    s_touch (self, task);
}

//  --------------------------------------------------------------------------
//  Actions

void
chorus_actions_init (chorus_actions_t *self)
{
    memset (self, 0, sizeof *self);
}

void
chorus_actions_clear (chorus_actions_t *self)
{
    for (size_t index = 0; index < self->size; index++) {
        chorus_action_t *action = &self->items [index];
        free (action->flow);
        free (action->key);
        free (action->service);
        free (action->command);
        free (action->topic);
        free (action->encoded);
        json_decref (action->payload);
    }
    free (self->items);
    chorus_actions_init (self);
}

chorus_action_t *
chorus_actions_push (chorus_actions_t *self)
{
    if (self->size == self->max) {
        size_t max = self->max? self->max * 2: 8;
        chorus_action_t *items = realloc (self->items, max * sizeof *items);
        if (!items)
            abort ();
        self->items = items;
        self->max = max;
    }
    chorus_action_t *action = &self->items [self->size++];
    memset (action, 0, sizeof *action);
    return action;
}

static chorus_action_t *
s_push (chorus_actions_t *out, chorus_action_kind_t kind, chorus_flow_t *self)
{
    chorus_action_t *action = chorus_actions_push (out);
    action->kind = kind;
    action->flow = chorus__strdup (self->id);
    return action;
}

//  Takes the key
static void
s_timer (chorus_flow_t *self, chorus_actions_t *out, char *key, uint64_t at)
{
    chorus_action_t *action = s_push (out, CHORUS_ACTION_TIMER, self);
    action->key = key;
    action->at = at;
}

static void
    s_fail (chorus_flow_t *self, const char *code, const char *message, const char *step,
            uint64_t now);

//  --------------------------------------------------------------------------
//  Tasks that await (what a flow receives for them is its mail: chorus_await.c)

//  The task completes with the mail's payload, which the mail then drops
static void
s_await_complete (chorus_flow_t *self, chorus__task_t *task, chorus__mail_t *mail, uint64_t now)
{
    s_set (self, task, CHORUS_TASK_DONE);
    chorus__mail_take (self, task, mail);
    task->timer_at = 0;
    task->finished = now;
    task->seq = ++self->seq;
}

static char *
s_await_timer_key (chorus_flow_t *self, const chorus__task_t *task)
{
    char *key = chorus__task_key (self->id, s_stepdef (self, task->step)->id, task, NULL);
    char *timer = chorus__format (CHORUS__AWAIT_TIMER "%s", key);
    free (key);
    return timer;
}

static void
s_await_begin (chorus_flow_t *self, chorus__task_t *task, uint64_t now,
                     chorus_actions_t *out)
{
    const chorus_stepdef_t *def = s_stepdef (self, task->step);
    s_set (self, task, CHORUS_TASK_RUNNING);
    task->attempt = 1;
    task->started = now;
    task->timer_at = 0;
    chorus__mail_t *mail = def->await_signal? chorus__mail_signal_for (self, def->await_signal)
                                            : chorus__mail_kept_for (self, task->step);
    if (mail)
        s_await_complete (self, task, mail, now);
    else
    if (def->await_timeout_ms) {
        task->timer_at = now + def->await_timeout_ms;
        s_timer (self, out, s_await_timer_key (self, task), task->timer_at);
    }
}

static void
s_await_timeout (chorus_flow_t *self, chorus__task_t *task, uint64_t now)
{
    const chorus_stepdef_t *def = s_stepdef (self, task->step);
    s_set (self, task, CHORUS_TASK_FAILED);
    task->timer_at = 0;
    task->finished = now;
    chorus__set (&task->error_code, "await-timeout");
    char *message = def->await_signal
        ? chorus__format ("no signal '%s' within %" PRIu64 " ms", def->await_signal,
                          def->await_timeout_ms)
        : chorus__format ("no matching event on '%s' within %" PRIu64 " ms", def->await_topic,
                          def->await_timeout_ms);
    chorus__set (&task->error_message, message);
    s_fail (self, task->error_code, message, def->id, now);
    free (message);
}

static void
s_await_stop (chorus_flow_t *self, uint64_t now)
{
    for (size_t index = 0; index < self->steps_size; index++) {
        chorus__step_t *step = &self->steps [index];
        if (!chorus_stepdef_awaits (s_stepdef (self, index)) || !step->counts [CHORUS_TASK_RUNNING])
            continue;
        for (size_t t = 0; t < step->tasks_size; t++)
            if (step->tasks [t].state == CHORUS_TASK_RUNNING) {
                chorus__task_t *task = &step->tasks [t];
                s_set (self, task, CHORUS_TASK_FAILED);
                task->timer_at = 0;
                task->finished = now;
                chorus__set (&task->error_code, "stopped");
                chorus__set (&task->error_message, "the flow stopped while the step awaited");
            }
    }
}

static void
s_await_resume (chorus_flow_t *self, chorus__task_t *task, chorus_actions_t *out)
{
    if (task->timer_at)
        s_timer (self, out, s_await_timer_key (self, task), task->timer_at);
}

//  Takes the payload; nothing happens without a topic
static void
s_emit (chorus_flow_t *self, chorus_actions_t *out, const char *topic, json_t *payload)
{
    if (!topic) {
        json_decref (payload);
        return;
    }
    chorus_action_t *action = s_push (out, CHORUS_ACTION_EMIT, self);
    action->topic = chorus__strdup (topic);
    action->payload = payload;
}

//  --------------------------------------------------------------------------
//  Template context

static json_t *
s_step_output (chorus_flow_t *self, size_t index, bool held)
{
    return chorus__step_output (&self->steps [index], s_stepdef (self, index)->for_each != NULL,
                                held);
}

static bool
s_step_done (chorus_flow_t *self, size_t index)
{
    return chorus__step_done (&self->steps [index]);
}

//  Does the template (or path) read the output of step `id`?
static bool
s_reads (const json_t *template_, const char *id)
{
    if (json_is_string (template_)) {
        const char *path = json_string_value (template_);
        size_t length = strlen (id);
        return strncmp (path, "$.steps.", 8) == 0 && strncmp (path + 8, id, length) == 0
            && (path [8 + length] == '.' || path [8 + length] == 0);
    }
    size_t index;
    const char *key;
    json_t *child;
    if (json_is_array (template_))
        json_array_foreach (template_, index, child)
            if (s_reads (child, id))
                return true;
    if (json_is_object (template_))
        json_object_foreach ((json_t *) template_, key, child)
            if (s_reads (child, id))
                return true;
    return false;
}

//  {"input": ..., "steps": {ID: {"output": ...}}, "item": ...} for a task,
//  with the outputs of the steps the template reads (a fan-out's outputs
//  are gathered only for a template that reads them); for a compensation
//  (`undo`) its own output stands for its step's
static json_t *
s_context (chorus_flow_t *self, const chorus__task_t *task, bool undo, const json_t *template_)
{
    json_t *steps = json_object ();
    for (size_t index = 0; index < self->steps_size; index++) {
        if (!s_reads (template_, s_stepdef (self, index)->id))
            continue;
        json_t *output = undo && task && task->step == index
                       ? chorus__value_decode (&task->output)
                       : s_step_output (self, index, undo);
        if (output)
            json_object_set_new (steps, s_stepdef (self, index)->id,
                                 json_pack ("{s:o}", "output", output));
    }
    json_t *context = json_pack ("{s:O, s:o}", "input", chorus__value_json (&self->input),
                                 "steps", steps);
    if (task && task->item >= 0) {
        json_t *item = json_array_get (self->steps [task->step].items, (size_t) task->item);
        json_object_set (context, "item", item? item: json_null ());
    }
    return context;
}

//  The value a template that is one path to a whole value leads to ($.input,
//  or $.steps.ID.output of a step that is no fan-out), or NULL for any
//  other template: such a value is passed on as the bytes it came as
static chorus__value_t *
s_whole_value (chorus_flow_t *self, const json_t *template_, chorus__task_t *task, bool undo)
{
    const char *path = json_string_value (template_);
    if (!path || strncmp (path, "$.", 2) != 0)
        return NULL;
    if (strcmp (path, "$.input") == 0)
        return &self->input;
    const char *prefix = "$.steps.", *suffix = ".output";
    size_t length = strlen (path), before = strlen (prefix), after = strlen (suffix);
    if (length <= before + after || strncmp (path, prefix, before) != 0
    ||  strcmp (path + length - after, suffix) != 0)
        return NULL;
    char id [80];
    size_t id_length = length - before - after;
    if (id_length >= sizeof id || memchr (path + before, '.', id_length))
        return NULL;
    memcpy (id, path + before, id_length);
    id [id_length] = 0;
    int index = chorus_flowdef_step_index (self->def, id);
    if (index < 0 || s_stepdef (self, (size_t) index)->for_each)
        return NULL;
    if (undo && task->step == (size_t) index)
        return &task->output;
    chorus__step_t *step = &self->steps [index];
    if (!step->started || step->error_code || step->tasks_size != 1)
        return NULL;
    chorus__task_t *source = &step->tasks [0];
    bool ready = undo? chorus__task_has_output (source): source->state == CHORUS_TASK_DONE;
    return ready? &source->output: NULL;
}

//  The action's payload: the value's bytes when it has them, else the value
static void
s_payload (chorus_action_t *action, chorus__value_t *value)
{
    size_t size;
    const void *bytes = chorus__value_bytes (value, &size);
    if (bytes) {
        action->encoded = malloc (size? size: 1);
        if (!action->encoded)
            abort ();
        memcpy (action->encoded, bytes, size);
        action->encoded_size = size;
    }
    else
    if (chorus__value_held (value))
        action->payload = json_deep_copy (chorus__value_json (value));
}

//  --------------------------------------------------------------------------
//  Sending

static void
s_send (chorus_flow_t *self, chorus__task_t *task, bool undo, uint64_t now, chorus_actions_t *out)
{
    const chorus_stepdef_t *def = s_stepdef (self, task->step);
    if (def->flow) {
        //  A sub-flow: the coordinator starts, or undoes, the child of the
        //  task's key, which has no deadline of its own but its flow's
        chorus_action_t *action = s_push (out, undo? CHORUS_ACTION_UNDO_FLOW
                                                   : CHORUS_ACTION_START_FLOW, self);
        action->key = s_task_key (self, task, NULL);
        action->command = chorus__strdup (def->flow);
        action->attempt = undo? task->undo_attempt: task->attempt;
        if (undo)
            return;
    }
    chorus_action_t *action = def->flow? &out->items [out->size - 1]
                                       : s_push (out, CHORUS_ACTION_SEND, self);
    if (!def->flow) {
        action->key = s_task_key (self, task, undo? S_UNDO_SUFFIX: NULL);
        action->service = chorus__strdup (def->service);
        action->command = chorus__strdup (undo? def->compensate: def->command);
        action->attempt = undo? task->undo_attempt: task->attempt;
        action->at = now + def->timeout_ms;
    }
    const json_t *template_ = undo? def->compensate_input: def->input;
    chorus__value_t *whole = template_? s_whole_value (self, template_, task, undo): NULL;
    if (whole && whole->bytes)
        s_payload (action, whole);
    else
    if (template_) {
        json_t *context = s_context (self, task, undo, template_);
        action->payload = chorus_flowdef_resolve (template_, context);
        json_decref (context);
    }
    else
    if (undo)
        s_payload (action, &task->output);
}

static void
s_try (chorus_flow_t *self, chorus__task_t *task, uint64_t now, chorus_actions_t *out)
{
    if (chorus_stepdef_awaits (s_stepdef (self, task->step))) {
        s_await_begin (self, task, now, out);
        return;
    }
    s_set (self, task, CHORUS_TASK_RUNNING);
    task->attempt++;
    task->timer_at = 0;
    if (!task->started)
        task->started = now;
    s_send (self, task, false, now, out);
}

//  --------------------------------------------------------------------------
//  when: and sleep:

static void s_fail (chorus_flow_t *self, const char *code, const char *message,
                    const char *step, uint64_t now);

//  Does the step's `when` hold (or has it none)? Read once, as it starts
static bool
s_when_holds (chorus_flow_t *self, size_t index)
{
    chorus_cond_t *when = s_stepdef (self, index)->when;
    if (!when)
        return true;
    json_t *context = s_context (self, NULL, false, chorus_cond_path_list (when));
    bool holds = chorus_cond_eval (when, context);
    json_decref (context);
    return holds;
}

//  Its `when` is false: the step is skipped, which counts as done
static void
s_skip_step (chorus_flow_t *self, size_t index, uint64_t now)
{
    chorus__step_t *step = &self->steps [index];
    chorus__step_start (step, index, NULL, self->run);
    s_set (self, &step->tasks [0], CHORUS_TASK_SKIPPED);
    step->tasks [0].finished = now;
}

//  A sleep step starts: it waits for its wake time in the state of a
//  backoff (WAITING, timer_at journaled as an absolute time), so that a
//  restart re-arms it for the time it had, and a failure abandons it
static void
s_sleep_start (chorus_flow_t *self, chorus__task_t *task, uint64_t now, chorus_actions_t *out)
{
    const chorus_stepdef_t *def = s_stepdef (self, task->step);
    uint64_t wake = now + def->sleep_ms;
    task->started = now;
    if (def->sleep_until) {
        json_t *path = json_string (def->sleep_until);
        json_t *context = s_context (self, task, false, path);
        char problem [400];
        int rc = chorus_sleep_time (chorus_flowdef_lookup (context, def->sleep_until), &wake,
                                    problem, sizeof problem);
        json_decref (context);
        json_decref (path);
        if (rc) {
            char *message = chorus__format ("sleep until %s: %s", def->sleep_until, problem);
            s_set (self, task, CHORUS_TASK_FAILED);
            task->finished = now;
            chorus__set (&task->error_code, "bad-sleep");
            chorus__set (&task->error_message, message);
            s_fail (self, "bad-sleep", message, def->id, now);
            free (message);
            return;
        }
    }
    s_set (self, task, CHORUS_TASK_WAITING);
    task->timer_at = wake;
    char *key = s_task_key (self, task, NULL);
    s_timer (self, out, chorus__format (S_RETRY_TIMER "%s", key), wake);
    free (key);
}

//  Its wake time came
static void
s_sleep_wake (chorus_flow_t *self, chorus__task_t *task, uint64_t now)
{
    s_set (self, task, CHORUS_TASK_DONE);
    task->timer_at = 0;
    task->finished = now;
    task->seq = ++self->seq;
    chorus__value_set (&task->output, json_null (), NULL, 0);
}

static void
s_undo_try (chorus_flow_t *self, chorus__task_t *task, uint64_t now, chorus_actions_t *out)
{
    s_set (self, task, CHORUS_TASK_UNDOING);
    task->undo_attempt++;
    task->undo_tries++;
    task->undo_waiting = false;
    task->timer_at = 0;
    s_send (self, task, true, now, out);
}

//  --------------------------------------------------------------------------
//  Moving on

//  Creates the step's tasks; -1 if its for_each does not lead to a list
static int
s_start_step (chorus_flow_t *self, size_t index)
{
    const chorus_stepdef_t *def = s_stepdef (self, index);
    chorus__step_t *step = &self->steps [index];
    json_t *items = NULL;
    if (def->for_each) {
        json_t *path = json_string (def->for_each);
        json_t *context = s_context (self, NULL, false, path);
        json_decref (path);
        const json_t *list = chorus_flowdef_lookup (context, def->for_each);
        if (list && json_is_array (list))
            items = json_deep_copy (list);
        json_decref (context);
        if (!items) {
            step->started = true;
            step->dirty = true;
            chorus__set (&step->error_code, "bad-for-each");
            step->error_message = chorus__format ("for_each %s is not a list", def->for_each);
            return -1;
        }
    }
    chorus__step_start (step, index, items, self->run);
    return 0;
}

//  The flow failed: nothing new starts, backoffs are abandoned, and the
//  compensation begins once nothing runs (see s_compensate)
static void
s_fail (chorus_flow_t *self, const char *code, const char *message, const char *step,
        uint64_t now)
{
    if (self->state != CHORUS_FLOW_RUNNING)
        return;
    self->state = CHORUS_FLOW_COMPENSATING;
    self->timeout_at = 0;
    chorus__set (&self->error_code, code);
    chorus__set (&self->error_message, message);
    chorus__set (&self->error_step, step);
    for (size_t index = 0; index < self->steps_size; index++)
        for (size_t t = 0; t < self->steps [index].tasks_size
                        && self->steps [index].counts [CHORUS_TASK_WAITING]; t++) {
            chorus__task_t *task = &self->steps [index].tasks [t];
            if (task->state == CHORUS_TASK_WAITING) {
                s_set (self, task, CHORUS_TASK_FAILED);
                task->timer_at = 0;
                task->finished = now;
                if (task->maybe_done)
                    task->seq = ++self->seq;    //  undone in its turn
            }
        }
    s_await_stop (self, now);
}

//  A value written whole into a payload being made: its bytes as they are,
//  or its JSON encoded; false if it has no payload (as {"$bin": "bad"})
static bool
s_compose (chorus_record_t *payload, chorus__value_t *value)
{
    size_t size;
    const void *bytes = chorus__value_bytes (value, &size);
    if (bytes) {
        chorus_record_raw (payload, bytes, size);
        return true;
    }
    if (!chorus__value_held (value)) {
        chorus_record_nil (payload);
        return true;
    }
    void *data;
    char error [64];
    if (chorus_value_pack (chorus__value_json (value), SIZE_MAX, &data, &size, error,
                           sizeof error))
        return false;
    chorus_record_raw (payload, data, size);
    free (data);
    return true;
}

//  The completion event, {"flow", "name", "input", "outputs": {ID: output}},
//  made straight from the values' bytes, without decoding any; false (and
//  nothing done) when a value has no payload: then it is made as JSON
static bool
s_completed_encoded (chorus_flow_t *self, chorus_actions_t *out)
{
    chorus_record_t payload;
    chorus_record_init (&payload);
    chorus_record_map (&payload, 4);
    chorus_record_str (&payload, "flow");
    chorus_record_str (&payload, self->id);
    chorus_record_str (&payload, "name");
    chorus_record_str (&payload, chorus_flowdef_name (self->def));
    chorus_record_str (&payload, "input");
    bool made = s_compose (&payload, &self->input);
    chorus_record_str (&payload, "outputs");
    chorus_record_map (&payload, self->steps_size);
    for (size_t index = 0; index < self->steps_size && made; index++) {
        chorus__step_t *step = &self->steps [index];
        chorus_record_str (&payload, s_stepdef (self, index)->id);
        if (step->counts [CHORUS_TASK_SKIPPED])
            chorus_record_nil (&payload);
        else
        if (s_stepdef (self, index)->for_each) {
            chorus_record_array (&payload, step->tasks_size);
            for (size_t t = 0; t < step->tasks_size && made; t++)
                made = s_compose (&payload, &step->tasks [t].output);
        }
        else
            made = step->tasks_size == 1 && s_compose (&payload, &step->tasks [0].output);
    }
    if (made) {
        chorus_action_t *action = s_push (out, CHORUS_ACTION_EMIT, self);
        action->topic = chorus__strdup (chorus_flowdef_emit_completed (self->def));
        action->encoded = payload.data;
        action->encoded_size = payload.size;
    }
    else
        chorus_record_clear (&payload);
    return made;
}

//  The flow's output, made from its definition's `output:` template as
//  a step's input is: a template that is one path to a whole value keeps
//  that value's bytes
static void
s_make_output (chorus_flow_t *self)
{
    const json_t *template_ = chorus_flowdef_output (self->def);
    chorus__value_t *whole = s_whole_value (self, template_, NULL, false);
    if (whole && whole->bytes)
        chorus__value_set (&self->output, NULL, whole->bytes, whole->size);
    else {
        json_t *context = s_context (self, NULL, false, template_);
        json_t *output = chorus_flowdef_resolve (template_, context);
        chorus__value_set (&self->output, output, NULL, 0);
        json_decref (output);
        json_decref (context);
    }
    self->output_dirty = true;
}

//  The completion event of a flow with an output, {"flow", "name",
//  "output"}: the output is the result its definition chose to give
static void
s_completed_output (chorus_flow_t *self, chorus_actions_t *out)
{
    chorus_record_t payload;
    chorus_record_init (&payload);
    chorus_record_map (&payload, 3);
    chorus_record_str (&payload, "flow");
    chorus_record_str (&payload, self->id);
    chorus_record_str (&payload, "name");
    chorus_record_str (&payload, chorus_flowdef_name (self->def));
    chorus_record_str (&payload, "output");
    if (s_compose (&payload, &self->output)) {
        chorus_action_t *action = s_push (out, CHORUS_ACTION_EMIT, self);
        action->topic = chorus__strdup (chorus_flowdef_emit_completed (self->def));
        action->encoded = payload.data;
        action->encoded_size = payload.size;
        return;
    }
    //  An output with no payload ({"$bin": "bad"}): the event fails to
    //  encode when it is published, and says why, as any other would
    chorus_record_clear (&payload);
    s_emit (self, out, chorus_flowdef_emit_completed (self->def),
            json_pack ("{s:s, s:s, s:O}", "flow", self->id,
                       "name", chorus_flowdef_name (self->def),
                       "output", chorus__value_json (&self->output)));
}

static void
s_finish (chorus_flow_t *self, chorus_flow_state_t state, uint64_t now, chorus_actions_t *out)
{
    self->state = state;
    self->finished = now;
    self->timeout_at = 0;
    const char *name = chorus_flowdef_name (self->def);
    if (state == CHORUS_FLOW_COMPLETED && chorus_flowdef_output (self->def)) {
        s_make_output (self);
        if (chorus_flowdef_emit_completed (self->def))
            s_completed_output (self, out);
        return;
    }
    if (state == CHORUS_FLOW_COMPLETED && chorus_flowdef_emit_completed (self->def)
    &&  s_completed_encoded (self, out))
        return;
    //  Without a topic there is no event, and nothing to gather for it
    if (state == CHORUS_FLOW_COMPLETED && chorus_flowdef_emit_completed (self->def)) {
        json_t *outputs = json_object ();
        for (size_t index = 0; index < self->steps_size; index++) {
            json_t *output = s_step_output (self, index, false);
            json_object_set_new (outputs, s_stepdef (self, index)->id,
                                 output? output: json_null ());
        }
        s_emit (self, out, chorus_flowdef_emit_completed (self->def),
                json_pack ("{s:s, s:s, s:O, s:o}", "flow", self->id, "name", name,
                           "input", chorus__value_json (&self->input), "outputs", outputs));
    }
    else
    if (state != CHORUS_FLOW_COMPLETED)
        s_emit (self, out, chorus_flowdef_emit_failed (self->def),
                json_pack ("{s:s, s:s, s:s, s:o, s:O}", "flow", self->id, "name", name,
                           "state", chorus_flow_state_name (state), "error",
                           chorus__error_json (self->error_code, self->error_message,
                                               self->error_step),
                           "input", chorus__value_json (&self->input)));
}

//  Asks the coordinator to cancel the running child flows of a step, once
//  each (again after a restart, see chorus_flow_resume)
static void
s_cancel_children (chorus_flow_t *self, size_t index, chorus_actions_t *out)
{
    chorus__step_t *step = &self->steps [index];
    for (size_t t = 0; t < step->tasks_size; t++) {
        chorus__task_t *task = &step->tasks [t];
        if (task->state == CHORUS_TASK_RUNNING && !task->cancel_sent) {
            task->cancel_sent = true;
            chorus_action_t *action = s_push (out, CHORUS_ACTION_CANCEL_FLOW, self);
            action->key = s_task_key (self, task, NULL);
            action->command = chorus__strdup (s_stepdef (self, index)->flow);
        }
    }
}

//  Undoes completed tasks, and failed ones that may have been done (their
//  last try went unanswered), one at a time, last first, once no task
//  runs; then the flow ends, or stays STUCK for an operator
static void
s_compensate (chorus_flow_t *self, uint64_t now, chorus_actions_t *out)
{
    chorus__task_t *next = NULL;
    bool stuck = false, busy = false;
    for (size_t index = 0; index < self->steps_size; index++) {
        const size_t *counts = self->steps [index].counts;
        busy = busy || counts [CHORUS_TASK_RUNNING] || counts [CHORUS_TASK_WAITING]
            || counts [CHORUS_TASK_UNDOING];
        stuck = stuck || counts [CHORUS_TASK_STUCK];
        //  Running child flows are cancelled, and awaited as a command is
        if (counts [CHORUS_TASK_RUNNING] && s_stepdef (self, index)->flow)
            s_cancel_children (self, index, out);
    }
    if (busy)
        return;
    //  One task is undone at a time: finding the next is a pass over the
    //  done tasks of the steps that have a compensation
    for (size_t index = 0; index < self->steps_size; index++) {
        //  Done tasks, and failed ones that may have been done
        //  A child flow is undone by its own compensation
        if ((!s_stepdef (self, index)->compensate && !s_stepdef (self, index)->flow)
        ||  (!self->steps [index].counts [CHORUS_TASK_DONE]
          && !self->steps [index].counts [CHORUS_TASK_FAILED]))
            continue;
        for (size_t t = 0; t < self->steps [index].tasks_size; t++) {
            chorus__task_t *task = &self->steps [index].tasks [t];
            bool done = task->state == CHORUS_TASK_DONE
                     || (task->state == CHORUS_TASK_FAILED && task->maybe_done);
            if (done && (!next || task->seq > next->seq))
                next = task;
        }
    }
    if (next) {
        next->undo_tries = 0;
        s_undo_try (self, next, now, out);
    }
    else
    if (stuck)
        self->state = CHORUS_FLOW_STUCK;
    else
        s_finish (self, self->cancelled? CHORUS_FLOW_CANCELLED: CHORUS_FLOW_FAILED, now, out);
}

//  Starts every step whose dependencies are done and every task that may
//  run; completes the flow, or goes on with its compensation
static void
s_advance (chorus_flow_t *self, uint64_t now, chorus_actions_t *out)
{
    bool started = true;
    while (started && self->state == CHORUS_FLOW_RUNNING) {
        started = false;
        for (size_t index = 0; index < self->steps_size; index++) {
            const chorus_stepdef_t *def = s_stepdef (self, index);
            if (self->steps [index].started)
                continue;
            bool ready = true;
            for (size_t d = 0; d < def->depends_size && ready; d++) {
                int dependency = chorus_flowdef_step_index (self->def, def->depends_on [d]);
                ready = dependency >= 0 && s_step_done (self, (size_t) dependency);
            }
            if (!ready)
                continue;
            started = true;     //  an empty fan-out is done at once: look again
            if (!s_when_holds (self, index))
                s_skip_step (self, index, now);
            else
            if (s_start_step (self, index)) {
                s_fail (self, self->steps [index].error_code,
                        self->steps [index].error_message, def->id, now);
                break;
            }
            //  A kept event or signal completes it at once: look again
            if (chorus_stepdef_awaits (def) && self->steps [index].tasks_size
            &&  self->steps [index].tasks [0].state == CHORUS_TASK_PENDING)
                s_try (self, &self->steps [index].tasks [0], now, out);
        }
    }
    if (self->state == CHORUS_FLOW_RUNNING) {
        bool all_done = true;
        for (size_t index = 0; index < self->steps_size; index++) {
            //  What a reply costs does not grow with the items: the counts
            //  say how many run, and the pending tasks are taken in order
            //  from the first one that may be pending
            chorus__step_t *step = &self->steps [index];
            int limit = s_stepdef (self, index)->max_parallel;
            size_t active = step->counts [CHORUS_TASK_RUNNING] + step->counts [CHORUS_TASK_WAITING];
            while (step->counts [CHORUS_TASK_PENDING] && step->next_pending < step->tasks_size
               &&  (limit <= 0 || active < (size_t) limit)
               &&  self->state == CHORUS_FLOW_RUNNING) {
                chorus__task_t *task = &step->tasks [step->next_pending++];
                if (task->state == CHORUS_TASK_PENDING) {
                    if (s_stepdef (self, index)->sleep)
                        s_sleep_start (self, task, now, out);
                    else
                        s_try (self, task, now, out);
                    active++;
                }
            }
            all_done = all_done && s_step_done (self, index);
        }
        if (all_done)
            s_finish (self, CHORUS_FLOW_COMPLETED, now, out);
    }
    if (self->state == CHORUS_FLOW_COMPENSATING || self->state == CHORUS_FLOW_STUCK)
        s_compensate (self, now, out);
}

//  The moves, for the engine's parts in other files
void
chorus__flow_advance (chorus_flow_t *self, uint64_t now, chorus_actions_t *out)
{
    s_advance (self, now, out);
}

//  --------------------------------------------------------------------------
//  One flow

chorus_flow_t *
chorus__flow_new (chorus_flowdef_t *def, const char *id, const json_t *input,
                  const void *encoded, size_t size)
{
    chorus_flow_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->def = def;
    self->id = chorus__strdup (id);
    if (encoded) {
        chorus__value_set (&self->input, NULL, encoded, size);
        if (input)
            self->input.json = json_deep_copy (input);
    }
    else {
        json_t *empty = input? NULL: json_object ();
        chorus__value_set (&self->input, input? input: empty, NULL, 0);
        json_decref (empty);
    }
    //  The key needs the input decoded; a flow of a definition without
    //  one may never need to
    if (chorus_flowdef_key (def))
        self->business_key = chorus__business_key (def, chorus__value_json (&self->input));
    self->run = 1;
    self->steps_size = chorus_flowdef_steps (def);
    self->steps = calloc (self->steps_size? self->steps_size: 1, sizeof (chorus__step_t));
    if (!self->steps)
        abort ();
    return self;
}

chorus_flow_t *
chorus__flow_start (chorus_flowdef_t *def, const char *id, const json_t *input,
                    const void *encoded, size_t size, uint64_t now, chorus_actions_t *out)
{
    if (!def || !id)
        return NULL;
    chorus_flow_t *self = chorus__flow_new (def, id, input, encoded, size);
    if (!self)
        return NULL;
    self->state = CHORUS_FLOW_RUNNING;
    self->started = now;
    if (chorus_flowdef_timeout (def)) {
        self->timeout_at = now + chorus_flowdef_timeout (def);
        s_timer (self, out, s_flow_timer_key (self), self->timeout_at);
    }
    s_advance (self, now, out);
    return self;
}

chorus_flow_t *
chorus_flow_start (chorus_flowdef_t *def, const char *id, const json_t *input, uint64_t now,
                   chorus_actions_t *out)
{
    return chorus__flow_start (def, id, input, NULL, 0, now, out);
}

chorus_flow_t *
chorus_flow_start_encoded (chorus_flowdef_t *def, const char *id, const void *input,
                           size_t size, uint64_t now, chorus_actions_t *out)
{
    return chorus__flow_start (def, id, NULL, input, size, now, out);
}

void
chorus_flow_destroy (chorus_flow_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    chorus_flow_t *self = *self_p;
    for (size_t index = 0; index < self->steps_size; index++)
        chorus__step_reset (&self->steps [index]);
    free (self->steps);
    free (self->touched);
    chorus__mail_clear (self);
    free (self->id);
    chorus__value_clear (&self->input);
    chorus__value_clear (&self->output);
    free (self->parent);
    free (self->parent_key);
    free (self->business_key);
    free (self->error_code);
    free (self->error_message);
    free (self->error_step);
    free (self);
    *self_p = NULL;
}

//  A number in a key at *at, written as chorus__task_key writes it (no sign,
//  no leading zero); -1 if there is none
static long
s_key_number (const char **at)
{
    const char *start = *at;
    if (*start < '0' || *start > '9' || (*start == '0' && start [1] >= '0' && start [1] <= '9'))
        return -1;
    long value = 0;
    while (**at >= '0' && **at <= '9' && value < 100000000)
        value = value * 10 + (*(*at)++ - '0');
    return **at >= '0' && **at <= '9'? -1: value;
}

//  The task whose command (or compensation, with `undo`) has this key:
//  "FLOW/STEP[/ITEM][:rRUN][/undo]", read rather than matched against
//  every task's, since a reply is looked up this way
static chorus__task_t *
s_find (chorus_flow_t *self, const char *key, bool *undo)
{
    size_t length = strlen (self->id);
    if (strncmp (key, self->id, length) != 0 || key [length] != '/')
        return NULL;
    const char *at = key + length + 1;
    size_t step_length = strcspn (at, "/:");
    char step_id [80];
    if (step_length == 0 || step_length >= sizeof step_id)
        return NULL;
    memcpy (step_id, at, step_length);
    step_id [step_length] = 0;
    int index = chorus_flowdef_step_index (self->def, step_id);
    if (index < 0)
        return NULL;
    at += step_length;
    long item = -1, run = 1;
    if (at [0] == '/' && at [1] >= '0' && at [1] <= '9') {
        at++;
        if ((item = s_key_number (&at)) < 0)
            return NULL;
    }
    if (at [0] == ':' && at [1] == 'r') {
        at += 2;
        if ((run = s_key_number (&at)) < 2)
            return NULL;        //  the first run has no ":r"
    }
    if (*at && strcmp (at, S_UNDO_SUFFIX) != 0)
        return NULL;
    chorus__step_t *step = &self->steps [index];
    bool fan_out = s_stepdef (self, (size_t) index)->for_each != NULL;
    chorus__task_t *task = NULL;
    if (fan_out && item >= 0 && (size_t) item < step->tasks_size)
        task = &step->tasks [item];
    else
    if (!fan_out && item < 0 && step->tasks_size == 1)
        task = &step->tasks [0];
    if (!task || (task->run > 1? task->run: 1) != run)
        return NULL;
    *undo = *at != 0;
    return task;
}

static void
s_task_error (chorus__task_t *task, const chorus_result_t *result, const chorus_stepdef_t *def)
{
    if (result->timeout) {
        chorus__set (&task->error_code, "timeout");
        char *message = chorus__format ("no reply within %" PRIu64 " ms", def->timeout_ms);
        chorus__set (&task->error_message, message);
        free (message);
    }
    else {
        chorus__set (&task->error_code, result->code? result->code: "error");
        chorus__set (&task->error_message, result->message);
    }
}

int
chorus_flow_reply (chorus_flow_t *self, const char *key, int attempt,
                   const chorus_result_t *result, uint64_t now, chorus_actions_t *out)
{
    bool undo = false;
    chorus__task_t *task = key && result? s_find (self, key, &undo): NULL;
    if (!task || chorus_stepdef_awaits (s_stepdef (self, task->step)))
        return -1;              //  an await sends nothing: no reply is its
    const chorus_stepdef_t *def = s_stepdef (self, task->step);
    bool retryable = result->timeout || result->retryable;
    if (undo) {
        if (task->state != CHORUS_TASK_UNDOING || task->undo_waiting
        ||  attempt != task->undo_attempt)
            return -1;
        s_touch (self, task);
        int tries = def->attempts > S_UNDO_TRIES_MIN? def->attempts: S_UNDO_TRIES_MIN;
        if (result->ok)
            s_set (self, task, CHORUS_TASK_UNDONE);
        else {
            s_task_error (task, result, def);
            if (retryable && task->undo_tries < tries) {
                task->undo_waiting = true;
                task->timer_at = now + s_backoff (def, task->undo_tries);
                char *undo_key = s_task_key (self, task, S_UNDO_SUFFIX);
                s_timer (self, out, chorus__format (S_RETRY_TIMER "%s", undo_key),
                         task->timer_at);
                free (undo_key);
            }
            else {
                s_set (self, task, CHORUS_TASK_STUCK);
                self->state = CHORUS_FLOW_STUCK;
            }
        }
    }
    else {
        //  A success from any try of the task counts while the task is not
        //  finished: an earlier try's late answer is the work done (a
        //  service answers every try of one key with the same reply)
        bool current = task->state == CHORUS_TASK_RUNNING && attempt == task->attempt;
        bool earlier = (task->state == CHORUS_TASK_RUNNING || task->state == CHORUS_TASK_WAITING)
                    && attempt >= 1 && attempt <= task->attempt;
        if (!current && !(result->ok && earlier))
            return -1;
        s_touch (self, task);
        if (result->ok) {
            s_set (self, task, CHORUS_TASK_DONE);
            task->timer_at = 0;
            task->maybe_done = false;
            if (result->encoded)
                chorus__value_set (&task->output, NULL, result->encoded, result->encoded_size);
            else
                chorus__value_set (&task->output, result->output? result->output: json_null (),
                                   NULL, 0);
            task->finished = now;
            task->seq = ++self->seq;
        }
        else {
            s_task_error (task, result, def);
            //  No answer: the service may have done it. An error reply says
            //  it did not (a later try of the key gets what the service did)
            task->maybe_done = result->timeout;
            if (self->state == CHORUS_FLOW_RUNNING && retryable && task->attempt < def->attempts) {
                s_set (self, task, CHORUS_TASK_WAITING);
                task->timer_at = now + s_backoff (def, task->attempt);
                char *forward = s_task_key (self, task, NULL);
                s_timer (self, out, chorus__format (S_RETRY_TIMER "%s", forward),
                         task->timer_at);
                free (forward);
            }
            else {
                s_set (self, task, CHORUS_TASK_FAILED);
                task->finished = now;
                if (task->maybe_done)
                    task->seq = ++self->seq;    //  undone in its turn
                s_fail (self, task->error_code, task->error_message, def->id, now);
            }
        }
    }
    s_advance (self, now, out);
    return 0;
}

int
chorus_flow_timer (chorus_flow_t *self, const char *key, uint64_t now, chorus_actions_t *out)
{
    if (!key)
        return -1;
    char *flow_timer = s_flow_timer_key (self);
    bool deadline = strcmp (key, flow_timer) == 0;
    free (flow_timer);
    if (deadline) {
        //  A timer of an earlier run has another key, so cannot end this one
        if (self->state != CHORUS_FLOW_RUNNING || !self->timeout_at)
            return -1;
        char *message = chorus__format ("the flow did not finish within %" PRIu64 " ms",
                                        chorus_flowdef_timeout (self->def));
        s_fail (self, "flow-timeout", message, NULL, now);
        free (message);
    }
    else
    if (strncmp (key, CHORUS__AWAIT_TIMER, strlen (CHORUS__AWAIT_TIMER)) == 0) {
        bool undo = false;
        chorus__task_t *task = s_find (self, key + strlen (CHORUS__AWAIT_TIMER), &undo);
        if (!task || undo || task->state != CHORUS_TASK_RUNNING
        ||  !chorus_stepdef_awaits (s_stepdef (self, task->step)))
            return -1;
        s_await_timeout (self, task, now);
    }
    else {
        size_t prefix = strlen (S_RETRY_TIMER);
        bool undo = false;
        chorus__task_t *task = strncmp (key, S_RETRY_TIMER, prefix) == 0
                             ? s_find (self, key + prefix, &undo): NULL;
        if (!task)
            return -1;
        if (undo && task->state == CHORUS_TASK_UNDOING && task->undo_waiting)
            s_undo_try (self, task, now, out);
        else
        if (!undo && task->state == CHORUS_TASK_WAITING && s_stepdef (self, task->step)->sleep)
            s_sleep_wake (self, task, now);
        else
        if (!undo && task->state == CHORUS_TASK_WAITING)
            s_try (self, task, now, out);
        else
            return -1;
    }
    s_advance (self, now, out);
    return 0;
}

int
chorus_flow_cancel (chorus_flow_t *self, uint64_t now, chorus_actions_t *out)
{
    if (self->state != CHORUS_FLOW_RUNNING)
        return -1;
    self->cancelled = true;
    s_fail (self, "cancelled", "the flow was cancelled", NULL, now);
    s_advance (self, now, out);
    return 0;
}

int
chorus_flow_retry (chorus_flow_t *self, uint64_t now, chorus_actions_t *out)
{
    if (self->state == CHORUS_FLOW_STUCK) {
        //  Back in line: s_compensate gives them fresh tries, in order
        for (size_t index = 0; index < self->steps_size; index++)
            for (size_t t = 0; t < self->steps [index].tasks_size; t++)
                if (self->steps [index].tasks [t].state == CHORUS_TASK_STUCK) {
                    //  Maybe done: back to failed, so that a retry runs it
                    chorus__task_t *task = &self->steps [index].tasks [t];
                    s_set (self, task, task->maybe_done? CHORUS_TASK_FAILED: CHORUS_TASK_DONE);
                }
        self->state = CHORUS_FLOW_COMPENSATING;
        s_advance (self, now, out);
        return 0;
    }
    if (self->state != CHORUS_FLOW_FAILED && self->state != CHORUS_FLOW_CANCELLED)
        return -1;
    //  Whatever is not done runs again under new keys; compensated tasks
    //  too, since their effects were undone
    self->run++;
    for (size_t index = 0; index < self->steps_size; index++) {
        chorus__step_t *step = &self->steps [index];
        bool any_done = false;
        for (size_t t = 0; t < step->tasks_size; t++)
            any_done = any_done || step->tasks [t].state == CHORUS_TASK_DONE;
        if (step->started && (step->error_code || (step->tasks_size && !any_done)))
            chorus__step_reset (step);  //  a fan-out lists its items afresh
        else {
            for (size_t t = 0; t < step->tasks_size; t++)
                if (step->tasks [t].state != CHORUS_TASK_DONE) {
                    s_touch (self, &step->tasks [t]);
                    chorus__task_reset (&step->tasks [t], self->run);
                }
            chorus__step_count (step);
        }
    }
    self->state = CHORUS_FLOW_RUNNING;
    self->cancelled = false;
    self->finished = 0;
    chorus__set (&self->error_code, NULL);
    chorus__set (&self->error_message, NULL);
    chorus__set (&self->error_step, NULL);
    if (chorus_flowdef_timeout (self->def)) {
        self->timeout_at = now + chorus_flowdef_timeout (self->def);
        s_timer (self, out, s_flow_timer_key (self), self->timeout_at);
    }
    s_advance (self, now, out);
    return 0;
}

void
chorus_flow_resume (chorus_flow_t *self, uint64_t now, chorus_actions_t *out)
{
    for (size_t index = 0; index < self->steps_size; index++)
        for (size_t t = 0; t < self->steps [index].tasks_size; t++) {
            chorus__task_t *task = &self->steps [index].tasks [t];
            bool undo = task->state == CHORUS_TASK_UNDOING;
            if (task->state == CHORUS_TASK_RUNNING
            &&  chorus_stepdef_awaits (s_stepdef (self, index)))
                s_await_resume (self, task, out);
            else
            if (task->state == CHORUS_TASK_RUNNING || (undo && !task->undo_waiting))
                s_send (self, task, undo, now, out);
            //  A child flow asked to cancel before the restart is asked again
            if (task->state == CHORUS_TASK_RUNNING && s_stepdef (self, index)->flow
            &&  self->state != CHORUS_FLOW_RUNNING) {
                task->cancel_sent = false;
                s_cancel_children (self, index, out);
            }
            else
            if (task->state == CHORUS_TASK_WAITING || (undo && task->undo_waiting)) {
                char *key = s_task_key (self, task, undo? S_UNDO_SUFFIX: NULL);
                s_timer (self, out, chorus__format (S_RETRY_TIMER "%s", key), task->timer_at);
                free (key);
            }
        }
    if (self->state == CHORUS_FLOW_RUNNING && self->timeout_at)
        s_timer (self, out, s_flow_timer_key (self), self->timeout_at);
}

json_t *
chorus_flow_status (chorus_flow_t *self)
{
    json_t *steps = json_array ();
    for (size_t index = 0; index < self->steps_size; index++)
        json_array_append_new (steps, chorus__step_status (&self->steps [index],
                                                           s_stepdef (self, index),
                                                           self->state == CHORUS_FLOW_RUNNING));
    //  A sub-flow's task names its child by its key: the coordinator shows
    //  the child's status there (the tree)
    for (size_t index = 0; index < self->steps_size; index++) {
        const chorus_stepdef_t *def = s_stepdef (self, index);
        chorus__step_t *step = &self->steps [index];
        json_t *status = json_array_get (steps, index);
        json_t *items = json_object_get (status, "items");
        for (size_t t = 0; def->flow && t < step->tasks_size; t++)
            if (step->tasks [t].attempt > 0) {
                json_t *where = def->for_each? json_array_get (items, t): status;
                char *key = s_task_key (self, &step->tasks [t], NULL);
                json_object_set_new (where, "child", json_string (key));
                free (key);
            }
        if (def->flow)
            json_object_set_new (status, "flow", json_string (def->flow));
    }
    json_t *output = chorus__value_decode (&self->output);
    json_t *result = json_pack ("{s:s, s:s, s:i, s:s, s:O, s:I, s:o, s:o, s:o, s:o}", "id", self->id,
                      "flow", chorus_flowdef_name (self->def),
                      "version", chorus_flowdef_version (self->def),
                      "state", chorus_flow_state_name (self->state),
                      "input", chorus__value_json (&self->input),
                      "started", (json_int_t) self->started,
                      "finished", self->finished? json_integer ((json_int_t) self->finished)
                                                : json_null (),
                      "error", chorus__error_json (self->error_code, self->error_message,
                                                   self->error_step),
                      "output", output? output: json_null (),
                      "steps", steps);
    if (self->parent)
        json_object_set_new (result, "parent", json_pack ("{s:s, s:s}", "id", self->parent,
                                                          "task", self->parent_key));
    json_t *received = chorus__mail_json (self);
    if (received)
        json_object_set_new (result, "received", received);
    return result;
}

//  --------------------------------------------------------------------------
//  Properties

const char *
chorus_flow_id (chorus_flow_t *self)
{
    return self->id;
}

chorus_flowdef_t *
chorus_flow_def (chorus_flow_t *self)
{
    return self->def;
}

chorus_flow_state_t
chorus_flow_state (chorus_flow_t *self)
{
    return self->state;
}

bool
chorus_flow_finished (chorus_flow_t *self)
{
    return self->state == CHORUS_FLOW_COMPLETED || self->state == CHORUS_FLOW_FAILED
        || self->state == CHORUS_FLOW_CANCELLED;
}

uint64_t
chorus_flow_started_at (chorus_flow_t *self)
{
    return self->started;
}

uint64_t
chorus_flow_finished_at (chorus_flow_t *self)
{
    return self->finished;
}

const char *
chorus_flow_business_key (chorus_flow_t *self)
{
    return self->business_key;
}

chorus_flow_state_t
chorus__flow_state_from_name (const char *name)
{
    for (int state = CHORUS_FLOW_RUNNING; state <= CHORUS_FLOW_STUCK; state++)
        if (strcmp (name, s_flow_states [state]) == 0)
            return (chorus_flow_state_t) state;
    return 0;
}

const char *
chorus_flow_state_name (chorus_flow_state_t state)
{
    return state >= CHORUS_FLOW_RUNNING && state <= CHORUS_FLOW_STUCK
         ? s_flow_states [state]: "unknown";
}


//  --------------------------------------------------------------------------
//  For the engine's other files (chorus_flow_sub.c)

chorus__task_t *
chorus__flow_find (chorus_flow_t *self, const char *key, bool *undo)
{
    return s_find (self, key, undo);
}

//  --------------------------------------------------------------------------
//  Events and signals for await steps

int
chorus_flow_event (chorus_flow_t *self, const char *topic, const char *id, const void *payload,
                   size_t size, uint64_t now, chorus_actions_t *out)
{
    if (!topic || !id || !chorus_flow_awaits_topic (self->def, topic))
        return 0;
    json_t *event = payload? chorus_value_unpack (payload, size): json_null ();
    if (!event)
        return 0;                   //  not a payload: it matches nothing
    int rc = 0;
    for (size_t index = 0; index < self->steps_size; index++) {
        const chorus_stepdef_t *def = s_stepdef (self, index);
        chorus__step_t *step = &self->steps [index];
        if (!def->await_topic || strcmp (def->await_topic, topic) != 0
        ||  !chorus__await_matches (self, def, event))
            continue;
        if (self->state != CHORUS_FLOW_RUNNING) {
            rc = rc? rc: -1;        //  the flow ended: dropped
            continue;
        }
        bool seen = false;
        for (size_t i = 0; i < self->mail_size && !seen; i++)
            seen = !self->mail [i].signal && self->mail [i].step == (int) index
                && strcmp (self->mail [i].id, id) == 0;
        chorus__task_t *task = step->tasks_size? &step->tasks [0]: NULL;
        bool waits = task && task->state == CHORUS_TASK_RUNNING;
        bool later = !task || task->state == CHORUS_TASK_PENDING;
        if (seen || (!waits && !later) || (later && chorus__mail_kept_for (self, index))
        ||  self->mail_size >= CHORUS_FLOW_MAIL_MAX)
            continue;               //  taken, done, failed, or one kept already
        chorus__mail_t *mail = chorus__mail_add (self, false, topic, id, (int) index, now);
        if (payload)
            chorus__value_set (&mail->payload, NULL, payload, size);
        else
            chorus__value_set (&mail->payload, json_null (), NULL, 0);
        if (waits)
            s_await_complete (self, task, mail, now);
        rc = 1;
    }
    json_decref (event);
    if (rc == 1)
        s_advance (self, now, out);
    return rc;
}

int
chorus_flow_signal (chorus_flow_t *self, const char *name, const char *id,
                    const json_t *payload, uint64_t now, chorus_actions_t *out,
                    const char **step_id)
{
    if (step_id)
        *step_id = NULL;
    for (size_t i = 0; i < self->mail_size; i++)
        if (self->mail [i].signal && strcmp (self->mail [i].id, id) == 0) {
            if (step_id && self->mail [i].step >= 0)
                *step_id = s_stepdef (self, (size_t) self->mail [i].step)->id;
            return 1;               //  the same signal again
        }
    if (self->state != CHORUS_FLOW_RUNNING)
        return -1;
    if (self->mail_size >= CHORUS_FLOW_MAIL_MAX)
        return -2;
    chorus__mail_t *mail = chorus__mail_add (self, true, name, id, -1, now);
    chorus__value_set (&mail->payload, payload? payload: json_null (), NULL, 0);
    for (size_t index = 0; index < self->steps_size; index++) {
        const chorus_stepdef_t *def = s_stepdef (self, index);
        chorus__step_t *step = &self->steps [index];
        if (def->await_signal && strcmp (def->await_signal, name) == 0 && step->tasks_size
        &&  step->tasks [0].state == CHORUS_TASK_RUNNING) {
            s_await_complete (self, &step->tasks [0], mail, now);
            if (step_id)
                *step_id = def->id;
            s_advance (self, now, out);
            break;
        }
    }
    return 0;
}
