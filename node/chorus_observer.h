/*  chorus_observer.h — observing every event of the mesh: a SUB to each
    peer's PUB, gaps repaired with FETCH (protocol section 9), and a window
    of observed events handed to the application. Private to the library.
*/
#ifndef CHORUS_OBSERVER_H_INCLUDED
#define CHORUS_OBSERVER_H_INCLUDED

#include "chorus_context.h"

typedef struct _chorus__observer_t chorus__observer_t;

chorus__observer_t *
    chorus__observer_new (chorus__context_t *context);
void
    chorus__observer_destroy (chorus__observer_t **self_p);
void
    chorus__observer_add (chorus__observer_t *self, const char *prefix, bool from_earliest);
void
    chorus__observer_peer_joined (chorus__observer_t *self, chorus__peer_t *peer);
void
    chorus__observer_peer_gone (chorus__observer_t *self, chorus__peer_t *peer);
void
    chorus__observer_head (chorus__observer_t *self, chorus__peer_t *peer, uint64_t head);
//  An EVENT sent by the peer in answer to our FETCH; takes the message when
//  it is accepted
void
    chorus__observer_fetched (chorus__observer_t *self, chorus__peer_t *peer,
                              chorus_msg_t **event_p);
void
    chorus__observer_replay (chorus__observer_t *self, chorus__peer_t *peer, chorus_msg_t *replay);
void
    chorus__observer_truncated (chorus__observer_t *self, chorus__peer_t *peer,
                                chorus_msg_t *truncated);
//  Reads what came on socket if it is one of the observer's; false if not
bool
    chorus__observer_recv (chorus__observer_t *self, void *socket);
void
    chorus__observer_tick (chorus__observer_t *self, uint64_t now);
//  When the tick next has work: CHORUS__DUE_TICK while a source has a gap
//  or a FETCH outstanding and the application has room, else UINT64_MAX
uint64_t
    chorus__observer_next_due (chorus__observer_t *self);
//  The application has run n observed events
void
    chorus__observer_done (chorus__observer_t *self, size_t count);
//  Self-test
void
    chorus__observer_test (bool verbose);

#endif
