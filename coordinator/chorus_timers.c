/*  chorus_timers.c — the coordinator's timers (see the header). A flow with
    a deadline leaves a timer for every flow it starts; kept in a sorted
    list, each insert walked all of them and the coordinator slowed down
    with every flow. The heap keeps every operation logarithmic.
*/
#include "chorus_timers.h"
#include "chorus_heap.h"

#include <czmq.h>

//  One armed timer
typedef struct _s_timer_t s_timer_t;
struct _s_timer_t {
    chorus_heap_item_t item;    //  when it fires (ms), its place in the heap
    char *name;                 //  its key in by_name: flow and key, unambiguous
    char *flow;                 //  the flow's id
    char *key;                  //  the timer's key
    s_timer_t *prev;            //  the flow's previous timer, NULL: first
    s_timer_t *next;            //  the flow's next timer
};

struct _chorus_timers_t {
    chorus_heap_t heap;         //  the timers, soonest first, ties in the order set
    zhashx_t *by_name;          //  name -> s_timer_t (not owned: the heap owns)
    zhashx_t *by_flow;          //  flow id -> the flow's first s_timer_t
};

//  "LENGTH:FLOWKEY": no flow id and key make the same name as another pair
static char *
s_name (const char *flow, const char *key)
{
    return zsys_sprintf ("%zu:%s%s", strlen (flow), flow, key);
}

static void
s_timer_destroy (s_timer_t **timer_p)
{
    s_timer_t *timer = *timer_p;
    if (timer) {
        free (timer->name);
        free (timer->flow);
        free (timer->key);
        free (timer);
        *timer_p = NULL;
    }
}

chorus_timers_t *
chorus_timers_new (void)
{
    chorus_timers_t *self = (chorus_timers_t *) zmalloc (sizeof (chorus_timers_t));
    self->by_name = zhashx_new ();
    self->by_flow = zhashx_new ();
    return self;
}

void
chorus_timers_destroy (chorus_timers_t **self_p)
{
    chorus_timers_t *self = *self_p;
    if (!self)
        return;
    //  The heap holds every timer once: taken out first, then destroyed
    size_t size = self->heap.size;
    s_timer_t **timers = (s_timer_t **) malloc ((size? size: 1) * sizeof (s_timer_t *));
    assert (timers);
    for (size_t i = 0; i < size; i++)
        timers [i] = (s_timer_t *) self->heap.items [i]->arg;
    chorus_heap_clear (&self->heap);
    for (size_t i = 0; i < size; i++)
        s_timer_destroy (&timers [i]);
    free (timers);
    zhashx_destroy (&self->by_name);
    zhashx_destroy (&self->by_flow);
    free (self);
    *self_p = NULL;
}

//  --------------------------------------------------------------------------
//  The timers

//  Takes the timer out of the heap and both maps, and destroys it
static void
s_remove (chorus_timers_t *self, s_timer_t *timer)
{
    chorus_heap_cancel (&self->heap, &timer->item);
    zhashx_delete (self->by_name, timer->name);
    if (timer->next)
        timer->next->prev = timer->prev;
    if (timer->prev)
        timer->prev->next = timer->next;
    else
    if (timer->next)
        zhashx_update (self->by_flow, timer->flow, timer->next);
    else
        zhashx_delete (self->by_flow, timer->flow);
    s_timer_destroy (&timer);
}

//  --------------------------------------------------------------------------
//  The API

void
chorus_timers_set (chorus_timers_t *self, const char *flow, const char *key, uint64_t at)
{
    char *name = s_name (flow, key);
    s_timer_t *timer = (s_timer_t *) zhashx_lookup (self->by_name, name);
    if (timer) {
        free (name);
        chorus_heap_set (&self->heap, &timer->item, at, timer);
        return;
    }
    timer = (s_timer_t *) zmalloc (sizeof (s_timer_t));
    timer->name = name;
    timer->flow = strdup (flow);
    timer->key = strdup (key);
    chorus_heap_set (&self->heap, &timer->item, at, timer);
    zhashx_insert (self->by_name, name, timer);
    //  First of its flow's timers: the list is unordered, the head is cheapest
    timer->next = (s_timer_t *) zhashx_lookup (self->by_flow, flow);
    if (timer->next)
        timer->next->prev = timer;
    zhashx_update (self->by_flow, flow, timer);
}

int
chorus_timers_cancel (chorus_timers_t *self, const char *flow, const char *key)
{
    char *name = s_name (flow, key);
    s_timer_t *timer = (s_timer_t *) zhashx_lookup (self->by_name, name);
    free (name);
    if (!timer)
        return -1;
    s_remove (self, timer);
    return 0;
}

size_t
chorus_timers_cancel_flow (chorus_timers_t *self, const char *flow)
{
    size_t count = 0;
    s_timer_t *timer;
    while ((timer = (s_timer_t *) zhashx_lookup (self->by_flow, flow))) {
        s_remove (self, timer);
        count++;
    }
    return count;
}

uint64_t
chorus_timers_due (chorus_timers_t *self)
{
    chorus_heap_item_t *first = chorus_heap_first (&self->heap);
    return first? first->due: UINT64_MAX;
}

int
chorus_timers_pop (chorus_timers_t *self, uint64_t now, char **flow, char **key)
{
    chorus_heap_item_t *first = chorus_heap_first (&self->heap);
    if (!first || first->due > now)
        return -1;
    s_timer_t *timer = (s_timer_t *) first->arg;
    *flow = strdup (timer->flow);
    *key = strdup (timer->key);
    s_remove (self, timer);
    return 0;
}

size_t
chorus_timers_size (chorus_timers_t *self)
{
    return self->heap.size;
}
