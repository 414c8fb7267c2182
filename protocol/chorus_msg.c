/*  chorus_msg.c — the Chorus wire codec (see chorus-protocol.md).

    A body is one MessagePack array: signature, version, type, id and the
    fields of the type in a fixed order. The field layout of every type is
    the table below; encode, decode and the spec test all read it.
*/
#include "chorus_msg.h"

#include <pthread.h>
#include "chorus_msg_bytes.h"

#include <inttypes.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stddef.h>

typedef enum { T_STR, T_NAME, T_UINT, T_BOOL, T_BIN, T_STRS, T_SUBS, T_MAP, T_UINTS } s_kind_t;

typedef enum {
    F_ID, F_SERVICE, F_INSTANCE, F_ENDPOINT, F_PUB_ENDPOINT, F_TOPIC, F_KEY, F_CORRELATION,
    F_CAUSATION, F_GROUP, F_PREFIX, F_REQUEST, F_MESSAGE, F_NAME, F_IDEMPOTENCY, F_TARGET, F_CODE,
    F_GENERATION, F_HEAD, F_SEQ, F_TIMESTAMP, F_ATTEMPT, F_STATUS, F_FROM, F_TO, F_LIMIT,
    F_DEADLINE, F_TRY, F_RETRYABLE, F_PAYLOAD, F_PEERS, F_MEMBERS, F_TOPICS, F_SUBSCRIPTIONS,
    F_SEQS, F_HEADERS,
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
    [F_TARGET] = {"target", T_NAME, 1, 64},
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
    [F_TRY] = {"try", T_UINT, 0, 0},
    [F_RETRYABLE] = {"retryable", T_BOOL, 0, 0},
    [F_PAYLOAD] = {"payload", T_BIN, 0, CHORUS_MSG_MAX_PAYLOAD},
    [F_PEERS] = {"peers", T_STRS, 1, 256},
    [F_MEMBERS] = {"members", T_STRS, 1, 256},
    [F_TOPICS] = {"topics", T_STRS, 1, 256},
    [F_SUBSCRIPTIONS] = {"subscriptions", T_SUBS, 0, 256},
    [F_SEQS] = {"seqs", T_UINTS, 0, CHORUS_MSG_MAX_SEQS},
    [F_HEADERS] = {"headers", T_MAP, 0, 1024},
};

#define S_MAX_FIELDS 12
#define S_TAIL_MAX 1            //  trailing UINT fields at most 1 are left out, and
                                //  trailing lists when empty
#define OPT 1   //  the field may be nil (absent)

typedef struct {
    uint8_t id;         //  s_field_id_t
    uint8_t optional;   //  OPT if nil is allowed
} s_slot_t;

typedef struct {
    const char *name;                   //  protocol name of the message
    size_t count;                       //  fields after the id
    s_slot_t slots [S_MAX_FIELDS];      //  the fields, in wire order
    size_t tail;                        //  of them, the last that may be left out:
                                        //  fields added to version 1 later, absent
                                        //  meaning their default (a UINT at most
                                        //  S_TAIL_MAX, an empty list), and left out
                                        //  when they hold it
} s_type_t;

static const s_type_t s_types [CHORUS_MSG_TYPES + 1] = {
    [CHORUS_MSG_HELLO] = {"HELLO", 10,
        {{F_SERVICE}, {F_INSTANCE}, {F_ENDPOINT}, {F_PUB_ENDPOINT}, {F_GENERATION}, {F_HEAD},
         {F_PEERS}, {F_SUBSCRIPTIONS}, {F_TOPICS}, {F_HEADERS, OPT}}},
    [CHORUS_MSG_PING] = {"PING", 2, {{F_HEAD}, {F_MEMBERS}}, 1},
    [CHORUS_MSG_PONG] = {"PONG", 2, {{F_HEAD}, {F_MEMBERS}}, 1},
    [CHORUS_MSG_EVENT] = {"EVENT", 12,
        {{F_SERVICE}, {F_INSTANCE}, {F_SEQ}, {F_TOPIC}, {F_KEY, OPT}, {F_CORRELATION},
         {F_CAUSATION, OPT}, {F_TIMESTAMP}, {F_GROUP, OPT}, {F_ATTEMPT}, {F_HEADERS, OPT},
         {F_PAYLOAD, OPT}}},
    [CHORUS_MSG_EVENT_ACK] = {"EVENT-ACK", 4, {{F_GROUP}, {F_SEQ}, {F_STATUS}, {F_SEQS}}, 1},
    [CHORUS_MSG_FETCH] = {"FETCH", 4, {{F_FROM}, {F_TO}, {F_LIMIT}, {F_PREFIX, OPT}}},
    [CHORUS_MSG_REPLAY] = {"REPLAY", 4, {{F_REQUEST}, {F_FROM}, {F_TO}, {F_HEAD}}},
    [CHORUS_MSG_TRUNCATED] = {"TRUNCATED", 5,
        {{F_REQUEST, OPT}, {F_GROUP, OPT}, {F_FROM}, {F_TO}, {F_MESSAGE, OPT}}},
    [CHORUS_MSG_COMMAND] = {"COMMAND", 11,
        {{F_SERVICE}, {F_NAME}, {F_IDEMPOTENCY, OPT}, {F_CORRELATION}, {F_CAUSATION, OPT},
         {F_TIMESTAMP}, {F_DEADLINE}, {F_ATTEMPT}, {F_HEADERS, OPT}, {F_PAYLOAD, OPT},
         {F_TRY}}, 1},
    [CHORUS_MSG_REPLY] = {"REPLY", 8,
        {{F_REQUEST}, {F_CORRELATION}, {F_TIMESTAMP}, {F_STATUS}, {F_CODE, OPT},
         {F_MESSAGE, OPT}, {F_RETRYABLE}, {F_PAYLOAD, OPT}}},
    [CHORUS_MSG_ERROR] = {"ERROR", 3, {{F_REQUEST, OPT}, {F_CODE}, {F_MESSAGE, OPT}}},
    [CHORUS_MSG_BYE] = {"BYE", 0, {{0}}},
    [CHORUS_MSG_PING_REQ] = {"PING-REQ", 3, {{F_TARGET}, {F_HEAD}, {F_MEMBERS}}, 1},
    [CHORUS_MSG_PING_ACK] = {"PING-ACK", 4, {{F_REQUEST}, {F_TARGET}, {F_HEAD}, {F_MEMBERS}}, 1},
};

typedef struct {
    char *prefix;       //  topic prefix the group subscribes to
    uint64_t since;     //  group creation time, ms since epoch (0 = earliest)
    uint64_t flags;     //  CHORUS_SUB_*
} s_sub_t;

#define S_STRS (F_CODE + 1)                 //  string fields: F_ID .. F_CODE
#define S_NUMS (F_RETRYABLE - F_GENERATION + 1) //  F_GENERATION .. F_RETRYABLE
#define S_LISTS (F_TOPICS - F_PEERS + 1)        //  F_PEERS .. F_TOPICS
#define S_NUM(self, id) ((self)->num [(id) - F_GENERATION])
#define S_LIST(self, id) ((self)->list [(id) - F_PEERS])

//  Short strings and payloads live in an arena inside the message, so
//  that decoding an EVENT or a COMMAND costs no malloc per field
#define S_ARENA 512

struct _chorus_msg_t {
    int type;                       //  CHORUS_MSG_*
    zframe_t *routing_id;           //  peer's routing id on a ROUTER
    char peer_address [64];         //  remote address of a HELLO received on a ROUTER
    bool want_user_id;              //  record the sender's authenticated key
    char user_id [41];              //  the sender's CURVE key (Z85), or ""
    int source_fd;                  //  the connection a message came over, or -1
    //  Indexed by field id less the first id of the kind, so that the
    //  fields fit in a few cache lines: clearing them is the hot part
    //  of receiving a message
    char *str [S_STRS];             //  string fields, NULL when absent
    uint64_t num [S_NUMS];          //  number and bool fields
    zlist_t *list [S_LISTS];        //  string list fields (peers, members, topics)
    s_sub_t *subs;                  //  subscriptions
    uint64_t *seqs;                 //  EVENT-ACK: further seqs acknowledged
    size_t seqs_size;               //  seqs in use
    size_t seqs_max;                //  seqs allocated
    size_t subs_size;               //  subscriptions in use
    size_t subs_max;                //  subscriptions allocated
    zhash_t *headers;               //  headers, NULL when absent
    uint8_t *payload;               //  payload bytes, NULL when absent
    size_t payload_size;            //  payload length
    char reason [256];              //  why the last decode/encode failed
    size_t arena_used;              //  bytes of the arena in use
    char arena [S_ARENA];           //  storage for short fields
};

static bool
s_in_arena (chorus_msg_t *self, const void *pointer)
{
    return (const char *) pointer >= self->arena
        && (const char *) pointer < self->arena + S_ARENA;
}

//  Storage for size bytes: from the arena while it has room, else malloc
static void *
s_alloc (chorus_msg_t *self, size_t size)
{
    size_t aligned = (size + 7) & ~(size_t) 7;
    if (aligned <= S_ARENA - self->arena_used) {
        void *pointer = self->arena + self->arena_used;
        self->arena_used += aligned;
        return pointer;
    }
    void *pointer = malloc (size);
    assert (pointer);
    return pointer;
}

static void
s_release (chorus_msg_t *self, void *pointer)
{
    if (pointer && !s_in_arena (self, pointer))
        free (pointer);
}

//  Frees string field id; the arena takes back the last string it gave,
//  so that a field set again and again (a group per delivery) stays in it
static void
s_release_str (chorus_msg_t *self, int id)
{
    char *value = self->str [id];
    if (value && s_in_arena (self, value)) {
        size_t aligned = (strlen (value) + 1 + 7) & ~(size_t) 7;
        if (value + aligned == self->arena + self->arena_used)
            self->arena_used -= aligned;
    }
    else
        free (value);
    self->str [id] = NULL;
}

//  Replaces string field id with a copy of size bytes at data
static void
s_store_str (chorus_msg_t *self, int id, const char *data, size_t size)
{
    if (data == self->str [id])
        return;     //  set to itself
    s_release_str (self, id);
    char *copy = (char *) s_alloc (self, size + 1);
    memcpy (copy, data, size);
    copy [size] = 0;
    self->str [id] = copy;
}

//  --------------------------------------------------------------------------
//  Object lifetime

//  Messages destroyed are kept for the next chorus_msg_new, up to a bound:
//  a node makes and drops one or more per event, often in two threads (the
//  application's makes what the engine's drops), where malloc's per-thread
//  caches do not help and a message of a kilobyte costs the heap's slow
//  paths. None under AddressSanitizer, which should see every message freed.
#if defined (__SANITIZE_ADDRESS__)
#   define S_POOL_MAX 0
#else
#   define S_POOL_MAX 1024
#endif

static struct {
    pthread_mutex_t lock;
    chorus_msg_t *free [S_POOL_MAX + 1];
    size_t size;
} s_pool = {PTHREAD_MUTEX_INITIALIZER, {NULL}, 0};

static chorus_msg_t *
s_pool_take (void)
{
    chorus_msg_t *self = NULL;
    pthread_mutex_lock (&s_pool.lock);
    if (s_pool.size)
        self = s_pool.free [--s_pool.size];
    pthread_mutex_unlock (&s_pool.lock);
    return self? self: (chorus_msg_t *) malloc (sizeof (chorus_msg_t));
}

static void
s_pool_give (chorus_msg_t *self)
{
#if S_POOL_MAX > 0
    pthread_mutex_lock (&s_pool.lock);
    if (s_pool.size < S_POOL_MAX) {
        s_pool.free [s_pool.size++] = self;
        self = NULL;
    }
    pthread_mutex_unlock (&s_pool.lock);
#endif
    free (self);
}

chorus_msg_t *
chorus_msg_new (int type)
{
    if (type < 1 || type > CHORUS_MSG_TYPES)
        return NULL;
    //  Only the fields before the reason need zeroes; the reason and the
    //  arena are written before they are read
    chorus_msg_t *self = s_pool_take ();
    if (self) {
        memset (self, 0, offsetof (chorus_msg_t, reason));
        self->reason [0] = 0;
        self->arena_used = 0;
        self->type = type;
    }
    return self;
}

//  Frees every field, leaving type and routing id
static void
s_clear (chorus_msg_t *self)
{
    for (int i = 0; i < S_STRS; i++)
        if (self->str [i]) {
            s_release (self, self->str [i]);
            self->str [i] = NULL;
        }
    for (int i = 0; i < S_LISTS; i++)
        if (self->list [i])
            zlist_destroy (&self->list [i]);
    memset (self->num, 0, sizeof (self->num));
    for (size_t i = 0; i < self->subs_size; i++)
        free (self->subs [i].prefix);
    self->subs_size = 0;
    self->seqs_size = 0;
    if (self->headers)
        zhash_destroy (&self->headers);
    s_release (self, self->payload);
    self->payload = NULL;
    self->payload_size = 0;
    self->arena_used = 0;
}

void
chorus_msg_destroy (chorus_msg_t **self_p)
{
    assert (self_p);
    chorus_msg_t *self = *self_p;
    if (self) {
        s_clear (self);
        free (self->subs);
        free (self->seqs);
        zframe_destroy (&self->routing_id);
        s_pool_give (self);
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
        case T_NAME: {
            if (object->type != MSGPACK_OBJECT_STR)
                return "expected a string";
            const char *error = s_check_str (field, object->via.str.ptr, object->via.str.size);
            if (!error)
                s_store_str (self, id, object->via.str.ptr, object->via.str.size);
            return error;
        }
        case T_UINT:
            if (object->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
                return "expected a non-negative integer";
            S_NUM (self, id) = object->via.u64;
            return NULL;
        case T_BOOL:
            if (object->type != MSGPACK_OBJECT_BOOLEAN)
                return "expected a boolean";
            S_NUM (self, id) = object->via.boolean;
            return NULL;
        case T_BIN:
            if (object->type != MSGPACK_OBJECT_BIN)
                return "expected bin";
            if (object->via.bin.size > field->max)
                return "payload larger than its limit";
            //  One byte more: a present empty payload must not be NULL
            self->payload = (uint8_t *) s_alloc (self, object->via.bin.size + 1);
            memcpy (self->payload, object->via.bin.ptr, object->via.bin.size);
            self->payload_size = object->via.bin.size;
            return NULL;
        case T_STRS: {
            if (object->type != MSGPACK_OBJECT_ARRAY)
                return "expected an array of strings";
            if (object->via.array.size > CHORUS_MSG_MAX_LIST)
                return "list longer than its limit";
            S_LIST (self, id) = zlist_new ();
            zlist_autofree (S_LIST (self, id));
            for (uint32_t i = 0; i < object->via.array.size; i++) {
                char *value = NULL;
                const char *error = s_decode_str (field, &object->via.array.ptr [i], &value);
                if (error)
                    return error;
                zlist_append (S_LIST (self, id), value);
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
        case T_UINTS: {
            if (object->type != MSGPACK_OBJECT_ARRAY)
                return "expected an array of non-negative integers";
            if (object->via.array.size > field->max)
                return "list longer than its limit";
            for (uint32_t i = 0; i < object->via.array.size; i++)
                if (object->via.array.ptr [i].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
                    return "expected an array of non-negative integers";
            for (uint32_t i = 0; i < object->via.array.size; i++)
                chorus_msg_add_seq (self, object->via.array.ptr [i].via.u64);
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
    size_t end = 0;
    const char *error = chorus__msg_scan ((const uint8_t *) data, size, &end);
    if (error)
        return s_fail (self, "%s", error);
    if (end != size)
        return s_fail (self, "%zu trailing bytes after the body", size - end);

    msgpack_zone *zone = chorus__msg_zone ();
    if (!zone)
        return s_fail (self, "out of memory");
    msgpack_object object;
    size_t offset = 0;
    int rc = CHORUS_MSG_MALFORMED;
    if (msgpack_unpack ((const char *) data, size, &offset, zone, &object)
        != MSGPACK_UNPACK_SUCCESS) {
        s_fail (self, "not a MessagePack value");
        goto done;
    }
    const msgpack_object *root = &object;
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
    size_t present = root->via.array.size - 4;
    if (present > layout->count || present < layout->count - layout->tail) {
        if (layout->tail)
            s_fail (self, "%s has %u elements, expected %zu to %zu", layout->name,
                    root->via.array.size, 4 + layout->count - layout->tail, 4 + layout->count);
        else
            s_fail (self, "%s has %u elements, expected %zu", layout->name,
                    root->via.array.size, 4 + layout->count);
        goto done;
    }
    self->type = type;
    if ((error = s_decode_field (self, F_ID, &element [3]))) {
        s_fail (self, "%s field 'id': %s", layout->name, error);
        goto done;
    }
    for (size_t i = 0; i < present; i++) {
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
    msgpack_zone_clear (zone);      //  keeps its first chunk for the next decode
    if (rc)
        s_clear (self);
    return rc;
}

//  --------------------------------------------------------------------------
//  Encode

//  Records why our own message cannot be encoded; returns -1
static int
s_encode_fail (chorus_msg_t *self, const char *name, const char *error)
{
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
            msgpack_pack_uint64 (packer, S_NUM (self, id));
            return NULL;
        case T_BOOL:
            if (S_NUM (self, id))
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
            zlist_t *list = S_LIST (self, id);
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
        case T_UINTS:
            if (self->seqs_size > field->max)
                return "list longer than its limit";
            msgpack_pack_array (packer, self->seqs_size);
            for (size_t i = 0; i < self->seqs_size; i++)
                msgpack_pack_uint64 (packer, self->seqs [i]);
            return NULL;
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

//  Whether a trailing field holds its default, so that it is left out
static bool
s_at_default (chorus_msg_t *self, int id)
{
    if (s_fields [id].kind == T_STRS)
        return !S_LIST (self, id) || zlist_size (S_LIST (self, id)) == 0;
    if (s_fields [id].kind == T_UINTS)
        return self->seqs_size == 0;
    return S_NUM (self, id) <= S_TAIL_MAX;
}

zframe_t *
chorus_msg_encode (chorus_msg_t *self)
{
    assert (self);
    const s_type_t *layout = &s_types [self->type];
    chorus__msg_buffer_t buffer;
    chorus__msg_buffer_init (&buffer);
    msgpack_packer packer;
    msgpack_packer_init (&packer, &buffer, chorus__msg_buffer_write);
    //  Trailing fields at their default are left out, so that a node of
    //  an earlier version 1 reads the message
    size_t count = layout->count;
    while (count > layout->count - layout->tail
    &&     s_at_default (self, layout->slots [count - 1].id))
        count--;
    msgpack_pack_array (&packer, 4 + count);
    msgpack_pack_uint64 (&packer, CHORUS_MSG_SIGNATURE);
    msgpack_pack_uint64 (&packer, CHORUS_MSG_VERSION);
    msgpack_pack_uint64 (&packer, self->type);
    static const s_slot_t id_slot = {F_ID, 0};
    const char *error = s_encode_field (self, &id_slot, &packer);
    if (error) {
        chorus__msg_buffer_free (&buffer);
        s_encode_fail (self, "id", error);
        return NULL;
    }
    for (size_t i = 0; i < count; i++) {
        error = s_encode_field (self, &layout->slots [i], &packer);
        if (error) {
            chorus__msg_buffer_free (&buffer);
            s_encode_fail (self, s_fields [layout->slots [i].id].name, error);
            return NULL;
        }
    }
    if (buffer.size > CHORUS_MSG_MAX_BODY) {
        chorus__msg_buffer_free (&buffer);
        s_encode_fail (self, "body", "encoded body exceeds the body limit");
        return NULL;
    }
    zframe_t *frame = zframe_new (buffer.data, buffer.size);
    chorus__msg_buffer_free (&buffer);
    return frame;
}

//  The EVENT in body with group and attempt replaced: the bytes before the
//  group field, the new group and attempt, the bytes after the attempt.
//  A publisher sends one stored event to many groups, many times; this
//  spares decoding and encoding it whole for each.
zframe_t *
chorus_msg_event_redirect (const void *body, size_t size, const char *group,
                           uint64_t attempt)
{
    const uint8_t *data = (const uint8_t *) body;
    const s_type_t *layout = &s_types [CHORUS_MSG_EVENT];
    size_t group_at = 0, attempt_end = 0, end = 0;
    //  Our own stored encodings: an array of signature, version, type, id,
    //  then the EVENT's fields, of which group and attempt are 9th and 10th
    size_t count = 4 + layout->count;       //  16: msgpack writes array 16
    if (size < 3 || data [0] != 0xdc || data [1] != 0 || data [2] != count || !group
    ||  s_check_str (&s_fields [F_GROUP], group, strlen (group)))
        return NULL;
    size_t pos = 3;
    for (size_t i = 0; i < 4 + 10 && pos < size; i++) {
        if (i == 4 + 8)
            group_at = pos;
        if (chorus__msg_scan (data + pos, size - pos, &end))
            return NULL;
        pos += end;
    }
    attempt_end = pos;
    if (!group_at || attempt_end > size)
        return NULL;
    chorus__msg_buffer_t buffer;
    chorus__msg_buffer_init (&buffer);
    msgpack_packer packer;
    msgpack_packer_init (&packer, &buffer, chorus__msg_buffer_write);
    chorus__msg_buffer_write (&buffer, (const char *) data, group_at);
    s_pack_str (&packer, group);
    msgpack_pack_uint64 (&packer, attempt);
    chorus__msg_buffer_write (&buffer, (const char *) data + attempt_end, size - attempt_end);
    zframe_t *frame = zframe_new (buffer.data, buffer.size);
    chorus__msg_buffer_free (&buffer);
    return frame;
}

int
chorus_msg_event_peek (const void *body, size_t size, chorus_msg_peek_t *peek)
{
    const uint8_t *data = (const uint8_t *) body;
    const s_type_t *layout = &s_types [CHORUS_MSG_EVENT];
    size_t count = 4 + layout->count;       //  16: msgpack writes array 16
    size_t whole = 0;
    if (size < 3 || data [0] != 0xdc || data [1] != 0 || data [2] != count
    ||  chorus__msg_scan (data, size, &whole) || whole != size)
        return -1;      //  the fields it skips are well formed too
    msgpack_zone *zone = chorus__msg_zone ();
    if (!zone)
        return -1;
    //  Elements: signature, version, type, id, service, instance, seq,
    //  topic, key, correlation, causation, timestamp, ...
    enum { TYPE = 2, SEQ = 6, TOPIC = 7, KEY = 8, TIMESTAMP = 11 };
    bool valid = true;
    size_t pos = 3;
    for (size_t i = 0; i <= TIMESTAMP && valid; i++) {
        size_t end = 0;
        if (pos >= size || chorus__msg_scan (data + pos, size - pos, &end))
            return -1;
        if (i == TYPE || i == SEQ || i == TOPIC || i == KEY || i == TIMESTAMP) {
            msgpack_object object;
            size_t offset = 0;
            valid = msgpack_unpack ((const char *) data + pos, end, &offset, zone, &object)
                    == MSGPACK_UNPACK_SUCCESS;
            bool uint = valid && object.type == MSGPACK_OBJECT_POSITIVE_INTEGER;
            if (!valid)
                ;
            else
            if (i == TYPE)
                valid = uint && object.via.u64 == CHORUS_MSG_EVENT;
            else
            if (i == SEQ || i == TIMESTAMP) {
                valid = uint;
                *(i == SEQ? &peek->seq: &peek->timestamp) = object.via.u64;
            }
            else
            if (i == TOPIC) {
                valid = object.type == MSGPACK_OBJECT_STR && object.via.str.size > 0;
                peek->topic = object.via.str.ptr;
                peek->topic_size = object.via.str.size;
            }
            else {
                valid = object.type == MSGPACK_OBJECT_STR || object.type == MSGPACK_OBJECT_NIL;
                peek->key = object.type == MSGPACK_OBJECT_STR? object.via.str.ptr: NULL;
                peek->key_size = object.type == MSGPACK_OBJECT_STR? object.via.str.size: 0;
            }
        }
        pos += end;
    }
    msgpack_zone_clear (zone);      //  strings point into body, not into the zone
    return valid? 0: -1;
}

//  --------------------------------------------------------------------------
//  Sockets

//  Receives the frames of one ZeroMQ message into parts (at most max of
//  them, the rest are counted and dropped); returns how many there were,
//  or -1 if nothing came
static int
s_recv_parts (void *handle, zmq_msg_t *parts, int max)
{
    int count = 0;
    bool more = true;
    while (more) {
        zmq_msg_t scratch;
        zmq_msg_t *part = count < max? &parts [count]: &scratch;
        zmq_msg_init (part);
        if (zmq_msg_recv (part, handle, 0) == -1) {
            zmq_msg_close (part);
            return count? count: -1;    //  messages come whole: never cut
        }
        more = zmq_msg_more (part);
        if (part == &scratch)
            zmq_msg_close (part);
        count++;
    }
    return count;
}

int
chorus_msg_recv (chorus_msg_t *self, void *input)
{
    assert (self);
    assert (input);
    //  Frames straight from libzmq, without a zmsg_t and a zframe_t each
    zmq_msg_t parts [2];
    int count = s_recv_parts (zsock_resolve (input), parts, 2);
    if (count == -1)
        return CHORUS_MSG_INTERRUPTED;
    int type = zsock_type (input);
    bool router = type == ZMQ_ROUTER;
    bool sub = type == ZMQ_SUB || type == ZMQ_XSUB;
    int expected = router || sub? 2: 1;
    int rc = 0;
    if (router) {
        zframe_destroy (&self->routing_id);
        self->routing_id = zframe_new (zmq_msg_data (&parts [0]), zmq_msg_size (&parts [0]));
    }
    self->peer_address [0] = 0;
    self->user_id [0] = 0;
    self->source_fd = -1;
    if (count < expected)
        rc = s_fail (self, "missing frames");
    else
    if (count > expected)
        rc = s_fail (self, "%d extra frames", count - expected);
    else {
        zmq_msg_t *body = &parts [expected - 1];
        rc = chorus_msg_decode (self, zmq_msg_data (body), zmq_msg_size (body));
    }
    //  Only a HELLO needs the address (admission is per remote address),
    //  and membership messages the connection; the lookups cost too much
    //  for every message
    if (rc == 0 && router && self->type == CHORUS_MSG_HELLO) {
        const char *address = zmq_msg_gets (&parts [1], "Peer-Address");
        snprintf (self->peer_address, sizeof (self->peer_address), "%s", address? address: "");
    }
    if (rc == 0 && router
    &&  (self->type == CHORUS_MSG_HELLO || self->type == CHORUS_MSG_PING
    ||   self->type == CHORUS_MSG_PONG || self->type == CHORUS_MSG_PING_REQ
    ||   self->type == CHORUS_MSG_PING_ACK))
        self->source_fd = zmq_msg_get (&parts [1], ZMQ_SRCFD);
    if (rc == 0 && router && self->want_user_id) {
        const char *user_id = zmq_msg_gets (&parts [1], "User-Id");
        snprintf (self->user_id, sizeof (self->user_id), "%s", user_id? user_id: "");
    }
    if (rc == 0 && sub) {
        const char *topic = self->str [F_TOPIC];
        if (self->type != CHORUS_MSG_EVENT || !topic
        ||  zmq_msg_size (&parts [0]) != strlen (topic)
        ||  memcmp (zmq_msg_data (&parts [0]), topic, strlen (topic)) != 0) {
            rc = s_fail (self, "topic frame does not match the EVENT's topic");
            s_clear (self);
        }
    }
    for (int i = 0; i < count && i < 2; i++)
        zmq_msg_close (&parts [i]);
    return rc;
}

int
chorus_msg_send (chorus_msg_t *self, void *output)
{
    assert (self);
    zframe_t *body = chorus_msg_encode (self);
    return body? chorus_msg_send_encoded (self, &body, output): -1;
}

int
chorus_msg_send_encoded (chorus_msg_t *self, zframe_t **body_p, void *output)
{
    assert (self);
    assert (body_p && *body_p);
    assert (output);
    int type = zsock_type (output);
    if (type == ZMQ_ROUTER) {
        if (!self->routing_id
        ||  zframe_send (&self->routing_id, output, ZFRAME_MORE + ZFRAME_REUSE) == -1) {
            zframe_destroy (body_p);
            return -1;
        }
    }
    else
    if (type == ZMQ_PUB || type == ZMQ_XPUB) {
        const char *topic = self->str [F_TOPIC];
        if (self->type != CHORUS_MSG_EVENT || !topic || zstr_sendm (output, topic) == -1) {
            zframe_destroy (body_p);
            return -1;
        }
    }
    int rc = zframe_send (body_p, output, 0);
    if (rc)
        zframe_destroy (body_p);    //  not sent (a full queue): ours to free
    return rc;
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

int
chorus_msg_type_tail (int type)
{
    if (type < 1 || type > CHORUS_MSG_TYPES)
        return -1;
    return (int) s_types [type].tail;
}

zframe_t *
chorus_msg_routing_id (chorus_msg_t *self)
{
    assert (self);
    return self->routing_id;
}

void
chorus_msg_want_user_id (chorus_msg_t *self, bool want)
{
    assert (self);
    self->want_user_id = want;
}

const char *
chorus_msg_user_id (chorus_msg_t *self)
{
    assert (self);
    return self->user_id;
}

int
chorus_msg_source_fd (chorus_msg_t *self)
{
    assert (self);
    return self->source_fd;
}

const char *
chorus_msg_peer_address (chorus_msg_t *self)
{
    assert (self);
    return self->peer_address;
}

void
chorus_msg_set_routing_id (chorus_msg_t *self, zframe_t *routing_id)
{
    assert (self);
    zframe_destroy (&self->routing_id);
    self->routing_id = routing_id? zframe_dup (routing_id): NULL;
}

//  Appends a name=value to the text, which it replaces
static void
s_describe_add (char **text, const char *format, ...) __attribute__ ((format (printf, 2, 3)));

static void
s_describe_add (char **text, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    char *part = zsys_vprintf (format, args);
    va_end (args);
    char *joined = zsys_sprintf ("%s %s", *text, part? part: "");
    zstr_free (&part);
    if (joined) {
        zstr_free (text);
        *text = joined;
    }
}

char *
chorus_msg_describe (chorus_msg_t *self)
{
    assert (self);
    const s_type_t *layout = &s_types [self->type];
    char *text = zsys_sprintf ("%s id=%s", layout->name, self->str [F_ID]? self->str [F_ID]: "-");
    for (size_t i = 0; text && i < layout->count; i++) {
        int id = layout->slots [i].id;
        const s_field_t *field = &s_fields [id];
        if (field->kind == T_STR || field->kind == T_NAME)
            s_describe_add (&text, "%s=%s", field->name, self->str [id]? self->str [id]: "(nil)");
        else
        if (field->kind == T_UINT || field->kind == T_BOOL)
            s_describe_add (&text, "%s=%" PRIu64, field->name, S_NUM (self, id));
        else
        if (field->kind == T_BIN)
            s_describe_add (&text, "%s=%zu bytes", field->name, self->payload_size);
        else
        if (field->kind == T_UINTS && self->seqs_size)
            s_describe_add (&text, "%s=%zu more", field->name, self->seqs_size);
    }
    return text;
}

//  --------------------------------------------------------------------------
//  Field accessors

static void
s_set_str (chorus_msg_t *self, int id, const char *value)
{
    assert (self);
    if (value)
        s_store_str (self, id, value, strlen (value));
    else
        s_release_str (self, id);
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
S_STR_ACCESSORS (target, F_TARGET)
S_STR_ACCESSORS (code, F_CODE)

#define S_NUM_ACCESSORS(name, id) \
    uint64_t chorus_msg_##name (chorus_msg_t *self) { assert (self); return S_NUM (self, id); } \
    void chorus_msg_set_##name (chorus_msg_t *self, uint64_t value) \
    { assert (self); S_NUM (self, id) = value; }

S_NUM_ACCESSORS (generation, F_GENERATION)
S_NUM_ACCESSORS (head, F_HEAD)
S_NUM_ACCESSORS (seq, F_SEQ)
S_NUM_ACCESSORS (timestamp, F_TIMESTAMP)
S_NUM_ACCESSORS (attempt, F_ATTEMPT)
S_NUM_ACCESSORS (try, F_TRY)
S_NUM_ACCESSORS (status, F_STATUS)
S_NUM_ACCESSORS (from, F_FROM)
S_NUM_ACCESSORS (to, F_TO)
S_NUM_ACCESSORS (limit, F_LIMIT)
S_NUM_ACCESSORS (deadline, F_DEADLINE)

bool
chorus_msg_retryable (chorus_msg_t *self)
{
    assert (self);
    return S_NUM (self, F_RETRYABLE) != 0;
}

void
chorus_msg_set_retryable (chorus_msg_t *self, bool retryable)
{
    assert (self);
    S_NUM (self, F_RETRYABLE) = retryable;
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
    s_release (self, self->payload);
    self->payload = NULL;
    self->payload_size = 0;
    if (data) {
        self->payload = (uint8_t *) s_alloc (self, size + 1);
        memcpy (self->payload, data, size);
        self->payload_size = size;
    }
}

static void
s_add_to_list (chorus_msg_t *self, int id, const char *value)
{
    assert (self);
    assert (value);
    if (!S_LIST (self, id)) {
        S_LIST (self, id) = zlist_new ();
        zlist_autofree (S_LIST (self, id));
    }
    zlist_append (S_LIST (self, id), (void *) value);
}

#define S_LIST_ACCESSORS(name, id) \
    zlist_t *chorus_msg_##name (chorus_msg_t *self) { assert (self); return S_LIST (self, id); } \
    void chorus_msg_add_##name (chorus_msg_t *self, const char *value) \
    { s_add_to_list (self, id, value); }

S_LIST_ACCESSORS (peers, F_PEERS)
S_LIST_ACCESSORS (members, F_MEMBERS)
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

//  A full array of items of item bytes made twice as large (first items
//  when empty), *max updated
static void *
s_grown (void *array, size_t *max, size_t item, size_t first)
{
    size_t grown = *max? *max * 2: first;
    void *bigger = realloc (array, grown * item);
    assert (bigger);
    *max = grown;
    return bigger;
}

void
chorus_msg_add_subscription (chorus_msg_t *self, const char *prefix, uint64_t since,
                             uint64_t flags)
{
    assert (self);
    assert (prefix);
    if (self->subs_size == self->subs_max)
        self->subs = (s_sub_t *) s_grown (self->subs, &self->subs_max, sizeof (s_sub_t), 4);
    s_sub_t *sub = &self->subs [self->subs_size++];
    sub->prefix = strdup (prefix);
    sub->since = since;
    sub->flags = flags;
}

size_t
chorus_msg_seqs (chorus_msg_t *self, const uint64_t **seqs)
{
    assert (self);
    if (seqs)
        *seqs = self->seqs;
    return self->seqs_size;
}

void
chorus_msg_add_seq (chorus_msg_t *self, uint64_t seq)
{
    assert (self);
    if (self->seqs_size == self->seqs_max)
        self->seqs = (uint64_t *) s_grown (self->seqs, &self->seqs_max, sizeof (uint64_t), 16);
    self->seqs [self->seqs_size++] = seq;
}

void
chorus_msg_clear_seqs (chorus_msg_t *self)
{
    assert (self);
    self->seqs_size = 0;
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
