/*  chorus_observer.c — observing every event of the mesh (protocol
    section 7.5): a SUB per peer, connected to its PUB, so that each event
    is known to come from the publisher it names (section 5.1); a position
    per publisher, later events held back while a gap is repaired by FETCH
    from the publisher's log, and a visible report of anything the log no
    longer holds. The application sees each publisher's events once, in
    order.
*/
#include "chorus_observer.h"
#include "chorus_fake.h"

#define S_HOLD_MAX 10000        //  out-of-order events held per publisher
#define S_FETCH_DELAY_MS 20     //  let a burst of gaps merge into one FETCH
#define S_FETCH_TIMEOUT_MS 5000 //  ask again when no REPLAY came
#define S_WINDOW 1000           //  observed events the application may hold
#define S_LOOKBACK 1000         //  events read back from a publisher met late

//  What we know of one publisher
typedef struct {
    char *instance;             //  the publisher
    void *sub;                  //  connected to its PUB while it is a peer (libzmq handle)
    char *pub_endpoint;         //  where sub is connected
    uint64_t seen;              //  every event up to here delivered or reported lost
    uint64_t head;              //  its latest seq, as far as we know
    zhashx_t *held;             //  "seq" -> event, waiting for the gap before it
    char fetch_id [33];         //  the outstanding FETCH, "" if none
    uint64_t fetch_sent;        //  when it was sent
    uint64_t gap_since;         //  when we first saw we miss something (0: we do not)
} s_source_t;

//  A topic prefix we observe
typedef struct {
    char *prefix;               //  the prefix
    bool earliest;              //  with each publisher's retained history
} s_prefix_t;

struct _chorus__observer_t {
    chorus__context_t *context; //  what the engine shares with us
    zlistx_t *prefixes;         //  s_prefix_t, the topic prefixes we observe
    bool from_earliest;         //  some prefix starts with the retained history
    uint64_t since;             //  the others want events published from this time on
    zhashx_t *sources;          //  instance -> s_source_t
    zhashx_t *attention;        //  instance -> s_source_t (not owned): those with a gap
                                //  or a FETCH outstanding, the only ones a tick visits
    zhashx_t *sockets;          //  "%p" of a source's SUB -> s_source_t
    bool paused;                //  the application is behind: SUB is not read
    size_t observed_out;        //  observed events handed over and not yet run
};

//  True if a prefix matching the event's topic wants it: one that reads
//  the history, or one for which it is recent enough
static bool
s_wanted (chorus__observer_t *self, chorus_msg_t *event)
{
    const char *topic = chorus_msg_topic (event);
    for (s_prefix_t *entry = (s_prefix_t *) zlistx_first (self->prefixes); entry;
         entry = (s_prefix_t *) zlistx_next (self->prefixes))
        if (chorus__prefix_match (entry->prefix, topic)
        &&  (entry->earliest || chorus_msg_timestamp (event) >= self->since))
            return true;
    return false;
}

static void
s_poll_subs (chorus__observer_t *self, bool add)
{
    for (s_source_t *source = (s_source_t *) zhashx_first (self->sources); source;
         source = (s_source_t *) zhashx_next (self->sources))
        if (source->sub) {
            if (add)
                chorus__poller_add (self->context->poller, source->sub);
            else
                chorus__poller_remove (self->context->poller, source->sub);
        }
}

//  Hands an event to the application. A slow application makes us stop
//  reading SUB: ZeroMQ then drops at the publisher's high-water mark, and
//  FETCH brings the events back when the application has caught up, so
//  neither side's memory grows with the lag.
static void
s_deliver (chorus__observer_t *self, chorus_msg_t *event)
{
    chorus__context_t *context = self->context;
    if (!s_wanted (self, event)) {
        chorus_msg_destroy (&event);    //  from before we started: read back to find our start
        return;
    }
    context->counters [C_OBSERVED]++;
    self->observed_out++;
    chorus__context_hand (context, 'O', event, NULL);
    if (!self->paused && self->observed_out >= S_WINDOW) {
        s_poll_subs (self, false);
        self->paused = true;
    }
}

void
chorus__observer_done (chorus__observer_t *self, size_t count)
{
    self->observed_out = self->observed_out > count? self->observed_out - count: 0;
    if (self->paused && self->observed_out < S_WINDOW / 2) {
        s_poll_subs (self, true);
        self->paused = false;
    }
}

static void
s_source_destroy (void **item)
{
    s_source_t *source = (s_source_t *) *item;
    if (source) {
        chorus__socket_destroy (&source->sub);
        free (source->pub_endpoint);
        for (chorus_msg_t *msg = (chorus_msg_t *) zhashx_first (source->held); msg;
             msg = (chorus_msg_t *) zhashx_next (source->held))
            chorus_msg_destroy (&msg);
        zhashx_destroy (&source->held);
        free (source->instance);
        free (source);
        *item = NULL;
    }
}

static void
s_prefix_destroy (void **item)
{
    s_prefix_t *entry = (s_prefix_t *) *item;
    if (entry) {
        free (entry->prefix);
        free (entry);
        *item = NULL;
    }
}

chorus__observer_t *
chorus__observer_new (chorus__context_t *context)
{
    chorus__observer_t *self = (chorus__observer_t *) zmalloc (sizeof (chorus__observer_t));
    self->context = context;
    self->prefixes = zlistx_new ();
    zlistx_set_destructor (self->prefixes, s_prefix_destroy);
    self->sources = zhashx_new ();
    zhashx_set_destructor (self->sources, s_source_destroy);
    self->sockets = zhashx_new ();
    self->attention = zhashx_new ();
    return self;
}

void
chorus__observer_destroy (chorus__observer_t **self_p)
{
    chorus__observer_t *self = *self_p;
    if (self) {
        s_poll_subs (self, false);
        zhashx_destroy (&self->sockets);
        zhashx_destroy (&self->attention);
        zlistx_destroy (&self->prefixes);
        zhashx_destroy (&self->sources);
        free (self);
        *self_p = NULL;
    }
}

static bool
s_matches (chorus__observer_t *self, const char *topic)
{
    for (s_prefix_t *entry = (s_prefix_t *) zlistx_first (self->prefixes); entry;
         entry = (s_prefix_t *) zlistx_next (self->prefixes))
        if (chorus__prefix_match (entry->prefix, topic))
            return true;
    return false;
}

//  We miss events of this source from now: a tick will FETCH them
static void
s_gap (chorus__observer_t *self, s_source_t *source)
{
    source->gap_since = chorus__mono ();
    zhashx_update (self->attention, source->instance, source);
}

static s_source_t *
s_source (chorus__observer_t *self, const char *instance, uint64_t head)
{
    s_source_t *source = (s_source_t *) zhashx_lookup (self->sources, instance);
    if (!source) {
        source = (s_source_t *) zmalloc (sizeof (s_source_t));
        source->instance = strdup (instance);
        //  "Latest" means published since we started observing. A
        //  publisher we meet late may have published some of those
        //  already, so we read back a little and skip the older ones.
        source->seen = self->from_earliest || head < S_LOOKBACK? 0: head - S_LOOKBACK;
        source->head = head;
        source->held = zhashx_new ();
        if (source->head > source->seen)
            s_gap (self, source);
        zhashx_insert (self->sources, instance, source);
    }
    return source;
}

void
chorus__observer_add (chorus__observer_t *self, const char *prefix, bool from_earliest)
{
    s_prefix_t *entry = (s_prefix_t *) zmalloc (sizeof (s_prefix_t));
    entry->prefix = strdup (prefix);
    entry->earliest = from_earliest;
    zlistx_add_end (self->prefixes, entry);
    self->from_earliest = self->from_earliest || from_earliest;
    if (!self->since)
        self->since = chorus__now ();
    for (s_source_t *source = (s_source_t *) zhashx_first (self->sources); source;
         source = (s_source_t *) zhashx_next (self->sources))
        if (source->sub)
            zsock_set_subscribe (source->sub, prefix);
    for (chorus__peer_t *peer = (chorus__peer_t *) zhashx_first (self->context->peers); peer;
         peer = (chorus__peer_t *) zhashx_next (self->context->peers))
        chorus__observer_peer_joined (self, peer);
}

static void
s_socket_key (void *socket, char key [32])
{
    snprintf (key, 32, "%p", socket);
}

//  Closes the SUB to a publisher that is no longer a peer
static void
s_source_disconnect (chorus__observer_t *self, s_source_t *source)
{
    if (!source->sub)
        return;
    char key [32];
    s_socket_key (source->sub, key);
    zhashx_delete (self->sockets, key);
    chorus__poller_remove (self->context->poller, source->sub);
    chorus__socket_destroy (&source->sub);
    zstr_free (&source->pub_endpoint);
}

void
chorus__observer_peer_joined (chorus__observer_t *self, chorus__peer_t *peer)
{
    s_source_t *source = s_source (self, peer->instance, peer->head);
    if (source->sub && streq (source->pub_endpoint, peer->pub_endpoint))
        return;
    s_source_disconnect (self, source);
    //  One SUB per publisher: what comes on it comes from that PUB alone
    void *sub = chorus__socket_new (ZMQ_SUB);
    if (!sub) {
        chorus__context_warn (self->context, W_SOCKET, "cannot observe %s/%.8s: %s", peer->service,
                              peer->instance, zmq_strerror (zmq_errno ()));
        return;
    }
    zsock_set_rcvhwm (sub, self->context->config->observe_hwm);
    zsock_set_maxmsgsize (sub, CHORUS_MSG_MAX_BODY + 1024);
    zsock_set_linger (sub, 0);
    zsock_set_rcvtimeo (sub, 0);    //  read until empty, never wait
    for (s_prefix_t *entry = (s_prefix_t *) zlistx_first (self->prefixes); entry;
         entry = (s_prefix_t *) zlistx_next (self->prefixes))
        zsock_set_subscribe (sub, entry->prefix);
    //  On a secure mesh, the PUB is a CURVE server with the peer's own key:
    //  what comes on this SUB comes from that key
    if (self->context->config->keys)
        chorus__keys_client (self->context->config->keys, sub, peer->key);
    if (self->context->monitor)
        chorus__monitor_watch (self->context->monitor, sub, "sub");
    if (zmq_connect (sub, peer->pub_endpoint)) {
        chorus__socket_destroy (&sub);
        return;     //  a gap we repair by FETCH
    }
    source->sub = sub;
    source->pub_endpoint = strdup (peer->pub_endpoint);
    char key [32];
    s_socket_key (sub, key);
    zhashx_update (self->sockets, key, source);
    if (!self->paused)
        chorus__poller_add (self->context->poller, sub);
}

void
chorus__observer_peer_gone (chorus__observer_t *self, chorus__peer_t *peer)
{
    //  The position stays: a publisher that comes back continues from it
    s_source_t *source = (s_source_t *) zhashx_lookup (self->sources, peer->instance);
    if (source) {
        s_source_disconnect (self, source);
        source->fetch_id [0] = 0;
    }
}

void
chorus__observer_head (chorus__observer_t *self, chorus__peer_t *peer, uint64_t head)
{
    s_source_t *source = s_source (self, peer->instance, head);
    if (head > source->head)
        source->head = head;
    if (source->head > source->seen && !source->gap_since)
        s_gap (self, source);
}

//  Delivers what follows seen without a gap
static void
s_flush (chorus__observer_t *self, s_source_t *source)
{
    while (zhashx_size (source->held)) {
        char key [24];
        snprintf (key, sizeof (key), "%" PRIu64, source->seen + 1);
        chorus_msg_t *event = (chorus_msg_t *) zhashx_lookup (source->held, key);
        if (!event)
            break;
        zhashx_delete (source->held, key);
        source->seen++;
        s_deliver (self, event);
    }
    //  Anything held at or below seen was delivered another way
    if (zhashx_size (source->held)) {
        zlistx_t *keys = zhashx_keys (source->held);
        for (char *key = (char *) zlistx_first (keys); key; key = (char *) zlistx_next (keys))
            if (strtoull (key, NULL, 10) <= source->seen) {
                chorus_msg_t *event = (chorus_msg_t *) zhashx_lookup (source->held, key);
                chorus_msg_destroy (&event);
                zhashx_delete (source->held, key);
            }
        zlistx_destroy (&keys);
    }
    bool missing = source->head > source->seen || zhashx_size (source->held) > 0;
    if (!missing)
        source->gap_since = 0;
    else
    if (!source->gap_since)
        s_gap (self, source);
}

//  An event of the source's publisher, from its PUB or its FETCH answer;
//  takes the message
//  An event the publisher's certificate does not allow (a secure mesh) is
//  passed over like one of a topic we do not observe, and counted
static bool
s_allowed (chorus__observer_t *self, chorus__peer_t *peer, chorus_msg_t *event)
{
    if (!peer || !peer->grant || chorus__grant_publish (peer->grant, chorus_msg_topic (event)))
        return true;
    self->context->counters [C_FORBIDDEN]++;
    chorus__context_warn (self->context, W_FORBIDDEN, "passed over EVENT %.32s of %s/%.8s: "
                         "certificate '%s' may not publish '%s'", chorus_msg_id (event),
                         peer->service, peer->instance, peer->grant->name,
                         chorus_msg_topic (event));
    return false;
}

static void
s_source_event (chorus__observer_t *self, s_source_t *source, chorus_msg_t *event,
                chorus__peer_t *peer)
{
    uint64_t seq = chorus_msg_seq (event);
    if (seq > source->head)
        source->head = seq;
    if (seq <= source->seen)
        chorus_msg_destroy (&event);    //  seen already, on SUB or in a FETCH answer
    else
    if (seq == source->seen + 1) {
        source->seen = seq;
        if (s_matches (self, chorus_msg_topic (event)) && s_allowed (self, peer, event))
            s_deliver (self, event);
        else
            chorus_msg_destroy (&event);
    }
    else {
        char key [24];
        snprintf (key, sizeof (key), "%" PRIu64, seq);
        if (zhashx_size (source->held) < S_HOLD_MAX && !zhashx_lookup (source->held, key)
        &&  s_matches (self, chorus_msg_topic (event))
        &&  (!peer || !peer->grant || chorus__grant_publish (peer->grant,
                                                             chorus_msg_topic (event))))
            zhashx_insert (source->held, key, event);
        else
            chorus_msg_destroy (&event);    //  a FETCH will bring it again
    }
    s_flush (self, source);
}

static int
s_compare_seqs (const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return x < y? -1: x > y? 1: 0;
}

//  Everything up to `to` is accounted for (a REPLAY or a TRUNCATED says
//  so): the events held up to there are handed over, in seq order, and the
//  seqs between them were of other topics, or lost
static void
s_skip_to (chorus__observer_t *self, s_source_t *source, uint64_t to)
{
    if (to <= source->seen)
        return;
    size_t count = 0;
    uint64_t *seqs = (uint64_t *) malloc ((zhashx_size (source->held) + 1) * sizeof (uint64_t));
    assert (seqs);
    for (chorus_msg_t *event = (chorus_msg_t *) zhashx_first (source->held); event;
         event = (chorus_msg_t *) zhashx_next (source->held)) {
        uint64_t seq = chorus_msg_seq (event);
        if (seq > source->seen && seq <= to)
            seqs [count++] = seq;
    }
    qsort (seqs, count, sizeof (uint64_t), s_compare_seqs);
    for (size_t i = 0; i < count; i++) {
        char key [24];
        snprintf (key, sizeof (key), "%" PRIu64, seqs [i]);
        chorus_msg_t *event = (chorus_msg_t *) zhashx_lookup (source->held, key);
        zhashx_delete (source->held, key);
        source->seen = seqs [i];
        s_deliver (self, event);
    }
    free (seqs);
    source->seen = to;
}

void
chorus__observer_fetched (chorus__observer_t *self, chorus__peer_t *peer, chorus_msg_t **event_p)
{
    //  The engine has checked that the event is the peer's own; we take it
    //  only as the answer to a FETCH we sent that peer
    s_source_t *source = (s_source_t *) zhashx_lookup (self->sources, peer->instance);
    if (!source || !source->fetch_id [0])
        return;
    self->context->counters [C_FETCHED]++;
    chorus_msg_t *event = *event_p;
    *event_p = NULL;
    s_source_event (self, source, event, peer);
}

void
chorus__observer_replay (chorus__observer_t *self, chorus__peer_t *peer, chorus_msg_t *replay)
{
    s_source_t *source = (s_source_t *) zhashx_lookup (self->sources, peer->instance);
    if (!source || !streq (source->fetch_id, chorus_msg_request (replay)))
        return;     //  not an answer to our FETCH to that peer
    source->fetch_id [0] = 0;
    if (chorus_msg_head (replay) > source->head)
        source->head = chorus_msg_head (replay);
    //  Every matching event up to `to` came before this REPLAY, on the same
    //  pipe; the seqs in between belong to other topics
    if (chorus_msg_from (replay) <= source->seen + 1)
        s_skip_to (self, source, chorus_msg_to (replay));
    s_flush (self, source);
}

void
chorus__observer_truncated (chorus__observer_t *self, chorus__peer_t *peer,
                            chorus_msg_t *truncated)
{
    s_source_t *source = (s_source_t *) zhashx_lookup (self->sources, peer->instance);
    if (!source || !source->fetch_id [0]
    ||  !streq (source->fetch_id, chorus_msg_request (truncated)))
        return;     //  not an answer to our FETCH to that peer
    self->context->counters [C_TRUNCATED]++;
    chorus__context_work (self->context, "ss88s", "X", peer->instance, chorus_msg_from (truncated),
                          chorus_msg_to (truncated), chorus_msg_message (truncated)?
                          chorus_msg_message (truncated): "");
    if (chorus_msg_from (truncated) <= source->seen + 1)
        s_skip_to (self, source, chorus_msg_to (truncated));
    s_flush (self, source);
}

bool
chorus__observer_recv (chorus__observer_t *self, void *socket)
{
    char key [32];
    s_socket_key (socket, key);
    s_source_t *source = (s_source_t *) zhashx_lookup (self->sockets, key);
    if (!source)
        return false;
    chorus__context_t *context = self->context;
    chorus__peer_t *peer = chorus__context_peer (context, source->instance);
    for (int count = 0; count < 1000 && source->sub; count++) {
        chorus_msg_t *event = chorus_msg_new (CHORUS_MSG_EVENT);
        int rc = chorus_msg_recv (event, source->sub);
        if (rc == CHORUS_MSG_INTERRUPTED) {
            chorus_msg_destroy (&event);
            break;
        }
        if (rc == 0 && chorus_msg_group (event))
            rc = CHORUS_MSG_MALFORMED;  //  group deliveries never travel on PUB
        if (rc == CHORUS_MSG_MALFORMED)
            context->counters [C_MALFORMED]++;
        else
        if (!streq (chorus_msg_instance (event), source->instance)) {
            if (peer)
                chorus__context_forged (context, peer, event, "an event of another publisher "
                                                            "on its PUB");
            else
                context->counters [C_FORGED]++;
        }
        else {
            s_source_event (self, source, event, peer);
            continue;
        }
        chorus_msg_destroy (&event);
    }
    return true;
}

uint64_t
chorus__observer_next_due (chorus__observer_t *self)
{
    return self->observed_out < S_WINDOW / 2 && zhashx_size (self->attention)?
           CHORUS__DUE_TICK: UINT64_MAX;
}

void
chorus__observer_tick (chorus__observer_t *self, uint64_t now)
{
    s_prefix_t *only = zlistx_size (self->prefixes) == 1?
                       (s_prefix_t *) zlistx_first (self->prefixes): NULL;
    const char *prefix = only? only->prefix: NULL;
    if (self->observed_out >= S_WINDOW / 2)
        return;     //  ask for more when the application has room
    if (zhashx_size (self->attention) == 0)
        return;
    //  Only the sources with a gap or a FETCH outstanding; those with
    //  neither leave the set
    zlistx_t *settled = zlistx_new ();
    for (s_source_t *source = (s_source_t *) zhashx_first (self->attention); source;
         source = (s_source_t *) zhashx_next (self->attention)) {
        if (!source->gap_since && !source->fetch_id [0]) {
            zlistx_add_end (settled, source);
            continue;
        }
        if (source->fetch_id [0] && now - source->fetch_sent > S_FETCH_TIMEOUT_MS)
            source->fetch_id [0] = 0;   //  lost on the way: ask again
        if (source->fetch_id [0] || !source->gap_since
        ||  now - source->gap_since < S_FETCH_DELAY_MS)
            continue;
        chorus__peer_t *peer = chorus__context_peer (self->context, source->instance);
        if (!peer)
            continue;
        chorus_msg_t *fetch = chorus__context_msg (self->context, CHORUS_MSG_FETCH);
        chorus_msg_set_from (fetch, source->seen + 1);
        chorus_msg_set_to (fetch, 0);
        chorus_msg_set_limit (fetch, S_WINDOW / 2);
        chorus_msg_set_prefix (fetch, prefix);
        if (chorus__peer_send (peer, fetch) == 0) {
            strcpy (source->fetch_id, chorus_msg_id (fetch));
            source->fetch_sent = now;
        }
        chorus_msg_destroy (&fetch);
    }
    for (s_source_t *source = (s_source_t *) zlistx_first (settled); source;
         source = (s_source_t *) zlistx_next (settled))
        zhashx_delete (self->attention, source->instance);
    zlistx_destroy (&settled);
}

//  --------------------------------------------------------------------------
//  Self-test

#define S_PUBLISHER "A0000000000000000000000000000001"

//  The seq of the next observed event handed over, 0 if none
static uint64_t
s_test_observed (chorus__fake_t *fake)
{
    chorus_msg_t *event = NULL;
    char kind = chorus__fake_handed (fake, &event, NULL, 0);
    uint64_t seq = kind == 'O' && event? chorus_msg_seq (event): 0;
    chorus_msg_destroy (&event);
    return seq;
}

void
chorus__observer_test (bool verbose)
{
    if (verbose)
        printf (" * chorus__observer: ");
    chorus__fake_t *fake = chorus__fake_new ("watcher");
    chorus__context_t *context = chorus__fake_context (fake);
    chorus__observer_t *self = chorus__observer_new (context);
    chorus__peer_t *peer = chorus__fake_peer (fake, S_PUBLISHER, "shop");
    chorus__observer_add (self, "order.", true);

    //  The publisher's head is ahead of what we saw: after a short delay,
    //  a FETCH from the first seq, for our one prefix
    chorus__observer_head (self, peer, 4);
    chorus__observer_tick (self, chorus__mono ());
    CHORUS__CHECK (chorus__fake_sent (fake, peer->endpoint, 0) == NULL);
    chorus__observer_tick (self, chorus__mono () + S_FETCH_DELAY_MS + 1);
    chorus_msg_t *fetch = chorus__fake_sent (fake, peer->endpoint, 1000);
    CHORUS__CHECK (fetch && chorus_msg_type (fetch) == CHORUS_MSG_FETCH);
    CHORUS__CHECK (chorus_msg_from (fetch) == 1 && streq (chorus_msg_prefix (fetch), "order."));

    //  Its answer: events 1 and 3 of our topic (2 is another topic), then
    //  REPLAY up to 3. Both are handed over, in order, once.
    chorus_msg_t *event = chorus__fake_event (fake, S_PUBLISHER, 3, "order.paid", NULL, NULL);
    chorus__observer_fetched (self, peer, &event);
    CHORUS__CHECK (event == NULL);
    CHORUS__CHECK (s_test_observed (fake) == 0);    //  held: 1 and 2 are not known yet
    event = chorus__fake_event (fake, S_PUBLISHER, 1, "order.placed", NULL, NULL);
    chorus__observer_fetched (self, peer, &event);
    CHORUS__CHECK (s_test_observed (fake) == 1);
    CHORUS__CHECK (s_test_observed (fake) == 0);
    chorus_msg_t *replay = chorus__context_msg (context, CHORUS_MSG_REPLAY);
    chorus_msg_set_request (replay, chorus_msg_id (fetch));
    chorus_msg_set_from (replay, 1);
    chorus_msg_set_to (replay, 3);
    chorus_msg_set_head (replay, 4);
    chorus__observer_replay (self, peer, replay);
    CHORUS__CHECK (s_test_observed (fake) == 3);
    CHORUS__CHECK (s_test_observed (fake) == 0);
    CHORUS__CHECK (context->counters [C_OBSERVED] == 2);

    //  A FETCH answer nobody asked for is not taken
    event = chorus__fake_event (fake, S_PUBLISHER, 4, "order.shipped", NULL, NULL);
    chorus__observer_fetched (self, peer, &event);
    CHORUS__CHECK (event != NULL);
    chorus_msg_destroy (&event);
    chorus__observer_replay (self, peer, replay);   //  answered already: ignored
    CHORUS__CHECK (s_test_observed (fake) == 0);
    chorus_msg_destroy (&replay);
    chorus_msg_destroy (&fetch);

    //  Events lost at the publisher: the application hears of the range
    chorus__observer_tick (self, chorus__mono () + S_FETCH_DELAY_MS + 1);
    fetch = chorus__fake_sent (fake, peer->endpoint, 1000);
    CHORUS__CHECK (fetch && chorus_msg_from (fetch) == 4);
    chorus_msg_t *truncated = chorus__context_msg (context, CHORUS_MSG_TRUNCATED);
    chorus_msg_set_request (truncated, chorus_msg_id (fetch));
    chorus_msg_set_from (truncated, 4);
    chorus_msg_set_to (truncated, 4);
    chorus_msg_set_message (truncated, "no longer retained by the publisher");
    chorus__observer_truncated (self, peer, truncated);
    char text [256];
    CHORUS__CHECK (chorus__fake_handed (fake, &event, text, sizeof (text)) == 'X');
    CHORUS__CHECK (strstr (text, S_PUBLISHER) && strstr (text, "no longer retained"));
    CHORUS__CHECK (context->counters [C_TRUNCATED] == 1);
    chorus_msg_destroy (&truncated);
    chorus_msg_destroy (&fetch);

    //  No gap left: no more FETCH
    chorus__observer_tick (self, chorus__mono () + S_FETCH_TIMEOUT_MS + 1);
    CHORUS__CHECK (chorus__fake_sent (fake, peer->endpoint, 0) == NULL);

    chorus__observer_destroy (&self);
    CHORUS__CHECK (self == NULL);
    chorus__fake_destroy (&fake);
    if (verbose)
        printf ("OK\n");
}
