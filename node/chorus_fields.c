/*  chorus_fields.c — payloads built and read in C: chorus_builder_t writes
    one MessagePack value of the payload convention (protocol section 9.1)
    through msgpack-c's packer; chorus_fields_t checks untrusted bytes with
    the structural scan, lets msgpack-c unpack them, and looks values up by
    path. Strings and bins are not copied: they point into the payload.
*/
#include "chorus_private.h"
#include "chorus_mpscan.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

//  --------------------------------------------------------------------------
//  Builder

struct _chorus_builder_t {
    msgpack_sbuffer buffer;         //  what is written so far
    msgpack_packer packer;          //  writes into buffer
    int failure;                    //  the first failure, sticky; 0 if none
    //  Values still owed to each open container, outermost first; a map
    //  owes two per pair. Depth 0 is the top level, owed one value.
    size_t owed [CHORUS_PAYLOAD_MAX_DEPTH + 1];
    bool map [CHORUS_PAYLOAD_MAX_DEPTH + 1];
    int depth;
};

chorus_builder_t *
chorus_builder_new (void)
{
    chorus_builder_t *self = (chorus_builder_t *) calloc (1, sizeof (chorus_builder_t));
    if (!self) {
        chorus__failf (CHORUS_ENOMEM, "out of memory");
        return NULL;
    }
    msgpack_sbuffer_init (&self->buffer);
    msgpack_packer_init (&self->packer, &self->buffer, msgpack_sbuffer_write);
    chorus_builder_reset (self);
    return self;
}

void
chorus_builder_destroy (chorus_builder_t **self_p)
{
    if (self_p && *self_p) {
        msgpack_sbuffer_destroy (&(*self_p)->buffer);
        free (*self_p);
        *self_p = NULL;
    }
}

void
chorus_builder_reset (chorus_builder_t *self)
{
    if (!self)
        return;
    msgpack_sbuffer_clear (&self->buffer);
    self->failure = 0;
    self->depth = 0;
    self->owed [0] = 1;
    self->map [0] = false;
}

static int
s_fail (chorus_builder_t *self, int code, const char *reason)
{
    self->failure = code;
    return chorus__failf (code, "payload builder: %s", reason);
}

//  Checks that one more value may be written, and whether it must be a key
//  (a str); returns 0 or the failure
static int
s_admit (chorus_builder_t *self, bool is_str)
{
    if (self->failure)
        return chorus__failf (self->failure, "payload builder: an earlier call failed");
    if (self->owed [self->depth] == 0)
        return s_fail (self, CHORUS_EINVAL, "a value beyond the payload's one value");
    bool key = self->map [self->depth] && self->owed [self->depth] % 2 == 0;
    if (key && !is_str)
        return s_fail (self, CHORUS_EINVAL, "a map key must be a str");
    return 0;
}

//  After a value was written: its container owes one less, and containers
//  that are full close
static int
s_written (chorus_builder_t *self, int rc)
{
    if (rc != 0)
        return s_fail (self, CHORUS_ENOMEM, "out of memory");
    if (self->buffer.size > CHORUS_PAYLOAD_MAX)
        return s_fail (self, CHORUS_ETOOBIG, "the payload is over CHORUS_PAYLOAD_MAX");
    self->owed [self->depth]--;
    while (self->depth > 0 && self->owed [self->depth] == 0)
        self->depth--;
    return 0;
}

static int
s_open (chorus_builder_t *self, size_t count, bool map)
{
    int rc = s_admit (self, false);
    if (rc)
        return rc;
    if (count > CHORUS_PAYLOAD_MAX || count > UINT32_MAX)
        return s_fail (self, CHORUS_ETOOBIG, "more values than a payload can hold");
    if (self->depth + 1 > CHORUS_PAYLOAD_MAX_DEPTH)
        return s_fail (self, CHORUS_EINVAL, "nesting deeper than CHORUS_PAYLOAD_MAX_DEPTH");
    rc = map? msgpack_pack_map (&self->packer, count): msgpack_pack_array (&self->packer, count);
    if (rc != 0)
        return s_fail (self, CHORUS_ENOMEM, "out of memory");
    if (count == 0)
        return s_written (self, 0);     //  an empty container is a whole value
    //  The container counts as written in its parent once it is full
    self->owed [self->depth]--;
    self->depth++;
    self->owed [self->depth] = map? 2 * count: count;
    self->map [self->depth] = map;
    return 0;
}

int
chorus_builder_map (chorus_builder_t *self, size_t count)
{
    if (!self)
        return chorus__failf (CHORUS_EINVAL, "payload builder: NULL builder");
    return s_open (self, count, true);
}

int
chorus_builder_array (chorus_builder_t *self, size_t count)
{
    if (!self)
        return chorus__failf (CHORUS_EINVAL, "payload builder: NULL builder");
    return s_open (self, count, false);
}

int
chorus_builder_strn (chorus_builder_t *self, const char *data, size_t size)
{
    if (!self)
        return chorus__failf (CHORUS_EINVAL, "payload builder: NULL builder");
    int rc = s_admit (self, true);
    if (rc)
        return rc;
    if (!data && size)
        return s_fail (self, CHORUS_EINVAL, "NULL text");
    if (size > CHORUS_PAYLOAD_MAX)
        return s_fail (self, CHORUS_ETOOBIG, "the payload is over CHORUS_PAYLOAD_MAX");
    rc = msgpack_pack_str (&self->packer, size);
    if (rc == 0 && size)
        rc = msgpack_pack_str_body (&self->packer, data, size);
    return s_written (self, rc);
}

int
chorus_builder_str (chorus_builder_t *self, const char *text)
{
    if (self && !text && !self->failure)
        return s_fail (self, CHORUS_EINVAL, "NULL text");
    return chorus_builder_strn (self, text, text? strlen (text): 0);
}

int
chorus_builder_bin (chorus_builder_t *self, const void *data, size_t size)
{
    if (!self)
        return chorus__failf (CHORUS_EINVAL, "payload builder: NULL builder");
    int rc = s_admit (self, false);
    if (rc)
        return rc;
    if (!data && size)
        return s_fail (self, CHORUS_EINVAL, "NULL bytes");
    if (size > CHORUS_PAYLOAD_MAX)
        return s_fail (self, CHORUS_ETOOBIG, "the payload is over CHORUS_PAYLOAD_MAX");
    rc = msgpack_pack_bin (&self->packer, size);
    if (rc == 0 && size)
        rc = msgpack_pack_bin_body (&self->packer, data, size);
    return s_written (self, rc);
}

int
chorus_builder_int (chorus_builder_t *self, int64_t value)
{
    if (!self)
        return chorus__failf (CHORUS_EINVAL, "payload builder: NULL builder");
    int rc = s_admit (self, false);
    return rc? rc: s_written (self, msgpack_pack_int64 (&self->packer, value));
}

int
chorus_builder_real (chorus_builder_t *self, double value)
{
    if (!self)
        return chorus__failf (CHORUS_EINVAL, "payload builder: NULL builder");
    int rc = s_admit (self, false);
    return rc? rc: s_written (self, msgpack_pack_double (&self->packer, value));
}

int
chorus_builder_bool (chorus_builder_t *self, bool value)
{
    if (!self)
        return chorus__failf (CHORUS_EINVAL, "payload builder: NULL builder");
    int rc = s_admit (self, false);
    return rc? rc: s_written (self, value? msgpack_pack_true (&self->packer):
                                           msgpack_pack_false (&self->packer));
}

int
chorus_builder_null (chorus_builder_t *self)
{
    if (!self)
        return chorus__failf (CHORUS_EINVAL, "payload builder: NULL builder");
    int rc = s_admit (self, false);
    return rc? rc: s_written (self, msgpack_pack_nil (&self->packer));
}

int
chorus_builder_payload (chorus_builder_t *self, const void **data, size_t *size)
{
    if (!self || !data || !size)
        return chorus__failf (CHORUS_EINVAL, "payload builder: NULL argument");
    *data = NULL;
    *size = 0;
    if (self->failure)
        return chorus__failf (self->failure, "payload builder: an earlier call failed");
    if (self->depth > 0)
        return chorus__failf (CHORUS_EINVAL, "payload builder: incomplete: %s still needs %zu "
                              "values", self->map [self->depth]? "a map": "an array",
                              self->owed [self->depth]);
    if (self->owed [0] > 0)
        return chorus__failf (CHORUS_EINVAL, "payload builder: empty: no value written");
    *data = self->buffer.data;
    *size = self->buffer.size;
    return 0;
}

//  --------------------------------------------------------------------------
//  Fields

struct _chorus_fields_t {
    msgpack_unpacked unpacked;      //  the value, its strings pointing into the payload
};

chorus_fields_t *
chorus_fields_new (const void *data, size_t size)
{
    if (!data && size) {
        chorus__failf (CHORUS_EINVAL, "NULL payload");
        return NULL;
    }
    size_t end = 0;
    const char *problem = chorus__mpscan (data? data: "", size, CHORUS_PAYLOAD_MAX_DEPTH,
                                          "nested deeper than CHORUS_PAYLOAD_MAX_DEPTH", &end);
    if (!problem && end != size)
        problem = "bytes after the value";
    if (problem) {
        chorus__failf (CHORUS_EMALFORMED, "not one MessagePack value: %s (at byte %zu)",
                       problem, end);
        return NULL;
    }
    chorus_fields_t *self = (chorus_fields_t *) calloc (1, sizeof (chorus_fields_t));
    if (!self) {
        chorus__failf (CHORUS_ENOMEM, "out of memory");
        return NULL;
    }
    msgpack_unpacked_init (&self->unpacked);
    size_t offset = 0;
    msgpack_unpack_return rc = msgpack_unpack_next (&self->unpacked, (const char *) data, size,
                                                    &offset);
    if (rc != MSGPACK_UNPACK_SUCCESS || offset != size) {
        int code = rc == MSGPACK_UNPACK_NOMEM_ERROR? CHORUS_ENOMEM: CHORUS_EMALFORMED;
        chorus__failf (code, code == CHORUS_ENOMEM? "out of memory":
                       "not one MessagePack value");
        chorus_fields_destroy (&self);
        return NULL;
    }
    return self;
}

void
chorus_fields_destroy (chorus_fields_t **self_p)
{
    if (self_p && *self_p) {
        msgpack_unpacked_destroy (&(*self_p)->unpacked);
        free (*self_p);
        *self_p = NULL;
    }
}

//  The object at path, or NULL
static const msgpack_object *
s_find (chorus_fields_t *self, const char *path)
{
    const msgpack_object *object = &self->unpacked.data;
    const char *segment = path;
    while (*segment) {
        const char *dot = strchr (segment, '.');
        size_t length = dot? (size_t) (dot - segment): strlen (segment);
        const msgpack_object *next = NULL;
        if (object->type == MSGPACK_OBJECT_MAP) {
            const msgpack_object_map *map = &object->via.map;
            for (uint32_t index = 0; index < map->size && !next; index++) {
                const msgpack_object *key = &map->ptr [index].key;
                if (key->type == MSGPACK_OBJECT_STR && key->via.str.size == length
                &&  memcmp (key->via.str.ptr, segment, length) == 0)
                    next = &map->ptr [index].val;
            }
        }
        else
        if (object->type == MSGPACK_OBJECT_ARRAY && length > 0 && length < 11) {
            size_t index = 0;
            size_t digit;
            for (digit = 0; digit < length; digit++) {
                if (segment [digit] < '0' || segment [digit] > '9')
                    break;
                index = index * 10 + (size_t) (segment [digit] - '0');
            }
            bool canonical = length == 1 || segment [0] != '0';
            if (digit == length && canonical && index < object->via.array.size)
                next = &object->via.array.ptr [index];
        }
        if (!next)
            return NULL;
        object = next;
        if (!dot)
            break;
        segment = dot + 1;
        if (!*segment)
            return NULL;                //  "a." names nothing
    }
    return object;
}

int
chorus_fields_get (chorus_fields_t *self, const char *path, chorus_value_t *value)
{
    if (!self || !path || !value)
        return chorus__failf (CHORUS_EINVAL, "NULL argument");
    memset (value, 0, sizeof (chorus_value_t));
    const msgpack_object *object = s_find (self, path);
    if (!object)
        return 0;
    switch (object->type) {
        case MSGPACK_OBJECT_NIL:
            value->type = CHORUS_VALUE_NULL;
            break;
        case MSGPACK_OBJECT_BOOLEAN:
            value->type = CHORUS_VALUE_BOOL;
            value->boolean = object->via.boolean;
            break;
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
            if (object->via.u64 > INT64_MAX) {
                value->type = CHORUS_VALUE_REAL;
                value->real = (double) object->via.u64;
            }
            else {
                value->type = CHORUS_VALUE_INT;
                value->integer = (int64_t) object->via.u64;
                value->real = (double) value->integer;
            }
            break;
        case MSGPACK_OBJECT_NEGATIVE_INTEGER:
            value->type = CHORUS_VALUE_INT;
            value->integer = object->via.i64;
            value->real = (double) value->integer;
            break;
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64:
            value->type = CHORUS_VALUE_REAL;
            value->real = object->via.f64;
            break;
        case MSGPACK_OBJECT_STR:
            value->type = CHORUS_VALUE_STR;
            value->data = object->via.str.ptr;
            value->size = object->via.str.size;
            break;
        case MSGPACK_OBJECT_BIN:
            value->type = CHORUS_VALUE_BIN;
            value->data = object->via.bin.ptr;
            value->size = object->via.bin.size;
            break;
        case MSGPACK_OBJECT_EXT:
            value->type = CHORUS_VALUE_EXT;
            value->data = object->via.ext.ptr;
            value->size = object->via.ext.size;
            break;
        case MSGPACK_OBJECT_ARRAY:
            value->type = CHORUS_VALUE_ARRAY;
            value->size = object->via.array.size;
            break;
        case MSGPACK_OBJECT_MAP:
            value->type = CHORUS_VALUE_MAP;
            value->size = object->via.map.size;
            break;
    }
    return 0;
}

static const char *
s_type_name (chorus_value_type_t type)
{
    static const char *names [] = {
        "nothing", "a null", "a bool", "an int", "a real", "a str", "a bin", "an array",
        "a map", "an ext"
    };
    return (size_t) type < sizeof (names) / sizeof (names [0])? names [type]: "?";
}

//  The value at path, if of the type wanted (or an int for a real)
static int
s_typed (chorus_fields_t *self, const char *path, chorus_value_type_t wanted,
         chorus_value_t *value)
{
    int rc = chorus_fields_get (self, path, value);
    if (rc)
        return rc;
    if (value->type == wanted
    || (wanted == CHORUS_VALUE_REAL && value->type == CHORUS_VALUE_INT))
        return 0;
    return chorus__failf (CHORUS_EINVAL, "payload field '%s': %s, not %s", path,
                          s_type_name (value->type), s_type_name (wanted));
}

int
chorus_fields_int (chorus_fields_t *self, const char *path, int64_t *value)
{
    chorus_value_t found;
    int rc = value? s_typed (self, path, CHORUS_VALUE_INT, &found):
                    chorus__failf (CHORUS_EINVAL, "NULL argument");
    if (rc == 0)
        *value = found.integer;
    return rc;
}

int
chorus_fields_real (chorus_fields_t *self, const char *path, double *value)
{
    chorus_value_t found;
    int rc = value? s_typed (self, path, CHORUS_VALUE_REAL, &found):
                    chorus__failf (CHORUS_EINVAL, "NULL argument");
    if (rc == 0)
        *value = found.real;
    return rc;
}

int
chorus_fields_bool (chorus_fields_t *self, const char *path, bool *value)
{
    chorus_value_t found;
    int rc = value? s_typed (self, path, CHORUS_VALUE_BOOL, &found):
                    chorus__failf (CHORUS_EINVAL, "NULL argument");
    if (rc == 0)
        *value = found.boolean;
    return rc;
}

int
chorus_fields_str (chorus_fields_t *self, const char *path, const char **data, size_t *size)
{
    chorus_value_t found;
    int rc = data && size? s_typed (self, path, CHORUS_VALUE_STR, &found):
                           chorus__failf (CHORUS_EINVAL, "NULL argument");
    if (rc == 0) {
        *data = found.data;
        *size = found.size;
    }
    return rc;
}

int
chorus_fields_text (chorus_fields_t *self, const char *path, char *buffer, size_t buffer_size)
{
    if (!buffer || buffer_size == 0)
        return chorus__failf (CHORUS_EINVAL, "no buffer for the text");
    buffer [0] = 0;
    chorus_value_t found;
    int rc = s_typed (self, path, CHORUS_VALUE_STR, &found);
    if (rc)
        return rc;
    if (found.size && memchr (found.data, 0, found.size))
        return chorus__failf (CHORUS_EINVAL, "payload field '%s': the str holds a NUL", path);
    if (found.size >= buffer_size)
        return chorus__failf (CHORUS_ETOOBIG, "payload field '%s': %zu bytes, the buffer holds "
                              "%zu with the NUL", path, found.size, buffer_size);
    if (found.size)
        memcpy (buffer, found.data, found.size);
    buffer [found.size] = 0;
    return 0;
}
