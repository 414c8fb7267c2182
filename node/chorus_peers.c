/*  chorus_peers.c — meeting and keeping peers: connections to seeds and
    to endpoints heard of by gossip or beacon, the HELLO exchange that makes
    a peer of them within the node's bounds (protocol sections 4 and 4.5),
    heartbeats that find the evasive and the expired, and the hand-over of
    a departed peer's work.
*/
#include "chorus_peers.h"
#include "chorus_fake.h"
#include "chorus_datagram.h"

#include <ctype.h>
#include <netinet/in.h>
#include <unistd.h>

#define S_PENDING_MS 5000       //  how long a connection waits for the peer's HELLO
#define S_SEED_RETRY_MS 5000    //  a seed that did not answer is tried again after this,
#define S_SEED_FIRST_MS 1000    //  the first time after this, doubled each time: a seed
                                //  that refused us at a burst of joins (section 4.5)
                                //  soon has room again
#define S_PENDING_TRIES 3       //  a member heard of is dialled this often, unanswered
#define S_ANNOUNCE_MS 500       //  our HELLO goes to every peer at most this often
#define S_BUCKET 50             //  new peers one remote address may bring at once
#define S_ADDRESSES 4096        //  remote addresses whose buckets we keep at most
#define S_DEALER_HWM 1000       //  messages queued for one peer at most
#define S_MAX_FRAME (CHORUS_MSG_MAX_BODY + 1024)
#define S_BEACON 22             //  bytes of a plaintext mesh's beacon (version 1)
#define S_BEACON_SECURE 54      //  and of a secure mesh's (version 2, with the key)
#define S_HELPERS 3             //  members asked to probe for us before suspicion
#define S_RELAYS 64             //  probes we make for others at once, at most
#define S_UPDATES 256           //  membership news kept to pass on, at most
#define S_PIGGYBACK 64          //  members entries on one probe message, at most
#define S_SAMPLE 2              //  of them, live members picked at random when
                                //  there is less news (anti-entropy)
#define S_RETRANSMIT 3          //  news goes out this many times log2 (N + 1)
#define S_GOSSIP_MS 200         //  while there is news, it goes out this often
#define S_NEWCOMER_ROUNDS 2     //  our HELLO goes again to a node that came to us
                                //  first this many times, S_ANNOUNCE_MS apart
#define S_FANOUT 3              //  to this many members at random
#define S_LATE_MS 200           //  timers handled this late: we were stalled ourselves
#define S_HEALTH_MAX 8          //  local health at its worst: our probe times x 9
#define S_FULL_MESH 8           //  up to this many members, we meet them all
#define S_DATAGRAM_MISSES 2     //  probes by datagram in a row unanswered: stop a while
#define S_DATAGRAMS_OFF_MS 60000    //  that while
#define S_DATAGRAM_EVERY 10     //  one probe in this many goes over the connection
#define S_DATAGRAM_BATCH 64     //  datagrams read per wake, at most
#define S_RINGS 3               //  past it, we watch our neighbours on each of these
                                //  rings (section 6.1), and meet only whom we need
#define S_WATCH S_FULL_MESH     //  members we watch at most (both neighbours on each
                                //  ring, or every member of a full mesh)
_Static_assert (2 * S_RINGS <= S_WATCH, "both neighbours on every ring are watched");
#define S_TOMBSTONES 1024       //  members declared dead we remember at most
#define S_TOMBSTONE_MS 30000    //  and for this long, so stale news does not revive them
#define S_GREET_MS 2000         //  a member we greeted that has not answered is probed
                                //  and greeted again after this, doubled each time
#define S_GREET_MAX_MS 30000    //  up to this

//  A probe we make for another member, which asked with PING-REQ
typedef struct {
    char target [33];           //  the member we probe for it
    char requester [33];        //  who asked
    char request [65];          //  the PING-REQ's id
    uint64_t until;             //  when we give up (monotonic)
} s_relay_t;

//  News about a member to pass on with our probes (protocol section 6.2)
typedef struct {
    char *entry;                //  the members entry: "STATE INCARNATION INSTANCE
                                //  ENDPOINT[@KEY] SERVICE FLAGS"
    size_t sent;                //  how many times it went out
} s_update_t;

//  A connection opened to an endpoint we heard of, awaiting the peer's HELLO
typedef struct {
    void *dealer;               //  the connection (libzmq handle)
    uint64_t since;             //  when it was opened (monotonic)
    uint64_t wait;              //  how long it waits for an answer (ms)
    char hello_id [33];         //  id of the HELLO we sent on it, "" until sent
    char key [41];              //  the server key we expect there, "" on a plaintext mesh
    char expect [33];           //  the instance news said is there, or "" (from a list
                                //  of endpoints, a seed or a beacon)
    bool list;                  //  our HELLO lists our peers and asks for theirs: we
                                //  dial a seed or a beacon, not a member we heard of
    int tries;                  //  how many times we dialled it before, unanswered
} s_pending_t;

//  A member declared dead, remembered for a while
typedef struct {
    uint64_t incarnation;       //  the incarnation it died at
    uint64_t until;             //  when we forget it (monotonic)
} s_tombstone_t;

//  A seed endpoint from the configuration
typedef struct {
    char *instance;             //  the peer we met through it, or NULL
    uint64_t tried;             //  when we last opened a connection to it (monotonic)
    int attempts;               //  how many times it has not answered us since we last
                                //  met a peer through it
    char key [41];              //  its key, "" on a plaintext mesh
} s_seed_t;

static uint64_t s_seed_wait (s_seed_t *seed);

//  New peers a remote address may still bring: a bucket refilled over time
typedef struct {
    double tokens;              //  admissions left
    uint64_t at;                //  when tokens was computed (monotonic)
} s_bucket_t;

struct _chorus__peers_t {
    chorus__context_t *context; //  what the engine shares with us
    chorus__config_t *config;   //  its configuration
    chorus__peers_fn *fn;       //  told what happens to a peer
    void *fn_arg;               //  and its argument
    zhashx_t *peers;            //  instance -> chorus__peer_t
    zhashx_t *endpoints;        //  inbox endpoint -> chorus__peer_t (not owned)
    zhashx_t *waiting;          //  instance -> chorus__peer_t (not owned): our HELLO
                                //  or answers wait for its connection
    zhashx_t *greeting;         //  instance -> chorus__peer_t (not owned): members
                                //  we greeted that have not answered yet
    chorus__timers_t *timers;   //  the next step of each probe under way
    chorus__timers_t *idle;     //  when each connection to a met peer may have gone
                                //  unused long enough to close (section 5.2)
    size_t evasive;             //  how many peers are evasive (suspect)
    int health;                 //  local health, 0 (well) to S_HEALTH_MAX: our probe
                                //  times are stretched by 1 + health (section 6.1)
    uint64_t incarnation;       //  ours: raised to refute a suspicion of us
    uint64_t probe_due;         //  no probe of the schedule starts before this: one a
                                //  period at most (monotonic)
    chorus__peer_t *watch [S_WATCH];    //  the members we watch (section 6.1): every
                                //  member in a small mesh, else our successor and
                                //  predecessor on each ring (not owned: a peer leaves
                                //  it when forgotten)
    size_t watch_size;          //  how many
    char **order;               //  every member, shuffled: we sample our news from it
    size_t order_size;          //  how many
    size_t order_next;          //  where the next sample starts
    bool ring_dirty;            //  members came or went: work the rings out again
    char **links;               //  instance ids of the met peers we have a connection
                                //  to: news and requests to probe go to them
    size_t links_size;          //  how many
    size_t links_max;           //  room
    zhashx_t *tombstones;       //  instance -> s_tombstone_t: members declared dead
    bool observing;             //  we observe every publisher: we meet every member
    bool published;             //  our log has events: we meet every subscriber
    s_relay_t relays [S_RELAYS];    //  probes we make for others
    size_t relays_size;         //  how many
    zhashx_t *updates;          //  instance -> s_update_t: news to pass on
    uint64_t gossip_due;        //  when news next goes to a few members (monotonic)
    zhashx_t *newcomers;        //  instance -> rounds left: peers that came to us
                                //  first, to whom our HELLO goes again
    zhashx_t *backlog;          //  endpoints heard of, waiting for room among the
                                //  pending connections (keys, at most max_peers)
    uint64_t admission_due;     //  when idle buckets are next forgotten (monotonic)
    zhashx_t *pending;          //  endpoint -> s_pending_t, awaiting the peer's HELLO
    zhashx_t *seeds;            //  seed endpoint -> s_seed_t
    zhashx_t *admission;        //  remote address -> s_bucket_t
    char *endpoint;             //  our inbox endpoint, as announced
    char *pub_endpoint;         //  our PUB endpoint, as announced
    chorus__gate_t *inbox_gate; //  the connections into our inbox
    uint64_t started;           //  when we started (ms since the epoch)
    uint64_t generation;        //  HELLO generation, +1 per announced change
    uint64_t last_announce;     //  when our HELLO last went to every peer (monotonic)
    uint64_t last_newcomers;    //  when it last went to the newcomers (monotonic)
    chorus__sub_t *subs;        //  our own subscriptions
    size_t subs_size;           //  how many
    bool announce;              //  send HELLO to every peer at the next tick
    bool connecting;            //  a HELLO waits for its connection: tick soon
    bool warned_loopback;       //  we said that peers elsewhere cannot reach us
    int datagrams;              //  our UDP socket for probes, or -1
    bool datagram_heard;        //  what we hear now came by datagram
    size_t probes;              //  probes started (one in S_DATAGRAM_EVERY goes over
                                //  the connection)
    bool listed;                //  a HELLO with a list of peers has come: we know the
                                //  membership, and say so (chorus.lists: no)
};

//  A probe time stretched by our local health: a node that finds itself
//  slow gives its peers longer before it suspects them (Lifeguard)
static uint64_t
s_stretched (chorus__peers_t *self, uint64_t ms)
{
    return ms * (uint64_t) (1 + self->health);
}

static void
s_health (chorus__peers_t *self, int change)
{
    int health = self->health + change;
    self->health = health < 0? 0: health > S_HEALTH_MAX? S_HEALTH_MAX: health;
}

//  A DEALER into an endpoint's inbox, or NULL (after a warning) when the
//  system cannot give us one. On a secure mesh it is a CURVE client of the
//  node with that key, and without a key there is no connection.
static void *
s_dealer_new (chorus__peers_t *self, const char *endpoint, const char *key)
{
    if (self->config->keys && !chorus__key_valid (key))
        return NULL;
    //  A peer on another host cannot reach a loopback address: say so, once
    if (!self->warned_loopback && self->endpoint && chorus__endpoint_loopback (self->endpoint)
    &&  strncmp (endpoint, "tcp://", 6) == 0 && !chorus__endpoint_loopback (endpoint)) {
        chorus__log (CHORUS_LOG_WARNING, "chorus %s: we announce %s, a loopback address, to %s: "
                     "a peer on another host cannot reach it; %s", self->config->service,
                     self->endpoint, endpoint, self->config->advertise?
                     "the address advertised (--advertise, CHORUS_ADVERTISE) is loopback":
                     "listen on a wildcard or another interface, or set --advertise "
                     "(CHORUS_ADVERTISE)");
        self->warned_loopback = true;
    }
    void *dealer = chorus__socket_new (ZMQ_DEALER);
    if (!dealer) {
        chorus__context_warn (self->context, W_SOCKET, "cannot open a connection to %s: %s",
                              endpoint, zmq_strerror (zmq_errno ()));
        return NULL;
    }
    //  Routing id: 0x01 then our binary instance id, on every DEALER we
    //  open, so the peer's ROUTER knows who speaks (protocol section 5)
    uint8_t routing_id [17];
    routing_id [0] = 0x01;
    for (int i = 0; i < 16; i++)
        sscanf (self->context->instance + 2 * i, "%2hhx", &routing_id [1 + i]);
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
    if (self->context->monitor)
        chorus__monitor_watch (self->context->monitor, dealer, "dealer");
    if (zmq_connect (dealer, endpoint)) {
        chorus__context_log (self->context, "cannot connect to %s: %s", endpoint,
                             zmq_strerror (zmq_errno ()));
        chorus__socket_destroy (&dealer);
    }
    return dealer;
}

//  The state names of a members entry
static const char *s_states [] = {"alive", "suspect", "dead", NULL};
#define S_ALIVE 0
#define S_SUSPECT 1
#define S_DEAD 2

static bool s_entry (chorus__peers_t *self, int state, chorus__peer_t *peer, char *entry);

//  Our HELLO. With list, it lists the members we know: as member entries
//  (section 6.2) for a node that reads them (entries), from the offset-th
//  on, else as endpoints
static chorus_msg_t *
s_hello (chorus__peers_t *self, const char *answers, bool list, bool entries, size_t offset)
{
    chorus_msg_t *hello = chorus__context_msg (self->context, CHORUS_MSG_HELLO);
    chorus_msg_set_service (hello, self->config->service);
    chorus_msg_set_instance (hello, self->context->instance);
    chorus_msg_set_endpoint (hello, self->endpoint);
    chorus_msg_set_pub_endpoint (hello, self->pub_endpoint);
    chorus_msg_set_generation (hello, self->generation);
    chorus_msg_set_head (hello, chorus_store_head (self->context->store));
    //  A node that knows the membership needs no list: it gets none, and
    //  says so, so that it is sent none either (protocol section 4.3). One
    //  that has had no list yet asks for one, whoever it speaks to
    if (!self->listed)
        list = true;
    size_t listed = list? 0: CHORUS_MSG_MAX_LIST;
    if (!list)
        chorus_msg_set_header (hello, "chorus.lists", "no");
    size_t skipped = 0;
    if (offset >= zhashx_size (self->peers))
        offset = 0;
    for (chorus__peer_t *peer = list? (chorus__peer_t *) zhashx_first (self->peers): NULL;
         peer && listed < CHORUS_MSG_MAX_LIST;
         peer = (chorus__peer_t *) zhashx_next (self->peers)) {
        if (entries) {
            char entry [257];
            if (peer->evasive || skipped++ < offset)
                continue;
            if (s_entry (self, S_ALIVE, peer, entry))
                chorus_msg_add_peers (hello, entry);
        }
        else
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
    chorus_msg_set_header (hello, "chorus.members", "yes");
    chorus_msg_set_header (hello, "chorus.acks", "lists");
    char incarnation [24];
    snprintf (incarnation, sizeof (incarnation), "%" PRIu64, self->incarnation);
    chorus_msg_set_header (hello, "chorus.incarnation", incarnation);
    if (self->config->keys)
        chorus_msg_set_header (hello, "chorus.key", chorus__keys_public (self->config->keys));
    if (answers)
        chorus_msg_set_header (hello, "chorus.answers", answers);
    return hello;
}

//  Sends our HELLO, with our list of peers or without; writes its id into
//  id_out (33 bytes) when given
static int
s_send_hello (chorus__peers_t *self, void *dealer, const char *answers, bool list,
              char *id_out)
{
    chorus_msg_t *hello = s_hello (self, answers, list, false, 0);
    int rc = chorus_msg_send (hello, dealer);
    if (rc == 0 && id_out)
        snprintf (id_out, 33, "%s", chorus_msg_id (hello));
    chorus_msg_destroy (&hello);
    return rc;
}

//  Sends our HELLO to a peer, answering the HELLO with that id, or NULL;
//  0, or -1 if the connection is not up yet
static int
s_send_hello_to (chorus__peers_t *self, chorus__peer_t *peer, const char *answers, bool list)
{
    chorus_msg_t *hello = s_hello (self, answers, list, peer->entries, 0);
    int rc = chorus_msg_send (hello, peer->dealer);
    if (rc == 0)
        peer->last_sent = chorus__mono ();
    chorus_msg_destroy (&hello);
    return rc;
}

//  A met peer we do not watch and have had no work with for the idle time
//  (section 5.2): no event, command, FETCH or answer went to it since, and
//  no command or answer waits. News of its death is taken as for a member
//  we have not met (an event still unacknowledged after the idle time, with
//  an acknowledgement timeout set longer, then goes to another instance)
static bool s_watched (chorus__peers_t *self, chorus__peer_t *peer);

static bool
s_idle_quiet (chorus__peers_t *self, chorus__peer_t *peer, uint64_t now)
{
    uint64_t idle_ms = (uint64_t) self->config->idle_close_ms;
    return idle_ms > 0 && now >= peer->last_work + idle_ms && !peer->commands
        && !chorus__peer_backlog (peer) && !s_watched (self, peer);
}

//  Our connection to a met peer may go unused long enough to close: its
//  timer is due then, and looks again (section 5.2). Setting it is lazy:
//  traffic does not move it, the visit does
static void
s_idle_arm (chorus__peers_t *self, chorus__peer_t *peer)
{
    if (self->config->idle_close_ms > 0 && peer->met && peer->dealer
    &&  !chorus__timers_pending (&peer->idle)) {
        chorus__timers_set (self->idle, &peer->idle, chorus__peer_last_used (peer)
                            + (uint64_t) self->config->idle_close_ms, peer);
    }
}

//  The peer's greeter: our first HELLO, once the connection is up, still
//  answers the peer's (section 4.4), so that a seed it dialled under
//  another name knows us
static int
s_greet (chorus__peer_t *peer, void *arg)
{
    chorus__peers_t *self = (chorus__peers_t *) arg;
    if (!peer->dealer) {
        //  A member known from news, which we now need, or a peer whose
        //  connection we closed unused: connections are opened on demand
        //  (section 5)
        peer->dealer = s_dealer_new (self, peer->endpoint, peer->key);
        if (!peer->dealer) {
            //  No socket to be had (ZeroMQ's limit), or a connect refused:
            //  tried again at each tick, with what else waits for its
            //  connection, so that what we opened it for (work, an answer,
            //  the HELLO that announces a change) is not forgotten
            zhashx_update (self->waiting, peer->instance, peer);
            return -1;
        }
        chorus__context_log (self->context, "connecting to %s/%.8s at %s%s", peer->service,
                             peer->instance, peer->endpoint, peer->closed_idle? " again": "");
        s_idle_arm (self, peer);
    }
    //  We know the membership of a member we dial on news: no list. A peer
    //  we met, whose connection we open again, knows us: our HELLO answers
    //  one of its own, so that it does not answer, and lists nothing
    //  (section 5.2)
    int rc = s_send_hello_to (self, peer, peer->answers [0]? peer->answers: NULL,
                              peer->met && !peer->listless && !peer->closed_idle);
    if (rc == 0)
        peer->closed_idle = false;
    if (rc) {
        self->connecting = true;    //  what waits for it goes at the next tick
        zhashx_update (self->waiting, peer->instance, peer);
    }
    if (!peer->met && !peer->greeted) {
        //  Its answer may never come (it refused us, or it is gone and the
        //  news of it stale, so that the connection never comes up): we
        //  wait for it, a while
        peer->greeted = chorus__mono ();
        zhashx_update (self->greeting, peer->instance, peer);
    }
    return rc;
}

//  How long we wait for the answer to our greeting of a member we have
//  not met, after so many went unanswered
static uint64_t
s_greet_wait (chorus__peer_t *peer)
{
    uint64_t wait = S_GREET_MS;
    for (int i = 0; i < peer->greetings && wait < S_GREET_MAX_MS; i++)
        wait *= 2;
    return wait < S_GREET_MAX_MS? wait: S_GREET_MAX_MS;
}

//  The peer's waiter: answers wait for its connection, tried at each tick
static void
s_wait (chorus__peer_t *peer, void *arg)
{
    chorus__peers_t *self = (chorus__peers_t *) arg;
    zhashx_update (self->waiting, peer->instance, peer);
}

//  --------------------------------------------------------------------------
//  Membership news (protocol section 6.2): what we learn or conclude about
//  a member goes out on our next probe messages, each entry a bounded
//  number of times, so that it spreads through the mesh in O(log N) rounds
//  at a constant cost per message

static void
s_update_destroy (void **item)
{
    s_update_t *update = (s_update_t *) *item;
    if (update) {
        free (update->entry);
        free (update);
        *item = NULL;
    }
}


//  Writes the members entry for a peer, or for us (peer NULL), into entry
//  (257 bytes), with its service and flags ("s": it has subscriptions, "-":
//  none) after the four parts every node reads; without them if they do not
//  fit (a long endpoint with its key), and false if even that does not
static bool
s_entry (chorus__peers_t *self, int state, chorus__peer_t *peer, char *entry)
{
    uint64_t incarnation = peer? peer->incarnation: self->incarnation;
    const char *instance = peer? peer->instance: self->context->instance;
    const char *endpoint = peer? peer->endpoint: self->endpoint;
    const char *key = peer? peer->key: self->config->keys?
                      chorus__keys_public (self->config->keys): NULL;
    const char *service = peer? peer->service: self->config->service;
    bool subscriber = peer? peer->subscriber: self->subs_size > 0;
    if (!endpoint)
        return false;
    char address [300];
    int size = self->config->keys && key?
        snprintf (address, sizeof (address), "%s@%s", endpoint, key):
        snprintf (address, sizeof (address), "%s", endpoint);
    if (size <= 0 || size >= (int) sizeof (address))
        return false;
    size = snprintf (entry, 257, "%s %" PRIu64 " %s %s %s %s", s_states [state], incarnation,
                     instance, address, service, subscriber? "s": "-");
    if (size > 0 && size < 257)
        return true;
    size = snprintf (entry, 257, "%s %" PRIu64 " %s %s", s_states [state], incarnation,
                     instance, address);
    return size > 0 && size < 257;
}

//  Makes room in a bounded table: deletes the item that scores highest
static void
s_evict (zhashx_t *table, uint64_t (*score) (const void *item))
{
    const char *worst_key = NULL;
    uint64_t worst = 0;
    for (void *item = zhashx_first (table); item; item = zhashx_next (table))
        if (!worst_key || score (item) > worst) {
            worst = score (item);
            worst_key = (const char *) zhashx_cursor (table);
        }
    if (worst_key)
        zhashx_delete (table, worst_key);
}

//  The item under key in a bounded table, a new zeroed one of this size if
//  there is none; a full table first makes room by its rule
static void *
s_slot (zhashx_t *table, const char *key, size_t bound,
        uint64_t (*score) (const void *item), size_t size)
{
    void *item = zhashx_lookup (table, key);
    if (!item) {
        if (zhashx_size (table) >= bound)
            s_evict (table, score);
        item = zmalloc (size);
        zhashx_insert (table, key, item);
    }
    return item;
}

//  News that went out more often goes first when the table is full
static uint64_t
s_update_sent (const void *item)
{
    return ((const s_update_t *) item)->sent;
}

//  A tombstone to be forgotten sooner goes first when the table is full
static uint64_t
s_tombstone_nearness (const void *item)
{
    return UINT64_MAX - ((const s_tombstone_t *) item)->until;
}

//  Queues news about a peer, or about us (peer NULL), replacing older news
//  about it
static void
s_spread (chorus__peers_t *self, int state, chorus__peer_t *peer)
{
    char entry [257];
    const char *instance = peer? peer->instance: self->context->instance;
    if (!s_entry (self, state, peer, entry))
        return;
    //  Full, the news that went out most often makes room
    s_update_t *update = (s_update_t *) s_slot (self->updates, instance, S_UPDATES,
                                                 s_update_sent, sizeof (s_update_t));
    free (update->entry);
    update->entry = strdup (entry);
    update->sent = 0;
}

//  How often one piece of news goes out: S_RETRANSMIT x log2 (N + 1)
static size_t
s_retransmits (chorus__peers_t *self)
{
    size_t members = zhashx_size (self->peers) + 1, log2 = 1;
    while (members >>= 1)
        log2++;
    return S_RETRANSMIT * log2;
}

//  A live member's entry, as every probe message samples them: made once
//  while it stays the same, not on every PING and PONG
static const char *
s_sample (chorus__peers_t *self, chorus__peer_t *peer)
{
    if (!peer->sample || peer->sample_incarnation != peer->incarnation
    ||  peer->sample_subscriber != peer->subscriber) {
        char entry [257];
        zstr_free (&peer->sample);
        if (!s_entry (self, S_ALIVE, peer, entry))
            return NULL;
        peer->sample = strdup (entry);
        peer->sample_incarnation = peer->incarnation;
        peer->sample_subscriber = peer->subscriber;
    }
    return peer->sample;
}

//  Adds our news to a probe message: the entries sent least often first,
//  then a few live members at random, so that what one node missed it
//  learns later (anti-entropy)
static void
s_piggyback (chorus__peers_t *self, chorus_msg_t *msg)
{
    //  The news sent least often, at most S_PIGGYBACK - S_SAMPLE entries
    s_update_t *chosen [S_PIGGYBACK];
    const char *chosen_key [S_PIGGYBACK];
    size_t added = 0;
    for (s_update_t *item = (s_update_t *) zhashx_first (self->updates); item;
         item = (s_update_t *) zhashx_next (self->updates)) {
        size_t at = added;
        while (at > 0 && chosen [at - 1]->sent > item->sent)
            at--;
        if (at >= S_PIGGYBACK - S_SAMPLE)
            continue;
        if (added < S_PIGGYBACK - S_SAMPLE)
            added++;
        for (size_t i = added - 1; i > at; i--) {
            chosen [i] = chosen [i - 1];
            chosen_key [i] = chosen_key [i - 1];
        }
        chosen [at] = item;
        chosen_key [at] = (const char *) zhashx_cursor (self->updates);
    }
    size_t limit = s_retransmits (self);
    for (size_t i = 0; i < added; i++) {
        chorus_msg_add_members (msg, chosen [i]->entry);
        if (++chosen [i]->sent >= limit)
            zhashx_delete (self->updates, chosen_key [i]);
    }
    //  A sample of live members from the shuffled order, where the last
    //  sample stopped
    size_t first = self->order_next;
    if (self->order_size)
        self->order_next = (first + S_SAMPLE) % self->order_size;
    for (size_t i = 0; i < self->order_size && added < S_PIGGYBACK; i++) {
        size_t index = (first + i) % self->order_size;
        chorus__peer_t *peer = chorus__context_peer (self->context, self->order [index]);
        const char *entry = peer && !peer->evasive? s_sample (self, peer): NULL;
        if (entry) {
            chorus_msg_add_members (msg, entry);
            added++;
        }
        if (i + 1 >= S_SAMPLE)
            break;
    }
}

static void s_probe (chorus__peers_t *self, chorus__peer_t *peer, uint64_t now);
static bool s_connect_listed (chorus__peers_t *self, const char *item, const char *expect);
static chorus__peer_t *s_peer_at (chorus__peers_t *self, const char *endpoint);
static void s_report (chorus__peers_t *self, chorus__peer_t *peer, chorus_peer_state_t state);
static void s_consider (chorus__peers_t *self, chorus__peer_t *peer);

//  Remembers that a member was declared dead, so that older news of it
//  alive, still going round, does not bring it back
static void
s_bury (chorus__peers_t *self, const char *instance, uint64_t incarnation)
{
    //  Full, the one forgotten soonest makes room
    s_tombstone_t *stone = (s_tombstone_t *) s_slot (self->tombstones, instance, S_TOMBSTONES,
                                                     s_tombstone_nearness,
                                                     sizeof (s_tombstone_t));
    if (incarnation > stone->incarnation)
        stone->incarnation = incarnation;
    stone->until = chorus__mono () + S_TOMBSTONE_MS;
}

//  True if news of the member alive at this incarnation is older than its
//  death
static bool
s_buried (chorus__peers_t *self, const char *instance, uint64_t incarnation)
{
    s_tombstone_t *stone = (s_tombstone_t *) zhashx_lookup (self->tombstones, instance);
    if (!stone)
        return false;
    if (chorus__mono () >= stone->until) {
        zhashx_delete (self->tombstones, instance);
        return false;
    }
    return incarnation <= stone->incarnation;
}

//  The met peers we have a connection to
static void
s_link (chorus__peers_t *self, chorus__peer_t *peer)
{
    for (size_t i = 0; i < self->links_size; i++)
        if (streq (self->links [i], peer->instance))
            return;
    if (self->links_size == self->links_max) {
        self->links_max = self->links_max? self->links_max * 2: 16;
        self->links = (char **) realloc (self->links, self->links_max * sizeof (char *));
        assert (self->links);
    }
    self->links [self->links_size++] = strdup (peer->instance);
}

static void
s_unlink (chorus__peers_t *self, const char *instance)
{
    for (size_t i = 0; i < self->links_size; i++)
        if (streq (self->links [i], instance)) {
            free (self->links [i]);
            self->links [i] = self->links [--self->links_size];
            return;
        }
}

//  A member known from news (or a HELLO's list of members): its service
//  and endpoint, not yet met. We meet it when we need to (s_consider).
static chorus__peer_t *
s_member_new (chorus__peers_t *self, const char *instance, const char *address,
              const char *service, bool subscriber, uint64_t incarnation)
{
    char endpoint [257];
    const char *key = NULL;
    if (self->config->keys) {
        key = chorus__key_part (address);
        //  On a secure mesh an endpoint is worth nothing without a key we trust
        if (!key || !chorus__key_valid (key) || !chorus__keys_lookup (self->config->keys, key))
            return NULL;
        snprintf (endpoint, sizeof (endpoint), "%.*s", (int) (key - 1 - address), address);
    }
    else
        snprintf (endpoint, sizeof (endpoint), "%s", address);
    if (!*endpoint || (self->endpoint && streq (endpoint, self->endpoint))
    ||  s_peer_at (self, endpoint)
    ||  zhashx_size (self->peers) >= (size_t) self->config->max_peers)
        return NULL;
    chorus__peer_t *peer = chorus__peer_new (instance, service, endpoint, "", NULL, key);
    peer->incarnation = incarnation;
    peer->subscriber = subscriber;
    chorus__peer_set_greeter (peer, s_greet, self);
    chorus__peer_set_waiter (peer, s_wait);
    zhashx_insert (self->peers, peer->instance, peer);
    zhashx_update (self->endpoints, peer->endpoint, peer);
    self->ring_dirty = true;
    chorus__context_log (self->context, "member %s/%.8s at %s", service, instance, endpoint);
    //  Passed on, as the news that brought it
    s_spread (self, S_ALIVE, peer);
    self->fn (peer, CHORUS__PEER_JOINED, self->fn_arg);
    s_report (self, peer, CHORUS_PEER_JOINED);
    return peer;
}

//  Takes in one members entry: news on a probe message, or an item of a
//  HELLO's list of members
static void
s_absorb_entry (chorus__peers_t *self, const char *item, uint64_t now)
{
    //  Most entries are the samples every probe message carries: a member
    //  we know, alive at an incarnation we know. Those change nothing, and
    //  are told apart without parsing the whole entry
    if (strncmp (item, "alive ", 6) == 0) {
        char *end = NULL;
        uint64_t incarnation = strtoull (item + 6, &end, 10);
        if (end && *end == ' ' && strnlen (end + 1, 34) > 33 && end [33] == ' ') {
            char instance [33];
            memcpy (instance, end + 1, 32);
            instance [32] = 0;
            chorus__peer_t *peer = chorus__context_peer (self->context, instance);
            if (peer && incarnation <= peer->incarnation && isdigit ((unsigned char) item [6]))
                return;
        }
    }
    char state_name [8], instance [33], address [257], service [65], flags [8];
    uint64_t incarnation;
    int parts = sscanf (item, "%7s %" SCNu64 " %32s %256s %64s %7s", state_name, &incarnation,
                        instance, address, service, flags);
    if (parts < 4 || strlen (instance) != 32) {
        self->context->counters [C_MALFORMED]++;
        return;
    }
    int state = 0;
    while (s_states [state] && !streq (s_states [state], state_name))
        state++;
    if (!s_states [state]) {
        self->context->counters [C_MALFORMED]++;
        return;
    }
    //  Its service and flags, when the sender knows them (an older node
    //  sends the four parts alone)
    bool described = parts == 6 && chorus__valid_name (service, 64)
                  && (streq (flags, "s") || streq (flags, "-"));
    bool subscriber = described && streq (flags, "s");
    if (streq (instance, self->context->instance)) {
        //  Suspected, or said dead: we refute with a new incarnation
        if (state != S_ALIVE && incarnation >= self->incarnation
        &&  incarnation < UINT64_MAX) {
            self->incarnation = incarnation + 1;
            s_health (self, +1);    //  others found us slow
            chorus__context_log (self->context, "suspected at incarnation %" PRIu64
                                 ": we refute with %" PRIu64, incarnation,
                                 self->incarnation);
            s_spread (self, S_ALIVE, NULL);
        }
        return;
    }
    chorus__peer_t *peer = chorus__context_peer (self->context, instance);
    if (!peer) {
        if (state == S_DEAD)
            s_bury (self, instance, incarnation);
        if (state != S_ALIVE)
            return;     //  word that it is suspect or dead
        if (described && !s_buried (self, instance, incarnation))
            //  A member: known now, met when we need to
            s_member_new (self, instance, address, service, subscriber, incarnation);
        else
            //  An older node's news says nothing of the member but where it
            //  is; and news of a member declared dead, no newer than its
            //  death, may be stale (it died) or not (it was cut off from us
            //  and is back): either way we meet it first hand, as far as our
            //  bounds allow, rather than take the word for it
            s_connect_listed (self, address, instance);
        return;
    }
    if (incarnation < peer->incarnation)
        return;     //  older than what we know
    if (state == S_ALIVE) {
        if (incarnation > peer->incarnation) {
            peer->incarnation = incarnation;
            if (described && !peer->met && subscriber != peer->subscriber) {
                peer->subscriber = subscriber;
                s_consider (self, peer);
            }
            //  A refutation, or a change of what it announces: pass it on
            s_spread (self, S_ALIVE, peer);
        }
    }
    else
    if (peer->met && !s_idle_quiet (self, peer, now))
        //  Another's word never expires a peer we have met (we may have
        //  work with it): we probe it ourselves, and only our own probe
        //  decides
        s_probe (self, peer, now);
    else
    if (state == S_DEAD) {
        //  A member we have not met, and so have no work with, or a met one
        //  we do not watch and sent no work for the idle time: its probers
        //  decided. If it lives, it refutes, and comes back
        peer->incarnation = incarnation;
        s_spread (self, S_DEAD, peer);
        chorus__peers_remove (self, peer, CHORUS_PEER_EXPIRED);
        self->gossip_due = now;     //  such news goes out at once
    }
    //  Suspicion of a member we do not speak to is for its probers
}

//  Takes in the members entries of a probe message from a peer
static void
s_absorb (chorus__peers_t *self, chorus_msg_t *msg)
{
    zlist_t *members = chorus_msg_members (msg);
    uint64_t now = chorus__mono ();
    for (char *item = members? (char *) zlist_first (members): NULL; item;
         item = (char *) zlist_next (members))
        s_absorb_entry (self, item, now);
}

//  --------------------------------------------------------------------------
//  Probes (protocol section 6.1): a member we watch once we have not heard
//  from it for a while (s_probe_tick), and any member we have reason to
//  doubt at once. A probe
//  unanswered after half a period asks S_HELPERS others to probe for us;
//  unanswered for the evasive time, the member is suspect; for the expired
//  time, it is dead here.

//  One of our probe messages, with our head and our news
static chorus_msg_t *
s_probe_msg (chorus__peers_t *self, int type)
{
    chorus_msg_t *msg = chorus__context_msg (self->context, type);
    chorus_msg_set_head (msg, chorus_store_head (self->context->store));
    s_piggyback (self, msg);
    return msg;
}

//  Sends one of our probe messages to a peer, with our news
static void
s_send_probe (chorus__peers_t *self, chorus__peer_t *peer, int type, const char *target,
              const char *request, char *id_out)
{
    chorus_msg_t *msg = s_probe_msg (self, type);
    if (target)
        chorus_msg_set_target (msg, target);
    if (request)
        chorus_msg_set_request (msg, request);
    if (id_out)
        snprintf (id_out, 33, "%s", chorus_msg_id (msg));
    chorus__peer_send (peer, msg);
    chorus_msg_destroy (&msg);
}

//  How long a probe waits for a direct answer before it asks others
static uint64_t
s_direct_ms (chorus__config_t *config)
{
    int period = config->heartbeat_ms < config->evasive_ms?
                 config->heartbeat_ms: config->evasive_ms;
    return period > 1? (uint64_t) period / 2: 1;
}

//  The peer's inbox as a socket address, worked out once; NULL if its
//  endpoint has none (a name, which would need a lookup)
static const struct sockaddr_storage *
s_inbox_address (chorus__peer_t *peer)
{
    if (!peer->inbox_size && !peer->inbox_unusable)
        peer->inbox_unusable = !chorus__endpoint_sockaddr (peer->endpoint, &peer->inbox,
                                                           &peer->inbox_size);
    return peer->inbox_unusable? NULL: &peer->inbox;
}

//  Sends a PING or a PONG with our news: by datagram if it may go so and
//  fits (section 6.1.1), to where a PING came from or to the peer's inbox
//  address; else over the connection, the same message. Never by datagram
//  on a secure mesh. True if it went by datagram
static bool
s_send_probe_message (chorus__peers_t *self, chorus__peer_t *peer, int type,
                      const struct sockaddr_storage *to, socklen_t to_size, bool datagram)
{
    if (self->datagrams < 0 || peer->key)
        datagram = false;
    if (datagram && !to) {
        to = s_inbox_address (peer);
        to_size = peer->inbox_size;
        datagram = to != NULL;
    }
    chorus_msg_t *msg = s_probe_msg (self, type);
    zframe_t *body = chorus_msg_encode (msg);
    bool sent = datagram && body
             && chorus__datagram_send (self->datagrams, to, to_size, self->context->instance,
                                       peer->instance, zframe_data (body),
                                       zframe_size (body)) == 0;
    if (sent) {
        //  Traffic between us all the same: the peer hears from us
        self->context->counters [C_DATAGRAMS]++;
        peer->last_sent = chorus__mono ();
        zframe_destroy (&body);
    }
    else
    if (body)
        chorus__peer_send_encoded (peer, msg, &body);
    chorus_msg_destroy (&msg);
    return sent;
}

//  A probe by datagram that no datagram answered: lost, or the member
//  takes none (a firewall, its port taken, a node without them). Over the
//  connection from now on, and for a while after a few such in a row
static void
s_datagram_missed (chorus__peers_t *self, chorus__peer_t *peer, uint64_t now)
{
    peer->probed_by_datagram = false;
    if (++peer->datagram_misses >= S_DATAGRAM_MISSES) {
        peer->datagram_misses = 0;
        peer->datagrams_off = now + S_DATAGRAMS_OFF_MS;
        chorus__context_log (self->context, "peer %s/%.8s left %d probes by datagram without "
                             "a datagram answer: probing it over the connection for %d s",
                             peer->service, peer->instance, S_DATAGRAM_MISSES,
                             S_DATAGRAMS_OFF_MS / 1000);
    }
}

//  Starts a probe of a peer, unless one is under way: the schedule's probe,
//  or a reason to doubt it (its connection closed, another says it is
//  suspect or dead)
static void
s_probe (chorus__peers_t *self, chorus__peer_t *peer, uint64_t now)
{
    if (peer->probed)
        return;
    peer->probed = now;
    peer->stepped = false;
    memset (peer->asked, 0, sizeof (peer->asked));
    //  By datagram to a member we met, that has not left datagrams
    //  unanswered lately; one probe in S_DATAGRAM_EVERY over the
    //  connection, which keeps its name at our peer's end (a doubt when it
    //  closes) and shows that it still carries
    peer->probed_by_datagram = s_send_probe_message (self, peer, CHORUS_MSG_PING, NULL, 0,
                                                     peer->met && now >= peer->datagrams_off
                                                     && self->probes++ % S_DATAGRAM_EVERY != 0);
    chorus__timers_set (self->timers, &peer->liveness,
                        now + s_stretched (self, s_direct_ms (self->config)), peer);
}

//  The probe of a peer was answered, directly or through another
static void s_report (chorus__peers_t *self, chorus__peer_t *peer, chorus_peer_state_t state);

static void
s_answered (chorus__peers_t *self, chorus__peer_t *peer)
{
    //  Answered before its first step (asking others): we are keeping up
    if (peer->probed && !peer->stepped)
        s_health (self, -1);
    peer->probed = 0;
    //  A probe by datagram answered another way counts as unanswered by
    //  datagram: the member's other traffic may answer every probe of it,
    //  and its datagrams never come
    if (peer->probed_by_datagram && self->datagram_heard)
        peer->datagram_misses = 0;
    else
    if (peer->probed_by_datagram)
        s_datagram_missed (self, peer, chorus__mono ());
    peer->probed_by_datagram = false;
    memset (peer->asked, 0, sizeof (peer->asked));
    chorus__timers_cancel (self->timers, &peer->liveness);
    if (peer->evasive) {
        peer->evasive = false;
        self->evasive--;
        s_report (self, peer, CHORUS_PEER_ALIVE);
    }
}

//  Asks up to S_HELPERS other live members to probe a peer for us
static void
s_ask_helpers (chorus__peers_t *self, chorus__peer_t *peer)
{
    size_t asked = 0;
    size_t start = self->links_size? (size_t) randof ((int) self->links_size): 0;
    for (size_t i = 0; i < self->links_size && asked < S_HELPERS; i++) {
        chorus__peer_t *helper = chorus__context_peer (self->context,
                                                       self->links [(start + i) % self->links_size]);
        if (!helper || helper == peer || helper->evasive || helper->probed
        ||  !helper->hello_sent)
            continue;
        s_send_probe (self, helper, CHORUS_MSG_PING_REQ, peer->instance, NULL,
                      peer->asked [asked]);
        asked++;
    }
}

//  The next step of a probe that has come due
static void
s_probe_step (chorus__peers_t *self, chorus__peer_t *peer, uint64_t now)
{
    chorus__config_t *config = self->config;
    if (!peer->probed)
        return;
    peer->stepped = true;
    if (peer->probed_by_datagram)
        s_datagram_missed (self, peer, now);
    uint64_t elapsed = now - peer->probed;
    uint64_t evasive_ms = s_stretched (self, (uint64_t) config->evasive_ms);
    uint64_t expired_ms = s_stretched (self, (uint64_t) config->expired_ms);
    if (elapsed >= expired_ms) {
        chorus__context_log (self->context, "peer %s/%.8s did not answer our probe for %"
                             PRIu64 " ms", peer->service, peer->instance, elapsed);
        s_spread (self, S_DEAD, peer);
        chorus__peers_remove (self, peer, CHORUS_PEER_EXPIRED);
        self->gossip_due = now;     //  such news goes out at once
        return;
    }
    if (elapsed >= evasive_ms && !peer->evasive) {
        peer->evasive = true;
        self->evasive++;
        s_report (self, peer, CHORUS_PEER_EVASIVE);
        s_spread (self, S_SUSPECT, peer);
    }
    if (!peer->asked [0][0])
        s_ask_helpers (self, peer);
    //  Again directly, in case the first was lost or the peer was slow
    s_send_probe (self, peer, CHORUS_MSG_PING, NULL, NULL, NULL);
    uint64_t next = peer->probed + (peer->evasive? expired_ms: evasive_ms);
    if (next > now + (uint64_t) config->heartbeat_ms)
        next = now + (uint64_t) config->heartbeat_ms;
    chorus__timers_set (self->timers, &peer->liveness, next > now? next: now + 1, peer);
}

//  Every member in a new random order, for the samples in our news
static void
s_shuffle (chorus__peers_t *self)
{
    for (size_t i = 0; i < self->order_size; i++)
        free (self->order [i]);
    free (self->order);
    self->order = NULL;
    self->order_size = self->order_next = 0;
    size_t size = zhashx_size (self->peers);
    if (size == 0)
        return;
    self->order = (char **) malloc (size * sizeof (char *));
    assert (self->order);
    for (chorus__peer_t *peer = (chorus__peer_t *) zhashx_first (self->peers); peer;
         peer = (chorus__peer_t *) zhashx_next (self->peers))
        self->order [self->order_size++] = strdup (peer->instance);
    for (size_t i = self->order_size - 1; i > 0; i--) {
        size_t j = (size_t) randof ((int) i + 1);
        char *swap = self->order [i];
        self->order [i] = self->order [j];
        self->order [j] = swap;
    }
}

//  A member's place on a ring: a hash of its instance id, different for
//  each ring (FNV-1a, then a finaliser that spreads ids that differ little)
static uint64_t
s_ring_place (int ring, const char *instance)
{
    uint64_t hash = 14695981039346656037ULL ^ ((uint64_t) (ring + 1) * 0x9E3779B97F4A7C15ULL);
    for (const char *c = instance; *c; c++) {
        hash ^= (uint8_t) *c;
        hash *= 1099511628211ULL;
    }
    hash ^= hash >> 33;
    hash *= 0xFF51AFD7ED558CCDULL;
    hash ^= hash >> 33;
    hash *= 0xC4CEB9FE1A85EC53ULL;
    hash ^= hash >> 33;
    return hash;
}

static bool
s_watched (chorus__peers_t *self, chorus__peer_t *peer)
{
    for (size_t i = 0; i < self->watch_size; i++)
        if (self->watch [i] == peer)
            return true;
    return false;
}

static void
s_watch (chorus__peers_t *self, chorus__peer_t *peer)
{
    if (peer && self->watch_size < S_WATCH && !s_watched (self, peer))
        self->watch [self->watch_size++] = peer;
}

//  Whether we need to meet a member: in a small mesh every one; else those
//  we watch (our neighbours on the rings), every subscriber once our log
//  has events (we deliver to them), and every member when we observe (we
//  read every publisher's PUB). Commands meet the instance they go to
static bool
s_wanted (chorus__peers_t *self, chorus__peer_t *peer)
{
    if (zhashx_size (self->peers) <= S_FULL_MESH || self->observing)
        return true;
    if (peer->subscriber && self->published)
        return true;
    return s_watched (self, peer);
}

//  Meets a member we know only from news, if we need to: our HELLO goes
//  to it as soon as its connection is up
static void
s_consider (chorus__peers_t *self, chorus__peer_t *peer)
{
    if (!peer->met && !peer->dealer && s_wanted (self, peer))
        chorus__peer_greet (peer);
}

//  Members came or went: the members we watch (in a small mesh every one;
//  else our successor and our predecessor on each ring), the members in a
//  new order, and the members we now need to meet
static void
s_refresh (chorus__peers_t *self)
{
    self->ring_dirty = false;
    self->watch_size = 0;
    if (zhashx_size (self->peers) <= S_FULL_MESH)
        for (chorus__peer_t *peer = (chorus__peer_t *) zhashx_first (self->peers); peer;
             peer = (chorus__peer_t *) zhashx_next (self->peers))
            s_watch (self, peer);
    else
    for (int ring = 0; ring < S_RINGS; ring++) {
        uint64_t ours = s_ring_place (ring, self->context->instance);
        uint64_t after = UINT64_MAX, before = UINT64_MAX;
        chorus__peer_t *successor = NULL, *predecessor = NULL;
        for (chorus__peer_t *peer = (chorus__peer_t *) zhashx_first (self->peers); peer;
             peer = (chorus__peer_t *) zhashx_next (self->peers)) {
            uint64_t place = s_ring_place (ring, peer->instance);
            if (place - ours && place - ours <= after) {
                after = place - ours;
                successor = peer;
            }
            if (ours - place && ours - place <= before) {
                before = ours - place;
                predecessor = peer;
            }
        }
        s_watch (self, successor);
        s_watch (self, predecessor);
    }
    s_shuffle (self);         //  for the members we sample in our news
    //  Over a copy: meeting may change the table
    zlistx_t *instances = zhashx_keys (self->peers);
    for (const char *instance = (const char *) zlistx_first (instances); instance;
         instance = (const char *) zlistx_next (instances)) {
        chorus__peer_t *peer = chorus__context_peer (self->context, instance);
        if (peer)
            s_consider (self, peer);
    }
    zlistx_destroy (&instances);
}

//  The member we watch that is due soonest for the schedule's probe, and
//  when: each must be heard from once every period times the number we
//  watch, and any message from it counts, a PING of its own probe of us
//  included, so that one exchange serves both ends (section 6.1). NULL if
//  none is due (none watched, or each under a probe already)
static chorus__peer_t *
s_watch_next (chorus__peers_t *self, uint64_t *due)
{
    uint64_t within = (uint64_t) self->config->heartbeat_ms * self->watch_size;
    chorus__peer_t *next = NULL;
    *due = UINT64_MAX;
    for (size_t i = 0; i < self->watch_size; i++) {
        chorus__peer_t *peer = self->watch [i];
        if (!peer->probed && peer->last_seen + within < *due) {
            *due = peer->last_seen + within;
            next = peer;
        }
    }
    //  One probe a period at most: members met together spread out
    if (next && *due < self->probe_due)
        *due = self->probe_due;
    return next;
}

//  The schedule's probe: the member we watch that has been silent longest,
//  once its time is up
static void
s_probe_tick (chorus__peers_t *self, uint64_t now)
{
    uint64_t due;
    chorus__peer_t *peer = s_watch_next (self, &due);
    if (!peer || now < due)
        return;
    self->probe_due = now + (uint64_t) self->config->heartbeat_ms;
    s_probe (self, peer, now);
}

//  News spreads faster than probes go: while there is news, every gossip
//  period it goes to S_FANOUT members at random, on a PONG, which is never
//  answered (protocol section 6.2)
static void
s_gossip_tick (chorus__peers_t *self, uint64_t now)
{
    if (now < self->gossip_due)
        return;
    self->gossip_due = now + S_GOSSIP_MS;
    if (zhashx_size (self->updates) == 0 || self->links_size == 0)
        return;
    size_t start = (size_t) randof ((int) self->links_size);
    size_t sent = 0;
    for (size_t i = 0; i < self->links_size && sent < S_FANOUT
                       && zhashx_size (self->updates); i++) {
        chorus__peer_t *peer = chorus__context_peer (self->context,
                                                     self->links [(start + i) % self->links_size]);
        if (!peer || peer->evasive || !peer->hello_sent)
            continue;
        s_send_probe (self, peer, CHORUS_MSG_PONG, NULL, NULL, NULL);
        sent++;
    }
}

//  Probes we make for others: answered when the target speaks to us,
//  dropped unanswered when their time is up
static void
s_relays_heard (chorus__peers_t *self, chorus__peer_t *target)
{
    for (size_t i = 0; i < self->relays_size; ) {
        s_relay_t *relay = &self->relays [i];
        if (streq (relay->target, target->instance)) {
            chorus__peer_t *requester = chorus__context_peer (self->context, relay->requester);
            if (requester)
                s_send_probe (self, requester, CHORUS_MSG_PING_ACK, relay->target,
                              relay->request, NULL);
            self->relays [i] = self->relays [--self->relays_size];
        }
        else
            i++;
    }
}

static void
s_relays_tick (chorus__peers_t *self, uint64_t now)
{
    for (size_t i = 0; i < self->relays_size; )
        if (now >= self->relays [i].until)
            self->relays [i] = self->relays [--self->relays_size];
        else
            i++;
}

void
chorus__peers_probe_msg (chorus__peers_t *self, chorus__peer_t *peer, chorus_msg_t *msg)
{
    uint64_t now = chorus__mono ();
    int type = chorus_msg_type (msg);
    if (type == CHORUS_MSG_PING) {
        //  An answer the prober waits for: kept while our connection to it
        //  comes up (it met us a moment ago, or we closed it unused), not
        //  dropped, which would have it ask others to probe us
        chorus_msg_t *pong = s_probe_msg (self, CHORUS_MSG_PONG);
        chorus__peer_answer (peer, pong);
        chorus_msg_destroy (&pong);
    }
    else
    if (type == CHORUS_MSG_PING_REQ) {
        const char *target = chorus_msg_target (msg);
        chorus__peer_t *probed = chorus__context_peer (self->context, target);
        if (probed && probed != peer && self->relays_size < S_RELAYS) {
            s_relay_t *relay = &self->relays [self->relays_size++];
            snprintf (relay->target, sizeof (relay->target), "%s", target);
            snprintf (relay->requester, sizeof (relay->requester), "%s", peer->instance);
            snprintf (relay->request, sizeof (relay->request), "%s", chorus_msg_id (msg));
            relay->until = now + (uint64_t) self->config->evasive_ms;
            if (now - probed->last_seen < s_direct_ms (self->config))
                s_relays_heard (self, probed);  //  it spoke to us just now
            else
                s_send_probe (self, probed, CHORUS_MSG_PING, NULL, NULL, NULL);
        }
    }
    else
    if (type == CHORUS_MSG_PING_ACK) {
        //  Only an answer to a PING-REQ we sent counts
        chorus__peer_t *probed = chorus__context_peer (self->context, chorus_msg_target (msg));
        const char *request = chorus_msg_request (msg);
        if (probed && probed->probed && request)
            for (int i = 0; i < S_HELPERS; i++)
                if (probed->asked [i][0] && streq (probed->asked [i], request)) {
                    s_answered (self, probed);
                    break;
                }
    }
    s_absorb (self, msg);
}

//  Whether the closing of a peer's connection into our inbox is a reason to
//  doubt it. A peer closes a connection it has not used for the idle time
//  (section 5.2), and we do not doubt it for that if we do not need it
//  either: we do not watch it, no command of ours waits on it, and nothing
//  went either way for half that time (it used the connection no later)
static bool
s_doubtful (chorus__peers_t *self, chorus__peer_t *peer, uint64_t now)
{
    uint64_t idle_ms = (uint64_t) self->config->idle_close_ms;
    uint64_t last = chorus__peer_last_used (peer);
    return idle_ms == 0 || !peer->met || peer->commands || s_watched (self, peer)
        || now < last + idle_ms / 2;
}

void
chorus__peers_doubt (chorus__peers_t *self, const char *instance)
{
    chorus__peer_t *peer = chorus__context_peer (self->context, instance);
    uint64_t now = chorus__mono ();
    if (!peer)
        return;
    if (s_doubtful (self, peer, now)) {
        chorus__context_log (self->context, "%s/%.8s closed its connection to us: probing it",
                             peer->service, peer->instance);
        s_probe (self, peer, now);     //  unless one is under way
    }
    else
        chorus__context_log (self->context, "%s/%.8s closed its connection to us, unused: "
                             "no doubt", peer->service, peer->instance);
}

//  Whether we may close our connection to a peer: we do not watch it, and
//  nothing of ours waits on it (a command, a probe, a greeting, answers)
static bool
s_idle_closable (chorus__peers_t *self, chorus__peer_t *peer)
{
    if (!peer->met || !peer->hello_sent || peer->commands || peer->probed || peer->greeted
    ||  chorus__peer_backlog (peer) || s_watched (self, peer)
    ||  zhashx_lookup (self->waiting, peer->instance)
    ||  zhashx_lookup (self->newcomers, peer->instance))
        return false;
    for (size_t i = 0; i < self->relays_size; i++)
        if (streq (self->relays [i].target, peer->instance)
        ||  streq (self->relays [i].requester, peer->instance))
            return false;
    return true;
}

//  Connections whose idle timer is due: closed if unused for the idle time
//  and not needed, else looked at again when they may be (section 5.2)
static void
s_idle_tick (chorus__peers_t *self, uint64_t now)
{
    uint64_t idle_ms = (uint64_t) self->config->idle_close_ms;
    chorus__timer_t *timer;
    while ((timer = chorus__timers_pop (self->idle, now))) {
        chorus__peer_t *peer = (chorus__peer_t *) timer->arg;
        if (!peer->dealer || idle_ms == 0)
            continue;       //  armed again when it opens
        uint64_t last = chorus__peer_last_used (peer);
        if (now < last + idle_ms) {
            chorus__timers_set (self->idle, &peer->idle, last + idle_ms, peer);
            continue;
        }
        if (!s_idle_closable (self, peer)) {
            //  What holds it is mostly over in seconds (a probe, an answer
            //  waiting for its connection): look again sooner than that
            chorus__timers_set (self->idle, &peer->idle, now + idle_ms / 4 + 1, peer);
            continue;
        }
        chorus__context_log (self->context, "closing our connection to %s/%.8s: unused for "
                             "%" PRIu64 " ms", peer->service, peer->instance, now - last);
        chorus__socket_destroy (&peer->dealer);
        peer->hello_sent = false;
        peer->closed_idle = true;
        self->context->counters [C_IDLE_CLOSES]++;
    }
}

void
chorus__peers_unmet_spoke (chorus__peers_t *self, chorus__peer_t *peer)
{
    //  Once: a greeting under way is not sent again for every message
    if (!peer->met && !peer->dealer) {
        chorus__context_log (self->context, "%s/%.8s, not met, sent us a message: greeting it",
                             peer->service, peer->instance);
        chorus__peer_greet (peer);
    }
}

int
chorus__peers_datagrams (chorus__peers_t *self, const char *bound)
{
    if (self->config->keys)
        return -1;      //  a datagram has no CURVE handshake behind it
    if (self->datagrams < 0)
        self->datagrams = chorus__datagram_open (bound);
    if (self->datagrams < 0)
        chorus__context_log (self->context, "no UDP socket at %s: probes go over the "
                             "connections only", bound);
    return self->datagrams;
}

//  Whether a datagram came from the address the peer announced for its
//  inbox, where its datagrams go out from (section 6.1.1)
static bool
s_from_peer (chorus__peer_t *peer, chorus__datagram_t *datagram)
{
    const struct sockaddr_storage *announced = s_inbox_address (peer);
    if (!announced || announced->ss_family != datagram->from.ss_family)
        return false;
    if (announced->ss_family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *) announced;
        struct sockaddr_in *b = (struct sockaddr_in *) &datagram->from;
        return a->sin_port == b->sin_port && a->sin_addr.s_addr == b->sin_addr.s_addr;
    }
    if (announced->ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *) announced;
        struct sockaddr_in6 *b = (struct sockaddr_in6 *) &datagram->from;
        return a->sin6_port == b->sin6_port
            && memcmp (&a->sin6_addr, &b->sin6_addr, sizeof (a->sin6_addr)) == 0;
    }
    return false;
}

void
chorus__peers_recv_datagrams (chorus__peers_t *self, chorus_msg_t *msg)
{
    uint8_t buffer [CHORUS__DATAGRAM_MAX + 1];      //  one more: a larger one shows
    for (int count = 0; count < S_DATAGRAM_BATCH; count++) {
        chorus__datagram_t datagram;
        const char *reason = NULL;
        int rc = chorus__datagram_recv (self->datagrams, buffer, sizeof (buffer), &datagram,
                                        &reason);
        if (rc == 0)
            break;
        if (rc == 1 && chorus_msg_decode (msg, datagram.body, datagram.body_size) != 0)
            reason = chorus_msg_reason (msg);
        else
        if (rc == 1 && chorus_msg_type (msg) != CHORUS_MSG_PING
        &&  chorus_msg_type (msg) != CHORUS_MSG_PONG)
            reason = "a datagram carries only PING or PONG";
        if (reason) {
            self->context->counters [C_MALFORMED]++;
            chorus__context_log (self->context, "dropped malformed datagram: %s", reason);
            continue;
        }
        //  For us, from a member we met, on a plaintext mesh (section 6.1.1)
        chorus__peer_t *peer = chorus__context_peer (self->context, datagram.sender);
        if (!streq (datagram.recipient, self->context->instance)
        ||  !peer || !peer->met || peer->key) {
            self->context->counters [C_UNKNOWN_PEER]++;
            if (peer && !peer->met && streq (datagram.recipient, self->context->instance))
                chorus__peers_unmet_spoke (self, peer);
            continue;
        }
        self->datagram_heard = true;
        chorus__peers_heard (self, peer);
        self->datagram_heard = false;
        //  The answer goes by datagram once we have a connection into the
        //  prober's inbox: the first goes over one, and opens it, since
        //  its closing is how the prober learns at once that we are gone.
        //  And only back to the prober's own address: a PING whose source
        //  was forged must not turn us on another host
        if (chorus_msg_type (msg) == CHORUS_MSG_PING)
            s_send_probe_message (self, peer, CHORUS_MSG_PONG, &datagram.from,
                                  datagram.from_size, peer->dealer && peer->hello_sent
                                  && s_from_peer (peer, &datagram));
        s_absorb (self, msg);
        peer->head = chorus_msg_head (msg);
        self->fn (peer, CHORUS__PEER_HEAD, self->fn_arg);
    }
}

//  --------------------------------------------------------------------------
//  The class

chorus__peers_t *
chorus__peers_new (chorus__context_t *context, chorus__peers_fn *fn, void *arg)
{
    chorus__peers_t *self = (chorus__peers_t *) zmalloc (sizeof (chorus__peers_t));
    self->context = context;
    self->config = context->config;
    self->fn = fn;
    self->fn_arg = arg;
    self->peers = zhashx_new ();
    self->endpoints = zhashx_new ();
    self->waiting = zhashx_new ();
    self->greeting = zhashx_new ();
    self->timers = chorus__timers_new ();
    self->idle = chorus__timers_new ();
    self->pending = zhashx_new ();
    self->seeds = zhashx_new ();
    self->admission = zhashx_new ();
    self->updates = zhashx_new ();
    zhashx_set_destructor (self->updates, s_update_destroy);
    self->backlog = zhashx_new ();
    zhashx_set_destructor (self->backlog, (zhashx_destructor_fn *) zstr_free);
    self->newcomers = zhashx_new ();
    self->tombstones = zhashx_new ();
    zhashx_set_destructor (self->tombstones, (zhashx_destructor_fn *) zstr_free);
    self->started = chorus__now ();
    //  Our incarnation starts at our start time, so that news of us after a
    //  restart is newer than any of the instance before (section 6.2)
    self->incarnation = self->started;
    self->generation = 1;
    self->datagrams = -1;
    context->peers = self->peers;
    return self;
}

static void s_close_all (chorus__peers_t *self);

void
chorus__peers_destroy (chorus__peers_t **self_p)
{
    chorus__peers_t *self = *self_p;
    if (!self)
        return;
    chorus__timers_destroy (&self->timers);     //  before the peers that hold them
    chorus__timers_destroy (&self->idle);
    if (self->datagrams >= 0)
        close (self->datagrams);
    for (chorus__peer_t *peer = (chorus__peer_t *) zhashx_first (self->peers); peer;
         peer = (chorus__peer_t *) zhashx_next (self->peers))
        chorus__peer_destroy (&peer);
    zhashx_destroy (&self->peers);
    zhashx_destroy (&self->endpoints);
    zhashx_destroy (&self->waiting);
    zhashx_destroy (&self->greeting);
    self->context->peers = NULL;
    s_close_all (self);
    zhashx_destroy (&self->pending);
    zhashx_destroy (&self->seeds);
    zhashx_destroy (&self->admission);
    zhashx_destroy (&self->updates);
    zhashx_destroy (&self->backlog);
    zhashx_destroy (&self->newcomers);
    zhashx_destroy (&self->tombstones);
    for (size_t i = 0; i < self->order_size; i++)
        free (self->order [i]);
    free (self->order);
    for (size_t i = 0; i < self->links_size; i++)
        free (self->links [i]);
    free (self->links);
    chorus__subs_free (&self->subs, &self->subs_size);
    free (self->endpoint);
    free (self->pub_endpoint);
    free (self);
    *self_p = NULL;
}

void
chorus__peers_start (chorus__peers_t *self, const char *endpoint, const char *pub_endpoint,
                     chorus__gate_t *inbox_gate)
{
    free (self->endpoint);
    free (self->pub_endpoint);
    self->endpoint = strdup (endpoint);
    self->pub_endpoint = strdup (pub_endpoint);
    self->inbox_gate = inbox_gate;
    //  News of us, for the members our seed's answer does not list yet
    s_spread (self, S_ALIVE, NULL);
}

bool
chorus__peers_subscribe (chorus__peers_t *self, const char *prefix, uint64_t since,
                         uint64_t flags)
{
    for (size_t i = 0; i < self->subs_size; i++)
        if (streq (self->subs [i].prefix, prefix))
            return false;
    chorus__subs_add (&self->subs, &self->subs_size, prefix, since, flags);
    self->announce = true;
    if (self->subs_size == 1 && self->endpoint) {
        //  We are a subscriber now: news of it, so that publishers meet us
        self->incarnation++;
        s_spread (self, S_ALIVE, NULL);
    }
    return true;
}

static void s_report (chorus__peers_t *self, chorus__peer_t *peer, chorus_peer_state_t state);

void
chorus__peers_heard (chorus__peers_t *self, chorus__peer_t *peer)
{
    //  Anything it sends answers our probe, and those we make for others
    peer->last_seen = chorus__mono ();
    if (peer->probed)
        s_answered (self, peer);
    s_idle_arm (self, peer);
    if (self->relays_size)
        s_relays_heard (self, peer);
}

static uint64_t
s_min (uint64_t a, uint64_t b)
{
    return a < b? a: b;
}

uint64_t
chorus__peers_next_due (chorus__peers_t *self)
{
    if (self->connecting || zhashx_size (self->pending) || zhashx_size (self->backlog)
    ||  zhashx_size (self->waiting) || self->ring_dirty
    ||  (!self->published && chorus_store_head (self->context->store) > 0))
        return CHORUS__DUE_TICK;
    uint64_t due = chorus__timers_next (self->timers);
    uint64_t watch_due;
    if (s_watch_next (self, &watch_due))
        due = s_min (due, watch_due);
    if (zhashx_size (self->updates))
        due = s_min (due, self->gossip_due);
    for (size_t i = 0; i < self->relays_size; i++)
        due = s_min (due, self->relays [i].until);
    for (chorus__peer_t *peer = (chorus__peer_t *) zhashx_first (self->greeting); peer;
         peer = (chorus__peer_t *) zhashx_next (self->greeting))
        due = s_min (due, peer->greeted + s_greet_wait (peer));
    if (zhashx_size (self->admission))     //  a chore, that waits for a tick a little
        due = s_min (due, self->admission_due + CHORUS__TICK_LATE_MS);
    uint64_t idle_due = chorus__timers_next (self->idle);  //  a chore too
    if (idle_due != UINT64_MAX)
        due = s_min (due, idle_due + CHORUS__TICK_LATE_MS);
    if (zhashx_size (self->newcomers))
        due = s_min (due, self->last_newcomers + S_ANNOUNCE_MS);
    if (self->announce)
        due = s_min (due, self->last_announce + S_ANNOUNCE_MS);
    //  A seed that leads to no live peer is tried again
    for (s_seed_t *seed = (s_seed_t *) zhashx_first (self->seeds); seed;
         seed = (s_seed_t *) zhashx_next (self->seeds)) {
        if (seed->instance && chorus__context_peer (self->context, seed->instance))
            continue;
        if (!seed->tried)
            return CHORUS__DUE_TICK;
        due = s_min (due, seed->tried + s_seed_wait (seed));
    }
    return due;
}

bool
chorus__peers_connecting (chorus__peers_t *self)
{
    return self->connecting;
}

size_t
chorus__peers_evasive (chorus__peers_t *self)
{
    return self->evasive;
}

int
chorus__peers_health (chorus__peers_t *self)
{
    return self->health;
}

void
chorus__peers_woke (chorus__peers_t *self, uint64_t due, uint64_t now)
{
    //  S_LATE_MS or more after the engine's timers were due: we were stalled
    //  ourselves (stopped, or starved of CPU), and our peers may have
    //  answered all along, their answers unread. The probes under way get
    //  the time back, and our local health worsens
    if (now < due || now - due < S_LATE_MS)
        return;
    uint64_t late = now - due;
    s_health (self, +1);
    self->context->counters [C_STALLS]++;
    chorus__context_log (self->context, "stalled for %" PRIu64 " ms: probes under way get "
                         "that time back (local health %d)", late, self->health);
    for (chorus__peer_t *peer = (chorus__peer_t *) zhashx_first (self->peers); peer;
         peer = (chorus__peer_t *) zhashx_next (self->peers))
        if (peer->probed)
            peer->probed = peer->probed + late < now? peer->probed + late: now;
    //  Stalled past the expired time, we may have been forgotten: those who
    //  forgot us drop all we send but a HELLO, so our HELLO goes to every
    //  peer again (to one that still knows us it changes nothing)
    if (late >= (uint64_t) self->config->expired_ms && zhashx_size (self->peers)) {
        chorus__context_log (self->context, "stalled past the expired time: our HELLO goes to "
                             "every peer again, in case they forgot us");
        self->announce = true;
    }
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
s_pending_take (chorus__peers_t *self, const char *endpoint)
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
s_peer_at (chorus__peers_t *self, const char *endpoint)
{
    return (chorus__peer_t *) zhashx_lookup (self->endpoints, endpoint);
}

//  Opens a connection to an endpoint we heard of; HELLO goes on it as soon
//  as it is up. Returns false if it could not be opened now.
static bool
s_connect_pending (chorus__peers_t *self, const char *endpoint, const char *key,
                   const char *expect, bool list)
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
    chorus__context_log (self->context, "connecting to %s", endpoint);
    s_pending_t *pending = (s_pending_t *) zmalloc (sizeof (s_pending_t));
    pending->dealer = dealer;
    pending->since = chorus__mono ();
    pending->wait = S_PENDING_MS;
    snprintf (pending->key, sizeof (pending->key), "%s", key? key: "");
    snprintf (pending->expect, sizeof (pending->expect), "%s", expect? expect: "");
    pending->list = list || !self->listed;  //  no list yet: we ask for one
    if (s_send_hello (self, dealer, NULL, list, pending->hello_id))
        self->connecting = true;
    zhashx_insert (self->pending, endpoint, pending);
    return true;
}

//  The endpoint of the pending connection on which we sent the HELLO with
//  this id, or NULL
static const char *
s_pending_answered (chorus__peers_t *self, const char *hello_id)
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
s_seed_met (chorus__peers_t *self, const char *endpoint, const char *instance)
{
    s_seed_t *seed = (s_seed_t *) zhashx_lookup (self->seeds, endpoint);
    if (seed) {
        free (seed->instance);
        seed->instance = strdup (instance);
        seed->attempts = 0;
    }
}

//  How long we wait for a seed to answer, and then before we dial it again
static uint64_t
s_seed_wait (s_seed_t *seed)
{
    uint64_t wait = (uint64_t) S_SEED_FIRST_MS << (seed->attempts < 8? seed->attempts: 8);
    return wait < S_SEED_RETRY_MS? wait: S_SEED_RETRY_MS;
}

//  Closes every connection that awaits a HELLO, and the seed records
static void
s_close_all (chorus__peers_t *self)
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

//  Tells the application of a peer's new state
static void
s_report (chorus__peers_t *self, chorus__peer_t *peer, chorus_peer_state_t state)
{
    char *subs = chorus__peer_subs_text (peer);
    chorus__context_work (self->context, "sisssss88s", "P", (int) state, peer->service,
                          peer->instance, peer->endpoint, peer->pub_endpoint, subs,
                          chorus__peer_seen_at (peer),
                          peer->head, peer->key? peer->key: "");
    free (subs);
}

//  Forgets a peer: its work moves elsewhere and the application is told.
//  On our word (it left, or expired here) its death is remembered, and, if
//  it left, news of it goes out; a member known from news alone that we
//  forget to make room says nothing of it, so neither
static void
s_remove (chorus__peers_t *self, chorus__peer_t *peer, chorus_peer_state_t state, bool word)
{
    if (word && state == CHORUS_PEER_LEFT) {
        //  It said goodbye to those it had a connection to; the members
        //  that know it from news alone learn it from ours (a member that
        //  met it probes it and finds it gone)
        s_spread (self, S_DEAD, peer);
        self->gossip_due = chorus__mono ();
    }
    zhashx_delete (self->peers, peer->instance);   //  out of the table before reassigning
    for (size_t i = 0; i < self->watch_size; i++)
        if (self->watch [i] == peer) {
            self->watch [i] = self->watch [--self->watch_size];
            break;
        }
    if (zhashx_lookup (self->endpoints, peer->endpoint) == peer)
        zhashx_delete (self->endpoints, peer->endpoint);
    zhashx_delete (self->waiting, peer->instance);
    zhashx_delete (self->greeting, peer->instance);
    zhashx_delete (self->newcomers, peer->instance);
    s_unlink (self, peer->instance);
    if (word)
        s_bury (self, peer->instance, peer->incarnation);
    self->ring_dirty = true;
    //  News that it is alive would lead others to an endpoint that may be
    //  another node's by now
    s_update_t *update = (s_update_t *) zhashx_lookup (self->updates, peer->instance);
    if (update && strncmp (update->entry, "alive ", 6) == 0)
        zhashx_delete (self->updates, peer->instance);
    chorus__timers_cancel (self->timers, &peer->liveness);
    chorus__timers_cancel (self->idle, &peer->idle);
    if (peer->evasive)
        self->evasive--;
    self->fn (peer, CHORUS__PEER_GONE, self->fn_arg);
    s_report (self, peer, state);
    chorus__peer_destroy (&peer);
}

void
chorus__peers_remove (chorus__peers_t *self, chorus__peer_t *peer, chorus_peer_state_t state)
{
    chorus__context_log (self->context, "peer %s/%.8s %s", peer->service, peer->instance,
                         state == CHORUS_PEER_LEFT? "left": "expired");
    s_remove (self, peer, state, true);
}

//  Whether the sender of a HELLO reads member entries in our list
static bool
s_reads_entries (chorus_msg_t *hello)
{
    const char *members = chorus_msg_header (hello, "chorus.members");
    return members && streq (members, "yes");
}

//  What a HELLO tells of the peer that sent it, which is met from now on
static void
s_take_hello (chorus__peer_t *peer, chorus_msg_t *hello, uint64_t started,
              const chorus__grant_t *grant, bool listless)
{
    free (peer->pub_endpoint);
    peer->pub_endpoint = strdup (chorus_msg_pub_endpoint (hello));
    free (peer->address);
    peer->address = strdup (chorus_msg_peer_address (hello));
    peer->started = started;
    peer->grant = grant;
    peer->listless = listless;
    peer->met = true;
    peer->greeted = 0;
    peer->greetings = 0;
    peer->entries = s_reads_entries (hello);
    const char *acks = chorus_msg_header (hello, "chorus.acks");
    peer->ack_lists = acks && streq (acks, "lists");
}

//  Whether a HELLO's gossip lists the endpoint; on a secure mesh an entry
//  is ENDPOINT@KEY, and only its endpoint counts; a member entry (section
//  6.2) lists the endpoint in its fourth part
static bool
s_lists_endpoint (chorus_msg_t *hello, const char *endpoint, bool secure)
{
    zlist_t *peers = chorus_msg_peers (hello);
    size_t length = strlen (endpoint);
    for (char *item = peers? (char *) zlist_first (peers): NULL; item;
         item = (char *) zlist_next (peers)) {
        if (strncmp (item, "alive ", 6) == 0) {
            char address [257];
            if (sscanf (item, "%*7s %*s %*32s %256s", address) == 1) {
                char *at = secure? strchr (address, '@'): NULL;
                if (at)
                    *at = 0;
                if (streq (address, endpoint))
                    return true;
            }
            continue;
        }
        const char *key = secure? chorus__key_part (item): NULL;
        size_t size = key? (size_t) (key - 1 - item): strlen (item);
        if (size == length && memcmp (item, endpoint, length) == 0)
            return true;
    }
    return false;
}

//  True if the remote address may bring one more new peer now
static bool
s_admit_address (chorus__peers_t *self, const char *address)
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

//  A member known from news alone that we may forget to make room for a
//  node that greets us: not met, no connection, no work, not one we
//  watch. NULL if there is none
static chorus__peer_t *
s_hearsay (chorus__peers_t *self, const char *instance)
{
    for (chorus__peer_t *peer = (chorus__peer_t *) zhashx_first (self->peers); peer;
         peer = (chorus__peer_t *) zhashx_next (self->peers))
        if (!peer->met && !peer->dealer && !peer->commands && !streq (peer->instance, instance)
        &&  !s_watched (self, peer))
            return peer;
    return NULL;
}

//  May a new peer, whose HELLO came from this address, join? Says why not.
//  At our bound on peers, a node that greets us takes the place of a
//  member known from news alone (section 4.5): what we hear first hand
//  comes before hearsay, so that news, true or forged, cannot fill our
//  table against the nodes that greet us
static bool
s_admit (chorus__peers_t *self, const char *instance, chorus_msg_t *hello, bool dialled)
{
    const char *address = chorus_msg_peer_address (hello);
    const char *why = NULL;
    chorus__peer_t *hearsay = NULL;
    //  A member known from news holds its place in the table already
    size_t others = zhashx_size (self->peers)
                  - (chorus__context_peer (self->context, instance)? 1: 0);
    if (others >= (size_t) self->config->max_peers
    &&  !(hearsay = s_hearsay (self, instance)))
        why = "the node has its maximum of peers";
    else
    if (!dialled && !s_admit_address (self, address))
        //  Only for HELLOs we did not ask for: one that answers a connection
        //  we opened is bounded by our own bound on pending connections
        why = "too many new peers from that address";
    if (!why) {
        if (hearsay) {
            chorus__context_log (self->context, "member %s/%.8s, known from news alone, "
                                 "forgotten to make room for %s/%.8s, which greets us",
                                 hearsay->service, hearsay->instance,
                                 chorus_msg_service (hello), instance);
            s_remove (self, hearsay, CHORUS_PEER_EXPIRED, false);
        }
        return true;
    }
    self->context->counters [C_REFUSED]++;
    chorus__context_warn (self->context, W_REFUSED, "refused peer %s/%.8s at %s (from %s): %s",
                          chorus_msg_service (hello), instance, chorus_msg_endpoint (hello),
                          *address? address: "?", why);
    return false;
}

//  The connection to use for a new peer: the pending one it answered, or a
//  new one. NULL if none can be had.
static void *
s_peer_dealer (chorus__peers_t *self, chorus_msg_t *hello, const char *instance,
               const char *key, bool *hello_sent, bool *newcomer, bool *heard,
               bool *sent_listless)
{
    *newcomer = *heard = *sent_listless = false;
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
        //  News of it brought us here: we pass the news on, now that we
        //  know it first hand, for members that only news reaches (one
        //  that announces an address only its own host can reach)
        *heard = entry->expect [0] != 0;
        *sent_listless = !entry->list && entry->hello_id [0];
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
    *newcomer = true;   //  it found us: we are its way into the mesh
    return s_dealer_new (self, endpoint, key);
}

//  On a secure mesh, may the key this HELLO came from speak for the node it
//  names? Says why not.
static bool
s_hello_key_allowed (chorus__peers_t *self, const char *instance, chorus_msg_t *hello,
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
    self->context->counters [C_FORBIDDEN]++;
    chorus__context_warn (self->context, W_FORBIDDEN, "refused HELLO of %s/%.8s at %s, "
                          "key %s%s%s%s: %s", chorus_msg_service (hello), instance,
                          chorus_msg_endpoint (hello),
                          *key? key: "-", grant? " (certificate '": "", grant? grant->name: "",
                          grant? "')": "", why);
    return false;
}

//  Follows gossip: an endpoint, on a secure mesh with its key after '@'
static bool
s_connect_listed (chorus__peers_t *self, const char *item, const char *expect)
{
    bool opened;
    if (!self->config->keys)
        opened = s_connect_pending (self, item, NULL, expect, false);
    else {
        const char *key = chorus__key_part (item);
        if (!key || !chorus__key_valid (key))
            return true;    //  no use without a key
        char endpoint [257];
        snprintf (endpoint, sizeof (endpoint), "%.*s", (int) (key - 1 - item), item);
        opened = s_connect_pending (self, endpoint, key, expect, false);
    }
    //  No room among the pending connections now: it waits its turn, so
    //  that a node that joins through one seed meets every member the
    //  seed lists, not only the first max_pending
    if (!opened && zhashx_size (self->backlog) < (size_t) self->config->max_peers
    &&  !zhashx_lookup (self->backlog, item))
        zhashx_insert (self->backlog, item, strdup (expect? expect: ""));
    return opened;
}

//  Endpoints that waited for room among the pending connections
static void
s_backlog_tick (chorus__peers_t *self)
{
    size_t waiting = zhashx_size (self->backlog);
    while (waiting-- && zhashx_size (self->pending) < (size_t) self->config->max_pending
    &&     zhashx_first (self->backlog)) {
        char *expect = (char *) zhashx_first (self->backlog);
        char *item = strdup ((const char *) zhashx_cursor (self->backlog));
        expect = strdup (expect);
        zhashx_delete (self->backlog, item);
        s_connect_listed (self, item, *expect? expect: NULL);
        free (item);
        free (expect);
    }
}

void
chorus__peers_hello (chorus__peers_t *self, const char *instance, chorus_msg_t *hello)
{
    if (streq (instance, self->context->instance))
        return;     //  we reached ourselves through a seed or gossip
    //  Nodes of another mesh on the same hosts (a port reused by another
    //  mesh's node, a stale seed) are not peers of ours
    const char *mesh = chorus_msg_header (hello, "chorus.mesh");
    if (!streq (mesh? mesh: "default", self->config->mesh)) {
        self->context->counters [C_UNKNOWN_PEER]++;
        return;
    }
    const char *started_text = chorus_msg_header (hello, "chorus.started");
    uint64_t started = started_text? strtoull (started_text, NULL, 10): 0;
    chorus__peer_t *peer = chorus__context_peer (self->context, instance);
    const chorus__grant_t *grant = NULL;
    const char *key = self->config->keys? chorus_msg_user_id (hello): NULL;
    //  What news said of a member we had not met is a hint, which its own
    //  HELLO settles: its key and its service
    bool hinted = peer && !peer->met;
    if (key && !s_hello_key_allowed (self, instance, hello, hinted? NULL: peer, &grant))
        return;     //  not answered, and its gossip not followed
    if (hinted && (!streq (peer->service, chorus_msg_service (hello))
               ||  !streq (peer->endpoint, chorus_msg_endpoint (hello)))) {
        chorus__context_log (self->context, "member %.8s is %s at %s, not %s at %s as news said",
                             instance, chorus_msg_service (hello), chorus_msg_endpoint (hello),
                             peer->service, peer->endpoint);
        chorus__peers_remove (self, peer, CHORUS_PEER_EXPIRED);
        peer = NULL;
        hinted = false;
    }
    if (hinted && key && peer->key && !streq (peer->key, key)) {
        //  Our connection went to the key news named: not this node's
        free (peer->key);
        peer->key = strdup (key);
        zstr_free (&peer->sample);
        chorus__socket_destroy (&peer->dealer);
        peer->hello_sent = false;
    }
    if (peer && !streq (peer->service, chorus_msg_service (hello))) {
        chorus__context_forged (self->context, peer, hello, "announces another service");
        return;
    }
    if (peer && !hinted && peer->started != started) {
        //  The same instance started again: it remembers nothing of us
        chorus__context_log (self->context, "peer %.8s restarted", instance);
        chorus__peers_remove (self, peer, CHORUS_PEER_EXPIRED);
        peer = NULL;
    }
    const char *endpoint = chorus_msg_endpoint (hello);
    const char *lists = chorus_msg_header (hello, "chorus.lists");
    bool listless = lists && streq (lists, "no");
    if (!listless)
        self->listed = true;
    bool joined = false;
    if (hinted) {
        //  A member we knew from news: met now. Our connection to it, if we
        //  opened one, stays its one DEALER; else one dialled on an older
        //  node's news, or a new one
        const char *answered = s_pending_answered (self,
                                                   chorus_msg_header (hello, "chorus.answers"));
        const char *dialled = zhashx_lookup (self->pending, endpoint)? endpoint: answered;
        if (dialled) {
            s_pending_t *pending = (s_pending_t *) zhashx_lookup (self->pending, dialled);
            bool sent = pending->hello_id [0] != 0;
            void *dealer = s_pending_take (self, dialled);
            if (!peer->dealer) {
                peer->dealer = dealer;
                peer->hello_sent = sent;
            }
            else
                chorus__socket_destroy (&dealer);
        }
        if (!peer->dealer) {
            if (!s_admit (self, instance, hello, false))
                return;
            peer->dealer = s_dealer_new (self, endpoint, key);
            peer->hello_sent = false;
            if (!peer->dealer) {
                self->context->counters [C_REFUSED]++;
                return;
            }
        }
        s_take_hello (peer, hello, started, grant, listless);
        zhashx_delete (self->greeting, instance);     //  answered
        s_link (self, peer);
        snprintf (peer->answers, sizeof (peer->answers), "%s", chorus_msg_id (hello));
        chorus__peer_greet (peer);
        if (!peer->hello_sent)
            self->connecting = true;
        chorus__context_log (self->context, "met %s/%.8s at %s", peer->service, instance, endpoint);
    }
    else
    if (!peer) {
        //  News said another node is at that endpoint: the port has changed
        //  hands (that node left), and the news was stale
        const char *answered = s_pending_answered (self,
                                                   chorus_msg_header (hello, "chorus.answers"));
        const char *dialled = zhashx_lookup (self->pending, endpoint)? endpoint: answered;
        s_pending_t *pending = dialled? (s_pending_t *) zhashx_lookup (self->pending, dialled): NULL;
        if (pending && pending->expect [0] && !streq (pending->expect, instance)) {
            chorus__context_log (self->context, "%s is %.8s now, not %.8s: not met", dialled,
                                 instance, pending->expect);
            void *dealer = s_pending_take (self, dialled);
            chorus__socket_destroy (&dealer);
            return;
        }
        if (!s_admit (self, instance, hello, pending != NULL))
            return;     //  not answered, and its gossip not followed
        bool hello_sent = false;
        bool newcomer = false, heard = false, sent_listless = false;
        void *dealer = s_peer_dealer (self, hello, instance, key, &hello_sent, &newcomer,
                                      &heard, &sent_listless);
        if (!dealer) {
            self->context->counters [C_REFUSED]++;
            return;
        }
        peer = chorus__peer_new (instance, chorus_msg_service (hello), endpoint,
                                 chorus_msg_pub_endpoint (hello), dealer, key);
        s_take_hello (peer, hello, started, grant, listless);
        peer->hello_sent = hello_sent;
        chorus__peer_set_greeter (peer, s_greet, self);
        chorus__peer_set_waiter (peer, s_wait);
        zhashx_insert (self->peers, peer->instance, peer);
        zhashx_update (self->endpoints, peer->endpoint, peer);
        s_link (self, peer);
        self->ring_dirty = true;
        //  Our HELLO answers theirs, so that a node we dialled under another
        //  name than it announces knows we are that seed
        snprintf (peer->answers, sizeof (peer->answers), "%s", chorus_msg_id (hello));
        chorus__peer_greet (peer);
        if (!peer->hello_sent)
            self->connecting = true;    //  it goes as soon as the connection is up
        else
        if (sent_listless && !listless)
            //  We dialled it without our list, and it has none of the
            //  membership (its seed could not reach it back): it gets ours
            s_send_hello_to (self, peer, chorus_msg_id (hello), true);
        if (newcomer || heard) {
            //  It came to us first, or news of it did: news of it for the
            //  others (some reach it only that way: it may not reach them,
            //  nor they it). If it came to join
            //  (a member that heard of us says it knows the membership), our
            //  list of peers once or twice more, for those we meet meanwhile
            //  (nodes that joined at the same time)
            s_spread (self, S_ALIVE, peer);
            if (newcomer && !listless)
                zhashx_update (self->newcomers, peer->instance,
                               (void *) (uintptr_t) S_NEWCOMER_ROUNDS);
        }
        joined = true;
        chorus__context_log (self->context, "met %s/%.8s at %s", peer->service, instance, endpoint);
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
        //  (A full list may have left us out for want of room)
        zlist_t *listed = chorus_msg_peers (hello);
        bool forgot = !listless && (!listed || zlist_size (listed) < CHORUS_MSG_MAX_LIST)
                   && !s_lists_endpoint (hello, self->endpoint, self->config->keys != NULL);
        //  A greeting, not an answer, from a peer we have met: it has not
        //  met us (it forgot us, or we were restarted on news of it), and
        //  drops what we send until our HELLO answers it
        bool greets = !chorus_msg_header (hello, "chorus.answers");
        if (forgot && peer->hello_sent)
            s_send_hello_to (self, peer, chorus_msg_id (hello), true);
        else
        if (greets && peer->hello_sent)
            s_send_hello_to (self, peer, chorus_msg_id (hello), false);
        else
        if ((forgot || greets) && peer->closed_idle) {
            //  The same, over the connection we closed unused, opened again
            //  for it: the HELLO that opens it answers this one, with our
            //  list if it forgot us
            snprintf (peer->answers, sizeof (peer->answers), "%s", chorus_msg_id (hello));
            if (forgot)
                peer->closed_idle = peer->listless = false;
            chorus__peer_greet (peer);
        }
    }
    peer->listless = listless;
    //  Its incarnation, when it says (an older node does not): news of it
    //  no newer is not news
    const char *incarnation = chorus_msg_header (hello, "chorus.incarnation");
    if (incarnation) {
        uint64_t value = strtoull (incarnation, NULL, 10);
        if (value > peer->incarnation)
            peer->incarnation = value;
    }
    bool changed = joined || hinted || chorus_msg_generation (hello) != peer->generation;
    peer->generation = chorus_msg_generation (hello);
    peer->head = chorus_msg_head (hello);
    peer->last_seen = chorus__mono ();
    if (changed) {
        chorus__peer_set_subs (peer, hello);
        peer->subscriber = peer->subs_size > 0;
        self->fn (peer, CHORUS__PEER_CHANGED, self->fn_arg);
    }
    if (joined) {
        self->fn (peer, CHORUS__PEER_JOINED, self->fn_arg);
        s_report (self, peer, CHORUS_PEER_JOINED);
    }
    self->fn (peer, CHORUS__PEER_HEAD, self->fn_arg);

    //  Anything it sends answers our probe of it (a member we dialled to
    //  probe answers with its HELLO), and those we make for others
    chorus__peers_heard (self, peer);
    //  Gossip: the members it lists, known now; or, from an older node, the
    //  endpoints of the peers it knows, met as far as our bound allows
    zlist_t *peers = chorus_msg_peers (hello);
    uint64_t now = chorus__mono ();
    for (char *item = peers? (char *) zlist_first (peers): NULL; item;
         item = (char *) zlist_next (peers))
        if (strncmp (item, "alive ", 6) == 0)
            s_absorb_entry (self, item, now);
        else
            s_connect_listed (self, item, NULL);   //  what finds no room waits its turn
    //  The connection it came over is its key's, until the key is revoked,
    //  and its closing is a reason to doubt the peer
    if (self->inbox_gate)
        chorus__gate_name (self->inbox_gate, chorus_msg_source_fd (hello), instance);
    if (key && self->inbox_gate)
        chorus__gate_tag (self->inbox_gate, chorus_msg_source_fd (hello), key);
}

void
chorus__peers_recv_beacon (chorus__peers_t *self, zactor_t *beacon)
{
    char *address = zstr_recv (beacon);
    zframe_t *frame = zframe_recv (beacon);
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
        if (port > 0 && !streq (instance, self->context->instance)
        &&  !chorus__context_peer (self->context, instance)) {
            char endpoint [128];
            snprintf (endpoint, sizeof (endpoint), "tcp://%s:%d", address, port);
            s_connect_pending (self, endpoint, secure? key: NULL, instance, true);
        }
    }
    zstr_free (&address);
    zframe_destroy (&frame);
}

void
chorus__peers_beacon (chorus__peers_t *self, zactor_t *beacon, int port)
{
    uint8_t data [S_BEACON_SECURE] = {'C', 'H', 'O', 0x01};
    for (int i = 0; i < 16; i++)
        sscanf (self->context->instance + 2 * i, "%2hhx", &data [4 + i]);
    data [20] = (uint8_t) (port >> 8);
    data [21] = (uint8_t) port;
    size_t size = S_BEACON;
    if (self->config->keys) {
        data [3] = 0x02;
        zmq_z85_decode (data + 22, chorus__keys_public (self->config->keys));
        size = S_BEACON_SECURE;
    }
    zsock_send (beacon, "sbi", "PUBLISH", data, size, 1000);
}

void
chorus__peers_add_seed (chorus__peers_t *self, const char *seed)
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

//  Closes the connections awaiting a HELLO from a key no longer trusted
static void
s_revoke_pending (chorus__peers_t *self)
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

void
chorus__peers_trust_changed (chorus__peers_t *self)
{
    chorus__context_t *context = self->context;
    zlistx_t *instances = zhashx_keys (self->peers);
    for (const char *instance = (const char *) zlistx_first (instances); instance;
         instance = (const char *) zlistx_next (instances)) {
        chorus__peer_t *peer = chorus__context_peer (context, instance);
        if (!peer || !peer->key)
            continue;
        peer->grant = chorus__keys_lookup (context->config->keys, peer->key);
        if (!peer->grant || !chorus__grant_service (peer->grant, peer->service)) {
            context->counters [C_REVOKED]++;
            chorus__context_warn (context, W_REVOKED, "key %s of %s/%.8s is no longer "
                                  "trusted for its service: cut off", peer->key, peer->service,
                                  peer->instance);
            chorus__peers_remove (self, peer, CHORUS_PEER_EXPIRED);
        }
    }
    zlistx_destroy (&instances);
    s_revoke_pending (self);
}

//  --------------------------------------------------------------------------
//  Timers

//  Opens a connection to each seed that leads to no live peer, every
//  S_SEED_RETRY_MS while it does not answer
static void
s_probe_seeds (chorus__peers_t *self, uint64_t now)
{
    for (s_seed_t *seed = (s_seed_t *) zhashx_first (self->seeds); seed;
         seed = (s_seed_t *) zhashx_next (self->seeds)) {
        const char *endpoint = (const char *) zhashx_cursor (self->seeds);
        if (seed->instance && chorus__context_peer (self->context, seed->instance))
            continue;
        zstr_free (&seed->instance);
        chorus__peer_t *peer = s_peer_at (self, endpoint);
        if (peer) {
            seed->instance = strdup (peer->instance);
            continue;
        }
        if (zhashx_lookup (self->pending, endpoint)
        ||  (seed->tried && now - seed->tried < s_seed_wait (seed)))
            continue;
        if (seed->tried && seed->attempts < 16)
            seed->attempts++;   //  it did not answer the last time
        if (s_connect_pending (self, endpoint, seed->key [0]? seed->key: NULL, NULL, true)) {
            seed->tried = now;
            s_pending_t *pending = (s_pending_t *) zhashx_lookup (self->pending, endpoint);
            if (pending)
                pending->wait = s_seed_wait (seed);
        }
    }
}

//  Says HELLO on connections that have come up, closes those that waited
//  too long for an answer
static void
s_pending_tick (chorus__peers_t *self, uint64_t now)
{
    zlistx_t *expired = zlistx_new ();
    for (s_pending_t *pending = (s_pending_t *) zhashx_first (self->pending); pending;
         pending = (s_pending_t *) zhashx_next (self->pending)) {
        if (now - pending->since > pending->wait)
            zlistx_add_end (expired, (void *) zhashx_cursor (self->pending));
        else
        if (!pending->hello_id [0]
        &&  s_send_hello (self, pending->dealer, NULL, pending->list, pending->hello_id))
            self->connecting = true;
    }
    for (const char *endpoint = (const char *) zlistx_first (expired); endpoint;
         endpoint = (const char *) zlistx_next (expired)) {
        //  A member we heard of (lists and news now go out once, not with
        //  every HELLO) is dialled again, a few times: on a loaded host a
        //  handshake can take longer than we wait
        s_pending_t *pending = (s_pending_t *) zhashx_lookup (self->pending, endpoint);
        s_pending_t again = *pending;
        char *target = strdup (endpoint);
        void *dealer = s_pending_take (self, endpoint);
        chorus__socket_destroy (&dealer);
        if (!again.list && again.tries + 1 < S_PENDING_TRIES
        &&  s_connect_pending (self, target, again.key [0]? again.key: NULL,
                               again.expect [0]? again.expect: NULL, false)
        &&  (pending = (s_pending_t *) zhashx_lookup (self->pending, target)))
            pending->tries = again.tries + 1;
        free (target);
    }
    zlistx_destroy (&expired);
}

//  Forgets the buckets of addresses that have been quiet long enough to
//  have refilled them
static void
s_admission_tick (chorus__peers_t *self, uint64_t now)
{
    int rate = self->config->peer_rate? self->config->peer_rate: 1;
    uint64_t full_ms = (uint64_t) (S_BUCKET * 1000 / rate);
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

//  Probes whose next step has come due
static void
s_probe_steps (chorus__peers_t *self, uint64_t now)
{
    chorus__timer_t *timer;
    while ((timer = chorus__timers_pop (self->timers, now)))
        s_probe_step (self, (chorus__peer_t *) timer->arg, now);
}

typedef void (s_visit_fn) (chorus__peers_t *self, chorus__peer_t *peer, uint64_t now);

//  Visits the peers of one of our tables, over a copy of their ids: a visit
//  may take a peer out of the table, or put it back
static void
s_visit (chorus__peers_t *self, zhashx_t *table, s_visit_fn *visit, uint64_t now)
{
    if (zhashx_size (table) == 0)
        return;
    zlistx_t *instances = zhashx_keys (table);
    for (const char *instance = (const char *) zlistx_first (instances); instance;
         instance = (const char *) zlistx_next (instances)) {
        chorus__peer_t *peer = (chorus__peer_t *) zhashx_lookup (table, instance);
        if (peer)
            visit (self, peer, now);
    }
    zlistx_destroy (&instances);
}

//  Our HELLO and answers that wait for a peer's connection: tried again at
//  each tick, for those peers only
static void
s_waiting_visit (chorus__peers_t *self, chorus__peer_t *peer, uint64_t now)
{
    bool greeted = peer->hello_sent;
    if (chorus__peer_greet (peer) == 0 && !greeted && peer->met) {
        //  A probe's PING, ours or one we make for another, could not go
        //  while the connection came up: it goes now (our HELLO, which
        //  answers one of the peer's, draws no answer of its own)
        bool relayed = false;
        for (size_t i = 0; i < self->relays_size && !relayed; i++)
            relayed = streq (self->relays [i].target, peer->instance);
        if (peer->probed || relayed)
            s_send_probe (self, peer, CHORUS_MSG_PING, NULL, NULL, NULL);
        self->fn (peer, CHORUS__PEER_READY, self->fn_arg);
    }
    chorus__peer_flush_backlog (peer);
    if (peer->hello_sent && chorus__peer_backlog (peer) == 0)
        zhashx_delete (self->waiting, peer->instance);
}

//  A member we greeted that has not answered. Our HELLO may have been
//  refused (the member was full, or we came too fast from one address) or
//  lost to a restart, or the member may be gone and the news of it stale:
//  we probe it, so that our probe and its helpers decide whether it
//  lives, and while we still need it, greet it again, less often each time
static void
s_greeting_visit (chorus__peers_t *self, chorus__peer_t *peer, uint64_t now)
{
    if (now < peer->greeted + s_greet_wait (peer))
        return;     //  (greeted may be later than now: it was read after now)
    peer->greetings++;
    chorus__context_log (self->context, "member %s/%.8s has not answered our HELLO (%d "
                         "times): probing it", peer->service, peer->instance, peer->greetings);
    s_probe (self, peer, now);
    peer->hello_sent = false;
    peer->greeted = 0;
    zhashx_delete (self->greeting, peer->instance);
    if (s_wanted (self, peer) || peer->commands)
        chorus__peer_greet (peer);      //  back in the table once it has gone
}

void
chorus__peers_observe (chorus__peers_t *self)
{
    if (!self->observing) {
        self->observing = true;
        self->ring_dirty = true;    //  we meet every member now
    }
}

void
chorus__peers_tick (chorus__peers_t *self, uint64_t now)
{
    self->connecting = false;   //  set again by whatever still waits
    if (!self->published && chorus_store_head (self->context->store) > 0) {
        self->published = true;     //  we deliver now: we meet every subscriber
        self->ring_dirty = true;
    }
    if (self->ring_dirty)
        s_refresh (self);
    s_probe_steps (self, now);
    s_probe_tick (self, now);
    s_idle_tick (self, now);
    s_gossip_tick (self, now);
    if (self->relays_size)
        s_relays_tick (self, now);
    if (zhashx_size (self->backlog))
        s_backlog_tick (self);
    s_visit (self, self->waiting, s_waiting_visit, now);
    s_visit (self, self->greeting, s_greeting_visit, now);
    if (zhashx_size (self->pending))
        s_pending_tick (self, now);
    s_probe_seeds (self, now);
    if (now + CHORUS__TICK_EARLY_MS >= self->admission_due) {
        s_admission_tick (self, now);
        self->admission_due = now + 1000;
    }
    //  Our list of peers again to the nodes that came to us first
    if (zhashx_size (self->newcomers) && now - self->last_newcomers >= S_ANNOUNCE_MS) {
        self->last_newcomers = now;
        zlistx_t *instances = zhashx_keys (self->newcomers);
        for (const char *instance = (const char *) zlistx_first (instances); instance;
             instance = (const char *) zlistx_next (instances)) {
            chorus__peer_t *peer = chorus__context_peer (self->context, instance);
            uintptr_t rounds = (uintptr_t) zhashx_lookup (self->newcomers, instance);
            if (peer && !peer->hello_sent)
                continue;   //  its first HELLO has not gone yet
            if (peer) {
                //  A list of members holds at most CHORUS_MSG_MAX_LIST: the
                //  next HELLOs go on where the one before stopped
                size_t offset = CHORUS_MSG_MAX_LIST * (S_NEWCOMER_ROUNDS + 1 - rounds);
                chorus_msg_t *hello = s_hello (self, NULL, true, peer->entries,
                                               peer->entries? offset: 0);
                chorus_msg_send (hello, peer->dealer);
                chorus_msg_destroy (&hello);
            }
            if (!peer || rounds <= 1)
                zhashx_delete (self->newcomers, instance);
            else
                zhashx_update (self->newcomers, instance, (void *) (rounds - 1));
        }
        zlistx_destroy (&instances);
    }
    //  What we announce changes with our subscriptions; a burst of changes
    //  costs one round of HELLOs, not one per change
    if (self->announce && now - self->last_announce >= S_ANNOUNCE_MS) {
        self->announce = false;
        self->last_announce = now;
        self->generation++;
        chorus_msg_t *hello = s_hello (self, NULL, false, false, 0);
        zlistx_t *closed = zlistx_new ();
        for (chorus__peer_t *peer = (chorus__peer_t *) zhashx_first (self->peers); peer;
             peer = (chorus__peer_t *) zhashx_next (self->peers)) {
            if (peer->closed_idle) {
                zlistx_add_end (closed, peer);
                continue;
            }
            if (!peer->hello_sent)
                continue;   //  its first HELLO answers its own, when its connection is up
            char id [33];
            chorus__new_id (id);    //  every message of ours has an id of its own
            chorus_msg_set_id (hello, id);
            if (chorus_msg_send (hello, peer->dealer) == 0)
                peer->last_sent = chorus__mono ();
        }
        chorus_msg_destroy (&hello);
        //  The connections we closed unused open again: the HELLO that opens
        //  each carries what changed (greeted after the walk of the table,
        //  which making a HELLO may walk too)
        for (chorus__peer_t *peer = (chorus__peer_t *) zlistx_first (closed); peer;
             peer = (chorus__peer_t *) zlistx_next (closed))
            chorus__peer_greet (peer);
        zlistx_destroy (&closed);
    }
}

//  --------------------------------------------------------------------------
//  Self-test

#define S_NODE_X "E0000000000000000000000000000001"
#define S_NODE_Y "E0000000000000000000000000000002"
#define S_NODE_Z "E0000000000000000000000000000003"

typedef struct {
    int joined, changed, gone, head, ready;
} s_heard_t;

static void
s_test_heard (chorus__peer_t *peer, chorus__peer_event_t event, void *arg)
{
    s_heard_t *heard = (s_heard_t *) arg;
    if (event == CHORUS__PEER_JOINED)
        heard->joined++;
    else
    if (event == CHORUS__PEER_CHANGED)
        heard->changed++;
    else
    if (event == CHORUS__PEER_GONE)
        heard->gone++;
    else
    if (event == CHORUS__PEER_READY)
        heard->ready++;
    else
        heard->head++;
}

static chorus_msg_t *
s_test_hello (chorus__fake_t *fake, const char *instance, const char *service,
              uint64_t generation, const char *started)
{
    chorus_msg_t *hello = chorus__context_msg (chorus__fake_context (fake), CHORUS_MSG_HELLO);
    chorus_msg_set_service (hello, service);
    chorus_msg_set_instance (hello, instance);
    chorus_msg_set_endpoint (hello, chorus__fake_endpoint (fake, instance));
    chorus_msg_set_pub_endpoint (hello, "inproc://nowhere-pub");
    chorus_msg_set_generation (hello, generation);
    chorus_msg_set_head (hello, 5);
    chorus_msg_set_header (hello, "chorus.started", started);
    chorus_msg_set_header (hello, "chorus.mesh", "default");
    return hello;
}

//  The next work handed to the application: a peer's state, or -1
static int
s_test_reported (chorus__fake_t *fake)
{
    chorus_msg_t *msg = NULL;
    char text [512];
    if (chorus__fake_handed (fake, &msg, text, sizeof (text)) != 'P')
        return -1;
    return atoi (text);
}

//  The first message we send to an endpoint, ticking until it goes
static chorus_msg_t *
s_test_first_sent (chorus__peers_t *self, chorus__fake_t *fake, const char *endpoint)
{
    chorus_msg_t *sent = NULL;
    for (int tick = 0; tick < 200 && !sent; tick++) {
        chorus__peers_tick (self, chorus__mono ());
        sent = chorus__fake_sent (fake, endpoint, 10);
    }
    return sent;
}

//  The schedule of probes (section 6.1): every member watched in a small
//  mesh, both neighbours on each ring past it; a watched member probed
//  once silent for a period times the number watched, the longest silent
//  first, one a period at most; a PING of its own, like any message,
//  makes a probe of it needless
static void
s_test_schedule (void)
{
    chorus__fake_t *fake = chorus__fake_new ("orders");
    chorus__context_t *context = chorus__fake_context (fake);
    zhashx_t *table = context->peers;
    s_heard_t heard = {0, 0, 0, 0, 0};
    chorus__peers_t *self = chorus__peers_new (context, s_test_heard, &heard);
    chorus__peers_start (self, "inproc://chorus-fake-us", "inproc://chorus-fake-us-pub", NULL);
    uint64_t period = (uint64_t) context->config->heartbeat_ms;

    //  A small mesh: X and Y, both watched
    const char *ids [12];
    char names [12][33];
    for (int i = 0; i < 12; i++) {
        snprintf (names [i], sizeof (names [i]), "E00000000000000000000000000001%02X", i);
        ids [i] = names [i];
    }
    for (int i = 0; i < 2; i++) {
        chorus_msg_t *hello = s_test_hello (fake, ids [i], "billing", 1, "1000");
        chorus__peers_hello (self, ids [i], hello);
        chorus_msg_destroy (&hello);
    }
    chorus__peer_t *x = chorus__context_peer (context, ids [0]);
    chorus__peer_t *y = chorus__context_peer (context, ids [1]);
    CHORUS__CHECK (x && y);
    uint64_t now = chorus__mono ();
    chorus__peers_tick (self, now);
    CHORUS__CHECK (self->watch_size == 2 && s_watched (self, x) && s_watched (self, y));
    CHORUS__CHECK (!x->probed && !y->probed);
    //  Each must be heard from every 2 periods: X, silent longer, goes first
    x->last_seen = now;
    y->last_seen = now + period / 2;
    self->probe_due = 0;
    uint64_t due;
    CHORUS__CHECK (s_watch_next (self, &due) == x && due == now + 2 * period);
    chorus__peers_tick (self, now + 2 * period - 1);
    CHORUS__CHECK (!x->probed && !y->probed);
    chorus__peers_tick (self, now + 2 * period);
    CHORUS__CHECK (x->probed == now + 2 * period && !y->probed);
    //  Y's time is up half a period later, but one probe a period at most
    chorus__peers_tick (self, now + 2 * period + period / 2);
    CHORUS__CHECK (!y->probed);
    CHORUS__CHECK (s_watch_next (self, &due) == y && due == now + 3 * period);
    chorus__peers_tick (self, now + 3 * period);
    CHORUS__CHECK (y->probed == now + 3 * period);
    //  Heard from (X's answer, Y's PING of us): no probe until silent again
    chorus__peers_heard (self, x);
    chorus__peers_heard (self, y);
    CHORUS__CHECK (!x->probed && !y->probed);
    x->last_seen = y->last_seen = now + 3 * period;
    chorus__peers_tick (self, now + 5 * period - 1);
    CHORUS__CHECK (!x->probed && !y->probed);
    chorus__peers_tick (self, now + 5 * period);
    CHORUS__CHECK (x->probed || y->probed);
    chorus__peers_heard (self, x);
    chorus__peers_heard (self, y);

    //  Past a full mesh: our successor and predecessor on each ring, and
    //  only they are met for the schedule's sake
    for (int i = 2; i < 12; i++) {
        chorus_msg_t *hello = s_test_hello (fake, ids [i], "billing", 1, "1000");
        chorus__peers_hello (self, ids [i], hello);
        chorus_msg_destroy (&hello);
    }
    CHORUS__CHECK (zhashx_size (context->peers) == 12);
    chorus__peers_tick (self, chorus__mono ());
    CHORUS__CHECK (self->watch_size >= 2 && self->watch_size <= 2 * S_RINGS);
    size_t expected = 0;
    for (int i = 0; i < 12; i++) {
        bool neighbour = false;
        for (int ring = 0; ring < S_RINGS; ring++) {
            uint64_t ours = s_ring_place (ring, context->instance);
            uint64_t place = s_ring_place (ring, ids [i]);
            bool successor = true, predecessor = true;
            for (int j = 0; j < 12; j++) {
                uint64_t other = s_ring_place (ring, ids [j]);
                if (j != i && other - ours < place - ours)
                    successor = false;
                if (j != i && ours - other < ours - place)
                    predecessor = false;
            }
            neighbour = neighbour || successor || predecessor;
        }
        chorus__peer_t *peer = chorus__context_peer (context, ids [i]);
        CHORUS__CHECK (peer && s_watched (self, peer) == neighbour);
        CHORUS__CHECK (s_wanted (self, peer) == neighbour);
        expected += neighbour;
    }
    CHORUS__CHECK (self->watch_size == expected);

    //  A connection unused for the idle time closes, unless we watch the
    //  peer or a command of ours waits on it (section 5.2)
    chorus__peer_t *unused = NULL, *busy = NULL;
    for (int i = 0; i < 12; i++) {
        chorus__peer_t *peer = chorus__context_peer (context, ids [i]);
        if (!s_watched (self, peer)) {
            if (!unused)
                unused = peer;
            else
            if (!busy)
                busy = peer;
        }
    }
    CHORUS__CHECK (unused && busy);
    for (int tick = 0; tick < 200 && !(unused->hello_sent && busy->hello_sent); tick++) {
        chorus__peers_tick (self, chorus__mono ());
        zclock_sleep (5);
    }
    CHORUS__CHECK (unused->hello_sent && busy->hello_sent);
    busy->commands = 1;
    uint64_t idle_ms = (uint64_t) context->config->idle_close_ms;
    uint64_t closes = context->counters [C_IDLE_CLOSES];
    chorus__peers_tick (self, chorus__peer_last_used (unused) + idle_ms - 1);
    CHORUS__CHECK (unused->dealer && unused->hello_sent);
    chorus__peers_tick (self, chorus__mono () + idle_ms);
    CHORUS__CHECK (!unused->dealer && !unused->hello_sent && unused->closed_idle);
    CHORUS__CHECK (unused->met && chorus__context_peer (context, unused->instance) == unused);
    CHORUS__CHECK (busy->dealer);
    for (size_t i = 0; i < self->watch_size; i++)
        CHORUS__CHECK (self->watch [i]->dealer);
    CHORUS__CHECK (context->counters [C_IDLE_CLOSES] > closes);
    //  Its closing of its own, unused, is no reason to doubt it; a peer we
    //  watch, or one a command waits on, is doubted
    uint64_t later = chorus__mono () + idle_ms;
    CHORUS__CHECK (!s_doubtful (self, unused, later));
    CHORUS__CHECK (s_doubtful (self, busy, later));
    CHORUS__CHECK (s_doubtful (self, self->watch [0], later));
    CHORUS__CHECK (s_doubtful (self, unused, unused->last_seen + idle_ms / 2 - 1));
    const char *unused_endpoint = chorus__fake_endpoint (fake, unused->instance);
    chorus_msg_t *drained;      //  what went before it closed
    while ((drained = chorus__fake_sent (fake, unused_endpoint, 0)))
        chorus_msg_destroy (&drained);
    //  Opened again on demand: our HELLO first, answering one of its own
    //  (so that it does not answer) and listing nothing
    //  (what went over the old connection may still come first)
    chorus_msg_t *ping = chorus__context_msg (context, CHORUS_MSG_PING);
    char ping_id [65];
    snprintf (ping_id, sizeof (ping_id), "%s", chorus_msg_id (ping));
    chorus__peer_send (unused, ping);
    chorus_msg_destroy (&ping);
    chorus_msg_t *again = s_test_first_sent (self, fake, unused_endpoint);
    while (again && chorus_msg_type (again) != CHORUS_MSG_HELLO
       &&  !streq (chorus_msg_id (again), ping_id)) {
        chorus_msg_destroy (&again);
        again = s_test_first_sent (self, fake, unused_endpoint);
    }
    CHORUS__CHECK (again && chorus_msg_type (again) == CHORUS_MSG_HELLO);
    CHORUS__CHECK (again && chorus_msg_header (again, "chorus.answers"));
    CHORUS__CHECK (again && streq (chorus_msg_header (again, "chorus.lists"), "no"));
    chorus_msg_destroy (&again);
    CHORUS__CHECK (unused->dealer && unused->hello_sent && !unused->closed_idle);
    //  A connection that was coming up takes our HELLO at a tick: a PING we
    //  make for another goes then too (it could not go before), and what
    //  waits to go is told it may
    while ((drained = chorus__fake_sent (fake, unused_endpoint, 0)))
        chorus_msg_destroy (&drained);
    unused->hello_sent = false;         //  as if its connection had not been up
    s_relay_t *relay = &self->relays [self->relays_size++];
    snprintf (relay->target, sizeof (relay->target), "%s", unused->instance);
    snprintf (relay->requester, sizeof (relay->requester), "%s", busy->instance);
    snprintf (relay->request, sizeof (relay->request), "%s", "relay-request");
    relay->until = chorus__mono () + 60000;
    int ready = heard.ready;
    s_waiting_visit (self, unused, chorus__mono ());
    CHORUS__CHECK (unused->hello_sent && heard.ready == ready + 1);
    chorus_msg_t *first = chorus__fake_sent (fake, unused_endpoint, 1000);
    chorus_msg_t *second = chorus__fake_sent (fake, unused_endpoint, 1000);
    CHORUS__CHECK (first && chorus_msg_type (first) == CHORUS_MSG_HELLO);
    CHORUS__CHECK (second && chorus_msg_type (second) == CHORUS_MSG_PING);
    chorus_msg_destroy (&first);
    chorus_msg_destroy (&second);
    self->relays_size--;
    //  Closed again, then greeted by it (it forgot us): the HELLO that
    //  opens our connection again answers that greeting
    //  (its last use made long past, rather than our clock moved on: our
    //  probes of the members we watch would expire them)
    unused->last_seen = unused->last_sent = 0;
    chorus__timers_set (self->idle, &unused->idle, 0, unused);
    chorus__peers_tick (self, chorus__mono ());
    CHORUS__CHECK (!unused->dealer && unused->closed_idle);
    while ((drained = chorus__fake_sent (fake, unused_endpoint, 0)))
        chorus_msg_destroy (&drained);
    //  An announce (our subscriptions changed) opens the connections closed
    //  unused, with the HELLO that says what changed. One that cannot be
    //  opened then (no socket; here, an endpoint ZeroMQ refuses) waits with
    //  what else waits for its connection, tried at each tick, not left to
    //  hear nothing
    char *kept_endpoint = unused->endpoint;
    unused->endpoint = strdup ("nosuchtransport://x");
    CHORUS__CHECK (chorus__peers_subscribe (self, "refund.", 0, 0));
    self->last_announce = 0;
    chorus__peers_tick (self, chorus__mono ());
    CHORUS__CHECK (!unused->dealer && zhashx_lookup (self->waiting, unused->instance));
    CHORUS__CHECK (chorus__peers_next_due (self) == CHORUS__DUE_TICK);
    chorus__peers_tick (self, chorus__mono ());
    CHORUS__CHECK (!unused->dealer && zhashx_lookup (self->waiting, unused->instance));
    free (unused->endpoint);
    unused->endpoint = kept_endpoint;
    chorus__peers_tick (self, chorus__mono ());
    CHORUS__CHECK (unused->dealer);
    chorus_msg_t *told = s_test_first_sent (self, fake, unused_endpoint);
    CHORUS__CHECK (told && chorus_msg_type (told) == CHORUS_MSG_HELLO
                   && chorus_msg_subscriptions (told) == self->subs_size);
    chorus_msg_destroy (&told);
    CHORUS__CHECK (!zhashx_lookup (self->waiting, unused->instance));
    //  (closed unused again, for what follows)
    unused->last_seen = unused->last_sent = 0;
    chorus__timers_set (self->idle, &unused->idle, 0, unused);
    chorus__peers_tick (self, chorus__mono ());
    CHORUS__CHECK (!unused->dealer && unused->closed_idle);
    while ((drained = chorus__fake_sent (fake, unused_endpoint, 0)))
        chorus_msg_destroy (&drained);
    chorus_msg_t *greeting = s_test_hello (fake, unused->instance, "billing", 1, "1000");
    chorus__peers_hello (self, unused->instance, greeting);
    chorus_msg_t *answer = s_test_first_sent (self, fake, unused_endpoint);
    while (answer && chorus_msg_type (answer) != CHORUS_MSG_HELLO) {
        chorus_msg_destroy (&answer);   //  (sent before it closed)
        answer = s_test_first_sent (self, fake, unused_endpoint);
    }
    CHORUS__CHECK (answer && chorus_msg_type (answer) == CHORUS_MSG_HELLO);
    CHORUS__CHECK (answer && streq (chorus_msg_header (answer, "chorus.answers"),
                                    chorus_msg_id (greeting)));
    chorus_msg_destroy (&answer);
    chorus_msg_destroy (&greeting);
    //  News of its death, once closed again: it holds no work of ours, and
    //  goes at once; one a command waits on is probed, and stays
    unused->last_seen = unused->last_sent = 0;
    chorus__timers_set (self->idle, &unused->idle, 0, unused);
    chorus__peers_tick (self, chorus__mono ());
    CHORUS__CHECK (s_idle_quiet (self, unused, chorus__mono ()));
    CHORUS__CHECK (!s_idle_quiet (self, busy, chorus__mono ()));
    char unused_id [33], dead [300];
    snprintf (unused_id, sizeof (unused_id), "%s", unused->instance);
    snprintf (dead, sizeof (dead), "dead %" PRIu64 " %s %s billing -", unused->incarnation,
              busy->instance, busy->endpoint);
    s_absorb_entry (self, dead, chorus__mono ());
    CHORUS__CHECK (chorus__context_peer (context, busy->instance) == busy && busy->probed);
    snprintf (dead, sizeof (dead), "dead %" PRIu64 " %s %s billing -", unused->incarnation,
              unused->instance, unused->endpoint);
    s_absorb_entry (self, dead, chorus__mono ());
    CHORUS__CHECK (!chorus__context_peer (context, unused_id));
    //  (met again, for what follows)
    greeting = s_test_hello (fake, unused_id, "billing", 1, "1000");
    chorus__peers_hello (self, unused_id, greeting);
    chorus_msg_destroy (&greeting);
    CHORUS__CHECK (chorus__context_peer (context, unused_id));
    chorus__peers_heard (self, busy);
    busy->commands = 0;

    //  At our bound on peers, a node that greets us takes the place of a
    //  member known from news alone, which is forgotten without a word:
    //  no tombstone, no news of its death
    char heard_of [20][33];
    for (int i = 0; i < 20; i++) {
        snprintf (heard_of [i], sizeof (heard_of [i]), "E00000000000000000000000000002%02X", i);
        char news [300];
        snprintf (news, sizeof (news), "alive 5 %s %s billing -", heard_of [i],
                  chorus__fake_endpoint (fake, heard_of [i]));
        s_absorb_entry (self, news, chorus__mono ());
    }
    chorus__peers_tick (self, chorus__mono ());
    size_t full = zhashx_size (context->peers);
    CHORUS__CHECK (full == 32);
    context->config->max_peers = (int) full;
    const char *greeter = "E0000000000000000000000000000300";
    chorus_msg_t *hello = s_test_hello (fake, greeter, "billing", 1, "1000");
    chorus__peers_hello (self, greeter, hello);
    chorus_msg_destroy (&hello);
    CHORUS__CHECK (chorus__context_peer (context, greeter) && zhashx_size (context->peers) == full);
    int forgotten = 0;
    for (int i = 0; i < 20; i++)
        if (!chorus__context_peer (context, heard_of [i])) {
            forgotten++;
            CHORUS__CHECK (!zhashx_lookup (self->tombstones, heard_of [i]));
            s_update_t *update = (s_update_t *) zhashx_lookup (self->updates, heard_of [i]);
            CHORUS__CHECK (!update || strncmp (update->entry, "dead ", 5) != 0);
        }
    CHORUS__CHECK (forgotten == 1);
    for (int i = 0; i < 12; i++)
        CHORUS__CHECK (chorus__context_peer (context, ids [i]));
    context->config->max_peers = 400;

    chorus__peers_destroy (&self);
    context->peers = table;
    chorus_msg_t *work = NULL;
    while (chorus__fake_handed (fake, &work, NULL, 0))
        chorus_msg_destroy (&work);
    chorus__fake_destroy (&fake);
}

void
chorus__peers_test (bool verbose)
{
    if (verbose)
        printf (" * chorus__peers: ");
    chorus__fake_t *fake = chorus__fake_new ("orders");
    chorus__context_t *context = chorus__fake_context (fake);
    zhashx_t *table = context->peers;
    s_heard_t heard = {0, 0, 0, 0, 0};
    chorus__peers_t *self = chorus__peers_new (context, s_test_heard, &heard);
    CHORUS__CHECK (context->peers != table && zhashx_size (context->peers) == 0);
    chorus__peers_start (self, "inproc://chorus-fake-us", "inproc://chorus-fake-us-pub", NULL);
    CHORUS__CHECK (chorus__peers_subscribe (self, "payment.", 0, CHORUS_SUB_DURABLE));
    CHORUS__CHECK (!chorus__peers_subscribe (self, "payment.", 0, CHORUS_SUB_DURABLE));

    //  A HELLO from a new node: it is met, told, and answered by our HELLO
    const char *x_endpoint = chorus__fake_endpoint (fake, S_NODE_X);
    chorus_msg_t *hello = s_test_hello (fake, S_NODE_X, "billing", 1, "1000");
    chorus__peers_hello (self, S_NODE_X, hello);
    chorus__peer_t *peer = chorus__context_peer (context, S_NODE_X);
    CHORUS__CHECK (peer && streq (peer->service, "billing") && peer->head == 5);
    CHORUS__CHECK (heard.joined == 1 && heard.changed == 1 && heard.head == 1);
    CHORUS__CHECK (s_test_reported (fake) == CHORUS_PEER_JOINED);
    //  (it says HELLO once the connection is up)
    chorus_msg_t *ours = s_test_first_sent (self, fake, x_endpoint);
    CHORUS__CHECK (ours && chorus_msg_type (ours) == CHORUS_MSG_HELLO);
    CHORUS__CHECK (streq (chorus_msg_instance (ours), context->instance));
    CHORUS__CHECK (streq (chorus_msg_header (ours, "chorus.answers"), chorus_msg_id (hello)));
    CHORUS__CHECK (chorus_msg_subscriptions (ours) == 1);
    chorus_msg_destroy (&ours);
    chorus_msg_destroy (&hello);


    //  The same HELLO again changes nothing; a new generation is a change
    hello = s_test_hello (fake, S_NODE_X, "billing", 1, "1000");
    chorus__peers_hello (self, S_NODE_X, hello);
    CHORUS__CHECK (heard.joined == 1 && heard.changed == 1);
    chorus_msg_destroy (&hello);
    hello = s_test_hello (fake, S_NODE_X, "billing", 2, "1000");
    chorus_msg_add_subscription (hello, "order.", 0, 0);
    chorus__peers_hello (self, S_NODE_X, hello);
    CHORUS__CHECK (heard.joined == 1 && heard.changed == 2 && peer->subs_size == 1);
    chorus_msg_destroy (&hello);

    //  A greeting from a peer we met that has not met us (it forgot us, or
    //  we were restarted on its news) is answered: until our HELLO comes,
    //  it drops all we send. An answer is not answered
    while ((ours = chorus__fake_sent (fake, x_endpoint, 0)))
        chorus_msg_destroy (&ours);
    for (int answer = 0; answer < 2; answer++) {
        hello = s_test_hello (fake, S_NODE_X, "billing", 2, "1000");
        chorus_msg_set_header (hello, "chorus.lists", "no");
        if (answer)
            chorus_msg_set_header (hello, "chorus.answers", "0123456789ABCDEF0123456789ABCDEF");
        chorus__peers_hello (self, S_NODE_X, hello);
        ours = chorus__fake_sent (fake, x_endpoint, 100);
        CHORUS__CHECK (answer? ours == NULL: ours && chorus_msg_type (ours) == CHORUS_MSG_HELLO
                       && streq (chorus_msg_header (ours, "chorus.answers"),
                                 chorus_msg_id (hello)));
        chorus_msg_destroy (&ours);
        chorus_msg_destroy (&hello);
    }
    CHORUS__CHECK (heard.joined == 1 && heard.changed == 2);
    peer->listless = false;     //  as it was, for what follows

    //  A known instance announcing another service is forged
    hello = s_test_hello (fake, S_NODE_X, "shipping", 3, "1000");
    chorus__peers_hello (self, S_NODE_X, hello);
    CHORUS__CHECK (context->counters [C_FORGED] == 1 && streq (peer->service, "billing"));
    chorus_msg_destroy (&hello);

    //  Beyond the most peers we keep, a new node is refused
    context->config->max_peers = 1;
    hello = s_test_hello (fake, S_NODE_Y, "billing", 1, "1000");
    chorus__peers_hello (self, S_NODE_Y, hello);
    CHORUS__CHECK (!chorus__context_peer (context, S_NODE_Y));
    CHORUS__CHECK (context->counters [C_REFUSED] == 1 && heard.joined == 1);
    chorus_msg_destroy (&hello);
    context->config->max_peers = 400;

    //  The same instance started again: gone, and met anew
    hello = s_test_hello (fake, S_NODE_X, "billing", 1, "2000");
    chorus__peers_hello (self, S_NODE_X, hello);
    CHORUS__CHECK (heard.gone == 1 && heard.joined == 2);
    CHORUS__CHECK (s_test_reported (fake) == CHORUS_PEER_EXPIRED);
    CHORUS__CHECK (s_test_reported (fake) == CHORUS_PEER_JOINED);
    chorus_msg_destroy (&hello);

    //  Silent for a period: probed. Unanswered: suspect (evasive) after the
    //  evasive time, alive again when it speaks, and after a new probe
    //  unanswered for the expired time, forgotten
    //  (X left: Z alone is probed)
    chorus__peers_remove (self, chorus__context_peer (context, S_NODE_X), CHORUS_PEER_LEFT);
    CHORUS__CHECK (s_test_reported (fake) == CHORUS_PEER_LEFT && heard.gone == 2);
    const char *z_endpoint = chorus__fake_endpoint (fake, S_NODE_Z);
    hello = s_test_hello (fake, S_NODE_Z, "billing", 1, "1000");
    chorus__peers_hello (self, S_NODE_Z, hello);
    chorus_msg_destroy (&hello);
    CHORUS__CHECK (s_test_reported (fake) == CHORUS_PEER_JOINED);
    peer = chorus__context_peer (context, S_NODE_Z);
    CHORUS__CHECK (peer);
    chorus_msg_t *sent = NULL;
    for (int tick = 0; tick < 200 && !peer->hello_sent; tick++) {
        chorus__peers_tick (self, chorus__mono ());     //  its new connection comes up
        zclock_sleep (5);
    }
    CHORUS__CHECK (peer->hello_sent);
    uint64_t now = chorus__mono () + context->config->heartbeat_ms;
    chorus__peers_tick (self, now);
    CHORUS__CHECK (peer->probed == now);
    while ((sent = chorus__fake_sent (fake, z_endpoint, 1000))
    &&     chorus_msg_type (sent) == CHORUS_MSG_HELLO)
        chorus_msg_destroy (&sent);     //  our HELLO goes first on a new connection
    CHORUS__CHECK (sent && chorus_msg_type (sent) == CHORUS_MSG_PING);
    //  Our news travels with it: that we are alive, and that X is
    zlist_t *members = chorus_msg_members (sent);
    CHORUS__CHECK (members && zlist_size (members) >= 1);
    char entry [257];
    //  (at our incarnation, which starts at our start time and rose when
    //  we subscribed after start; with our service, and "s": subscriber)
    CHORUS__CHECK (self->incarnation == self->started + 1);
    snprintf (entry, sizeof (entry), "alive %" PRIu64 " %s inproc://chorus-fake-us %s s",
              self->incarnation, context->instance, context->config->service);
    bool ours_listed = false;
    for (char *item = (char *) zlist_first (members); item; item = (char *) zlist_next (members))
        if (streq (item, entry))
            ours_listed = true;
    CHORUS__CHECK (ours_listed);
    chorus_msg_destroy (&sent);
    chorus__peers_tick (self, now + context->config->evasive_ms);
    CHORUS__CHECK (peer->evasive && s_test_reported (fake) == CHORUS_PEER_EVASIVE);
    chorus__peers_heard (self, peer);
    CHORUS__CHECK (!peer->evasive && !peer->probed && s_test_reported (fake) == CHORUS_PEER_ALIVE);
    //  A stall of ours: woken 3 s after our timers were due, the probe under
    //  way gets that time back, and our health worsens (section 6.1); our
    //  times stretch to twice, and a probe answered at once mends it
    uint64_t evasive_ms = (uint64_t) context->config->evasive_ms;
    now += evasive_ms + (uint64_t) context->config->heartbeat_ms;
    chorus__peers_tick (self, now);
    CHORUS__CHECK (peer->probed == now);
    chorus__peers_woke (self, now + 100, now + 150);    //  late, but not stalled
    CHORUS__CHECK (chorus__peers_health (self) == 0 && peer->probed == now);
    chorus__peers_woke (self, now + 100, now + 3100);
    CHORUS__CHECK (chorus__peers_health (self) == 1 && context->counters [C_STALLS] == 1);
    CHORUS__CHECK (peer->probed == now + 3000);
    chorus__peers_tick (self, now + 3100);
    CHORUS__CHECK (chorus__context_peer (context, S_NODE_Z) == peer && !peer->evasive);
    chorus__peers_tick (self, now + 3000 + evasive_ms);
    CHORUS__CHECK (!peer->evasive);                     //  stretched: not yet
    chorus__peers_tick (self, now + 3000 + 2 * evasive_ms);
    CHORUS__CHECK (peer->evasive && s_test_reported (fake) == CHORUS_PEER_EVASIVE);
    chorus__peers_heard (self, peer);                   //  late: health stays
    CHORUS__CHECK (!peer->evasive && chorus__peers_health (self) == 1);
    CHORUS__CHECK (s_test_reported (fake) == CHORUS_PEER_ALIVE);
    now += 3000 + 2 * evasive_ms + (uint64_t) context->config->heartbeat_ms;
    chorus__peers_tick (self, now);
    CHORUS__CHECK (peer->probed == now);
    chorus__peers_heard (self, peer);                   //  at once: mended
    CHORUS__CHECK (!peer->probed && chorus__peers_health (self) == 0);
    //  Stalled past the expired time, we may have been forgotten: our HELLO
    //  goes to every peer again (the 3 s stall above was shorter)
    CHORUS__CHECK (!self->announce);
    chorus__peers_woke (self, now, now + (uint64_t) context->config->expired_ms);
    CHORUS__CHECK (self->announce && chorus__peers_health (self) == 1);
    self->health = 0;

    now += (uint64_t) (context->config->evasive_ms + context->config->heartbeat_ms);
    chorus__peers_tick (self, now);
    CHORUS__CHECK (peer->probed == now);
    chorus__peers_tick (self, now + context->config->expired_ms);
    CHORUS__CHECK (!chorus__context_peer (context, S_NODE_Z) && heard.gone == 3);
    CHORUS__CHECK (s_test_reported (fake) == CHORUS_PEER_EXPIRED);
    //  And its death is news we pass on
    bool dead = false;
    for (s_update_t *update = (s_update_t *) zhashx_first (self->updates); update;
         update = (s_update_t *) zhashx_next (self->updates))
        if (strncmp (update->entry, "dead 0 " S_NODE_Z, 39) == 0)
            dead = true;
    CHORUS__CHECK (dead);

    //  Gossip: an endpoint a peer lists gets a connection and our HELLO
    const char *y_endpoint = chorus__fake_endpoint (fake, S_NODE_Y);
    hello = s_test_hello (fake, S_NODE_X, "billing", 1, "3000");
    chorus_msg_add_peers (hello, y_endpoint);
    chorus__peers_hello (self, S_NODE_X, hello);
    chorus_msg_destroy (&hello);
    ours = s_test_first_sent (self, fake, y_endpoint);
    CHORUS__CHECK (ours && chorus_msg_type (ours) == CHORUS_MSG_HELLO);
    chorus_msg_destroy (&ours);

    //  A peer that leaves is forgotten at once
    peer = chorus__context_peer (context, S_NODE_X);
    CHORUS__CHECK (peer);
    int gone = heard.gone;
    chorus__peers_remove (self, peer, CHORUS_PEER_LEFT);
    CHORUS__CHECK (heard.gone == gone + 1 && zhashx_size (context->peers) == 0);
    //  and news that it is gone goes to those that know it from news alone
    s_update_t *left = (s_update_t *) zhashx_lookup (self->updates, S_NODE_X);
    CHORUS__CHECK (left && strncmp (left->entry, "dead ", 5) == 0);

    //  A member known from news that we need is greeted. Unanswered (it
    //  refused us, or it is gone), it is probed and greeted again after
    //  S_GREET_MS, then after twice that; its HELLO at last makes it met
    #define S_NODE_W "E0000000000000000000000000000004"
    const char *w_endpoint = chorus__fake_endpoint (fake, S_NODE_W);
    char news [300];
    snprintf (news, sizeof (news), "alive 5 %s %s billing -", S_NODE_W, w_endpoint);
    self->probe_due = UINT64_MAX;   //  (no probe of the period meanwhile: the probe is ours)
    s_absorb_entry (self, news, chorus__mono ());
    peer = chorus__context_peer (context, S_NODE_W);
    CHORUS__CHECK (peer && !peer->met && s_test_reported (fake) == CHORUS_PEER_JOINED);
    ours = s_test_first_sent (self, fake, w_endpoint);
    CHORUS__CHECK (ours && chorus_msg_type (ours) == CHORUS_MSG_HELLO);
    chorus_msg_destroy (&ours);
    CHORUS__CHECK (peer->greeted && zhashx_lookup (self->greeting, S_NODE_W) == peer);
    now = peer->greeted + S_GREET_MS - 1;
    CHORUS__CHECK (chorus__peers_next_due (self) <= now + 1);
    chorus__peers_tick (self, now);
    CHORUS__CHECK (peer->greetings == 0 && !peer->probed);     //  not yet
    now++;
    chorus__peers_tick (self, now);
    CHORUS__CHECK (peer->greetings == 1 && peer->probed == now);
    int hellos = 0, pings = 0;
    while ((ours = chorus__fake_sent (fake, w_endpoint, 100))) {
        hellos += chorus_msg_type (ours) == CHORUS_MSG_HELLO;
        pings += chorus_msg_type (ours) == CHORUS_MSG_PING;
        chorus_msg_destroy (&ours);
    }
    CHORUS__CHECK (hellos == 1 && pings == 1);
    CHORUS__CHECK (s_greet_wait (peer) == 2 * S_GREET_MS);
    self->probe_due = 0;
    chorus__peers_heard (self, peer);   //  (its helpers answered our probe)
    hello = s_test_hello (fake, S_NODE_W, "billing", 1, "4000");
    chorus_msg_set_header (hello, "chorus.lists", "no");
    chorus__peers_hello (self, S_NODE_W, hello);
    chorus_msg_destroy (&hello);
    CHORUS__CHECK (peer->met && !peer->greeted && peer->greetings == 0);
    CHORUS__CHECK (zhashx_size (self->greeting) == 0);
    //  The bound on peers counts a member known from news once: its own
    //  HELLO does not find the node full because of itself
    context->config->max_peers = (int) zhashx_size (context->peers);
    hello = s_test_hello (fake, S_NODE_Y, "billing", 1, "4000");
    CHORUS__CHECK (s_admit (self, S_NODE_W, hello, true));
    CHORUS__CHECK (!s_admit (self, S_NODE_Y, hello, true));
    chorus_msg_destroy (&hello);
    context->config->max_peers = 400;
    chorus__peers_remove (self, peer, CHORUS_PEER_LEFT);
    CHORUS__CHECK (s_test_reported (fake) == CHORUS_PEER_LEFT);

    //  A member said dead is buried: news of it alive at that incarnation
    //  or an older one, still going round, does not bring it back, but has
    //  its endpoint dialled, to meet it first hand if it lives; news of a
    //  newer incarnation (it refuted, or restarted) does
    const char *ghost = "E0000000000000000000000000000500";
    const char *ghost_endpoint = chorus__fake_endpoint (fake, ghost);
    char ghost_news [300];
    snprintf (ghost_news, sizeof (ghost_news), "alive 7 %s %s billing -", ghost, ghost_endpoint);
    s_absorb_entry (self, ghost_news, chorus__mono ());
    CHORUS__CHECK (chorus__context_peer (context, ghost));
    snprintf (ghost_news, sizeof (ghost_news), "dead 7 %s %s billing -", ghost, ghost_endpoint);
    s_absorb_entry (self, ghost_news, chorus__mono ());
    CHORUS__CHECK (!chorus__context_peer (context, ghost) && s_buried (self, ghost, 7));
    CHORUS__CHECK (!zhashx_lookup (self->pending, ghost_endpoint));
    for (int incarnation = 7; incarnation >= 6; incarnation--) {
        snprintf (ghost_news, sizeof (ghost_news), "alive %d %s %s billing -", incarnation, ghost,
                  ghost_endpoint);
        s_absorb_entry (self, ghost_news, chorus__mono ());
        CHORUS__CHECK (!chorus__context_peer (context, ghost));
        CHORUS__CHECK (zhashx_lookup (self->pending, ghost_endpoint));
    }
    snprintf (ghost_news, sizeof (ghost_news), "alive 8 %s %s billing -", ghost, ghost_endpoint);
    s_absorb_entry (self, ghost_news, chorus__mono ());
    chorus__peer_t *risen = chorus__context_peer (context, ghost);
    CHORUS__CHECK (risen && risen->incarnation == 8 && !risen->met);
    if (risen)
        chorus__peers_remove (self, risen, CHORUS_PEER_LEFT);

    //  Bounded tables make room by their own rule. News: the piece that
    //  went out most often goes
    zhashx_purge (self->updates);
    const char *keys [4] = {"a", "b", "c", "d"};
    for (size_t i = 0; i < 4; i++) {
        s_update_t *update = (s_update_t *) s_slot (self->updates, keys [i], 3, s_update_sent,
                                                     sizeof (s_update_t));
        CHORUS__CHECK (update->entry == NULL && update->sent == 0);
        update->entry = strdup (keys [i]);
        update->sent = i == 1? 9: i;
    }
    CHORUS__CHECK (zhashx_size (self->updates) == 3 && !zhashx_lookup (self->updates, "b"));
    CHORUS__CHECK (s_slot (self->updates, "d", 3, s_update_sent, sizeof (s_update_t))
                   == zhashx_lookup (self->updates, "d"));
    //  Tombstones: past the bound, the one to be forgotten soonest goes
    char buried [33];
    for (int i = 0; i < S_TOMBSTONES; i++) {
        snprintf (buried, sizeof (buried), "%032X", i);
        s_bury (self, buried, 1);
        s_tombstone_t *stone = (s_tombstone_t *) zhashx_lookup (self->tombstones, buried);
        stone->until = i == 7? 1: 1000 + (uint64_t) i;    //  the seventh goes first
    }
    s_bury (self, S_NODE_Y, 1);
    snprintf (buried, sizeof (buried), "%032X", 7);
    CHORUS__CHECK (zhashx_size (self->tombstones) == S_TOMBSTONES);
    CHORUS__CHECK (!zhashx_lookup (self->tombstones, buried));
    CHORUS__CHECK (zhashx_lookup (self->tombstones, S_NODE_Y));

    chorus__peers_destroy (&self);
    CHORUS__CHECK (self == NULL && context->peers == NULL);
    context->peers = table;     //  the fake's own, freed with it
    chorus_msg_t *work = NULL;
    while (chorus__fake_handed (fake, &work, NULL, 0))
        chorus_msg_destroy (&work);
    chorus__fake_destroy (&fake);
    s_test_schedule ();
    if (verbose)
        printf ("OK\n");
}
