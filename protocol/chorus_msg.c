/*  chorus_msg.c — the Chorus wire codec (see chorus-protocol.md).

    A body is one MessagePack array: signature, version, type, id and the
    fields of the type in a fixed order. The field layout of every type is
    the table below; encode, decode and the spec test all read it.
*/
#include "chorus_msg.h"

#include <inttypes.h>
#include <msgpack.h>
#include <stdarg.h>

typedef enum { T_STR, T_NAME, T_UINT, T_BOOL, T_BIN, T_STRS, T_SUBS, T_MAP } s_kind_t;

typedef enum {
    F_ID, F_SERVICE, F_INSTANCE, F_ENDPOINT, F_PUB_ENDPOINT, F_TOPIC, F_KEY, F_CORRELATION,
    F_CAUSATION, F_GROUP, F_PREFIX, F_REQUEST, F_MESSAGE, F_NAME, F_IDEMPOTENCY, F_CODE,
    F_GENERATION, F_HEAD, F_SEQ, F_TIMESTAMP, F_ATTEMPT, F_STATUS, F_FROM, F_TO, F_LIMIT,
    F_DEADLINE, F_RETRYABLE, F_PAYLOAD, F_PEERS, F_TOPICS, F_SUBSCRIPTIONS, F_HEADERS,
    F_COUNT
} s_field_id_t;

typedef struct {
    const char *name;   //  protocol name of the field
    s_kind_t kind;      //  what it holds on the wire
    size_t min;         //  minimum length of a string when present
    size_t max;         //  maximum length of a string, bin or list
} s_field_t;

static const s_field_t s_fields [F_COUNT] = {
    [F_ID] = {"id", T_STR, 1, 64},
    [F_SERVICE] = {"service", T_NAME, 1, 64},
    [F_INSTANCE] = {"instance", T_NAME, 1, 64},
    [F_ENDPOINT] = {"endpoint", T_STR, 0, 256},
    [F_PUB_ENDPOINT] = {"pub_endpoint", T_STR, 0, 256},
    [F_TOPIC] = {"topic", T_NAME, 1, 256},
    [F_KEY] = {"key", T_STR, 0, 256},
    [F_CORRELATION] = {"correlation", T_STR, 0, 128},
    [F_CAUSATION] = {"causation", T_STR, 0, 128},
    [F_GROUP] = {"group", T_NAME, 1, 64},
    [F_PREFIX] = {"prefix", T_NAME, 0, 256},
    [F_REQUEST] = {"request", T_STR, 0, 64},
    [F_MESSAGE] = {"message", T_STR, 0, 4096},
    [F_NAME] = {"name", T_NAME, 1, 128},
    [F_IDEMPOTENCY] = {"idempotency", T_STR, 0, 256},
    [F_CODE] = {"code", T_STR, 0, 64},
    [F_GENERATION] = {"generation", T_UINT, 0, 0},
    [F_HEAD] = {"head", T_UINT, 0, 0},
    [F_SEQ] = {"seq", T_UINT, 0, 0},
    [F_TIMESTAMP] = {"timestamp", T_UINT, 0, 0},
    [F_ATTEMPT] = {"attempt", T_UINT, 0, 0},
    [F_STATUS] = {"status", T_UINT, 0, 0},
    [F_FROM] = {"from", T_UINT, 0, 0},
    [F_TO] = {"to", T_UINT, 0, 0},
    [F_LIMIT] = {"limit", T_UINT, 0, 0},
    [F_DEADLINE] = {"deadline", T_UINT, 0, 0},
    [F_RETRYABLE] = {"retryable", T_BOOL, 0, 0},
    [F_PAYLOAD] = {"payload", T_BIN, 0, CHORUS_MSG_MAX_PAYLOAD},
    [F_PEERS] = {"peers", T_STRS, 1, 256},
    [F_TOPICS] = {"topics", T_STRS, 1, 256},
    [F_SUBSCRIPTIONS] = {"subscriptions", T_SUBS, 0, 256},
    [F_HEADERS] = {"headers", T_MAP, 0, 1024},
};

#define S_MAX_FIELDS 12
#define OPT 1   //  the field may be nil (absent)

typedef struct {
    uint8_t id;         //  s_field_id_t
    uint8_t optional;   //  OPT if nil is allowed
} s_slot_t;

typedef struct {
    const char *name;                   //  protocol name of the message
    size_t count;                       //  fields after the id
    s_slot_t slots [S_MAX_FIELDS];      //  the fields, in wire order
} s_type_t;

static const s_type_t s_types [CHORUS_MSG_TYPES + 1] = {
    [CHORUS_MSG_HELLO] = {"HELLO", 10,
        {{F_SERVICE}, {F_INSTANCE}, {F_ENDPOINT}, {F_PUB_ENDPOINT}, {F_GENERATION}, {F_HEAD},
         {F_PEERS}, {F_SUBSCRIPTIONS}, {F_TOPICS}, {F_HEADERS, OPT}}},
    [CHORUS_MSG_PING] = {"PING", 1, {{F_HEAD}}},
    [CHORUS_MSG_PONG] = {"PONG", 1, {{F_HEAD}}},
    [CHORUS_MSG_EVENT] = {"EVENT", 12,
        {{F_SERVICE}, {F_INSTANCE}, {F_SEQ}, {F_TOPIC}, {F_KEY, OPT}, {F_CORRELATION},
         {F_CAUSATION, OPT}, {F_TIMESTAMP}, {F_GROUP, OPT}, {F_ATTEMPT}, {F_HEADERS, OPT},
         {F_PAYLOAD, OPT}}},
    [CHORUS_MSG_EVENT_ACK] = {"EVENT-ACK", 3, {{F_GROUP}, {F_SEQ}, {F_STATUS}}},
    [CHORUS_MSG_FETCH] = {"FETCH", 4, {{F_FROM}, {F_TO}, {F_LIMIT}, {F_PREFIX, OPT}}},
    [CHORUS_MSG_REPLAY] = {"REPLAY", 4, {{F_REQUEST}, {F_FROM}, {F_TO}, {F_HEAD}}},
    [CHORUS_MSG_TRUNCATED] = {"TRUNCATED", 5,
        {{F_REQUEST, OPT}, {F_GROUP, OPT}, {F_FROM}, {F_TO}, {F_MESSAGE, OPT}}},
    [CHORUS_MSG_COMMAND] = {"COMMAND", 10,
        {{F_SERVICE}, {F_NAME}, {F_IDEMPOTENCY, OPT}, {F_CORRELATION}, {F_CAUSATION, OPT},
         {F_TIMESTAMP}, {F_DEADLINE}, {F_ATTEMPT}, {F_HEADERS, OPT}, {F_PAYLOAD, OPT}}},
    [CHORUS_MSG_REPLY] = {"REPLY", 8,
        {{F_REQUEST}, {F_CORRELATION}, {F_TIMESTAMP}, {F_STATUS}, {F_CODE, OPT},
         {F_MESSAGE, OPT}, {F_RETRYABLE}, {F_PAYLOAD, OPT}}},
    [CHORUS_MSG_ERROR] = {"ERROR", 3, {{F_REQUEST, OPT}, {F_CODE}, {F_MESSAGE, OPT}}},
    [CHORUS_MSG_BYE] = {"BYE", 0, {{0}}},
};

typedef struct {
    char *prefix;       //  topic prefix the group subscribes to
    uint64_t since;     //  group creation time, ms since epoch (0 = earliest)
    uint64_t flags;     //  CHORUS_SUB_*
} s_sub_t;

struct _chorus_msg_t {
    int type;                       //  CHORUS_MSG_*
    zframe_t *routing_id;           //  peer's routing id on a ROUTER
    char *str [F_COUNT];            //  string fields, NULL when absent
    uint64_t num [F_COUNT];         //  number and bool fields
    zlist_t *list [F_COUNT];        //  string list fields (peers, topics)
    s_sub_t *subs;                  //  subscriptions
    size_t subs_size;               //  subscriptions in use
    size_t subs_max;                //  subscriptions allocated
    zhash_t *headers;               //  headers, NULL when absent
    uint8_t *payload;               //  payload bytes, NULL when absent
    size_t payload_size;            //  payload length
    char reason [256];              //  why the last decode/encode failed
};

//  --------------------------------------------------------------------------
//  Object lifetime

chorus_msg_t *
chorus_msg_new (int type)
{
    if (type < 1 || type > CHORUS_MSG_TYPES)
        return NULL;
    chorus_msg_t *self = (chorus_msg_t *) zmalloc (sizeof (chorus_msg_t));
    if (self)
        self->type = type;
    return self;
}

//  Frees every field, leaving type and routing id
static void
s_clear (chorus_msg_t *self)
{
    for (int i = 0; i < F_COUNT; i++) {
        zstr_free (&self->str [i]);
        zlist_destroy (&self->list [i]);
        self->num [i] = 0;
    }
    for (size_t i = 0; i < self->subs_size; i++)
        free (self->subs [i].prefix);
    self->subs_size = 0;
    zhash_destroy (&self->headers);
    free (self->payload);
    self->payload = NULL;
    self->payload_size = 0;
}

void
chorus_msg_destroy (chorus_msg_t **self_p)
{
    assert (self_p);
    chorus_msg_t *self = *self_p;
    if (self) {
        s_clear (self);
        free (self->subs);
        zframe_destroy (&self->routing_id);
        free (self);
        *self_p = NULL;
    }
}

static int
s_fail (chorus_msg_t *self, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    vsnprintf (self->reason, sizeof (self->reason), format, args);
    va_end (args);
    return CHORUS_MSG_MALFORMED;
}

//  --------------------------------------------------------------------------
//  Structural scan. msgpack-c allocates an array's or map's element storage
//  from the count in its header before it reads any element, so a 5-byte
//  frame could ask for gigabytes. We walk the framing first and refuse
//  counts larger than the bytes left, nesting beyond the limit, truncation
//  and trailing bytes; only then does msgpack-c build the object.

typedef struct {
    const uint8_t *data;    //  frame being scanned
    size_t size;            //  its length
    size_t pos;             //  next byte to read
} s_scan_t;

static uint64_t
s_be (const uint8_t *bytes, int width)
{
    uint64_t value = 0;
    for (int i = 0; i < width; i++)
        value = (value << 8) | bytes [i];
    return value;
}

//  Reads a big-endian length of `width` bytes; -1 if truncated
static int
s_scan_length (s_scan_t *scan, int width, uint64_t *length)
{
    if (scan->size - scan->pos < (size_t) width)
        return -1;
    *length = s_be (scan->data + scan->pos, width);
    scan->pos += width;
    return 0;
}

//  Skips `length` bytes; -1 if fewer are left
static int
s_scan_skip (s_scan_t *scan, uint64_t length)
{
    if (scan->size - scan->pos < length)
        return -1;
    scan->pos += (size_t) length;
    return 0;
}

static const char *s_scan_value (s_scan_t *scan, int depth);

static const char *
s_scan_container (s_scan_t *scan, int depth, uint64_t count, uint64_t per_element)
{
    if (depth >= CHORUS_MSG_MAX_DEPTH)
        return "nesting deeper than the protocol allows";
    if (count > (scan->size - scan->pos) / per_element)
        return "array or map count exceeds the bytes left";
    for (uint64_t i = 0; i < count * per_element; i++) {
        const char *error = s_scan_value (scan, depth + 1);
        if (error)
            return error;
    }
    return NULL;
}

static const char *
s_scan_value (s_scan_t *scan, int depth)
{
    static const char *truncated = "truncated";
    if (scan->pos >= scan->size)
        return truncated;
    uint8_t byte = scan->data [scan->pos++];
    uint64_t length = 0;
    if (byte <= 0x7f || byte >= 0xe0 || byte == 0xc0 || byte == 0xc2 || byte == 0xc3)
        return NULL;
    if (byte >= 0x80 && byte <= 0x8f)
        return s_scan_container (scan, depth, byte & 0x0f, 2);
    if (byte >= 0x90 && byte <= 0x9f)
        return s_scan_container (scan, depth, byte & 0x0f, 1);
    if (byte >= 0xa0 && byte <= 0xbf)
        return s_scan_skip (scan, byte & 0x1f)? truncated: NULL;
    switch (byte) {
        case 0xc4: case 0xc5: case 0xc6:            //  bin 8/16/32
        case 0xd9: case 0xda: case 0xdb: {          //  str 8/16/32
            int width = byte <= 0xc6? 1 << (byte - 0xc4): 1 << (byte - 0xd9);
            if (s_scan_length (scan, width, &length) || s_scan_skip (scan, length))
                return truncated;
            return NULL;
        }
        case 0xc7: case 0xc8: case 0xc9:            //  ext 8/16/32
            if (s_scan_length (scan, 1 << (byte - 0xc7), &length)
            ||  s_scan_skip (scan, 1) || s_scan_skip (scan, length))
                return truncated;
            return NULL;
        case 0xca: return s_scan_skip (scan, 4)? truncated: NULL;
        case 0xcb: return s_scan_skip (scan, 8)? truncated: NULL;
        case 0xcc: case 0xcd: case 0xce: case 0xcf:  //  uint 8..64
            return s_scan_skip (scan, 1 << (byte - 0xcc))? truncated: NULL;
        case 0xd0: case 0xd1: case 0xd2: case 0xd3:  //  int 8..64
            return s_scan_skip (scan, 1 << (byte - 0xd0))? truncated: NULL;
        case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8:  //  fixext
            return s_scan_skip (scan, 1 + (1 << (byte - 0xd4)))? truncated: NULL;
        case 0xdc: case 0xdd:                       //  array 16/32
            if (s_scan_length (scan, byte == 0xdc? 2: 4, &length))
                return truncated;
            return s_scan_container (scan, depth, length, 1);
        case 0xde: case 0xdf:                       //  map 16/32
            if (s_scan_length (scan, byte == 0xde? 2: 4, &length))
                return truncated;
            return s_scan_container (scan, depth, length, 2);
        default:
            return "byte 0xc1 is never used in MessagePack";
    }
}

//  --------------------------------------------------------------------------
//  Field rules, shared by decode (on the wire's bytes) and encode (on ours)

static bool
s_valid_name (const char *data, size_t size)
{
    for (size_t i = 0; i < size; i++)
        if ((uint8_t) data [i] < 0x21 || (uint8_t) data [i] > 0x7e)
            return false;
    return true;
}

//  Checks a string against its field's rule; returns NULL or what is wrong
static const char *
s_check_str (const s_field_t *field, const char *data, size_t size)
{
    if (size > field->max)
        return "string longer than its limit";
    if (size < field->min)
        return "string shorter than its limit";
    if (field->kind == T_NAME && !s_valid_name (data, size))
        return "name holds a byte outside printable ASCII";
    if (memchr (data, 0, size))
        return "string holds a NUL byte";
    return NULL;
}

static char *
s_strndup (const char *data, size_t size)
{
    char *copy = (char *) malloc (size + 1);
    if (copy) {
        memcpy (copy, data, size);
        copy [size] = 0;
    }
    return copy;
}

//  --------------------------------------------------------------------------
//  Decode

static const char *
s_decode_str (const s_field_t *field, const msgpack_object *object, char **target)
{
    if (object->type != MSGPACK_OBJECT_STR)
        return "expected a string";
    const char *error = s_check_str (field, object->via.str.ptr, object->via.str.size);
    if (error)
        return error;
    *target = s_strndup (object->via.str.ptr, object->via.str.size);
    return NULL;
}

static const char *
s_decode_field (chorus_msg_t *self, int id, const msgpack_object *object)
{
    const s_field_t *field = &s_fields [id];
    switch (field->kind) {
        case T_STR:
        case T_NAME:
            return s_decode_str (field, object, &self->str [id]);
        case T_UINT:
            if (object->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
                return "expected a non-negative integer";
            self->num [id] = object->via.u64;
            return NULL;
        case T_BOOL:
            if (object->type != MSGPACK_OBJECT_BOOLEAN)
                return "expected a boolean";
            self->num [id] = object->via.boolean;
            return NULL;
        case T_BIN:
            if (object->type != MSGPACK_OBJECT_BIN)
                return "expected bin";
            if (object->via.bin.size > field->max)
                return "payload larger than its limit";
            //  malloc (0) may return NULL; a present empty payload must not
            self->payload = (uint8_t *) malloc (object->via.bin.size + 1);
            memcpy (self->payload, object->via.bin.ptr, object->via.bin.size);
            self->payload_size = object->via.bin.size;
            return NULL;
        case T_STRS: {
            if (object->type != MSGPACK_OBJECT_ARRAY)
                return "expected an array of strings";
            if (object->via.array.size > CHORUS_MSG_MAX_LIST)
                return "list longer than its limit";
            self->list [id] = zlist_new ();
            zlist_autofree (self->list [id]);
            for (uint32_t i = 0; i < object->via.array.size; i++) {
                char *value = NULL;
                const char *error = s_decode_str (field, &object->via.array.ptr [i], &value);
                if (error)
                    return error;
                zlist_append (self->list [id], value);
                free (value);
            }
            return NULL;
        }
        case T_SUBS: {
            if (object->type != MSGPACK_OBJECT_ARRAY)
                return "expected an array of subscriptions";
            if (object->via.array.size > CHORUS_MSG_MAX_LIST)
                return "list longer than its limit";
            static const s_field_t prefix = {"prefix", T_NAME, 0, 256};
            for (uint32_t i = 0; i < object->via.array.size; i++) {
                const msgpack_object *entry = &object->via.array.ptr [i];
                if (entry->type != MSGPACK_OBJECT_ARRAY || entry->via.array.size != 3)
                    return "subscription is not an array of 3";
                const msgpack_object *part = entry->via.array.ptr;
                if (part [1].type != MSGPACK_OBJECT_POSITIVE_INTEGER
                ||  part [2].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
                    return "subscription since/flags not non-negative integers";
                char *value = NULL;
                const char *error = s_decode_str (&prefix, &part [0], &value);
                if (error)
                    return error;
                chorus_msg_add_subscription (self, value, part [1].via.u64, part [2].via.u64);
                free (value);
            }
            return NULL;
        }
        case T_MAP: {
            if (object->type != MSGPACK_OBJECT_MAP)
                return "expected a map";
            if (object->via.map.size > CHORUS_MSG_MAX_HEADERS)
                return "map larger than its limit";
            static const s_field_t name = {"header", T_STR, 1, 64};
            static const s_field_t value = {"header", T_STR, 0, 1024};
            self->headers = zhash_new ();
            zhash_autofree (self->headers);
            for (uint32_t i = 0; i < object->via.map.size; i++) {
                char *key_str = NULL, *value_str = NULL;
                const char *error = s_decode_str (&name, &object->via.map.ptr [i].key, &key_str);
                if (!error)
                    error = s_decode_str (&value, &object->via.map.ptr [i].val, &value_str);
                if (!error && zhash_insert (self->headers, key_str, value_str))
                    error = "duplicate header name";
                free (key_str);
                free (value_str);
                if (error)
                    return error;
            }
            return NULL;
        }
    }
    return "unknown field kind";
}

int
chorus_msg_decode (chorus_msg_t *self, const void *data, size_t size)
{
    assert (self);
    s_clear (self);
    if (size > CHORUS_MSG_MAX_BODY)
        return s_fail (self, "body of %zu bytes exceeds the %d byte limit", size,
                       CHORUS_MSG_MAX_BODY);
    s_scan_t scan = {(const uint8_t *) data, size, 0};
    const char *error = s_scan_value (&scan, 0);
    if (error)
        return s_fail (self, "%s", error);
    if (scan.pos != size)
        return s_fail (self, "%zu trailing bytes after the body", size - scan.pos);

    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    size_t offset = 0;
    int rc = CHORUS_MSG_MALFORMED;
    if (msgpack_unpack_next (&unpacked, (const char *) data, size, &offset)
        != MSGPACK_UNPACK_SUCCESS) {
        s_fail (self, "not a MessagePack value");
        goto done;
    }
    const msgpack_object *root = &unpacked.data;
    if (root->type != MSGPACK_OBJECT_ARRAY || root->via.array.size < 4) {
        s_fail (self, "body is not an array of at least 4 elements");
        goto done;
    }
    const msgpack_object *element = root->via.array.ptr;
    if (element [0].type != MSGPACK_OBJECT_POSITIVE_INTEGER
    ||  element [0].via.u64 != CHORUS_MSG_SIGNATURE) {
        s_fail (self, "wrong signature");
        goto done;
    }
    if (element [1].type != MSGPACK_OBJECT_POSITIVE_INTEGER
    ||  element [1].via.u64 != CHORUS_MSG_VERSION) {
        s_fail (self, "unsupported protocol version");
        goto done;
    }
    if (element [2].type != MSGPACK_OBJECT_POSITIVE_INTEGER
    ||  element [2].via.u64 < 1 || element [2].via.u64 > CHORUS_MSG_TYPES) {
        s_fail (self, "unknown message type");
        goto done;
    }
    int type = (int) element [2].via.u64;
    const s_type_t *layout = &s_types [type];
    if (root->via.array.size != 4 + layout->count) {
        s_fail (self, "%s has %u elements, expected %zu", layout->name,
                root->via.array.size, 4 + layout->count);
        goto done;
    }
    self->type = type;
    if ((error = s_decode_field (self, F_ID, &element [3]))) {
        s_fail (self, "%s field 'id': %s", layout->name, error);
        goto done;
    }
    for (size_t i = 0; i < layout->count; i++) {
        const s_slot_t *slot = &layout->slots [i];
        const msgpack_object *object = &element [4 + i];
        if (object->type == MSGPACK_OBJECT_NIL && slot->optional)
            continue;
        if ((error = s_decode_field (self, slot->id, object))) {
            s_fail (self, "%s field '%s': %s", layout->name, s_fields [slot->id].name, error);
            goto done;
        }
    }
    rc = 0;
done:
    msgpack_unpacked_destroy (&unpacked);
    if (rc)
        s_clear (self);
    return rc;
}

//  --------------------------------------------------------------------------
//  Encode

static int
s_sbuffer_fail (chorus_msg_t *self, msgpack_sbuffer *buffer, const char *name,
                const char *error)
{
    msgpack_sbuffer_destroy (buffer);
    snprintf (self->reason, sizeof (self->reason), "%s field '%s': %s",
              s_types [self->type].name, name, error);
    return -1;
}

static void
s_pack_str (msgpack_packer *packer, const char *value)
{
    size_t size = strlen (value);
    msgpack_pack_str (packer, size);
    msgpack_pack_str_body (packer, value, size);
}

//  Packs one field; returns NULL or what is wrong with our own value
static const char *
s_encode_field (chorus_msg_t *self, const s_slot_t *slot, msgpack_packer *packer)
{
    int id = slot->id;
    const s_field_t *field = &s_fields [id];
    switch (field->kind) {
        case T_STR:
        case T_NAME: {
            const char *value = self->str [id];
            if (!value) {
                if (!slot->optional)
                    return "required field is missing";
                msgpack_pack_nil (packer);
                return NULL;
            }
            const char *error = s_check_str (field, value, strlen (value));
            if (error)
                return error;
            s_pack_str (packer, value);
            return NULL;
        }
        case T_UINT:
            msgpack_pack_uint64 (packer, self->num [id]);
            return NULL;
        case T_BOOL:
            if (self->num [id])
                msgpack_pack_true (packer);
            else
                msgpack_pack_false (packer);
            return NULL;
        case T_BIN:
            if (!self->payload) {
                msgpack_pack_nil (packer);
                return NULL;
            }
            if (self->payload_size > field->max)
                return "payload larger than its limit";
            msgpack_pack_bin (packer, self->payload_size);
            msgpack_pack_bin_body (packer, self->payload, self->payload_size);
            return NULL;
        case T_STRS: {
            zlist_t *list = self->list [id];
            size_t size = list? zlist_size (list): 0;
            if (size > CHORUS_MSG_MAX_LIST)
                return "list longer than its limit";
            msgpack_pack_array (packer, size);
            for (char *value = list? (char *) zlist_first (list): NULL; value;
                 value = (char *) zlist_next (list)) {
                const char *error = s_check_str (field, value, strlen (value));
                if (error)
                    return error;
                s_pack_str (packer, value);
            }
            return NULL;
        }
        case T_SUBS: {
            if (self->subs_size > CHORUS_MSG_MAX_LIST)
                return "list longer than its limit";
            static const s_field_t prefix = {"prefix", T_NAME, 0, 256};
            msgpack_pack_array (packer, self->subs_size);
            for (size_t i = 0; i < self->subs_size; i++) {
                const s_sub_t *sub = &self->subs [i];
                const char *error = s_check_str (&prefix, sub->prefix, strlen (sub->prefix));
                if (error)
                    return error;
                msgpack_pack_array (packer, 3);
                s_pack_str (packer, sub->prefix);
                msgpack_pack_uint64 (packer, sub->since);
                msgpack_pack_uint64 (packer, sub->flags);
            }
            return NULL;
        }
        case T_MAP: {
            if (!self->headers) {
                msgpack_pack_nil (packer);
                return NULL;
            }
            if (zhash_size (self->headers) > CHORUS_MSG_MAX_HEADERS)
                return "map larger than its limit";
            //  Sorted, so that one message always has one encoding
            zlist_t *names = zhash_keys (self->headers);
            zlist_sort (names, (zlist_compare_fn *) strcmp);
            msgpack_pack_map (packer, zlist_size (names));
            const char *error = NULL;
            for (char *name = (char *) zlist_first (names); name && !error;
                 name = (char *) zlist_next (names)) {
                const char *value = (const char *) zhash_lookup (self->headers, name);
                size_t name_size = strlen (name);
                if (name_size < 1 || name_size > 64 || strlen (value) > 1024)
                    error = "header name or value outside its limits";
                s_pack_str (packer, name);
                s_pack_str (packer, value);
            }
            zlist_destroy (&names);
            return error;
        }
    }
    return "unknown field kind";
}

zframe_t *
chorus_msg_encode (chorus_msg_t *self)
{
    assert (self);
    const s_type_t *layout = &s_types [self->type];
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer packer;
    msgpack_packer_init (&packer, &buffer, msgpack_sbuffer_write);
    msgpack_pack_array (&packer, 4 + layout->count);
    msgpack_pack_uint64 (&packer, CHORUS_MSG_SIGNATURE);
    msgpack_pack_uint64 (&packer, CHORUS_MSG_VERSION);
    msgpack_pack_uint64 (&packer, self->type);
    static const s_slot_t id_slot = {F_ID, 0};
    const char *error = s_encode_field (self, &id_slot, &packer);
    if (error) {
        s_sbuffer_fail (self, &buffer, "id", error);
        return NULL;
    }
    for (size_t i = 0; i < layout->count; i++) {
        error = s_encode_field (self, &layout->slots [i], &packer);
        if (error) {
            s_sbuffer_fail (self, &buffer, s_fields [layout->slots [i].id].name, error);
            return NULL;
        }
    }
    if (buffer.size > CHORUS_MSG_MAX_BODY) {
        s_sbuffer_fail (self, &buffer, "body", "encoded body exceeds the body limit");
        return NULL;
    }
    zframe_t *frame = zframe_new (buffer.data, buffer.size);
    msgpack_sbuffer_destroy (&buffer);
    return frame;
}

//  --------------------------------------------------------------------------
//  Sockets

int
chorus_msg_recv (chorus_msg_t *self, zsock_t *input)
{
    assert (self);
    assert (input);
    zmsg_t *msg = zmsg_recv (input);
    if (!msg)
        return CHORUS_MSG_INTERRUPTED;
    int type = zsock_type (input);
    int rc = 0;
    zframe_t *topic = NULL;
    if (type == ZMQ_ROUTER) {
        zframe_destroy (&self->routing_id);
        self->routing_id = zmsg_pop (msg);
    }
    else
    if (type == ZMQ_SUB || type == ZMQ_XSUB)
        topic = zmsg_pop (msg);

    zframe_t *body = zmsg_pop (msg);
    if (!body || (type == ZMQ_ROUTER && !self->routing_id)
    ||  ((type == ZMQ_SUB || type == ZMQ_XSUB) && !topic))
        rc = s_fail (self, "missing frames");
    else
    if (zmsg_size (msg) > 0)
        rc = s_fail (self, "%zu extra frames", zmsg_size (msg));
    else
        rc = chorus_msg_decode (self, zframe_data (body), zframe_size (body));

    if (rc == 0 && topic) {
        const char *expected = self->str [F_TOPIC];
        if (self->type != CHORUS_MSG_EVENT || !expected
        ||  zframe_size (topic) != strlen (expected)
        ||  memcmp (zframe_data (topic), expected, zframe_size (topic)) != 0) {
            rc = s_fail (self, "topic frame does not match the EVENT's topic");
            s_clear (self);
        }
    }
    zframe_destroy (&topic);
    zframe_destroy (&body);
    zmsg_destroy (&msg);
    return rc;
}

int
chorus_msg_send (chorus_msg_t *self, zsock_t *output)
{
    assert (self);
    assert (output);
    zframe_t *body = chorus_msg_encode (self);
    if (!body)
        return -1;
    int type = zsock_type (output);
    if (type == ZMQ_ROUTER) {
        if (!self->routing_id
        ||  zframe_send (&self->routing_id, output, ZFRAME_MORE + ZFRAME_REUSE) == -1) {
            zframe_destroy (&body);
            return -1;
        }
    }
    else
    if (type == ZMQ_PUB || type == ZMQ_XPUB) {
        const char *topic = self->str [F_TOPIC];
        if (self->type != CHORUS_MSG_EVENT || !topic || zstr_sendm (output, topic) == -1) {
            zframe_destroy (&body);
            return -1;
        }
    }
    return zframe_send (&body, output, 0);
}

//  --------------------------------------------------------------------------
//  Introspection

const char *
chorus_msg_reason (chorus_msg_t *self)
{
    assert (self);
    return self->reason;
}

int
chorus_msg_type (chorus_msg_t *self)
{
    assert (self);
    return self->type;
}

const char *
chorus_msg_command (chorus_msg_t *self)
{
    assert (self);
    return s_types [self->type].name;
}

const char *
chorus_msg_type_name (int type)
{
    return type >= 1 && type <= CHORUS_MSG_TYPES? s_types [type].name: NULL;
}

int
chorus_msg_type_fields (int type, const char **fields, size_t max)
{
    if (type < 1 || type > CHORUS_MSG_TYPES || max == 0)
        return -1;
    const s_type_t *layout = &s_types [type];
    size_t count = 0;
    for (; count < layout->count && count + 1 < max; count++)
        fields [count] = s_fields [layout->slots [count].id].name;
    fields [count] = NULL;
    return (int) layout->count;
}

zframe_t *
chorus_msg_routing_id (chorus_msg_t *self)
{
    assert (self);
    return self->routing_id;
}

void
chorus_msg_set_routing_id (chorus_msg_t *self, zframe_t *routing_id)
{
    assert (self);
    zframe_destroy (&self->routing_id);
    self->routing_id = routing_id? zframe_dup (routing_id): NULL;
}

void
chorus_msg_print (chorus_msg_t *self)
{
    assert (self);
    const s_type_t *layout = &s_types [self->type];
    zsys_debug ("chorus_msg: %s id=%s", layout->name, self->str [F_ID]? self->str [F_ID]: "-");
    for (size_t i = 0; i < layout->count; i++) {
        int id = layout->slots [i].id;
        const s_field_t *field = &s_fields [id];
        if (field->kind == T_STR || field->kind == T_NAME)
            zsys_debug ("    %s=%s", field->name, self->str [id]? self->str [id]: "(nil)");
        else
        if (field->kind == T_UINT || field->kind == T_BOOL)
            zsys_debug ("    %s=%" PRIu64, field->name, self->num [id]);
        else
        if (field->kind == T_BIN)
            zsys_debug ("    %s=%zu bytes", field->name, self->payload_size);
    }
}

//  --------------------------------------------------------------------------
//  Field accessors

static void
s_set_str (chorus_msg_t *self, int id, const char *value)
{
    assert (self);
    zstr_free (&self->str [id]);
    if (value)
        self->str [id] = strdup (value);
}

#define S_STR_ACCESSORS(name, id) \
    const char *chorus_msg_##name (chorus_msg_t *self) { assert (self); return self->str [id]; } \
    void chorus_msg_set_##name (chorus_msg_t *self, const char *value) \
    { s_set_str (self, id, value); }

S_STR_ACCESSORS (id, F_ID)
S_STR_ACCESSORS (service, F_SERVICE)
S_STR_ACCESSORS (instance, F_INSTANCE)
S_STR_ACCESSORS (endpoint, F_ENDPOINT)
S_STR_ACCESSORS (pub_endpoint, F_PUB_ENDPOINT)
S_STR_ACCESSORS (topic, F_TOPIC)
S_STR_ACCESSORS (key, F_KEY)
S_STR_ACCESSORS (correlation, F_CORRELATION)
S_STR_ACCESSORS (causation, F_CAUSATION)
S_STR_ACCESSORS (group, F_GROUP)
S_STR_ACCESSORS (prefix, F_PREFIX)
S_STR_ACCESSORS (request, F_REQUEST)
S_STR_ACCESSORS (message, F_MESSAGE)
S_STR_ACCESSORS (name, F_NAME)
S_STR_ACCESSORS (idempotency, F_IDEMPOTENCY)
S_STR_ACCESSORS (code, F_CODE)

#define S_NUM_ACCESSORS(name, id) \
    uint64_t chorus_msg_##name (chorus_msg_t *self) { assert (self); return self->num [id]; } \
    void chorus_msg_set_##name (chorus_msg_t *self, uint64_t value) \
    { assert (self); self->num [id] = value; }

S_NUM_ACCESSORS (generation, F_GENERATION)
S_NUM_ACCESSORS (head, F_HEAD)
S_NUM_ACCESSORS (seq, F_SEQ)
S_NUM_ACCESSORS (timestamp, F_TIMESTAMP)
S_NUM_ACCESSORS (attempt, F_ATTEMPT)
S_NUM_ACCESSORS (status, F_STATUS)
S_NUM_ACCESSORS (from, F_FROM)
S_NUM_ACCESSORS (to, F_TO)
S_NUM_ACCESSORS (limit, F_LIMIT)
S_NUM_ACCESSORS (deadline, F_DEADLINE)

bool
chorus_msg_retryable (chorus_msg_t *self)
{
    assert (self);
    return self->num [F_RETRYABLE] != 0;
}

void
chorus_msg_set_retryable (chorus_msg_t *self, bool retryable)
{
    assert (self);
    self->num [F_RETRYABLE] = retryable;
}

const void *
chorus_msg_payload (chorus_msg_t *self)
{
    assert (self);
    return self->payload;
}

size_t
chorus_msg_payload_size (chorus_msg_t *self)
{
    assert (self);
    return self->payload_size;
}

void
chorus_msg_set_payload (chorus_msg_t *self, const void *data, size_t size)
{
    assert (self);
    free (self->payload);
    self->payload = NULL;
    self->payload_size = 0;
    if (data) {
        self->payload = (uint8_t *) malloc (size + 1);
        assert (self->payload);
        memcpy (self->payload, data, size);
        self->payload_size = size;
    }
}

static void
s_add_to_list (chorus_msg_t *self, int id, const char *value)
{
    assert (self);
    assert (value);
    if (!self->list [id]) {
        self->list [id] = zlist_new ();
        zlist_autofree (self->list [id]);
    }
    zlist_append (self->list [id], (void *) value);
}

#define S_LIST_ACCESSORS(name, id) \
    zlist_t *chorus_msg_##name (chorus_msg_t *self) { assert (self); return self->list [id]; } \
    void chorus_msg_add_##name (chorus_msg_t *self, const char *value) \
    { s_add_to_list (self, id, value); }

S_LIST_ACCESSORS (peers, F_PEERS)
S_LIST_ACCESSORS (topics, F_TOPICS)

size_t
chorus_msg_subscriptions (chorus_msg_t *self)
{
    assert (self);
    return self->subs_size;
}

const char *
chorus_msg_subscription (chorus_msg_t *self, size_t index, uint64_t *since, uint64_t *flags)
{
    assert (self);
    if (index >= self->subs_size)
        return NULL;
    if (since)
        *since = self->subs [index].since;
    if (flags)
        *flags = self->subs [index].flags;
    return self->subs [index].prefix;
}

void
chorus_msg_add_subscription (chorus_msg_t *self, const char *prefix, uint64_t since,
                             uint64_t flags)
{
    assert (self);
    assert (prefix);
    if (self->subs_size == self->subs_max) {
        size_t max = self->subs_max? self->subs_max * 2: 4;
        s_sub_t *subs = (s_sub_t *) realloc (self->subs, max * sizeof (s_sub_t));
        assert (subs);
        self->subs = subs;
        self->subs_max = max;
    }
    s_sub_t *sub = &self->subs [self->subs_size++];
    sub->prefix = strdup (prefix);
    sub->since = since;
    sub->flags = flags;
}

const char *
chorus_msg_header (chorus_msg_t *self, const char *name)
{
    assert (self);
    return self->headers? (const char *) zhash_lookup (self->headers, name): NULL;
}

void
chorus_msg_set_header (chorus_msg_t *self, const char *name, const char *value)
{
    assert (self);
    assert (name);
    assert (value);
    if (!self->headers) {
        self->headers = zhash_new ();
        zhash_autofree (self->headers);
    }
    zhash_update (self->headers, name, (void *) value);
}

zhash_t *
chorus_msg_headers (chorus_msg_t *self)
{
    assert (self);
    return self->headers;
}
