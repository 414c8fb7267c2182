/*  test_bad_input_is_dropped.c — random bytes and well-signed garbage sent
    to a node's ROUTER and to its observer's SUB are dropped and counted,
    messages from routing ids that never said HELLO are dropped and counted,
    and the node goes on working: a hand-made peer proves it with an event,
    an observed event and a command afterwards.
*/
#include "fake_peer.h"

#include <msgpack.h>

#define RANDOM_BODIES 2000
#define SIGNED_BODIES 2000
#define CHUNK 250               //  garbage sent before waiting for the node to count it

typedef struct {
    int events;                 //  group handler runs
    int observed;               //  observer handler runs
    uint64_t observed_seq;      //  seq of the last observed event
    int commands;               //  command handler runs
} state_t;

static int
s_on_event (chorus_node_t *node, chorus_event_t *event, void *arg)
{
    ((state_t *) arg)->events++;
    return 0;
}

static int
s_on_observed (chorus_node_t *node, chorus_event_t *event, void *arg)
{
    state_t *state = (state_t *) arg;
    state->observed++;
    state->observed_seq = chorus_event_seq (event);
    return 0;
}

static void
s_on_reserve (chorus_node_t *node, chorus_command_t *command, chorus_reply_t *reply, void *arg)
{
    ((state_t *) arg)->commands++;
    chorus_reply_set_payload (reply, "reserved", 8);
}

//  --------------------------------------------------------------------------
//  Waiting on the node's counters

typedef struct {
    chorus_node_t *node;        //  whose counters
    const char *first;          //  a counter
    const char *second;         //  another one added to it, or NULL
    uint64_t target;            //  the sum wanted
} count_t;

static uint64_t
s_sum (count_t *count)
{
    return chorus_node_counter (count->node, count->first)
         + (count->second? chorus_node_counter (count->node, count->second): 0);
}

static bool
s_count_reached (void *arg)
{
    count_t *count = (count_t *) arg;
    return s_sum (count) >= count->target;
}

//  Waits until the counter (or the sum of two) reaches target, serving the
//  fake peer's inbox meanwhile so the node keeps it alive; returns the sum
static uint64_t
s_wait_count (fake_peer_t *fake, chorus_node_t *node, const char *first, const char *second,
              uint64_t target)
{
    count_t count = {node, first, second, target};
    fake_peer_wait (fake, node, s_count_reached, &count, 5000);
    return s_sum (&count);
}

typedef struct {
    state_t *state;             //  what the handlers saw
    uint64_t seq;               //  the observed seq wanted
} seen_t;

static bool
s_observed_seq (void *arg)
{
    seen_t *seen = (seen_t *) arg;
    return seen->state->observed_seq >= seen->seq;
}

//  --------------------------------------------------------------------------
//  Garbage

//  A seeded generator (xorshift64*), so every run sends the same bytes
static uint64_t s_rng = 0x9E3779B97F4A7C15ull;

static uint32_t
s_random (void)
{
    s_rng ^= s_rng >> 12;
    s_rng ^= s_rng << 25;
    s_rng ^= s_rng >> 27;
    return (uint32_t) ((s_rng * 2685821657736338717ull) >> 32);
}

static int
s_send_raw (zsock_t *socket, const void *data, size_t size, bool more)
{
    return zmq_send (zsock_resolve (socket), data, size, more? ZMQ_SNDMORE: 0) == (int) size
           ? 0: -1;
}

//  Random bytes; some start like an array, some like a Chorus header, so
//  that the decoder is exercised past its first byte
static zframe_t *
s_random_frame (void)
{
    size_t size = s_random () % 256;
    zframe_t *frame = zframe_new (NULL, size);
    uint8_t *data = zframe_data (frame);
    for (size_t i = 0; i < size; i++)
        data [i] = (uint8_t) s_random ();
    uint32_t shape = s_random () % 4;
    if (shape >= 1 && size >= 1)
        data [0] = 0x90 | (uint8_t) (s_random () % 16);
    if (shape >= 2 && size >= 6)
        memcpy (data + 1, "\xcd\xc4\x05\x01", 4);
    return frame;
}

//  What the test knows of each field's wire form (protocol section 12)
typedef struct {
    const char *name;           //  field name
    char kind;                  //  s str, n name, u uint, b bool, p bin, l strs, q uints, S subs, m map
    size_t max;                 //  limit
    bool required;              //  never nil in any message
} field_t;

static const field_t s_known [] = {
    {"id", 's', 64, true}, {"service", 'n', 64, true}, {"instance", 'n', 64, true},
    {"endpoint", 's', 256, true}, {"pub_endpoint", 's', 256, true}, {"topic", 'n', 256, true},
    {"key", 's', 256, false}, {"correlation", 's', 128, true}, {"causation", 's', 128, false},
    {"group", 'n', 64, false}, {"prefix", 'n', 256, false}, {"request", 's', 64, false},
    {"message", 's', 4096, false}, {"name", 'n', 128, true}, {"idempotency", 's', 256, false},
    {"code", 's', 64, false}, {"generation", 'u', 0, true}, {"head", 'u', 0, true},
    {"seq", 'u', 0, true}, {"timestamp", 'u', 0, true}, {"attempt", 'u', 0, true},
    {"status", 'u', 0, true}, {"from", 'u', 0, true}, {"to", 'u', 0, true},
    {"limit", 'u', 0, true}, {"deadline", 'u', 0, true}, {"retryable", 'b', 0, true},
    {"payload", 'p', 1048576, false}, {"peers", 'l', 256, true}, {"topics", 'l', 256, true},
    {"subscriptions", 'S', 256, true}, {"headers", 'm', 32, false},
    {"try", 'u', 0, true}, {"members", 'l', 256, true}, {"target", 'n', 64, true},
    {"seqs", 'q', CHORUS_MSG_MAX_SEQS, true},
};

static const field_t *
s_field (const char *name)
{
    for (size_t i = 0; i < sizeof (s_known) / sizeof (s_known [0]); i++)
        if (streq (s_known [i].name, name))
            return &s_known [i];
    return NULL;
}

static void
s_pack_str (msgpack_packer *pk, const char *value, size_t size)
{
    msgpack_pack_str (pk, size);
    msgpack_pack_str_body (pk, value, size);
}

static void
s_pack_repeat (msgpack_packer *pk, char byte, size_t size)
{
    char *value = (char *) malloc (size + 1);
    memset (value, byte, size);
    s_pack_str (pk, value, size);
    free (value);
}

static void
s_pack_valid (msgpack_packer *pk, const field_t *field)
{
    switch (field->kind) {
        case 's': case 'n': s_pack_str (pk, "x1", 2); break;
        case 'u': msgpack_pack_uint64 (pk, 5); break;
        case 'b': msgpack_pack_false (pk); break;
        case 'p': msgpack_pack_bin (pk, 2); msgpack_pack_bin_body (pk, "zz", 2); break;
        case 'l': msgpack_pack_array (pk, 1); s_pack_str (pk, "tcp://a:1", 9); break;
        case 'q': msgpack_pack_array (pk, 1); msgpack_pack_uint64 (pk, 6); break;
        case 'S':
            msgpack_pack_array (pk, 1);
            msgpack_pack_array (pk, 3);
            s_pack_str (pk, "order.", 6);
            msgpack_pack_uint64 (pk, 0);
            msgpack_pack_uint64 (pk, 1);
            break;
        case 'm': msgpack_pack_map (pk, 1); s_pack_str (pk, "k", 1); s_pack_str (pk, "v", 1); break;
    }
}

//  A value of the wrong MessagePack family for the field
static void
s_pack_wrong_family (msgpack_packer *pk, const field_t *field, uint32_t variant)
{
    switch (field->kind) {
        case 's': case 'n':
            if (variant % 2)
                msgpack_pack_uint64 (pk, 7);
            else {
                msgpack_pack_bin (pk, 2);       //  str is never bin
                msgpack_pack_bin_body (pk, "x1", 2);
            }
            break;
        case 'u':
            if (variant % 2)
                s_pack_str (pk, "7", 1);
            else
                msgpack_pack_true (pk);
            break;
        case 'b': msgpack_pack_uint64 (pk, 1); break;
        case 'p': s_pack_str (pk, "zz", 2); break;      //  bin is never str
        case 'l': s_pack_str (pk, "tcp://a:1", 9); break;
        case 'q': msgpack_pack_uint64 (pk, 6); break;
        case 'S': msgpack_pack_map (pk, 0); break;
        case 'm': msgpack_pack_array (pk, 0); break;
    }
}

//  A value of the right family that breaks a limit or a character rule
static void
s_pack_out_of_bounds (msgpack_packer *pk, const field_t *field, uint32_t variant)
{
    switch (field->kind) {
        case 's':
            if (variant % 2 && field->max < 4096)
                s_pack_repeat (pk, 'a', field->max + 1);
            else
            if (streq (field->name, "id"))
                s_pack_str (pk, "", 0);         //  an id is 1..64 bytes
            else
                s_pack_repeat (pk, 'a', field->max + 1);
            break;
        case 'n':
            if (variant % 3 == 0)
                s_pack_repeat (pk, 'a', field->max + 1);
            else
            if (variant % 3 == 1)
                s_pack_str (pk, "a b", 3);      //  a space is not printable ASCII here
            else
                s_pack_str (pk, "a\x7f", 2);
            break;
        case 'u':
            if (variant % 2)
                msgpack_pack_int64 (pk, -1 - (int64_t) (variant % 1000));
            else
                msgpack_pack_double (pk, 1.5);
            break;
        case 'b': msgpack_pack_double (pk, 0.0); break;
        case 'p': msgpack_pack_int64 (pk, -2); break;
        case 'l':
            if (variant % 2) {
                msgpack_pack_array (pk, field->max + 1);
                for (size_t i = 0; i <= field->max; i++)
                    s_pack_str (pk, "tcp://a:1", 9);
            }
            else {
                msgpack_pack_array (pk, 1);
                s_pack_str (pk, "", 0);         //  list entries are 1..256 bytes
            }
            break;
        case 'q':
            if (variant % 2) {
                msgpack_pack_array (pk, field->max + 1);
                for (size_t i = 0; i <= field->max; i++)
                    msgpack_pack_uint64 (pk, i);
            }
            else {
                msgpack_pack_array (pk, 2);
                msgpack_pack_uint64 (pk, 6);
                msgpack_pack_int64 (pk, -6);    //  seqs are non-negative
            }
            break;
        case 'S':
            if (variant % 3 == 0) {
                msgpack_pack_array (pk, field->max + 1);
                for (size_t i = 0; i <= field->max; i++) {
                    msgpack_pack_array (pk, 3);
                    s_pack_str (pk, "a", 1);
                    msgpack_pack_uint64 (pk, 0);
                    msgpack_pack_uint64 (pk, 0);
                }
            }
            else
            if (variant % 3 == 1) {
                msgpack_pack_array (pk, 1);
                msgpack_pack_array (pk, 2);     //  a subscription has 3 elements
                s_pack_str (pk, "a", 1);
                msgpack_pack_uint64 (pk, 0);
            }
            else {
                msgpack_pack_array (pk, 1);
                msgpack_pack_array (pk, 3);
                msgpack_pack_array (pk, 1);     //  nesting 4 deep
                s_pack_str (pk, "a", 1);
                msgpack_pack_uint64 (pk, 0);
                msgpack_pack_uint64 (pk, 0);
            }
            break;
        case 'm':
            if (variant % 3 == 0) {
                msgpack_pack_map (pk, field->max + 1);
                for (size_t i = 0; i <= field->max; i++) {
                    char name [16];
                    snprintf (name, sizeof (name), "h%zu", i);
                    s_pack_str (pk, name, strlen (name));
                    s_pack_str (pk, "v", 1);
                }
            }
            else
            if (variant % 3 == 1) {
                msgpack_pack_map (pk, 1);
                s_pack_str (pk, "", 0);         //  header names are 1..64 bytes
                s_pack_str (pk, "v", 1);
            }
            else {
                msgpack_pack_map (pk, 1);
                s_pack_str (pk, "k", 1);
                msgpack_pack_uint64 (pk, 3);
            }
            break;
    }
}

typedef enum {
    M_VALID, M_WRONG_FAMILY, M_NIL, M_OUT_OF_BOUNDS, M_TRUNCATED, M_EXTRA, M_MISSING,
    M_LYING_ARRAY, M_LYING_FIELD, M_TRAILING, M_MUTATIONS
} mutation_t;

//  A body with a valid signature, version and type whose fields are broken
//  as `mutation` says at field `target` (0 is the id)
static zframe_t *
s_signed_frame (int type, mutation_t mutation, int target, uint32_t variant)
{
    const char *names [16];
    int count = chorus_msg_type_fields (type, names, 16);
    assert (count >= 0);
    //  Fields at the end that may be left out (COMMAND's try): a body
    //  missing a field is missing one before them
    int tail = chorus_msg_type_tail (type);
    assert (tail >= 0 && tail <= count);
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    size_t elements = 4 + (size_t) count;
    if (mutation == M_EXTRA)
        elements++;
    else
    if (mutation == M_MISSING)
        elements -= 1 + (size_t) tail;     //  the trailing optional ones may go
    else
    if (mutation == M_LYING_ARRAY)
        elements += 1 + variant % 40;
    msgpack_pack_array (&pk, elements);
    msgpack_pack_uint64 (&pk, CHORUS_MSG_SIGNATURE);
    msgpack_pack_uint64 (&pk, CHORUS_MSG_VERSION);
    msgpack_pack_uint64 (&pk, (uint64_t) type);
    int packed = mutation == M_MISSING? count - tail: count + 1;
    for (int i = 0; i < packed; i++) {
        const field_t *field = s_field (i == 0? "id": names [i - 1]);
        assert (field);
        if (i != target)
            s_pack_valid (&pk, field);
        else
        if (mutation == M_WRONG_FAMILY)
            s_pack_wrong_family (&pk, field, variant);
        else
        if (mutation == M_NIL && field->required)
            msgpack_pack_nil (&pk);
        else
        if (mutation == M_NIL)
            s_pack_wrong_family (&pk, field, variant);
        else
        if (mutation == M_OUT_OF_BOUNDS)
            s_pack_out_of_bounds (&pk, field, variant);
        else
        if (mutation == M_LYING_FIELD) {
            //  A length or count far larger than what follows
            if (variant % 3 == 0)
                msgpack_pack_bin (&pk, 0x10000 + variant);
            else
            if (variant % 3 == 1)
                msgpack_pack_array (&pk, 0xFFFFFFFFu);
            else
                msgpack_pack_map (&pk, 0x7FFFFFFFu);
        }
        else
            s_pack_valid (&pk, field);
    }
    if (mutation == M_EXTRA)
        msgpack_pack_nil (&pk);
    size_t size = buffer.size;
    if (mutation == M_TRUNCATED && size > 1)
        size = 1 + variant % (size - 1);
    zframe_t *frame = zframe_new (NULL, size + (mutation == M_TRAILING? 1 + variant % 4: 0));
    memcpy (zframe_data (frame), buffer.data, size);
    if (mutation == M_TRAILING)
        for (size_t i = size; i < zframe_size (frame); i++)
            zframe_data (frame) [i] = (uint8_t) s_random ();
    msgpack_sbuffer_destroy (&buffer);
    return frame;
}

static bool
s_decodes (chorus_msg_t *scratch, zframe_t *frame)
{
    return chorus_msg_decode (scratch, zframe_data (frame), zframe_size (frame)) == 0;
}

//  --------------------------------------------------------------------------
//  The inbox (ROUTER) path

typedef zframe_t *(frame_fn) (int index);

static zframe_t *
s_next_random (int index)
{
    return s_random_frame ();
}

static zframe_t *
s_next_signed (int index)
{
    int type = 1 + index % CHORUS_MSG_TYPES;
    mutation_t mutation = (mutation_t) (1 + (index / CHORUS_MSG_TYPES) % (M_MUTATIONS - 1));
    const char *names [16];
    int count = chorus_msg_type_fields (type, names, 16);
    int target = (index / (CHORUS_MSG_TYPES * (M_MUTATIONS - 1))) % (count + 1);
    return s_signed_frame (type, mutation, target, s_random ());
}

//  Sends total garbage frames from make () on the fake peer's DEALER, in
//  chunks, waiting each time for the node to count them
static void
s_flood (fake_peer_t *fake, chorus_node_t *node, frame_fn *make, int total, const char *label)
{
    chorus_msg_t *scratch = chorus_msg_new (CHORUS_MSG_PING);
    uint64_t base = chorus_node_counter (node, "malformed");
    int made = 0, sent = 0, decodable = 0;
    uint64_t counted = base;
    while (sent < total) {
        for (int i = 0; i < CHUNK && sent < total; i++) {
            zframe_t *frame = make (made++);
            //  Garbage the codec accepts would not be garbage; it is not sent
            if (s_decodes (scratch, frame))
                decodable++;
            else {
                s_send_raw (fake->dealer, zframe_data (frame), zframe_size (frame), false);
                sent++;
            }
            zframe_destroy (&frame);
        }
        //  Keep the node's queue short, so that the fake's PONGs are never
        //  stuck behind garbage long enough for the node to expire it
        counted = s_wait_count (fake, node, "malformed", NULL, base + (uint64_t) sent);
        if (counted < base + (uint64_t) sent)
            break;      //  the node stopped counting: the assertion below fails
    }
    is_int (decodable, 0, "%s: every generated body is malformed by the codec's rules", label);
    is_int (counted - base, total, "%s: the node counted all %d as malformed", label, total);
    chorus_msg_destroy (&scratch);
}

//  Messages of more than one frame, from the known peer
static void
s_multiframe (fake_peer_t *fake, chorus_node_t *node)
{
    uint64_t base = chorus_node_counter (node, "malformed");
    chorus_msg_t *ping = fake_peer_msg (fake, CHORUS_MSG_PING);
    zframe_t *ping_body = chorus_msg_encode (ping);
    chorus_msg_t *event = fake_peer_event (fake, 50, "order.placed", "k", "inventory", 1, "p");
    zframe_t *event_body = chorus_msg_encode (event);
    int total = 0;
    for (int i = 0; i < 25; i++) {
        s_send_raw (fake->dealer, zframe_data (ping_body), zframe_size (ping_body), true);
        s_send_raw (fake->dealer, zframe_data (ping_body), zframe_size (ping_body), false);
        zframe_t *a = s_random_frame (), *b = s_random_frame ();
        s_send_raw (fake->dealer, zframe_data (a), zframe_size (a), true);
        s_send_raw (fake->dealer, zframe_data (b), zframe_size (b), false);
        zframe_destroy (&a);
        zframe_destroy (&b);
        s_send_raw (fake->dealer, zframe_data (event_body), zframe_size (event_body), true);
        s_send_raw (fake->dealer, "", 0, false);
        s_send_raw (fake->dealer, "", 0, true);
        s_send_raw (fake->dealer, zframe_data (ping_body), zframe_size (ping_body), true);
        s_send_raw (fake->dealer, zframe_data (event_body), zframe_size (event_body), false);
        total += 4;
    }
    uint64_t counted = s_wait_count (fake, node, "malformed", NULL, base + (uint64_t) total);
    is_int (counted - base, total, "the node counted all %d messages of 2 and 3 frames", total);
    zframe_destroy (&ping_body);
    zframe_destroy (&event_body);
    chorus_msg_destroy (&ping);
    chorus_msg_destroy (&event);
}

//  A DEALER with a routing id of our choice, connected to the node
static zsock_t *
s_stranger (const void *routing_id, size_t size, const char *endpoint)
{
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    zmq_setsockopt (zsock_resolve (dealer), ZMQ_ROUTING_ID, routing_id, size);
    zsock_set_linger (dealer, 0);
    zsock_set_sndhwm (dealer, 100000);
    zsock_connect (dealer, "%s", endpoint);
    return dealer;
}

//  Garbage and well-formed messages from routing ids that never said
//  HELLO: a wrong-form routing id, and a right-form one without HELLO
static void
s_strangers (fake_peer_t *fake, chorus_node_t *node)
{
    const char *endpoint = chorus_node_endpoint (node);
    uint8_t silent_id [17] = {0x01};
    zuuid_t *uuid = zuuid_new ();
    memcpy (silent_id + 1, zuuid_data (uuid), 16);
    char silent_instance [33];
    snprintf (silent_instance, sizeof (silent_instance), "%s", zuuid_str (uuid));
    zuuid_destroy (&uuid);
    zsock_t *strangers [3] = {
        s_stranger ("bogus-id", 8, endpoint),
        s_stranger ("\x07" "0123456789abcdef", 17, endpoint),
        s_stranger (silent_id, sizeof (silent_id), endpoint),
    };
    uint64_t malformed = chorus_node_counter (node, "malformed");
    uint64_t unknown = chorus_node_counter (node, "unknown_peer");
    int garbage = 0, wellformed = 0;
    for (int s = 0; s < 3; s++) {
        for (int i = 0; i < 100; i++) {
            zframe_t *frame = s_random_frame ();
            s_send_raw (strangers [s], zframe_data (frame), zframe_size (frame), false);
            zframe_destroy (&frame);
            garbage++;
        }
        //  Well-formed: PINGs, an event for the node's group, a command, and
        //  a HELLO that claims the fake peer's identity
        chorus_msg_t *msgs [4];
        msgs [0] = fake_peer_msg (fake, CHORUS_MSG_PING);
        msgs [1] = fake_peer_event (fake, 99, "order.placed", "k", "inventory", 1, "p");
        chorus_msg_set_instance (msgs [1], silent_instance);
        msgs [2] = fake_peer_command (fake, "inventory", "reserve", NULL,
                                      zclock_time () + 10000, NULL);
        msgs [3] = fake_peer_msg (fake, CHORUS_MSG_HELLO);
        chorus_msg_set_service (msgs [3], "orders");
        chorus_msg_set_instance (msgs [3], fake->instance);
        chorus_msg_set_endpoint (msgs [3], fake->endpoint);
        chorus_msg_set_pub_endpoint (msgs [3], fake->pub_endpoint);
        chorus_msg_set_generation (msgs [3], 1);
        for (int i = 0; i < 50; i++) {
            chorus_msg_send (msgs [0], strangers [s]);
            wellformed++;
        }
        for (int i = 1; i < 4; i++) {
            chorus_msg_send (msgs [i], strangers [s]);
            wellformed++;
            chorus_msg_destroy (&msgs [i]);
        }
        chorus_msg_destroy (&msgs [0]);
    }
    uint64_t target = malformed + unknown + (uint64_t) (garbage + wellformed);
    uint64_t counted = s_wait_count (fake, node, "malformed", "unknown_peer", target);
    is_int (counted - malformed - unknown, garbage + wellformed,
            "all %d messages from strangers were dropped and counted", garbage + wellformed);
    diag ("from strangers: malformed +%" PRIu64 ", unknown_peer +%" PRIu64,
          chorus_node_counter (node, "malformed") - malformed,
          chorus_node_counter (node, "unknown_peer") - unknown);
    ok (chorus_node_counter (node, "unknown_peer") - unknown >= (uint64_t) wellformed,
        "the %d well-formed ones count as from an unknown peer", wellformed);
    is_int (test_peers (node, NULL), 1, "the node still knows only the fake peer");
    for (int s = 0; s < 3; s++)
        zsock_destroy (&strangers [s]);
}

//  --------------------------------------------------------------------------
//  The PUB/SUB path

//  Publishes seq 1 until the node's observer has it: SUB joins late, and
//  what a PUB sends before the subscription arrives is lost
static bool
s_observer_joined (fake_peer_t *fake, chorus_node_t *node, state_t *state, chorus_msg_t *event)
{
    seen_t seen = {state, chorus_msg_seq (event)};
    for (int64_t end = zclock_mono () + 5000; zclock_mono () < end;) {
        fake_peer_publish (fake, event);
        if (fake_peer_wait (fake, node, s_observed_seq, &seen, 50))
            return true;
    }
    return false;
}

static void
s_pub_garbage (fake_peer_t *fake, chorus_node_t *node, state_t *state)
{
    uint64_t base = chorus_node_counter (node, "malformed");
    zsock_t *pub = fake->pub;
    int total = 0;
    //  Random single frames (no body) and random topic + body pairs
    for (int i = 0; i < 200; i++) {
        zframe_t *a = s_random_frame ();
        if (i % 2) {
            s_send_raw (pub, zframe_data (a), zframe_size (a), false);
        }
        else {
            zframe_t *b = s_random_frame ();
            s_send_raw (pub, zframe_data (a), zframe_size (a), true);
            s_send_raw (pub, zframe_data (b), zframe_size (b), false);
            zframe_destroy (&b);
        }
        zframe_destroy (&a);
        total++;
    }
    //  Valid EVENT bodies under a topic frame that is not theirs
    chorus_msg_t *other = fake_peer_event (fake, 1, "order.other", "k", NULL, 0, "p");
    zframe_t *other_body = chorus_msg_encode (other);
    for (int i = 0; i < 50; i++) {
        s_send_raw (pub, "order.placed", 12, true);
        s_send_raw (pub, zframe_data (other_body), zframe_size (other_body), false);
        total++;
    }
    //  Bodies that are not EVENTs: a PING, and an EVENT-ACK
    chorus_msg_t *ping = fake_peer_msg (fake, CHORUS_MSG_PING);
    zframe_t *ping_body = chorus_msg_encode (ping);
    chorus_msg_t *ack = fake_peer_msg (fake, CHORUS_MSG_EVENT_ACK);
    chorus_msg_set_group (ack, "inventory");
    chorus_msg_set_seq (ack, 1);
    zframe_t *ack_body = chorus_msg_encode (ack);
    for (int i = 0; i < 50; i++) {
        zframe_t *body = i % 2? ping_body: ack_body;
        s_send_raw (pub, "order.placed", 12, true);
        s_send_raw (pub, zframe_data (body), zframe_size (body), false);
        total++;
    }
    //  A right topic and body with a third frame
    chorus_msg_t *placed = fake_peer_event (fake, 1, "order.placed", "k", NULL, 0, "p");
    zframe_t *placed_body = chorus_msg_encode (placed);
    for (int i = 0; i < 20; i++) {
        s_send_raw (pub, "order.placed", 12, true);
        s_send_raw (pub, zframe_data (placed_body), zframe_size (placed_body), true);
        s_send_raw (pub, "", 0, false);
        total++;
    }
    uint64_t counted = s_wait_count (fake, node, "malformed", NULL, base + (uint64_t) total);
    is_int (counted - base, total, "the observer counted all %d bad PUB messages as malformed",
            total);
    is_int (state->observed, 1, "the observer delivered none of them");
    zframe_destroy (&other_body);
    zframe_destroy (&ping_body);
    zframe_destroy (&ack_body);
    zframe_destroy (&placed_body);
    chorus_msg_destroy (&other);
    chorus_msg_destroy (&ping);
    chorus_msg_destroy (&ack);
    chorus_msg_destroy (&placed);
}

int
main (void)
{
    state_t state = {0, 0, 0, 0};
    chorus_node_t *node = test_node ("inventory", NULL, NULL);
    chorus_node_observe (node, "", true, s_on_observed, &state);
    chorus_node_subscribe (node, "order.", s_on_event, &state);
    chorus_node_handle (node, "reserve", s_on_reserve, &state);
    if (chorus_node_start (node))
        bail_out ("the inventory node does not start");
    fake_peer_t *fake = fake_peer_new ("orders");
    if (!fake)
        bail_out ("the fake peer cannot bind");
    if (!ok (fake_peer_meet (fake, node, 5000) == 0, "the fake peer and the node exchange HELLO"))
        bail_out ("no HELLO from the node");

    //  The codec's own rules first: the hand-built bodies are valid when
    //  left alone, so each mutation is what makes them garbage
    chorus_msg_t *scratch = chorus_msg_new (CHORUS_MSG_PING);
    int valid = 0;
    for (int type = 1; type <= CHORUS_MSG_TYPES; type++) {
        zframe_t *frame = s_signed_frame (type, M_VALID, -1, 0);
        if (s_decodes (scratch, frame))
            valid++;
        else
            diag ("%s: %s", chorus_msg_type_name (type), chorus_msg_reason (scratch));
        zframe_destroy (&frame);
    }
    is_int (valid, CHORUS_MSG_TYPES, "hand-built bodies of all %d types decode unmutated",
            CHORUS_MSG_TYPES);
    chorus_msg_destroy (&scratch);

    //  The inbox: garbage from the known peer, then from strangers
    s_flood (fake, node, s_next_random, RANDOM_BODIES, "random bytes");
    s_flood (fake, node, s_next_signed, SIGNED_BODIES, "well-signed garbage");
    s_multiframe (fake, node);
    is_int (test_peers (node, "orders"), 1, "the fake peer is still a live peer of the node");
    s_strangers (fake, node);

    //  The observer's SUB: once it is surely connected, garbage on PUB
    chorus_msg_t *first = fake_peer_event (fake, 1, "order.placed", "k1", NULL, 0, "p1");
    if (!ok (s_observer_joined (fake, node, &state, first), "the observer sees seq 1 on PUB"))
        bail_out ("the observer never joined the fake peer's PUB");
    is_int (state.observed, 1, "seq 1 was observed once, however often it was sent");
    s_pub_garbage (fake, node, &state);

    //  An EVENT with group set is a group delivery: on SUB it is malformed.
    //  Seq 1 is seen already, so nothing else depends on how it is treated;
    //  seq 2 on PUB after it tells when the node has read it.
    uint64_t base = chorus_node_counter (node, "malformed");
    chorus_msg_set_group (first, "inventory");
    chorus_msg_set_attempt (first, 1);
    fake_peer_publish (fake, first);
    chorus_msg_t *second = fake_peer_event (fake, 2, "order.placed", "k2", NULL, 0, "p2");
    fake_peer_publish (fake, second);
    seen_t seen = {&state, 2};
    ok (fake_peer_wait (fake, node, s_observed_seq, &seen, 5000),
        "after the garbage the observer sees seq 2 on PUB");
    is_int (state.observed, 2, "the observer has delivered 2 events in all");
    is_int (chorus_node_counter (node, "malformed") - base, 1,
            "an EVENT with group set on SUB is dropped and counted as malformed");

    //  The node still works: a group delivery, then a command
    chorus_msg_set_group (second, "inventory");
    chorus_msg_set_attempt (second, 1);
    fake_peer_send (fake, second);
    chorus_msg_t *ack = fake_peer_recv (fake, node, CHORUS_MSG_EVENT_ACK, NULL, 5000);
    ok (ack != NULL, "a valid EVENT for the group is acknowledged");
    is_int (ack? (int64_t) chorus_msg_status (ack): -1, CHORUS_ACK_HANDLED, "as handled");
    is_int (ack? (int64_t) chorus_msg_seq (ack): -1, 2, "for seq 2");
    is_int (state.events, 1, "the group handler ran once in the whole test");
    chorus_msg_destroy (&ack);

    chorus_msg_t *command = fake_peer_command (fake, "inventory", "reserve", "flow-9/reserve",
                                               zclock_time () + 10000, NULL);
    fake_peer_send (fake, command);
    chorus_msg_t *reply =
        fake_peer_recv (fake, node, CHORUS_MSG_REPLY, chorus_msg_id (command), 5000);
    ok (reply != NULL, "a COMMAND gets its REPLY");
    is_int (reply? (int64_t) chorus_msg_status (reply): -1, CHORUS_REPLY_OK, "status ok");
    ok (fake_peer_payload_is (reply, "reserved"), "with the handler's payload");
    is_int (state.commands, 1, "the command handler ran once in the whole test");
    is_int (fake->malformed, 0, "everything the node sent the fake peer decoded");
    chorus_msg_destroy (&reply);
    chorus_msg_destroy (&command);
    chorus_msg_destroy (&first);
    chorus_msg_destroy (&second);

    chorus_node_destroy (&node);
    ok (node == NULL, "the node is destroyed cleanly");
    fake_peer_destroy (&fake);
    return done_testing ();
}
