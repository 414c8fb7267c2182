/*  chorus_msg_bytes.h — the codec's byte-level helpers, private to
    protocol/: the structural scan that runs before msgpack-c believes a
    count, the decoder's unpacking zone and the encoder's output buffer.
*/
#ifndef CHORUS_MSG_BYTES_H_INCLUDED
#define CHORUS_MSG_BYTES_H_INCLUDED

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

//  Walks the one MessagePack value at the start of data, checking every
//  count and length against the bytes left and nesting against the limit.
//  Returns NULL and where the value ends in *end, or what is wrong.
const char *
    chorus__msg_scan (const uint8_t *data, size_t size, size_t *end);

//  This thread's unpacking zone, empty; the caller clears it after use
msgpack_zone *
    chorus__msg_zone (void);

//  The encoder's output: on the stack while it fits, so that encoding a
//  small message costs no malloc (msgpack_sbuffer starts at 8 KiB)
typedef struct {
    char *data;                 //  stack or heap
    size_t size;                //  bytes written
    size_t max;                 //  bytes available
    char stack [1024];          //  the first bytes
} chorus__msg_buffer_t;

void
    chorus__msg_buffer_init (chorus__msg_buffer_t *buffer);
//  A msgpack_packer_write_t
int
    chorus__msg_buffer_write (void *data, const char *bytes, size_t length);
void
    chorus__msg_buffer_free (chorus__msg_buffer_t *buffer);

#endif
