/*  chorus_record.c — MessagePack for the journal's records (see the
    header): the encodings of the MessagePack specification, the shortest
    of each kind written, every length read checked against the bytes left.
*/
#include "chorus_record.h"

#include <stdlib.h>
#include <string.h>

#define S_MAX_DEPTH 32              //  arrays and maps nested, when skipping

//  --------------------------------------------------------------------------
//  Writing

void
chorus_record_init (chorus_record_t *self)
{
    memset (self, 0, sizeof *self);
}

void
chorus_record_clear (chorus_record_t *self)
{
    free (self->data);
    chorus_record_init (self);
}

void
chorus_record_reset (chorus_record_t *self)
{
    self->size = 0;
}

//  Room for `more` bytes at the end
static uint8_t *
s_grow (chorus_record_t *self, size_t more)
{
    if (self->size + more > self->max) {
        size_t max = self->max? self->max: 256;
        while (max < self->size + more)
            max *= 2;
        uint8_t *data = (uint8_t *) realloc (self->data, max);
        if (!data)
            abort ();
        self->data = data;
        self->max = max;
    }
    uint8_t *at = self->data + self->size;
    self->size += more;
    return at;
}

static void
s_byte (chorus_record_t *self, uint8_t byte)
{
    *s_grow (self, 1) = byte;
}

//  A type byte and a big-endian number of `width` bytes
static void
s_sized (chorus_record_t *self, uint8_t type, uint64_t value, int width)
{
    uint8_t *at = s_grow (self, 1 + (size_t) width);
    at [0] = type;
    for (int i = width; i > 0; i--, value >>= 8)
        at [i] = (uint8_t) value;
}

//  The header of a str, bin or array of `size`: fixed forms below `fixed`
static void
s_header (chorus_record_t *self, size_t size, uint8_t fix, size_t fixed, uint8_t type8,
          uint8_t type16, uint8_t type32)
{
    if (size < fixed)
        s_byte (self, (uint8_t) (fix | size));
    else
    if (type8 && size <= 0xFF)
        s_sized (self, type8, size, 1);
    else
    if (size <= 0xFFFF)
        s_sized (self, type16, size, 2);
    else
        s_sized (self, type32, size, 4);
}

void
chorus_record_array (chorus_record_t *self, size_t count)
{
    s_header (self, count, 0x90, 16, 0, 0xdc, 0xdd);
}

void
chorus_record_map (chorus_record_t *self, size_t count)
{
    s_header (self, count, 0x80, 16, 0, 0xde, 0xdf);
}

void
chorus_record_nil (chorus_record_t *self)
{
    s_byte (self, 0xc0);
}

void
chorus_record_bool (chorus_record_t *self, bool value)
{
    s_byte (self, value? 0xc3: 0xc2);
}

void
chorus_record_uint (chorus_record_t *self, uint64_t value)
{
    if (value < 0x80)
        s_byte (self, (uint8_t) value);
    else
    if (value <= 0xFF)
        s_sized (self, 0xcc, value, 1);
    else
    if (value <= 0xFFFF)
        s_sized (self, 0xcd, value, 2);
    else
    if (value <= 0xFFFFFFFF)
        s_sized (self, 0xce, value, 4);
    else
        s_sized (self, 0xcf, value, 8);
}

void
chorus_record_int (chorus_record_t *self, int64_t value)
{
    if (value >= 0)
        chorus_record_uint (self, (uint64_t) value);
    else
    if (value >= -32)
        s_byte (self, (uint8_t) value);
    else
    if (value >= INT8_MIN)
        s_sized (self, 0xd0, (uint64_t) value, 1);
    else
    if (value >= INT16_MIN)
        s_sized (self, 0xd1, (uint64_t) value, 2);
    else
    if (value >= INT32_MIN)
        s_sized (self, 0xd2, (uint64_t) value, 4);
    else
        s_sized (self, 0xd3, (uint64_t) value, 8);
}

void
chorus_record_str (chorus_record_t *self, const char *string)
{
    if (!string) {
        chorus_record_nil (self);
        return;
    }
    size_t size = strlen (string);
    s_header (self, size, 0xa0, 32, 0xd9, 0xda, 0xdb);
    memcpy (s_grow (self, size), string, size);
}

void
chorus_record_bin (chorus_record_t *self, const void *data, size_t size)
{
    s_header (self, size, 0, 0, 0xc4, 0xc5, 0xc6);
    if (size)
        memcpy (s_grow (self, size), data, size);
}

void
chorus_record_raw (chorus_record_t *self, const void *data, size_t size)
{
    if (size)
        memcpy (s_grow (self, size), data, size);
}

//  --------------------------------------------------------------------------
//  Reading

void
chorus_reader_init (chorus_reader_t *self, const void *data, size_t size)
{
    self->at = (const uint8_t *) data;
    self->end = self->at + (data? size: 0);
    self->error = NULL;
}

bool
chorus_reader_fail (chorus_reader_t *self, const char *problem)
{
    if (!self->error)
        self->error = problem;
    self->at = self->end;
    return false;
}

//  What the next value is, without taking it: a length for str, bin,
//  array and map (the bytes after its header), a number for integers
typedef enum {
    S_NONE, S_NIL, S_BOOL, S_UINT, S_INT, S_FLOAT, S_STR, S_BIN, S_ARRAY, S_MAP, S_EXT
} s_kind_t;

typedef struct {
    s_kind_t kind;              //  what it is
    uint64_t value;             //  integer bits, bool, or length / count
    size_t header;              //  bytes of its header
    size_t body;                //  bytes after the header, not counting nested values
} s_peek_t;

static bool
s_peek (chorus_reader_t *self, s_peek_t *peek)
{
    memset (peek, 0, sizeof *peek);
    if (self->error)
        return false;
    if (self->at >= self->end)
        return chorus_reader_fail (self, "truncated");
    uint8_t type = self->at [0];
    int width = 0;
    peek->header = 1;
    if (type < 0x80) {
        peek->kind = S_UINT;
        peek->value = type;
        return true;
    }
    if (type >= 0xe0) {
        peek->kind = S_INT;
        peek->value = (uint64_t) (int64_t) (int8_t) type;
        return true;
    }
    if ((type & 0xf0) == 0x80 || (type & 0xf0) == 0x90) {
        peek->kind = (type & 0xf0) == 0x80? S_MAP: S_ARRAY;
        peek->value = type & 0x0f;
    }
    else
    if ((type & 0xe0) == 0xa0) {
        peek->kind = S_STR;
        peek->value = peek->body = type & 0x1f;
    }
    else
    switch (type) {
        case 0xc0: peek->kind = S_NIL; break;
        case 0xc2: case 0xc3: peek->kind = S_BOOL; peek->value = type == 0xc3; break;
        case 0xc4: case 0xc5: case 0xc6:
            peek->kind = S_BIN; width = 1 << (type - 0xc4); break;
        case 0xc7: case 0xc8: case 0xc9:
            peek->kind = S_EXT; width = 1 << (type - 0xc7); break;
        case 0xca: peek->kind = S_FLOAT; peek->body = 4; break;
        case 0xcb: peek->kind = S_FLOAT; peek->body = 8; break;
        case 0xcc: case 0xcd: case 0xce: case 0xcf:
            peek->kind = S_UINT; width = 1 << (type - 0xcc); break;
        case 0xd0: case 0xd1: case 0xd2: case 0xd3:
            peek->kind = S_INT; width = 1 << (type - 0xd0); break;
        case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8:
            peek->kind = S_EXT; peek->body = 1 + ((size_t) 1 << (type - 0xd4)); break;
        case 0xd9: case 0xda: case 0xdb:
            peek->kind = S_STR; width = 1 << (type - 0xd9); break;
        case 0xdc: case 0xdd:
            peek->kind = S_ARRAY; width = 2 << (type - 0xdc); break;
        case 0xde: case 0xdf:
            peek->kind = S_MAP; width = 2 << (type - 0xde); break;
        default:
            return chorus_reader_fail (self, "not MessagePack (byte 0xc1)");
    }
    if (width) {
        if ((size_t) (self->end - self->at) < 1 + (size_t) width)
            return chorus_reader_fail (self, "truncated");
        uint64_t value = 0;
        for (int i = 1; i <= width; i++)
            value = (value << 8) | self->at [i];
        peek->header = 1 + (size_t) width;
        if (peek->kind == S_INT)
            //  Sign-extended from its width
            value = width == 8? value: (value ^ (1ull << (8 * width - 1)))
                                       - (1ull << (8 * width - 1));
        peek->value = value;
        if (peek->kind == S_STR || peek->kind == S_BIN)
            peek->body = value;
        if (peek->kind == S_EXT)
            peek->body = 1 + value;
    }
    size_t left = (size_t) (self->end - self->at) - peek->header;
    if (peek->body > left)
        return chorus_reader_fail (self, "truncated");
    //  Every value takes a byte at least: a count beyond what is left is a lie
    if ((peek->kind == S_ARRAY && peek->value > left)
    ||  (peek->kind == S_MAP && peek->value > left / 2))
        return chorus_reader_fail (self, "truncated");
    return true;
}

static void
s_take (chorus_reader_t *self, const s_peek_t *peek)
{
    self->at += peek->header + peek->body;
}

size_t
chorus_reader_array (chorus_reader_t *self)
{
    s_peek_t peek;
    if (!s_peek (self, &peek))
        return 0;
    if (peek.kind != S_ARRAY)
        return chorus_reader_fail (self, "an array was expected");
    s_take (self, &peek);
    return (size_t) peek.value;
}

bool
chorus_reader_tuple (chorus_reader_t *self, size_t count)
{
    size_t size = chorus_reader_array (self);
    if (!self->error && size != count)
        return chorus_reader_fail (self, "an array has the wrong number of values");
    return !self->error;
}

bool
chorus_reader_nil (chorus_reader_t *self)
{
    if (self->error || self->at >= self->end || self->at [0] != 0xc0)
        return false;
    self->at++;
    return true;
}

bool
chorus_reader_bool (chorus_reader_t *self)
{
    s_peek_t peek;
    if (!s_peek (self, &peek))
        return false;
    if (peek.kind != S_BOOL)
        return chorus_reader_fail (self, "a boolean was expected");
    s_take (self, &peek);
    return peek.value != 0;
}

bool
chorus_reader_is_str (chorus_reader_t *self)
{
    s_peek_t peek;
    const uint8_t *at = self->at;
    const char *error = self->error;
    bool str = s_peek (self, &peek) && peek.kind == S_STR;
    self->at = at;          //  a problem is found again by the read that follows
    self->error = error;
    return str;
}

uint64_t
chorus_reader_uint (chorus_reader_t *self, uint64_t max)
{
    s_peek_t peek;
    if (!s_peek (self, &peek))
        return 0;
    if (peek.kind != S_UINT && !(peek.kind == S_INT && (int64_t) peek.value >= 0))
        return chorus_reader_fail (self, "an unsigned integer was expected");
    if (peek.value > max)
        return chorus_reader_fail (self, "a number is out of its range");
    s_take (self, &peek);
    return peek.value;
}

int64_t
chorus_reader_int (chorus_reader_t *self, int64_t min, int64_t max)
{
    s_peek_t peek;
    if (!s_peek (self, &peek))
        return 0;
    bool big = peek.kind == S_UINT && peek.value > INT64_MAX;
    if ((peek.kind != S_UINT && peek.kind != S_INT) || big
    ||  (int64_t) peek.value < min || (int64_t) peek.value > max)
        return chorus_reader_fail (self, peek.kind == S_UINT || peek.kind == S_INT?
                                   "a number is out of its range": "an integer was expected");
    s_take (self, &peek);
    return (int64_t) peek.value;
}

char *
chorus_reader_str (chorus_reader_t *self, bool nil_ok)
{
    if (nil_ok && chorus_reader_nil (self))
        return NULL;
    s_peek_t peek;
    if (!s_peek (self, &peek))
        return NULL;
    if (peek.kind != S_STR) {
        chorus_reader_fail (self, "a string was expected");
        return NULL;
    }
    const char *text = (const char *) self->at + peek.header;
    if (memchr (text, 0, peek.body)) {
        chorus_reader_fail (self, "a string holds a NUL");
        return NULL;
    }
    char *string = (char *) malloc (peek.body + 1);
    if (!string)
        abort ();
    memcpy (string, text, peek.body);
    string [peek.body] = 0;
    s_take (self, &peek);
    return string;
}

const void *
chorus_reader_bin (chorus_reader_t *self, size_t *size, bool nil_ok)
{
    *size = 0;
    if (nil_ok && chorus_reader_nil (self))
        return NULL;
    s_peek_t peek;
    if (!s_peek (self, &peek))
        return NULL;
    if (peek.kind != S_BIN) {
        chorus_reader_fail (self, "a bin was expected");
        return NULL;
    }
    const void *data = self->at + peek.header;
    *size = peek.body;
    s_take (self, &peek);
    return data;
}

static void
s_skip (chorus_reader_t *self, int depth)
{
    s_peek_t peek;
    if (!s_peek (self, &peek))
        return;
    s_take (self, &peek);
    if (peek.kind != S_ARRAY && peek.kind != S_MAP)
        return;
    if (depth >= S_MAX_DEPTH) {
        chorus_reader_fail (self, "nested too deep");
        return;
    }
    uint64_t values = peek.kind == S_MAP? peek.value * 2: peek.value;
    for (uint64_t i = 0; i < values && !self->error; i++)
        s_skip (self, depth + 1);
}

void
chorus_reader_skip (chorus_reader_t *self, const void **data, size_t *size)
{
    const uint8_t *start = self->at;
    s_skip (self, 0);
    if (data)
        *data = self->error? NULL: start;
    if (size)
        *size = self->error? 0: (size_t) (self->at - start);
}

bool
chorus_reader_done (chorus_reader_t *self)
{
    if (!self->error && self->at != self->end)
        chorus_reader_fail (self, "trailing bytes");
    return self->error == NULL;
}
