/*  chorus_delivery.h — delivery of our events to the service groups that
    subscribe to them (protocol section 7.2), and the answers to observers'
    FETCH requests. Private to the library.
*/
#ifndef CHORUS_DELIVERY_H_INCLUDED
#define CHORUS_DELIVERY_H_INCLUDED

#include "chorus_context.h"

typedef struct _chorus__delivery_t chorus__delivery_t;

chorus__delivery_t *
    chorus__delivery_new (chorus__context_t *context);
void
    chorus__delivery_destroy (chorus__delivery_t **self_p);
//  Events just published, and their bodies as stored, in order; takes
//  them all (the arrays stay the caller's)
void
    chorus__delivery_published (chorus__delivery_t *self, chorus_msg_t **events, zframe_t **bodies,
                                size_t count);
//  A peer joined, or announced new subscriptions
void
    chorus__delivery_peer_joined (chorus__delivery_t *self, chorus__peer_t *peer);
void
    chorus__delivery_peer_gone (chorus__delivery_t *self, chorus__peer_t *peer);
//  Our connection to an instance is up: its group sends what waits
void
    chorus__delivery_peer_ready (chorus__delivery_t *self, chorus__peer_t *peer);
void
    chorus__delivery_ack (chorus__delivery_t *self, chorus__peer_t *peer, chorus_msg_t *ack);
void
    chorus__delivery_fetch (chorus__delivery_t *self, chorus__peer_t *peer, chorus_msg_t *fetch);
void
    chorus__delivery_tick (chorus__delivery_t *self, uint64_t now);
//  When the tick next has work: the earliest group timer, or retention
uint64_t
    chorus__delivery_next_due (chorus__delivery_t *self);
//  Calls fn with each group that has deliveries not yet acknowledged: its
//  name, how many, and how many live instances it has
typedef void (chorus__pending_fn) (const char *group, uint64_t pending, size_t instances,
                                   void *arg);
void
    chorus__delivery_pending (chorus__delivery_t *self, chorus__pending_fn *fn, void *arg);
//  The same for every group known, 0 pending or not (for /metrics)
void
    chorus__delivery_lag (chorus__delivery_t *self, chorus__pending_fn *fn, void *arg);
//  The seq from which some group has not acknowledged every event due to
//  it (its cursor, the lowest of such groups), 0 when every group is done
uint64_t
    chorus__delivery_oldest_pending (chorus__delivery_t *self);
//  Applies retention now; returns true if the outbox is still over its size
//  limit with held events (a publish is then refused)
bool
    chorus__delivery_retain (chorus__delivery_t *self, uint64_t now);
int64_t
    chorus__delivery_unacked (chorus__delivery_t *self);
//  Self-test
void
    chorus__delivery_test (bool verbose);

#endif
