/*  chorus_peers.c — meeting and keeping peers: connections to seeds and
    to endpoints heard of by gossip or beacon, the HELLO exchange that makes
    a peer of them, heartbeats that find the evasive and the expired, and
    the hand-over of a departed peer's work.
*/
#include "chorus_engine.h"

#define S_PENDING_MS 5000       //  how long a connection waits for the peer's HELLO

void
chorus__subs_free (chorus__sub_t **subs_p, size_t *size_p)
{
    for (size_t i = 0; i < *size_p; i++)
        free ((*subs_p) [i].prefix);
    free (*subs_p);
    *subs_p = NULL;
    *size_p = 0;
}

void
chorus__subs_add (chorus__sub_t **subs_p, size_t *size_p, const char *prefix, uint64_t since,
            uint64_t flags)
{
    *subs_p = (chorus__sub_t *) realloc (*subs_p, (*size_p + 1) * sizeof (chorus__sub_t));
    assert (*subs_p);
    chorus__sub_t *sub = &(*subs_p) [(*size_p)++];
    sub->prefix = strdup (prefix);
    sub->since = since;
    sub->flags = flags;
}

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

void
chorus__peers_send_hello (chorus__engine_t *self, zsock_t *dealer)
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
    chorus__peers_send_hello (self, dealer);
    s_pending_t *pending = (s_pending_t *) zmalloc (sizeof (s_pending_t));
    pending->dealer = dealer;
    pending->since = chorus__now ();
    zhashx_insert (self->pending, endpoint, pending);
}

//  Forgets a pending connection; returns its socket unless destroy is set
zsock_t *
chorus__peers_drop_pending (chorus__engine_t *self, const char *endpoint, bool destroy)
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

void
chorus__peer_destroy (chorus__peer_t **peer_p)
{
    chorus__peer_t *peer = *peer_p;
    if (peer) {
        zsock_destroy (&peer->dealer);
        free (peer->instance);
        free (peer->service);
        free (peer->endpoint);
        free (peer->pub_endpoint);
        chorus__subs_free (&peer->subs, &peer->subs_size);
        free (peer);
        *peer_p = NULL;
    }
}

//  A peer's subscription prefixes, comma-separated; the caller frees it
char *
chorus__peer_subs_text (chorus__peer_t *peer)
{
    char *subs = NULL;
    size_t length = 0;
    FILE *stream = open_memstream (&subs, &length);
    for (size_t i = 0; i < peer->subs_size; i++)
        fprintf (stream, "%s%s", i? ",": "", peer->subs [i].prefix);
    fclose (stream);
    return subs;
}

void
chorus__peers_report (chorus__engine_t *self, chorus__peer_t *peer, chorus_peer_state_t state)
{
    char *subs = chorus__peer_subs_text (peer);
    chorus__engine_work (self, "sisssss88", "P", (int) state, peer->service, peer->instance,
                         peer->endpoint, peer->pub_endpoint, subs, peer->last_seen, peer->head);
    free (subs);
}

//  Forgets a peer: its work moves elsewhere and the application is told
void
chorus__peers_remove (chorus__engine_t *self, chorus__peer_t *peer, chorus_peer_state_t state)
{
    chorus__engine_log (self, "peer %s/%.8s %s", peer->service, peer->instance,
                        state == CHORUS_PEER_LEFT? "left": "expired");
    zhashx_delete (self->peers, peer->instance);   //  out of the table before reassigning
    chorus__delivery_peer_gone (self->delivery, peer);
    chorus__commands_peer_gone (self->commands, peer);
    if (self->observer)
        chorus__observer_peer_gone (self->observer, peer);
    chorus__peers_report (self, peer, state);
    chorus__peer_destroy (&peer);
    self->announce = true;
}

static void
s_peer_set_subs (chorus__peer_t *peer, chorus_msg_t *hello)
{
    chorus__subs_free (&peer->subs, &peer->subs_size);
    for (size_t i = 0; i < chorus_msg_subscriptions (hello); i++) {
        uint64_t since, flags;
        const char *prefix = chorus_msg_subscription (hello, i, &since, &flags);
        chorus__subs_add (&peer->subs, &peer->subs_size, prefix, since, flags);
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

void
chorus__peers_hello (chorus__engine_t *self, const char *instance, chorus_msg_t *hello)
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
        chorus__peers_remove (self, peer, CHORUS_PEER_EXPIRED);
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
            peer->dealer = chorus__peers_drop_pending (self, endpoint, false);
        else
        if (zhashx_lookup (self->seeds, endpoint)) {
            peer->dealer = (zsock_t *) zhashx_lookup (self->seeds, endpoint);
            zhashx_update (self->seeds, endpoint, NULL);
        }
        else
            peer->dealer = s_dealer_new (self, endpoint, 0x01);
        if (!peer->dealer) {
            chorus__peer_destroy (&peer);
            return;
        }
        zhashx_insert (self->peers, peer->instance, peer);
        chorus__peers_send_hello (self, peer->dealer);
        self->announce = true;
        joined = true;
        chorus__engine_log (self, "met %s/%.8s at %s", peer->service, instance, endpoint);
    }
    else
    if (!s_lists_endpoint (hello, self->endpoint))
        chorus__peers_send_hello (self, peer->dealer);     //  it has forgotten us

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
        chorus__peers_report (self, peer, CHORUS_PEER_JOINED);
    }
    if (self->observer)
        chorus__observer_head (self->observer, peer, peer->head);

    //  Gossip: meet the peers it knows
    zlist_t *peers = chorus_msg_peers (hello);
    for (char *item = peers? (char *) zlist_first (peers): NULL; item;
         item = (char *) zlist_next (peers))
        s_connect_pending (self, item);
}

void
chorus__peers_recv_beacon (chorus__engine_t *self)
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

void
chorus__peers_beacon (chorus__engine_t *self, int port)
{
    uint8_t beacon [22] = {'C', 'H', 'O', 0x01};
    for (int i = 0; i < 16; i++)
        sscanf (self->instance + 2 * i, "%2hhx", &beacon [4 + i]);
    beacon [20] = (uint8_t) (port >> 8);
    beacon [21] = (uint8_t) port;
    zsock_send (self->beacon, "sbi", "PUBLISH", beacon, sizeof (beacon), 1000);
}

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
            chorus__peers_send_hello (self, probe);
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
            chorus__peers_drop_pending (self, key, true);
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
            chorus__peers_report (self, peer, CHORUS_PEER_EVASIVE);
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
        chorus__peers_remove (self, peer, CHORUS_PEER_EXPIRED);
    zlist_destroy (&expired);
}

void
chorus__peers_tick (chorus__engine_t *self, uint64_t now)
{
    s_heartbeat (self, now);
    s_probe_seeds (self, now);
    s_expire_pending (self, now);
    if (self->announce) {
        self->announce = false;
        self->generation++;
        for (chorus__peer_t *peer = (chorus__peer_t *) zhashx_first (self->peers); peer;
             peer = (chorus__peer_t *) zhashx_next (self->peers))
            chorus__peers_send_hello (self, peer->dealer);
    }
}
