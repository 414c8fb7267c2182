/*  chorus_timer_heap.h — a min-heap of timers, so that a class's tick visits
    only what is due instead of walking every peer or group it keeps. A
    timer lives inside its owner's struct (intrusive): setting it again
    moves it, cancelling it takes it out, all in O(log n). The heap itself
    is common/chorus_heap.h, which the coordinator's flow timers share.
    Private to the library.
*/
#ifndef CHORUS_TIMER_HEAP_H_INCLUDED
#define CHORUS_TIMER_HEAP_H_INCLUDED

#include "chorus_heap.h"

typedef struct _chorus__timers_t chorus__timers_t;

//  One timer, a field of whatever it times; zero it before first use
//  (due, arg: its owner; index: 0 when not set)
typedef chorus_heap_item_t chorus__timer_t;

chorus__timers_t *
    chorus__timers_new (void);
//  Takes every timer out (their owners keep them); safe twice
void
    chorus__timers_destroy (chorus__timers_t **self_p);
//  Sets (or moves) a timer to fire at due, for its owner arg
void
    chorus__timers_set (chorus__timers_t *self, chorus__timer_t *timer, uint64_t due, void *arg);
//  Takes a timer out if it is set
void
    chorus__timers_cancel (chorus__timers_t *self, chorus__timer_t *timer);
//  True while a timer is set
bool
    chorus__timers_pending (chorus__timer_t *timer);
//  The earliest timer due at now or before, taken out; NULL if none
chorus__timer_t *
    chorus__timers_pop (chorus__timers_t *self, uint64_t now);
//  When the earliest timer is due, UINT64_MAX if none is set
uint64_t
    chorus__timers_next (chorus__timers_t *self);
//  How many are set
size_t
    chorus__timers_size (chorus__timers_t *self);
//  Self-test
void
    chorus__timers_test (bool verbose);

#endif
