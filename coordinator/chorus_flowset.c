/*  chorus_flowset.c — the flows a coordinator knows: at most one live flow
    per (definition name, business key), so a duplicate start is a no-op,
    and a bounded number of finished flows kept for status queries.
*/
#include "chorus_flow_task.h"

#include <stdlib.h>
#include <string.h>

//  One flow of the set
typedef struct {
    chorus_flow_t *flow;        //  the flow, owned
    uint64_t finished_order;    //  when it was reported finished, 0: not (yet)
} s_entry_t;

struct _chorus_flowset_t {
    size_t keep_finished;       //  finished flows kept at most
    s_entry_t *entries;         //  every flow, in the order it came in
    size_t size;                //  how many
    size_t max;                 //  allocated
    uint64_t finished_seq;      //  last finished_order handed out
    chorus_flow_t **walk;       //  first/next: the flows in their order
    size_t walk_size;           //  how many
    size_t walk_next;           //  the next one next returns
};

chorus_flowset_t *
chorus_flowset_new (size_t keep_finished)
{
    chorus_flowset_t *self = calloc (1, sizeof *self);
    if (self)
        self->keep_finished = keep_finished;
    return self;
}

void
chorus_flowset_destroy (chorus_flowset_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    chorus_flowset_t *self = *self_p;
    for (size_t index = 0; index < self->size; index++)
        chorus_flow_destroy (&self->entries [index].flow);
    free (self->entries);
    free (self->walk);
    free (self);
    *self_p = NULL;
}

static s_entry_t *
s_entry (chorus_flowset_t *self, chorus_flow_t *flow)
{
    for (size_t index = 0; index < self->size; index++)
        if (self->entries [index].flow == flow)
            return &self->entries [index];
    return NULL;
}

//  Flows finished without being reported count as the newest
static uint64_t
s_finished_order (const s_entry_t *entry)
{
    return entry->finished_order? entry->finished_order: UINT64_MAX;
}

static void
s_append (chorus_flowset_t *self, chorus_flow_t *flow)
{
    if (self->size == self->max) {
        size_t max = self->max? self->max * 2: 16;
        s_entry_t *entries = realloc (self->entries, max * sizeof *entries);
        if (!entries)
            abort ();
        self->entries = entries;
        self->max = max;
    }
    self->entries [self->size].flow = flow;
    self->entries [self->size].finished_order = chorus_flow_finished (flow)
                                              ? ++self->finished_seq: 0;
    self->size++;
}

chorus_flow_t *
chorus_flowset_start (chorus_flowset_t *self, chorus_flowdef_t *def, const char *id,
                      const json_t *input, uint64_t now, chorus_actions_t *out, bool *existing)
{
    if (existing)
        *existing = false;
    chorus_flow_t *flow = chorus_flowset_lookup (self, id);
    char *key = flow? NULL: chorus__business_key (def, input);
    for (size_t index = 0; index < self->size && key && !flow; index++) {
        chorus_flow_t *other = self->entries [index].flow;
        const char *other_key = chorus_flow_business_key (other);
        if (!chorus_flow_finished (other) && other_key && strcmp (other_key, key) == 0
        &&  strcmp (chorus_flowdef_name (chorus_flow_def (other)), chorus_flowdef_name (def)) == 0)
            flow = other;
    }
    free (key);
    if (flow) {
        if (existing)
            *existing = true;
        return flow;
    }
    flow = chorus_flow_start (def, id, input, now, out);
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
    for (size_t index = 0; id && index < self->size; index++)
        if (strcmp (chorus_flow_id (self->entries [index].flow), id) == 0)
            return self->entries [index].flow;
    return NULL;
}

char *
chorus_flowset_evict (chorus_flowset_t *self)
{
    size_t finished = 0;
    s_entry_t *oldest = NULL;
    for (size_t index = 0; index < self->size; index++) {
        s_entry_t *entry = &self->entries [index];
        if (!chorus_flow_finished (entry->flow) || !entry->finished_order)
            continue;
        finished++;
        if (!oldest || entry->finished_order < oldest->finished_order)
            oldest = entry;
    }
    if (finished <= self->keep_finished)
        return NULL;
    char *id = chorus__strdup (chorus_flow_id (oldest->flow));
    chorus_flow_destroy (&oldest->flow);
    size_t index = (size_t) (oldest - self->entries);
    memmove (oldest, oldest + 1, (self->size - index - 1) * sizeof *oldest);
    self->size--;
    return id;
}

char *
chorus_flowset_finished (chorus_flowset_t *self, chorus_flow_t *flow)
{
    s_entry_t *entry = s_entry (self, flow);
    if (!entry || !chorus_flow_finished (flow))
        return NULL;
    entry->finished_order = ++self->finished_seq;
    return chorus_flowset_evict (self);
}

size_t
chorus_flowset_size (chorus_flowset_t *self)
{
    return self->size;
}

chorus_flow_t *
chorus_flowset_first (chorus_flowset_t *self)
{
    free (self->walk);
    self->walk = calloc (self->size? self->size: 1, sizeof (chorus_flow_t *));
    s_entry_t *finished = calloc (self->size? self->size: 1, sizeof (s_entry_t));
    if (!self->walk || !finished)
        abort ();
    size_t live = 0, done = 0;
    for (size_t index = 0; index < self->size; index++)
        if (chorus_flow_finished (self->entries [index].flow))
            finished [done++] = self->entries [index];
        else
            self->walk [live++] = self->entries [index].flow;
    for (size_t index = 1; index < done; index++) {
        //  Insertion sort: stable, and the lists are short
        s_entry_t entry = finished [index];
        size_t at = index;
        for (; at > 0 && s_finished_order (&finished [at - 1]) > s_finished_order (&entry); at--)
            finished [at] = finished [at - 1];
        finished [at] = entry;
    }
    for (size_t index = 0; index < done; index++)
        self->walk [live + index] = finished [index].flow;
    free (finished);
    self->walk_size = self->size;
    self->walk_next = 0;
    return chorus_flowset_next (self);
}

chorus_flow_t *
chorus_flowset_next (chorus_flowset_t *self)
{
    return self->walk_next < self->walk_size? self->walk [self->walk_next++]: NULL;
}
