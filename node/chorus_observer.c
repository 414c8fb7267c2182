/*  chorus_observer.c — observing every event of the mesh (protocol
    section 7.5): a SUB connected to every peer's PUB, a position per
    publisher, later events held back while a gap is repaired by FETCH from
    the publisher's log, and a visible report of anything the log no longer
    holds. The application sees each publisher's events once, in order.
*/
#include "chorus_engine.h"

#define S_HOLD_MAX 10000        //  out-of-order events held per publisher
#define S_FETCH_DELAY_MS 20     //  let a burst of gaps merge into one FETCH
#define S_FETCH_TIMEOUT_MS 5000 //  ask again when no REPLAY came
#define S_WINDOW 1000           //  observed events the application may hold
#define S_LOOKBACK 1000         //  events read back from a publisher met late

//  What we know of one publisher
typedef struct {
    char *instance;             //  the publisher
    uint64_t seen;              //  every event up to here delivered or reported lost
    uint64_t head;              //  its latest seq, as far as we know
    zhashx_t *held;             //  "seq" -> event, waiting for the gap before it
    char fetch_id [33];         //  the outstanding FETCH, "" if none
    uint64_t fetch_sent;        //  when it was sent
    uint64_t gap_since;         //  when we first saw we miss something (0: we do not)
} s_source_t;

struct _chorus__observer_t {
    chorus__engine_t *engine;   //  our engine
    zsock_t *sub;               //  connected to every peer's PUB
    zlist_t *prefixes;          //  the topic prefixes we observe
    bool from_earliest;         //  start with each publisher's retained history
    uint64_t since;             //  otherwise, events published from this time on
    zhashx_t *sources;          //  instance -> s_source_t
    bool paused;                //  the application is behind: SUB is not read
};

//  Hands an event to the application. A slow application makes us stop
//  reading SUB: ZeroMQ then drops at the publisher's high-water mark, and
//  FETCH brings the events back when the application has caught up, so
//  neither side's memory grows with the lag.
static void
s_deliver (chorus__observer_t *self, chorus_msg_t *event)
{
    chorus__engine_t *engine = self->engine;
    if (!self->from_earliest && chorus_msg_timestamp (event) < self->since) {
        chorus_msg_destroy (&event);    //  from before we started: read back to find our start
        return;
    }
    engine->counters [C_OBSERVED]++;
    engine->observed_out++;
    chorus__engine_hand (engine, 'O', event, NULL);
    if (!self->paused && engine->observed_out >= S_WINDOW) {
        zpoller_remove (engine->poller, self->sub);
        self->paused = true;
    }
}

void
chorus__observer_done (chorus__observer_t *self, size_t count)
{
    chorus__engine_t *engine = self->engine;
    engine->observed_out = engine->observed_out > count? engine->observed_out - count: 0;
    if (self->paused && engine->observed_out < S_WINDOW / 2) {
        zpoller_add (engine->poller, self->sub);
        self->paused = false;
    }
}

static void
s_source_destroy (void **item)
{
    s_source_t *source = (s_source_t *) *item;
    if (source) {
        for (chorus_msg_t *msg = (chorus_msg_t *) zhashx_first (source->held); msg;
             msg = (chorus_msg_t *) zhashx_next (source->held))
            chorus_msg_destroy (&msg);
        zhashx_destroy (&source->held);
        free (source->instance);
        free (source);
        *item = NULL;
    }
}

chorus__observer_t *
chorus__observer_new (chorus__engine_t *engine)
{
    chorus__observer_t *self = (chorus__observer_t *) zmalloc (sizeof (chorus__observer_t));
    self->engine = engine;
    self->sub = zsock_new (ZMQ_SUB);
    zsock_set_rcvhwm (self->sub, engine->config->observe_hwm);
    zsock_set_maxmsgsize (self->sub, CHORUS_MSG_MAX_BODY + 1024);
    self->prefixes = zlist_new ();
    zlist_autofree (self->prefixes);
    self->sources = zhashx_new ();
    zhashx_set_destructor (self->sources, s_source_destroy);
    return self;
}

void
chorus__observer_destroy (chorus__observer_t **self_p)
{
    chorus__observer_t *self = *self_p;
    if (self) {
        zsock_destroy (&self->sub);
        zlist_destroy (&self->prefixes);
        zhashx_destroy (&self->sources);
        free (self);
        *self_p = NULL;
    }
}

zsock_t *
chorus__observer_socket (chorus__observer_t *self)
{
    return self->sub;
}

static bool
s_matches (chorus__observer_t *self, const char *topic)
{
    for (char *prefix = (char *) zlist_first (self->prefixes); prefix;
         prefix = (char *) zlist_next (self->prefixes))
        if (chorus__prefix_match (prefix, topic))
            return true;
    return false;
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
            source->gap_since = chorus__now ();
        zhashx_insert (self->sources, instance, source);
    }
    return source;
}

void
chorus__observer_add (chorus__observer_t *self, const char *prefix, bool from_earliest)
{
    zsock_set_subscribe (self->sub, prefix);
    zlist_append (self->prefixes, (void *) prefix);
    self->from_earliest = from_earliest;
    if (!self->since)
        self->since = chorus__now ();
    for (chorus__peer_t *peer = (chorus__peer_t *) zhashx_first (self->engine->peers); peer;
         peer = (chorus__peer_t *) zhashx_next (self->engine->peers))
        chorus__observer_peer_joined (self, peer);
}

void
chorus__observer_peer_joined (chorus__observer_t *self, chorus__peer_t *peer)
{
    zsock_connect (self->sub, "%s", peer->pub_endpoint);
    s_source (self, peer->instance, peer->head);
}

void
chorus__observer_peer_gone (chorus__observer_t *self, chorus__peer_t *peer)
{
    //  The position stays: a publisher that comes back continues from it
    zsock_disconnect (self->sub, "%s", peer->pub_endpoint);
    s_source_t *source = (s_source_t *) zhashx_lookup (self->sources, peer->instance);
    if (source)
        source->fetch_id [0] = 0;
}

void
chorus__observer_head (chorus__observer_t *self, chorus__peer_t *peer, uint64_t head)
{
    s_source_t *source = s_source (self, peer->instance, head);
    if (head > source->head)
        source->head = head;
    if (source->head > source->seen && !source->gap_since)
        source->gap_since = chorus__now ();
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
        source->gap_since = chorus__now ();
}

void
chorus__observer_event (chorus__observer_t *self, chorus_msg_t **event_p)
{
    chorus_msg_t *event = *event_p;
    *event_p = NULL;
    uint64_t seq = chorus_msg_seq (event);
    s_source_t *source = s_source (self, chorus_msg_instance (event), seq - 1);
    if (seq > source->head)
        source->head = seq;
    if (seq <= source->seen)
        chorus_msg_destroy (&event);    //  seen already, on SUB or in a FETCH answer
    else
    if (seq == source->seen + 1) {
        source->seen = seq;
        if (s_matches (self, chorus_msg_topic (event)))
            s_deliver (self, event);
        else
            chorus_msg_destroy (&event);
    }
    else {
        char key [24];
        snprintf (key, sizeof (key), "%" PRIu64, seq);
        if (zhashx_size (source->held) < S_HOLD_MAX && !zhashx_lookup (source->held, key)
        &&  s_matches (self, chorus_msg_topic (event)))
            zhashx_insert (source->held, key, event);
        else
            chorus_msg_destroy (&event);    //  a FETCH will bring it again
    }
    s_flush (self, source);
}

void
chorus__observer_replay (chorus__observer_t *self, chorus__peer_t *peer, chorus_msg_t *replay)
{
    s_source_t *source = s_source (self, peer->instance, chorus_msg_head (replay));
    if (streq (source->fetch_id, chorus_msg_request (replay)))
        source->fetch_id [0] = 0;
    if (chorus_msg_head (replay) > source->head)
        source->head = chorus_msg_head (replay);
    //  Every matching event up to `to` came before this REPLAY, on the same
    //  pipe; the seqs in between belong to other topics
    if (chorus_msg_to (replay) > source->seen && chorus_msg_from (replay) <= source->seen + 1)
        source->seen = chorus_msg_to (replay);
    s_flush (self, source);
}

void
chorus__observer_truncated (chorus__observer_t *self, chorus__peer_t *peer,
                            chorus_msg_t *truncated)
{
    s_source_t *source = s_source (self, peer->instance, chorus_msg_to (truncated));
    chorus__engine_work (self->engine, "ss88s", "X", peer->instance, chorus_msg_from (truncated),
                         chorus_msg_to (truncated), chorus_msg_message (truncated)?
                         chorus_msg_message (truncated): "");
    if (chorus_msg_to (truncated) > source->seen && chorus_msg_from (truncated) <= source->seen + 1)
        source->seen = chorus_msg_to (truncated);
    s_flush (self, source);
}

void
chorus__observer_recv (chorus__observer_t *self)
{
    for (int count = 0; count < 1000 && (zsock_events (self->sub) & ZMQ_POLLIN); count++) {
        chorus_msg_t *event = chorus_msg_new (CHORUS_MSG_EVENT);
        int rc = chorus_msg_recv (event, self->sub);
        if (rc == 0 && chorus_msg_group (event))
            rc = CHORUS_MSG_MALFORMED;  //  group deliveries never travel on PUB
        if (rc == 0)
            chorus__observer_event (self, &event);
        else {
            if (rc == CHORUS_MSG_MALFORMED)
                self->engine->counters [C_MALFORMED]++;
            chorus_msg_destroy (&event);
        }
    }
}

void
chorus__observer_tick (chorus__observer_t *self, uint64_t now)
{
    const char *prefix = zlist_size (self->prefixes) == 1?
                         (const char *) zlist_first (self->prefixes): NULL;
    if (self->engine->observed_out >= S_WINDOW / 2)
        return;     //  ask for more when the application has room
    for (s_source_t *source = (s_source_t *) zhashx_first (self->sources); source;
         source = (s_source_t *) zhashx_next (self->sources)) {
        if (source->fetch_id [0] && now - source->fetch_sent > S_FETCH_TIMEOUT_MS)
            source->fetch_id [0] = 0;   //  lost on the way: ask again
        if (source->fetch_id [0] || !source->gap_since
        ||  now - source->gap_since < S_FETCH_DELAY_MS)
            continue;
        chorus__peer_t *peer = chorus__engine_peer (self->engine, source->instance);
        if (!peer)
            continue;
        chorus_msg_t *fetch = chorus__engine_msg (self->engine, CHORUS_MSG_FETCH);
        chorus_msg_set_from (fetch, source->seen + 1);
        chorus_msg_set_to (fetch, 0);
        chorus_msg_set_limit (fetch, S_WINDOW / 2);
        chorus_msg_set_prefix (fetch, prefix);
        if (chorus__engine_send (self->engine, peer, fetch) == 0) {
            strcpy (source->fetch_id, chorus_msg_id (fetch));
            source->fetch_sent = now;
        }
        chorus_msg_destroy (&fetch);
    }
}
