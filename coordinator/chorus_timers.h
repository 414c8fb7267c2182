/*  chorus_timers.h — the timers the coordinator holds for its flows: a
    binary min-heap on the due time, each timer named by (flow id, key),
    with a position map so that setting, moving or cancelling one, and
    cancelling all of a flow's, costs O(log n) each, whatever the count.
*/
#ifndef CHORUS_TIMERS_H_INCLUDED
#define CHORUS_TIMERS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _chorus_timers_t chorus_timers_t;

chorus_timers_t *
    chorus_timers_new (void);
void
    chorus_timers_destroy (chorus_timers_t **self_p);

//  Arms the flow's timer `key` at `at` (ms); a timer of the same name
//  already armed is moved there, since the newer one supersedes it
void
    chorus_timers_set (chorus_timers_t *self, const char *flow, const char *key, uint64_t at);
//  Cancels the flow's timer `key`; 0, or -1 if none was armed
int
    chorus_timers_cancel (chorus_timers_t *self, const char *flow, const char *key);
//  Cancels every timer of the flow; returns how many there were
size_t
    chorus_timers_cancel_flow (chorus_timers_t *self, const char *flow);
//  When the soonest timer is due, UINT64_MAX if none is armed
uint64_t
    chorus_timers_due (chorus_timers_t *self);
//  Takes the soonest timer if it is due at `now` or before: 0 and its flow
//  and key (caller frees), or -1. Timers due at the same time come out in
//  the order they were set.
int
    chorus_timers_pop (chorus_timers_t *self, uint64_t now, char **flow, char **key);
//  How many timers are armed
size_t
    chorus_timers_size (chorus_timers_t *self);

#endif
