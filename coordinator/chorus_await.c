/*  chorus_await.c — await steps: a step that waits for an event on a topic
    (matched against values the flow knows from its start) or for a named
    signal, and completes with its payload. What a flow receives before the
    step starts is kept with the flow (its "mail", journaled), so that the
    order of the event and the step does not matter.
*/
#include "chorus_flow_private.h"
#include "chorus_value.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const chorus_stepdef_t *
s_stepdef (chorus_flow_t *self, size_t index)
{
    return chorus_flowdef_step (self->def, index);
}

bool
chorus_flow_awaits_topic (chorus_flowdef_t *def, const char *topic)
{
    for (size_t index = 0; def && topic && index < chorus_flowdef_steps (def); index++) {
        const chorus_stepdef_t *step = chorus_flowdef_step (def, index);
        if (step->await_topic && strcmp (step->await_topic, topic) == 0)
            return true;
    }
    return false;
}

bool
chorus_flow_signal_name_ok (const char *name)
{
    size_t length = name? strlen (name): 0;
    return length >= 1 && length <= 64
        && strspn (name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")
           == length;
}

//  --------------------------------------------------------------------------
//  Mail

static chorus__mail_t *
s_mail_add (chorus_flow_t *self, bool signal, const char *name, const char *id, int step,
            uint64_t now)
{
    if (self->mail_size == self->mail_max) {
        size_t max = self->mail_max? self->mail_max * 2: 4;
        chorus__mail_t *mail = realloc (self->mail, max * sizeof *mail);
        if (!mail)
            abort ();
        self->mail = mail;
        self->mail_max = max;
    }
    chorus__mail_t *mail = &self->mail [self->mail_size++];
    memset (mail, 0, sizeof *mail);
    mail->signal = signal;
    mail->name = chorus__strdup (name);
    mail->id = chorus__strdup (id);
    mail->step = step;
    mail->at = now;
    mail->dirty = true;
    return mail;
}

void
chorus__mail_clear (chorus_flow_t *self)
{
    for (size_t i = 0; i < self->mail_size; i++) {
        free (self->mail [i].name);
        free (self->mail [i].id);
        chorus__value_clear (&self->mail [i].payload);
    }
    free (self->mail);
    self->mail = NULL;
    self->mail_size = self->mail_max = 0;
}

//  The mail kept for a step (not yet taken), or NULL
static chorus__mail_t *
s_kept_for (chorus_flow_t *self, size_t index)
{
    for (size_t i = 0; i < self->mail_size; i++)
        if (self->mail [i].step == (int) index && chorus__value_held (&self->mail [i].payload))
            return &self->mail [i];
    return NULL;
}

//  The first signal of this name that no step took, or NULL
static chorus__mail_t *
s_signal_for (chorus_flow_t *self, const char *name)
{
    for (size_t i = 0; i < self->mail_size; i++)
        if (self->mail [i].signal && self->mail [i].step < 0
        &&  strcmp (self->mail [i].name, name) == 0)
            return &self->mail [i];
    return NULL;
}

//  --------------------------------------------------------------------------
//  Tasks that await

//  The task completes with the mail's payload, which the mail then drops
static void
s_complete (chorus_flow_t *self, chorus__task_t *task, chorus__mail_t *mail, uint64_t now)
{
    chorus__flow_set (self, task, CHORUS_TASK_DONE);
    chorus__value_t *payload = &mail->payload;
    if (payload->bytes)
        chorus__value_set (&task->output, NULL, payload->bytes, payload->size);
    else
        chorus__value_set (&task->output, payload->json? payload->json: json_null (), NULL, 0);
    chorus__value_clear (payload);
    mail->step = (int) task->step;
    mail->dirty = true;
    task->timer_at = 0;
    task->finished = now;
    task->seq = ++self->seq;
}

static char *
s_timer_key (chorus_flow_t *self, const chorus__task_t *task)
{
    char *key = chorus__task_key (self->id, s_stepdef (self, task->step)->id, task, NULL);
    char *timer = chorus__format (CHORUS__AWAIT_TIMER "%s", key);
    free (key);
    return timer;
}

void
chorus__await_begin (chorus_flow_t *self, chorus__task_t *task, uint64_t now,
                     chorus_actions_t *out)
{
    const chorus_stepdef_t *def = s_stepdef (self, task->step);
    chorus__flow_set (self, task, CHORUS_TASK_RUNNING);
    task->attempt = 1;
    task->started = now;
    task->timer_at = 0;
    chorus__mail_t *mail = def->await_signal? s_signal_for (self, def->await_signal)
                                            : s_kept_for (self, task->step);
    if (mail)
        s_complete (self, task, mail, now);
    else
    if (def->await_timeout_ms) {
        task->timer_at = now + def->await_timeout_ms;
        chorus__flow_timer (self, out, s_timer_key (self, task), task->timer_at);
    }
}

void
chorus__await_timeout (chorus_flow_t *self, chorus__task_t *task, uint64_t now)
{
    const chorus_stepdef_t *def = s_stepdef (self, task->step);
    chorus__flow_set (self, task, CHORUS_TASK_FAILED);
    task->timer_at = 0;
    task->finished = now;
    chorus__set (&task->error_code, "await-timeout");
    char *message = def->await_signal
        ? chorus__format ("no signal '%s' within %" PRIu64 " ms", def->await_signal,
                          def->await_timeout_ms)
        : chorus__format ("no matching event on '%s' within %" PRIu64 " ms", def->await_topic,
                          def->await_timeout_ms);
    chorus__set (&task->error_message, message);
    chorus__flow_fail (self, task->error_code, message, def->id, now);
    free (message);
}

void
chorus__await_stop (chorus_flow_t *self, uint64_t now)
{
    for (size_t index = 0; index < self->steps_size; index++) {
        chorus__step_t *step = &self->steps [index];
        if (!chorus_stepdef_awaits (s_stepdef (self, index)) || !step->counts [CHORUS_TASK_RUNNING])
            continue;
        for (size_t t = 0; t < step->tasks_size; t++)
            if (step->tasks [t].state == CHORUS_TASK_RUNNING) {
                chorus__task_t *task = &step->tasks [t];
                chorus__flow_set (self, task, CHORUS_TASK_FAILED);
                task->timer_at = 0;
                task->finished = now;
                chorus__set (&task->error_code, "stopped");
                chorus__set (&task->error_message, "the flow stopped while the step awaited");
            }
    }
}

void
chorus__await_resume (chorus_flow_t *self, chorus__task_t *task, chorus_actions_t *out)
{
    if (task->timer_at)
        chorus__flow_timer (self, out, s_timer_key (self, task), task->timer_at);
}

//  --------------------------------------------------------------------------
//  Matching events

//  The flow's value and the payload's are one: equal as JSON, or an
//  integer and the string of its decimal digits (as business keys)
static bool
s_same (const json_t *expected, const json_t *actual)
{
    if (json_equal ((json_t *) expected, (json_t *) actual))
        return true;
    const json_t *integer = json_is_integer (expected)? expected: actual;
    const json_t *string = integer == expected? actual: expected;
    if (!json_is_integer (integer) || !json_is_string (string))
        return false;
    char digits [32];
    snprintf (digits, sizeof digits, "%" JSON_INTEGER_FORMAT, json_integer_value (integer));
    return strcmp (digits, json_string_value (string)) == 0;
}

//  Does the event (decoded) meet the step's match?
static bool
s_matches (chorus_flow_t *self, const chorus_stepdef_t *def, const json_t *event)
{
    if (!def->await_match)
        return true;
    json_t *flow = json_pack ("{s:O}", "input", chorus__value_json (&self->input));
    json_t *payload = json_pack ("{s:O}", "input", event);
    bool all = true;
    const char *field;
    json_t *value;
    json_object_foreach (def->await_match, field, value) {
        const json_t *expected = value;
        if (json_is_string (value) && strncmp (json_string_value (value), "$.", 2) == 0) {
            expected = chorus_flowdef_lookup (flow, json_string_value (value));
            if (!expected)
                expected = json_null ();
        }
        char *path = chorus__format ("$.input.%s", field);
        const json_t *actual = chorus_flowdef_lookup (payload, path);
        free (path);
        if (!actual || !s_same (expected, actual)) {
            all = false;
            break;
        }
    }
    json_decref (flow);
    json_decref (payload);
    return all;
}

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
        ||  !s_matches (self, def, event))
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
        if (seen || (!waits && !later) || (later && s_kept_for (self, index))
        ||  self->mail_size >= CHORUS_FLOW_MAIL_MAX)
            continue;               //  taken, done, failed, or one kept already
        chorus__mail_t *mail = s_mail_add (self, false, topic, id, (int) index, now);
        if (payload)
            chorus__value_set (&mail->payload, NULL, payload, size);
        else
            chorus__value_set (&mail->payload, json_null (), NULL, 0);
        if (waits)
            s_complete (self, task, mail, now);
        rc = 1;
    }
    json_decref (event);
    if (rc == 1)
        chorus__flow_advance (self, now, out);
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
    chorus__mail_t *mail = s_mail_add (self, true, name, id, -1, now);
    chorus__value_set (&mail->payload, payload? payload: json_null (), NULL, 0);
    for (size_t index = 0; index < self->steps_size; index++) {
        const chorus_stepdef_t *def = s_stepdef (self, index);
        chorus__step_t *step = &self->steps [index];
        if (def->await_signal && strcmp (def->await_signal, name) == 0 && step->tasks_size
        &&  step->tasks [0].state == CHORUS_TASK_RUNNING) {
            s_complete (self, &step->tasks [0], mail, now);
            if (step_id)
                *step_id = def->id;
            chorus__flow_advance (self, now, out);
            break;
        }
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Journal records and status

bool
chorus__mail_pending (chorus_flow_t *self, bool all)
{
    for (size_t i = 0; i < self->mail_size; i++)
        if (all || self->mail [i].dirty)
            return true;
    return false;
}

void
chorus__mail_write (chorus_flow_t *self, chorus_record_t *record, bool all)
{
    size_t count = 0;
    for (size_t i = 0; i < self->mail_size; i++)
        count += all || self->mail [i].dirty;
    chorus_record_array (record, count);
    for (size_t i = 0; i < self->mail_size; i++) {
        chorus__mail_t *mail = &self->mail [i];
        if (!all && !mail->dirty)
            continue;
        chorus_record_array (record, 7);
        chorus_record_uint (record, i);
        chorus_record_bool (record, mail->signal);
        chorus_record_str (record, mail->name);
        chorus_record_str (record, mail->id);
        chorus__value_write (&mail->payload, record);
        chorus_record_uint (record, (uint64_t) (mail->step + 1));
        chorus_record_uint (record, mail->at);
        mail->dirty = false;
    }
}

int
chorus__mail_read (chorus_flow_t *self, chorus_reader_t *reader)
{
    size_t count = chorus_reader_array (reader);
    for (size_t n = 0; n < count && !reader->error; n++) {
        if (!chorus_reader_tuple (reader, 7))
            break;
        size_t index = (size_t) chorus_reader_uint (reader, self->mail_size);
        bool signal = chorus_reader_bool (reader);
        char *name = chorus_reader_str (reader, false);
        char *id = chorus_reader_str (reader, false);
        chorus__value_t payload = {NULL, NULL, 0};
        chorus__value_read (&payload, reader);
        int step = (int) chorus_reader_uint (reader, self->steps_size) - 1;
        uint64_t at = chorus_reader_uint (reader, UINT64_MAX);
        if (!reader->error) {
            if (step >= 0 && !chorus_stepdef_awaits (s_stepdef (self, (size_t) step)))
                chorus_reader_fail (reader, "a received event or signal names a step that "
                                    "does not await");
            else
            if (index == self->mail_size && index >= CHORUS_FLOW_MAIL_MAX)
                chorus_reader_fail (reader, "too many received events and signals");
        }
        if (!reader->error) {
            chorus__mail_t *mail = index == self->mail_size
                                 ? s_mail_add (self, signal, name, id, step, at)
                                 : &self->mail [index];
            if (mail->name != name) {
                chorus__set (&mail->name, name);
                chorus__set (&mail->id, id);
                mail->signal = signal;
                mail->step = step;
                mail->at = at;
            }
            chorus__value_clear (&mail->payload);
            mail->payload = payload;
            payload.json = NULL;
            payload.bytes = NULL;
            mail->dirty = false;
        }
        chorus__value_clear (&payload);
        free (name);
        free (id);
    }
    return reader->error? -1: 0;
}

json_t *
chorus__mail_json (chorus_flow_t *self)
{
    if (!self->mail_size)
        return NULL;
    json_t *list = json_array ();
    for (size_t i = 0; i < self->mail_size; i++) {
        chorus__mail_t *mail = &self->mail [i];
        json_t *payload = chorus__value_decode (&mail->payload);
        json_array_append_new (list, json_pack ("{s:s, s:s, s:s, s:s?, s:I, s:o}",
                               "kind", mail->signal? "signal": "event", "name", mail->name,
                               "id", mail->id, "step", mail->step >= 0
                               ? s_stepdef (self, (size_t) mail->step)->id: NULL,
                               "at", (json_int_t) mail->at,
                               "payload", payload? payload: json_null ()));
    }
    return list;
}
