/*  flow_fixtures.h — what the flow engine tests share: definitions from
    inline YAML, replies and timers fed to a flow, and questions about the
    actions it produced and the status it reports.
*/
#ifndef CHORUS_FLOW_FIXTURES_H_INCLUDED
#define CHORUS_FLOW_FIXTURES_H_INCLUDED

#include "chorus_flow.h"
#include "chorus_value.h"
#include "tap.h"

#define T0 1000     //  when every flow starts

static inline chorus_flowdef_t *
s_def (const char *yaml)
{
    char error [256];
    chorus_flowdef_t *def = chorus_flowdef_parse (yaml, strlen (yaml), "test.yaml", error,
                                                  sizeof error);
    if (!def)
        bail_out (error);
    return def;
}

static inline json_t *
s_json (const char *text)
{
    json_t *value = json_loads (text, JSON_DECODE_ANY, NULL);
    if (!value)
        bail_out ("bad JSON in the test");
    return value;
}

//  The actions of one kind, keys (or topics) joined by spaces
static inline const char *
s_keys (const chorus_actions_t *out, chorus_action_kind_t kind)
{
    static char keys [1024];
    keys [0] = 0;
    for (size_t index = 0; index < out->size; index++)
        if (out->items [index].kind == kind) {
            const char *key = kind == CHORUS_ACTION_EMIT? out->items [index].topic
                                                        : out->items [index].key;
            if (keys [0])
                strcat (keys, " ");
            strncat (keys, key, sizeof keys - strlen (keys) - 2);
        }
    return keys;
}

static inline const chorus_action_t *
s_action (const chorus_actions_t *out, chorus_action_kind_t kind, const char *key)
{
    for (size_t index = 0; index < out->size; index++) {
        const chorus_action_t *action = &out->items [index];
        const char *name = kind == CHORUS_ACTION_EMIT? action->topic: action->key;
        if (action->kind == kind && strcmp (name, key) == 0)
            return action;
    }
    return NULL;
}

//  The payload of an action as JSON (new reference): as the engine made it,
//  or decoded from the bytes it passed on; NULL when it has none
static inline json_t *
s_action_payload (const chorus_action_t *action)
{
    if (action && action->encoded)
        return chorus_value_unpack (action->encoded, action->encoded_size);
    return action && action->payload? json_incref (action->payload): NULL;
}

//  Is the payload of this SEND (or EMIT) the JSON in `expected`?
static inline bool
s_payload_is (const chorus_actions_t *out, chorus_action_kind_t kind, const char *key,
              const char *expected)
{
    const chorus_action_t *action = s_action (out, kind, key);
    json_t *want = s_json (expected);
    json_t *payload = s_action_payload (action);
    bool same = payload && json_equal (payload, want);
    if (!same && action) {
        char *got = payload? json_dumps (payload, JSON_ENCODE_ANY): NULL;
        diag ("payload of %s: %s", key, got? got: "(none)");
        free (got);
    }
    json_decref (payload);
    json_decref (want);
    return same;
}

static inline int
s_ok (chorus_flow_t *flow, const char *key, int attempt, const char *output, uint64_t now,
      chorus_actions_t *out)
{
    json_t *value = output? s_json (output): NULL;
    chorus_result_t result = { .ok = true, .output = value };
    chorus_actions_clear (out);
    int rc = chorus_flow_reply (flow, key, attempt, &result, now, out);
    json_decref (value);
    return rc;
}

static inline int
s_error (chorus_flow_t *flow, const char *key, int attempt, bool retryable, uint64_t now,
         chorus_actions_t *out)
{
    chorus_result_t result = { .code = "boom", .message = "it broke", .retryable = retryable };
    chorus_actions_clear (out);
    return chorus_flow_reply (flow, key, attempt, &result, now, out);
}

static inline int
s_timer (chorus_flow_t *flow, const char *key, uint64_t now, chorus_actions_t *out)
{
    chorus_actions_clear (out);
    return chorus_flow_timer (flow, key, now, out);
}

//  A step's field from the status, as JSON text
static inline char *
s_step_field (chorus_flow_t *flow, const char *step, const char *field)
{
    json_t *status = chorus_flow_status (flow);
    json_t *steps = json_object_get (status, "steps");
    char *text = NULL;
    bool found = false;     //  the step, without the field: "(none)"
    for (size_t index = 0; index < json_array_size (steps); index++) {
        json_t *entry = json_array_get (steps, index);
        if (strcmp (json_string_value (json_object_get (entry, "id")), step) == 0
        &&  (found = true))
            text = json_dumps (json_object_get (entry, field), JSON_ENCODE_ANY | JSON_COMPACT);
    }
    json_decref (status);
    return text? text: strdup (found? "(none)": "(no such step)");
}

static inline void
s_is_step_field (chorus_flow_t *flow, const char *step, const char *field, const char *expected,
                 const char *what)
{
    char *text = s_step_field (flow, step, field);
    is_str (text, expected, "%s", what);
    free (text);
}

#endif
