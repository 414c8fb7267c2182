/*  chorus_engine.c — the node engine: a czmq actor that owns the node's
    sockets and mesh state. It meets peers (seeds, gossip, beacon), keeps
    them alive with heartbeats, routes each message to delivery, commands
    or the observer, and hands work to the application's thread.
*/
#include "chorus_engine.h"

#include <stdarg.h>

const char *chorus__counter_names [C_COUNTERS] = {
    "malformed", "unknown_peer", "published", "delivered", "handled", "duplicates",
    "redelivered", "commands_sent", "commands_handled", "replies", "timeouts", "fetches",
    "truncated", "observed", "expired_commands", "fetched",
};

#define S_ROUTER_BATCH 1000     //  messages read from the inbox per turn
#define S_TICK_MS 50            //  timer resolution
#define S_PENDING_MS 5000       //  how long a connection waits for the peer's HELLO
#define S_INBOX_KEEP_MS (24 * 3600 * 1000ull)   //  dedupe records kept this long

//  --------------------------------------------------------------------------
//  Small services for the other classes

uint64_t
chorus__engine_now (chorus__engine_t *self)
{
    return chorus__now ();
}

void
chorus__engine_log (chorus__engine_t *self, const char *format, ...)
{
    if (!self->config->verbose)
        return;
    va_list args;
    va_start (args, format);
    char *text = zsys_vprintf (format, args);
    va_end (args);
    zsys_debug ("chorus %s/%.8s: %s", self->config->service,
                self->instance? self->instance: "-", text);
    free (text);
}

chorus_msg_t *
chorus__engine_msg (chorus__engine_t *self, int type)
{
    chorus_msg_t *msg = chorus_msg_new (type);
    char id [33];
    chorus__new_id (id);
    chorus_msg_set_id (msg, id);
    return msg;
}

chorus__peer_t *
chorus__engine_peer (chorus__engine_t *self, const char *instance)
{
    return instance? (chorus__peer_t *) zhashx_lookup (self->peers, instance): NULL;
}

int
chorus__engine_send (chorus__engine_t *self, chorus__peer_t *peer, chorus_msg_t *msg)
{
    if (!peer || !peer->dealer)
        return -1;
    return chorus_msg_send (msg, peer->dealer);
}

void
chorus__engine_hand (chorus__engine_t *self, char kind, chorus_msg_t *msg, const char *text)
{
    chorus__batch_add (&self->handover, kind, 0, msg, NULL, text);
}

void
chorus__engine_flush (chorus__engine_t *self)
{
    chorus__batch_send (&self->handover, self->work);
}

int
chorus__engine_work (chorus__engine_t *self, const char *picture, ...)
{
    chorus__engine_flush (self);    //  work reaches the application in order
    va_list args;
    va_start (args, picture);
    int rc = zsock_vsend (self->work, picture, args);
    va_end (args);
    return rc;
}

//  --------------------------------------------------------------------------
//  Subscriptions

static void
s_subs_free (chorus__sub_t **subs_p, size_t *size_p)
{
    for (size_t i = 0; i < *size_p; i++)
        free ((*subs_p) [i].prefix);
    free (*subs_p);
    *subs_p = NULL;
    *size_p = 0;
}

static void
s_subs_add (chorus__sub_t **subs_p, size_t *size_p, const char *prefix, uint64_t since,
            uint64_t flags)
{
    *subs_p = (chorus__sub_t *) realloc (*subs_p, (*size_p + 1) * sizeof (chorus__sub_t));
    assert (*subs_p);
    chorus__sub_t *sub = &(*subs_p) [(*size_p)++];
    sub->prefix = strdup (prefix);
    sub->since = since;
    sub->flags = flags;
}

//  --------------------------------------------------------------------------
//  Sockets to peers

static zsock_t *
s_dealer_new (chorus__engine_t *self, const char *endpoint, uint8_t kind)
{
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    if (!dealer)
        return NULL;
    //  Routing id: a kind byte then our binary instance id, so the peer's
    //  ROUTER knows who speaks (ZRE's interconnection)
    uint8_t routing_id [17];
    routing_id [0] = kind;
    for (int i = 0; i < 16; i++)
        sscanf (self->instance + 2 * i, "%2hhx", &routing_id [1 + i]);
    zmq_setsockopt (zsock_resolve (dealer), ZMQ_ROUTING_ID, routing_id, sizeof (routing_id));
    zsock_set_sndhwm (dealer, 100000);
    zsock_set_sndtimeo (dealer, 0);     //  the engine never blocks on a peer
    zsock_set_linger (dealer, 0);
    if (zsock_connect (dealer, "%s", endpoint)) {
        zsock_destroy (&dealer);
        return NULL;
    }
    return dealer;
}

static chorus_msg_t *
s_hello (chorus__engine_t *self)
{
    chorus_msg_t *hello = chorus__engine_msg (self, CHORUS_MSG_HELLO);
    chorus_msg_set_service (hello, self->config->service);
    chorus_msg_set_instance (hello, self->instance);
    chorus_msg_set_endpoint (hello, self->endpoint);
    chorus_msg_set_pub_endpoint (hello, self->pub_endpoint);
    chorus_msg_set_generation (hello, self->generation);
    chorus_msg_set_head (hello, chorus_store_head (self->store));
    size_t listed = 0;
    for (chorus__peer_t *peer = (chorus__peer_t *) zhashx_first (self->peers);
         peer && listed < CHORUS_MSG_MAX_LIST; peer = (chorus__peer_t *) zhashx_next (self->peers)) {
        chorus_msg_add_peers (hello, peer->endpoint);
        listed++;
    }
    for (size_t i = 0; i < self->subs_size; i++)
        chorus_msg_add_subscription (hello, self->subs [i].prefix, self->subs [i].since,
                                     self->subs [i].flags);
    char started [24];
    snprintf (started, sizeof (started), "%" PRIu64, self->started);
    chorus_msg_set_header (hello, "chorus.started", started);
    chorus_msg_set_header (hello, "chorus.mesh", self->config->mesh);
    return hello;
}

static void
s_send_hello (chorus__engine_t *self, zsock_t *dealer)
{
    chorus_msg_t *hello = s_hello (self);
    chorus_msg_send (hello, dealer);
    chorus_msg_destroy (&hello);
}

//  A connection opened to an endpoint we heard of, awaiting the peer's HELLO
typedef struct {
    zsock_t *dealer;            //  the connection
    uint64_t since;             //  when it was opened
} s_pending_t;

//  Opens a connection to an endpoint we heard of and says HELLO on it
static void
s_connect_pending (chorus__engine_t *self, const char *endpoint)
{
    if (streq (endpoint, self->endpoint) || zhashx_lookup (self->pending, endpoint))
        return;
    for (chorus__peer_t *peer = (chorus__peer_t *) zhashx_first (self->peers); peer;
         peer = (chorus__peer_t *) zhashx_next (self->peers))
        if (streq (peer->endpoint, endpoint))
            return;
    zsock_t *dealer = s_dealer_new (self, endpoint, 0x01);
    if (!dealer)
        return;
    chorus__engine_log (self, "connecting to %s", endpoint);
    s_send_hello (self, dealer);
    s_pending_t *pending = (s_pending_t *) zmalloc (sizeof (s_pending_t));
    pending->dealer = dealer;
    pending->since = chorus__now ();
    zhashx_insert (self->pending, endpoint, pending);
}

//  Forgets a pending connection; returns its socket unless destroy is set
static zsock_t *
s_pending_drop (chorus__engine_t *self, const char *endpoint, bool destroy)
{
    s_pending_t *pending = (s_pending_t *) zhashx_lookup (self->pending, endpoint);
    if (!pending)
        return NULL;
    zsock_t *dealer = pending->dealer;
    if (destroy)
        zsock_destroy (&dealer);
    zhashx_delete (self->pending, endpoint);
    free (pending);
    return dealer;
}

//  --------------------------------------------------------------------------
//  Peers

static void
s_peer_destroy (chorus__peer_t **peer_p)
{
    chorus__peer_t *peer = *peer_p;
    if (peer) {
        zsock_destroy (&peer->dealer);
        free (peer->instance);
        free (peer->service);
        free (peer->endpoint);
        free (peer->pub_endpoint);
        s_subs_free (&peer->subs, &peer->subs_size);
        free (peer);
        *peer_p = NULL;
    }
}

//  A peer's subscription prefixes, comma-separated; the caller frees it
static char *
s_peer_subs_text (chorus__peer_t *peer)
{
    char *subs = NULL;
    size_t length = 0;
    FILE *stream = open_memstream (&subs, &length);
    for (size_t i = 0; i < peer->subs_size; i++)
        fprintf (stream, "%s%s", i? ",": "", peer->subs [i].prefix);
    fclose (stream);
    return subs;
}

static void
s_peer_report (chorus__engine_t *self, chorus__peer_t *peer, chorus_peer_state_t state)
{
    char *subs = s_peer_subs_text (peer);
    chorus__engine_work (self, "sisssss88", "P", (int) state, peer->service, peer->instance,
                         peer->endpoint, peer->pub_endpoint, subs, peer->last_seen, peer->head);
    free (subs);
}

//  Forgets a peer: its work moves elsewhere and the application is told
static void
s_peer_remove (chorus__engine_t *self, chorus__peer_t *peer, chorus_peer_state_t state)
{
    chorus__engine_log (self, "peer %s/%.8s %s", peer->service, peer->instance,
                        state == CHORUS_PEER_LEFT? "left": "expired");
    zhashx_delete (self->peers, peer->instance);   //  out of the table before reassigning
    chorus__delivery_peer_gone (self->delivery, peer);
    chorus__commands_peer_gone (self->commands, peer);
    if (self->observer)
        chorus__observer_peer_gone (self->observer, peer);
    s_peer_report (self, peer, state);
    s_peer_destroy (&peer);
    self->announce = true;
}

static void
s_peer_set_subs (chorus__peer_t *peer, chorus_msg_t *hello)
{
    s_subs_free (&peer->subs, &peer->subs_size);
    for (size_t i = 0; i < chorus_msg_subscriptions (hello); i++) {
        uint64_t since, flags;
        const char *prefix = chorus_msg_subscription (hello, i, &since, &flags);
        s_subs_add (&peer->subs, &peer->subs_size, prefix, since, flags);
    }
}

static bool
s_lists_endpoint (chorus_msg_t *hello, const char *endpoint)
{
    zlist_t *peers = chorus_msg_peers (hello);
    for (char *item = peers? (char *) zlist_first (peers): NULL; item;
         item = (char *) zlist_next (peers))
        if (streq (item, endpoint))
            return true;
    return false;
}

static void
s_on_hello (chorus__engine_t *self, const char *instance, chorus_msg_t *hello)
{
    if (streq (instance, self->instance))
        return;     //  we reached ourselves through a seed or gossip
    //  Nodes of another mesh on the same hosts (a port reused by another
    //  mesh's node, a stale seed) are not peers of ours
    const char *mesh = chorus_msg_header (hello, "chorus.mesh");
    if (!streq (mesh? mesh: "default", self->config->mesh)) {
        self->counters [C_UNKNOWN_PEER]++;
        return;
    }
    const char *started_text = chorus_msg_header (hello, "chorus.started");
    uint64_t started = started_text? strtoull (started_text, NULL, 10): 0;
    chorus__peer_t *peer = chorus__engine_peer (self, instance);
    if (peer && peer->started != started) {
        //  The same instance started again: it remembers nothing of us
        chorus__engine_log (self, "peer %.8s restarted", instance);
        s_peer_remove (self, peer, CHORUS_PEER_EXPIRED);
        peer = NULL;
    }
    const char *endpoint = chorus_msg_endpoint (hello);
    bool joined = false;
    if (!peer) {
        peer = (chorus__peer_t *) zmalloc (sizeof (chorus__peer_t));
        peer->instance = strdup (instance);
        peer->service = strdup (chorus_msg_service (hello));
        peer->endpoint = strdup (endpoint);
        peer->pub_endpoint = strdup (chorus_msg_pub_endpoint (hello));
        peer->started = started;
        //  Reuse the connection we opened to this endpoint, if any
        if (zhashx_lookup (self->pending, endpoint))
            peer->dealer = s_pending_drop (self, endpoint, false);
        else
        if (zhashx_lookup (self->seeds, endpoint)) {
            peer->dealer = (zsock_t *) zhashx_lookup (self->seeds, endpoint);
            zhashx_update (self->seeds, endpoint, NULL);
        }
        else
            peer->dealer = s_dealer_new (self, endpoint, 0x01);
        if (!peer->dealer) {
            s_peer_destroy (&peer);
            return;
        }
        zhashx_insert (self->peers, peer->instance, peer);
        s_send_hello (self, peer->dealer);
        self->announce = true;
        joined = true;
        chorus__engine_log (self, "met %s/%.8s at %s", peer->service, instance, endpoint);
    }
    else
    if (!s_lists_endpoint (hello, self->endpoint))
        s_send_hello (self, peer->dealer);     //  it has forgotten us

    bool changed = joined || chorus_msg_generation (hello) != peer->generation;
    peer->generation = chorus_msg_generation (hello);
    peer->head = chorus_msg_head (hello);
    peer->last_seen = chorus__now ();
    if (changed) {
        s_peer_set_subs (peer, hello);
        chorus__delivery_peer_joined (self->delivery, peer);
    }
    if (joined) {
        chorus__commands_peer_joined (self->commands, peer);
        if (self->observer)
            chorus__observer_peer_joined (self->observer, peer);
        s_peer_report (self, peer, CHORUS_PEER_JOINED);
    }
    if (self->observer)
        chorus__observer_head (self->observer, peer, peer->head);

    //  Gossip: meet the peers it knows
    zlist_t *peers = chorus_msg_peers (hello);
    for (char *item = peers? (char *) zlist_first (peers): NULL; item;
         item = (char *) zlist_next (peers))
        s_connect_pending (self, item);
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
    if (data [0] != 0x01 && data [0] != 0x02)
        return false;
    chorus__hex (data + 1, 16, instance);
    return true;
}

static void
s_on_message (chorus__engine_t *self, chorus__peer_t *peer)
{
    chorus_msg_t *msg = self->msg;
    switch (chorus_msg_type (msg)) {
        case CHORUS_MSG_PING: {
            chorus_msg_t *pong = chorus__engine_msg (self, CHORUS_MSG_PONG);
            chorus_msg_set_head (pong, chorus_store_head (self->store));
            chorus__engine_send (self, peer, pong);
            chorus_msg_destroy (&pong);
            peer->head = chorus_msg_head (msg);
            if (self->observer)
                chorus__observer_head (self->observer, peer, peer->head);
            break;
        }
        case CHORUS_MSG_PONG:
            peer->head = chorus_msg_head (msg);
            if (self->observer)
                chorus__observer_head (self->observer, peer, peer->head);
            break;
        case CHORUS_MSG_EVENT:
            if (chorus_msg_group (msg))
                chorus__inbox_event (self, peer, &self->msg);
            else
            if (self->observer) {
                self->counters [C_FETCHED]++;
                chorus__observer_event (self->observer, &self->msg);
            }
            break;
        case CHORUS_MSG_EVENT_ACK:
            chorus__delivery_ack (self->delivery, peer, msg);
            break;
        case CHORUS_MSG_FETCH:
            self->counters [C_FETCHES]++;
            chorus__delivery_fetch (self->delivery, peer, msg);
            break;
        case CHORUS_MSG_REPLAY:
            if (self->observer)
                chorus__observer_replay (self->observer, peer, msg);
            break;
        case CHORUS_MSG_TRUNCATED:
            self->counters [C_TRUNCATED]++;
            if (chorus_msg_request (msg)) {
                if (self->observer)
                    chorus__observer_truncated (self->observer, peer, msg);
            }
            else
                chorus__engine_work (self, "ss88s", "X", peer->instance, chorus_msg_from (msg),
                                     chorus_msg_to (msg), chorus_msg_message (msg)?
                                     chorus_msg_message (msg): "");
            break;
        case CHORUS_MSG_COMMAND:
            chorus__commands_received (self->commands, peer, &self->msg);
            break;
        case CHORUS_MSG_REPLY:
            chorus__commands_reply (self->commands, &self->msg);
            break;
        case CHORUS_MSG_ERROR:
            chorus__engine_log (self, "ERROR from %.8s: %s %s", peer->instance,
                                chorus_msg_code (msg), chorus_msg_message (msg)?
                                chorus_msg_message (msg): "");
            chorus__commands_error (self->commands, msg);
            break;
        case CHORUS_MSG_BYE:
            s_peer_remove (self, peer, CHORUS_PEER_LEFT);
            break;
    }
    if (!self->msg)
        self->msg = chorus_msg_new (CHORUS_MSG_PING);
}

static void
s_recv_router (chorus__engine_t *self)
{
    //  The inbox has a receive timeout of 0: we read until it is empty
    for (int count = 0; count < S_ROUTER_BATCH; count++) {
        int rc = chorus_msg_recv (self->msg, self->router);
        if (rc == CHORUS_MSG_INTERRUPTED)
            break;
        if (rc == CHORUS_MSG_MALFORMED) {
            self->counters [C_MALFORMED]++;
            chorus__engine_log (self, "dropped malformed message: %s",
                                chorus_msg_reason (self->msg));
            continue;
        }
        char instance [33];
        if (!s_routing_instance (chorus_msg_routing_id (self->msg), instance)) {
            self->counters [C_UNKNOWN_PEER]++;
            continue;
        }
        if (chorus_msg_type (self->msg) == CHORUS_MSG_HELLO) {
            if (streq (chorus_msg_instance (self->msg), instance))
                s_on_hello (self, instance, self->msg);
            else
                self->counters [C_UNKNOWN_PEER]++;  //  claims another's identity
            continue;
        }
        chorus__peer_t *peer = chorus__engine_peer (self, instance);
        if (!peer) {
            self->counters [C_UNKNOWN_PEER]++;
            continue;
        }
        peer->last_seen = chorus__now ();
        if (peer->evasive) {
            peer->evasive = false;
            s_peer_report (self, peer, CHORUS_PEER_ALIVE);
        }
        s_on_message (self, peer);
    }
}

//  --------------------------------------------------------------------------
//  Discovery by beacon

static void
s_recv_beacon (chorus__engine_t *self)
{
    char *address = zstr_recv (self->beacon);
    zframe_t *frame = zframe_recv (self->beacon);
    if (address && frame && zframe_size (frame) == 22
    &&  memcmp (zframe_data (frame), "CHO\x01", 4) == 0) {
        const uint8_t *data = zframe_data (frame);
        char instance [33];
        for (int i = 0; i < 16; i++)
            snprintf (instance + 2 * i, 3, "%02X", data [4 + i]);
        int port = (data [20] << 8) | data [21];
        if (port > 0 && !streq (instance, self->instance)
        &&  !chorus__engine_peer (self, instance)) {
            char endpoint [128];
            snprintf (endpoint, sizeof (endpoint), "tcp://%s:%d", address, port);
            s_connect_pending (self, endpoint);
        }
    }
    zstr_free (&address);
    zframe_destroy (&frame);
}

static void
s_beacon_publish (chorus__engine_t *self, int port)
{
    uint8_t beacon [22] = {'C', 'H', 'O', 0x01};
    for (int i = 0; i < 16; i++)
        sscanf (self->instance + 2 * i, "%2hhx", &beacon [4 + i]);
    beacon [20] = (uint8_t) (port >> 8);
    beacon [21] = (uint8_t) port;
    zsock_send (self->beacon, "sbi", "PUBLISH", beacon, sizeof (beacon), 1000);
}

//  --------------------------------------------------------------------------
//  Start: bind, announce, meet the seeds

//  Replaces a wildcard host in a bound endpoint with one peers can reach
static char *
s_announced (const char *bound, const char *host)
{
    const char *port = strrchr (bound, ':');
    if (strstr (bound, "0.0.0.0") || strstr (bound, "[::]") || strstr (bound, "*"))
        return zsys_sprintf ("tcp://%s%s", host? host: "127.0.0.1", port? port: "");
    return strdup (bound);
}

static const char *
s_start (chorus__engine_t *self)
{
    chorus__config_t *config = self->config;
    self->instance = strdup (chorus_store_instance (self->store));
    self->started = chorus__now ();
    self->generation = 1;

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
    self->router = zsock_new (ZMQ_ROUTER);
    zsock_set_router_handover (self->router, 1);
    zsock_set_rcvhwm (self->router, 100000);
    zsock_set_rcvtimeo (self->router, 0);
    zsock_set_maxmsgsize (self->router, CHORUS_MSG_MAX_BODY + 1024);
    if (zsock_bind (self->router, "%s", config->listen) == -1) {
        zstr_free (&host);
        return "cannot bind the inbox endpoint";
    }
    char *bound = zsock_last_endpoint (self->router);
    self->endpoint = s_announced (bound, host);
    zstr_free (&bound);

    //  PUB on the same interface as the inbox, on an ephemeral port
    char *pub_bind = strdup (self->endpoint);
    char *colon = strrchr (pub_bind, ':');
    if (colon && strncmp (pub_bind, "tcp://", 6) == 0)
        strcpy (colon, ":0");
    else {
        free (pub_bind);
        pub_bind = zsys_sprintf ("%s-pub", self->endpoint);
    }
    self->pub = zsock_new (ZMQ_PUB);
    zsock_set_sndhwm (self->pub, 10000);
    if (zsock_bind (self->pub, "%s", pub_bind) == -1) {
        free (pub_bind);
        zstr_free (&host);
        return "cannot bind the PUB endpoint";
    }
    free (pub_bind);
    bound = zsock_last_endpoint (self->pub);
    self->pub_endpoint = s_announced (bound, host);
    zstr_free (&bound);
    zstr_free (&host);

    zpoller_add (self->poller, self->router);
    if (self->beacon) {
        int port = atoi (strrchr (self->endpoint, ':') + 1);
        s_beacon_publish (self, port);
        zsock_send (self->beacon, "sb", "SUBSCRIBE", "CHO\x01", 4);
        zpoller_add (self->poller, self->beacon);
    }
    for (char *seed = (char *) zlist_first (config->seeds); seed;
         seed = (char *) zlist_next (config->seeds))
        zhashx_insert (self->seeds, seed, NULL);
    self->last_probe = 0;       //  probe at the first tick
    chorus__engine_log (self, "started at %s (pub %s)", self->endpoint, self->pub_endpoint);
    return NULL;
}

//  --------------------------------------------------------------------------
//  Timers

static void
s_probe_seeds (chorus__engine_t *self, uint64_t now)
{
    if (now - self->last_probe < (uint64_t) self->config->heartbeat_ms * 2)
        return;
    self->last_probe = now;
    zlistx_t *seeds = zhashx_keys (self->seeds);
    for (char *seed = (char *) zlistx_first (seeds); seed; seed = (char *) zlistx_next (seeds)) {
        bool met = false;
        for (chorus__peer_t *peer = (chorus__peer_t *) zhashx_first (self->peers);
             peer && !met; peer = (chorus__peer_t *) zhashx_next (self->peers))
            met = streq (peer->endpoint, seed);
        if (met)
            continue;
        zsock_t *probe = (zsock_t *) zhashx_lookup (self->seeds, seed);
        if (!probe) {
            probe = s_dealer_new (self, seed, 0x02);
            zhashx_update (self->seeds, seed, probe);
        }
        if (probe)
            s_send_hello (self, probe);
    }
    zlistx_destroy (&seeds);
}

static void
s_expire_pending (chorus__engine_t *self, uint64_t now)
{
    zlistx_t *keys = zhashx_keys (self->pending);
    for (char *key = (char *) zlistx_first (keys); key; key = (char *) zlistx_next (keys)) {
        s_pending_t *pending = (s_pending_t *) zhashx_lookup (self->pending, key);
        if (now - pending->since > S_PENDING_MS)
            s_pending_drop (self, key, true);
    }
    zlistx_destroy (&keys);
}

static void
s_heartbeat (chorus__engine_t *self, uint64_t now)
{
    zlist_t *expired = zlist_new ();
    for (chorus__peer_t *peer = (chorus__peer_t *) zhashx_first (self->peers); peer;
         peer = (chorus__peer_t *) zhashx_next (self->peers)) {
        uint64_t silence = now > peer->last_seen? now - peer->last_seen: 0;
        if (silence >= (uint64_t) self->config->expired_ms) {
            zlist_append (expired, peer);
            continue;
        }
        if (silence >= (uint64_t) self->config->evasive_ms && !peer->evasive) {
            peer->evasive = true;
            s_peer_report (self, peer, CHORUS_PEER_EVASIVE);
        }
        if (silence >= (uint64_t) self->config->heartbeat_ms
        &&  now - peer->last_ping >= (uint64_t) self->config->heartbeat_ms) {
            chorus_msg_t *ping = chorus__engine_msg (self, CHORUS_MSG_PING);
            chorus_msg_set_head (ping, chorus_store_head (self->store));
            chorus__engine_send (self, peer, ping);
            chorus_msg_destroy (&ping);
            peer->last_ping = now;
        }
    }
    for (chorus__peer_t *peer = (chorus__peer_t *) zlist_first (expired); peer;
         peer = (chorus__peer_t *) zlist_next (expired))
        s_peer_remove (self, peer, CHORUS_PEER_EXPIRED);
    zlist_destroy (&expired);
}

static void
s_tick (chorus__engine_t *self)
{
    uint64_t now = chorus__now ();
    s_heartbeat (self, now);
    s_probe_seeds (self, now);
    s_expire_pending (self, now);
    if (self->announce) {
        self->announce = false;
        self->generation++;
        for (chorus__peer_t *peer = (chorus__peer_t *) zhashx_first (self->peers); peer;
             peer = (chorus__peer_t *) zhashx_next (self->peers))
            s_send_hello (self, peer->dealer);
    }
    chorus__delivery_tick (self->delivery, now);
    chorus__commands_tick (self->commands, now);
    if (self->observer)
        chorus__observer_tick (self->observer, now);
    if (now > S_INBOX_KEEP_MS)
        chorus_store_inbox_expire (self->store, now - S_INBOX_KEEP_MS, 1000);
}

//  --------------------------------------------------------------------------
//  The control pipe and the work pipe

static void
s_reply_peers (chorus__engine_t *self)
{
    zmsg_t *reply = zmsg_new ();
    zmsg_addstrf (reply, "%zu", zhashx_size (self->peers));    //  never an empty message
    for (chorus__peer_t *peer = (chorus__peer_t *) zhashx_first (self->peers); peer;
         peer = (chorus__peer_t *) zhashx_next (self->peers)) {
        zmsg_addstr (reply, peer->service);
        zmsg_addstr (reply, peer->instance);
        zmsg_addstr (reply, peer->endpoint);
        zmsg_addstr (reply, peer->pub_endpoint);
        char *subs = s_peer_subs_text (peer);
        zmsg_addstr (reply, subs);
        free (subs);
        zmsg_addstrf (reply, "%d", peer->evasive? CHORUS_PEER_EVASIVE: CHORUS_PEER_ALIVE);
        zmsg_addstrf (reply, "%" PRIu64, peer->last_seen);
        zmsg_addstrf (reply, "%" PRIu64, peer->head);
    }
    zmsg_send (&reply, self->pipe);
}

static void
s_subscribe (chorus__engine_t *self, const char *prefix)
{
    uint64_t since = 0;
    int rc = chorus_store_subscription (self->store, prefix, chorus__now (),
                                        self->config->start_earliest, &since);
    if (rc == 0) {
        bool known = false;
        for (size_t i = 0; i < self->subs_size && !known; i++)
            known = streq (self->subs [i].prefix, prefix);
        if (!known) {
            s_subs_add (&self->subs, &self->subs_size, prefix, since,
                        self->config->durable? CHORUS_SUB_DURABLE: 0);
            self->announce = true;
        }
    }
    zsock_send (self->pipe, "i", rc);
}

static void
s_observe (chorus__engine_t *self, const char *prefix, int earliest)
{
    if (!self->observer) {
        self->observer = chorus__observer_new (self);
        zpoller_add (self->poller, chorus__observer_socket (self->observer));
    }
    chorus__observer_add (self->observer, prefix, earliest != 0);
    zsock_send (self->pipe, "i", 0);
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
        self->counters [C_PUBLISHED]++;
        zframe_t *copy = zframe_dup (self->published_bodies [i]);
        chorus_msg_send_encoded (self->published [i], &copy, self->pub);
        chorus__delivery_published (self->delivery, self->published [i],
                                    self->published_bodies [i]);
    }
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
        zsock_send (self->pipe, "isss", error? -1: 0, error? error: self->instance,
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
        zhashx_update (self->commands_handled, name, (void *) 1);
        zstr_free (&name);
    }
    else
    if (streq (command, "PEERS"))
        s_reply_peers (self);
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
                value = self->counters [i];
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

static chorus__engine_t *
s_engine_new (zsock_t *pipe, chorus__config_t *config)
{
    chorus__engine_t *self = (chorus__engine_t *) zmalloc (sizeof (chorus__engine_t));
    self->pipe = pipe;
    self->config = config;
    self->store = config->store;
    self->work = zsock_new (ZMQ_PAIR);
    zsock_set_sndhwm (self->work, 0);
    zsock_set_rcvhwm (self->work, 0);
    zsock_connect (self->work, "%s", config->work_endpoint);
    self->poller = zpoller_new (pipe, self->work, NULL);
    //  A signal is the application's business: the engine stops only on
    //  $TERM, so that calls made after Ctrl-C still get answers
    zpoller_set_nonstop (self->poller, true);
    self->peers = zhashx_new ();
    self->pending = zhashx_new ();
    self->seeds = zhashx_new ();
    self->commands_handled = zhashx_new ();
    self->events_in_hand = zhashx_new ();
    self->msg = chorus_msg_new (CHORUS_MSG_PING);
    self->ack = chorus_msg_new (CHORUS_MSG_EVENT_ACK);
    self->delivery = chorus__delivery_new (self);
    self->commands = chorus__commands_new (self);
    return self;
}

static void
s_engine_destroy (chorus__engine_t **self_p)
{
    chorus__engine_t *self = *self_p;
    if (!self)
        return;
    //  Say goodbye, so that peers move our work at once
    if (self->router) {
        chorus_msg_t *bye = chorus__engine_msg (self, CHORUS_MSG_BYE);
        for (chorus__peer_t *peer = (chorus__peer_t *) zhashx_first (self->peers); peer;
             peer = (chorus__peer_t *) zhashx_next (self->peers)) {
            zsock_set_linger (peer->dealer, 100);
            chorus__engine_send (self, peer, bye);
        }
        chorus_msg_destroy (&bye);
    }
    if (self->beacon) {
        s_beacon_publish (self, 0);
        zactor_destroy (&self->beacon);
    }
    chorus__observer_destroy (&self->observer);
    chorus__commands_destroy (&self->commands);
    chorus__delivery_destroy (&self->delivery);
    for (chorus__peer_t *peer = (chorus__peer_t *) zhashx_first (self->peers); peer;
         peer = (chorus__peer_t *) zhashx_next (self->peers))
        s_peer_destroy (&peer);
    zhashx_destroy (&self->peers);
    zlistx_t *keys = zhashx_keys (self->pending);
    for (char *key = (char *) zlistx_first (keys); key; key = (char *) zlistx_next (keys))
        s_pending_drop (self, key, true);
    zlistx_destroy (&keys);
    zhashx_destroy (&self->pending);
    for (zsock_t *probe = (zsock_t *) zhashx_first (self->seeds); probe;
         probe = (zsock_t *) zhashx_next (self->seeds))
        zsock_destroy (&probe);
    zhashx_destroy (&self->seeds);
    zhashx_destroy (&self->commands_handled);
    zhashx_destroy (&self->events_in_hand);
    s_subs_free (&self->subs, &self->subs_size);
    zpoller_destroy (&self->poller);
    zsock_destroy (&self->router);
    zsock_destroy (&self->pub);
    //  Work that will never run now: results the application sent that we
    //  did not read, and a batch we did not send
    chorus__batch_discard_queued (self->work);
    zsock_destroy (&self->work);
    chorus_msg_destroy (&self->msg);
    chorus_msg_destroy (&self->ack);
    chorus__batch_discard (&self->handover);
    free (self->results);
    free (self->published);
    free (self->published_bodies);
    free (self->instance);
    free (self->endpoint);
    free (self->pub_endpoint);
    free (self);
    *self_p = NULL;
}

void
chorus__engine_actor (zsock_t *pipe, void *args)
{
    chorus__engine_t *self = s_engine_new (pipe, (chorus__config_t *) args);
    zsock_signal (pipe, 0);
    uint64_t next_tick = chorus__now () + S_TICK_MS;
    while (!self->terminated) {
        uint64_t now = chorus__now ();
        int timeout = now >= next_tick? 0: (int) (next_tick - now);
        zsock_t *which = (zsock_t *) zpoller_wait (self->poller, timeout);
        if (which == pipe)
            s_recv_pipe (self);
        else
        if (which == self->work)
            chorus__inbox_results (self);
        else
        if (which && which == self->router)     //  no inbox before START
            s_recv_router (self);
        else
        if (self->beacon && (void *) which == (void *) self->beacon)
            s_recv_beacon (self);
        else
        if (self->observer && which == chorus__observer_socket (self->observer))
            chorus__observer_recv (self->observer);
        else
        if (zpoller_terminated (self->poller))
            break;
        if (self->router && chorus__now () >= next_tick) {
            s_tick (self);
            next_tick = chorus__now () + S_TICK_MS;
        }
        chorus__engine_flush (self);
    }
    chorus__engine_flush (self);    //  the wrapper frees what it holds
    s_engine_destroy (&self);
}
