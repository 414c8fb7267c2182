/*  chorus_poller.h — what the engine waits on: ZeroMQ sockets and actors,
    as czmq's zpoller, for fewer system calls. zmq_poll looks at every
    socket twice in a wait that sleeps, once before and once after, and
    each look costs two system calls; an idle node's wake-ups were mostly
    these looks. Here each socket is looked at once before the wait (a
    send or an earlier look may have taken the signal of a message still
    there), and after it only those whose descriptor fired.
    Private to the library.
*/
#ifndef CHORUS_POLLER_H_INCLUDED
#define CHORUS_POLLER_H_INCLUDED

#include "chorus_private.h"

typedef struct _chorus__poller_t chorus__poller_t;

chorus__poller_t *
    chorus__poller_new (void);
void
    chorus__poller_destroy (chorus__poller_t **self_p);
//  Waits on a reader too: a zsock_t, a zactor_t or a libzmq socket.
//  Returns 0, or -1 when it is not a socket
int
    chorus__poller_add (chorus__poller_t *self, void *reader);
//  Waits on a reader that nothing touches but the code the wait hands it
//  to (no send on it, no read elsewhere): it is looked at before a wait
//  only from when a wait hands it out until a look finds it empty. 0, or
//  -1 when it is not a socket
int
    chorus__poller_add_quiet (chorus__poller_t *self, void *reader);
//  A quiet reader was read outside its handler after all (a rare path), or
//  sent on: it is looked at before the next wait
void
    chorus__poller_touched (chorus__poller_t *self, void *reader);
//  For a wait elsewhere (the application's loop, for an engine run inline):
//  looks at what needs a look before a wait, as chorus__poller_wait does;
//  returns -1 if a message waits (no wait: hand out at once), else the
//  number of descriptors, and the first max of them in fds. Nothing may
//  touch the sockets between this and the wait.
int
    chorus__poller_prepare (chorus__poller_t *self, int *fds, size_t max);
//  A quiet reader's handler read it until a receive found nothing (EAGAIN):
//  the next message signals its descriptor, so no look is needed before
//  the next wait (a look costs libzmq two system calls)
void
    chorus__poller_drained (chorus__poller_t *self, void *reader);
//  Waits on a file descriptor too (level-triggered: readable while data
//  waits); the wait returns reader, a handle of the caller's, when it is
int
    chorus__poller_add_fd (chorus__poller_t *self, int fd, void *reader);
//  Waits on a reader no more; returns 0, or -1 when it was not waited on
int
    chorus__poller_remove (chorus__poller_t *self, void *reader);
//  Waits up to timeout ms (-1: for ever) for a message on one of the
//  readers, and returns that reader (the first added, of those ready), or
//  NULL when the time ran out, a signal broke the wait, or the ZeroMQ
//  context was terminated (then chorus__poller_terminated is true)
void *
    chorus__poller_wait (chorus__poller_t *self, int timeout);
//  True when the last wait ended because the ZeroMQ context is terminated
bool
    chorus__poller_terminated (chorus__poller_t *self);
//  Self-test
void
    chorus__poller_test (bool verbose);

#endif
