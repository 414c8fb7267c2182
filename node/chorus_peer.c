/*  chorus_peer.c — a peer and our connection into its inbox: sends, our
    HELLO first, and a bounded backlog of answers that could not go yet.
*/
#include "chorus_peer.h"

#define S_BACKLOG_MAX 1024                  //  answers kept for one peer at most
#define S_BACKLOG_BYTES (4 * 1024 * 1024)   //  and their bytes

chorus__peer_t *
chorus__peer_new (const char *instance, const char *service, const char *endpoint,
                  const char *pub_endpoint, void *dealer, const char *key)
{
    chorus__peer_t *self = (chorus__peer_t *) zmalloc (sizeof (chorus__peer_t));
    self->instance = strdup (instance);
    self->service = strdup (service);
    self->endpoint = strdup (endpoint);
    self->pub_endpoint = strdup (pub_endpoint);
    self->address = strdup ("");
    self->dealer = dealer;
    self->key = key? strdup (key): NULL;
    self->last_seen = chorus__mono ();
    self->last_sent = self->last_seen;
    return self;
}

void
chorus__peer_destroy (chorus__peer_t **self_p)
{
    chorus__peer_t *self = *self_p;
    if (self) {
        chorus__socket_destroy (&self->dealer);
        if (self->backlog) {
            for (zframe_t *frame = (zframe_t *) zlistx_first (self->backlog); frame;
                 frame = (zframe_t *) zlistx_next (self->backlog))
                zframe_destroy (&frame);
            zlistx_destroy (&self->backlog);
        }
        free (self->instance);
        free (self->service);
        free (self->endpoint);
        free (self->pub_endpoint);
        free (self->address);
        free (self->key);
        free (self->sample);
        chorus__subs_free (&self->subs, &self->subs_size);
        free (self);
        *self_p = NULL;
    }
}

void
chorus__peer_set_greeter (chorus__peer_t *self, chorus__peer_greeter_fn *greeter, void *arg)
{
    self->greeter = greeter;
    self->greeter_arg = arg;
}

void
chorus__peer_set_waiter (chorus__peer_t *self, chorus__peer_waiter_fn *waiter)
{
    self->waiter = waiter;
}

int
chorus__peer_greet (chorus__peer_t *self)
{
    //  The greeter opens the connection of a member we have not met yet
    if (!self->hello_sent && self->greeter
    &&  self->greeter (self, self->greeter_arg) == 0)
        self->hello_sent = true;
    return self->hello_sent? 0: -1;
}

//  Notes when a message is work with the peer (events, commands, FETCH and
//  their answers), not membership (HELLO, probes, BYE)
static void
s_sent (chorus__peer_t *self, int type)
{
    self->last_sent = chorus__mono ();
    if (type != CHORUS_MSG_HELLO && type != CHORUS_MSG_PING && type != CHORUS_MSG_PONG
    &&  type != CHORUS_MSG_PING_REQ && type != CHORUS_MSG_PING_ACK && type != CHORUS_MSG_BYE)
        self->last_work = self->last_sent;
}

int
chorus__peer_send (chorus__peer_t *self, chorus_msg_t *msg)
{
    if (!self || chorus__peer_greet (self) || !self->dealer)
        return -1;      //  nothing goes to a peer before our HELLO
    int rc = chorus_msg_send (msg, self->dealer);
    if (rc == 0)
        s_sent (self, chorus_msg_type (msg));
    return rc;
}

int
chorus__peer_send_encoded (chorus__peer_t *self, chorus_msg_t *msg, zframe_t **frame_p)
{
    if (!self || chorus__peer_greet (self) || !self->dealer) {
        zframe_destroy (frame_p);
        return -1;
    }
    int rc = chorus_msg_send_encoded (msg, frame_p, self->dealer);
    if (rc == 0)
        s_sent (self, chorus_msg_type (msg));
    return rc;
}

int
chorus__peer_send_body (chorus__peer_t *self, int type, zframe_t **frame_p)
{
    if (!self || chorus__peer_greet (self) || !self->dealer) {
        zframe_destroy (frame_p);
        return -1;
    }
    int rc = zframe_send (frame_p, self->dealer, 0);     //  as chorus_msg_send does
    if (rc == 0)
        s_sent (self, type);
    else
        zframe_destroy (frame_p);   //  not sent (a full queue): ours to free
    return rc;
}

void
chorus__peer_flush_backlog (chorus__peer_t *self)
{
    zframe_t *frame;
    while (self->backlog && (frame = (zframe_t *) zlistx_first (self->backlog))
       &&  chorus__peer_greet (self) == 0
       &&  zframe_send (&frame, self->dealer, ZFRAME_REUSE | ZFRAME_DONTWAIT) == 0) {
        self->backlog_bytes -= zframe_size (frame);
        self->last_sent = self->last_work = chorus__mono ();    //  answers all
        zlistx_detach_cur (self->backlog);
        zframe_destroy (&frame);
    }
}

void
chorus__peer_answer (chorus__peer_t *self, chorus_msg_t *msg)
{
    if (!self)
        return;
    if ((!self->backlog || zlistx_size (self->backlog) == 0)
    &&  chorus__peer_send (self, msg) == 0)
        return;
    //  The connection is not up yet (we have just met) or is full: keep
    //  it, rather than make the peer wait for its timeout to ask again
    zframe_t *frame = chorus_msg_encode (msg);
    if (!self->backlog)
        self->backlog = zlistx_new ();
    if (!frame || zlistx_size (self->backlog) >= S_BACKLOG_MAX
    ||  self->backlog_bytes + zframe_size (frame) > S_BACKLOG_BYTES) {
        zframe_destroy (&frame);    //  the peer asks again at its timeout
        return;
    }
    self->backlog_bytes += zframe_size (frame);
    zlistx_add_end (self->backlog, frame);
    chorus__peer_flush_backlog (self);
    if (zlistx_size (self->backlog) && self->waiter)
        self->waiter (self, self->greeter_arg);
}

size_t
chorus__peer_backlog (chorus__peer_t *self)
{
    return self->backlog? zlistx_size (self->backlog): 0;
}

void
chorus__peer_set_subs (chorus__peer_t *self, chorus_msg_t *hello)
{
    chorus__subs_free (&self->subs, &self->subs_size);
    for (size_t i = 0; i < chorus_msg_subscriptions (hello); i++) {
        uint64_t since, flags;
        const char *prefix = chorus_msg_subscription (hello, i, &since, &flags);
        chorus__subs_add (&self->subs, &self->subs_size, prefix, since, flags);
    }
}

uint64_t
chorus__peer_last_used (chorus__peer_t *self)
{
    return self->last_seen > self->last_sent? self->last_seen: self->last_sent;
}

uint64_t
chorus__peer_seen_at (chorus__peer_t *self)
{
    uint64_t silence = chorus__mono () - self->last_seen;
    uint64_t now = chorus__now ();
    return now > silence? now - silence: 0;
}

char *
chorus__peer_subs_text (chorus__peer_t *self)
{
    char *subs = NULL;
    size_t length = 0;
    FILE *stream = open_memstream (&subs, &length);
    for (size_t i = 0; i < self->subs_size; i++)
        fprintf (stream, "%s%s", i? ",": "", self->subs [i].prefix);
    fclose (stream);
    return subs;
}

//  --------------------------------------------------------------------------
//  Self-test

typedef struct {
    int calls;                  //  greetings asked for
    bool up;                    //  whether the "connection" is up
} s_greeting_t;

static int
s_test_greeter (chorus__peer_t *peer, void *arg)
{
    s_greeting_t *greeting = (s_greeting_t *) arg;
    greeting->calls++;
    if (!greeting->up)
        return -1;
    chorus_msg_t *hello = chorus_msg_new (CHORUS_MSG_HELLO);
    chorus_msg_set_id (hello, "0123456789ABCDEF0123456789ABCDEF");
    chorus_msg_set_service (hello, "test");
    chorus_msg_set_instance (hello, "0123456789ABCDEF0123456789ABCDEF");
    chorus_msg_set_endpoint (hello, "inproc://a");
    chorus_msg_set_pub_endpoint (hello, "inproc://a-pub");
    int rc = chorus_msg_send (hello, peer->dealer);
    chorus_msg_destroy (&hello);
    return rc;
}

//  The type of the next message the router got, or -1 if none is waiting
static int
s_test_next (zsock_t *router)
{
    zmsg_t *msg = chorus__recv_ready (router);
    if (!msg)
        return -1;
    zframe_t *body = zmsg_last (msg);
    chorus_msg_t *decoded = chorus_msg_new (CHORUS_MSG_PING);
    int rc = chorus_msg_decode (decoded, zframe_data (body), zframe_size (body));
    int type = rc == 0? chorus_msg_type (decoded): -2;
    chorus_msg_destroy (&decoded);
    zmsg_destroy (&msg);
    return type;
}

static chorus_msg_t *
s_test_ping (void)
{
    chorus_msg_t *ping = chorus_msg_new (CHORUS_MSG_PING);
    char id [33];
    chorus__new_id (id);
    chorus_msg_set_id (ping, id);
    return ping;
}

void
chorus__peer_test (bool verbose)
{
    if (verbose)
        printf (" * chorus__peer: ");
    zsock_t *router = zsock_new_router ("inproc://chorus-peer-test");
    CHORUS__CHECK (router);
    zsock_set_rcvtimeo (router, 1000);
    void *dealer = chorus__socket_new (ZMQ_DEALER);
    CHORUS__CHECK (dealer);
    CHORUS__CHECK (zmq_connect (dealer, "inproc://chorus-peer-test") == 0);
    chorus__peer_t *peer = chorus__peer_new ("0123456789ABCDEF0123456789ABCDEF", "svc",
                                             "inproc://chorus-peer-test", "inproc://x", dealer,
                                             NULL);
    CHORUS__CHECK (peer && streq (peer->service, "svc") && peer->key == NULL);

    //  Without a greeter, or before the connection is up, nothing goes
    chorus_msg_t *ping = s_test_ping ();
    CHORUS__CHECK (chorus__peer_send (peer, ping) == -1);
    s_greeting_t greeting = {0, false};
    chorus__peer_set_greeter (peer, s_test_greeter, &greeting);
    CHORUS__CHECK (chorus__peer_send (peer, ping) == -1);
    CHORUS__CHECK (greeting.calls == 1 && !peer->hello_sent);

    //  An answer that cannot go waits in the backlog, and goes after our
    //  HELLO once the connection is up
    chorus__peer_answer (peer, ping);
    CHORUS__CHECK (chorus__peer_backlog (peer) == 1);
    CHORUS__CHECK (s_test_next (router) == -1);
    greeting.up = true;
    chorus__peer_flush_backlog (peer);
    CHORUS__CHECK (peer->hello_sent && chorus__peer_backlog (peer) == 0);
    zsock_set_rcvtimeo (router, 1000);
    zmsg_t *first = zmsg_recv (router);     //  inproc: already there, in order
    CHORUS__CHECK (first);
    zmsg_destroy (&first);
    CHORUS__CHECK (s_test_next (router) == CHORUS_MSG_PING);

    //  Our HELLO goes once only; later sends go straight
    int calls = greeting.calls;
    CHORUS__CHECK (chorus__peer_send (peer, ping) == 0);
    CHORUS__CHECK (greeting.calls == calls);
    CHORUS__CHECK (s_test_next (router) == CHORUS_MSG_PING);
    zframe_t *frame = chorus_msg_encode (ping);
    CHORUS__CHECK (chorus__peer_send_encoded (peer, ping, &frame) == 0 && frame == NULL);
    CHORUS__CHECK (s_test_next (router) == CHORUS_MSG_PING);
    chorus_msg_destroy (&ping);

    //  The backlog is bounded: what does not fit is dropped, not grown
    chorus__peer_t *silent = chorus__peer_new ("00000000000000000000000000000001", "svc",
                                               "inproc://nowhere", "inproc://nowhere-pub",
                                               NULL, "KEY");
    ping = s_test_ping ();
    for (int i = 0; i < S_BACKLOG_MAX + 10; i++)
        chorus__peer_answer (silent, ping);
    CHORUS__CHECK (chorus__peer_backlog (silent) == S_BACKLOG_MAX);
    chorus_msg_destroy (&ping);

    //  Subscriptions from a HELLO, as text
    chorus_msg_t *hello = chorus_msg_new (CHORUS_MSG_HELLO);
    chorus_msg_add_subscription (hello, "order.", 0, 0);
    chorus_msg_add_subscription (hello, "payment.", 5, 1);
    chorus__peer_set_subs (silent, hello);
    char *text = chorus__peer_subs_text (silent);
    CHORUS__CHECK (streq (text, "order.,payment."));
    CHORUS__CHECK (silent->subs_size == 2 && silent->subs [1].since == 5);
    free (text);
    chorus_msg_destroy (&hello);
    CHORUS__CHECK (chorus__peer_seen_at (silent) <= chorus__now ());

    chorus__peer_destroy (&silent);
    chorus__peer_destroy (&peer);
    CHORUS__CHECK (peer == NULL);
    zsock_destroy (&router);
    if (verbose)
        printf ("OK\n");
}
