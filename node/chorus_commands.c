/*  chorus_commands.c — commands (protocol section 7.6). As a sender: an
    outbox of commands awaiting their reply, routed to a live instance of
    the target service, re-sent to the same instance while it lives and
    moved only when it expires, failed locally at the deadline. As a
    receiver: deduplication by the sender's service and the idempotency
    key, with the recorded reply returned to a repeated command.
*/
#include "chorus_commands.h"
#include "chorus_fake.h"

//  A command we sent and await the reply to
typedef struct {
    chorus_msg_t *msg;          //  the COMMAND
    char *instance;             //  the instance it is outstanding on, NULL while waiting
    uint64_t retry_at;          //  when to send it again (monotonic)
    bool sent;                  //  an attempt has gone out
    uint64_t expires;           //  when its deadline passes (monotonic), 0 for never
    uint64_t began;             //  when it was handed to us (monotonic), for /metrics
} s_outgoing_t;

//  Who asked for a key our handler is running: the command it runs, and
//  other commands of the same key that came meanwhile (a retry under a new
//  id), each answered with the same reply when the handler's reply is made,
//  unless that reply is a retryable failure: then the newest of them runs
#define S_ASKERS_MAX 16         //  waiting askers kept per key; more are dropped

typedef struct {
    char instance [65];         //  the asker's instance
    chorus_msg_t *command;      //  its COMMAND (id, correlation, deadline)
} s_asker_t;

typedef struct {
    char *instance;             //  the instance whose command runs
    s_asker_t *waiting;         //  askers of the same key under other ids
    size_t waiting_size;        //  how many
} s_asked_t;

static void
s_asked_destroy (void **item)
{
    s_asked_t *asked = (s_asked_t *) *item;
    if (asked) {
        for (size_t i = 0; i < asked->waiting_size; i++)
            chorus_msg_destroy (&asked->waiting [i].command);
        free (asked->waiting);
        free (asked->instance);
        free (asked);
        *item = NULL;
    }
}

struct _chorus__commands_t {
    chorus__context_t *context; //  what the engine shares with us
    zhashx_t *outgoing;         //  command id -> s_outgoing_t
    zhashx_t *in_hand;          //  dedupe key -> s_asked_t, while our handler runs
    zhashx_t *keys;             //  command id -> dedupe key, while our handler runs
    zhashx_t *handled;          //  command names the application handles
};

static void
s_outgoing_destroy (void **item)
{
    s_outgoing_t *outgoing = (s_outgoing_t *) *item;
    if (outgoing) {
        chorus_msg_destroy (&outgoing->msg);
        free (outgoing->instance);
        free (outgoing);
        *item = NULL;
    }
}

chorus__commands_t *
chorus__commands_new (chorus__context_t *context)
{
    chorus__commands_t *self = (chorus__commands_t *) zmalloc (sizeof (chorus__commands_t));
    self->context = context;
    self->outgoing = zhashx_new ();
    zhashx_set_destructor (self->outgoing, s_outgoing_destroy);
    self->in_hand = zhashx_new ();
    zhashx_set_destructor (self->in_hand, s_asked_destroy);
    self->keys = zhashx_new ();
    zhashx_set_destructor (self->keys, (zhashx_destructor_fn *) zstr_free);
    self->handled = zhashx_new ();
    return self;
}

void
chorus__commands_destroy (chorus__commands_t **self_p)
{
    chorus__commands_t *self = *self_p;
    if (self) {
        zhashx_destroy (&self->outgoing);
        zhashx_destroy (&self->in_hand);
        zhashx_destroy (&self->keys);
        zhashx_destroy (&self->handled);
        free (self);
        *self_p = NULL;
    }
}

void
chorus__commands_handle (chorus__commands_t *self, const char *name)
{
    zhashx_update (self->handled, name, (void *) 1);
}

//  --------------------------------------------------------------------------
//  Sending

//  The live instance of the service with the fewest of our commands,
//  preferring those that are not evasive
static chorus__peer_t *
s_choose (chorus__commands_t *self, const char *service)
{
    chorus__peer_t *best = NULL;
    for (chorus__peer_t *peer = (chorus__peer_t *) zhashx_first (self->context->peers); peer;
         peer = (chorus__peer_t *) zhashx_next (self->context->peers)) {
        if (!streq (peer->service, service))
            continue;
        //  Not evasive first, then one we have met (a member known from
        //  news costs a connection first), then the least loaded
        if (!best || (best->evasive && !peer->evasive)
        ||  (best->evasive == peer->evasive && !best->met && peer->met)
        ||  (best->evasive == peer->evasive && best->met == peer->met
             && peer->commands < best->commands))
            best = peer;
    }
    return best;
}

static void
s_release (chorus__commands_t *self, s_outgoing_t *outgoing)
{
    chorus__peer_t *peer = chorus__context_peer (self->context, outgoing->instance);
    if (peer && peer->commands > 0)
        peer->commands--;
    zstr_free (&outgoing->instance);
}

//  Sends to the instance it is on, or to a chosen one; waits if none
static void
s_dispatch (chorus__commands_t *self, s_outgoing_t *outgoing)
{
    chorus__peer_t *peer = chorus__context_peer (self->context, outgoing->instance);
    if (!peer) {
        zstr_free (&outgoing->instance);
        peer = s_choose (self, chorus_msg_service (outgoing->msg));
        if (!peer)
            return;     //  no instance alive: it waits for one
        peer->commands++;
        outgoing->instance = strdup (peer->instance);
    }
    if (outgoing->sent)     //  sent before: this is another attempt
        chorus_msg_set_attempt (outgoing->msg, chorus_msg_attempt (outgoing->msg) + 1);
    if (chorus__peer_send (peer, outgoing->msg) == 0) {
        outgoing->sent = true;
        self->context->counters [C_COMMANDS_SENT]++;
        outgoing->retry_at = chorus__mono () + self->context->config->command_retry_ms;
    }
    else {
        //  Not gone (the connection is not up yet, or full): the same
        //  attempt again at the next tick
        if (outgoing->sent)
            chorus_msg_set_attempt (outgoing->msg, chorus_msg_attempt (outgoing->msg) - 1);
        outgoing->retry_at = chorus__mono ();
    }
}

void
chorus__commands_send (chorus__commands_t *self, chorus_msg_t *command)
{
    s_outgoing_t *outgoing = (s_outgoing_t *) zmalloc (sizeof (s_outgoing_t));
    outgoing->msg = command;
    outgoing->began = chorus__mono ();
    //  The deadline is wall-clock time on the wire; we keep to it on our
    //  monotonic clock
    uint64_t deadline = chorus_msg_deadline (command), wall = chorus__now ();
    if (deadline)
        outgoing->expires = chorus__mono () + (deadline > wall? deadline - wall: 0);
    if (zhashx_insert (self->outgoing, chorus_msg_id (command), outgoing)) {
        s_outgoing_destroy ((void **) &outgoing);
        return;     //  the same id twice: the first is outstanding
    }
    s_dispatch (self, outgoing);
}

void
chorus__commands_reply (chorus__commands_t *self, chorus__peer_t *peer, chorus_msg_t **reply_p)
{
    const char *request = chorus_msg_request (*reply_p);
    s_outgoing_t *outgoing = (s_outgoing_t *) zhashx_lookup (self->outgoing, request);
    if (!outgoing)
        return;     //  late, or a duplicate: the command is settled
    //  Only the service we called answers for it (protocol section 5.1)
    if (!streq (peer->service, chorus_msg_service (outgoing->msg))) {
        chorus__context_forged (self->context, peer, *reply_p, "a reply for another service");
        return;
    }
    chorus__stats_t *stats = self->context->config->stats;
    if (stats)
        chorus_histogram_observe (&stats->command_duration,
                                  (double) (chorus__mono () - outgoing->began) / 1000);
    s_release (self, outgoing);
    zhashx_delete (self->outgoing, request);
    self->context->counters [C_REPLIES]++;
    chorus__context_hand (self->context, 'R', *reply_p, NULL);
    *reply_p = NULL;
}

void
chorus__commands_error (chorus__commands_t *self, chorus__peer_t *peer, chorus_msg_t *error)
{
    const char *request = chorus_msg_request (error);
    s_outgoing_t *outgoing = request?
        (s_outgoing_t *) zhashx_lookup (self->outgoing, request): NULL;
    //  An ERROR speaks only of what we sent to the peer that sends it
    if (!outgoing || !outgoing->instance || !streq (outgoing->instance, peer->instance))
        return;
    if (streq (chorus_msg_code (error), "wrong-group")) {
        s_release (self, outgoing);
        s_dispatch (self, outgoing);
    }
    else
    if (streq (chorus_msg_code (error), "forbidden")) {
        //  Our key may not call it (protocol section 14): no instance will
        //  take it, so the caller hears at once
        s_release (self, outgoing);
        chorus__context_work (self->context, "ssss", "T", request, "forbidden",
                              chorus_msg_message (error)? chorus_msg_message (error): "");
        zhashx_delete (self->outgoing, request);
    }
}

void
chorus__commands_peer_joined (chorus__commands_t *self, chorus__peer_t *peer)
{
    for (s_outgoing_t *outgoing = (s_outgoing_t *) zhashx_first (self->outgoing); outgoing;
         outgoing = (s_outgoing_t *) zhashx_next (self->outgoing))
        if (!outgoing->instance && streq (chorus_msg_service (outgoing->msg), peer->service))
            s_dispatch (self, outgoing);
}

void
chorus__commands_peer_gone (chorus__commands_t *self, chorus__peer_t *peer)
{
    //  The peer has left the table: its commands move to another instance
    for (s_outgoing_t *outgoing = (s_outgoing_t *) zhashx_first (self->outgoing); outgoing;
         outgoing = (s_outgoing_t *) zhashx_next (self->outgoing))
        if (outgoing->instance && streq (outgoing->instance, peer->instance)) {
            zstr_free (&outgoing->instance);
            s_dispatch (self, outgoing);
        }
}

uint64_t
chorus__commands_next_due (chorus__commands_t *self)
{
    return zhashx_size (self->outgoing)? CHORUS__DUE_TICK: UINT64_MAX;
}

void
chorus__commands_tick (chorus__commands_t *self, uint64_t now)
{
    zlist_t *expired = zlist_new ();
    for (s_outgoing_t *outgoing = (s_outgoing_t *) zhashx_first (self->outgoing); outgoing;
         outgoing = (s_outgoing_t *) zhashx_next (self->outgoing)) {
        if (outgoing->expires && now >= outgoing->expires)
            zlist_append (expired, (void *) chorus_msg_id (outgoing->msg));
        else
        if (outgoing->instance && now >= outgoing->retry_at)
            s_dispatch (self, outgoing);    //  same instance: its inbox dedupes
    }
    for (const char *id = (const char *) zlist_first (expired); id;
         id = (const char *) zlist_next (expired)) {
        s_outgoing_t *outgoing = (s_outgoing_t *) zhashx_lookup (self->outgoing, id);
        s_release (self, outgoing);
        self->context->counters [C_TIMEOUTS]++;
        chorus__context_work (self->context, "ssss", "T", id, "timeout",
                              "no reply before the deadline");
        zhashx_delete (self->outgoing, id);
    }
    zlist_destroy (&expired);
}

//  --------------------------------------------------------------------------
//  Receiving

//  "SERVICE KEY": the sender's service (a NAME, without spaces) and the
//  idempotency key or command id. Keys of two services never meet.
static char *
s_dedupe_key (chorus_msg_t *command, const char *sender)
{
    const char *key = chorus_msg_idempotency (command)? chorus_msg_idempotency (command):
                                                         chorus_msg_id (command);
    return zsys_sprintf ("%s %s", sender, key);
}

static void
s_send_reply (chorus__commands_t *self, chorus__peer_t *peer, chorus_msg_t *command,
              chorus_msg_t *reply)
{
    char id [33];
    chorus__new_id (id);
    chorus_msg_set_id (reply, id);
    chorus_msg_set_request (reply, chorus_msg_id (command));
    chorus_msg_set_correlation (reply, chorus_msg_correlation (command));
    chorus__peer_answer (peer, reply);
}

//  Answers a repeated command with its recorded reply; false if none
static bool
s_replay_recorded (chorus__commands_t *self, chorus__peer_t *peer, chorus_msg_t *command,
                   const char *key)
{
    size_t size = 0;
    void *recorded = NULL;
    int rc = chorus_store_reply_load (self->context->store, key, &recorded, &size);
    if (rc == -1) {
        //  Not known whether it ran: neither run it nor answer; the sender
        //  asks again
        chorus__context_warn (self->context, W_STORE, "inbox: %s",
                              chorus_store_error (self->context->store));
        return true;
    }
    if (rc == 0)
        return false;
    chorus_msg_t *reply = chorus_msg_new (CHORUS_MSG_REPLY);
    if (chorus_msg_decode (reply, recorded, size) == 0) {
        self->context->counters [C_DUPLICATES]++;
        s_send_reply (self, peer, command, reply);
    }
    chorus_msg_destroy (&reply);
    free (recorded);
    return true;
}

//  Another command of a key our handler is running: kept, to be answered
//  with the reply; the same command again (a re-send) is not kept twice.
//  Past S_ASKERS_MAX it is dropped unanswered, as before: its sender asks
//  again and then gets the recorded reply.
static void
s_wait (chorus__commands_t *self, s_asked_t *asked, chorus__peer_t *peer,
        chorus_msg_t **command_p)
{
    const char *id = chorus_msg_id (*command_p);
    if (zhashx_lookup (self->keys, id))
        return;     //  the command that runs, sent again
    for (size_t i = 0; i < asked->waiting_size; i++)
        if (streq (chorus_msg_id (asked->waiting [i].command), id))
            return;
    if (asked->waiting_size >= S_ASKERS_MAX)
        return;
    s_asker_t *waiting = (s_asker_t *) realloc (asked->waiting,
                                                (asked->waiting_size + 1) * sizeof (s_asker_t));
    assert (waiting);
    asked->waiting = waiting;
    s_asker_t *asker = &asked->waiting [asked->waiting_size++];
    snprintf (asker->instance, sizeof (asker->instance), "%s", peer->instance);
    asker->command = *command_p;
    *command_p = NULL;
}

void
chorus__commands_received (chorus__commands_t *self, chorus__peer_t *peer,
                           chorus_msg_t **command_p)
{
    chorus__context_t *context = self->context;
    chorus_msg_t *command = *command_p;
    if (!streq (chorus_msg_service (command), context->config->service)) {
        chorus__context_error (context, peer, command, "wrong-group",
                               "this node is not an instance of that service");
        return;
    }
    uint64_t deadline = chorus_msg_deadline (command);
    if (deadline && chorus__now () > deadline) {
        context->counters [C_EXPIRED_COMMANDS]++;
        return;     //  the sender has given up on it
    }
    char *key = s_dedupe_key (command, peer->service);
    s_asked_t *asked = (s_asked_t *) zhashx_lookup (self->in_hand, key);
    if (asked) {
        //  Running now: the reply will follow, to this asker too
        s_wait (self, asked, peer, command_p);
        free (key);
        return;
    }
    if (s_replay_recorded (self, peer, command, key)) {
        free (key);     //  answered again
        return;
    }
    if (!zhashx_lookup (self->handled, chorus_msg_name (command))) {
        chorus_msg_t *reply = chorus_msg_new (CHORUS_MSG_REPLY);
        chorus_msg_set_timestamp (reply, chorus__now ());
        chorus_msg_set_status (reply, CHORUS_REPLY_ERROR);
        chorus_msg_set_code (reply, "unknown-command");
        char message [200];
        snprintf (message, sizeof (message), "service %s has no handler for '%s'",
                  context->config->service, chorus_msg_name (command));
        chorus_msg_set_message (reply, message);
        s_send_reply (self, peer, command, reply);
        chorus_msg_destroy (&reply);
        free (key);
        return;
    }
    asked = (s_asked_t *) zmalloc (sizeof (s_asked_t));
    asked->instance = strdup (peer->instance);
    zhashx_insert (self->in_hand, key, asked);
    if (zhashx_insert (self->keys, chorus_msg_id (command), key))
        free (key);     //  the same id under another key: the first one stays
    chorus__context_hand (context, 'C', command, peer->service);
    *command_p = NULL;
}

void
chorus__commands_record (chorus__commands_t *self, chorus_msg_t *command, chorus_msg_t *reply)
{
    chorus__context_t *context = self->context;
    chorus_msg_set_timestamp (reply, chorus__now ());
    chorus_msg_set_request (reply, chorus_msg_id (command));
    chorus_msg_set_correlation (reply, chorus_msg_correlation (command));
    const char *key = (const char *) zhashx_lookup (self->keys, chorus_msg_id (command));
    //  Recorded before it is sent, unless a later attempt could do better
    if (key && (chorus_msg_status (reply) == CHORUS_REPLY_OK || !chorus_msg_retryable (reply))) {
        zframe_t *frame = chorus_msg_encode (reply);
        if (!frame
        ||  chorus_store_reply_save (context->store, key, chorus__now (), zframe_data (frame),
                                     zframe_size (frame)))
            chorus__context_warn (context, W_STORE, "cannot record reply: %s",
                                  chorus_store_error (context->store));
        zframe_destroy (&frame);
    }
}

//  The running command failed and may be tried again: the newest asker
//  still waiting for its key, alive and within its deadline, runs next, and
//  the others wait for its reply. An asker sent its own command to have it
//  run; a failure of an earlier try (one that waited past its deadline in
//  the handler's queue, say) is no answer to it. False if none is left.
static bool
s_run_next (chorus__commands_t *self, s_asked_t *asked, const char *key)
{
    chorus__context_t *context = self->context;
    uint64_t now = chorus__now ();
    for (size_t i = asked->waiting_size; i-- > 0;) {
        s_asker_t *asker = &asked->waiting [i];
        uint64_t deadline = chorus_msg_deadline (asker->command);
        chorus__peer_t *peer = chorus__context_peer (context, asker->instance);
        if (!peer || (deadline && now > deadline))
            continue;
        chorus_msg_t *command = asker->command;
        free (asked->instance);
        asked->instance = strdup (asker->instance);
        memmove (asker, asker + 1, (asked->waiting_size - i - 1) * sizeof (s_asker_t));
        asked->waiting_size--;
        zhashx_insert (self->keys, chorus_msg_id (command), strdup (key));
        chorus__context_hand (context, 'C', command, peer->service);
        return true;
    }
    return false;
}

void
chorus__commands_replied (chorus__commands_t *self, chorus_msg_t *command, chorus_msg_t *reply)
{
    chorus__context_t *context = self->context;
    const char *key = (const char *) zhashx_lookup (self->keys, chorus_msg_id (command));
    s_asked_t *asked = key? (s_asked_t *) zhashx_lookup (self->in_hand, key): NULL;
    chorus__peer_t *peer = chorus__context_peer (context, asked? asked->instance: NULL);
    s_send_reply (self, peer, command, reply);
    bool again = chorus_msg_status (reply) != CHORUS_REPLY_OK && chorus_msg_retryable (reply);
    if (asked && again && s_run_next (self, asked, key)) {
        zhashx_delete (self->keys, chorus_msg_id (command));
        chorus_msg_destroy (&command);
        chorus_msg_destroy (&reply);
        return;
    }
    //  Every other asker of the key gets the same reply, under its own id
    for (size_t i = 0; asked && i < asked->waiting_size; i++) {
        s_asker_t *asker = &asked->waiting [i];
        peer = chorus__context_peer (context, asker->instance);
        if (!peer)
            continue;   //  gone: it asks again elsewhere
        char id [33];
        chorus__new_id (id);
        chorus_msg_set_id (reply, id);
        chorus_msg_set_request (reply, chorus_msg_id (asker->command));
        chorus_msg_set_correlation (reply, chorus_msg_correlation (asker->command));
        chorus__peer_answer (peer, reply);
        context->counters [C_DUPLICATES]++;
    }
    if (key)
        zhashx_delete (self->in_hand, key);
    zhashx_delete (self->keys, chorus_msg_id (command));
    chorus_msg_destroy (&command);
    chorus_msg_destroy (&reply);
}

//  --------------------------------------------------------------------------
//  Self-test

#define S_BILLING_1 "B0000000000000000000000000000001"
#define S_BILLING_2 "B0000000000000000000000000000002"
#define S_CLIENT "C0000000000000000000000000000001"

static chorus_msg_t *
s_test_command (chorus__context_t *context, const char *service, const char *name,
                const char *idempotency, uint64_t deadline)
{
    chorus_msg_t *command = chorus__context_msg (context, CHORUS_MSG_COMMAND);
    chorus_msg_set_service (command, service);
    chorus_msg_set_name (command, name);
    chorus_msg_set_attempt (command, 1);
    chorus_msg_set_correlation (command, chorus_msg_id (command));
    chorus_msg_set_timestamp (command, chorus__now ());
    if (idempotency)
        chorus_msg_set_idempotency (command, idempotency);
    if (deadline)
        chorus_msg_set_deadline (command, deadline);
    return command;
}

//  A peer leaves the table, as the peers class does it
static void
s_test_gone (chorus__commands_t *self, chorus__context_t *context, chorus__peer_t *peer)
{
    zhashx_delete (context->peers, peer->instance);
    chorus__commands_peer_gone (self, peer);
    chorus__peer_destroy (&peer);
}

static void
s_test_sending (void)
{
    chorus__fake_t *fake = chorus__fake_new ("client");
    chorus__context_t *context = chorus__fake_context (fake);
    chorus__commands_t *self = chorus__commands_new (context);

    //  No instance of the service yet: the command waits for one
    chorus_msg_t *command = s_test_command (context, "billing", "charge", "order-1", 0);
    char id [33];
    snprintf (id, sizeof (id), "%s", chorus_msg_id (command));
    chorus__commands_send (self, command);
    CHORUS__CHECK (context->counters [C_COMMANDS_SENT] == 0);
    chorus__peer_t *first = chorus__fake_peer (fake, S_BILLING_1, "billing");
    chorus__commands_peer_joined (self, first);
    chorus_msg_t *sent = chorus__fake_sent (fake, first->endpoint, 1000);
    CHORUS__CHECK (sent && chorus_msg_type (sent) == CHORUS_MSG_COMMAND);
    CHORUS__CHECK (streq (chorus_msg_id (sent), id) && chorus_msg_attempt (sent) == 1);
    chorus_msg_destroy (&sent);

    //  Unanswered: sent again to the same instance, as the next attempt
    chorus__commands_tick (self, chorus__mono () + context->config->command_retry_ms + 1);
    sent = chorus__fake_sent (fake, first->endpoint, 1000);
    CHORUS__CHECK (sent && streq (chorus_msg_id (sent), id) && chorus_msg_attempt (sent) == 2);
    chorus_msg_destroy (&sent);

    //  Its instance gone: it moves to another
    chorus__peer_t *second = chorus__fake_peer (fake, S_BILLING_2, "billing");
    chorus__commands_peer_joined (self, second);
    CHORUS__CHECK (chorus__fake_sent (fake, second->endpoint, 0) == NULL);
    s_test_gone (self, context, first);
    sent = chorus__fake_sent (fake, second->endpoint, 1000);
    CHORUS__CHECK (sent && streq (chorus_msg_id (sent), id));
    chorus_msg_destroy (&sent);

    //  A reply from another service is forged; from the instance, handed over
    chorus__peer_t *stranger = chorus__fake_peer (fake, S_CLIENT, "shipping");
    chorus_msg_t *reply = chorus__context_msg (context, CHORUS_MSG_REPLY);
    chorus_msg_set_request (reply, id);
    chorus_msg_set_status (reply, CHORUS_REPLY_OK);
    chorus__commands_reply (self, stranger, &reply);
    CHORUS__CHECK (reply && context->counters [C_FORGED] == 1);
    chorus__commands_reply (self, second, &reply);
    CHORUS__CHECK (reply == NULL && context->counters [C_REPLIES] == 1);
    chorus_msg_t *handed = NULL;
    CHORUS__CHECK (chorus__fake_handed (fake, &handed, NULL, 0) == 'R');
    CHORUS__CHECK (handed && streq (chorus_msg_request (handed), id));
    chorus_msg_destroy (&handed);

    //  Settled: a late reply is ignored
    reply = chorus__context_msg (context, CHORUS_MSG_REPLY);
    chorus_msg_set_request (reply, id);
    chorus__commands_reply (self, second, &reply);
    CHORUS__CHECK (reply != NULL && context->counters [C_REPLIES] == 1);
    chorus_msg_destroy (&reply);

    //  A deadline with no one to take it: the caller hears "timeout"
    command = s_test_command (context, "nobody", "ping", NULL, chorus__now () + 100);
    snprintf (id, sizeof (id), "%s", chorus_msg_id (command));
    chorus__commands_send (self, command);
    chorus__commands_tick (self, chorus__mono () + 60000);
    char text [256];
    CHORUS__CHECK (chorus__fake_handed (fake, &handed, text, sizeof (text)) == 'T');
    CHORUS__CHECK (strstr (text, id) && strstr (text, "timeout"));
    CHORUS__CHECK (context->counters [C_TIMEOUTS] == 1);

    //  ERROR forbidden from the instance it went to: the caller hears at once
    command = s_test_command (context, "billing", "refund", NULL, 0);
    snprintf (id, sizeof (id), "%s", chorus_msg_id (command));
    chorus__commands_send (self, command);
    sent = chorus__fake_sent (fake, second->endpoint, 1000);
    CHORUS__CHECK (sent);
    chorus_msg_t *error = chorus__context_msg (context, CHORUS_MSG_ERROR);
    chorus_msg_set_request (error, id);
    chorus_msg_set_code (error, "forbidden");
    chorus_msg_set_message (error, "may not call billing.refund");
    chorus__commands_error (self, stranger, error);     //  not where it went: ignored
    CHORUS__CHECK (chorus__fake_handed (fake, &handed, text, sizeof (text)) == 0);
    chorus__commands_error (self, second, error);
    CHORUS__CHECK (chorus__fake_handed (fake, &handed, text, sizeof (text)) == 'T');
    CHORUS__CHECK (strstr (text, id) && strstr (text, "forbidden"));
    chorus_msg_destroy (&error);
    chorus_msg_destroy (&sent);

    chorus__commands_destroy (&self);
    chorus__fake_destroy (&fake);
}

static void
s_test_receiving (void)
{
    chorus__fake_t *fake = chorus__fake_new ("billing");
    chorus__context_t *context = chorus__fake_context (fake);
    chorus__commands_t *self = chorus__commands_new (context);
    chorus__commands_handle (self, "charge");
    chorus__peer_t *client = chorus__fake_peer (fake, S_CLIENT, "client");

    //  A command we handle goes to the application with its sender
    chorus_msg_t *command = s_test_command (context, "billing", "charge", "order-1", 0);
    chorus_msg_t *copy = chorus__fake_dup (command);
    chorus__commands_received (self, client, &command);
    CHORUS__CHECK (command == NULL);
    chorus_msg_t *handed = NULL;
    char text [64];
    CHORUS__CHECK (chorus__fake_handed (fake, &handed, text, sizeof (text)) == 'C');
    CHORUS__CHECK (handed && streq (text, "client"));

    //  Again while it runs: neither run nor answered (the reply follows)
    command = chorus__fake_dup (copy);
    chorus__commands_received (self, client, &command);
    CHORUS__CHECK (command != NULL);
    chorus_msg_destroy (&command);
    chorus_msg_t *other = NULL;
    CHORUS__CHECK (chorus__fake_handed (fake, &other, NULL, 0) == 0);

    //  A retry of the same key under a new id while it runs: not run, kept
    //  to be answered (once, though sent twice); so are other askers of the
    //  key, up to the bound; past it they are dropped unanswered
    chorus__peer_t *second = chorus__fake_peer (fake, S_BILLING_2, "client");
    chorus_msg_t *retry = s_test_command (context, "billing", "charge", "order-1", 0);
    chorus_msg_set_attempt (retry, 2);
    chorus_msg_set_correlation (retry, "retry-correlation");
    for (int copies = 0; copies < 2; copies++) {
        command = chorus__fake_dup (retry);
        chorus__commands_received (self, client, &command);
        chorus_msg_destroy (&command);
    }
    for (int extra = 0; extra < S_ASKERS_MAX; extra++) {
        command = s_test_command (context, "billing", "charge", "order-1", 0);
        chorus__commands_received (self, second, &command);
        chorus_msg_destroy (&command);
    }
    CHORUS__CHECK (chorus__fake_handed (fake, &other, NULL, 0) == 0);
    CHORUS__CHECK (chorus__fake_sent (fake, client->endpoint, 0) == NULL);
    CHORUS__CHECK (chorus__fake_sent (fake, second->endpoint, 0) == NULL);

    //  Answered: recorded, then sent
    chorus_msg_t *reply = chorus__context_msg (context, CHORUS_MSG_REPLY);
    chorus_msg_set_status (reply, CHORUS_REPLY_OK);
    chorus_msg_set_payload (reply, "\xa2ok", 3);
    chorus_store_begin (context->store);
    chorus__commands_record (self, handed, reply);
    CHORUS__CHECK (chorus_store_commit (context->store) == 0);
    chorus__commands_replied (self, handed, reply);     //  takes both
    chorus_msg_t *sent = chorus__fake_sent (fake, client->endpoint, 1000);
    CHORUS__CHECK (sent && chorus_msg_type (sent) == CHORUS_MSG_REPLY);
    CHORUS__CHECK (streq (chorus_msg_request (sent), chorus_msg_id (copy)));
    chorus_msg_destroy (&sent);
    //  ...and the retry's askers get the same reply, under the retry's id
    sent = chorus__fake_sent (fake, client->endpoint, 1000);
    CHORUS__CHECK (sent && chorus_msg_type (sent) == CHORUS_MSG_REPLY);
    CHORUS__CHECK (streq (chorus_msg_request (sent), chorus_msg_id (retry)));
    CHORUS__CHECK (streq (chorus_msg_correlation (sent), "retry-correlation"));
    CHORUS__CHECK (chorus_msg_payload_size (sent) == 3);
    chorus_msg_destroy (&sent);
    CHORUS__CHECK (chorus__fake_sent (fake, client->endpoint, 0) == NULL);
    size_t answered = 0;
    while ((sent = chorus__fake_sent (fake, second->endpoint, answered < S_ASKERS_MAX? 1000: 0))) {
        CHORUS__CHECK (chorus_msg_type (sent) == CHORUS_MSG_REPLY);
        chorus_msg_destroy (&sent);
        answered++;
    }
    //  One per asker kept: the client's retry, and the rest of the bound here
    CHORUS__CHECK (answered == S_ASKERS_MAX - 1);
    CHORUS__CHECK (context->counters [C_DUPLICATES] == S_ASKERS_MAX);
    chorus_msg_destroy (&retry);
    context->counters [C_DUPLICATES] = 0;

    //  The same idempotency key again, under a new id: the recorded reply,
    //  and the handler does not run
    command = s_test_command (context, "billing", "charge", "order-1", 0);
    char id [33];
    snprintf (id, sizeof (id), "%s", chorus_msg_id (command));
    chorus__commands_received (self, client, &command);
    chorus_msg_destroy (&command);
    CHORUS__CHECK (chorus__fake_handed (fake, &other, NULL, 0) == 0);
    sent = chorus__fake_sent (fake, client->endpoint, 1000);
    CHORUS__CHECK (sent && streq (chorus_msg_request (sent), id));
    CHORUS__CHECK (chorus_msg_payload_size (sent) == 3);
    CHORUS__CHECK (context->counters [C_DUPLICATES] == 1);
    chorus_msg_destroy (&sent);

    //  A command we have no handler for: REPLY unknown-command
    command = s_test_command (context, "billing", "refund", NULL, 0);
    chorus__commands_received (self, client, &command);
    chorus_msg_destroy (&command);
    sent = chorus__fake_sent (fake, client->endpoint, 1000);
    CHORUS__CHECK (sent && chorus_msg_status (sent) == CHORUS_REPLY_ERROR);
    CHORUS__CHECK (streq (chorus_msg_code (sent), "unknown-command"));
    chorus_msg_destroy (&sent);

    //  For another service: ERROR wrong-group
    command = s_test_command (context, "shipping", "charge", NULL, 0);
    chorus__commands_received (self, client, &command);
    chorus_msg_destroy (&command);
    sent = chorus__fake_sent (fake, client->endpoint, 1000);
    CHORUS__CHECK (sent && chorus_msg_type (sent) == CHORUS_MSG_ERROR);
    CHORUS__CHECK (streq (chorus_msg_code (sent), "wrong-group"));
    chorus_msg_destroy (&sent);

    //  Past its deadline: dropped, the sender has given up
    command = s_test_command (context, "billing", "charge", "order-2", chorus__now () - 1000);
    chorus__commands_received (self, client, &command);
    chorus_msg_destroy (&command);
    CHORUS__CHECK (context->counters [C_EXPIRED_COMMANDS] == 1);
    CHORUS__CHECK (chorus__fake_handed (fake, &other, NULL, 0) == 0);
    CHORUS__CHECK (chorus__fake_sent (fake, client->endpoint, 0) == NULL);

    chorus_msg_destroy (&copy);
    chorus__commands_destroy (&self);
    chorus__fake_destroy (&fake);
}

//  A retry that waits behind a try of its key is not answered with that
//  try's retryable failure: it runs next, and a later asker waits for it
static void
s_test_retry_runs_next (void)
{
    chorus__fake_t *fake = chorus__fake_new ("billing");
    chorus__context_t *context = chorus__fake_context (fake);
    chorus__commands_t *self = chorus__commands_new (context);
    chorus__commands_handle (self, "charge");
    chorus__peer_t *client = chorus__fake_peer (fake, S_CLIENT, "client");
    uint64_t later = chorus__now () + 60000;

    chorus_msg_t *command = s_test_command (context, "billing", "charge", "order-9", later);
    chorus__commands_received (self, client, &command);
    chorus_msg_t *first = NULL;
    CHORUS__CHECK (chorus__fake_handed (fake, &first, NULL, 0) == 'C');
    //  Two retries of the key under new ids while the first waits
    chorus_msg_t *retry = s_test_command (context, "billing", "charge", "order-9", later);
    char retry_id [33];
    snprintf (retry_id, sizeof (retry_id), "%s", chorus_msg_id (retry));
    chorus__commands_received (self, client, &retry);
    CHORUS__CHECK (retry == NULL);      //  kept, to run or to answer
    chorus_msg_t *third = s_test_command (context, "billing", "charge", "order-9", later);
    char third_id [33];
    snprintf (third_id, sizeof (third_id), "%s", chorus_msg_id (third));
    chorus__commands_received (self, client, &third);
    chorus_msg_t *other = NULL;
    CHORUS__CHECK (chorus__fake_handed (fake, &other, NULL, 0) == 0);

    //  The first fails and may be tried again (its deadline passed in a
    //  queue): it is answered, and the newest retry runs, not answered
    chorus_msg_t *reply = chorus__context_msg (context, CHORUS_MSG_REPLY);
    chorus_msg_set_status (reply, CHORUS_REPLY_ERROR);
    chorus_msg_set_code (reply, "expired");
    chorus_msg_set_retryable (reply, true);
    chorus_store_begin (context->store);
    chorus__commands_record (self, first, reply);
    CHORUS__CHECK (chorus_store_commit (context->store) == 0);
    char first_id [33];
    snprintf (first_id, sizeof (first_id), "%s", chorus_msg_id (first));
    chorus__commands_replied (self, first, reply);
    chorus_msg_t *sent = chorus__fake_sent (fake, client->endpoint, 1000);
    CHORUS__CHECK (sent && streq (chorus_msg_request (sent), first_id));
    CHORUS__CHECK (streq (chorus_msg_code (sent), "expired"));
    chorus_msg_destroy (&sent);
    CHORUS__CHECK (chorus__fake_sent (fake, client->endpoint, 0) == NULL);
    chorus_msg_t *next = NULL;
    char text [64];
    CHORUS__CHECK (chorus__fake_handed (fake, &next, text, sizeof (text)) == 'C');
    CHORUS__CHECK (next && streq (chorus_msg_id (next), third_id) && streq (text, "client"));

    //  It is the one that runs now: sent again, it is neither run nor kept
    command = s_test_command (context, "billing", "charge", "order-9", later);
    chorus_msg_set_id (command, third_id);
    chorus__commands_received (self, client, &command);
    CHORUS__CHECK (command != NULL);
    chorus_msg_destroy (&command);

    //  It succeeds: its reply is recorded and the remaining retry gets it
    reply = chorus__context_msg (context, CHORUS_MSG_REPLY);
    chorus_msg_set_status (reply, CHORUS_REPLY_OK);
    chorus_msg_set_payload (reply, "\xa2ok", 3);
    chorus_store_begin (context->store);
    chorus__commands_record (self, next, reply);
    CHORUS__CHECK (chorus_store_commit (context->store) == 0);
    chorus__commands_replied (self, next, reply);
    sent = chorus__fake_sent (fake, client->endpoint, 1000);
    CHORUS__CHECK (sent && streq (chorus_msg_request (sent), third_id));
    CHORUS__CHECK (chorus_msg_status (sent) == CHORUS_REPLY_OK);
    chorus_msg_destroy (&sent);
    sent = chorus__fake_sent (fake, client->endpoint, 1000);
    CHORUS__CHECK (sent && streq (chorus_msg_request (sent), retry_id));
    CHORUS__CHECK (chorus_msg_status (sent) == CHORUS_REPLY_OK);
    chorus_msg_destroy (&sent);
    CHORUS__CHECK (chorus__fake_handed (fake, &other, NULL, 0) == 0);

    //  A retryable failure with only askers past their deadline: they are
    //  answered with it (they have given up), and nothing runs
    command = s_test_command (context, "billing", "charge", "order-10", later);
    chorus__commands_received (self, client, &command);
    CHORUS__CHECK (chorus__fake_handed (fake, &first, NULL, 0) == 'C');
    retry = s_test_command (context, "billing", "charge", "order-10", chorus__now () + 30);
    chorus__commands_received (self, client, &retry);
    zclock_sleep (60);      //  the retry's own deadline passes
    reply = chorus__context_msg (context, CHORUS_MSG_REPLY);
    chorus_msg_set_status (reply, CHORUS_REPLY_ERROR);
    chorus_msg_set_code (reply, "busy");
    chorus_msg_set_retryable (reply, true);
    chorus__commands_replied (self, first, reply);
    CHORUS__CHECK (chorus__fake_handed (fake, &other, NULL, 0) == 0);
    int answers = 0;
    while ((sent = chorus__fake_sent (fake, client->endpoint, 1000))) {
        CHORUS__CHECK (streq (chorus_msg_code (sent), "busy"));
        chorus_msg_destroy (&sent);
        if (++answers == 2)
            break;
    }
    CHORUS__CHECK (answers == 2);

    chorus__commands_destroy (&self);
    chorus__fake_destroy (&fake);
}

void
chorus__commands_test (bool verbose)
{
    if (verbose)
        printf (" * chorus__commands: ");
    s_test_sending ();
    s_test_receiving ();
    s_test_retry_runs_next ();
    if (verbose)
        printf ("OK\n");
}
