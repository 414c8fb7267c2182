/*  chorus_inbox.h — the receiving side of delivery (protocol section 7.4):
    an EVENT for our group is checked against the inbox and handed to the
    application; once it has run, the result is recorded in the store and
    only then acknowledged. Private to the library.
*/
#ifndef CHORUS_INBOX_H_INCLUDED
#define CHORUS_INBOX_H_INCLUDED

#include "chorus_context.h"

typedef struct _chorus__inbox_t chorus__inbox_t;

chorus__inbox_t *
    chorus__inbox_new (chorus__context_t *context);
void
    chorus__inbox_destroy (chorus__inbox_t **self_p);
//  An EVENT for our group from a peer; takes it when handed over
void
    chorus__inbox_event (chorus__inbox_t *self, chorus__peer_t *peer, chorus_msg_t **event_p);
//  The application has run an event's handlers: records it (into the
//  store batch the caller has begun)
void
    chorus__inbox_handled (chorus__inbox_t *self, chorus_msg_t *event, int status);
//  After the commit: acknowledges, unless the record could not be written;
//  destroys the event
void
    chorus__inbox_recorded (chorus__inbox_t *self, chorus_msg_t *event, int status,
                            bool recorded);
//  Sends the EVENT-ACKs collected for publishers that read lists; the
//  engine calls it at the end of every turn
void
    chorus__inbox_flush (chorus__inbox_t *self);
//  Events the application holds now
size_t
    chorus__inbox_in_hand (chorus__inbox_t *self);
//  Self-test
void
    chorus__inbox_test (bool verbose);

#endif
