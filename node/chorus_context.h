/*  chorus_context.h — the few services the engine's classes share: the
    configuration and the store, the table of live peers (read only), the
    counters, bounded-rate warnings, and the hand-over of work to the
    application's thread. The engine owns one and gives each class a
    pointer to it; a class never sees the engine itself, so that calls go
    down, from the engine to its classes and from them to this. A
    self-test fills one by hand (chorus__context_init) with fakes.
    Private to the library.
*/
#ifndef CHORUS_CONTEXT_H_INCLUDED
#define CHORUS_CONTEXT_H_INCLUDED

#include "chorus_private.h"
#include "chorus_peer.h"
#include "chorus_monitor.h"

//  Counters, named for chorus_node_counter
typedef enum {
    C_MALFORMED, C_UNKNOWN_PEER, C_PUBLISHED, C_DELIVERED, C_HANDLED, C_DUPLICATES,
    C_REDELIVERED, C_COMMANDS_SENT, C_COMMANDS_HANDLED, C_REPLIES, C_TIMEOUTS, C_FETCHES,
    C_TRUNCATED, C_OBSERVED, C_EXPIRED_COMMANDS, C_FETCHED, C_FORGED, C_REFUSED,
    C_ERRORS_SENT, C_ERRORS_RECEIVED, C_CONNECTIONS_REFUSED, C_FORBIDDEN, C_UNAUTHORISED,
    C_HANDSHAKES_FAILED, C_REVOKED, C_HELLOS, C_STALLS, C_DATAGRAMS, C_IDLE_CLOSES,
    C_COUNTERS
} chorus__counter_t;

//  Kinds of warning, each printed at a bounded rate
typedef enum {
    W_FORGED, W_REFUSED, W_SHUT_OUT, W_SOCKET, W_ERROR, W_STORE, W_FORBIDDEN, W_HANDSHAKE,
    W_REVOKED, W_UNTRUSTED, W_KINDS
} chorus__warning_t;

extern const char *chorus__counter_names [C_COUNTERS];
_Static_assert (C_COUNTERS <= CHORUS_STATS_COUNTERS, "the stats hold every counter");

typedef struct {
    chorus__config_t *config;   //  configuration, owned by the node wrapper
    chorus_store_t *store;      //  the node's store
    char instance [33];         //  our instance id, "" before start
    zhashx_t *peers;            //  instance -> chorus__peer_t, live peers (owned by
                                //  the engine's peers class; others only read it)
    zsock_t *work;              //  work pipe to the application's thread
    chorus__batch_t handover;   //  work collected for the application
    chorus__poller_t *poller;   //  what the engine waits on (sockets a class adds)
    chorus__monitor_t *monitor; //  socket events, or NULL
    uint64_t counters [C_COUNTERS];     //  what happened
    uint64_t warned [W_KINDS];  //  when each kind of warning was last printed
    uint64_t unwarned [W_KINDS];    //  and how many were held back since
} chorus__context_t;

//  What a class's next_due call returns when part of its work cannot be
//  timed (a connection coming up, a hash of commands in flight): it is
//  looked at on the engine's regular tick, every few tens of ms. Otherwise
//  next_due is the monotonic time of the class's earliest timer, UINT64_MAX
//  when none is set, and an idle engine sleeps until then.
#define CHORUS__DUE_TICK 0
//  Work done about once a second (retention, housekeeping, forgetting
//  idle admission buckets) may run this much early with a tick that comes
//  for something else (the engine ticks on a wake for a message too, once
//  no tick has come for about a second), or wait this much longer for one,
//  so that an idle node seldom wakes for chores alone: a chore asks for a
//  tick of its own only when it is CHORUS__TICK_LATE_MS late
#define CHORUS__TICK_EARLY_MS 250
#define CHORUS__TICK_LATE_MS 1000

//  Sets up a context around a configuration and a store (neither taken)
void
    chorus__context_init (chorus__context_t *self, chorus__config_t *config,
                          chorus_store_t *store);
//  Frees what the context holds (work not yet handed over is discarded)
void
    chorus__context_fini (chorus__context_t *self);

//  A debug message, when the node is verbose
void
    chorus__context_log (chorus__context_t *self, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));
//  A warning of a kind, at most one every few seconds per kind
void
    chorus__context_warn (chorus__context_t *self, chorus__warning_t kind, const char *format,
                          ...)
    __attribute__ ((format (printf, 3, 4)));
//  A live peer by instance id, or NULL
chorus__peer_t *
    chorus__context_peer (chorus__context_t *self, const char *instance);
//  A new message with a fresh id; the caller owns it
chorus_msg_t *
    chorus__context_msg (chorus__context_t *self, int type);
//  Answers a peer's message with ERROR code (protocol section 13)
void
    chorus__context_error (chorus__context_t *self, chorus__peer_t *peer, chorus_msg_t *request,
                           const char *code, const char *message);
//  Counts a message dropped because it speaks for another node than the
//  peer it came from (protocol section 5.1), with a warning at a bounded rate
void
    chorus__context_forged (chorus__context_t *self, chorus__peer_t *peer, chorus_msg_t *msg,
                            const char *why);
//  Refuses a message the sender's certificate does not allow (what: "may
//  not publish", "may not call"): counted, logged, answered ERROR forbidden
void
    chorus__context_forbidden (chorus__context_t *self, chorus__peer_t *peer, chorus_msg_t *msg,
                               const char *what);
//  Hands a message to the application's thread in the next batch (kinds
//  E, O, C, R of chorus__work_t); the application owns it from here
void
    chorus__context_hand (chorus__context_t *self, char kind, chorus_msg_t *msg,
                          const char *text);
//  Hands other work to the application's thread: picture and arguments as
//  zsock_send; the batch collected by chorus__context_hand goes first
int
    chorus__context_work (chorus__context_t *self, const char *picture, ...);
//  Sends the batch collected by chorus__context_hand
void
    chorus__context_flush (chorus__context_t *self);

#endif
