/*  test_codec_round_trip.c — every message type survives encode and decode,
    with every field set and with the optional ones absent, as a bare frame
    and over real ROUTER/DEALER and PUB/SUB sockets.
*/
#include "codec_fixtures.h"
#include "tap.h"

//  Encodes msg, decodes the bytes into a new message and checks every field
//  of the type, then that re-encoding gives the same bytes.
static void
s_check_round_trip (chorus_msg_t *msg, const char *label)
{
    const char *name = chorus_msg_command (msg);
    zframe_t *frame = chorus_msg_encode (msg);
    if (!ok (frame != NULL, "%s %s: encodes", name, label))
        diag ("reason: %s", chorus_msg_reason (msg));
    if (!frame)
        return;
    chorus_msg_t *copy = chorus_msg_new (CHORUS_MSG_PING);
    int rc = chorus_msg_decode (copy, zframe_data (frame), zframe_size (frame));
    if (!is_int (rc, 0, "%s %s: decodes", name, label))
        diag ("reason: %s", chorus_msg_reason (copy));
    is_int (chorus_msg_type (copy), chorus_msg_type (msg), "%s %s: type kept", name, label);
    is_str (chorus_msg_id (copy), chorus_msg_id (msg), "%s %s: id kept", name, label);

    const char *fields [16];
    int count = chorus_msg_type_fields (chorus_msg_type (msg), fields, 16);
    int same = 0;
    for (int i = 0; i < count; i++) {
        int rc = fixture_same_field (msg, copy, fields [i]);
        if (rc == 1)
            same++;
        else
            diag ("field %s differs (%d)", fields [i], rc);
    }
    is_int (same, count, "%s %s: all %d fields equal", name, label, count);

    zframe_t *again = chorus_msg_encode (copy);
    ok (again && zframe_eq (frame, again), "%s %s: re-encoding is byte-identical", name, label);
    zframe_destroy (&again);
    zframe_destroy (&frame);
    chorus_msg_destroy (&copy);
}

static void
s_check_optional_absent (int type)
{
    chorus_msg_t *msg = chorus_msg_new (type);
    fixture_fill_required (msg);
    zframe_t *frame = chorus_msg_encode (msg);
    chorus_msg_t *copy = chorus_msg_new (type);
    ok (frame && chorus_msg_decode (copy, zframe_data (frame), zframe_size (frame)) == 0,
        "%s with optional fields absent decodes", chorus_msg_type_name (type));
    bool absent = !chorus_msg_key (copy) && !chorus_msg_causation (copy)
               && !chorus_msg_payload (copy) && !chorus_msg_headers (copy)
               && !chorus_msg_message (copy) && !chorus_msg_idempotency (copy)
               && !chorus_msg_prefix (copy);
    if (type != CHORUS_MSG_EVENT && type != CHORUS_MSG_TRUNCATED)
        absent = absent && (type == CHORUS_MSG_EVENT_ACK || !chorus_msg_group (copy));
    ok (absent, "%s: absent optional fields read back as absent", chorus_msg_type_name (type));
    zframe_destroy (&frame);
    chorus_msg_destroy (&copy);
    chorus_msg_destroy (&msg);
}

//  How many elements msg encodes into (a fixarray), or -1 if it does not
static int
s_elements (chorus_msg_t *msg)
{
    zframe_t *frame = chorus_msg_encode (msg);
    int count = frame && (zframe_data (frame) [0] & 0xf0) == 0x90?
                zframe_data (frame) [0] & 0x0f: -1;
    zframe_destroy (&frame);
    return count;
}

//  COMMAND's trailing `try`: left out when 1, so that nodes that predate
//  it read the COMMAND (14 elements); sent when higher (15)
static void
s_check_command_try (void)
{
    for (uint64_t value = 0; value <= 2; value++) {
        chorus_msg_t *msg = chorus_msg_new (CHORUS_MSG_COMMAND);
        fixture_fill_required (msg);
        chorus_msg_set_try (msg, value);
        is_int (s_elements (msg), value <= 1? 14: 15, "COMMAND with try %d has %d elements",
                (int) value, value <= 1? 14: 15);
        zframe_t *frame = chorus_msg_encode (msg);
        chorus_msg_t *copy = chorus_msg_new (CHORUS_MSG_PING);
        is_int (chorus_msg_decode (copy, zframe_data (frame), zframe_size (frame)), 0,
                "COMMAND with try %d decodes", (int) value);
        is_int ((int) chorus_msg_try (copy), value <= 1? 0: 2,
                "COMMAND with try %d: try reads back (0: left out)", (int) value);
        chorus_msg_destroy (&copy);
        zframe_destroy (&frame);
        chorus_msg_destroy (&msg);
    }
}

//  EVENT-ACK's trailing `seqs`: left out when empty, so that nodes that
//  predate it read the EVENT-ACK (7 elements); up to 1024 seqs (8)
static void
s_check_ack_seqs (void)
{
    chorus_msg_t *msg = chorus_msg_new (CHORUS_MSG_EVENT_ACK);
    fixture_fill_required (msg);
    is_int (s_elements (msg), 7, "EVENT-ACK without seqs has 7 elements");
    for (uint64_t i = 0; i < CHORUS_MSG_MAX_SEQS; i++)
        chorus_msg_add_seq (msg, (1ull << 32) + i);
    is_int (s_elements (msg), 8, "EVENT-ACK with 1024 seqs has 8 elements");
    zframe_t *frame = chorus_msg_encode (msg);
    chorus_msg_t *copy = chorus_msg_new (CHORUS_MSG_PING);
    is_int (frame? chorus_msg_decode (copy, zframe_data (frame), zframe_size (frame)): -1, 0,
            "and decodes");
    const uint64_t *seqs;
    size_t count = chorus_msg_seqs (copy, &seqs);
    ok (count == CHORUS_MSG_MAX_SEQS && seqs [0] == 1ull << 32
        && seqs [count - 1] == (1ull << 32) + count - 1, "its seqs read back in order (%zu)",
        count);
    zframe_destroy (&frame);
    chorus_msg_add_seq (msg, 7);
    ok (chorus_msg_encode (msg) == NULL, "encode refuses 1025 seqs");
    chorus_msg_clear_seqs (msg);
    is_int (s_elements (msg), 7, "cleared, the seqs are left out again");
    chorus_msg_destroy (&copy);
    chorus_msg_destroy (&msg);
}

//  The peek a publisher's delivery reads its stored events with: the
//  fields it needs from our own encoding, and nothing from a body that is
//  not one whole EVENT in that layout
static void
s_check_event_peek (void)
{
    chorus_msg_t *msg = chorus_msg_new (CHORUS_MSG_EVENT);
    fixture_fill_all (msg);
    zframe_t *frame = chorus_msg_encode (msg);
    chorus_msg_peek_t peek;
    is_int (chorus_msg_event_peek (zframe_data (frame), zframe_size (frame), &peek), 0,
            "an EVENT as we encode it is peeked");
    ok (peek.seq == chorus_msg_seq (msg) && peek.timestamp == chorus_msg_timestamp (msg)
        && peek.topic_size == strlen (chorus_msg_topic (msg))
        && memcmp (peek.topic, chorus_msg_topic (msg), peek.topic_size) == 0
        && peek.key_size == strlen (chorus_msg_key (msg))
        && memcmp (peek.key, chorus_msg_key (msg), peek.key_size) == 0,
        "the peek reads its seq, timestamp, topic and key");
    //  The payload (after every field the peek reads) cut short, or a byte
    //  after the body: not an EVENT
    is_int (chorus_msg_event_peek (zframe_data (frame), zframe_size (frame) - 1, &peek), -1,
            "a body cut in its payload is not peeked");
    byte *longer = (byte *) malloc (zframe_size (frame) + 1);
    memcpy (longer, zframe_data (frame), zframe_size (frame));
    longer [zframe_size (frame)] = 0xc0;
    is_int (chorus_msg_event_peek (longer, zframe_size (frame) + 1, &peek), -1,
            "nor one with a byte after it");
    free (longer);
    zframe_destroy (&frame);
    chorus_msg_set_key (msg, NULL);
    frame = chorus_msg_encode (msg);
    ok (chorus_msg_event_peek (zframe_data (frame), zframe_size (frame), &peek) == 0
        && peek.key == NULL, "an EVENT without a key peeks as none");
    zframe_destroy (&frame);
    chorus_msg_destroy (&msg);
    msg = chorus_msg_new (CHORUS_MSG_REPLY);
    fixture_fill_all (msg);
    frame = chorus_msg_encode (msg);
    is_int (chorus_msg_event_peek (zframe_data (frame), zframe_size (frame), &peek), -1,
            "another message is not peeked");
    zframe_destroy (&frame);
    chorus_msg_destroy (&msg);
}

static void
s_check_encode_refuses (void)
{
    chorus_msg_t *msg = chorus_msg_new (CHORUS_MSG_EVENT);
    fixture_fill_all (msg);
    chorus_msg_set_topic (msg, NULL);
    ok (chorus_msg_encode (msg) == NULL, "encode refuses a missing required field");
    ok (strstr (chorus_msg_reason (msg), "topic") != NULL, "reason names the field: %s",
        chorus_msg_reason (msg));
    chorus_msg_set_topic (msg, "has space");
    ok (chorus_msg_encode (msg) == NULL, "encode refuses a topic with a space");
    chorus_msg_set_topic (msg, "t");
    size_t big = CHORUS_MSG_MAX_PAYLOAD + 1;
    char *payload = (char *) calloc (1, big);
    chorus_msg_set_payload (msg, payload, big);
    ok (chorus_msg_encode (msg) == NULL, "encode refuses a payload over 1 MiB");
    chorus_msg_set_payload (msg, payload, big - 1);
    zframe_t *frame = chorus_msg_encode (msg);
    ok (frame != NULL, "a payload of exactly 1 MiB encodes");
    chorus_msg_t *copy = chorus_msg_new (CHORUS_MSG_EVENT);
    is_int (chorus_msg_decode (copy, zframe_data (frame), zframe_size (frame)), 0,
            "and decodes");
    zframe_destroy (&frame);
    chorus_msg_destroy (&copy);
    free (payload);

    chorus_msg_set_payload (msg, "", 0);
    frame = chorus_msg_encode (msg);
    copy = chorus_msg_new (CHORUS_MSG_EVENT);
    chorus_msg_decode (copy, zframe_data (frame), zframe_size (frame));
    ok (chorus_msg_payload (copy) && chorus_msg_payload_size (copy) == 0,
        "an empty payload stays present, distinct from no payload");
    zframe_destroy (&frame);
    chorus_msg_destroy (&copy);
    chorus_msg_destroy (&msg);
}

static void
s_check_sockets (void)
{
    zsock_t *router = zsock_new_router ("inproc://codec-router");
    zsock_t *dealer = zsock_new_dealer (">inproc://codec-router");
    zsock_t *pub = zsock_new_pub ("inproc://codec-pub");
    zsock_t *sub = zsock_new_sub (">inproc://codec-pub", "order.");
    assert (router && dealer && pub && sub);

    chorus_msg_t *msg = chorus_msg_new (CHORUS_MSG_COMMAND);
    fixture_fill_all (msg);
    is_int (chorus_msg_send (msg, dealer), 0, "COMMAND sent on a DEALER");
    chorus_msg_t *got = chorus_msg_new (CHORUS_MSG_PING);
    is_int (chorus_msg_recv (got, router), 0, "received on the ROUTER");
    is_str (chorus_msg_name (got), "charge", "command name arrives");
    ok (chorus_msg_routing_id (got) != NULL, "the ROUTER gave the peer's routing id");

    //  Reply through the ROUTER using the routing id it gave us
    chorus_msg_t *reply = chorus_msg_new (CHORUS_MSG_REPLY);
    fixture_fill_required (reply);
    chorus_msg_set_routing_id (reply, chorus_msg_routing_id (got));
    is_int (chorus_msg_send (reply, router), 0, "REPLY sent on the ROUTER");
    is_int (chorus_msg_recv (got, dealer), 0, "received on the DEALER");
    is_int (chorus_msg_type (got), CHORUS_MSG_REPLY, "it is the REPLY");

    //  A malformed frame is consumed and reported; the next one still works
    zstr_send (dealer, "not msgpack");
    is_int (chorus_msg_recv (got, router), CHORUS_MSG_MALFORMED, "garbage is MALFORMED");
    zsock_bsend (dealer, "22", 1, 2);
    chorus_msg_send (msg, dealer);
    is_int (chorus_msg_recv (got, router), CHORUS_MSG_MALFORMED, "wrong frame is MALFORMED");
    is_int (chorus_msg_recv (got, router), 0, "the next valid message decodes");

    //  PUB/SUB carries the topic frame, checked against the EVENT's topic
    chorus_msg_t *event = chorus_msg_new (CHORUS_MSG_EVENT);
    fixture_fill_all (event);
    //  A SUB joins late; publish until its subscription has arrived
    zpoller_t *poller = zpoller_new (sub, NULL);
    bool arrived = false, sent = true;
    for (int attempt = 0; attempt < 500 && !arrived; attempt++) {
        sent = sent && chorus_msg_send (event, pub) == 0;
        arrived = zpoller_wait (poller, 10) == sub;
    }
    ok (sent, "EVENT sent on PUB");
    ok (arrived, "SUB gets the EVENT");
    is_int (chorus_msg_recv (got, sub), 0, "EVENT decodes from SUB with its topic frame");
    is_str (chorus_msg_topic (got), "order.placed", "topic kept");
    while (zpoller_wait (poller, 0) == sub)
        chorus_msg_recv (got, sub);     //  copies sent while the subscription travelled
    zstr_sendm (pub, "order.lie");
    zframe_t *frame = chorus_msg_encode (event);
    zframe_send (&frame, pub, 0);
    ok (zpoller_wait (poller, 2000) == sub, "SUB gets the lying frame");
    is_int (chorus_msg_recv (got, sub), CHORUS_MSG_MALFORMED,
            "a topic frame that differs from the EVENT's topic is MALFORMED");
    chorus_msg_t *ping = chorus_msg_new (CHORUS_MSG_PING);
    chorus_msg_set_id (ping, "p");
    is_int (chorus_msg_send (ping, pub), -1, "only EVENT may be sent on PUB");

    zpoller_destroy (&poller);
    chorus_msg_destroy (&ping);
    chorus_msg_destroy (&event);
    chorus_msg_destroy (&reply);
    chorus_msg_destroy (&got);
    chorus_msg_destroy (&msg);
    zsock_destroy (&sub);
    zsock_destroy (&pub);
    zsock_destroy (&dealer);
    zsock_destroy (&router);
}

int
main (void)
{
    zsys_init ();
    for (int type = 1; type <= CHORUS_MSG_TYPES; type++) {
        chorus_msg_t *msg = chorus_msg_new (type);
        fixture_fill_all (msg);
        s_check_round_trip (msg, "all fields");
        chorus_msg_destroy (&msg);

        msg = chorus_msg_new (type);
        fixture_fill_required (msg);
        s_check_round_trip (msg, "required fields");
        chorus_msg_destroy (&msg);
        s_check_optional_absent (type);
    }
    ok (chorus_msg_new (0) == NULL && chorus_msg_new (CHORUS_MSG_TYPES + 1) == NULL,
        "no message of an unknown type can be made");
    is_str (chorus_msg_type_name (CHORUS_MSG_EVENT_ACK), "EVENT-ACK", "type names follow the spec");
    chorus_msg_t *event = chorus_msg_new (CHORUS_MSG_EVENT);
    chorus_msg_set_id (event, "e-1");
    chorus_msg_set_topic (event, "order.placed");
    chorus_msg_set_seq (event, 42);
    chorus_msg_set_payload (event, "{}", 2);
    char *text = chorus_msg_describe (event);
    ok (text && strncmp (text, "EVENT id=e-1 ", 13) == 0 && strstr (text, " topic=order.placed")
        && strstr (text, " seq=42") && strstr (text, "=2 bytes") && !strchr (text, '\n'),
        "a message describes itself in one line, for the caller to log: %s", text);
    zstr_free (&text);
    chorus_msg_destroy (&event);
    s_check_command_try ();
    s_check_encode_refuses ();
    s_check_ack_seqs ();
    s_check_event_peek ();
    s_check_sockets ();
    return done_testing ();
}
