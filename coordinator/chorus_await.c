/*  chorus_await.c — await steps: a step that waits for an event on a topic
    (matched against values the flow knows from its start) or for a named
    signal, and completes with its payload. What a flow receives before the
    step starts is kept with the flow (its "mail", journaled), so that the
    order of the event and the step does not matter.
*/
#include "chorus_flow_private.h"
#include "chorus_await.h"
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

chorus__mail_t *
chorus__mail_add (chorus_flow_t *self, bool signal, const char *name, const char *id, int step,
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

chorus__mail_t *
chorus__mail_kept_for (chorus_flow_t *self, size_t index)
{
    for (size_t i = 0; i < self->mail_size; i++)
        if (self->mail [i].step == (int) index && chorus__value_held (&self->mail [i].payload))
            return &self->mail [i];
    return NULL;
}

chorus__mail_t *
chorus__mail_signal_for (chorus_flow_t *self, const char *name)
{
    for (size_t i = 0; i < self->mail_size; i++)
        if (self->mail [i].signal && self->mail [i].step < 0
        &&  strcmp (self->mail [i].name, name) == 0)
            return &self->mail [i];
    return NULL;
}

void
chorus__mail_take (chorus_flow_t *self, chorus__task_t *task, chorus__mail_t *mail)
{
    chorus__value_t *payload = &mail->payload;
    if (payload->bytes)
        chorus__value_set (&task->output, NULL, payload->bytes, payload->size);
    else
        chorus__value_set (&task->output, payload->json? payload->json: json_null (), NULL, 0);
    chorus__value_clear (payload);
    mail->step = (int) task->step;
    mail->dirty = true;
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

bool
chorus__await_matches (chorus_flow_t *self, const chorus_stepdef_t *def, const json_t *event)
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
        }
        if (!reader->error) {
            chorus__mail_t *mail = index == self->mail_size
                                 ? chorus__mail_add (self, signal, name, id, step, at)
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
