/*  chorus_gate.h — a bound on the connections a listening socket accepts
    (ROUTER inbox, PUB), kept through a ZeroMQ socket monitor. Private to
    the library.
*/
#ifndef CHORUS_GATE_H_INCLUDED
#define CHORUS_GATE_H_INCLUDED

#include "chorus_private.h"
#include "chorus_monitor.h"

typedef struct _chorus__gate_t chorus__gate_t;

//  Watches a bound socket and lets in at most max connections at once;
//  NULL if the socket cannot be monitored. With a monitor, every event of
//  the socket is passed on to it too, under the socket's name.
chorus__gate_t *
    chorus__gate_new (void *socket, size_t max, chorus__monitor_t *monitor, const char *name);
void
    chorus__gate_destroy (chorus__gate_t **self_p);
//  The socket to poll: readable when connections came or went
void *
    chorus__gate_socket (chorus__gate_t *self);
//  What happened to the connections since the last chorus__gate_recv
#define CHORUS__GATE_CLOSED 64
typedef struct {
    size_t refused;             //  shut out, beyond the bound
    size_t unauthorised;        //  refused by the ZAP handler (a key not trusted)
    size_t failed;              //  handshakes failed otherwise (a plaintext peer)
    size_t lone;                //  broken off once, none soon before: a peer that went away
    int lone_failure;           //  the last such one's errno
    int failure;                //  the last such failure's ZMQ_PROTOCOL_ERROR_*, or errno
    bool broken_off;            //  and whether the peer broke it off (failure is errno)
    char closed [CHORUS__GATE_CLOSED][33];  //  peers whose named connection closed
    size_t closed_size;         //  how many (at most CHORUS__GATE_CLOSED a call)
} chorus__gate_report_t;

//  Takes note of the connections that came and went, and shuts down the
//  ones beyond the bound; fills report, and returns how many it shut out
size_t
    chorus__gate_recv (chorus__gate_t *self, chorus__gate_report_t *report);
//  Remembers which key (Z85) authenticated the open connection fd
void
    chorus__gate_tag (chorus__gate_t *self, int fd, const char *key);
//  Remembers which peer (instance id) speaks on the open connection fd, so
//  that its closing is reported
void
    chorus__gate_name (chorus__gate_t *self, int fd, const char *instance);
//  Shuts down every open connection tagged with a key for which keep
//  returns false; returns how many
typedef bool (chorus__gate_keep_fn) (const char *key, void *arg);
size_t
    chorus__gate_cut (chorus__gate_t *self, chorus__gate_keep_fn *keep, void *arg);
//  Connections open now
size_t
    chorus__gate_open (chorus__gate_t *self);
//  Self-test
void
    chorus__gate_test (bool verbose);

#endif
