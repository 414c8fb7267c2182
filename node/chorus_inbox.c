/*  chorus_inbox.c — the receiving side of delivery (protocol section 7.4):
    an EVENT for our group is checked against the inbox and handed to the
    application; the application's results are recorded in the store, all
    of a turn in one write (the engine begins and commits it), and only
    then acknowledged. To a publisher that reads lists (its HELLO says
    chorus.acks: lists) the acknowledgements of a turn go as one EVENT-ACK
    per status, listing the further seqs: half the messages of a stream
    of events were acknowledgements.
*/
#include "chorus_inbox.h"
#include "chorus_fake.h"

#define S_HIGHEST_MAX 10000     //  publishers whose highest recorded seq we keep

struct _chorus__inbox_t {
    chorus__context_t *context; //  what the engine shares with us
    zhashx_t *in_hand;          //  "instance/seq" of events the application holds
    zhashx_t *highest;          //  publisher -> highest seq it has recorded (uint64_t *)
    chorus_msg_t *ack;          //  reusable EVENT-ACK
    zlistx_t *pending;          //  EVENT-ACKs collecting seqs until the turn ends
                                //  (s_pending_t), at most one per publisher and status
};

//  An EVENT-ACK to a publisher that reads lists, collecting this turn's seqs
typedef struct {
    char instance [33];         //  the publisher, looked up again when sent
    int status;                 //  the status all its seqs share
    chorus_msg_t *ack;          //  group, first seq, status and the further seqs
} s_pending_t;

static void
s_pending_destroy (void **item)
{
    s_pending_t *pending = (s_pending_t *) *item;
    chorus_msg_destroy (&pending->ack);
    free (pending);
    *item = NULL;
}

static void
s_free_value (void **item)
{
    free (*item);
    *item = NULL;
}

chorus__inbox_t *
chorus__inbox_new (chorus__context_t *context)
{
    chorus__inbox_t *self = (chorus__inbox_t *) zmalloc (sizeof (chorus__inbox_t));
    self->context = context;
    self->in_hand = zhashx_new ();
    self->highest = zhashx_new ();
    zhashx_set_destructor (self->highest, s_free_value);
    self->ack = chorus_msg_new (CHORUS_MSG_EVENT_ACK);
    self->pending = zlistx_new ();
    zlistx_set_destructor (self->pending, s_pending_destroy);
    return self;
}

void
chorus__inbox_destroy (chorus__inbox_t **self_p)
{
    chorus__inbox_t *self = *self_p;
    if (self) {
        zhashx_destroy (&self->in_hand);
        zhashx_destroy (&self->highest);
        chorus_msg_destroy (&self->ack);
        zlistx_destroy (&self->pending);     //  the engine flushed them before its BYE
        free (self);
        *self_p = NULL;
    }
}

size_t
chorus__inbox_in_hand (chorus__inbox_t *self)
{
    return zhashx_size (self->in_hand);
}

//  Sends one EVENT-ACK of group, seq and status to peer
static void
s_ack_one (chorus__inbox_t *self, chorus__peer_t *peer, const char *group, uint64_t seq,
           int status)
{
    //  One EVENT-ACK, refilled for each: no malloc per acknowledgement
    chorus_msg_t *ack = self->ack;
    char id [33];
    chorus__new_id (id);
    chorus_msg_set_group (ack, NULL);   //  so that the message's arena takes both back
    chorus_msg_set_id (ack, id);
    chorus_msg_set_group (ack, group);
    chorus_msg_set_seq (ack, seq);
    chorus_msg_set_status (ack, status);
    chorus__peer_answer (peer, ack);
}

//  Sends a collected EVENT-ACK, as single ones to a peer that no longer
//  reads lists (it came back older); a peer gone meanwhile gets nothing,
//  and its events come again
static void
s_pending_send (chorus__inbox_t *self, s_pending_t *pending)
{
    chorus__peer_t *peer = chorus__context_peer (self->context, pending->instance);
    if (!peer)
        return;
    chorus_msg_t *ack = pending->ack;
    if (peer->ack_lists) {
        char id [33];
        chorus__new_id (id);
        chorus_msg_set_id (ack, id);
        chorus__peer_answer (peer, ack);
        return;
    }
    const uint64_t *seqs;
    size_t count = chorus_msg_seqs (ack, &seqs);
    s_ack_one (self, peer, chorus_msg_group (ack), chorus_msg_seq (ack), pending->status);
    for (size_t i = 0; i < count; i++)
        s_ack_one (self, peer, chorus_msg_group (ack), seqs [i], pending->status);
}

static void
s_ack (chorus__inbox_t *self, chorus__peer_t *peer, chorus_msg_t *event, int status)
{
    if (!peer)
        return;
    if (!peer->ack_lists) {
        s_ack_one (self, peer, chorus_msg_group (event), chorus_msg_seq (event), status);
        return;
    }
    //  Added to this turn's EVENT-ACK for the publisher and status; the
    //  group is always ours
    for (s_pending_t *pending = (s_pending_t *) zlistx_first (self->pending); pending;
         pending = (s_pending_t *) zlistx_next (self->pending))
        if (pending->status == status && streq (pending->instance, peer->instance)) {
            chorus_msg_add_seq (pending->ack, chorus_msg_seq (event));
            if (chorus_msg_seqs (pending->ack, NULL) == CHORUS_MSG_MAX_SEQS) {
                s_pending_send (self, pending);
                zlistx_delete (self->pending, zlistx_cursor (self->pending));
            }
            return;
        }
    s_pending_t *pending = (s_pending_t *) zmalloc (sizeof (s_pending_t));
    snprintf (pending->instance, sizeof (pending->instance), "%s", peer->instance);
    pending->status = status;
    pending->ack = chorus_msg_new (CHORUS_MSG_EVENT_ACK);
    chorus_msg_set_group (pending->ack, chorus_msg_group (event));
    chorus_msg_set_seq (pending->ack, chorus_msg_seq (event));
    chorus_msg_set_status (pending->ack, status);
    zlistx_add_end (self->pending, pending);
}

void
chorus__inbox_flush (chorus__inbox_t *self)
{
    s_pending_t *pending;
    while ((pending = (s_pending_t *) zlistx_first (self->pending))) {
        s_pending_send (self, pending);
        zlistx_delete (self->pending, zlistx_cursor (self->pending));
    }
}

//  "instance/seq": the key of an event the application holds; the instance
//  is the peer that sent it (the engine has checked)
static void
s_in_hand_key (chorus_msg_t *event, char key [128])
{
    size_t size = strlen (chorus_msg_instance (event));    //  at most 64
    memcpy (key, chorus_msg_instance (event), size);
    key [size] = '/';
    chorus__decimal (chorus_msg_seq (event), key + size + 1);
}

//  1 if the event may have been recorded (the store must say), 0 if it
//  cannot have been, -1 if the store failed. Events mostly come in seq
//  order: one above the highest seq recorded for its publisher is new, and
//  costs no store read. The highest is read from the store once per
//  publisher, and kept up as records are written.
static int
s_maybe_recorded (chorus__inbox_t *self, chorus_msg_t *event)
{
    const char *publisher = chorus_msg_instance (event);
    uint64_t *highest = (uint64_t *) zhashx_lookup (self->highest, publisher);
    if (!highest) {
        uint64_t seq;
        if (chorus_store_inbox_highest (self->context->store, publisher, &seq))
            return -1;
        if (zhashx_size (self->highest) >= S_HIGHEST_MAX)
            zhashx_purge (self->highest);
        highest = (uint64_t *) malloc (sizeof (uint64_t));
        assert (highest);
        *highest = seq;
        zhashx_insert (self->highest, publisher, highest);
    }
    return chorus_msg_seq (event) <= *highest? 1: 0;
}

void
chorus__inbox_event (chorus__inbox_t *self, chorus__peer_t *peer, chorus_msg_t **event_p)
{
    chorus__context_t *context = self->context;
    chorus_msg_t *event = *event_p;
    if (!streq (chorus_msg_group (event), context->config->service)) {
        chorus__context_error (context, peer, event, "wrong-group",
                               "this node is not in that group");
        return;
    }
    char key [128];
    s_in_hand_key (event, key);
    if (zhashx_lookup (self->in_hand, key))
        return;     //  a copy of an event the application is handling now
    int seen = s_maybe_recorded (self, event);
    if (seen == 1)
        seen = chorus_store_inbox_has (context->store, chorus_msg_instance (event),
                                       chorus_msg_seq (event));
    if (seen == 1) {
        context->counters [C_DUPLICATES]++;
        s_ack (self, peer, event, CHORUS_ACK_DUPLICATE);
        return;
    }
    if (seen < 0) {
        chorus__context_warn (context, W_STORE, "inbox: %s", chorus_store_error (context->store));
        return;     //  not acked: the publisher will try again
    }
    zhashx_insert (self->in_hand, key, (void *) 1);
    *event_p = NULL;
    chorus__context_hand (context, 'E', event, NULL);
}

void
chorus__inbox_handled (chorus__inbox_t *self, chorus_msg_t *event, int status)
{
    char key [128];
    s_in_hand_key (event, key);
    zhashx_delete (self->in_hand, key);
    chorus__context_t *context = self->context;
    if (status == CHORUS_ACK_HANDLED) {
        context->counters [C_HANDLED]++;
        uint64_t *highest = (uint64_t *) zhashx_lookup (self->highest,
                                                        chorus_msg_instance (event));
        if (highest && chorus_msg_seq (event) > *highest)
            *highest = chorus_msg_seq (event);      //  recorded, or the store says
        if (chorus_store_inbox_add (context->store, chorus_msg_instance (event),
                                    chorus_msg_seq (event), chorus__now ()))
            chorus__context_warn (context, W_STORE, "inbox: %s",
                                  chorus_store_error (context->store));
    }
}

void
chorus__inbox_recorded (chorus__inbox_t *self, chorus_msg_t *event, int status, bool recorded)
{
    if (recorded || status != CHORUS_ACK_HANDLED)
        s_ack (self, chorus__context_peer (self->context, chorus_msg_instance (event)), event,
               status);
    //  else unrecorded, so unacknowledged: it comes again
    chorus_msg_destroy (&event);
}


//  --------------------------------------------------------------------------
//  Self-test

#define S_PUBLISHER "A0000000000000000000000000000001"

void
chorus__inbox_test (bool verbose)
{
    if (verbose)
        printf (" * chorus__inbox: ");
    chorus__fake_t *fake = chorus__fake_new ("orders");
    chorus__context_t *context = chorus__fake_context (fake);
    chorus__inbox_t *self = chorus__inbox_new (context);
    chorus__peer_t *peer = chorus__fake_peer (fake, S_PUBLISHER, "shop");

    //  An event for our group goes to the application, once
    chorus_msg_t *event = chorus__fake_event (fake, S_PUBLISHER, 7, "order.placed", "k", NULL);
    chorus_msg_set_group (event, "orders");
    chorus_msg_t *copy = chorus__fake_dup (event);
    chorus__inbox_event (self, peer, &event);
    CHORUS__CHECK (event == NULL && chorus__inbox_in_hand (self) == 1);
    chorus_msg_t *handed = NULL;
    CHORUS__CHECK (chorus__fake_handed (fake, &handed, NULL, 0) == 'E');
    CHORUS__CHECK (handed && chorus_msg_seq (handed) == 7);

    //  A copy that comes while the application holds it is dropped,
    //  neither handed over nor acknowledged
    chorus_msg_t *again = chorus__fake_dup (copy);
    chorus__inbox_event (self, peer, &again);
    CHORUS__CHECK (again != NULL);
    chorus_msg_destroy (&again);
    chorus_msg_t *other = NULL;
    CHORUS__CHECK (chorus__fake_handed (fake, &other, NULL, 0) == 0);
    CHORUS__CHECK (chorus__fake_sent (fake, peer->endpoint, 0) == NULL);

    //  Handled: recorded, then acknowledged
    chorus_store_begin (context->store);
    chorus__inbox_handled (self, handed, CHORUS_ACK_HANDLED);
    CHORUS__CHECK (chorus_store_commit (context->store) == 0);
    chorus__inbox_recorded (self, handed, CHORUS_ACK_HANDLED, true);
    CHORUS__CHECK (chorus__inbox_in_hand (self) == 0);
    CHORUS__CHECK (context->counters [C_HANDLED] == 1);
    chorus_msg_t *ack = chorus__fake_sent (fake, peer->endpoint, 1000);
    CHORUS__CHECK (ack && chorus_msg_type (ack) == CHORUS_MSG_EVENT_ACK);
    CHORUS__CHECK (chorus_msg_seq (ack) == 7 && chorus_msg_status (ack) == CHORUS_ACK_HANDLED);
    CHORUS__CHECK (streq (chorus_msg_group (ack), "orders"));
    chorus_msg_destroy (&ack);

    //  The same event again: acknowledged as a duplicate, not handed over
    again = chorus__fake_dup (copy);
    chorus__inbox_event (self, peer, &again);
    chorus_msg_destroy (&again);
    CHORUS__CHECK (chorus__fake_handed (fake, &other, NULL, 0) == 0);
    ack = chorus__fake_sent (fake, peer->endpoint, 1000);
    CHORUS__CHECK (ack && chorus_msg_status (ack) == CHORUS_ACK_DUPLICATE);
    CHORUS__CHECK (context->counters [C_DUPLICATES] == 1);
    chorus_msg_destroy (&ack);

    //  After a restart (a new inbox on the same store), the record still
    //  makes it a duplicate
    chorus__inbox_destroy (&self);
    self = chorus__inbox_new (context);
    again = chorus__fake_dup (copy);
    chorus__inbox_event (self, peer, &again);
    chorus_msg_destroy (&again);
    CHORUS__CHECK (chorus__fake_handed (fake, &other, NULL, 0) == 0);
    ack = chorus__fake_sent (fake, peer->endpoint, 1000);
    CHORUS__CHECK (ack && chorus_msg_status (ack) == CHORUS_ACK_DUPLICATE);
    CHORUS__CHECK (context->counters [C_DUPLICATES] == 2);
    chorus_msg_destroy (&ack);
    //  and one of a lower seq, never recorded, is new
    event = chorus__fake_event (fake, S_PUBLISHER, 5, "order.placed", "k", NULL);
    chorus_msg_set_group (event, "orders");
    chorus__inbox_event (self, peer, &event);
    CHORUS__CHECK (chorus__fake_handed (fake, &handed, NULL, 0) == 'E');
    chorus__inbox_handled (self, handed, CHORUS_ACK_HANDLED);
    chorus__inbox_recorded (self, handed, CHORUS_ACK_HANDLED, true);
    chorus_msg_destroy (&ack);
    ack = chorus__fake_sent (fake, peer->endpoint, 1000);
    CHORUS__CHECK (ack && chorus_msg_seq (ack) == 5);
    chorus_msg_destroy (&ack);

    //  An event whose record could not be written is not acknowledged:
    //  it comes again
    event = chorus__fake_event (fake, S_PUBLISHER, 8, "order.placed", "k", NULL);
    chorus_msg_set_group (event, "orders");
    chorus__inbox_event (self, peer, &event);
    CHORUS__CHECK (chorus__fake_handed (fake, &handed, NULL, 0) == 'E');
    chorus__inbox_handled (self, handed, CHORUS_ACK_HANDLED);
    chorus__inbox_recorded (self, handed, CHORUS_ACK_HANDLED, false);
    CHORUS__CHECK (chorus__fake_sent (fake, peer->endpoint, 0) == NULL);

    //  A rejection is acknowledged as such, whether recorded or not
    event = chorus__fake_event (fake, S_PUBLISHER, 9, "order.placed", "k", NULL);
    chorus_msg_set_group (event, "orders");
    chorus__inbox_event (self, peer, &event);
    CHORUS__CHECK (chorus__fake_handed (fake, &handed, NULL, 0) == 'E');
    chorus__inbox_handled (self, handed, CHORUS_ACK_REJECTED);
    chorus__inbox_recorded (self, handed, CHORUS_ACK_REJECTED, false);
    ack = chorus__fake_sent (fake, peer->endpoint, 1000);
    CHORUS__CHECK (ack && chorus_msg_seq (ack) == 9);
    CHORUS__CHECK (chorus_msg_status (ack) == CHORUS_ACK_REJECTED);
    chorus_msg_destroy (&ack);

    //  An event for another group is refused with ERROR wrong-group
    event = chorus__fake_dup (copy);
    chorus_msg_set_group (event, "billing");
    chorus__inbox_event (self, peer, &event);
    CHORUS__CHECK (event != NULL);
    chorus_msg_destroy (&event);
    chorus_msg_t *error = chorus__fake_sent (fake, peer->endpoint, 1000);
    CHORUS__CHECK (error && chorus_msg_type (error) == CHORUS_MSG_ERROR);
    CHORUS__CHECK (streq (chorus_msg_code (error), "wrong-group"));
    chorus_msg_destroy (&error);

    //  To a publisher that reads lists, a turn's acknowledgements go as
    //  one EVENT-ACK per status when the turn ends, 1025 at most in one
    peer->ack_lists = true;
    uint64_t seq = 100;
    for (int i = 0; i < 1030; i++) {
        event = chorus__fake_event (fake, S_PUBLISHER, seq++, "order.placed", NULL, NULL);
        chorus_msg_set_group (event, "orders");
        chorus__inbox_event (self, peer, &event);
        CHORUS__CHECK (chorus__fake_handed (fake, &handed, NULL, 0) == 'E');
        int status = i == 3 || i == 7? CHORUS_ACK_REJECTED: CHORUS_ACK_HANDLED;
        chorus__inbox_handled (self, handed, status);
        chorus__inbox_recorded (self, handed, status, true);
    }
    //  A full list has gone at once; the rest wait for the turn's end
    ack = chorus__fake_sent (fake, peer->endpoint, 1000);
    const uint64_t *seqs;
    CHORUS__CHECK (ack && chorus_msg_status (ack) == CHORUS_ACK_HANDLED);
    CHORUS__CHECK (chorus_msg_seq (ack) == 100 && chorus_msg_seqs (ack, &seqs) == 1024);
    CHORUS__CHECK (seqs [0] == 101 && seqs [2] == 104 && seqs [5] == 108);
    chorus_msg_destroy (&ack);
    CHORUS__CHECK (chorus__fake_sent (fake, peer->endpoint, 0) == NULL);
    chorus__inbox_flush (self);
    ack = chorus__fake_sent (fake, peer->endpoint, 1000);
    CHORUS__CHECK (ack && chorus_msg_status (ack) == CHORUS_ACK_REJECTED);
    CHORUS__CHECK (chorus_msg_seq (ack) == 103 && chorus_msg_seqs (ack, &seqs) == 1);
    CHORUS__CHECK (seqs [0] == 107);
    chorus_msg_destroy (&ack);
    ack = chorus__fake_sent (fake, peer->endpoint, 1000);
    CHORUS__CHECK (ack && chorus_msg_status (ack) == CHORUS_ACK_HANDLED);
    CHORUS__CHECK (chorus_msg_seq (ack) == 1127 && chorus_msg_seqs (ack, &seqs) == 2);
    CHORUS__CHECK (seqs [0] == 1128 && seqs [1] == 1129);
    chorus_msg_destroy (&ack);
    chorus__inbox_flush (self);
    CHORUS__CHECK (chorus__fake_sent (fake, peer->endpoint, 0) == NULL);

    //  A publisher that came back older before the turn ended gets them
    //  one by one, without a list
    for (int i = 0; i < 2; i++) {
        event = chorus__fake_event (fake, S_PUBLISHER, seq++, "order.placed", NULL, NULL);
        chorus_msg_set_group (event, "orders");
        chorus__inbox_event (self, peer, &event);
        CHORUS__CHECK (chorus__fake_handed (fake, &handed, NULL, 0) == 'E');
        chorus__inbox_handled (self, handed, CHORUS_ACK_HANDLED);
        chorus__inbox_recorded (self, handed, CHORUS_ACK_HANDLED, true);
    }
    peer->ack_lists = false;
    chorus__inbox_flush (self);
    for (uint64_t expected = seq - 2; expected < seq; expected++) {
        ack = chorus__fake_sent (fake, peer->endpoint, 1000);
        CHORUS__CHECK (ack && chorus_msg_seq (ack) == expected);
        CHORUS__CHECK (chorus_msg_seqs (ack, NULL) == 0);
        chorus_msg_destroy (&ack);
    }

    chorus_msg_destroy (&copy);
    chorus__inbox_destroy (&self);
    CHORUS__CHECK (self == NULL);
    chorus__fake_destroy (&fake);
    if (verbose)
        printf ("OK\n");
}
