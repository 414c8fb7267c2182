/*  chorus_flowset.c — the flows a coordinator knows: at most one live flow
    per (definition name, business key), so a duplicate start is a no-op,
    and a bounded number of finished flows kept for status queries.
*/
#include "chorus_flow_private.h"
#include "chorus_value.h"

#include <czmq.h>
#include <stdlib.h>
#include <string.h>

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
