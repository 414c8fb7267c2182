/*  chorus_fake.h — a context as the engine makes one, for the self-tests of
    the engine's classes: a fresh store in a temporary directory, a
    configuration with the node's defaults, the application's end of the
    work pipe, and peers whose connections lead to sockets the test reads.
    Private to the library; used only by self-tests.
*/
#ifndef CHORUS_FAKE_H_INCLUDED
#define CHORUS_FAKE_H_INCLUDED

#include "chorus_context.h"

typedef struct _chorus__fake_t chorus__fake_t;

//  A context for a node of service; aborts if it cannot be had
chorus__fake_t *
    chorus__fake_new (const char *service);
void
    chorus__fake_destroy (chorus__fake_t **self_p);
//  The context the classes under test get
chorus__context_t *
    chorus__fake_context (chorus__fake_t *self);
//  The ROUTER a peer's connection reaches: an endpoint that the peers
//  class under test may dial (name: a word)
const char *
    chorus__fake_endpoint (chorus__fake_t *self, const char *name);
//  A live peer in the table, connected, our HELLO taken as sent
chorus__peer_t *
    chorus__fake_peer (chorus__fake_t *self, const char *instance, const char *service);
//  Removes a peer from the table and destroys it
void
    chorus__fake_forget (chorus__fake_t *self, chorus__peer_t *peer);
//  The next message that reached the endpoint's (or the peer's) socket,
//  decoded, waiting up to timeout ms; NULL if none. The caller destroys it.
chorus_msg_t *
    chorus__fake_sent (chorus__fake_t *self, const char *endpoint, int timeout);
//  Work handed to the application: the next record's kind ('\0' if none),
//  its message in *msg_p (the caller destroys it), for kinds E O C R;
//  other work (a zmsg, its first frame the kind) is returned as its kind
//  with *msg_p NULL and the text of the frames in text (size bytes)
char
    chorus__fake_handed (chorus__fake_t *self, chorus_msg_t **msg_p, char *text, size_t size);
//  A fresh EVENT of ours: seq, topic, key (or NULL), stored in the outbox;
//  its encoding in *body_p
chorus_msg_t *
    chorus__fake_event (chorus__fake_t *self, const char *instance, uint64_t seq,
                        const char *topic, const char *key, zframe_t **body_p);
//  A copy of a message, through its encoding
chorus_msg_t *
    chorus__fake_dup (chorus_msg_t *msg);

#endif
