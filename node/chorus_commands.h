/*  chorus_commands.h — commands: ours sent to a service's instances,
    retried and timed out (protocol section 8), and others' received,
    deduplicated and answered. Private to the library.
*/
#ifndef CHORUS_COMMANDS_H_INCLUDED
#define CHORUS_COMMANDS_H_INCLUDED

#include "chorus_context.h"

typedef struct _chorus__commands_t chorus__commands_t;

chorus__commands_t *
    chorus__commands_new (chorus__context_t *context);
void
    chorus__commands_destroy (chorus__commands_t **self_p);
//  A command name the application handles
void
    chorus__commands_handle (chorus__commands_t *self, const char *name);
//  A command of ours to send (takes it)
void
    chorus__commands_send (chorus__commands_t *self, chorus_msg_t *command);
void
    chorus__commands_received (chorus__commands_t *self, chorus__peer_t *peer,
                               chorus_msg_t **command_p);
//  The application answered a command: records the reply (into the store
//  batch the caller has begun), then, after the commit, sends it (and
//  destroys both)
void
    chorus__commands_record (chorus__commands_t *self, chorus_msg_t *command, chorus_msg_t *reply);
void
    chorus__commands_replied (chorus__commands_t *self, chorus_msg_t *command, chorus_msg_t *reply);
void
    chorus__commands_reply (chorus__commands_t *self, chorus__peer_t *peer, chorus_msg_t **reply_p);
void
    chorus__commands_error (chorus__commands_t *self, chorus__peer_t *peer, chorus_msg_t *error);
void
    chorus__commands_peer_joined (chorus__commands_t *self, chorus__peer_t *peer);
void
    chorus__commands_peer_gone (chorus__commands_t *self, chorus__peer_t *peer);
void
    chorus__commands_tick (chorus__commands_t *self, uint64_t now);
//  When the tick next has work: CHORUS__DUE_TICK while commands are in
//  flight, else UINT64_MAX
uint64_t
    chorus__commands_next_due (chorus__commands_t *self);
//  Self-test
void
    chorus__commands_test (bool verbose);

#endif
