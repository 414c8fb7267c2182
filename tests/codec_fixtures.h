/*  codec_fixtures.h — messages with every field set, or only the required
    ones, and field-by-field comparison, for the codec tests and the fuzz
    corpus generator.
*/
#ifndef CHORUS_CODEC_FIXTURES_H_INCLUDED
#define CHORUS_CODEC_FIXTURES_H_INCLUDED

#include "chorus_msg.h"

//  Sets every field the codec knows, whatever the type carries
static inline void
fixture_fill_all (chorus_msg_t *msg)
{
    chorus_msg_set_id (msg, "0123456789ABCDEF0123456789ABCDEF");
    chorus_msg_set_service (msg, "payments");
    chorus_msg_set_instance (msg, "A1B2C3D4E5F60718293A4B5C6D7E8F90");
    chorus_msg_set_endpoint (msg, "tcp://127.0.0.1:5601");
    chorus_msg_set_pub_endpoint (msg, "tcp://127.0.0.1:5602");
    chorus_msg_set_topic (msg, "order.placed");
    chorus_msg_set_key (msg, "order-42");
    chorus_msg_set_correlation (msg, "corr-1");
    chorus_msg_set_causation (msg, "cause-1");
    chorus_msg_set_group (msg, "inventory");
    chorus_msg_set_prefix (msg, "order.");
    chorus_msg_set_request (msg, "req-7");
    chorus_msg_set_message (msg, "card declined");
    chorus_msg_set_name (msg, "charge");
    chorus_msg_set_idempotency (msg, "flow-1/charge");
    chorus_msg_set_code (msg, "declined");
    chorus_msg_set_target (msg, "B1B2C3D4E5F60718293A4B5C6D7E8F90");
    chorus_msg_set_generation (msg, 3);
    chorus_msg_set_head (msg, 0xFFFFFFFFFFFFFFFFull);
    chorus_msg_set_seq (msg, 1234567890123ull);
    chorus_msg_set_timestamp (msg, 1795000000000ull);
    chorus_msg_set_attempt (msg, 2);
    chorus_msg_set_status (msg, 1);
    chorus_msg_set_from (msg, 10);
    chorus_msg_set_to (msg, 20);
    chorus_msg_set_limit (msg, 500);
    chorus_msg_set_deadline (msg, 1795000005000ull);
    chorus_msg_set_try (msg, 3);
    chorus_msg_set_retryable (msg, true);
    chorus_msg_set_payload (msg, "\x81\xa3" "sku\xa2" "A1", 8);
    chorus_msg_add_peers (msg, "tcp://127.0.0.1:6001");
    chorus_msg_add_peers (msg, "tcp://127.0.0.1:6002");
    chorus_msg_add_topics (msg, "order.placed");
    chorus_msg_add_members (msg, "alive 2 B1B2C3D4E5F60718293A4B5C6D7E8F90 tcp://127.0.0.1:6003");
    chorus_msg_add_subscription (msg, "order.", 1795000000000ull, CHORUS_SUB_DURABLE);
    chorus_msg_add_subscription (msg, "", 0, 0);
    chorus_msg_add_seq (msg, 1234567890124ull);
    chorus_msg_add_seq (msg, 0xFFFFFFFFFFFFFFFFull);
    chorus_msg_set_header (msg, "content-type", "application/msgpack");
    chorus_msg_set_header (msg, "tenant", "acme");
}

//  Sets only what each type requires; optional fields stay absent
static inline void
fixture_fill_required (chorus_msg_t *msg)
{
    chorus_msg_set_id (msg, "X");
    chorus_msg_set_service (msg, "s");
    chorus_msg_set_instance (msg, "i");
    chorus_msg_set_endpoint (msg, "tcp://127.0.0.1:1");
    chorus_msg_set_pub_endpoint (msg, "tcp://127.0.0.1:2");
    chorus_msg_set_topic (msg, "t");
    chorus_msg_set_correlation (msg, "c");
    chorus_msg_set_group (msg, "g");
    chorus_msg_set_request (msg, "r");
    chorus_msg_set_name (msg, "go");
    chorus_msg_set_code (msg, "e");
    chorus_msg_set_target (msg, "x");
}

static inline bool
fixture_same_str (const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp (a, b) == 0);
}

static inline bool
fixture_same_list (zlist_t *a, zlist_t *b)
{
    size_t size_a = a? zlist_size (a): 0;
    size_t size_b = b? zlist_size (b): 0;
    if (size_a != size_b)
        return false;
    if (size_a == 0)
        return true;
    const char *x = (const char *) zlist_first (a);
    const char *y = (const char *) zlist_first (b);
    while (x && y) {
        if (strcmp (x, y))
            return false;
        x = (const char *) zlist_next (a);
        y = (const char *) zlist_next (b);
    }
    return true;
}

//  Compares one named field of two messages; -1 if the name is unknown
static inline int
fixture_same_field (chorus_msg_t *a, chorus_msg_t *b, const char *name)
{
#define S_STR(field, getter) \
    if (streq (name, field)) return fixture_same_str (chorus_msg_##getter (a), chorus_msg_##getter (b));
#define S_NUM(field) \
    if (streq (name, #field)) return chorus_msg_##field (a) == chorus_msg_##field (b);
    S_STR ("service", service) S_STR ("instance", instance) S_STR ("endpoint", endpoint)
    S_STR ("pub_endpoint", pub_endpoint) S_STR ("topic", topic) S_STR ("key", key)
    S_STR ("correlation", correlation) S_STR ("causation", causation) S_STR ("group", group)
    S_STR ("prefix", prefix) S_STR ("request", request) S_STR ("message", message)
    S_STR ("name", name) S_STR ("idempotency", idempotency) S_STR ("code", code)
    S_STR ("target", target)
    S_NUM (generation) S_NUM (head) S_NUM (seq) S_NUM (timestamp) S_NUM (attempt)
    S_NUM (status) S_NUM (from) S_NUM (to) S_NUM (limit) S_NUM (deadline) S_NUM (try)
    S_NUM (retryable)
#undef S_STR
#undef S_NUM
    if (streq (name, "payload")) {
        if (!chorus_msg_payload (a) || !chorus_msg_payload (b))
            return !chorus_msg_payload (a) && !chorus_msg_payload (b);
        return chorus_msg_payload_size (a) == chorus_msg_payload_size (b)
            && memcmp (chorus_msg_payload (a), chorus_msg_payload (b),
                       chorus_msg_payload_size (a)) == 0;
    }
    if (streq (name, "peers"))
        return fixture_same_list (chorus_msg_peers (a), chorus_msg_peers (b));
    if (streq (name, "topics"))
        return fixture_same_list (chorus_msg_topics (a), chorus_msg_topics (b));
    if (streq (name, "members"))
        return fixture_same_list (chorus_msg_members (a), chorus_msg_members (b));
    if (streq (name, "seqs")) {
        const uint64_t *sa, *sb;
        size_t count = chorus_msg_seqs (a, &sa);
        return count == chorus_msg_seqs (b, &sb)
            && (count == 0 || memcmp (sa, sb, count * sizeof (uint64_t)) == 0);
    }
    if (streq (name, "subscriptions")) {
        if (chorus_msg_subscriptions (a) != chorus_msg_subscriptions (b))
            return false;
        for (size_t i = 0; i < chorus_msg_subscriptions (a); i++) {
            uint64_t since_a, flags_a, since_b, flags_b;
            const char *pa = chorus_msg_subscription (a, i, &since_a, &flags_a);
            const char *pb = chorus_msg_subscription (b, i, &since_b, &flags_b);
            if (strcmp (pa, pb) || since_a != since_b || flags_a != flags_b)
                return false;
        }
        return true;
    }
    if (streq (name, "headers")) {
        zhash_t *ha = chorus_msg_headers (a), *hb = chorus_msg_headers (b);
        if (!ha || !hb)
            return !ha && !hb;
        if (zhash_size (ha) != zhash_size (hb))
            return false;
        for (const char *value = (const char *) zhash_first (ha); value;
             value = (const char *) zhash_next (ha))
            if (!fixture_same_str (value, chorus_msg_header (b, zhash_cursor (ha))))
                return false;
        return true;
    }
    return -1;
}

#endif
