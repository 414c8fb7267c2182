/*  chorus_monitor.h — the ZeroMQ socket-monitor events of a node's
    sockets, put in words for operators (chorus_node_on_monitor). Private
    to the library.
*/
#ifndef CHORUS_MONITOR_H_INCLUDED
#define CHORUS_MONITOR_H_INCLUDED

#include "chorus_private.h"
#include "chorus_poller.h"

typedef struct _chorus__monitor_t chorus__monitor_t;

//  Called with each event, in words: event, socket name, peer, detail
typedef void (chorus__monitor_fn) (const char *event, const char *socket, const char *peer,
                                   const char *detail, void *arg);

chorus__monitor_t *
    chorus__monitor_new (chorus__poller_t *poller, chorus__monitor_fn *fn, void *arg);
//  Stops watching every socket still watched
void
    chorus__monitor_destroy (chorus__monitor_t **self_p);
//  Watches a connecting socket (DEALER, SUB) until it is closed; name
//  names it ("dealer", "sub")
void
    chorus__monitor_watch (chorus__monitor_t *self, void *socket, const char *name);
//  Reads the events of a watched socket's monitor; false if which is none
//  of ours
bool
    chorus__monitor_recv (chorus__monitor_t *self, void *which);
//  Puts one event of a socket in words and passes it on: for the sockets
//  watched elsewhere (the inbox and PUB, watched by their gates)
void
    chorus__monitor_event (chorus__monitor_t *self, const char *name, uint16_t event,
                           uint32_t value, const char *endpoint);

#endif
