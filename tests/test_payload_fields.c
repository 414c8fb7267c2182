/*  test_payload_fields.c — payloads built and read in C, through chorus.h
    alone: a builder writes what chorus_payload_from_json writes for the
    same JSON, refuses misuse (a non-str key, a value too many, a payload
    asked for half built, nesting or size over the limits) and keeps its
    first failure; fields look values up by path, say what they found when
    it is not what was asked for, and refuse bytes that are not one
    well-formed value (truncated, trailing, lying counts, too deep) without
    a crash.
*/
#include "chorus.h"
#include "tap.h"

#include <stdlib.h>
#include <string.h>

//  The payload a builder holds, as JSON text (caller frees); NULL if none
static char *
s_json (chorus_builder_t *builder)
{
    const void *data;
    size_t size;
    if (chorus_builder_payload (builder, &data, &size))
        return NULL;
    char *json = NULL;
    char error [128];
    chorus_payload_to_json (data, size, 0, &json, error, sizeof (error));
    return json;
}

static void
test_builder_writes_json_model (void)
{
    chorus_builder_t *builder = chorus_builder_new ();
    chorus_builder_map (builder, 6);
    chorus_builder_str (builder, "order_id");
    chorus_builder_str (builder, "A-17");
    chorus_builder_str (builder, "total");
    chorus_builder_real (builder, 42.5);
    chorus_builder_str (builder, "items");
    chorus_builder_array (builder, 2);
        chorus_builder_map (builder, 2);
        chorus_builder_str (builder, "sku");
        chorus_builder_str (builder, "x1");
        chorus_builder_str (builder, "qty");
        chorus_builder_int (builder, -3);
        chorus_builder_map (builder, 0);
    chorus_builder_str (builder, "paid");
    chorus_builder_bool (builder, true);
    chorus_builder_str (builder, "note");
    chorus_builder_null (builder);
    chorus_builder_strn (builder, "raw", 3);
    int rc = chorus_builder_bin (builder, "\x00\x01", 2);
    is_int (rc, 0, "builder: every call succeeds");
    char *json = s_json (builder);
    const char *expected = "{\"order_id\":\"A-17\",\"total\":42.5,\"items\":[{\"sku\":\"x1\","
                           "\"qty\":-3},{}],\"paid\":true,\"note\":null,\"raw\":{\"$bin\":\"AAE=\"}}";
    is_str (json, expected, "builder: nested maps, arrays and every scalar, in order");
    //  The same bytes as the JSON bridge writes
    void *bridge = NULL;
    size_t bridge_size = 0;
    char error [128];
    chorus_payload_from_json (expected, strlen (expected), 0, &bridge, &bridge_size, error,
                              sizeof (error));
    const void *data;
    size_t size;
    chorus_builder_payload (builder, &data, &size);
    ok (bridge && size == bridge_size && memcmp (data, bridge, size) == 0,
        "builder: byte for byte what chorus_payload_from_json writes");
    chorus_payload_free (bridge);
    free (json);

    //  A scalar alone is a payload too; reset builds another
    chorus_builder_reset (builder);
    chorus_builder_int (builder, 7);
    json = s_json (builder);
    is_str (json, "7", "builder: a scalar payload after reset");
    free (json);
    is_int (chorus_builder_int (builder, 8), CHORUS_EINVAL, "builder: a second value refused");
    ok (strstr (chorus_node_error (NULL), "beyond") != NULL, "builder: which says why: %s",
        chorus_node_error (NULL));
    is_int (chorus_builder_payload (builder, &data, &size), CHORUS_EINVAL,
            "builder: the failure sticks until reset");
    chorus_builder_destroy (&builder);
    ok (builder == NULL, "builder: destroy clears the pointer");
    chorus_builder_destroy (&builder);
}

static void
test_builder_refuses_misuse (void)
{
    chorus_builder_t *builder = chorus_builder_new ();
    const void *data;
    size_t size;
    is_int (chorus_builder_payload (builder, &data, &size), CHORUS_EINVAL,
            "misuse: an empty builder has no payload");

    chorus_builder_map (builder, 1);
    is_int (chorus_builder_int (builder, 1), CHORUS_EINVAL, "misuse: an int as a map key");
    ok (strstr (chorus_node_error (NULL), "key") != NULL, "misuse: named: %s",
        chorus_node_error (NULL));
    is_int (chorus_builder_str (builder, "k"), CHORUS_EINVAL, "misuse: later calls fail too");

    chorus_builder_reset (builder);
    chorus_builder_map (builder, 2);
    chorus_builder_str (builder, "a");
    chorus_builder_int (builder, 1);
    is_int (chorus_builder_payload (builder, &data, &size), CHORUS_EINVAL,
            "misuse: a map with a pair missing");
    ok (strstr (chorus_node_error (NULL), "needs 2") != NULL, "misuse: says how many: %s",
        chorus_node_error (NULL));
    ok (data == NULL && size == 0, "misuse: nothing handed out");

    chorus_builder_reset (builder);
    is_int (chorus_builder_str (builder, NULL), CHORUS_EINVAL, "misuse: NULL text");

    //  Nesting: as deep as the limit, and not one more
    chorus_builder_reset (builder);
    for (int depth = 0; depth < CHORUS_PAYLOAD_MAX_DEPTH; depth++)
        chorus_builder_array (builder, 1);
    is_int (chorus_builder_array (builder, 0), CHORUS_EINVAL, "misuse: one level too deep");
    chorus_builder_reset (builder);
    for (int depth = 0; depth < CHORUS_PAYLOAD_MAX_DEPTH - 1; depth++)
        chorus_builder_array (builder, 1);
    chorus_builder_array (builder, 0);
    is_int (chorus_builder_payload (builder, &data, &size), 0, "misuse: the deepest allowed");
    chorus_fields_t *fields = chorus_fields_new (data, size);
    ok (fields != NULL, "misuse: which the reader opens");
    chorus_fields_destroy (&fields);

    //  Size: a bin of the limit fits alone, not with its header
    chorus_builder_reset (builder);
    char *big = (char *) calloc (1, CHORUS_PAYLOAD_MAX);
    is_int (chorus_builder_bin (builder, big, CHORUS_PAYLOAD_MAX), CHORUS_ETOOBIG,
            "misuse: over CHORUS_PAYLOAD_MAX");
    chorus_builder_reset (builder);
    chorus_builder_array (builder, 2);
    chorus_builder_bin (builder, big, CHORUS_PAYLOAD_MAX - 10);
    is_int (chorus_builder_str (builder, "0123456789"), CHORUS_ETOOBIG,
            "misuse: the value that crosses the limit");
    free (big);
    chorus_builder_destroy (&builder);
    is_int (chorus_builder_int (NULL, 1), CHORUS_EINVAL, "misuse: NULL builder");
}

//  Opens JSON as fields (through the bridge's encoding)
static chorus_fields_t *
s_fields (const char *json, void **data)
{
    size_t size;
    char error [128];
    if (chorus_payload_from_json (json, strlen (json), 0, data, &size, error, sizeof (error))) {
        diag ("%s", error);
        return NULL;
    }
    return chorus_fields_new (*data, size);
}

static void
test_fields_read_paths (void)
{
    void *data = NULL;
    chorus_fields_t *fields = s_fields (
        "{\"order_id\": \"A-17\", \"total\": 42, \"rate\": 0.5, \"paid\": false,"
        " \"items\": [{\"sku\": \"x1\"}, {\"sku\": \"x2\", \"tags\": [\"a\"]}],"
        " \"0\": \"zero\", \"blob\": {\"$bin\": \"AAE=\"},"
        " \"nul\": \"a\\u0000b\", \"none\": null}", &data);
    if (!ok (fields != NULL, "fields: open"))
        return;
    char text [8];
    is_int (chorus_fields_text (fields, "order_id", text, sizeof (text)), 0, "fields: a str");
    is_str (text, "A-17", "fields: copied with its NUL");
    int64_t integer = 0;
    is_int (chorus_fields_int (fields, "total", &integer), 0, "fields: an int");
    is_int (integer, 42, "fields: its value");
    double real = 0;
    is_int (chorus_fields_real (fields, "total", &real), 0, "fields: an int read as a real");
    ok (real == 42.0, "fields: as 42.0");
    chorus_fields_real (fields, "rate", &real);
    ok (real == 0.5, "fields: a real");
    bool flag = true;
    is_int (chorus_fields_bool (fields, "paid", &flag), 0, "fields: a bool");
    ok (!flag, "fields: false");
    is_int (chorus_fields_text (fields, "items.1.sku", text, sizeof (text)), 0,
            "fields: a path through an array");
    is_str (text, "x2", "fields: the second item's sku");
    is_int (chorus_fields_text (fields, "items.1.tags.0", text, sizeof (text)), 0,
            "fields: three levels down");
    is_str (text, "a", "fields: its value");
    is_int (chorus_fields_text (fields, "0", text, sizeof (text)), 0,
            "fields: a numeric segment on a map is a key");
    const char *bytes;
    size_t size;
    is_int (chorus_fields_str (fields, "order_id", &bytes, &size), 0, "fields: a str in place");
    ok (size == 4 && memcmp (bytes, "A-17", 4) == 0, "fields: pointing into the payload");

    chorus_value_t value;
    chorus_fields_get (fields, "", &value);
    ok (value.type == CHORUS_VALUE_MAP && value.size == 9, "fields: \"\" is the whole map");
    chorus_fields_get (fields, "items", &value);
    ok (value.type == CHORUS_VALUE_ARRAY && value.size == 2, "fields: an array and its length");
    chorus_fields_t *big = chorus_fields_new ("\xcf\xff\xff\xff\xff\xff\xff\xff\xff", 9);
    chorus_fields_get (big, "", &value);
    ok (value.type == CHORUS_VALUE_REAL && value.real > 1.8e19,
        "fields: an integer over INT64_MAX is a real");
    chorus_fields_destroy (&big);
    chorus_fields_get (fields, "blob", &value);
    ok (value.type == CHORUS_VALUE_BIN && value.size == 2 && value.data [1] == 1, "fields: a bin");
    chorus_fields_get (fields, "none", &value);
    ok (value.type == CHORUS_VALUE_NULL, "fields: a null");
    const char *missing [] = { "nope", "items.2", "items.01", "items.-1", "items.x", "items.",
                               "order_id.x", ".", "items..0", "items.1.sku.0" };
    for (size_t index = 0; index < sizeof (missing) / sizeof (missing [0]); index++) {
        is_int (chorus_fields_get (fields, missing [index], &value), 0, "fields: '%s' looked up",
                missing [index]);
        is_int (value.type, CHORUS_VALUE_MISSING, "fields: '%s' names nothing", missing [index]);
    }

    //  Typed reads say what they found
    is_int (chorus_fields_int (fields, "order_id", &integer), CHORUS_EINVAL,
            "fields: a str read as an int");
    is_str (chorus_node_error (NULL), "payload field 'order_id': a str, not an int",
            "fields: the reason names the field and both types");
    is_int (chorus_fields_int (fields, "rate", &integer), CHORUS_EINVAL,
            "fields: a real is not an int");
    is_int (chorus_fields_bool (fields, "nope", &flag), CHORUS_EINVAL, "fields: missing");
    is_str (chorus_node_error (NULL), "payload field 'nope': nothing, not a bool",
            "fields: says it is missing");
    is_int (chorus_fields_text (fields, "order_id", text, 4), CHORUS_ETOOBIG,
            "fields: a buffer one byte short");
    is_str (text, "", "fields: left empty");
    is_int (chorus_fields_text (fields, "nul", text, sizeof (text)), CHORUS_EINVAL,
            "fields: a str holding a NUL is not text");
    is_int (chorus_fields_str (fields, "nul", &bytes, &size), 0, "fields: but it is a str");
    ok (size == 3, "fields: of 3 bytes");
    is_int (chorus_fields_get (NULL, "", &value), CHORUS_EINVAL, "fields: NULL reader");
    chorus_fields_destroy (&fields);
    chorus_payload_free (data);
}

static void
test_fields_refuse_bad_bytes (void)
{
    struct { const char *name; const char *bytes; size_t size; } bad [] = {
        { "empty", "", 0 },
        { "truncated map", "\x81\xa1" "a", 3 },
        { "trailing bytes", "\x01\x02", 2 },
        { "reserved byte 0xc1", "\xc1", 1 },
        { "an array claiming 4 billion values", "\xdd\xff\xff\xff\xff\x01", 6 },
        { "a str longer than the bytes", "\xd9\x20" "abc", 5 },
    };
    for (size_t index = 0; index < sizeof (bad) / sizeof (bad [0]); index++) {
        chorus_fields_t *fields = chorus_fields_new (bad [index].bytes, bad [index].size);
        ok (fields == NULL && chorus_errno () == CHORUS_EMALFORMED, "bad bytes: %s refused",
            bad [index].name);
        ok (strlen (chorus_node_error (NULL)) > 0, "bad bytes: with a reason: %s",
            chorus_node_error (NULL));
    }
    //  Nested one deeper than the limit
    char deep [CHORUS_PAYLOAD_MAX_DEPTH + 2];
    memset (deep, 0x91, CHORUS_PAYLOAD_MAX_DEPTH + 1);     //  arrays of one value
    deep [CHORUS_PAYLOAD_MAX_DEPTH + 1] = 0x01;
    chorus_fields_t *fields = chorus_fields_new (deep, sizeof (deep));
    ok (fields == NULL && chorus_errno () == CHORUS_EMALFORMED, "bad bytes: too deep refused");
    fields = chorus_fields_new (deep + 1, sizeof (deep) - 1);
    ok (fields != NULL, "bad bytes: at the limit accepted");
    chorus_fields_destroy (&fields);
    //  Random bytes never crash
    srand (7);
    int opened = 0;
    for (int round = 0; round < 20000; round++) {
        unsigned char noise [24];
        size_t size = (size_t) (rand () % (int) sizeof (noise)) + 1;
        for (size_t index = 0; index < size; index++)
            noise [index] = (unsigned char) rand ();
        fields = chorus_fields_new (noise, size);
        if (fields) {
            chorus_value_t value;
            chorus_fields_get (fields, "a.0.b", &value);
            opened++;
        }
        chorus_fields_destroy (&fields);
    }
    ok (opened > 0, "bad bytes: 20000 random payloads, %d of them valid, no crash", opened);
}

int
main (void)
{
    test_builder_writes_json_model ();
    test_builder_refuses_misuse ();
    test_fields_read_paths ();
    test_fields_refuse_bad_bytes ();
    return done_testing ();
}
