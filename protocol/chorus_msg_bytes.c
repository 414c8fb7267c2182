/*  chorus_msg_bytes.c — the codec's byte-level helpers: the structural
    scan of a body, the decoder's per-thread unpacking zone and the
    encoder's output buffer (see chorus_msg_bytes.h).
*/
#include "chorus_msg.h"
#include "chorus_msg_bytes.h"

#include <pthread.h>

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

const char *
chorus__msg_scan (const uint8_t *data, size_t size, size_t *end)
{
    s_scan_t scan = {data, size, 0};
    const char *error = s_scan_value (&scan, 0);
    *end = scan.pos;
    return error;
}

//  --------------------------------------------------------------------------
//  One unpacking zone per thread, kept between decodes: strings and bins
//  point into the body, so the zone holds only the objects of the top
//  array and what little nests in it, and it needs no malloc per decode
static pthread_key_t s_zone_key;
static pthread_once_t s_zone_once = PTHREAD_ONCE_INIT;

static void
s_zone_free (void *zone)
{
    msgpack_zone_free ((msgpack_zone *) zone);
}

static void
s_zone_init (void)
{
    pthread_key_create (&s_zone_key, s_zone_free);
}

msgpack_zone *
chorus__msg_zone (void)
{
    pthread_once (&s_zone_once, s_zone_init);
    msgpack_zone *zone = (msgpack_zone *) pthread_getspecific (s_zone_key);
    if (!zone) {
        zone = msgpack_zone_new (4096);
        if (zone)
            pthread_setspecific (s_zone_key, zone);
    }
    return zone;
}

//  --------------------------------------------------------------------------
//  The encoder's output buffer

void
chorus__msg_buffer_init (chorus__msg_buffer_t *buffer)
{
    buffer->data = buffer->stack;
    buffer->size = 0;
    buffer->max = sizeof (buffer->stack);
}

int
chorus__msg_buffer_write (void *data, const char *bytes, size_t length)
{
    chorus__msg_buffer_t *buffer = (chorus__msg_buffer_t *) data;
    if (buffer->size + length > buffer->max) {
        size_t max = buffer->max * 2;
        while (max < buffer->size + length)
            max *= 2;
        char *grown = (char *) malloc (max);
        if (!grown)
            return -1;
        memcpy (grown, buffer->data, buffer->size);
        if (buffer->data != buffer->stack)
            free (buffer->data);
        buffer->data = grown;
        buffer->max = max;
    }
    memcpy (buffer->data + buffer->size, bytes, length);
    buffer->size += length;
    return 0;
}

void
chorus__msg_buffer_free (chorus__msg_buffer_t *buffer)
{
    if (buffer->data != buffer->stack)
        free (buffer->data);
}
