/*  chorus_timer_heap.c — a binary min-heap of intrusive timers: the engine's
    classes keep one each, so that a tick costs what is due, not what is
    known.
*/
#include "chorus_private.h"
#include "chorus_timer_heap.h"

struct _chorus__timers_t {
    chorus__timer_t **heap;     //  the timers, earliest first at [0]
    size_t size;                //  how many are set
    size_t max;                 //  how many fit
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
    for (size_t i = 0; i < self->size; i++)
        self->heap [i]->index = 0;
    free (self->heap);
    free (self);
    *self_p = NULL;
}

static void
s_place (chorus__timers_t *self, chorus__timer_t *timer, size_t at)
{
    self->heap [at] = timer;
    timer->index = at + 1;
}

static void
s_up (chorus__timers_t *self, size_t at)
{
    chorus__timer_t *timer = self->heap [at];
    while (at > 0) {
        size_t parent = (at - 1) / 2;
        if (self->heap [parent]->due <= timer->due)
            break;
        s_place (self, self->heap [parent], at);
        at = parent;
    }
    s_place (self, timer, at);
}

static void
s_down (chorus__timers_t *self, size_t at)
{
    chorus__timer_t *timer = self->heap [at];
    while (true) {
        size_t child = 2 * at + 1;
        if (child >= self->size)
            break;
        if (child + 1 < self->size && self->heap [child + 1]->due < self->heap [child]->due)
            child++;
        if (timer->due <= self->heap [child]->due)
            break;
        s_place (self, self->heap [child], at);
        at = child;
    }
    s_place (self, timer, at);
}

void
chorus__timers_cancel (chorus__timers_t *self, chorus__timer_t *timer)
{
    if (!timer->index)
        return;
    size_t at = timer->index - 1;
    assert (at < self->size && self->heap [at] == timer);
    timer->index = 0;
    chorus__timer_t *last = self->heap [--self->size];
    if (last == timer)
        return;
    s_place (self, last, at);
    s_up (self, at);
    s_down (self, last->index - 1);
}

void
chorus__timers_set (chorus__timers_t *self, chorus__timer_t *timer, uint64_t due, void *arg)
{
    timer->arg = arg;
    if (timer->index) {
        //  Already set: move it where its new time belongs
        size_t at = timer->index - 1;
        timer->due = due;
        s_up (self, at);
        s_down (self, timer->index - 1);
        return;
    }
    if (self->size == self->max) {
        self->max = self->max? self->max * 2: 64;
        self->heap = (chorus__timer_t **) realloc (self->heap,
                                                   self->max * sizeof (chorus__timer_t *));
        assert (self->heap);
    }
    timer->due = due;
    s_place (self, timer, self->size++);
    s_up (self, self->size - 1);
}

bool
chorus__timers_pending (chorus__timer_t *timer)
{
    return timer->index != 0;
}

chorus__timer_t *
chorus__timers_pop (chorus__timers_t *self, uint64_t now)
{
    if (self->size == 0 || self->heap [0]->due > now)
        return NULL;
    chorus__timer_t *timer = self->heap [0];
    chorus__timers_cancel (self, timer);
    return timer;
}

uint64_t
chorus__timers_next (chorus__timers_t *self)
{
    return self->size? self->heap [0]->due: UINT64_MAX;
}

size_t
chorus__timers_size (chorus__timers_t *self)
{
    return self->size;
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

    //  Destroyed with timers set: they are left unset
    chorus__timers_set (self, &timers [1], 10, NULL);
    chorus__timers_destroy (&self);
    chorus__timers_destroy (&self);
    CHORUS__CHECK (self == NULL && !chorus__timers_pending (&timers [1]));
    free (timers);
    if (verbose)
        printf ("OK\n");
}
