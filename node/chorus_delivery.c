/*  chorus_delivery.c — delivery of a node's events to the service groups
    that subscribe to them (protocol section 7.2): per group a cursor over
    the outbox, a credit window of events in flight, strict per-key order,
    redelivery after expiry, ack timeout or rejection, retention, and the
    answers to observers' FETCH requests.
*/
#include "chorus_delivery.h"
#include "chorus_fake.h"
#include "chorus_timer_heap.h"

#define S_RETAIN_MS 1000        //  retention is applied this often
#define S_SPAN 16384            //  seqs a group may track between cursor and next
#define S_CACHE 65536           //  recent events kept, encoded: slots
#define S_CACHE_BYTES (32 * 1024 * 1024)    //  and bytes at most, for new events
#define S_LOAD 256              //  events read from the store at once
#define S_FETCH_MAX 1000        //  events per FETCH answer
#define S_BACKOFF_MS 1000       //  first backoff after a rejection
#define S_BACKOFF_MAX_MS 60000  //  longest backoff
#define S_RETRY_MS 50           //  a group that could not send tries again after this

typedef enum { SLOT_FREE = 0, SLOT_DONE, SLOT_FLIGHT } s_slot_state_t;

//  An event due to a group and not yet acknowledged by it
typedef struct {
    uint64_t seq;               //  the event
    char *key;                  //  its key, NULL if none
    char *instance;             //  where it was sent, NULL while unsent
    uint64_t attempt;           //  deliveries so far
    uint64_t due;               //  when to send again (ack timeout or backoff)
    uint64_t sent;              //  when it was last sent (monotonic), for /metrics
    void *handle;               //  its place in the group's sent or delayed list
} s_flight_t;

typedef struct {
    uint8_t state;              //  s_slot_state_t
    s_flight_t *flight;         //  when state is SLOT_FLIGHT
} s_slot_t;

//  Events of one key waiting behind the one in flight
typedef struct {
    zlistx_t *waiting;          //  s_flight_t, in seq order
} s_keyq_t;

typedef struct {
    char *name;                 //  the group (service) name
    chorus__sub_t *subs;        //  union of its instances' subscriptions
    size_t subs_size;           //  how many
    bool durable;               //  keep the cursor while the group is absent
    bool stored_subs;           //  subs known from the store only: wait for a HELLO
    uint64_t counted_to;        //  with stored subs: events examined for due_count
    uint64_t due_count;         //  how many of [next, counted_to] are due to it
    uint64_t cursor;            //  every seq below is done for the group
    uint64_t next;              //  next seq to examine in the outbox
    s_slot_t *slots;            //  [cursor, next) by seq % S_SPAN
    zhashx_t *keys;             //  key -> s_keyq_t, for keys with one in flight
    zlistx_t *ready;            //  flights to send now, in order
    zlistx_t *sent;             //  flights sent and unacknowledged, oldest first
    zlistx_t *delayed;          //  rejected flights waiting for their backoff
    zlistx_t *instances;        //  live peers of the group (chorus__peer_t)
    uint64_t lost_from;         //  a truncation still to report (0: none)
    uint64_t lost_to;           //  its end
    const char *lost_why;       //  why they are lost (NULL: retention)
    bool dirty;                 //  cursor changed since last saved
    chorus__timer_t timer;      //  when the group next has something to do
} s_group_t;

//  An event as delivery needs it: its encoding as stored, sent on as it
//  is (to observers) or with its group and attempt set (to groups), and
//  the fields that say which groups it is due to and in what order. Never
//  decoded whole: a publisher far ahead of a group reads events back from
//  the store, and decoding them cost more than reading them
typedef struct {
    uint64_t seq;               //  which event the slot holds
    uint64_t timestamp;         //  when it was published (ms since the epoch)
    char *topic;                //  its topic, then its key, in one block
    char *key;                  //  its key (in topic's block), or NULL
    zframe_t *body;             //  its encoding as stored, NULL if the slot is empty
} s_cached_t;

struct _chorus__delivery_t {
    chorus__context_t *context; //  what the engine shares with us
    chorus_store_t *store;      //  its store
    zhashx_t *groups;           //  name -> s_group_t
    chorus__timers_t *timers;   //  each group's next time, so a tick visits the due only
    s_cached_t *cache;          //  recent events by seq % S_CACHE: a burst a group
                                //  is behind on is sent from here, not read back
                                //  from the store (which costs a third of the
                                //  events' CPU)
    size_t cache_bytes;         //  what the cache holds (bodies, topics and keys)
    s_cached_t scratch;         //  the one event read back while the cache is full
    uint64_t cache_trimmed;     //  events below this were let go once delivered
    uint64_t last_retain;       //  when retention last ran
};

//  --------------------------------------------------------------------------
//  The event cache, in front of the store

typedef struct {
    chorus__delivery_t *self;   //  where loaded events go
    uint64_t loaded;            //  how many
} s_load_t;

//  What a cached event costs, counted against S_CACHE_BYTES
static size_t
s_cached_bytes (const s_cached_t *slot)
{
    return slot->body? zframe_size (slot->body) + strlen (slot->topic) + 1
                       + (slot->key? strlen (slot->key) + 1: 0): 0;
}

static void
s_cached_free (s_cached_t *slot)
{
    zframe_destroy (&slot->body);
    free (slot->topic);
    slot->topic = slot->key = NULL;
}

//  Empties a slot of the cache
static void
s_cached_clear (chorus__delivery_t *self, s_cached_t *slot)
{
    self->cache_bytes -= s_cached_bytes (slot);
    s_cached_free (slot);
}

//  Fills an empty slot with an event: its stored encoding (taken) and what
//  the peek found in it
static void
s_cached_fill (s_cached_t *slot, const chorus_msg_peek_t *peek, zframe_t *body)
{
    slot->seq = peek->seq;
    slot->timestamp = peek->timestamp;
    slot->topic = (char *) malloc (peek->topic_size + 1 + (peek->key? peek->key_size + 1: 0));
    assert (slot->topic);
    memcpy (slot->topic, peek->topic, peek->topic_size);
    slot->topic [peek->topic_size] = 0;
    if (peek->key) {
        slot->key = slot->topic + peek->topic_size + 1;
        memcpy (slot->key, peek->key, peek->key_size);
        slot->key [peek->key_size] = 0;
    }
    slot->body = body;
}

//  Whether an event fits the cache's bound once what its slot holds has
//  gone
static bool
s_cache_fits (chorus__delivery_t *self, const chorus_msg_peek_t *peek, zframe_t *body)
{
    size_t bytes = zframe_size (body) + peek->topic_size + 1 + (peek->key? peek->key_size + 1: 0);
    return self->cache_bytes - s_cached_bytes (&self->cache [peek->seq % S_CACHE]) + bytes
           <= S_CACHE_BYTES;
}

//  Puts an event into the cache (takes body)
static void
s_cache_put (chorus__delivery_t *self, const chorus_msg_peek_t *peek, zframe_t *body)
{
    s_cached_t *slot = &self->cache [peek->seq % S_CACHE];
    s_cached_clear (self, slot);
    s_cached_fill (slot, peek, body);
    self->cache_bytes += s_cached_bytes (slot);
    if (peek->seq < self->cache_trimmed)
        self->cache_trimmed = peek->seq;    //  an old one read back: let go again
}

//  Lets go the cached events every group with instances has acknowledged
//  (below lowest, their lowest cursor), so that their bytes make room for
//  new ones
static void
s_cache_trim (chorus__delivery_t *self, uint64_t lowest)
{
    if (lowest == UINT64_MAX || lowest <= self->cache_trimmed)
        return;
    uint64_t from = lowest - self->cache_trimmed > S_CACHE? lowest - S_CACHE: self->cache_trimmed;
    for (uint64_t seq = from; seq < lowest; seq++) {
        s_cached_t *slot = &self->cache [seq % S_CACHE];
        if (slot->body && slot->seq == seq)
            s_cached_clear (self, slot);
    }
    self->cache_trimmed = lowest;
}

//  An EVENT stored in another layout than our encoder writes (the peek
//  needs ours), decoded and encoded again; NULL if it is no EVENT
static zframe_t *
s_reencode (const void *body, size_t size)
{
    chorus_msg_t *msg = chorus_msg_new (CHORUS_MSG_EVENT);
    zframe_t *frame = chorus_msg_decode (msg, body, size) == 0
                   && chorus_msg_type (msg) == CHORUS_MSG_EVENT? chorus_msg_encode (msg): NULL;
    chorus_msg_destroy (&msg);
    return frame;
}

static int
s_load_one (uint64_t seq, uint64_t timestamp, const void *body, size_t size, void *arg)
{
    s_load_t *load = (s_load_t *) arg;
    chorus_msg_peek_t peek;
    zframe_t *frame = NULL;
    if (chorus_msg_event_peek (body, size, &peek) == 0)
        frame = zframe_new (body, size);
    else
    if ((frame = s_reencode (body, size))
    &&  chorus_msg_event_peek (zframe_data (frame), zframe_size (frame), &peek))
        zframe_destroy (&frame);
    if (!frame || peek.seq != seq) {
        zframe_destroy (&frame);
        //  Never skipped as if trimmed: the node stops and says so
        char what [96];
        snprintf (what, sizeof (what), "outbox event %" PRIu64 " does not decode", seq);
        chorus_store_report_damage (load->self->store, what);
        return 1;
    }
    //  The event asked for, and those after it while they fit; the one
    //  asked for, when it does not, only until the next is read
    chorus__delivery_t *self = load->self;
    if (!s_cache_fits (self, &peek, frame)) {
        if (load->loaded == 0) {
            s_cached_free (&self->scratch);
            s_cached_fill (&self->scratch, &peek, frame);
            load->loaded++;
        }
        else
            zframe_destroy (&frame);
        return 1;
    }
    s_cache_put (self, &peek, frame);
    load->loaded++;
    return 0;
}

//  The event with this seq if the cache or the scratch slot holds it
static s_cached_t *
s_kept (chorus__delivery_t *self, uint64_t seq)
{
    s_cached_t *slot = &self->cache [seq % S_CACHE];
    return slot->body && slot->seq == seq? slot:
           self->scratch.body && self->scratch.seq == seq? &self->scratch: NULL;
}

//  The event with this seq, or NULL if the outbox no longer holds it
static s_cached_t *
s_event (chorus__delivery_t *self, uint64_t seq)
{
    s_cached_t *kept = s_kept (self, seq);
    if (kept)
        return kept;
    uint64_t head = chorus_store_head (self->store);
    if (seq == 0 || seq > head)
        return NULL;
    s_load_t load = {self, 0};
    uint64_t to = seq + S_LOAD - 1 < head? seq + S_LOAD - 1: head;
    if (chorus_store_scan (self->store, seq, to, s_load_one, &load) == -1
    ||  chorus_store_damaged (self->store))
        chorus__context_warn (self->context, W_STORE, "outbox: %s",
                              chorus_store_error (self->store));
    return s_kept (self, seq);
}

//  --------------------------------------------------------------------------
//  Groups

//  Whether an event of topic published at timestamp is due to group
static bool
s_due_to (s_group_t *group, const char *topic, uint64_t timestamp)
{
    for (size_t i = 0; i < group->subs_size; i++) {
        chorus__sub_t *sub = &group->subs [i];
        if (chorus__prefix_match (sub->prefix, topic)
        &&  (sub->since == 0 || sub->since <= timestamp))
            return true;
    }
    return false;
}

static bool
s_due (s_group_t *group, const s_cached_t *event)
{
    return s_due_to (group, event->topic, event->timestamp);
}

static s_slot_t *
s_slot (s_group_t *group, uint64_t seq)
{
    return &group->slots [seq % S_SPAN];
}

static void
s_flight_destroy (s_flight_t **flight_p)
{
    s_flight_t *flight = *flight_p;
    if (flight) {
        free (flight->key);
        free (flight->instance);
        free (flight);
        *flight_p = NULL;
    }
}

static void
s_keyq_destroy (void **item)
{
    s_keyq_t *keyq = (s_keyq_t *) *item;
    if (keyq) {
        zlistx_destroy (&keyq->waiting);
        free (keyq);
        *item = NULL;
    }
}

//  Forgets everything in flight or waiting; the cursor stays
static void
s_group_reset (s_group_t *group)
{
    for (uint64_t seq = group->cursor; seq < group->next; seq++) {
        s_slot_t *slot = s_slot (group, seq);
        s_flight_destroy (&slot->flight);
        slot->state = SLOT_FREE;
    }
    zhashx_purge (group->keys);
    zlistx_purge (group->ready);
    zlistx_purge (group->sent);
    zlistx_purge (group->delayed);
    group->next = group->cursor;
    group->counted_to = group->due_count = 0;
}

static void
s_group_destroy (void **item)
{
    s_group_t *group = (s_group_t *) *item;
    if (group) {
        s_group_reset (group);
        zhashx_destroy (&group->keys);
        zlistx_destroy (&group->ready);
        zlistx_destroy (&group->sent);
        zlistx_destroy (&group->delayed);
        zlistx_destroy (&group->instances);
        for (size_t i = 0; i < group->subs_size; i++)
            free (group->subs [i].prefix);
        free (group->subs);
        free (group->slots);
        free (group->name);
        free (group);
        *item = NULL;
    }
}

static s_group_t *
s_group_new (const char *name, uint64_t cursor)
{
    s_group_t *group = (s_group_t *) zmalloc (sizeof (s_group_t));
    group->name = strdup (name);
    group->cursor = group->next = cursor;
    group->slots = (s_slot_t *) zmalloc (S_SPAN * sizeof (s_slot_t));
    group->keys = zhashx_new ();
    zhashx_set_destructor (group->keys, s_keyq_destroy);
    group->ready = zlistx_new ();
    group->sent = zlistx_new ();
    group->delayed = zlistx_new ();
    group->instances = zlistx_new ();
    return group;
}

static void
s_group_save (chorus__delivery_t *self, s_group_t *group)
{
    if (!group->durable)
        return;
    uint64_t since = UINT64_MAX;
    for (size_t i = 0; i < group->subs_size; i++)
        if (group->subs [i].since < since)
            since = group->subs [i].since;
    //  The subscriptions go with the cursor, so that while the group is
    //  absent after our restart we can still tell which events it is due
    char *subs = NULL;
    size_t length = 0;
    FILE *stream = open_memstream (&subs, &length);
    for (size_t i = 0; stream && i < group->subs_size; i++)
        fprintf (stream, "%" PRIu64 " %" PRIu64 " %s\n", group->subs [i].since,
                 group->subs [i].flags, group->subs [i].prefix);
    if (stream)
        fclose (stream);
    chorus_store_group_t record = {since == UINT64_MAX? 0: since, CHORUS_SUB_DURABLE,
                                   group->cursor, subs};
    int rc = chorus_store_group_save (self->store, group->name, &record);
    free (subs);
    if (rc)     //  still dirty: saved again at the next round
        chorus__context_warn (self->context, W_STORE, "cannot save group %s: %s", group->name,
                              chorus_store_error (self->store));
    else
        group->dirty = false;
}

//  Moves the cursor over the done slots at its front
static void
s_advance (s_group_t *group)
{
    while (group->cursor < group->next && s_slot (group, group->cursor)->state == SLOT_DONE) {
        s_slot (group, group->cursor)->state = SLOT_FREE;
        group->cursor++;
        group->dirty = true;
    }
}

//  Rendezvous hashing: the live instance with the highest FNV-1a score of
//  the hash key and its instance id
static chorus__peer_t *
s_choose (s_group_t *group, const char *key, const char *fallback)
{
    chorus__peer_t *best = NULL;
    uint64_t best_score = 0;
    for (chorus__peer_t *peer = (chorus__peer_t *) zlistx_first (group->instances); peer;
         peer = (chorus__peer_t *) zlistx_next (group->instances)) {
        uint64_t hash = 14695981039346656037ull;
        const char *text = key? key: fallback;
        for (const char *c = text; *c; c++)
            hash = (hash ^ (uint8_t) *c) * 1099511628211ull;
        hash = (hash ^ 0) * 1099511628211ull;
        for (const char *c = peer->instance; *c; c++)
            hash = (hash ^ (uint8_t) *c) * 1099511628211ull;
        if (!best || hash > best_score
        ||  (hash == best_score && strcmp (peer->instance, best->instance) < 0)) {
            best = peer;
            best_score = hash;
        }
    }
    return best;
}

//  Marks a flight done and lets the next event of its key go
static void
s_finish (s_group_t *group, s_flight_t *flight)
{
    s_slot_t *slot = s_slot (group, flight->seq);
    if (flight->key) {
        s_keyq_t *keyq = (s_keyq_t *) zhashx_lookup (group->keys, flight->key);
        s_flight_t *next = keyq? (s_flight_t *) zlistx_detach (keyq->waiting, NULL): NULL;
        if (next)
            zlistx_add_end (group->ready, next);
        else
            zhashx_delete (group->keys, flight->key);
    }
    s_flight_destroy (&slot->flight);
    slot->state = SLOT_DONE;
}

//  Sends the group's copy of an event to an instance, made from the stored
//  encoding; 0 or -1
static int
s_send_copy (chorus__delivery_t *self, const s_cached_t *event, s_group_t *group,
             uint64_t attempt, chorus__peer_t *peer)
{
    zframe_t *copy = chorus_msg_event_redirect (zframe_data (event->body),
                                                zframe_size (event->body), group->name, attempt);
    if (copy)
        return chorus__peer_send_body (peer, CHORUS_MSG_EVENT, &copy);
    //  Not in our encoder's layout (never: what is cached was peeked)
    chorus_msg_t *msg = chorus_msg_new (CHORUS_MSG_EVENT);
    int rc = -1;
    if (chorus_msg_decode (msg, zframe_data (event->body), zframe_size (event->body)) == 0) {
        chorus_msg_set_group (msg, group->name);
        chorus_msg_set_attempt (msg, attempt);
        rc = chorus__peer_send (peer, msg);
    }
    chorus_msg_destroy (&msg);
    return rc;
}

//  Sends one flight to the instance hashing chooses; false if it could not
static bool
s_send (chorus__delivery_t *self, s_group_t *group, s_flight_t *flight)
{
    s_cached_t *event = s_event (self, flight->seq);
    if (!event) {
        s_finish (group, flight);   //  gone from the outbox: retention reported it
        return true;
    }
    char fallback [64];     //  instance id (32) and decimal seq
    size_t size = strlen (self->context->instance);
    memcpy (fallback, self->context->instance, size);
    chorus__decimal (flight->seq, fallback + size);
    chorus__peer_t *peer = s_choose (group, flight->key, fallback);
    if (!peer)
        return false;
    if (s_send_copy (self, event, group, flight->attempt + 1, peer))
        return false;
    flight->attempt++;
    self->context->counters [flight->attempt > 1? C_REDELIVERED: C_DELIVERED]++;
    free (flight->instance);
    flight->instance = strdup (peer->instance);
    flight->sent = chorus__mono ();
    flight->due = flight->sent + self->context->config->ack_timeout_ms;
    flight->handle = zlistx_add_end (group->sent, flight);
    return true;
}

static void
    s_lost (s_group_t *group, uint64_t from, uint64_t to, const char *why);
static void
    s_truncated (chorus__delivery_t *self, s_group_t *group);

//  Sends what the credit window allows: first flights made ready again,
//  then new events from the outbox
static void
s_pump_group (chorus__delivery_t *self, s_group_t *group)
{
    if (group->subs_size == 0 || group->stored_subs)
        return;     //  known from the store only: wait for its HELLO
    if (group->lost_from)
        s_truncated (self, group);  //  a loss still to tell
    size_t window = (size_t) self->context->config->credit_window;
    bool can_send = zlistx_size (group->instances) > 0;
    while (can_send && zlistx_size (group->sent) < window && zlistx_size (group->ready)) {
        s_flight_t *flight = (s_flight_t *) zlistx_detach (group->ready, NULL);
        if (!s_send (self, group, flight)) {
            zlistx_add_start (group->ready, flight);
            can_send = false;
        }
    }
    uint64_t head = chorus_store_head (self->store);
    while (group->next <= head && group->next - group->cursor < S_SPAN
       &&  zlistx_size (group->sent) + zlistx_size (group->ready) < window) {
        uint64_t seq = group->next;
        s_cached_t *event = s_event (self, seq);
        if (!event && chorus_store_damaged (self->store))
            break;              //  the node stops; nothing is skipped
        if (!event) {
            //  Numbers between epochs, or events a repair lost: jump them
            //  once the window has drained, reporting what was lost
            uint64_t lost_from, lost_to;
            uint64_t found = chorus_store_next (self->store, seq, &lost_from, &lost_to);
            if (found > seq + 1 || lost_from) {
                if (group->cursor != seq)
                    break;
                if (lost_from) {
                    s_lost (group, lost_from, lost_to,
                            "events lost to damage; the publisher's store was repaired");
                    s_truncated (self, group);
                }
                group->cursor = group->next = found;
                group->dirty = true;
                continue;
            }
        }
        s_slot_t *slot = s_slot (group, seq);
        group->next++;
        if (!event || !s_due (group, event)) {
            slot->state = SLOT_DONE;
            continue;
        }
        s_flight_t *flight = (s_flight_t *) zmalloc (sizeof (s_flight_t));
        flight->seq = seq;
        flight->key = event->key? strdup (event->key): NULL;
        slot->state = SLOT_FLIGHT;
        slot->flight = flight;
        if (flight->key) {
            s_keyq_t *keyq = (s_keyq_t *) zhashx_lookup (group->keys, flight->key);
            if (keyq) {
                zlistx_add_end (keyq->waiting, flight);
                continue;
            }
            keyq = (s_keyq_t *) zmalloc (sizeof (s_keyq_t));
            keyq->waiting = zlistx_new ();
            zhashx_insert (group->keys, flight->key, keyq);
        }
        if (!can_send || !s_send (self, group, flight)) {
            can_send = false;
            zlistx_add_end (group->ready, flight);
        }
    }
    s_advance (group);
}

//  When the group next has something to do: now (at the next tick) when
//  it could not send what is ready or its cursor is to be saved; else the
//  first ack timeout or backoff; never when it waits only for acks
static void
s_group_schedule (chorus__delivery_t *self, s_group_t *group)
{
    uint64_t now = chorus__mono ();
    uint64_t due = UINT64_MAX;
    bool blocked = zlistx_size (group->ready) && zlistx_size (group->instances)
                && zlistx_size (group->sent) < (size_t) self->context->config->credit_window;
    if ((group->dirty && group->durable) || group->lost_from || blocked)
        due = now + S_RETRY_MS;
    s_flight_t *flight = (s_flight_t *) zlistx_first (group->sent);
    if (flight && flight->due < due)
        due = flight->due;
    for (flight = (s_flight_t *) zlistx_first (group->delayed); flight;
         flight = (s_flight_t *) zlistx_next (group->delayed))
        if (flight->due < due)
            due = flight->due;
    if (due == UINT64_MAX)
        chorus__timers_cancel (self->timers, &group->timer);
    else
        chorus__timers_set (self->timers, &group->timer, due, group);
}

//  Sends what the group may send now, and sets when to look at it again
static void
s_pump (chorus__delivery_t *self, s_group_t *group)
{
    s_pump_group (self, group);
    s_group_schedule (self, group);
}

//  The union of the group's live instances' subscriptions
static void
s_group_refresh (chorus__delivery_t *self, s_group_t *group)
{
    zlistx_purge (group->instances);
    chorus__sub_t *subs = NULL;
    size_t size = 0;
    bool durable = false;
    zhashx_t *peers = self->context->peers;
    for (chorus__peer_t *peer = (chorus__peer_t *) zhashx_first (peers); peer;
         peer = (chorus__peer_t *) zhashx_next (peers)) {
        if (!streq (peer->service, group->name) || peer->subs_size == 0)
            continue;
        zlistx_add_end (group->instances, peer);
        for (size_t i = 0; i < peer->subs_size; i++) {
            chorus__sub_t *sub = &peer->subs [i];
            durable = durable || (sub->flags & CHORUS_SUB_DURABLE);
            size_t j = 0;
            while (j < size && !streq (subs [j].prefix, sub->prefix))
                j++;
            if (j == size) {
                subs = (chorus__sub_t *) realloc (subs, (size + 1) * sizeof (chorus__sub_t));
                subs [size].prefix = strdup (sub->prefix);
                subs [size].since = sub->since;
                subs [size].flags = sub->flags;
                size++;
            }
            else
            if (sub->since < subs [j].since)
                subs [j].since = sub->since;
        }
    }
    if (size > 0) {
        for (size_t i = 0; i < group->subs_size; i++)
            free (group->subs [i].prefix);
        free (group->subs);
        group->subs = subs;
        group->subs_size = size;
        group->durable = durable;
        group->stored_subs = false;
    }
}

//  The first seq with a timestamp at or after since, reading only
//  timestamps; head + 1 if there is none
typedef struct {
    uint64_t since;             //  the time we look for
    uint64_t found;             //  the first seq at or after it
} s_seek_t;

static int
s_seek_one (uint64_t seq, uint64_t timestamp, const void *body, size_t size, void *arg)
{
    s_seek_t *seek = (s_seek_t *) arg;
    if (timestamp >= seek->since) {
        seek->found = seq;
        return 1;
    }
    return 0;
}

//  Adds a range of lost events to what the group is to be told
static void
s_lost (s_group_t *group, uint64_t from, uint64_t to, const char *why)
{
    if (!group->lost_from || from < group->lost_from)
        group->lost_from = from;
    if (to > group->lost_to)
        group->lost_to = to;
    group->lost_why = why;
}

static void
s_truncated (chorus__delivery_t *self, s_group_t *group)
{
    if (!group->lost_from || zlistx_size (group->instances) == 0)
        return;
    chorus_msg_t *truncated = chorus__context_msg (self->context, CHORUS_MSG_TRUNCATED);
    chorus_msg_set_group (truncated, group->name);
    chorus_msg_set_from (truncated, group->lost_from);
    chorus_msg_set_to (truncated, group->lost_to);
    chorus_msg_set_message (truncated, group->lost_why? group->lost_why:
                            "events removed by the publisher's retention");
    //  Kept until every live instance could be sent it (a connection that
    //  is not up yet takes nothing): tried again at the next pump
    bool sent = true;
    for (chorus__peer_t *peer = (chorus__peer_t *) zlistx_first (group->instances); peer;
         peer = (chorus__peer_t *) zlistx_next (group->instances))
        if (chorus__peer_send (peer, truncated))
            sent = false;
    chorus_msg_destroy (&truncated);
    if (sent) {
        group->lost_from = group->lost_to = 0;
        group->lost_why = NULL;
    }
}

static s_group_t *
s_group_require (chorus__delivery_t *self, chorus__peer_t *peer)
{
    s_group_t *group = (s_group_t *) zhashx_lookup (self->groups, peer->service);
    if (group)
        return group;
    uint64_t first = chorus_store_first (self->store);
    uint64_t head = chorus_store_head (self->store);
    uint64_t since = UINT64_MAX;
    for (size_t i = 0; i < peer->subs_size; i++)
        if (peer->subs [i].since < since)
            since = peer->subs [i].since;
    s_seek_t seek = {since, head + 1};
    if (since == 0)
        seek.found = first? first: head + 1;
    else
        if (chorus_store_scan (self->store, first? first: 1, head, s_seek_one, &seek) == -1)
            chorus__context_warn (self->context, W_STORE, "outbox: %s",
                                  chorus_store_error (self->store));
    group = s_group_new (peer->service, seek.found);
    //  Its `since` reaches before our oldest event: it may have lost some
    if (first > 1 && seek.found == first && first <= head) {
        s_cached_t *oldest = s_event (self, first);
        if (oldest && since < oldest->timestamp) {
            group->lost_from = 1;
            group->lost_to = first - 1;
        }
    }
    zhashx_insert (self->groups, group->name, group);
    chorus__context_log (self->context, "delivering to new group %s from seq %" PRIu64,
                         group->name, group->cursor);
    return group;
}

//  --------------------------------------------------------------------------
//  Engine events

static int
s_load_group (const char *name, const chorus_store_group_t *record, void *arg)
{
    chorus__delivery_t *self = (chorus__delivery_t *) arg;
    uint64_t first = chorus_store_first (self->store);
    uint64_t cursor = record->cursor;
    s_group_t *group = s_group_new (name, cursor);
    group->durable = true;
    //  Its subscriptions as we saved them: "SINCE FLAGS PREFIX" lines
    for (const char *line = record->subs; line && *line; ) {
        const char *end = strchr (line, '\n');
        char *text = end? strndup (line, (size_t) (end - line)): strdup (line);
        char *prefix = text? strchr (text, ' '): NULL;
        prefix = prefix? strchr (prefix + 1, ' '): NULL;
        if (prefix && (prefix [1] == 0 || chorus__valid_name (prefix + 1, 256))) {
            *prefix = 0;
            uint64_t since = 0, flags = 0;
            if (sscanf (text, "%" SCNu64 " %" SCNu64, &since, &flags) == 2)
                chorus__subs_add (&group->subs, &group->subs_size, prefix + 1, since, flags);
        }
        free (text);
        line = end? end + 1: NULL;
    }
    group->stored_subs = group->subs_size > 0;
    if (first && cursor < first) {
        group->lost_from = cursor;
        group->lost_to = first - 1;
        group->cursor = group->next = first;
    }
    zhashx_insert (self->groups, name, group);
    return 0;
}

chorus__delivery_t *
chorus__delivery_new (chorus__context_t *context)
{
    chorus__delivery_t *self = (chorus__delivery_t *) zmalloc (sizeof (chorus__delivery_t));
    self->context = context;
    self->store = context->store;
    self->groups = zhashx_new ();
    self->cache = (s_cached_t *) zmalloc (S_CACHE * sizeof (s_cached_t));
    zhashx_set_destructor (self->groups, s_group_destroy);
    self->timers = chorus__timers_new ();
    if (chorus_store_group_each (self->store, s_load_group, self) == -1)
        chorus__context_warn (context, W_STORE, "cannot load the groups' cursors: %s",
                              chorus_store_error (self->store));
    return self;
}

void
chorus__delivery_destroy (chorus__delivery_t **self_p)
{
    chorus__delivery_t *self = *self_p;
    if (self) {
        for (s_group_t *group = (s_group_t *) zhashx_first (self->groups); group;
             group = (s_group_t *) zhashx_next (self->groups))
            if (group->dirty)
                s_group_save (self, group);
        chorus__timers_destroy (&self->timers);     //  before the groups that hold them
        zhashx_destroy (&self->groups);
        for (int i = 0; i < S_CACHE; i++)
            s_cached_clear (self, &self->cache [i]);
        free (self->cache);
        s_cached_free (&self->scratch);
        free (self);
        *self_p = NULL;
    }
}

//  The lowest next event (*slowest) and cursor (*cursor) of the groups
//  with instances, UINT64_MAX if none: an event is worth caching only if
//  it would be sent before later events take its cache slot. When the
//  publisher runs far ahead of a group, caching new events only evicts the
//  ones the group is about to read, which it then reads again.
static void
s_lowest (chorus__delivery_t *self, uint64_t *slowest, uint64_t *cursor)
{
    *slowest = *cursor = UINT64_MAX;
    for (s_group_t *group = (s_group_t *) zhashx_first (self->groups); group;
         group = (s_group_t *) zhashx_next (self->groups))
        if (zlistx_size (group->instances)) {
            if (group->next < *slowest)
                *slowest = group->next;
            if (group->cursor < *cursor)
                *cursor = group->cursor;
        }
}

void
chorus__delivery_published (chorus__delivery_t *self, chorus_msg_t **events, zframe_t **bodies,
                            size_t count)
{
    if (count == 0)
        return;
    //  All of them cached before any group is pumped: the store already
    //  holds the whole batch, and a group pumped after the first would
    //  read the others from the store, 256 at a time, in vain. No group
    //  moves meanwhile: the slowest is found once for the batch
    uint64_t slowest, cursor;
    s_lowest (self, &slowest, &cursor);
    s_cache_trim (self, cursor);
    for (size_t i = 0; i < count; i++) {
        chorus_msg_t *event = events [i];
        uint64_t seq = chorus_msg_seq (event);
        const char *key = chorus_msg_key (event);
        chorus_msg_peek_t peek = {seq, chorus_msg_timestamp (event), chorus_msg_topic (event),
                                  strlen (chorus_msg_topic (event)), key, key? strlen (key): 0};
        if ((slowest == UINT64_MAX || slowest + S_CACHE / 2 > seq)
        &&  s_cache_fits (self, &peek, bodies [i]))
            s_cache_put (self, &peek, bodies [i]);
        else
            zframe_destroy (&bodies [i]);   //  in the store: read when its turn comes
        chorus_msg_destroy (&events [i]);
    }
    for (s_group_t *group = (s_group_t *) zhashx_first (self->groups); group;
         group = (s_group_t *) zhashx_next (self->groups))
        s_pump (self, group);
}

void
chorus__delivery_peer_joined (chorus__delivery_t *self, chorus__peer_t *peer)
{
    if (peer->subs_size == 0) {
        s_group_t *group = (s_group_t *) zhashx_lookup (self->groups, peer->service);
        if (group)
            s_group_refresh (self, group);  //  an instance that no longer subscribes
        return;
    }
    s_group_t *group = s_group_require (self, peer);
    s_group_refresh (self, group);
    s_group_save (self, group);
    s_truncated (self, group);
    s_pump (self, group);
}

void
chorus__delivery_peer_ready (chorus__delivery_t *self, chorus__peer_t *peer)
{
    s_group_t *group = (s_group_t *) zhashx_lookup (self->groups, peer->service);
    if (group && zlistx_size (group->ready))
        s_pump (self, group);
}

void
chorus__delivery_peer_gone (chorus__delivery_t *self, chorus__peer_t *peer)
{
    s_group_t *group = (s_group_t *) zhashx_lookup (self->groups, peer->service);
    if (!group)
        return;
    s_group_refresh (self, group);
    //  Its unacknowledged events go to the instances that remain
    zlist_t *moved = zlist_new ();
    for (s_flight_t *flight = (s_flight_t *) zlistx_first (group->sent); flight;
         flight = (s_flight_t *) zlistx_next (group->sent))
        if (flight->instance && streq (flight->instance, peer->instance))
            zlist_append (moved, flight);
    for (s_flight_t *flight = (s_flight_t *) zlist_first (moved); flight;
         flight = (s_flight_t *) zlist_next (moved)) {
        zlistx_detach (group->sent, flight->handle);
        zstr_free (&flight->instance);
        zlistx_add_end (group->ready, flight);
    }
    zlist_destroy (&moved);
    if (zlistx_size (group->instances) == 0 && !group->durable) {
        chorus__timers_cancel (self->timers, &group->timer);
        zhashx_delete (self->groups, group->name);
        return;
    }
    s_pump (self, group);
}

//  One event acknowledged for group with status; false if it was not in
//  flight (a late or duplicate acknowledgement)
static bool
s_acked (chorus__delivery_t *self, s_group_t *group, uint64_t seq, int status)
{
    if (seq < group->cursor || seq >= group->next)
        return false;
    s_slot_t *slot = s_slot (group, seq);
    s_flight_t *flight = slot->state == SLOT_FLIGHT? slot->flight: NULL;
    if (!flight || !flight->instance)
        return false;
    zlistx_detach (group->sent, flight->handle);
    zstr_free (&flight->instance);
    chorus__stats_t *stats = self->context->config->stats;
    if (stats)
        chorus_histogram_observe (&stats->ack_duration,
                                  (double) (chorus__mono () - flight->sent) / 1000);
    if (status == CHORUS_ACK_REJECTED) {
        uint64_t backoff = S_BACKOFF_MS;
        for (uint64_t i = 1; i < flight->attempt && backoff < S_BACKOFF_MAX_MS; i++)
            backoff *= 2;
        flight->due = chorus__mono () + (backoff < S_BACKOFF_MAX_MS? backoff: S_BACKOFF_MAX_MS);
        flight->handle = zlistx_add_end (group->delayed, flight);
    }
    else {
        s_finish (group, flight);
        s_advance (group);
    }
    return true;
}

void
chorus__delivery_ack (chorus__delivery_t *self, chorus__peer_t *peer, chorus_msg_t *ack)
{
    s_group_t *group = (s_group_t *) zhashx_lookup (self->groups, chorus_msg_group (ack));
    if (!group || !streq (peer->service, group->name))
        return;
    //  The seq, then each one the ack lists, as if acknowledged one by one;
    //  the group is pumped once, after all of them
    const uint64_t *seqs;
    size_t count = chorus_msg_seqs (ack, &seqs);
    int status = (int) chorus_msg_status (ack);
    bool done = s_acked (self, group, chorus_msg_seq (ack), status);
    for (size_t i = 0; i < count; i++)
        done |= s_acked (self, group, seqs [i], status);
    if (done)
        s_pump (self, group);
}


void
chorus__delivery_tick (chorus__delivery_t *self, uint64_t now)
{
    //  Only the groups whose time has come, taken out first: each sets its
    //  next time as it goes, which may be before now
    zlistx_t *due = NULL;
    chorus__timer_t *timer;
    while ((timer = chorus__timers_pop (self->timers, now))) {
        if (!due)
            due = zlistx_new ();
        zlistx_add_end (due, timer->arg);
    }
    for (s_group_t *group = due? (s_group_t *) zlistx_first (due): NULL; group;
         group = (s_group_t *) zlistx_next (due)) {
        //  Unacknowledged for too long: send again (the inbox dedupes)
        s_flight_t *flight;
        while ((flight = (s_flight_t *) zlistx_first (group->sent)) && flight->due <= now) {
            zlistx_detach (group->sent, flight->handle);
            zstr_free (&flight->instance);
            zlistx_add_start (group->ready, flight);
        }
        //  Backoff over: send again; delayed flights are not in seq order
        flight = (s_flight_t *) zlistx_first (group->delayed);
        while (flight) {
            s_flight_t *next = (s_flight_t *) zlistx_next (group->delayed);
            if (flight->due <= now) {
                zlistx_detach (group->delayed, flight->handle);
                zlistx_add_end (group->ready, flight);
            }
            flight = next;
        }
        s_pump_group (self, group);
        if (group->dirty)
            s_group_save (self, group);
        s_group_schedule (self, group);
    }
    zlistx_destroy (&due);
    //  Once a second, with another tick when one comes a little early
    if (now + CHORUS__TICK_EARLY_MS - self->last_retain >= S_RETAIN_MS) {
        chorus__delivery_retain (self, chorus__now ());     //  events carry wall-clock times
        self->last_retain = now;
    }
}

//  Deliveries not yet acknowledged by a group: in flight or waiting, and
//  the due events past what the group has examined
typedef struct {
    s_group_t *group;           //  the group
    chorus_msg_t *scratch;      //  each event, decoded
    uint64_t due;               //  how many are due to it
} s_count_t;

static int
s_count_one (uint64_t seq, uint64_t timestamp, const void *body, size_t size, void *arg)
{
    s_count_t *count = (s_count_t *) arg;
    if (chorus_msg_decode (count->scratch, body, size) == 0
    &&  s_due_to (count->group, chorus_msg_topic (count->scratch),
                  chorus_msg_timestamp (count->scratch)))
        count->due++;
    return 0;
}

static uint64_t
s_group_pending (chorus__delivery_t *self, s_group_t *group, uint64_t head)
{
    uint64_t total = 0;
    for (uint64_t seq = group->cursor; seq < group->next; seq++)
        if (s_slot (group, seq)->state == SLOT_FLIGHT)
            total++;
    //  A loss the group has not been told of counts as one: the publisher
    //  owes it a TRUNCATED
    if (group->lost_from || chorus_store_lost_since (self->store, group->next))
        total++;
    if (head < group->next)
        return total;
    if (!group->stored_subs)
        return total + chorus_store_count (self->store, group->next, head);   //  all count
    //  Absent since before our restart: what its saved subscriptions make
    //  due, counted once per event
    uint64_t from = group->counted_to >= group->next? group->counted_to + 1: group->next;
    if (from <= head) {
        s_count_t count = {group, chorus_msg_new (CHORUS_MSG_EVENT), 0};
        int rc = chorus_store_scan (self->store, from, head, s_count_one, &count);
        chorus_msg_destroy (&count.scratch);
        if (rc == -1) {     //  counted again next time
            chorus__context_warn (self->context, W_STORE, "outbox: %s",
                                  chorus_store_error (self->store));
            return total + group->due_count;
        }
        group->due_count += count.due;
        group->counted_to = head;
    }
    return total + group->due_count;
}

uint64_t
chorus__delivery_next_due (chorus__delivery_t *self)
{
    uint64_t due = chorus__timers_next (self->timers);
    //  Retention is a chore: it waits a little for a tick that comes anyway
    uint64_t retain = self->last_retain + S_RETAIN_MS + CHORUS__TICK_LATE_MS;
    return retain < due? retain: due;
}

void
chorus__delivery_pending (chorus__delivery_t *self, chorus__pending_fn *fn, void *arg)
{
    uint64_t head = chorus_store_head (self->store);
    for (s_group_t *group = (s_group_t *) zhashx_first (self->groups); group;
         group = (s_group_t *) zhashx_next (self->groups)) {
        uint64_t pending = s_group_pending (self, group, head);
        if (pending)
            fn (group->name, pending, zlistx_size (group->instances), arg);
    }
}

void
chorus__delivery_lag (chorus__delivery_t *self, chorus__pending_fn *fn, void *arg)
{
    uint64_t head = chorus_store_head (self->store);
    for (s_group_t *group = (s_group_t *) zhashx_first (self->groups); group;
         group = (s_group_t *) zhashx_next (self->groups))
        fn (group->name, s_group_pending (self, group, head), zlistx_size (group->instances),
            arg);
}

uint64_t
chorus__delivery_oldest_pending (chorus__delivery_t *self)
{
    uint64_t head = chorus_store_head (self->store), oldest = 0;
    for (s_group_t *group = (s_group_t *) zhashx_first (self->groups); group;
         group = (s_group_t *) zhashx_next (self->groups))
        if (s_group_pending (self, group, head) && (!oldest || group->cursor < oldest))
            oldest = group->cursor;
    return oldest;
}

int64_t
chorus__delivery_unacked (chorus__delivery_t *self)
{
    uint64_t head = chorus_store_head (self->store);
    int64_t total = 0;
    for (s_group_t *group = (s_group_t *) zhashx_first (self->groups); group;
         group = (s_group_t *) zhashx_next (self->groups))
        total += (int64_t) s_group_pending (self, group, head);
    return total;
}

//  --------------------------------------------------------------------------
//  Retention

typedef struct {
    uint64_t stop;              //  do not go past this seq
    uint64_t bytes;             //  bytes retained before trimming
    uint64_t max_bytes;         //  limit (0: none)
    uint64_t oldest;            //  events older than this go (0: no age limit)
    uint64_t target;            //  first seq to keep
} s_trim_t;

static int
s_trim_one (uint64_t seq, uint64_t timestamp, const void *body, size_t size, void *arg)
{
    s_trim_t *trim = (s_trim_t *) arg;
    bool over = (trim->max_bytes && trim->bytes > trim->max_bytes)
             || (trim->oldest && timestamp < trim->oldest);
    if (!over || seq >= trim->stop)
        return 1;
    trim->bytes -= size;
    trim->target = seq + 1;
    return 0;
}

//  The first seq to keep so that the outbox is within its limits, trimming
//  no further than stop
static uint64_t
s_trim_target (chorus__delivery_t *self, uint64_t stop, bool by_age, uint64_t now)
{
    chorus__config_t *config = self->context->config;
    uint64_t first = chorus_store_first (self->store);
    if (!first || stop <= first)
        return first;
    s_trim_t trim = {stop, chorus_store_bytes (self->store), config->retention_bytes,
                     by_age && config->retention_age_ms && now > config->retention_age_ms?
                     now - config->retention_age_ms: 0, first};
    if (chorus_store_scan (self->store, first, stop - 1, s_trim_one, &trim) == -1) {
        chorus__context_warn (self->context, W_STORE, "retention: %s",
                              chorus_store_error (self->store));
        return first;   //  nothing trimmed on a partial view
    }
    return trim.target;
}

bool
chorus__delivery_retain (chorus__delivery_t *self, uint64_t now)
{
    chorus__config_t *config = self->context->config;
    uint64_t first = chorus_store_first (self->store);
    if (!first || (!config->retention_bytes && !config->retention_age_ms))
        return false;
    uint64_t held = chorus_store_head (self->store) + 1;
    for (s_group_t *group = (s_group_t *) zhashx_first (self->groups); group;
         group = (s_group_t *) zhashx_next (self->groups))
        if (group->cursor < held)
            held = group->cursor;
    //  Events no group holds go first, by size and by age
    uint64_t target = s_trim_target (self, held, true, now);
    if (target > first && chorus_store_trim (self->store, target) == -1)
        chorus__context_warn (self->context, W_STORE, "retention: %s",
                              chorus_store_error (self->store));
    bool full = config->retention_bytes && chorus_store_bytes (self->store) > config->retention_bytes;
    if (!full || config->retention_policy != CHORUS_RETAIN_DROP_OLDEST)
        return full;

    //  Drop the oldest even though groups hold them, and tell those groups
    target = s_trim_target (self, chorus_store_head (self->store) + 1, false, now);
    if (chorus_store_trim (self->store, target) == -1) {
        //  Not dropped: no group is told of a loss that did not happen
        chorus__context_warn (self->context, W_STORE, "retention: %s",
                              chorus_store_error (self->store));
        return full;
    }
    for (s_group_t *group = (s_group_t *) zhashx_first (self->groups); group;
         group = (s_group_t *) zhashx_next (self->groups)) {
        if (group->cursor >= target)
            continue;
        chorus__context_log (self->context, "retention dropped %" PRIu64 "..%" PRIu64
                            " held by group %s", group->cursor, target - 1, group->name);
        group->lost_from = group->lost_from? group->lost_from: group->cursor;
        group->lost_to = target - 1;
        s_group_reset (group);
        group->cursor = group->next = target;
        group->dirty = true;
        s_truncated (self, group);
        s_pump (self, group);
    }
    return false;
}

//  --------------------------------------------------------------------------
//  FETCH from an observer

void
chorus__delivery_fetch (chorus__delivery_t *self, chorus__peer_t *peer, chorus_msg_t *fetch)
{
    chorus__context_t *context = self->context;
    uint64_t head = chorus_store_head (self->store);
    uint64_t from = chorus_msg_from (fetch)? chorus_msg_from (fetch): 1;
    uint64_t to = chorus_msg_to (fetch) && chorus_msg_to (fetch) < head? chorus_msg_to (fetch): head;
    if (chorus_msg_to (fetch) && chorus_msg_from (fetch) > chorus_msg_to (fetch)) {
        chorus__context_error (context, peer, fetch, "bad-request", "FETCH from is after to");
        return;
    }
    uint64_t limit = chorus_msg_limit (fetch);
    if (limit == 0 || limit > S_FETCH_MAX)
        limit = S_FETCH_MAX;
    const char *prefix = chorus_msg_prefix (fetch)? chorus_msg_prefix (fetch): "";
    uint64_t first = chorus_store_first (self->store);
    uint64_t start = from;
    if (from <= to && (!first || from < first)) {
        uint64_t lost_to = first? first - 1: to;
        chorus_msg_t *truncated = chorus__context_msg (context, CHORUS_MSG_TRUNCATED);
        chorus_msg_set_request (truncated, chorus_msg_id (fetch));
        chorus_msg_set_from (truncated, from);
        chorus_msg_set_to (truncated, lost_to < to? lost_to: to);
        chorus_msg_set_message (truncated, "no longer retained by the publisher");
        chorus__peer_send (peer, truncated);
        chorus_msg_destroy (&truncated);
        start = lost_to + 1;
    }
    uint64_t covered = to;
    uint64_t sent = 0;
    for (uint64_t seq = start; seq <= to; seq++) {
        s_cached_t *event = s_event (self, seq);
        if (!event && chorus_store_damaged (self->store)) {
            covered = seq - 1;
            break;
        }
        if (!event) {
            //  Numbers between epochs are skipped; events a repair lost
            //  are reported
            uint64_t lost_from, lost_to;
            uint64_t found = chorus_store_next (self->store, seq, &lost_from, &lost_to);
            if (lost_from) {
                chorus_msg_t *truncated = chorus__context_msg (context, CHORUS_MSG_TRUNCATED);
                chorus_msg_set_request (truncated, chorus_msg_id (fetch));
                chorus_msg_set_from (truncated, lost_from);
                chorus_msg_set_to (truncated, lost_to < to? lost_to: to);
                chorus_msg_set_message (truncated, "events lost to damage; the publisher's "
                                        "store was repaired");
                chorus__peer_send (peer, truncated);
                chorus_msg_destroy (&truncated);
            }
            if (found > seq + 1)
                seq = found - 1;
            continue;
        }
        if (!chorus__prefix_match (prefix, event->topic))
            continue;
        //  As stored: group nil and attempt 0, as a FETCH answer has them
        zframe_t *copy = zframe_dup (event->body);
        if (chorus__peer_send_body (peer, CHORUS_MSG_EVENT, &copy)) {
            covered = seq - 1;  //  the peer's queue is full: it asks again
            break;
        }
        if (++sent == limit) {
            covered = seq;
            break;
        }
    }
    chorus_msg_t *replay = chorus__context_msg (context, CHORUS_MSG_REPLAY);
    chorus_msg_set_request (replay, chorus_msg_id (fetch));
    chorus_msg_set_from (replay, from);
    chorus_msg_set_to (replay, covered);
    chorus_msg_set_head (replay, head);
    //  Kept until the connection is up, if it is coming up (opened again
    //  after it went unused): the observer asks again at once for what it
    //  does not cover, not at its timeout
    chorus__peer_answer (peer, replay);
    chorus_msg_destroy (&replay);
}

//  --------------------------------------------------------------------------
//  Self-test

#define S_BILLING_1 "B0000000000000000000000000000001"
#define S_BILLING_2 "B0000000000000000000000000000002"
#define S_WATCHER "D0000000000000000000000000000001"

//  A group member subscribed to order.
static chorus__peer_t *
s_test_member (chorus__fake_t *fake, const char *instance)
{
    chorus__peer_t *peer = chorus__fake_peer (fake, instance, "billing");
    chorus_msg_t *hello = chorus_msg_new (CHORUS_MSG_HELLO);
    chorus_msg_add_subscription (hello, "order.", 0, CHORUS_SUB_DURABLE);
    chorus__peer_set_subs (peer, hello);
    chorus_msg_destroy (&hello);
    return peer;
}

//  The seq of the next EVENT the endpoint got for group billing, 0 if none
static uint64_t
s_test_delivered (chorus__fake_t *fake, const char *endpoint, int timeout)
{
    chorus_msg_t *event = chorus__fake_sent (fake, endpoint, timeout);
    if (!event)
        return 0;
    uint64_t seq = chorus_msg_type (event) == CHORUS_MSG_EVENT && chorus_msg_group (event)
                && streq (chorus_msg_group (event), "billing")? chorus_msg_seq (event): 0;
    chorus_msg_destroy (&event);
    return seq;
}

static void
s_test_ack (chorus__delivery_t *self, chorus__peer_t *peer, uint64_t seq, int status)
{
    chorus_msg_t *ack = chorus_msg_new (CHORUS_MSG_EVENT_ACK);
    chorus_msg_set_id (ack, "00000000000000000000000000000000");
    chorus_msg_set_group (ack, "billing");
    chorus_msg_set_seq (ack, seq);
    chorus_msg_set_status (ack, status);
    chorus__delivery_ack (self, peer, ack);
    chorus_msg_destroy (&ack);
}

//  An event of ours of size payload bytes, stored as the engine would,
//  with its encoding in *body_p
static chorus_msg_t *
s_test_stored (chorus__fake_t *fake, uint64_t seq, size_t size, zframe_t **body_p)
{
    chorus__context_t *context = chorus__fake_context (fake);
    //  Made as another's (not stored), then made ours with its payload
    chorus_msg_t *event = chorus__fake_event (fake, S_WATCHER, seq, "order.big", NULL, NULL);
    chorus_msg_set_instance (event, context->instance);
    char *payload = (char *) zmalloc (size);
    chorus_msg_set_payload (event, payload, size);
    free (payload);
    *body_p = chorus_msg_encode (event);
    CHORUS__CHECK (*body_p);
    CHORUS__CHECK (chorus_store_append (context->store, seq, chorus__now (),
                                        zframe_data (*body_p), zframe_size (*body_p)) == 0);
    return event;
}

static void
s_test_pending (const char *group, uint64_t pending, size_t instances, void *arg)
{
    if (streq (group, "billing"))
        *(uint64_t *) arg = pending;
}

void
chorus__delivery_test (bool verbose)
{
    if (verbose)
        printf (" * chorus__delivery: ");
    chorus__fake_t *fake = chorus__fake_new ("shop");
    chorus__context_t *context = chorus__fake_context (fake);
    chorus__delivery_t *self = chorus__delivery_new (context);
    chorus__peer_t *first = s_test_member (fake, S_BILLING_1);
    chorus__delivery_peer_joined (self, first);

    //  Three events, two of one key: the second waits behind the first
    const char *keys [] = {"k1", "k1", "k2"};
    for (uint64_t seq = 1; seq <= 3; seq++) {
        zframe_t *body;
        chorus_msg_t *event = chorus__fake_event (fake, context->instance, seq, "order.placed",
                                                  keys [seq - 1], &body);
        chorus__delivery_published (self, &event, &body, 1);
    }
    CHORUS__CHECK (s_test_delivered (fake, first->endpoint, 1000) == 1);
    CHORUS__CHECK (s_test_delivered (fake, first->endpoint, 1000) == 3);
    CHORUS__CHECK (s_test_delivered (fake, first->endpoint, 0) == 0);
    CHORUS__CHECK (chorus__delivery_unacked (self) == 3);
    uint64_t pending = 0;
    chorus__delivery_pending (self, s_test_pending, &pending);
    CHORUS__CHECK (pending == 3);

    //  Acknowledged: the next of its key goes; an ack from another group's
    //  node, or twice, changes nothing
    chorus__peer_t *watcher = chorus__fake_peer (fake, S_WATCHER, "watcher");
    s_test_ack (self, watcher, 1, CHORUS_ACK_HANDLED);
    CHORUS__CHECK (s_test_delivered (fake, first->endpoint, 0) == 0);
    s_test_ack (self, first, 1, CHORUS_ACK_HANDLED);
    CHORUS__CHECK (s_test_delivered (fake, first->endpoint, 1000) == 2);
    s_test_ack (self, first, 1, CHORUS_ACK_HANDLED);
    CHORUS__CHECK (chorus__delivery_unacked (self) == 2);

    //  Rejected: sent again after its backoff, not before
    s_test_ack (self, first, 3, CHORUS_ACK_REJECTED);
    chorus__delivery_tick (self, chorus__mono ());
    CHORUS__CHECK (s_test_delivered (fake, first->endpoint, 0) == 0);
    chorus__delivery_tick (self, chorus__mono () + S_BACKOFF_MS + 1);
    CHORUS__CHECK (s_test_delivered (fake, first->endpoint, 1000) == 3);

    //  Unacknowledged past the ack timeout: sent again
    chorus__delivery_tick (self, chorus__mono () + context->config->ack_timeout_ms + 1);
    uint64_t again = s_test_delivered (fake, first->endpoint, 1000);
    uint64_t other = s_test_delivered (fake, first->endpoint, 1000);
    CHORUS__CHECK ((again == 2 && other == 3) || (again == 3 && other == 2));

    //  The member gone: what it held goes to the other member
    chorus__peer_t *second = s_test_member (fake, S_BILLING_2);
    chorus__delivery_peer_joined (self, second);
    zhashx_delete (context->peers, first->instance);
    chorus__delivery_peer_gone (self, first);
    chorus__peer_destroy (&first);
    again = s_test_delivered (fake, second->endpoint, 1000);
    other = s_test_delivered (fake, second->endpoint, 1000);
    CHORUS__CHECK ((again == 2 && other == 3) || (again == 3 && other == 2));
    s_test_ack (self, second, 2, CHORUS_ACK_HANDLED);
    s_test_ack (self, second, 3, CHORUS_ACK_DUPLICATE);
    CHORUS__CHECK (chorus__delivery_unacked (self) == 0);

    //  An observer's FETCH: the events, without a group, then REPLAY
    chorus_msg_t *fetch = chorus__context_msg (context, CHORUS_MSG_FETCH);
    chorus_msg_set_from (fetch, 2);
    chorus_msg_set_to (fetch, 3);
    chorus__delivery_fetch (self, watcher, fetch);
    for (uint64_t seq = 2; seq <= 3; seq++) {
        chorus_msg_t *event = chorus__fake_sent (fake, watcher->endpoint, 1000);
        CHORUS__CHECK (event && chorus_msg_type (event) == CHORUS_MSG_EVENT);
        CHORUS__CHECK (chorus_msg_seq (event) == seq && chorus_msg_group (event) == NULL);
        chorus_msg_destroy (&event);
    }
    chorus_msg_t *replay = chorus__fake_sent (fake, watcher->endpoint, 1000);
    CHORUS__CHECK (replay && chorus_msg_type (replay) == CHORUS_MSG_REPLAY);
    CHORUS__CHECK (chorus_msg_to (replay) == 3 && chorus_msg_head (replay) == 3);
    CHORUS__CHECK (streq (chorus_msg_request (replay), chorus_msg_id (fetch)));
    chorus_msg_destroy (&replay);

    //  A FETCH whose range is backwards is answered ERROR bad-request
    chorus_msg_set_from (fetch, 3);
    chorus_msg_set_to (fetch, 2);
    chorus__delivery_fetch (self, watcher, fetch);
    chorus_msg_t *error = chorus__fake_sent (fake, watcher->endpoint, 1000);
    CHORUS__CHECK (error && chorus_msg_type (error) == CHORUS_MSG_ERROR);
    CHORUS__CHECK (streq (chorus_msg_code (error), "bad-request"));
    chorus_msg_destroy (&error);
    chorus_msg_destroy (&fetch);

    //  One EVENT-ACK listing three events acknowledges each
    for (uint64_t seq = 4; seq <= 6; seq++) {
        zframe_t *body;
        chorus_msg_t *event = chorus__fake_event (fake, context->instance, seq, "order.placed",
                                                  NULL, &body);
        chorus__delivery_published (self, &event, &body, 1);
        CHORUS__CHECK (s_test_delivered (fake, second->endpoint, 1000) == seq);
    }
    CHORUS__CHECK (chorus__delivery_unacked (self) == 3);
    chorus_msg_t *ack = chorus_msg_new (CHORUS_MSG_EVENT_ACK);
    chorus_msg_set_id (ack, "00000000000000000000000000000000");
    chorus_msg_set_group (ack, "billing");
    chorus_msg_set_seq (ack, 5);
    chorus_msg_add_seq (ack, 4);
    chorus_msg_add_seq (ack, 99);       //  not in flight: ignored
    chorus_msg_add_seq (ack, 6);
    chorus_msg_set_status (ack, CHORUS_ACK_HANDLED);
    chorus__delivery_ack (self, second, ack);
    chorus_msg_destroy (&ack);
    CHORUS__CHECK (chorus__delivery_unacked (self) == 0);

    //  The cache keeps at most S_CACHE_BYTES of new events; the others
    //  are sent from the store, and each arrives once, in order
    size_t big = 1024 * 1024;
    uint64_t count = S_CACHE_BYTES / big + 8;
    for (uint64_t seq = 7; seq < 7 + count; seq++) {
        zframe_t *body;
        chorus_msg_t *event = s_test_stored (fake, seq, big, &body);
        chorus__delivery_published (self, &event, &body, 1);
        CHORUS__CHECK (self->cache_bytes <= S_CACHE_BYTES);
    }
    for (uint64_t seq = 7; seq < 7 + count; seq++) {
        CHORUS__CHECK (s_test_delivered (fake, second->endpoint, 1000) == seq);
        s_test_ack (self, second, seq, CHORUS_ACK_HANDLED);
    }
    CHORUS__CHECK (chorus__delivery_unacked (self) == 0);
    //  Acknowledged by every group, they make room at the next publish
    uint64_t seq = 7 + count;
    zframe_t *body;
    chorus_msg_t *event = chorus__fake_event (fake, context->instance, seq, "order.placed",
                                              NULL, &body);
    chorus__delivery_published (self, &event, &body, 1);
    CHORUS__CHECK (s_test_delivered (fake, second->endpoint, 1000) == seq);
    CHORUS__CHECK (self->cache_bytes < big);

    //  An event stored in another valid layout (an array 32 header) than
    //  our encoder writes is read back and sent as any other
    uint64_t odd = ++seq;
    event = chorus__fake_event (fake, S_WATCHER, odd, "order.placed", NULL, NULL);
    chorus_msg_set_instance (event, context->instance);
    body = chorus_msg_encode (event);
    chorus_msg_destroy (&event);
    size_t size = zframe_size (body);
    byte *wide = (byte *) malloc (size + 2);
    CHORUS__CHECK (zframe_data (body) [0] == 0xdc);
    wide [0] = 0xdd;
    wide [1] = wide [2] = 0;
    memcpy (wide + 3, zframe_data (body) + 1, size - 1);
    zframe_destroy (&body);
    CHORUS__CHECK (chorus_store_append (context->store, odd, chorus__now (), wide,
                                        size + 2) == 0);
    free (wide);
    event = chorus__fake_event (fake, context->instance, ++seq, "order.placed", NULL, &body);
    chorus__delivery_published (self, &event, &body, 1);
    CHORUS__CHECK (s_test_delivered (fake, second->endpoint, 1000) == odd);
    CHORUS__CHECK (s_test_delivered (fake, second->endpoint, 1000) == seq);

    chorus__delivery_destroy (&self);
    CHORUS__CHECK (self == NULL);
    chorus__fake_destroy (&fake);
    if (verbose)
        printf ("OK\n");
}
