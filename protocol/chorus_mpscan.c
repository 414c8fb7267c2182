/*  chorus_mpscan.c — the structural scan of MessagePack bytes (see the
    header). msgpack-c allocates an array's or map's element storage from
    the count in its header before it reads any element, so a 5-byte frame
    could ask for gigabytes; every element takes at least one byte, so a
    count beyond the bytes left is a lie, and refusing it bounds what
    msgpack-c will allocate.
*/
#include "chorus_mpscan.h"

typedef struct {
    const uint8_t *data;    //  bytes being scanned
    size_t size;            //  their length
    size_t pos;             //  next byte to read
    int max_depth;          //  deepest nesting allowed
    const char *too_deep;   //  what to say when it is deeper
} s_scan_t;

//  Reads a big-endian length of `width` bytes; -1 if truncated
static int
s_length (s_scan_t *scan, int width, uint64_t *length)
{
    if (scan->size - scan->pos < (size_t) width)
        return -1;
    *length = 0;
    for (int i = 0; i < width; i++)
        *length = (*length << 8) | scan->data [scan->pos++];
    return 0;
}

//  Skips `length` bytes; -1 if fewer are left
static int
s_skip (s_scan_t *scan, uint64_t length)
{
    if (scan->size - scan->pos < length)
        return -1;
    scan->pos += (size_t) length;
    return 0;
}

static const char *s_value (s_scan_t *scan, int depth);

static const char *
s_container (s_scan_t *scan, int depth, uint64_t count, uint64_t per_element)
{
    if (depth >= scan->max_depth)
        return scan->too_deep;
    if (count > (scan->size - scan->pos) / per_element)
        return "array or map count exceeds the bytes left";
    for (uint64_t i = 0; i < count * per_element; i++) {
        const char *problem = s_value (scan, depth + 1);
        if (problem)
            return problem;
    }
    return NULL;
}

//  Skips a str, bin or ext whose length takes `width` bytes; ext adds a type
static const char *
s_sized (s_scan_t *scan, int width, int type_bytes)
{
    uint64_t length;
    if (s_length (scan, width, &length) || s_skip (scan, type_bytes) || s_skip (scan, length))
        return "truncated";
    return NULL;
}

//  Skips one value at `depth`; returns NULL or what is wrong
static const char *
s_value (s_scan_t *scan, int depth)
{
    if (scan->pos >= scan->size)
        return "truncated";
    uint8_t byte = scan->data [scan->pos++];
    uint64_t count;
    if (byte <= 0x7f || byte >= 0xe0 || byte == 0xc0 || byte == 0xc2 || byte == 0xc3)
        return NULL;
    if (byte <= 0x8f)
        return s_container (scan, depth, byte & 0x0f, 2);
    if (byte <= 0x9f)
        return s_container (scan, depth, byte & 0x0f, 1);
    if (byte <= 0xbf)
        return s_skip (scan, byte & 0x1f)? "truncated": NULL;
    switch (byte) {
        case 0xc4: case 0xc5: case 0xc6: return s_sized (scan, 1 << (byte - 0xc4), 0);
        case 0xd9: case 0xda: case 0xdb: return s_sized (scan, 1 << (byte - 0xd9), 0);
        case 0xc7: case 0xc8: case 0xc9: return s_sized (scan, 1 << (byte - 0xc7), 1);
        case 0xca: return s_skip (scan, 4)? "truncated": NULL;
        case 0xcb: return s_skip (scan, 8)? "truncated": NULL;
        case 0xcc: case 0xcd: case 0xce: case 0xcf:     //  uint 8..64
            return s_skip (scan, 1 << (byte - 0xcc))? "truncated": NULL;
        case 0xd0: case 0xd1: case 0xd2: case 0xd3:     //  int 8..64
            return s_skip (scan, 1 << (byte - 0xd0))? "truncated": NULL;
        case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8:     //  fixext
            return s_skip (scan, 1 + (1 << (byte - 0xd4)))? "truncated": NULL;
        case 0xdc: case 0xdd:                           //  array 16/32
            if (s_length (scan, byte == 0xdc? 2: 4, &count))
                return "truncated";
            return s_container (scan, depth, count, 1);
        case 0xde: case 0xdf:                           //  map 16/32
            if (s_length (scan, byte == 0xde? 2: 4, &count))
                return "truncated";
            return s_container (scan, depth, count, 2);
    }
    scan->pos--;
    return "byte 0xc1 is never used in MessagePack";
}

const char *
chorus__mpscan (const void *data, size_t size, int max_depth, const char *too_deep, size_t *end)
{
    s_scan_t scan = {(const uint8_t *) data, size, 0, max_depth, too_deep};
    const char *problem = s_value (&scan, 0);
    *end = scan.pos;
    return problem;
}
