/*  chorus_payload.c — payloads as JSON (protocol section 9.1), for services,
    the tools and the coordinator alike: jansson reads and writes the JSON,
    msgpack-c the MessagePack. Bytes from the wire are walked for bounds
    before msgpack-c is allowed to allocate for them. jansson stays private
    to this file: nothing of it appears in chorus.h.
*/
#include "chorus_private.h"
#include "chorus_mpscan.h"

#include <jansson.h>
#include <math.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  msgpack-c's unpacker keeps a fixed stack of 32 containers
//  (MSGPACK_EMBED_STACK_SIZE, in a header of its internals) and fails deeper
//  values; CHORUS_PAYLOAD_MAX_DEPTH is held to it, so that whatever we
//  encode we can decode again. test_json_bridge decodes a value nested to
//  the limit, which fails if a msgpack-c release lowers its stack.

//  s_pack_* results besides 0: -1 is msgpack-c failing to grow its buffer
#define S_TOO_DEEP -2
#define S_BAD_BIN -3

#define S_STRING(x) #x
#define S_DIGITS(x) S_STRING (x)

static void
    s_error (char *error, size_t error_size, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

static void
s_error (char *error, size_t error_size, const char *format, ...)
{
    if (!error || error_size == 0)
        return;
    va_list args;
    va_start (args, format);
    vsnprintf (error, error_size, format, args);
    va_end (args);
}

//  --------------------------------------------------------------------------
//  JSON to MessagePack

static int s_pack_value (msgpack_packer *packer, json_t *value, int depth);

static int
s_pack_str (msgpack_packer *packer, const char *data, size_t size)
{
    if (size > UINT32_MAX)
        return -1;
    int rc = msgpack_pack_str (packer, size);
    return rc? rc: msgpack_pack_str_body (packer, data, size);
}

//  True if text is base64 (RFC 4648 section 4) with its padding
static bool
s_base64_valid (const char *text, size_t size)
{
    static const char alphabet [] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (size % 4)
        return false;
    size_t padding = 0;
    while (padding < 2 && padding < size && text [size - 1 - padding] == '=')
        padding++;
    for (size_t i = 0; i < size - padding; i++)
        if (!text [i] || !strchr (alphabet, text [i]))
            return false;
    return true;
}

//  {"$bin": "<base64>"}, the payload convention's raw bytes, as a bin
static int
s_pack_bin (msgpack_packer *packer, json_t *base64)
{
    const char *text = json_is_string (base64)? json_string_value (base64): NULL;
    if (!text || !s_base64_valid (text, json_string_length (base64)))
        return S_BAD_BIN;
    //  zarmour decodes the checked text, but its chunk may hold a byte or
    //  two more than the text stands for: the padding says how many it does
    size_t length = json_string_length (base64);
    size_t size = length / 4 * 3 - (length && text [length - 1] == '=')
                                  - (length > 1 && text [length - 2] == '=');
    zarmour_t *armour = zarmour_new ();
    zchunk_t *bytes = armour && size? zarmour_decode (armour, text): NULL;
    zarmour_destroy (&armour);
    int rc = size && (!bytes || zchunk_size (bytes) < size)? -1: msgpack_pack_bin (packer, size);
    if (rc == 0 && size)
        rc = msgpack_pack_bin_body (packer, zchunk_data (bytes), size);
    zchunk_destroy (&bytes);
    return rc;
}

//  Keys go out in the order jansson keeps them, the order they were typed
static int
s_pack_object (msgpack_packer *packer, json_t *object, int depth)
{
    if (depth >= CHORUS_PAYLOAD_MAX_DEPTH)
        return S_TOO_DEEP;
    json_t *bin = json_object_size (object) == 1? json_object_get (object, "$bin"): NULL;
    if (bin)
        return s_pack_bin (packer, bin);
    if (json_object_size (object) > UINT32_MAX)
        return -1;
    int rc = msgpack_pack_map (packer, json_object_size (object));
    const char *key;
    size_t key_size;
    json_t *value;
    json_object_keylen_foreach (object, key, key_size, value) {
        if (rc == 0)
            rc = s_pack_str (packer, key, key_size);
        if (rc == 0)
            rc = s_pack_value (packer, value, depth + 1);
        if (rc)
            break;
    }
    return rc;
}

static int
s_pack_array (msgpack_packer *packer, json_t *array, int depth)
{
    if (depth >= CHORUS_PAYLOAD_MAX_DEPTH)
        return S_TOO_DEEP;
    if (json_array_size (array) > UINT32_MAX)
        return -1;
    int rc = msgpack_pack_array (packer, json_array_size (array));
    for (size_t i = 0; rc == 0 && i < json_array_size (array); i++)
        rc = s_pack_value (packer, json_array_get (array, i), depth + 1);
    return rc;
}

static int
s_pack_value (msgpack_packer *packer, json_t *value, int depth)
{
    switch (json_typeof (value)) {
        case JSON_OBJECT: return s_pack_object (packer, value, depth);
        case JSON_ARRAY: return s_pack_array (packer, value, depth);
        case JSON_STRING:
            return s_pack_str (packer, json_string_value (value), json_string_length (value));
        case JSON_INTEGER: return msgpack_pack_int64 (packer, json_integer_value (value));
        case JSON_REAL: return msgpack_pack_double (packer, json_real_value (value));
        case JSON_TRUE: return msgpack_pack_true (packer);
        case JSON_FALSE: return msgpack_pack_false (packer);
        case JSON_NULL: return msgpack_pack_nil (packer);
    }
    return -1;
}

//  Encodes a parsed document; returns 0 or a code with the reason in error
static int
s_encode (json_t *root, size_t max_size, msgpack_sbuffer *buffer, char *error,
          size_t error_size)
{
    msgpack_packer packer;
    msgpack_packer_init (&packer, buffer, msgpack_sbuffer_write);
    int rc = s_pack_value (&packer, root, 0);
    if (rc == S_TOO_DEEP) {
        s_error (error, error_size, "nesting deeper than %d", CHORUS_PAYLOAD_MAX_DEPTH);
        return CHORUS_EINVAL;
    }
    if (rc == S_BAD_BIN) {
        s_error (error, error_size, "\"$bin\" must be a base64 string (RFC 4648, padded)");
        return CHORUS_EINVAL;
    }
    if (rc) {
        s_error (error, error_size, "out of memory");
        return CHORUS_ENOMEM;
    }
    if (buffer->size > max_size) {
        s_error (error, error_size, "payload of %zu bytes exceeds the limit of %zu",
                 buffer->size, max_size);
        return CHORUS_ETOOBIG;
    }
    return 0;
}

int
chorus_payload_from_json (const char *json, size_t length, size_t max_size, void **data,
                          size_t *size, char *error, size_t error_size)
{
    //  The reason is also the failure's detail (chorus_node_error (NULL))
    char reason [256];
    if (!error || error_size == 0) {
        error = reason;
        error_size = sizeof (reason);
    }
    error [0] = 0;
    if (!data || !size) {
        s_error (error, error_size, "no place for the payload");
        return chorus__failf (CHORUS_EINVAL, "%s", error);
    }
    *data = NULL;
    *size = 0;
    //  A duplicate key would silently drop a value, so it is an error;
    //  \u0000 is allowed because a MessagePack str may hold a NUL.
    json_error_t parse_error;
    json_t *root = json_loadb (json? json: "", json? length: 0,
                               JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL,
                               &parse_error);
    if (!root) {
        s_error (error, error_size, "line %d column %d: %s", parse_error.line,
                 parse_error.column, parse_error.text);
        return chorus__failf (CHORUS_EINVAL, "%s", error);
    }
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    int rc = s_encode (root, max_size? max_size: CHORUS_PAYLOAD_MAX, &buffer, error, error_size);
    json_decref (root);
    if (rc == 0) {
        *size = buffer.size;
        *data = msgpack_sbuffer_release (&buffer);
    }
    else
        chorus__failf (rc, "%s", error);
    msgpack_sbuffer_destroy (&buffer);
    return rc;
}

//  --------------------------------------------------------------------------
//  MessagePack to JSON

//  Length of the valid UTF-8 sequence at s, or 0 when it is not one; the
//  same rules jansson applies (no overlongs, surrogates or > U+10FFFF)
static size_t
s_utf8_length (const uint8_t *s, size_t left)
{
    static const uint32_t smallest [5] = {0, 0, 0x80, 0x800, 0x10000};
    size_t length;
    uint32_t code;
    if (s [0] < 0x80)
        return 1;
    if (s [0] >= 0xc2 && s [0] <= 0xdf)
        length = 2, code = s [0] & 0x1f;
    else
    if (s [0] >= 0xe0 && s [0] <= 0xef)
        length = 3, code = s [0] & 0x0f;
    else
    if (s [0] >= 0xf0 && s [0] <= 0xf4)
        length = 4, code = s [0] & 0x07;
    else
        return 0;
    if (left < length)
        return 0;
    for (size_t i = 1; i < length; i++) {
        if ((s [i] & 0xc0) != 0x80)
            return 0;
        code = (code << 6) | (s [i] & 0x3f);
    }
    if (code < smallest [length] || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff))
        return 0;
    return length;
}

//  A copy of the bytes with each byte that starts no valid sequence
//  replaced by U+FFFD, since jansson holds only valid UTF-8
static char *
s_utf8_clean (const char *data, size_t size, size_t *clean_size)
{
    if (size > (SIZE_MAX - 1) / 3)
        return NULL;
    char *clean = (char *) malloc (size * 3 + 1);
    size_t out = 0;
    for (size_t pos = 0; clean && pos < size;) {
        size_t length = s_utf8_length ((const uint8_t *) data + pos, size - pos);
        if (length) {
            memcpy (clean + out, data + pos, length);
            out += length, pos += length;
        }
        else {
            memcpy (clean + out, "\xef\xbf\xbd", 3);
            out += 3, pos++;
        }
    }
    *clean_size = out;
    return clean;
}

static json_t *
s_string (const char *data, size_t size)
{
    json_t *value = size? json_stringn (data, size): json_string ("");
    if (value)
        return value;
    size_t clean_size;
    char *clean = s_utf8_clean (data, size, &clean_size);
    value = clean? json_stringn_nocheck (clean, clean_size): NULL;
    free (clean);
    return value;
}

//  {"$bin": "<base64>"}, with "$ext": type first when type_name is given
static json_t *
s_bin_object (const char *type_name, int type, const char *data, size_t size)
{
    zarmour_t *armour = zarmour_new ();
    //  zarmour_encode asserts on a NULL pointer, even for no bytes
    char *base64 = armour? zarmour_encode (armour, (const byte *) (size? data: ""), size): NULL;
    zarmour_destroy (&armour);
    json_t *object = base64? json_object (): NULL;
    if (object && ((type_name && json_object_set_new (object, type_name, json_integer (type)))
                   || json_object_set_new (object, "$bin", json_string (base64)))) {
        json_decref (object);
        object = NULL;
    }
    free (base64);
    return object;
}

static json_t *s_to_json (const msgpack_object *object);
static char *s_dump (json_t *value, int flags);

//  A map key as JSON key text: a str as itself, anything else as its
//  compact JSON text, so the key 1 becomes "1"
static char *
s_key_text (const msgpack_object *key, size_t *size)
{
    if (key->type == MSGPACK_OBJECT_STR)
        return s_utf8_clean (key->via.str.ptr, key->via.str.size, size);
    json_t *value = s_to_json (key);
    char *text = value? s_dump (value, 0): NULL;
    json_decref (value);
    if (text)
        *size = strlen (text);
    return text;
}

static json_t *
s_map (const msgpack_object_map *map)
{
    json_t *object = json_object ();
    for (uint32_t i = 0; object && i < map->size; i++) {
        size_t key_size = 0;
        char *key = s_key_text (&map->ptr [i].key, &key_size);
        //  jansson takes the value's reference even when it fails; a later
        //  duplicate key replaces the earlier value, as most decoders do
        if (!key || json_object_setn_new_nocheck (object, key, key_size,
                                                  s_to_json (&map->ptr [i].val))) {
            json_decref (object);
            object = NULL;
        }
        free (key);
    }
    return object;
}

static json_t *
s_array (const msgpack_object_array *array)
{
    json_t *list = json_array ();
    for (uint32_t i = 0; list && i < array->size; i++)
        if (json_array_append_new (list, s_to_json (&array->ptr [i]))) {
            json_decref (list);
            list = NULL;
        }
    return list;
}

//  Converts a decoded value; NULL when out of memory. Depth is bounded by
//  the scan that came before.
static json_t *
s_to_json (const msgpack_object *object)
{
    switch (object->type) {
        case MSGPACK_OBJECT_NIL: return json_null ();
        case MSGPACK_OBJECT_BOOLEAN: return json_boolean (object->via.boolean);
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
            //  jansson's integers are long long: beyond that only a real fits
            if (object->via.u64 > INT64_MAX)
                return json_real ((double) object->via.u64);
            return json_integer ((json_int_t) object->via.u64);
        case MSGPACK_OBJECT_NEGATIVE_INTEGER: return json_integer (object->via.i64);
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64:
            //  JSON has no NaN or infinity; null is what JavaScript prints
            return isfinite (object->via.f64)? json_real (object->via.f64): json_null ();
        case MSGPACK_OBJECT_STR: return s_string (object->via.str.ptr, object->via.str.size);
        case MSGPACK_OBJECT_BIN:
            return s_bin_object (NULL, 0, object->via.bin.ptr, object->via.bin.size);
        case MSGPACK_OBJECT_EXT:
            return s_bin_object ("$ext", object->via.ext.type, object->via.ext.ptr,
                                 object->via.ext.size);
        case MSGPACK_OBJECT_ARRAY: return s_array (&object->via.array);
        case MSGPACK_OBJECT_MAP: return s_map (&object->via.map);
    }
    return NULL;
}

//  The fewest significant digits, from 15 to 17, that give back every real
//  in value exactly, so 0.1 prints as 0.1 and not 0.10000000000000001;
//  0 when there are no reals
static int
s_real_digits (json_t *value)
{
    int digits = 0;
    if (json_is_real (value)) {
        double real = json_real_value (value);
        char text [32];
        for (digits = 15; digits < 17; digits++) {
            snprintf (text, sizeof (text), "%.*g", digits, real);
            if (strtod (text, NULL) == real)
                break;
        }
    }
    const char *key;
    json_t *child;
    size_t index;
    if (json_is_object (value))
        json_object_foreach (value, key, child) {
            int needed = s_real_digits (child);
            digits = needed > digits? needed: digits;
        }
    if (json_is_array (value))
        json_array_foreach (value, index, child) {
            int needed = s_real_digits (child);
            digits = needed > digits? needed: digits;
        }
    return digits;
}

static char *
s_jansson_dump (json_t *value, int flags)
{
    size_t dump = JSON_ENCODE_ANY | JSON_REAL_PRECISION (s_real_digits (value));
    dump |= (flags & CHORUS_PAYLOAD_PRETTY)? JSON_INDENT (2): JSON_COMPACT;
    if (flags & CHORUS_PAYLOAD_SORT)
        dump |= JSON_SORT_KEYS;
    return json_dumps (value, dump);
}

//  The text of a value in memory of our own, so that callers free it with
//  free () whatever allocator an application gave jansson; NULL when out
//  of memory
static char *
s_dump (json_t *value, int flags)
{
    char *text = s_jansson_dump (value, flags);
    char *copy = text? strdup (text): NULL;
    if (text) {
        json_free_t jansson_free;
        json_get_alloc_funcs (NULL, &jansson_free);
        jansson_free (text);
    }
    return copy;
}

//  Checks and decodes exactly one MessagePack value; NULL with the reason
//  in error and the code in *code
static json_t *
s_decode (const void *data, size_t size, char *error, size_t error_size, int *code)
{
    *code = CHORUS_EMALFORMED;
    if (!data || size == 0) {
        s_error (error, error_size, "no bytes, so no MessagePack value");
        return NULL;
    }
    size_t end;
    const char *problem = chorus__mpscan (data, size, CHORUS_PAYLOAD_MAX_DEPTH,
                                          "nesting deeper than "
                                          S_DIGITS (CHORUS_PAYLOAD_MAX_DEPTH),
                                          &end);
    if (problem) {
        s_error (error, error_size, "malformed MessagePack at byte %zu: %s", end, problem);
        return NULL;
    }
    if (end != size) {
        s_error (error, error_size, "%zu trailing bytes after the MessagePack value", size - end);
        return NULL;
    }
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    size_t offset = 0;
    json_t *root = NULL;
    int rc = msgpack_unpack_next (&unpacked, (const char *) data, size, &offset);
    if (rc != MSGPACK_UNPACK_SUCCESS)
        s_error (error, error_size, "msgpack-c could not unpack the value (%d)", rc);
    else
    if (!(root = s_to_json (&unpacked.data))) {
        s_error (error, error_size, "out of memory");
        *code = CHORUS_ENOMEM;
    }
    msgpack_unpacked_destroy (&unpacked);
    return root;
}

int
chorus_payload_to_json (const void *data, size_t size, int flags, char **json, char *error,
                        size_t error_size)
{
    //  The reason is also the failure's detail (chorus_node_error (NULL))
    char reason [256];
    if (!error || error_size == 0) {
        error = reason;
        error_size = sizeof (reason);
    }
    error [0] = 0;
    if (!json) {
        s_error (error, error_size, "no place for the text");
        return chorus__failf (CHORUS_EINVAL, "%s", error);
    }
    *json = NULL;
    int rc;
    json_t *root = s_decode (data, size, error, error_size, &rc);
    if (!root && rc == CHORUS_EMALFORMED && (flags & CHORUS_PAYLOAD_RAW_AS_BIN)) {
        //  Raw bytes of a program outside the convention, shown whole
        root = s_bin_object (NULL, 0, data? (const char *) data: "", data? size: 0);
        rc = CHORUS_ENOMEM;
        error [0] = 0;
    }
    if (!root) {
        if (rc == CHORUS_ENOMEM)
            s_error (error, error_size, "out of memory");
        return chorus__failf (rc, "%s", error);
    }
    *json = s_dump (root, flags);
    json_decref (root);
    if (!*json) {
        s_error (error, error_size, "out of memory");
        return chorus__failf (CHORUS_ENOMEM, "%s", error);
    }
    return 0;
}

void
chorus_payload_free (void *data)
{
    free (data);
}
