/*  test_codec_rejects_malformed.c — the decoder refuses every kind of bad
    body with CHORUS_MSG_MALFORMED and a reason, and never crashes: every
    truncation point, wrong signature, version and type, wrong element
    counts, wrong field types, oversized strings, lists, maps and payloads,
    nesting beyond the limit, trailing bytes, lying counts and random bytes.
*/
#include "codec_fixtures.h"
#include "tap.h"

#include <msgpack.h>

//  What the test knows of each field's wire form, independently of the codec
typedef struct {
    const char *name;   //  field name
    char kind;          //  s string, n name, u uint, b bool, p bin, l list, q uint list,
                        //  S subs, m map
    size_t max;         //  limit
} field_t;

static const field_t s_known [] = {
    {"service", 'n', 64}, {"instance", 'n', 64}, {"endpoint", 's', 256},
    {"pub_endpoint", 's', 256}, {"topic", 'n', 256}, {"key", 's', 256},
    {"correlation", 's', 128}, {"causation", 's', 128}, {"group", 'n', 64},
    {"prefix", 'n', 256}, {"request", 's', 64}, {"message", 's', 4096},
    {"name", 'n', 128}, {"idempotency", 's', 256}, {"code", 's', 64}, {"target", 'n', 64},
    {"generation", 'u', 0}, {"head", 'u', 0}, {"seq", 'u', 0}, {"timestamp", 'u', 0},
    {"attempt", 'u', 0}, {"status", 'u', 0}, {"from", 'u', 0}, {"to", 'u', 0},
    {"limit", 'u', 0}, {"deadline", 'u', 0}, {"try", 'u', 0}, {"retryable", 'b', 0},
    {"payload", 'p', CHORUS_MSG_MAX_PAYLOAD}, {"peers", 'l', 256}, {"members", 'l', 256},
    {"topics", 'l', 256}, {"seqs", 'q', CHORUS_MSG_MAX_SEQS},
    {"subscriptions", 'S', 256}, {"headers", 'm', 32},
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

//  Packs a string of `size` copies of 'a'
static void
s_pack_long_str (msgpack_packer *pk, size_t size)
{
    char *value = (char *) malloc (size + 1);
    memset (value, 'a', size);
    s_pack_str (pk, value, size);
    free (value);
}

//  Packs a valid value for a field
static void
s_pack_valid (msgpack_packer *pk, const field_t *field)
{
    switch (field->kind) {
        case 's': case 'n': s_pack_str (pk, "x", 1); break;
        case 'u': msgpack_pack_uint64 (pk, 7); break;
        case 'b': msgpack_pack_false (pk); break;
        case 'p': msgpack_pack_bin (pk, 1); msgpack_pack_bin_body (pk, "z", 1); break;
        case 'l': msgpack_pack_array (pk, 1); s_pack_str (pk, "tcp://a:1", 9); break;
        case 'q': msgpack_pack_array (pk, 2); msgpack_pack_uint64 (pk, 8);
                  msgpack_pack_uint64 (pk, 9); break;
        case 'S':
            msgpack_pack_array (pk, 1);
            msgpack_pack_array (pk, 3);
            s_pack_str (pk, "a.", 2);
            msgpack_pack_uint64 (pk, 0);
            msgpack_pack_uint64 (pk, 1);
            break;
        case 'm': msgpack_pack_map (pk, 1); s_pack_str (pk, "k", 1); s_pack_str (pk, "v", 1); break;
    }
}

//  Packs a value of the wrong MessagePack type for a field
static void
s_pack_wrong_type (msgpack_packer *pk, const field_t *field)
{
    switch (field->kind) {
        case 's': case 'n': msgpack_pack_bin (pk, 1); msgpack_pack_bin_body (pk, "x", 1); break;
        case 'u': msgpack_pack_int64 (pk, -1); break;
        case 'b': msgpack_pack_uint64 (pk, 1); break;
        case 'p': s_pack_str (pk, "z", 1); break;
        case 'l': msgpack_pack_array (pk, 1); msgpack_pack_uint64 (pk, 1); break;
        case 'q': msgpack_pack_array (pk, 2); msgpack_pack_uint64 (pk, 1);
                  msgpack_pack_int64 (pk, -1); break;
        case 'S': msgpack_pack_array (pk, 1); msgpack_pack_array (pk, 2);
                  s_pack_str (pk, "a", 1); msgpack_pack_uint64 (pk, 0); break;
        case 'm': msgpack_pack_map (pk, 1); s_pack_str (pk, "k", 1); msgpack_pack_uint64 (pk, 1);
                  break;
    }
}

//  Packs a value one past the field's limit; false if the field has none
static bool
s_pack_oversized (msgpack_packer *pk, const field_t *field)
{
    switch (field->kind) {
        case 's': case 'n': s_pack_long_str (pk, field->max + 1); return true;
        case 'p': {
            char *data = (char *) calloc (1, field->max + 1);
            msgpack_pack_bin (pk, field->max + 1);
            msgpack_pack_bin_body (pk, data, field->max + 1);
            free (data);
            return true;
        }
        case 'l':
            msgpack_pack_array (pk, field->max + 1);
            for (size_t i = 0; i <= field->max; i++)
                s_pack_str (pk, "tcp://a:1", 9);
            return true;
        case 'q':
            msgpack_pack_array (pk, field->max + 1);
            for (size_t i = 0; i <= field->max; i++)
                msgpack_pack_uint64 (pk, i);
            return true;
        case 'S':
            msgpack_pack_array (pk, field->max + 1);
            for (size_t i = 0; i <= field->max; i++) {
                msgpack_pack_array (pk, 3);
                s_pack_str (pk, "a", 1);
                msgpack_pack_uint64 (pk, 0);
                msgpack_pack_uint64 (pk, 0);
            }
            return true;
        case 'm':
            msgpack_pack_map (pk, field->max + 1);
            for (size_t i = 0; i <= field->max; i++) {
                char name [16];
                snprintf (name, sizeof (name), "h%zu", i);
                s_pack_str (pk, name, strlen (name));
                s_pack_str (pk, "v", 1);
            }
            return true;
        default:
            return false;
    }
}

typedef enum { VALID, WRONG_TYPE, OVERSIZED, AT_LIMIT } mode_t_;

//  Builds a body of `type` whose field at `target` is packed in `mode`
//  (every other field valid). `extra` adds elements, negative removes.
static zframe_t *
s_build (int type, int target, mode_t_ mode, int extra)
{
    const char *names [16];
    int count = chorus_msg_type_fields (type, names, 16);
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    msgpack_pack_array (&pk, 4 + count + extra);
    msgpack_pack_uint64 (&pk, CHORUS_MSG_SIGNATURE);
    msgpack_pack_uint64 (&pk, CHORUS_MSG_VERSION);
    msgpack_pack_uint64 (&pk, type);
    s_pack_str (&pk, "id-1", 4);
    for (int i = 0; i < count + (extra < 0? extra: 0); i++) {
        const field_t *field = s_field (names [i]);
        assert (field);
        if (i == target && mode == WRONG_TYPE)
            s_pack_wrong_type (&pk, field);
        else
        if (i == target && mode == OVERSIZED)
            s_pack_oversized (&pk, field);
        else
        if (i == target && mode == AT_LIMIT && (field->kind == 's' || field->kind == 'n'))
            s_pack_long_str (&pk, field->max);
        else
            s_pack_valid (&pk, field);
    }
    for (int i = 0; i < extra; i++)
        msgpack_pack_nil (&pk);
    zframe_t *frame = zframe_new (buffer.data, buffer.size);
    msgpack_sbuffer_destroy (&buffer);
    return frame;
}

static int
s_decode (chorus_msg_t *msg, zframe_t *frame)
{
    return chorus_msg_decode (msg, zframe_data (frame), zframe_size (frame));
}

static void
s_check_truncations (chorus_msg_t *msg)
{
    for (int type = 1; type <= CHORUS_MSG_TYPES; type++) {
        chorus_msg_t *full = chorus_msg_new (type);
        fixture_fill_all (full);
        zframe_t *frame = chorus_msg_encode (full);
        size_t size = zframe_size (frame);
        size_t rejected = 0;
        for (size_t cut = 0; cut < size; cut++) {
            //  A heap copy of exactly `cut` bytes, so ASan sees any overread
            uint8_t *copy = (uint8_t *) malloc (cut? cut: 1);
            memcpy (copy, zframe_data (frame), cut);
            if (chorus_msg_decode (msg, copy, cut) == CHORUS_MSG_MALFORMED)
                rejected++;
            free (copy);
        }
        is_int (rejected, size, "%s: all %zu truncation points are malformed",
                chorus_msg_type_name (type), size);
        //  And one extra byte is trailing garbage
        zframe_t *longer = zframe_new (NULL, size + 1);
        memcpy (zframe_data (longer), zframe_data (frame), size);
        is_int (s_decode (msg, longer), CHORUS_MSG_MALFORMED, "%s: trailing byte is malformed",
                chorus_msg_type_name (type));
        zframe_destroy (&longer);
        zframe_destroy (&frame);
        chorus_msg_destroy (&full);
    }
}

static void
s_check_fields (chorus_msg_t *msg)
{
    for (int type = 1; type <= CHORUS_MSG_TYPES; type++) {
        const char *name = chorus_msg_type_name (type);
        const char *names [16];
        int count = chorus_msg_type_fields (type, names, 16);
        zframe_t *frame = s_build (type, -1, VALID, 0);
        if (!is_int (s_decode (msg, frame), 0, "%s: hand-built valid body decodes", name))
            diag ("reason: %s", chorus_msg_reason (msg));
        zframe_destroy (&frame);
        frame = s_build (type, -1, VALID, 1);
        is_int (s_decode (msg, frame), CHORUS_MSG_MALFORMED, "%s: one element too many", name);
        zframe_destroy (&frame);
        int tail = chorus_msg_type_tail (type);
        if (tail > 0) {
            //  Trailing fields may be left out, and then read as absent
            frame = s_build (type, -1, VALID, -tail);
            if (!is_int (s_decode (msg, frame), 0, "%s: without its %d trailing field%s",
                         name, tail, tail > 1? "s": ""))
                diag ("reason: %s", chorus_msg_reason (msg));
            if (type == CHORUS_MSG_COMMAND)
                is_int ((int) chorus_msg_try (msg), 0, "%s: try left out reads as absent", name);
            zframe_destroy (&frame);
        }
        if (count > tail) {
            frame = s_build (type, -1, VALID, -1 - tail);
            is_int (s_decode (msg, frame), CHORUS_MSG_MALFORMED, "%s: one element too few", name);
            zframe_destroy (&frame);
        }
        int wrong = 0, oversized = 0, oversized_rejected = 0, at_limit = 0, at_limit_ok = 0;
        for (int i = 0; i < count; i++) {
            frame = s_build (type, i, WRONG_TYPE, 0);
            if (s_decode (msg, frame) == CHORUS_MSG_MALFORMED)
                wrong++;
            else
                diag ("%s field %s: wrong type accepted", name, names [i]);
            zframe_destroy (&frame);
            const field_t *field = s_field (names [i]);
            if (field->kind != 'u' && field->kind != 'b') {
                oversized++;
                frame = s_build (type, i, OVERSIZED, 0);
                if (s_decode (msg, frame) == CHORUS_MSG_MALFORMED)
                    oversized_rejected++;
                else
                    diag ("%s field %s: oversized accepted", name, names [i]);
                zframe_destroy (&frame);
            }
            if (field->kind == 's' || field->kind == 'n') {
                at_limit++;
                frame = s_build (type, i, AT_LIMIT, 0);
                if (s_decode (msg, frame) == 0)
                    at_limit_ok++;
                else
                    diag ("%s field %s at its limit: %s", name, names [i], chorus_msg_reason (msg));
                zframe_destroy (&frame);
            }
        }
        is_int (wrong, count, "%s: a wrong type in each of %d fields is malformed", name, count);
        is_int (oversized_rejected, oversized, "%s: each of %d sized fields one past its limit "
                "is malformed", name, oversized);
        is_int (at_limit_ok, at_limit, "%s: each of %d strings exactly at its limit decodes",
                name, at_limit);
    }
}

//  Builds a PING body by hand with the given header values
static zframe_t *
s_ping (uint64_t signature, uint64_t version, uint64_t type, const char *id)
{
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    msgpack_pack_array (&pk, 5);
    msgpack_pack_uint64 (&pk, signature);
    msgpack_pack_uint64 (&pk, version);
    msgpack_pack_uint64 (&pk, type);
    if (id)
        s_pack_str (&pk, id, strlen (id));
    else
        msgpack_pack_nil (&pk);
    msgpack_pack_uint64 (&pk, 1);
    zframe_t *frame = zframe_new (buffer.data, buffer.size);
    msgpack_sbuffer_destroy (&buffer);
    return frame;
}

static void
s_expect (chorus_msg_t *msg, zframe_t *frame, const char *reason_part, const char *label)
{
    int rc = s_decode (msg, frame);
    is_int (rc, CHORUS_MSG_MALFORMED, "%s is malformed", label);
    if (!ok (strstr (chorus_msg_reason (msg), reason_part) != NULL,
             "%s: reason says '%s'", label, reason_part))
        diag ("reason: %s", chorus_msg_reason (msg));
    zframe_destroy (&frame);
}

static zframe_t *
s_bytes (const char *data, size_t size)
{
    return zframe_new (data, size);
}

static void
s_check_headers_and_bounds (chorus_msg_t *msg)
{
    zframe_t *frame = s_ping (CHORUS_MSG_SIGNATURE, CHORUS_MSG_VERSION, CHORUS_MSG_PING, "p");
    is_int (s_decode (msg, frame), 0, "hand-built PING decodes");
    zframe_destroy (&frame);
    s_expect (msg, s_ping (0xAAA1, 1, 2, "p"), "signature", "wrong signature");
    s_expect (msg, s_ping (CHORUS_MSG_SIGNATURE, 2, 2, "p"), "version", "version 2");
    s_expect (msg, s_ping (CHORUS_MSG_SIGNATURE, 1, 0, "p"), "type", "type 0");
    s_expect (msg, s_ping (CHORUS_MSG_SIGNATURE, 1, 15, "p"), "type", "type 15");
    s_expect (msg, s_ping (CHORUS_MSG_SIGNATURE, 1, 2, NULL), "id", "nil id");
    s_expect (msg, s_ping (CHORUS_MSG_SIGNATURE, 1, 2, ""), "id", "empty id");

    //  Not an array; empty; lying counts; reserved byte
    s_expect (msg, s_bytes ("\xa3" "abc", 4), "array", "a string body");
    s_expect (msg, s_bytes ("", 0), "truncated", "an empty frame");
    s_expect (msg, s_bytes ("\xdd\xff\xff\xff\xff", 5), "count", "array32 of 4G elements");
    s_expect (msg, s_bytes ("\xdf\x10\x00\x00\x00\x01", 6), "count", "map32 of 256M pairs");
    s_expect (msg, s_bytes ("\x95\xc1\x01\x02\x01\x01", 6), "0xc1", "reserved byte 0xc1");
    s_expect (msg, s_bytes ("\xdb\xff\xff\xff\xff" "ab", 7), "truncated", "str32 of 4 GiB");

    //  Nesting: a fifth level inside a subscription, and a deep tower
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    msgpack_pack_array (&pk, 14);
    msgpack_pack_uint64 (&pk, CHORUS_MSG_SIGNATURE);
    msgpack_pack_uint64 (&pk, 1);
    msgpack_pack_uint64 (&pk, CHORUS_MSG_HELLO);
    s_pack_str (&pk, "h", 1);
    s_pack_str (&pk, "svc", 3);
    s_pack_str (&pk, "inst", 4);
    s_pack_str (&pk, "tcp://a:1", 9);
    s_pack_str (&pk, "tcp://a:2", 9);
    msgpack_pack_uint64 (&pk, 1);
    msgpack_pack_uint64 (&pk, 1);
    msgpack_pack_array (&pk, 0);
    msgpack_pack_array (&pk, 1);
    msgpack_pack_array (&pk, 3);
    msgpack_pack_array (&pk, 1);        //  prefix is an array: depth 4
    s_pack_str (&pk, "a", 1);
    msgpack_pack_uint64 (&pk, 0);
    msgpack_pack_uint64 (&pk, 0);
    msgpack_pack_array (&pk, 0);
    msgpack_pack_nil (&pk);
    s_expect (msg, zframe_new (buffer.data, buffer.size), "nesting", "depth 4 in a subscription");
    msgpack_sbuffer_destroy (&buffer);

    size_t depth = 100000;
    char *tower = (char *) malloc (depth);
    memset (tower, 0x91, depth);        //  array of one array of one ...
    s_expect (msg, s_bytes (tower, depth), "nesting", "100000 nested arrays");
    free (tower);

    //  Size limit of the whole body, checked before anything is parsed
    size_t size = CHORUS_MSG_MAX_BODY + 1;
    char *huge = (char *) calloc (1, size);
    s_expect (msg, s_bytes (huge, size), "limit", "a body over 2 MiB");
    free (huge);

    //  Names must be printable ASCII; strings must hold no NUL
    chorus_msg_t *event = chorus_msg_new (CHORUS_MSG_EVENT);
    fixture_fill_all (event);
    chorus_msg_set_topic (event, "order\x7f");
    ok (chorus_msg_encode (event) == NULL, "a DEL in a topic is refused by encode");
    chorus_msg_destroy (&event);
    msgpack_sbuffer_init (&buffer);
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    msgpack_pack_array (&pk, 5);
    msgpack_pack_uint64 (&pk, CHORUS_MSG_SIGNATURE);
    msgpack_pack_uint64 (&pk, 1);
    msgpack_pack_uint64 (&pk, CHORUS_MSG_PING);
    s_pack_str (&pk, "a\0b", 3);
    msgpack_pack_uint64 (&pk, 0);
    s_expect (msg, zframe_new (buffer.data, buffer.size), "NUL", "a NUL inside the id");
    msgpack_sbuffer_destroy (&buffer);

    //  Duplicate header names
    msgpack_sbuffer_init (&buffer);
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    msgpack_pack_array (&pk, 14);
    msgpack_pack_uint64 (&pk, CHORUS_MSG_SIGNATURE);
    msgpack_pack_uint64 (&pk, 1);
    msgpack_pack_uint64 (&pk, CHORUS_MSG_HELLO);
    s_pack_str (&pk, "h", 1);
    s_pack_str (&pk, "svc", 3);
    s_pack_str (&pk, "inst", 4);
    s_pack_str (&pk, "tcp://a:1", 9);
    s_pack_str (&pk, "tcp://a:2", 9);
    msgpack_pack_uint64 (&pk, 1);
    msgpack_pack_uint64 (&pk, 1);
    msgpack_pack_array (&pk, 0);
    msgpack_pack_array (&pk, 0);
    msgpack_pack_array (&pk, 0);
    msgpack_pack_map (&pk, 2);
    s_pack_str (&pk, "k", 1);
    s_pack_str (&pk, "1", 1);
    s_pack_str (&pk, "k", 1);
    s_pack_str (&pk, "2", 1);
    s_expect (msg, zframe_new (buffer.data, buffer.size), "duplicate", "a header given twice");
    msgpack_sbuffer_destroy (&buffer);
}

static void
s_check_random (chorus_msg_t *msg)
{
    //  Random bytes, and valid bodies with random bytes flipped: any result
    //  is fine as long as it is 0 or MALFORMED and nothing crashes.
    unsigned int seed = 42;
    int bad = 0, decoded = 0;
    chorus_msg_t *event = chorus_msg_new (CHORUS_MSG_EVENT);
    fixture_fill_all (event);
    zframe_t *valid = chorus_msg_encode (event);
    for (int round = 0; round < 20000; round++) {
        size_t size;
        uint8_t *data;
        if (round % 2) {
            size = rand_r (&seed) % 200;
            data = (uint8_t *) malloc (size? size: 1);
            for (size_t i = 0; i < size; i++)
                data [i] = (uint8_t) rand_r (&seed);
        }
        else {
            size = zframe_size (valid);
            data = (uint8_t *) malloc (size);
            memcpy (data, zframe_data (valid), size);
            for (int flips = 1 + rand_r (&seed) % 3; flips; flips--)
                data [rand_r (&seed) % size] = (uint8_t) rand_r (&seed);
        }
        int rc = chorus_msg_decode (msg, data, size);
        if (rc == 0)
            decoded++;
        else
        if (rc != CHORUS_MSG_MALFORMED)
            bad++;
        free (data);
    }
    is_int (bad, 0, "20000 random and corrupted bodies give only 0 or MALFORMED (%d decoded)",
            decoded);
    zframe_destroy (&valid);
    chorus_msg_destroy (&event);
}

int
main (void)
{
    chorus_msg_t *msg = chorus_msg_new (CHORUS_MSG_PING);
    s_check_truncations (msg);
    s_check_fields (msg);
    s_check_headers_and_bounds (msg);
    s_check_random (msg);
    chorus_msg_destroy (&msg);
    return done_testing ();
}
