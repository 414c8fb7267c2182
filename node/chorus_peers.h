/*  chorus_peers.h — meeting and keeping peers: the table of live peers,
    connections to seeds and to endpoints heard of by gossip or beacon, the
    HELLO exchange within the node's bounds (protocol sections 4 and 4.5),
    and SWIM-style probes that find the suspect (evasive) and the dead
    (expired) at a constant cost per period, with membership news carried
    on them (section 6). What happens to a
    peer (joined, changed, gone, a new head) goes to one callback, which
    the engine passes on to delivery, commands and the observer.
    Private to the library.
*/
#ifndef CHORUS_PEERS_H_INCLUDED
#define CHORUS_PEERS_H_INCLUDED

#include "chorus_context.h"
#include "chorus_gate.h"

typedef struct _chorus__peers_t chorus__peers_t;

typedef enum {
    CHORUS__PEER_JOINED,        //  a new member: met, or known from news and not met
                                //  yet (peer->met false: no subscriptions, no PUB)
    CHORUS__PEER_CHANGED,       //  what it announces changed (subscriptions); also
                                //  when it is met
    CHORUS__PEER_GONE,          //  left or expired, out of the table already; the
                                //  peer is destroyed when the callback returns
    CHORUS__PEER_HEAD,          //  its head (latest published seq) is known anew
    CHORUS__PEER_READY          //  our connection to it, which was coming up (opened
                                //  on demand), has taken our HELLO: what waits to go
                                //  to it may go now
} chorus__peer_event_t;

typedef void (chorus__peers_fn) (chorus__peer_t *peer, chorus__peer_event_t event, void *arg);

//  Owns the table of live peers and makes it context->peers
chorus__peers_t *
    chorus__peers_new (chorus__context_t *context, chorus__peers_fn *fn, void *arg);
//  Closes every connection; says nothing to the peers
void
    chorus__peers_destroy (chorus__peers_t **self_p);
//  We are up: our endpoints as announced, and the gate of our inbox
void
    chorus__peers_start (chorus__peers_t *self, const char *endpoint, const char *pub_endpoint,
                         chorus__gate_t *inbox_gate);
//  On a plaintext mesh: a UDP socket for probes (section 6.1.1) on the
//  host and port our inbox is bound to. Returns its descriptor, for the
//  engine to wait on, or -1 when there is none (probes then go over the
//  connections only); the class closes it
int
    chorus__peers_datagrams (chorus__peers_t *self, const char *bound);
//  Datagrams came: answers PINGs, takes PONGs as answers, and the news
//  they carry; msg is scratch
void
    chorus__peers_recv_datagrams (chorus__peers_t *self, chorus_msg_t *msg);
//  One of our subscriptions, for our HELLO; false if we announce it already
bool
    chorus__peers_subscribe (chorus__peers_t *self, const char *prefix, uint64_t since,
                             uint64_t flags);
//  A HELLO from the peer with this instance id: meet it, or update it
void
    chorus__peers_hello (chorus__peers_t *self, const char *instance, chorus_msg_t *hello);
//  Any other message from a peer: it is alive
void
    chorus__peers_heard (chorus__peers_t *self, chorus__peer_t *peer);
//  A PING, PONG, PING-REQ or PING-ACK from a peer (after chorus__peers_heard):
//  answers it, probes for it, and takes in the news it carries
void
    chorus__peers_probe_msg (chorus__peers_t *self, chorus__peer_t *peer, chorus_msg_t *msg);
//  A reason to doubt a peer (its connection into our inbox closed): probe it
//  now
void
    chorus__peers_doubt (chorus__peers_t *self, const char *instance);
//  A member we have not met sent us a message (not a HELLO), which we drop:
//  it met us before, an earlier start of ours or before we forgot it. Our
//  HELLO goes to it, so that it meets who we are now and sends again
void
    chorus__peers_unmet_spoke (chorus__peers_t *self, chorus__peer_t *peer);
//  Forgets a peer (expired or left): tells the callback, then the
//  application, then destroys it
void
    chorus__peers_remove (chorus__peers_t *self, chorus__peer_t *peer, chorus_peer_state_t state);
//  A seed endpoint to meet (from the configuration)
void
    chorus__peers_add_seed (chorus__peers_t *self, const char *seed);
//  A beacon heard on the UDP discovery actor
void
    chorus__peers_recv_beacon (chorus__peers_t *self, zactor_t *beacon);
//  Broadcasts our beacon for the inbox port (0: we are leaving)
void
    chorus__peers_beacon (chorus__peers_t *self, zactor_t *beacon, int port);
//  The trust directory changed: peers and connections awaiting a HELLO
//  whose key is no longer trusted, or not for their service, are cut off
void
    chorus__peers_trust_changed (chorus__peers_t *self);
//  The schedule's probe and the steps of probes under way, seed probes,
//  stale connections, and our HELLO to every peer when what we announce
//  (our subscriptions) has changed
void
    chorus__peers_tick (chorus__peers_t *self, uint64_t now);
//  When the tick next has work: the earliest timer (probes, gossip, seeds
//  to try again, announcements), or CHORUS__DUE_TICK while connections
//  come up
uint64_t
    chorus__peers_next_due (chorus__peers_t *self);
//  True while a HELLO waits for its connection to come up: tick soon
bool
    chorus__peers_connecting (chorus__peers_t *self);
//  How many live peers are evasive (kept as they change, not counted)
size_t
    chorus__peers_evasive (chorus__peers_t *self);
//  Our local health, 0 (well) to 8: how far our own stalls stretch our
//  probe times (protocol section 6.1)
int
    chorus__peers_health (chorus__peers_t *self);
//  The engine woke at now for timers due at due, or ended at now a turn
//  begun at due: if that is 200 ms late or more, we were stalled, and the
//  probes under way get the time back
void
    chorus__peers_woke (chorus__peers_t *self, uint64_t due, uint64_t now);
//  We observe now: we meet every member, to read its PUB
void
    chorus__peers_observe (chorus__peers_t *self);
//  Self-test
void
    chorus__peers_test (bool verbose);

#endif
