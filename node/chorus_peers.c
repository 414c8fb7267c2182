/*  chorus_peers.c — meeting and keeping peers: connections to seeds and
    to endpoints heard of by gossip or beacon, the HELLO exchange that makes
    a peer of them within the node's bounds (protocol sections 4 and 4.5),
    heartbeats that find the evasive and the expired, and the hand-over of
    a departed peer's work.
*/
#include "chorus_engine.h"

#define S_PENDING_MS 5000       //  how long a connection waits for the peer's HELLO
#define S_SEED_RETRY_MS 5000    //  a seed that did not answer is tried again after this
#define S_ANNOUNCE_MS 500       //  our HELLO goes to every peer at most this often
#define S_BUCKET 50             //  new peers one remote address may bring at once
#define S_ADDRESSES 4096        //  remote addresses whose buckets we keep at most
#define S_DEALER_HWM 1000       //  messages queued for one peer at most
#define S_MAX_FRAME (CHORUS_MSG_MAX_BODY + 1024)
#define S_BEACON 22             //  bytes of a plaintext mesh's beacon (version 1)
#define S_BEACON_SECURE 54      //  and of a secure mesh's (version 2, with the key)

//  A connection opened to an endpoint we heard of, awaiting the peer's HELLO
typedef struct {
    void *dealer;               //  the connection (libzmq handle)
    uint64_t since;             //  when it was opened (monotonic)
    char hello_id [33];         //  id of the HELLO we sent on it, "" until sent
    char key [41];              //  the server key we expect there, "" on a plaintext mesh
} s_pending_t;

//  A seed endpoint from the configuration
typedef struct {
    char *instance;             //  the peer we met through it, or NULL
    uint64_t tried;             //  when we last opened a connection to it (monotonic)
    char key [41];              //  its key, "" on a plaintext mesh
} s_seed_t;

//  New peers a remote address may still bring: a bucket refilled over time
typedef struct {
    double tokens;              //  admissions left
    uint64_t at;                //  when tokens was computed (monotonic)
} s_bucket_t;

//  A DEALER into an endpoint's inbox, or NULL (after a warning) when the
//  system cannot give us one. On a secure mesh it is a CURVE client of the
//  node with that key, and without a key there is no connection.
static void *
s_dealer_new (chorus__engine_t *self, const char *endpoint, const char *key)
{
    if (self->config->keys && !chorus__key_valid (key))
        return NULL;
    void *dealer = chorus__socket_new (ZMQ_DEALER);
    if (!dealer) {
        chorus__engine_warn (self, W_SOCKET, "cannot open a connection to %s: %s", endpoint,
                             zmq_strerror (zmq_errno ()));
        return NULL;
    }
    //  Routing id: 0x01 then our binary instance id, on every DEALER we
    //  open, so the peer's ROUTER knows who speaks (protocol section 5)
    uint8_t routing_id [17];
    routing_id [0] = 0x01;
    for (int i = 0; i < 16; i++)
        sscanf (self->instance + 2 * i, "%2hhx", &routing_id [1 + i]);
    zmq_setsockopt (dealer, ZMQ_ROUTING_ID, routing_id, sizeof (routing_id));
    zsock_set_sndhwm (dealer, S_DEALER_HWM);
    zsock_set_sndtimeo (dealer, 0);     //  the engine never blocks on a peer
    zsock_set_linger (dealer, 0);
    //  Nothing is queued for a connection that is not up: an endpoint that
    //  never answers costs no memory, and what could not go stays in the
    //  outbox to be sent again
    zsock_set_immediate (dealer, 1);
    //  We never read a DEALER, so whatever the other side sends stays small
    zsock_set_rcvhwm (dealer, 1);
    zsock_set_maxmsgsize (dealer, S_MAX_FRAME);
    if (self->config->keys)
        chorus__keys_client (self->config->keys, dealer, key);
    if (self->monitor)
        chorus__monitor_watch (self->monitor, dealer, "dealer");
    if (zmq_connect (dealer, endpoint)) {
        chorus__engine_log (self, "cannot connect to %s: %s", endpoint,
                            zmq_strerror (zmq_errno ()));
        chorus__socket_destroy (&dealer);
    }
    return dealer;
}

static chorus_msg_t *
s_hello (chorus__engine_t *self, const char *answers)
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
        if (peer->key) {
            //  On a secure mesh, an endpoint is worth nothing without its key
            char entry [257];   //  a STRS item is 1..256 bytes
            if (snprintf (entry, sizeof (entry), "%s@%s", peer->endpoint, peer->key)
                < (int) sizeof (entry))
                chorus_msg_add_peers (hello, entry);
        }
        else
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
    if (self->config->keys)
        chorus_msg_set_header (hello, "chorus.key", chorus__keys_public (self->config->keys));
    if (answers)
        chorus_msg_set_header (hello, "chorus.answers", answers);
    return hello;
}

//  Sends our HELLO; writes its id into id_out (33 bytes) when given
static int
s_send_hello (chorus__engine_t *self, void *dealer, const char *answers, char *id_out)
{
    chorus_msg_t *hello = s_hello (self, answers);
    int rc = chorus_msg_send (hello, dealer);
    if (rc == 0 && id_out)
        snprintf (id_out, 33, "%s", chorus_msg_id (hello));
    chorus_msg_destroy (&hello);
    return rc;
}

int
chorus__peers_send_hello (chorus__engine_t *self, void *dealer, const char *answers)
{
    return s_send_hello (self, dealer, answers, NULL);
}

int
chorus__peers_greet (chorus__engine_t *self, chorus__peer_t *peer)
{
    //  The first HELLO, once the connection is up, still answers the
    //  peer's (section 4.4), so that a seed it dialled under another name
    //  knows us
    if (!peer->hello_sent && peer->dealer
    &&  chorus__peers_send_hello (self, peer->dealer,
                                  peer->answers [0]? peer->answers: NULL) == 0)
        peer->hello_sent = true;
    if (!peer->hello_sent)
        self->connecting = true;    //  what waits for it goes at the next tick
    return peer->hello_sent? 0: -1;
}

uint64_t
chorus__peer_seen_at (chorus__peer_t *peer)
{
    uint64_t silence = chorus__mono () - peer->last_seen;
    uint64_t now = chorus__now ();
    return now > silence? now - silence: 0;
}

//  --------------------------------------------------------------------------
//  Pending connections

static void
s_pending_destroy (s_pending_t **pending_p)
{
    s_pending_t *pending = *pending_p;
    if (pending) {
        chorus__socket_destroy (&pending->dealer);
        free (pending);
        *pending_p = NULL;
    }
}

//  Takes a pending connection out of the table; the caller owns its socket
static void *
s_pending_take (chorus__engine_t *self, const char *endpoint)
{
    s_pending_t *pending = (s_pending_t *) zhashx_lookup (self->pending, endpoint);
    if (!pending)
        return NULL;
    void *dealer = pending->dealer;
    pending->dealer = NULL;
    s_pending_destroy (&pending);
    zhashx_delete (self->pending, endpoint);
    return dealer;
}

static chorus__peer_t *
s_peer_at (chorus__engine_t *self, const char *endpoint)
{
    for (chorus__peer_t *peer = (chorus__peer_t *) zhashx_first (self->peers); peer;
         peer = (chorus__peer_t *) zhashx_next (self->peers))
        if (streq (peer->endpoint, endpoint))
            return peer;
    return NULL;
}

//  Opens a connection to an endpoint we heard of; HELLO goes on it as soon
//  as it is up. Returns false if it could not be opened now.
static bool
s_connect_pending (chorus__engine_t *self, const char *endpoint, const char *key)
{
    if (streq (endpoint, self->endpoint) || zhashx_lookup (self->pending, endpoint)
    ||  s_peer_at (self, endpoint))
        return true;
    //  A key we do not trust leads to no one we would talk to
    if (self->config->keys && !chorus__keys_lookup (self->config->keys, key))
        return true;
    if (zhashx_size (self->pending) >= (size_t) self->config->max_pending)
        return false;   //  heard of again with the next HELLO or beacon
    void *dealer = s_dealer_new (self, endpoint, key);
    if (!dealer)
        return false;
    chorus__engine_log (self, "connecting to %s", endpoint);
    s_pending_t *pending = (s_pending_t *) zmalloc (sizeof (s_pending_t));
    pending->dealer = dealer;
    pending->since = chorus__mono ();
    snprintf (pending->key, sizeof (pending->key), "%s", key? key: "");
    if (s_send_hello (self, dealer, NULL, pending->hello_id))
        self->connecting = true;
    zhashx_insert (self->pending, endpoint, pending);
    return true;
}

//  The endpoint of the pending connection on which we sent the HELLO with
//  this id, or NULL
static const char *
s_pending_answered (chorus__engine_t *self, const char *hello_id)
{
    if (!hello_id || !*hello_id)
        return NULL;
    for (s_pending_t *pending = (s_pending_t *) zhashx_first (self->pending); pending;
         pending = (s_pending_t *) zhashx_next (self->pending))
        if (streq (pending->hello_id, hello_id))
            return (const char *) zhashx_cursor (self->pending);
    return NULL;
}

//  The seed at this endpoint, if it is one, now leads to the instance
static void
s_seed_met (chorus__engine_t *self, const char *endpoint, const char *instance)
{
    s_seed_t *seed = (s_seed_t *) zhashx_lookup (self->seeds, endpoint);
    if (seed) {
        free (seed->instance);
        seed->instance = strdup (instance);
    }
}

void
chorus__peers_close_all (chorus__engine_t *self)
{
    for (s_pending_t *pending = (s_pending_t *) zhashx_first (self->pending); pending;
         pending = (s_pending_t *) zhashx_next (self->pending))
        s_pending_destroy (&pending);
    zhashx_purge (self->pending);
    for (s_seed_t *seed = (s_seed_t *) zhashx_first (self->seeds); seed;
         seed = (s_seed_t *) zhashx_next (self->seeds)) {
        free (seed->instance);
        free (seed);
    }
    zhashx_purge (self->seeds);
    for (s_bucket_t *bucket = (s_bucket_t *) zhashx_first (self->admission); bucket;
         bucket = (s_bucket_t *) zhashx_next (self->admission))
        free (bucket);
    zhashx_purge (self->admission);
}

//  --------------------------------------------------------------------------
//  Peers

void
chorus__peer_destroy (chorus__peer_t **peer_p)
{
    chorus__peer_t *peer = *peer_p;
    if (peer) {
        chorus__socket_destroy (&peer->dealer);
        if (peer->backlog) {
            for (zframe_t *frame = (zframe_t *) zlistx_first (peer->backlog); frame;
                 frame = (zframe_t *) zlistx_next (peer->backlog))
                zframe_destroy (&frame);
            zlistx_destroy (&peer->backlog);
        }
        free (peer->instance);
        free (peer->service);
        free (peer->endpoint);
        free (peer->pub_endpoint);
        free (peer->address);
        free (peer->key);
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
    chorus__engine_work (self, "sisssss88s", "P", (int) state, peer->service, peer->instance,
                         peer->endpoint, peer->pub_endpoint, subs, chorus__peer_seen_at (peer),
                         peer->head, peer->key? peer->key: "");
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

//  Whether a HELLO's gossip lists the endpoint; on a secure mesh an entry
//  is ENDPOINT@KEY, and only its endpoint counts
static bool
s_lists_endpoint (chorus_msg_t *hello, const char *endpoint, bool secure)
{
    zlist_t *peers = chorus_msg_peers (hello);
    size_t length = strlen (endpoint);
    for (char *item = peers? (char *) zlist_first (peers): NULL; item;
         item = (char *) zlist_next (peers)) {
        const char *key = secure? chorus__key_part (item): NULL;
        size_t size = key? (size_t) (key - 1 - item): strlen (item);
        if (size == length && memcmp (item, endpoint, length) == 0)
            return true;
    }
    return false;
}

//  True if the remote address may bring one more new peer now
static bool
s_admit_address (chorus__engine_t *self, const char *address)
{
    uint64_t now = chorus__mono ();
    s_bucket_t *bucket = (s_bucket_t *) zhashx_lookup (self->admission, address);
    if (!bucket) {
        if (zhashx_size (self->admission) >= S_ADDRESSES)
            address = "*";  //  past that, all other addresses share one bucket
        bucket = (s_bucket_t *) zhashx_lookup (self->admission, address);
    }
    if (!bucket) {
        bucket = (s_bucket_t *) zmalloc (sizeof (s_bucket_t));
        bucket->tokens = S_BUCKET;
        bucket->at = now;
        zhashx_insert (self->admission, address, bucket);
    }
    bucket->tokens += (double) (now - bucket->at) * self->config->peer_rate / 1000.0;
    if (bucket->tokens > S_BUCKET)
        bucket->tokens = S_BUCKET;
    bucket->at = now;
    if (bucket->tokens < 1)
        return false;
    bucket->tokens -= 1;
    return true;
}

//  May a new peer, whose HELLO came from this address, join? Says why not.
static bool
s_admit (chorus__engine_t *self, const char *instance, chorus_msg_t *hello)
{
    const char *address = chorus_msg_peer_address (hello);
    const char *why = NULL;
    if (zhashx_size (self->peers) >= (size_t) self->config->max_peers)
        why = "the node has its maximum of peers";
    else
    if (!s_admit_address (self, address))
        why = "too many new peers from that address";
    if (!why)
        return true;
    self->counters [C_REFUSED]++;
    chorus__engine_warn (self, W_REFUSED, "refused peer %s/%.8s at %s (from %s): %s",
                         chorus_msg_service (hello), instance, chorus_msg_endpoint (hello),
                         *address? address: "?", why);
    return false;
}

//  The connection to use for a new peer: the pending one it answered, or a
//  new one. NULL if none can be had.
static void *
s_peer_dealer (chorus__engine_t *self, chorus_msg_t *hello, const char *instance,
               const char *key, bool *hello_sent)
{
    const char *endpoint = chorus_msg_endpoint (hello);
    const char *answered = s_pending_answered (self, chorus_msg_header (hello, "chorus.answers"));
    const char *pending = zhashx_lookup (self->pending, endpoint)? endpoint: answered;
    //  On a secure mesh, only a connection to the key the HELLO came from
    //  leads to that node
    if (pending && key
    &&  !streq (((s_pending_t *) zhashx_lookup (self->pending, pending))->key, key))
        pending = NULL;
    if (pending) {
        s_pending_t *entry = (s_pending_t *) zhashx_lookup (self->pending, pending);
        *hello_sent = entry->hello_id [0] != 0;
        s_seed_met (self, pending, instance);
        s_seed_met (self, endpoint, instance);
        if (answered && !streq (answered, pending)) {
            //  Two connections led to the same node: one DEALER per peer
            s_seed_met (self, answered, instance);
            void *extra = s_pending_take (self, answered);
            chorus__socket_destroy (&extra);
        }
        return s_pending_take (self, pending);
    }
    s_seed_met (self, endpoint, instance);
    *hello_sent = false;
    return s_dealer_new (self, endpoint, key);
}

//  On a secure mesh, may the key this HELLO came from speak for the node it
//  names? Says why not.
static bool
s_hello_key_allowed (chorus__engine_t *self, const char *instance, chorus_msg_t *hello,
                     chorus__peer_t *peer, const chorus__grant_t **grant_p)
{
    chorus__keys_t *keys = self->config->keys;
    const char *key = chorus_msg_user_id (hello);
    const char *why = NULL;
    const chorus__grant_t *grant = chorus__keys_lookup (keys, key);
    const char *announced = chorus_msg_header (hello, "chorus.key");
    if (!grant)
        why = "its key is not in the trust directory";
    else
    if (!chorus__grant_service (grant, chorus_msg_service (hello)))
        why = "its certificate does not allow that service";
    else
    if (!announced || !streq (announced, key))
        why = "its chorus.key header is not the key it connected with";
    else
    if (peer && peer->key && !streq (peer->key, key))
        why = "a known instance under another key";
    *grant_p = grant;
    if (!why)
        return true;
    self->counters [C_FORBIDDEN]++;
    chorus__engine_warn (self, W_FORBIDDEN, "refused HELLO of %s/%.8s at %s, key %s%s%s%s: %s",
                         chorus_msg_service (hello), instance, chorus_msg_endpoint (hello),
                         *key? key: "-", grant? " (certificate '": "", grant? grant->name: "",
                         grant? "')": "", why);
    return false;
}

//  Follows gossip: an endpoint, on a secure mesh with its key after '@'
static bool
s_connect_listed (chorus__engine_t *self, const char *item)
{
    if (!self->config->keys)
        return s_connect_pending (self, item, NULL);
    const char *key = chorus__key_part (item);
    if (!key || !chorus__key_valid (key))
        return true;    //  no use without a key
    char endpoint [257];
    snprintf (endpoint, sizeof (endpoint), "%.*s", (int) (key - 1 - item), item);
    return s_connect_pending (self, endpoint, key);
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
    const chorus__grant_t *grant = NULL;
    const char *key = self->config->keys? chorus_msg_user_id (hello): NULL;
    if (key && !s_hello_key_allowed (self, instance, hello, peer, &grant))
        return;     //  not answered, and its gossip not followed
    if (peer && !streq (peer->service, chorus_msg_service (hello))) {
        chorus__engine_forged (self, peer, hello, "announces another service");
        return;
    }
    if (peer && peer->started != started) {
        //  The same instance started again: it remembers nothing of us
        chorus__engine_log (self, "peer %.8s restarted", instance);
        chorus__peers_remove (self, peer, CHORUS_PEER_EXPIRED);
        peer = NULL;
    }
    const char *endpoint = chorus_msg_endpoint (hello);
    bool joined = false;
    if (!peer) {
        if (!s_admit (self, instance, hello))
            return;     //  not answered, and its gossip not followed
        bool hello_sent = false;
        void *dealer = s_peer_dealer (self, hello, instance, key, &hello_sent);
        if (!dealer) {
            self->counters [C_REFUSED]++;
            return;
        }
        peer = (chorus__peer_t *) zmalloc (sizeof (chorus__peer_t));
        peer->instance = strdup (instance);
        peer->service = strdup (chorus_msg_service (hello));
        peer->endpoint = strdup (endpoint);
        peer->pub_endpoint = strdup (chorus_msg_pub_endpoint (hello));
        peer->address = strdup (chorus_msg_peer_address (hello));
        peer->started = started;
        peer->dealer = dealer;
        peer->key = key? strdup (key): NULL;
        peer->grant = grant;
        peer->hello_sent = hello_sent;
        zhashx_insert (self->peers, peer->instance, peer);
        //  Our HELLO answers theirs, so that a node we dialled under another
        //  name than it announces knows we are that seed
        snprintf (peer->answers, sizeof (peer->answers), "%s", chorus_msg_id (hello));
        chorus__peers_greet (self, peer);
        if (!peer->hello_sent)
            self->connecting = true;    //  it goes as soon as the connection is up
        self->announce = true;
        joined = true;
        chorus__engine_log (self, "met %s/%.8s at %s", peer->service, instance, endpoint);
    }
    else {
        //  A pending connection that leads to a peer we know is one too many
        const char *answered = s_pending_answered (self,
                                                   chorus_msg_header (hello, "chorus.answers"));
        if (answered) {
            s_seed_met (self, answered, instance);
            void *dealer = s_pending_take (self, answered);
            chorus__socket_destroy (&dealer);
        }
        if (!s_lists_endpoint (hello, self->endpoint, self->config->keys != NULL)
        &&  peer->hello_sent)
            chorus__peers_send_hello (self, peer->dealer, chorus_msg_id (hello));
    }
    bool changed = joined || chorus_msg_generation (hello) != peer->generation;
    peer->generation = chorus_msg_generation (hello);
    peer->head = chorus_msg_head (hello);
    peer->last_seen = chorus__mono ();
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

    //  Gossip: meet the peers it knows, as far as our bound allows
    zlist_t *peers = chorus_msg_peers (hello);
    for (char *item = peers? (char *) zlist_first (peers): NULL; item;
         item = (char *) zlist_next (peers))
        if (!s_connect_listed (self, item))
            break;
    //  The connection it came over is its key's, until the key is revoked
    if (key && self->inbox_gate)
        chorus__gate_tag (self->inbox_gate, chorus_msg_source_fd (hello), key);
}

void
chorus__peers_recv_beacon (chorus__engine_t *self)
{
    char *address = zstr_recv (self->beacon);
    zframe_t *frame = zframe_recv (self->beacon);
    //  A secure mesh's beacon carries the node's key: version 2, 54 bytes
    bool secure = self->config->keys != NULL;
    if (address && frame && zframe_size (frame) == (secure? S_BEACON_SECURE: S_BEACON)
    &&  memcmp (zframe_data (frame), secure? "CHO\x02": "CHO\x01", 4) == 0) {
        const uint8_t *data = zframe_data (frame);
        char instance [33];
        chorus__hex (data + 4, 16, instance);
        int port = (data [20] << 8) | data [21];
        char key [41] = "";
        if (secure)
            zmq_z85_encode (key, data + 22, 32);
        if (port > 0 && !streq (instance, self->instance)
        &&  !chorus__engine_peer (self, instance)) {
            char endpoint [128];
            snprintf (endpoint, sizeof (endpoint), "tcp://%s:%d", address, port);
            s_connect_pending (self, endpoint, secure? key: NULL);
        }
    }
    zstr_free (&address);
    zframe_destroy (&frame);
}

void
chorus__peers_beacon (chorus__engine_t *self, int port)
{
    uint8_t beacon [S_BEACON_SECURE] = {'C', 'H', 'O', 0x01};
    for (int i = 0; i < 16; i++)
        sscanf (self->instance + 2 * i, "%2hhx", &beacon [4 + i]);
    beacon [20] = (uint8_t) (port >> 8);
    beacon [21] = (uint8_t) port;
    size_t size = S_BEACON;
    if (self->config->keys) {
        beacon [3] = 0x02;
        zmq_z85_decode (beacon + 22, chorus__keys_public (self->config->keys));
        size = S_BEACON_SECURE;
    }
    zsock_send (self->beacon, "sbi", "PUBLISH", beacon, size, 1000);
}

void
chorus__peers_add_seed (chorus__engine_t *self, const char *seed)
{
    //  ENDPOINT@KEY on a secure mesh (checked at start)
    char endpoint [257];
    char key [41] = "";
    const char *key_text = self->config->keys? chorus__key_part (seed): NULL;
    if (key_text && !chorus__keys_resolve (self->config->keys, key_text, key))
        return;
    snprintf (endpoint, sizeof (endpoint), "%.*s",
              key_text? (int) (key_text - 1 - seed): (int) strlen (seed), seed);
    if (!zhashx_lookup (self->seeds, endpoint)) {
        s_seed_t *entry = (s_seed_t *) zmalloc (sizeof (s_seed_t));
        snprintf (entry->key, sizeof (entry->key), "%s", key);
        zhashx_insert (self->seeds, endpoint, entry);
    }
}

void
chorus__peers_revoke_pending (chorus__engine_t *self)
{
    zlistx_t *revoked = zlistx_new ();
    for (s_pending_t *pending = (s_pending_t *) zhashx_first (self->pending); pending;
         pending = (s_pending_t *) zhashx_next (self->pending))
        if (!chorus__keys_lookup (self->config->keys, pending->key))
            zlistx_add_end (revoked, (void *) zhashx_cursor (self->pending));
    for (const char *endpoint = (const char *) zlistx_first (revoked); endpoint;
         endpoint = (const char *) zlistx_next (revoked)) {
        void *dealer = s_pending_take (self, endpoint);
        chorus__socket_destroy (&dealer);
    }
    zlistx_destroy (&revoked);
}

//  --------------------------------------------------------------------------
//  Timers

//  Opens a connection to each seed that leads to no live peer, every
//  S_SEED_RETRY_MS while it does not answer
static void
s_probe_seeds (chorus__engine_t *self, uint64_t now)
{
    for (s_seed_t *seed = (s_seed_t *) zhashx_first (self->seeds); seed;
         seed = (s_seed_t *) zhashx_next (self->seeds)) {
        const char *endpoint = (const char *) zhashx_cursor (self->seeds);
        if (seed->instance && chorus__engine_peer (self, seed->instance))
            continue;
        zstr_free (&seed->instance);
        chorus__peer_t *peer = s_peer_at (self, endpoint);
        if (peer) {
            seed->instance = strdup (peer->instance);
            continue;
        }
        if (zhashx_lookup (self->pending, endpoint)
        ||  (seed->tried && now - seed->tried < S_SEED_RETRY_MS))
            continue;
        if (s_connect_pending (self, endpoint, seed->key [0]? seed->key: NULL))
            seed->tried = now;
    }
}

//  Says HELLO on connections that have come up, closes those that waited
//  too long for an answer
static void
s_pending_tick (chorus__engine_t *self, uint64_t now)
{
    zlistx_t *expired = zlistx_new ();
    for (s_pending_t *pending = (s_pending_t *) zhashx_first (self->pending); pending;
         pending = (s_pending_t *) zhashx_next (self->pending)) {
        if (now - pending->since > S_PENDING_MS)
            zlistx_add_end (expired, (void *) zhashx_cursor (self->pending));
        else
        if (!pending->hello_id [0]
        &&  s_send_hello (self, pending->dealer, NULL, pending->hello_id))
            self->connecting = true;
    }
    for (const char *endpoint = (const char *) zlistx_first (expired); endpoint;
         endpoint = (const char *) zlistx_next (expired)) {
        void *dealer = s_pending_take (self, endpoint);
        chorus__socket_destroy (&dealer);
    }
    zlistx_destroy (&expired);
}

//  Forgets the buckets of addresses that have been quiet long enough to
//  have refilled them
static void
s_admission_tick (chorus__engine_t *self, uint64_t now)
{
    uint64_t full_ms = (uint64_t) (S_BUCKET * 1000 / (self->config->peer_rate? self->config->peer_rate: 1));
    zlistx_t *idle = zlistx_new ();
    for (s_bucket_t *bucket = (s_bucket_t *) zhashx_first (self->admission); bucket;
         bucket = (s_bucket_t *) zhashx_next (self->admission))
        if (now - bucket->at > full_ms)
            zlistx_add_end (idle, (void *) zhashx_cursor (self->admission));
    for (const char *address = (const char *) zlistx_first (idle); address;
         address = (const char *) zlistx_next (idle)) {
        free (zhashx_lookup (self->admission, address));
        zhashx_delete (self->admission, address);
    }
    zlistx_destroy (&idle);
}

static void
s_heartbeat (chorus__engine_t *self, uint64_t now)
{
    //  Over a copy of the instance ids: greeting a peer iterates the table
    //  too (its HELLO lists the peers), which would move our own cursor,
    //  and removing one peer changes the table
    zlistx_t *instances = zhashx_keys (self->peers);
    zlistx_t *expired = zlistx_new ();
    for (const char *instance = (const char *) zlistx_first (instances); instance;
         instance = (const char *) zlistx_next (instances)) {
        chorus__peer_t *peer = chorus__engine_peer (self, instance);
        if (!peer)
            continue;
        uint64_t silence = now > peer->last_seen? now - peer->last_seen: 0;
        if (silence >= (uint64_t) self->config->expired_ms) {
            zlistx_add_end (expired, (void *) instance);
            continue;
        }
        chorus__peers_greet (self, peer);
        chorus__engine_flush_backlog (self, peer);
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
    for (const char *instance = (const char *) zlistx_first (expired); instance;
         instance = (const char *) zlistx_next (expired)) {
        chorus__peer_t *peer = chorus__engine_peer (self, instance);
        if (peer)
            chorus__peers_remove (self, peer, CHORUS_PEER_EXPIRED);
    }
    zlistx_destroy (&expired);      //  holds the copies' pointers, not its own
    zlistx_destroy (&instances);
}

void
chorus__peers_tick (chorus__engine_t *self, uint64_t now)
{
    self->connecting = false;   //  set again by whatever still waits
    s_heartbeat (self, now);
    s_pending_tick (self, now);
    s_probe_seeds (self, now);
    s_admission_tick (self, now);
    //  What we announce changes with every peer met or lost; a burst of
    //  joins costs one round of HELLOs, not one per join
    if (self->announce && now - self->last_announce >= S_ANNOUNCE_MS) {
        self->announce = false;
        self->last_announce = now;
        self->generation++;
        chorus_msg_t *hello = s_hello (self, NULL);
        for (chorus__peer_t *peer = (chorus__peer_t *) zhashx_first (self->peers); peer;
             peer = (chorus__peer_t *) zhashx_next (self->peers)) {
            if (!peer->hello_sent)
                continue;   //  its first HELLO answers its own, when its connection is up
            char id [33];
            chorus__new_id (id);    //  every message of ours has an id of its own
            chorus_msg_set_id (hello, id);
            if (chorus_msg_send (hello, peer->dealer) == 0)
                peer->hello_sent = true;
        }
        chorus_msg_destroy (&hello);
    }
}
