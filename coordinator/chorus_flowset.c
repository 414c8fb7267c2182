/*  chorus_flowset.c — the flows a coordinator knows: at most one live flow
    per (definition name, business key), so a duplicate start is a no-op,
    and a bounded number of finished flows kept for status queries.
*/
#include "chorus_flow_private.h"
#include "chorus_value.h"

#include <czmq.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define S_STRING(x) #x
#define S_QUOTE(x) S_STRING (x)

//  One flow of the set
typedef struct {
    chorus_flow_t *flow;        //  the flow, owned
    char *live_key;             //  its "name/key" while live with a business key
    bool finished;              //  moved to the finished list
    void *handle;               //  its place in the live or finished list
} s_entry_t;

//  Lookups by id and by business key are hashed: a coordinator holds many
//  thousands of flows and looks one up for every reply
struct _chorus_flowset_t {
    size_t keep_finished;       //  finished flows kept at most
    zhashx_t *by_id;            //  flow id -> s_entry_t
    zhashx_t *by_key;           //  "name/key" -> s_entry_t, live flows only
    zlistx_t *live;             //  live entries, oldest first
    zlistx_t *finished;         //  finished entries, in the order they finished
    bool walking_finished;      //  first/next: past the live list
};

static void
s_entry_destroy (void **item)
{
    s_entry_t *entry = (s_entry_t *) *item;
    if (entry) {
        chorus_flow_destroy (&entry->flow);
        free (entry->live_key);
        free (entry);
        *item = NULL;
    }
}

chorus_flowset_t *
chorus_flowset_new (size_t keep_finished)
{
    chorus_flowset_t *self = (chorus_flowset_t *) zmalloc (sizeof (chorus_flowset_t));
    self->keep_finished = keep_finished;
    self->by_id = zhashx_new ();
    zhashx_set_destructor (self->by_id, s_entry_destroy);
    self->by_key = zhashx_new ();
    self->live = zlistx_new ();
    self->finished = zlistx_new ();
    return self;
}

void
chorus_flowset_destroy (chorus_flowset_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    chorus_flowset_t *self = *self_p;
    zlistx_destroy (&self->live);
    zlistx_destroy (&self->finished);
    zhashx_destroy (&self->by_key);
    zhashx_destroy (&self->by_id);
    free (self);
    *self_p = NULL;
}

static char *
s_live_key (chorus_flowdef_t *def, const char *key)
{
    return key? zsys_sprintf ("%s/%s", chorus_flowdef_name (def), key): NULL;
}

static void
s_append (chorus_flowset_t *self, chorus_flow_t *flow)
{
    s_entry_t *entry = (s_entry_t *) zmalloc (sizeof (s_entry_t));
    entry->flow = flow;
    if (zhashx_insert (self->by_id, chorus_flow_id (flow), entry)) {
        free (entry);       //  the same id twice: the caller keeps its flow
        chorus_flow_destroy (&flow);
        return;
    }
    if (chorus_flow_finished (flow)) {
        entry->finished = true;
        entry->handle = zlistx_add_end (self->finished, entry);
        return;
    }
    entry->handle = zlistx_add_end (self->live, entry);
    entry->live_key = s_live_key (chorus_flow_def (flow), chorus_flow_business_key (flow));
    if (entry->live_key && zhashx_insert (self->by_key, entry->live_key, entry))
        zstr_free (&entry->live_key);   //  a second live flow with that key (journal)
}

chorus_flow_t *
chorus_flowset_start (chorus_flowset_t *self, chorus_flowdef_t *def, const char *id,
                      const json_t *input, const void *encoded, size_t encoded_size,
                      uint64_t now, chorus_actions_t *out, bool *existing)
{
    if (existing)
        *existing = false;
    chorus_flow_t *flow = chorus_flowset_lookup (self, id);
    //  The business key needs the input decoded; the flow keeps it so
    json_t *decoded = NULL;
    if (!flow && !input && encoded && chorus_flowdef_key (def)) {
        decoded = chorus_value_unpack (encoded, encoded_size);
        input = decoded = decoded? decoded: json_null ();
    }
    if (!flow && input) {
        char *key = chorus__business_key (def, input);
        char *live_key = s_live_key (def, key);
        s_entry_t *entry = live_key? (s_entry_t *) zhashx_lookup (self->by_key, live_key): NULL;
        flow = entry? entry->flow: NULL;
        free (live_key);
        free (key);
    }
    if (flow) {
        if (existing)
            *existing = true;
        json_decref (decoded);
        return flow;
    }
    flow = chorus__flow_start (def, id, input, encoded, encoded_size, now, out);
    json_decref (decoded);
    if (flow)
        s_append (self, flow);
    return flow;
}

void
chorus_flowset_insert (chorus_flowset_t *self, chorus_flow_t *flow)
{
    if (flow)
        s_append (self, flow);
}

chorus_flow_t *
chorus_flowset_lookup (chorus_flowset_t *self, const char *id)
{
    s_entry_t *entry = id? (s_entry_t *) zhashx_lookup (self->by_id, id): NULL;
    return entry? entry->flow: NULL;
}

char *
chorus_flowset_evict (chorus_flowset_t *self)
{
    if (zlistx_size (self->finished) <= self->keep_finished)
        return NULL;
    s_entry_t *oldest = (s_entry_t *) zlistx_detach (self->finished, NULL);
    char *id = chorus__strdup (chorus_flow_id (oldest->flow));
    zhashx_delete (self->by_id, id);    //  destroys the entry and its flow
    return id;
}

char *
chorus_flowset_update (chorus_flowset_t *self, chorus_flow_t *flow)
{
    s_entry_t *entry = (s_entry_t *) zhashx_lookup (self->by_id, chorus_flow_id (flow));
    if (!entry)
        return NULL;
    if (!chorus_flow_finished (flow)) {
        if (entry->finished) {
            //  A retried flow runs again: live, with its key, never evicted
            zlistx_detach (self->finished, entry->handle);
            entry->finished = false;
            entry->handle = zlistx_add_end (self->live, entry);
            entry->live_key = s_live_key (chorus_flow_def (flow), chorus_flow_business_key (flow));
            if (entry->live_key && zhashx_insert (self->by_key, entry->live_key, entry))
                zstr_free (&entry->live_key);
        }
        return NULL;
    }
    if (!entry->finished) {
        zlistx_detach (self->live, entry->handle);
        if (entry->live_key) {
            zhashx_delete (self->by_key, entry->live_key);
            zstr_free (&entry->live_key);
        }
        entry->finished = true;
        entry->handle = zlistx_add_end (self->finished, entry);
    }
    return chorus_flowset_evict (self);
}

char *
chorus_flowset_finished (chorus_flowset_t *self, chorus_flow_t *flow)
{
    return chorus_flow_finished (flow)? chorus_flowset_update (self, flow): NULL;
}

size_t
chorus_flowset_size (chorus_flowset_t *self)
{
    return zhashx_size (self->by_id);
}

chorus_flow_t *
chorus_flowset_first (chorus_flowset_t *self)
{
    self->walking_finished = false;
    s_entry_t *entry = (s_entry_t *) zlistx_first (self->live);
    if (!entry) {
        self->walking_finished = true;
        entry = (s_entry_t *) zlistx_first (self->finished);
    }
    return entry? entry->flow: NULL;
}

chorus_flow_t *
chorus_flowset_next (chorus_flowset_t *self)
{
    s_entry_t *entry = NULL;
    if (!self->walking_finished) {
        entry = (s_entry_t *) zlistx_next (self->live);
        if (!entry) {
            self->walking_finished = true;
            entry = (s_entry_t *) zlistx_first (self->finished);
        }
    }
    else
        entry = (s_entry_t *) zlistx_next (self->finished);
    return entry? entry->flow: NULL;
}

//  --------------------------------------------------------------------------
//  Start ids and business keys

int
chorus_flow_check_key (const char *what, const char *key, char *error, size_t error_size)
{
    size_t length = key? strlen (key): 0;
    const char *problem = NULL;
    char bad [16] = "";
    size_t at = 0;
    if (length == 0)
        problem = "it is empty";
    else
    if (length > CHORUS_FLOW_KEY_MAX)
        problem = "it is longer than " S_QUOTE (CHORUS_FLOW_KEY_MAX) " bytes";
    for (; !problem && at < length; at++) {
        unsigned char c = (unsigned char) key [at];
        if (isalnum (c) && c < 0x80)
            continue;
        if (c && strchr (CHORUS_FLOW_KEY_PUNCT, c))
            continue;
        if (c == ' ')
            snprintf (bad, sizeof (bad), "a space");
        else
        if (c < 0x20 || c == 0x7f)
            snprintf (bad, sizeof (bad), "control 0x%02x", c);
        else
        if (c >= 0x80)
            snprintf (bad, sizeof (bad), "byte 0x%02x", c);
        else
            snprintf (bad, sizeof (bad), "'%c'", c);
        problem = bad;
    }
    if (!problem)
        return 0;
    //  The key as given, but never its control characters
    char shown [40];
    snprintf (shown, sizeof (shown), "%.32s%s", key? key: "", length > 32? "...": "");
    for (char *c = shown; *c; c++)
        if ((unsigned char) *c < 0x20 || *c == 0x7f)
            *c = '?';
    if (problem == bad)
        snprintf (error, error_size, "bad %s '%s': %s at position %zu is not allowed; use 1 to "
                  S_QUOTE (CHORUS_FLOW_KEY_MAX) " of A-Z a-z 0-9 " CHORUS_FLOW_KEY_PUNCT,
                  what, shown, bad, at);
    else
        snprintf (error, error_size, "bad %s '%s': %s; use 1 to " S_QUOTE (CHORUS_FLOW_KEY_MAX)
                  " of A-Z a-z 0-9 " CHORUS_FLOW_KEY_PUNCT, what, shown, problem);
    return -1;
}

char *
chorus_flow_canonical_key (const json_t *value, char *error, size_t error_size)
{
    if (error_size)
        error [0] = 0;
    char *key = NULL;
    if (!value || json_is_null (value))
        return NULL;
    if (json_is_string (value))
        key = chorus__strdup (json_string_value (value));
    else
    if (json_is_integer (value))
        key = chorus__format ("%" JSON_INTEGER_FORMAT, json_integer_value (value));
    else {
        snprintf (error, error_size, "bad business key: must be a string or an integer, not %s",
                  json_is_real (value)? "a real": json_is_boolean (value)? "a boolean":
                  json_is_array (value)? "a list": "an object");
        return NULL;
    }
    if (key && chorus_flow_check_key ("business key", key, error, error_size))
        zstr_free (&key);
    return key;
}
