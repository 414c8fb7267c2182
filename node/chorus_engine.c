/*  chorus_engine.c — the node engine: it owns the node's sockets and mesh
    state. It meets peers (seeds, gossip, beacon), keeps them alive with
    heartbeats, routes each message to delivery, commands or the observer,
    and hands work to the application's thread. It runs as a czmq actor in
    a thread of its own, or, for a node run inline, in turns the
    application's thread takes (chorus__engine_turn), the application
    then handing it requests, results and publishes by calls instead of
    over its pipes.
*/
#include "chorus_context.h"
#include "chorus_peer.h"
#include "chorus_peers.h"
#include "chorus_inbox.h"
#include "chorus_delivery.h"
#include "chorus_commands.h"
#include "chorus_observer.h"
#include "chorus_gate.h"
#include "chorus_keys.h"
#include "chorus_monitor.h"

#define S_ROUTER_BATCH 1000     //  messages read from the inbox per turn
#define S_TICK_MS 50            //  how often what cannot be timed is looked at
#define S_HOUSEKEEPING_MS 1000  //  trust, figures and inbox expiry: this often
#define S_CONNECTING_TICK_MS 5  //  while a new connection is coming up
#define S_INBOX_KEEP_MS (24 * 3600 * 1000ull)   //  dedupe records kept this long
#define S_EXPIRE_BATCH 1000     //  of which at most this many are looked at a time
#define S_EXPIRE_MS 10000       //  every this often, or at once while there are more
#define S_MAX_FRAME (CHORUS_MSG_MAX_BODY + 1024)    //  largest frame a socket takes

//  The engine owns the sockets and the classes, and wires them together:
//  each class gets the context, never the engine, and what one class tells
//  of (a peer met or gone, results from the application) the engine passes
//  to the others
struct _chorus__engine_t {
    chorus__context_t context;  //  what the classes share
    zsock_t *pipe;              //  control pipe to the node wrapper
    chorus__config_t *config;   //  configuration, owned by the wrapper
    chorus_store_t *store;      //  the node's store (shared with the wrapper)
    void *router;               //  our inbox (libzmq handle)
    void *pub;                  //  events to observers: an XPUB (libzmq handle)
    chorus__gate_t *inbox_gate; //  bounds the connections into router
    chorus__gate_t *pub_gate;   //  and into pub
    zactor_t *beacon;           //  UDP discovery, or NULL
    chorus__poller_t *poller;   //  everything we wait on
    char *endpoint;             //  our inbox endpoint, as announced
    char *pub_endpoint;         //  our PUB endpoint, as announced
    char start_error [256];     //  why the start failed, with the system's reason
    chorus__peers_t *peers;     //  peers met, and discovery
    chorus__inbox_t *inbox;     //  events for our group
    chorus__delivery_t *delivery;   //  our events to groups
    chorus__commands_t *commands;   //  commands sent and received
    chorus__observer_t *observer;   //  observing, or NULL
    chorus_msg_t *msg;          //  reusable message for receiving
    chorus__work_t *results;    //  results read from the application in one turn
    size_t results_max;         //  how many fit
    chorus_msg_t **published;   //  events taken from the hand-off in one turn
    zframe_t **published_bodies;    //  and their bodies
    bool terminated;            //  $TERM received, or the ZeroMQ context terminated
    uint64_t housekeeping_due;  //  when trust, figures and expiry are next looked at
    bool housekeeping_more;     //  the inbox has more to forget at once (kept: the due
                                //  times say the same when expiry is merely due)
    uint64_t expire_due;        //  when inbox records are next looked at for expiry
    bool damage_told;           //  the application was woken for damage
    char *inbox_bound;          //  the endpoint our inbox is bound to
    int datagrams;              //  what the poller returns for our UDP socket
    uint64_t last_tick;         //  when the classes last ticked (monotonic ms)
    size_t peers_copied;        //  live peers when the figures were last copied
    size_t evasive_copied;      //  and evasive ones
    int health_copied;          //  and our local health
    chorus__stats_topic_t *topics;  //  events published by topic, counted with /metrics on
    size_t topics_size;         //  topics counted apart (CHORUS_STATS_TOPICS at most)
    size_t topic_last;          //  the topic counted last, tried first
    uint64_t topics_other;      //  events on the topics past those
    uint64_t next;              //  when the next tick is due (monotonic ms)
};

//  --------------------------------------------------------------------------
//  What classes tell of

//  A peer met, changed or gone: each class that keeps work per peer hears
static void
s_on_peer (chorus__peer_t *peer, chorus__peer_event_t event, void *arg)
{
    chorus__engine_t *self = (chorus__engine_t *) arg;
    switch (event) {
        case CHORUS__PEER_JOINED:
            chorus__commands_peer_joined (self->commands, peer);
            if (self->observer && peer->met)
                chorus__observer_peer_joined (self->observer, peer);
            break;
        case CHORUS__PEER_CHANGED:
            chorus__delivery_peer_joined (self->delivery, peer);
            //  A member known from news has a PUB to read once met
            if (self->observer && peer->met)
                chorus__observer_peer_joined (self->observer, peer);
            break;
        case CHORUS__PEER_GONE:
            chorus__delivery_peer_gone (self->delivery, peer);
            chorus__commands_peer_gone (self->commands, peer);
            if (self->observer)
                chorus__observer_peer_gone (self->observer, peer);
            break;
        case CHORUS__PEER_HEAD:
            if (self->observer)
                chorus__observer_head (self->observer, peer, peer->head);
            break;
        case CHORUS__PEER_READY:
            //  Events that could not go while its connection came up go
            //  now, not at their group's next try
            chorus__delivery_peer_ready (self->delivery, peer);
            break;
    }
}

#define S_WORK_BATCHES 64      //  result batches read from the application per turn

//  Adds the records of one batch from the application to self->results;
//  returns how many there are now
static size_t
s_add_results (chorus__engine_t *self, const uint8_t *data, size_t size, size_t count)
{
    size_t pos = 0;
    chorus__work_t record;
    const char *text;
    while (chorus__batch_next (data, size, &pos, &record, &text)) {
        if (count == self->results_max) {
            self->results_max = self->results_max? self->results_max * 2: 256;
            self->results = (chorus__work_t *) realloc (self->results, self->results_max
                                                                       * sizeof (chorus__work_t));
            assert (self->results);
        }
        self->results [count++] = record;
    }
    return count;
}

//  Reads the application's result batches into self->results; returns how
//  many records
static size_t
s_read_results (chorus__engine_t *self)
{
    size_t count = 0;
    zmsg_t *msg;
    for (int batches = 0; batches < S_WORK_BATCHES
                       && (msg = chorus__recv_ready (self->context.work)); batches++) {
        zframe_t *kind = zmsg_first (msg);
        zframe_t *frame = zmsg_next (msg);
        if (kind && frame && zframe_streq (kind, "B"))
            count = s_add_results (self, zframe_data (frame), zframe_size (frame), count);
        zmsg_destroy (&msg);
    }
    return count;
}

static void
    s_record_results (chorus__engine_t *self, size_t count);
static uint64_t
    s_enter (chorus__engine_t *self);
static void
    s_after (chorus__engine_t *self, uint64_t turn);

//  Results from the application: every inbox record and reply of the
//  turn goes to the store in one write, and only then are the EVENT-ACKs
//  and REPLYs sent (recorded before answered, one disk write per turn)
static void
s_recv_results (chorus__engine_t *self)
{
    s_record_results (self, s_read_results (self));
}

void
chorus__engine_results (chorus__engine_t *self, chorus__batch_t *batch)
{
    uint64_t entered = s_enter (self);
    size_t count = s_add_results (self, batch->data, batch->size, 0);
    batch->size = batch->count = 0;
    s_record_results (self, count);
    s_after (self, entered);
}

void
chorus__engine_send (chorus__engine_t *self, chorus_msg_t *msg)
{
    uint64_t entered = s_enter (self);
    chorus__commands_send (self->commands, msg);
    s_after (self, entered);
}

static void
s_record_results (chorus__engine_t *self, size_t count)
{
    chorus__work_t *records = self->results;
    chorus_store_begin (self->store);
    for (size_t i = 0; i < count; i++) {
        chorus__work_t *record = &records [i];
        if (record->kind == 'A')
            chorus__inbox_handled (self->inbox, (chorus_msg_t *) record->first,
                                   (int) record->status);
        else
        if (record->kind == 'Y')
            chorus__commands_record (self->commands, (chorus_msg_t *) record->first,
                                     (chorus_msg_t *) record->second);
        else
        if (record->kind == 'o' && self->observer)
            chorus__observer_done (self->observer, (size_t) record->status);
    }
    bool recorded = chorus_store_commit (self->store) == 0;
    if (!recorded)
        chorus__context_warn (&self->context, W_STORE, "inbox: %s",
                              chorus_store_error (self->store));
    for (size_t i = 0; i < count; i++) {
        chorus__work_t *record = &records [i];
        if (record->kind == 'A')
            chorus__inbox_recorded (self->inbox, (chorus_msg_t *) record->first,
                                    (int) record->status, recorded);
        else
        if (record->kind == 'Y') {
            self->context.counters [C_COMMANDS_HANDLED]++;
            chorus__commands_replied (self->commands, (chorus_msg_t *) record->first,
                                      (chorus_msg_t *) record->second);
        }
    }
}

//  --------------------------------------------------------------------------
//  The inbox

//  The instance id in a routing id (a kind byte and 16 binary bytes)
static bool
s_routing_instance (zframe_t *routing_id, char instance [33])
{
    if (!routing_id || zframe_size (routing_id) != 17)
        return false;
    const uint8_t *data = zframe_data (routing_id);
    if (data [0] != 0x01)
        return false;   //  the one routing id form (protocol section 5)
    chorus__hex (data + 1, 16, instance);
    return true;
}

//  TRUNCATED carries exactly one of request and group, and a range
static bool
s_truncated_valid (chorus_msg_t *truncated)
{
    return (chorus_msg_request (truncated) != NULL) != (chorus_msg_group (truncated) != NULL)
        && chorus_msg_from (truncated) <= chorus_msg_to (truncated);
}

static void
s_on_message (chorus__engine_t *self, chorus__peer_t *peer)
{
    chorus_msg_t *msg = self->msg;
    switch (chorus_msg_type (msg)) {
        case CHORUS_MSG_PING:
        case CHORUS_MSG_PONG:
        case CHORUS_MSG_PING_REQ:
        case CHORUS_MSG_PING_ACK:
            //  Name the connection it came over, so that we doubt the peer
            //  as soon as it closes
            if (self->inbox_gate)
                chorus__gate_name (self->inbox_gate, chorus_msg_source_fd (msg), peer->instance);
            chorus__peers_probe_msg (self->peers, peer, msg);
            peer->head = chorus_msg_head (msg);
            s_on_peer (peer, CHORUS__PEER_HEAD, self);
            break;
        case CHORUS_MSG_EVENT:
            //  A node only sends the events it published (section 5.1)
            if (!streq (chorus_msg_instance (msg), peer->instance))
                chorus__context_forged (&self->context, peer, msg, "an event of another publisher");
            else
            if (chorus_msg_group (msg) && peer->grant
            &&  !chorus__grant_publish (peer->grant, chorus_msg_topic (msg)))
                chorus__context_forbidden (&self->context, peer, msg, "may not publish");
            else
            if (chorus_msg_group (msg))
                chorus__inbox_event (self->inbox, peer, &self->msg);
            else
            if (self->observer)
                chorus__observer_fetched (self->observer, peer, &self->msg);
            break;
        case CHORUS_MSG_EVENT_ACK:
            if (chorus_msg_status (msg) > CHORUS_ACK_REJECTED)
                chorus__context_error (&self->context, peer, msg, "bad-request",
                                       "EVENT-ACK status must be 0, 1 or 2");
            else
                chorus__delivery_ack (self->delivery, peer, msg);
            break;
        case CHORUS_MSG_FETCH:
            self->context.counters [C_FETCHES]++;
            chorus__delivery_fetch (self->delivery, peer, msg);
            break;
        case CHORUS_MSG_REPLAY:
            if (self->observer)
                chorus__observer_replay (self->observer, peer, msg);
            break;
        case CHORUS_MSG_TRUNCATED:
            if (!s_truncated_valid (msg))
                chorus__context_error (&self->context, peer, msg, "bad-request",
                                       "TRUNCATED needs exactly one of request and group, "
                                       "and from <= to");
            else
            if (chorus_msg_request (msg)) {
                if (self->observer)
                    chorus__observer_truncated (self->observer, peer, msg);
            }
            else
            if (streq (chorus_msg_group (msg), self->config->service)) {
                self->context.counters [C_TRUNCATED]++;
                chorus__context_work (&self->context, "ss88s", "X", peer->instance,
                                      chorus_msg_from (msg), chorus_msg_to (msg),
                                      chorus_msg_message (msg)?
                                      chorus_msg_message (msg): "");
            }
            break;
        case CHORUS_MSG_COMMAND:
            if (peer->grant && !chorus__grant_call (peer->grant, chorus_msg_service (msg),
                                                    chorus_msg_name (msg)))
                chorus__context_forbidden (&self->context, peer, msg, "may not call");
            else
                chorus__commands_received (self->commands, peer, &self->msg);
            break;
        case CHORUS_MSG_REPLY:
            if (chorus_msg_status (msg) > CHORUS_REPLY_ERROR)
                chorus__context_error (&self->context, peer, msg, "bad-request",
                                       "REPLY status must be 0 or 1");
            else
                chorus__commands_reply (self->commands, peer, &self->msg);
            break;
        case CHORUS_MSG_ERROR:
            self->context.counters [C_ERRORS_RECEIVED]++;
            chorus__context_warn (&self->context, W_ERROR, "ERROR %s from %s/%.8s about %s: %s",
                                  chorus_msg_code (msg), peer->service, peer->instance,
                                  chorus_msg_request (msg)? chorus_msg_request (msg): "-",
                                  chorus_msg_message (msg)? chorus_msg_message (msg): "");
            chorus__commands_error (self->commands, peer, msg);
            break;
        case CHORUS_MSG_BYE:
            chorus__peers_remove (self->peers, peer, CHORUS_PEER_LEFT);
            break;
    }
    if (!self->msg) {
        self->msg = chorus_msg_new (CHORUS_MSG_PING);
        chorus_msg_want_user_id (self->msg, self->config->keys != NULL);
    }
}

static void
s_recv_router (chorus__engine_t *self)
{
    //  The inbox has a receive timeout of 0: we read until it is empty
    for (int count = 0; count < S_ROUTER_BATCH; count++) {
        int rc = chorus_msg_recv (self->msg, self->router);
        if (rc == CHORUS_MSG_INTERRUPTED) {
            if (zmq_errno () == EAGAIN)
                chorus__poller_drained (self->poller, self->router);
            break;
        }
        if (rc == CHORUS_MSG_MALFORMED) {
            self->context.counters [C_MALFORMED]++;
            chorus__context_log (&self->context, "dropped malformed message: %s",
                                 chorus_msg_reason (self->msg));
            continue;
        }
        char instance [33];
        if (!s_routing_instance (chorus_msg_routing_id (self->msg), instance)) {
            self->context.counters [C_UNKNOWN_PEER]++;
            continue;
        }
        if (chorus_msg_type (self->msg) == CHORUS_MSG_HELLO) {
            self->context.counters [C_HELLOS]++;
            if (streq (chorus_msg_instance (self->msg), instance))
                chorus__peers_hello (self->peers, instance, self->msg);
            else
                self->context.counters [C_UNKNOWN_PEER]++;  //  claims another's identity
            continue;
        }
        chorus__peer_t *peer = chorus__context_peer (&self->context, instance);
        if (!peer || !peer->met) {
            //  Never met: a member known from news has not said HELLO yet,
            //  though it has met us (section 5)
            self->context.counters [C_UNKNOWN_PEER]++;
            if (peer)
                chorus__peers_unmet_spoke (self->peers, peer);
            continue;
        }
        //  On a secure mesh, its routing id is the peer's only over the
        //  connection of the key it met us with
        if (peer->key && !streq (chorus_msg_user_id (self->msg), peer->key)) {
            chorus__context_forged (&self->context, peer, self->msg, "came under its routing id "
                                    "from another key");
            continue;
        }
        chorus__peers_heard (self->peers, peer);
        s_on_message (self, peer);
    }
}

//  --------------------------------------------------------------------------
//  Start: bind, announce, meet the seeds

//  The endpoint to announce for one we bound: the advertised host, and for
//  the inbox the advertised port, when there are; otherwise a wildcard host
//  replaced by `host` (the beacon's interface, or the one that routes to
//  the first seed, or loopback)
static char *
s_announced (const char *bound, const char *host, const char *advertised, int advertised_port)
{
    const char *port = strrchr (bound, ':');
    if (advertised && advertised_port)
        return zsys_sprintf ("tcp://%s:%d", advertised, advertised_port);
    if (advertised)
        return zsys_sprintf ("tcp://%s%s", advertised, port? port: "");
    if (chorus__endpoint_wildcard (bound))
        return zsys_sprintf ("tcp://%s%s", host? host: "127.0.0.1", port? port: "");
    return strdup (bound);
}

//  A socket event, in words, for the application
static void
s_monitor_event (const char *event, const char *socket, const char *peer, const char *detail,
                 void *arg)
{
    chorus__engine_t *self = (chorus__engine_t *) arg;
    chorus__context_work (&self->context, "sssss", "M", event, socket, peer, detail);
}

static const char *
s_start (chorus__engine_t *self)
{
    chorus__config_t *config = self->config;
    snprintf (self->context.instance, sizeof (self->context.instance), "%s",
              chorus_store_instance (self->store));

    char *host = NULL;
    if (config->beacon_port > 0) {
        self->beacon = zactor_new (zbeacon, NULL);
        zsock_send (self->beacon, "si", "CONFIGURE", config->beacon_port);
        host = zstr_recv (self->beacon);
        if (!host || !*host) {
            zstr_free (&host);
            zactor_destroy (&self->beacon);
            return "no network interface for the UDP beacon";
        }
    }
    //  What we announce: told (--advertise), else found
    char advertised [272] = "";
    int advertised_port = 0;
    if (config->advertise
    &&  !chorus__advertise_parse (config->advertise, advertised, sizeof (advertised),
                                  &advertised_port, self->start_error,
                                  sizeof (self->start_error))) {
        zstr_free (&host);
        return self->start_error;
    }
    char routed [272];
    if (!host && !*advertised && chorus__endpoint_wildcard (config->listen)
    &&  zlist_size (config->seeds)
    &&  chorus__route_host ((const char *) zlist_first (config->seeds), routed, sizeof (routed)))
        host = strdup (routed);
    if (config->monitor)
        self->context.monitor = chorus__monitor_new (self->poller, s_monitor_event, self);
    chorus__keys_t *keys = config->keys;
    if (keys && chorus__keys_start (keys, self->start_error, sizeof (self->start_error))) {
        zstr_free (&host);
        return self->start_error;
    }
    if (keys)
        chorus_msg_want_user_id (self->msg, true);
    self->router = chorus__socket_new (ZMQ_ROUTER);
    if (!self->router) {
        zstr_free (&host);
        return "cannot create the inbox socket";
    }
    if (keys)
        chorus__keys_server (keys, self->router);
    zsock_set_router_handover (self->router, 1);
    zsock_set_rcvhwm (self->router, 100000);
    zsock_set_rcvtimeo (self->router, 0);
    zsock_set_maxmsgsize (self->router, S_MAX_FRAME);
    if (zmq_bind (self->router, config->listen) == -1) {
        zstr_free (&host);
        snprintf (self->start_error, sizeof (self->start_error),
                  "cannot bind the inbox endpoint: %s", zmq_strerror (zmq_errno ()));
        return self->start_error;
    }
    char *bound = zsock_last_endpoint (self->router);
    self->endpoint = s_announced (bound, host, *advertised? advertised: NULL, advertised_port);

    //  PUB on the same interface as the inbox (a wildcard too), on an
    //  ephemeral port. An XPUB, so that we read the subscriptions
    //  ourselves: each observer gets every event and filters, and no
    //  observer can grow our subscription table without bound
    char *pub_bind = strdup (bound);
    char *colon = strrchr (pub_bind, ':');
    if (colon && strncmp (pub_bind, "tcp://", 6) == 0)
        strcpy (colon, ":0");
    else {
        free (pub_bind);
        pub_bind = zsys_sprintf ("%s-pub", bound);
    }
    self->inbox_bound = bound;
    self->pub = chorus__socket_new (ZMQ_XPUB);
    if (!self->pub) {
        free (pub_bind);
        zstr_free (&host);
        return "cannot create the PUB socket";
    }
    if (keys)
        chorus__keys_server (keys, self->pub);
    zsock_set_sndhwm (self->pub, 10000);
    zsock_set_xpub_manual (self->pub, 1);
    zsock_set_rcvhwm (self->pub, 1000);
    zsock_set_maxmsgsize (self->pub, S_MAX_FRAME);
    if (zmq_bind (self->pub, pub_bind) == -1) {
        snprintf (self->start_error, sizeof (self->start_error),
                  "cannot bind the PUB endpoint %s: %s", pub_bind, zmq_strerror (zmq_errno ()));
        free (pub_bind);
        zstr_free (&host);
        return self->start_error;
    }
    free (pub_bind);
    bound = zsock_last_endpoint (self->pub);
    self->pub_endpoint = s_announced (bound, host, *advertised? advertised: NULL, 0);
    zstr_free (&bound);
    zstr_free (&host);

    //  Nothing but its handler reads the inbox, and nothing sends on it
    chorus__poller_add_quiet (self->poller, self->router);
    //  Quiet: its handler reads it, and a publish that sends on it says so
    chorus__poller_add_quiet (self->poller, self->pub);
    //  Every peer holds one connection into our inbox, and every observer
    //  one into our PUB; room beyond that is for nodes on their way in
    size_t peers = (size_t) config->max_peers;
    self->inbox_gate = chorus__gate_new (self->router, peers + (size_t) config->max_pending + 64,
                                         self->context.monitor, "inbox");
    self->pub_gate = chorus__gate_new (self->pub, peers + 64, self->context.monitor, "pub");
    if (!self->inbox_gate || !self->pub_gate)
        return "cannot watch the inbox and PUB connections";
    chorus__poller_add_quiet (self->poller, chorus__gate_socket (self->inbox_gate));
    chorus__poller_add_quiet (self->poller, chorus__gate_socket (self->pub_gate));
    chorus__peers_start (self->peers, self->endpoint, self->pub_endpoint, self->inbox_gate);
    //  Probes by datagram, on the inbox's host and port (section 6.1.1)
    int datagrams = chorus__peers_datagrams (self->peers, self->inbox_bound);
    if (datagrams >= 0)
        chorus__poller_add_fd (self->poller, datagrams, &self->datagrams);
    if (self->beacon) {
        int port = atoi (strrchr (self->endpoint, ':') + 1);
        chorus__peers_beacon (self->peers, self->beacon, port);
        zsock_send (self->beacon, "sb", "SUBSCRIBE", keys? "CHO\x02": "CHO\x01", 4);
        chorus__poller_add (self->poller, self->beacon);
    }
    for (char *seed = (char *) zlist_first (config->seeds); seed;
         seed = (char *) zlist_next (config->seeds))
        chorus__peers_add_seed (self->peers, seed);
    chorus__context_log (&self->context, "started at %s (pub %s)", self->endpoint,
                         self->pub_endpoint);
    return NULL;
}

//  --------------------------------------------------------------------------
//  Timers

//  A connection whose key is still trusted is kept
static bool
s_key_trusted (const char *key, void *arg)
{
    chorus__engine_t *self = (chorus__engine_t *) arg;
    return chorus__keys_lookup (self->config->keys, key) != NULL;
}

//  The trust directory changed: peers whose key is no longer trusted, or
//  no longer for their service, are cut off, and cannot come back
static void
s_trust_changed (chorus__engine_t *self)
{
    chorus__peers_trust_changed (self->peers);
    chorus__gate_cut (self->inbox_gate, s_key_trusted, self);
    chorus__gate_cut (self->pub_gate, s_key_trusted, self);
    //  Which read their events outside their handler
    chorus__poller_touched (self->poller, chorus__gate_socket (self->inbox_gate));
    chorus__poller_touched (self->poller, chorus__gate_socket (self->pub_gate));
}

//  The groups' lag, counted for the figures
typedef struct {
    chorus__stats_group_t groups [CHORUS_STATS_GROUPS];   //  counted
    size_t size;                //  how many
    bool cut;                   //  more groups than fit
} s_lag_t;

static void
s_copy_lag (const char *group, uint64_t pending, size_t instances, void *arg)
{
    s_lag_t *lag = (s_lag_t *) arg;
    (void) instances;
    if (lag->size == CHORUS_STATS_GROUPS) {
        lag->cut = true;
        return;
    }
    snprintf (lag->groups [lag->size].name, sizeof (lag->groups [lag->size].name), "%s", group);
    lag->groups [lag->size++].lag = pending;
}

//  The publish time of the first event scanned
static int
s_first_time (uint64_t seq, uint64_t timestamp, const void *body, size_t size, void *arg)
{
    (void) seq, (void) body, (void) size;
    *(uint64_t *) arg = timestamp;
    return 1;
}

//  Copies the figures /metrics shows (with the housekeeping, about once a
//  second)
static void
s_copy_stats (chorus__engine_t *self)
{
    chorus__stats_t *stats = self->config->stats;
    if (!stats)
        return;
    size_t evasive = chorus__peers_evasive (self->peers);
    size_t alive = zhashx_size (self->context.peers) - evasive;
    self->peers_copied = zhashx_size (self->context.peers);
    self->evasive_copied = evasive;
    self->health_copied = chorus__peers_health (self->peers);
    //  Counted outside the lock: a group absent since our restart is
    //  counted from the outbox
    s_lag_t lag;
    lag.size = 0;
    lag.cut = false;
    chorus__delivery_lag (self->delivery, s_copy_lag, &lag);
    uint64_t oldest = chorus__delivery_oldest_pending (self->delivery), published = 0;
    if (oldest)
        chorus_store_scan (self->context.store, oldest, 0, s_first_time, &published);
    pthread_mutex_lock (&stats->lock);
    memcpy (stats->groups, lag.groups, lag.size * sizeof (lag.groups [0]));
    stats->groups_size = lag.size;
    stats->groups_cut = lag.cut;
    stats->oldest_pending = published;
    if (self->topics_size)
        memcpy (stats->topics, self->topics, self->topics_size * sizeof (self->topics [0]));
    stats->topics_size = self->topics_size;
    stats->topics_other = self->topics_other;
    memcpy (stats->counters, self->context.counters, sizeof (self->context.counters));
    stats->peers_alive = alive;
    stats->peers_evasive = evasive;
    stats->local_health = self->health_copied;
    stats->copied = true;
    pthread_mutex_unlock (&stats->lock);
}

//  Once a second: the trust directory and the figures; every S_EXPIRE_MS
//  (at once while there are more), inbox records old enough to forget
static void
s_housekeeping (chorus__engine_t *self, uint64_t now)
{
    self->housekeeping_due = now + S_HOUSEKEEPING_MS;
    if (self->config->keys && chorus__keys_reload (self->config->keys))
        s_trust_changed (self);
    s_copy_stats (self);
    //  Records carry wall-clock times: they outlive the process
    uint64_t wall = chorus__now ();
    if (wall > S_INBOX_KEEP_MS && now >= self->expire_due) {
        self->expire_due = now + S_EXPIRE_MS;
        int forgotten = chorus_store_inbox_expire (self->store, wall - S_INBOX_KEEP_MS,
                                                   S_EXPIRE_BATCH);
        if (forgotten == -1)
            chorus__context_warn (&self->context, W_STORE, "inbox expiry: %s",
                                  chorus_store_error (self->store));
        else
        if (forgotten == S_EXPIRE_BATCH)
            self->housekeeping_due = self->expire_due = now + S_TICK_MS;  //  more: soon
        self->housekeeping_more = forgotten == S_EXPIRE_BATCH;
    }
}

static void
s_tick (chorus__engine_t *self)
{
    uint64_t now = chorus__mono ();
    self->last_tick = now;
    if (now + CHORUS__TICK_EARLY_MS >= self->housekeeping_due)
        s_housekeeping (self, now);
    chorus__peers_tick (self->peers, now);
    chorus__delivery_tick (self->delivery, now);
    chorus__commands_tick (self->commands, now);
    if (self->observer)
        chorus__observer_tick (self->observer, now);
}

//  When the next tick is due: the earliest timer of any class, so that an
//  idle node sleeps until it has something to do (no work on a fixed tick
//  that is not due); the regular tick while a class has work it cannot
//  time, sooner while a connection comes up
static uint64_t
s_next_tick (chorus__engine_t *self)
{
    uint64_t regular = self->last_tick + (chorus__peers_connecting (self->peers)?
                                          S_CONNECTING_TICK_MS: S_TICK_MS);
    uint64_t dues [4] = {
        chorus__peers_next_due (self->peers),
        chorus__delivery_next_due (self->delivery),
        chorus__commands_next_due (self->commands),
        self->observer? chorus__observer_next_due (self->observer): UINT64_MAX
    };
    //  Housekeeping is a chore: it waits a little for a tick that comes
    //  anyway, unless it has more to forget
    uint64_t next = self->housekeeping_due + (self->housekeeping_more? 0: CHORUS__TICK_LATE_MS);
    for (size_t i = 0; i < sizeof (dues) / sizeof (dues [0]); i++) {
        uint64_t due = dues [i] == CHORUS__DUE_TICK? regular: dues [i];
        if (due < next)
            next = due;
    }
    return next;
}

//  Connections that came to the inbox or the PUB, beyond the bound shut out
static void
s_gate (chorus__engine_t *self, chorus__gate_t *gate, const char *name)
{
    chorus__gate_report_t report;
    size_t refused = chorus__gate_recv (gate, &report);
    //  A peer whose connection into our inbox closed may be gone: probe it
    for (size_t i = 0; i < report.closed_size; i++)
        chorus__peers_doubt (self->peers, report.closed [i]);
    if (report.unauthorised) {
        //  Our ZAP handler knows the key and the address
        char address [64], key [41];
        size_t refusals = self->config->keys? chorus__keys_refusals (self->config->keys, address,
                                                  sizeof (address), key, sizeof (key)): 0;
        self->context.counters [C_UNAUTHORISED] += report.unauthorised;
        char last [160] = "";
        if (refusals)
            snprintf (last, sizeof (last), " (last: key %s from %s)", key, address);
        chorus__context_warn (&self->context, W_UNTRUSTED, "refused %zu connection%s to our %s: "
                              "key not in the trust directory%s", report.unauthorised,
                             report.unauthorised == 1? "": "s", name, last);
    }
    //  On a plaintext mesh a handshake broken off once is counted, not
    //  warned of: the peer may simply have gone away. On a secure mesh
    //  every refusal is told: it may be a plaintext peer
    if (self->config->keys && report.lone) {
        report.failed += report.lone;
        if (!report.broken_off && report.failure == 0) {
            report.failure = report.lone_failure;
            report.broken_off = true;
        }
    }
    else
        self->context.counters [C_HANDSHAKES_FAILED] += report.lone;
    if (report.failed) {
        self->context.counters [C_HANDSHAKES_FAILED] += report.failed;
        //  A plaintext peer may hang up on reading our greeting before we
        //  read its own: then all we know is that it broke off
        const char *mismatch = self->config->keys? "a plaintext peer on a secure mesh":
                                                   "a secure (CURVE) peer on a plaintext mesh";
        char why [160];
        if (report.broken_off)
            snprintf (why, sizeof (why), "the peer broke off the handshake (%s): %s, a peer "
                      "that expected another key, or one that went away",
                      strerror (report.failure), mismatch);
        else
        if (report.failure == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
            snprintf (why, sizeof (why), "%s", mismatch);
        else
            snprintf (why, sizeof (why), "the handshake failed (protocol error 0x%x)",
                      (unsigned) report.failure);
        chorus__context_warn (&self->context, W_HANDSHAKE, "refused %zu connection%s to our %s: %s",
                              report.failed, report.failed == 1? "": "s", name, why);
    }
    if (refused) {
        self->context.counters [C_CONNECTIONS_REFUSED] += refused;
        chorus__context_warn (&self->context, W_SHUT_OUT, "shut out %zu connection%s to our %s: "
                              "%zu open, the most it takes", refused, refused == 1? "": "s", name,
                             chorus__gate_open (gate));
    }
}

//  Subscriptions arriving on our XPUB: whatever prefix an observer asks
//  for, it gets every event (it filters), so the table holds one entry per
//  connection at most
static void
s_recv_subscriptions (chorus__engine_t *self)
{
    for (int count = 0; count < 1000; count++) {
        zmq_msg_t msg;
        zmq_msg_init (&msg);
        if (zmq_msg_recv (&msg, self->pub, ZMQ_DONTWAIT) == -1) {
            if (zmq_errno () == EAGAIN)
                chorus__poller_drained (self->poller, self->pub);
            zmq_msg_close (&msg);
            break;
        }
        bool subscribe = zmq_msg_size (&msg) > 0 && *(uint8_t *) zmq_msg_data (&msg) == 1;
        //  Which key each observer's connection is, so that a key revoked
        //  can be cut off
        const char *key = self->config->keys? zmq_msg_gets (&msg, "User-Id"): NULL;
        if (subscribe && key && *key && self->pub_gate)
            chorus__gate_tag (self->pub_gate, zmq_msg_get (&msg, ZMQ_SRCFD), key);
        zmq_msg_close (&msg);
        if (subscribe)      //  applies to the connection that sent it
            zmq_setsockopt (self->pub, ZMQ_SUBSCRIBE, "", 0);
    }
}

//  --------------------------------------------------------------------------
//  The control pipe and the work pipe

static void
s_reply_peers (chorus__engine_t *self)
{
    zmsg_t *reply = zmsg_new ();
    zhashx_t *peers = self->context.peers;
    zmsg_addstrf (reply, "%zu", zhashx_size (peers));   //  never an empty message
    for (chorus__peer_t *peer = (chorus__peer_t *) zhashx_first (peers); peer;
         peer = (chorus__peer_t *) zhashx_next (peers)) {
        zmsg_addstr (reply, peer->service);
        zmsg_addstr (reply, peer->instance);
        zmsg_addstr (reply, peer->endpoint);
        zmsg_addstr (reply, peer->pub_endpoint);
        char *subs = chorus__peer_subs_text (peer);
        zmsg_addstr (reply, subs);
        free (subs);
        zmsg_addstrf (reply, "%d", peer->evasive? CHORUS_PEER_EVASIVE: CHORUS_PEER_ALIVE);
        zmsg_addstrf (reply, "%" PRIu64, chorus__peer_seen_at (peer));
        zmsg_addstrf (reply, "%" PRIu64, peer->head);
        zmsg_addstr (reply, peer->key? peer->key: "");
    }
    zmsg_send (&reply, self->pipe);
}

static void
s_add_pending (const char *group, uint64_t pending, size_t instances, void *arg)
{
    zmsg_t *reply = (zmsg_t *) arg;
    zmsg_addstr (reply, group);
    zmsg_addstrf (reply, "%" PRIu64, pending);
    zmsg_addstrf (reply, "%zu", instances);
}

//  The groups with deliveries not yet acknowledged, as triples of frames
static void
s_reply_pending (chorus__engine_t *self)
{
    zmsg_t *reply = zmsg_new ();
    zmsg_addstr (reply, "PENDING");     //  never an empty message
    chorus__delivery_pending (self->delivery, s_add_pending, reply);
    zmsg_send (&reply, self->pipe);
}

static void
s_subscribe (chorus__engine_t *self, const char *prefix)
{
    uint64_t since = 0;
    int rc = chorus_store_subscription (self->store, prefix, chorus__now (),
                                        self->config->start_earliest, &since);
    if (rc == 0)
        chorus__peers_subscribe (self->peers, prefix, since,
                                 self->config->durable? CHORUS_SUB_DURABLE: 0);
    zsock_send (self->pipe, "i", rc);
}

static void
s_observe (chorus__engine_t *self, const char *prefix, int earliest)
{
    if (!self->observer) {
        self->observer = chorus__observer_new (&self->context);
        chorus__peers_observe (self->peers);
    }
    chorus__observer_add (self->observer, prefix, earliest != 0);
    zsock_send (self->pipe, "i", 0);
}

//  Counts an event published on a topic, for /metrics: the first
//  CHORUS_STATS_TOPICS topics apart, the rest together, so that the
//  series stay few whatever topics an application makes up
static void
s_count_topic (chorus__engine_t *self, const char *topic)
{
    if (!topic)
        return;
    if (!self->topics) {
        self->topics = (chorus__stats_topic_t *) calloc (CHORUS_STATS_TOPICS,
                                                         sizeof (chorus__stats_topic_t));
        if (!self->topics)
            return;
    }
    //  Most publishers publish on one topic at a time: the last one first
    if (self->topics_size && streq (self->topics [self->topic_last].name, topic)) {
        self->topics [self->topic_last].published++;
        return;
    }
    for (size_t i = 0; i < self->topics_size; i++)
        if (streq (self->topics [i].name, topic)) {
            self->topics [i].published++;
            self->topic_last = i;
            return;
        }
    if (self->topics_size == CHORUS_STATS_TOPICS) {
        self->topics_other++;
        return;
    }
    chorus__stats_topic_t *entry = &self->topics [self->topics_size];
    snprintf (entry->name, sizeof (entry->name), "%s", topic);
    entry->published = 1;
    self->topic_last = self->topics_size++;
}

//  Events the application has published (durable already): to PUB as
//  stored, then to the groups
static void
s_on_published (chorus__engine_t *self)
{
    chorus__handoff_t *handoff = self->config->handoff;
    if (!self->published) {
        self->published = (chorus_msg_t **) calloc (handoff->max, sizeof (chorus_msg_t *));
        self->published_bodies = (zframe_t **) calloc (handoff->max, sizeof (zframe_t *));
        assert (self->published && self->published_bodies);
    }
    size_t count = chorus__handoff_take (handoff, self->published, self->published_bodies);
    for (size_t i = 0; i < count; i++) {
        self->context.counters [C_PUBLISHED]++;
        if (self->config->stats)
            s_count_topic (self, chorus_msg_topic (self->published [i]));
        zframe_t *copy = zframe_dup (self->published_bodies [i]);
        chorus_msg_send_encoded (self->published [i], &copy, self->pub);
    }
    if (count)
        chorus__poller_touched (self->poller, self->pub);   //  a send may read its signals
    chorus__delivery_published (self->delivery, self->published, self->published_bodies, count);
}

static void
s_on_request (chorus__engine_t *self, zmsg_t *request)
{
    char *command = zmsg_popstr (request);
    if (!command)
        ;
    else
    if (streq (command, "$TERM"))
        self->terminated = true;
    else
    if (streq (command, "START")) {
        const char *error = s_start (self);
        zsock_send (self->pipe, "isss", error? -1: 0, error? error: self->context.instance,
                    error? "": self->endpoint, error? "": self->pub_endpoint);
    }
    else
    if (streq (command, "PUBLISHED"))
        s_on_published (self);
    else
    if (streq (command, "SEND")) {
        zframe_t *frame = zmsg_pop (request);
        chorus_msg_t *msg = *(chorus_msg_t **) zframe_data (frame);
        zframe_destroy (&frame);
        chorus__commands_send (self->commands, msg);
    }
    else
    if (streq (command, "SUBSCRIBE")) {
        char *prefix = zmsg_popstr (request);
        s_subscribe (self, prefix);
        zstr_free (&prefix);
    }
    else
    if (streq (command, "OBSERVE")) {
        char *prefix = zmsg_popstr (request);
        char *earliest = zmsg_popstr (request);
        s_observe (self, prefix, earliest && streq (earliest, "1"));
        zstr_free (&prefix);
        zstr_free (&earliest);
    }
    else
    if (streq (command, "HANDLE")) {
        char *name = zmsg_popstr (request);
        chorus__commands_handle (self->commands, name);
        zstr_free (&name);
    }
    else
    if (streq (command, "PEERS"))
        s_reply_peers (self);
    else
    if (streq (command, "PENDING"))
        s_reply_pending (self);
    else
    if (streq (command, "UNACKED"))
        zsock_send (self->pipe, "8", (uint64_t) chorus__delivery_unacked (self->delivery));
    else
    if (streq (command, "TRIM"))
        zsock_send (self->pipe, "i", chorus__delivery_retain (self->delivery, chorus__now ())
                                     ? 1: 0);
    else
    if (streq (command, "COUNTER")) {
        char *name = zmsg_popstr (request);
        uint64_t value = 0;
        for (int i = 0; i < C_COUNTERS; i++)
            if (name && streq (name, chorus__counter_names [i]))
                value = self->context.counters [i];
        zsock_send (self->pipe, "8", value);
        zstr_free (&name);
    }
    zstr_free (&command);
    zmsg_destroy (&request);
}

#define S_PIPE_BATCH 1000       //  requests read from the wrapper per turn

static void
s_recv_pipe (chorus__engine_t *self)
{
    zmsg_t *request = zmsg_recv (self->pipe);
    if (!request) {
        self->terminated = true;
        return;
    }
    //  Then what else is queued, without a poll per request
    for (int count = 0; request; count++) {
        s_on_request (self, request);
        request = count < S_PIPE_BATCH && !self->terminated? chorus__recv_ready (self->pipe)
                                                           : NULL;
    }
}

//  --------------------------------------------------------------------------
//  The actor

chorus__engine_t *
chorus__engine_new (zsock_t *pipe, chorus__config_t *config)
{
    chorus__engine_t *self = (chorus__engine_t *) zmalloc (sizeof (chorus__engine_t));
    self->pipe = pipe;
    self->config = config;
    self->store = config->store;
    chorus__context_init (&self->context, config, config->store);
    zsock_t *work = zsock_new (ZMQ_PAIR);
    zsock_set_sndhwm (work, 0);
    zsock_set_rcvhwm (work, 0);
    zsock_connect (work, "%s", config->work_endpoint);
    self->context.work = work;
    //  A signal is the application's business: the engine stops only on
    //  $TERM, so that calls made after Ctrl-C still get answers (a wait a
    //  signal breaks is a wait that ends early)
    //  Run inline, the application's thread hands requests, results and
    //  publishes over by calls (chorus__engine_serve and the rest): the
    //  pipes are not polled, which costs a look at each per wait
    self->poller = chorus__poller_new ();
    if (!config->inline_work) {
        chorus__poller_add (self->poller, pipe);
        chorus__poller_add (self->poller, work);
    }
    self->context.poller = self->poller;
    self->msg = chorus_msg_new (CHORUS_MSG_PING);
    self->peers = chorus__peers_new (&self->context, s_on_peer, self);
    self->inbox = chorus__inbox_new (&self->context);
    self->delivery = chorus__delivery_new (&self->context);
    self->commands = chorus__commands_new (&self->context);
    return self;
}

void
chorus__engine_destroy (chorus__engine_t **self_p)
{
    chorus__engine_t *self = *self_p;
    if (!self)
        return;
    //  Results the application sent before we were told to stop are
    //  recorded and answered, so that work done is not done again; run
    //  inline, events published since the last turn go out first too, as
    //  a PUBLISHED ahead of $TERM on the pipe would have
    if (self->router)
        s_recv_results (self);
    if (self->router && self->config->inline_work
    &&  chorus__handoff_pending (self->config->handoff))
        s_on_published (self);
    //  The acknowledgements those results owe go before the BYE: collected
    //  for a publisher that reads lists, they would be lost, and the events
    //  moved to another instance and handled again
    if (self->inbox)
        chorus__inbox_flush (self->inbox);
    //  Say goodbye, so that peers move our work at once
    if (self->router) {
        chorus_msg_t *bye = chorus__context_msg (&self->context, CHORUS_MSG_BYE);
        //  Over a copy of the ids: a send may greet first, and the HELLO
        //  walks the peer table itself
        zlistx_t *instances = zhashx_keys (self->context.peers);
        for (const char *instance = (const char *) zlistx_first (instances); instance;
             instance = (const char *) zlistx_next (instances)) {
            chorus__peer_t *peer = chorus__context_peer (&self->context, instance);
            if (peer && peer->dealer) {
                //  What is queued to a connected peer (acknowledgements,
                //  replies, a TRUNCATED, this BYE) gets up to a second to
                //  leave; nothing waits for a peer that is not connected
                zsock_set_linger (peer->dealer, 1000);
                chorus__peer_send (peer, bye);
            }
        }
        zlistx_destroy (&instances);
        chorus_msg_destroy (&bye);
    }
    if (self->beacon) {
        chorus__peers_beacon (self->peers, self->beacon, 0);
        zactor_destroy (&self->beacon);
    }
    chorus__observer_destroy (&self->observer);
    chorus__commands_destroy (&self->commands);
    chorus__delivery_destroy (&self->delivery);
    chorus__inbox_destroy (&self->inbox);
    chorus__peers_destroy (&self->peers);
    chorus__monitor_destroy (&self->context.monitor);   //  its sockets are closed
    chorus__poller_destroy (&self->poller);
    chorus__gate_destroy (&self->inbox_gate);
    chorus__gate_destroy (&self->pub_gate);
    chorus__socket_destroy (&self->router);
    chorus__socket_destroy (&self->pub);
    if (self->config->keys)
        chorus__keys_stop (self->config->keys);     //  our sockets are closed
    //  Work that will never run now: results the application sent that we
    //  did not read, and a batch we did not send
    chorus__batch_discard_queued (self->context.work);
    zsock_destroy (&self->context.work);
    chorus__context_fini (&self->context);
    chorus_msg_destroy (&self->msg);
    free (self->results);
    free (self->published);
    free (self->published_bodies);
    free (self->topics);
    free (self->endpoint);
    free (self->pub_endpoint);
    zstr_free (&self->inbox_bound);
    free (self);
    *self_p = NULL;
}

//  What every entry into the engine starts with, a turn's after its wait
//  and a call from the application's thread (an inline engine's): timers
//  found long overdue mean we were stalled (by a long handler, inline), and
//  our peers must not pay for it (protocol section 6.1). Returns now, or 0
//  before start
static uint64_t
s_enter (chorus__engine_t *self)
{
    uint64_t now = self->router? chorus__mono (): 0;
    if (self->router && self->next)
        chorus__peers_woke (self->peers, self->next, now);
    return now;
}

//  What every entry ends with: the chores due, the figures, and the work
//  for the application sent. turn is when the entry began (0: before
//  start)
static void
s_after (chorus__engine_t *self, uint64_t turn)
{
    //  When to wake next, with what this turn set going. A wake for a
    //  message also does the chores due within CHORUS__TICK_EARLY_MS, if
    //  no tick has come for about their period: they then seldom need a
    //  wake of their own
    uint64_t now = chorus__mono ();
    if (self->router && (now >= (self->next = s_next_tick (self))
                      || now + CHORUS__TICK_EARLY_MS >= self->last_tick + S_HOUSEKEEPING_MS)) {
        s_tick (self);
        self->next = s_next_tick (self);
    }
    //  A peer met, lost, suspected or cleared shows in the figures at
    //  once, not at the next housekeeping
    if (self->router && self->config->stats
    &&  (chorus__peers_evasive (self->peers) != self->evasive_copied
    ||   chorus__peers_health (self->peers) != self->health_copied
    ||   zhashx_size (self->context.peers) != self->peers_copied))
        s_copy_stats (self);
    //  Damage found in our store stops the application at once, not
    //  at its next wake (it looks at the store before its work)
    if (!self->damage_told && chorus_store_damaged (self->store)) {
        self->damage_told = true;
        chorus__context_work (&self->context, "s", "D");
    }
    if (self->inbox)
        chorus__inbox_flush (self->inbox);
    chorus__context_flush (&self->context);
    //  A turn that took long was a stall too: stopped (SIGSTOP) or
    //  starved while we worked, we read no answers meanwhile, and the
    //  wait that follows starts on time
    if (self->router && turn)
        chorus__peers_woke (self->peers, turn, chorus__mono ());
}

//  How long the engine may wait before its next tick (ms); -1 before
//  START: no inbox, no classes at work
static int
s_wait_ms (chorus__engine_t *self)
{
    if (!self->router)
        return -1;
    uint64_t now = chorus__mono ();
    return now >= self->next? 0: self->next - now > INT_MAX? INT_MAX: (int) (self->next - now);
}

int
chorus__engine_turn (chorus__engine_t *self, int max_wait)
{
    if (self->terminated)
        return -1;
    int timeout = s_wait_ms (self);
    if (max_wait >= 0 && (timeout < 0 || timeout > max_wait))
        timeout = max_wait;
    //  Run inline, events published since the last turn are this turn's
    if (self->config->inline_work && chorus__handoff_pending (self->config->handoff)) {
        uint64_t entered = s_enter (self);
        s_on_published (self);
        s_after (self, entered);
        return 1;
    }
    void *which = chorus__poller_wait (self->poller, timeout);
    uint64_t turn = s_enter (self);
    if (which == self->pipe)
        s_recv_pipe (self);
    else
    if (which == self->context.work)
        s_recv_results (self);
    else
    if (which && which == self->router)     //  no inbox before START
        s_recv_router (self);
    else
    if (which && which == self->pub)
        s_recv_subscriptions (self);
    else
    if (which && self->inbox_gate && which == chorus__gate_socket (self->inbox_gate))
        s_gate (self, self->inbox_gate, "inbox");
    else
    if (which && self->pub_gate && which == chorus__gate_socket (self->pub_gate))
        s_gate (self, self->pub_gate, "PUB");
    else
    if (which == &self->datagrams)
        chorus__peers_recv_datagrams (self->peers, self->msg);
    else
    if (self->beacon && which == (void *) self->beacon)
        chorus__peers_recv_beacon (self->peers, self->beacon);
    else
    if (which && self->observer && chorus__observer_recv (self->observer, which))
        ;
    else
    if (which && self->context.monitor && chorus__monitor_recv (self->context.monitor, which))
        ;
    else
    if (chorus__poller_terminated (self->poller)) {
        self->terminated = true;    //  no turn can follow: every entry says so
        return -1;
    }
    s_after (self, turn);
    return self->terminated? -1: which? 1: 0;
}

int
chorus__engine_fds (chorus__engine_t *self, int *fds, size_t max, int *timeout_ms)
{
    if (self->terminated)
        return -1;
    int count = chorus__poller_prepare (self->poller, fds, max);
    if (count < 0 && chorus__poller_terminated (self->poller)) {
        self->terminated = true;    //  as a turn would: no turn can follow
        return -1;
    }
    if (count < 0 || chorus__handoff_pending (self->config->handoff)) {
        *timeout_ms = 0;    //  something is ready: the next turn takes it
        return count < 0? 0: count;
    }
    *timeout_ms = s_wait_ms (self);
    return count;
}

void
chorus__engine_serve (chorus__engine_t *self)
{
    uint64_t entered = s_enter (self);
    zmsg_t *request;
    while (!self->terminated && (request = chorus__recv_ready (self->pipe)))
        s_on_request (self, request);
    if (chorus__handoff_pending (self->config->handoff))
        s_on_published (self);
    s_after (self, entered);
}

void
chorus__engine_actor (zsock_t *pipe, void *args)
{
    chorus__engine_t *self = chorus__engine_new (pipe, (chorus__config_t *) args);
    zsock_signal (pipe, 0);
    while (chorus__engine_turn (self, -1) >= 0)
        ;
    chorus__context_flush (&self->context);    //  the wrapper frees what it holds
    chorus__engine_destroy (&self);
}
