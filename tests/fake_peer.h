/*  fake_peer.h — a hand-made peer for the integration tests. It speaks the
    wire protocol with the codec alone, so a test decides every message a
    real node receives (copies, redeliveries, garbage) and sees every
    message the node sends back.
*/
#ifndef CHORUS_FAKE_PEER_H_INCLUDED
#define CHORUS_FAKE_PEER_H_INCLUDED

#include "testutil.h"
#include "chorus_msg.h"

typedef struct {
    char *service;              //  the service (group) we announce
    char instance [33];         //  our instance id, 32 uppercase hex
    uint8_t routing_id [17];    //  0x01 and our binary instance id
    zsock_t *router;            //  our inbox: the real node connects back here
    zsock_t *pub;               //  where we publish events to observers
    zsock_t *dealer;            //  our connection into the real node's inbox
    char *endpoint;             //  our ROUTER's endpoint, as announced
    char *pub_endpoint;         //  our PUB's endpoint, as announced
    uint64_t started;           //  our start time, the chorus.started header
    uint64_t generation;        //  HELLO generation, +1 for each node we meet
    uint64_t head;              //  latest seq we published
    zhashx_t *hellos;           //  instances whose HELLO reached us since ours
    zlistx_t *inbox;            //  messages received and not yet taken
    uint64_t pings;             //  PINGs answered with PONG
    uint64_t malformed;         //  bodies our ROUTER could not decode
} fake_peer_t;

//  A fresh message id: 32 uppercase hex characters of a random UUID
static inline void
fake_peer_new_id (char id [33])
{
    zuuid_t *uuid = zuuid_new ();
    snprintf (id, 33, "%s", zuuid_str (uuid));
    zuuid_destroy (&uuid);
}

static inline void
fake_peer_destroy (fake_peer_t **self_p)
{
    fake_peer_t *self = *self_p;
    if (!self)
        return;
    zsock_destroy (&self->dealer);
    zsock_destroy (&self->router);
    zsock_destroy (&self->pub);
    for (chorus_msg_t *msg = (chorus_msg_t *) zlistx_first (self->inbox); msg;
         msg = (chorus_msg_t *) zlistx_next (self->inbox))
        chorus_msg_destroy (&msg);
    zlistx_destroy (&self->inbox);
    zhashx_destroy (&self->hellos);
    free (self->service);
    free (self->endpoint);
    free (self->pub_endpoint);
    free (self);
    *self_p = NULL;
}

//  Binds our ROUTER and PUB on loopback and draws our identity
static inline fake_peer_t *
fake_peer_new (const char *service)
{
    fake_peer_t *self = (fake_peer_t *) zmalloc (sizeof (fake_peer_t));
    self->service = strdup (service);
    zuuid_t *uuid = zuuid_new ();
    snprintf (self->instance, sizeof (self->instance), "%s", zuuid_str (uuid));
    self->routing_id [0] = 0x01;
    memcpy (self->routing_id + 1, zuuid_data (uuid), 16);
    zuuid_destroy (&uuid);
    self->started = zclock_time ();
    self->hellos = zhashx_new ();
    self->inbox = zlistx_new ();

    self->router = zsock_new (ZMQ_ROUTER);
    //  The node may come back under the same routing id after a restart
    zsock_set_router_handover (self->router, 1);
    zsock_set_rcvhwm (self->router, 100000);
    self->pub = zsock_new (ZMQ_PUB);
    zsock_set_sndhwm (self->pub, 100000);
    if (zsock_bind (self->router, "tcp://127.0.0.1:*") == -1
    ||  zsock_bind (self->pub, "tcp://127.0.0.1:*") == -1) {
        fake_peer_destroy (&self);
        return NULL;
    }
    self->endpoint = zsock_last_endpoint (self->router);
    self->pub_endpoint = zsock_last_endpoint (self->pub);
    return self;
}

static inline chorus_msg_t *
fake_peer_msg (fake_peer_t *self, int type)
{
    chorus_msg_t *msg = chorus_msg_new (type);
    char id [33];
    fake_peer_new_id (id);
    chorus_msg_set_id (msg, id);
    return msg;
}

//  Sends a message into the real node's inbox; 0 or -1
static inline int
fake_peer_send (fake_peer_t *self, chorus_msg_t *msg)
{
    return self->dealer? chorus_msg_send (msg, self->dealer): -1;
}

//  Publishes an EVENT on our PUB (topic frame, then body); 0 or -1
static inline int
fake_peer_publish (fake_peer_t *self, chorus_msg_t *event)
{
    if (chorus_msg_seq (event) > self->head)
        self->head = chorus_msg_seq (event);
    return chorus_msg_send (event, self->pub);
}

//  Opens a new connection to a node's inbox and says HELLO on it first
static inline int
fake_peer_hello (fake_peer_t *self, const char *endpoint)
{
    zsock_destroy (&self->dealer);
    zhashx_purge (self->hellos);
    self->dealer = zsock_new (ZMQ_DEALER);
    zmq_setsockopt (zsock_resolve (self->dealer), ZMQ_ROUTING_ID, self->routing_id,
                    sizeof (self->routing_id));
    zsock_set_sndhwm (self->dealer, 100000);
    zsock_set_linger (self->dealer, 0);
    if (zsock_connect (self->dealer, "%s", endpoint))
        return -1;
    chorus_msg_t *hello = fake_peer_msg (self, CHORUS_MSG_HELLO);
    chorus_msg_set_service (hello, self->service);
    chorus_msg_set_instance (hello, self->instance);
    chorus_msg_set_endpoint (hello, self->endpoint);
    chorus_msg_set_pub_endpoint (hello, self->pub_endpoint);
    chorus_msg_set_generation (hello, ++self->generation);
    chorus_msg_set_head (hello, self->head);
    char started [24];
    snprintf (started, sizeof (started), "%" PRIu64, self->started);
    chorus_msg_set_header (hello, "chorus.started", started);
    chorus_msg_set_header (hello, "chorus.mesh", getenv ("CHORUS_MESH")? getenv ("CHORUS_MESH"):
                                                 "default");
    int rc = fake_peer_send (self, hello);
    chorus_msg_destroy (&hello);
    return rc;
}

//  Reads everything waiting on our ROUTER: answers PING with PONG so that
//  the node keeps us alive, notes HELLOs, queues everything else
static inline void
fake_peer_pump (fake_peer_t *self)
{
    while (zsock_events (self->router) & ZMQ_POLLIN) {
        chorus_msg_t *msg = chorus_msg_new (CHORUS_MSG_PING);
        int rc = chorus_msg_recv (msg, self->router);
        if (rc == CHORUS_MSG_INTERRUPTED) {
            chorus_msg_destroy (&msg);
            break;
        }
        if (rc == CHORUS_MSG_MALFORMED) {
            self->malformed++;
            diag ("fake peer: malformed message from the node: %s", chorus_msg_reason (msg));
            chorus_msg_destroy (&msg);
            continue;
        }
        if (chorus_msg_type (msg) == CHORUS_MSG_PING) {
            chorus_msg_t *pong = fake_peer_msg (self, CHORUS_MSG_PONG);
            chorus_msg_set_head (pong, self->head);
            fake_peer_send (self, pong);
            chorus_msg_destroy (&pong);
            self->pings++;
            chorus_msg_destroy (&msg);
        }
        else
        if (chorus_msg_type (msg) == CHORUS_MSG_HELLO) {
            zhashx_update (self->hellos, chorus_msg_instance (msg), (void *) 1);
            chorus_msg_destroy (&msg);
        }
        else
            zlistx_add_end (self->inbox, msg);
    }
}

//  Takes the oldest queued message of a type (and, if request is set, with
//  that request field); NULL if there is none. The caller owns it.
static inline chorus_msg_t *
fake_peer_take (fake_peer_t *self, int type, const char *request)
{
    for (chorus_msg_t *msg = (chorus_msg_t *) zlistx_first (self->inbox); msg;
         msg = (chorus_msg_t *) zlistx_next (self->inbox))
        if (chorus_msg_type (msg) == type
        &&  (!request || (chorus_msg_request (msg) && streq (chorus_msg_request (msg), request))))
            return (chorus_msg_t *) zlistx_detach_cur (self->inbox);
    return NULL;
}

//  Runs the node's handlers (node may be NULL) and keeps our inbox served
//  until done (arg) returns true or timeout_ms passes; returns done's value
static inline bool
fake_peer_wait (fake_peer_t *self, chorus_node_t *node, test_done_fn *done, void *arg,
                int timeout_ms)
{
    int64_t end = zclock_mono () + timeout_ms;
    zpoller_t *poller = zpoller_new (self->router, NULL);
    if (node)
        zpoller_add (poller, chorus_node_socket (node));
    bool result = false;
    while (true) {
        fake_peer_pump (self);
        if ((result = done (arg)) || zclock_mono () >= end)
            break;
        zpoller_wait (poller, 10);
        if (node)
            chorus_node_dispatch (node);
    }
    zpoller_destroy (&poller);
    return result;
}

typedef struct {
    fake_peer_t *self;          //  whose inbox
    int type;                   //  the type wanted
    const char *request;        //  the request field wanted, or NULL
    chorus_msg_t *found;        //  what came
} fake_peer_want_t;

static inline bool
fake_peer_s_found (void *arg)
{
    fake_peer_want_t *want = (fake_peer_want_t *) arg;
    want->found = fake_peer_take (want->self, want->type, want->request);
    return want->found != NULL;
}

//  Waits for the next message of a type (and request, if set) from the
//  node, dispatching the node meanwhile; NULL on timeout. Caller owns it.
static inline chorus_msg_t *
fake_peer_recv (fake_peer_t *self, chorus_node_t *node, int type, const char *request,
                int timeout_ms)
{
    fake_peer_want_t want = {self, type, request, NULL};
    fake_peer_wait (self, node, fake_peer_s_found, &want, timeout_ms);
    return want.found;
}

typedef struct {
    fake_peer_t *self;          //  who waits
    const char *instance;       //  for this node's HELLO
} fake_peer_meeting_t;

static inline bool
fake_peer_s_met (void *arg)
{
    fake_peer_meeting_t *meeting = (fake_peer_meeting_t *) arg;
    return zhashx_lookup (meeting->self->hellos, meeting->instance) != NULL;
}

//  Says HELLO to a started node and waits for the node's own HELLO on our
//  ROUTER (it connects back to the endpoint we announced); 0 or -1
static inline int
fake_peer_meet (fake_peer_t *self, chorus_node_t *node, int timeout_ms)
{
    if (fake_peer_hello (self, chorus_node_endpoint (node)))
        return -1;
    fake_peer_meeting_t meeting = {self, chorus_node_instance (node)};
    return fake_peer_wait (self, node, fake_peer_s_met, &meeting, timeout_ms)? 0: -1;
}

//  An EVENT we publish: our identity, a fresh id that is also its
//  correlation, the time now; group NULL for the PUB copy
static inline chorus_msg_t *
fake_peer_event (fake_peer_t *self, uint64_t seq, const char *topic, const char *key,
                 const char *group, uint64_t attempt, const char *payload)
{
    chorus_msg_t *event = fake_peer_msg (self, CHORUS_MSG_EVENT);
    chorus_msg_set_service (event, self->service);
    chorus_msg_set_instance (event, self->instance);
    chorus_msg_set_seq (event, seq);
    chorus_msg_set_topic (event, topic);
    chorus_msg_set_key (event, key);
    chorus_msg_set_correlation (event, chorus_msg_id (event));
    chorus_msg_set_timestamp (event, zclock_time ());
    chorus_msg_set_group (event, group);
    chorus_msg_set_attempt (event, attempt);
    if (payload)
        chorus_msg_set_payload (event, payload, strlen (payload));
    return event;
}

//  A first attempt of a COMMAND; deadline 0 means none
static inline chorus_msg_t *
fake_peer_command (fake_peer_t *self, const char *service, const char *name,
                   const char *idempotency, uint64_t deadline, const char *payload)
{
    chorus_msg_t *command = fake_peer_msg (self, CHORUS_MSG_COMMAND);
    chorus_msg_set_service (command, service);
    chorus_msg_set_name (command, name);
    chorus_msg_set_idempotency (command, idempotency);
    chorus_msg_set_correlation (command, chorus_msg_id (command));
    chorus_msg_set_timestamp (command, zclock_time ());
    chorus_msg_set_deadline (command, deadline);
    chorus_msg_set_attempt (command, 1);
    if (payload)
        chorus_msg_set_payload (command, payload, strlen (payload));
    return command;
}

//  True if the message holds exactly this payload
static inline bool
fake_peer_payload_is (chorus_msg_t *msg, const char *text)
{
    return msg && chorus_msg_payload (msg) && chorus_msg_payload_size (msg) == strlen (text)
        && memcmp (chorus_msg_payload (msg), text, strlen (text)) == 0;
}

#endif
