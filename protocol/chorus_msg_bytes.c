/*  chorus_msg_bytes.c — the codec's byte-level helpers: the structural
    scan of a body (with the protocol's limits), the decoder's per-thread
    unpacking zone and the encoder's output buffer (see chorus_msg_bytes.h).
*/
#include "chorus_msg.h"
#include "chorus_msg_bytes.h"
#include "chorus_mpscan.h"

#include <pthread.h>

const char *
chorus__msg_scan (const uint8_t *data, size_t size, size_t *end)
{
    return chorus__mpscan (data, size, CHORUS_MSG_MAX_DEPTH,
                           "nesting deeper than the protocol allows", end);
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
