/*  test_json_bridge.c — payloads as JSON, through chorus.h alone (what a
    service sees): round trips keep values and key order, bad JSON is
    refused with CHORUS_EINVAL and its place, an encoding over the limit
    with CHORUS_ETOOBIG, and bad MessagePack (truncated, lying, too deep,
    random) with CHORUS_EMALFORMED, never a crash.
*/
#include "chorus.h"
#include "tap.h"

#include <jansson.h>
#include <stdint.h>

static char s_error [256];   //  last reason given by the payload API

//  Render bytes as chorus_payload_to_json does; NULL when it refuses them
static char *
s_render (const void *data, size_t size, int flags)
{
    char *text = NULL;
    int rc = chorus_payload_to_json (data, size, flags, &text, s_error, sizeof (s_error));
    return rc == 0? text: NULL;
}

//  JSON -> MessagePack -> JSON; NULL (with a diagnostic) if either step fails
static char *
s_round_trip (const char *json, int flags)
{
    void *data = NULL;
    size_t size = 0;
    s_error [0] = 0;
    if (chorus_payload_from_json (json, strlen (json), SIZE_MAX, &data, &size, s_error,
                                  sizeof (s_error))) {
        diag ("from_json: %s", s_error);
        return NULL;
    }
    char *text = s_render (data, size, flags);
    if (!text)
        diag ("to_json: %s", s_error);
    chorus_payload_free (data);
    return text;
}

static void
s_check_round_trip (const char *json, const char *expected, int flags, const char *what)
{
    char *text = s_round_trip (json, flags);
    is_str (text, expected, "round trip: %s", what);
    free (text);
}

//  Canonical compact JSON must come back byte for byte
static void
s_check_same (const char *json, const char *what)
{
    s_check_round_trip (json, json, 0, what);
}

//  JSON must encode to exactly these MessagePack bytes
static void
s_check_encoding (const char *json, const char *bytes, size_t count, const char *what)
{
    void *data = NULL;
    size_t size = 0;
    int rc = chorus_payload_from_json (json, strlen (json), SIZE_MAX, &data, &size, s_error,
                                       sizeof (s_error));
    ok (rc == 0 && size == count && memcmp (data, bytes, count) == 0, "encoding: %s", what);
    free (data);
}

//  JSON must be refused with this code, and a reason that contains `fragment`
static void
s_check_json_refused (const char *json, size_t max_size, int code, const char *fragment,
                      const char *what)
{
    void *data = (void *) "not cleared";
    size_t size = 0;
    s_error [0] = 0;
    int rc = chorus_payload_from_json (json, strlen (json), max_size, &data, &size, s_error,
                                       sizeof (s_error));
    ok (rc == code && chorus_errno () == code && data == NULL && strstr (s_error, fragment),
        "JSON refused: %s", what);
    if (rc != code || !strstr (s_error, fragment))
        diag ("got %d '%s', expected %d '%s'", rc, s_error, code, fragment);
}

//  Bad JSON is CHORUS_EINVAL
static void
s_check_json_error (const char *json, size_t max_size, const char *fragment, const char *what)
{
    s_check_json_refused (json, max_size, CHORUS_EINVAL, fragment, what);
}

//  MessagePack bytes must render as exactly `expected`
static void
s_check_render (const char *bytes, size_t size, int flags, const char *expected,
                const char *what)
{
    s_error [0] = 0;
    char *text = s_render (bytes, size, flags);
    is_str (text, expected, "renders: %s", what);
    if (!text)
        diag ("error: %s", s_error);
    free (text);
}

//  MessagePack bytes must be refused as malformed, with a reason that
//  contains `fragment`
static void
s_check_refused (const char *bytes, size_t size, const char *fragment, const char *what)
{
    s_error [0] = 0;
    char *text = (char *) "not cleared";
    int rc = chorus_payload_to_json (bytes, size, 0, &text, s_error, sizeof (s_error));
    ok (rc == CHORUS_EMALFORMED && text == NULL && strstr (s_error, fragment),
        "MessagePack refused: %s", what);
    if (text || !strstr (s_error, fragment))
        diag ("got '%s', error '%s', expected '%s'", text? text: "(null)", s_error, fragment);
    free (text);
}

//  `depth` nested arrays around a 1, as JSON text
static char *
s_nested_json (int depth, char open, char close)
{
    char *json = (char *) malloc (depth * 6 + 2);
    size_t pos = 0;
    for (int i = 0; i < depth; i++) {
        if (open == '{')
            pos += (size_t) sprintf (json + pos, "{\"k\":");
        else
            json [pos++] = open;
    }
    json [pos++] = '1';
    for (int i = 0; i < depth; i++)
        json [pos++] = close;
    json [pos] = 0;
    return json;
}

static void
s_test_round_trips (void)
{
    s_check_same ("{\"a\":1,\"b\":\"two\",\"c\":[true,false,null]}", "object");
    s_check_same ("[1,\"x\",{\"k\":[]},[[2]]]", "array");
    s_check_same ("{\"order\":{\"id\":\"o-1\",\"lines\":[{\"sku\":\"A\",\"qty\":2,\"price\":9.5}],"
                  "\"paid\":false,\"note\":null}}", "nested mix");
    s_check_same ("[\"h\xc3\xa9llo\",\"\xe2\x9c\x93\",\"\xf0\x9f\x98\x80\",\"\xe6\x97\xa5\xe6\x9c\xac\"]",
                  "unicode strings");
    s_check_same ("\"a\\u0000b\\n\\\"q\\\"\"", "NUL, newline and quotes in a string");
    s_check_same ("[9223372036854775807,-9223372036854775808,-1,0,255,65536,-129,4294967296]",
                  "big and negative integers");
    s_check_same ("[1.5,-0.25,0.1,1e300,3.141592653589793,-0.0,1.0,2.5e-8]", "reals");
    s_check_same ("true", "scalar true");
    s_check_same ("false", "scalar false");
    s_check_same ("null", "scalar null");
    s_check_same ("42", "scalar integer");
    s_check_same ("-7", "scalar negative integer");
    s_check_same ("2.5", "scalar real");
    s_check_same ("\"text\"", "scalar string");
    s_check_same ("{}", "empty object");
    s_check_same ("[]", "empty array");
    s_check_same ("{\"z\":1,\"a\":2,\"m\":{\"y\":0,\"b\":0}}", "key order preserved");
    s_check_round_trip ("{\"z\":1,\"a\":2,\"m\":{\"y\":0,\"b\":0}}",
                        "{\"a\":2,\"m\":{\"b\":0,\"y\":0},\"z\":1}", CHORUS_PAYLOAD_SORT, "sorted keys");
    s_check_round_trip ("{\"a\":[1]}", "{\n  \"a\": [\n    1\n  ]\n}", CHORUS_PAYLOAD_PRETTY,
                        "pretty form");
    s_check_round_trip (" { \"a\" : [ 1 , 2 ] }\n", "{\"a\":[1,2]}", 0, "spaces dropped");

    char *deepest = s_nested_json (CHORUS_PAYLOAD_MAX_DEPTH, '[', ']');
    s_check_same (deepest, "arrays nested to the limit");
    free (deepest);
}

static void
s_test_encodings (void)
{
    s_check_encoding ("{\"a\":1}", "\x81\xa1" "a" "\x01", 4, "object is a map with str keys");
    s_check_encoding ("[true,false,null]", "\x93\xc3\xc2\xc0", 4, "booleans and nil");
    s_check_encoding ("1.5", "\xcb\x3f\xf8\0\0\0\0\0\0", 9, "real is a float64");
    s_check_encoding ("-1", "\xff", 1, "negative fixint");
    s_check_encoding ("300", "\xcd\x01\x2c", 3, "uint 16");
    s_check_encoding ("\"\"", "\xa0", 1, "empty str");
}

static void
s_test_json_errors (void)
{
    s_check_json_error ("{\"a\": tru}", SIZE_MAX, "line 1 column", "malformed, with its place");
    s_check_json_error ("[1,\n 2,,]", SIZE_MAX, "line 2", "malformed on line 2");
    s_check_json_error ("[1] x", SIZE_MAX, "line 1", "trailing garbage");
    s_check_json_error ("{} {}", SIZE_MAX, "line", "two documents");
    s_check_json_error ("", SIZE_MAX, "line", "empty text");
    s_check_json_error ("{\"a\":1,\"a\":2}", SIZE_MAX, "duplicate", "duplicate key");
    s_check_json_error ("99999999999999999999", SIZE_MAX, "line", "integer beyond int64");
    s_check_json_error ("\"\xff\"", SIZE_MAX, "line", "invalid UTF-8 in JSON");

    char expected [64];
    snprintf (expected, sizeof (expected), "nesting deeper than %d", CHORUS_PAYLOAD_MAX_DEPTH);
    char *json = s_nested_json (CHORUS_PAYLOAD_MAX_DEPTH + 1, '[', ']');
    s_check_json_error (json, SIZE_MAX, expected, "arrays nested one too deep");
    free (json);
    json = s_nested_json (CHORUS_PAYLOAD_MAX_DEPTH + 1, '{', '}');
    s_check_json_error (json, SIZE_MAX, expected, "objects nested one too deep");
    free (json);
    json = s_nested_json (65, '[', ']');
    s_check_json_error (json, SIZE_MAX, expected, "arrays nested 65 deep");
    free (json);

    s_check_json_refused ("\"hello\"", 5, CHORUS_ETOOBIG,
                          "payload of 6 bytes exceeds the limit of 5", "encoding over max_size");
    void *data = NULL;
    size_t size = 0;
    int rc = chorus_payload_from_json ("\"hello\"", 7, 6, &data, &size, s_error,
                                       sizeof (s_error));
    ok (rc == 0 && size == 6, "encoding of exactly max_size is accepted");
    chorus_payload_free (data);
}

//  Every strict prefix of a valid encoding must be refused
static void
s_test_truncation (void)
{
    const char *json = "{\"name\":\"a string longer than thirty-one bytes, so str 8\","
                       "\"n\":[1,-1,300,-300,70000,-70000,5000000000,-5000000000],"
                       "\"r\":2.5,\"t\":true,\"o\":{\"x\":null,\"y\":[[],{}]}}";
    void *data = NULL;
    size_t size = 0;
    if (chorus_payload_from_json (json, strlen (json), SIZE_MAX, &data, &size, s_error,
                                  sizeof (s_error)))
        bail_out ("cannot encode the truncation fixture");
    int accepted = 0;
    for (size_t cut = 0; cut < size; cut++) {
        s_error [0] = 0;
        char *text = s_render (data, cut, 0);
        if (text || !s_error [0])
            accepted++;
        free (text);
    }
    is_int (accepted, 0, "none of %zu truncations is accepted", size);
    char *text = s_render (data, size, 0);
    is_str (text, json, "the whole encoding is");
    free (text);
    free (data);
}

static void
s_test_malformed_msgpack (void)
{
    s_check_refused ("\xdd\xff\xff\xff\xff", 5, "count exceeds", "array 32 claiming 4G elements");
    s_check_refused ("\xdf\xff\xff\xff\xff", 5, "count exceeds", "map 32 claiming 4G pairs");
    s_check_refused ("\xdc\xff\xff\x01", 4, "count exceeds", "array 16 claiming 65535");
    s_check_refused ("\x8f\x01\x01", 3, "count exceeds", "fixmap claiming 15 pairs");
    s_check_refused ("\xc1", 1, "0xc1", "byte 0xc1");
    s_check_refused ("\x92\x01\xc1", 3, "0xc1", "byte 0xc1 inside an array");
    s_check_refused ("\x01\x02", 2, "trailing", "trailing byte");
    s_check_refused ("\x90\x90", 2, "trailing", "two values");
    s_check_refused ("\xd9\x05" "ab", 4, "truncated", "str 8 shorter than its length");
    s_check_refused ("\xc6\xff\xff\xff\xff", 5, "truncated", "bin 32 claiming 4 GB");
    s_check_refused ("", 0, "no bytes", "empty input");
    s_check_refused (NULL, 3, "no bytes", "NULL data");

    char deep [80];
    memset (deep, 0x91, sizeof (deep));
    deep [CHORUS_PAYLOAD_MAX_DEPTH + 1] = 0x01;
    s_check_refused (deep, CHORUS_PAYLOAD_MAX_DEPTH + 2, "nesting deeper", "arrays one too deep");
    deep [65] = 0x01;
    s_check_refused (deep, 66, "nesting deeper", "arrays 65 deep");
    memset (deep, 0x91, sizeof (deep));
    deep [CHORUS_PAYLOAD_MAX_DEPTH] = 0x01;
    char *text = s_render (deep, CHORUS_PAYLOAD_MAX_DEPTH + 1, 0);
    ok (text && strncmp (text, "[[[", 3) == 0, "arrays nested to the limit decode");
    free (text);
}

static void
s_test_rendering (void)
{
    s_check_render ("\xc4\x03\x01\x02\x03", 5, 0, "{\"$bin\":\"AQID\"}", "bin");
    s_check_render ("\xc4\x00", 2, 0, "{\"$bin\":\"\"}", "empty bin");
    s_check_render ("\xd4\x05\xff", 3, 0, "{\"$ext\":5,\"$bin\":\"/w==\"}", "fixext 1");
    s_check_render ("\xc7\x02\xfe" "AB", 5, 0, "{\"$ext\":-2,\"$bin\":\"QUI=\"}", "ext 8");
    s_check_render ("\xd4\x05\xff", 3, CHORUS_PAYLOAD_SORT, "{\"$bin\":\"/w==\",\"$ext\":5}",
                    "ext with sorted keys");
    s_check_render ("\x83\x01\xa1" "a" "\xc0\xc3\x92\x01\x02\x00", 10, 0,
                    "{\"1\":\"a\",\"null\":true,\"[1,2]\":0}", "non-string map keys");
    s_check_render ("\xcf\x7f\xff\xff\xff\xff\xff\xff\xff", 9, 0, "9223372036854775807",
                    "uint64 at INT64_MAX stays an integer");
    s_check_render ("\xcf\xff\xff\xff\xff\xff\xff\xff\xff", 9, 0, "1.8446744073709552e19",
                    "uint64 beyond INT64_MAX becomes a real");
    s_check_render ("\xca\x3f\xc0\x00\x00", 5, 0, "1.5", "float32");
    s_check_render ("\xcb\x40\x00\x00\x00\x00\x00\x00\x00", 9, 0, "2.0", "whole float64 stays a real");
    s_check_render ("\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00", 9, 0, "null", "NaN becomes null");
    s_check_render ("\xa3" "a\xff" "b", 4, 0, "\"a\xef\xbf\xbd" "b\"", "invalid byte replaced");
    s_check_render ("\xa2\xc0\x80", 3, 0, "\"\xef\xbf\xbd\xef\xbf\xbd\"", "overlong NUL replaced");
    s_check_render ("\xa3\xed\xa0\x80", 4, 0, "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"",
                    "surrogate replaced");
    s_check_render ("\xa2" "a\xe2", 3, 0, "\"a\xef\xbf\xbd\"", "cut sequence replaced");
    s_check_render ("\x81\xa1\xff\x01", 4, 0, "{\"\xef\xbf\xbd\":1}", "invalid key replaced");
    s_check_render ("\x81\xa2" "a\0" "\x01", 5, 0, "{\"a\\u0000\":1}", "NUL in a key escaped");
    s_check_render ("\xa4\xf0\x9f\x98\x80", 5, 0, "\"\xf0\x9f\x98\x80\"", "valid 4-byte kept");
}

//  CHORUS_PAYLOAD_RAW_AS_BIN: what is not one MessagePack value is shown
//  whole as {"$bin": ...}, as the tools show any payload (section 9.1)
static void
s_test_raw_as_bin (void)
{
    char *text = s_render ("\x92\x01\xa1" "b", 4, CHORUS_PAYLOAD_RAW_AS_BIN);
    is_str (text, "[1,\"b\"]", "raw as bin: a MessagePack payload is its JSON");
    free (text);
    text = s_render ("\x81\xa1" "k\x01", 4, CHORUS_PAYLOAD_RAW_AS_BIN | CHORUS_PAYLOAD_PRETTY);
    is_str (text, "{\n  \"k\": 1\n}", "raw as bin: pretty");
    free (text);
    text = s_render ("\xc1", 1, CHORUS_PAYLOAD_RAW_AS_BIN);
    is_str (text, "{\"$bin\":\"wQ==\"}", "raw as bin: a malformed payload is its base64");
    free (text);
    text = s_render ("\x01\x02", 2, CHORUS_PAYLOAD_RAW_AS_BIN);
    is_str (text, "{\"$bin\":\"AQI=\"}", "raw as bin: two values are their base64");
    free (text);
    text = s_render ("", 0, CHORUS_PAYLOAD_RAW_AS_BIN);
    is_str (text, "{\"$bin\":\"\"}", "raw as bin: no bytes are an empty base64");
    free (text);
}

//  A small deterministic generator, so a failure can be replayed
static uint32_t
s_random (uint32_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 17;
    *state ^= *state << 5;
    return *state;
}

//  Output must be valid JSON that jansson reads back. jansson refuses
//  \u0000 in object keys, which JSON allows and a MessagePack key may hold,
//  so those escapes become \u0001 before it reads the text.
static bool
s_valid_json (const char *text)
{
    char *copy = strdup (text);
    for (char *nul = strstr (copy, "\\u0000"); nul; nul = strstr (nul, "\\u0000"))
        nul [5] = '1';
    json_t *value = json_loads (copy, JSON_DECODE_ANY, NULL);
    json_decref (value);
    free (copy);
    return value != NULL;
}

static void
s_test_random_bytes (void)
{
    uint32_t state = 0x2545f491;
    int bad = 0, decoded = 0;
    unsigned char bytes [64];
    for (int round = 0; round < 10000; round++) {
        size_t size = s_random (&state) % sizeof (bytes);
        for (size_t i = 0; i < size; i++)
            bytes [i] = (unsigned char) s_random (&state);
        s_error [0] = 0;
        char *text = s_render (bytes, size, round % 4);
        if (text? !s_valid_json (text): !s_error [0])
            bad++;
        decoded += text != NULL;
        free (text);
        text = s_render (bytes, size, CHORUS_PAYLOAD_RAW_AS_BIN);
        if (!text || !s_valid_json (text))
            bad++;
        free (text);
    }
    is_int (bad, 0, "10000 random byte strings give valid JSON or an error (%d decoded)", decoded);
}

//  Random bytes seldom get past the first header; a valid encoding with a
//  few bytes changed reaches the conversion of every kind of value
static void
s_test_mutations (void)
{
    const char *json = "{\"s\":\"text\",\"n\":[1,-300,70000,5000000000],\"r\":0.5,"
                       "\"b\":[true,null],\"o\":{\"k\":{\"d\":[[]]}}}";
    void *original = NULL;
    size_t size = 0;
    if (chorus_payload_from_json (json, strlen (json), SIZE_MAX, &original, &size, s_error,
                                  sizeof (s_error)))
        bail_out ("cannot encode the mutation fixture");
    uint32_t state = 0x9e3779b9;
    int bad = 0, decoded = 0;
    unsigned char *bytes = (unsigned char *) malloc (size);
    for (int round = 0; round < 10000; round++) {
        memcpy (bytes, original, size);
        for (uint32_t changes = 1 + s_random (&state) % 3; changes; changes--)
            bytes [s_random (&state) % size] = (unsigned char) s_random (&state);
        s_error [0] = 0;
        char *text = s_render (bytes, size, round % 4);
        if (text? !s_valid_json (text): !s_error [0])
            bad++;
        decoded += text != NULL;
        free (text);
    }
    is_int (bad, 0, "10000 mutated encodings give valid JSON or an error (%d decoded)", decoded);
    free (bytes);
    free (original);
}

//  The contract of chorus.h: out-parameters, codes, chorus_errno, the
//  default limit and ownership
static void
s_test_contract (void)
{
    void *data = NULL;
    size_t size = 0;
    char *text = NULL;
    ok (chorus_payload_from_json ("1", 1, 0, NULL, &size, NULL, 0) == CHORUS_EINVAL
        && chorus_payload_from_json ("1", 1, 0, &data, NULL, NULL, 0) == CHORUS_EINVAL,
        "contract: no place for the payload is CHORUS_EINVAL");
    ok (chorus_payload_to_json ("\x01", 1, 0, NULL, NULL, 0) == CHORUS_EINVAL,
        "contract: no place for the text is CHORUS_EINVAL");
    ok (chorus_payload_from_json ("[1,", 3, 0, &data, &size, NULL, 0) == CHORUS_EINVAL
        && chorus_errno () == CHORUS_EINVAL && data == NULL,
        "contract: the reason is optional, and the code is chorus_errno () too");
    ok (chorus_payload_to_json ("\xc1", 1, 0, &text, NULL, 0) == CHORUS_EMALFORMED
        && chorus_errno () == CHORUS_EMALFORMED && text == NULL,
        "contract: malformed bytes are CHORUS_EMALFORMED, also in chorus_errno ()");
    ok (chorus_payload_from_json (NULL, 0, 0, &data, &size, s_error, sizeof (s_error))
        == CHORUS_EINVAL, "contract: no text is CHORUS_EINVAL");
    char tiny [8];
    ok (chorus_payload_from_json ("{\"a\": tru}", 10, 0, &data, &size, tiny, sizeof (tiny))
        == CHORUS_EINVAL && strlen (tiny) == sizeof (tiny) - 1,
        "contract: the reason is cut to error_size");

    //  max_size 0 is the protocol's limit: a str of 1 MiB less its 5-byte
    //  header fits, one byte more is CHORUS_ETOOBIG
    size_t length = CHORUS_PAYLOAD_MAX - 5;
    char *json = (char *) malloc (length + 4);
    json [0] = '"';
    memset (json + 1, 'x', length + 1);
    strcpy (json + length + 1, "\"");
    int rc = chorus_payload_from_json (json, length + 2, 0, &data, &size, s_error,
                                       sizeof (s_error));
    ok (rc == 0 && size == CHORUS_PAYLOAD_MAX, "contract: a payload of exactly 1 MiB is accepted");
    chorus_payload_free (data);
    data = NULL;
    json [length + 1] = 'x';
    strcpy (json + length + 2, "\"");
    rc = chorus_payload_from_json (json, length + 3, 0, &data, &size, s_error, sizeof (s_error));
    ok (rc == CHORUS_ETOOBIG && data == NULL && strstr (s_error, "exceeds the limit of 1048576"),
        "contract: one byte over 1 MiB is CHORUS_ETOOBIG by default");
    rc = chorus_payload_from_json (json, length + 3, SIZE_MAX, &data, &size, s_error,
                                   sizeof (s_error));
    ok (rc == 0 && size == CHORUS_PAYLOAD_MAX + 1, "contract: SIZE_MAX lifts the limit");
    free (data);
    free (json);
    is_str (chorus_strerror (CHORUS_ETOOBIG), "payload or field exceeds protocol limit",
            "contract: the codes have their descriptions");
    chorus_payload_free (NULL);
    ok (true, "contract: chorus_payload_free is safe on NULL");
}

//  The payload convention's raw bytes: {"$bin": "<base64>"} is a bin and
//  back, and nothing else is
static void
s_test_bin_convention (void)
{
    s_check_encoding ("{\"$bin\":\"AAEC\"}", "\xc4\x03\x00\x01\x02", 5,
                      "{\"$bin\": base64} becomes a bin");
    s_check_encoding ("{\"$bin\":\"\"}", "\xc4\x00", 2, "an empty one, an empty bin");
    s_check_same ("{\"$bin\":\"AAEC\"}", "and comes back as written");
    s_check_same ("{\"$bin\":\"AAE=\"}", "with its padding");
    s_check_same ("[{\"$bin\":\"AAECAw==\"},1]", "nested in an array");
    s_check_encoding ("{\"$bin\":\"AAEC\",\"x\":1}",
                      "\x82\xa4$bin\xa4" "AAEC\xa1x\x01", 14, "with other members, a plain map");
    s_check_json_error ("{\"$bin\":\"AA!C\"}", SIZE_MAX, "must be a base64 string",
                        "\"$bin\" with a character outside base64");
    s_check_json_error ("{\"$bin\":\"AAE\"}", SIZE_MAX, "must be a base64 string",
                        "\"$bin\" without its padding");
    s_check_json_error ("{\"$bin\":5}", SIZE_MAX, "must be a base64 string",
                        "\"$bin\" that is not a string");
    s_check_json_error ("{\"$bin\":\"AA\\u0000C\"}", SIZE_MAX, "must be a base64 string",
                        "\"$bin\" with a NUL inside");
}

int
main (void)
{
    s_test_round_trips ();
    s_test_encodings ();
    s_test_json_errors ();
    s_test_truncation ();
    s_test_malformed_msgpack ();
    s_test_rendering ();
    s_test_raw_as_bin ();
    s_test_random_bytes ();
    s_test_mutations ();
    s_test_contract ();
    s_test_bin_convention ();
    return done_testing ();
}
