/*  chorus_timers.c — the coordinator's timers (see the header). A flow with
    a deadline leaves a timer for every flow it starts; kept in a sorted
    list, each insert walked all of them and the coordinator slowed down
    with every flow. The heap keeps every operation logarithmic.
*/
#include "chorus_timers.h"

#include <czmq.h>

//  One armed timer
typedef struct _s_timer_t s_timer_t;
struct _s_timer_t {
    uint64_t at;                //  when it fires (ms)
    uint64_t seq;               //  order it was set in, breaks ties on `at`
    char *name;                 //  its key in by_name: flow and key, unambiguous
    char *flow;                 //  the flow's id
    char *key;                  //  the timer's key
    size_t index;               //  its place in the heap
    s_timer_t *prev;            //  the flow's previous timer, NULL: first
    s_timer_t *next;            //  the flow's next timer
};

struct _chorus_timers_t {
    s_timer_t **heap;           //  binary min-heap on (at, seq), soonest at 0
    size_t size;                //  timers in the heap
    size_t max;                 //  heap slots allocated
    uint64_t seq;               //  sequence of the next set
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
    for (size_t i = 0; i < self->size; i++)
        s_timer_destroy (&self->heap [i]);
    free (self->heap);
    zhashx_destroy (&self->by_name);
    zhashx_destroy (&self->by_flow);
    free (self);
    *self_p = NULL;
}

//  --------------------------------------------------------------------------
//  The heap

static bool
s_before (const s_timer_t *a, const s_timer_t *b)
{
    return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

static void
s_place (chorus_timers_t *self, s_timer_t *timer, size_t index)
{
    self->heap [index] = timer;
    timer->index = index;
}

static void
s_sift_up (chorus_timers_t *self, size_t index)
{
    s_timer_t *timer = self->heap [index];
    while (index > 0) {
        size_t parent = (index - 1) / 2;
        if (!s_before (timer, self->heap [parent]))
            break;
        s_place (self, self->heap [parent], index);
        index = parent;
    }
    s_place (self, timer, index);
}

static void
s_sift_down (chorus_timers_t *self, size_t index)
{
    s_timer_t *timer = self->heap [index];
    while (true) {
        size_t child = 2 * index + 1;
        if (child >= self->size)
            break;
        if (child + 1 < self->size && s_before (self->heap [child + 1], self->heap [child]))
            child++;
        if (!s_before (self->heap [child], timer))
            break;
        s_place (self, self->heap [child], index);
        index = child;
    }
    s_place (self, timer, index);
}

//  After a timer's time changed, or another took its place
static void
s_restore (chorus_timers_t *self, size_t index)
{
    if (index > 0 && s_before (self->heap [index], self->heap [(index - 1) / 2]))
        s_sift_up (self, index);
    else
        s_sift_down (self, index);
}

//  Takes the timer out of the heap and both maps, and destroys it
static void
s_remove (chorus_timers_t *self, s_timer_t *timer)
{
    size_t index = timer->index;
    s_timer_t *last = self->heap [--self->size];
    if (last != timer) {
        s_place (self, last, index);
        s_restore (self, index);
    }
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
        timer->at = at;
        timer->seq = self->seq++;
        s_restore (self, timer->index);
        return;
    }
    timer = (s_timer_t *) zmalloc (sizeof (s_timer_t));
    timer->at = at;
    timer->seq = self->seq++;
    timer->name = name;
    timer->flow = strdup (flow);
    timer->key = strdup (key);
    if (self->size == self->max) {
        self->max = self->max? self->max * 2: 64;
        self->heap = (s_timer_t **) realloc (self->heap, self->max * sizeof (s_timer_t *));
        assert (self->heap);
    }
    self->heap [self->size++] = timer;
    s_sift_up (self, self->size - 1);
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
    return self->size? self->heap [0]->at: UINT64_MAX;
}

int
chorus_timers_pop (chorus_timers_t *self, uint64_t now, char **flow, char **key)
{
    if (self->size == 0 || self->heap [0]->at > now)
        return -1;
    s_timer_t *timer = self->heap [0];
    *flow = strdup (timer->flow);
    *key = strdup (timer->key);
    s_remove (self, timer);
    return 0;
}

size_t
chorus_timers_size (chorus_timers_t *self)
{
    return self->size;
}
