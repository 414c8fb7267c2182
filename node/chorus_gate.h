/*  chorus_gate.h — a bound on the connections a listening socket accepts
    (ROUTER inbox, PUB), kept through a ZeroMQ socket monitor. Private to
    the library.
*/
#ifndef CHORUS_GATE_H_INCLUDED
#define CHORUS_GATE_H_INCLUDED

#include "chorus_private.h"

typedef struct _chorus__gate_t chorus__gate_t;

//  Watches a bound socket and lets in at most max connections at once;
//  NULL if the socket cannot be monitored
chorus__gate_t *
    chorus__gate_new (void *socket, size_t max);
void
    chorus__gate_destroy (chorus__gate_t **self_p);
//  The socket to poll: readable when connections came or went
void *
    chorus__gate_socket (chorus__gate_t *self);
//  Takes note of the connections that came and went, and shuts down the
//  ones beyond the bound; returns how many it shut out this time
size_t
    chorus__gate_recv (chorus__gate_t *self);
//  Connections open now
size_t
    chorus__gate_open (chorus__gate_t *self);

#endif
