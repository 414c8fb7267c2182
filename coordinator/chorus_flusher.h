/*  chorus_flusher.h — flushes the coordinator's node store to disk in a
    thread of its own, so that a fsync'd publish of flow events does not
    stop the coordinator's thread: events are published lazily (to the
    operating system), a flush is asked for, and the coordinator forgets
    them from its journal only once a flush begun after their publish has
    succeeded. Requests are numbered (tickets); one flush serves every
    request made before it began.
*/
#ifndef CHORUS_FLUSHER_H_INCLUDED
#define CHORUS_FLUSHER_H_INCLUDED

#include "chorus.h"

#include <stdint.h>

typedef struct _chorus_flusher_t chorus_flusher_t;

//  Starts the thread, which flushes node's store (chorus_node_flush) when
//  asked; NULL if it cannot start
chorus_flusher_t *
    chorus_flusher_new (chorus_node_t *node);
//  Stops the thread (after the flush it is making, if any); safe twice
void
    chorus_flusher_destroy (chorus_flusher_t **self_p);

//  Asks for a flush of everything the node's store was given so far;
//  returns the request's ticket
uint64_t
    chorus_flusher_request (chorus_flusher_t *self);
//  The last ticket whose flush succeeded (0: none yet)
uint64_t
    chorus_flusher_flushed (chorus_flusher_t *self);
//  The last ticket whose flush failed (0: none), and the code it failed
//  with (CHORUS_ESTORE, CHORUS_ECORRUPT); a request that failed is not
//  tried again: the caller asks again when it publishes again
uint64_t
    chorus_flusher_failed (chorus_flusher_t *self, int *code);
//  A file descriptor that is readable when there is news (a flush done or
//  failed); chorus_flusher_flushed and _failed take the news
int
    chorus_flusher_fd (chorus_flusher_t *self);

#endif
