/*  chorus_timer_heap.c — a binary min-heap of intrusive timers: the engine's
    classes keep one each, so that a tick costs what is due, not what is
    known.
*/
#include "chorus_private.h"
#include "chorus_timer_heap.h"

struct _chorus__timers_t {
    chorus_heap_t heap;         //  the timers, earliest first
};

chorus__timers_t *
chorus__timers_new (void)
{
    chorus__timers_t *self = (chorus__timers_t *) zmalloc (sizeof (chorus__timers_t));
    return self;
}

void
chorus__timers_destroy (chorus__timers_t **self_p)
{
    chorus__timers_t *self = *self_p;
    if (!self)
        return;
    chorus_heap_clear (&self->heap);
    free (self);
    *self_p = NULL;
}

void
chorus__timers_set (chorus__timers_t *self, chorus__timer_t *timer, uint64_t due, void *arg)
{
    chorus_heap_set (&self->heap, timer, due, arg);
}

void
chorus__timers_cancel (chorus__timers_t *self, chorus__timer_t *timer)
{
    chorus_heap_cancel (&self->heap, timer);
}

bool
chorus__timers_pending (chorus__timer_t *timer)
{
    return timer->index != 0;
}

chorus__timer_t *
chorus__timers_pop (chorus__timers_t *self, uint64_t now)
{
    return chorus_heap_pop (&self->heap, now);
}

uint64_t
chorus__timers_next (chorus__timers_t *self)
{
    chorus__timer_t *first = chorus_heap_first (&self->heap);
    return first? first->due: UINT64_MAX;
}

size_t
chorus__timers_size (chorus__timers_t *self)
{
    return self->heap.size;
}

//  --------------------------------------------------------------------------
//  Self-test

void
chorus__timers_test (bool verbose)
{
    if (verbose)
        printf (" * chorus__timers: ");
    chorus__timers_t *self = chorus__timers_new ();
    CHORUS__CHECK (chorus__timers_next (self) == UINT64_MAX);
    CHORUS__CHECK (chorus__timers_pop (self, UINT64_MAX) == NULL);

    //  Many timers in a shuffled order come out earliest first, each once
    enum { COUNT = 1000 };
    chorus__timer_t *timers = (chorus__timer_t *) calloc (COUNT, sizeof (chorus__timer_t));
    uint32_t state = 12345;
    for (size_t i = 0; i < COUNT; i++) {
        state = state * 1103515245 + 12345;
        chorus__timers_set (self, &timers [i], (state >> 8) % 5000, &timers [i]);
    }
    CHORUS__CHECK (chorus__timers_size (self) == COUNT);
    //  Moved and cancelled ones keep the heap in order
    for (size_t i = 0; i < COUNT; i += 7)
        chorus__timers_set (self, &timers [i], timers [i].due + 3000, &timers [i]);
    size_t cancelled = 0;
    for (size_t i = 3; i < COUNT; i += 11) {
        chorus__timers_cancel (self, &timers [i]);
        chorus__timers_cancel (self, &timers [i]);     //  twice is harmless
        CHORUS__CHECK (!chorus__timers_pending (&timers [i]));
        cancelled++;
    }
    CHORUS__CHECK (chorus__timers_size (self) == COUNT - cancelled);
    //  Nothing comes before it is due
    uint64_t first = chorus__timers_next (self);
    CHORUS__CHECK (first == 0 || chorus__timers_pop (self, first - 1) == NULL);
    uint64_t last = 0;
    size_t popped = 0;
    chorus__timer_t *timer;
    while ((timer = chorus__timers_pop (self, UINT64_MAX))) {
        CHORUS__CHECK (timer->due >= last && timer->arg == timer && !timer->index);
        last = timer->due;
        popped++;
    }
    CHORUS__CHECK (popped == COUNT - cancelled && chorus__timers_size (self) == 0);

    //  A timer set again before it fires fires once, at its new time
    chorus__timers_set (self, &timers [0], 100, NULL);
    chorus__timers_set (self, &timers [0], 50, NULL);
    CHORUS__CHECK (chorus__timers_size (self) == 1 && chorus__timers_next (self) == 50);
    CHORUS__CHECK (chorus__timers_pop (self, 49) == NULL);
    CHORUS__CHECK (chorus__timers_pop (self, 50) == &timers [0]);
    CHORUS__CHECK (chorus__timers_pop (self, 1000) == NULL);

    //  Timers due at once come out in the order they were set
    chorus__timers_set (self, &timers [2], 70, NULL);
    chorus__timers_set (self, &timers [3], 70, NULL);
    chorus__timers_set (self, &timers [4], 70, NULL);
    chorus__timers_set (self, &timers [2], 70, NULL);     //  set again: now last
    CHORUS__CHECK (chorus__timers_pop (self, 70) == &timers [3]);
    CHORUS__CHECK (chorus__timers_pop (self, 70) == &timers [4]);
    CHORUS__CHECK (chorus__timers_pop (self, 70) == &timers [2]);

    //  Destroyed with timers set: they are left unset
    chorus__timers_set (self, &timers [1], 10, NULL);
    chorus__timers_destroy (&self);
    chorus__timers_destroy (&self);
    CHORUS__CHECK (self == NULL && !chorus__timers_pending (&timers [1]));
    free (timers);
    if (verbose)
        printf ("OK\n");
}
